//! Subscriptions and resource groups, read after the clusters: a rule reads a
//! resource group only for the owner tag of a cluster that has none of its own, so
//! only those groups are asked for, by id, in the query that reads the batch's
//! subscriptions (their names, tenants and tags are needed for every cluster).
//!
//! Looking groups up by id is Resource Graph's documented pattern for many known
//! resources (`where id in~ (...)`, groups of 100 ids: "Guidance for throttled
//! requests", Grouping queries). A lookup costs one query per 100 ids; when a batch
//! would need more queries than the fewest pages a full read of its groups could
//! take (its subscriptions plus the distinct groups its clusters are in, 1,000 rows
//! a page), the batch's groups are read in full instead (`kql/subscriptions.kql`).
use std::collections::{HashMap, HashSet};

use super::arg::{BatchScope, PAGE_SIZE};
use crate::inventory::{ids, Cluster};

/// Resource group ids in one lookup query (Microsoft's example groups 100).
pub const IDS_PER_QUERY: usize = 100;

/// The full read of subscriptions and resource groups (the fallback).
pub const FULL: &str = include_str!("kql/subscriptions.kql");
const LOOKUP: &str = include_str!("kql/containers-by-id.kql");
const SUBSCRIPTION_ROWS: &str = "type =~ 'microsoft.resources/subscriptions'";

/// What the clusters of one subscription need from `resourcecontainers`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Needed {
    /// Ids of the groups whose tags are read (clusters without an owner tag), each once.
    pub groups: Vec<String>,
    /// Distinct groups holding a cluster: a full read returns at least these.
    pub cluster_groups: usize,
}

/// [`Needed`] per lower-cased subscription id, computed once every cluster is in.
#[derive(Debug, Default)]
pub struct Plan {
    by_subscription: HashMap<String, Needed>,
}

impl Plan {
    /// `needs_group(c)`: whether a rule reads `c`'s resource group.
    pub fn new(clusters: &[Cluster], needs_group: &(dyn Fn(&Cluster) -> bool + Sync)) -> Plan {
        let mut seen: HashSet<String> = HashSet::new();
        let mut by_subscription: HashMap<String, Needed> = HashMap::new();
        for c in clusters {
            if c.resource_group.trim().is_empty() || c.subscription_id.trim().is_empty() {
                continue;
            }
            let id = ids::resource_group_id(&c.subscription_id, &c.resource_group);
            let lower = id.to_ascii_lowercase();
            let first = !seen.contains(&lower);
            let need = by_subscription
                .entry(c.subscription_id.to_ascii_lowercase())
                .or_default();
            if first {
                seen.insert(lower.clone());
                need.cluster_groups += 1;
            }
            if needs_group(c) && !need.groups.iter().any(|g| g.eq_ignore_ascii_case(&lower)) {
                need.groups.push(id);
            }
        }
        Plan { by_subscription }
    }

    /// The queries that read `scope`'s subscriptions and the groups its clusters need.
    /// A management group's subscriptions are not known here: its queries look up
    /// every needed group (ids outside it match nothing).
    pub fn queries(&self, scope: &BatchScope) -> Vec<String> {
        let (subscriptions, needed): (usize, Vec<&Needed>) = match scope {
            BatchScope::Subscriptions(s) => (
                s.len(),
                s.iter()
                    .filter_map(|s| self.by_subscription.get(&s.to_ascii_lowercase()))
                    .collect(),
            ),
            BatchScope::ManagementGroups(_) => (0, self.by_subscription.values().collect()),
        };
        let mut groups: Vec<&str> = needed
            .iter()
            .flat_map(|n| n.groups.iter().map(String::as_str))
            .collect();
        groups.sort_unstable_by_key(|g| g.to_ascii_lowercase());
        let cluster_groups: usize = needed.iter().map(|n| n.cluster_groups).sum();
        plan_queries(subscriptions, cluster_groups, &groups)
    }
}

/// The lookup queries for `groups`, or the full read when that could take fewer requests.
pub fn plan_queries(subscriptions: usize, cluster_groups: usize, groups: &[&str]) -> Vec<String> {
    let lookups = groups.len().div_ceil(IDS_PER_QUERY).max(1);
    let fewest_full_pages = (subscriptions + cluster_groups)
        .div_ceil(PAGE_SIZE as usize)
        .max(1);
    if lookups > fewest_full_pages {
        return vec![FULL.to_string()];
    }
    if groups.is_empty() {
        return vec![lookup(SUBSCRIPTION_ROWS)];
    }
    groups
        .chunks(IDS_PER_QUERY)
        .enumerate()
        .map(|(i, chunk)| {
            let list: Vec<String> = chunk.iter().map(|g| literal(g)).collect();
            let groups = format!(
                "(type =~ 'microsoft.resources/subscriptions/resourcegroups' and id in~ ({}))",
                list.join(", ")
            );
            // The first query reads the subscriptions too: one pass for both.
            if i == 0 {
                lookup(&format!("{SUBSCRIPTION_ROWS} or {groups}"))
            } else {
                lookup(&groups)
            }
        })
        .collect()
}

fn lookup(condition: &str) -> String {
    LOOKUP.replacen("{condition}", condition, 1)
}

/// A KQL string literal: single-quoted, with `\` escapes (Kusto's string literal rules).
pub fn literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for ch in s.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const S1: &str = "6f1c3a52-8b0e-4d7a-9c11-2e5b7f8a9d01";
    const S2: &str = "0b7e2c44-1d3f-4a5b-8c6d-7e8f9a0b1c2d";

    fn cluster(sub: &str, rg: &str, name: &str, owner: bool) -> Cluster {
        let mut c = Cluster {
            id: format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ContainerService/managedClusters/{name}"),
            name: name.into(),
            subscription_id: sub.into(),
            resource_group: rg.into(),
            ..Default::default()
        };
        if owner {
            c.tags.insert("owner".into(), "a@contoso.example".into());
        }
        c
    }

    fn untagged(c: &Cluster) -> bool {
        c.tags.is_empty()
    }

    use crate::azure::tests::kql_body as body;

    #[test]
    fn only_groups_of_clusters_without_an_owner_are_looked_up_with_the_subscriptions() {
        let clusters = [
            cluster(S1, "rg-a", "a1", true),
            cluster(S1, "rg-b", "b1", false),
            cluster(S1, "RG-B", "b2", false), // the same group, spelled otherwise
            cluster(S2, "rg-c", "c1", false),
        ];
        let plan = Plan::new(&clusters, &untagged);
        let q = plan.queries(&BatchScope::Subscriptions(vec![S1.to_uppercase()]));
        assert_eq!(q.len(), 1, "{q:?}");
        let q = &q[0];
        assert!(
            q.contains(&format!(
                "id in~ ('/subscriptions/{S1}/resourceGroups/rg-b')"
            )),
            "{q}"
        );
        assert!(
            q.contains("type =~ 'microsoft.resources/subscriptions' or"),
            "{q}"
        );
        assert!(!q.contains("rg-a") && !q.contains("rg-c"), "{q}");
        let parsed = azure_emulator::kql::Query::parse(&body(q)).unwrap();
        assert!(parsed.projects_id());
        // Every cluster tagged: the subscriptions only, still one query.
        let tagged = [cluster(S1, "rg-a", "a1", true)];
        let q = Plan::new(&tagged, &untagged).queries(&BatchScope::Subscriptions(vec![S1.into()]));
        assert_eq!(q.len(), 1);
        assert!(!q[0].contains("resourcegroups"), "{}", q[0]);
        azure_emulator::kql::Query::parse(&body(&q[0])).unwrap();
        // A subscription without clusters: the same.
        let q = plan.queries(&BatchScope::Subscriptions(vec!["other".into()]));
        assert!(!q[0].contains("resourcegroups"), "{}", q[0]);
        // A management group looks up every needed group.
        let q = plan.queries(&BatchScope::ManagementGroups(vec!["mg".into()]));
        assert!(q[0].contains("rg-b") && q[0].contains("rg-c"), "{}", q[0]);
    }

    #[test]
    fn a_lookup_never_costs_more_queries_than_a_full_read_could() {
        let ids: Vec<String> = (0..250)
            .map(|i| format!("/subscriptions/{S1}/resourceGroups/rg-{i}"))
            .collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        // 250 groups to look up = 3 queries; a full read of 300 subscriptions and
        // 2,500 groups takes at least 3 pages: look up, 100 ids a query, the
        // subscriptions in the first only.
        let q = plan_queries(300, 2500, &refs);
        assert_eq!(q.len(), 3);
        assert!(q[0].contains("microsoft.resources/subscriptions' or"));
        assert!(!q[1].contains("microsoft.resources/subscriptions' or"));
        assert_eq!(q[1].matches("'/subscriptions/").count(), 100);
        assert_eq!(q[2].matches("'/subscriptions/").count(), 50);
        for x in &q {
            azure_emulator::kql::Query::parse(&body(x)).unwrap();
        }
        // Every group of the batch wanted (no cluster has an owner tag): read in full.
        assert_eq!(plan_queries(300, 250, &refs), vec![FULL.to_string()]);
        // A handful: one lookup, never worse than the one page a full read takes.
        assert_eq!(plan_queries(3, 2, &refs[..2]).len(), 1);
    }

    #[test]
    fn ids_are_quoted_as_kql_literals() {
        assert_eq!(
            literal("/subscriptions/s/resourceGroups/rg"),
            "'/subscriptions/s/resourceGroups/rg'"
        );
        let odd = "rg'), ('x\\y\nz";
        let lit = literal(odd);
        assert_eq!(lit, r"'rg\'), (\'x\\y\nz'");
        let q = format!("resourcecontainers | where id in~ ({lit}) | project id");
        let parsed = azure_emulator::kql::Query::parse(&q).unwrap();
        let row = serde_json::json!({"id": odd});
        assert!(
            parsed.run_row(row).is_some(),
            "the literal is the id, byte for byte"
        );
        let other = serde_json::json!({"id": "rg"});
        assert!(parsed.run_row(other).is_none());
    }
}
