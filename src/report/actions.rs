//! The top actions: what to do first, computed once for the page, the mails and
//! `actions.csv`. One action is one kind of fix (one rule) at one severity, most severe
//! first; it carries its findings, the clusters and owners they concern and the
//! copy-ready commands. The sentences that name each fix are in [`FIX_TEXT`], in one
//! place, so they can be translated.
use std::collections::{BTreeMap, HashSet};

use serde::Serialize;

use super::html::Lookup;
use crate::rules::{Finding, Report, RuleId, Severity};

/// What to do about each rule's findings: (rule, one, many); `{n}` is the number of
/// findings, and each finding is one of the things the sentence counts.
pub const FIX_TEXT: &[(RuleId, &str, &str)] = &[
    (
        RuleId::ServicePrincipal,
        "Migrate {n} cluster from its service principal to managed identity",
        "Migrate {n} clusters from service principals to managed identity",
    ),
    (
        RuleId::KubeletPending,
        "Re-image {n} node pool whose kubelet still uses the service principal",
        "Re-image {n} node pools whose kubelet still uses the service principal",
    ),
    (
        RuleId::KubeletUnknown,
        "Verify which credential kubelet uses on {n} migrated cluster",
        "Verify which credential kubelet uses on {n} migrated clusters",
    ),
    (
        RuleId::InconsistentIdentity,
        "Finish {n} half-done identity update",
        "Finish {n} half-done identity updates",
    ),
    (
        RuleId::SecretExpiry,
        "Renew {n} service principal credential (expired or expiring)",
        "Renew {n} service principal credentials (expired or expiring)",
    ),
    (
        RuleId::MissingRole,
        "Grant {n} missing documented role",
        "Grant {n} missing documented roles",
    ),
    (
        RuleId::ExcessRole,
        "Review and remove {n} role beyond the documented defaults",
        "Review and remove {n} roles beyond the documented defaults",
    ),
    (
        RuleId::WideScope,
        "Narrow {n} role grant to its documented scope",
        "Narrow {n} role grants to their documented scope",
    ),
    (
        RuleId::AddonWithoutIdentity,
        "Re-enable {n} add-on that has no identity",
        "Re-enable {n} add-ons that have no identity",
    ),
    (
        RuleId::SubnetPermission,
        "Grant Network Contributor on {n} custom subnet",
        "Grant Network Contributor on {n} custom subnets",
    ),
    (
        RuleId::KubeletOperator,
        "Grant Managed Identity Operator over {n} own kubelet identity",
        "Grant Managed Identity Operator over {n} own kubelet identities",
    ),
    (
        RuleId::AcrPullAfterMigration,
        "Re-attach {n} registry so the new kubelet identity gets AcrPull",
        "Re-attach {n} registries so the new kubelet identities get AcrPull",
    ),
    (
        RuleId::FeatureRole,
        "Grant {n} role a cluster feature needs (private DNS zone, API server subnet, KMS, disk encryption set, ...)",
        "Grant {n} roles cluster features need (private DNS zone, API server subnet, KMS, disk encryption set, ...)",
    ),
    (
        RuleId::AbacPullNotHonoured,
        "Grant Container Registry Repository Reader on {n} ABAC-mode registry whose AcrPull is not honoured",
        "Grant Container Registry Repository Reader on {n} ABAC-mode registries whose AcrPull is not honoured",
    ),
    (
        RuleId::AbacPullScoped,
        "Confirm {n} repository-scoped pull grant on an ABAC-mode registry",
        "Confirm {n} repository-scoped pull grants on ABAC-mode registries",
    ),
    (
        RuleId::TenantMismatch,
        "Repair {n} cluster whose identity is in another tenant",
        "Repair {n} clusters whose identity is in another tenant",
    ),
    (
        RuleId::UnsupportedRegion,
        "Review {n} own identity in a region that does not support it",
        "Review {n} own identities in regions that do not support them",
    ),
    (
        RuleId::PodIdentity,
        "Move {n} cluster from pod identity to workload identity",
        "Move {n} clusters from pod identity to workload identity",
    ),
    (
        RuleId::PodIdentityException,
        "Verify the kube-system exception of pod identity on {n} cluster",
        "Verify the kube-system exception of pod identity on {n} clusters",
    ),
    (
        RuleId::RetiredFeature,
        "Move {n} add-on off a retired feature",
        "Move {n} add-ons off retired features",
    ),
    (
        RuleId::UnknownAddon,
        "Review {n} add-on identity the baseline does not cover",
        "Review {n} add-on identities the baseline does not cover",
    ),
];

/// The sentence for `n` findings of `rule`.
pub fn fix_text(rule: RuleId, n: usize) -> String {
    let (one, many) = FIX_TEXT
        .iter()
        .find(|(r, _, _)| *r == rule)
        .map(|(_, one, many)| (*one, *many))
        .unwrap_or(("Fix {n} finding", "Fix {n} findings"));
    if n == 1 { one } else { many }.replace("{n}", &n.to_string())
}

/// Commands listed per action in the page and the mails; the rest are in `actions.csv`.
pub const MAX_COMMANDS: usize = 10;
/// Clusters named per action in the page.
pub const MAX_CLUSTERS: usize = 12;

/// A cluster an action concerns, with the page anchor of its detail.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterRef {
    #[serde(skip)]
    pub id: String,
    pub name: String,
    pub anchor: String,
}

/// An owner an action concerns and how many of its findings are theirs.
#[derive(Debug, Clone, Serialize)]
pub struct OwnerCount {
    pub owner: String,
    pub findings: usize,
    /// The owner's row in the page.
    pub anchor: String,
}

/// One kind of fix at one severity.
#[derive(Debug, Clone, Serialize)]
pub struct Action<'a> {
    pub rule: &'static str,
    pub rule_title: &'static str,
    pub severity: Severity,
    /// What to do, with the count: "Migrate 12 clusters ...".
    pub title: String,
    pub findings: usize,
    pub clusters: usize,
    /// Most findings first.
    pub owners: Vec<OwnerCount>,
    /// The first [`MAX_CLUSTERS`] clusters, in finding order.
    pub cluster_refs: Vec<ClusterRef>,
    /// The first [`MAX_COMMANDS`] findings' commands, one finding's per block.
    pub commands: Vec<&'a str>,
    /// Findings whose commands are not in `commands`.
    pub more_commands: usize,
    #[serde(skip)]
    pub items: Vec<&'a Finding>,
}

/// The page anchor of a cluster's detail: stable across runs (a hash of the
/// lower-cased resource id), safe in an `id` and a URL fragment.
pub fn anchor(cluster_id: &str) -> String {
    anchor_of("c", cluster_id)
}

/// `<prefix>-<hash of the lower-cased key>`: `s-` for a subscription's row, `o-` for
/// an owner's.
pub fn anchor_of(prefix: &str, key: &str) -> String {
    // FNV-1a, 64 bit: fixed by definition, unlike std's hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b.to_ascii_lowercase());
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{prefix}-{h:016x}")
}

/// The unsuppressed findings grouped by fix, most severe first; within a severity the
/// fix with most findings first, then by rule id.
pub(crate) fn top_actions<'a>(r: &'a Report, look: &Lookup<'a>) -> Vec<Action<'a>> {
    let mut groups: BTreeMap<(std::cmp::Reverse<Severity>, RuleId), Vec<&'a Finding>> =
        BTreeMap::new();
    for f in r.findings.iter().filter(|f| f.suppressed.is_none()) {
        groups
            .entry((std::cmp::Reverse(f.severity), f.rule_id))
            .or_default()
            .push(f);
    }
    let mut actions: Vec<Action<'a>> = groups
        .into_iter()
        .map(|((sev, rule), items)| {
            let mut owners: BTreeMap<&str, usize> = BTreeMap::new();
            let mut seen = HashSet::new();
            let mut cluster_refs = Vec::new();
            for f in &items {
                let owner = look
                    .cluster(&f.cluster_id)
                    .map(|c| c.owner.as_str())
                    .unwrap_or_default();
                *owners.entry(owner).or_default() += 1;
                if seen.insert(f.cluster_id.to_ascii_lowercase())
                    && cluster_refs.len() < MAX_CLUSTERS
                {
                    cluster_refs.push(ClusterRef {
                        id: f.cluster_id.clone(),
                        name: f.cluster_name.clone(),
                        anchor: anchor(&f.cluster_id),
                    });
                }
            }
            let mut owners: Vec<OwnerCount> = owners
                .into_iter()
                .map(|(o, n)| OwnerCount {
                    owner: o.to_string(),
                    findings: n,
                    anchor: anchor_of("o", o),
                })
                .collect();
            owners.sort_by(|a, b| b.findings.cmp(&a.findings).then(a.owner.cmp(&b.owner)));
            let commands: Vec<&str> = items
                .iter()
                .map(|f| f.remediation.as_str())
                .filter(|c| !c.is_empty())
                .take(MAX_COMMANDS)
                .collect();
            let with_command = items.iter().filter(|f| !f.remediation.is_empty()).count();
            let info = rule.info();
            Action {
                rule: rule.as_str(),
                rule_title: info.title,
                severity: sev.0,
                title: fix_text(rule, items.len()),
                findings: items.len(),
                clusters: seen.len(),
                owners,
                cluster_refs,
                more_commands: with_command - commands.len(),
                commands,
                items,
            }
        })
        .collect();
    actions.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(b.findings.cmp(&a.findings))
            .then(a.rule.cmp(b.rule))
    });
    actions
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::catalogue::CATALOGUE;

    #[test]
    fn every_rule_has_a_fix_sentence_with_its_count() {
        for rule in CATALOGUE {
            let (_, one, many) = FIX_TEXT
                .iter()
                .find(|(r, _, _)| *r == rule.id)
                .unwrap_or_else(|| panic!("{} has no fix sentence", rule.id.as_str()));
            assert!(
                one.contains("{n}") && many.contains("{n}"),
                "{one} / {many}"
            );
        }
        assert_eq!(
            fix_text(RuleId::ServicePrincipal, 12),
            "Migrate 12 clusters from service principals to managed identity"
        );
        assert_eq!(
            fix_text(RuleId::MissingRole, 1),
            "Grant 1 missing documented role"
        );
    }

    #[test]
    fn anchors_are_stable_case_blind_and_distinct() {
        let a = anchor("/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/a");
        assert_eq!(a, anchor(&a_upper()));
        assert_ne!(a, anchor("/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/b"));
        assert!(a.starts_with("c-") && a.len() == 18);
        assert!(a[2..].chars().all(|c| c.is_ascii_hexdigit()));
    }

    fn a_upper() -> String {
        "/SUBSCRIPTIONS/S/resourcegroups/RG/providers/Microsoft.ContainerService/managedClusters/A"
            .into()
    }
}
