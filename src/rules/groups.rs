//! Grants through Microsoft Entra groups (issue 11: "AKSMI020 accepts ... grants
//! through an Entra group the identity belongs to").
//!
//! Azure RBAC gives a member every role assigned to its groups, nested groups
//! included (Microsoft Graph's `transitiveMemberOf` is that closure: "This operation
//! is transitive and will include all groups that this service principal is a nested
//! member of", learn.microsoft.com graph/api/serviceprincipal-list-transitivememberof;
//! managed identities are service principals, their object id the cluster's
//! `principalId`). A group's assignment is `principalType: Group` in Resource Graph's
//! `authorizationresources` and in `az role assignment list`.
//!
//! - Membership known (`--graph`, or `group-memberships.json` in a folder): the
//!   group's assignments become the member's own rows ([`expand`], `via_group` set),
//!   so every check sees them: a missing grant a group explains is held, and a
//!   group's Owner on a subscription is an excess of the member (AKSMI011/012).
//! - Membership unknown: a missing grant that some group holds at the target (or
//!   above it) cannot be called missing, nor held. The finding stays, low, naming the
//!   group: "membership not checked" ([`downgrade_unverified`]). Where no group
//!   holds it the missing verdict stands (the group rows at those scopes were read).
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::baseline::Baseline;
use super::{Finding, IdentityKey, RuleId, Severity};
use crate::inventory::{Inventory, RoleAssignment};

/// Whether `a` is a group's assignment (`principalType` Group), not a member's copy.
pub fn is_group_row(a: &RoleAssignment) -> bool {
    a.via_group.is_none()
        && a.principal_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("Group"))
}

/// The rules whose verdict is "a grant is missing": a group may explain them.
pub fn is_missing_rule(r: RuleId) -> bool {
    matches!(
        r,
        RuleId::MissingRole
            | RuleId::SubnetPermission
            | RuleId::KubeletOperator
            | RuleId::FeatureRole
    )
}

/// Where a missing-grant finding's grant is needed: its subject (`<role guid>|<target>`
/// for AKSMI010/023, the subnet or kubelet identity for AKSMI020/021).
pub fn target_of(f: &Finding) -> &str {
    f.subject.rsplit('|').next().unwrap_or(&f.subject)
}

/// Adds, for each principal whose group membership is known, its groups' assignments
/// as its own rows (`via_group` = the group). Returns how many were added.
pub fn expand(inv: &mut Inventory) -> usize {
    if inv.group_memberships.is_empty() {
        return 0;
    }
    let mut by_group: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, a) in inv.role_assignments.iter().enumerate() {
        if is_group_row(a) {
            by_group
                .entry(a.principal_id.to_ascii_lowercase())
                .or_default()
                .push(i);
        }
    }
    let mut added = Vec::new();
    for m in &inv.group_memberships {
        let member: Arc<str> = m.principal_id.as_str().into();
        let mut seen = std::collections::HashSet::new();
        for g in &m.groups {
            let Some(rows) = by_group.get(&g.to_ascii_lowercase()) else {
                continue;
            };
            for &i in rows {
                let a = &inv.role_assignments[i];
                if !seen.insert(a.id.to_ascii_lowercase()) {
                    continue;
                }
                let mut copy = a.clone();
                copy.via_group = Some(a.principal_id.clone());
                copy.principal_id = member.clone();
                added.push(copy);
            }
        }
    }
    let n = added.len();
    inv.role_assignments.extend(added);
    n
}

/// Without membership: each missing-grant finding of `missing` that a group's grant at
/// (or above) its target would satisfy becomes low, naming the group. `rerun` gives
/// the same identity's missing-grant findings with more grants held.
pub fn downgrade_unverified(
    idx: &super::index::Index,
    principal: &str,
    held: &[&RoleAssignment],
    missing: &mut [Finding],
    rerun: &dyn Fn(&[&RoleAssignment]) -> Vec<Finding>,
) {
    if !idx.has_group_rows() {
        return;
    }
    for f in missing.iter_mut().filter(|f| is_missing_rule(f.rule_id)) {
        let target = target_of(f).to_string();
        // The groups holding anything at or above the target, each with those rows.
        let mut groups: BTreeMap<String, Vec<&RoleAssignment>> = BTreeMap::new();
        for a in idx.group_rows_covering(&target) {
            groups
                .entry(a.principal_id.to_ascii_lowercase())
                .or_default()
                .push(a);
        }
        let fp = f.fingerprint();
        for (group, rows) in groups {
            let mut with: Vec<&RoleAssignment> = held.to_vec();
            with.extend(rows.iter().copied());
            if rerun(&with).iter().any(|x| x.fingerprint() == fp) {
                continue;
            }
            let at = rows
                .iter()
                .map(|a| a.scope.to_string())
                .min_by_key(|s| std::cmp::Reverse(s.len()))
                .unwrap_or_default();
            f.severity = Severity::Low;
            f.message = format!(
                "{} identity has no grant of its own for what it needs on {target}; group {group} holds one at {at}, but whether the identity is a member was not checked (run with --graph)",
                f.identity.label()
            );
            f.remediation = format!(
                "# if the identity is not a member of group {group}:\n{}\naz ad group member check --group {group} --member-id {principal}",
                f.remediation
                    .lines()
                    .map(|l| if l.starts_with('#') { l.to_string() } else { format!("# {l}") })
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            break;
        }
    }
}

/// What the collection's second pass needs: the identities (object ids) whose
/// missing grants a group might explain, and where each grant is missing.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Needs {
    /// (principal object id, target scope), each once.
    pub missing: Vec<(String, String)>,
}

impl Needs {
    /// The identities, each once (lower-cased).
    pub fn principals(&self) -> Vec<String> {
        let mut p: Vec<String> = self
            .missing
            .iter()
            .map(|(p, _)| p.to_ascii_lowercase())
            .collect();
        p.sort();
        p.dedup();
        p
    }

    /// The targets and every scope above them (resource group, subscription): where
    /// a group's grant would reach them. Management groups are not listed.
    pub fn scopes(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (_, t) in &self.missing {
            let mut s = t.trim_end_matches('/').to_string();
            loop {
                out.push(s.to_ascii_lowercase());
                match parent_scope(&s) {
                    Some(p) => s = p,
                    None => break,
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }
}

/// The next scope up: a child resource's parent resource, a resource's group, a
/// group's subscription; `None` above a subscription.
fn parent_scope(s: &str) -> Option<String> {
    let parts: Vec<&str> = s.trim_matches('/').split('/').collect();
    // subscriptions/{s}
    if parts.len() <= 2 {
        return None;
    }
    // subscriptions/{s}/resourceGroups/{g}
    if parts.len() <= 4 {
        return Some(format!("/{}", parts[..2].join("/")));
    }
    // .../providers/{ns}/{type}/{name}[/{type}/{name}]...
    let up = if parts.len() > 8 { parts.len() - 2 } else { 4 };
    Some(format!("/{}", parts[..up].join("/")))
}

/// The missing grants of every cluster identity, as the rules see them with the
/// inventory as collected (no history: AKSMI022 is not looked at).
pub fn missing_needs(inv: &Inventory, baseline: &Baseline, now: DateTime<Utc>) -> Needs {
    let shared = super::index::sharing_identities(&inv.clusters);
    let idx = super::index::Index::build(inv, &shared);
    let mut missing = Vec::new();
    for c in inv.clusters.iter().filter(|c| c.conflict.is_none()) {
        let cp = idx.control_plane_principal(c);
        let observed = crate::history::observe(None, c, now, &[], super::migration::flip_kind(c));
        let ctx = super::ClusterCtx {
            cluster: c,
            observed: &observed,
            status: crate::history::MigrationStatus::NoneObserved,
            status_pools: vec![],
            control_plane_principal: cp.clone(),
            now,
        };
        let (findings, checks) = super::roles::missing_grants(&ctx, &idx, baseline);
        for rc in checks
            .iter()
            .filter(|r| r.status == super::RoleCheckStatus::Missing)
            .filter(|r| r.expected_scope.starts_with('/'))
        {
            missing.push((rc.principal_id.to_string(), rc.expected_scope.to_string()));
        }
        for f in findings.iter().filter(|f| is_missing_rule(f.rule_id)) {
            let principal = match &f.identity {
                IdentityKey::ControlPlane => cp.clone(),
                _ => None,
            };
            if let Some(p) = principal {
                missing.push((p, target_of(f).to_string()));
            }
        }
    }
    missing.sort_by_key(|(p, t)| (p.to_ascii_lowercase(), t.to_ascii_lowercase()));
    missing.dedup_by(|a, b| a.0.eq_ignore_ascii_case(&b.0) && a.1.eq_ignore_ascii_case(&b.1));
    Needs { missing }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_climb_to_the_subscription() {
        let n = Needs {
            missing: vec![(
                "p".into(),
                "/subscriptions/S/resourceGroups/rg-net/providers/Microsoft.Network/virtualNetworks/vnet/subnets/aks".into(),
            )],
        };
        assert_eq!(
            n.scopes(),
            [
                "/subscriptions/s",
                "/subscriptions/s/resourcegroups/rg-net",
                "/subscriptions/s/resourcegroups/rg-net/providers/microsoft.network/virtualnetworks/vnet",
                "/subscriptions/s/resourcegroups/rg-net/providers/microsoft.network/virtualnetworks/vnet/subnets/aks",
            ]
        );
    }
}
