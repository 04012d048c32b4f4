//! Grants through Microsoft Entra groups, live against the emulator: the narrow second
//! pass (Graph `$batch` of `transitiveMemberOf`, then the groups' role assignments) runs
//! only when a cluster identity lacks a grant, honours Retry-After, follows
//! `@odata.nextLink`, and a saved inventory replays the same verdicts offline.
use azure_emulator::Tenant;
use serde_json::{json, Value};

use crate::live::{read, serve, text};
use crate::support::bin;

const SUB: &str = "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b";
const CP: &str = "1a2b3c4d-0000-4000-8000-00000000c0c0";
const GROUP: &str = "9d2c4e6a-8b0d-4f2e-9a1c-3e5f7a9b0001";

fn rg(name: &str) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/{name}")
}

fn vnet() -> String {
    format!(
        "{}/providers/Microsoft.Network/virtualNetworks/vnet-net",
        rg("rg-net")
    )
}

fn subnet() -> String {
    format!("{}/subnets/aks", vnet())
}

/// A system-assigned cluster whose pool uses a subnet in `rg-net` (Resource Graph
/// `resources` row shape, as `az aks show` prints the properties).
fn cluster() -> Value {
    json!([{
        "id": format!("{}/providers/Microsoft.ContainerService/managedClusters/aks-grp", rg("rg-app")),
        "name": "aks-grp", "type": "microsoft.containerservice/managedclusters",
        "location": "japaneast", "resourceGroup": "rg-app", "subscriptionId": SUB,
        "tags": {"owner": "team@contoso.example"},
        "identity": {"type": "SystemAssigned", "principalId": CP, "tenantId": "tenant-1"},
        "properties": {
            "provisioningState": "Succeeded", "kubernetesVersion": "1.31.4",
            "nodeResourceGroup": "MC_rg-app_aks-grp_japaneast",
            "servicePrincipalProfile": {"clientId": "msi"},
            "agentPoolProfiles": [{"name": "np1", "mode": "System", "osType": "Linux", "count": 2,
                "orchestratorVersion": "1.31.4", "nodeImageVersion": "AKSUbuntu-2204gen2containerd-202606.01.0",
                "provisioningState": "Succeeded", "vnetSubnetID": subnet()}],
            "identityProfile": {"kubeletidentity": {
                "resourceId": format!("{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/aks-grp-agentpool", rg("MC_rg-app_aks-grp_japaneast")),
                "clientId": "1a2b3c4d-0000-4000-8000-00000000c0c1", "objectId": "1a2b3c4d-0000-4000-8000-00000000c0c2"}}
        }
    }])
}

/// A role assignment row (Resource Graph `authorizationresources` shape).
fn ra(n: u32, principal: &str, ptype: &str, role: &str, scope: &str) -> Value {
    let name = format!("3c4d5e6f-0000-4000-8000-{n:012}");
    json!({
        "id": format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{name}"),
        "name": name, "type": "microsoft.authorization/roleassignments", "subscriptionId": SUB,
        "properties": {
            "roleDefinitionId": format!("/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{role}"),
            "principalId": principal, "principalType": ptype, "scope": scope,
            "createdOn": "2025-06-01T09:00:00.0000000Z"
        }
    })
}

const CONTRIBUTOR: &str = "b24988ac-6180-42a0-ab88-20f7382dd24c";
const NETWORK_CONTRIBUTOR: &str = "4d97b98b-1d4f-4787-a291-c67834d212e7";
const OWNER: &str = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635";

/// The tenant: the documented Contributor, plus Network Contributor on the subnet
/// held by the control plane itself (`own`) or only by `GROUP` on the VNet. The
/// control plane is in 1,000 other groups and `GROUP` (two pages of 999 at most).
fn tenant(own: bool) -> Tenant {
    let mut ras = vec![ra(
        1,
        CP,
        "ServicePrincipal",
        CONTRIBUTOR,
        &rg("MC_rg-app_aks-grp_japaneast"),
    )];
    if own {
        ras.push(ra(
            2,
            CP,
            "ServicePrincipal",
            NETWORK_CONTRIBUTOR,
            &subnet(),
        ));
    } else {
        ras.push(ra(3, GROUP, "Group", NETWORK_CONTRIBUTOR, &vnet()));
    }
    // Another group's Owner on the subscription: the control plane is not in it.
    ras.push(ra(
        4,
        "9d2c4e6a-8b0d-4f2e-9a1c-3e5f7a9b0002",
        "Group",
        OWNER,
        &format!("/subscriptions/{SUB}"),
    ));
    let mut groups: Vec<String> = (0..1000)
        .map(|i| format!("7e000000-0000-4000-8000-{i:012}"))
        .collect();
    groups.push(GROUP.into());
    let members = json!([{"principalId": CP, "groups": groups}]).to_string();
    let clusters = cluster().to_string();
    let ras = Value::Array(ras).to_string();
    Tenant::from_files([
        ("clusters.json", clusters.as_str()),
        ("role-assignments.json", ras.as_str()),
        ("graph-group-memberships.json", members.as_str()),
    ])
    .unwrap()
}

/// Audits a saved inventory folder offline at the tests' clock (exit 0 asserted);
/// returns its report folder.
fn replay(e: &crate::live::Emu, saved: &std::path::Path) -> std::path::PathBuf {
    let out = e.out("replay");
    let o = bin()
        .args([
            "run",
            "--inventory",
            &saved.display().to_string(),
            "--out",
            &out.display().to_string(),
            "--now",
            crate::live::NOW,
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    out
}

fn findings(dir: &std::path::Path) -> Vec<std::collections::HashMap<String, String>> {
    let text = read(&dir.join("findings.csv"));
    csv::Reader::from_reader(text.as_bytes())
        .deserialize()
        .map(|r| r.unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_missing_means_no_group_queries() {
    let e = serve(tenant(true), None, "").await;
    let out = e.out("r");
    let o = e
        .audit(&[
            "--graph",
            "--subscription",
            SUB,
            "--out",
            &out.display().to_string(),
        ])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let st = e.emu.stats();
    assert!(!st.requests_per_path.contains_key("graph/batch"), "{st:?}");
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains("table=group-role-assignments"),
        "{}",
        text(&o)
    );
    assert!(findings(&out).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_the_identity_is_in_explains_the_missing_subnet_grant() {
    // One throttled batch item: retried after its Retry-After.
    let e = serve(tenant(false), None, "graph-batch-429=1").await;
    let out = e.out("r");
    let saved = e.out("saved");
    let o = e
        .audit(&[
            "--graph",
            "--subscription",
            SUB,
            "--out",
            &out.display().to_string(),
            "--save-inventory",
            &saved.display().to_string(),
        ])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        findings(&out).is_empty(),
        "{:?}\n{}",
        findings(&out),
        text(&o)
    );
    let checks = read(&out.join("role-assignments.csv"));
    assert!(
        checks.contains(&format!("Network Contributor (via group {GROUP})")),
        "{checks}"
    );
    let st = e.emu.stats();
    assert_eq!(st.throttled_429, 1, "{st:?}");
    // The throttled batch and its retry; the second page of groups by nextLink.
    assert_eq!(st.requests_per_path["graph/batch"], 2, "{st:?}");
    assert_eq!(
        st.requests_per_path["graph/transitiveMemberOf"], 1,
        "{st:?}"
    );
    // 1,001 groups: their rows are looked up 100 ids a query.
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(
        err.contains("table=group-role-assignments requests=11 "),
        "{err}"
    );
    // The saved inventory replays the same verdicts offline.
    assert!(saved.join("group-memberships.json").exists());
    let replay = replay(&e, &saved);
    assert_eq!(
        read(&replay.join("findings.csv")),
        read(&out.join("findings.csv"))
    );
    assert_eq!(
        read(&replay.join("role-assignments.csv")),
        read(&out.join("role-assignments.csv"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_graph_a_group_holding_the_grant_is_low_membership_not_checked() {
    let e = serve(tenant(false), None, "").await;
    let out = e.out("r");
    let o = e
        .audit(&["--subscription", SUB, "--out", &out.display().to_string()])
        .await;
    assert!(o.status.code().is_some_and(|c| c <= 1), "{}", text(&o));
    let f = findings(&out);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0]["rule_id"], "AKSMI020");
    assert_eq!(f[0]["severity"], "low");
    assert!(f[0]["message"].contains(GROUP), "{:?}", f[0]);
    assert!(f[0]["message"].contains("not checked"), "{:?}", f[0]);
    let st = e.emu.stats();
    assert!(!st.requests_per_path.contains_key("graph/batch"), "{st:?}");
    // The groups' rows at the subnet and above: one narrow query.
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(
        err.contains("table=group-role-assignments requests=1 "),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_graph_a_summary_too_long_for_a_page_is_asked_scope_by_scope() {
    // The summary (a row per scope holding a group's grant: the subscription and the
    // VNet) is cut at one row without a $skipToken, as Resource Graph does with a
    // result it cannot page: the one subscription's scopes are asked one by one, and
    // the verdict is the same as from the summary.
    let e = serve(tenant(false), None, "summary-page=1").await;
    let out = e.out("r");
    let o = e
        .audit(&["--subscription", SUB, "--out", &out.display().to_string()])
        .await;
    // Exit 3 would be a coverage gap: the truncated summary was not one.
    assert!(o.status.code().is_some_and(|c| c <= 1), "{}", text(&o));
    let f = findings(&out);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0]["rule_id"], "AKSMI020");
    assert_eq!(f[0]["severity"], "low");
    assert!(f[0]["message"].contains(GROUP), "{:?}", f[0]);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(
        err.contains("table=group-role-assignments requests=2 "),
        "the summary, then the scopes: {err}"
    );
}

const CUSTOM: &str = "6a1f0c2e-4b8d-4e3a-9f5c-7d2b1e0a3c01";
const UNUSED: &str = "6a1f0c2e-4b8d-4e3a-9f5c-7d2b1e0a3c02";

/// A custom role definition row (`authorizationresources`, the azure-docs
/// "role definitions permissions list" sample's shape).
fn role_def(guid: &str, name: &str) -> Value {
    json!({
        "id": format!("/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{guid}"),
        "name": guid, "type": "microsoft.authorization/roledefinitions", "subscriptionId": SUB,
        "properties": {"roleName": name, "type": "CustomRole", "assignableScopes": [format!("/subscriptions/{SUB}")],
            "permissions": [{"actions": ["Microsoft.Network/virtualNetworks/subnets/join/action",
                                         "Microsoft.Network/virtualNetworks/subnets/read"],
                             "notActions": [], "dataActions": [], "notDataActions": []}]}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_role_is_read_only_because_an_identity_holds_it() {
    // The control plane joins the subnet through a least-privilege custom role: its
    // definition is asked for by name (one query), the unused one is not read, and
    // AKSMI020 is satisfied. Without any custom role, no definition is asked for.
    let ras = json!([
        ra(
            1,
            CP,
            "ServicePrincipal",
            CONTRIBUTOR,
            &rg("MC_rg-app_aks-grp_japaneast")
        ),
        ra(2, CP, "ServicePrincipal", CUSTOM, &subnet()),
        role_def(CUSTOM, "subnet-joiner"),
        role_def(UNUSED, "unused"),
    ])
    .to_string();
    let clusters = cluster().to_string();
    let t = Tenant::from_files([
        ("clusters.json", clusters.as_str()),
        ("role-assignments.json", ras.as_str()),
    ])
    .unwrap();
    let e = serve(t, None, "").await;
    let out = e.out("r");
    let saved = e.out("saved");
    let o = e
        .audit(&[
            "--subscription",
            SUB,
            "--out",
            &out.display().to_string(),
            "--save-inventory",
            &saved.display().to_string(),
        ])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(findings(&out).is_empty(), "{:?}", findings(&out));
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(
        err.contains("table=role-definitions requests=1 pages=1 rows=1 "),
        "{err}"
    );
    // The saved folder replays the same verdict offline.
    let saved_defs = read(&saved.join("role-definitions.json"));
    assert!(
        saved_defs.contains("subnet-joiner") && !saved_defs.contains("\"unused\""),
        "{saved_defs}"
    );
    let replay = replay(&e, &saved);
    assert_eq!(
        read(&replay.join("role-assignments.csv")),
        read(&out.join("role-assignments.csv"))
    );
    assert!(findings(&replay).is_empty(), "{:?}", findings(&replay));

    // The same tenant without the custom grant: no definition asked for.
    let e = serve(tenant(true), None, "").await;
    let out = e.out("r");
    let o = e
        .audit(&["--subscription", SUB, "--out", &out.display().to_string()])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains("table=role-definitions"),
        "{}",
        text(&o)
    );
}
