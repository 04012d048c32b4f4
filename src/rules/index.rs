//! Lookups built once per run, so no check is quadratic in clusters × assignments.
use std::collections::HashMap as StdHashMap;

/// The index's maps: keyed by lower-cased ids, looked up a million times, so hashed
/// with foldhash (randomly seeded) rather than SipHash.
type HashMap<K, V> = StdHashMap<K, V, foldhash::fast::RandomState>;

use super::baseline::ACR_PULL;
use super::classify;
use crate::inventory::{Cluster, Inventory, Registry, ResourceGroup, RoleAssignment, Subscription};

pub struct Index<'a> {
    by_principal: HashMap<String, Vec<&'a RoleAssignment>>,
    /// `principalName` (a service principal's app id or legacy name) → principal id.
    by_principal_name: HashMap<String, String>,
    subscriptions: HashMap<String, &'a Subscription>,
    resource_groups: HashMap<String, &'a ResourceGroup>,
    registries_by_subscription: HashMap<String, Vec<&'a Registry>>,
    /// Every registry, collected once (the checks take `&[&Registry]`).
    registries: Vec<&'a Registry>,
    /// Principal → the clusters whose identities it is (shared user-assigned identities).
    users: HashMap<String, Vec<&'a Cluster>>,
}

impl<'a> Index<'a> {
    pub fn build(inv: &'a Inventory) -> Index<'a> {
        let mut by_principal: HashMap<String, Vec<&RoleAssignment>> = HashMap::default();
        let mut by_principal_name = HashMap::default();
        for ra in &inv.role_assignments {
            by_principal
                .entry(ra.principal_id.to_ascii_lowercase())
                .or_default()
                .push(ra);
            if let Some(n) = &ra.principal_name {
                by_principal_name
                    .insert(n.to_ascii_lowercase(), ra.principal_id.to_ascii_lowercase());
            }
        }
        let mut registries_by_subscription: HashMap<String, Vec<&Registry>> = HashMap::default();
        for r in &inv.registries {
            registries_by_subscription
                .entry(r.subscription_id.to_ascii_lowercase())
                .or_default()
                .push(r);
        }
        let mut users: HashMap<String, Vec<&Cluster>> = HashMap::default();
        for c in &inv.clusters {
            let mut principals: Vec<String> =
                classify::control_plane_principal(c).into_iter().collect();
            principals.extend(c.kubelet.as_ref().and_then(|k| k.object_id.clone()));
            principals.extend(
                c.addons
                    .iter()
                    .filter_map(|a| a.identity.as_ref()?.object_id.clone()),
            );
            for p in principals {
                let list = users.entry(p.to_ascii_lowercase()).or_default();
                if !list.iter().any(|x| std::ptr::eq(*x, c)) {
                    list.push(c);
                }
            }
        }
        Index {
            users,
            by_principal,
            by_principal_name,
            subscriptions: inv
                .subscriptions
                .iter()
                .map(|s| (s.id.to_ascii_lowercase(), s))
                .collect(),
            resource_groups: inv
                .resource_groups
                .iter()
                .map(|g| {
                    (
                        format!("{}/{}", g.subscription_id, g.name).to_ascii_lowercase(),
                        g,
                    )
                })
                .collect(),
            registries_by_subscription,
            registries: inv.registries.iter().collect(),
        }
    }

    pub fn assignments(&self, principal: &str) -> &[&'a RoleAssignment] {
        self.by_principal
            .get(&principal.to_ascii_lowercase())
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    pub fn users_of(&self, principal: &str) -> &[&'a Cluster] {
        self.users
            .get(&principal.to_ascii_lowercase())
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    pub fn subscription(&self, id: &str) -> Option<&'a Subscription> {
        self.subscriptions.get(&id.to_ascii_lowercase()).copied()
    }

    pub fn resource_group(&self, subscription: &str, name: &str) -> Option<&'a ResourceGroup> {
        self.resource_groups
            .get(&format!("{subscription}/{name}").to_ascii_lowercase())
            .copied()
    }

    pub fn registries_in(&self, subscription: &str) -> &[&'a Registry] {
        self.registries_by_subscription
            .get(&subscription.to_ascii_lowercase())
            .map(Vec::as_slice)
            .unwrap_or(&[])
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
            .get(&client.to_ascii_lowercase())
            .cloned()
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
