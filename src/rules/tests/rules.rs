//! One table of scenarios (in `identity_cases` and `role_cases`): each rule
//! AKSMI001..AKSMI090 fires in at least one and stays quiet in at least one, through
//! [`Report::generate`] in process.
use super::builder::*;
use crate::rules::catalogue::CATALOGUE;
use crate::rules::{Finding, Report, RuleId, Severity};

/// A finding a scenario must produce (unsuppressed).
pub(super) struct Fire {
    rule: RuleId,
    identity: &'static str,
    /// `None`: any subject.
    subject: Option<String>,
    /// `None`: the catalogue's severity.
    severity: Option<Severity>,
}

pub(super) fn fire(rule: RuleId, identity: &'static str) -> Fire {
    Fire {
        rule,
        identity,
        subject: None,
        severity: None,
    }
}

impl Fire {
    pub(super) fn about(mut self, subject: &str) -> Self {
        self.subject = Some(subject.into());
        self
    }

    pub(super) fn severity(mut self, s: Severity) -> Self {
        self.severity = Some(s);
        self
    }

    fn matches(&self, f: &Finding) -> bool {
        f.rule_id == self.rule
            && f.identity == self.identity
            && f.suppressed.is_none()
            && self.subject.as_ref().is_none_or(|s| *s == f.subject)
            && f.severity == self.severity.unwrap_or(self.rule.info().severity)
    }
}

pub(super) struct Case {
    name: &'static str,
    scenario: fn() -> Report,
    fires: Vec<Fire>,
    /// Rules that must not fire at all.
    quiet: Vec<RuleId>,
}

pub(super) fn case(
    name: &'static str,
    scenario: fn() -> Report,
    fires: Vec<Fire>,
    quiet: &[RuleId],
) -> Case {
    Case {
        name,
        scenario,
        fires,
        quiet: quiet.to_vec(),
    }
}

/// A service-principal cluster `a` whose principal (`a-sp`) the role assignments name,
/// with its documented Contributor and AcrPull on `acr1`.
pub(super) fn sp_with_acr() -> Inv {
    Inv::new()
        .registry("acr1")
        .cluster(ClusterB::sp("a").pool("np", "v1"))
        .grant_sp("a-app", "a-sp", "Contributor", &node_rg("a"))
        .grant_sp("a-app", "a-sp", "AcrPull", &registry_id("acr1"))
}

/// Cluster `a` seen on its service principal, then (a day later) as `mi`.
pub(super) fn migrated(mi: ClusterB, grants: fn(Inv) -> Inv) -> Report {
    let first = sp_with_acr().run();
    grants(Inv::new().registry("acr1").cluster(mi).documented("a"))
        .after(first.history)
        .report()
}

fn cases() -> Vec<Case> {
    use super::{
        addon_cases as d, identity_cases as i, kubelet_cases as k, registry_cases as g,
        role_cases as r,
    };
    [
        i::clean_cases(),
        i::service_principal_cases(),
        i::kubelet_migration_cases(),
        i::inconsistent_identity_cases(),
        i::secret_expiry_cases(),
        r::missing_role_cases(),
        r::excess_and_wide_role_cases(),
        r::addon_without_identity_cases(),
        r::subnet_permission_cases(),
        r::kubelet_operator_cases(),
        r::acr_pull_cases(),
        g::registry_cases(),
        d::addon_cases(),
        k::kubelet_cases(),
        i::tenant_cases(),
        i::region_cases(),
        i::pod_identity_cases(),
        i::retired_cases(),
        r::unknown_addon_cases(),
        super::feature_cases::feature_role_cases(),
        super::feature_cases::shared_sp_cases(),
        super::cli_grant_cases::cli_grant_cases(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

#[test]
fn every_rule_fires_and_stays_quiet_as_its_scenarios_say() {
    let mut failures = Vec::new();
    for c in cases() {
        let r = (c.scenario)();
        let seen: Vec<String> = r
            .findings
            .iter()
            .map(|f| {
                format!(
                    "{} {} {:?} {}",
                    f.rule_id, f.identity, f.subject, f.severity
                )
            })
            .collect();
        for want in &c.fires {
            if !r.findings.iter().any(|f| want.matches(f)) {
                failures.push(format!(
                    "{}: expected {} on {} ({:?}, {:?}); got {seen:?}",
                    c.name, want.rule, want.identity, want.subject, want.severity
                ));
            }
        }
        for rule in &c.quiet {
            if r.findings.iter().any(|f| f.rule_id == *rule) {
                failures.push(format!("{}: {rule} must not fire; got {seen:?}", c.name));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn every_rule_has_a_scenario_that_fires_and_one_that_does_not() {
    let cases = cases();
    for r in CATALOGUE {
        assert!(
            cases.iter().any(|c| c.fires.iter().any(|f| f.rule == r.id)),
            "{} never fires",
            r.id
        );
        assert!(
            cases
                .iter()
                .any(|c| c.quiet.contains(&r.id) && !c.fires.iter().any(|f| f.rule == r.id)),
            "{} has no quiet scenario",
            r.id
        );
    }
}
