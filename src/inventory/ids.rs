//! Azure resource id helpers. Ids keep Azure's casing; comparisons ignore case.

/// Segments of an ARM id, without empty parts.
fn segments(id: &str) -> impl Iterator<Item = &str> {
    id.split('/').filter(|s| !s.is_empty())
}

/// The value after a `key` segment (`subscriptions`, `resourceGroups`), case-insensitively.
pub fn segment_after<'a>(id: &'a str, key: &str) -> Option<&'a str> {
    let mut it = segments(id);
    while let Some(seg) = it.next() {
        if seg.eq_ignore_ascii_case(key) {
            return it.next();
        }
    }
    None
}

pub fn subscription_of(id: &str) -> Option<&str> {
    segment_after(id, "subscriptions")
}

pub fn resource_group_of(id: &str) -> Option<&str> {
    segment_after(id, "resourceGroups")
}

/// The last segment: the resource's name.
pub fn name_of(id: &str) -> Option<&str> {
    segments(id).last()
}

/// The role GUID at the end of a `roleDefinitionId`, lower-cased.
pub fn role_guid(role_definition_id: &str) -> String {
    name_of(role_definition_id)
        .unwrap_or(role_definition_id)
        .to_ascii_lowercase()
}

/// Whether `s` is a GUID (8-4-4-4-12 hex digits).
pub fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let lens = [8, 4, 4, 4, 12];
    parts.len() == 5
        && parts
            .iter()
            .zip(lens)
            .all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Normalised scope: lower-cased, no trailing slash, `/` for the root.
pub fn norm(scope: &str) -> String {
    let t = scope.trim().trim_end_matches('/').to_ascii_lowercase();
    if t.is_empty() {
        "/".to_string()
    } else {
        t
    }
}

/// How an assignment's scope relates to a target scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeRelation {
    /// The same scope.
    Exact,
    /// The assignment covers the target from above (wider than the target).
    Ancestor,
    /// Unrelated, or narrower.
    None,
}

/// Compares an assignment scope to a target resource id. Management-group scopes
/// (`/providers/Microsoft.Management/managementGroups/x`) and the root `/` count as
/// ancestors of every subscription scope: Resource Graph only shows assignments
/// that apply to what the caller can read.
pub fn relate(assignment_scope: &str, target: &str) -> ScopeRelation {
    let a = norm(assignment_scope);
    let t = norm(target);
    if a == t {
        return ScopeRelation::Exact;
    }
    if a == "/" || a.starts_with("/providers/microsoft.management/managementgroups/") {
        return if t.starts_with("/subscriptions/") || t.starts_with("/providers/") {
            ScopeRelation::Ancestor
        } else {
            ScopeRelation::None
        };
    }
    if t.len() > a.len() && t.starts_with(&a) && t.as_bytes()[a.len()] == b'/' {
        ScopeRelation::Ancestor
    } else {
        ScopeRelation::None
    }
}

/// Whether a scope is a subscription, a management group or the root.
pub fn is_subscription_or_wider(scope: &str) -> bool {
    let s = norm(scope);
    if s == "/" || s.starts_with("/providers/microsoft.management/managementgroups/") {
        return true;
    }
    let segs: Vec<&str> = segments(&s).collect();
    segs.len() == 2 && segs[0] == "subscriptions"
}

/// `/subscriptions/<sub>/resourceGroups/<rg>`.
pub fn resource_group_id(subscription: &str, rg: &str) -> String {
    format!("/subscriptions/{subscription}/resourceGroups/{rg}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_segments_case_insensitively() {
        let id = "/subscriptions/S1/resourcegroups/MC_rg_c_eastus/providers/Microsoft.ManagedIdentity/userAssignedIdentities/c-agentpool";
        assert_eq!(subscription_of(id), Some("S1"));
        assert_eq!(resource_group_of(id), Some("MC_rg_c_eastus"));
        assert_eq!(name_of(id), Some("c-agentpool"));
    }

    #[test]
    fn role_guid_is_lowercased_tail() {
        assert_eq!(
            role_guid("/subscriptions/x/providers/Microsoft.Authorization/roleDefinitions/B24988AC-6180-42A0-AB88-20F7382DD24C"),
            "b24988ac-6180-42a0-ab88-20f7382dd24c"
        );
    }

    #[test]
    fn guid_check() {
        assert!(is_guid("b24988ac-6180-42a0-ab88-20f7382dd24c"));
        assert!(!is_guid("http://clitest000001"));
        assert!(!is_guid("b24988ac-6180-42a0-ab88-20f7382dd24"));
    }

    #[test]
    fn scope_relations() {
        let rg = "/subscriptions/s/resourceGroups/MC_x";
        assert_eq!(
            relate("/subscriptions/S/resourcegroups/mc_x/", rg),
            ScopeRelation::Exact
        );
        assert_eq!(relate("/subscriptions/s", rg), ScopeRelation::Ancestor);
        assert_eq!(
            relate("/subscriptions/s/resourceGroups/MC", rg),
            ScopeRelation::None
        );
        assert_eq!(
            relate("/providers/Microsoft.Management/managementGroups/root", rg),
            ScopeRelation::Ancestor
        );
        assert_eq!(relate("/", rg), ScopeRelation::Ancestor);
        assert_eq!(
            relate(&format!("{rg}/providers/x/y/z"), rg),
            ScopeRelation::None
        );
    }

    #[test]
    fn wide_scopes() {
        assert!(is_subscription_or_wider("/subscriptions/s/"));
        assert!(is_subscription_or_wider("/"));
        assert!(is_subscription_or_wider(
            "/providers/Microsoft.Management/managementGroups/m"
        ));
        assert!(!is_subscription_or_wider(
            "/subscriptions/s/resourceGroups/r"
        ));
    }
}
