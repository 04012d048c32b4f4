//! What each cluster's `checks` say (evaluated / not_evaluated and why), that a family
//! not evaluated gives no finding, and the role checks' statuses.
use chrono::Duration;

use super::builder::*;
use crate::history::History;
use crate::rules::evaluated::Family;
use crate::rules::{Report, RuleId};

const OK: &str = "evaluated";
const NO_GRAPH: &str = "not_evaluated: needs Microsoft Graph (--graph)";

/// The statuses of cluster `a`, in [`Family::ALL`] order.
struct CheckCase {
    name: &'static str,
    scenario: fn() -> Report,
    classification: &'static str,
    roles: &'static str,
    secret_expiry: &'static str,
    migration: &'static str,
}

fn check_cases() -> Vec<CheckCase> {
    let mut all = gap_check_cases();
    all.extend(service_principal_check_cases());
    all
}

/// A managed-identity cluster, with and without coverage gaps.
fn gap_check_cases() -> Vec<CheckCase> {
    vec![
        CheckCase {
            name: "a managed-identity cluster with everything read",
            scenario: || Inv::new().cluster(ClusterB::mi("a")).report(),
            classification: OK,
            roles: OK,
            secret_expiry: OK,
            migration: OK,
        },
        CheckCase {
            name: "role assignments of its subscription not read",
            scenario: || {
                Inv::new()
                    .cluster(ClusterB::mi("a"))
                    .gap(&sub_scope(), &["role-assignments"])
                    .report()
            },
            classification: OK,
            roles: "not_evaluated: role assignments of /subscriptions/sub1 not read",
            secret_expiry: OK,
            migration: OK,
        },
        CheckCase {
            name: "registries of a management group not read",
            scenario: || {
                Inv::new()
                    .cluster(ClusterB::mi("a"))
                    .gap(
                        "/providers/Microsoft.Management/managementGroups/root",
                        &["registries"],
                    )
                    .report()
            },
            classification: OK,
            roles: "not_evaluated: registries of /providers/Microsoft.Management/managementGroups/root not read",
            secret_expiry: OK,
            migration: OK,
        },
        CheckCase {
            name: "a gap on another subscription or table does not reach it",
            scenario: || {
                Inv::new()
                    .cluster(ClusterB::mi("a"))
                    .gap("/subscriptions/sub2", &["role-assignments"])
                    .gap(&sub_scope(), &["resource-groups"])
                    .report()
            },
            classification: OK,
            roles: OK,
            secret_expiry: OK,
            migration: OK,
        },
    ]
}

/// Service-principal clusters (what Graph and the role assignments tell), and a
/// cluster read twice.
fn service_principal_check_cases() -> Vec<CheckCase> {
    vec![
        CheckCase {
            name: "a service principal no role assignment names, without Graph",
            scenario: || Inv::new().cluster(ClusterB::sp("a")).report(),
            classification: OK,
            roles: "not_evaluated: the service principal's object id is unknown (no role assignment names it): run with --graph, or export role assignments with principalName",
            secret_expiry: NO_GRAPH,
            migration: OK,
        },
        CheckCase {
            name: "a service principal Graph was asked about but does not know",
            scenario: || {
                Inv::new()
                    .cluster(ClusterB::sp("a"))
                    .grant_sp("a-app", "a-sp", "Contributor", &node_rg("a"))
                    .graph()
                    .report()
            },
            classification: OK,
            roles: OK,
            secret_expiry: "not_evaluated: the service principal's credentials were not found in Microsoft Graph",
            migration: OK,
        },
        CheckCase {
            name: "a service principal with its credentials read",
            scenario: || {
                Inv::new()
                    .cluster(ClusterB::sp("a"))
                    .grant_sp("a-app", "a-sp", "Contributor", &node_rg("a"))
                    .credential("A-APP", now() + Duration::days(200))
                    .report()
            },
            classification: OK,
            roles: OK,
            secret_expiry: OK,
            migration: OK,
        },
        CheckCase {
            name: "a cluster read twice with different data",
            scenario: || {
                Inv::new()
                    .cluster(ClusterB::sp("a").conflict("read twice with different data"))
                    .report()
            },
            classification: "not_evaluated: read twice with different data",
            roles: "not_evaluated: read twice with different data",
            secret_expiry: "not_evaluated: read twice with different data",
            migration: "not_evaluated: read twice with different data",
        },
    ]
}

#[test]
fn each_family_is_evaluated_or_says_why_not() {
    let mut failures = Vec::new();
    for c in check_cases() {
        let r = (c.scenario)();
        let row = r
            .clusters
            .iter()
            .find(|row| row.cluster_name == "a")
            .unwrap();
        let want = [c.classification, c.roles, c.secret_expiry, c.migration];
        for (f, want) in Family::ALL.into_iter().zip(want) {
            let got = row.checks.get(f).to_string();
            if got != want {
                failures.push(format!(
                    "{}: {}: {got:?}, expected {want:?}",
                    c.name,
                    f.as_str()
                ));
            }
            if !row.checks.get(f).is_evaluated() {
                for x in r.findings.iter().filter(|x| Family::of(x.rule_id) == f) {
                    failures.push(format!(
                        "{}: {} found though {f:?} was not evaluated",
                        c.name, x.rule_id
                    ));
                }
            }
        }
        let all = want.iter().all(|w| *w == OK);
        if (r.summary.fully_evaluated == 1) != all {
            failures.push(format!(
                "{}: fully_evaluated {}",
                c.name, r.summary.fully_evaluated
            ));
        }
        for (f, w) in Family::ALL.into_iter().zip(want) {
            let n = r.summary.not_evaluated.get(&f).copied().unwrap_or(0);
            if n != usize::from(w != OK) {
                failures.push(format!(
                    "{}: summary.not_evaluated[{}] = {n}",
                    c.name,
                    f.as_str()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn a_missing_role_is_not_reported_when_role_assignments_were_not_read() {
    let r = Inv::new()
        .cluster(
            ClusterB::mi("a")
                .addon("omsagent", None)
                // Legacy authentication: the add-on needs its identity (with
                // managed-identity authentication it would not).
                .addon_config("useAADAuth", "false"),
        )
        .gap(&sub_scope(), &["role-assignments"])
        .report();
    let mut rules: Vec<RuleId> = r.findings.iter().map(|f| f.rule_id).collect();
    rules.sort();
    // Classification still runs: the add-on without identity is reported (and its
    // retiring authentication), no role finding.
    assert_eq!(
        rules,
        [RuleId::AddonWithoutIdentity, RuleId::RetiredFeature]
    );
    assert!(r.role_checks.is_empty());
}

#[test]
fn findings_of_a_family_not_evaluated_stay_open_rather_than_resolved() {
    let first = Inv::new().cluster(ClusterB::mi("a")).run();
    let fp = first.report.findings[0].fingerprint();
    assert!(fp.starts_with("AKSMI010|"), "{fp}");
    let second = Inv::new()
        .cluster(ClusterB::mi("a"))
        .gap(&sub_scope(), &["role-assignments"])
        .after(first.history)
        .run();
    assert!(second.report.changes.has_previous);
    assert!(second.report.changes.resolved.is_empty());
    assert!(second.history.findings.contains(fp.as_str()));
    // Read again and granted: now it is resolved.
    let third = Inv::new()
        .cluster(ClusterB::mi("a"))
        .documented("a")
        .after(second.history)
        .run();
    assert_eq!(third.report.changes.resolved, [fp]);
}

#[test]
fn role_checks_list_every_status() {
    let r = Inv::new()
        .registry("acr1")
        .cluster(ClusterB::mi("a").addon("fancyAddon", Some("a-fancy")))
        .cluster(ClusterB::mi("b"))
        .cluster(ClusterB::mi("c"))
        .documented("a")
        .grant("a-kubelet", "AcrPull", &registry_id("acr1"))
        .grant("a-kubelet", "Reader", &sub_scope())
        .grant("b-cp", "Contributor", &sub_scope())
        .grant("a-fancy", "Reader", &node_rg("a"))
        .report();
    let rows: Vec<[String; 6]> = r
        .role_checks
        .iter()
        .map(|c| {
            [
                c.cluster_id.rsplit('/').next().unwrap().to_string(),
                c.identity.to_string(),
                c.status.to_string(),
                c.expected_role.to_string(),
                c.expected_scope.to_string(),
                c.actual_role.to_string(),
            ]
        })
        .collect();
    let row = |cells: [&str; 6]| cells.map(str::to_string);
    assert_eq!(
        rows,
        [
            row(["a", "addon:fancyAddon", "not_documented", "", "", "Reader"]),
            row([
                "a",
                "control_plane",
                "ok",
                "Contributor",
                &node_rg("a"),
                "Contributor"
            ]),
            row([
                "a",
                "kubelet",
                "ok",
                "AcrPull",
                &registry_id("acr1"),
                "AcrPull"
            ]),
            row(["a", "kubelet", "excess", "", "", "Reader"]),
            row([
                "b",
                "control_plane",
                "too_wide",
                "Contributor",
                &node_rg("b"),
                "Contributor"
            ]),
            row([
                "c",
                "control_plane",
                "missing",
                "Contributor",
                &node_rg("c"),
                ""
            ]),
        ]
    );
}

#[test]
fn credential_expiry_is_said_in_words_a_person_reads() {
    use crate::rules::checks::credential_expiry;
    use crate::rules::Severity;
    let now: chrono::DateTime<chrono::Utc> = "2026-06-01T06:00:00Z".parse().unwrap();
    let h = chrono::Duration::hours;
    let say = |d| credential_expiry(now + d, now);
    assert_eq!(
        say(-h(2)),
        Some((Severity::Critical, "expired today (2026-06-01)".into()))
    );
    assert_eq!(
        say(-h(30)),
        Some((Severity::Critical, "expired 1 day ago (2026-05-31)".into()))
    );
    assert_eq!(
        say(-h(24 * 10)),
        Some((
            Severity::Critical,
            "expired 10 days ago (2026-05-22)".into()
        ))
    );
    assert_eq!(
        say(h(2)),
        Some((Severity::High, "expires today (2026-06-01)".into()))
    );
    assert_eq!(
        say(h(24 * 30)),
        Some((Severity::High, "expires in 30 days (2026-07-01)".into()))
    );
    assert_eq!(say(h(24 * 31 + 1)), None);
}

#[test]
fn a_finding_keeps_the_date_it_was_first_seen() {
    let first = Inv::new().cluster(ClusterB::mi("a")).run();
    let t0 = first.report.generated_at;
    assert_eq!(first.report.findings[0].first_seen, Some(t0));
    // The next night (a day later) and the one after: still the first night's date,
    // even across a night when the roles could not be read.
    let second = Inv::new()
        .cluster(ClusterB::mi("a"))
        .gap(&sub_scope(), &["role-assignments"])
        .after(first.history)
        .run();
    let third = Inv::new()
        .cluster(ClusterB::mi("a"))
        .cluster(ClusterB::mi("b"))
        .after(second.history)
        .run();
    assert!(third.report.generated_at > t0);
    let seen = |name: &str| {
        third
            .report
            .findings
            .iter()
            .find(|f| f.cluster_name == name)
            .and_then(|f| f.first_seen)
    };
    assert_eq!(seen("a"), Some(t0));
    assert_eq!(seen("b"), Some(third.report.generated_at), "new tonight");
    assert_eq!(third.report.clusters[0].first_seen, Some(t0));
}

#[test]
fn a_state_without_dates_dates_its_findings_from_its_last_run() {
    let first = Inv::new().cluster(ClusterB::mi("a")).run();
    let mut old = first.history.clone();
    old.finding_first_seen.clear();
    let json = serde_json::to_string(&old).unwrap();
    assert!(!json.contains("finding_first_seen"), "an old file's shape");
    let old: History = serde_json::from_str(&json).unwrap();
    let last = old.last_run;
    let second = Inv::new().cluster(ClusterB::mi("a")).after(old).run();
    assert_eq!(second.report.findings[0].first_seen, last);
}

#[test]
fn compliant_needs_every_check_and_nothing_medium_or_worse() {
    use crate::rules::evaluated::Status;
    use crate::rules::Severity;
    let mut r = Inv::new()
        .cluster(ClusterB::mi("a"))
        .cluster(ClusterB::mi("b"))
        .documented("a")
        .documented("b")
        .report();
    assert!(r.findings.is_empty(), "{:?}", r.findings);
    assert_eq!(r.summary.compliant, 2);
    let again = |r: &Report| {
        super::super::audit::summarise(&Default::default(), &r.clusters, &r.findings).compliant
    };
    assert_eq!(again(&r), 2);
    // A low finding leaves a cluster compliant, a medium one does not, a suppressed
    // one does again; a check not evaluated does not.
    // A finding of the same cluster, from a run where its roles were not granted.
    let other = Inv::new().cluster(ClusterB::mi("a")).report();
    let mut f = other.findings[0].clone();
    assert_eq!(f.cluster_id, r.clusters[0].cluster_id);
    f.severity = Severity::Low;
    r.findings.push(f);
    assert_eq!(again(&r), 2);
    r.findings[0].severity = Severity::Medium;
    assert_eq!(again(&r), 1);
    r.findings[0].suppressed = Some(crate::rules::suppress::Applied {
        justification: "accepted".into(),
        owner: "sec@example.com".into(),
        expires: "2099-01-01".parse().unwrap(),
    });
    assert_eq!(again(&r), 2);
    r.clusters[1].checks.roles = Status::NotEvaluated("role assignments not read".into());
    assert_eq!(again(&r), 1);
}
