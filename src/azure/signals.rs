//! Follow-up reads for the kubelet migration verdict, after the audit's tables are in
//! and only for the clusters that need them (so most nights ask nothing):
//!
//! 1. **Flip bootstrap.** A cluster on a managed identity with no flip in history and
//!    whose change history was never read: Resource Graph's `resourcechanges` (14
//!    days) may show the switch (`kql/cluster-flips.kql`). One query per batch of up
//!    to 300 subscriptions holding such clusters (their ids listed when at most 100);
//!    then, only for clusters with a flip, their pool version changes
//!    (`kql/cluster-pool-changes.kql`, 100 ids a query). Once read, found or not, the
//!    history remembers it (`ClusterHistory::changes_read`): not asked again.
//! 2. **Direct signal.** A cluster whose migration verdict (history, with 1.) is
//!    pending or unknown: its node resource group's scale sets
//!    (`kql/scale-sets.kql`, `resources`) and their instances
//!    (`kql/scale-set-vms.kql`, `computeresources`): two queries per 100 node resource
//!    groups.
//!
//! The same functions as the rules decide who needs what ([`needs_changes`],
//! [`needs_scale_sets`]: `history::observe` and `rules::migration::verdict`). A query
//! that fails is logged and leaves the clusters without the signal: no verdict
//! changes, never a coverage gap (the verdict is history's, as without this module).
//! What Resource Graph exposes and what is documented: `crate::inventory::node_signals`.
use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::arg::{ArmClient, BatchScope, MAX_SUBSCRIPTIONS_PER_QUERY};
use super::groups::literal;
use super::AzureSettings;
use crate::history::{
    self, ClusterHistory, ControlPlaneIdentity, History, MigrationStatus, PoolRecord,
};
use crate::inventory::{
    ChangedFlip, Cluster, ClusterChanges, Inventory, NodeScaleSets, ScaleSet, SmallMap,
};
use crate::rules::migration;

/// Ids (clusters, resource groups) in one query (Resource Graph's grouping guidance).
pub const IDS_PER_QUERY: usize = 100;
const FLIPS: &str = include_str!("kql/cluster-flips.kql");
const POOL_CHANGES: &str = include_str!("kql/cluster-pool-changes.kql");
const SCALE_SETS: &str = include_str!("kql/scale-sets.kql");
const SCALE_SET_VMS: &str = include_str!("kql/scale-set-vms.kql");

/// What the follow-ups need of the previous run.
#[derive(Clone, Copy)]
pub struct Prior<'a> {
    pub history: &'a History,
    pub now: DateTime<Utc>,
}

fn next_history(prior: &Prior, c: &Cluster) -> ClusterHistory {
    history::observe(
        prior.history.get(&c.id),
        c,
        prior.now,
        &[],
        migration::flip_kind(c),
    )
}

/// Whether `c`'s change history is worth one read: on a managed identity, no flip
/// recorded (`none_observed`), never read.
pub fn needs_changes(prior: &Prior, c: &Cluster) -> bool {
    if c.conflict.is_some() || c.changes.is_some() {
        return false;
    }
    let h = next_history(prior, c);
    h.mode != ControlPlaneIdentity::ServicePrincipal
        && h.migration.is_none()
        && h.changes_read.is_none()
}

/// Whether `c`'s migration verdict is in doubt (pending or unknown) and its node
/// resource group known: the scale sets may confirm or contradict it.
pub fn needs_scale_sets(prior: &Prior, c: &Cluster) -> bool {
    if c.conflict.is_some() || c.scale_sets.is_some() {
        return false;
    }
    if c.node_resource_group
        .as_deref()
        .is_none_or(|g| g.trim().is_empty())
    {
        return false;
    }
    let v = migration::verdict(c, &next_history(prior, c));
    matches!(
        v.status,
        MigrationStatus::Pending | MigrationStatus::Unknown
    )
}

/// How many follow-up queries ran (first pages; more pages are counted by the stats).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Asked {
    pub changes: usize,
    pub scale_sets: usize,
}

/// Runs the follow-ups for `clusters` (see the module documentation).
///
/// It works on the clusters alone (so it runs beside the pass for grants through
/// groups, which reads and writes the rest of the inventory) and returns the coverage
/// gaps to add.
pub async fn enrich_clusters(
    client: &ArmClient,
    s: &AzureSettings,
    clusters: &mut [crate::inventory::Cluster],
    prior: &Prior<'_>,
) -> (Asked, Vec<crate::inventory::Gap>) {
    let mut asked = Asked::default();
    let mut failed = Failed::default();
    let mut saved = s.save_inventory.as_ref().map(|_| Saved::default());
    let want: Vec<usize> = (0..clusters.len())
        .filter(|&i| needs_changes(prior, &clusters[i]))
        .collect();
    if !want.is_empty() {
        asked.changes +=
            read_changes(client, s, clusters, &want, &mut failed, saved.as_mut()).await;
    }
    let want: Vec<usize> = (0..clusters.len())
        .filter(|&i| needs_scale_sets(prior, &clusters[i]))
        .collect();
    if !want.is_empty() {
        asked.scale_sets +=
            read_scale_sets(client, s, clusters, &want, &mut failed, saved.as_mut()).await;
    }
    if let (Some(saved), Some(dir)) = (&saved, &s.save_inventory) {
        if let Err(e) = saved.write(dir) {
            tracing::warn!(error = %format!("{e:#}"), "--save-inventory: the migration follow-ups' rows not saved");
        }
    }
    let gaps = failed
        .0
        .into_iter()
        .map(|(sub, reason)| crate::inventory::Gap {
            scope: format!("/subscriptions/{sub}"),
            reason,
            tables: vec![GAP_TABLE.to_string()],
        })
        .collect();
    (asked, gaps)
}

/// The coverage-gap table of a follow-up that kept failing: the migration verdicts of
/// the managed-identity clusters in its subscriptions are `not_evaluated`
/// (`rules::evaluated`), as their change history or scale sets may have changed them.
pub const GAP_TABLE: &str = "migration-signals";

/// Subscription → why its follow-up failed (first reason kept).
#[derive(Default)]
struct Failed(BTreeMap<String, String>);

impl Failed {
    fn add(&mut self, subs: &[String], reason: &str) {
        for s in subs {
            self.0
                .entry(s.to_ascii_lowercase())
                .or_insert_with(|| reason.to_string());
        }
    }
}

/// Runs one query over `subscriptions`, every page; the rows, or why not.
async fn rows(
    client: &ArmClient,
    s: &AzureSettings,
    table: &'static str,
    query: &str,
    subscriptions: Vec<String>,
) -> Result<Vec<Value>, String> {
    let mut rows = Vec::new();
    client
        .query_each(
            &s.arm_endpoint,
            &s.arm_scope,
            table,
            query,
            &BatchScope::Subscriptions(subscriptions),
            |v| rows.push(v),
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(rows)
}

fn distinct_subscriptions<'a>(subs: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = subs.map(str::to_ascii_lowercase).collect();
    out.sort();
    out.dedup();
    out
}

mod changes;
mod folder;
mod scale_sets;

pub use changes::*;
pub use folder::*;
use scale_sets::*;

#[cfg(test)]
mod tests;
