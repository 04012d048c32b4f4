//! The nightly job left alone: big changes, partial exports, empty estates, a report
//! file that cannot be written, concurrent runs, backfills, duplicate rows, retention.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};

use crate::support::{bin, csv_rows, json, stderr, BIN};

const SUB_A: &str = "0d6a8e42-3f1b-4c5d-8e9f-a1b2c3d4e5f6";
const SUB_B: &str = "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

/// A managed-identity cluster `name` in `sub` whose control plane holds no role: each
/// is one "missing Contributor" finding (AKSMI010) when its grants are read.
fn cluster(sub: &str, name: &str) -> Value {
    json!({
        "id": format!("/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/{name}"),
        "name": name, "location": "westeurope",
        "identity": {"type": "SystemAssigned", "principalId": format!("{:08x}-0000-4000-8000-{:012x}", name.len(), fnv(name)), "tenantId": "5f0e3c1a-7b2d-4e6f-9a8b-1c2d3e4f5a6b"},
        "properties": {
            "provisioningState": "Succeeded", "kubernetesVersion": "1.30.4",
            "nodeResourceGroup": format!("MC_rg_{name}_westeurope"),
            "servicePrincipalProfile": {"clientId": "msi"},
            "identityProfile": {"kubeletidentity": {
                "resourceId": format!("/subscriptions/{sub}/resourcegroups/MC_rg_{name}_westeurope/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}-agentpool"),
                "clientId": "c", "objectId": format!("{:08x}-1111-4111-8111-{:012x}", name.len(), fnv(name))}},
            "agentPoolProfiles": [{"name": "system", "mode": "System", "nodeImageVersion": "AKSUbuntu-2204gen2containerd-202405.03.0"}]
        }
    })
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    }) & 0xffff_ffff_ffff
}

/// One foreign Reader grant per subscription: the export covers those subscriptions.
fn grants(subs: &[&str]) -> Value {
    Value::Array(
        subs.iter()
            .enumerate()
            .map(|(i, s)| json!({
                "id": format!("/subscriptions/{s}/providers/Microsoft.Authorization/roleAssignments/0000{i:04}-ffff-4fff-8fff-ffffffffffff"),
                "principalId": "99999999-9999-4999-8999-999999999999", "principalType": "User",
                "roleDefinitionId": format!("/subscriptions/{s}/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7"),
                "scope": format!("/subscriptions/{s}")
            }))
            .collect(),
    )
}

fn folder(dir: &Path, clusters: &[Value], grants: Option<Value>) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("clusters.json"),
        Value::Array(clusters.to_vec()).to_string(),
    )
    .unwrap();
    if let Some(g) = grants {
        std::fs::write(dir.join("role-assignments.json"), g.to_string()).unwrap();
    }
    dir.to_path_buf()
}

fn run(inv: &Path, out: &Path, extra: &[&str]) -> Output {
    bin()
        .arg("run")
        .arg("--inventory")
        .arg(inv)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

/// Night 1 a pilot of 3 clusters, night 2 the tenant (150: 147 new findings), night 3
/// the pilot again (147 resolved): every night renders, advances history and runs.csv.
#[test]
fn big_changes_between_nights_never_block_the_job() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let all: Vec<Value> = (0..150)
        .map(|i| cluster(SUB_A, &format!("aks{i:03}")))
        .collect();
    let nights = [
        (3, "2026-06-01T02:00:00Z"),
        (150, "2026-06-02T02:00:00Z"),
        (3, "2026-06-03T02:00:00Z"),
    ];
    for (n, (count, now)) in nights.iter().enumerate() {
        let inv = folder(
            &tmp.path().join(format!("inv{n}")),
            &all[..*count],
            Some(grants(&[SUB_A])),
        );
        let out = tmp.path().join(format!("out{n}"));
        let o = run(
            &inv,
            &out,
            &["--state", state.to_str().unwrap(), "--now", now],
        );
        assert_eq!(o.status.code(), Some(0), "night {n}: {}", stderr(&o));
        let html = std::fs::read_to_string(out.join("report.html")).unwrap();
        let report = json(&out.join("report.json"));
        match n {
            1 => {
                assert_eq!(report["changes"]["new"].as_array().unwrap().len(), 147);
                assert!(
                    html.contains("more: see findings.csv"),
                    "the 'and N more' line"
                );
            }
            2 => {
                assert_eq!(report["changes"]["resolved"].as_array().unwrap().len(), 147);
                assert!(html.contains("and ") && html.contains(" more."));
            }
            _ => {}
        }
    }
    let runs = std::fs::read_to_string(state.join("runs.csv")).unwrap();
    assert_eq!(runs.lines().count(), 4, "{runs}");
    assert_eq!(
        json(&state.join("state.json"))["last_run"],
        "2026-06-03T02:00:00Z"
    );
}

/// Two subscriptions, one whose role assignments were never exported: a gap naming
/// it (exit 3), its clusters' role checks `not_evaluated`, no invented "missing role".
#[test]
fn a_subscription_without_exported_role_assignments_is_a_gap_not_a_finding() {
    let tmp = tempfile::tempdir().unwrap();
    let inv = folder(
        &tmp.path().join("inv"),
        &[cluster(SUB_A, "in-a"), cluster(SUB_B, "in-b")],
        Some(grants(&[SUB_A])),
    );
    let out = tmp.path().join("out");
    let o = run(&inv, &out, &[]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let report = json(&out.join("report.json"));
    let gaps = report["coverage"]["gaps"].as_array().unwrap();
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert_eq!(gaps[0]["scope"], format!("/subscriptions/{SUB_B}"));
    assert_eq!(gaps[0]["tables"], json!(["role-assignments"]));
    let rows = csv_rows(&out.join("clusters.csv"));
    let by_name = |n: &str| {
        rows.iter()
            .find(|r| r["cluster_name"] == n)
            .unwrap()
            .clone()
    };
    assert_eq!(by_name("in-a")["checks"], "evaluated");
    assert!(
        by_name("in-b")["checks"].starts_with("roles: not_evaluated"),
        "{:?}",
        by_name("in-b")
    );
    let findings = csv_rows(&out.join("findings.csv"));
    assert!(findings
        .iter()
        .any(|f| f["rule_id"] == "AKSMI010" && f["cluster_id"].contains("in-a")));
    assert!(
        !findings
            .iter()
            .any(|f| f["cluster_id"].contains("in-b") && f["rule_id"].starts_with("AKSMI01")),
        "{findings:?}"
    );
    assert_eq!(report["summary"]["not_evaluated"]["roles"], 1);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("roles not checked"));
}

/// Night 2 cannot read a subscription's role assignments: its earlier findings are
/// neither resolved nor new again, and come back unchanged when it is read again.
#[test]
fn findings_of_an_unread_scope_stay_open_across_the_gap() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let clusters = [cluster(SUB_A, "a1"), cluster(SUB_B, "b1")];
    let night = |n: usize, subs: &[&str]| {
        let inv = folder(
            &tmp.path().join(format!("inv{n}")),
            &clusters,
            Some(grants(subs)),
        );
        let out = tmp.path().join(format!("out{n}"));
        let now = format!("2026-06-0{}T02:00:00Z", n + 1);
        run(
            &inv,
            &out,
            &["--state", state.to_str().unwrap(), "--now", &now],
        );
        json(&out.join("report.json"))
    };
    night(0, &[SUB_A, SUB_B]);
    let r = night(1, &[SUB_A]);
    assert!(
        r["changes"]["resolved"].as_array().unwrap().is_empty(),
        "{}",
        r["changes"]
    );
    let r = night(2, &[SUB_A, SUB_B]);
    assert!(
        r["changes"]["new"].as_array().unwrap().is_empty(),
        "{}",
        r["changes"]
    );
    assert!(
        r["changes"]["resolved"].as_array().unwrap().is_empty(),
        "{}",
        r["changes"]
    );
}

#[test]
fn an_empty_estate_says_no_clusters_in_scope_never_100_percent() {
    let tmp = tempfile::tempdir().unwrap();
    let inv = folder(&tmp.path().join("inv"), &[], Some(json!([])));
    let out = tmp.path().join("out");
    let o = run(&inv, &out, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("no clusters in scope"));
    // CSS holds `width:100%`; no percentage of an empty estate is shown.
    assert!(
        !html.contains("%</b>control plane on managed identity"),
        "a percentage of nothing"
    );
}

/// report.html cannot be written (a folder is in its place): the other files, the
/// history and the admin's mail are written; exit 3 names the file.
#[test]
fn a_report_file_that_fails_does_not_stop_the_others() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let inv = folder(
        &tmp.path().join("inv"),
        &[cluster(SUB_A, "a1")],
        Some(grants(&[SUB_A])),
    );
    let out = tmp.path().join("out");
    std::fs::create_dir_all(out.join("report.html/blocker")).unwrap();
    let o = run(
        &inv,
        &out,
        &[
            "--state",
            state.to_str().unwrap(),
            "--admin",
            "sec@corp.example.com",
        ],
    );
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("report.html"), "{}", stderr(&o));
    for f in ["clusters.csv", "findings.csv", "report.json", "summary.csv"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    assert_eq!(
        json(&out.join("report.json"))["output_errors"][0]["file"],
        "report.html"
    );
    assert!(state.join("state.json").is_file() && state.join("runs.csv").is_file());
    let admin = std::fs::read_dir(out.join("outbox"))
        .unwrap()
        .flatten()
        .find(|e| {
            e.file_name()
                .to_string_lossy()
                .contains("sec@corp.example.com")
        })
        .expect("the admin's message");
    let text = std::fs::read_to_string(admin.path()).unwrap();
    assert!(text.contains("NOT WRITTEN: report.html"), "{text}");
}

/// Eight runs at once on one state folder: they take turns (the lock), every run is
/// in runs.csv and none is lost from history.
#[test]
fn concurrent_runs_on_one_state_take_turns() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let inv = folder(
        &tmp.path().join("inv"),
        &[cluster(SUB_A, "a1")],
        Some(grants(&[SUB_A])),
    );
    let children: Vec<_> = (0..8)
        .map(|i| {
            bin()
                .args(["run", "--no-email", "--inventory"])
                .arg(&inv)
                .arg("--out")
                .arg(tmp.path().join(format!("out{i}")))
                .arg("--state")
                .arg(&state)
                .args(["--now", &format!("2026-06-01T0{i}:00:00Z"), "--backfill"])
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    let runs = std::fs::read_to_string(state.join("runs.csv")).unwrap();
    assert_eq!(runs.lines().count(), 9, "header and eight runs: {runs}");
}

/// A `--now` before the last run is refused; with --backfill it is inserted into
/// runs.csv and state.json is left exactly as it was.
#[test]
fn a_backfill_never_rewinds_history() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let inv = folder(
        &tmp.path().join("inv"),
        &[cluster(SUB_A, "a1")],
        Some(grants(&[SUB_A])),
    );
    let s = state.to_str().unwrap();
    let o = run(
        &inv,
        &tmp.path().join("o1"),
        &["--state", s, "--now", "2026-06-10T02:00:00Z"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let before = std::fs::read(state.join("state.json")).unwrap();
    let o = run(
        &inv,
        &tmp.path().join("o2"),
        &["--state", s, "--now", "2026-06-05T02:00:00Z"],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--backfill"), "{}", stderr(&o));
    let o = run(
        &inv,
        &tmp.path().join("o3"),
        &["--state", s, "--now", "2026-06-05T02:00:00Z", "--backfill"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(std::fs::read(state.join("state.json")).unwrap(), before);
    let runs = std::fs::read_to_string(state.join("runs.csv")).unwrap();
    let times: Vec<&str> = runs
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(times.len(), 2, "{runs}");
    assert!(
        times[0].starts_with("2026-06-05") && times[1].starts_with("2026-06-10"),
        "{runs}"
    );
}

/// The same cluster id twice: identical rows merge quietly; different rows are a
/// skipped row naming both sources (exit 3) and no verdict for that cluster.
#[test]
fn conflicting_duplicate_clusters_are_named_and_not_judged() {
    let tmp = tempfile::tempdir().unwrap();
    let c = cluster(SUB_A, "dup");
    let inv = folder(
        &tmp.path().join("same"),
        &[c.clone(), c.clone()],
        Some(grants(&[SUB_A])),
    );
    let o = run(&inv, &tmp.path().join("o1"), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let mut other = c.clone();
    other["identity"] = Value::Null;
    other["properties"]["servicePrincipalProfile"]["clientId"] = "http://old-sp".into();
    let inv = folder(
        &tmp.path().join("conflict"),
        &[c, other],
        Some(grants(&[SUB_A])),
    );
    let out = tmp.path().join("o2");
    let o = run(&inv, &out, &[]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let report = json(&out.join("report.json"));
    let skipped = &report["coverage"]["skipped_rows"][0]["reason"];
    assert!(
        skipped.as_str().unwrap().contains("clusters.json[0]")
            && skipped.as_str().unwrap().contains("clusters.json[1]"),
        "{skipped}"
    );
    let rows = csv_rows(&out.join("clusters.csv"));
    assert_eq!(rows.len(), 1);
    assert!(
        rows[0]["checks"].contains("classification: not_evaluated"),
        "{:?}",
        rows[0]
    );
    assert!(csv_rows(&out.join("findings.csv")).is_empty());
}

/// --keep-reports 2: the newest other report folder and this run's stay; folders the
/// tool did not make are never touched.
#[test]
fn retention_prunes_only_the_tools_own_folders() {
    let tmp = tempfile::tempdir().unwrap();
    let reports = tmp.path().join("reports");
    for name in [
        "2026-05-01T020000Z",
        "2026-05-02T020000Z",
        "2026-05-03T020000Z",
    ] {
        std::fs::create_dir_all(reports.join(name)).unwrap();
        std::fs::write(reports.join(name).join("report.json"), "{}").unwrap();
    }
    std::fs::create_dir_all(reports.join("2026-04-01T020000Z")).unwrap(); // no report.json
    std::fs::write(reports.join("notes.txt"), "mine").unwrap();
    let inv = folder(
        &tmp.path().join("inv"),
        &[cluster(SUB_A, "a1")],
        Some(grants(&[SUB_A])),
    );
    let o = run(
        &inv,
        &reports.join("2026-06-01T020000Z"),
        &["--keep-reports", "2", "--now", "2026-06-01T02:00:00Z"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let mut left: Vec<String> = std::fs::read_dir(&reports)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            "2026-04-01T020000Z",
            "2026-05-03T020000Z",
            "2026-06-01T020000Z",
            "notes.txt"
        ]
    );
    let o = run(&inv, &reports.join("x"), &["--keep-reports", "0d"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--keep-reports"), "{}", stderr(&o));
}

/// A fatal error with --log-format json is a JSON line like every other.
#[test]
fn a_fatal_error_is_a_json_line_in_json_mode() {
    let o = bin()
        .args([
            "--log-format",
            "json",
            "run",
            "--inventory",
            "/nonexistent/inventory",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let text = stderr(&o);
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).expect("a JSON line");
    assert_eq!(last["level"], "ERROR");
    assert!(last["error"]
        .as_str()
        .unwrap()
        .contains("/nonexistent/inventory"));
}

/// On a terminal the run ends with one human line: clusters, findings by severity,
/// where the report is, and why the exit code (`script` gives the run a terminal).
#[test]
fn a_run_on_a_terminal_ends_with_one_human_summary_line() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipping: util-linux `script` is not installed");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let inv = folder(
        &tmp.path().join("inv"),
        &[cluster(SUB_A, "a1"), cluster(SUB_B, "b1")],
        Some(grants(&[SUB_A])),
    );
    let out = tmp.path().join("out");
    let cmd = format!(
        "{BIN} run --no-email --inventory {} --out {}",
        inv.display(),
        out.display()
    );
    let o = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env_remove("AKS_AUDIT_CONFIG")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3));
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    let line = text
        .lines()
        .find(|l| l.contains("findings:"))
        .unwrap_or_else(|| panic!("no summary line in {text}"));
    assert!(
        line.starts_with("2 clusters; findings: 0 critical, 1 high"),
        "{line}"
    );
    assert!(
        line.contains("report.html") && line.contains("exit 3: 1 coverage gap(s)"),
        "{line}"
    );
    // Without a terminal there is no such line (logs are for machines).
    let o = run(&inv, &tmp.path().join("out2"), &["--no-email"]);
    assert!(!stderr(&o).contains("; findings:"));
}
