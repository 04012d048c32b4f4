//! The roles a cluster needs only in some situations: Network Contributor on a
//! custom subnet (AKSMI020), Managed Identity Operator over its own kubelet identity
//! (AKSMI021), AcrPull for the new kubelet identity after a migration (AKSMI022).
use std::collections::BTreeSet;

use super::baseline;
use super::checks::new_finding;
use super::classify::{self, KubeletIdentity};
use super::index::Index;
use super::{remedy, ClusterCtx, Finding, IdentityKey, RuleId};
use crate::history::MigrationStatus;
use crate::inventory::ids::{self, relate, ScopeRelation};
use crate::inventory::{AgentPool, RoleAssignment};

/// Whether one of `held` grants one of the roles `guids` at `target` or above it.
fn holds(held: &[&RoleAssignment], guids: &[&str], target: &str) -> bool {
    held.iter()
        .any(|a| guids.contains(&&*a.role_guid) && relate(&a.scope, target) != ScopeRelation::None)
}

/// AKSMI020 and AKSMI021, for the control-plane identity `principal` holding `held`;
/// nothing while its grants may still propagate.
pub fn control_plane(
    ctx: &ClusterCtx,
    principal: &str,
    held: &[&RoleAssignment],
    grace: bool,
) -> Vec<Finding> {
    if grace {
        return vec![];
    }
    let mut out = subnet_permission(ctx, principal, held);
    out.extend(kubelet_operator(ctx, principal, held));
    out
}

/// Pools' custom subnets outside the node resource group, each once (any case).
fn outside_subnets<'c>(ctx: &ClusterCtx<'c>) -> Vec<(&'c AgentPool, &'c str)> {
    let c = ctx.cluster;
    let node_rg = c.node_resource_group.as_deref().unwrap_or_default();
    let mut seen = BTreeSet::new();
    c.pools
        .iter()
        .filter_map(|p| Some((p, p.vnet_subnet_id.as_deref()?)))
        .filter(|(_, subnet)| {
            ids::resource_group_of(subnet).is_some_and(|rg| !rg.eq_ignore_ascii_case(node_rg))
        })
        .filter(|(_, subnet)| seen.insert(subnet.to_ascii_lowercase()))
        .collect()
}

/// AKSMI020: a custom subnet outside the node resource group without Network
/// Contributor (or Contributor, Owner) on it, its VNet or their resource group.
fn subnet_permission(ctx: &ClusterCtx, principal: &str, held: &[&RoleAssignment]) -> Vec<Finding> {
    let allowed = [
        baseline::NETWORK_CONTRIBUTOR,
        baseline::CONTRIBUTOR,
        baseline::OWNER,
    ];
    outside_subnets(ctx)
        .into_iter()
        .filter(|(_, subnet)| !holds(held, &allowed, subnet))
        .map(|(p, subnet)| new_finding(ctx, RuleId::SubnetPermission, IdentityKey::ControlPlane, subnet,
            format!("pool `{}` uses subnet {subnet} outside the node resource group, and the control-plane identity has no Network Contributor on it, its VNet or their resource group", p.name),
            remedy::create_role(principal, "Network Contributor", subnet)))
        .collect()
}

/// AKSMI021: its own kubelet identity, without Managed Identity Operator (or
/// Contributor, Owner) over it.
fn kubelet_operator(
    ctx: &ClusterCtx,
    principal: &str,
    held: &[&RoleAssignment],
) -> Option<Finding> {
    let c = ctx.cluster;
    if classify::kubelet_identity(c) != KubeletIdentity::UserAssigned {
        return None;
    }
    let kid = c.kubelet.as_ref()?.resource_id.as_deref()?;
    let allowed = [
        baseline::MANAGED_IDENTITY_OPERATOR,
        baseline::CONTRIBUTOR,
        baseline::OWNER,
    ];
    if holds(held, &allowed, kid) {
        return None;
    }
    Some(new_finding(ctx, RuleId::KubeletOperator, IdentityKey::ControlPlane, kid,
        format!("cluster brings its own kubelet identity {kid}, but the control-plane identity lacks Managed Identity Operator over it"),
        remedy::create_role(principal, "Managed Identity Operator", kid)))
}

/// AKSMI022: after a migration the new kubelet identity needs AcrPull again: on each
/// registry the service principal pulled from or, when none was recorded, on at
/// least one of the subscription's registries.
pub fn acr_after_migration(ctx: &ClusterCtx, idx: &Index) -> Vec<Finding> {
    let c = ctx.cluster;
    if !matches!(
        ctx.status,
        MigrationStatus::Pending | MigrationStatus::Complete | MigrationStatus::Unknown
    ) {
        return vec![];
    }
    let Some(kubelet) = c.kubelet.as_ref().and_then(|k| k.object_id.as_deref()) else {
        return vec![];
    };
    let held = idx.assignments(kubelet);
    let pulls = |target: &str| holds(held, &[baseline::ACR_PULL], target);
    let before = &ctx.observed.sp_acr_registries;
    if !before.is_empty() {
        return before.iter().filter(|r| !pulls(r)).map(|reg| new_finding(ctx, RuleId::AcrPullAfterMigration, IdentityKey::Kubelet, reg,
            format!("the service principal could pull from {reg} before the migration; the new kubelet identity has no AcrPull there"),
            remedy::attach_acr(c, reg))).collect();
    }
    let in_sub = idx.registries_in(&c.subscription_id);
    if in_sub.is_empty() || in_sub.iter().any(|r| pulls(&r.id)) {
        return vec![];
    }
    let names: Vec<&str> = in_sub.iter().map(|r| r.name.as_str()).collect();
    vec![new_finding(ctx, RuleId::AcrPullAfterMigration, IdentityKey::Kubelet, "subscription-registries",
        format!("migrated cluster's kubelet identity has AcrPull on none of the subscription's registries ({}); if the cluster used --attach-acr, re-run it", names.join(", ")),
        in_sub.iter().map(|r| remedy::attach_acr(c, &r.id)).collect::<Vec<_>>().join("\n"))]
}
