//! The kubelet migration verdict over nights (`--state`, `--now`): each case is a way
//! the image-string comparison used to get it wrong.
use std::collections::HashMap;
use std::path::PathBuf;

use serde_json::{json, Value};

use crate::support::{bin, csv_rows, stderr};

const SUB: &str = "0d6a8e42-3f1b-4c5d-8e9f-a1b2c3d4e5f6";
const TENANT: &str = "5f0e3c1a-7b2d-4e6f-9a8b-1c2d3e4f5a6b";
const SP: &str = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";
const V1: &str = "AKSUbuntu-2204gen2containerd-202601.12.0";
const V2: &str = "AKSUbuntu-2204gen2containerd-202602.09.0";

/// One pool: name, node image, Kubernetes version.
type Pool<'a> = (&'a str, &'a str, &'a str);

/// `aks1` on a service principal (`sp`), a system-assigned (`sa`) or a user-assigned
/// (`ua`) control-plane identity, ARM shape.
fn cluster(mode: &str, pools: &[Pool]) -> Value {
    let mut c = json!({
        "id": format!("/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks1"),
        "name": "aks1", "location": "westeurope",
        "systemData": {"createdAt": "2025-02-03T04:05:06.1234567Z"},
        "properties": {
            "provisioningState": "Succeeded", "kubernetesVersion": "1.31.4",
            "resourceUID": "67a0f1e2d3c4b5a6978899aa",
            "nodeResourceGroup": "MC_rg_aks1_westeurope",
            "servicePrincipalProfile": {"clientId": if mode == "sp" { SP } else { "msi" }},
            "agentPoolProfiles": pools.iter().map(|(n, img, k8s)| json!({
                "name": n, "mode": "System", "nodeImageVersion": img,
                "orchestratorVersion": k8s, "currentOrchestratorVersion": k8s
            })).collect::<Vec<_>>()
        }
    });
    if mode != "sp" {
        c["identity"] = if mode == "sa" {
            json!({"type": "SystemAssigned", "principalId": "11111111-2222-4333-8444-555555555555", "tenantId": TENANT})
        } else {
            json!({"type": "UserAssigned", "userAssignedIdentities": {
                format!("/subscriptions/{SUB}/resourceGroups/rg-ids/providers/Microsoft.ManagedIdentity/userAssignedIdentities/aks1-control-plane"):
                    {"principalId": "11111111-2222-4333-8444-555555555555", "clientId": "22222222-2222-4333-8444-555555555555"}}})
        };
        c["properties"]["identityProfile"] = json!({"kubeletidentity": {
            "resourceId": format!("/subscriptions/{SUB}/resourcegroups/MC_rg_aks1_westeurope/providers/Microsoft.ManagedIdentity/userAssignedIdentities/aks1-agentpool"),
            "clientId": "33333333-2222-4333-8444-555555555555",
            "objectId": "66666666-7777-4888-8999-000000000000"}});
    }
    c
}

struct Nights {
    tmp: tempfile::TempDir,
    n: usize,
}

type Rows = Vec<HashMap<String, String>>;

impl Nights {
    fn new() -> Nights {
        Nights {
            tmp: tempfile::tempdir().unwrap(),
            n: 0,
        }
    }

    fn state(&self) -> PathBuf {
        self.tmp.path().join("state")
    }

    /// One night: the cluster as given (plus `extra` files), exit 0; the cluster's
    /// row and the kubelet findings (AKSMI002/003/005).
    fn night(
        &mut self,
        now: &str,
        c: Value,
        extra: &[(&str, Value)],
    ) -> (HashMap<String, String>, Rows) {
        self.n += 1;
        let inv = self.tmp.path().join(format!("inv{}", self.n));
        std::fs::create_dir_all(&inv).unwrap();
        std::fs::write(inv.join("clusters.json"), json!([c]).to_string()).unwrap();
        // A foreign Reader grant: the export covers the subscription.
        std::fs::write(
            inv.join("role-assignments.json"),
            json!([{
                "id": format!("/subscriptions/{SUB}/providers/Microsoft.Authorization/roleAssignments/00000000-ffff-4fff-8fff-ffffffffffff"),
                "principalId": "99999999-9999-4999-8999-999999999999", "principalType": "User",
                "roleDefinitionId": format!("/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7"),
                "scope": format!("/subscriptions/{SUB}")
            }])
            .to_string(),
        )
        .unwrap();
        for (name, v) in extra {
            std::fs::write(inv.join(name), v.to_string()).unwrap();
        }
        let out = self.tmp.path().join(format!("out{}", self.n));
        let o = bin()
            .args(["run", "--now", now, "--inventory"])
            .arg(&inv)
            .arg("--state")
            .arg(self.state())
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let rows = |f: &str| -> Rows { csv_rows(&out.join(f)) };
        let kubelet = rows("findings.csv")
            .into_iter()
            .filter(|f| ["AKSMI002", "AKSMI003", "AKSMI005"].contains(&f["rule_id"].as_str()))
            .collect();
        (rows("clusters.csv").remove(0), kubelet)
    }
}

fn rules(f: &Rows) -> Vec<(&str, &str)> {
    f.iter()
        .map(|f| (f["rule_id"].as_str(), f["severity"].as_str()))
        .collect()
}

const N1: &str = "2026-06-01T02:00:00Z";
const N2: &str = "2026-06-02T02:00:00Z";
const N3: &str = "2026-06-03T02:00:00Z";
const N4: &str = "2026-06-09T02:00:00Z";

#[test]
fn migration_and_node_image_upgrade_in_one_window_is_never_pending() {
    // System-assigned: re-imaged by the flip (docs) or by the upgrade — either way on
    // the managed identity, from the first night after.
    let mut n = Nights::new();
    n.night(N1, cluster("sp", &[("system", V1, "1.31.4")]), &[]);
    let (row, f) = n.night(N2, cluster("sa", &[("system", V2, "1.31.4")]), &[]);
    assert_eq!(row["migration_status"], "complete", "{f:?}");
    assert!(f.is_empty(), "{f:?}");
    let (row, f) = n.night(N3, cluster("sa", &[("system", V2, "1.31.4")]), &[]);
    assert_eq!(row["migration_status"], "complete", "{f:?}");

    // User-assigned: an upgrade before the flip would have left kubelet on the SP, so
    // "verify" (medium) — never pending (high) for days.
    let mut n = Nights::new();
    n.night(N1, cluster("sp", &[("system", V1, "1.31.4")]), &[]);
    for now in [N2, N3] {
        let (row, f) = n.night(now, cluster("ua", &[("system", V2, "1.31.4")]), &[]);
        assert_eq!(row["migration_status"], "unknown");
        assert_eq!(row["pools_pending_upgrade"], "0");
        assert_eq!(rules(&f), [("AKSMI003", "medium")]);
        assert!(f[0]["message"].starts_with("verify: "), "{f:?}");
        assert!(
            f[0]["message"].contains("changed between 2026-06-01"),
            "{f:?}"
        );
    }
    // The next image settles it.
    let (row, f) = n.night(
        N4,
        cluster(
            "ua",
            &[("system", V2.replace("02.09", "03.02").as_str(), "1.31.4")],
        ),
        &[],
    );
    assert_eq!(row["migration_status"], "complete", "{f:?}");
}

#[test]
fn a_pool_added_after_the_flip_is_on_the_managed_identity() {
    let mut n = Nights::new();
    n.night(N1, cluster("sp", &[("system", V1, "1.31.4")]), &[]);
    n.night(N2, cluster("ua", &[("system", V1, "1.31.4")]), &[]);
    let (row, f) = n.night(
        N3,
        cluster("ua", &[("system", V1, "1.31.4"), ("user2", V1, "1.31.4")]),
        &[],
    );
    assert_eq!(row["migration_status"], "pending");
    assert_eq!(row["pending_pools"], "system");
    assert_eq!(rules(&f), [("AKSMI002", "high")]);
    assert!(f[0]["message"].contains("pool `system`"), "{f:?}");
    // Added in the flip's own window, user-assigned: joined before or after the flip?
    let mut n = Nights::new();
    n.night(N1, cluster("sp", &[("system", V2, "1.31.4")]), &[]);
    let (row, f) = n.night(
        N2,
        cluster("ua", &[("system", V2, "1.31.4"), ("user2", V2, "1.31.4")]),
        &[],
    );
    assert_eq!(row["pending_pools"], "system");
    assert_eq!(rules(&f), [("AKSMI002", "high"), ("AKSMI003", "medium")]);
    assert!(f[1]["message"].contains("user2 (created between"), "{f:?}");
    // System-assigned: the flip re-imaged it or it joined after; the other pool's
    // upgrade in the same window too.
    let mut n = Nights::new();
    n.night(N1, cluster("sp", &[("system", V1, "1.31.4")]), &[]);
    let (row, f) = n.night(
        N2,
        cluster("sa", &[("system", V2, "1.31.4"), ("user2", V2, "1.31.4")]),
        &[],
    );
    assert_eq!(row["migration_status"], "complete", "{f:?}");
}

#[test]
fn an_orchestrator_upgrade_with_the_same_image_string_reimaged_the_nodes() {
    let mut n = Nights::new();
    n.night(N1, cluster("sp", &[("system", V1, "1.31.4")]), &[]);
    let (row, _) = n.night(N2, cluster("ua", &[("system", V1, "1.31.4")]), &[]);
    assert_eq!(row["migration_status"], "pending");
    // `az aks upgrade`: every node re-imaged; the image string stayed.
    let (row, f) = n.night(N3, cluster("ua", &[("system", V1, "1.32.2")]), &[]);
    assert_eq!(row["migration_status"], "complete", "{f:?}");
    assert!(f.is_empty(), "{f:?}");
}

#[test]
fn a_recreated_cluster_is_not_a_migration() {
    for change in ["resourceUID", "createdAt"] {
        let mut n = Nights::new();
        n.night(N1, cluster("sp", &[("system", V1, "1.31.4")]), &[]);
        let mut born_mi = cluster("sa", &[("system", V1, "1.31.4")]);
        match change {
            "resourceUID" => {
                born_mi["properties"]["resourceUID"] = "67b1a2b3c4d5e6f708192a3b".into()
            }
            _ => {
                // Without resourceUID in the source: created after the last run saw the old one.
                born_mi["properties"]
                    .as_object_mut()
                    .unwrap()
                    .remove("resourceUID");
                born_mi["systemData"]["createdAt"] = "2026-06-01T14:00:00Z".into();
            }
        }
        let (row, f) = n.night(N2, born_mi.clone(), &[]);
        assert_eq!(row["migration_status"], "none_observed", "{change}: {f:?}");
        assert!(row["migration_observed_at"].is_empty(), "{change}");
        assert!(f.is_empty(), "{change}: {f:?}");
        let (row, _) = n.night(N3, born_mi, &[]);
        assert_eq!(row["migration_status"], "none_observed", "{change}");
    }
}

#[test]
fn a_system_assigned_flip_with_unchanged_images_says_verify_not_pending() {
    let mut n = Nights::new();
    n.night(
        N1,
        cluster("sp", &[("system", V1, "1.31.4"), ("user", V1, "1.31.4")]),
        &[],
    );
    let (row, f) = n.night(
        N2,
        cluster("sa", &[("system", V1, "1.31.4"), ("user", V1, "1.31.4")]),
        &[],
    );
    assert_eq!(row["migration_status"], "unknown");
    assert_eq!(row["pools_pending_upgrade"], "0");
    assert_eq!(rules(&f), [("AKSMI003", "medium")]);
    let msg = &f[0]["message"];
    assert!(
        msg.starts_with("verify: ") && msg.contains("system (") && msg.contains("user ("),
        "{msg}"
    );
    assert!(msg.contains("re-images every node"), "{msg}");
    let fix = &f[0]["remediation"];
    assert!(
        fix.starts_with("az aks nodepool list --resource-group rg --cluster-name aks1"),
        "{fix}"
    );
    assert!(
        fix.contains("kubectl get nodes -l agentpool=user")
            && fix.contains("/etc/kubernetes/azure.json"),
        "{fix}"
    );
    assert!(
        fix.contains(SP) && fix.contains("33333333-2222-4333-8444-555555555555"),
        "{fix}"
    );
}

#[test]
fn a_state_file_of_the_previous_version_still_decides() {
    // What the previous version wrote the night after a user-assigned flip: pools at
    // the flip (first run after it), no pool records, no flip kind, no resourceUID.
    let n0 = Nights::new();
    std::fs::create_dir_all(n0.state()).unwrap();
    let id = format!("/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks1");
    std::fs::write(
        n0.state().join("state.json"),
        json!({
            "version": 1, "last_run": N2, "findings": [],
            "clusters": {id.to_ascii_lowercase(): {
                "id": id, "first_seen": N1, "last_seen": N2, "mode": "user_assigned",
                "sp_client_id": SP, "pools": {"system": V1, "user": V1},
                "migration": {"observed_at": N2, "last_seen_as_sp": N1, "sp_client_id": SP,
                              "pools_at_flip": {"system": V1, "user": V1}},
                "sp_acr_registries": []
            }}
        })
        .to_string(),
    )
    .unwrap();
    let mut n = n0;
    let (row, f) = n.night(
        N3,
        cluster("ua", &[("system", V1, "1.31.4"), ("user", V2, "1.31.4")]),
        &[],
    );
    assert_eq!(row["migration_status"], "pending");
    assert_eq!(row["pending_pools"], "system");
    assert_eq!(rules(&f), [("AKSMI002", "high")]);
    assert_eq!(row["migration_observed_at"], "2026-06-02T02:00:00+00:00");
    // The rewritten file reads again the night after.
    let (row, _) = n.night(
        N4,
        cluster("ua", &[("system", V2, "1.31.4"), ("user", V2, "1.31.4")]),
        &[],
    );
    assert_eq!(row["migration_status"], "complete");
}

#[test]
fn a_pending_pool_already_on_the_latest_image_gets_a_fix_that_reimages() {
    let mut n = Nights::new();
    n.night(
        N1,
        cluster("sp", &[("system", V1, "1.31.4"), ("user", V1, "1.31.4")]),
        &[],
    );
    let mut c = cluster("ua", &[("system", V1, "1.31.4"), ("user", V1, "1.31.4")]);
    // From `az aks nodepool get-upgrades`, added to the inventory by hand.
    c["properties"]["agentPoolProfiles"][0]["latestNodeImageVersion"] = V1.into();
    c["properties"]["agentPoolProfiles"][1]["latestNodeImageVersion"] = V2.into();
    let (_, f) = n.night(N2, c, &[]);
    assert_eq!(rules(&f), [("AKSMI002", "high"), ("AKSMI002", "high")]);
    let by_pool = |p: &str| {
        f.iter()
            .find(|x| x["message"].contains(&format!("pool `{p}`")))
            .unwrap()
    };
    let latest = by_pool("system");
    assert!(
        latest["message"].contains("already runs the latest node image"),
        "{latest:?}"
    );
    let fix = &latest["remediation"];
    let runnable: Vec<&str> = fix.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(runnable, ["az aks nodepool get-upgrades --resource-group rg --cluster-name aks1 --nodepool-name system"], "{fix}");
    assert!(fix.contains("--kubernetes-version"), "{fix}");
    // A newer image exists: --node-image-only does re-image.
    assert_eq!(
        by_pool("user")["remediation"],
        "az aks nodepool upgrade --resource-group rg --cluster-name aks1 --name user --node-image-only"
    );
}

#[test]
fn the_old_service_principal_secret_is_checked_while_kubelet_is_pending() {
    let creds = |end: &str| json!([{"client_id": SP, "app_display_name": "aks1-sp", "nearest_expiry": end}]);
    let mut n = Nights::new();
    let (row, f) = n.night(
        N1,
        cluster("sp", &[("system", V1, "1.31.4")]),
        &[("sp-credentials.json", creds("2026-06-20T00:00:00Z"))],
    );
    assert_eq!(rules(&f), [("AKSMI005", "high")]);
    assert!(!row["checks"].contains("secret_expiry"), "{row:?}");
    // Migrated, kubelet pending: the same SP's secret still matters.
    let (row, f) = n.night(
        N2,
        cluster("ua", &[("system", V1, "1.31.4")]),
        &[("sp-credentials.json", creds("2026-06-01T00:00:00Z"))],
    );
    assert_eq!(row["migration_status"], "pending");
    let mut r = rules(&f);
    r.sort();
    assert_eq!(r, [("AKSMI002", "high"), ("AKSMI005", "critical")]);
    let expired = f.iter().find(|x| x["rule_id"] == "AKSMI005").unwrap();
    assert_eq!(expired["identity"], "kubelet");
    assert!(
        expired["message"].contains(&format!(
            "kubelet on pool(s) system still uses service principal `{SP}`"
        )),
        "{expired:?}"
    );
    assert!(
        expired["remediation"].contains("--name system --node-image-only"),
        "{expired:?}"
    );
    // Without the credentials: not evaluated, said so.
    let (row, _) = n.night(N3, cluster("ua", &[("system", V1, "1.31.4")]), &[]);
    assert!(
        row["checks"].contains("secret_expiry: not_evaluated") && row["checks"].contains(SP),
        "{row:?}"
    );
    // Re-imaged: the old SP no longer matters.
    let (row, f) = n.night(
        N4,
        cluster("ua", &[("system", V2, "1.31.4")]),
        &[("sp-credentials.json", creds("2026-06-01T00:00:00Z"))],
    );
    assert_eq!(row["migration_status"], "complete");
    assert!(f.is_empty(), "{f:?}");
}
