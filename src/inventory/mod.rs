//! The typed inventory and the readers that fill it from ARM, Resource Graph and
//! `az` CLI shapes. One bad element never sinks the run: it is skipped and counted.
pub mod folder;
pub mod ids;
pub mod json;
pub mod model;
pub mod node_signals;
pub mod read;
pub mod small_map;

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::Value;

pub use model::*;
pub use node_signals::{ChangedFlip, ClusterChanges, NodeScaleSets, PoolRecord, ScaleSet};

/// What kind of rows a file or query holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Managed clusters (a Resource Graph `resources` reply may also carry registries).
    Clusters,
    RoleAssignments,
    /// Subscriptions; a Resource Graph `resourcecontainers` reply may also carry resource groups.
    Subscriptions,
    ResourceGroups,
    Registries,
    /// Custom role definitions.
    RoleDefinitions,
}

impl Kind {
    pub fn file_name(self) -> &'static str {
        match self {
            Kind::Clusters => "clusters.json",
            Kind::RoleAssignments => "role-assignments.json",
            Kind::Subscriptions => "subscriptions.json",
            Kind::ResourceGroups => "resource-groups.json",
            Kind::Registries => "registries.json",
            Kind::RoleDefinitions => "role-definitions.json",
        }
    }
}

const CLUSTER_TYPE: &str = "microsoft.containerservice/managedclusters";
const REGISTRY_TYPE: &str = "microsoft.containerregistry/registries";
const SUBSCRIPTION_TYPE: &str = "microsoft.resources/subscriptions";
const RESOURCE_GROUP_TYPE: &str = "microsoft.resources/subscriptions/resourcegroups";
const ROLE_DEFINITION_TYPE: &str = "microsoft.authorization/roledefinitions";

type FastSet<T> = HashSet<T, foldhash::fast::RandomState>;

/// Accumulates rows from files or live pages into an [`Inventory`].
///
/// Only the role assignments of cluster identities are kept: no rule looks at any
/// other, and in a large tenant they are a small part of the whole (a million
/// assignments, most of them users' and groups'). Once every cluster is read
/// ([`Loader::clusters_complete`]), the others are dropped as they arrive; before
/// that they are kept and sifted then.
#[derive(Debug, Default)]
pub struct Loader {
    inv: Inventory,
    /// One copy of each repeated role-assignment string.
    strings: FastSet<Arc<str>>,
    /// The cluster identities' principals, once all clusters are read.
    principals: Option<Principals>,
    role_assignments_read: usize,
    /// Where each cluster row came from (source, index), parallel to `inv.clusters`.
    cluster_sources: Vec<(Arc<str>, usize)>,
    /// With [`Loader::track_role_assignment_scopes`]: lower-cased subscription ids
    /// that role assignments were read at or below (what an offline folder covers).
    ra_subscriptions: Option<FastSet<String>>,
}

/// Whose role assignments matter, lower-cased.
#[derive(Debug, Default)]
struct Principals {
    /// Object ids of every cluster identity.
    ids: FastSet<String>,
    /// Service-principal client ids, matched against `principalName` (`az` shape):
    /// how a service-principal cluster's assignments are found.
    sp_names: FastSet<String>,
}

impl Principals {
    fn of(clusters: &[Cluster]) -> Principals {
        let mut p = Principals::default();
        for c in clusters {
            p.ids
                .extend(c.principal_ids().map(|id| id.to_ascii_lowercase()));
            if let Some(sp) = &c.sp_client_id {
                p.sp_names.insert(sp.to_ascii_lowercase());
            }
        }
        p
    }

    /// Whether `id` is a cluster identity's object id, in any case (lower-cased only
    /// when it has upper-case letters: GUIDs usually come lower-case).
    fn has_id(&self, id: &str) -> bool {
        if id.bytes().any(|b| b.is_ascii_uppercase()) {
            self.ids.contains(&id.to_ascii_lowercase())
        } else {
            self.ids.contains(id)
        }
    }

    /// Whether `ra` is a cluster identity's. A principal first met through its
    /// `principalName` joins the ids, so its later assignments match by id too.
    fn wants(&mut self, ra: &RoleAssignment) -> bool {
        if self.has_id(&ra.principal_id) {
            return true;
        }
        // A group's grants reach the cluster identities in it (rules::groups).
        if ra
            .principal_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("Group"))
        {
            return true;
        }
        let named = ra
            .principal_name
            .as_deref()
            .is_some_and(|n| self.sp_names.contains(&n.to_ascii_lowercase()));
        if named {
            self.ids.insert(ra.principal_id.to_ascii_lowercase());
        }
        named
    }
}

impl Loader {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one element; a malformed one is recorded as skipped with `source` and `index`.
    pub fn add(&mut self, kind: Kind, source: &str, index: usize, v: &Value) {
        let clusters = self.inv.clusters.len();
        if let Err(reason) = self.try_add(kind, v) {
            self.skip(source, index, reason);
        }
        if self.inv.clusters.len() > clusters {
            let shared = match self.cluster_sources.last() {
                Some((s, _)) if &**s == source => s.clone(),
                _ => Arc::from(source),
            };
            self.cluster_sources.push((shared, index));
        }
    }

    /// The clusters read so far.
    pub fn clusters(&self) -> &[Cluster] {
        &self.inv.clusters
    }

    /// Records the subscriptions that role assignments are read at or below, for
    /// [`Loader::subscriptions_without_role_assignments`].
    pub fn track_role_assignment_scopes(&mut self) {
        self.ra_subscriptions.get_or_insert_with(Default::default);
    }

    /// Subscriptions (as the clusters spell them) holding clusters but no role
    /// assignment read at or below their scope; `None` without tracking.
    pub fn subscriptions_without_role_assignments(&self) -> Option<Vec<String>> {
        let seen = self.ra_subscriptions.as_ref()?;
        let mut out: Vec<String> = Vec::new();
        for c in &self.inv.clusters {
            let lower = c.subscription_id.to_ascii_lowercase();
            if !seen.contains(&lower) && !out.iter().any(|s| s.eq_ignore_ascii_case(&lower)) {
                out.push(c.subscription_id.clone());
            }
        }
        Some(out)
    }

    fn try_add(&mut self, kind: Kind, v: &Value) -> Result<(), String> {
        let t = read::row_type(v);
        let kind = match (kind, t.as_deref()) {
            (Kind::Clusters | Kind::Registries, Some(REGISTRY_TYPE)) => Kind::Registries,
            (Kind::Clusters, Some(t)) if t != CLUSTER_TYPE => return Ok(()), // other resources
            (Kind::Subscriptions | Kind::ResourceGroups, Some(RESOURCE_GROUP_TYPE)) => {
                Kind::ResourceGroups
            }
            (Kind::Subscriptions | Kind::ResourceGroups, Some(SUBSCRIPTION_TYPE)) => {
                Kind::Subscriptions
            }
            (Kind::RoleAssignments, Some(ROLE_DEFINITION_TYPE)) => Kind::RoleDefinitions,
            (k, _) => k,
        };
        match kind {
            Kind::Clusters => self.inv.clusters.push(read::cluster(v)?),
            Kind::RoleAssignments => {
                let ra = read::role_assignment(v)?;
                self.role_assignments_read += 1;
                if let Some(seen) = &mut self.ra_subscriptions {
                    if let Some(sub) = ids::subscription_of(&ra.scope) {
                        if !seen.contains(&sub.to_ascii_lowercase()) {
                            seen.insert(sub.to_ascii_lowercase());
                        }
                    }
                }
                if self.principals.as_mut().is_none_or(|p| p.wants(&ra)) {
                    let ra = self.intern(ra);
                    self.inv.role_assignments.push(ra)
                }
            }
            Kind::Subscriptions => self.inv.subscriptions.push(read::subscription(v)?),
            Kind::ResourceGroups => self.inv.resource_groups.push(read::resource_group(v)?),
            Kind::Registries => self.inv.registries.push(read::registry(v)?),
            Kind::RoleDefinitions => self.inv.role_definitions.push(read::role_definition(v)?),
        }
        Ok(())
    }

    /// Replaces the repeated strings of `ra` by shared copies.
    fn intern(&mut self, mut ra: RoleAssignment) -> RoleAssignment {
        let mut one = |s: &mut Arc<str>| match self.strings.get(&**s) {
            Some(shared) => *s = shared.clone(),
            None => {
                self.strings.insert(s.clone());
            }
        };
        one(&mut ra.role_definition_id);
        one(&mut ra.role_guid);
        one(&mut ra.principal_id);
        one(&mut ra.scope);
        ra.role_name.as_mut().map(&mut one);
        ra.principal_type.as_mut().map(&mut one);
        ra
    }

    pub fn skip(&mut self, source: &str, index: usize, reason: String) {
        tracing::warn!(source, index, %reason, "skipped malformed row");
        self.inv.coverage.skipped_rows.push(SkippedRow {
            source: source.to_string(),
            index,
            reason,
        });
    }

    pub fn gap(
        &mut self,
        scope: impl Into<String>,
        reason: impl Into<String>,
        tables: Vec<String>,
    ) {
        let (scope, reason) = (scope.into(), reason.into());
        tracing::warn!(%scope, %reason, tables = %tables.join(","), "coverage gap");
        self.inv.coverage.gaps.push(Gap {
            scope,
            reason,
            tables,
        });
    }

    /// Counts a role assignment of `principal_id` as read and drops it, when every
    /// cluster is read and none of their identities is `principal_id`; otherwise
    /// returns false and the caller adds the row. Only for rows known valid and
    /// without `principalName` (see [`read::flat_role_assignment_is_valid`]).
    pub fn drop_foreign_role_assignment(&mut self, principal_id: &str) -> bool {
        let Some(p) = &self.principals else {
            return false;
        };
        let known = p.has_id(principal_id);
        if !known {
            self.role_assignments_read += 1;
        }
        !known
    }

    /// Says that every cluster has been read: role assignments of other principals
    /// are dropped from here on, and those already kept are sifted. Later cluster
    /// rows are still read, but their identities' assignments may be missing, so
    /// callers read clusters first. Called again, it sifts against all clusters so far.
    pub fn clusters_complete(&mut self) {
        let mut p = Principals::of(&self.inv.clusters);
        let before = self.inv.role_assignments.len();
        self.inv.role_assignments.retain(|ra| p.wants(ra));
        if self.inv.role_assignments.len() < before {
            // Shared strings only the dropped assignments used.
            self.strings.retain(|s| Arc::strong_count(s) > 1);
            self.inv.role_assignments.shrink_to_fit();
        }
        self.principals = Some(p);
    }

    /// Sifts the role assignments if [`Loader::clusters_complete`] was not called,
    /// deduplicates by id (case-insensitively, first wins) and sorts for stable output.
    pub fn finish(mut self) -> Inventory {
        if self.principals.is_none() {
            self.clusters_complete();
        }
        tracing::debug!(
            read = self.role_assignments_read,
            kept = self.inv.role_assignments.len(),
            "role assignments of cluster identities kept"
        );
        let mut inv = self.inv;
        dedup_clusters(&mut inv, std::mem::take(&mut self.cluster_sources));
        dedup(&mut inv.role_assignments, |r| &r.id);
        dedup(&mut inv.subscriptions, |s| &s.id);
        dedup(&mut inv.resource_groups, |g| &g.id);
        dedup(&mut inv.registries, |r| &r.id);
        dedup(&mut inv.role_definitions, |r| &r.id);
        // Growth by doubling leaves up to half of each list unused, for the whole run.
        inv.clusters.shrink_to_fit();
        inv.role_assignments.shrink_to_fit();
        inv.subscriptions.shrink_to_fit();
        inv.resource_groups.shrink_to_fit();
        inv.registries.shrink_to_fit();
        inv
    }
}

/// Clusters by id, case-insensitively: identical duplicates are merged quietly; a
/// duplicate with different data is a skipped row naming both sources, and the copy
/// kept is marked [`Cluster::conflict`] so no verdict is drawn from it.
fn dedup_clusters(inv: &mut Inventory, sources: Vec<(Arc<str>, usize)>) {
    let clusters = std::mem::take(&mut inv.clusters);
    type Sourced = (Cluster, Option<(Arc<str>, usize)>);
    let mut rows: Vec<Sourced> = if sources.len() == clusters.len() {
        clusters
            .into_iter()
            .zip(sources.into_iter().map(Some))
            .collect()
    } else {
        clusters.into_iter().map(|c| (c, None)).collect()
    };
    rows.sort_by(|(a, _), (b, _)| {
        let (a, b) = (a.id.bytes(), b.id.bytes());
        a.map(|x| x.to_ascii_lowercase())
            .cmp(b.map(|x| x.to_ascii_lowercase()))
    });
    let name = |s: &Option<(Arc<str>, usize)>| match s {
        Some((file, i)) => format!("{file}[{i}]"),
        None => "an earlier row".to_string(),
    };
    let mut out: Vec<Cluster> = Vec::with_capacity(rows.len());
    let mut first_source: Option<(Arc<str>, usize)> = None;
    for (c, src) in rows {
        if let Some(last) = out.last_mut() {
            if last.id.eq_ignore_ascii_case(&c.id) {
                let same = {
                    let mut a = last.clone();
                    a.conflict = None;
                    a == c
                };
                if !same {
                    let why = format!(
                        "conflicting duplicate rows for this cluster id: {} and {}",
                        name(&first_source),
                        name(&src)
                    );
                    tracing::warn!(cluster = %c.id, reason = %why, "duplicate cluster");
                    let (source, index) = src.map(|(f, i)| (f.to_string(), i)).unwrap_or_default();
                    inv.coverage.skipped_rows.push(SkippedRow {
                        source,
                        index,
                        reason: why.clone(),
                    });
                    last.conflict = Some(why);
                }
                continue;
            }
        }
        first_source = src;
        out.push(c);
    }
    inv.clusters = out;
}

fn dedup<T>(rows: &mut Vec<T>, id: impl Fn(&T) -> &str) {
    // A stable sort by the lower-cased id, then the first of each run of equal ids:
    // the same rows and order as deduplicating first, without a lower-cased copy of
    // every id.
    rows.sort_by(|a, b| {
        let (a, b) = (id(a).bytes(), id(b).bytes());
        a.map(|x| x.to_ascii_lowercase())
            .cmp(b.map(|x| x.to_ascii_lowercase()))
    });
    rows.dedup_by(|later, first| id(later).eq_ignore_ascii_case(id(first)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SUB: &str = "6f1c3a52-8b0e-4d7a-9c11-2e5b7f8a9d01";

    fn cluster(name: &str, identity: Value, props: Value) -> Value {
        json!({
            "id": format!("/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/{name}"),
            "name": name, "identity": identity, "properties": props
        })
    }

    fn ra(n: u32, principal: &str, name: Option<&str>) -> Value {
        json!({
            "id": format!("/subscriptions/{SUB}/providers/Microsoft.Authorization/roleAssignments/ra-{n}"),
            "principalId": principal,
            "principalName": name,
            "roleDefinitionId": format!("/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/b24988ac-6180-42a0-ab88-20f7382dd24c"),
            "scope": format!("/subscriptions/{SUB}")
        })
    }

    fn ids(inv: &Inventory) -> Vec<String> {
        inv.role_assignments
            .iter()
            .map(|r| r.id.rsplit('/').next().unwrap().to_string())
            .collect()
    }

    fn clusters(l: &mut Loader) {
        let mi = cluster(
            "mi",
            json!({"type": "SystemAssigned", "principalId": "p-cluster"}),
            json!({"identityProfile": {"kubeletidentity": {"objectId": "k1"}},
                   "addonProfiles": {"omsagent": {"enabled": true, "identity": {"objectId": "addon-1"}}}}),
        );
        let sp = cluster(
            "sp",
            Value::Null,
            json!({"servicePrincipalProfile": {"clientId": "APP-1"}}),
        );
        l.add(Kind::Clusters, "c", 0, &mi);
        l.add(Kind::Clusters, "c", 1, &sp);
    }

    #[test]
    fn only_cluster_identities_role_assignments_are_kept_whenever_they_arrive() {
        // Before clusters_complete: kept, then sifted. After: dropped as they come.
        let mut l = Loader::new();
        l.add(Kind::RoleAssignments, "r", 0, &ra(1, "someone-else", None));
        l.add(Kind::RoleAssignments, "r", 1, &ra(2, "p-cluster", None));
        clusters(&mut l);
        l.clusters_complete();
        assert_eq!(ids(&l.inv), ["ra-2"]);
        l.add(Kind::RoleAssignments, "r", 2, &ra(3, "K1", None)); // case-insensitive
        l.add(Kind::RoleAssignments, "r", 3, &ra(4, "addon-1", None));
        l.add(Kind::RoleAssignments, "r", 4, &ra(5, "nobody", None));
        // A service principal is known by its client id as `principalName` (az shape);
        // its later assignments without a name match by object id.
        l.add(
            Kind::RoleAssignments,
            "r",
            5,
            &ra(6, "sp-object", Some("app-1")),
        );
        l.add(Kind::RoleAssignments, "r", 6, &ra(7, "SP-OBJECT", None));
        assert!(!l.drop_foreign_role_assignment("p-cluster"));
        assert!(l.drop_foreign_role_assignment("nobody-either"));
        let inv = l.finish();
        assert_eq!(ids(&inv), ["ra-2", "ra-3", "ra-4", "ra-6", "ra-7"]);
        assert!(inv.coverage.is_complete());
    }

    #[test]
    fn without_clusters_complete_finish_sifts_and_shared_strings_of_dropped_rows_go() {
        let mut l = Loader::new();
        for i in 0..50 {
            l.add(
                Kind::RoleAssignments,
                "r",
                i,
                &ra(i as u32, &format!("user-{i}"), None),
            );
        }
        l.add(Kind::RoleAssignments, "r", 50, &ra(50, "p-cluster", None));
        clusters(&mut l);
        let strings_before = l.strings.len();
        l.clusters_complete();
        assert!(
            l.strings.len() < strings_before,
            "{} !< {strings_before}",
            l.strings.len()
        );
        assert!(!l.strings.iter().any(|s| s.starts_with("user-")));
        assert_eq!(ids(&l.finish()), ["ra-50"]);
        // finish() alone does the same.
        let mut l = Loader::new();
        clusters(&mut l);
        l.add(Kind::RoleAssignments, "r", 0, &ra(1, "user-1", None));
        l.add(Kind::RoleAssignments, "r", 1, &ra(2, "k1", None));
        assert_eq!(ids(&l.finish()), ["ra-2"]);
    }

    #[test]
    fn a_malformed_role_assignment_is_counted_whoever_it_belongs_to() {
        let mut l = Loader::new();
        clusters(&mut l);
        l.clusters_complete();
        let mut bad = ra(1, "nobody", None);
        bad["roleDefinitionId"] = Value::Null;
        l.add(Kind::RoleAssignments, "r", 0, &bad);
        let inv = l.finish();
        assert_eq!(inv.coverage.skipped_rows.len(), 1);
        assert!(inv.coverage.skipped_rows[0]
            .reason
            .contains("roleDefinitionId"));
    }
}
