//! Registries: pull rights by the registry's role-assignment mode (AKSMI022, 025, 026).
//!
//! Shapes follow `az acr show` / Resource Graph registry rows with
//! `properties.roleAssignmentMode` (`AbacRepositoryPermissions` or
//! `LegacyRegistryPermissions`, Azure SDK `RoleAssignmentMode`) and role assignments
//! with an ABAC `condition` (`conditionVersion` "2.0") as
//! container-registry-rbac-abac-repository-permissions.md shows them.
use super::builder::*;
use super::rules::{case, fire, Case};
use crate::rules::{Report, RuleId::*, Severity};

/// A repository condition as the ACR ABAC docs write them: read only `team-a/api`.
const TEAM_A_ONLY: &str = "((!(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/content/read'})) OR (@Resource[Microsoft.ContainerRegistry/registries/repositories:name] StringEquals 'team-a/api'))";

/// Cluster `a` seen on its service principal `a-sp` (holding `role` at `scope`),
/// then a day later on a system-assigned identity with every pool re-imaged (`v2`);
/// `now` adds the second run's grants. Registries: `acr1` (legacy) and `payacr`
/// (ABAC), both in resource group `acr`.
fn migrated_with(sp_grant: Option<(&str, String)>, now: fn(Inv) -> Inv) -> Report {
    let regs = |i: Inv| i.registry("acr1").abac_registry("payacr");
    let mut first = regs(Inv::new())
        .cluster(ClusterB::sp("a").pool("np", "v1"))
        .grant_sp("a-app", "a-sp", "Contributor", &node_rg("a"));
    if let Some((role, scope)) = sp_grant {
        first = first.grant_sp("a-app", "a-sp", role, &scope);
    }
    let first = first.run();
    now(regs(Inv::new())
        .cluster(ClusterB::mi("a").pool("np", "v2"))
        .documented("a"))
    .after(first.history)
    .report()
}

fn acr_rg() -> String {
    format!("{}/resourceGroups/acr", sub_scope())
}

pub(super) fn registry_cases() -> Vec<Case> {
    vec![
        case(
            "AKSMI025 kubelet AcrPull on an ABAC registry (what --attach-acr assigns)",
            || {
                Inv::new()
                    .abac_registry("payacr")
                    .cluster(ClusterB::mi("a"))
                    .documented("a")
                    .grant("a-kubelet", "AcrPull", &registry_id("payacr"))
                    .report()
            },
            vec![fire(AbacPullNotHonoured, "kubelet").about(&registry_id("payacr"))],
            &[ExcessRole, AbacPullScoped],
        ),
        case(
            "AKSMI025 low when Repository Reader also pulls there (AcrPull a leftover)",
            || {
                Inv::new()
                    .abac_registry("payacr")
                    .cluster(ClusterB::mi("a"))
                    .documented("a")
                    .grant("a-kubelet", "AcrPull", &registry_id("payacr"))
                    .grant(
                        "a-kubelet",
                        "Container Registry Repository Reader",
                        &registry_id("payacr"),
                    )
                    .report()
            },
            vec![fire(AbacPullNotHonoured, "kubelet")
                .about(&registry_id("payacr"))
                .severity(Severity::Low)],
            &[ExcessRole],
        ),
        case(
            "AKSMI025 not for Repository Reader on an ABAC registry (nor AKSMI011 on the 2021 baseline)",
            || {
                Inv::new()
                    .abac_registry("payacr")
                    .cluster(ClusterB::mi("a"))
                    .documented("a")
                    .grant(
                        "a-kubelet",
                        "Container Registry Repository Reader",
                        &registry_id("payacr"),
                    )
                    .report()
            },
            vec![],
            &[AbacPullNotHonoured, AbacPullScoped, ExcessRole],
        ),
        case(
            "AKSMI025 Catalog Lister alone on an ABAC registry: no pull",
            || {
                let lister = crate::rules::registry_pull::CATALOG_LISTER;
                let mut i = Inv::new()
                    .abac_registry("payacr")
                    .cluster(ClusterB::mi("a"))
                    .documented("a")
                    .grant("a-kubelet", "Reader", &registry_id("payacr"));
                // The builder grants by built-in name; this one by GUID.
                let a = i.inv.role_assignments.last_mut().unwrap();
                a.role_guid = lister.into();
                a.role_name = None;
                i.report()
            },
            vec![fire(AbacPullNotHonoured, "kubelet")
                .about(&registry_id("payacr"))
                .severity(Severity::High)],
            &[],
        ),
        case(
            "AKSMI025 not for AcrPull on a legacy registry",
            || {
                Inv::new()
                    .registry("acr1")
                    .cluster(ClusterB::mi("a"))
                    .documented("a")
                    .grant("a-kubelet", "AcrPull", &registry_id("acr1"))
                    .report()
            },
            vec![],
            &[AbacPullNotHonoured, ExcessRole],
        ),
        case(
            "AKSMI025 not for AcrPull above the ABAC registry (not read as meant for it)",
            || {
                Inv::new()
                    .abac_registry("payacr")
                    .cluster(ClusterB::mi("a"))
                    .documented("a")
                    .grant("a-kubelet", "AcrPull", &acr_rg())
                    .report()
            },
            vec![],
            &[AbacPullNotHonoured],
        ),
        case(
            "AKSMI026 Repository Reader limited by an ABAC condition",
            || {
                Inv::new()
                    .abac_registry("payacr")
                    .cluster(ClusterB::mi("a"))
                    .documented("a")
                    .grant(
                        "a-kubelet",
                        "Container Registry Repository Reader",
                        &registry_id("payacr"),
                    )
                    .condition(TEAM_A_ONLY)
                    .report()
            },
            vec![fire(AbacPullScoped, "kubelet").about(&registry_id("payacr"))],
            &[AbacPullNotHonoured, ExcessRole],
        ),
        case(
            "AKSMI022 a resource-group AcrPull stands for each registry under it, by mode",
            || {
                migrated_with(Some(("AcrPull", acr_rg())), |i| i)
            },
            vec![
                fire(AcrPullAfterMigration, "kubelet").about(&registry_id("acr1")),
                fire(AcrPullAfterMigration, "kubelet").about(&registry_id("payacr")),
            ],
            &[],
        ),
        case(
            "AKSMI022 not when the kubelet pulls by each registry's mode (Contributor on legacy, Repository Reader on ABAC)",
            || {
                migrated_with(Some(("AcrPull", acr_rg())), |i| {
                    i.grant("a-kubelet", "Contributor", &registry_id("acr1"))
                        .grant(
                            "a-kubelet",
                            "Container Registry Repository Reader",
                            &registry_id("payacr"),
                        )
                })
            },
            vec![],
            &[AcrPullAfterMigration],
        ),
        case(
            "AKSMI022 not when the service principal's grants were read and held no AcrPull",
            || migrated_with(None, |i| i),
            vec![],
            &[AcrPullAfterMigration],
        ),
        case(
            "AKSMI022 low prompt when the service principal's grants could not be read",
            || {
                // No assignment names the service principal's client id: its object
                // id, and so its grants, are unknown.
                let first = Inv::new()
                    .registry("acr1")
                    .cluster(ClusterB::sp("a").pool("np", "v1"))
                    .run();
                Inv::new()
                    .registry("acr1")
                    .cluster(ClusterB::mi("a").pool("np", "v2"))
                    .documented("a")
                    .after(first.history)
                    .report()
            },
            vec![fire(AcrPullAfterMigration, "kubelet")
                .about("subscription-registries")
                .severity(Severity::Low)],
            &[],
        ),
    ]
}

fn finding<'r>(
    r: &'r Report,
    rule: crate::rules::RuleId,
    subject: &str,
) -> &'r crate::rules::Finding {
    r.findings
        .iter()
        .find(|f| f.rule_id == rule && f.subject == subject)
        .unwrap_or_else(|| panic!("{rule} on {subject}: {:#?}", r.findings))
}

#[test]
fn aksmi022_fixes_are_commands_on_registries_with_the_role_of_their_mode() {
    let r = migrated_with(Some(("AcrPull", sub_scope())), |i| i);
    let legacy = finding(&r, AcrPullAfterMigration, &registry_id("acr1"));
    assert_eq!(
        legacy.remediation,
        format!(
            "az aks update --resource-group rg --name a --attach-acr {}",
            registry_id("acr1")
        )
    );
    assert!(legacy
        .message
        .contains(&format!("through AcrPull at {}", sub_scope())));
    let abac = finding(&r, AcrPullAfterMigration, &registry_id("payacr"));
    assert_eq!(
        abac.remediation,
        format!("az role assignment create --assignee-object-id a-kubelet --assignee-principal-type ServicePrincipal --role 'Container Registry Repository Reader' --scope {}", registry_id("payacr"))
    );
    assert!(abac.message.contains("ABAC mode"), "{}", abac.message);
    // Never a subscription handed to --attach-acr.
    for f in r
        .findings
        .iter()
        .filter(|f| f.rule_id == AcrPullAfterMigration)
    {
        assert!(
            !f.remediation
                .contains(&format!("--attach-acr {}\n", sub_scope()))
                && !f
                    .remediation
                    .ends_with(&format!("--attach-acr {}", sub_scope())),
            "{}",
            f.remediation
        );
    }
}

#[test]
fn aksmi025_fix_assigns_repository_reader_before_anything_is_removed() {
    let r = Inv::new()
        .abac_registry("payacr")
        .cluster(ClusterB::mi("a"))
        .documented("a")
        .grant("a-kubelet", "AcrPull", &registry_id("payacr"))
        .report();
    let f = finding(&r, AbacPullNotHonoured, &registry_id("payacr"));
    assert_eq!(f.severity, Severity::High);
    let lines: Vec<&str> = f.remediation.lines().collect();
    assert!(
        lines[0].starts_with("az role assignment create")
            && lines[0].contains("'Container Registry Repository Reader'"),
        "{lines:?}"
    );
    assert!(
        lines[1..].iter().all(|l| l.starts_with('#')),
        "the removal is labelled, not run: {lines:?}"
    );
    assert!(f.message.contains("not honoured"), "{}", f.message);
}
