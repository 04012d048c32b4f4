//! `--log-analytics DCE --dcr-id ID --stream NAME`: the run's findings and clusters as
//! rows of one Log Analytics table (Microsoft Sentinel, Workbooks), sent through the
//! Logs Ingestion API: `POST {DCE}/dataCollectionRules/{dcr}/streams/{stream}?api-version=2023-01-01`
//! with a token for `https://monitor.azure.com` from the run's credential chain.
//!
//! - One stream, one table: every row has a `Kind` column (`finding` or `cluster`), so
//!   one data collection rule and one custom table serve both; the columns are
//!   [`COLUMNS`] (the README gives the DCR and table JSON).
//! - Shape: [`rows`] reads the report (pure), [`batches`] cuts the JSON array under the
//!   API's request limit (pure), [`deliver`] gzips and posts each batch after mail,
//!   through the ARM client's loop: 429 and 503 after `Retry-After`, other 5xx and
//!   dropped connections with backoff, one new token after a 401 for an expired one.
//! - A batch that fails is counted (the run exits 3) and never holds mail: mail has
//!   been sent by then. With `--state` the batches go through the delivery queue
//!   ([`crate::delivery_queue`]): written before history is committed, removed once the
//!   service confirmed them, sent by the next run when this one could not.
//! - The API has no idempotency key. A batch whose reply is lost after the service
//!   stored it (a dropped connection) is sent again and its rows are then stored twice.
//!   Every row carries `RunId` and a `RowId` unique within the run (the queue keeps the
//!   exact bytes, so a later retry sends the same ids), so queries drop such duplicates
//!   with `summarize arg_max(TimeGenerated, *) by RowId` (README).
use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Map, Value};
use url::Url;

use crate::azure::arg::ArmClient;
use crate::azure::{auth, pacing, retry, stats, AzureSettings, Cloud};
use crate::rules::Report;

/// The API's request limit: "Maximum size of API call: 1 MB, both compressed and
/// uncompressed data" (Azure Monitor service limits, Logs Ingestion API). Batches are
/// cut at 1,000,000 bytes of uncompressed JSON: under the limit whether "MB" means
/// 10^6 or 2^20 bytes; gzip only makes the request smaller.
pub const MAX_REQUEST_BYTES: usize = 1_000_000;

/// The API version of the Logs Ingestion API.
pub const API_VERSION: &str = "2023-01-01";

/// The stats table name of ingestion calls.
const TABLE: &str = "logs/ingest";

/// Test knob: batches cut at this many bytes instead of [`MAX_REQUEST_BYTES`] (so a
/// small tenant needs several batches). Not a documented setting.
pub const TEST_BATCH_BYTES_ENV: &str = "AKS_AUDIT_TEST_LOGS_BATCH_BYTES";

/// The table's columns and their Log Analytics types, in the order the README's DCR
/// declares them. A row carries every column (`null` where it does not apply).
pub const COLUMNS: &[(&str, &str)] = &[
    ("TimeGenerated", "datetime"),
    ("Kind", "string"),
    ("RunId", "string"),
    ("RowId", "string"),
    ("ClusterId", "string"),
    ("ClusterName", "string"),
    ("SubscriptionId", "string"),
    ("ResourceGroup", "string"),
    ("Owner", "string"),
    // Findings.
    ("RuleId", "string"),
    ("Severity", "string"),
    ("Identity", "string"),
    ("Subject", "string"),
    ("Message", "string"),
    ("Remediation", "string"),
    ("Fingerprint", "string"),
    ("Suppressed", "boolean"),
    // Clusters.
    ("Location", "string"),
    ("ControlPlaneIdentity", "string"),
    ("KubeletIdentity", "string"),
    ("MigrationStatus", "string"),
    ("PoolsPendingUpgrade", "int"),
    ("OpenFindings", "int"),
    ("WorstSeverity", "string"),
    ("KubernetesVersion", "string"),
];

/// Resolved `[log_analytics]` settings.
#[derive(Debug, Clone)]
pub struct LogAnalyticsSettings {
    /// The data collection endpoint (or the DCR's own logs ingestion endpoint).
    pub endpoint: Url,
    /// The DCR's immutable id (`dcr-` and 32 hex digits).
    pub dcr_id: String,
    /// The DCR's input stream (`Custom-...`).
    pub stream: String,
    /// Retries after the first attempt of a batch.
    pub retries: u32,
    /// First backoff when the service gives no `Retry-After`.
    pub backoff: Duration,
    /// Uncompressed bytes per batch at most.
    pub max_batch_bytes: usize,
    /// The run's credential chain, cloud and CA (`config::settings` fills it in).
    pub azure: AzureSettings,
}

/// The token scope of the Logs Ingestion API in `cloud`.
pub fn monitor_scope(cloud: Cloud) -> &'static str {
    match cloud {
        Cloud::Public => "https://monitor.azure.com/.default",
        Cloud::Usgov => "https://monitor.azure.us/.default",
        Cloud::China => "https://monitor.azure.cn/.default",
    }
}

/// `{endpoint}/dataCollectionRules/{dcr}/streams/{stream}?api-version=2023-01-01`.
pub fn ingest_url(endpoint: &Url, dcr_id: &str, stream: &str) -> anyhow::Result<Url> {
    let mut url = endpoint.clone();
    url.path_segments_mut()
        .map_err(|_| anyhow::anyhow!("the data collection endpoint {endpoint} cannot have a path"))?
        .pop_if_empty()
        .extend(["dataCollectionRules", dcr_id, "streams", stream]);
    url.query_pairs_mut()
        .append_pair("api-version", API_VERSION);
    Ok(url)
}

fn opt(s: &str) -> Value {
    if s.is_empty() {
        Value::Null
    } else {
        json!(s)
    }
}

/// Every row of the run: one per cluster, then one per finding (suppressed ones too,
/// with `Suppressed: true`). `RowId` is `{run_id}:c:{n}` / `{run_id}:f:{n}`: unique
/// within the run. Pure.
pub fn rows(report: &Report, run_id: &str) -> Vec<Value> {
    let mut out = Vec::with_capacity(report.clusters.len() + report.findings.len());
    for_each_row(report, run_id, |r| out.push(r));
    out
}

/// [`rows`] one at a time, in the same order, without holding them all.
pub fn for_each_row(report: &Report, run_id: &str, mut out: impl FnMut(Value)) {
    let at = report
        .generated_at
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let blank = || -> Map<String, Value> {
        let mut m = Map::new();
        for (name, _) in COLUMNS {
            m.insert(name.to_string(), Value::Null);
        }
        m.insert("TimeGenerated".into(), json!(at));
        m.insert("RunId".into(), json!(run_id));
        m
    };
    let by_id: HashMap<String, &crate::rules::ClusterRow> = report
        .clusters
        .iter()
        .map(|c| (c.cluster_id.to_ascii_lowercase(), c))
        .collect();
    for (n, c) in report.clusters.iter().enumerate() {
        let mut m = blank();
        m.insert("Kind".into(), json!("cluster"));
        m.insert("RowId".into(), json!(format!("{run_id}:c:{n}")));
        m.insert("ClusterId".into(), json!(c.cluster_id));
        m.insert("ClusterName".into(), json!(c.cluster_name));
        m.insert("SubscriptionId".into(), json!(c.subscription_id));
        m.insert("ResourceGroup".into(), opt(&c.resource_group));
        m.insert("Owner".into(), opt(&c.owner));
        m.insert("Location".into(), opt(&c.location));
        m.insert(
            "ControlPlaneIdentity".into(),
            json!(c.control_plane_identity.as_str()),
        );
        m.insert("KubeletIdentity".into(), json!(c.kubelet_identity.as_str()));
        m.insert("MigrationStatus".into(), json!(c.migration_status.as_str()));
        m.insert("PoolsPendingUpgrade".into(), json!(c.pools_pending_upgrade));
        m.insert("OpenFindings".into(), json!(c.findings));
        m.insert(
            "WorstSeverity".into(),
            c.worst_severity
                .map_or(Value::Null, |s| json!(s.to_string())),
        );
        m.insert("KubernetesVersion".into(), opt(&c.kubernetes_version));
        out(Value::Object(m));
    }
    for (n, f) in report.findings.iter().enumerate() {
        let cluster = by_id.get(&f.cluster_id.to_ascii_lowercase());
        let mut m = blank();
        m.insert("Kind".into(), json!("finding"));
        m.insert("RowId".into(), json!(format!("{run_id}:f:{n}")));
        m.insert("ClusterId".into(), json!(f.cluster_id));
        m.insert("ClusterName".into(), json!(f.cluster_name));
        m.insert("SubscriptionId".into(), json!(f.subscription_id));
        m.insert(
            "ResourceGroup".into(),
            cluster.map_or(Value::Null, |c| opt(&c.resource_group)),
        );
        m.insert(
            "Owner".into(),
            cluster.map_or(Value::Null, |c| opt(&c.owner)),
        );
        m.insert("RuleId".into(), json!(f.rule_id.to_string()));
        m.insert("Severity".into(), json!(f.severity.to_string()));
        m.insert("Identity".into(), json!(f.identity.to_string()));
        m.insert("Subject".into(), opt(&f.subject));
        m.insert("Message".into(), json!(f.message));
        m.insert("Remediation".into(), opt(&f.remediation));
        m.insert("Fingerprint".into(), json!(f.fingerprint()));
        m.insert("Suppressed".into(), json!(f.suppressed.is_some()));
        out(Value::Object(m));
    }
}

/// The rows as JSON arrays of at most `max_bytes` each (uncompressed), in order, each
/// with its number of rows. Rows that alone are over the limit are counted apart (they
/// cannot be sent). Pure.
pub fn batches(rows: &[Value], max_bytes: usize) -> (Vec<(Vec<u8>, usize)>, usize) {
    let mut out = Vec::new();
    let mut b = Batcher::new(max_bytes);
    for r in rows {
        out.extend(b.push(r));
    }
    let (last, too_large) = b.finish();
    out.extend(last);
    (out, too_large)
}

/// [`batches`] a row at a time: [`Batcher::push`] returns a batch when the row does not
/// fit in the current one (which it then starts), [`Batcher::finish`] the last one and
/// the rows set apart as too large.
#[derive(Debug)]
pub struct Batcher {
    max_bytes: usize,
    cur: Vec<u8>,
    cur_rows: usize,
    too_large: usize,
}

impl Batcher {
    pub fn new(max_bytes: usize) -> Batcher {
        Batcher {
            max_bytes,
            cur: Vec::new(),
            cur_rows: 0,
            too_large: 0,
        }
    }

    /// Adds `row`; a full batch (JSON array bytes, rows) comes back when it is cut.
    pub fn push(&mut self, row: &Value) -> Option<(Vec<u8>, usize)> {
        let bytes = serde_json::to_vec(row).expect("a JSON value serializes");
        // `[` + row + `]`, or `,` + row on top of what the batch holds.
        if bytes.len() + 2 > self.max_bytes {
            self.too_large += 1;
            return None;
        }
        let mut done = None;
        if self.cur_rows > 0 && self.cur.len() + 1 + bytes.len() + 1 > self.max_bytes {
            self.cur.push(b']');
            done = Some((std::mem::take(&mut self.cur), self.cur_rows));
            self.cur_rows = 0;
        }
        self.cur.push(if self.cur_rows == 0 { b'[' } else { b',' });
        self.cur.extend_from_slice(&bytes);
        self.cur_rows += 1;
        done
    }

    /// The last batch (if any rows are left) and how many rows were too large.
    pub fn finish(mut self) -> (Option<(Vec<u8>, usize)>, usize) {
        if self.cur_rows == 0 {
            return (None, self.too_large);
        }
        self.cur.push(b']');
        (Some((self.cur, self.cur_rows)), self.too_large)
    }
}

/// `body` gzip-compressed.
pub fn gzip(body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(body)?;
    e.finish()
}

/// What [`deliver`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Rows the service accepted.
    pub rows_sent: usize,
    /// Rows not accepted (their batch failed, was never tried, or the row alone is over
    /// the request limit).
    pub rows_failed: usize,
    pub batches_sent: usize,
    pub batches_failed: usize,
}

/// Sends the rows of `report` (see [`rows`]). Never fails: what is not accepted is
/// logged and counted. After a batch fails for a reason other than the batch itself
/// (throttling, 5xx, the network, the token: the retries are spent), the batches still
/// to come are not tried and count as failed.
pub async fn deliver(report: &Report, run_id: &str, s: Option<&LogAnalyticsSettings>) -> Outcome {
    let mut o = Outcome::default();
    let Some(s) = s else {
        return o;
    };
    let rows = rows(report, run_id);
    let (batches, too_large) = batches(&rows, s.max_batch_bytes);
    o.rows_failed += too_large;
    if too_large > 0 {
        tracing::error!(
            rows = too_large,
            "log analytics: rows over the API's 1 MB request limit on their own are not sent"
        );
    }
    let sender = match Sender::connect(s).await {
        Ok(x) => x,
        Err(e) => {
            o.batches_failed = batches.len();
            o.rows_failed += batches.iter().map(|(_, n)| n).sum::<usize>();
            tracing::error!(error = %crate::redact::redact(&crate::exit::render_error(&e)), "log analytics: no token for https://monitor.azure.com or no client; no row sent");
            return o;
        }
    };
    let total = batches.len();
    let mut give_up = false;
    for (i, (body, n)) in batches.iter().enumerate() {
        let n = *n;
        if give_up {
            o.batches_failed += 1;
            o.rows_failed += n;
            continue;
        }
        match sender.send(body).await {
            Ok(()) => {
                o.batches_sent += 1;
                o.rows_sent += n;
            }
            Err((status, why)) => {
                o.batches_failed += 1;
                o.rows_failed += n;
                // A refusal of this batch's content: the next batch may be fine.
                give_up = !matches!(status, Some(400 | 413));
                tracing::error!(batch = i + 1, batches = total, rows = n, error = %crate::redact::redact(&why), "log analytics: batch not accepted");
            }
        }
    }
    let (requests, retries, throttled) = sender.counts();
    tracing::info!(
        rows_sent = o.rows_sent,
        rows_failed = o.rows_failed,
        batches_sent = o.batches_sent,
        batches_failed = o.batches_failed,
        requests,
        retries,
        throttled_429 = throttled,
        stream = %s.stream,
        "log analytics: rows sent"
    );
    o
}

/// A connected ingestion client: the credential proved with a first token.
pub(crate) struct Sender {
    client: ArmClient,
    url: Url,
    scope: String,
}

impl Sender {
    pub(crate) async fn connect(s: &LogAnalyticsSettings) -> anyhow::Result<Sender> {
        let a = &s.azure;
        let http = auth::http_client(a.ca_text()?.as_deref(), a.request_timeout)?;
        let url = ingest_url(&s.endpoint, &s.dcr_id, &s.stream)?;
        auth::check_bearer_url(&url)?;
        let scope = monitor_scope(a.cloud).to_string();
        let tokens = auth::connect(&a.auth_config(), &http, &scope).await?;
        Ok(Sender {
            client: ArmClient {
                http,
                tokens: Arc::new(tokens),
                pacer: pacing::Pacer::new(),
                policy: retry::RetryPolicy {
                    max_attempts: s.retries.saturating_add(1),
                    base: s.backoff,
                    ..Default::default()
                },
                stats: stats::StatsHandle::default(),
            },
            url,
            scope,
        })
    }

    /// One batch, gzip-compressed; `Err((status, why))` when it was not accepted.
    pub(crate) async fn send(&self, json: &[u8]) -> Result<(), (Option<u16>, String)> {
        let body = gzip(json).map_err(|e| (None, format!("compressing the batch: {e}")))?;
        self.client
            .call_with(
                TABLE,
                Method::POST,
                &self.url,
                &self.scope,
                Some((&body, "application/json")),
                &[("content-encoding", "gzip")],
                false,
            )
            .await
            .map(|_| ())
            .map_err(|e| {
                let hint = match e.status {
                    Some(403) => "; the job's identity needs Monitoring Metrics Publisher on the data collection rule (README \"Log Analytics\")",
                    Some(404) => "; check --dcr-id (the rule's immutable id) and --stream (an input stream the rule declares)",
                    _ => "",
                };
                (e.status, format!("{e}{hint}"))
            })
    }

    pub(crate) fn counts(&self) -> (u64, u64, u64) {
        let s = self.client.stats.snapshot();
        s.tables
            .get(TABLE)
            .map(|t| (t.requests, t.retries, t.throttled_429))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_stay_under_the_limit_and_keep_every_row_once_in_order() {
        let rows: Vec<Value> = (0..500)
            .map(|i| json!({"RowId": format!("r:{i}"), "Message": "x".repeat(i % 97)}))
            .collect();
        let (b, too_large) = batches(&rows, 2_000);
        assert_eq!(too_large, 0);
        assert!(b.len() > 10, "{}", b.len());
        let mut ids = Vec::new();
        for (body, rows) in &b {
            assert!(body.len() <= 2_000, "{}", body.len());
            let v: Vec<Value> = serde_json::from_slice(body).unwrap();
            assert_eq!(v.len(), *rows);
            ids.extend(v.iter().map(|r| r["RowId"].as_str().unwrap().to_string()));
        }
        let want: Vec<String> = (0..500).map(|i| format!("r:{i}")).collect();
        assert_eq!(ids, want);
        // A row alone over the limit is set apart, the others still go.
        let mut big = rows[..3].to_vec();
        big.insert(1, json!({"RowId": "big", "Message": "y".repeat(3_000)}));
        let (b, too_large) = batches(&big, 2_000);
        assert_eq!(too_large, 1);
        let n: usize = b
            .iter()
            .map(|(x, _)| serde_json::from_slice::<Vec<Value>>(x).unwrap().len())
            .sum();
        assert_eq!(n, 3);
    }

    #[test]
    fn gzip_round_trips() {
        let body = br#"[{"a":1}]"#;
        let z = gzip(body).unwrap();
        let mut d = flate2::read::GzDecoder::new(&z[..]);
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut d, &mut back).unwrap();
        assert_eq!(back, body);
    }

    #[test]
    fn the_url_names_rule_and_stream() {
        let u = ingest_url(
            &Url::parse("https://my-dce-abcd.westeurope-1.ingest.monitor.azure.com").unwrap(),
            "dcr-00112233445566778899aabbccddeeff",
            "Custom-AksIdentityAudit",
        )
        .unwrap();
        assert_eq!(
            u.as_str(),
            "https://my-dce-abcd.westeurope-1.ingest.monitor.azure.com/dataCollectionRules/dcr-00112233445566778899aabbccddeeff/streams/Custom-AksIdentityAudit?api-version=2023-01-01"
        );
        assert_eq!(
            monitor_scope(Cloud::Public),
            "https://monitor.azure.com/.default"
        );
    }

    #[test]
    fn rows_carry_every_column_and_a_unique_row_id() {
        let mut report: Report =
            serde_json::from_str(include_str!("report/testdata/tiny-report.json")).unwrap();
        report.findings.push(crate::rules::Finding {
            cluster_id: report.clusters[0].cluster_id.to_uppercase(),
            cluster_name: "a".into(),
            subscription_id: "s1".into(),
            rule_id: crate::rules::RuleId::ServicePrincipal,
            severity: crate::rules::Severity::High,
            identity: crate::rules::IdentityKey::ControlPlane,
            message: "uses a service principal".into(),
            remediation: String::new(),
            subject: String::new(),
            suppressed: None,
            first_seen: None,
        });
        let rows = rows(&report, "run-7");
        // The finding's owner is its cluster's, matched without regard to case.
        let f = rows.iter().find(|r| r["Kind"] == "finding").unwrap();
        assert_eq!(f["Owner"], json!(opt(&report.clusters[0].owner)));
        assert_eq!(f["Severity"], "high");
        assert_eq!(rows.len(), report.clusters.len() + report.findings.len());
        let mut ids = std::collections::BTreeSet::new();
        for r in &rows {
            let m = r.as_object().unwrap();
            let names: Vec<&str> = m.keys().map(String::as_str).collect();
            let mut want: Vec<&str> = COLUMNS.iter().map(|(n, _)| *n).collect();
            want.sort_unstable();
            assert_eq!(names, want);
            assert_eq!(m["RunId"], "run-7");
            assert!(ids.insert(m["RowId"].as_str().unwrap().to_string()));
            match m["Kind"].as_str().unwrap() {
                "cluster" => assert!(m["MigrationStatus"].is_string() && m["RuleId"].is_null()),
                "finding" => {
                    assert!(m["RuleId"].is_string() && m["Severity"].is_string());
                    assert!(m["MigrationStatus"].is_null());
                }
                k => panic!("kind {k}"),
            }
        }
    }
}
