//! Management-group ancestry: a role assignment at
//! `/providers/Microsoft.Management/managementGroups/<name>` reaches a cluster only
//! when the cluster's subscription is under that group (spec: issue 11 §8; Resource
//! Graph `resourcecontainers` subscription rows carry
//! `properties.managementGroupAncestorsChain`). Known: placed (above, or nowhere near
//! the cluster); unknown: the cluster's role verdicts are `not_evaluated`, never
//! assumed either way.
use super::index::Index;
use crate::inventory::{Cluster, RoleAssignment};

/// The management group an assignment scope names, if it is one.
pub fn management_group(scope: &str) -> Option<&str> {
    let t = scope.trim().trim_end_matches('/');
    let rest = strip_prefix_ci(t, "/providers/Microsoft.Management/managementGroups/")?;
    (!rest.is_empty() && !rest.contains('/')).then_some(rest)
}

fn strip_prefix_ci<'a>(s: &'a str, p: &str) -> Option<&'a str> {
    (s.len() >= p.len() && s.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes()))
        .then(|| &s[p.len()..])
}

/// Whether an assignment is at a management group the cluster's subscription is
/// known not to be under: it grants nothing there.
pub fn outside(idx: &Index, c: &Cluster, a: &RoleAssignment) -> bool {
    management_group(&a.scope).is_some_and(|mg| {
        idx.subscription(&c.subscription_id)
            .and_then(|s| s.under_management_group(mg))
            == Some(false)
    })
}

/// The first management-group assignment of `principals` that cannot be placed
/// because the subscription's ancestry is unknown: why the roles are not evaluated.
pub fn unplaced<'p>(
    idx: &Index,
    c: &Cluster,
    principals: impl IntoIterator<Item = &'p str>,
) -> Option<String> {
    let known = idx
        .subscription(&c.subscription_id)
        .is_some_and(|s| s.management_groups.is_some());
    if known {
        return None;
    }
    principals.into_iter().find_map(|p| {
        idx.assignments(p).iter().find_map(|a| {
            management_group(&a.scope).map(|mg| {
                format!(
                    "a role assignment at management group `{mg}` cannot be placed: the subscription's management-group ancestry is unknown (read subscriptions from Resource Graph, or add managementGroupAncestorsChain to the subscriptions file)"
                )
            })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn management_group_scopes_only() {
        assert_eq!(
            management_group("/providers/Microsoft.Management/managementGroups/mg-prod"),
            Some("mg-prod")
        );
        assert_eq!(
            management_group("/providers/microsoft.management/managementgroups/MG-Prod/"),
            Some("MG-Prod")
        );
        assert_eq!(management_group("/subscriptions/s"), None);
        assert_eq!(management_group("/"), None);
        assert_eq!(
            management_group("/providers/Microsoft.Management/managementGroups/"),
            None
        );
    }
}
