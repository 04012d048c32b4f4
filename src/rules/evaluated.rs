//! Whether each family of checks was evaluated for a cluster, and why not.
//!
//! A verdict is a promise: a family whose data was absent (a coverage gap on its
//! subscription, an identity whose object id is unknown, credentials never read) is
//! `not_evaluated: <reason>`, produces no finding, and keeps the cluster's previous
//! findings of that family in history (neither "resolved" nor "new" again).
use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::catalogue::RuleId;
use crate::inventory::{Cluster, Gap};

super::model::named_enum! {
    /// The check families a cluster's verdicts fall into.
    pub enum Family {
        Classification = "classification",
        Roles = "roles",
        SecretExpiry = "secret_expiry",
        Migration = "migration",
    }
}

impl Family {
    pub fn of(rule: RuleId) -> Family {
        use RuleId::*;
        match rule {
            MissingRole
            | ExcessRole
            | WideScope
            | SubnetPermission
            | KubeletOperator
            | AcrPullAfterMigration
            | FeatureRole
            | AbacPullNotHonoured
            | AbacPullScoped => Family::Roles,
            SecretExpiry => Family::SecretExpiry,
            KubeletPending | KubeletUnknown => Family::Migration,
            _ => Family::Classification,
        }
    }
}

/// One family's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Evaluated,
    NotEvaluated(String),
}

impl Status {
    pub fn is_evaluated(&self) -> bool {
        matches!(self, Status::Evaluated)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Status::Evaluated => f.write_str("evaluated"),
            Status::NotEvaluated(why) => write!(f, "not_evaluated: {why}"),
        }
    }
}

impl Serialize for Status {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Status {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match s.strip_prefix("not_evaluated: ") {
            Some(why) => Status::NotEvaluated(why.to_string()),
            None if s == "evaluated" => Status::Evaluated,
            None => Status::NotEvaluated(s),
        })
    }
}

/// Every family's status for one cluster (`checks` in report.json and clusters.csv).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checks {
    pub classification: Status,
    pub roles: Status,
    pub secret_expiry: Status,
    pub migration: Status,
}

impl Default for Checks {
    fn default() -> Self {
        Checks {
            classification: Status::Evaluated,
            roles: Status::Evaluated,
            secret_expiry: Status::Evaluated,
            migration: Status::Evaluated,
        }
    }
}

impl Checks {
    pub fn get(&self, f: Family) -> &Status {
        match f {
            Family::Classification => &self.classification,
            Family::Roles => &self.roles,
            Family::SecretExpiry => &self.secret_expiry,
            Family::Migration => &self.migration,
        }
    }

    pub fn all_evaluated(&self) -> bool {
        Family::ALL.iter().all(|f| self.get(*f).is_evaluated())
    }

    /// The CSV cell: `evaluated`, or each family not evaluated with its reason.
    pub fn cell(&self) -> String {
        if self.all_evaluated() {
            return "evaluated".into();
        }
        Family::ALL
            .iter()
            .filter_map(|f| match self.get(*f) {
                Status::Evaluated => None,
                Status::NotEvaluated(why) => Some(format!("{}: not_evaluated ({why})", f.as_str())),
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The table a gap is about reaches this cluster: its subscription's scope, or a
/// scope that cannot be narrowed (a management group, the tenant).
pub fn gap_covers(gap: &Gap, table: &str, subscription_id: &str) -> bool {
    gap.tables.iter().any(|t| t == table)
        && gap_subscription(gap).is_none_or(|sub| sub.eq_ignore_ascii_case(subscription_id))
}

/// The subscription a gap's scope is in; `None` for a scope that cannot be narrowed
/// to one (a management group, the tenant): it reaches every subscription.
fn gap_subscription(gap: &Gap) -> Option<&str> {
    let prefix = "/subscriptions/";
    let scope = gap.scope.as_str();
    let rest = scope
        .get(..prefix.len())
        .filter(|p| p.eq_ignore_ascii_case(prefix))
        .map(|_| &scope[prefix.len()..])?;
    Some(rest.split('/').next().unwrap_or(rest))
}

/// The gaps looked up by table and subscription, built once per run: every cluster
/// and every earlier finding asks it, and a tenant whose queries failed can have a
/// gap per subscription. [`GapIndex::covering`] answers as a scan of the gaps in
/// order with [`gap_covers`] would (the first covering gap).
#[derive(Debug, Default)]
pub struct GapIndex<'a> {
    /// (table, lower-cased subscription) → the first gap of that subscription.
    by_subscription: HashMap<(&'a str, String), (usize, &'a Gap)>,
    /// table → the first gap that reaches every subscription.
    everywhere: HashMap<&'a str, (usize, &'a Gap)>,
}

impl<'a> GapIndex<'a> {
    pub fn new(gaps: &'a [Gap]) -> GapIndex<'a> {
        let mut ix = GapIndex::default();
        for (i, g) in gaps.iter().enumerate() {
            for t in &g.tables {
                match gap_subscription(g) {
                    Some(sub) => {
                        ix.by_subscription
                            .entry((t.as_str(), sub.to_ascii_lowercase()))
                            .or_insert((i, g));
                    }
                    None => {
                        ix.everywhere.entry(t.as_str()).or_insert((i, g));
                    }
                }
            }
        }
        ix
    }

    /// The first gap of `table` that reaches `subscription_id`.
    pub fn covering(&self, table: &str, subscription_id: &str) -> Option<&'a Gap> {
        let own = self
            .by_subscription
            .get(&(table, subscription_id.to_ascii_lowercase()));
        let wide = self.everywhere.get(table);
        [own, wide]
            .into_iter()
            .flatten()
            .min_by_key(|(i, _)| *i)
            .map(|(_, g)| *g)
    }
}

/// What the data allows for `c`: role checks need its subscription's role assignments
/// (and registries) read and its control plane's principal known; secret expiry
/// needs the service principal's credentials (Microsoft Graph).
pub fn for_cluster(
    c: &Cluster,
    gaps: &GapIndex,
    control_plane_principal_known: bool,
    sp_credentials_read: bool,
    graph_enabled: bool,
) -> Checks {
    let mut k = Checks::default();
    if let Some(why) = &c.conflict {
        let s = Status::NotEvaluated(why.clone());
        return Checks {
            classification: s.clone(),
            roles: s.clone(),
            secret_expiry: s.clone(),
            migration: s,
        };
    }
    let managed = super::classify::is_managed(c);
    for (table, what) in [
        ("role-assignments", "role assignments"),
        ("registries", "registries"),
    ] {
        if let Some(g) = gaps.covering(table, &c.subscription_id) {
            k.roles = Status::NotEvaluated(format!("{what} of {} not read", g.scope));
            break;
        }
    }
    if k.roles.is_evaluated()
        && c.node_resource_group
            .as_deref()
            .is_none_or(|g| g.trim().is_empty())
    {
        // The control plane's documented Contributor is on the node resource group:
        // without it that check (and whether a group grant is documented) cannot be
        // placed, and skipping it quietly would show the roles as checked.
        k.roles = Status::NotEvaluated(
            "the node resource group is unknown (properties.nodeResourceGroup is missing)".into(),
        );
    }
    if k.roles.is_evaluated() && !managed && !control_plane_principal_known {
        k.roles = Status::NotEvaluated(
            "the service principal's object id is unknown (no role assignment names it): run with --graph, or export role assignments with principalName".into(),
        );
    }
    if !managed && !sp_credentials_read {
        k.secret_expiry = Status::NotEvaluated(if graph_enabled {
            "the service principal's credentials were not found in Microsoft Graph".into()
        } else {
            "needs Microsoft Graph (--graph)".into()
        });
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gap(scope: &str, tables: &[&str]) -> Gap {
        Gap {
            scope: scope.into(),
            reason: "x".into(),
            tables: tables.iter().map(|t| t.to_string()).collect(),
        }
    }

    #[test]
    fn gaps_reach_their_subscription_only() {
        let g = gap("/subscriptions/AAA", &["role-assignments"]);
        assert!(gap_covers(&g, "role-assignments", "aaa"));
        assert!(!gap_covers(&g, "role-assignments", "bbb"));
        assert!(!gap_covers(&g, "clusters", "aaa"));
        let mg = gap(
            "/providers/Microsoft.Management/managementGroups/m",
            &["role-assignments"],
        );
        assert!(gap_covers(&mg, "role-assignments", "anything"));
    }

    #[test]
    fn the_index_answers_as_a_scan_in_order_would() {
        let gaps = [
            gap("/subscriptions/AAA/resourceGroups/x", &["role-assignments"]),
            gap(
                "/providers/Microsoft.Management/managementGroups/m",
                &["registries", "role-assignments"],
            ),
            gap("/subscriptions/aaa", &["registries"]),
            gap("/subscriptions/bbb", &["clusters"]),
        ];
        let ix = GapIndex::new(&gaps);
        for table in [
            "role-assignments",
            "registries",
            "clusters",
            "subscriptions",
        ] {
            for sub in ["aaa", "AAA", "bbb", "ccc"] {
                let scan = gaps.iter().find(|g| gap_covers(g, table, sub));
                assert_eq!(
                    ix.covering(table, sub).map(|g| &g.scope),
                    scan.map(|g| &g.scope),
                    "{table} {sub}"
                );
            }
        }
    }

    #[test]
    fn service_principal_without_principal_or_graph_is_not_evaluated() {
        let c = Cluster {
            subscription_id: "s1".into(),
            sp_client_id: Some("app".into()),
            node_resource_group: Some("MC_rg_a".into()),
            ..Default::default()
        };
        let k = for_cluster(&c, &GapIndex::new(&[]), false, false, false);
        assert!(!k.roles.is_evaluated() && !k.secret_expiry.is_evaluated());
        assert!(k.classification.is_evaluated() && k.migration.is_evaluated());
        assert!(
            k.cell().contains("roles: not_evaluated") && k.cell().contains("--graph"),
            "{}",
            k.cell()
        );
        let k = for_cluster(&c, &GapIndex::new(&[]), true, true, true);
        assert_eq!(k.cell(), "evaluated");
        let k = for_cluster(
            &c,
            &GapIndex::new(&[gap("/subscriptions/s1", &["role-assignments"])]),
            true,
            true,
            true,
        );
        assert_eq!(
            k.roles,
            Status::NotEvaluated("role assignments of /subscriptions/s1 not read".into())
        );
    }

    #[test]
    fn roles_are_not_evaluated_without_the_node_resource_group() {
        let mut c = Cluster {
            subscription_id: "s1".into(),
            node_resource_group: None,
            ..Default::default()
        };
        let k = for_cluster(&c, &GapIndex::new(&[]), true, true, true);
        assert!(
            k.cell().contains("roles: not_evaluated") && k.cell().contains("nodeResourceGroup"),
            "{}",
            k.cell()
        );
        assert!(k.classification.is_evaluated() && k.migration.is_evaluated());
        c.node_resource_group = Some("MC_rg_a".into());
        assert!(for_cluster(&c, &GapIndex::new(&[]), true, true, true)
            .roles
            .is_evaluated());
    }

    #[test]
    fn status_round_trips() {
        for s in [Status::Evaluated, Status::NotEvaluated("why: this".into())] {
            let j = serde_json::to_string(&s).unwrap();
            assert_eq!(serde_json::from_str::<Status>(&j).unwrap(), s);
        }
    }

    #[test]
    fn every_rule_has_a_family() {
        assert_eq!(Family::of(RuleId::MissingRole), Family::Roles);
        assert_eq!(Family::of(RuleId::SecretExpiry), Family::SecretExpiry);
        assert_eq!(Family::of(RuleId::KubeletPending), Family::Migration);
        assert_eq!(Family::of(RuleId::ServicePrincipal), Family::Classification);
        assert_eq!(
            Family::of(RuleId::AddonWithoutIdentity),
            Family::Classification
        );
    }
}
