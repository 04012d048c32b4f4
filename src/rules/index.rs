//! Lookups built once per run, so no check is quadratic in clusters × assignments.
use std::hash::{Hash, Hasher};

/// The index's maps: looked up a million times, so hashed with foldhash (randomly
/// seeded) rather than SipHash; hashbrown's for [`hashbrown::Equivalent`], which lets a
/// key borrowed for the lookup only find a value borrowed for the whole run.
type HashMap<K, V> = hashbrown::HashMap<K, V, foldhash::fast::RandomState>;

use super::baseline::ACR_PULL;
use super::classify;
use crate::inventory::{Cluster, Inventory, Registry, ResourceGroup, RoleAssignment, Subscription};

/// A key borrowed from the inventory that hashes and compares ignoring ASCII case:
/// Azure ids are case-insensitive, and a lower-cased copy of every key would cost a
/// large tenant tens of megabytes.
#[derive(Clone, Copy)]
struct NoCase<'a>(&'a str);

impl Hash for NoCase<'_> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        let mut buf = [0u8; 64];
        for chunk in self.0.as_bytes().chunks(64) {
            let lower = &mut buf[..chunk.len()];
            lower.copy_from_slice(chunk);
            lower.make_ascii_lowercase();
            h.write(lower);
        }
        h.write_u8(0xff);
    }
}

impl PartialEq for NoCase<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.0.eq_ignore_ascii_case(other.0)
    }
}

impl Eq for NoCase<'_> {}

/// Two parts of a key (subscription and resource group name), each ignoring case.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct NoCase2<'a>(NoCase<'a>, NoCase<'a>);

/// What a lookup hashes: a key borrowed only for the lookup, hashed like [`NoCase`].
struct Probe<'b>(&'b str);

impl Hash for Probe<'_> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        NoCase(self.0).hash(h)
    }
}

impl<'a> hashbrown::Equivalent<NoCase<'a>> for Probe<'_> {
    fn equivalent(&self, key: &NoCase<'a>) -> bool {
        self.0.eq_ignore_ascii_case(key.0)
    }
}

/// A lookup of a [`NoCase2`] key.
struct Probe2<'b>(&'b str, &'b str);

impl Hash for Probe2<'_> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        NoCase2(NoCase(self.0), NoCase(self.1)).hash(h)
    }
}

impl<'a> hashbrown::Equivalent<NoCase2<'a>> for Probe2<'_> {
    fn equivalent(&self, key: &NoCase2<'a>) -> bool {
        self.0.eq_ignore_ascii_case(key.0 .0) && self.1.eq_ignore_ascii_case(key.1 .0)
    }
}

pub struct Index<'a> {
    by_principal: HashMap<NoCase<'a>, Vec<&'a RoleAssignment>>,
    /// `principalName` (a service principal's app id or legacy name) → principal id.
    by_principal_name: HashMap<NoCase<'a>, &'a str>,
    subscriptions: HashMap<NoCase<'a>, &'a Subscription>,
    resource_groups: HashMap<NoCase2<'a>, &'a ResourceGroup>,
    registries_by_subscription: HashMap<NoCase<'a>, Vec<&'a Registry>>,
    /// Every registry, collected once (the checks take `&[&Registry]`).
    registries: Vec<&'a Registry>,
    /// Principal → the clusters whose identities it is (shared user-assigned identities).
    users: HashMap<NoCase<'a>, Vec<&'a Cluster>>,
    /// The coverage gaps: whose role assignments were not read.
    gaps: super::evaluated::GapIndex<'a>,
    /// Custom role definitions by GUID.
    role_definitions: HashMap<NoCase<'a>, &'a crate::inventory::RoleDefinition>,
    /// Groups' own assignments (`principalType` Group), for identities whose
    /// membership is unknown (see [`super::groups`]): by scope, and those at
    /// management groups or the root apart.
    group_rows: HashMap<NoCase<'a>, Vec<&'a RoleAssignment>>,
    group_rows_wide: Vec<&'a RoleAssignment>,
    /// Principals whose group membership was read.
    membership_read: HashMap<NoCase<'a>, ()>,
}

/// Copies of the clusters that share an identity principal with another cluster (one
/// user-assigned identity for several clusters): the rules look at those across
/// clusters, while every other cluster is needed only while it is audited.
pub fn sharing_identities(clusters: &[Cluster]) -> Vec<Cluster> {
    let mut first_user: HashMap<NoCase, usize> = HashMap::default();
    let mut shared = vec![false; clusters.len()];
    for (i, c) in clusters.iter().enumerate() {
        // A service principal is keyed by its client id (its object id is found in
        // the role assignments later): one service principal for several clusters.
        let sp = sp_client(c);
        for p in c.principal_ids().chain(sp) {
            let first = *first_user.entry(NoCase(p)).or_insert(i);
            if first != i {
                shared[first] = true;
                shared[i] = true;
            }
        }
    }
    clusters
        .iter()
        .zip(shared)
        .filter(|(_, s)| *s)
        .map(|(c, _)| c.clone())
        .collect()
}

/// A service-principal cluster's client id (not `msi`).
fn sp_client(c: &Cluster) -> Option<&str> {
    if classify::is_managed(c) {
        return None;
    }
    c.sp_client_id
        .as_deref()
        .filter(|id| !id.eq_ignore_ascii_case("msi"))
}

impl<'a> Index<'a> {
    /// Indexes `inv`; `users` are the clusters whose identities may be shared (see
    /// [`sharing_identities`]): the only ones [`Index::users_of`] needs to know.
    pub fn build(inv: &'a Inventory, users: &'a [Cluster]) -> Index<'a> {
        let mut by_principal: HashMap<NoCase, Vec<&RoleAssignment>> = HashMap::default();
        let mut by_principal_name = HashMap::default();
        let mut group_rows: HashMap<NoCase, Vec<&RoleAssignment>> = HashMap::default();
        let mut group_rows_wide = Vec::new();
        for ra in &inv.role_assignments {
            if super::groups::is_group_row(ra) {
                let sub_scoped = ra
                    .scope
                    .get(..15)
                    .is_some_and(|p| p.eq_ignore_ascii_case("/subscriptions/"));
                if sub_scoped {
                    group_rows
                        .entry(NoCase(ra.scope.trim_end_matches('/')))
                        .or_default()
                        .push(ra);
                } else {
                    group_rows_wide.push(ra);
                }
            }
            by_principal
                .entry(NoCase(&ra.principal_id))
                .or_default()
                .push(ra);
            if let Some(n) = &ra.principal_name {
                by_principal_name.insert(NoCase(n), &*ra.principal_id);
            }
        }
        let mut registries_by_subscription: HashMap<NoCase, Vec<&Registry>> = HashMap::default();
        for r in &inv.registries {
            registries_by_subscription
                .entry(NoCase(&r.subscription_id))
                .or_default()
                .push(r);
        }
        let mut users_of: HashMap<NoCase, Vec<&Cluster>> = HashMap::default();
        for c in users {
            let sp = sp_client(c).and_then(|cl| by_principal_name.get(&Probe(cl)).copied());
            let principals = classify::control_plane_principal_str(c)
                .into_iter()
                .chain(sp)
                .chain(c.kubelet.as_ref().and_then(|k| k.object_id.as_deref()))
                .chain(
                    c.addons
                        .iter()
                        .filter_map(|a| a.identity.as_ref()?.object_id.as_deref()),
                );
            for p in principals {
                let list = users_of.entry(NoCase(p)).or_default();
                if !list.iter().any(|x| std::ptr::eq(*x, c)) {
                    list.push(c);
                }
            }
        }
        Index {
            group_rows,
            group_rows_wide,
            membership_read: inv
                .group_memberships
                .iter()
                .map(|m| (NoCase(m.principal_id.as_str()), ()))
                .collect(),
            gaps: super::evaluated::GapIndex::new(&inv.coverage.gaps),
            role_definitions: inv
                .role_definitions
                .iter()
                .map(|d| (NoCase(d.guid.as_str()), d))
                .collect(),
            users: users_of,
            by_principal,
            by_principal_name,
            subscriptions: inv
                .subscriptions
                .iter()
                .map(|s| (NoCase(&s.id), s))
                .collect(),
            resource_groups: inv
                .resource_groups
                .iter()
                .map(|g| (NoCase2(NoCase(&g.subscription_id), NoCase(&g.name)), g))
                .collect(),
            registries_by_subscription,
            registries: inv.registries.iter().collect(),
        }
    }

    pub fn assignments(&self, principal: &str) -> &[&'a RoleAssignment] {
        self.by_principal
            .get(&Probe(principal))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Whether any group's own role assignment was read.
    pub fn has_group_rows(&self) -> bool {
        !self.group_rows.is_empty() || !self.group_rows_wide.is_empty()
    }

    /// Groups' own role assignments at `target` or a scope above it (each scope up
    /// its path, and every one at a management group or the root).
    pub fn group_rows_covering(&self, target: &str) -> Vec<&'a RoleAssignment> {
        let t = target.trim_end_matches('/');
        let mut out: Vec<&'a RoleAssignment> = Vec::new();
        let ends = t
            .char_indices()
            .filter(|(i, c)| *c == '/' && *i > 0)
            .map(|(i, _)| i)
            .chain(std::iter::once(t.len()));
        for end in ends {
            if let Some(rows) = self.group_rows.get(&Probe(&t[..end])) {
                out.extend(rows.iter().copied());
            }
        }
        out.extend(self.group_rows_wide.iter().copied().filter(|a| {
            crate::inventory::ids::relate(&a.scope, t) != crate::inventory::ids::ScopeRelation::None
        }));
        out
    }

    /// Whether `principal`'s group membership was read (its groups' grants are then
    /// among its own assignments).
    pub fn membership_read(&self, principal: &str) -> bool {
        self.membership_read.contains_key(&Probe(principal))
    }

    pub fn users_of(&self, principal: &str) -> &[&'a Cluster] {
        self.users
            .get(&Probe(principal))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    pub fn subscription(&self, id: &str) -> Option<&'a Subscription> {
        self.subscriptions.get(&Probe(id)).copied()
    }

    pub fn resource_group(&self, subscription: &str, name: &str) -> Option<&'a ResourceGroup> {
        self.resource_groups
            .get(&Probe2(subscription, name))
            .copied()
    }

    pub fn registries_in(&self, subscription: &str) -> &[&'a Registry] {
        self.registries_by_subscription
            .get(&Probe(subscription))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// A custom role definition by the GUID its assignments end with.
    pub fn role_definition(&self, guid: &str) -> Option<&'a crate::inventory::RoleDefinition> {
        self.role_definitions.get(&Probe(guid)).copied()
    }

    /// Whether the grants at `target` may be unread: its subscription's role
    /// assignments are a coverage gap (not read, or outside the audited scope).
    pub fn grants_unread(&self, target: &str) -> bool {
        crate::inventory::ids::subscription_of(target)
            .is_some_and(|s| self.gaps.covering("role-assignments", s).is_some())
    }

    pub fn all_registries(&self) -> &[&'a Registry] {
        &self.registries
    }

    /// The control plane's principal id: the managed identity's, or for a service
    /// principal the principal the role assignments name by its client id.
    pub fn control_plane_principal(&self, c: &Cluster) -> Option<String> {
        if classify::is_managed(c) {
            return classify::control_plane_principal(c);
        }
        let client = c.sp_client_id.as_deref()?;
        self.by_principal_name
            .get(&Probe(client))
            .map(|p| p.to_ascii_lowercase())
    }

    /// Registry scopes on which a principal holds AcrPull.
    pub fn acr_pull_registries(&self, principal: &str) -> Vec<String> {
        self.assignments(principal)
            .iter()
            .filter(|a| {
                &*a.role_guid == ACR_PULL
                    || a.role_name
                        .as_deref()
                        .is_some_and(|n| n.eq_ignore_ascii_case("AcrPull"))
            })
            .map(|a| a.scope.to_string())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{ClusterIdentity, IdentityRef, IdentityType, UserAssignedIdentity};

    fn cluster(name: &str, control_plane: &str, kubelet: &str) -> Cluster {
        Cluster {
            id: format!("/subscriptions/s1/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/{name}"),
            name: name.into(),
            subscription_id: "S1".into(),
            resource_group: "RG".into(),
            identity: Some(ClusterIdentity {
                kind: IdentityType::UserAssigned,
                principal_id: None,
                tenant_id: None,
                user_assigned: vec![UserAssignedIdentity {
                    resource_id: format!("/ua/{control_plane}"),
                    principal_id: Some(control_plane.into()),
                    client_id: None,
                }],
            }),
            kubelet: Some(IdentityRef {
                object_id: Some(kubelet.into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn only_clusters_sharing_an_identity_are_kept_for_cross_cluster_checks() {
        let clusters = vec![
            cluster("a", "shared-cp", "k-a"),
            cluster("b", "alone", "k-b"),
            cluster("c", "SHARED-CP", "k-c"),
            cluster("d", "d-cp", "k-a"), // shares a's kubelet identity
        ];
        let shared = sharing_identities(&clusters);
        let names: Vec<&str> = shared.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["a", "c", "d"]);
        let inv = Inventory {
            subscriptions: vec![crate::inventory::Subscription {
                id: "s1".into(),
                name: "one".into(),
                ..Default::default()
            }],
            resource_groups: vec![ResourceGroup {
                id: "/subscriptions/s1/resourceGroups/rg".into(),
                subscription_id: "s1".into(),
                name: "rg".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let idx = Index::build(&inv, &shared);
        let users =
            |p: &str| -> Vec<&str> { idx.users_of(p).iter().map(|c| c.name.as_str()).collect() };
        assert_eq!(users("Shared-Cp"), ["a", "c"]);
        assert_eq!(users("K-A"), ["a", "d"]);
        assert!(users("alone").is_empty());
        // Borrowed keys, compared without case.
        assert_eq!(idx.subscription("S1").map(|s| s.name.as_str()), Some("one"));
        assert!(idx.resource_group("S1", "RG").is_some());
        assert!(idx.resource_group("s1", "rg2").is_none());
        assert!(idx.resource_group("s", "1rg").is_none());
    }
}
