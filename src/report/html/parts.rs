//! The page's and the mail's view-model parts: the headline, findings with their
//! cluster's context, rule groups, changes and suppressions.
use std::collections::HashMap;

use serde::Serialize;

use super::super::tables::{self, ChangeCount};
use super::super::trend::RunRecord;
use super::{MAX_CHANGES, MAX_CLUSTERS, MAX_FINDINGS_PER_RULE};
use crate::rules::catalogue::CATALOGUE;
use crate::rules::suppress::{EntryState, EntryStatus};
use crate::rules::{ClusterRow, ControlPlaneIdentity, Finding, Report, Severity};

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
}

pub(crate) fn headline(r: &Report) -> Headline {
    let s = &r.summary;
    let severities: Vec<(&'static str, usize)> = Severity::ALL
        .iter()
        .map(|v| (v.as_str(), s.findings.get(*v)))
        .collect();
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
    }
}

/// A finding with the cluster context the page shows beside it.
#[derive(Serialize)]
pub(crate) struct FindingView<'a> {
    pub f: &'a Finding,
    pub subscription: &'a str,
    pub resource_group: &'a str,
    pub owner: &'a str,
}

pub(crate) struct Lookup<'a> {
    by_id: HashMap<String, &'a ClusterRow>,
}

impl<'a> Lookup<'a> {
    pub(crate) fn new(r: &'a Report) -> Self {
        Lookup {
            by_id: r
                .clusters
                .iter()
                .map(|c| (c.cluster_id.to_ascii_lowercase(), c))
                .collect(),
        }
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
    let by_fp: HashMap<String, &Finding> =
        r.findings.iter().map(|f| (f.fingerprint(), f)).collect();
    Ok(Changes {
        has_previous: r.changes.has_previous,
        new_count: r.changes.new.len(),
        resolved_count: r.changes.resolved.len(),
        new: r
            .changes
            .new
            .iter()
            .filter_map(|fp| by_fp.get(fp))
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

/// The clusters with the worst findings first, the first [`MAX_CLUSTERS`]; and how
/// many more there are.
pub(super) fn clusters(r: &Report) -> (Vec<&ClusterRow>, usize) {
    let mut clusters: Vec<&ClusterRow> = r.clusters.iter().collect();
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
    let more = clusters.len().saturating_sub(MAX_CLUSTERS);
    clusters.truncate(MAX_CLUSTERS);
    (clusters, more)
}

/// The unsuppressed findings of each rule that has some, the first
/// [`MAX_FINDINGS_PER_RULE`] of each.
pub(super) fn rule_groups<'a>(r: &'a Report, look: &Lookup<'a>) -> Vec<RuleGroup<'a>> {
    CATALOGUE
        .iter()
        .filter_map(|rule| {
            let all: Vec<&Finding> = r.findings.iter().filter(|f| f.rule_id == rule.id).collect();
            let active: Vec<&Finding> = all
                .iter()
                .copied()
                .filter(|f| f.suppressed.is_none())
                .collect();
            if active.is_empty() {
                return None;
            }
            Some(RuleGroup {
                id: rule.id.as_str(),
                title: rule.title,
                severity: rule.severity.as_str(),
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
        .collect()
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
