//! The roles a cluster needs only in some situations: Network Contributor on a
//! custom subnet (AKSMI020), Managed Identity Operator over its own kubelet identity
//! (AKSMI021), pull rights for the new kubelet identity after a migration (AKSMI022).
use std::collections::BTreeSet;

use super::baseline;
use super::checks::new_finding;
use super::classify::{self, KubeletIdentity};
use super::index::Index;
use super::{registry_pull, remedy, ClusterCtx, Finding, IdentityKey, RuleId};
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

/// AKSMI022: after a migration the new kubelet identity needs pull rights again on
/// each registry the service principal pulled from (a subscription- or group-scope
/// AcrPull stands for the known registries under it, each named in its own valid
/// command). Pull is judged by the registry's mode ([`registry_pull`]): AcrPull,
/// AcrPush, Owner, Contributor or Reader on a legacy registry, Container Registry
/// Repository Reader on an ABAC one. When the service principal's grants were read
/// and it held no AcrPull, the cluster used no registry that way: nothing. When
/// they could not be read (Resource Graph does not name a service principal by
/// client id), a low prompt lists the subscription's registries none of which the
/// kubelet can pull from.
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
    let all = idx.all_registries();
    let before = &ctx.observed.sp_acr_registries;
    if !before.is_empty() {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for scope in before {
            let regs = registry_pull::registries_under(scope, &c.subscription_id, all);
            if regs.is_empty() && registry_pull::is_registry_id(scope) {
                // A registry the inventory does not list (another subscription, or
                // deleted): named by the id the service principal held it at.
                if seen.insert(scope.to_ascii_lowercase())
                    && !holds(held, &[baseline::ACR_PULL], scope)
                {
                    out.push(new_finding(ctx, RuleId::AcrPullAfterMigration, IdentityKey::Kubelet, scope,
                        format!("the service principal could pull from {scope} before the migration; the new kubelet identity has no AcrPull there"),
                        remedy::attach_acr(c, scope)));
                }
                continue;
            }
            for reg in regs {
                if !seen.insert(reg.id.to_ascii_lowercase()) || registry_pull::pulls(held, reg) {
                    continue;
                }
                let via = if ids::norm(scope) == ids::norm(&reg.id) {
                    String::new()
                } else {
                    format!(" (through AcrPull at {scope})")
                };
                let role = if reg.is_abac() {
                    "Container Registry Repository Reader (the registry is in ABAC mode, where AcrPull is not honoured)"
                } else {
                    "AcrPull"
                };
                out.push(new_finding(ctx, RuleId::AcrPullAfterMigration, IdentityKey::Kubelet, &reg.id,
                    format!("the service principal could pull from registry {}{via} before the migration; the new kubelet identity has no {role} there", reg.name),
                    registry_pull::grant_pull(c, Some(kubelet), reg)));
            }
        }
        return out;
    }
    if ctx.observed.sp_acr_known {
        // The service principal's grants were read: it pulled from no registry.
        return vec![];
    }
    let in_sub = idx.registries_in(&c.subscription_id);
    if in_sub.is_empty() || in_sub.iter().any(|r| registry_pull::pulls(held, r)) {
        return vec![];
    }
    let names: Vec<&str> = in_sub.iter().map(|r| r.name.as_str()).collect();
    let mut f = new_finding(ctx, RuleId::AcrPullAfterMigration, IdentityKey::Kubelet, "subscription-registries",
        format!("the service principal's registry grants before the migration are not known, and the kubelet identity can pull from none of the subscription's registries ({}): if the cluster used --attach-acr, grant it again for the registries it pulls from", names.join(", ")),
        in_sub.iter().map(|r| format!("# if the cluster pulls from {}:\n{}", r.name, registry_pull::grant_pull(c, Some(kubelet), r))).collect::<Vec<_>>().join("\n"));
    f.severity = super::Severity::Low;
    vec![f]
}
