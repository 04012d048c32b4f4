//! Docs stay honest: every flag of every command is documented in the README.
use std::collections::BTreeSet;

use crate::support::{bin, root};

#[test]
fn every_flag_is_in_the_readme() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let commands: &[&[&str]] = &[
        &[],
        &["run"],
        &["schedule"],
        &["emulator", "serve"],
        &["emulator", "generate"],
        &["resend"],
        &["check-config"],
        &["check-cron"],
        &["rules"],
        &["baselines"],
    ];
    let mut missing = BTreeSet::new();
    for c in commands {
        let out = bin().args(*c).arg("--help").output().unwrap();
        assert!(out.status.success(), "{c:?} --help failed");
        let help = String::from_utf8(out.stdout).unwrap();
        for word in help.split(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '-')) {
            let is_flag =
                word.starts_with("--") && word.len() > 2 && word.as_bytes()[2].is_ascii_lowercase();
            if is_flag && word != "--help" && !readme.contains(word) {
                missing.insert(format!("{word} ({})", c.join(" ")));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "flags missing from README.md: {missing:?}"
    );
}
