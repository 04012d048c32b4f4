//! Faults survived, nothing lost: the binary against the emulator's fault flags. For
//! every fault, the findings and cluster rows of the healthy part (clusters read, in no
//! gap scope) equal the fault-free run's; transient faults end with exit 0 and no gap,
//! persistent ones with exit 3 and every gap named in report.json's coverage.
//!
//! Already proven in `live.rs` and not repeated here: a combined 429 burst + 25% 5xx +
//! 10% drop run equal to the clean one, the forbidden subscription's clusters absent, the
//! token renewed after a revocation, malformed rows counted on the demo tenant.
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use azure_emulator::{generate, GenerateArgs, Quota, Tenant};

use crate::live::{read, serve, text};

/// Three subscription batches (300 a query), several pages per table.
const SUBS: usize = 650;
const CLUSTERS: usize = 900;
const ROLE_ASSIGNMENTS: usize = 4000;

/// The generated tenant, shared by the tests of this process (same seed, same bytes).
fn tenant() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "faults-tenant-{SUBS}-{CLUSTERS}-{ROLE_ASSIGNMENTS}-s7"
        ));
        if !dir.join("ground-truth.json").exists() {
            let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
            generate(&GenerateArgs {
                subscriptions: SUBS,
                clusters: CLUSTERS,
                role_assignments: ROLE_ASSIGNMENTS,
                seed: 7,
                out: tmp.path().to_path_buf(),
            })
            .unwrap();
            // Another test process may have won the race; its bytes are the same.
            let _ = std::fs::rename(tmp.keep(), &dir);
        }
        dir
    })
}

fn subscription_ids() -> Vec<String> {
    let v: serde_json::Value =
        serde_json::from_str(&read(&tenant().join("subscriptions.json"))).unwrap();
    let list = v.as_array().or_else(|| v["value"].as_array()).unwrap();
    list.iter()
        .map(|s| s["subscriptionId"].as_str().unwrap().to_string())
        .collect()
}

/// What one run left behind, parsed.
#[derive(Debug, Clone)]
struct Outcome {
    code: Option<i32>,
    /// findings.csv records (header excluded).
    findings: Vec<Vec<String>>,
    /// clusters.csv records by lower-cased cluster id.
    clusters: std::collections::BTreeMap<String, Vec<String>>,
    gaps: Vec<(String, String)>,
    skipped_rows: usize,
}

fn records(path: &Path) -> Vec<Vec<String>> {
    let mut r = csv::Reader::from_path(path).unwrap();
    r.records()
        .map(|rec| rec.unwrap().iter().map(str::to_string).collect())
        .collect()
}

fn outcome(o: &std::process::Output, out: &Path) -> Outcome {
    let report: serde_json::Value = serde_json::from_str(&read(&out.join("report.json")))
        .unwrap_or_else(|e| panic!("report.json: {e}\n{}", text(o)));
    let cov = &report["coverage"];
    let gaps = cov["gaps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["scope"].as_str().unwrap().to_string(),
                g["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    // cluster_id is the fifth column of clusters.csv.
    let clusters = records(&out.join("clusters.csv"))
        .into_iter()
        .map(|r| (r[4].to_ascii_lowercase(), r))
        .collect();
    Outcome {
        code: o.status.code(),
        findings: records(&out.join("findings.csv")),
        clusters,
        gaps,
        skipped_rows: cov["skipped_rows"].as_array().unwrap().len(),
    }
}

/// The fault-free run of [`tenant`], once per process.
fn clean() -> &'static Outcome {
    static CLEAN: OnceLock<Outcome> = OnceLock::new();
    CLEAN.get_or_init(|| {
        std::thread::spawn(|| {
            tokio::runtime::Runtime::new().unwrap().block_on(async {
                let e = serve(Tenant::from_inventory_dir(tenant()).unwrap(), None, "").await;
                let out = e.out("r");
                let o = e.audit(&["--out", &out.display().to_string()]).await;
                assert_eq!(o.status.code(), Some(0), "{}", text(&o));
                let r = outcome(&o, &out);
                e.emu.shutdown().await;
                r
            })
        })
        .join()
        .unwrap()
    })
}

fn subscription_of(cluster_id: &str) -> String {
    cluster_id
        .split('/')
        .nth(2)
        .unwrap_or_default()
        .to_ascii_lowercase()
}

/// Lower-cased subscription ids named by gaps.
fn gap_subscriptions(o: &Outcome) -> BTreeSet<String> {
    o.gaps
        .iter()
        .filter_map(|(scope, _)| scope.strip_prefix("/subscriptions/"))
        .map(str::to_ascii_lowercase)
        .collect()
}

/// The healthy part's findings and cluster rows equal the clean run's; clusters missing
/// from the faulty run are in gap scopes or are the counted skipped rows. Returns the
/// number of healthy clusters.
fn assert_healthy_part_equal(faulty: &Outcome) -> usize {
    let clean = clean();
    let gap_subs = gap_subscriptions(faulty);
    let healthy = |id: &str| {
        let id = id.to_ascii_lowercase();
        faulty.clusters.contains_key(&id) && !gap_subs.contains(&subscription_of(&id))
    };
    // cluster_id is the first column of findings.csv.
    let pick = |o: &Outcome| -> Vec<Vec<String>> {
        o.findings
            .iter()
            .filter(|r| healthy(&r[0]))
            .cloned()
            .collect()
    };
    pretty_assertions::assert_eq!(pick(clean), pick(faulty), "healthy findings differ");
    let rows = |o: &Outcome| -> Vec<Vec<String>> {
        o.clusters
            .iter()
            .filter(|(id, _)| healthy(id))
            .map(|(_, r)| r.clone())
            .collect()
    };
    pretty_assertions::assert_eq!(rows(clean), rows(faulty), "healthy clusters differ");
    // Nothing lost silently: a clean cluster is in the faulty run, in a gap, or skipped.
    let lost: Vec<&String> = clean
        .clusters
        .keys()
        .filter(|id| !faulty.clusters.contains_key(*id) && !gap_subs.contains(&subscription_of(id)))
        .collect();
    assert_eq!(
        lost.len(),
        faulty.skipped_rows,
        "clusters missing outside any gap: {lost:?}"
    );
    faulty.clusters.keys().filter(|id| healthy(id)).count()
}

/// Serves the tenant with `faults` (and `quota`), audits it with `extra` flags.
async fn faulty_run(
    faults: &str,
    quota: Option<Quota>,
    extra: &[&str],
) -> (Outcome, azure_emulator::Stats, String) {
    let tenant = Tenant::from_inventory_dir(tenant()).unwrap();
    let e = serve(tenant, quota, faults).await;
    let out = e.out("r");
    let mut args = vec!["--out".to_string(), out.display().to_string()];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = e.audit(&args).await;
    assert!(
        matches!(o.status.code(), Some(0 | 3)),
        "no panic, no error exit: {}",
        text(&o)
    );
    let stderr = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!stderr.contains("panicked"), "{}", text(&o));
    let r = outcome(&o, &out);
    let st = e.emu.stats();
    e.emu.shutdown().await;
    (r, st, stderr)
}

/// A transient fault: exit 0, no gap, the whole report equal.
fn assert_recovered(o: &Outcome, stderr: &str) {
    assert_eq!(o.code, Some(0), "{stderr}");
    assert!(o.gaps.is_empty() && o.skipped_rows == 0, "{:?}", o.gaps);
    assert_eq!(assert_healthy_part_equal(o), clean().clusters.len());
}

/// `--subscription` for every subscription: a failing listing cannot hide the scope.
fn every_subscription() -> Vec<String> {
    subscription_ids()
        .into_iter()
        .flat_map(|s| ["--subscription".to_string(), s])
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_percent_500_and_503_are_retried_to_an_exact_report() {
    let (o, st, err) = faulty_run("5xx=10,seed=2", None, &[]).await;
    assert!(st.errors_5xx > 0, "{st:?}");
    assert_recovered(&o, &err);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_429s_with_retry_after_is_waited_out() {
    // Five: fewer than the 6 attempts a request gets, so even a request that draws
    // every 429 of the burst succeeds on its last attempt.
    let (o, st, err) = faulty_run("429-burst=5", None, &[]).await;
    assert_eq!(st.throttled_429, 5, "{st:?}");
    assert_recovered(&o, &err);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_dropped_mid_page_are_retried() {
    let (o, st, err) = faulty_run("drop=15,seed=12", None, &[]).await;
    assert!(st.dropped_connections > 0, "{st:?}");
    assert_recovered(&o, &err);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_slower_than_the_request_timeout_is_retried() {
    // The first three replies take 2.5 s; the client gives up after 1 s and retries.
    let (o, st, err) = faulty_run(
        "slow=2500,slow-requests=3",
        None,
        &["--request-timeout", "1"],
    )
    .await;
    assert_recovered(&o, &err);
    // The three timed-out requests reached the emulator and were sent again: more
    // service requests than Resource Graph pages plus `GET /subscriptions` pages.
    let pages: u64 = st.pages_per_table.values().sum();
    let listing = SUBS.div_ceil(100) as u64;
    let service = st.requests - st.requests_per_path.get("token").copied().unwrap_or(0);
    assert_eq!(service, pages + listing + 3, "{st:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_always_slower_than_the_timeout_make_every_scope_a_named_gap() {
    let subs = every_subscription();
    let mut args: Vec<&str> = vec!["--request-timeout", "1", "--max-attempts", "2"];
    args.extend(subs.iter().map(String::as_str));
    let (o, _, err) = faulty_run("slow=1500", None, &args).await;
    assert_eq!(o.code, Some(3), "{err}");
    assert!(o.clusters.is_empty(), "nothing readable");
    let named = gap_subscriptions(&o);
    let all: BTreeSet<String> = subscription_ids()
        .iter()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    assert_eq!(named, all, "every subscription is a named gap");
    assert!(
        o.gaps
            .iter()
            .all(|(_, r)| r.contains("timed out") || r.contains("timeout")),
        "{:?}",
        &o.gaps[..1]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_exhausted_on_part_of_the_tenant_leave_named_gaps_and_the_rest_exact() {
    let subs = every_subscription();
    let mut args: Vec<&str> = vec!["--max-attempts", "1"];
    args.extend(subs.iter().map(String::as_str));
    let (o, st, err) = faulty_run("5xx=20,seed=5", None, &args).await;
    assert!(st.errors_5xx > 0, "{st:?}");
    assert_eq!(o.code, Some(3), "{err}");
    assert!(!o.gaps.is_empty());
    for (scope, reason) in &o.gaps {
        assert!(scope.starts_with("/subscriptions/"), "{scope}");
        assert!(
            reason.contains("500") || reason.contains("503"),
            "{scope}: {reason}"
        );
    }
    assert_healthy_part_equal(&o);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_forbidden_subscription_is_a_gap_and_every_other_finding_is_exact() {
    let bad = subscription_ids()[400].clone();
    let (o, _, err) = faulty_run(&format!("forbidden-subscription={bad}"), None, &[]).await;
    assert_eq!(o.code, Some(3), "{err}");
    assert_eq!(o.gaps.len(), 1, "{:?}", o.gaps);
    assert_eq!(o.gaps[0].0, format!("/subscriptions/{bad}"));
    assert!(o.gaps[0].1.contains("no read access"), "{:?}", o.gaps);
    let healthy = assert_healthy_part_equal(&o);
    let in_bad = clean()
        .clusters
        .keys()
        .filter(|id| subscription_of(id) == bad.to_ascii_lowercase())
        .count();
    assert_eq!(healthy, clean().clusters.len() - in_bad);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_revoked_mid_run_is_renewed_with_nothing_lost() {
    // 4 queries a second stretches the run past the 1-second token.
    let quota = Quota {
        queries: 4,
        window: std::time::Duration::from_secs(1),
    };
    let (o, st, err) = faulty_run("token-revoke=1", Some(quota), &[]).await;
    assert!(st.unauthorized_401 >= 1 && st.tokens_issued >= 2, "{st:?}");
    assert_recovered(&o, &err);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_rows_are_skipped_named_and_the_rest_exact() {
    let (o, _, err) = faulty_run("malformed-rows=3,seed=9", None, &[]).await;
    assert_eq!(o.code, Some(3), "{err}");
    assert_eq!(o.skipped_rows, 3);
    assert!(o.gaps.is_empty());
    assert_eq!(assert_healthy_part_equal(&o), clean().clusters.len() - 3);
}
