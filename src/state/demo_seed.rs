//! The built-in demo tenant's past: the history and run table a first `--demo` starts
//! from (kept with the rest of the persistent state, so the inventory does not depend
//! on history or reports). Its inventory files (the repository's `examples/demo/`) are
//! embedded once, in the emulator crate (`azure_emulator::demo`), which serves them for
//! `--demo`.
use chrono::{DateTime, Duration, Utc};

use crate::history::{ClusterHistory, FlipKind, History, Migration, PoolRecord};

const PAYMENTS: &str = "/subscriptions/a3d94b17-52c6-4e08-b1f9-7c20de6a4b12/resourceGroups/rg-payments/providers/Microsoft.ContainerService/managedClusters/aks-payments";
const PAYMENTS_BATCH: &str = "/subscriptions/a3d94b17-52c6-4e08-b1f9-7c20de6a4b12/resourceGroups/rg-payments/providers/Microsoft.ContainerService/managedClusters/aks-payments-batch";
const PAYMENTS_ACR: &str = "/subscriptions/a3d94b17-52c6-4e08-b1f9-7c20de6a4b12/resourceGroups/rg-payments/providers/Microsoft.ContainerRegistry/registries/paymentsacr";
const OLD_IMAGE: &str = "AKSUbuntu-2204gen2containerd-202409.23.0";
/// The service principal the payments clusters used before their migration; the demo
/// emulator's Microsoft Graph has its application (a secret due in 25 days).
/// The payments clusters' old service principal (the emulator's Graph serves it:
/// `azure_emulator::demo::PAYMENTS_OLD_SP`, checked equal in a test).
pub const PAYMENTS_OLD_SP: &str = "2c4e6a8b-0d2f-4b4d-8f6a-8c0e2a4c6e8a";

#[cfg(all(test, feature = "emulator"))]
#[test]
fn the_old_sp_is_the_one_the_emulator_serves() {
    assert_eq!(PAYMENTS_OLD_SP, azure_emulator::demo::PAYMENTS_OLD_SP);
}

/// The history the demo tenant starts from, as if the tool had been running nightly:
/// two payments clusters flipped from a service principal to a managed identity 12
/// days before `now` (aks-payments to a user-assigned one, aks-payments-batch to a
/// system-assigned one). Only used when `--demo` finds no history of its own.
pub fn seed_history(now: DateTime<Utc>) -> History {
    let flip = now - Duration::days(12);
    let entry = |id: &str, kind: FlipKind, pools: &[(&str, Option<&str>)], acr: Vec<String>| {
        let pools: crate::inventory::SmallMap<Option<String>> = pools
            .iter()
            .map(|(n, v)| (n.to_string(), v.map(str::to_string)))
            .collect();
        let records: crate::inventory::SmallMap<PoolRecord> = pools
            .iter()
            .map(|(n, v)| {
                (
                    n.clone(),
                    PoolRecord {
                        node_image_version: v.clone(),
                        orchestrator_version: Some("1.30.6".into()),
                    },
                )
            })
            .collect();
        ClusterHistory {
            id: id.to_string(),
            first_seen: now - Duration::days(90),
            last_seen: now - Duration::days(1),
            mode: match kind {
                FlipKind::SystemAssigned => crate::history::ControlPlaneIdentity::SystemAssigned,
                _ => crate::history::ControlPlaneIdentity::UserAssigned,
            },
            sp_client_id: Some(PAYMENTS_OLD_SP.into()),
            pools: pools.clone(),
            migration: Some(Box::new(Migration {
                observed_at: flip,
                last_seen_as_sp: flip - Duration::days(1),
                sp_client_id: Some(PAYMENTS_OLD_SP.into()),
                pools_at_flip: pools,
                kind: Some(kind),
                sp_pools: Some(records.clone()),
                flip_pools: Some(records),
                from_changes: false,
            })),
            sp_acr_known: true,
            sp_acr_registries: acr,
            sp_pools: None,
            resource_uid: None,
            created_at: None,
            kubelet: None,
            kubelet_change: None,
            changes_read: None,
        }
    };
    let clusters = [
        entry(
            PAYMENTS,
            FlipKind::UserAssigned,
            &[("np1", Some(OLD_IMAGE)), ("np2", Some(OLD_IMAGE))],
            vec![PAYMENTS_ACR.to_string()],
        ),
        entry(
            PAYMENTS_BATCH,
            FlipKind::SystemAssigned,
            &[("np1", None)],
            vec![],
        ),
    ];
    History {
        version: 1,
        last_run: None,
        clusters: clusters
            .into_iter()
            .map(|c| (c.id.to_ascii_lowercase(), c))
            .collect(),
        findings: Default::default(),
        finding_first_seen: Default::default(),
        unknown: Default::default(),
    }
}

/// The run table (`runs.csv`) the demo starts from: ten weeks of nightly runs in which
/// the tenant moved from nine clusters on service principals to today's state, so the
/// demo report shows a trend. Only used when `--demo` finds no run table of its own.
pub fn seed_runs(now: DateTime<Utc>) -> Vec<crate::report::trend::RunRecord> {
    /// Days before now, on SP, kubelet pending clusters, pending pools, critical, high, medium, low, info.
    type Week = (i64, i64, i64, i64, i64, i64, i64, i64, i64);
    const WEEKS: &[Week] = &[
        (70, 9, 0, 0, 2, 24, 11, 1, 1),
        (63, 8, 1, 2, 2, 23, 11, 1, 1),
        (56, 7, 2, 4, 2, 21, 10, 1, 1),
        (49, 6, 3, 5, 1, 20, 10, 0, 1),
        (42, 5, 3, 5, 1, 18, 9, 0, 1),
        (35, 4, 3, 4, 1, 17, 9, 0, 1),
        (28, 4, 2, 3, 1, 16, 9, 0, 1),
        (21, 3, 2, 3, 1, 15, 8, 0, 1),
        (14, 3, 2, 2, 1, 14, 8, 0, 1),
        (7, 2, 1, 2, 1, 13, 8, 0, 1),
        (1, 2, 1, 1, 1, 12, 8, 0, 1),
    ];
    WEEKS
        .iter()
        .map(
            |&(days, on_sp, pending_clusters, pending_pools, critical, high, medium, low, info)| {
                crate::report::trend::RunRecord {
                    run_at: now - Duration::days(days),
                    clusters: 11,
                    on_sp,
                    pending_clusters,
                    pending_pools,
                    critical,
                    high,
                    medium,
                    low,
                    info,
                    suppressed: 0,
                    gaps: 0,
                }
            },
        )
        .collect()
}
