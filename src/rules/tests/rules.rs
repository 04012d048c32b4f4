//! One table of scenarios: each rule AKSMI001..AKSMI090 fires in at least one and
//! stays quiet in at least one, through [`Report::generate`] in process.
use chrono::Duration;

use super::builder::*;
use crate::rules::catalogue::CATALOGUE;
use crate::rules::{Finding, Report, RuleId, Severity};

use RuleId::*;

/// A finding a scenario must produce (unsuppressed).
struct Fire {
    rule: RuleId,
    identity: &'static str,
    /// `None`: any subject.
    subject: Option<String>,
    /// `None`: the catalogue's severity.
    severity: Option<Severity>,
}

fn fire(rule: RuleId, identity: &'static str) -> Fire {
    Fire {
        rule,
        identity,
        subject: None,
        severity: None,
    }
}

impl Fire {
    fn about(mut self, subject: &str) -> Self {
        self.subject = Some(subject.into());
        self
    }

    fn severity(mut self, s: Severity) -> Self {
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

struct Case {
    name: &'static str,
    scenario: fn() -> Report,
    fires: Vec<Fire>,
    /// Rules that must not fire at all.
    quiet: Vec<RuleId>,
}

fn case(name: &'static str, scenario: fn() -> Report, fires: Vec<Fire>, quiet: &[RuleId]) -> Case {
    Case {
        name,
        scenario,
        fires,
        quiet: quiet.to_vec(),
    }
}

/// A service-principal cluster `a` whose principal (`a-sp`) the role assignments name,
/// with its documented Contributor and AcrPull on `acr1`.
fn sp_with_acr() -> Inv {
    Inv::new()
        .registry("acr1")
        .cluster(ClusterB::sp("a").pool("np", "v1"))
        .grant_sp("a-app", "a-sp", "Contributor", &node_rg("a"))
        .grant_sp("a-app", "a-sp", "AcrPull", &registry_id("acr1"))
}

/// Cluster `a` seen on its service principal, then (a day later) as `mi`.
fn migrated(mi: ClusterB, grants: fn(Inv) -> Inv) -> Report {
    let first = sp_with_acr().run();
    grants(Inv::new().registry("acr1").cluster(mi).documented("a"))
        .after(first.history)
        .report()
}

fn cases() -> Vec<Case> {
    let all: Vec<RuleId> = CATALOGUE.iter().map(|r| r.id).collect();
    vec![
        case(
            "a clean managed-identity cluster has no finding",
            || Inv::new().cluster(ClusterB::mi("a").pool("np", "v1")).documented("a").report(),
            vec![],
            &all,
        ),
        // AKSMI001 service principal
        case(
            "AKSMI001 a service-principal cluster",
            || sp_with_acr().report(),
            vec![fire(ServicePrincipal, "control_plane").about("")],
            &[InconsistentIdentity, KubeletPending, MissingRole],
        ),
        case(
            "AKSMI001 not on a managed identity",
            || Inv::new().cluster(ClusterB::mi("a")).documented("a").report(),
            vec![],
            &[ServicePrincipal],
        ),
        // AKSMI002 / AKSMI003 the kubelet trap
        case(
            "AKSMI002 pools not re-imaged since the flip",
            || migrated(ClusterB::mi("a").pool("np", "v1"), |i| i),
            vec![fire(KubeletPending, "kubelet").about("np")],
            &[ServicePrincipal, KubeletUnknown],
        ),
        case(
            "AKSMI002 not once every pool is re-imaged",
            || {
                let first = sp_with_acr().run();
                let flip = Inv::new()
                    .cluster(ClusterB::mi("a").pool("np", "v1"))
                    .after(first.history)
                    .run();
                Inv::new()
                    .cluster(ClusterB::mi("a").pool("np", "v2"))
                    .documented("a")
                    .after(flip.history)
                    .report()
            },
            vec![],
            &[KubeletPending, KubeletUnknown],
        ),
        case(
            "AKSMI002 not on a first run (no flip seen)",
            || Inv::new().cluster(ClusterB::mi("a").pool("np", "v1")).report(),
            vec![],
            &[KubeletPending, KubeletUnknown],
        ),
        case(
            "AKSMI003 migrated, node image unknown",
            || migrated(ClusterB::mi("a").pool_unknown_image("np"), |i| i),
            vec![fire(KubeletUnknown, "kubelet").about("")],
            &[KubeletPending],
        ),
        case(
            "AKSMI003 not when images are known",
            || migrated(ClusterB::mi("a").pool("np", "v1"), |i| i),
            vec![],
            &[KubeletUnknown],
        ),
        // AKSMI004 inconsistent identity
        case(
            "AKSMI004 clientId msi without an identity block",
            || Inv::new().cluster(ClusterB::sp("a").sp_client_id("MSI")).report(),
            vec![fire(InconsistentIdentity, "control_plane").about("clientId-msi-without-identity")],
            &[ServicePrincipal],
        ),
        case(
            "AKSMI004 identity with a service principal client id",
            || Inv::new().cluster(ClusterB::mi("a").sp_client_id("a-app")).documented("a").report(),
            vec![fire(InconsistentIdentity, "control_plane").about("identity-with-sp-client-id")],
            &[ServicePrincipal],
        ),
        case(
            "AKSMI004 succeeded managed-identity cluster without kubelet identity",
            || Inv::new().cluster(ClusterB::mi("a").no_kubelet()).documented("a").report(),
            vec![fire(InconsistentIdentity, "kubelet").about("mi-without-kubelet")],
            &[],
        ),
        case(
            "AKSMI004 own kubelet identity with a system-assigned control plane",
            || Inv::new().cluster(ClusterB::mi("a").own_kubelet()).documented("a").report(),
            vec![fire(InconsistentIdentity, "kubelet").about("own-kubelet-with-system-assigned")],
            &[],
        ),
        case(
            "AKSMI004 not while the cluster is still updating, nor with a user-assigned control plane",
            || {
                Inv::new()
                    .cluster(ClusterB::mi("a").no_kubelet().state("Updating"))
                    .cluster(ClusterB::user_assigned("b").own_kubelet())
                    .documented("a")
                    .documented("b")
                    .grant("b-cp", "Managed Identity Operator", &identity_id("b-kubelet"))
                    .report()
            },
            vec![],
            &[InconsistentIdentity],
        ),
        // AKSMI005 credential expiry
        case(
            "AKSMI005 expired credential is critical",
            || sp_with_acr().credential("a-app", now() - Duration::days(3)).report(),
            vec![fire(SecretExpiry, "control_plane").severity(Severity::Critical)],
            &[],
        ),
        case(
            "AKSMI005 credential expiring within 30 days is high",
            || sp_with_acr().credential("a-app", now() + Duration::days(10)).report(),
            vec![fire(SecretExpiry, "control_plane").severity(Severity::High)],
            &[],
        ),
        case(
            "AKSMI005 not for a credential valid for longer, nor without Graph data",
            || {
                sp_with_acr()
                    .credential("a-app", now() + Duration::days(90))
                    .cluster(ClusterB::sp("b"))
                    .report()
            },
            vec![],
            &[SecretExpiry],
        ),
        // AKSMI010 missing role
        case(
            "AKSMI010 control plane without Contributor on the node resource group",
            || Inv::new().cluster(ClusterB::mi("a")).report(),
            vec![fire(MissingRole, "control_plane")
                .about(&format!("b24988ac-6180-42a0-ab88-20f7382dd24c|{}", node_rg("a")))],
            &[],
        ),
        case(
            "AKSMI010 add-on without its documented role",
            || Inv::new().cluster(ClusterB::mi("a").addon("omsagent", Some("a-oms"))).documented("a").report(),
            vec![fire(MissingRole, "addon:omsagent")],
            &[AddonWithoutIdentity],
        ),
        case(
            "AKSMI010 not within the propagation grace of a new cluster",
            || Inv::new().cluster(ClusterB::mi("a").created(now() - Duration::minutes(10))).report(),
            vec![],
            &[MissingRole],
        ),
        case(
            "AKSMI010 not while a fresh grant propagates",
            || {
                Inv::new()
                    .cluster(ClusterB::mi("a"))
                    .grant_at("a-cp", "Reader", &node_rg("a"), now() - Duration::minutes(5))
                    .report()
            },
            vec![fire(ExcessRole, "control_plane")],
            &[MissingRole],
        ),
        case(
            "AKSMI010 not when the role is held",
            || Inv::new().cluster(ClusterB::mi("a")).documented("a").report(),
            vec![],
            &[MissingRole],
        ),
        // AKSMI011 / AKSMI012 excess and wide roles
        case(
            "AKSMI011 kubelet holds Contributor on the subscription (high)",
            || {
                Inv::new()
                    .cluster(ClusterB::mi("a"))
                    .documented("a")
                    .grant("a-kubelet", "Contributor", &sub_scope())
                    .report()
            },
            vec![fire(ExcessRole, "kubelet").severity(Severity::High)],
            &[WideScope],
        ),
        case(
            "AKSMI011 kubelet holds Reader on a resource group (medium)",
            || {
                Inv::new()
                    .cluster(ClusterB::mi("a"))
                    .documented("a")
                    .grant("a-kubelet", "Reader", &format!("{}/resourceGroups/other", sub_scope()))
                    .report()
            },
            vec![fire(ExcessRole, "kubelet").severity(Severity::Medium)],
            &[WideScope],
        ),
        case(
            "AKSMI011 not for documented roles (kubelet AcrPull on a registry)",
            || {
                Inv::new()
                    .registry("acr1")
                    .cluster(ClusterB::mi("a"))
                    .documented("a")
                    .grant("a-kubelet", "AcrPull", &registry_id("acr1"))
                    .report()
            },
            vec![],
            &[ExcessRole, WideScope],
        ),
        case(
            "AKSMI012 control plane's Contributor at the subscription",
            || Inv::new().cluster(ClusterB::mi("a")).grant("a-cp", "Contributor", &sub_scope()).report(),
            vec![fire(WideScope, "control_plane")],
            &[ExcessRole, MissingRole],
        ),
        // AKSMI013 add-on without identity
        case(
            "AKSMI013 enabled add-on without identity",
            || Inv::new().cluster(ClusterB::mi("a").addon("omsagent", None)).documented("a").report(),
            vec![fire(AddonWithoutIdentity, "addon:omsagent").about("")],
            &[UnknownAddon],
        ),
        case(
            "AKSMI013 not with an identity, nor on a service-principal cluster",
            || {
                Inv::new()
                    .cluster(ClusterB::mi("a").addon("omsagent", Some("a-oms")))
                    .cluster(ClusterB::sp("b").addon("omsagent", None))
                    .documented("a")
                    .grant("a-oms", "Monitoring Metrics Publisher", &cluster_id("a"))
                    .report()
            },
            vec![],
            &[AddonWithoutIdentity, MissingRole],
        ),
        // AKSMI020 subnet permission
        case(
            "AKSMI020 custom subnet outside the node resource group",
            || {
                Inv::new()
                    .cluster(ClusterB::mi("a").subnet_pool("np", &subnet_id("net", "v", "s1")))
                    .documented("a")
                    .report()
            },
            vec![fire(SubnetPermission, "control_plane").about(&subnet_id("net", "v", "s1"))],
            &[],
        ),
        case(
            "AKSMI020 not with Network Contributor on the VNet",
            || {
                Inv::new()
                    .cluster(ClusterB::mi("a").subnet_pool("np", &subnet_id("net", "v", "s1")))
                    .documented("a")
                    .grant("a-cp", "Network Contributor", &vnet_id("net", "v"))
                    .report()
            },
            vec![],
            &[SubnetPermission, ExcessRole, WideScope],
        ),
        // AKSMI021 kubelet operator
        case(
            "AKSMI021 own kubelet identity without Managed Identity Operator",
            || Inv::new().cluster(ClusterB::user_assigned("a").own_kubelet()).documented("a").report(),
            vec![fire(KubeletOperator, "control_plane").about(&identity_id("a-kubelet"))],
            &[InconsistentIdentity],
        ),
        case(
            "AKSMI021 not with Managed Identity Operator over it",
            || {
                Inv::new()
                    .cluster(ClusterB::user_assigned("a").own_kubelet())
                    .documented("a")
                    .grant("a-cp", "Managed Identity Operator", &identity_id("a-kubelet"))
                    .report()
            },
            vec![],
            &[KubeletOperator, ExcessRole],
        ),
        // AKSMI022 AcrPull after migration
        case(
            "AKSMI022 registry the service principal pulled from",
            || migrated(ClusterB::mi("a").pool("np", "v2"), |i| i),
            vec![fire(AcrPullAfterMigration, "kubelet").about(&registry_id("acr1"))],
            &[],
        ),
        case(
            "AKSMI022 not once the kubelet identity has AcrPull there",
            || {
                migrated(ClusterB::mi("a").pool("np", "v2"), |i| {
                    i.grant("a-kubelet", "AcrPull", &registry_id("acr1"))
                })
            },
            vec![],
            &[AcrPullAfterMigration],
        ),
        case(
            "AKSMI022 not without a migration",
            || Inv::new().registry("acr1").cluster(ClusterB::mi("a")).documented("a").report(),
            vec![],
            &[AcrPullAfterMigration],
        ),
        // AKSMI030 tenant
        case(
            "AKSMI030 identity tenant is not the subscription's",
            || Inv::new().cluster(ClusterB::mi("a").tenant("other")).documented("a").report(),
            vec![fire(TenantMismatch, "control_plane")],
            &[],
        ),
        case(
            "AKSMI030 not for the same tenant in another case",
            || Inv::new().cluster(ClusterB::mi("a").tenant("TENANT1")).documented("a").report(),
            vec![],
            &[TenantMismatch],
        ),
        // AKSMI031 regions
        case(
            "AKSMI031 own control-plane identity in US DoD Central",
            || Inv::new().cluster(ClusterB::user_assigned("a").location("US DoD Central")).documented("a").report(),
            vec![fire(UnsupportedRegion, "control_plane")],
            &[],
        ),
        case(
            "AKSMI031 own kubelet identity in China East",
            || {
                Inv::new()
                    .cluster(ClusterB::user_assigned("a").own_kubelet().location("chinaeast"))
                    .documented("a")
                    .grant("a-cp", "Managed Identity Operator", &identity_id("a-kubelet"))
                    .report()
            },
            vec![fire(UnsupportedRegion, "kubelet")],
            &[],
        ),
        case(
            "AKSMI031 not for system-assigned identities there, nor elsewhere",
            || {
                Inv::new()
                    .cluster(ClusterB::mi("a").location("usdodcentral"))
                    .cluster(ClusterB::user_assigned("b"))
                    .documented("a")
                    .documented("b")
                    .report()
            },
            vec![],
            &[UnsupportedRegion],
        ),
        // AKSMI040 / AKSMI041 pod identity
        case(
            "AKSMI040 and AKSMI041 pod identity without the kube-system exception",
            || Inv::new().cluster(ClusterB::mi("a").pod_identity(false)).documented("a").report(),
            vec![fire(PodIdentity, "control_plane"), fire(PodIdentityException, "control_plane")],
            &[],
        ),
        case(
            "AKSMI041 not with the exception (AKSMI040 still fires)",
            || Inv::new().cluster(ClusterB::mi("a").pod_identity(true)).documented("a").report(),
            vec![fire(PodIdentity, "control_plane")],
            &[PodIdentityException],
        ),
        case(
            "AKSMI040 not without pod identity",
            || Inv::new().cluster(ClusterB::mi("a")).documented("a").report(),
            vec![],
            &[PodIdentity, PodIdentityException],
        ),
        // AKSMI090 add-on unknown to the baseline
        case(
            "AKSMI090 add-on identity the baseline does not document",
            || {
                Inv::new()
                    .cluster(ClusterB::mi("a").addon("fancyAddon", Some("a-fancy")))
                    .documented("a")
                    .grant("a-fancy", "Reader", &node_rg("a"))
                    .report()
            },
            vec![fire(UnknownAddon, "addon:fancyAddon")],
            &[ExcessRole],
        ),
        case(
            "AKSMI090 not for add-ons documented to need no identity",
            || Inv::new().cluster(ClusterB::mi("a").addon("azurepolicy", Some("a-pol"))).documented("a").report(),
            vec![],
            &[UnknownAddon],
        ),
    ]
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
