//! `--log-analytics DCE --dcr-id ID --stream NAME` against the emulator's Logs
//! Ingestion API: every cluster and finding row arrives once across gzip batches with a
//! token for `https://monitor.azure.com`; 429 and 503 are retried; a persistent failure
//! exits 3 and mail still goes; a reply lost after the rows were stored makes the batch
//! go again (the API has no idempotency key) and `RowId` tells the copies apart. The
//! endpoint itself: audience, 413 over 1 MB, 400 for a body that is not an array; and
//! Microsoft's Python `azure-monitor-ingestion` client uploads through it.
use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use crate::live::{serve, Emu, SECRET};
use crate::support::{self, bin, root, stderr};

const DCR: &str = "dcr-00112233445566778899aabbccddeeff";
const STREAM: &str = "Custom-AksIdentityAudit";

/// `run` over the mail-owners fixture into `out`, sending rows to `emu`; mail goes
/// through `emu`'s Graph when `mail` is set.
async fn audit(emu: &Emu, out: &Path, extra: &[&str], env: &[(&str, &str)], mail: bool) -> Output {
    let url = emu.emu.url();
    let mut c = bin();
    c.args(["--log-format", "json", "run", "--inventory"])
        .arg(support::fixture("mail-owners"))
        .arg("--out")
        .arg(out)
        .args(["--log-analytics", &url, "--dcr-id", DCR, "--stream", STREAM])
        .args(["--authority-host", &url, "--ca-cert"])
        .arg(&emu.ca)
        .args(["--auth", "client-secret", "--tenant-id", "tenant-1"])
        .args(extra);
    if mail {
        c.args([
            "--mail-via",
            "graph",
            "--mail-from",
            "aks-audit@contoso.com",
            "--graph-endpoint",
            &url,
            "--allowed-domain",
            "contoso.com",
            "--admin",
            "sec@contoso.com",
        ]);
    }
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
    for (k, v) in env {
        c.env(k, v);
    }
    tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap()
}

/// Clusters and findings of the run's report.json.
fn expected_rows(out: &Path) -> (usize, usize) {
    let r = support::json(&out.join("report.json"));
    (
        r["clusters"].as_array().unwrap().len(),
        r["findings"].as_array().unwrap().len(),
    )
}

fn row_ids(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .map(|r| r["row"]["RowId"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_row_arrives_once_across_gzip_batches_with_a_monitor_token() {
    let emu = serve(azure_emulator::Tenant::demo(), None, "").await;
    let out = emu.out("out");
    let o = audit(
        &emu,
        &out,
        &["--run-id", "nightly-42"],
        &[("AKS_AUDIT_TEST_LOGS_BATCH_BYTES", "4096")],
        false,
    )
    .await;
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", stderr(&o));
    let (clusters, findings) = expected_rows(&out);
    assert!(clusters > 0 && findings > 0);
    let (rows, batches) = emu.emu.logs();
    assert_eq!(rows.len(), clusters + findings, "every row, none twice");
    let ids = row_ids(&rows);
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), ids.len());
    assert!(batches >= 3, "small batches forced: {batches}");
    let listed: Value = reqwest::Client::builder()
        .tls_certs_merge(reqwest::Certificate::from_pem_bundle(emu.emu.ca_pem.as_bytes()).unwrap())
        .build()
        .unwrap()
        .get(format!("{}/_emulator/logs", emu.emu.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["gzipBatches"], listed["batches"], "every batch gzip");
    assert_eq!(listed["value"].as_array().unwrap().len(), rows.len());
    let kinds = |k: &str| rows.iter().filter(|r| r["row"]["Kind"] == k).count();
    assert_eq!((kinds("cluster"), kinds("finding")), (clusters, findings));
    for r in &rows {
        assert_eq!(r["dcr"], DCR);
        assert_eq!(r["stream"], STREAM, "the stream's case kept");
        assert_eq!(r["clientId"], "auditor", "the job's own credential");
        assert_eq!(r["row"]["RunId"], "nightly-42");
        assert!(r["row"]["TimeGenerated"].as_str().unwrap().ends_with('Z'));
    }
    // A finding row names its cluster's owner.
    let f = rows
        .iter()
        .find(|r| r["row"]["Kind"] == "finding" && r["row"]["ClusterName"] == "aks-alice-sp")
        .expect("a finding of aks-alice-sp");
    assert!(
        f["row"]["Owner"]
            .as_str()
            .unwrap()
            .eq_ignore_ascii_case("alice@contoso.com"),
        "{f}"
    );
    assert!(
        stderr(&o).contains("\"log_analytics_rows_failed\":0"),
        "{}",
        stderr(&o)
    );
    emu.emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn throttling_and_503_are_retried_and_nothing_is_lost_or_doubled() {
    let emu = serve(
        azure_emulator::Tenant::demo(),
        None,
        "logs-429=2,logs-5xx=2",
    )
    .await;
    let out = emu.out("out");
    let o = audit(
        &emu,
        &out,
        &[],
        &[("AKS_AUDIT_TEST_LOGS_BATCH_BYTES", "8192")],
        false,
    )
    .await;
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", stderr(&o));
    let (clusters, findings) = expected_rows(&out);
    let (rows, _) = emu.emu.logs();
    assert_eq!(rows.len(), clusters + findings);
    let stats = emu.emu.stats();
    assert_eq!(stats.throttled_429, 2);
    assert_eq!(stats.errors_5xx, 2);
    let log = stderr(&o);
    assert!(log.contains("\"retries\":4"), "{log}");
    emu.emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_persistent_failure_exits_3_and_mail_is_still_sent() {
    let emu = serve(azure_emulator::Tenant::demo(), None, "logs-5xx=1000").await;
    let out = emu.out("out");
    let config = emu.out("audit.toml");
    std::fs::write(&config, "[log_analytics]\nretries = 1\n").unwrap();
    let o = audit(
        &emu,
        &out,
        &["--config", &config.display().to_string()],
        &[("AKS_AUDIT_TEST_LOGS_BATCH_BYTES", "8192")],
        true,
    )
    .await;
    let log = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{log}");
    let (clusters, findings) = expected_rows(&out);
    assert!(
        log.contains(&format!(
            "\"log_analytics_rows_failed\":{}",
            clusters + findings
        )),
        "{log}"
    );
    assert!(log.contains("\"mail_undelivered\":0"), "{log}");
    let (rows, _) = emu.emu.logs();
    assert!(rows.is_empty());
    let (msgs, _) = emu.emu.mail();
    assert!(msgs.len() >= 2, "owners and admin mailed: {}", msgs.len());
    // After the first batch's retries, the rest are not tried: two attempts in all.
    assert_eq!(emu.emu.stats().requests_per_path["logs/ingest"], 2);
    assert!(log.contains("log analytics: batch not accepted"), "{log}");
    emu.emu.shutdown().await;
}

/// A token revoked mid-run (it claimed an hour, the service rejects it after 1 s):
/// the 401 `ExpiredAuthenticationToken` gets one new token and the batch goes; no row
/// is lost or doubled.
#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_token_is_renewed_and_every_row_still_arrives_once() {
    let emu = serve(
        azure_emulator::Tenant::demo(),
        None,
        "token-revoke=1,logs-429=1",
    )
    .await;
    let out = emu.out("out");
    let o = audit(&emu, &out, &[], &[], false).await;
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", stderr(&o));
    let (clusters, findings) = expected_rows(&out);
    let (rows, _) = emu.emu.logs();
    assert_eq!(rows.len(), clusters + findings);
    let stats = emu.emu.stats();
    assert!(stats.unauthorized_401 >= 1, "{stats:?}");
    assert!(stats.tokens_issued >= 2, "{stats:?}");
    emu.emu.shutdown().await;
}

/// The API has no idempotency key: a reply cut after the rows were stored makes the
/// client send the batch again, and the rows are stored twice. Each copy has the same
/// `RowId`, which is what the README's queries deduplicate on.
#[tokio::test(flavor = "multi_thread")]
async fn a_lost_reply_stores_a_batch_twice_and_row_id_tells_the_copies() {
    let emu = serve(azure_emulator::Tenant::demo(), None, "logs-drop=1").await;
    let out = emu.out("out");
    let o = audit(
        &emu,
        &out,
        &[],
        &[("AKS_AUDIT_TEST_LOGS_BATCH_BYTES", "8192")],
        false,
    )
    .await;
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", stderr(&o));
    let (clusters, findings) = expected_rows(&out);
    let (rows, _) = emu.emu.logs();
    let ids = row_ids(&rows);
    let distinct: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), clusters + findings, "every row arrived");
    assert!(
        rows.len() > distinct.len(),
        "the first batch was stored twice"
    );
    // Only the batch whose reply was lost went again: the doubled rows are the first
    // ones, each stored twice, and the emulator took one batch more than the run sent.
    let doubled = rows.len() - distinct.len();
    assert_eq!(ids[..doubled], ids[doubled..2 * doubled], "{ids:?}");
    assert_eq!(
        ids[doubled..].iter().collect::<BTreeSet<_>>().len(),
        ids.len() - doubled
    );
    let (_, stored_batches) = emu.emu.logs();
    let log = stderr(&o);
    let sent: u64 = log
        .lines()
        .find(|l| l.contains("log analytics: rows sent"))
        .and_then(|l| serde_json::from_str::<Value>(l).ok())
        .and_then(|v| v["batches_sent"].as_u64())
        .expect("the rows sent line");
    assert_eq!(stored_batches, sent + 1, "{log}");
    emu.emu.shutdown().await;
}

/// The endpoint on its own: a Graph token is refused (audience), a body that is not an
/// array is a 400, over 1 MB (compressed or not) a 413; plain JSON is taken too.
#[tokio::test(flavor = "multi_thread")]
async fn the_ingestion_endpoint_checks_audience_shape_and_size() {
    let emu = serve(azure_emulator::Tenant::demo(), None, "").await;
    let url = emu.emu.url();
    let http = emu.http();
    let token = |scope: &'static str| emu.token(&http, scope);
    let ingest = format!("{url}/dataCollectionRules/{DCR}/streams/{STREAM}?api-version=2023-01-01");
    let post = |token: String, body: Vec<u8>, gzip: bool| {
        let http = http.clone();
        let ingest = ingest.clone();
        async move {
            let mut rb = http
                .post(ingest)
                .bearer_auth(token)
                .header("content-type", "application/json");
            if gzip {
                rb = rb.header("content-encoding", "gzip");
            }
            let r = rb.body(body).send().await.unwrap();
            let status = r.status().as_u16();
            let v: Value = r.json().await.unwrap_or(Value::Null);
            (
                status,
                v["error"]["code"].as_str().unwrap_or_default().to_string(),
            )
        }
    };
    let gz = |b: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    };
    let graph = token("https://graph.microsoft.com/.default").await;
    let monitor = token("https://monitor.azure.com//.default").await;
    assert_eq!(
        post(graph, br#"[{"a":1}]"#.to_vec(), false).await,
        (401, "InvalidAudience".into())
    );
    assert_eq!(
        post(monitor.clone(), br#"[{"a":1}]"#.to_vec(), false)
            .await
            .0,
        204
    );
    assert_eq!(
        post(monitor.clone(), gz(br#"[{"a":2}]"#), true).await.0,
        204
    );
    assert_eq!(
        post(monitor.clone(), br#"{"a":1}"#.to_vec(), false).await,
        (400, "InvalidPayload".into())
    );
    assert_eq!(
        post(monitor.clone(), br#"[1,2]"#.to_vec(), false).await,
        (400, "InvalidPayload".into())
    );
    // 1.5 MB of JSON compresses to a few KB: the uncompressed size still counts.
    let big = format!(r#"[{{"a":"{}"}}]"#, "x".repeat(1_500_000));
    assert_eq!(
        post(monitor.clone(), gz(big.as_bytes()), true).await,
        (413, "ContentLengthLimitExceeded".into())
    );
    assert_eq!(
        post(monitor, big.into_bytes(), false).await,
        (413, "ContentLengthLimitExceeded".into())
    );
    let (rows, batches) = emu.emu.logs();
    assert_eq!((rows.len(), batches), (2, 2));
    assert_eq!(rows[1]["row"]["a"], 2);
    emu.emu.shutdown().await;
}

/// Microsoft's own Python client (`azure-monitor-ingestion` with azure-identity)
/// uploads rows through the emulator's endpoint (it chunks and gzips them itself), and
/// the test reads them back; a token for another audience comes back to it as an error.
#[tokio::test(flavor = "multi_thread")]
async fn microsoft_python_ingestion_client_uploads_through_the_emulator() {
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
            .arg(root().join("tests/sdk/logs_ingestion_python_sdk.py"))
            .arg(&url)
            .arg(&ca)
            .arg(DCR)
            .arg(STREAM)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python ingestion client failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(stdout.trim().lines().last().unwrap()).unwrap();
    let (rows, batches) = emu.emu.logs();
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(rows[0]["stream"], STREAM);
    assert_eq!(rows[0]["clientId"], "sdk-check");
    assert_eq!(rows[2]["row"]["RuleId"], "AKSMI001");
    assert_eq!(batches, 1);
    assert_eq!(v["listed"], 3, "{v}");
    assert_eq!(v["wrong_audience_status"], 401, "{v}");
    emu.emu.shutdown().await;
}

/// The README's table and DCR definitions declare exactly the columns the audit sends,
/// in its order and with its types.
#[test]
fn the_readmes_table_and_rule_declare_the_columns_sent() {
    let readme = support::read(&root().join("README.md"));
    let section = &readme[readme
        .find("## Log Analytics (Sentinel, Workbooks)")
        .unwrap()..];
    let section = &section[..section.find("\n## ").unwrap()];
    let blocks: Vec<Value> = section
        .split("```json\n")
        .skip(1)
        .map(|b| serde_json::from_str(&b[..b.find("```").unwrap()]).unwrap())
        .collect();
    assert_eq!(blocks.len(), 2);
    let want: Vec<(String, String)> = aks_identity_audit::log_analytics::COLUMNS
        .iter()
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect();
    let cols = |v: &Value| -> Vec<(String, String)> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap().to_string(),
                    c["type"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    assert_eq!(cols(&blocks[0]["properties"]["schema"]["columns"]), want);
    let dcr = &blocks[1]["properties"];
    assert_eq!(cols(&dcr["streamDeclarations"][STREAM]["columns"]), want);
    assert_eq!(dcr["dataFlows"][0]["streams"][0], STREAM);
    assert_eq!(
        dcr["dataFlows"][0]["outputStream"],
        format!(
            "Custom-{}",
            blocks[0]["properties"]["schema"]["name"].as_str().unwrap()
        )
    );
}

/// One night with `--state`: `--now`, `--run-id night-<n>`, small batches.
async fn night(emu: &Emu, tmp: &Path, n: u32, env: &[(&str, &str)]) -> Output {
    let cfg = tmp.join("audit.toml");
    std::fs::write(&cfg, "[log_analytics]\nretries = 1\n").unwrap();
    let mut all = vec![("AKS_AUDIT_TEST_LOGS_BATCH_BYTES", "8192")];
    all.extend_from_slice(env);
    audit(
        emu,
        &tmp.join(format!("out{n}")),
        &[
            "--state",
            &tmp.join("state").display().to_string(),
            "--config",
            &cfg.display().to_string(),
            "--now",
            &format!("2026-06-{n:02}T02:00:00Z"),
            "--run-id",
            &format!("night-{n}"),
        ],
        &all,
        false,
    )
    .await
}

/// Rows of `run_id` stored by the emulator, and how many distinct `RowId`s they have.
fn stored(emu: &Emu, run_id: &str) -> (usize, usize) {
    let (rows, _) = emu.emu.logs();
    let ids: Vec<String> = rows
        .iter()
        .filter(|r| r["row"]["RunId"] == run_id)
        .map(|r| r["row"]["RowId"].as_str().unwrap().to_string())
        .collect();
    let distinct = ids.iter().collect::<BTreeSet<_>>().len();
    (ids.len(), distinct)
}

/// Batch files waiting in the state folder's delivery queue.
fn queued_batches(tmp: &Path) -> usize {
    let q = tmp.join("state/delivery-queue");
    std::fs::read_dir(&q)
        .into_iter()
        .flatten()
        .flatten()
        .map(|run| {
            std::fs::read_dir(run.path())
                .unwrap()
                .flatten()
                .filter(|f| f.file_name().to_string_lossy().starts_with("logs-"))
                .count()
        })
        .sum()
}

/// With `--state` the rows are queued. A night the workspace keeps failing (5xx, the
/// retries spent) exits 3 and keeps every batch; the next night, the workspace back,
/// sends them first, then its own: every row of both nights exactly once. The night
/// after sends only its own.
#[tokio::test(flavor = "multi_thread")]
async fn rows_a_failed_night_could_not_send_wait_in_the_queue_and_arrive_once_the_next_night() {
    let tmp = tempfile::tempdir().unwrap();
    let down = serve(azure_emulator::Tenant::demo(), None, "logs-5xx=1000").await;
    let o = night(&down, tmp.path(), 1, &[]).await;
    let log = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{log}");
    assert!(log.contains("stay queued for the next run"), "{log}");
    assert!(down.emu.logs().0.is_empty());
    let batches = queued_batches(tmp.path());
    assert!(batches >= 2, "{batches}");
    down.emu.shutdown().await;

    let up = serve(azure_emulator::Tenant::demo(), None, "").await;
    let o = night(&up, tmp.path(), 2, &[]).await;
    let log = stderr(&o);
    assert!(matches!(o.status.code(), Some(0 | 1)), "{log}");
    assert!(log.contains("\"log_analytics_rows_failed\":0"), "{log}");
    let (c1, f1) = expected_rows(&tmp.path().join("out1"));
    let (c2, f2) = expected_rows(&tmp.path().join("out2"));
    assert_eq!(
        stored(&up, "night-1"),
        (c1 + f1, c1 + f1),
        "night 1: each row once"
    );
    assert_eq!(
        stored(&up, "night-2"),
        (c2 + f2, c2 + f2),
        "night 2: each row once"
    );
    // Night 1's batches went first.
    let (rows, _) = up.emu.logs();
    assert_eq!(rows[0]["row"]["RunId"], "night-1");
    assert_eq!(queued_batches(tmp.path()), 0);

    let o = night(&up, tmp.path(), 3, &[]).await;
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", stderr(&o));
    assert_eq!(stored(&up, "night-1").0, c1 + f1, "nothing sent again");
    assert_eq!(stored(&up, "night-2").0, c2 + f2, "nothing sent again");
    let (c3, f3) = expected_rows(&tmp.path().join("out3"));
    assert_eq!(stored(&up, "night-3"), (c3 + f3, c3 + f3));
    up.emu.shutdown().await;
}

/// A crash (abort, as SIGKILL) after the first batch was confirmed: the next night sends
/// the rest of night 1 (not the confirmed batch again), then its own. A crash before
/// night 1's history was committed supersedes its rows: the next night sends its own.
#[tokio::test(flavor = "multi_thread")]
async fn a_crash_mid_delivery_sends_only_the_rest_and_a_crash_before_the_commit_supersedes() {
    let emu = serve(azure_emulator::Tenant::demo(), None, "").await;
    let tmp = tempfile::tempdir().unwrap();
    let o = night(
        &emu,
        tmp.path(),
        1,
        &[("AKS_AUDIT_TEST_CRASH_AT", "after-first-delivery")],
    )
    .await;
    assert_ne!(o.status.code(), Some(0), "{}", stderr(&o));
    let (c1, f1) = expected_rows(&tmp.path().join("out1"));
    let (first, _) = stored(&emu, "night-1");
    assert!(
        first > 0 && first < c1 + f1,
        "one batch of {}: {first}",
        c1 + f1
    );
    let o = night(&emu, tmp.path(), 2, &[]).await;
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", stderr(&o));
    assert_eq!(stored(&emu, "night-1"), (c1 + f1, c1 + f1), "each row once");
    let (c2, f2) = expected_rows(&tmp.path().join("out2"));
    assert_eq!(stored(&emu, "night-2"), (c2 + f2, c2 + f2));
    // The Job retried with the same run id: its rows are not sent again.
    let o = night(&emu, tmp.path(), 2, &[]).await;
    let log = stderr(&o);
    assert!(matches!(o.status.code(), Some(0 | 1)), "{log}");
    assert!(log.contains("queued by an earlier attempt"), "{log}");
    assert_eq!(stored(&emu, "night-2").0, c2 + f2);

    let tmp = tempfile::tempdir().unwrap();
    let o = night(
        &emu,
        tmp.path(),
        1,
        &[("AKS_AUDIT_TEST_CRASH_AT", "after-outbox")],
    )
    .await;
    assert_ne!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = night(&emu, tmp.path(), 5, &[]).await;
    let log = stderr(&o);
    assert!(matches!(o.status.code(), Some(0 | 1)), "{log}");
    assert!(
        log.contains("this run reports its changes instead"),
        "{log}"
    );
    assert_eq!(queued_batches(tmp.path()), 0);
    let (c5, f5) = expected_rows(&tmp.path().join("out5"));
    assert_eq!(stored(&emu, "night-5"), (c5 + f5, c5 + f5));
    // Night 1 of the first state folder, and nothing of the superseded one.
    assert_eq!(stored(&emu, "night-1").0, c1 + f1);
    emu.emu.shutdown().await;
}
