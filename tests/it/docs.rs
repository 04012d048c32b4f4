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

/// The top-level modules of `src/` (non-test code) import each other without a cycle:
/// every `crate::X` path in a module's files is an edge; a depth-first search finds
/// any edge back to a module still on the path.
#[test]
fn top_level_modules_import_each_other_without_a_cycle() {
    use std::collections::{BTreeMap, BTreeSet};
    let src = root().join("src");
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n != "tests") {
                    stack.push(p);
                }
                continue;
            }
            let rel = p.strip_prefix(&src).unwrap().to_string_lossy().to_string();
            if !rel.ends_with(".rs") || rel.ends_with("tests.rs") {
                continue;
            }
            let top = rel
                .split('/')
                .next()
                .unwrap()
                .trim_end_matches(".rs")
                .to_string();
            if top == "main" || top == "lib" {
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap();
            for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
                for part in line.split("crate::").skip(1) {
                    let to: String = part
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !to.is_empty() && to != top {
                        edges.entry(top.clone()).or_default().insert(to);
                    }
                }
            }
        }
    }
    fn visit(
        m: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|x| x == m) {
            let mut cycle = path[i..].to_vec();
            cycle.push(m.to_string());
            return Some(cycle);
        }
        if done.contains(m) {
            return None;
        }
        path.push(m.to_string());
        for to in edges.get(m).into_iter().flatten() {
            if let Some(c) = visit(to, edges, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(m.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for m in edges.keys() {
        if let Some(cycle) = visit(m, &edges, &mut Vec::new(), &mut done) {
            panic!("import cycle: {}", cycle.join(" -> "));
        }
    }
    assert!(edges.len() > 10, "modules found: {:?}", edges.keys());
}
