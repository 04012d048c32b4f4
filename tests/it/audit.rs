//! The audit engine end to end: the binary on inventory folders.
use std::path::{Path, PathBuf};

use pretty_assertions::assert_eq;
use serde_json::Value;

use crate::support::{bin, csv_rows, demo_inventory, fixture, read, root, stderr};

struct Run {
    code: i32,
    stderr: String,
    out: PathBuf,
}

fn run_audit(inventory: &Path, out: &Path, extra: &[&str]) -> Run {
    let o = bin()
        .arg("run")
        .arg("--inventory")
        .arg(inventory)
        .arg("--out")
        .arg(out)
        .args(["--now", "2026-06-01T06:00:00Z"])
        .args(extra)
        .output()
        .unwrap();
    Run {
        code: o.status.code().unwrap_or(-1),
        stderr: stderr(&o),
        out: out.to_path_buf(),
    }
}

/// Writes `role-assignments.json` into `inv` with one foreign principal's Reader
/// grant per subscription of its clusters: the folder then covers those
/// subscriptions (an export that holds none of a subscription's grants is a gap).
fn cover_subscriptions(inv: &Path) {
    let clusters: Value = serde_json::from_str(&read(&inv.join("clusters.json"))).unwrap();
    let mut subs: Vec<String> = clusters
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["id"].as_str()?.split('/').nth(2).map(str::to_string))
        .collect();
    subs.sort();
    subs.dedup();
    let rows: Vec<Value> = subs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            serde_json::json!({
                "id": format!("/subscriptions/{s}/providers/Microsoft.Authorization/roleAssignments/0000{i:04}-ffff-4fff-8fff-ffffffffffff"),
                "principalId": "99999999-9999-4999-8999-999999999999",
                "principalType": "User",
                "roleDefinitionId": format!("/subscriptions/{s}/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7"),
                "scope": format!("/subscriptions/{s}")
            })
        })
        .collect();
    std::fs::write(
        inv.join("role-assignments.json"),
        Value::Array(rows).to_string(),
    )
    .unwrap();
}

/// One nightly run with history in `state`; asserts exit 0 and returns the out folder.
fn run_night(inventory: &Path, state: &Path, out: &Path, now: &str) -> PathBuf {
    let o = bin()
        .args(["run", "--now", now, "--inventory"])
        .arg(inventory)
        .arg("--state")
        .arg(state)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    out.to_path_buf()
}

/// Compares an output file with the expected one beside the fixture; `UPDATE_EXPECT=1`
/// rewrites the expectation (review the diff before committing).
fn expect_file(actual: &Path, expected: &Path) {
    let got = read(actual);
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::create_dir_all(expected.parent().unwrap()).unwrap();
        std::fs::write(expected, &got).unwrap();
        return;
    }
    assert_eq!(
        got,
        read(expected),
        "{} differs from {}",
        actual.display(),
        expected.display()
    );
}

#[test]
fn az_cli_shapes_classify_and_match_expected_csv() {
    let tmp = tempfile::tempdir().unwrap();
    let r = run_audit(&fixture("az-shapes"), tmp.path(), &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for f in ["clusters.csv", "findings.csv"] {
        expect_file(
            &r.out.join(f),
            &fixture("az-shapes").join("expected").join(f),
        );
    }
    let rows = csv_rows(&r.out.join("clusters.csv"));
    let by: std::collections::BTreeMap<_, _> = rows
        .iter()
        .map(|r| (r["cluster_name"].clone(), r))
        .collect();
    assert_eq!(by["sp-guid"]["control_plane_identity"], "service_principal");
    assert_eq!(by["sp-legacy"]["kubelet_identity"], "service_principal");
    assert_eq!(by["mi-good"]["control_plane_identity"], "system_assigned");
    assert_eq!(by["mi-good"]["kubelet_identity"], "aks_managed");
    assert_eq!(
        by["mi-good"]["findings"], "0",
        "upper-case role GUID and lower-case RG still match"
    );
    assert_eq!(by["mi-nokubelet"]["kubelet_identity"], "missing");
    assert_eq!(by["mi-good"]["owner"], "mi-good@fabrikam.example");
    // The SP's role assignments are found by principalName: its Contributor at the subscription is too wide.
    let findings = csv_rows(&r.out.join("findings.csv"));
    assert!(findings
        .iter()
        .any(|f| f["rule_id"] == "AKSMI012" && f["cluster_id"].ends_with("/sp-guid")));
}

#[test]
fn malformed_rows_are_skipped_counted_and_exit_3() {
    let tmp = tempfile::tempdir().unwrap();
    let r = run_audit(&fixture("malformed"), tmp.path(), &[]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    let report: Value = serde_json::from_str(&read(&r.out.join("report.json"))).unwrap();
    let skipped = report["coverage"]["skipped_rows"].as_array().unwrap();
    let idx: Vec<(String, u64)> = skipped
        .iter()
        .map(|s| {
            let src = s["source"].as_str().unwrap();
            (
                Path::new(src)
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .to_string(),
                s["index"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        idx,
        vec![
            ("clusters.json".into(), 1),
            ("clusters.json".into(), 2),
            ("clusters.json".into(), 4),
            ("clusters.json".into(), 5),
            ("role-assignments.json".into(), 1),
        ]
    );
    assert!(skipped[1]["reason"]
        .as_str()
        .unwrap()
        .contains("agentPoolProfiles"));
    assert_eq!(report["summary"]["clusters"], 2);
    assert!(
        r.stderr.contains("clusters.json"),
        "the warning names the file: {}",
        r.stderr
    );
}

#[test]
fn missing_or_unparsable_clusters_file_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("inv");
    std::fs::create_dir_all(&empty).unwrap();
    let r = run_audit(&empty, &tmp.path().join("out"), &[]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("clusters.json") && r.stderr.contains("missing"),
        "{}",
        r.stderr
    );
    std::fs::write(empty.join("clusters.json"), "{\"value\": [").unwrap();
    let r = run_audit(&empty, &tmp.path().join("out"), &[]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("not valid JSON"), "{}", r.stderr);
}

#[test]
fn demo_inventory_fires_every_rule() {
    let tmp = tempfile::tempdir().unwrap();
    let demo = demo_inventory();
    // The migration rules need history: two runs, the first seeing service principals.
    let state = tmp.path().join("state");
    let inv1 = tmp.path().join("inv1");
    copy_dir(&demo, &inv1);
    let clusters = read(&inv1.join("clusters.json"));
    let mut v: Value = serde_json::from_str(&clusters).unwrap();
    for c in v["data"].as_array_mut().unwrap() {
        if c["name"].as_str().unwrap().starts_with("aks-payments") {
            c.as_object_mut().unwrap().remove("identity");
            c["properties"]["servicePrincipalProfile"]["clientId"] =
                "2c4e6a8b-0d2f-4b4d-8f6a-8c0e2a4c6e8a".into();
            c["properties"]
                .as_object_mut()
                .unwrap()
                .remove("identityProfile");
            for p in c["properties"]["agentPoolProfiles"].as_array_mut().unwrap() {
                if p["name"] == "np1" && p.get("nodeImageVersion").is_some() {
                    p["nodeImageVersion"] = "AKSUbuntu-2204gen2containerd-202409.23.0".into();
                }
            }
        }
    }
    std::fs::write(
        inv1.join("clusters.json"),
        serde_json::to_string(&v).unwrap(),
    )
    .unwrap();
    let s = state.to_str().unwrap();
    run_night(
        &inv1,
        &state,
        &tmp.path().join("r1"),
        "2026-05-01T06:00:00Z",
    );
    let r2 = run_audit(&demo, &tmp.path().join("r2"), &["--state", s]);
    assert_eq!(r2.code, 0, "{}", r2.stderr);
    let findings = csv_rows(&r2.out.join("findings.csv"));
    let fired: std::collections::BTreeSet<&str> =
        findings.iter().map(|f| f["rule_id"].as_str()).collect();
    let out = bin().arg("rules").output().unwrap();
    let catalogue = String::from_utf8(out.stdout).unwrap();
    let ids: Vec<&str> = catalogue
        .lines()
        .filter(|l| l.starts_with("AKSMI"))
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert!(ids.len() >= 16, "{catalogue}");
    let missing: Vec<&&str> = ids
        .iter()
        .filter(|id| !fired.contains(**id))
        .filter(|id| **id != "AKSMI005") // needs Microsoft Graph; covered by the live tests
        .collect();
    assert!(
        missing.is_empty(),
        "rules that never fire on the demo: {missing:?}"
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// The kubelet trap over three nights: SP → migrated to a user-assigned control-plane
/// identity (same images) → re-imaged.
#[test]
fn migration_scenario_pending_then_complete() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let cluster = |mi: bool, image: &str| {
        let mut c = serde_json::json!({
            "id": "/subscriptions/0d6a8e42-3f1b-4c5d-8e9f-a1b2c3d4e5f6/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks1",
            "name": "aks1", "location": "westeurope",
            "properties": {
                "provisioningState": "Succeeded", "nodeResourceGroup": "MC_rg_aks1_westeurope",
                "servicePrincipalProfile": {"clientId": if mi { "msi" } else { "http://aks1-sp" }},
                "agentPoolProfiles": [
                    {"name": "system", "mode": "System", "nodeImageVersion": image},
                    {"name": "user", "mode": "User", "nodeImageVersion": "AKSUbuntu-2204gen2containerd-202401.01.0"}
                ]
            }
        });
        if mi {
            c["identity"] = serde_json::json!({"type": "UserAssigned", "userAssignedIdentities": {
                "/subscriptions/0d6a8e42-3f1b-4c5d-8e9f-a1b2c3d4e5f6/resourceGroups/rg-ids/providers/Microsoft.ManagedIdentity/userAssignedIdentities/aks1-control-plane":
                    {"principalId": "11111111-2222-4333-8444-555555555555", "clientId": "22222222-2222-4333-8444-555555555555"}}});
            c["properties"]["identityProfile"] = serde_json::json!({"kubeletidentity": {
                "resourceId": "/subscriptions/0d6a8e42-3f1b-4c5d-8e9f-a1b2c3d4e5f6/resourcegroups/MC_rg_aks1_westeurope/providers/Microsoft.ManagedIdentity/userAssignedIdentities/aks1-agentpool",
                "clientId": "c", "objectId": "66666666-7777-4888-8999-000000000000"}});
        }
        serde_json::json!([c])
    };
    let night = |n: usize, now: &str, clusters: Value| {
        let inv = tmp.path().join(format!("inv{n}"));
        std::fs::create_dir_all(&inv).unwrap();
        std::fs::write(inv.join("clusters.json"), clusters.to_string()).unwrap();
        cover_subscriptions(&inv);
        let out = run_night(&inv, &state, &tmp.path().join(format!("out{n}")), now);
        (
            csv_rows(&out.join("clusters.csv")).remove(0),
            csv_rows(&out.join("findings.csv")),
        )
    };
    let old = "AKSUbuntu-2204gen2containerd-202405.03.0";
    let (c1, f1) = night(1, "2026-06-01T02:00:00Z", cluster(false, old));
    assert_eq!(c1["migration_status"], "not_migrated");
    assert!(f1.iter().any(|f| f["rule_id"] == "AKSMI001"));

    let (c2, f2) = night(2, "2026-06-02T02:00:00Z", cluster(true, old));
    assert_eq!(c2["migration_status"], "pending");
    assert_eq!(c2["pools_pending_upgrade"], "2");
    let pending: Vec<&str> = f2
        .iter()
        .filter(|f| f["rule_id"] == "AKSMI002")
        .map(|f| f["message"].as_str())
        .collect();
    assert_eq!(pending.len(), 2, "{f2:?}");
    assert!(f2.iter().any(|f| f["remediation"].contains("az aks nodepool upgrade --resource-group rg --cluster-name aks1 --name system --node-image-only")));

    let (c3, f3) = night(3, "2026-06-09T02:00:00Z", {
        let mut v = cluster(true, "AKSUbuntu-2204gen2containerd-202406.01.0");
        v[0]["properties"]["agentPoolProfiles"][1]["nodeImageVersion"] =
            "AKSUbuntu-2204gen2containerd-202406.01.0".into();
        v
    });
    assert_eq!(c3["migration_status"], "complete");
    assert_eq!(c3["pools_pending_upgrade"], "0");
    assert!(!f3.iter().any(|f| f["rule_id"] == "AKSMI002"));
}

/// Azure Lighthouse: `az account list` in the managing tenant prints that tenant as
/// `tenantId`; AKSMI030 compares with the subscription's `homeTenantId`.
#[test]
fn a_delegated_subscription_is_compared_with_its_home_tenant() {
    let tmp = tempfile::tempdir().unwrap();
    let r = run_audit(&fixture("lighthouse"), &tmp.path().join("out"), &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let tenant: Vec<_> = csv_rows(&r.out.join("findings.csv"))
        .into_iter()
        .filter(|f| f["rule_id"] == "AKSMI030")
        .collect();
    assert_eq!(tenant.len(), 1, "{tenant:?}");
    assert_eq!(tenant[0]["cluster_name"], "aks-cust-moved");
    assert_eq!(tenant[0]["severity"], "critical");
    assert!(
        tenant[0]["message"].contains("home tenant `bbbbbbbb-2222-4222-8222-222222222222`"),
        "{tenant:?}"
    );
}

#[test]
fn corrupt_history_is_an_error_not_a_reset() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("state.json"), "{\"version\": 1, \"clusters\": {").unwrap();
    let r = run_audit(
        &fixture("az-shapes"),
        &tmp.path().join("out"),
        &["--state", state.to_str().unwrap()],
    );
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("corrupt"), "{}", r.stderr);
    assert_eq!(
        read(&state.join("state.json")),
        "{\"version\": 1, \"clusters\": {",
        "left untouched"
    );
}

#[test]
fn hostile_strings_pass_through_inert() {
    let tmp = tempfile::tempdir().unwrap();
    let r = run_audit(&fixture("hostile"), tmp.path(), &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // CSV: parses back to one row per cluster, formulas neutralised, newlines kept inside quotes.
    let rows = csv_rows(&r.out.join("clusters.csv"));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["cluster_name"], "<script>alert(1)</script>");
    assert_eq!(rows[0]["owner"], "'=HYPERLINK(\"http://x\",\"y\")");
    for f in csv_rows(&r.out.join("findings.csv")) {
        for (k, v) in &f {
            assert!(!v.starts_with(['=', '+', '-', '@']), "{k} = {v}");
        }
        // The remediation quotes the hostile resource group for the shell.
        assert!(
            f["remediation"].contains("--resource-group 'rg-'\\''; rm -rf /'"),
            "{}",
            f["remediation"]
        );
    }
    // HTML: no live markup from the data.
    let html = read(&r.out.join("report.html"));
    assert!(!html.contains("<script>alert(1)</script>"));
    assert!(!html.contains("<img src=x"));
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;&#x2F;script&gt;")
            || html.contains("&lt;script&gt;alert(1)&lt;/script&gt;")
    );
    // JSON: valid and round-trips the raw values.
    let report: Value = serde_json::from_str(&read(&r.out.join("report.json"))).unwrap();
    assert_eq!(
        report["clusters"][0]["cluster_name"],
        "<script>alert(1)</script>"
    );
}

#[test]
fn fail_on_sets_exit_code_1() {
    let tmp = tempfile::tempdir().unwrap();
    let r = run_audit(
        &fixture("az-shapes"),
        &tmp.path().join("a"),
        &["--fail-on", "high"],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    let r = run_audit(
        &fixture("az-shapes"),
        &tmp.path().join("b"),
        &["--fail-on", "critical"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn suppressions_mark_findings_and_report_stale_entries() {
    let tmp = tempfile::tempdir().unwrap();
    let sup = tmp.path().join("s.toml");
    std::fs::write(
        &sup,
        r#"
[[suppression]]
rule = "AKSMI001"
cluster = "*/managedclusters/sp-*"
justification = "retiring these in Q3"
owner = "sec@fabrikam.example"
expires = "2026-12-31"

[[suppression]]
rule = "AKSMI040"
cluster = "*"
justification = "nothing matches this"
owner = "sec@fabrikam.example"
expires = "2026-12-31"
"#,
    )
    .unwrap();
    let r = run_audit(
        &fixture("az-shapes"),
        tmp.path(),
        &["--suppressions", sup.to_str().unwrap(), "--fail-on", "high"],
    );
    let findings = csv_rows(&r.out.join("findings.csv"));
    let sp: Vec<_> = findings
        .iter()
        .filter(|f| f["rule_id"] == "AKSMI001")
        .collect();
    assert_eq!(sp.len(), 2);
    assert!(sp
        .iter()
        .all(|f| f["suppressed"] == "true" && f["suppression_owner"] == "sec@fabrikam.example"));
    let report: Value = serde_json::from_str(&read(&r.out.join("report.json"))).unwrap();
    let statuses: Vec<&str> = report["suppressions"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, vec!["active", "stale"]);
    // AKSMI004 (high) on mi-nokubelet is not suppressed, so --fail-on high still fails.
    assert_eq!(r.code, 1, "{}", r.stderr);
}

#[test]
fn rules_command_prints_catalogue_with_sources() {
    let out = bin().arg("rules").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("AKSMI002") && text.contains("https://learn.microsoft.com/"));
}

/// Microsoft's own payloads from ../shared/azure-samples, read at test time when present.
#[test]
fn real_azure_payloads_classify() {
    let samples = root().join("../shared/azure-samples");
    if !samples.is_dir() {
        eprintln!(
            "skipping: {} not present (it is outside the repository)",
            samples.display()
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let load = |p: &str| -> Value { serde_json::from_str(&read(&samples.join(p))).unwrap() };
    // REST spec example: an SP-style cluster.
    let get = load("specs/2024-09-01_ManagedClustersGet.json");
    let ua = load("specs/2024-09-01_ManagedClustersCreate_Update_UserAssigned.json");
    let mut ua_body = ua["responses"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()["body"]
        .clone();
    // Both spec examples use the same cluster id; rename one so both are audited.
    ua_body["id"] = ua_body["id"]
        .as_str()
        .unwrap()
        .replace("clustername1", "clustername-ua")
        .into();
    ua_body["name"] = "clustername-ua".into();
    let sp_cli =
        load("cli-recordings/test_aks_create_default_service_with_virtual_node_addon__SP.json");
    let sp_get = sp_cli["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s.get("response_body"))
        .find(|b| {
            b.get("properties")
                .and_then(|p| p.get("agentPoolProfiles"))
                .is_some()
        })
        .cloned()
        .expect("a managed cluster body in the SP recording");
    let inv = tmp.path().join("inv");
    std::fs::create_dir_all(&inv).unwrap();
    std::fs::write(
        inv.join("clusters.json"),
        Value::Array(vec![
            get["responses"]["200"]["body"].clone(),
            ua_body,
            sp_get,
        ])
        .to_string(),
    )
    .unwrap();
    cover_subscriptions(&inv);
    let r = run_audit(&inv, &tmp.path().join("out"), &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let rows = csv_rows(&r.out.join("clusters.csv"));
    assert_eq!(rows.len(), 3, "{rows:?}");
    let modes: std::collections::BTreeSet<&str> = rows
        .iter()
        .map(|r| r["control_plane_identity"].as_str())
        .collect();
    assert!(
        modes.contains("service_principal") && modes.contains("user_assigned"),
        "{modes:?}"
    );

    // The migration recording: GET before (SP) and after (MI) with unchanged node image.
    let mig = load("cli-recordings/test_aks_update_to_msi_cluster__2022-03-01.json");
    let steps = mig["steps"].as_array().unwrap();
    let before = steps[1]["response_body"].clone();
    let after = steps[4]["response_body"].clone();
    let state = tmp.path().join("state");
    for (n, body, now) in [
        (1, before, "2026-06-01T00:00:00Z"),
        (2, after, "2026-06-02T00:00:00Z"),
    ] {
        let inv = tmp.path().join(format!("mig{n}"));
        std::fs::create_dir_all(&inv).unwrap();
        std::fs::write(
            inv.join("clusters.json"),
            Value::Array(vec![body]).to_string(),
        )
        .unwrap();
        cover_subscriptions(&inv);
        let out = run_night(&inv, &state, &tmp.path().join(format!("migout{n}")), now);
        let row = csv_rows(&out.join("clusters.csv")).remove(0);
        // A system-assigned flip: the docs (since 2026-07-31) say it re-images every
        // node, keeping the image version, so an unchanged image proves nothing.
        let want = if n == 1 { "not_migrated" } else { "unknown" };
        assert_eq!(row["migration_status"], want, "step {n}: {row:?}");
    }
}
