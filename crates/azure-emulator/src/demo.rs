//! The built-in demo tenant's inventory files, embedded once for the whole workspace:
//! the emulator serves them ([`crate::Tenant::demo`]) and the audit reads the same
//! text for its offline demo inventory. On disk they are the repository's
//! `examples/demo/` folder (also usable as `--inventory examples/demo`).

/// `(file name, JSON text)` of each demo inventory file.
/// The service principal the demo's payments clusters used before their migration:
/// the audit's demo history names it, and the emulated Microsoft Graph serves it.
pub const PAYMENTS_OLD_SP: &str = "2c4e6a8b-0d2f-4b4d-8f6a-8c0e2a4c6e8a";

pub const FILES: [(&str, &str); 9] = [
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

/// The demo's `resourcechanges` rows (`examples/demo/resource-changes.json`), their
/// times moved so that [`CHANGES_TAKEN_AT`] is `now` (Resource Graph keeps 14 days):
/// aks-prod-web left its service principal for a system-assigned identity 5 days
/// before, aks-gov-edge for a user-assigned one 3 days before, before the demo history
/// knew them; aks-prod-core's node image changed 2 days before (no flip). Shape:
/// azure-docs resource-graph `changes/get-resource-changes.md` (an `Update` row's
/// `changes` keyed by property path, values as strings).
pub fn resource_changes(now: chrono::DateTime<chrono::Utc>) -> String {
    let taken: chrono::DateTime<chrono::Utc> = CHANGES_TAKEN_AT.parse().unwrap_or(now);
    let shift = now - taken;
    let mut rows: serde_json::Value =
        serde_json::from_str(RESOURCE_CHANGES).unwrap_or(serde_json::Value::Null);
    for row in rows.as_array_mut().into_iter().flatten() {
        let Some(ts) = row.pointer_mut("/properties/changeAttributes/timestamp") else {
            continue;
        };
        let moved = ts
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| {
                (t.with_timezone(&chrono::Utc) + shift)
                    .format("%Y-%m-%dT%H:%M:%S%.3f+00:00")
                    .to_string()
            });
        if let Some(m) = moved {
            *ts = serde_json::Value::String(m);
        }
    }
    rows.to_string()
}

/// The demo's change history as written (`examples/demo/resource-changes.json`, also
/// read by `--inventory examples/demo` as it stands).
pub const RESOURCE_CHANGES: &str = include_str!("../../../examples/demo/resource-changes.json");
/// The moment the times in [`RESOURCE_CHANGES`] are relative to.
pub const CHANGES_TAKEN_AT: &str = "2026-12-04T12:00:00Z";

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

    #[test]
    fn the_change_history_is_moved_to_now_and_stays_within_fourteen_days() {
        let now: chrono::DateTime<chrono::Utc> = "2027-03-01T00:00:00Z".parse().unwrap();
        let rows: serde_json::Value = serde_json::from_str(&super::resource_changes(now)).unwrap();
        let times: Vec<chrono::DateTime<chrono::Utc>> = rows
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                r.pointer("/properties/changeAttributes/timestamp")
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .parse()
                    .unwrap()
            })
            .collect();
        assert_eq!(times.len(), 3);
        assert!(
            times
                .iter()
                .all(|t| *t < now && now - *t < chrono::Duration::days(14)),
            "{times:?}"
        );
        // aks-prod-web's switch: 5 days and 3 hours before now.
        assert_eq!(times[0], now - chrono::Duration::hours(5 * 24 + 3));
    }
}
