//! Docs stay honest: every flag of every command is documented in the README.
use std::collections::BTreeSet;
use std::process::Command;

#[test]
fn every_flag_is_in_the_readme() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
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
        let out = Command::new(env!("CARGO_BIN_EXE_aks-identity-audit"))
            .args(*c)
            .arg("--help")
            .output()
            .unwrap();
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
