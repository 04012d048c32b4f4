//! Grants at management groups (issue 11 §8): placed by the subscription's
//! `managementGroupAncestorsChain`, not assumed. Chain shaped like the Resource Graph
//! sample "List all management group ancestors for a specified subscription"
//! (nearest first, the tenant root group named by the tenant id).
use super::builder::*;
use crate::rules::{Report, RuleId, Severity};

use RuleId::*;

fn mg(name: &str) -> String {
    format!("/providers/Microsoft.Management/managementGroups/{name}")
}

/// Cluster `a` whose control plane holds Contributor only at `mg-prod`.
fn contributor_at_mg_prod(chain: Option<&[&str]>) -> Report {
    let mut i = Inv::new()
        .cluster(ClusterB::mi("a"))
        .grant("a-cp", "Contributor", &mg("mg-prod"));
    if let Some(c) = chain {
        i = i.management_groups(c);
    }
    i.report()
}

fn rules(r: &Report) -> Vec<(RuleId, Severity)> {
    r.findings.iter().map(|f| (f.rule_id, f.severity)).collect()
}

#[test]
fn a_grant_at_a_group_above_the_subscription_covers_it_and_is_too_wide() {
    let r = contributor_at_mg_prod(Some(&["mg-prod", "mg-root-contoso", TENANT]));
    let got = rules(&r);
    // Contributor over a management group: high, as AKSMI011 rates it there.
    assert!(got.contains(&(WideScope, Severity::High)), "{got:?}");
    assert!(
        !got.iter()
            .any(|(id, _)| *id == MissingRole || *id == ExcessRole),
        "{got:?}"
    );
    // Names compare ignoring case.
    let r = contributor_at_mg_prod(Some(&["MG-PROD"]));
    assert!(rules(&r).contains(&(WideScope, Severity::High)));
}

#[test]
fn a_grant_at_a_group_the_subscription_is_not_under_covers_nothing() {
    let r = contributor_at_mg_prod(Some(&["mg-dev", TENANT]));
    let got = rules(&r);
    // The node resource group is not covered: missing; the grant itself: excess (high,
    // Contributor at a management group).
    assert!(got.contains(&(MissingRole, Severity::High)), "{got:?}");
    assert!(got.contains(&(ExcessRole, Severity::High)), "{got:?}");
    assert!(!got.iter().any(|(id, _)| *id == WideScope), "{got:?}");
}

#[test]
fn a_grant_at_a_group_with_unknown_ancestry_is_not_evaluated_not_assumed() {
    let r = contributor_at_mg_prod(None);
    let row = r.clusters.iter().find(|c| c.cluster_name == "a").unwrap();
    let roles = row.checks.roles.to_string();
    assert!(
        roles.starts_with("not_evaluated: ") && roles.contains("`mg-prod`"),
        "{roles}"
    );
    assert!(
        !r.findings
            .iter()
            .any(|f| matches!(f.rule_id, MissingRole | ExcessRole | WideScope)),
        "{:?}",
        rules(&r)
    );
    // Without any management-group grant, unknown ancestry changes nothing.
    let plain = Inv::new()
        .cluster(ClusterB::mi("a"))
        .documented("a")
        .report();
    let row = plain
        .clusters
        .iter()
        .find(|c| c.cluster_name == "a")
        .unwrap();
    assert!(row.checks.roles.is_evaluated());
}
