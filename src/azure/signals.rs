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

/// One change row, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeRow {
    /// Lower-cased.
    pub target: String,
    pub at: DateTime<Utc>,
    pub changes: serde_json::Map<String, Value>,
}

impl ChangeRow {
    pub fn parse(v: &Value) -> Option<ChangeRow> {
        let target = v.get("targetResourceId")?.as_str()?.to_ascii_lowercase();
        let at = DateTime::parse_from_rfc3339(v.get("timestamp")?.as_str()?)
            .ok()?
            .with_timezone(&Utc);
        let changes = v.get("changes")?.as_object()?.clone();
        Some(ChangeRow {
            target,
            at,
            changes,
        })
    }
}

/// A change value as a string: `None` for absent, empty or `"null"` (the docs'
/// example prints a missing previous value as the string `"null"`).
fn value(changes: &serde_json::Map<String, Value>, key: &str, which: &str) -> Option<String> {
    let v = changes.get(key)?.get(which)?;
    let s = match v {
        Value::String(s) => s.trim().to_string(),
        Value::Null => return None,
        other => other.to_string(),
    };
    (!s.is_empty() && !s.eq_ignore_ascii_case("null")).then_some(s)
}

/// Whether a change switched the control plane from a service principal to a
/// managed identity.
pub fn is_flip(changes: &serde_json::Map<String, Value>) -> bool {
    const CLIENT: &str = "properties.servicePrincipalProfile.clientId";
    let to_msi = value(changes, CLIENT, "newValue").is_some_and(|v| v.eq_ignore_ascii_case("msi"))
        && value(changes, CLIENT, "previousValue").is_some_and(|v| !v.eq_ignore_ascii_case("msi"));
    let identity = value(changes, "identity.type", "newValue").is_some_and(|v| {
        v.eq_ignore_ascii_case("SystemAssigned") || v.eq_ignore_ascii_case("UserAssigned")
    }) && value(changes, "identity.type", "previousValue")
        .is_none_or(|v| v.eq_ignore_ascii_case("None"));
    to_msi || identity
}

/// `properties.agentPoolProfiles[3].nodeImageVersion` → (3, "nodeImageVersion");
/// `Err` for a key about the pools that is not one pool's field (an element or the
/// array added or removed).
fn pool_key(key: &str) -> Option<Result<(usize, &str), ()>> {
    let rest = key.strip_prefix("properties.agentPoolProfiles")?;
    let Some(rest) = rest.strip_prefix('[') else {
        return Some(Err(()));
    };
    let Some((index, field)) = rest.split_once(']') else {
        return Some(Err(()));
    };
    let Ok(index) = index.parse::<usize>() else {
        return Some(Err(()));
    };
    match field.strip_prefix('.') {
        Some(f) if !f.is_empty() => Some(Ok((index, f))),
        _ => Some(Err(())),
    }
}

/// The flip `c`'s change rows show (the last one, if several), with each pool's
/// versions just before and after it rebuilt by undoing the later changes from
/// what the cluster shows now. A pool change that cannot be tied to one of today's
/// pools (index out of range, a new value that is not today's, a pool added or
/// removed, a first value) makes every pool's versions unknown: the verdict then
/// says `unknown`, never `pending`, for them.
pub fn flip_from_changes(c: &Cluster, rows: &[ChangeRow]) -> Option<ChangedFlip> {
    let mut rows: Vec<&ChangeRow> = rows.iter().collect();
    rows.sort_by_key(|r| r.at);
    let flip_at = rows.iter().rposition(|r| is_flip(&r.changes))?;
    let flip = rows[flip_at];
    let mut now: Vec<PoolRecord> = c
        .pools
        .iter()
        .map(|p| PoolRecord {
            node_image_version: p.node_image_version.clone(),
            orchestrator_version: p.orchestrator_version.clone(),
        })
        .collect();
    let mut known = true;
    let mut after: Option<Vec<PoolRecord>> = None;
    for (i, r) in rows.iter().enumerate().rev() {
        if i < flip_at {
            break;
        }
        if i == flip_at {
            after = Some(now.clone());
        }
        for key in r.changes.keys() {
            let Some(parsed) = pool_key(key) else {
                continue;
            };
            let Ok((index, field)) = parsed else {
                known = false;
                continue;
            };
            let current =
                format!("properties.agentPoolProfiles[{index}].currentOrchestratorVersion");
            let image = match field {
                "nodeImageVersion" => true,
                "currentOrchestratorVersion" => false,
                // The desired version: only when the row lacks the current one.
                "orchestratorVersion" if !r.changes.contains_key(&current) => false,
                "name" => {
                    known = false;
                    continue;
                }
                _ => continue,
            };
            let Some(record) = now.get_mut(index) else {
                known = false;
                continue;
            };
            let slot = if image {
                &mut record.node_image_version
            } else {
                &mut record.orchestrator_version
            };
            // Each change must end where the next one (or today) starts.
            if slot.as_deref().map(str::trim) != value(&r.changes, key, "newValue").as_deref() {
                known = false;
            }
            match value(&r.changes, key, "previousValue") {
                Some(prev) => *slot = Some(prev),
                None => known = false, // the pool was created here
            }
        }
    }
    let before = now;
    let after = after.unwrap_or_else(|| before.clone());
    let named = |records: Vec<PoolRecord>| -> SmallMap<PoolRecord> {
        c.pools
            .iter()
            .zip(records)
            .map(|(p, r)| {
                (
                    p.name.to_ascii_lowercase(),
                    if known { r } else { PoolRecord::default() },
                )
            })
            .collect()
    };
    Some(ChangedFlip {
        at: flip.at,
        sp_client_id: value(
            &flip.changes,
            "properties.servicePrincipalProfile.clientId",
            "previousValue",
        )
        .filter(|v| !v.eq_ignore_ascii_case("msi")),
        pools_before: named(before),
        pools_after: named(after),
    })
}

/// Reads the flips of `want` (indices into `clusters`); returns the queries sent.
async fn read_changes(
    client: &ArmClient,
    s: &AzureSettings,
    clusters: &mut [Cluster],
    want: &[usize],
    failed: &mut Failed,
    mut saved: Option<&mut Saved>,
) -> usize {
    let mut sent = 0;
    // Batches of subscriptions, as the audit's own queries.
    let subs = distinct_subscriptions(want.iter().map(|&i| clusters[i].subscription_id.as_str()));
    let mut found: HashMap<String, Vec<ChangeRow>> = HashMap::new();
    let mut read: Vec<usize> = Vec::new();
    for batch in subs.chunks(MAX_SUBSCRIPTIONS_PER_QUERY) {
        let members: Vec<usize> = want
            .iter()
            .copied()
            .filter(|&i| batch.contains(&clusters[i].subscription_id.to_ascii_lowercase()))
            .collect();
        let filter = if members.len() <= IDS_PER_QUERY {
            let ids: Vec<String> = members.iter().map(|&i| literal(&clusters[i].id)).collect();
            format!(
                "and tostring(properties.targetResourceId) in~ ({})",
                ids.join(", ")
            )
        } else {
            String::new()
        };
        sent += 1;
        match rows(
            client,
            s,
            "resourcechanges",
            &FLIPS.replacen("{clusters}", &filter, 1),
            batch.to_vec(),
        )
        .await
        {
            Ok(rs) => {
                for r in rs.iter().filter_map(ChangeRow::parse) {
                    found.entry(r.target.clone()).or_default().push(r);
                }
                if let Some(saved) = saved.as_deref_mut() {
                    saved.changes.extend(rs);
                }
                read.extend(members);
            }
            Err(e) => {
                tracing::warn!(error = %e, clusters = members.len(), "resourcechanges not read; the migration check of those clusters is not evaluated");
                let why = format!("Resource Graph's change history not read: {e}");
                failed.add(batch, &why);
                for &i in &members {
                    clusters[i].changes = Some(ClusterChanges {
                        flip: None,
                        unread: Some(why.clone()),
                    });
                }
            }
        }
    }
    // Pool version changes, only for the clusters whose flip was found.
    let flipped: Vec<usize> = read
        .iter()
        .copied()
        .filter(|&i| {
            found
                .get(&clusters[i].id.to_ascii_lowercase())
                .is_some_and(|rs| rs.iter().any(|r| is_flip(&r.changes)))
        })
        .collect();
    let mut unread: Vec<usize> = Vec::new();
    for chunk in flipped.chunks(IDS_PER_QUERY) {
        let ids: Vec<String> = chunk.iter().map(|&i| literal(&clusters[i].id)).collect();
        let subs =
            distinct_subscriptions(chunk.iter().map(|&i| clusters[i].subscription_id.as_str()));
        sent += 1;
        match rows(
            client,
            s,
            "resourcechanges",
            &POOL_CHANGES.replacen("{ids}", &ids.join(", "), 1),
            subs.clone(),
        )
        .await
        {
            Ok(rs) => {
                for r in rs.iter().filter_map(ChangeRow::parse) {
                    let list = found.entry(r.target.clone()).or_default();
                    if !list.iter().any(|x| x == &r) {
                        list.push(r);
                    }
                }
                if let Some(saved) = saved.as_deref_mut() {
                    let known: std::collections::HashSet<String> = saved
                        .changes
                        .iter()
                        .map(|v| str_of(v, "id").to_string())
                        .collect();
                    saved
                        .changes
                        .extend(rs.into_iter().filter(|v| !known.contains(str_of(v, "id"))));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "resourcechanges (pool versions) not read; those flips are read again next run");
                let why = format!("Resource Graph's change history not read: {e}");
                failed.add(&subs, &why);
                for &i in chunk {
                    clusters[i].changes = Some(ClusterChanges {
                        flip: None,
                        unread: Some(why.clone()),
                    });
                }
                unread.extend_from_slice(chunk);
            }
        }
    }
    for i in read.into_iter().filter(|i| !unread.contains(i)) {
        let c = &mut clusters[i];
        let rows = found.remove(&c.id.to_ascii_lowercase()).unwrap_or_default();
        c.changes = Some(ClusterChanges {
            flip: flip_from_changes(c, &rows),
            unread: None,
        });
    }
    sent
}

/// `/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachineScaleSets/x/virtualMachines/0` → its scale set's id, lower-cased.
fn scale_set_of(vm_id: &str) -> Option<String> {
    let lower = vm_id.to_ascii_lowercase();
    let at = lower.rfind("/virtualmachines/")?;
    let parent = &lower[..at];
    parent
        .contains("/virtualmachinescalesets/")
        .then(|| parent.to_string())
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Reads the scale sets of the node resource groups of `want`; returns queries sent.
async fn read_scale_sets(
    client: &ArmClient,
    s: &AzureSettings,
    clusters: &mut [Cluster],
    want: &[usize],
    failed: &mut Failed,
    mut saved: Option<&mut Saved>,
) -> usize {
    let key = group_key;
    let mut groups: Vec<(String, String)> = want.iter().map(|&i| key(&clusters[i])).collect();
    groups.sort();
    groups.dedup();
    let mut sent = 0;
    let mut by_group: BTreeMap<(String, String), NodeScaleSets> = BTreeMap::new();
    for chunk in groups.chunks(IDS_PER_QUERY) {
        let mut names: Vec<String> = chunk.iter().map(|(_, g)| literal(g)).collect();
        names.dedup();
        let subs = distinct_subscriptions(chunk.iter().map(|(s, _)| s.as_str()));
        sent += 1;
        let sets = match rows(
            client,
            s,
            "scale-sets",
            &SCALE_SETS.replacen("{groups}", &names.join(", "), 1),
            subs.clone(),
        )
        .await
        {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, groups = chunk.len(), "scale sets not read; the migration verdict of those clusters rests on history");
                failed.add(
                    &subs,
                    &format!("node resource groups' scale sets not read: {e}"),
                );
                for g in chunk {
                    by_group.insert(
                        g.clone(),
                        NodeScaleSets {
                            unread: Some(format!("Resource Graph: {e}")),
                            ..Default::default()
                        },
                    );
                }
                continue;
            }
        };
        sent += 1;
        let vms = match rows(
            client,
            s,
            "scale-set-vms",
            &SCALE_SET_VMS.replacen("{groups}", &names.join(", "), 1),
            subs.clone(),
        )
        .await
        {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::warn!(error = %e, groups = chunk.len(), "scale-set instances not read (computeresources)");
                failed.add(
                    &subs,
                    &format!("node resource groups' scale-set instances not read: {e}"),
                );
                None
            }
        };
        if let Some(saved) = saved.as_deref_mut() {
            saved.sets.extend(sets.iter().cloned());
            saved.vms.extend(vms.iter().flatten().cloned());
        }
        by_group.extend(group_scale_sets(chunk, &sets, vms.as_deref()));
    }
    for &i in want {
        if let Some(n) = by_group.get(&key(&clusters[i])) {
            clusters[i].scale_sets = Some(n.clone());
        }
    }
    sent
}

/// (subscription, node resource group), lower-cased.
fn group_key(c: &Cluster) -> (String, String) {
    (
        c.subscription_id.to_ascii_lowercase(),
        c.node_resource_group
            .as_deref()
            .unwrap_or("")
            .to_ascii_lowercase(),
    )
}

/// `/subscriptions/{s}/resourceGroups/{g}/...` → (s, g), lower-cased.
fn id_group(id: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = id.split('/').collect();
    let s = parts
        .iter()
        .position(|p| p.eq_ignore_ascii_case("subscriptions"))?;
    let g = parts
        .iter()
        .position(|p| p.eq_ignore_ascii_case("resourcegroups"))?;
    Some((
        parts.get(s + 1)?.to_ascii_lowercase(),
        parts.get(g + 1)?.to_ascii_lowercase(),
    ))
}

/// The scale sets of each of `groups`, from the rows of kql/scale-sets.kql and
/// kql/scale-set-vms.kql (`vms` `None`: not read). Rows of other groups are ignored.
fn group_scale_sets(
    groups: &[(String, String)],
    sets: &[Value],
    vms: Option<&[Value]>,
) -> BTreeMap<(String, String), NodeScaleSets> {
    let mut instances: HashMap<String, Vec<Option<bool>>> = HashMap::new();
    for vm in vms.into_iter().flatten() {
        if let Some(parent) = scale_set_of(str_of(vm, "id")) {
            instances
                .entry(parent)
                .or_default()
                .push(vm.get("latestModelApplied").and_then(Value::as_bool));
        }
    }
    let mut out: BTreeMap<(String, String), NodeScaleSets> = groups
        .iter()
        .map(|g| {
            (
                g.clone(),
                NodeScaleSets {
                    scale_sets: vec![],
                    instances_read: vms.is_some(),
                    unread: None,
                },
            )
        })
        .collect();
    for row in sets {
        let id = str_of(row, "id").to_string();
        let Some(entry) = id_group(&id).and_then(|g| out.get_mut(&g)) else {
            continue;
        };
        entry.scale_sets.push(ScaleSet {
            instances: instances
                .remove(&id.to_ascii_lowercase())
                .unwrap_or_default(),
            name: str_of(row, "name").to_string(),
            pool_tag: row
                .get("poolTag")
                .and_then(Value::as_str)
                .map(str::to_string),
            identities: row
                .get("identities")
                .and_then(Value::as_object)
                .map(|m| m.keys().cloned().collect()),
            id,
        });
    }
    out
}

/// The rows the follow-ups read, written by `--save-inventory` under the names the
/// inventory folder and the emulator read ([`from_folder`]).
#[derive(Default)]
pub struct Saved {
    changes: Vec<Value>,
    sets: Vec<Value>,
    vms: Vec<Value>,
}

/// Inventory-folder files of the follow-ups' rows (ARM / Resource Graph rows, or the
/// follow-up queries' projected rows, as `--save-inventory` writes them).
pub const CHANGES_FILE: &str = "resource-changes.json";
pub const SCALE_SETS_FILE: &str = "scale-sets.json";
pub const SCALE_SET_VMS_FILE: &str = "scale-set-vms.json";

impl Saved {
    fn write(&self, dir: &std::path::Path) -> anyhow::Result<()> {
        for (name, rows) in [
            (CHANGES_FILE, &self.changes),
            (SCALE_SETS_FILE, &self.sets),
            (SCALE_SET_VMS_FILE, &self.vms),
        ] {
            let text = serde_json::to_vec(rows)?;
            crate::history::write_atomic(&dir.join(name), &text)?;
        }
        Ok(())
    }
}

/// A change row as kql/cluster-flips.kql projects it, from either that shape or the
/// table's own (`properties.targetResourceId`, `properties.changeAttributes.timestamp`,
/// `properties.changes`).
fn projected_change(v: &Value) -> Value {
    match v.get("properties") {
        Some(p) if v.get("targetResourceId").is_none() => serde_json::json!({
            "id": v.get("id"),
            "targetResourceType": p.get("targetResourceType"),
            "targetResourceId": p.get("targetResourceId"),
            "timestamp": p.pointer("/changeAttributes/timestamp"),
            "changes": p.get("changes"),
        }),
        _ => v.clone(),
    }
}

/// Whether a change row is one the follow-up queries return: a managed cluster's,
/// and a flip or a pool version change.
fn relevant_change(v: &Value) -> bool {
    let cluster = v
        .get("targetResourceType")
        .and_then(Value::as_str)
        .is_none_or(|t| t.eq_ignore_ascii_case("microsoft.containerservice/managedclusters"));
    let Some(changes) = v.get("changes").and_then(Value::as_object) else {
        return false;
    };
    let text = Value::Object(changes.clone())
        .to_string()
        .to_ascii_lowercase();
    cluster
        && (is_flip(changes)
            || text.contains("nodeimageversion")
            || text.contains("rchestratorversion"))
}

/// A scale-set row as kql/scale-sets.kql projects it, from either shape.
fn projected_set(v: &Value) -> Value {
    if v.get("poolTag").is_some() || v.get("identities").is_some() {
        return v.clone();
    }
    serde_json::json!({
        "id": v.get("id"), "name": v.get("name"),
        "poolTag": v.pointer("/tags/aks-managed-poolName"),
        "identities": v.pointer("/identity/userAssignedIdentities"),
    })
}

/// An instance row as kql/scale-set-vms.kql projects it, from either shape.
fn projected_vm(v: &Value) -> Value {
    if v.get("latestModelApplied").is_some() {
        return v.clone();
    }
    serde_json::json!({"id": v.get("id"), "latestModelApplied": v.pointer("/properties/latestModelApplied")})
}

fn read_rows(
    dir: &std::path::Path,
    name: &str,
    of_type: &str,
    project: fn(&Value) -> Value,
) -> anyhow::Result<Option<Vec<Value>>> {
    let path = dir.join(name);
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    let file = path.display().to_string();
    let mut out = Vec::new();
    for raw in crate::inventory::folder::elements(&text, &file)? {
        let Ok(v) = serde_json::from_str::<Value>(raw.get()) else {
            continue;
        };
        let typed = v
            .get("type")
            .and_then(Value::as_str)
            .is_none_or(|t| t.eq_ignore_ascii_case(of_type));
        if typed {
            out.push(project(&v));
        }
    }
    Ok(Some(out))
}

/// The follow-ups from an inventory folder's files (optional: `resource-changes.json`,
/// `scale-sets.json`, `scale-set-vms.json`, the emulator's names), for the same
/// clusters and by the same rules as the live path, so a folder replays as the live
/// run read it. A file absent: that follow-up not read.
pub fn from_folder(
    dir: &std::path::Path,
    inv: &mut Inventory,
    prior: &Prior<'_>,
) -> anyhow::Result<()> {
    if let Some(rows) = read_rows(
        dir,
        CHANGES_FILE,
        "microsoft.resources/changes",
        projected_change,
    )? {
        let mut by_target: HashMap<String, Vec<ChangeRow>> = HashMap::new();
        for r in rows
            .iter()
            .filter(|v| relevant_change(v))
            .filter_map(ChangeRow::parse)
        {
            by_target.entry(r.target.clone()).or_default().push(r);
        }
        for c in inv.clusters.iter_mut() {
            if needs_changes(prior, c) {
                let rows = by_target
                    .remove(&c.id.to_ascii_lowercase())
                    .unwrap_or_default();
                c.changes = Some(ClusterChanges {
                    flip: flip_from_changes(c, &rows),
                    unread: None,
                });
            }
        }
    }
    let Some(sets) = read_rows(
        dir,
        SCALE_SETS_FILE,
        "microsoft.compute/virtualmachinescalesets",
        projected_set,
    )?
    else {
        return Ok(());
    };
    let vms = read_rows(
        dir,
        SCALE_SET_VMS_FILE,
        "microsoft.compute/virtualmachinescalesets/virtualmachines",
        projected_vm,
    )?;
    let want: Vec<usize> = (0..inv.clusters.len())
        .filter(|&i| needs_scale_sets(prior, &inv.clusters[i]))
        .collect();
    let groups: Vec<(String, String)> = want.iter().map(|&i| group_key(&inv.clusters[i])).collect();
    let by_group = group_scale_sets(&groups, &sets, vms.as_deref());
    for i in want {
        if let Some(n) = by_group.get(&group_key(&inv.clusters[i])) {
            inv.clusters[i].scale_sets = Some(n.clone());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
