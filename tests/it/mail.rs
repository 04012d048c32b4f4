//! Mail against a real SMTP server: aiosmtpd (tests/smtp/server.py) on loopback with
//! STARTTLS and AUTH required, delivering into a Maildir read back here.
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};

use serde_json::Value;

use crate::support::{self, bin, root, stderr};

const USER: &str = "audit-bot";
const PASSWORD: &str = "Pw-7f3c9e1a-never-print-me";
const PASSWORD_ENV: &str = "AKS_AUDIT_SMTP_PASSWORD";

fn fixture() -> PathBuf {
    support::fixture("mail-owners")
}

/// The venv's Python with aiosmtpd; fails (never skips) when it is missing.
fn python() -> PathBuf {
    let py = root().join("tests/.tools/venv/bin/python");
    let ok = py.is_file()
        && Command::new(&py)
            .args(["-c", "import aiosmtpd"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
    assert!(
        ok,
        "{} with aiosmtpd is missing: run scripts/setup-test-tools.sh first",
        py.display()
    );
    py
}

/// One aiosmtpd process; killed on drop.
struct Smtp {
    child: Child,
    port: u16,
    implicit: bool,
    maildir: PathBuf,
    ca: PathBuf,
    _certs: tempfile::TempDir,
}

impl Smtp {
    fn start(maildir: &Path, refuse_first: usize) -> Smtp {
        Smtp::start_with(maildir, refuse_first, false)
    }

    /// `implicit`: TLS from the first byte (smtps) instead of STARTTLS.
    fn start_with(maildir: &Path, refuse_first: usize, implicit: bool) -> Smtp {
        let certs = tempfile::tempdir().unwrap();
        let m = azure_emulator::tls::generate().unwrap();
        let chain = certs.path().join("chain.pem");
        let key = certs.path().join("leaf.key");
        let ca = certs.path().join("ca.pem");
        std::fs::write(&chain, format!("{}{}", m.leaf_pem, m.ca_pem)).unwrap();
        std::fs::write(&key, &m.leaf_key_pem).unwrap();
        std::fs::write(&ca, &m.ca_pem).unwrap();
        let mut cmd = Command::new(python());
        cmd.arg(root().join("tests/smtp/server.py"))
            .arg("serve")
            .arg("--maildir")
            .arg(maildir)
            .arg("--cert")
            .arg(&chain)
            .arg("--key")
            .arg(&key)
            .args(["--user", USER, "--password-env", "TEST_SMTP_PASSWORD"])
            .args(["--refuse-first", &refuse_first.to_string()])
            .args(implicit.then_some("--implicit-tls"))
            .env("TEST_SMTP_PASSWORD", PASSWORD);
        let (child, port) = crate::support::spawn_with_port(cmd, "tests/smtp/server.py");
        Smtp {
            child,
            port,
            implicit,
            maildir: maildir.to_path_buf(),
            ca,
            _certs: certs,
        }
    }

    fn url(&self) -> String {
        let scheme = if self.implicit { "smtps" } else { "smtp" };
        format!("{scheme}://{USER}@127.0.0.1:{}", self.port)
    }

    /// The flags that point a run at this server.
    fn flags(&self) -> Vec<String> {
        vec![
            "--smtp".into(),
            self.url(),
            "--smtp-ca-cert".into(),
            self.ca.display().to_string(),
            "--mail-from".into(),
            "AKS audit <aks-audit@contoso.com>".into(),
            "--smtp-timeout".into(),
            "10".into(),
        ]
    }

    fn messages(&self) -> Vec<Value> {
        dump(&self.maildir)
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        if let Some(stdin) = self.child.stdin.as_mut() {
            let _ = stdin.flush();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dump(maildir: &Path) -> Vec<Value> {
    let out = Command::new(python())
        .arg(root().join("tests/smtp/server.py"))
        .args(["dump", "--maildir"])
        .arg(maildir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dump: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn cmd(args: &[String], password: Option<&str>) -> Output {
    let mut c = bin();
    c.args(["--log-format", "json"]).args(args);
    c.env_remove(PASSWORD_ENV);
    if let Some(p) = password {
        c.env(PASSWORD_ENV, p);
    }
    c.output().unwrap()
}

fn audit(out: &Path, extra: &[String], password: Option<&str>) -> Output {
    let mut args: Vec<String> = vec![
        "run".into(),
        "--inventory".into(),
        fixture().display().to_string(),
        "--out".into(),
        out.display().to_string(),
        "--allowed-domain".into(),
        "contoso.com".into(),
        "--admin".into(),
        "sec@corp.example.com".into(),
    ];
    args.extend_from_slice(extra);
    cmd(&args, password)
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The owners of tests/fixtures/mail-owners and the clusters each must get.
fn expected_owners() -> BTreeMap<&'static str, BTreeSet<&'static str>> {
    BTreeMap::from([
        (
            "alice@contoso.com",
            BTreeSet::from(["aks-alice-sp", "aks-shared"]),
        ),
        ("bob@eu.contoso.com", BTreeSet::from(["aks-shared"])),
        (
            "carol@contoso.com",
            BTreeSet::from(["aks-crlf\r\nBcc: evil@x.com"]),
        ),
        ("platform@contoso.com", BTreeSet::from(["aks-platform"])),
        ("team-a@contoso.com", BTreeSet::from(["aks-team-a"])),
    ])
}

const ADMIN: &str = "sec@corp.example.com";

fn attachment<'a>(m: &'a Value, name: &str) -> Option<&'a str> {
    m["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["filename"] == name)
        .map(|a| a["content"].as_str().unwrap())
}

fn csv_column(text: &str, column: &str) -> Vec<String> {
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let idx = r
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == column)
        .unwrap();
    r.records()
        .map(|rec| rec.unwrap()[idx].to_string())
        .collect()
}

fn by_recipient(msgs: &[Value]) -> BTreeMap<String, Vec<&Value>> {
    let mut m: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for msg in msgs {
        let rcpt = msg["rcpt_to"].as_array().unwrap();
        assert_eq!(rcpt.len(), 1, "one recipient per message: {rcpt:?}");
        m.entry(rcpt[0].as_str().unwrap().to_string())
            .or_default()
            .push(msg);
    }
    m
}

/// Every file under `dir`, recursively, as bytes.
fn all_bytes(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(all_bytes(&p));
        } else {
            out.push((p.clone(), std::fs::read(&p).unwrap()));
        }
    }
    out
}

fn assert_no_password(o: &Output, out_dir: &Path) {
    for (what, bytes) in [("stdout", &o.stdout), ("stderr", &o.stderr)] {
        assert!(
            !String::from_utf8_lossy(bytes).contains(PASSWORD),
            "password in {what}"
        );
    }
    let files = all_bytes(out_dir);
    assert!(!files.is_empty());
    for (p, b) in files {
        assert!(
            !String::from_utf8_lossy(&b).contains(PASSWORD),
            "password in {}",
            p.display()
        );
    }
}

fn last_log_line(o: &Output) -> Value {
    let s = stderr(o);
    let line = s
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .expect("some log");
    serde_json::from_str(line).unwrap_or_else(|_| panic!("not a JSON log line: {line}"))
}

#[test]
fn owners_get_exactly_their_clusters_over_starttls_with_auth() {
    let tmp = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(&tmp.path().join("maildir"), 0);
    let out = tmp.path().join("out");
    let o = audit(&out, &smtp.flags(), Some(PASSWORD));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let msgs = smtp.messages();
    let by = by_recipient(&msgs);
    let mut want: BTreeSet<String> = expected_owners().keys().map(|s| s.to_string()).collect();
    want.insert(ADMIN.into());
    assert_eq!(
        by.keys().cloned().collect::<BTreeSet<_>>(),
        want,
        "recipients"
    );
    for (rcpt, list) in &by {
        assert_eq!(list.len(), 1, "{rcpt} got {} messages", list.len());
    }
    for m in &msgs {
        // STARTTLS really happened and the session was authenticated.
        assert_eq!(m["tls"], "yes");
        assert_eq!(m["auth_user"], USER);
        assert_eq!(m["mail_from"], "aks-audit@contoso.com");
        // Nothing leaks out through headers: no Cc/Bcc, no header line from a tag value.
        let headers = m["headers"].as_object().unwrap();
        assert!(
            !headers.contains_key("bcc") && !headers.contains_key("cc"),
            "{headers:?}"
        );
        let head = m["raw_head"].as_str().unwrap();
        for line in head.split("\r\n") {
            let lower = line.to_ascii_lowercase();
            assert!(
                !lower.starts_with("bcc") && !lower.starts_with("cc"),
                "{head}"
            );
            // A hostile value may show as text inside the subject line, nowhere else.
            assert!(
                !lower.contains("evil") || line.starts_with("Subject: "),
                "tag value reached a header: {head}"
            );
        }
        assert_eq!(m["headers"]["auto-submitted"][0], "auto-generated");
        let rcpt = m["rcpt_to"][0].as_str().unwrap();
        assert!(
            rcpt.ends_with("@contoso.com") || rcpt.ends_with(".contoso.com") || rcpt == ADMIN,
            "{rcpt}"
        );
        let subject = m["subject"].as_str().unwrap();
        assert!(subject.starts_with("AKS identity audit"), "{subject}");
        assert!(
            !subject.contains('\r') && !subject.contains('\n'),
            "{subject:?}"
        );
        assert!(
            m["text"].is_string() && m["html"].is_string(),
            "plain and HTML parts"
        );
    }
    for (owner, clusters) in expected_owners() {
        let m = by[owner][0];
        let names: BTreeSet<String> =
            csv_column(attachment(m, "clusters.csv").unwrap(), "cluster_name")
                .into_iter()
                .collect();
        let want: BTreeSet<String> = clusters.iter().map(|s| s.to_string()).collect();
        assert_eq!(names, want, "{owner}'s clusters.csv");
        let ids: BTreeSet<String> =
            csv_column(attachment(m, "clusters.csv").unwrap(), "cluster_id")
                .into_iter()
                .collect();
        let finding_ids: BTreeSet<String> =
            csv_column(attachment(m, "findings.csv").unwrap(), "cluster_id")
                .into_iter()
                .collect();
        assert!(
            !finding_ids.is_empty() && finding_ids.is_subset(&ids),
            "{owner}: {finding_ids:?} not within {ids:?}"
        );
        let attachments: Vec<&str> = m["attachments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["filename"].as_str().unwrap())
            .collect();
        assert_eq!(attachments, ["clusters.csv", "findings.csv"], "{owner}");
        let text = m["text"].as_str().unwrap();
        let all = [
            "aks-alice-sp",
            "aks-team-a",
            "aks-platform",
            "aks-shared",
            "aks-foreign",
            "aks-invalid",
            "aks-inject",
            "aks-crlf",
        ];
        let mine: Vec<&str> = clusters
            .iter()
            .map(|c| c.split('\r').next().unwrap())
            .collect();
        for c in &mine {
            assert!(text.contains(c), "{owner}'s text lacks {c}");
        }
        for other in all.iter().filter(|c| !mine.contains(c)) {
            assert!(
                !text.contains(other) && !m["html"].as_str().unwrap().contains(other),
                "{owner} sees {other}"
            );
        }
    }
    assert_eq!(
        by["alice@contoso.com"][0]["subject"],
        "AKS identity audit: 2 clusters need action (3 high)"
    );
    let carol = by["carol@contoso.com"][0]["subject"].as_str().unwrap();
    assert!(carol.contains("aks-crlf Bcc: evil@x.com"), "{carol}");
    // Admin: full report, every CSV, the unroutable list with the reasons.
    let admin = by[ADMIN][0];
    for name in [
        "report.html",
        "clusters.csv",
        "findings.csv",
        "unroutable.csv",
    ] {
        assert!(attachment(admin, name).is_some(), "admin lacks {name}");
    }
    assert_eq!(
        csv_column(attachment(admin, "clusters.csv").unwrap(), "cluster_id").len(),
        8
    );
    let unroutable = attachment(admin, "unroutable.csv").unwrap();
    let names = csv_column(unroutable, "cluster_name");
    assert_eq!(names, ["aks-foreign", "aks-invalid", "aks-inject"]);
    let reasons = csv_column(unroutable, "reason");
    assert!(
        reasons[0].contains("evil.example") && reasons[0].contains("not an allowed domain"),
        "{reasons:?}"
    );
    assert!(reasons[1].contains("display name"), "{reasons:?}");
    assert!(reasons[2].contains("control characters"), "{reasons:?}");
    let values = csv_column(unroutable, "owner_value");
    assert_eq!(
        values[2], "alice@contoso.com\\r\\nBcc: evil@x.com",
        "escaped, on one line"
    );
    let admin_text = admin["text"].as_str().unwrap();
    assert!(
        admin_text.contains("Unroutable owners (3)") && admin_text.contains("aks-foreign"),
        "{admin_text}"
    );
    assert!(admin["subject"].as_str().unwrap().contains("3 unroutable"));
    // The summary, top actions and changes are in the body, not only attached.
    let admin_html = admin["html"].as_str().unwrap();
    for part in ["Summary", "Top actions", "Since the last run"] {
        assert!(
            admin_html.contains(&format!(">{part}</h3>")),
            "{part}: {admin_html}"
        );
        assert!(admin_text.contains(part), "{part}: {admin_text}");
    }
    assert!(admin_html.contains("% compliant</b>"), "{admin_html}");
    assert!(admin_text.contains("\n1. [HIGH] "), "{admin_text}");
    assert!(
        admin_text.contains("\n    az "),
        "a command to copy: {admin_text}"
    );
    // Reports first, then mail; everything sent moved out of the outbox.
    assert!(out.join("report.html").is_file());
    assert!(files(&out.join("outbox")).is_empty());
    assert_eq!(files(&out.join("sent")).len(), 6);
    assert_no_password(&o, &out);
}

#[test]
fn one_refusal_is_retried_and_delivered() {
    let tmp = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(&tmp.path().join("maildir"), 1);
    let out = tmp.path().join("out");
    let mut flags = smtp.flags();
    flags.extend(["--smtp-retries".to_string(), "2".to_string()]);
    let o = audit(&out, &flags, Some(PASSWORD));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("will retry"), "{}", stderr(&o));
    let msgs = smtp.messages();
    let by = by_recipient(&msgs);
    assert_eq!(by.len(), 6);
    assert!(
        by.values().all(|v| v.len() == 1),
        "no duplicates after the retry"
    );
    assert!(files(&out.join("outbox")).is_empty());
}

#[test]
fn a_refusing_server_leaves_the_outbox_and_exit_3_then_resend_delivers() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    {
        let refusing = Smtp::start(&tmp.path().join("maildir-1"), 10_000);
        let mut flags = refusing.flags();
        flags.extend(["--smtp-retries".to_string(), "1".to_string()]);
        let o = audit(&out, &flags, Some(PASSWORD));
        assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
        assert!(refusing.messages().is_empty());
        let last = last_log_line(&o);
        assert_eq!(last["exit_code"], 3, "{last}");
        assert_eq!(last["mail_undelivered"], 6, "{last}");
        assert!(
            stderr(&o).contains("aks-identity-audit resend"),
            "{}",
            stderr(&o)
        );
        assert_eq!(files(&out.join("outbox")).len(), 6);
        assert!(files(&out.join("sent")).is_empty());
        assert!(
            out.join("report.html").is_file(),
            "reports are written before sending"
        );
        assert_no_password(&o, &out);
    }
    let smtp = Smtp::start(&tmp.path().join("maildir-2"), 0);
    let mut args = vec!["resend".to_string(), out.display().to_string()];
    args.extend(smtp.flags());
    args.extend([
        "--allowed-domain".to_string(),
        "contoso.com".to_string(),
        "--admin".to_string(),
        ADMIN.to_string(),
    ]);
    let o = cmd(&args, Some(PASSWORD));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("sent 6, undelivered 0"));
    let msgs = smtp.messages();
    let by = by_recipient(&msgs);
    assert_eq!(by.len(), 6);
    assert!(files(&out.join("outbox")).is_empty());
    assert_eq!(files(&out.join("sent")).len(), 6);
    // A second resend finds nothing to do.
    let o = cmd(&args, Some(PASSWORD));
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(smtp.messages().len(), 6);
}

/// An SMTP server that accepts connections and then never sends a byte, or (`greet`)
/// sends its greeting and goes silent. Stops accepting when dropped.
struct SilentSmtp {
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl SilentSmtp {
    fn start(greet: bool) -> SilentSmtp {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let port = l.local_addr().unwrap().port();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            let mut held = vec![];
            while !stopped.load(std::sync::atomic::Ordering::SeqCst) {
                match l.accept() {
                    Ok((mut s, _)) => {
                        if greet {
                            let _ = s.write_all(b"220 silent.test ESMTP\r\n");
                        }
                        held.push(s);
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
                }
            }
        });
        SilentSmtp { port, stop }
    }
}

impl Drop for SilentSmtp {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Runs the binary with `args`; fails the test, instead of hanging it, when the
/// process is still running after `limit`.
fn cmd_within(args: &[String], limit: std::time::Duration) -> (Output, std::time::Duration) {
    let logs = tempfile::tempdir().unwrap();
    let (out_path, err_path) = (logs.path().join("out"), logs.path().join("err"));
    let started = std::time::Instant::now();
    let mut child = bin()
        .args(["--log-format", "json"])
        .args(args)
        .env_remove(PASSWORD_ENV)
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "still running after {limit:?} (hung): {}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let o = Output {
        status,
        stdout: std::fs::read(&out_path).unwrap(),
        stderr: std::fs::read(&err_path).unwrap(),
    };
    (o, started.elapsed())
}

/// A server that never answers (or greets and goes silent) used to hold the run, and
/// `resend`, forever: lettre's timeout covers connecting only. Each attempt is now
/// bounded by --smtp-timeout and retried like any transient failure; the messages
/// stay in the outbox and the exit code is 3.
#[test]
fn a_server_that_never_answers_times_out_and_leaves_the_outbox() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let limit = std::time::Duration::from_secs(60);
    let flags = |port: u16| -> Vec<String> {
        [
            "--smtp",
            &format!("smtp://127.0.0.1:{port}?tls=none"),
            "--mail-from",
            "AKS audit <aks-audit@contoso.com>",
            "--smtp-timeout",
            "2",
            "--smtp-retries",
            "1",
        ]
        .map(String::from)
        .to_vec()
    };
    let mute = SilentSmtp::start(false);
    let mut args: Vec<String> = [
        "run",
        "--inventory",
        &fixture().display().to_string(),
        "--out",
        &out.display().to_string(),
        "--allowed-domain",
        "contoso.com",
        "--admin",
        ADMIN,
    ]
    .map(String::from)
    .to_vec();
    args.extend(flags(mute.port));
    let (o, took) = cmd_within(&args, limit);
    assert_eq!(o.status.code(), Some(3), "after {took:?}: {}", stderr(&o));
    let last = last_log_line(&o);
    assert_eq!(last["mail_undelivered"], 6, "{last}");
    let err = stderr(&o);
    assert!(
        err.contains("timed out") && err.contains("will retry"),
        "{err}"
    );
    assert_eq!(files(&out.join("outbox")).len(), 6);
    assert!(files(&out.join("sent")).is_empty());

    let greets = SilentSmtp::start(true);
    let mut args = vec!["resend".to_string(), out.display().to_string()];
    args.extend(flags(greets.port));
    args.extend(["--allowed-domain", "contoso.com", "--admin", ADMIN].map(String::from));
    let (o, took) = cmd_within(&args, limit);
    assert_eq!(o.status.code(), Some(3), "after {took:?}: {}", stderr(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("sent 0, undelivered 6"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(stderr(&o).contains("timed out"), "{}", stderr(&o));
    assert_eq!(files(&out.join("outbox")).len(), 6);
}

#[test]
fn resend_refuses_a_planted_message_to_a_foreign_address() {
    let tmp = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(&tmp.path().join("maildir"), 0);
    let out = tmp.path().join("out");
    std::fs::create_dir_all(out.join("outbox")).unwrap();
    std::fs::write(
        out.join("outbox/0001-x.eml"),
        "From: aks-audit@contoso.com\r\nTo: mallory@evil.example\r\nSubject: x\r\n\r\nreport\r\n",
    )
    .unwrap();
    let mut args = vec!["resend".to_string(), out.display().to_string()];
    args.extend(smtp.flags());
    args.extend(["--allowed-domain".to_string(), "contoso.com".to_string()]);
    let o = cmd(&args, Some(PASSWORD));
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(smtp.messages().is_empty());
    assert_eq!(files(&out.join("outbox")), ["0001-x.eml"]);
}

#[test]
fn plaintext_is_refused_by_the_server_and_an_unknown_ca_by_the_client() {
    let tmp = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(&tmp.path().join("maildir"), 0);
    // Without STARTTLS (tls=none, loopback, no AUTH): the server requires STARTTLS.
    let out = tmp.path().join("plain");
    let flags = vec![
        "--smtp".to_string(),
        format!("smtp://127.0.0.1:{}?tls=none", smtp.port),
        "--mail-from".to_string(),
        "aks-audit@contoso.com".to_string(),
        "--smtp-retries".to_string(),
        "0".to_string(),
    ];
    let o = audit(&out, &flags, None);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).to_lowercase().contains("starttls"),
        "{}",
        stderr(&o)
    );
    assert_eq!(files(&out.join("outbox")).len(), 6);
    // STARTTLS without trusting the test CA: the certificate is verified and refused.
    let out = tmp.path().join("untrusted");
    let mut flags = smtp.flags();
    let i = flags.iter().position(|f| f == "--smtp-ca-cert").unwrap();
    flags.drain(i..i + 2);
    flags.extend(["--smtp-retries".to_string(), "0".to_string()]);
    let o = audit(&out, &flags, Some(PASSWORD));
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(smtp.messages().is_empty());
    assert_no_password(&o, &out);
    // A password is never sent over plaintext: refused before connecting.
    let o = audit(
        &tmp.path().join("x"),
        &[
            "--smtp".to_string(),
            format!("smtp://{USER}@127.0.0.1:{}?tls=none", smtp.port),
            "--mail-from".to_string(),
            "aks-audit@contoso.com".to_string(),
        ],
        Some(PASSWORD),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("without TLS"), "{}", stderr(&o));
    // tls=none is for loopback only.
    let o = audit(
        &tmp.path().join("y"),
        &[
            "--smtp".to_string(),
            "smtp://mail.contoso.com?tls=none".to_string(),
            "--mail-from".to_string(),
            "aks-audit@contoso.com".to_string(),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("loopback"), "{}", stderr(&o));
}

#[test]
fn a_wrong_password_fails_without_printing_either_password() {
    let tmp = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(&tmp.path().join("maildir"), 0);
    let out = tmp.path().join("out");
    let wrong = "Wrong-3b1d-also-secret";
    let pw_file = tmp.path().join("pw");
    std::fs::write(&pw_file, format!("{wrong}\n")).unwrap();
    let mut flags = smtp.flags();
    flags.extend([
        "--smtp-password-file".to_string(),
        pw_file.display().to_string(),
    ]);
    let o = audit(&out, &flags, None);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(smtp.messages().is_empty());
    let text = format!("{}{}", stderr(&o), String::from_utf8_lossy(&o.stdout));
    assert!(!text.contains(wrong), "{text}");
    for (p, b) in all_bytes(&out) {
        assert!(
            !String::from_utf8_lossy(&b).contains(wrong),
            "{}",
            p.display()
        );
    }
}

#[test]
fn without_smtp_messages_land_in_the_outbox_and_no_always_send_skips_unchanged_owners() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let run = |name: &str| {
        let out = tmp.path().join(name);
        let o = audit(
            &out,
            &[
                "--state".to_string(),
                state.display().to_string(),
                "--no-always-send".to_string(),
            ],
            None,
        );
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        files(&out.join("outbox"))
    };
    // First run: everybody (no previous run to compare with).
    assert_eq!(
        run("first"),
        [
            "0001-alice@contoso.com.eml",
            "0002-bob@eu.contoso.com.eml",
            "0003-carol@contoso.com.eml",
            "0004-platform@contoso.com.eml",
            "0005-team-a@contoso.com.eml",
            "0006-sec@corp.example.com.eml"
        ]
    );
    // Nothing changed: nobody gets anything (the unroutable owners, unchanged, are
    // logged; `--mail-when action` mails the admin about them).
    assert!(run("second").is_empty());
    // --no-email: no outbox at all.
    let out = tmp.path().join("off");
    let o = audit(&out, &["--no-email".to_string()], None);
    assert_eq!(o.status.code(), Some(0));
    assert!(!out.join("outbox").exists());
}

/// `--mail-when changed --mail-digest mon`: an unchanged Monday mails every owner (the
/// weekly digest); an unchanged Tuesday mails nobody.
#[test]
fn a_weekly_digest_mails_every_owner_on_its_day_only() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let run = |name: &str, now: &str| {
        let out = tmp.path().join(name);
        let extra: Vec<String> = [
            "--state",
            &state.display().to_string(),
            "--mail-when",
            "changed",
            "--mail-digest",
            "mon",
            "--now",
            now,
        ]
        .map(String::from)
        .to_vec();
        let o = audit(&out, &extra, None);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        files(&out.join("outbox"))
    };
    assert_eq!(
        run("sun", "2026-06-07T02:00:00Z").len(),
        6,
        "first run: everybody"
    );
    let monday = run("mon", "2026-06-08T02:00:00Z");
    let owners: Vec<&String> = monday.iter().filter(|f| !f.contains(ADMIN)).collect();
    assert_eq!(
        owners.len(),
        5,
        "the digest: every owner, nothing changed: {monday:?}"
    );
    assert!(
        run("tue", "2026-06-09T02:00:00Z").is_empty(),
        "no digest on Tuesday"
    );
}

#[test]
fn demo_run_writes_owner_mail_to_the_outbox() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = cmd(
        &[
            "run".into(),
            "--demo".into(),
            "--out".into(),
            out.display().to_string(),
        ],
        None,
    );
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", stderr(&o));
    let eml = files(&out.join("outbox"));
    assert!(
        !eml.is_empty() && eml.iter().all(|n| n.ends_with("@contoso.com.eml")),
        "{eml:?}"
    );
}

/// Throughput to the local aiosmtpd: 200 owners, one cluster each. Prints messages/s;
/// asserts only that every message arrived once.
#[test]
fn two_hundred_owners_each_get_one_message() {
    let tmp = tempfile::tempdir().unwrap();
    let inv = tmp.path().join("inv");
    std::fs::create_dir_all(&inv).unwrap();
    let template: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(fixture().join("clusters.json")).unwrap())
            .unwrap();
    let base = &template[1];
    let clusters: Vec<Value> = (0..200)
        .map(|i| {
            let mut c = base.clone();
            let id = c["id"]
                .as_str()
                .unwrap()
                .replace("/c2", &format!("/perf{i}"));
            c["id"] = id.into();
            c["name"] = format!("aks-perf-{i:03}").into();
            c["tags"] = serde_json::json!({ "owner": format!("owner{i:03}@contoso.com") });
            c
        })
        .collect();
    std::fs::write(
        inv.join("clusters.json"),
        serde_json::to_string(&clusters).unwrap(),
    )
    .unwrap();
    std::fs::copy(
        fixture().join("role-assignments.json"),
        inv.join("role-assignments.json"),
    )
    .unwrap();
    let smtp = Smtp::start(&tmp.path().join("maildir"), 0);
    let out = tmp.path().join("out");
    let mut args: Vec<String> = vec![
        "run".into(),
        "--inventory".into(),
        inv.display().to_string(),
        "--out".into(),
        out.display().to_string(),
        "--allowed-domain".into(),
        "contoso.com".into(),
    ];
    args.extend(smtp.flags());
    let started = std::time::Instant::now();
    let o = cmd(&args, Some(PASSWORD));
    let elapsed = started.elapsed();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let msgs = smtp.messages();
    let by = by_recipient(&msgs);
    assert_eq!(by.len(), 200);
    assert!(by.values().all(|v| v.len() == 1));
    let last = last_log_line(&o);
    let mail_ms = stderr(&o)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["message"] == "mail: all messages sent")
        .and_then(|v| v["elapsed_ms"].as_f64())
        .expect("mail summary line");
    eprintln!(
        "mail throughput: 200 messages; composing+writing+sending {:.2}s ({:.0} messages/s); whole run {:.2}s",
        mail_ms / 1000.0,
        200.0 / (mail_ms / 1000.0),
        elapsed.as_secs_f64()
    );
    assert_eq!(last["mail_sent"], 200, "{last}");
}

#[test]
fn implicit_tls_with_the_mail_section_of_a_config_file() {
    let tmp = tempfile::tempdir().unwrap();
    let smtp = Smtp::start_with(&tmp.path().join("maildir"), 0, true);
    let pw = tmp.path().join("smtp-password");
    std::fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
    let config = tmp.path().join("audit.toml");
    std::fs::write(
        &config,
        format!(
            "[mail]\nsmtp = \"{}\"\nsmtp_password_file = \"{}\"\nsmtp_ca_cert = \"{}\"\nfrom = \"aks-audit@contoso.com\"\nadmins = [\"{ADMIN}\"]\nallowed_domains = [\"eu.contoso.com\"]\nalways_send = true\nenabled = true\ntimeout_seconds = 10\nretries = 1\n",
            smtp.url(),
            pw.display(),
            smtp.ca.display()
        ),
    )
    .unwrap();
    let out = tmp.path().join("out");
    let o = cmd(
        &[
            "run".into(),
            "--config".into(),
            config.display().to_string(),
            "--inventory".into(),
            fixture().display().to_string(),
            "--out".into(),
            out.display().to_string(),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let msgs = smtp.messages();
    let by = by_recipient(&msgs);
    // Only eu.contoso.com is allowed: aks-shared's list names alice@contoso.com too, and a
    // list is routed all or nothing, so nobody but the admin gets mail.
    assert_eq!(by.keys().map(String::as_str).collect::<Vec<_>>(), [ADMIN]);
    assert!(msgs
        .iter()
        .all(|m| m["tls"] == "yes" && m["auth_user"] == USER));
    let admin = by[ADMIN][0];
    let names = csv_column(attachment(admin, "unroutable.csv").unwrap(), "cluster_name");
    assert_eq!(names.len(), 8, "{names:?}");
    assert_no_password(&o, &out);
    // An unknown key in [mail] is an error naming it.
    std::fs::write(&config, "[mail]\nsmtp_host = \"x\"\n").unwrap();
    let o = cmd(&["check-config".into(), config.display().to_string()], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("smtp_host"), "{}", stderr(&o));
}

/// Recipients of the messages that arrived, with how many each got.
fn counts(msgs: &[Value]) -> BTreeMap<String, usize> {
    by_recipient(msgs)
        .into_iter()
        .map(|(to, m)| (to, m.len()))
        .collect()
}

const OWNERS: [&str; 5] = [
    "alice@contoso.com",
    "bob@eu.contoso.com",
    "carol@contoso.com",
    "platform@contoso.com",
    "team-a@contoso.com",
];

/// A crash (abort, as SIGKILL: no destructor runs) at every stage boundary of a run
/// with state and SMTP: the next run sends what the crashed one owed, and no owner
/// gets a notification twice or not at all.
#[test]
fn a_crash_at_any_stage_loses_no_notification_and_sends_none_twice() {
    for point in [
        "after-reports",
        "after-outbox",
        "after-commit",
        "after-first-send",
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let smtp = Smtp::start(&tmp.path().join("maildir"), 0);
        let state = tmp.path().join("state");
        let night = |name: &str, now: &str, crash: Option<&str>| {
            let mut args = smtp.flags();
            args.extend(
                [
                    "--state",
                    &state.display().to_string(),
                    "--no-always-send",
                    "--now",
                    now,
                ]
                .map(String::from),
            );
            let mut all: Vec<String> = vec![
                "run".into(),
                "--inventory".into(),
                fixture().display().to_string(),
                "--out".into(),
                tmp.path().join(name).display().to_string(),
                "--allowed-domain".into(),
                "contoso.com".into(),
                "--admin".into(),
                "sec@corp.example.com".into(),
            ];
            all.extend(args);
            let mut c = bin();
            c.args(["--log-format", "json"]).args(&all);
            c.env(PASSWORD_ENV, PASSWORD);
            if let Some(p) = crash {
                c.env("AKS_AUDIT_TEST_CRASH_AT", p);
            }
            c.output().unwrap()
        };
        let o = night("n1", "2026-06-01T02:00:00Z", Some(point));
        assert_eq!(
            o.status.code(),
            None,
            "{point}: the run was aborted: {}",
            stderr(&o)
        );
        let o = night("n2", "2026-06-02T02:00:00Z", None);
        assert_eq!(o.status.code(), Some(0), "{point}: {}", stderr(&o));
        let got = counts(&smtp.messages());
        if point == "after-first-send" {
            // Messages in flight (up to 4 at once) when the process died were accepted
            // by the server but not yet recorded: they may arrive twice, never zero times.
            // (The admin gets one message per run: both runs mailed them.)
            let extra: usize = OWNERS
                .iter()
                .filter_map(|o| got.get(*o))
                .map(|n| n - 1)
                .sum();
            assert!(extra <= 3, "{point}: {got:?}");
            for owner in OWNERS {
                assert!(
                    got.get(owner).is_some_and(|n| *n >= 1),
                    "{point}: {owner} in {got:?}"
                );
            }
        } else {
            for owner in OWNERS {
                assert_eq!(got.get(owner), Some(&1), "{point}: {owner} in {got:?}");
            }
        }
        assert!(got.contains_key("sec@corp.example.com"), "{point}: {got:?}");
    }
}

/// A Kubernetes Job retried after its mail was accepted (same --run-id, same state):
/// nothing is sent again, even with --always-send.
#[test]
fn a_job_retry_after_mail_was_accepted_sends_nothing_more() {
    let tmp = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(&tmp.path().join("maildir"), 0);
    let state = tmp.path().join("state").display().to_string();
    let attempt = |name: &str| {
        let mut extra = smtp.flags();
        extra.extend(
            [
                "--state",
                &state,
                "--run-id",
                "audit-29012345",
                "--fail-on",
                "high",
            ]
            .map(String::from),
        );
        audit(&tmp.path().join(name), &extra, Some(PASSWORD))
    };
    let o = attempt("first");
    assert_eq!(o.status.code(), Some(1), "findings at high: {}", stderr(&o));
    let first = smtp.messages().len();
    assert_eq!(first, 6, "five owners and the admin");
    let o = attempt("retry");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(smtp.messages().len(), first, "the retry mailed again");
    assert!(
        stderr(&o).contains("\"mail_already_sent\":6"),
        "{}",
        stderr(&o)
    );
    // Another run id is another run: it mails.
    let mut extra = smtp.flags();
    extra.extend(["--state", &state, "--run-id", "audit-29012346"].map(String::from));
    let o = audit(&tmp.path().join("next"), &extra, Some(PASSWORD));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(smtp.messages().len(), first + 6);
}

/// `sent/` cannot be made (a file is in its place): the messages go out once, are
/// recorded in outbox/.accepted, the exit says so, and a resend sends nothing again.
#[test]
fn a_sent_message_that_cannot_be_moved_is_journaled_and_never_resent() {
    let tmp = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(&tmp.path().join("maildir"), 0);
    let out = tmp.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("sent"), "not a folder").unwrap();
    let o = audit(&out, &smtp.flags(), Some(PASSWORD));
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("could not be moved to sent/"),
        "{}",
        stderr(&o)
    );
    assert_eq!(smtp.messages().len(), 6);
    let journal = std::fs::read_to_string(out.join("outbox/.accepted")).unwrap();
    assert_eq!(journal.lines().count(), 6, "{journal}");
    let mut args = vec!["resend".to_string(), out.display().to_string()];
    args.extend(smtp.flags());
    let o = cmd(&args, Some(PASSWORD));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("sent 0, undelivered 0"));
    assert_eq!(smtp.messages().len(), 6, "resend sent a message again");
}

/// A resend waits for another resend of the same folder (its .lock), and gives up
/// with a clear error after lock_wait.
#[test]
fn resend_takes_the_outbox_lock() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    std::fs::create_dir_all(out.join("outbox")).unwrap();
    let held = std::fs::File::create(out.join(".lock")).unwrap();
    held.lock().unwrap();
    let cfg = tmp.path().join("c.toml");
    std::fs::write(&cfg, "lock_wait = 1\n").unwrap();
    let args: Vec<String> = vec![
        "resend".into(),
        out.display().to_string(),
        "--config".into(),
        cfg.display().to_string(),
        "--smtp".into(),
        "smtp://u@127.0.0.1:9".into(),
        "--mail-from".into(),
        "a@contoso.com".into(),
    ];
    let o = cmd(&args, Some("x"));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("in use by another run"),
        "{}",
        stderr(&o)
    );
}

/// The Subject header as it was on the wire (folded lines joined).
fn raw_subject(m: &Value) -> String {
    let head = m["raw_head"].as_str().unwrap();
    let mut lines = head
        .split("\r\n")
        .skip_while(|l| !l.starts_with("Subject: "));
    let mut out = lines.next().expect("a Subject header").to_string();
    for l in lines.take_while(|l| l.starts_with(' ') || l.starts_with('\t')) {
        out.push_str(l);
    }
    out
}

/// Decodes RFC 2047 `=?utf-8?b?...?=` words (what lettre writes), the blanks between
/// two encoded words dropped as RFC 2047 says; anything else as it is.
fn decode_encoded_words(s: &str) -> String {
    use base64::Engine;
    let mut bytes = Vec::new();
    let mut rest = s;
    let mut last_was_word = false;
    while !rest.is_empty() {
        let lower = rest.to_ascii_lowercase();
        if lower.starts_with("=?utf-8?b?") {
            let body = &rest[10..];
            let end = body.find("?=").expect("a closed encoded word");
            bytes.extend(
                base64::engine::general_purpose::STANDARD
                    .decode(&body[..end])
                    .expect("base64"),
            );
            rest = &body[end + 2..];
            last_was_word = true;
        } else {
            let blank = rest.len() - rest.trim_start_matches([' ', '\t']).len();
            if blank > 0
                && last_was_word
                && rest[blank..].to_ascii_lowercase().starts_with("=?utf-8?b?")
            {
                rest = &rest[blank..];
                continue;
            }
            let c = rest.chars().next().unwrap();
            let mut buf = [0u8; 4];
            bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            rest = &rest[c.len_utf8()..];
            last_was_word = false;
        }
    }
    String::from_utf8(bytes).expect("UTF-8 in the encoded words")
}

/// `--lang ja`: every subject is 7-bit on the wire (RFC 2047 encoded words), arrives
/// at a real SMTP server as the Japanese text, and the bodies are in Japanese.
#[test]
fn japanese_mail_arrives_intact_with_an_encoded_subject() {
    let tmp = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(&tmp.path().join("maildir"), 0);
    let out = tmp.path().join("out");
    let mut flags = smtp.flags();
    flags.extend(["--lang".to_string(), "ja".to_string()]);
    let o = audit(&out, &flags, Some(PASSWORD));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let msgs = smtp.messages();
    let by = by_recipient(&msgs);
    assert_eq!(by.len(), expected_owners().len() + 1, "recipients");
    for m in &msgs {
        let raw = raw_subject(m);
        assert!(raw.is_ascii(), "8-bit subject on the wire: {raw}");
        assert!(
            raw.to_ascii_lowercase().contains("=?utf-8?b?"),
            "not RFC 2047 encoded: {raw}"
        );
        let decoded = decode_encoded_words(raw.strip_prefix("Subject: ").unwrap());
        // What the server's mail parser decoded is what we decode: nothing lost.
        assert_eq!(m["subject"].as_str().unwrap(), decoded);
        assert!(decoded.starts_with("AKS ID 監査"), "{decoded}");
        let text = m["text"].as_str().unwrap();
        if m["rcpt_to"][0] == ADMIN {
            assert!(text.contains("完全なレポートを添付しています"), "{text}");
            assert!(text.contains("送信先不明の所有者 (3)"), "{text}");
            assert!(text.contains("優先する対応:"), "{text}");
        } else {
            assert!(text.starts_with("AKS ID 監査、"), "{text}");
            assert!(
                !text.contains("Tenant:") && !text.contains("Checked against"),
                "{text}"
            );
        }
    }
    assert_eq!(
        by["alice@contoso.com"][0]["subject"],
        "AKS ID 監査: 2 個のクラスターに対応が必要です (高 3 件)"
    );
    let alice = by["alice@contoso.com"][0]["text"].as_str().unwrap();
    assert!(
        alice.contains("あなたのクラスター: 2 個、うち 2 個に対応が必要です (高 3 件、低 1 件)。"),
        "{alice}"
    );
    let html = by["alice@contoso.com"][0]["html"].as_str().unwrap();
    assert!(html.contains("<html lang=\"ja\">"), "{html}");
    assert!(html.contains("実行するコマンド"), "{html}");
    let admin = by[ADMIN][0]["subject"].as_str().unwrap();
    assert!(
        admin.starts_with("AKS ID 監査 (完全なレポート): ") && admin.contains("送信先不明 3 個"),
        "{admin}"
    );
    assert_no_password(&o, &out);
}

/// `--mail-when changed` against the SMTP server: the first night mails every owner and
/// the admin; an unchanged second night sends nothing at all. `action` then mails only
/// the owners with an unsuppressed finding (team-a's are all suppressed), and `always`
/// every owner again.
#[test]
fn mail_when_changed_sends_nothing_on_an_unchanged_second_night() {
    let tmp = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(&tmp.path().join("maildir"), 0);
    let state = tmp.path().join("state");
    let admin = "sec@corp.example.com";
    // Accept every finding of team-a's cluster, rule by rule, as a user would.
    let probe = tmp.path().join("probe");
    let o = audit(&probe, &["--no-email".to_string()], None);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let rules: BTreeSet<(String, String)> = support::csv_rows(&probe.join("findings.csv"))
        .into_iter()
        .filter(|r| r["cluster_name"] == "aks-team-a")
        .map(|r| (r["rule_id"].clone(), r["cluster_id"].clone()))
        .collect();
    assert!(
        !rules.is_empty(),
        "team-a's cluster has findings to suppress"
    );
    let sup = tmp.path().join("suppressions.toml");
    let entries: String = rules
        .iter()
        .map(|(r, id)| format!("[[suppression]]\nrule = \"{r}\"\ncluster = \"{id}\"\njustification = \"accepted\"\nowner = \"{admin}\"\nexpires = \"2026-12-31\"\n\n"))
        .collect();
    std::fs::write(&sup, entries).unwrap();
    let night = |name: &str, now: &str, when: &str| {
        let mut c = bin();
        c.args(["--log-format", "json", "run", "--inventory"])
            .arg(fixture())
            .arg("--out")
            .arg(tmp.path().join(name))
            .arg("--state")
            .arg(&state)
            .arg("--suppressions")
            .arg(&sup)
            .args(["--allowed-domain", "contoso.com", "--admin", admin])
            .args(["--mail-when", when, "--now", now])
            .args(smtp.flags());
        c.env(PASSWORD_ENV, PASSWORD);
        let o = c.output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{name}: {}", stderr(&o));
        o
    };
    night("n1", "2026-06-01T02:00:00Z", "changed");
    let first = counts(&smtp.messages());
    for owner in OWNERS {
        assert_eq!(
            first.get(owner),
            Some(&1),
            "first night: {owner} in {first:?}"
        );
    }
    assert_eq!(first.get(admin), Some(&1), "{first:?}");

    let o = night("n2", "2026-06-02T02:00:00Z", "changed");
    assert_eq!(
        counts(&smtp.messages()),
        first,
        "an unchanged night sends nothing"
    );
    let log = stderr(&o);
    assert!(
        log.contains("\"mail_sent\":0") && log.contains("\"unchanged\":5"),
        "{log}"
    );

    night("n3", "2026-06-03T02:00:00Z", "action");
    let third = counts(&smtp.messages());
    for owner in OWNERS {
        let want = usize::from(owner != "team-a@contoso.com");
        assert_eq!(
            third[owner] - first[owner],
            want,
            "action: {owner} in {third:?}"
        );
    }
    assert_eq!(third[admin], 2, "the admin: the tenant has findings");

    night("n4", "2026-06-04T02:00:00Z", "always");
    let fourth = counts(&smtp.messages());
    for owner in OWNERS.iter().chain([&admin]) {
        assert_eq!(fourth[*owner], third[*owner] + 1, "always: {owner}");
    }
}
