//! Teams and Slack digests against a local HTTPS sink (tests/webhook/sink.py) that
//! checks each body as the services would: the Teams card against the pinned Adaptive
//! Card 1.5 JSON schema, Slack's Block Kit against its documented required fields and
//! limits. Retries, failures (exit 3, mail unaffected) and the URL kept secret.
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};

use serde_json::Value;

use crate::support::{self, bin, root, stderr};

/// The secret part of every webhook URL in these tests: it must appear nowhere.
const SECRET: &str = "sig=Wh-SECRET-7c1e9a";

struct Sink {
    child: Child,
    port: u16,
    out: PathBuf,
    ca: PathBuf,
    _dir: tempfile::TempDir,
}

impl Sink {
    fn start(fail_first: usize) -> Sink {
        Sink::start_with(fail_first, "")
    }

    /// A sink playing `script` (see tests/webhook/sink.py `--script`).
    fn scripted(script: &str) -> Sink {
        Sink::start_with(0, script)
    }

    fn start_with(fail_first: usize, script: &str) -> Sink {
        let dir = tempfile::tempdir().unwrap();
        let m = azure_emulator::tls::generate().unwrap();
        let chain = dir.path().join("chain.pem");
        let key = dir.path().join("leaf.key");
        let ca = dir.path().join("ca.pem");
        std::fs::write(&chain, format!("{}{}", m.leaf_pem, m.ca_pem)).unwrap();
        std::fs::write(&key, &m.leaf_key_pem).unwrap();
        std::fs::write(&ca, &m.ca_pem).unwrap();
        let out = dir.path().join("received.jsonl");
        let python = root().join("tests/.tools/venv/bin/python");
        assert!(
            python.exists(),
            "{} is missing: run scripts/setup-test-tools.sh",
            python.display()
        );
        let mut cmd = Command::new(python);
        cmd.arg(root().join("tests/webhook/sink.py"))
            .arg("--cert")
            .arg(&chain)
            .arg("--key")
            .arg(&key)
            .arg("--schema")
            .arg(root().join("tests/webhook/adaptive-card-1.5.schema.json"))
            .arg("--out")
            .arg(&out)
            .args(["--fail-first", &fail_first.to_string()])
            .args(["--script", script]);
        let (child, port) = crate::support::spawn_with_port(cmd, "tests/webhook/sink.py");
        Sink {
            child,
            port,
            out,
            ca,
            _dir: dir,
        }
    }

    fn url(&self, kind: &str) -> String {
        self.url_n(kind, "")
    }

    /// Another webhook on the same sink (`n` makes the signature differ: a second
    /// channel, or a regenerated URL).
    fn url_n(&self, kind: &str, n: &str) -> String {
        format!(
            "https://127.0.0.1:{}/{kind}/workflows/a1b2c3/triggers/manual/paths/invoke?{SECRET}{n}",
            self.port
        )
    }

    fn received(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn audit(out: &Path, sink: &Sink, extra: &[&str]) -> Output {
    let mut c = bin();
    c.args(["--log-format", "json", "run", "--inventory"])
        .arg(support::fixture("mail-owners"))
        .arg("--out")
        .arg(out)
        .arg("--ca-cert")
        .arg(&sink.ca)
        .args(extra);
    c.env_remove("AKS_AUDIT_WEBHOOKS");
    c.output().unwrap()
}

fn assert_secret_nowhere(o: &Output, dir: &Path) {
    let text = format!("{}{}", stderr(o), String::from_utf8_lossy(&o.stdout));
    assert!(!text.contains(SECRET), "a webhook URL was printed:\n{text}");
    assert!(
        !text.contains("/workflows/a1b2c3"),
        "a webhook path was printed:\n{text}"
    );
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let t = String::from_utf8_lossy(&std::fs::read(&p).unwrap()).to_string();
                assert!(!t.contains(SECRET), "{} holds a webhook URL", p.display());
            }
        }
    }
}

#[test]
fn a_teams_digest_is_a_valid_adaptive_card_with_counts_changes_and_the_report_link() {
    let sink = Sink::start(0);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("2026-06-01T020000Z");
    let o = audit(
        &out,
        &sink,
        &[
            "--webhook",
            &sink.url("teams"),
            "--webhook-format",
            "teams",
            "--report-url",
            "https://reports.contoso.com/aks/",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let got = sink.received();
    assert_eq!(got.len(), 1, "one digest per run: {got:?}");
    assert_eq!(got[0]["valid"], true, "{}", got[0]["errors"]);
    let card = &got[0]["body"]["attachments"][0]["content"];
    assert_eq!(card["version"], "1.5");
    let text = card.to_string();
    let report = support::json(&out.join("report.json"));
    let clusters = report["summary"]["clusters"].as_u64().unwrap();
    assert!(
        text.contains(&format!(
            "{{\"title\":\"Clusters\",\"value\":\"{clusters}\"}}"
        )),
        "{text}"
    );
    let high = report["summary"]["findings"]["high"].as_u64().unwrap();
    assert!(
        text.contains(&format!("{{\"title\":\"HIGH\",\"value\":\"{high}\"}}")),
        "{text}"
    );
    assert!(text.contains("first run"), "{text}");
    assert!(text.contains("Fix first"), "{text}");
    assert_eq!(
        card["actions"][0]["url"],
        "https://reports.contoso.com/aks/2026-06-01T020000Z/report.html"
    );
    let log = stderr(&o);
    assert!(log.contains("\"webhooks_sent\":1"), "{log}");
    assert!(
        log.contains("https://127.0.0.1"),
        "the host is named: {log}"
    );
    assert_secret_nowhere(&o, tmp.path());
}

#[test]
fn a_slack_digest_is_retried_after_429_and_503_and_is_valid_block_kit() {
    let sink = Sink::start(2);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let state = tmp.path().join("state").display().to_string();
    let night = |out: &Path, now: &str| {
        audit(
            out,
            &sink,
            &[
                "--webhook",
                &sink.url("slack"),
                "--webhook-format",
                "slack",
                "--state",
                &state,
                "--now",
                now,
            ],
        )
    };
    let o = night(&out, "2026-06-01T02:00:00Z");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let got = sink.received();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["valid"], true, "{}", got[0]["errors"]);
    let body = &got[0]["body"];
    assert_eq!(body["blocks"][0]["type"], "header");
    assert!(body["text"]
        .as_str()
        .unwrap()
        .starts_with("AKS identity audit"));
    assert!(body.to_string().contains("first run"), "{body}");
    let log = stderr(&o);
    assert_eq!(log.matches("will retry").count(), 2, "{log}");
    // The next night compares with the first: nothing changed.
    let o = night(&tmp.path().join("out2"), "2026-06-02T02:00:00Z");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let got = sink.received();
    assert_eq!(got.len(), 2);
    assert!(
        got[1]["body"].to_string().contains("0 new, 0 resolved"),
        "{}",
        got[1]["body"]
    );
    assert_secret_nowhere(&o, tmp.path());
}

#[test]
fn a_webhook_that_keeps_failing_exits_3_after_mail_went_out_and_names_only_its_host() {
    let sink = Sink::start(1000);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let cfg = tmp.path().join("audit.toml");
    std::fs::write(&cfg, "[webhooks]\nretries = 1\n").unwrap();
    let o = audit(
        &out,
        &sink,
        &[
            "--config",
            &cfg.display().to_string(),
            "--webhook",
            &sink.url("teams"),
            "--webhook-format",
            "teams",
            "--mail-from",
            "aks-audit@contoso.com",
        ],
    );
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let log = stderr(&o);
    assert!(log.contains("\"webhooks_failed\":1"), "{log}");
    assert!(log.contains("webhook: digest not delivered"), "{log}");
    // Mail was not held: every message is in the outbox (no transport configured).
    let outbox = std::fs::read_dir(out.join("outbox")).unwrap().count();
    assert!(outbox >= 5, "{outbox}");
    assert!(sink.received().is_empty(), "a refused post is not recorded");
    assert_secret_nowhere(&o, tmp.path());
}

/// The sink can fail: a card its schema refuses is answered 400 and recorded invalid.
#[test]
fn the_sink_refuses_a_card_the_adaptive_card_schema_refuses() {
    let sink = Sink::start(0);
    let pem = std::fs::read(&sink.ca).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let http = reqwest::Client::builder()
        .tls_certs_merge(reqwest::Certificate::from_pem_bundle(&pem).unwrap())
        .build()
        .unwrap();
    let post = |body: Value| {
        let http = http.clone();
        let url = sink.url("teams");
        rt.block_on(async move {
            http.post(url)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
    };
    let good = serde_json::json!({"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
        "content": {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlock", "text": "x"}]}}]});
    assert_eq!(post(good), 202);
    let bad = serde_json::json!({"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
        "content": {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "FactSet", "facts": [{"title": "no value"}]}]}}]});
    assert_eq!(post(bad), 400);
    let got = sink.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[1]["valid"], false);
}

/// `run` of one night with `--state`: `--now` and `--run-id` from `night` (1-based),
/// posting to `urls` in `format`; `env` sets e.g. a crash point.
fn night(
    tmp: &Path,
    sink: &Sink,
    n: u32,
    urls: &[String],
    format: &str,
    env: &[(&str, &str)],
) -> Output {
    let cfg = tmp.join("audit.toml");
    std::fs::write(&cfg, "[webhooks]\nretries = 1\n").unwrap();
    let mut c = bin();
    c.args(["--log-format", "json", "run", "--inventory"])
        .arg(support::fixture("mail-owners"))
        .arg("--out")
        .arg(tmp.join(format!("out{n}")))
        .arg("--ca-cert")
        .arg(&sink.ca)
        .arg("--config")
        .arg(&cfg)
        .arg("--state")
        .arg(tmp.join("state"))
        .args(["--now", &format!("2026-06-{n:02}T02:00:00Z")])
        .args(["--run-id", &format!("night-{n}")])
        .args(["--webhook-format", format]);
    for u in urls {
        c.args(["--webhook", u]);
    }
    c.env_remove("AKS_AUDIT_WEBHOOKS");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// The Teams card of a received post.
fn card(v: &Value) -> &Value {
    &v["body"]["attachments"][0]["content"]
}

/// The title line of a received Teams card.
fn card_title(v: &Value) -> String {
    card(v)["body"][0]["text"].as_str().unwrap().to_string()
}

/// Queue files left in the state folder.
fn queued(tmp: &Path) -> Vec<String> {
    let mut v = Vec::new();
    let q = tmp.join("state/delivery-queue");
    for run in std::fs::read_dir(&q).into_iter().flatten().flatten() {
        for f in std::fs::read_dir(run.path()).unwrap().flatten() {
            v.push(format!(
                "{}/{}",
                run.file_name().to_string_lossy(),
                f.file_name().to_string_lossy()
            ));
        }
    }
    v.sort();
    v
}

#[test]
fn dropped_connections_are_retried_and_the_digest_arrives_once() {
    let sink = Sink::scripted("drop,drop");
    let tmp = tempfile::tempdir().unwrap();
    let o = audit(
        &tmp.path().join("out"),
        &sink,
        &["--webhook", &sink.url("slack"), "--webhook-format", "slack"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let log = stderr(&o);
    assert_eq!(log.matches("will retry").count(), 2, "{log}");
    assert_eq!(sink.received().len(), 1);
    assert!(log.contains("\"webhooks_sent\":1"), "{log}");
    assert_secret_nowhere(&o, tmp.path());
}

/// The one double nothing can prevent: the webhook took the digest but its reply was
/// cut, so the client cannot know and posts again (Teams and Slack webhooks take no
/// idempotency key). Losing it would be worse; the README says so.
#[test]
fn a_lost_reply_is_posted_again_the_one_double_webhooks_cannot_prevent() {
    let sink = Sink::scripted("lost");
    let tmp = tempfile::tempdir().unwrap();
    let o = audit(
        &tmp.path().join("out"),
        &sink,
        &["--webhook", &sink.url("teams"), "--webhook-format", "teams"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let got = sink.received();
    assert_eq!(got.len(), 2, "delivered, reply lost, posted again");
    assert_eq!(got[0]["body"], got[1]["body"]);
}

/// The webhook is down for a night (503 twice: the retries are spent): exit 3, the
/// digest stays queued; the next night posts it first, marked delayed with its own
/// run's time, then its own; the night after posts only its own.
#[test]
fn a_digest_that_failed_stays_queued_and_the_next_run_posts_it_delayed_then_its_own_once() {
    let sink = Sink::scripted("503,503");
    let tmp = tempfile::tempdir().unwrap();
    let urls = [sink.url("teams")];
    let o = night(tmp.path(), &sink, 1, &urls, "teams", &[]);
    let log = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{log}");
    assert!(log.contains("\"webhooks_failed\":1"), "{log}");
    assert!(log.contains("stays queued for the next run"), "{log}");
    assert!(sink.received().is_empty());
    assert_eq!(queued(tmp.path()).len(), 1, "{:?}", queued(tmp.path()));

    let o = night(tmp.path(), &sink, 2, &urls, "teams", &[]);
    let log = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{log}");
    assert!(log.contains("\"webhooks_sent\":2"), "{log}");
    assert!(log.contains("\"webhooks_delayed\":1"), "{log}");
    let got = sink.received();
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got.iter().all(|g| g["valid"] == true), "{got:?}");
    assert!(card_title(&got[0]).starts_with("(delayed) "), "{}", got[0]);
    let first = card(&got[0]).to_string();
    assert!(
        first.contains("Delayed: the digest of the run at 2026-06-01 02:00 UTC"),
        "{first}"
    );
    assert!(!card_title(&got[1]).contains("delayed"), "{}", got[1]);
    assert!(card(&got[1])
        .to_string()
        .contains("Audited 2026-06-02 02:00 UTC"));
    assert!(queued(tmp.path()).is_empty(), "{:?}", queued(tmp.path()));

    let o = night(tmp.path(), &sink, 3, &urls, "teams", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let got = sink.received();
    assert_eq!(got.len(), 3, "only night 3's own: {got:?}");
    assert!(card(&got[2])
        .to_string()
        .contains("Audited 2026-06-03 02:00 UTC"));
    // The Job retried with the same run id posts nothing again.
    let o = night(tmp.path(), &sink, 3, &urls, "teams", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(sink.received().len(), 3);
    assert_secret_nowhere(&o, tmp.path());
}

/// A webhook URL whose signature expired or was revoked (401): not retried, the digest
/// waits, the error says to replace the URL; the next night, with the regenerated URL,
/// the waiting digest goes to it (delayed), then the night's own.
#[test]
fn an_expired_webhook_url_is_not_retried_and_the_waiting_digest_goes_to_its_replacement() {
    let sink = Sink::scripted("401");
    let tmp = tempfile::tempdir().unwrap();
    let o = night(tmp.path(), &sink, 1, &[sink.url("slack")], "slack", &[]);
    let log = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{log}");
    assert!(!log.contains("will retry"), "a 401 is not retried: {log}");
    assert!(log.contains("may have expired or been revoked"), "{log}");
    assert!(sink.received().is_empty());

    let new_url = sink.url_n("slack", "-regenerated");
    let o = night(tmp.path(), &sink, 2, &[new_url], "slack", &[]);
    let log = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{log}");
    let got = sink.received();
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got
        .iter()
        .all(|g| g["path"].as_str().unwrap().ends_with("-regenerated")));
    assert!(got[0]["body"]["text"]
        .as_str()
        .unwrap()
        .starts_with("(delayed) "));
    assert!(!got[1]["body"]["text"].as_str().unwrap().contains("delayed"));
    assert_secret_nowhere(&o, tmp.path());
}

/// A crash (abort, as SIGKILL) at each point of the run, with two channels: the next
/// night delivers what the crashed one owed, and every channel gets each night's digest
/// exactly once — except a night killed before its history was committed, which is
/// superseded (the next night reports its changes), as for mail.
#[test]
fn a_crash_at_any_point_loses_no_digest_and_posts_none_twice() {
    for (point, owed_by_night_1) in [
        ("after-outbox", 0),
        ("after-commit", 2),
        ("after-first-delivery", 2),
    ] {
        let sink = Sink::start(0);
        let tmp = tempfile::tempdir().unwrap();
        let urls = [sink.url_n("teams", "-a"), sink.url_n("teams", "-b")];
        let o = night(
            tmp.path(),
            &sink,
            1,
            &urls,
            "teams",
            &[("AKS_AUDIT_TEST_CRASH_AT", point)],
        );
        assert_ne!(o.status.code(), Some(0), "{point}: {}", stderr(&o));
        let before = sink.received().len();
        assert_eq!(
            before,
            usize::from(point == "after-first-delivery"),
            "{point}"
        );
        let o = night(tmp.path(), &sink, 2, &urls, "teams", &[]);
        assert_eq!(o.status.code(), Some(0), "{point}: {}", stderr(&o));
        let got = sink.received();
        // (channel, night) of every post.
        let mut seen: Vec<(String, String)> = got
            .iter()
            .map(|g| {
                let path = g["path"].as_str().unwrap();
                let channel = path[path.len() - 2..].to_string();
                let text = card(g).to_string();
                let night = if text.contains("2026-06-01 02:00 UTC") {
                    "1"
                } else {
                    "2"
                };
                (channel, night.to_string())
            })
            .collect();
        seen.sort();
        let mut want: Vec<(String, String)> =
            vec![("-a".into(), "2".into()), ("-b".into(), "2".into())];
        if owed_by_night_1 > 0 {
            want.push(("-a".into(), "1".into()));
            want.push(("-b".into(), "1".into()));
        }
        want.sort();
        assert_eq!(seen, want, "{point}");
        assert!(
            queued(tmp.path()).is_empty(),
            "{point}: {:?}",
            queued(tmp.path())
        );
    }
}
