//! Issue 16, security: nothing leaked. Files are private, no planted link is followed,
//! secrets never reach an error or a log line, hostile names cannot forge output.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_aks-identity-audit");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The binary under `umask 022` (the usual default), without the caller's config.
fn audit_with_umask_022(args: &[&str]) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg("umask 022 && exec \"$0\" \"$@\"")
        .arg(BIN)
        .args(args)
        .env_remove("AKS_AUDIT_CONFIG")
        .env_remove("AKS_AUDIT_LOG")
        .env_remove("AKS_AUDIT_SMTP_PASSWORD")
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

/// Reports, outbox and state: files 0600, the folders the tool creates 0700, under the
/// default umask 022 (which used to leave them all world-readable).
#[cfg(unix)]
#[test]
fn reports_outbox_and_state_are_private_under_umask_022() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("reports/night-1");
    let state = tmp.path().join("state/audit");
    let inv = root().join("tests/fixtures/mail-owners");
    let o = audit_with_umask_022(&[
        "run",
        "--inventory",
        inv.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
        "--allowed-domain",
        "contoso.com",
        "--admin",
        "sec@corp.example.com",
    ]);
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", stderr(&o));
    for d in [
        tmp.path().join("reports"),
        out.clone(),
        out.join("outbox"),
        tmp.path().join("state"),
        state.clone(),
    ] {
        assert_eq!(mode(&d), 0o700, "{}", d.display());
    }
    let mut files = 0;
    for d in [&out, &out.join("outbox"), &state] {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() {
                files += 1;
                assert_eq!(mode(&p), 0o600, "{}", p.display());
            }
        }
    }
    // The six reports, the messages, state.json and runs.csv.
    assert!(files >= 6 + 2 + 2, "{files}");
    assert!(state.join("state.json").is_file() && state.join("runs.csv").is_file());
}
