//! The built-in demo tenant: the inventory folder `examples/demo/`, embedded.
use super::Kind;

pub const FILES: &[(Kind, &str, &str)] = &[
    (Kind::Subscriptions, "subscriptions.json", include_str!("../../examples/demo/subscriptions.json")),
    (Kind::ResourceGroups, "resource-groups.json", include_str!("../../examples/demo/resource-groups.json")),
    (Kind::Registries, "registries.json", include_str!("../../examples/demo/registries.json")),
    (Kind::Clusters, "clusters.json", include_str!("../../examples/demo/clusters.json")),
    (Kind::RoleAssignments, "role-assignments.json", include_str!("../../examples/demo/role-assignments.json")),
];

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use crate::history::{ClusterHistory, History, Migration};

const PAYMENTS: &str = "/subscriptions/a3d94b17-52c6-4e08-b1f9-7c20de6a4b12/resourceGroups/rg-payments/providers/Microsoft.ContainerService/managedClusters/aks-payments";
const PAYMENTS_BATCH: &str = "/subscriptions/a3d94b17-52c6-4e08-b1f9-7c20de6a4b12/resourceGroups/rg-payments/providers/Microsoft.ContainerService/managedClusters/aks-payments-batch";
const PAYMENTS_ACR: &str = "/subscriptions/a3d94b17-52c6-4e08-b1f9-7c20de6a4b12/resourceGroups/rg-payments/providers/Microsoft.ContainerRegistry/registries/paymentsacr";
const OLD_IMAGE: &str = "AKSUbuntu-2204gen2containerd-202409.23.0";

/// The history the demo tenant starts from, as if the tool had been running nightly:
/// two payments clusters flipped from a service principal to a managed identity 12
/// days before `now`. Only used when `--demo` finds no history of its own.
pub fn seed_history(now: DateTime<Utc>) -> History {
    let flip = now - Duration::days(12);
    let entry = |id: &str, pools: &[(&str, Option<&str>)], acr: Vec<String>| {
        let pools: BTreeMap<String, Option<String>> = pools
            .iter()
            .map(|(n, v)| (n.to_string(), v.map(str::to_string)))
            .collect();
        ClusterHistory {
            id: id.to_string(),
            first_seen: now - Duration::days(90),
            last_seen: now - Duration::days(1),
            mode: "system_assigned".into(),
            sp_client_id: Some("2c4e6a8b-0d2f-4b4d-8f6a-8c0e2a4c6e8a".into()),
            pools: pools.clone(),
            migration: Some(Migration {
                observed_at: flip,
                last_seen_as_sp: flip - Duration::days(1),
                sp_client_id: Some("2c4e6a8b-0d2f-4b4d-8f6a-8c0e2a4c6e8a".into()),
                pools_at_flip: pools,
            }),
            sp_acr_registries: acr,
        }
    };
    let clusters = [
        entry(PAYMENTS, &[("np1", Some(OLD_IMAGE)), ("np2", Some(OLD_IMAGE))], vec![PAYMENTS_ACR.to_string()]),
        entry(PAYMENTS_BATCH, &[("np1", None)], vec![]),
    ];
    History {
        version: 1,
        last_run: None,
        clusters: clusters.into_iter().map(|c| (c.id.to_ascii_lowercase(), c)).collect(),
        findings: Default::default(),
    }
}
