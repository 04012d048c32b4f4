//! `--mail-via graph` against the emulator's Microsoft Graph `sendMail`: the same
//! outbox → ledger → sent as SMTP, with the job's credential (client secret here), the
//! token's audience checked, faults (429, 503/504, a dropped reply, a revoked token)
//! retried, and what cannot be delivered left in the outbox for the next run or
//! `resend`. Also Microsoft's Python Graph SDK (`msgraph-sdk`) against the endpoint.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine;
use serde_json::Value;

use crate::live::{serve, Emu, SECRET};
use crate::support::{self, bin, root, stderr};

const SENDER: &str = "aks-audit@contoso.com";
const ADMIN: &str = "sec@corp.example.com";
const OWNERS: [&str; 5] = [
    "alice@contoso.com",
    "bob@eu.contoso.com",
    "carol@contoso.com",
    "platform@contoso.com",
    "team-a@contoso.com",
];

/// The flags that send mail through `emu`'s Graph as [`SENDER`].
fn graph_flags(emu: &Emu) -> Vec<String> {
    let url = emu.emu.url();
    [
        "--mail-via",
        "graph",
        "--mail-from",
        &format!("AKS audit <{SENDER}>"),
        "--graph-endpoint",
        &url,
        "--authority-host",
        &url,
        "--ca-cert",
        &emu.ca.display().to_string(),
        "--auth",
        "client-secret",
        "--tenant-id",
        "tenant-1",
    ]
    .map(String::from)
    .to_vec()
}

/// The binary with the client-secret credential in its environment (and no other).
fn with_credential(args: &[String]) -> Command {
    let mut c = bin();
    c.args(["--log-format", "json"]).args(args);
    for k in [
        "AZURE_FEDERATED_TOKEN_FILE",
        "AZURE_AUTHORITY_HOST",
        "IDENTITY_ENDPOINT",
        "IDENTITY_HEADER",
        "MSI_ENDPOINT",
    ] {
        c.env_remove(k);
    }
    c.env("AZURE_CLIENT_ID", "auditor")
        .env("AZURE_CLIENT_SECRET", SECRET);
    c
}

/// `run` over the mail-owners fixture into `out`, mailing through `emu`.
async fn audit(emu: &Emu, out: &Path, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mut args: Vec<String> = vec![
        "run".into(),
        "--inventory".into(),
        support::fixture("mail-owners").display().to_string(),
        "--out".into(),
        out.display().to_string(),
        "--allowed-domain".into(),
        "contoso.com".into(),
        "--admin".into(),
        ADMIN.into(),
    ];
    args.extend(graph_flags(emu));
    args.extend(extra.iter().map(|s| s.to_string()));
    let mut c = with_credential(&args);
    for (k, v) in env {
        c.env(k, v);
    }
    tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap()
}

/// Delivered messages by recipient.
fn by_recipient(msgs: &[Value]) -> BTreeMap<String, Vec<&Value>> {
    let mut m: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for v in msgs {
        for r in v["message"]["toRecipients"].as_array().unwrap() {
            m.entry(r["emailAddress"]["address"].as_str().unwrap().to_string())
                .or_default()
                .push(v);
        }
    }
    m
}

fn counts(msgs: &[Value]) -> BTreeMap<String, usize> {
    by_recipient(msgs)
        .into_iter()
        .map(|(k, v)| (k, v.len()))
        .collect()
}

fn attachment(m: &Value, name: &str) -> Option<String> {
    m["message"]["attachments"]
        .as_array()?
        .iter()
        .find(|a| a["name"] == name)
        .map(|a| {
            let b = base64::engine::general_purpose::STANDARD
                .decode(a["contentBytes"].as_str().unwrap())
                .unwrap();
            String::from_utf8(b).unwrap()
        })
}

fn eml_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .filter(|n| n.ends_with(".eml"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn assert_no_secret(o: &Output, dir: &Path) {
    let text = format!("{}{}", stderr(o), String::from_utf8_lossy(&o.stdout));
    assert!(!text.contains(SECRET), "the client secret was printed");
    assert!(!text.contains("emu."), "an access token was printed");
    for entry in walk(dir) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(SECRET),
            "{} holds the client secret",
            entry.display()
        );
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn graph_mail_gives_every_owner_exactly_their_message_and_records_each_in_the_ledger() {
    let emu = serve(azure_emulator::Tenant::demo(), None, "").await;
    let out = emu.out("out");
    let state = emu.out("state");
    let o = audit(&emu, &out, &["--state", &state.display().to_string()], &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let (msgs, duplicates) = emu.emu.mail();
    assert_eq!(duplicates, 0);
    let got = counts(&msgs);
    let mut want: BTreeMap<String, usize> = OWNERS.iter().map(|o| (o.to_string(), 1)).collect();
    want.insert(ADMIN.into(), 1);
    assert_eq!(got, want, "one message per owner and the admin");
    let by = by_recipient(&msgs);
    for m in &msgs {
        // Sent as the mailbox, with the job's own identity; one recipient, no cc/bcc.
        assert_eq!(m["sender"], SENDER);
        assert_eq!(m["clientId"], "auditor");
        let msg = &m["message"];
        assert_eq!(msg["toRecipients"].as_array().unwrap().len(), 1);
        assert!(msg.get("ccRecipients").is_none() && msg.get("bccRecipients").is_none());
        assert_eq!(msg["body"]["contentType"], "HTML");
        assert!(msg["subject"]
            .as_str()
            .unwrap()
            .starts_with("AKS identity audit"));
        assert!(msg["internetMessageId"].as_str().unwrap().starts_with('<'));
    }
    // Alice's attachments hold her clusters and no one else's.
    let alice = by["alice@contoso.com"][0];
    let csv = attachment(alice, "clusters.csv").expect("clusters.csv attached");
    assert!(
        csv.contains("aks-alice-sp") && csv.contains("aks-shared"),
        "{csv}"
    );
    assert!(!csv.contains("aks-platform") && !csv.contains("aks-team-a"));
    // The tag with a line break and a Bcc: in it reached carol only, as data.
    let carol = &by["carol@contoso.com"][0]["message"];
    assert!(carol.to_string().contains("aks-crlf"));
    assert!(!got.contains_key("evil@x.com"));
    // The admin gets the report files attached.
    assert!(attachment(by[ADMIN][0], "unroutable.csv").is_some());
    // outbox → sent, every message recorded as accepted in the ledger.
    assert!(eml_names(&out.join("outbox")).is_empty());
    assert_eq!(eml_names(&out.join("sent")).len(), 6);
    let ledger = support::read(&state.join("mail-ledger.jsonl"));
    assert_eq!(
        ledger
            .lines()
            .filter(|l| l.contains("\"accepted\""))
            .count(),
        6,
        "{ledger}"
    );
    assert!(stderr(&o).contains("\"mail_sent\":6"), "{}", stderr(&o));
    assert_no_secret(&o, emu.dir.path());
    emu.emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn graph_throttling_outages_a_dropped_reply_and_a_revoked_token_are_retried_and_nothing_arrives_twice(
) {
    // Two 429s, two 5xx (503 with Retry-After, 504 without), two replies cut after the
    // message was delivered, and tokens that die after 2 s though they claim an hour.
    let emu = serve(
        azure_emulator::Tenant::demo(),
        None,
        "mail-429=2,mail-5xx=2,mail-drop=2,token-revoke=2,slow=700",
    )
    .await;
    let out = emu.out("out");
    let o = audit(&emu, &out, &["--smtp-retries", "6"], &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let (msgs, duplicates) = emu.emu.mail();
    let got = counts(&msgs);
    assert_eq!(got.len(), 6, "{got:?}");
    assert!(
        got.values().all(|n| *n == 1),
        "a message arrived twice: {got:?}"
    );
    // The two cut replies were retried: Graph got those messages again and (by their
    // internetMessageId, as Exchange's duplicate detection does) did not deliver them.
    assert_eq!(duplicates, 2);
    let st = emu.emu.stats();
    assert!(st.throttled_429 >= 2 && st.errors_5xx >= 2, "{st:?}");
    assert!(
        st.unauthorized_401 >= 1,
        "the revoked token was never refused: {st:?}"
    );
    assert!(st.tokens_issued >= 2, "no new token after the 401: {st:?}");
    assert!(eml_names(&out.join("outbox")).is_empty());
    assert_no_secret(&o, emu.dir.path());
    emu.emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn graph_down_leaves_every_message_in_the_outbox_exit_3_then_the_next_run_sends_them_once() {
    let down = serve(azure_emulator::Tenant::demo(), None, "mail-5xx=1000").await;
    let state = down.out("state");
    let state_s = state.display().to_string();
    let n1 = down.out("n1");
    let o = audit(
        &down,
        &n1,
        &[
            "--state",
            &state_s,
            "--smtp-retries",
            "1",
            "--now",
            "2026-06-01T02:00:00Z",
        ],
        &[],
    )
    .await;
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(down.emu.mail().0.is_empty());
    assert_eq!(
        eml_names(&n1.join("outbox")).len(),
        6,
        "all stay in the outbox"
    );
    let last = stderr(&o);
    assert!(last.contains("undelivered"), "{last}");
    down.emu.shutdown().await;

    // The next night, Graph is back: the first night's messages go out first (the
    // ledger says they are owed), then tonight's; each message exactly once.
    let up = serve(azure_emulator::Tenant::demo(), None, "").await;
    let n2 = up.out("n2");
    let o = audit(
        &up,
        &n2,
        &["--state", &state_s, "--now", "2026-06-02T02:00:00Z"],
        &[],
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let (msgs, duplicates) = up.emu.mail();
    assert_eq!(duplicates, 0);
    let got = counts(&msgs);
    assert!(
        got.values().all(|n| *n == 2),
        "each got both nights': {got:?}"
    );
    assert_eq!(got.len(), 6);
    assert!(eml_names(&n1.join("outbox")).is_empty());
    assert_eq!(eml_names(&n1.join("sent")).len(), 6);
    // A resend of the first night now has nothing left to send.
    let mut args = vec!["resend".to_string(), n1.display().to_string()];
    args.extend(graph_flags(&up));
    let mut c = with_credential(&args);
    let o = tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("sent 0, undelivered 0"));
    assert_eq!(up.emu.mail().0.len(), 12);
    up.emu.shutdown().await;
}

/// Exchange refuses the sender (outside the application's scope): not retried, every
/// message stays in the outbox, exit 3, and the error says what to grant.
#[tokio::test(flavor = "multi_thread")]
async fn a_sender_outside_the_apps_scope_is_refused_once_and_the_error_says_what_to_grant() {
    let emu = serve(azure_emulator::Tenant::demo(), None, "mail-forbidden").await;
    let out = emu.out("out");
    let o = audit(&emu, &out, &[], &[]).await;
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let log = stderr(&o);
    assert!(
        log.contains("ErrorAccessDenied") && log.contains("Mail.Send"),
        "{log}"
    );
    assert!(
        log.contains("\"requests\":6,\"retries\":0"),
        "a refusal is not retried: {log}"
    );
    assert_eq!(eml_names(&out.join("outbox")).len(), 6);
    assert!(emu.emu.mail().0.is_empty());
    emu.emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn resend_through_graph_delivers_what_a_failed_run_left() {
    let down = serve(azure_emulator::Tenant::demo(), None, "mail-429=1000").await;
    let out = down.out("out");
    let o = audit(&down, &out, &["--smtp-retries", "0"], &[]).await;
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_eq!(eml_names(&out.join("outbox")).len(), 6);
    down.emu.shutdown().await;
    let up = serve(azure_emulator::Tenant::demo(), None, "").await;
    let mut args = vec!["resend".to_string(), out.display().to_string()];
    args.extend(graph_flags(&up));
    args.extend(["--admin", ADMIN, "--allowed-domain", "contoso.com"].map(String::from));
    let mut c = with_credential(&args);
    let o = tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("sent 6, undelivered 0"));
    assert_eq!(counts(&up.emu.mail().0).len(), 6);
    assert!(eml_names(&out.join("outbox")).is_empty());
    up.emu.shutdown().await;
}

/// A crash at every stage boundary (abort, as SIGKILL would) with Graph: the next run
/// sends what the crashed one owed; every owner gets exactly one message, even for
/// the messages in flight when the process died (their internetMessageId repeats).
#[tokio::test(flavor = "multi_thread")]
async fn a_crash_at_any_stage_loses_no_graph_notification_and_delivers_none_twice() {
    for point in [
        "after-reports",
        "after-outbox",
        "after-commit",
        "after-first-send",
    ] {
        let emu = serve(azure_emulator::Tenant::demo(), None, "").await;
        let state = emu.out("state").display().to_string();
        let o = audit(
            &emu,
            &emu.out("n1"),
            &[
                "--state",
                &state,
                "--no-always-send",
                "--now",
                "2026-06-01T02:00:00Z",
            ],
            &[("AKS_AUDIT_TEST_CRASH_AT", point)],
        )
        .await;
        assert_eq!(
            o.status.code(),
            None,
            "{point}: not aborted: {}",
            stderr(&o)
        );
        let o = audit(
            &emu,
            &emu.out("n2"),
            &[
                "--state",
                &state,
                "--no-always-send",
                "--now",
                "2026-06-02T02:00:00Z",
            ],
            &[],
        )
        .await;
        assert_eq!(o.status.code(), Some(0), "{point}: {}", stderr(&o));
        let got = counts(&emu.emu.mail().0);
        for owner in OWNERS {
            assert_eq!(got.get(owner), Some(&1), "{point}: {owner} in {got:?}");
        }
        assert!(got.contains_key(ADMIN), "{point}: {got:?}");
        emu.emu.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn graph_mail_needs_a_mailbox_and_refuses_a_conflicting_smtp_server() {
    let o = bin()
        .args([
            "run",
            "--inventory",
            &support::fixture("mail-owners").display().to_string(),
            "--mail-via",
            "graph",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--mail-via") && stderr(&o).contains("--mail-from"),
        "{}",
        stderr(&o)
    );
    let o = bin()
        .args([
            "run",
            "--inventory",
            &support::fixture("mail-owners").display().to_string(),
            "--mail-via",
            "graph",
            "--mail-from",
            SENDER,
            "--smtp",
            "smtp://127.0.0.1:2525?tls=none",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--smtp"), "{}", stderr(&o));
}

/// The emulator's side of the contract, spoken to directly (each check that needs a
/// valid token takes a fresh one: tokens live 5 s here, and a loaded machine can take
/// longer than that to send megabytes): a token for ARM is refused
/// (wrong audience), an expired one is refused as Graph refuses it, a message with a
/// header smuggled into an address is refused, a good one is accepted (202) and listed.
#[tokio::test(flavor = "multi_thread")]
async fn the_emulator_checks_the_audience_expiry_and_the_message() {
    let emu = serve(azure_emulator::Tenant::demo(), None, "token-expiry=5").await;
    let url = emu.emu.url();
    let http = emu.http();
    let token = |scope: &'static str| emu.token(&http, scope);
    let send_sized = |token: String, to: &'static str, content: String| {
        let http = http.clone();
        let url = url.clone();
        async move {
            let body = serde_json::json!({"message": {"subject": "s",
                "body": {"contentType": "Text", "content": content},
                "toRecipients": [{"emailAddress": {"address": to}}]}});
            let r = http
                .post(format!("{url}/v1.0/users/{SENDER}/sendMail"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let v: Value = r.json().await.unwrap_or(Value::Null);
            (
                status,
                v["error"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        }
    };
    let send = |token: String, to: &'static str| send_sized(token, to, "hello".to_string());
    let arm = token("https://management.azure.com/.default").await;
    let (status, why) = send(arm, "a@contoso.com").await;
    assert_eq!(
        (status, why.as_str()),
        (401, "Access token validation failure. Invalid audience.")
    );
    let (status, why) = send(
        token("https://graph.microsoft.com/.default").await,
        "a@contoso.com\r\nBcc: evil@x.com",
    )
    .await;
    assert_eq!(status, 400, "{why}");
    // 3 MB is taken; over 4 MB is Graph's 413.
    let (status, why) = send_sized(
        token("https://graph.microsoft.com/.default").await,
        "big@contoso.com",
        "x".repeat(3 << 20),
    )
    .await;
    assert_eq!(status, 202, "{why}");
    let (status, why) = send_sized(
        token("https://graph.microsoft.com/.default").await,
        "big@contoso.com",
        "x".repeat(5 << 20),
    )
    .await;
    assert_eq!(
        (status, why.as_str()),
        (413, "The maximum request length supported is 4MB.")
    );
    let graph = token("https://graph.microsoft.com/.default").await;
    let (status, _) = send(graph.clone(), "a@contoso.com").await;
    assert_eq!(status, 202);
    tokio::time::sleep(std::time::Duration::from_millis(5200)).await;
    let (status, why) = send(graph, "a@contoso.com").await;
    assert_eq!(
        (status, why.as_str()),
        (401, "Lifetime validation failed, the token is expired.")
    );
    let listed: Value = http
        .get(format!("{url}/_emulator/mail"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["value"].as_array().unwrap().len(), 2, "{listed}");
    assert_eq!(listed["value"][1]["message"]["body"]["content"], "hello");
    emu.emu.shutdown().await;
}

/// Microsoft's own Python Graph SDK (msgraph-sdk, with azure-identity) sends a message
/// with an attachment through the emulator, and the test reads it back; an invalid
/// message comes back to the SDK as Graph's error (an ODataError with Graph's code).
#[tokio::test(flavor = "multi_thread")]
async fn microsoft_graph_python_sdk_sends_mail_through_the_emulator() {
    let python = root().join("tests/.tools/venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/setup-test-tools.sh",
        python.display()
    );
    let emu = serve(azure_emulator::Tenant::demo(), None, "").await;
    let url = emu.emu.url();
    let ca = emu.ca.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(root().join("tests/sdk/graph_mail_python_sdk.py"))
            .arg(&url)
            .arg(&ca)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python Graph SDK failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(stdout.trim().lines().last().unwrap()).unwrap();
    assert_eq!(v["error_code"], "ErrorInvalidRecipients", "{v}");
    let (msgs, _) = emu.emu.mail();
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    let m = &msgs[0];
    assert_eq!(m["sender"], SENDER);
    assert_eq!(m["message"]["subject"], "Sent by msgraph-sdk");
    assert_eq!(
        m["message"]["toRecipients"][0]["emailAddress"]["address"],
        "owner@contoso.com"
    );
    assert_eq!(
        attachment(m, "findings.csv").as_deref(),
        Some("cluster,rule\naks-1,AKSMI001\n")
    );
    // What the SDK read back through the listing is the same message.
    assert_eq!(v["listed"], 1, "{v}");
    emu.emu.shutdown().await;
}

/// An admin's message over Graph's 4 MB request limit (the report files of 1,000
/// clusters): it is delivered without its largest attachments, and its body names each
/// file left out and where it is; owners' messages keep theirs.
#[tokio::test(flavor = "multi_thread")]
async fn an_admin_message_over_graphs_4_mb_leaves_out_the_largest_files_and_says_where_they_are() {
    let tenant = crate::live::tenant_dir(20, 1000, 5000);
    let emu = serve(azure_emulator::Tenant::demo(), None, "").await;
    let out = emu.out("out");
    let mut args: Vec<String> = vec![
        "run".into(),
        "--inventory".into(),
        tenant.path().display().to_string(),
        "--out".into(),
        out.display().to_string(),
        "--admin".into(),
        "sec@contoso.example".into(),
        "--allowed-domain".into(),
        "contoso.example".into(),
    ];
    args.extend(graph_flags(&emu));
    let mut c = with_credential(&args);
    let o = tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap();
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("\"mail_undelivered\":0"),
        "{}",
        stderr(&o)
    );
    let (msgs, _) = emu.emu.mail();
    let by = by_recipient(&msgs);
    let admin = &by["sec@contoso.example"][0]["message"];
    let request = serde_json::json!({"message": admin, "saveToSentItems": true});
    assert!(
        serde_json::to_vec(&request).unwrap().len() <= 4 * 1024 * 1024,
        "over Graph's limit"
    );
    let body = admin["body"]["content"].as_str().unwrap();
    assert!(
        body.contains("Microsoft Graph accepts at most 4 MB"),
        "{body}"
    );
    let attached: Vec<&str> = admin["attachments"]
        .as_array()
        .map(|a| a.iter().map(|x| x["name"].as_str().unwrap()).collect())
        .unwrap_or_default();
    // Every report file of the folder is either attached or named with its path.
    let mut left_out = 0;
    for name in ["report.html", "clusters.csv", "findings.csv"] {
        let path = out.join(name).display().to_string();
        if !attached.contains(&name) {
            left_out += 1;
            assert!(
                body.contains(&path),
                "{name} neither attached nor named: {body}"
            );
        }
    }
    assert!(left_out >= 1, "nothing was left out: {attached:?}");
    assert!(attached.contains(&"unroutable.csv"), "{attached:?}");
    // Owners' messages are small and keep their CSVs.
    let owner = by
        .iter()
        .find(|(k, _)| k.starts_with("owner") || k.starts_with("team"))
        .map(|(_, v)| v[0])
        .unwrap();
    assert!(attachment(owner, "findings.csv").is_some());
    emu.emu.shutdown().await;
}

/// Microsoft's own Python Graph SDK reads a service principal's groups through the
/// emulator's `transitiveMemberOf` (the SDK's `graph.group` cast with `$select`,
/// `$count`, `$top` and `ConsistencyLevel`), page by page through `@odata.nextLink`,
/// and gets Graph's error code when the header is missing.
#[tokio::test(flavor = "multi_thread")]
async fn microsoft_graph_python_sdk_reads_group_membership_from_the_emulator() {
    // The demo's aks-prod-batch control plane: in two groups.
    const SP: &str = "f0000000-0017-4017-8017-000000000017";
    let python = root().join("tests/.tools/venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/setup-test-tools.sh",
        python.display()
    );
    let emu = serve(azure_emulator::Tenant::demo(), None, "").await;
    let url = emu.emu.url();
    let ca = emu.ca.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(root().join("tests/sdk/graph_groups_python_sdk.py"))
            .arg(&url)
            .arg(&ca)
            .arg(SP)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python Graph SDK failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(stdout.trim().lines().last().unwrap()).unwrap();
    assert_eq!(
        v["groups"],
        serde_json::json!([
            "9d2c4e6a-8b0d-4f2e-9a1c-3e5f7a9b0001",
            "9d2c4e6a-8b0d-4f2e-9a1c-3e5f7a9b0003"
        ]),
        "{v}"
    );
    assert_eq!(v["pages"], 2, "{v}");
    assert_eq!(v["count"], 2, "{v}");
    assert_eq!(v["error_code"], "Request_UnsupportedQuery", "{v}");
    assert_eq!(
        emu.emu.stats().requests_per_path["graph/transitiveMemberOf"],
        3
    );
    emu.emu.shutdown().await;
}
