//! Microsoft's own SDK clients against the emulator (Python azure-identity +
//! azure-mgmt-resourcegraph, installed by scripts/setup-test-tools.sh).
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::support::{bin, root};

fn venv_python() -> std::path::PathBuf {
    let p = root().join("tests/.tools/venv/bin/python");
    assert!(
        p.exists(),
        "{} is missing: run scripts/setup-test-tools.sh",
        p.display()
    );
    p
}

#[test]
fn microsoft_python_sdk_pages_and_errors_against_the_emulator() {
    let python = venv_python();
    let tmp = tempfile::tempdir().unwrap();
    let ca = tmp.path().join("ca.pem");
    let mut emu = bin()
        .args([
            "emulator",
            "serve",
            "--demo",
            "--listen",
            "127.0.0.1:0",
            "--ca-out",
        ])
        .arg(&ca)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(emu.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("https://"))
        .unwrap_or_else(|| panic!("no ready line: {line:?}"))
        .to_string();
    let out = Command::new(python)
        .arg(root().join("tests/sdk/arg_python_sdk.py"))
        .arg(&url)
        .arg(&ca)
        .output()
        .unwrap();
    let _ = emu.kill();
    let _ = emu.wait();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python SDK failed: {}\n{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(stdout.trim().lines().last().unwrap()).unwrap();
    assert_eq!(v["subscriptions"], 3, "{v}");
    assert_eq!(v["clusters"], 11, "{v}");
    assert_eq!(v["distinct"], 11, "every row once across pages: {v}");
    assert_eq!(v["pages"], 6, "two rows a page: {v}");
    assert_eq!(v["error_code"], "BadRequest", "{v}");
    assert_eq!(v["summary_rows"], 3, "a row per subscription: {v}");
    assert_eq!(v["summary_truncated"], "false", "{v}");
    assert_eq!(v["summary_clusters"], 11, "{v}");
    assert_eq!(v["summary_packed"], 11, "{v}");
}
