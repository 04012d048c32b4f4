//! The page's and the mail's view-model parts: the headline, findings with their
//! cluster's context, rule groups, changes and suppressions.
use std::collections::{HashMap, HashSet};

use serde::Serialize;

use super::super::tables::{self, ChangeCount};
use super::super::trend::RunRecord;
use super::{MAX_CHANGES, MAX_FINDINGS_PER_RULE};
use crate::rules::catalogue::CATALOGUE;
use crate::rules::suppress::{EntryState, EntryStatus};
use crate::rules::{
    ClusterRow, ControlPlaneIdentity, Finding, IdentityKey, Report, RoleCheck, RoleCheckStatus,
    Severity,
};

#[derive(Serialize)]
pub(super) struct RuleView<'a> {
    id: &'a str,
    title: &'a str,
    severity: &'a str,
    rationale: &'a str,
    source: &'a str,
}

#[derive(Serialize)]
pub(crate) struct Headline {
    pub clusters: usize,
    pub subscriptions: usize,
    pub managed_percent: f64,
    pub on_sp: usize,
    pub kubelet_on_sp: usize,
    pub pending_pools: usize,
    /// (severity, count), most severe first.
    pub severities: Vec<(&'static str, usize)>,
    pub findings: usize,
    pub suppressed: usize,
    pub gaps: usize,
    /// (family, clusters) whose checks of that family were not evaluated.
    pub not_evaluated: Vec<(String, usize)>,
    /// Clusters with at least one family not evaluated.
    pub not_evaluated_clusters: usize,
    /// Clusters with every check evaluated and no unsuppressed finding at or above
    /// medium: apart from "on managed identity", which counts only the mode.
    pub compliant: usize,
    pub compliant_percent: f64,
}

fn percent(n: usize, of: usize) -> f64 {
    if of == 0 {
        0.0
    } else {
        (n as f64 * 1000.0 / of as f64).round() / 10.0
    }
}

pub(crate) fn headline(r: &Report) -> Headline {
    let s = &r.summary;
    let severities: Vec<(&'static str, usize)> = Severity::ALL
        .iter()
        .map(|v| (v.as_str(), s.findings.get(*v)))
        .collect();
    // From the summary: tenant-wide, also in an owner's narrowed report.
    let compliant = s.compliant;
    Headline {
        clusters: s.clusters,
        subscriptions: s.subscriptions,
        managed_percent: s.managed_identity_percent,
        on_sp: s
            .control_plane
            .get(&ControlPlaneIdentity::ServicePrincipal)
            .copied()
            .unwrap_or(0),
        kubelet_on_sp: s.kubelet_on_sp,
        pending_pools: s.pools_pending_upgrade,
        findings: severities.iter().map(|(_, n)| n).sum(),
        severities,
        suppressed: s.suppressed,
        gaps: s.gaps + s.skipped_rows,
        not_evaluated: s
            .not_evaluated
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), *v))
            .collect(),
        not_evaluated_clusters: r
            .clusters
            .iter()
            .filter(|c| !c.checks.all_evaluated())
            .count(),
        compliant,
        compliant_percent: percent(compliant, s.clusters),
    }
}

/// A finding with the cluster context the page shows beside it.
#[derive(Serialize)]
pub(crate) struct FindingView<'a> {
    pub f: &'a Finding,
    pub subscription: &'a str,
    pub resource_group: &'a str,
    pub owner: &'a str,
    /// The cluster's anchor in the page, when its row is there.
    pub anchor: Option<String>,
}

pub(crate) struct Lookup<'a> {
    by_id: HashMap<String, &'a ClusterRow>,
    /// Lower-cased ids of the clusters whose rows the page shows; `None`: all.
    shown: Option<std::collections::HashSet<String>>,
}

impl<'a> Lookup<'a> {
    pub(crate) fn new(r: &'a Report) -> Self {
        Lookup {
            by_id: r
                .clusters
                .iter()
                .map(|c| (c.cluster_id.to_ascii_lowercase(), c))
                .collect(),
            shown: None,
        }
    }

    /// Only these clusters (lower-cased ids) have a row to link to.
    pub(crate) fn showing(mut self, ids: std::collections::HashSet<String>) -> Self {
        self.shown = Some(ids);
        self
    }

    /// The anchor of the cluster's row, when the page has one.
    pub(crate) fn anchor(&self, id: &str) -> Option<String> {
        let shown = match &self.shown {
            Some(s) => s.contains(&id.to_ascii_lowercase()),
            None => self.cluster(id).is_some(),
        };
        shown.then(|| super::super::actions::anchor(id))
    }

    pub(crate) fn cluster(&self, id: &str) -> Option<&'a ClusterRow> {
        self.by_id.get(&id.to_ascii_lowercase()).copied()
    }

    pub(crate) fn view(&self, f: &'a Finding) -> FindingView<'a> {
        let c = self.cluster(&f.cluster_id);
        FindingView {
            f,
            subscription: c
                .map(|c| c.subscription_name.as_str())
                .filter(|s| !s.is_empty())
                .unwrap_or(&f.subscription_id),
            resource_group: c.map(|c| c.resource_group.as_str()).unwrap_or_default(),
            owner: c.map(|c| c.owner.as_str()).unwrap_or_default(),
            anchor: self.anchor(&f.cluster_id),
        }
    }
}

#[derive(Serialize)]
pub(super) struct RuleGroup<'a> {
    id: &'a str,
    title: &'a str,
    severity: &'a str,
    rationale: &'a str,
    source: &'a str,
    count: usize,
    suppressed: usize,
    findings: Vec<FindingView<'a>>,
    more: usize,
    #[serde(skip)]
    worst: Severity,
}

/// A resolved finding, from its fingerprint `rule|cluster id|identity|subject`.
#[derive(Serialize)]
pub(super) struct Resolved {
    rule: String,
    title: String,
    cluster: String,
    identity: String,
    subject: String,
}

pub(super) fn resolved(fp: &str, look: &Lookup) -> Resolved {
    let mut parts = fp.splitn(4, '|');
    let rule = parts.next().unwrap_or_default().to_string();
    let cluster_id = parts.next().unwrap_or_default();
    let cluster = look
        .cluster(cluster_id)
        .map(|c| c.cluster_name.clone())
        .unwrap_or_else(|| {
            cluster_id
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_string()
        });
    let title = rule
        .parse::<crate::rules::RuleId>()
        .map(|r| r.info().title.to_string())
        .unwrap_or_default();
    Resolved {
        rule,
        title,
        cluster,
        identity: parts.next().unwrap_or_default().to_string(),
        subject: parts.next().unwrap_or_default().to_string(),
    }
}

#[derive(Serialize)]
pub(super) struct Changes<'a> {
    has_previous: bool,
    new_count: usize,
    resolved_count: usize,
    new: Vec<FindingView<'a>>,
    resolved: Vec<Resolved>,
    by_rule: Vec<ChangeCount>,
}

#[derive(Serialize)]
pub(super) struct SuppressionsView<'a> {
    findings: Vec<FindingView<'a>>,
    entries: &'a [EntryStatus],
    active: usize,
    expired: usize,
    stale: usize,
}

fn severity_rank(s: Option<Severity>) -> i32 {
    s.map(|s| s as i32 + 1).unwrap_or(0)
}

/// The run history including this run: `runs` if it already ends with it.
pub(super) fn with_this_run(report: &Report, runs: &[RunRecord]) -> Vec<RunRecord> {
    let this = RunRecord::of(report);
    let mut out: Vec<RunRecord> = runs
        .iter()
        .filter(|r| r.run_at < this.run_at)
        .cloned()
        .collect();
    out.push(this);
    out
}

/// Every rule of the catalogue, for the page's "what was checked".
pub(super) fn rules() -> Vec<RuleView<'static>> {
    CATALOGUE
        .iter()
        .map(|r| RuleView {
            id: r.id.as_str(),
            title: r.title,
            severity: r.severity.as_str(),
            rationale: r.rationale,
            source: r.source,
        })
        .collect()
}

/// New and resolved findings since the last run, the first [`MAX_CHANGES`] of each.
pub(super) fn changes<'a>(r: &'a Report, look: &Lookup<'a>) -> anyhow::Result<Changes<'a>> {
    // The new findings by fingerprint: the new ones' own strings are the keys, not a
    // fingerprint of every finding (a large estate has hundreds of thousands).
    let mut by_fp: HashMap<&str, &Finding> = HashMap::new();
    if !r.changes.new.is_empty() {
        let new: HashSet<&str> = r.changes.new.iter().map(String::as_str).collect();
        for f in &r.findings {
            if let Some(fp) = new.get(f.fingerprint().as_str()) {
                by_fp.insert(*fp, f);
            }
        }
    }
    Ok(Changes {
        has_previous: r.changes.has_previous,
        new_count: r.changes.new.len(),
        resolved_count: r.changes.resolved.len(),
        new: r
            .changes
            .new
            .iter()
            .filter_map(|fp| by_fp.get(fp.as_str()))
            .take(MAX_CHANGES)
            .map(|f| look.view(f))
            .collect(),
        resolved: r
            .changes
            .resolved
            .iter()
            .take(MAX_CHANGES)
            .map(|fp| resolved(fp, look))
            .collect(),
        by_rule: tables::changes_by_rule(r)?,
    })
}

/// A cluster row of the page, with its anchor; the detail (identities, grants against
/// the baseline, migration timeline, findings) only for a cluster with unsuppressed
/// findings, to keep a large estate's page small.
#[derive(Serialize)]
pub(super) struct ClusterView<'a> {
    pub c: &'a ClusterRow,
    pub anchor: String,
    pub sub_anchor: String,
    pub owner_anchor: String,
    pub compliant: bool,
    pub detail: Option<ClusterDetail<'a>>,
}

/// Role checks of one cluster by status, the documented ones held first.
#[derive(Serialize, Default)]
pub(super) struct Grants<'a> {
    held: usize,
    missing: usize,
    /// Excess, too wide and not documented.
    excess: usize,
    /// What is not as documented (missing, excess, too wide, not documented).
    off: Vec<&'a RoleCheck>,
}

#[derive(Serialize)]
pub(super) struct IdentityView<'a> {
    identity: &'a IdentityKey,
    principal_id: &'a str,
}

#[derive(Serialize)]
pub(super) struct ClusterDetail<'a> {
    identities: Vec<IdentityView<'a>>,
    grants: Grants<'a>,
    first_seen: Option<String>,
    last_seen_as_sp: Option<String>,
    migration_observed: Option<String>,
    findings: Vec<&'a Finding>,
}

/// Role checks and unsuppressed findings of the clusters shown, per lower-cased
/// cluster id.
struct PerCluster<'a> {
    checks: HashMap<String, Vec<&'a RoleCheck>>,
    findings: HashMap<String, Vec<&'a Finding>>,
}

impl<'a> PerCluster<'a> {
    /// Only `shown`'s: the page details at most [`super::MAX_CLUSTERS`] clusters, and
    /// gathering every cluster's would hold a large estate's findings twice.
    fn new(r: &'a Report, shown: &[&ClusterRow]) -> Self {
        let ids: Vec<String> = shown
            .iter()
            .map(|c| c.cluster_id.to_ascii_lowercase())
            .collect();
        let mut checks: HashMap<String, Vec<&RoleCheck>> =
            ids.iter().map(|id| (id.clone(), vec![])).collect();
        for c in &r.role_checks {
            if let Some(v) = checks.get_mut(&c.cluster_id.to_ascii_lowercase()) {
                v.push(c);
            }
        }
        let mut findings: HashMap<String, Vec<&Finding>> =
            ids.into_iter().map(|id| (id, vec![])).collect();
        for f in r.findings.iter().filter(|f| f.suppressed.is_none()) {
            if let Some(v) = findings.get_mut(&f.cluster_id.to_ascii_lowercase()) {
                v.push(f);
            }
        }
        PerCluster { checks, findings }
    }

    fn view(&self, c: &'a ClusterRow) -> ClusterView<'a> {
        let id = c.cluster_id.to_ascii_lowercase();
        let mut findings = self.findings.get(&id).cloned().unwrap_or_default();
        findings.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.rule_id.cmp(&b.rule_id)));
        let compliant =
            c.checks.all_evaluated() && !findings.iter().any(|f| f.severity >= Severity::Medium);
        let detail = (!findings.is_empty()).then(|| {
            let checks = self.checks.get(&id).map(Vec::as_slice).unwrap_or_default();
            let mut identities: Vec<IdentityView> = Vec::new();
            let mut grants = Grants::default();
            for k in checks {
                if !identities
                    .iter()
                    .any(|i| *i.identity == k.identity && i.principal_id == &*k.principal_id)
                {
                    identities.push(IdentityView {
                        identity: &k.identity,
                        principal_id: &k.principal_id,
                    });
                }
                match k.status {
                    RoleCheckStatus::Ok => grants.held += 1,
                    RoleCheckStatus::Missing => grants.missing += 1,
                    _ => grants.excess += 1,
                }
                if k.status != RoleCheckStatus::Ok {
                    grants.off.push(k);
                }
            }
            identities.sort_by(|a, b| a.identity.cmp(b.identity));
            ClusterDetail {
                identities,
                grants,
                first_seen: c.first_seen.map(super::when),
                last_seen_as_sp: c.last_seen_as_sp.map(super::when),
                migration_observed: c.migration_observed_at.map(super::when),
                findings,
            }
        });
        ClusterView {
            c,
            anchor: super::super::actions::anchor(&c.cluster_id),
            sub_anchor: super::super::actions::anchor_of("s", &c.subscription_id),
            owner_anchor: super::super::actions::anchor_of("o", &c.owner),
            compliant,
            detail,
        }
    }
}

/// A subscription's or owner's clusters, linked to their rows.
#[derive(Serialize)]
pub(super) struct GroupClusters {
    pub links: Vec<super::super::actions::ClusterRef>,
}

/// Each cluster's link by subscription id and by owner (lower-cased), in page order.
pub(super) fn cluster_links(
    clusters: &[ClusterView],
) -> (
    HashMap<String, GroupClusters>,
    HashMap<String, GroupClusters>,
) {
    let mut by_sub: HashMap<String, GroupClusters> = HashMap::new();
    let mut by_owner: HashMap<String, GroupClusters> = HashMap::new();
    for v in clusters {
        let link = super::super::actions::ClusterRef {
            id: v.c.cluster_id.clone(),
            name: v.c.cluster_name.clone(),
            anchor: v.anchor.clone(),
        };
        by_sub
            .entry(v.c.subscription_id.to_ascii_lowercase())
            .or_insert_with(|| GroupClusters { links: vec![] })
            .links
            .push(link.clone());
        by_owner
            .entry(v.c.owner.to_ascii_lowercase())
            .or_insert_with(|| GroupClusters { links: vec![] })
            .links
            .push(link);
    }
    (by_sub, by_owner)
}

/// The first `max` clusters, the worst findings first, as [`ClusterView`]s, and how
/// many more there are.
pub(super) fn cluster_views<'a>(r: &'a Report, max: usize) -> (Vec<ClusterView<'a>>, usize) {
    let mut all: Vec<&ClusterRow> = r.clusters.iter().collect();
    sort_clusters(&mut all);
    let more = all.len().saturating_sub(max);
    all.truncate(max);
    let per = PerCluster::new(r, &all);
    (all.into_iter().map(|c| per.view(c)).collect(), more)
}

fn sort_clusters(clusters: &mut [&ClusterRow]) {
    clusters.sort_by(|a, b| {
        (
            severity_rank(b.worst_severity),
            b.findings,
            &a.cluster_name,
            &a.cluster_id,
        )
            .cmp(&(
                severity_rank(a.worst_severity),
                a.findings,
                &b.cluster_name,
                &b.cluster_id,
            ))
    });
}

/// The unsuppressed findings of each rule that has some, the first
/// [`MAX_FINDINGS_PER_RULE`] of each; the rules by their worst finding's severity (the
/// severity shown), then by id.
pub(super) fn rule_groups<'a>(r: &'a Report, look: &Lookup<'a>) -> Vec<RuleGroup<'a>> {
    let mut groups: Vec<RuleGroup<'a>> = CATALOGUE
        .iter()
        .filter_map(|rule| {
            let all: Vec<&Finding> = r.findings.iter().filter(|f| f.rule_id == rule.id).collect();
            let active: Vec<&Finding> = all
                .iter()
                .copied()
                .filter(|f| f.suppressed.is_none())
                .collect();
            let worst = active.iter().map(|f| f.severity).max()?;
            Some(RuleGroup {
                id: rule.id.as_str(),
                title: rule.title,
                severity: worst.as_str(),
                worst,
                rationale: rule.rationale,
                source: rule.source,
                count: active.len(),
                suppressed: all.len() - active.len(),
                more: active.len().saturating_sub(MAX_FINDINGS_PER_RULE),
                findings: active
                    .into_iter()
                    .take(MAX_FINDINGS_PER_RULE)
                    .map(|f| look.view(f))
                    .collect(),
            })
        })
        .collect();
    // Stable: CATALOGUE is in id order.
    groups.sort_by_key(|g| std::cmp::Reverse(g.worst));
    groups
}

/// The suppressed findings and the suppression entries with their status.
pub(super) fn suppressions<'a>(r: &'a Report, look: &Lookup<'a>) -> SuppressionsView<'a> {
    let entries = &r.suppressions.entries;
    let count = |st: EntryState| entries.iter().filter(|e| e.status == st).count();
    SuppressionsView {
        findings: r
            .findings
            .iter()
            .filter(|f| f.suppressed.is_some())
            .map(|f| look.view(f))
            .collect(),
        entries,
        active: count(EntryState::Active),
        expired: count(EntryState::Expired),
        stale: count(EntryState::Stale),
    }
}
