//! The live path end to end: the real binary against the in-process emulator over
//! HTTPS — paging, pacing, faults, gaps, every credential type, secrets kept out of
//! every output, and live vs offline reports of the same tenant.
use std::path::{Path, PathBuf};
use std::process::Output;

use azure_emulator::{
    generate, start, EmulatorConfig, GenerateArgs, Quota, RunningEmulator, Tenant,
};

use crate::support::{bin, root};

pub(crate) const SECRET: &str = "s3cr3t-Client-VALUE-9f2c";
pub(crate) const NOW: &str = "2026-01-15T06:00:00Z";

pub(crate) struct Emu {
    pub(crate) emu: RunningEmulator,
    pub(crate) ca: PathBuf,
    pub(crate) dir: tempfile::TempDir,
}

pub(crate) fn tenant_dir(subs: usize, clusters: usize, ras: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    generate(&GenerateArgs {
        subscriptions: subs,
        clusters,
        role_assignments: ras,
        seed: 7,
        out: dir.path().to_path_buf(),
    })
    .unwrap();
    dir
}

pub(crate) async fn serve(tenant: Tenant, quota: Option<Quota>, faults: &str) -> Emu {
    let mut config = EmulatorConfig::new(tenant);
    config.quota = quota;
    config.faults = faults.parse().unwrap();
    let emu = start(config).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &emu.ca_pem).unwrap();
    Emu { emu, ca, dir }
}

impl Emu {
    /// An HTTP client that trusts the emulator's CA.
    pub(crate) fn http(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .tls_certs_merge(
                reqwest::Certificate::from_pem_bundle(self.emu.ca_pem.as_bytes()).unwrap(),
            )
            .build()
            .unwrap()
    }

    /// A client-credentials token of the emulator's for `scope`
    /// (`https://graph.microsoft.com/.default`, ...).
    pub(crate) async fn token(&self, http: &reqwest::Client, scope: &str) -> String {
        let v: serde_json::Value = http
            .post(format!("{}/tenant-1/oauth2/v2.0/token", self.emu.url()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(
                url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("grant_type", "client_credentials")
                    .append_pair("client_id", "auditor")
                    .append_pair("client_secret", SECRET)
                    .append_pair("scope", scope)
                    .finish(),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["access_token"].as_str().unwrap().to_string()
    }

    pub(crate) fn out(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `run` against the emulator with client-secret auth from the environment.
    pub(crate) async fn audit(&self, extra: &[&str]) -> Output {
        self.audit_with(
            &["--auth", "client-secret"],
            extra,
            &[("AZURE_CLIENT_SECRET", SECRET.to_string())],
        )
        .await
    }

    pub(crate) async fn audit_with(
        &self,
        auth: &[&str],
        extra: &[&str],
        env: &[(&str, String)],
    ) -> Output {
        let url = self.emu.url();
        let mut args: Vec<String> = vec![
            "run".into(),
            "--arm-endpoint".into(),
            url.clone(),
            "--authority-host".into(),
            url.clone(),
            "--graph-endpoint".into(),
            url,
        ];
        args.extend([
            "--ca-cert".to_string(),
            self.ca.display().to_string(),
            "--now".into(),
            NOW.into(),
        ]);
        args.extend(auth.iter().map(|s| s.to_string()));
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut cmd = bin();
        cmd.args(&args).current_dir(self.dir.path());
        for k in [
            "AZURE_CLIENT_SECRET",
            "AZURE_FEDERATED_TOKEN_FILE",
            "AZURE_AUTHORITY_HOST",
            "IDENTITY_ENDPOINT",
            "IDENTITY_HEADER",
            "MSI_ENDPOINT",
        ] {
            cmd.env_remove(k);
        }
        cmd.env("AZURE_TENANT_ID", "tenant-1")
            .env("AZURE_CLIENT_ID", "auditor")
            .env("AKS_AUDIT_LOG", "info");
        for (k, v) in env {
            cmd.env(k, v);
        }
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap()
    }
}

pub(crate) fn offline(inventory: &Path, out: &Path) -> Output {
    bin()
        .args([
            "run",
            "--inventory",
            &inventory.display().to_string(),
            "--out",
            &out.display().to_string(),
            "--now",
            NOW,
        ])
        .output()
        .unwrap()
}

pub(crate) fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub(crate) fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn same_report(a: &Path, b: &Path) {
    for f in ["clusters.csv", "findings.csv", "role-assignments.csv"] {
        pretty_assertions::assert_eq!(read(&a.join(f)), read(&b.join(f)), "{f} differs");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_runs_the_live_path_with_no_setup() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r");
    let o = tokio::task::spawn_blocking({
        let out = out.clone();
        move || {
            bin()
                .args(["run", "--demo", "--out", &out.display().to_string()])
                .env_remove("AZURE_AUTHORITY_HOST")
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let findings = read(&out.join("findings.csv"));
    // The clusters query carries the fields of the situational roles: the demo's
    // disk encryption set reaches AKSMI023 through Resource Graph.
    assert!(
        findings.contains("AKSMI023,high") && findings.contains("des-platform"),
        "{findings}"
    );
    // Graph enrichment ran: the expired and the expiring secret.
    assert!(
        findings.contains("AKSMI005,critical") && findings.contains("AKSMI005,high"),
        "{findings}"
    );
    // The fix adds a credential beside the ones in use, never replaces them; the
    // command that only looks is labelled so.
    let mut fixes = 0;
    let mut rows = csv::Reader::from_reader(findings.as_bytes());
    for row in rows.deserialize::<std::collections::HashMap<String, String>>() {
        let row = row.unwrap();
        if row["rule_id"] != "AKSMI005" {
            continue;
        }
        let fix = &row["remediation"];
        if row["identity"] == "kubelet" {
            // A migrated cluster's kubelet still on the old SP: the fix is the re-image.
            assert!(fix.contains("az aks nodepool upgrade"), "{fix}");
            continue;
        }
        fixes += 1;
        let reset = fix
            .lines()
            .find(|l| l.contains("credential reset"))
            .unwrap();
        assert!(reset.contains("--append"), "{fix}");
        assert!(
            fix.lines()
                .next()
                .unwrap()
                .starts_with("# inspect only: az ad sp credential list"),
            "{fix}"
        );
    }
    assert!(fixes >= 2);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("querying Resource Graph"),
        "{}",
        text(&o)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_through_a_large_tenant_at_the_default_quota_without_a_429_and_replays_identically() {
    let tenant = tenant_dir(40, 4500, 16000);
    let e = serve(
        Tenant::from_inventory_dir(tenant.path()).unwrap(),
        Some(Quota::default()),
        "",
    )
    .await;
    let saved = e.out("saved");
    let o = e
        .audit(&[
            "--out",
            &e.out("live").display().to_string(),
            "--save-inventory",
            &saved.display().to_string(),
        ])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let st = e.emu.stats();
    assert_eq!(st.throttled_429, 0, "{st:?}");
    assert!(st.pages_per_table["resources"] > 4, "{st:?}");
    // Only service principals' and untyped role assignments are sent (the query
    // filters users and groups out), several pages of them.
    assert!(st.pages_per_table["authorizationresources"] >= 7, "{st:?}");
    assert!(
        st.rows_per_table["authorizationresources"] < 16000,
        "{st:?}"
    );
    // More queries than one quota window holds: pacing had to wait. (Since issue 15
    // the tool needs fewer queries for a tenant: 4,500 clusters make 18.)
    assert!(st.queries_per_table.values().sum::<u64>() > 15, "{st:?}");
    let clusters = read(&e.out("live").join("clusters.csv"));
    assert_eq!(clusters.lines().count(), 4500 + 1);
    // The saved inventory, and the generator's own folder, give the same report offline.
    let o = offline(&saved, &e.out("replay"));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    same_report(&e.out("live"), &e.out("replay"));
    let o = offline(tenant.path(), &e.out("offline"));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    same_report(&e.out("live"), &e.out("offline"));
    e.emu.shutdown().await;
}

/// Removes the `owner` tag of the first `untag` clusters of a generated tenant and tags
/// every resource group (so a group read for nothing would still be visible as rows).
/// Returns the ids of the untagged clusters' groups.
fn owners_on_groups(dir: &Path, untag: usize) -> Vec<String> {
    let path = dir.join("clusters.json");
    let mut clusters: Vec<serde_json::Value> = serde_json::from_str(&read(&path)).unwrap();
    let mut groups = Vec::new();
    for c in clusters.iter_mut().take(untag) {
        c["tags"] = serde_json::json!({"costcenter": "42"});
        let id = c["id"].as_str().unwrap();
        groups.push(id[..id.find("/providers/").unwrap()].to_ascii_lowercase());
    }
    std::fs::write(&path, serde_json::to_string(&clusters).unwrap()).unwrap();
    let path = dir.join("resource-groups.json");
    let mut rgs: Vec<serde_json::Value> = serde_json::from_str(&read(&path)).unwrap();
    for g in &mut rgs {
        let name = g["name"].as_str().unwrap().to_string();
        g["tags"] = serde_json::json!({"Owner": format!("{name}@fabrikam.example")});
    }
    std::fs::write(&path, serde_json::to_string(&rgs).unwrap()).unwrap();
    groups
}

/// A rule reads a resource group only for the owner tag of a cluster without one:
/// only those groups are looked up (by id, with the subscriptions in one query), and
/// the report is the one an offline run of every group gives. When nearly every
/// cluster lacks an owner, the batch's groups are read in full (fewer queries).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_groups_are_read_only_for_clusters_without_an_owner_tag() {
    for (clusters, untag, lookup) in [(40, 5, true), (150, 150, false)] {
        let tenant = tenant_dir(3, clusters, 400);
        let groups = owners_on_groups(tenant.path(), untag);
        let e = serve(Tenant::from_inventory_dir(tenant.path()).unwrap(), None, "").await;
        let o = e
            .audit(&["--out", &e.out("live").display().to_string()])
            .await;
        assert!(matches!(o.status.code(), Some(0 | 1)), "{}", text(&o));
        let st = e.emu.stats();
        let containers = st.rows_per_table["resourcecontainers"];
        let queries = st.queries_per_table["resourcecontainers"];
        if lookup {
            // 3 subscriptions + the 5 groups, in one query.
            assert_eq!((containers, queries), (3 + 5, 1), "{st:?}");
        } else {
            // 150 ids are two lookups; one page reads all 150 groups and 3 subscriptions.
            assert_eq!((containers, queries), (3 + 150, 1), "{st:?}");
        }
        let rows = crate::support::csv_rows(&e.out("live").join("clusters.csv"));
        // Group owners are `<group>@fabrikam.example`; the others come from the
        // cluster's own tag or, had its group not been read, the subscription's.
        let from_groups: Vec<&str> = rows
            .iter()
            .filter(|r| r["owner"] == format!("{}@fabrikam.example", r["resource_group"]))
            .map(|r| r["cluster_id"].as_str())
            .collect();
        assert_eq!(from_groups.len(), untag, "{rows:?}");
        for id in from_groups {
            let g = id[..id.find("/providers/").unwrap()].to_ascii_lowercase();
            assert!(groups.contains(&g), "{id}");
        }
        let o = offline(tenant.path(), &e.out("offline"));
        assert!(matches!(o.status.code(), Some(0 | 1)), "{}", text(&o));
        same_report(&e.out("live"), &e.out("offline"));
        e.emu.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovers_from_a_429_burst_5xx_and_dropped_connections_with_exact_results() {
    let tenant = tenant_dir(6, 1200, 2500);
    let t = Tenant::from_inventory_dir(tenant.path()).unwrap();
    let clean = serve(t.clone(), None, "").await;
    let o = clean
        .audit(&["--out", &clean.out("r").display().to_string()])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let faulty = serve(t, None, "429-burst=3,5xx=25,drop=10,seed=5").await;
    let o = faulty
        .audit(&[
            "--out",
            &faulty.out("r").display().to_string(),
            "--max-attempts",
            "10",
        ])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let st = faulty.emu.stats();
    assert!(
        st.throttled_429 >= 3 && st.errors_5xx > 0 && st.dropped_connections > 0,
        "{st:?}"
    );
    same_report(&clean.out("r"), &faulty.out("r"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_subscription_is_a_named_gap_and_the_rest_is_read() {
    let tenant = tenant_dir(5, 50, 300);
    let subs: serde_json::Value =
        serde_json::from_str(&read(&tenant.path().join("subscriptions.json"))).unwrap();
    let list = subs
        .as_array()
        .or_else(|| subs["value"].as_array())
        .unwrap();
    let bad = list[1]["subscriptionId"].as_str().unwrap().to_string();
    let t = Tenant::from_inventory_dir(tenant.path()).unwrap();
    let e = serve(t, None, &format!("forbidden-subscription={bad}")).await;
    let o = e.audit(&["--out", &e.out("r").display().to_string()]).await;
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let report = read(&e.out("r").join("report.json"));
    assert!(
        report.contains(&format!("/subscriptions/{bad}")) && report.contains("no read access"),
        "{report}"
    );
    // Every other subscription's clusters are there; none of the forbidden one's.
    let clusters = read(&e.out("r").join("clusters.csv"));
    let expected =
        serde_json::from_str::<serde_json::Value>(&read(&tenant.path().join("clusters.json")))
            .unwrap();
    let expected = expected
        .as_array()
        .or_else(|| expected["value"].as_array())
        .unwrap()
        .clone();
    let readable = expected
        .iter()
        .filter(|c| !c["id"].as_str().unwrap().contains(&bad))
        .count();
    assert!(readable > 0 && readable < expected.len());
    assert_eq!(clusters.lines().count(), readable + 1);
    assert!(!clusters.contains(&bad));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_rows_are_skipped_counted_and_exit_3() {
    let e = serve(Tenant::demo(), None, "malformed-rows=2").await;
    let o = e.audit(&["--out", &e.out("r").display().to_string()]).await;
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let clusters = read(&e.out("r").join("clusters.csv"));
    assert_eq!(clusters.lines().count(), 11 - 2 + 1);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("skipped malformed row"),
        "{}",
        text(&o)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workload_identity_gets_a_token_from_a_federated_token_file() {
    let e = serve(Tenant::demo(), None, "").await;
    let token_file = e.out("sa-token");
    std::fs::write(
        &token_file,
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQifQ.sig",
    )
    .unwrap();
    let o = e
        .audit_with(
            &["--auth", "auto"],
            &["--out", &e.out("r").display().to_string()],
            &[
                (
                    "AZURE_FEDERATED_TOKEN_FILE",
                    token_file.display().to_string(),
                ),
                ("AZURE_AUTHORITY_HOST", e.emu.url()),
            ],
        )
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("workload-identity"),
        "{}",
        text(&o)
    );
    assert_eq!(e.emu.stats().tokens_issued, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managed_identity_gets_a_token_from_the_identity_endpoint() {
    let e = serve(Tenant::demo(), None, "").await;
    let o = e
        .audit_with(
            &["--auth", "managed-identity"],
            &["--out", &e.out("r").display().to_string()],
            &[
                ("IDENTITY_ENDPOINT", format!("{}/msi/token", e.emu.url())),
                ("IDENTITY_HEADER", e.emu.msi_secret.clone()),
            ],
        )
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(e.emu.stats().requests_per_path.get("msi"), Some(&1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_lists_every_attempt_when_none_works() {
    let e = serve(Tenant::demo(), None, "").await;
    let o = e
        .audit_with(
            &["--auth", "auto"],
            &[],
            &[
                ("PATH", "/nonexistent".into()),
                ("IDENTITY_ENDPOINT", "http://127.0.0.1:9/msi".into()),
                ("IDENTITY_HEADER", "x".into()),
            ],
        )
        .await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    for attempt in [
        "workload-identity: skipped",
        "managed-identity:",
        "client-secret: skipped",
        "azure-cli:",
    ] {
        assert!(err.contains(attempt), "missing {attempt:?}: {}", text(&o));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_expiring_during_the_run_is_renewed() {
    let e = serve(
        Tenant::demo(),
        Some(Quota {
            queries: 2,
            window: std::time::Duration::from_secs(1),
        }),
        "token-revoke=1",
    )
    .await;
    let o = e.audit(&["--out", &e.out("r").display().to_string()]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let st = e.emu.stats();
    assert!(st.unauthorized_401 >= 1 && st.tokens_issued >= 2, "{st:?}");
}

#[tokio::test]
async fn plain_http_bearer_to_a_remote_host_is_refused() {
    let o = bin()
        .args([
            "run",
            "--arm-endpoint",
            "http://management.example.com",
            "--auth",
            "client-secret",
        ])
        .env("AZURE_CLIENT_SECRET", SECRET)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("refusing to send a bearer token") && err.contains("management.example.com"),
        "{err}"
    );
}

pub(crate) fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_or_token_in_any_output_at_trace_level() {
    let e = serve(
        Tenant::demo(),
        None,
        "forbidden-subscription=c7e25f90-1a3b-4c6d-8e7f-90a1b2c3d4e5,token-expiry=1",
    )
    .await;
    let o = e
        .audit_with(
            &["--auth", "client-secret", "--log-level", "trace"],
            &[
                "--out",
                &e.out("r").display().to_string(),
                "--save-inventory",
                &e.out("saved").display().to_string(),
            ],
            &[("AZURE_CLIENT_SECRET", SECRET.to_string())],
        )
        .await;
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let token = regex::Regex::new(r"emu\.[A-Za-z0-9]{48}").unwrap();
    let mut outputs = vec![
        (
            "stdout".to_string(),
            String::from_utf8_lossy(&o.stdout).to_string(),
        ),
        (
            "stderr".to_string(),
            String::from_utf8_lossy(&o.stderr).to_string(),
        ),
    ];
    let mut files = vec![];
    files_under(&e.out("r"), &mut files);
    files_under(&e.out("saved"), &mut files);
    assert!(files.len() > 5);
    for f in files {
        outputs.push((
            f.display().to_string(),
            String::from_utf8_lossy(&std::fs::read(&f).unwrap()).to_string(),
        ));
    }
    for (name, t) in outputs {
        assert!(!t.contains(SECRET), "client secret in {name}");
        assert!(!token.is_match(&t), "bearer token in {name}");
    }
}

// ---- Security: read-only, TLS verified, secrets kept out of every output ----
// The emulator's own refusal of PUT/PATCH/DELETE is tested in
// `emulator::arm_subscriptions_paging_upgrade_profile_and_write_rejection`.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_live_run_makes_no_write_call() {
    let e = serve(Tenant::demo(), None, "").await;
    let o = e
        .audit(&[
            "--graph",
            "--out",
            &e.out("r").display().to_string(),
            "--save-inventory",
            &e.out("saved").display().to_string(),
        ])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let st = e.emu.stats();
    assert_eq!(st.rejected_writes, 0, "{st:?}");
    // The emulator names each request by method and path: only the token POST, the
    // Resource Graph query POST and GETs of ARM and Graph.
    let allowed = [
        "token",
        "arg",
        "arm/subscriptions",
        "arm/subscription",
        "arm/upgradeProfile",
        "graph/applications",
        // A JSON batch of group-membership GETs (only reads inside), and its next pages.
        "graph/batch",
        "graph/transitiveMemberOf",
    ];
    for (path, n) in &st.requests_per_path {
        assert!(allowed.contains(&path.as_str()), "{path}: {n} requests");
    }
    assert!(st.requests_per_path["graph/applications"] > 0, "{st:?}");
    assert_eq!(st.requests, st.requests_per_path.values().sum::<u64>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_ca_the_emulators_certificate_is_refused() {
    let e = serve(Tenant::demo(), None, "").await;
    let url = e.emu.url();
    let o = tokio::task::spawn_blocking(move || {
        bin()
            .args([
                "run",
                "--arm-endpoint",
                &url,
                "--authority-host",
                &url,
                "--auth",
                "client-secret",
                "--no-email",
            ])
            .env_remove("AZURE_AUTHORITY_HOST")
            .env_remove("SSL_CERT_FILE")
            .env_remove("SSL_CERT_DIR")
            .env("AZURE_TENANT_ID", "tenant-1")
            .env("AZURE_CLIENT_ID", "auditor")
            .env("AZURE_CLIENT_SECRET", SECRET)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr).to_lowercase();
    assert!(err.contains("certificate"), "{}", text(&o));
    assert!(!err.contains(&SECRET.to_lowercase()));
    // Nothing reached the emulator but TLS handshakes that failed.
    assert_eq!(e.emu.stats().requests, 0);
}

#[test]
fn no_option_disables_tls_verification() {
    // A complement to the test above: no knob that turns certificate checks off.
    let knobs = [
        "danger_accept_invalid",
        "accept_invalid_certs",
        "accept_invalid_hostnames",
        "dangerous()",
        "NoCertificateVerification",
        "ServerCertVerifier",
        "InsecureSkipVerify",
        "insecure",
    ];
    // The audit's sources and the workspace's other crates (the emulator).
    let mut files = vec![];
    let root = root();
    let root = root.as_path();
    files_under(&root.join("src"), &mut files);
    let audit_files = files.len();
    files_under(&root.join("crates"), &mut files);
    assert!(audit_files > 20 && files.len() > audit_files + 10);
    for f in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "rs"))
    {
        let t = read(f);
        for k in knobs {
            assert!(!t.contains(k), "{} mentions {k}", f.display());
        }
        // lettre's `builder_dangerous` only means "TLS chosen by us": it is set to
        // Required/Wrapper for smtp:// and smtps://, None only for loopback.
        if t.contains("builder_dangerous") {
            assert!(f.ends_with("src/mail/transport.rs"), "{}", f.display());
            assert!(t.contains("Tls::Required(") && t.contains("Tls::Wrapper("));
        }
    }
}

/// Asserts that none of `needles` (nor an emulator bearer token) appears in the run's
/// stdout, stderr or any file under `dirs`.
fn assert_nothing_leaks(o: &Output, dirs: &[PathBuf], needles: &[&str]) {
    let token = regex::Regex::new(r"emu\.[A-Za-z0-9]{48}").unwrap();
    let mut outputs = vec![
        (
            "stdout".to_string(),
            String::from_utf8_lossy(&o.stdout).to_string(),
        ),
        (
            "stderr".to_string(),
            String::from_utf8_lossy(&o.stderr).to_string(),
        ),
    ];
    for d in dirs.iter().filter(|d| d.exists()) {
        let mut files = vec![];
        files_under(d, &mut files);
        for f in files {
            let t = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).to_string();
            outputs.push((f.display().to_string(), t));
        }
    }
    for (name, t) in outputs {
        for n in needles {
            assert!(!t.contains(n), "secret {n:?} in {name}");
        }
        assert!(!token.is_match(&t), "bearer token in {name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn federated_token_and_smtp_password_stay_out_of_trace_logs_reports_and_outbox() {
    const FEDERATED: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJmZWRlcmF0ZWQtc2VjcmV0LTc3In0.c2ln";
    const SMTP_PASSWORD: &str = "smtp-Pa55word-never-printed-31";
    let e = serve(Tenant::demo(), None, "token-expiry=1").await;
    let token_file = e.out("sa-token");
    std::fs::write(&token_file, FEDERATED).unwrap();
    let (out, saved) = (e.out("r"), e.out("saved"));
    let o = e
        .audit_with(
            &["--auth", "workload-identity", "--log-level", "trace"],
            &[
                "--out",
                &out.display().to_string(),
                "--save-inventory",
                &saved.display().to_string(),
                // A mail server that refuses connections: the error path of sending.
                "--smtp",
                "smtp://auditor@127.0.0.1:1",
                "--mail-from",
                "audit@contoso.com",
                "--smtp-retries",
                "0",
            ],
            &[
                (
                    "AZURE_FEDERATED_TOKEN_FILE",
                    token_file.display().to_string(),
                ),
                ("AZURE_AUTHORITY_HOST", e.emu.url()),
                ("AKS_AUDIT_SMTP_PASSWORD", SMTP_PASSWORD.to_string()),
            ],
        )
        .await;
    // Audited, but the mail is undelivered: exit 3, the messages wait in the outbox.
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(out.join("outbox").read_dir().unwrap().count() > 0);
    assert!(e.emu.stats().tokens_issued >= 1);
    assert_nothing_leaks(&o, &[out, saved], &[FEDERATED, SMTP_PASSWORD, SECRET]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_runs_print_no_secret_in_their_errors() {
    let e = serve(Tenant::demo(), None, "").await;
    // Token endpoint unreachable, then ARM unreachable (the token works, the query cannot
    // connect), each at trace level with the client secret in the environment.
    let url = e.emu.url();
    for (authority, arm) in [
        ("https://127.0.0.1:1".to_string(), url.clone()),
        (url.clone(), "https://127.0.0.1:1".to_string()),
    ] {
        let out = e.out("r");
        let ca = e.ca.display().to_string();
        let o = tokio::task::spawn_blocking(move || {
            bin()
                .args([
                    "--log-level",
                    "trace",
                    "run",
                    "--arm-endpoint",
                    &arm,
                    "--authority-host",
                    &authority,
                    "--ca-cert",
                    &ca,
                    "--auth",
                    "client-secret",
                    "--max-attempts",
                    "1",
                    "--no-email",
                    "--out",
                    &out.display().to_string(),
                ])
                .env_remove("AZURE_AUTHORITY_HOST")
                .env("AZURE_TENANT_ID", "tenant-1")
                .env("AZURE_CLIENT_ID", "auditor")
                .env("AZURE_CLIENT_SECRET", SECRET)
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert_nothing_leaks(&o, &[e.out("r")], &[SECRET]);
    }
}

// ---- The latest node image of a pending pool (upgradeProfiles/default) ----

/// A cluster `aks-pay` with one pool on `IMAGE`: on a service principal, or on a
/// user-assigned control-plane identity (ARM shape, as `GET managedClusters/{c}`).
fn pay_cluster(user_assigned: bool) -> serde_json::Value {
    const SUB: &str = "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b";
    let rg = format!("/subscriptions/{SUB}/resourceGroups/rg-pay");
    let mut props = serde_json::json!({
        "provisioningState": "Succeeded",
        "kubernetesVersion": "1.31.4",
        "nodeResourceGroup": "MC_rg-pay_aks-pay_japaneast",
        "servicePrincipalProfile": {"clientId": "7d1e2f3a-4b5c-4d6e-8f7a-9b0c1d2e3f4a"},
        "agentPoolProfiles": [{"name": "np1", "mode": "System", "osType": "Linux", "count": 3,
            "orchestratorVersion": "1.31.4", "currentOrchestratorVersion": "1.31.4",
            "nodeImageVersion": PAY_IMAGE, "provisioningState": "Succeeded"}]
    });
    let mut c = serde_json::json!({
        "id": format!("{rg}/providers/Microsoft.ContainerService/managedClusters/aks-pay"),
        "name": "aks-pay", "type": "microsoft.containerservice/managedclusters",
        "location": "japaneast", "resourceGroup": "rg-pay", "subscriptionId": SUB,
        "properties": {}
    });
    if user_assigned {
        let ua =
            format!("{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/aks-pay-cp");
        c["identity"] = serde_json::json!({"type": "UserAssigned",
            "userAssignedIdentities": {ua: {"principalId": "1a2b3c4d-0000-4000-8000-000000000001", "clientId": "1a2b3c4d-0000-4000-8000-000000000002"}}});
        props["servicePrincipalProfile"]["clientId"] = "msi".into();
        props["identityProfile"] = serde_json::json!({"kubeletidentity": {
            "resourceId": format!("/subscriptions/{SUB}/resourcegroups/mc_rg-pay_aks-pay_japaneast/providers/Microsoft.ManagedIdentity/userAssignedIdentities/aks-pay-agentpool"),
            "clientId": "1a2b3c4d-0000-4000-8000-000000000003", "objectId": "1a2b3c4d-0000-4000-8000-000000000004"}});
    }
    c["properties"] = props;
    serde_json::json!([c])
}

const PAY_IMAGE: &str = "AKSUbuntu-2204gen2containerd-202606.01.0";

/// Night one offline (on the service principal), night two live against the
/// emulator (user-assigned, same image); `latest` is the emulator's newest image.
async fn pending_pool_fix(latest: &str) -> (String, u64) {
    let dir = tempfile::tempdir().unwrap();
    let night1 = dir.path().join("night1");
    std::fs::create_dir_all(&night1).unwrap();
    std::fs::write(night1.join("clusters.json"), pay_cluster(false).to_string()).unwrap();
    // `az role assignment list` shape: the service principal's documented role.
    let node_rg = "/subscriptions/5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b/resourceGroups/MC_rg-pay_aks-pay_japaneast";
    let ra = serde_json::json!([{
        "id": format!("{node_rg}/providers/Microsoft.Authorization/roleAssignments/3c4d5e6f-0000-4000-8000-000000000001"),
        "principalId": "3c4d5e6f-0000-4000-8000-000000000002",
        "principalName": "7d1e2f3a-4b5c-4d6e-8f7a-9b0c1d2e3f4a",
        "principalType": "ServicePrincipal",
        "roleDefinitionId": "/subscriptions/5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b/providers/Microsoft.Authorization/roleDefinitions/b24988ac-6180-42a0-ab88-20f7382dd24c",
        "roleDefinitionName": "Contributor",
        "scope": node_rg
    }]);
    std::fs::write(night1.join("role-assignments.json"), ra.to_string()).unwrap();
    let state = dir.path().join("state");
    let o = bin()
        .args([
            "run",
            "--inventory",
            &night1.display().to_string(),
            "--state",
            &state.display().to_string(),
            "--out",
            &dir.path().join("r1").display().to_string(),
            "--now",
            "2026-01-14T06:00:00Z",
        ])
        .output()
        .unwrap();
    assert!(o.status.code().is_some_and(|c| c <= 1), "{}", text(&o));
    let clusters = pay_cluster(true).to_string();
    let images = serde_json::json!({"AKSUbuntu-2204gen2containerd": latest}).to_string();
    let tenant = Tenant::from_files([
        ("clusters.json", clusters.as_str()),
        ("latest-node-images.json", images.as_str()),
    ])
    .unwrap();
    let e = serve(tenant, None, "").await;
    let out = e.out("r2");
    let o = e
        .audit(&[
            "--subscription",
            "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b",
            "--state",
            &state.display().to_string(),
            "--out",
            &out.display().to_string(),
        ])
        .await;
    assert!(o.status.code().is_some_and(|c| c <= 1), "{}", text(&o));
    let findings = read(&out.join("findings.csv"));
    let mut rows = csv::Reader::from_reader(findings.as_bytes());
    let fix = rows
        .deserialize::<std::collections::HashMap<String, String>>()
        .map(|r| r.unwrap())
        .find(|r| r["rule_id"] == "AKSMI002")
        .unwrap_or_else(|| panic!("no AKSMI002: {findings}"))["remediation"]
        .clone();
    let calls = e
        .emu
        .stats()
        .requests_per_path
        .get("arm/upgradeProfile")
        .copied()
        .unwrap_or(0);
    (fix, calls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_pool_already_on_the_latest_image_gets_a_fix_that_reimages() {
    // The emulator knows no newer image: --node-image-only would do nothing.
    let (fix, calls) = pending_pool_fix(PAY_IMAGE).await;
    assert_eq!(calls, 1, "one GET for the migrated cluster's one pool");
    assert!(fix.contains("nothing to apply"), "{fix}");
    let runnable: Vec<&str> = fix.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        runnable,
        ["az aks nodepool get-upgrades --resource-group rg-pay --cluster-name aks-pay --nodepool-name np1"]
    );
    // A newer image exists: the node image upgrade is the fix.
    let (fix, calls) = pending_pool_fix("AKSUbuntu-2204gen2containerd-202607.05.0").await;
    assert_eq!(calls, 1);
    assert_eq!(
        fix,
        "az aks nodepool upgrade --resource-group rg-pay --cluster-name aks-pay --name np1 --node-image-only"
    );
}
