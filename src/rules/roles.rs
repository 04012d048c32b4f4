//! Role checks: each identity holds exactly its documented roles, at the documented
//! scope (AKSMI010–012), plus the situational roles (AKSMI020–022).
use crate::inventory::SmallMap;
use std::sync::Arc;

use chrono::Duration;

use super::baseline::{self, Baseline, ExpectedRole, ScopeKind};
use super::checks::{addon_findings, new_finding};
use super::classify::{self, KubeletIdentity};
use super::index::Index;
use super::{
    remedy, scope, ClusterCtx, Finding, IdentityKey, RoleCheck, RoleCheckStatus, RuleId, Severity,
};
use crate::history::MigrationStatus;
use crate::inventory::ids::{self, relate, ScopeRelation};
use crate::inventory::{Registry, RoleAssignment};

/// Role grants take up to this long to propagate: a fresh gap is not yet a fault.
pub const PROPAGATION_GRACE_MINUTES: i64 = 60;

/// One identity of the cluster and what it should hold.
struct Subject<'a> {
    key: IdentityKey,
    principal: String,
    roles: Vec<(&'a ExpectedRole, &'a SmallMap<String>)>,
}

static EMPTY: SmallMap<String> = SmallMap::new();

fn subjects<'a>(ctx: &ClusterCtx<'a>, baseline: &'a Baseline) -> Vec<Subject<'a>> {
    let c = ctx.cluster;
    let mut out = Vec::new();
    let cp_roles = baseline.roles_of(&IdentityKey::ControlPlane);
    let addon_roles = |a: &'a crate::inventory::Addon| {
        baseline
            .roles_of(&IdentityKey::addon(&a.key))
            .iter()
            .filter(|r| r.applies(&a.config))
            .map(move |r| (r, &a.config))
    };
    if let Some(p) = &ctx.control_plane_principal {
        let mut roles: Vec<_> = cp_roles.iter().map(|r| (r, &EMPTY)).collect();
        if !classify::is_managed(c) {
            // On service-principal clusters, add-ons act through the service principal.
            for a in c.addons.iter().filter(|a| a.enabled) {
                roles.extend(addon_roles(a));
            }
        }
        out.push(Subject {
            key: IdentityKey::ControlPlane,
            principal: p.clone(),
            roles,
        });
    }
    if !classify::is_managed(c) {
        return out;
    }
    if let Some(k) = c.kubelet.as_ref().and_then(|k| k.object_id.clone()) {
        let roles = baseline
            .roles_of(&IdentityKey::Kubelet)
            .iter()
            .map(|r| (r, &EMPTY))
            .collect();
        out.push(Subject {
            key: IdentityKey::Kubelet,
            principal: k,
            roles,
        });
    }
    for a in c.addons.iter().filter(|a| a.enabled) {
        if !baseline.addon_needs_identity(&a.key) {
            continue;
        }
        if let Some(p) = a.identity.as_ref().and_then(|i| i.object_id.clone()) {
            out.push(Subject {
                key: IdentityKey::addon(&a.key),
                principal: p,
                roles: addon_roles(a).collect(),
            });
        }
    }
    out
}

fn in_grace(ctx: &ClusterCtx, held: &[&RoleAssignment]) -> bool {
    let grace = Duration::minutes(PROPAGATION_GRACE_MINUTES);
    let fresh = |t: chrono::DateTime<chrono::Utc>| ctx.now - t < grace;
    ctx.cluster.created_at.is_some_and(fresh)
        || held.iter().any(|a| a.created_on.is_some_and(fresh))
}

fn holds(held: &[&RoleAssignment], guids: &[&str], target: &str) -> bool {
    held.iter()
        .any(|a| guids.contains(&&*a.role_guid) && relate(&a.scope, target) != ScopeRelation::None)
}

pub fn role_findings(ctx: &ClusterCtx, idx: &Index, baseline: &Baseline) -> Vec<Finding> {
    role_findings_and_checks(ctx, idx, baseline).0
}

/// The role findings, and one [`RoleCheck`] per expected role or actual assignment of
/// each identity (what `role-assignments.csv` lists).
pub fn role_findings_and_checks(
    ctx: &ClusterCtx,
    idx: &Index,
    baseline: &Baseline,
) -> (Vec<Finding>, Vec<RoleCheck>) {
    let c = ctx.cluster;
    let mut out = addon_findings(ctx, idx, baseline);
    let mut checks = undocumented_checks(ctx, idx, baseline);
    let registries: &[&Registry] = idx.all_registries();
    let cluster_id: Arc<str> = c.id.as_str().into();
    let empty: Arc<str> = Arc::from("");
    for s in subjects(ctx, baseline) {
        let principal_id: Arc<str> = s.principal.as_str().into();
        let check = |expected: Option<(&ExpectedRole, &SmallMap<String>)>,
                     actual: Option<&RoleAssignment>,
                     status: RoleCheckStatus| {
            let (expected_role, expected_scope) = match expected {
                Some((r, cfg)) => (
                    r.role_name.as_str().into(),
                    expected_scope(r, c, cfg, registries).into(),
                ),
                None => (empty.clone(), empty.clone()),
            };
            RoleCheck {
                cluster_id: cluster_id.clone(),
                identity: s.key.clone(),
                principal_id: principal_id.clone(),
                expected_role,
                expected_scope,
                actual_role: actual
                    .map(|a| baseline::role_display(&a.role_guid, a.role_name.as_deref()).into())
                    .unwrap_or_else(|| empty.clone()),
                actual_scope: actual
                    .map(|a| a.scope.clone())
                    .unwrap_or_else(|| empty.clone()),
                status,
            }
        };
        let held = idx.assignments(&s.principal);
        let grace = in_grace(ctx, held);
        // AKSMI010: missing.
        for (r, cfg) in s.roles.iter().filter(|(r, _)| r.required) {
            let has = held.iter().any(|a| {
                *a.role_guid == *r.role_guid
                    && scope::relation(r.scope, c, cfg, registries, &a.scope) != ScopeRelation::None
            });
            let target = scope::first_target(r.scope, c, cfg, registries).or_else(|| {
                (r.scope == ScopeKind::DnsZone)
                    .then(|| {
                        scope::targets(ScopeKind::NodeResourceGroup, c, cfg, registries)
                            .first()
                            .cloned()
                    })
                    .flatten()
            });
            let Some(target) = target else { continue };
            if !has {
                checks.push(check(Some((*r, *cfg)), None, RoleCheckStatus::Missing));
            }
            if !has && !grace {
                out.push(new_finding(
                    ctx,
                    RuleId::MissingRole,
                    s.key.clone(),
                    &format!("{}|{}", r.role_guid, target),
                    format!(
                        "{} identity lacks its documented {} role on {}",
                        s.key.label(),
                        r.role_name,
                        target
                    ),
                    remedy::create_role(&s.principal, &r.role_name, &target),
                ));
            }
        }
        // AKSMI011 / AKSMI012: excess and too wide.
        for a in held {
            let mut best = ScopeRelation::None;
            let mut matched = None;
            for (r, cfg) in &s.roles {
                if *r.role_guid != *a.role_guid {
                    continue;
                }
                match scope::relation(r.scope, c, cfg, registries, &a.scope) {
                    ScopeRelation::Exact => {
                        best = ScopeRelation::Exact;
                        matched = Some((*r, *cfg));
                        break;
                    }
                    ScopeRelation::Ancestor => {
                        best = ScopeRelation::Ancestor;
                        matched = Some((*r, *cfg));
                    }
                    ScopeRelation::None => {}
                }
            }
            if best == ScopeRelation::None && documented_elsewhere(idx, &s, c, a, registries) {
                best = ScopeRelation::Exact;
            }
            let status = match best {
                ScopeRelation::Exact => RoleCheckStatus::Ok,
                ScopeRelation::Ancestor => RoleCheckStatus::TooWide,
                ScopeRelation::None => RoleCheckStatus::Excess,
            };
            checks.push(check(matched, Some(a), status));
            let role = baseline::role_display(&a.role_guid, a.role_name.as_deref());
            match best {
                ScopeRelation::Exact => {}
                ScopeRelation::Ancestor => {
                    let documented_at = matched
                        .and_then(|(r, cfg)| scope::first_target(r.scope, c, cfg, registries));
                    let mut fix: Vec<String> = documented_at
                        .iter()
                        .map(|t| remedy::create_role(&s.principal, &role, t))
                        .collect();
                    fix.push(remedy::delete_role(&a.id));
                    let at = documented_at.as_deref().unwrap_or("a narrower scope");
                    out.push(new_finding(
                        ctx,
                        RuleId::WideScope,
                        s.key.clone(),
                        &a.id,
                        format!(
                            "{} identity holds {role} at {}, wider than documented ({at})",
                            s.key.label(),
                            a.scope
                        ),
                        fix.join("\n"),
                    ))
                }
                ScopeRelation::None => {
                    let mut f = new_finding(
                        ctx,
                        RuleId::ExcessRole,
                        s.key.clone(),
                        &a.id,
                        format!(
                            "{} identity holds {role} at {} beyond its documented defaults",
                            s.key.label(),
                            a.scope
                        ),
                        remedy::delete_role(&a.id),
                    );
                    let powerful = [
                        baseline::OWNER,
                        baseline::CONTRIBUTOR,
                        baseline::USER_ACCESS_ADMIN,
                    ];
                    if powerful.contains(&&*a.role_guid) && ids::is_subscription_or_wider(&a.scope)
                    {
                        f.severity = Severity::High;
                    }
                    out.push(f);
                }
            }
        }
        if s.key == IdentityKey::ControlPlane {
            out.extend(situational(ctx, &s.principal, held, grace));
        }
    }
    if classify::is_managed(c) {
        out.extend(acr_after_migration(ctx, idx));
    }
    (out, checks)
}

/// Where a documented role applies on this cluster, for `role-assignments.csv`.
fn expected_scope(
    r: &ExpectedRole,
    c: &crate::inventory::Cluster,
    cfg: &SmallMap<String>,
    registries: &[&Registry],
) -> String {
    match (r.scope, scope::target_count(r.scope, c, cfg, registries)) {
        (_, 1) => scope::first_target(r.scope, c, cfg, registries).unwrap_or_default(),
        (ScopeKind::Any, _) => "any".into(),
        (kind, _) => serde_json::to_value(kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
    }
}

/// Add-on identities the baseline documents no roles for (AKSMI090): their assignments
/// are listed as `not_documented`, not judged.
fn undocumented_checks(ctx: &ClusterCtx, idx: &Index, baseline: &Baseline) -> Vec<RoleCheck> {
    let c = ctx.cluster;
    let mut out = Vec::new();
    for a in c.addons.iter().filter(|a| a.enabled) {
        let known = baseline.addon_needs_identity(&a.key);
        let documented_none = baseline
            .no_identity_addons
            .iter()
            .any(|k| k.eq_ignore_ascii_case(&a.key));
        if known || documented_none {
            continue;
        }
        let Some(principal) = a.identity.as_ref().and_then(|i| i.object_id.as_deref()) else {
            continue;
        };
        for r in idx.assignments(principal) {
            out.push(RoleCheck {
                cluster_id: c.id.as_str().into(),
                identity: IdentityKey::addon(&a.key),
                principal_id: principal.into(),
                expected_role: "".into(),
                expected_scope: "".into(),
                actual_role: baseline::role_display(&r.role_guid, r.role_name.as_deref()).into(),
                actual_scope: r.scope.clone(),
                status: RoleCheckStatus::NotDocumented,
            });
        }
    }
    out
}

/// A shared identity (one user-assigned control plane for several clusters) holds
/// the documented roles of every cluster that uses it.
fn documented_elsewhere(
    idx: &Index,
    s: &Subject,
    this: &crate::inventory::Cluster,
    a: &RoleAssignment,
    registries: &[&Registry],
) -> bool {
    idx.users_of(&s.principal)
        .iter()
        .filter(|other| !other.id.eq_ignore_ascii_case(&this.id))
        .any(|other| {
            s.roles.iter().any(|(r, cfg)| {
                *r.role_guid == *a.role_guid
                    && scope::relation(r.scope, other, cfg, registries, &a.scope)
                        == ScopeRelation::Exact
            })
        })
}

/// AKSMI020 and AKSMI021, for the control-plane identity.
fn situational(
    ctx: &ClusterCtx,
    principal: &str,
    held: &[&RoleAssignment],
    grace: bool,
) -> Vec<Finding> {
    let c = ctx.cluster;
    let mut out = Vec::new();
    if grace {
        return out;
    }
    let node_rg = c.node_resource_group.as_deref().unwrap_or_default();
    let mut seen = std::collections::BTreeSet::new();
    for p in &c.pools {
        let Some(subnet) = p.vnet_subnet_id.as_deref() else {
            continue;
        };
        let outside =
            ids::resource_group_of(subnet).is_some_and(|rg| !rg.eq_ignore_ascii_case(node_rg));
        if !outside || !seen.insert(subnet.to_ascii_lowercase()) {
            continue;
        }
        let ok = holds(
            held,
            &[
                baseline::NETWORK_CONTRIBUTOR,
                baseline::CONTRIBUTOR,
                baseline::OWNER,
            ],
            subnet,
        );
        if !ok {
            out.push(new_finding(ctx, RuleId::SubnetPermission, IdentityKey::ControlPlane, subnet,
                format!("pool `{}` uses subnet {subnet} outside the node resource group, and the control-plane identity has no Network Contributor on it, its VNet or their resource group", p.name),
                remedy::create_role(principal, "Network Contributor", subnet)));
        }
    }
    if classify::kubelet_identity(c) == KubeletIdentity::UserAssigned {
        if let Some(kid) = c.kubelet.as_ref().and_then(|k| k.resource_id.as_deref()) {
            let ok = holds(
                held,
                &[
                    baseline::MANAGED_IDENTITY_OPERATOR,
                    baseline::CONTRIBUTOR,
                    baseline::OWNER,
                ],
                kid,
            );
            if !ok {
                out.push(new_finding(ctx, RuleId::KubeletOperator, IdentityKey::ControlPlane, kid,
                    format!("cluster brings its own kubelet identity {kid}, but the control-plane identity lacks Managed Identity Operator over it"),
                    remedy::create_role(principal, "Managed Identity Operator", kid)));
            }
        }
    }
    out
}

/// AKSMI022: after a migration the new kubelet identity needs AcrPull again.
fn acr_after_migration(ctx: &ClusterCtx, idx: &Index) -> Vec<Finding> {
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
    let mut out = Vec::new();
    if !before.is_empty() {
        for reg in before.iter().filter(|r| !pulls(r)) {
            out.push(new_finding(ctx, RuleId::AcrPullAfterMigration, IdentityKey::Kubelet, reg,
                format!("the service principal could pull from {reg} before the migration; the new kubelet identity has no AcrPull there"),
                remedy::attach_acr(c, reg)));
        }
        return out;
    }
    let in_sub = idx.registries_in(&c.subscription_id);
    if !in_sub.is_empty() && !in_sub.iter().any(|r| pulls(&r.id)) {
        let names: Vec<&str> = in_sub.iter().map(|r| r.name.as_str()).collect();
        out.push(new_finding(ctx, RuleId::AcrPullAfterMigration, IdentityKey::Kubelet, "subscription-registries",
            format!("migrated cluster's kubelet identity has AcrPull on none of the subscription's registries ({}); if the cluster used --attach-acr, re-run it", names.join(", ")),
            in_sub.iter().map(|r| remedy::attach_acr(c, &r.id)).collect::<Vec<_>>().join("\n")));
    }
    out
}
