//! The built-in demo tenant's inventory files, embedded once for the whole workspace:
//! the emulator serves them ([`crate::Tenant::demo`]) and the audit reads the same
//! text for its offline demo inventory. On disk they are the repository's
//! `examples/demo/` folder (also usable as `--inventory examples/demo`).

/// `(file name, JSON text)` of each demo inventory file.
/// The service principal the demo's payments clusters used before their migration:
/// the audit's demo history names it, and the emulated Microsoft Graph serves it.
pub const PAYMENTS_OLD_SP: &str = "2c4e6a8b-0d2f-4b4d-8f6a-8c0e2a4c6e8a";

pub const FILES: [(&str, &str); 7] = [
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
    // Microsoft Graph's group membership: aks-prod-batch's control plane is in the group
    // holding Network Contributor on vnet-prod (its custom subnet's grant, explained),
    // not in the one holding Managed Identity Operator on rg-identities (still missing).
    (
        "graph-group-memberships.json",
        include_str!("../../../examples/demo/graph-group-memberships.json"),
    ),
    // The newest node image per image family, for `upgradeProfiles/default`: aks-payments'
    // np1 already runs it, np2 (still on the service principal) does not.
    (
        "latest-node-images.json",
        include_str!("../../../examples/demo/latest-node-images.json"),
    ),
];

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
