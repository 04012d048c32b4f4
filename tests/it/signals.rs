//! The migration follow-ups against the emulator: Resource Graph's change history
//! read once for clusters first seen on a managed identity, the node resource
//! groups' scale sets read only for verdicts in doubt, and no query when no cluster
//! needs one. Rows in Azure's shapes (azure-docs resource-graph
//! `changes/get-resource-changes.md`; ARM `VirtualMachineScaleSet` /
//! `VirtualMachineScaleSetVM`).
use azure_emulator::Tenant;
use serde_json::{json, Value};

use crate::live::serve;
use crate::support::csv_rows;

const SUB: &str = "7b8c9d0e-1f2a-4b3c-8d4e-5f6a7b8c9d0e";
const IMAGE: &str = "AKSUbuntu-2204gen2containerd-202606.01.0";

fn cluster_id(name: &str) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/{name}")
}

fn node_rg(name: &str) -> String {
    format!("MC_rg_{name}_westeurope")
}

/// `name` on a user-assigned identity (`ua`), a system-assigned one (`sa`) or a
/// service principal (`sp`), one pool `np1`.
fn cluster(name: &str, mode: &str) -> Value {
    let mut c = json!({
        "id": cluster_id(name), "name": name, "type": "microsoft.containerservice/managedclusters",
        "location": "westeurope", "resourceGroup": "rg", "subscriptionId": SUB,
        "systemData": {"createdAt": "2025-01-10T08:00:00.0000000Z"},
        "properties": {
            "provisioningState": "Succeeded", "kubernetesVersion": "1.31.4",
            "nodeResourceGroup": node_rg(name),
            "servicePrincipalProfile": {"clientId": if mode == "sp" { "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0" } else { "msi" }},
            "agentPoolProfiles": [{"name": "np1", "mode": "System", "count": 2, "nodeImageVersion": IMAGE,
                                   "orchestratorVersion": "1.31.4", "currentOrchestratorVersion": "1.31.4"}]
        }
    });
    if mode != "sp" {
        c["identity"] = if mode == "ua" {
            json!({"type": "UserAssigned", "userAssignedIdentities": {
                format!("/subscriptions/{SUB}/resourceGroups/ids/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}-cp"):
                    {"principalId": "2a3b4c5d-0000-4000-8000-000000000001", "clientId": "2a3b4c5d-0000-4000-8000-000000000002"}}})
        } else {
            json!({"type": "SystemAssigned", "principalId": "2a3b4c5d-0000-4000-8000-000000000003", "tenantId": "3b4c5d6e-0000-4000-8000-000000000000"})
        };
        c["properties"]["identityProfile"] = json!({"kubeletidentity": {
            "resourceId": kubelet(name),
            "clientId": "2a3b4c5d-0000-4000-8000-000000000005", "objectId": "2a3b4c5d-0000-4000-8000-000000000006"}});
    }
    c
}

fn kubelet(name: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourcegroups/{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}-agentpool",
        node_rg(name)
    )
}

/// The change that switched `name` to a managed identity, 4 days ago.
fn flip(name: &str) -> Value {
    let at = (chrono::Utc::now() - chrono::Duration::days(4))
        .format("%Y-%m-%dT%H:%M:%S%.3f+00:00")
        .to_string();
    json!({
        "id": format!("{}/providers/Microsoft.Resources/changes/08584123456789012345678901234", cluster_id(name)),
        "type": "microsoft.resources/changes",
        "properties": {
            "targetResourceId": cluster_id(name),
            "targetResourceType": "microsoft.containerservice/managedclusters",
            "changeType": "Update",
            "changeAttributes": {"timestamp": at, "changesCount": 2, "correlationId": "5d6e7f80-0000-4000-8000-000000000000"},
            "changes": {
                "properties.servicePrincipalProfile.clientId": {"previousValue": "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0", "newValue": "msi"},
                "identity.type": {"newValue": "UserAssigned"}
            }
        }
    })
}

/// Pool np1's scale set (kubelet identity attached) and its two instances, one not
/// on the latest model.
fn scale_set(name: &str) -> (Value, Value) {
    let set = format!(
        "/subscriptions/{SUB}/resourceGroups/{}/providers/Microsoft.Compute/virtualMachineScaleSets/aks-np1-31415926-vmss",
        node_rg(name)
    );
    let vmss = json!([{
        "id": set, "name": "aks-np1-31415926-vmss", "type": "Microsoft.Compute/virtualMachineScaleSets",
        "location": "westeurope", "tags": {"aks-managed-poolName": "np1"},
        "identity": {"type": "UserAssigned", "userAssignedIdentities": {kubelet(name): {"principalId": "p", "clientId": "c"}}},
        "properties": {"orchestrationMode": "Uniform", "upgradePolicy": {"mode": "Manual"}}
    }]);
    let vms = json!([0, 1].iter().map(|i| json!({
        "id": format!("{set}/virtualMachines/{i}"), "name": format!("aks-np1-31415926-vmss_{i}"),
        "type": "Microsoft.Compute/virtualMachineScaleSets/virtualMachines", "location": "westeurope",
        "properties": {"latestModelApplied": *i == 0, "provisioningState": "Succeeded"}
    })).collect::<Vec<_>>());
    (vmss, vms)
}

fn tenant(clusters: &[Value], changes: &[Value], sets: &(Value, Value)) -> Tenant {
    let (c, ch, s, v) = (
        Value::Array(clusters.to_vec()).to_string(),
        Value::Array(changes.to_vec()).to_string(),
        sets.0.to_string(),
        sets.1.to_string(),
    );
    Tenant::from_files([
        ("clusters.json", c.as_str()),
        ("resource-changes.json", ch.as_str()),
        ("scale-sets.json", s.as_str()),
        ("scale-set-vms.json", v.as_str()),
    ])
    .unwrap()
}

type Rows = Vec<std::collections::HashMap<String, String>>;

/// One audit against `e` with the state folder `state`: clusters.csv and findings.csv.
async fn run(e: &crate::live::Emu, state: &std::path::Path, out: &str) -> (Rows, Rows) {
    let out = e.out(out);
    let o = e
        .audit(&[
            "--subscription",
            SUB,
            "--state",
            &state.display().to_string(),
            "--out",
            &out.display().to_string(),
        ])
        .await;
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    (
        csv_rows(&out.join("clusters.csv")),
        csv_rows(&out.join("findings.csv")),
    )
}

fn queries(st: &azure_emulator::Stats, table: &str) -> u64 {
    st.queries_per_table.get(table).copied().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_ups_are_asked_only_for_the_clusters_that_need_them() {
    let state = tempfile::tempdir().unwrap();
    let t = tenant(
        &[
            cluster("aks-ua", "ua"),
            cluster("aks-sa", "sa"),
            cluster("aks-sp", "sp"),
        ],
        &[flip("aks-ua")],
        &scale_set("aks-ua"),
    );
    // Night one: the two managed-identity clusters have no history: one change
    // query finds aks-ua's flip, one more reads its pool versions; aks-ua is pending
    // (user-assigned, same image) so its node resource group's scale sets are read
    // (one query each table), and they agree.
    let e = serve(t.clone(), None, "").await;
    let (clusters, findings) = run(&e, state.path(), "n1").await;
    let st = e.emu.stats();
    assert_eq!(queries(&st, "resourcechanges"), 2, "{st:?}");
    assert_eq!(queries(&st, "computeresources"), 1, "{st:?}");
    let status = |rows: &[std::collections::HashMap<String, String>], name: &str| {
        rows.iter().find(|r| r["cluster_name"] == name).unwrap()["migration_status"].clone()
    };
    assert_eq!(status(&clusters, "aks-ua"), "pending");
    assert_eq!(status(&clusters, "aks-sa"), "none_observed");
    assert_eq!(status(&clusters, "aks-sp"), "not_migrated");
    let pending: Vec<&str> = findings
        .iter()
        .filter(|f| f["rule_id"] == "AKSMI002")
        .map(|f| f["message"].as_str())
        .collect();
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert!(
        pending[0].contains("from Resource Graph's change history")
            && pending[0].contains(
                "scale set `aks-np1-31415926-vmss` with 1 of 2 instance(s) not on its latest model"
            ),
        "{}",
        pending[0]
    );
    e.emu.shutdown().await;

    // Night two, same state: the change history is not asked again (read once, the
    // flip recorded); aks-ua is still pending, so its scale sets are read again.
    let e = serve(t, None, "").await;
    let (clusters, _) = run(&e, state.path(), "n2").await;
    let st = e.emu.stats();
    assert_eq!(queries(&st, "resourcechanges"), 0, "{st:?}");
    assert_eq!(queries(&st, "computeresources"), 1, "{st:?}");
    assert_eq!(status(&clusters, "aks-ua"), "pending");
    e.emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_follow_up_query_when_no_cluster_needs_one() {
    // Only a service-principal cluster: no change history, no scale sets.
    let t = tenant(&[cluster("aks-sp", "sp")], &[], &scale_set("aks-sp"));
    let e = serve(t, None, "").await;
    let out = e.out("n1");
    let o = e
        .audit(&["--subscription", SUB, "--out", &out.display().to_string()])
        .await;
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let st = e.emu.stats();
    assert_eq!(
        (
            queries(&st, "resourcechanges"),
            queries(&st, "computeresources")
        ),
        (0, 0),
        "{st:?}"
    );
    // Every query read the clusters, registries, subscriptions, role assignments or
    // definitions: the tables of the audit itself.
    let scale_set_reads = st.rows_per_table.get("resources").copied().unwrap_or(0);
    assert_eq!(scale_set_reads, 1, "the cluster row only: {st:?}");
}
