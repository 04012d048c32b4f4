//! State across runs: what each run saw, so a flip from service principal to managed
//! identity (and the pools that have not been re-imaged since) can be recognised.
//!
//! [`observe`] is the single place that decides what a cluster's history becomes after
//! this run; the rules use it to classify and the writer stores its result.
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::inventory::{Cluster, SmallMap};

pub const STATE_FILE: &str = "state.json";
const STATE_VERSION: u32 = 1;

/// Everything remembered between runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub version: u32,
    pub last_run: Option<DateTime<Utc>>,
    /// Keyed by the lower-cased cluster id.
    pub clusters: BTreeMap<String, ClusterHistory>,
    /// Fingerprints of the last run's findings, for new/resolved.
    ///
    /// Shared strings: each is a key of [`Self::finding_first_seen`] too (a large
    /// estate has hundreds of thousands).
    #[serde(default)]
    pub findings: BTreeSet<Arc<str>>,
    /// Fingerprint → the first run that found it (suppressed or not), for `first_seen`
    /// in the reports. A fingerprint of an older state file without an entry counts
    /// from that file's `last_run`: the first sighting this state can vouch for.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub finding_first_seen: BTreeMap<Arc<str>, DateTime<Utc>>,
    /// Top-level keys this version does not know (a newer version's data): kept as
    /// they are when the file is rewritten, so a rollback loses nothing.
    #[serde(flatten)]
    pub unknown: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterHistory {
    pub id: String,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// `service_principal`, `system_assigned` or `user_assigned`, as last seen.
    pub mode: ControlPlaneIdentity,
    /// The service principal's client id while the cluster used one.
    pub sp_client_id: Option<String>,
    /// Pool name (lower-cased) → node image version, as last seen.
    pub pools: SmallMap<Option<String>>,
    /// Set once a flip from service principal to managed identity was observed.
    pub migration: Option<Box<Migration>>,
    /// Registries the service principal could pull from (AcrPull) before the flip.
    #[serde(default)]
    pub sp_acr_registries: Vec<String>,
    /// Whether [`Self::sp_acr_registries`] is known: the last service-principal run
    /// knew the principal's object id and read its role assignments. Empty and known
    /// means the principal pulled from no registry (AKSMI022 stays quiet); unknown
    /// (Resource Graph names no service principal by client id) leaves AKSMI022 a
    /// low-severity prompt.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sp_acr_known: bool,
    /// Each pool as the last run that saw the cluster on a service principal saw it;
    /// `None` once on a managed identity (the flip moves it into [`Migration::sp_pools`])
    /// and in files written before this field existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sp_pools: Option<SmallMap<PoolRecord>>,
    /// `properties.resourceUID` as last seen: another value means the cluster was
    /// deleted and created again under the same id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_uid: Option<String>,
    /// `systemData.createdAt` as last seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    /// The kubelet identity's object id (lower-cased) as last seen on a managed
    /// identity, and the registry scopes it held a pull grant at (AcrPull or
    /// Container Registry Repository Reader); see [`observe_kubelet`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubelet: Option<KubeletRecord>,
    /// Set once the kubelet identity was seen replaced (`az aks update
    /// --assign-kubelet-identity`): the new identity needs the registry access the
    /// old one had (AKSMI022).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubelet_change: Option<Box<KubeletChange>>,
    /// When Resource Graph's change history (`resourcechanges`, 14 days) was read for
    /// this managed-identity cluster's flip (see [`bootstrap`]): once read, found or
    /// not, it is not asked again (a flip after that shows in the history itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes_read: Option<DateTime<Utc>>,
}

/// A kubelet identity and the registries it could pull from, as one run saw them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KubeletRecord {
    pub object_id: String,
    /// `None` when that run could not read the identity's role assignments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registries: Option<Vec<String>>,
}

/// The kubelet identity replaced on a managed-identity cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KubeletChange {
    /// The first run that saw the new identity.
    pub observed_at: DateTime<Utc>,
    /// The last run that saw the old one.
    pub last_seen_old: DateTime<Utc>,
    pub old_object_id: String,
    /// Registry scopes the old identity held a pull grant at (`None`: not known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_registries: Option<Vec<String>>,
}

/// Adds to `h` (this run's entry for `c`, from [`observe`]) the kubelet identity and
/// `registries` (its pull grant scopes, `None` if its role assignments were not
/// read); records a [`KubeletChange`] when `prev` saw another kubelet identity on a
/// managed identity (not the flip from a service principal, which had none). Pure.
pub fn observe_kubelet(
    h: &mut ClusterHistory,
    prev: Option<&ClusterHistory>,
    c: &Cluster,
    now: DateTime<Utc>,
    registries: Option<Vec<String>>,
) {
    let prev = prev.filter(|p| !recreated(p, c));
    let now_id = c
        .kubelet
        .as_ref()
        .and_then(|k| k.object_id.as_deref())
        .filter(|_| h.mode != ControlPlaneIdentity::ServicePrincipal)
        .map(str::to_ascii_lowercase);
    h.kubelet_change = prev.and_then(|p| p.kubelet_change.clone());
    if let (Some(p), Some(new)) = (prev, &now_id) {
        if let Some(old) = p.kubelet.as_ref().filter(|k| k.object_id != *new) {
            h.kubelet_change = Some(Box::new(KubeletChange {
                observed_at: now,
                last_seen_old: p.last_seen,
                old_object_id: old.object_id.clone(),
                old_registries: old.registries.clone(),
            }));
        }
    }
    h.kubelet = now_id.map(|object_id| KubeletRecord {
        object_id,
        registries,
    });
}

pub use crate::inventory::PoolRecord;

/// How the control plane left the service principal, as the first run after the
/// flip saw it: Microsoft documents different kubelet behaviour for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlipKind {
    /// `az aks update --enable-managed-identity`.
    SystemAssigned,
    /// `... --enable-managed-identity --assign-identity <id>`, kubelet identity made by AKS.
    UserAssigned,
    /// A kubelet identity of the user's own came with the flip (`--assign-kubelet-identity`).
    OwnKubelet,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Migration {
    /// When the flip was first seen (an upper bound of when it happened).
    pub observed_at: DateTime<Utc>,
    /// The last run that still saw the service principal (the lower bound).
    pub last_seen_as_sp: DateTime<Utc>,
    pub sp_client_id: Option<String>,
    /// Pool name (lower-cased) → node image version at the first run after the flip.
    pub pools_at_flip: SmallMap<Option<String>>,
    /// The flip's kind; `None` in records written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<FlipKind>,
    /// The pools on the last run that saw the service principal (what the migration
    /// verdict compares with); `None` in records written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sp_pools: Option<SmallMap<PoolRecord>>,
    /// The pools at the first run after the flip, with their Kubernetes versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flip_pools: Option<SmallMap<PoolRecord>>,
    /// The flip was read from Resource Graph's change history, not seen between two
    /// runs: [`Self::observed_at`] and [`Self::last_seen_as_sp`] are then both the
    /// change's own time.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub from_changes: bool,
}

fn pools_of(c: &Cluster) -> SmallMap<Option<String>> {
    c.pools
        .iter()
        .map(|p| (p.name.to_ascii_lowercase(), p.node_image_version.clone()))
        .collect()
}

/// Each pool of `c` by lower-cased name.
pub fn pool_records(c: &Cluster) -> SmallMap<PoolRecord> {
    c.pools
        .iter()
        .map(|p| {
            (
                p.name.to_ascii_lowercase(),
                PoolRecord {
                    node_image_version: p.node_image_version.clone(),
                    orchestrator_version: p.orchestrator_version.clone(),
                },
            )
        })
        .collect()
}

/// Whether `c` is another cluster than the one `prev` remembers under the same id:
/// deleted and created again (`resourceUID` changed, or `systemData.createdAt`
/// changed or later than the last run that saw the old one). A migration is never
/// inferred across that; the history starts again.
pub fn recreated(prev: &ClusterHistory, c: &Cluster) -> bool {
    if let (Some(a), Some(b)) = (&prev.resource_uid, &c.resource_uid) {
        if !a.eq_ignore_ascii_case(b) {
            return true;
        }
    }
    let Some(created) = c.created_at else {
        return false;
    };
    // Sources print the time with different precision: a second apart is the same.
    match prev.created_at {
        Some(before) => (created - before).num_seconds().abs() > 1,
        None => created > prev.last_seen,
    }
}

/// The records of a history written before [`PoolRecord`]s were kept: image versions only.
fn records_from_images(pools: &SmallMap<Option<String>>) -> SmallMap<PoolRecord> {
    pools
        .iter()
        .map(|(name, image)| {
            (
                name.clone(),
                PoolRecord {
                    node_image_version: image.clone(),
                    orchestrator_version: None,
                },
            )
        })
        .collect()
}

/// The service-principal client ids that migrated clusters left behind: their
/// kubelet may still use one, so its credential expiry still matters.
pub fn migrated_sp_client_ids(h: &History) -> Vec<String> {
    let mut ids: Vec<String> = h
        .clusters
        .values()
        .filter_map(|c| c.migration.as_ref()?.sp_client_id.clone())
        .filter(|id| !id.is_empty() && !id.eq_ignore_ascii_case("msi"))
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// A pool this run may find still on the service principal: as the last
/// service-principal run saw it. Only if it still runs that image is its latest node
/// image worth reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingCandidate {
    /// Lower-cased.
    pub cluster_id: String,
    /// Lower-cased.
    pub pool: String,
    pub node_image_version: String,
}

/// The pools whose kubelet this run may find pending: of clusters last seen on a
/// service principal (the flip may show tonight), or with a recorded flip that can
/// leave kubelet pending (user-assigned, or a record without its kind), each pool as
/// the last service-principal run saw it. The collector reads a pool's latest node
/// image only if its cluster is now on a user-assigned identity and the pool still
/// runs that image: the one case AKSMI002 fires for.
pub fn pending_candidates(h: &History) -> Vec<PendingCandidate> {
    let mut out = Vec::new();
    for c in h.clusters.values() {
        let pools = if c.mode == ControlPlaneIdentity::ServicePrincipal {
            Some(
                c.sp_pools
                    .clone()
                    .unwrap_or_else(|| records_from_images(&c.pools)),
            )
        } else {
            c.migration
                .as_ref()
                .filter(|m| matches!(m.kind, None | Some(FlipKind::UserAssigned)))
                .map(|m| {
                    m.sp_pools
                        .clone()
                        .unwrap_or_else(|| records_from_images(&m.pools_at_flip))
                })
        };
        for (pool, r) in pools.iter().flat_map(|p| p.iter()) {
            if let Some(image) = &r.node_image_version {
                out.push(PendingCandidate {
                    cluster_id: c.id.to_ascii_lowercase(),
                    pool: pool.to_ascii_lowercase(),
                    node_image_version: image.clone(),
                });
            }
        }
    }
    out
}

/// What a cluster's history becomes after this run saw `c`; `flip` is the kind of
/// switch `c` shows if this run sees it leave its service principal (the rules tell:
/// `rules::migration::flip_kind`). Pure.
pub fn observe(
    prev: Option<&ClusterHistory>,
    c: &Cluster,
    now: DateTime<Utc>,
    sp_acr_registries: &[String],
    flip: FlipKind,
) -> ClusterHistory {
    // A cluster deleted and created again under the same id: a new history.
    let prev = prev.filter(|p| !recreated(p, c));
    let mode = ControlPlaneIdentity::of(c);
    let on_sp = mode == ControlPlaneIdentity::ServicePrincipal;
    let mut migration = prev.and_then(|p| p.migration.clone());
    if let Some(p) = prev {
        if p.mode == ControlPlaneIdentity::ServicePrincipal && !on_sp {
            // The flip happened between the previous run and this one. A newer flip
            // (SP again, then MI again) replaces an older record.
            migration = Some(Box::new(Migration {
                observed_at: now,
                last_seen_as_sp: p.last_seen,
                sp_client_id: p.sp_client_id.clone(),
                pools_at_flip: pools_of(c),
                kind: Some(flip),
                sp_pools: Some(
                    p.sp_pools
                        .clone()
                        .unwrap_or_else(|| records_from_images(&p.pools)),
                ),
                flip_pools: Some(pool_records(c)),
                from_changes: false,
            }));
        }
    }
    if on_sp {
        migration = None;
    }
    let mut changes_read = prev.and_then(|p| p.changes_read);
    if let (false, Some(changes)) = (on_sp, c.changes.as_ref().filter(|c| c.unread.is_none())) {
        changes_read = changes_read.or(Some(now));
        if migration.is_none() {
            migration = changes
                .flip
                .as_ref()
                .and_then(|f| bootstrap(c, f, flip))
                .map(Box::new);
        }
    }
    let sp_client_id = if on_sp {
        c.sp_client_id.clone()
    } else {
        prev.and_then(|p| p.sp_client_id.clone())
    };
    let sp_acr_registries = if on_sp {
        sp_acr_registries.to_vec()
    } else {
        prev.map(|p| p.sp_acr_registries.clone())
            .unwrap_or_default()
    };
    // On a service-principal run the caller sets it (`note_sp_acr_known`); a grant
    // seen is proof enough.
    let sp_acr_known = if on_sp {
        !sp_acr_registries.is_empty()
    } else {
        prev.is_some_and(|p| p.sp_acr_known)
    };
    ClusterHistory {
        id: c.id.clone(),
        first_seen: prev.map(|p| p.first_seen).unwrap_or(now),
        last_seen: now,
        mode,
        sp_client_id,
        pools: pools_of(c),
        migration,
        sp_acr_registries,
        sp_acr_known,
        sp_pools: on_sp.then(|| pool_records(c)),
        resource_uid: c
            .resource_uid
            .clone()
            .or_else(|| prev.and_then(|p| p.resource_uid.clone())),
        created_at: c.created_at.or(prev.and_then(|p| p.created_at)),
        // The caller adds them (`observe_kubelet`); carried over meanwhile.
        kubelet: prev.and_then(|p| p.kubelet.clone()),
        kubelet_change: prev.and_then(|p| p.kubelet_change.clone()),
        changes_read,
    }
}

/// The migration record of a flip Resource Graph's change history shows for `c`, a
/// cluster on a managed identity with none recorded (the first run came after the
/// flip). Recorded once, it is judged by the same rows as a flip seen between two
/// runs (`rules::migration`). A flip older than the cluster's creation belongs to
/// another cluster under the same id: none.
pub fn bootstrap(
    c: &Cluster,
    f: &crate::inventory::ChangedFlip,
    kind: FlipKind,
) -> Option<Migration> {
    if c.created_at.is_some_and(|created| created > f.at) {
        return None;
    }
    let images = |p: &SmallMap<PoolRecord>| -> SmallMap<Option<String>> {
        p.iter()
            .map(|(k, r)| (k.clone(), r.node_image_version.clone()))
            .collect()
    };
    Some(Migration {
        observed_at: f.at,
        last_seen_as_sp: f.at,
        sp_client_id: f.sp_client_id.clone(),
        pools_at_flip: images(&f.pools_after),
        kind: Some(kind),
        sp_pools: Some(f.pools_before.clone()),
        flip_pools: Some(f.pools_after.clone()),
        from_changes: true,
    })
}

crate::named::named_enum! {
    /// Kubelet migration state of one cluster.
    pub enum MigrationStatus {
        NotMigrated = "not_migrated",
        NoneObserved = "none_observed",
        Pending = "pending",
        Complete = "complete",
        Unknown = "unknown",
    }
}

impl History {
    /// The history after this run: every seen cluster observed, unseen ones kept until
    /// they are older than `keep_days`.
    pub fn advance(
        self,
        observed: Vec<ClusterHistory>,
        findings: BTreeSet<Arc<str>>,
        now: DateTime<Utc>,
        keep_days: i64,
    ) -> History {
        // Built in one pass (sorted, full nodes; a later entry for the same id wins, as
        // an insert would): inserting a large estate's clusters one by one left the
        // map's nodes a third empty.
        let clusters: BTreeMap<String, ClusterHistory> = self
            .clusters
            .into_iter()
            .filter(|(_, h)| now - h.last_seen <= Duration::days(keep_days))
            .chain(observed.into_iter().map(|h| (h.id.to_ascii_lowercase(), h)))
            .collect();
        let mut finding_first_seen = self.finding_first_seen;
        finding_first_seen.retain(|fp, _| findings.contains(fp));
        History {
            version: STATE_VERSION,
            last_run: Some(now),
            clusters,
            findings,
            finding_first_seen,
            unknown: self.unknown,
        }
    }

    /// When the finding with this fingerprint was first seen, as this history knows
    /// it: its recorded date, else the last run for a fingerprint recorded without one.
    pub fn finding_seen(&self, fingerprint: &str) -> Option<DateTime<Utc>> {
        self.finding_first_seen
            .get(fingerprint)
            .copied()
            .or_else(|| {
                self.findings
                    .contains(fingerprint)
                    .then_some(self.last_run?)
            })
    }

    pub fn get(&self, cluster_id: &str) -> Option<&ClusterHistory> {
        self.clusters.get(&cluster_id.to_ascii_lowercase())
    }

    /// Removes and returns a cluster's history: the audit moves each one into the
    /// next history instead of holding two copies of a large estate's.
    pub fn take(&mut self, cluster_id: &str) -> Option<ClusterHistory> {
        self.clusters.remove(&cluster_id.to_ascii_lowercase())
    }

    /// Makes each first-seen date's fingerprint the finding set's string where both
    /// hold it (read from a file, they are two copies: ~50 MB at the largest benchmark).
    fn share_fingerprints(&mut self) {
        let dates = std::mem::take(&mut self.finding_first_seen);
        self.finding_first_seen = dates
            .into_iter()
            .map(|(fp, seen)| (self.findings.get(&fp).cloned().unwrap_or(fp), seen))
            .collect();
    }

    /// Loads `DIR/state.json`; a missing file is an empty history, a corrupt one an error.
    pub fn load(dir: &Path) -> anyhow::Result<History> {
        let path = dir.join(STATE_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(History::default()),
            Err(e) => return Err(e).with_context(|| format!("reading history {}", path.display())),
        };
        let mut h: History = serde_json::from_str(&text).with_context(|| {
            format!(
                "history {} is corrupt (fix or move it away; it is never reset silently)",
                path.display()
            )
        })?;
        drop(text);
        h.share_fingerprints();
        if h.version > STATE_VERSION {
            bail!(
                "history {} has version {} but this tool reads up to {STATE_VERSION}",
                path.display(),
                h.version
            );
        }
        Ok(h)
    }

    /// Writes `DIR/state.json` atomically.
    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        self.stage(dir)?.commit()
    }

    /// Writes `DIR/state.json` under a temporary name, to be put in place by
    /// [`crate::secure_fs::Staged::commit`]: the run writes its next history before the
    /// reports and frees it (a large estate's is ~200 MB in memory), but commits it
    /// only after the outbox, as [`Self::save`] would.
    pub fn stage(&self, dir: &Path) -> anyhow::Result<crate::secure_fs::Staged> {
        // Streamed, compact: a large estate's history is ~100 MB of JSON.
        crate::secure_fs::stage_atomic_with(&dir.join(STATE_FILE), |w| {
            Ok(serde_json::to_writer(w, self)?)
        })
    }
}

// The atomic, private writes every state file uses live in `crate::secure_fs`; the
// names stay here for callers that reach them through the history.
pub use crate::secure_fs::{create_private_dir, write_atomic, write_atomic_with};

crate::named::named_enum! {
    /// How the control plane authenticates to Azure (`control_plane_identity` in
    /// clusters.csv and report.json, `mode` in state.json).
    pub enum ControlPlaneIdentity {
        ServicePrincipal = "service_principal",
        SystemAssigned = "system_assigned",
        UserAssigned = "user_assigned",
    }
}

impl ControlPlaneIdentity {
    /// How `c`'s control plane authenticates, as ARM shows it.
    pub fn of(c: &Cluster) -> ControlPlaneIdentity {
        match c.identity.as_ref().map(|i| i.kind) {
            None => ControlPlaneIdentity::ServicePrincipal,
            Some(crate::inventory::IdentityType::SystemAssigned) => {
                ControlPlaneIdentity::SystemAssigned
            }
            Some(crate::inventory::IdentityType::UserAssigned) => {
                ControlPlaneIdentity::UserAssigned
            }
        }
    }
}

#[cfg(test)]
mod tests;
