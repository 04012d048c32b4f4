//! Role checks: each identity holds exactly its documented roles, at the documented
//! scope (AKSMI010–012), plus the situational roles (AKSMI020–022, in
//! [`super::situational`]).
use crate::inventory::SmallMap;
use std::sync::Arc;

use chrono::Duration;

use super::baseline::{self, Baseline, ExpectedRole, ScopeKind};
use super::checks::{addon_findings, new_finding};
use super::classify;
use super::index::Index;
use super::{
    ancestry, registry_pull, remedy, scope, situational, ClusterCtx, Finding, IdentityKey,
    RoleCheck, RoleCheckStatus, RuleId, Severity,
};
use crate::inventory::ids::{self, ScopeRelation};
use crate::inventory::{Registry, RoleAssignment};

/// Role grants take up to this long to propagate: a fresh gap is not yet a fault.
pub const PROPAGATION_GRACE_MINUTES: i64 = 60;

/// One identity of the cluster and what it should hold.
struct Subject<'a> {
    key: IdentityKey,
    principal: String,
    roles: Vec<(&'a ExpectedRole, &'a SmallMap<String>)>,
    /// Roles the identity may also hold, never required: on a service-principal
    /// cluster the service principal is the kubelet identity too (`az aks create
    /// --attach-acr` grants it AcrPull, azure-cli acs `process_attach_acr`).
    also_allowed: Vec<(&'a ExpectedRole, &'a SmallMap<String>)>,
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
        // Conditional rows only while their situation holds (otherwise the role is excess).
        let mut roles: Vec<_> = cp_roles
            .iter()
            .filter(|r| r.holds_for(c))
            .map(|r| (r, &EMPTY))
            .collect();
        if !classify::is_managed(c) {
            // On service-principal clusters, add-ons act through the service principal.
            for a in c.addons.iter().filter(|a| a.enabled) {
                roles.extend(addon_roles(a));
            }
        }
        let also_allowed = if classify::is_managed(c) {
            vec![]
        } else {
            baseline
                .roles_of(&IdentityKey::Kubelet)
                .iter()
                .map(|r| (r, &EMPTY))
                .collect()
        };
        out.push(Subject {
            key: IdentityKey::ControlPlane,
            principal: p.clone(),
            roles,
            also_allowed,
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
            also_allowed: vec![],
        });
    }
    for a in c.addons.iter().filter(|a| a.enabled) {
        // An add-on documented to need no roles (azurepolicy, openServiceMesh, ...)
        // still gets an identity from AKS: every grant it holds is judged, and is
        // excess (AKSMI011). Add-ons the baseline does not know are listed (AKSMI090).
        let documented = baseline.addon_needs_identity(&a.key);
        if !documented && baseline.addon_undocumented(&a.key) {
            continue;
        }
        if let Some(p) = a.identity.as_ref().and_then(|i| i.object_id.clone()) {
            out.push(Subject {
                key: IdentityKey::addon(&a.key),
                principal: p,
                roles: if documented {
                    addon_roles(a).collect()
                } else {
                    vec![]
                },
                also_allowed: vec![],
            });
        }
    }
    out.extend(app_routing_subject(c, baseline));
    out
}

/// Owner, Contributor or User Access Administrator on a subscription or wider: high
/// whether the role is undocumented (AKSMI011) or documented at a narrower scope
/// (AKSMI012).
fn privileged_and_wide(a: &RoleAssignment) -> bool {
    let powerful = [
        baseline::OWNER,
        baseline::CONTRIBUTOR,
        baseline::USER_ACCESS_ADMIN,
    ];
    powerful.contains(&&*a.role_guid) && ids::is_subscription_or_wider(&a.scope)
}

/// Whether missing roles of an identity are still within the propagation grace: the
/// cluster is new, or the identity is being set up (it holds grants and every one of
/// them is fresh). One fresh grant beside older ones is not a set-up in progress: it
/// no longer hides an old gap (it did, so a nightly unrelated grant could hide a
/// missing Contributor for good). A grant of unknown age counts as old.
fn in_grace(ctx: &ClusterCtx, held: &[&RoleAssignment]) -> bool {
    let grace = Duration::minutes(PROPAGATION_GRACE_MINUTES);
    let fresh = |t: chrono::DateTime<chrono::Utc>| ctx.now - t < grace;
    ctx.cluster.created_at.is_some_and(fresh)
        || (!held.is_empty() && held.iter().all(|a| a.created_on.is_some_and(fresh)))
}

pub fn role_findings(ctx: &ClusterCtx, idx: &Index, baseline: &Baseline) -> Vec<Finding> {
    role_findings_and_checks(ctx, idx, baseline).0
}

/// Only the missing grants of each identity of the cluster: the findings
/// (AKSMI010/020/021/023, as [`role_findings_and_checks`] makes them before any group
/// is considered) and the `missing` rows (those within the propagation grace too),
/// without judging every assignment held (what the pass for grants through groups
/// needs, [`super::groups::missing_needs`]).
pub fn missing_grants(
    ctx: &ClusterCtx,
    idx: &Index,
    baseline: &Baseline,
) -> (Vec<Finding>, Vec<RoleCheck>) {
    let c = ctx.cluster;
    let mut out = Vec::new();
    let mut checks = Vec::new();
    let cluster_id: Arc<str> = c.id.as_str().into();
    let empty: Arc<str> = Arc::from("");
    for s in subjects(ctx, baseline) {
        let held = idx.assignments(&s.principal);
        let cover: Vec<&RoleAssignment> = held
            .iter()
            .copied()
            .filter(|a| !ancestry::outside(idx, c, a))
            .collect();
        let j = Judge {
            cover: &cover,
            ctx,
            idx,
            baseline,
            registries: idx.all_registries(),
            principal_id: s.principal.as_str().into(),
            s: &s,
            held,
            cluster_id: &cluster_id,
            empty: &empty,
        };
        out.extend(j.missing(in_grace(ctx, held), &mut checks));
    }
    (out, checks)
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
    let cluster_id: Arc<str> = c.id.as_str().into();
    let empty: Arc<str> = Arc::from("");
    for s in subjects(ctx, baseline) {
        let held = idx.assignments(&s.principal);
        // A grant at a management group the subscription is not under grants nothing here.
        let cover: Vec<&RoleAssignment> = held
            .iter()
            .copied()
            .filter(|a| !ancestry::outside(idx, c, a))
            .collect();
        let j = Judge {
            cover: &cover,
            ctx,
            idx,
            baseline,
            registries: idx.all_registries(),
            principal_id: s.principal.as_str().into(),
            s: &s,
            held,
            cluster_id: &cluster_id,
            empty: &empty,
        };
        let grace = in_grace(ctx, held);
        let mut missing = j.missing(grace, &mut checks);
        j.held_roles(&mut out, &mut checks);
        if !missing.is_empty() && !idx.membership_read(&s.principal) {
            // Its groups are unknown: a group holding the grant may explain it.
            let rerun = |with: &[&RoleAssignment]| {
                let cover: Vec<&RoleAssignment> = with
                    .iter()
                    .copied()
                    .filter(|a| !ancestry::outside(idx, c, a))
                    .collect();
                Judge {
                    held: with,
                    cover: &cover,
                    principal_id: j.principal_id.clone(),
                    ..j
                }
                .missing(grace, &mut Vec::new())
            };
            super::groups::downgrade_unverified(idx, &s.principal, held, &mut missing, &rerun);
        }
        out.extend(missing);
    }
    if classify::is_managed(c) {
        let after_flip = situational::acr_after_migration(ctx, idx);
        let reported: Vec<&str> = after_flip.iter().map(|f| f.subject.as_str()).collect();
        let replaced = registry_pull::kubelet_replaced_findings(ctx, idx, &reported);
        out.extend(after_flip);
        out.extend(replaced);
    }
    out.extend(registry_pull::abac_findings(ctx, idx));
    (out, checks)
}

/// A documented role with the add-on config it applies under.
type Expected<'a> = (&'a ExpectedRole, &'a SmallMap<String>);

/// One identity's documented roles held against its assignments.
struct Judge<'a> {
    ctx: &'a ClusterCtx<'a>,
    idx: &'a Index<'a>,
    baseline: &'a Baseline,
    registries: &'a [&'a Registry],
    s: &'a Subject<'a>,
    held: &'a [&'a RoleAssignment],
    /// `held` but the grants at management groups the subscription is not under.
    cover: &'a [&'a RoleAssignment],
    /// Shared by every row of the cluster (a large tenant has a million rows).
    cluster_id: &'a Arc<str>,
    principal_id: Arc<str>,
    empty: &'a Arc<str>,
}

impl Judge<'_> {
    /// The identity's missing grants: documented roles (AKSMI010) and, for the
    /// control plane, the situational ones (AKSMI020/021/023).
    fn missing(&self, grace: bool, checks: &mut Vec<RoleCheck>) -> Vec<Finding> {
        let mut out = Vec::new();
        self.missing_roles(grace, &mut out, checks);
        if self.s.key == IdentityKey::ControlPlane {
            out.extend(situational::control_plane(
                self.ctx,
                self.idx,
                &self.s.principal,
                self.cover,
                grace,
            ));
            out.extend(situational::feature_roles(
                self.ctx,
                self.idx,
                self.baseline,
                &self.s.principal,
                self.cover,
                grace,
            ));
        }
        out
    }

    /// The row of `role-assignments.csv` for an expected role, an actual assignment
    /// or both.
    fn check(
        &self,
        expected: Option<Expected>,
        actual: Option<&RoleAssignment>,
        status: RoleCheckStatus,
    ) -> RoleCheck {
        let c = self.ctx.cluster;
        let (expected_role, expected_scope) = match expected {
            Some((r, cfg)) => (
                r.role_name.as_str().into(),
                expected_scope(r, c, cfg, self.registries).into(),
            ),
            None => (self.empty.clone(), self.empty.clone()),
        };
        RoleCheck {
            cluster_id: self.cluster_id.clone(),
            identity: self.s.key.clone(),
            principal_id: self.principal_id.clone(),
            expected_role,
            expected_scope,
            actual_role: actual
                .map(|a| {
                    let role = baseline::role_display(&a.role_guid, a.role_name.as_deref());
                    match &a.via_group {
                        Some(g) => format!("{role} (via group {g})").into(),
                        None => role.into(),
                    }
                })
                .unwrap_or_else(|| self.empty.clone()),
            actual_scope: actual
                .map(|a| a.scope.clone())
                .unwrap_or_else(|| self.empty.clone()),
            status,
        }
    }

    /// AKSMI010: each required role not held at (or above) its documented scope is a
    /// `missing` row, and a finding once the propagation grace is over.
    fn missing_roles(&self, grace: bool, out: &mut Vec<Finding>, checks: &mut Vec<RoleCheck>) {
        // Conditional rows are AKSMI023's (situational::feature_roles).
        for (r, cfg) in self
            .s
            .roles
            .iter()
            .filter(|(r, _)| r.required && r.when.is_none())
        {
            if per_target(r.scope) {
                // Each zone needs the role: one missing row (and finding) per zone.
                let c = self.ctx.cluster;
                for t in scope::targets(r.scope, c, cfg, self.registries) {
                    let held = self.held.iter().any(|a| {
                        *a.role_guid == *r.role_guid
                            && ids::relate(&a.scope, &t) != ScopeRelation::None
                    });
                    if held {
                        continue;
                    }
                    let mut row = self.check(Some((*r, *cfg)), None, RoleCheckStatus::Missing);
                    row.expected_scope = t.as_str().into();
                    checks.push(row);
                    if !grace {
                        out.push(self.missing_role(r, &t));
                    }
                }
                continue;
            }
            let Some(target) = self.documented_target(r, cfg) else {
                continue;
            };
            if self.holds_documented(r, cfg) {
                continue;
            }
            checks.push(self.check(Some((*r, *cfg)), None, RoleCheckStatus::Missing));
            if !grace {
                out.push(self.missing_role(r, &target));
            }
        }
    }

    /// Where a documented role should be granted; a DNS zone whose name is unknown is
    /// looked for in the node resource group.
    fn documented_target(&self, r: &ExpectedRole, cfg: &SmallMap<String>) -> Option<String> {
        let c = self.ctx.cluster;
        scope::first_target(r.scope, c, cfg, self.registries).or_else(|| {
            (r.scope == ScopeKind::DnsZone)
                .then(|| {
                    scope::targets(ScopeKind::NodeResourceGroup, c, cfg, self.registries)
                        .first()
                        .cloned()
                })
                .flatten()
        })
    }

    fn holds_documented(&self, r: &ExpectedRole, cfg: &SmallMap<String>) -> bool {
        self.cover.iter().any(|a| {
            *a.role_guid == *r.role_guid
                && scope::relation(r.scope, self.ctx.cluster, cfg, self.registries, &a.scope)
                    != ScopeRelation::None
        })
    }

    fn missing_role(&self, r: &ExpectedRole, target: &str) -> Finding {
        let s = self.s;
        new_finding(
            self.ctx,
            RuleId::MissingRole,
            s.key.clone(),
            &format!("{}|{}", r.role_guid, target),
            format!(
                "{} identity lacks its documented {} role on {}",
                s.key.label(),
                r.role_name,
                target
            ),
            remedy::create_role(&s.principal, &r.role_name, target),
        )
    }

    /// AKSMI011 / AKSMI012: each assignment is `ok`, `too_wide` (a finding) or
    /// `excess` (a finding).
    fn held_roles(&self, out: &mut Vec<Finding>, checks: &mut Vec<RoleCheck>) {
        for a in self.held {
            let (best, matched) = self.judge(a);
            if let (ScopeRelation::Exact, Some((r, _))) = (best, matched) {
                if let Some((_, narrower)) = &r.narrow_to {
                    checks.push(self.check(matched, Some(a), RoleCheckStatus::Excess));
                    out.push(self.narrow(a, narrower));
                    continue;
                }
            }
            let status = match best {
                ScopeRelation::Exact => RoleCheckStatus::Ok,
                ScopeRelation::Ancestor => RoleCheckStatus::TooWide,
                ScopeRelation::None => RoleCheckStatus::Excess,
            };
            checks.push(self.check(matched, Some(a), status));
            match best {
                ScopeRelation::Exact => {}
                ScopeRelation::Ancestor => out.push(self.wide_scope(a, matched)),
                ScopeRelation::None => out.push(self.excess_role(a)),
            }
        }
    }

    /// How an assignment relates to the identity's documented roles: at a documented
    /// scope, above one, or neither; and the documented role it matched.
    fn judge(&self, a: &RoleAssignment) -> (ScopeRelation, Option<Expected<'_>>) {
        let c = self.ctx.cluster;
        let mut best = ScopeRelation::None;
        let mut matched = None;
        if ancestry::outside(self.idx, c, a) {
            return (best, matched);
        }
        for (r, cfg) in self.s.roles.iter().chain(&self.s.also_allowed) {
            if *r.role_guid != *a.role_guid {
                continue;
            }
            match scope::relation(r.scope, c, cfg, self.registries, &a.scope) {
                ScopeRelation::Exact => return (ScopeRelation::Exact, Some((*r, *cfg))),
                ScopeRelation::Ancestor => {
                    best = ScopeRelation::Ancestor;
                    matched = Some((*r, *cfg));
                }
                ScopeRelation::None => {}
            }
        }
        if best == ScopeRelation::None && self.least_privilege_subnet_role(a) {
            // A custom role granting the subnet join and read actions where Network
            // Contributor is documented: the least-privilege form of it (AKSMI020).
            best = ScopeRelation::Exact;
        }
        if best == ScopeRelation::None
            && self.s.key == IdentityKey::Kubelet
            && registry_pull::documented_abac_pull(a, self.registries)
        {
            best = ScopeRelation::Exact;
        }
        if best == ScopeRelation::None
            && documented_elsewhere(self.idx, self.baseline, self.s, c, a, self.registries)
        {
            best = ScopeRelation::Exact;
        }
        (best, matched)
    }

    /// Whether `a` is a custom role granting the subnet join and read actions at a
    /// pool subnet, its VNet or their resource group (the control plane only).
    fn least_privilege_subnet_role(&self, a: &RoleAssignment) -> bool {
        self.s.key == IdentityKey::ControlPlane
            && self.idx.role_definition(&a.role_guid).is_some_and(|d| {
                super::actions::lacking(d, &super::actions::SUBNET_ACTIONS).is_empty()
            })
            && scope::relation(
                ScopeKind::Subnet,
                self.ctx.cluster,
                &EMPTY,
                self.registries,
                &a.scope,
            ) == ScopeRelation::Exact
    }

    /// The command that takes `a` away: deleting the assignment, or for a grant held
    /// through a group (whose assignment reaches every member) leaving the group, and
    /// only when nothing else the group grants is one the identity needs; otherwise a
    /// note to narrow the group's assignment, no command.
    fn remove(&self, a: &RoleAssignment) -> String {
        let Some(g) = &a.via_group else {
            return remedy::delete_role(&a.id);
        };
        let needed = self.held.iter().any(|b| {
            b.id != a.id
                && b.via_group.as_deref() == Some(&**g)
                && (self.judge(b).0 != ScopeRelation::None || !self.regrant(b).is_empty())
        });
        if needed {
            format!(
                "# this grant comes from group {g}'s assignment {}, which applies to every member; the group also grants this identity roles it needs: ask the group's owners to narrow that assignment (az role assignment delete --ids {} removes it for every member)",
                a.id, a.id
            )
        } else {
            format!(
                "# this grant comes from group {g}'s assignment {}, which applies to every member: take this identity out of the group\n{}",
                a.id,
                remedy::leave_group(g, &self.s.principal)
            )
        }
    }

    /// For the control plane: the grants only `a` gives that the cluster's
    /// configuration needs, to create before `a` is deleted (empty otherwise).
    fn regrant(&self, a: &RoleAssignment) -> Vec<String> {
        if self.s.key != IdentityKey::ControlPlane {
            return vec![];
        }
        situational::regrant_before_delete(
            self.ctx.cluster,
            self.baseline,
            &self.s.principal,
            self.cover,
            a,
        )
    }

    /// AKSMI011, low: a grant older tools made (AGIC's Contributor before azure-cli
    /// PR 29989), allowed but wider than the role now granted at the same scope.
    fn narrow(&self, a: &RoleAssignment, narrower: &str) -> Finding {
        let s = self.s;
        let role = baseline::role_display(&a.role_guid, a.role_name.as_deref());
        let mut fix = vec![remedy::create_role(&s.principal, narrower, &a.scope)];
        fix.extend(self.regrant(a));
        fix.push(self.remove(a));
        let mut f = new_finding(
            self.ctx,
            RuleId::ExcessRole,
            s.key.clone(),
            &a.id,
            format!(
                "{} identity holds {role} at {}, which older az CLIs granted; {narrower} there is enough: narrow it",
                s.key.label(),
                shown_at(a)
            ),
            fix.join("\n"),
        );
        f.severity = Severity::Low;
        f
    }

    /// AKSMI012: a documented role above its documented scope.
    fn wide_scope(&self, a: &RoleAssignment, matched: Option<Expected>) -> Finding {
        let (c, s) = (self.ctx.cluster, self.s);
        let role = baseline::role_display(&a.role_guid, a.role_name.as_deref());
        // Re-create it at every required documented scope it covers from above (the
        // node resource group for the control plane's Contributor), not only at the
        // row it matched last (an allowed subnet row would leave the node resource
        // group without its Contributor); the situational needs follow (regrant).
        let required: Vec<String> = s
            .roles
            .iter()
            .filter(|(r, cfg)| {
                r.required
                    && *r.role_guid == *a.role_guid
                    && scope::relation(r.scope, c, cfg, self.registries, &a.scope)
                        == ScopeRelation::Ancestor
            })
            .filter_map(|(r, cfg)| scope::first_target(r.scope, c, cfg, self.registries))
            .collect();
        let documented_at: Vec<String> = if required.is_empty() {
            matched
                .and_then(|(r, cfg)| scope::first_target(r.scope, c, cfg, self.registries))
                .into_iter()
                .collect()
        } else {
            required
        };
        let mut fix: Vec<String> = documented_at
            .iter()
            .map(|t| remedy::create_role(&s.principal, &role, t))
            .collect();
        fix.extend(self.regrant(a));
        fix.push(self.remove(a));
        let at = match documented_at.first() {
            Some(t) => t.as_str(),
            None => "a narrower scope",
        };
        let mut f = new_finding(
            self.ctx,
            RuleId::WideScope,
            s.key.clone(),
            &a.id,
            format!(
                "{} identity holds {role} at {}, wider than documented ({at})",
                s.key.label(),
                shown_at(a)
            ),
            fix.join("\n"),
        );
        // The same blast radius as AKSMI011's high: a documented Contributor held on a
        // whole subscription reaches as far as an undocumented one.
        if privileged_and_wide(a) {
            f.severity = Severity::High;
        }
        f
    }

    /// AKSMI011: a role beyond the documented ones; high when it is Owner,
    /// Contributor or User Access Administrator on a subscription or wider.
    fn excess_role(&self, a: &RoleAssignment) -> Finding {
        let s = self.s;
        let role = baseline::role_display(&a.role_guid, a.role_name.as_deref());
        let mut fix = self.regrant(a);
        fix.push(self.remove(a));
        let mut f = new_finding(
            self.ctx,
            RuleId::ExcessRole,
            s.key.clone(),
            &a.id,
            format!(
                "{} identity holds {role} at {} beyond its documented defaults",
                s.key.label(),
                shown_at(a)
            ),
            fix.join("\n"),
        );
        if privileged_and_wide(a) {
            f.severity = Severity::High;
        } else if self.legacy_monitoring_grant(a) {
            f.severity = Severity::Low;
            f.message = format!(
                "{} identity still holds Monitoring Metrics Publisher at {}, a leftover of Container Insights' legacy authentication: with managed-identity authentication (useAADAuth) the role is not needed",
                s.key.label(),
                a.scope
            );
        }
        f
    }

    /// Monitoring Metrics Publisher held by a Container Insights identity that uses
    /// managed-identity authentication: a leftover grant, not a widened one (low).
    fn legacy_monitoring_grant(&self, a: &RoleAssignment) -> bool {
        const MONITORING_METRICS_PUBLISHER: &str = "3913510d-42f4-4e42-8a64-420c390055eb";
        let IdentityKey::Addon(key) = &self.s.key else {
            return false;
        };
        &*a.role_guid == MONITORING_METRICS_PUBLISHER
            && key.eq_ignore_ascii_case("omsagent")
            && self.ctx.cluster.addons.iter().any(|x| {
                x.key.eq_ignore_ascii_case(key)
                    && x.config.iter().any(|(k, v)| {
                        k.eq_ignore_ascii_case("useAADAuth") && v.eq_ignore_ascii_case("true")
                    })
            })
    }
}

/// Where an assignment is held, for messages: its scope, and the group it comes through.
fn shown_at(a: &RoleAssignment) -> String {
    match &a.via_group {
        Some(g) => format!("{} through group {g}", a.scope),
        None => a.scope.to_string(),
    }
}

/// Scope kinds whose every target needs the role (not one of them).
fn per_target(kind: ScopeKind) -> bool {
    matches!(
        kind,
        ScopeKind::AppRoutingDnsZone | ScopeKind::AppRoutingPrivateDnsZone
    )
}

/// The application routing add-on's identity (`ingressProfile.webAppRouting.identity`,
/// `webapprouting-<cluster>`), judged against the baseline's `addon:webAppRouting`
/// when it has one (managed-identity-overview.md @ 6fc34f7a L92: "Key Vault
/// Certificate User role for Key Vault, DNS Zone Contributor role for DNS zones";
/// the az CLI's `--attach-zones` grants Private DNS Zone Contributor on private
/// zones). A baseline without it (the 2021 table predates the add-on) leaves its
/// grants unjudged.
fn app_routing_subject<'a>(
    c: &crate::inventory::Cluster,
    baseline: &'a Baseline,
) -> Option<Subject<'a>> {
    let w = c.web_app_routing.as_ref().filter(|w| w.enabled)?;
    let principal = w.identity.as_ref()?.object_id.clone()?;
    if !baseline.addon_needs_identity(WEB_APP_ROUTING) {
        return None;
    }
    let key = IdentityKey::addon(WEB_APP_ROUTING);
    let roles = baseline
        .roles_of(&key)
        .iter()
        .map(|r| (r, &EMPTY))
        .collect();
    Some(Subject {
        key,
        principal,
        roles,
        also_allowed: vec![],
    })
}

/// The identity key of the application routing add-on.
pub const WEB_APP_ROUTING: &str = "webAppRouting";

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
        if !baseline.addon_undocumented(&a.key) {
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

/// A shared identity (one user-assigned control plane, or one service principal, for
/// several clusters) holds the documented roles of every cluster that uses it: its
/// own rows, and the conditional rows whose situation holds on the other cluster.
fn documented_elsewhere(
    idx: &Index,
    bl: &Baseline,
    s: &Subject,
    this: &crate::inventory::Cluster,
    a: &RoleAssignment,
    registries: &[&Registry],
) -> bool {
    let conditional = bl.roles_of(&s.key).iter().filter(|r| r.when.is_some());
    let conditional: Vec<&ExpectedRole> = conditional.collect();
    idx.users_of(&s.principal)
        .iter()
        .filter(|other| !other.id.eq_ignore_ascii_case(&this.id))
        .any(|other| {
            let at = |r: &ExpectedRole, cfg: &SmallMap<String>| {
                *r.role_guid == *a.role_guid
                    && scope::relation(r.scope, other, cfg, registries, &a.scope)
                        == ScopeRelation::Exact
            };
            s.roles
                .iter()
                .any(|(r, cfg)| r.when.is_none() && at(r, cfg))
                || conditional
                    .iter()
                    .any(|r| r.holds_for(other) && at(r, &EMPTY))
        })
}
