//! Grants through Microsoft Entra groups (issue 11 §4): a role assignment with
//! `principalType` Group reaches its members (Graph `transitiveMemberOf`, the groups
//! a service principal belongs to, nested ones included).
use super::builder::*;
use crate::rules::{Report, RoleCheckStatus, RuleId, Severity};

use RuleId::*;

const GROUP: &str = "9d2c4e6a-8b0d-4f2e-9a1c-3e5f7a9b1c2d";
const OTHER: &str = "1a3c5e7f-2b4d-4a6c-8e0f-1a2b3c4d5e6f";

fn found(r: &Report) -> Vec<(RuleId, Severity)> {
    r.findings.iter().map(|f| (f.rule_id, f.severity)).collect()
}

/// Cluster `a` on a custom subnet; its control plane holds the documented
/// Contributor itself, and Network Contributor only through `GROUP` at `scope`.
fn subnet_via_group(scope: &str) -> Inv {
    Inv::new()
        .cluster(ClusterB::mi("a").subnet_pool("np", &subnet_id("net", "v", "s1")))
        .documented("a")
        .grant("x", "Network Contributor", scope)
        .held_by_group(GROUP)
}

#[test]
fn a_group_the_identity_is_in_explains_a_missing_grant() {
    let r = subnet_via_group(&vnet_id("net", "v"))
        .member_of("a-cp", &[OTHER, GROUP])
        .graph()
        .report();
    assert!(found(&r).is_empty(), "{:?}", r.findings);
    // The grant view shows where it comes from.
    let via = r
        .role_checks
        .iter()
        .find(|c| c.actual_role.contains("via group"))
        .expect("a row for the group's grant");
    assert_eq!(
        &*via.actual_role,
        format!("Network Contributor (via group {GROUP})")
    );
    assert_eq!(&*via.principal_id, "a-cp");
    assert_eq!(via.status, RoleCheckStatus::Ok);
}

#[test]
fn a_group_the_identity_is_not_in_explains_nothing() {
    let r = subnet_via_group(&vnet_id("net", "v"))
        .member_of("a-cp", &[OTHER])
        .graph()
        .report();
    assert_eq!(found(&r), [(SubnetPermission, Severity::High)]);
}

#[test]
fn a_group_grant_at_the_wrong_scope_leaves_the_grant_missing() {
    // Network Contributor on another VNet: the subnet is still not covered, with
    // membership read or not.
    for graph in [true, false] {
        let mut i = subnet_via_group(&vnet_id("net", "other-vnet"));
        if graph {
            i = i.member_of("a-cp", &[GROUP]).graph();
        }
        let r = i.report();
        let got = found(&r);
        assert!(got.contains(&(SubnetPermission, Severity::High)), "{got:?}");
        let f = r
            .findings
            .iter()
            .find(|f| f.rule_id == SubnetPermission)
            .unwrap();
        assert!(!f.message.contains(GROUP), "{}", f.message);
    }
}

#[test]
fn without_membership_a_group_holding_the_grant_makes_it_low_membership_not_checked() {
    let r = subnet_via_group(&vnet_id("net", "v")).report();
    assert_eq!(
        found(&r),
        [(SubnetPermission, Severity::Low)],
        "{:?}",
        r.findings
    );
    let f = &r.findings[0];
    assert!(f.message.contains(GROUP), "{}", f.message);
    assert!(f.message.contains("not checked"), "{}", f.message);
    assert!(f.message.contains("--graph"), "{}", f.message);
    // The fix checks membership first; the grant is only a commented fallback.
    assert!(
        f.remediation.contains(&format!(
            "az ad group member check --group {GROUP} --member-id a-cp"
        )),
        "{}",
        f.remediation
    );
    assert!(
        f.remediation
            .lines()
            .filter(|l| l.starts_with("az role assignment"))
            .count()
            == 0,
        "{}",
        f.remediation
    );
    // Same subject: it is the same finding as the high one, resolved or confirmed
    // once membership is read.
    assert_eq!(f.subject, subnet_id("net", "v", "s1"));
}

#[test]
fn without_membership_a_group_with_another_role_there_changes_nothing() {
    let r = Inv::new()
        .cluster(ClusterB::mi("a").subnet_pool("np", &subnet_id("net", "v", "s1")))
        .documented("a")
        .grant("x", "Reader", &vnet_id("net", "v"))
        .held_by_group(GROUP)
        .report();
    assert_eq!(found(&r), [(SubnetPermission, Severity::High)]);
}

#[test]
fn a_documented_role_through_a_group_counts_and_is_low_without_membership() {
    let base = || {
        Inv::new()
            .cluster(ClusterB::mi("a"))
            .grant("x", "Contributor", &node_rg("a"))
            .held_by_group(GROUP)
    };
    let r = base().member_of("a-cp", &[GROUP]).graph().report();
    assert!(found(&r).is_empty(), "{:?}", r.findings);
    let r = base().report();
    assert_eq!(
        found(&r),
        [(MissingRole, Severity::Low)],
        "{:?}",
        r.findings
    );
    // Membership read and the identity in no group: missing, high.
    let r = base().member_of("a-cp", &[]).graph().report();
    assert_eq!(found(&r), [(MissingRole, Severity::High)]);
}

#[test]
fn a_custom_role_through_a_group_is_judged_by_its_actions() {
    const JOINER: &str = "3c1e5a7b-9d2f-4b6c-8e0a-1f3b5d7e9a2c";
    const READER_ONLY: &str = "4d2f6b8c-0e3a-4c7d-9f1b-2a4c6e8f0b3d";
    let base = |role: &str| {
        Inv::new()
            .custom_role(
                JOINER,
                "subnet-joiner",
                &["Microsoft.Network/virtualNetworks/subnets/*"],
                &["Microsoft.Network/virtualNetworks/subnets/delete"],
            )
            .custom_role(
                READER_ONLY,
                "subnet-reader",
                &["Microsoft.Network/virtualNetworks/subnets/read"],
                &[],
            )
            .cluster(ClusterB::mi("a").subnet_pool("np", &subnet_id("net", "v", "s1")))
            .documented("a")
            .grant_custom("x", role, &subnet_id("net", "v", "s1"))
            .held_by_group(GROUP)
            .member_of("a-cp", &[GROUP])
            .graph()
    };
    let r = base(JOINER).report();
    assert!(found(&r).is_empty(), "{:?}", r.findings);
    let r = base(READER_ONLY).report();
    let f = r
        .findings
        .iter()
        .find(|f| f.rule_id == SubnetPermission)
        .expect("still missing");
    assert_eq!(f.severity, Severity::High);
    assert!(f.message.contains("subnet-reader"), "{}", f.message);
}

#[test]
fn a_groups_owner_on_the_subscription_is_an_excess_of_its_members() {
    let base = || {
        Inv::new()
            .cluster(ClusterB::mi("a"))
            .documented("a")
            .grant("x", "Owner", &sub_scope())
            .held_by_group(GROUP)
            .member_of("a-cp", &[GROUP])
            .graph()
    };
    let r = base().report();
    assert_eq!(found(&r), [(ExcessRole, Severity::High)]);
    let f = &r.findings[0];
    assert!(
        f.message.contains(&format!("through group {GROUP}")),
        "{}",
        f.message
    );
    // The fix takes the identity out of the group, never deletes the group's grant
    // for every member.
    assert!(
        f.remediation.contains(&format!(
            "az ad group member remove --group {GROUP} --member-id a-cp"
        )),
        "{}",
        f.remediation
    );
    assert!(
        !f.remediation.contains("\naz role assignment delete"),
        "{}",
        f.remediation
    );

    // The same group also grants the documented Contributor (the identity's own is
    // gone): leaving the group would take it away, so no command, a note.
    let r = Inv::new()
        .cluster(ClusterB::mi("a"))
        .grant("x", "Owner", &sub_scope())
        .held_by_group(GROUP)
        .grant("x", "Contributor", &node_rg("a"))
        .held_by_group(GROUP)
        .member_of("a-cp", &[GROUP])
        .graph()
        .report();
    assert_eq!(
        found(&r),
        [(ExcessRole, Severity::High)],
        "{:?}",
        r.findings
    );
    let fix = &r.findings[0].remediation;
    assert!(
        fix.lines().all(|l| l.starts_with('#')),
        "no runnable command: {fix}"
    );
    assert!(fix.contains("narrow"), "{fix}");
}

#[test]
fn the_second_pass_is_asked_only_for_missing_grants() {
    use crate::rules::groups::missing_needs;
    // Everything held: nothing to look for through groups.
    let i = Inv::new()
        .cluster(ClusterB::mi("a").subnet_pool("np", &subnet_id("net", "v", "s1")))
        .documented("a")
        .grant("a-cp", "Network Contributor", &subnet_id("net", "v", "s1"));
    assert!(missing_needs(&i.inv, &i.baseline, i.now).missing.is_empty());
    // The subnet grant missing: that identity and that subnet, once; a group row
    // does not change what is asked (it is what the pass reads).
    let i = subnet_via_group(&vnet_id("net", "v"));
    let needs = missing_needs(&i.inv, &i.baseline, i.now);
    assert_eq!(
        needs.missing,
        [("a-cp".to_string(), subnet_id("net", "v", "s1"))]
    );
    assert_eq!(needs.principals(), ["a-cp"]);
    // Within the propagation grace the grant is still looked for (no finding yet).
    let i = Inv::new().cluster(ClusterB::mi("b").created(now() - chrono::Duration::minutes(5)));
    let needs = missing_needs(&i.inv, &i.baseline, i.now);
    assert_eq!(needs.missing, [("b-cp".to_string(), node_rg("b"))]);
}
