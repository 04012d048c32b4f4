//! The built-in demo tenant's inventory files, embedded once for the whole workspace:
//! the emulator serves them ([`crate::Tenant::demo`]) and the audit reads the same
//! text for its offline demo inventory. On disk they are the repository's
//! `examples/demo/` folder (also usable as `--inventory examples/demo`).

/// `(file name, JSON text)` of each demo inventory file.
/// The service principal the demo's payments clusters used before their migration:
/// the audit's demo history names it, and the emulated Microsoft Graph serves it.
pub const PAYMENTS_OLD_SP: &str = "2c4e6a8b-0d2f-4b4d-8f6a-8c0e2a4c6e8a";

pub const FILES: [(&str, &str); 8] = [
    (
        "subscriptions.json",
        include_str!("../../../examples/demo/subscriptions.json"),
    ),
    (
        "resource-groups.json",
        include_str!("../../../examples/demo/resource-groups.json"),
    ),
    (
        "clusters.json",
        include_str!("../../../examples/demo/clusters.json"),
    ),
    (
        "registries.json",
        include_str!("../../../examples/demo/registries.json"),
    ),
    (
        "role-assignments.json",
        include_str!("../../../examples/demo/role-assignments.json"),
    ),
    // The node resource groups' scale sets and their instances, for the migration
    // follow-ups: aks-payments' np2 (pending in the demo history) has instances not on
    // the latest model (confirms it); aks-payments-batch's np1 (unknown) carries the
    // kubelet identity with every instance on the latest model (settles it);
    // aks-gov-edge (a flip only the change history shows) likewise, which contradicts
    // history's "pending"; aks-prod-web has none visible (signal not available).
    (
        "scale-sets.json",
        include_str!("../../../examples/demo/scale-sets.json"),
    ),
    (
        "scale-set-vms.json",
        include_str!("../../../examples/demo/scale-set-vms.json"),
    ),
    // The newest node image per image family, for `upgradeProfiles/default`: aks-payments'
    // np1 already runs it, np2 (still on the service principal) does not.
    (
        "latest-node-images.json",
        include_str!("../../../examples/demo/latest-node-images.json"),
    ),
];

/// The demo's `resourcechanges` rows, times relative to `now` (Resource Graph keeps 14
/// days): aks-prod-web left its service principal for a system-assigned identity 5
/// days ago and aks-gov-edge for a user-assigned one 3 days ago, before the demo
/// history knew them; aks-prod-core's node image changed 2 days ago (no flip).
/// Shape: azure-docs resource-graph `changes/get-resource-changes.md` (an `Update`
/// row's `changes` keyed by property path, values as strings).
pub fn resource_changes(now: chrono::DateTime<chrono::Utc>) -> String {
    const PLATFORM: &str = "/subscriptions/6f1c3a52-8b0e-4d7a-9c11-2e5b7f8a9d01/resourceGroups/rg-platform/providers/Microsoft.ContainerService/managedClusters";
    let at = |days: i64, hours: i64| {
        (now - chrono::Duration::days(days) - chrono::Duration::hours(hours))
            .format("%Y-%m-%dT%H:%M:%S%.3f+00:00")
            .to_string()
    };
    let row = |cluster: &str, n: u32, at: String, changes: serde_json::Value| {
        let target = format!("{PLATFORM}/{cluster}");
        serde_json::json!({
            "id": format!("{target}/providers/Microsoft.Resources/changes/08584{n:03}2026120412000000000000000000"),
            "name": format!("08584{n:03}2026120412000000000000000000"),
            "type": "microsoft.resources/changes",
            "properties": {
                "targetResourceId": target,
                "targetResourceType": "microsoft.containerservice/managedclusters",
                "changeType": "Update",
                "changeAttributes": {
                    "timestamp": at,
                    "correlationId": format!("7c1e2d3f-4a5b-4c6d-8e7f-{n:012}"),
                    "changedByType": "User",
                    "changedBy": "ops@contoso.com",
                    "clientType": "Azure CLI",
                    "operation": "microsoft.containerservice/managedclusters/write",
                    "changesCount": changes.as_object().map(|m| m.len()).unwrap_or(0),
                    "previousResourceSnapshotId": format!("0858430{n:03}0000000000_snapshot_prev"),
                    "newResourceSnapshotId": format!("0858430{n:03}0000000000_snapshot_new")
                },
                "changes": changes
            }
        })
    };
    serde_json::json!([
        row("aks-prod-web", 1, at(5, 3), serde_json::json!({
            "properties.servicePrincipalProfile.clientId": {"previousValue": "3e5a7c9e-1b3d-4f5a-9c7e-1b3d5f7a9c1e", "newValue": "msi"},
            "identity.type": {"newValue": "SystemAssigned"},
            "properties.provisioningState": {"previousValue": "Updating", "newValue": "Succeeded"}
        })),
        row("aks-gov-edge", 2, at(3, 7), serde_json::json!({
            "properties.servicePrincipalProfile.clientId": {"previousValue": "4f6b8d0a-2c4e-4a6b-8d0f-2c4e6a8b0d2f", "newValue": "msi"},
            "identity.type": {"newValue": "UserAssigned"}
        })),
        row("aks-prod-core", 3, at(2, 1), serde_json::json!({
            "properties.agentPoolProfiles[0].nodeImageVersion": {"previousValue": "AKSUbuntu-2204gen2containerd-202409.23.0", "newValue": "AKSUbuntu-2204gen2containerd-202410.15.0"}
        })),
    ])
    .to_string()
}

/// The text of the demo file `name` (e.g. `clusters.json`), if there is one.
pub fn file(name: &str) -> Option<&'static str> {
    FILES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_file_holds_rows_in_one_of_the_shapes_read() {
        // Deliberately mixed: az's array, ARM's `value`, Resource Graph's `data`.
        for (name, text) in super::FILES {
            let v: serde_json::Value = serde_json::from_str(text).unwrap();
            if name == "latest-node-images.json" {
                assert!(v.as_object().is_some_and(|m| !m.is_empty()), "{name}");
                continue;
            }
            let rows = v
                .as_array()
                .or_else(|| v["value"].as_array())
                .or_else(|| v["data"].as_array())
                .unwrap_or_else(|| panic!("{name}: no rows"));
            assert!(!rows.is_empty(), "{name}");
            assert_eq!(super::file(name), Some(text));
        }
        assert_eq!(super::file("identities.json"), None);
    }
}
