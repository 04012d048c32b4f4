//! Helpers shared by the integration tests: the binary with a clean environment,
//! fixture paths and readers for the files a run writes.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The audit binary built for these tests.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_aks-identity-audit");

/// The environment variables a caller's shell may set that change what the binary
/// does; every test starts without them.
pub(crate) const CLEARED_ENV: &[&str] = &[
    "AKS_AUDIT_CONFIG",
    "AKS_AUDIT_LOG",
    "AKS_AUDIT_RUN_ID",
    "AKS_AUDIT_TEST_CRASH_AT",
    "AKS_AUDIT_TEST_UPLOAD_BLOCK_BYTES",
    "AKS_AUDIT_WEBHOOKS",
];

/// The binary without the caller's config, log filter, run id or crash point, and
/// without colour.
/// Starts one of the project's Python test servers (`tests/smtp/server.py`,
/// `tests/webhook/sink.py`): it prints `PORT <n>` on stdout when ready and serves until
/// its stdin closes (the child keeps the pipe). `what` names it in a failure.
pub(crate) fn spawn_with_port(mut cmd: Command, what: &str) -> (std::process::Child, u16) {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {what}: {e}"));
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .strip_prefix("PORT ")
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("{what} did not start (said {line:?})"));
    (child, port)
}

pub(crate) fn bin() -> Command {
    let mut c = Command::new(BIN);
    for k in CLEARED_ENV {
        c.env_remove(k);
    }
    c.env("NO_COLOR", "1");
    c
}

/// The package's root folder.
pub(crate) fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `tests/fixtures/<name>`.
pub(crate) fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures").join(name)
}

/// `examples/demo`, the demo inventory.
pub(crate) fn demo_inventory() -> PathBuf {
    root().join("examples/demo")
}

/// A process's stderr as text.
pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// A text file's content; panics naming the file.
pub(crate) fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A CSV file's rows, each keyed by the header.
pub(crate) fn csv_rows(p: &Path) -> Vec<HashMap<String, String>> {
    csv_text_rows(&read(p))
}

/// CSV text's rows, each keyed by the header.
pub(crate) fn csv_text_rows(text: &str) -> Vec<HashMap<String, String>> {
    let mut r = csv::Reader::from_reader(text.as_bytes());
    r.deserialize().map(|x| x.unwrap()).collect()
}

/// A JSON file's value; panics naming the file.
pub(crate) fn json(p: &Path) -> Value {
    serde_json::from_str(&read(p)).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}
