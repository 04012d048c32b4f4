//! The kubelet migration verdict: after a cluster's control plane left its service
//! principal (SP) for a managed identity (MI), does kubelet on each pool still use the
//! SP? No ARM field says so; the answer comes from history (`crate::history`): the
//! pools as the last SP run saw them ([`Migration::sp_pools`]), as the first run after
//! the flip saw them ([`Migration::flip_pools`]), and now.
//!
//! # What Microsoft documents (MicrosoftDocs/azure-aks-docs, `articles/aks/`)
//!
//! - `system-assigned-managed-identity.md` L94 (since 59242d249b4eb0c20aa0bcac16a27e51a8ffe0ec,
//!   2026-07-31; file at c6afddeaf4e1b26a2ec98154037207fdd6915a75): the update to a
//!   system-assigned identity re-images all nodes "so the Kubelet can immediately start
//!   using a managed identity as well". Before that commit the page said kubelet keeps
//!   the SP "until you also upgrade your agent pool". Whether Azure's behaviour or only
//!   the page changed that day is not documented.
//! - `user-assigned-managed-identity.md` L166 (ccbb339ba694585c6436541c025c50c62a308c98,
//!   2026-07-02): "Kubelet continues using a service principal until you also upgrade
//!   your node pool" (`az aks nodepool upgrade --node-image-only`).
//! - Both pages L64: "An update only works if there's a VHD update to consume. If you're
//!   running the latest VHD, you need to wait until the next VHD is available".
//! - `pre-created-kubelet-managed-identity.md` (ccbb339b…): "Updating the kubelet managed
//!   identity upgrades your AKS cluster's node pools".
//! - `upgrade-aks-faq.yml` L139-141 (4c57931ca45685fd16f80fb0edf0bf50af65af5a): "During
//!   an AKS cluster upgrade, nodes are reimaged": a Kubernetes version change re-images.
//! - `kubernetes-service-principal.md` L45 (48d22cf3361289c50e5798a6f788ad8fe2164303): on the
//!   nodes "the service principal credentials are stored in the `/etc/kubernetes/azure.json`
//!   file" — what AKSMI003's verify command reads (`kubectl debug node/…`, `node-access.md`).
//! - A re-image onto the same VHD keeps `nodeImageVersion` (the recording
//!   `test_aks_update_to_msi_cluster` shows the pool `Updating` during the flip and the
//!   same image after): an unchanged image cannot prove "pending" when the docs say the
//!   flip itself re-imaged.
//!
//! # Decision table, per pool (first matching row wins)
//!
//! S = the pool on the last SP run, F = on the first run after the flip, N = now; a
//! version "changed" only when both sides are known and differ (image or Kubernetes).
//! The cluster deleted and created again is handled before: its history restarts, no
//! migration is inferred (`history::recreated`).
//!
//! | # | condition | pool | why |
//! |---|---|---|---|
//! | 1 | pool not in F | on MI | created after the flip |
//! | 2 | N changed from F | on MI | re-imaged after the flip was seen |
//! | 3 | pool not in S, flip user-assigned | unknown | created between the last SP run and the flip was seen: before the flip it joined on the SP, after it on the MI |
//! | 4 | pool not in S, other flips | on MI | either way the docs put kubelet on the MI (the flip re-imaged, or it joined after) |
//! | 5 | N changed from S, flip user-assigned | unknown | re-imaged in the interval of the flip: before the flip, kubelet stayed on the SP |
//! | 6 | N changed from S, other flips | on MI | re-imaged by the flip (docs) or after it |
//! | 7 | image unknown in S or N | unknown | nothing to compare |
//! | 8 | unchanged, flip user-assigned | **pending** | docs: kubelet keeps the SP until the pool is upgraded |
//! | 9 | unchanged, flip system-assigned | unknown | docs (2026-07-31): the flip re-imaged every node, keeping the image; older text said pending — the signals disagree, so "verify", never high |
//! | 10 | unchanged, own kubelet identity came with the flip | unknown | docs: that update upgrades every pool — same disagreement |
//!
//!
//! # Direct signal: the node resource group's scale sets (rows 11-14, after 1-10)
//!
//! For a cluster whose pools history leaves pending or unknown, the collector reads
//! the node resource group's scale sets from Resource Graph (`azure::signals`; the
//! shapes and what is and is not documented: `crate::inventory::node_signals`).
//! Positive: every scale set of the pool carries the kubelet identity in
//! `identity.userAssignedIdentities` and every instance reports `latestModelApplied:
//! true`. Negative: a scale set of the pool without the kubelet identity, or an
//! instance with `latestModelApplied: false`. Anything missing (no row: the auditor
//! may lack Reader on the node resource group; a field absent) is no signal.
//!
//! | # | history says | signal | pool | why |
//! |---|---|---|---|---|
//! | 11 | pending | positive | unknown | the signals disagree: "verify", medium, never high |
//! | 12 | unknown | positive | on MI | the scale set confirms what the docs say the switch did |
//! | 13 | pending | negative or none | pending | the scale set agrees, or says nothing (the finding says which) |
//! | 14 | unknown | negative or none | unknown | the finding names the signal, or its absence |
//!
//! # A flip read from Resource Graph's change history
//!
//! A cluster first seen on a managed identity has no flip in history (`none_observed`).
//! Once, the collector reads its `resourcechanges` (14 days): a change of
//! `servicePrincipalProfile.clientId` to `msi` or an `identity.type` appearing is the
//! flip, recorded with its time (`history::bootstrap`, [`Migration::from_changes`]),
//! and the pools just before and after it rebuilt from the later version changes; it
//! is judged by the rows above. No such change: `none_observed`, as before.
//!
//! Records written before S and F were kept (no [`Migration::sp_pools`]) compare N with
//! `pools_at_flip` (F, images only) by rows 1, 2, 7-10. Records without a flip kind take
//! it from the cluster as it is now.
//!
//! Cluster: any pool pending → `pending` (AKSMI002, high, one finding per pool; the
//! other pools in doubt get one AKSMI003 too); else any unknown → `unknown` (AKSMI003,
//! medium, message "verify: …"); else `complete`.
use std::collections::HashMap;

use super::checks::new_finding;
use super::evaluated::{Checks, Status};
use super::remedy::{self, q};
use super::{ClusterCtx, Finding, IdentityKey, RuleId, Severity};
use crate::history::{ClusterHistory, FlipKind, Migration, MigrationStatus, PoolRecord};
use crate::inventory::{AgentPool, Cluster, SmallMap, SpCredential};

/// One pool's state after the flip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolState {
    OnManagedIdentity,
    Pending,
    Unknown,
}

/// Why a pool got its state (the decision table's row).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    CreatedAfterFlip,
    ReimagedAfterFlip,
    CreatedInFlipInterval,
    ReimagedInFlipInterval,
    ImageUnknown,
    Unchanged,
    /// History left the pool in doubt; its scale set shows it on the managed identity.
    ScaleSetConfirms,
    /// History says pending; its scale set says otherwise (rows 11-12).
    SignalsDisagree,
}

/// What the node resource group's scale sets say of one pool (see the module docs,
/// "Direct signal"). UNVERIFIED as a contract: it only confirms or contradicts what
/// history says, never makes a finding high on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// The scale sets were not read (no doubt to settle, an inventory folder, or the
    /// query failed).
    NotRead,
    /// Read, nothing decisive (why).
    Absent(String),
    /// The kubelet identity is attached to the pool's scale sets and every instance
    /// runs the latest model.
    OnManagedIdentity(String),
    /// The kubelet identity is missing from a scale set of the pool, or an instance
    /// does not run the latest model.
    NotMoved(String),
}

impl Signal {
    /// The sentence the findings add, if any.
    fn says(&self) -> Option<String> {
        match self {
            Signal::NotRead => None,
            Signal::Absent(why) => Some(format!("direct signal not available: {why}")),
            Signal::OnManagedIdentity(why) | Signal::NotMoved(why) => {
                Some(format!("Resource Graph shows {why}"))
            }
        }
    }
}

/// The direct signal for pool `pool` of `c`.
pub fn signal(c: &Cluster, pool: &str) -> Signal {
    let Some(ns) = &c.scale_sets else {
        return Signal::NotRead;
    };
    if let Some(why) = &ns.unread {
        return Signal::Absent(format!(
            "the node resource group's scale sets were not read ({why})"
        ));
    }
    let sets: Vec<&crate::inventory::ScaleSet> =
        ns.scale_sets.iter().filter(|s| s.runs_pool(pool)).collect();
    if sets.is_empty() {
        return Signal::Absent(format!(
            "no scale set of pool `{pool}` is visible in the node resource group (reading it needs Reader there)"
        ));
    }
    let Some(kubelet) = c.kubelet.as_ref().and_then(|k| k.resource_id.as_deref()) else {
        return Signal::Absent("the kubelet identity's resource id is not reported".into());
    };
    let carries = |s: &crate::inventory::ScaleSet| {
        s.identities
            .as_ref()
            .map(|ids| ids.iter().any(|i| i.eq_ignore_ascii_case(kubelet)))
    };
    for s in &sets {
        if carries(s) == Some(false) {
            return Signal::NotMoved(format!(
                "scale set `{}` without the kubelet identity",
                s.name
            ));
        }
        let stale = s.instances.iter().filter(|i| **i == Some(false)).count();
        if ns.instances_read && stale > 0 {
            return Signal::NotMoved(format!(
                "scale set `{}` with {stale} of {} instance(s) not on its latest model (`latestModelApplied: false`)",
                s.name,
                s.instances.len()
            ));
        }
    }
    let names: Vec<&str> = sets.iter().map(|s| s.name.as_str()).collect();
    let names = names.join("`, `");
    if sets.iter().any(|s| carries(s).is_none()) {
        return Signal::Absent(format!(
            "scale set `{names}` lists no user-assigned identities"
        ));
    }
    if !ns.instances_read {
        return Signal::Absent(format!(
            "the instances of scale set `{names}` were not read (`computeresources`)"
        ));
    }
    let instances: usize = sets.iter().map(|s| s.instances.len()).sum();
    if sets.iter().any(|s| s.instances.is_empty()) {
        return Signal::Absent(format!("no instance of scale set `{names}` is visible"));
    }
    if sets.iter().any(|s| s.instances.iter().any(Option::is_none)) {
        return Signal::Absent(format!(
            "the instances of scale set `{names}` do not report `latestModelApplied`"
        ));
    }
    Signal::OnManagedIdentity(format!(
        "scale set `{names}` with the kubelet identity attached and all {instances} instance(s) on its latest model"
    ))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolVerdict {
    /// As Azure printed it.
    pub name: String,
    pub state: PoolState,
    pub why: Why,
    pub signal: Signal,
}

/// The cluster's verdict with every pool's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub status: MigrationStatus,
    pub kind: Option<FlipKind>,
    pub pools: Vec<PoolVerdict>,
}

impl Verdict {
    fn names(&self, state: PoolState) -> Vec<String> {
        self.pools
            .iter()
            .filter(|p| p.state == state)
            .map(|p| p.name.clone())
            .collect()
    }
}

/// A version that changed: both known and different.
fn changed(a: &Option<String>, b: &Option<String>) -> bool {
    matches!((a, b), (Some(a), Some(b)) if a.trim() != b.trim())
}

fn record_changed(then: &PoolRecord, now: &AgentPool) -> bool {
    changed(&then.node_image_version, &now.node_image_version)
        || changed(&then.orchestrator_version, &now.orchestrator_version)
}

/// The decision table for one pool (see the module documentation).
fn pool_verdict(
    pool: &AgentPool,
    kind: FlipKind,
    sp_pools: Option<&SmallMap<PoolRecord>>,
    flip_pools: &SmallMap<PoolRecord>,
) -> (PoolState, Why) {
    use PoolState::*;
    let key = pool.name.to_ascii_lowercase();
    let user_assigned = kind == FlipKind::UserAssigned;
    let Some(at_flip) = flip_pools.get(&key) else {
        return (OnManagedIdentity, Why::CreatedAfterFlip); // 1
    };
    if record_changed(at_flip, pool) {
        return (OnManagedIdentity, Why::ReimagedAfterFlip); // 2
    }
    // Legacy records: F is all there is.
    let base = match sp_pools {
        Some(s) => match s.get(&key) {
            None if user_assigned => return (Unknown, Why::CreatedInFlipInterval), // 3
            None => return (OnManagedIdentity, Why::CreatedInFlipInterval),        // 4
            Some(b) => b,
        },
        None => at_flip,
    };
    if record_changed(base, pool) {
        return if user_assigned {
            (Unknown, Why::ReimagedInFlipInterval) // 5
        } else {
            (OnManagedIdentity, Why::ReimagedInFlipInterval) // 6
        };
    }
    if base.node_image_version.is_none() || pool.node_image_version.is_none() {
        return (Unknown, Why::ImageUnknown); // 7
    }
    match kind {
        FlipKind::UserAssigned => (Pending, Why::Unchanged), // 8
        FlipKind::SystemAssigned | FlipKind::OwnKubelet => (Unknown, Why::Unchanged), // 9, 10
    }
}

/// The records of a migration written before pool records were kept.
fn legacy_flip_pools(m: &Migration) -> SmallMap<PoolRecord> {
    m.pools_at_flip
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                PoolRecord {
                    node_image_version: v.clone(),
                    orchestrator_version: None,
                },
            )
        })
        .collect()
}

/// The kind of flip a cluster first seen on a managed identity made.
pub fn flip_kind(c: &Cluster) -> FlipKind {
    use super::classify::{kubelet_identity, KubeletIdentity};
    match c.identity.as_ref().map(|i| i.kind) {
        _ if kubelet_identity(c) == KubeletIdentity::UserAssigned => FlipKind::OwnKubelet,
        Some(crate::inventory::IdentityType::UserAssigned) => FlipKind::UserAssigned,
        _ => FlipKind::SystemAssigned,
    }
}

/// The verdict for `c` given its history after this run.
pub fn verdict(c: &Cluster, observed: &ClusterHistory) -> Verdict {
    let none = |status| Verdict {
        status,
        kind: None,
        pools: vec![],
    };
    if observed.mode == crate::rules::model::ControlPlaneIdentity::ServicePrincipal {
        return none(MigrationStatus::NotMigrated);
    }
    let Some(m) = &observed.migration else {
        return none(MigrationStatus::NoneObserved);
    };
    let kind = m.kind.unwrap_or_else(|| flip_kind(c));
    let legacy;
    let flip_pools = match &m.flip_pools {
        Some(f) => f,
        None => {
            legacy = legacy_flip_pools(m);
            &legacy
        }
    };
    let pools: Vec<PoolVerdict> = c
        .pools
        .iter()
        .map(|p| {
            let (state, why) = pool_verdict(p, kind, m.sp_pools.as_ref(), flip_pools);
            let signal = signal(c, &p.name);
            let (state, why) = match (state, &signal) {
                (PoolState::Pending, Signal::OnManagedIdentity(_)) => {
                    (PoolState::Unknown, Why::SignalsDisagree) // 11
                }
                (PoolState::Unknown, Signal::OnManagedIdentity(_)) => {
                    (PoolState::OnManagedIdentity, Why::ScaleSetConfirms) // 12
                }
                other => (other.0, why), // 13, 14
            };
            PoolVerdict {
                name: p.name.clone(),
                state,
                why,
                signal,
            }
        })
        .collect();
    let status = if pools.iter().any(|p| p.state == PoolState::Pending) {
        MigrationStatus::Pending
    } else if pools.iter().any(|p| p.state == PoolState::Unknown) {
        MigrationStatus::Unknown
    } else {
        MigrationStatus::Complete
    };
    Verdict {
        status,
        kind: Some(kind),
        pools,
    }
}

/// The migration status and, for `pending`, the pools still on the service principal;
/// for `unknown`, the pools whose state cannot be established.
pub fn status(c: &Cluster, observed: &ClusterHistory) -> (MigrationStatus, Vec<String>) {
    let v = verdict(c, observed);
    let pools = match v.status {
        MigrationStatus::Pending => v.names(PoolState::Pending),
        MigrationStatus::Unknown => v.names(PoolState::Unknown),
        _ => vec![],
    };
    (v.status, pools)
}

/// The service principal a migrated cluster left (its kubelet may still use it).
fn old_sp(observed: &ClusterHistory) -> Option<&str> {
    observed
        .migration
        .as_ref()
        .and_then(|m| m.sp_client_id.as_deref())
        .or(observed.sp_client_id.as_deref())
        .filter(|s| !s.is_empty() && !s.eq_ignore_ascii_case("msi"))
}

fn day(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d").to_string()
}

/// Whether `--node-image-only` has nothing to apply: the inventory says the pool
/// already runs the latest node image.
fn on_latest_image(p: &AgentPool) -> Option<&str> {
    match (&p.node_image_version, &p.latest_node_image_version) {
        (Some(now), Some(latest)) if now.trim() == latest.trim() => Some(latest),
        _ => None,
    }
}

/// The fix for a pool still on the service principal.
fn reimage(c: &Cluster, p: &AgentPool) -> String {
    let Some(latest) = on_latest_image(p) else {
        return remedy::reimage_pool(c, &p.name);
    };
    let (g, n, pool) = (q(&c.resource_group), q(&c.name), q(&p.name));
    format!(
        "# pool {name} already runs the latest node image ({latest}): `az aks nodepool upgrade --node-image-only` has nothing to apply until a newer image is released (\"An update only works if there's a VHD update to consume\").\n\
         # A Kubernetes version upgrade re-images every node of the pool (up to the control plane's version; `az aks get-upgrades` / `az aks upgrade` for the control plane); or add a new pool, move the workloads and delete this one.\n\
         az aks nodepool get-upgrades --resource-group {g} --cluster-name {n} --nodepool-name {pool}\n\
         # then, with a version listed under `upgrades`: az aks nodepool upgrade --resource-group {g} --cluster-name {n} --name {pool} --kubernetes-version VERSION",
        name = p.name,
    )
}

/// How to tell which credential kubelet uses on the pools in doubt.
fn verify(c: &Cluster, pools: &[&str], sp: Option<&str>) -> String {
    let (g, n) = (q(&c.resource_group), q(&c.name));
    let kubelet = c
        .kubelet
        .as_ref()
        .and_then(|k| k.client_id.as_deref())
        .map(|id| format!(" `{id}`"))
        .unwrap_or_default();
    let sp = sp.map(|s| format!(" `{s}`")).unwrap_or_default();
    let mut out = vec![
        format!("az aks nodepool list --resource-group {g} --cluster-name {n} --query \"[].{{name:name, nodeImageVersion:nodeImageVersion, kubernetes:currentOrchestratorVersion, state:provisioningState}}\" -o table"),
        format!("# kubelet's Azure credential on a node (it starts a privileged debug pod; delete it after): \"useManagedIdentityExtension\": true with \"userAssignedIdentityID\" = the kubelet identity{kubelet} means the managed identity; \"aadClientId\" = the service principal{sp} means the pool still needs `az aks nodepool upgrade --node-image-only`"),
    ];
    if let Some(nrg) = c.node_resource_group.as_deref() {
        out.push(format!(
            "# the pool's scale set: the kubelet identity attached, and every instance on the latest model: az vmss list --resource-group {} --query \"[].{{name:name, identities:identity.userAssignedIdentities}}\" -o json; az vmss list-instances --resource-group {} --name <scale set> --query \"[].{{name:name, latestModelApplied:latestModelApplied}}\" -o table",
            q(nrg),
            q(nrg)
        ));
    }
    for p in pools {
        out.push(format!(
            "# kubectl debug node/\"$(kubectl get nodes -l agentpool={} -o jsonpath='{{.items[0].metadata.name}}')\" -it --image=mcr.microsoft.com/azurelinux/busybox:1.36 -- chroot /host grep -E '\"(aadClientId|useManagedIdentityExtension|userAssignedIdentityID)\"' /etc/kubernetes/azure.json",
            q(p)
        ));
    }
    out.join("\n")
}

fn doubt(v: &PoolVerdict, kind: FlipKind, m: &Migration) -> String {
    let window = if m.from_changes {
        format!(
            "around {} (the switch, from Resource Graph's change history)",
            day(m.observed_at)
        )
    } else {
        format!(
            "between {} (last run on the service principal) and {} (first run after the switch)",
            day(m.last_seen_as_sp),
            day(m.observed_at)
        )
    };
    let what = match (v.why, kind) {
        (Why::SignalsDisagree, _) => "same node image and Kubernetes version since the switch to a user-assigned identity, which the docs say leaves kubelet on the service principal, but its scale set says otherwise".to_string(),
        (Why::ImageUnknown, _) => "its node image version is not reported".to_string(),
        (Why::CreatedInFlipInterval, _) => format!(
            "created {window}: before the switch its nodes joined with the service principal, after it with the managed identity"
        ),
        (Why::ReimagedInFlipInterval, _) => format!(
            "its node image or Kubernetes version changed {window}: an upgrade before the switch leaves kubelet on the service principal"
        ),
        (_, FlipKind::OwnKubelet) => "node image and Kubernetes version unchanged since the service principal; the docs say the update that brings a kubelet identity upgrades every pool, which need not change the image".to_string(),
        _ => "node image and Kubernetes version unchanged since the service principal; the docs (since 2026-07-31) say the switch to a system-assigned identity re-images every node, which keeps the image version — older text said kubelet stays on the service principal until a node image upgrade".to_string(),
    };
    match v.signal.says() {
        Some(sig) => format!("{} ({what}) — {sig}", v.name),
        None => format!("{} ({what})", v.name),
    }
}

/// When the switch was seen, for the messages.
fn seen(m: &Migration) -> String {
    if m.from_changes {
        format!(
            "{}, from Resource Graph's change history",
            day(m.observed_at)
        )
    } else {
        format!("seen {}", day(m.observed_at))
    }
}

/// AKSMI002 (one per pool still on the service principal) and AKSMI003 (one for the
/// pools whose state cannot be established).
pub fn findings(ctx: &ClusterCtx) -> Vec<Finding> {
    let c = ctx.cluster;
    let v = verdict(c, ctx.observed);
    let (Some(m), Some(kind)) = (ctx.observed.migration.as_ref(), v.kind) else {
        return vec![];
    };
    let sp = old_sp(ctx.observed);
    let sp_named = sp.map(|s| format!(" `{s}`")).unwrap_or_default();
    let mut out = Vec::new();
    for pv in v.pools.iter().filter(|p| p.state == PoolState::Pending) {
        let Some(pool) = c.pools.iter().find(|p| p.name == pv.name) else {
            continue;
        };
        let latest = match on_latest_image(pool) {
            Some(_) => "; it already runs the latest node image, so `--node-image-only` alone changes nothing",
            None => "",
        };
        out.push(new_finding(
            ctx,
            RuleId::KubeletPending,
            IdentityKey::Kubelet,
            &pv.name,
            format!(
                "pool `{}` has not been re-imaged since the switch to a user-assigned managed identity ({}; same node image and Kubernetes version as on the service principal): kubelet still uses the service principal{sp_named}{latest}{}",
                pv.name,
                seen(m),
                pv.signal.says().map(|s| format!("; {s}")).unwrap_or_default()
            ),
            reimage(c, pool),
        ));
    }
    let unsure: Vec<&PoolVerdict> = v
        .pools
        .iter()
        .filter(|p| p.state == PoolState::Unknown)
        .collect();
    if !unsure.is_empty() {
        let names: Vec<&str> = unsure.iter().map(|p| p.name.as_str()).collect();
        let reasons: Vec<String> = unsure.iter().map(|p| doubt(p, kind, m)).collect();
        out.push(new_finding(
            ctx,
            RuleId::KubeletUnknown,
            IdentityKey::Kubelet,
            "",
            format!(
                "verify: the control plane left service principal{sp_named} ({}), but Azure's data cannot tell whether kubelet did on pool(s) {}",
                seen(m),
                reasons.join("; ")
            ),
            verify(c, &names, sp),
        ));
    }
    out
}

/// The pools still pending, for the AKSMI005 message.
fn pending_pools(ctx: &ClusterCtx) -> Option<String> {
    (ctx.status == MigrationStatus::Pending && !ctx.status_pools.is_empty())
        .then(|| ctx.status_pools.join(", "))
}

/// AKSMI005 for a migrated cluster whose kubelet still uses the old service principal:
/// that principal's credential still matters (critical once expired, high within 30
/// days). The fix is the re-image, which moves kubelet off it.
pub fn old_sp_secret_findings(
    ctx: &ClusterCtx,
    creds: &HashMap<String, &SpCredential>,
) -> Vec<Finding> {
    let (Some(pools), Some(sp)) = (pending_pools(ctx), old_sp(ctx.observed)) else {
        return vec![];
    };
    let Some(cred) = creds.get(&sp.to_ascii_lowercase()) else {
        return vec![];
    };
    let Some(expiry) = cred.nearest_expiry else {
        return vec![];
    };
    let Some((severity, when)) = super::checks::credential_expiry(expiry, ctx.now) else {
        return vec![];
    };
    let on = format!(
        "kubelet on pool(s) {pools} still uses service principal `{sp}` ({}) from before the switch to managed identity",
        cred.app_display_name
    );
    let message = if severity == Severity::Critical {
        format!("{on}; its credential {when}: those nodes can no longer authenticate to Azure")
    } else {
        format!("{on}; its credential {when}")
    };
    let c = ctx.cluster;
    let mut fix = vec![format!(
        "# inspect only: az ad sp credential list --id {} --query \"[].{{keyId:keyId, end:endDateTime}}\" -o table",
        q(sp)
    )];
    fix.extend(
        c.pools
            .iter()
            .filter(|p| ctx.status_pools.contains(&p.name))
            .map(|p| reimage(c, p)),
    );
    let mut f = new_finding(
        ctx,
        RuleId::SecretExpiry,
        IdentityKey::Kubelet,
        "",
        message,
        fix.join("\n"),
    );
    f.severity = severity;
    vec![f]
}

/// A cluster first seen on a managed identity whose change history could not be read
/// (the query kept failing): `none_observed` would claim what was not checked, so the
/// migration check is not evaluated this run (the read is tried again next run).
pub fn unread_changes_checks(checks: &mut Checks, c: &Cluster, status: MigrationStatus) {
    let Some(why) = c.changes.as_ref().and_then(|ch| ch.unread.as_deref()) else {
        return;
    };
    if status == MigrationStatus::NoneObserved && checks.migration.is_evaluated() {
        checks.migration = Status::NotEvaluated(why.to_string());
    }
}

/// A managed-identity cluster whose kubelet is pending still depends on the old
/// service principal's credential: without it read, secret expiry is not evaluated.
pub fn old_sp_secret_checks(
    checks: &mut Checks,
    status: MigrationStatus,
    observed: &ClusterHistory,
    creds: &HashMap<String, &SpCredential>,
    graph: bool,
) {
    if status != MigrationStatus::Pending || !checks.secret_expiry.is_evaluated() {
        return;
    }
    let Some(sp) = old_sp(observed) else {
        return;
    };
    if creds.contains_key(&sp.to_ascii_lowercase()) {
        return;
    }
    checks.secret_expiry = Status::NotEvaluated(if graph {
        format!("kubelet still uses service principal `{sp}`, whose credentials were not found in Microsoft Graph")
    } else {
        format!("kubelet still uses service principal `{sp}`; its credential expiry needs Microsoft Graph (--graph)")
    });
}

#[cfg(test)]
mod tests;
