//! `report.html`: a self-contained page (inline CSS, charts as inline SVG, no scripts,
//! no external assets). Every value reaches the page through Tera with autoescape on;
//! the charts are numbers computed here and drawn by the template.
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tera::{Context, Tera};

use super::tables::{self, ChangeCount, GroupRow, Pivot};
use super::trend::{self, RunRecord, Trend};
use crate::history::MigrationStatus;
use crate::rules::catalogue::CATALOGUE;
use crate::rules::suppress::EntryStatus;
use crate::rules::{ClusterRow, ControlPlaneIdentity, Finding, KubeletIdentity, Report, Severity};

const REPORT_TEMPLATE: &str = include_str!("../../templates/report.html");
const EMAIL_TEMPLATE: &str = include_str!("../../templates/email.html");

/// Findings listed per rule in the page; the rest are in `findings.csv`.
pub const MAX_FINDINGS_PER_RULE: usize = 200;
/// Clusters listed in the page; the rest are in `clusters.csv`.
pub const MAX_CLUSTERS: usize = 2000;
/// New and resolved findings listed each; the counts per rule are complete.
pub const MAX_CHANGES: usize = 100;

/// The template engine with every template, parsed once; names end in `.html`, so
/// Tera autoescapes every value in all of them.
pub(crate) fn engine() -> anyhow::Result<&'static Tera> {
    static ENGINE: std::sync::OnceLock<Result<Tera, String>> = std::sync::OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let mut t = Tera::default();
            t.autoescape_on(vec![".html"]);
            t.set_escape_fn(escape_text);
            t.add_raw_templates(vec![
                ("report.html", REPORT_TEMPLATE),
                ("email.html", EMAIL_TEMPLATE),
            ])
            .map_err(|e| format!("{e:?}"))?;
            Ok(t)
        })
        .as_ref()
        .map_err(|e| anyhow::anyhow!("templates: {e}"))
}

/// Tera's autoescape: HTML-escaped, and control characters other than line breaks and
/// tabs (NUL, ESC, C1 ...) and bidirectional overrides shown as `\u{..}` text, so no
/// value carries them into the page (or a terminal that prints it).
pub(crate) fn escape_text(s: &str) -> String {
    tera::escape_html(&crate::logfmt::escape_except(s, &['\n', '\r', '\t']))
}

/// `s` as a link target if it is an `https:` URL with a host and nothing a browser would
/// strip or reinterpret (no whitespace or control characters); `None` otherwise, and the
/// page shows it as plain text. A custom baseline's `source` is not trusted to be a link
/// (`javascript:`, `data:` ...).
pub fn https_link(s: &str) -> Option<&str> {
    if s.len() < "https://".len()
        || !s[.."https://".len()].eq_ignore_ascii_case("https://")
        || s.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return None;
    }
    let u = url::Url::parse(s).ok()?;
    (u.scheme() == "https" && u.host_str().is_some_and(|h| !h.is_empty())).then_some(s)
}

pub(crate) fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

#[derive(Serialize)]
struct RuleView<'a> {
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

/// One coloured part of a 100-wide stacked bar.
#[derive(Serialize)]
struct Segment {
    label: String,
    n: usize,
    class: &'static str,
    x: f64,
    w: f64,
    percent: f64,
}

#[derive(Serialize)]
struct StackedBar {
    title: &'static str,
    segments: Vec<Segment>,
}

/// A value shown as a part of a stacked bar: its label and colour class.
trait BarPart: Copy + Ord {
    fn label(self) -> &'static str;
    fn class(self) -> &'static str;
}

impl BarPart for ControlPlaneIdentity {
    fn label(self) -> &'static str {
        match self {
            ControlPlaneIdentity::ServicePrincipal => "service principal",
            ControlPlaneIdentity::SystemAssigned => "system-assigned",
            ControlPlaneIdentity::UserAssigned => "user-assigned",
        }
    }

    fn class(self) -> &'static str {
        match self {
            ControlPlaneIdentity::ServicePrincipal => "c-bad",
            ControlPlaneIdentity::SystemAssigned => "c-ok",
            ControlPlaneIdentity::UserAssigned => "c-ok2",
        }
    }
}

impl BarPart for KubeletIdentity {
    fn label(self) -> &'static str {
        match self {
            KubeletIdentity::ServicePrincipal => "service principal",
            KubeletIdentity::AksManaged => "AKS-managed",
            KubeletIdentity::UserAssigned => "user-assigned",
            KubeletIdentity::Missing => "missing",
        }
    }

    fn class(self) -> &'static str {
        match self {
            KubeletIdentity::ServicePrincipal => "c-bad",
            KubeletIdentity::AksManaged => "c-ok",
            KubeletIdentity::UserAssigned => "c-ok2",
            KubeletIdentity::Missing => "c-unknown",
        }
    }
}

impl BarPart for MigrationStatus {
    fn label(self) -> &'static str {
        match self {
            MigrationStatus::NotMigrated => "not migrated (on SP)",
            MigrationStatus::NoneObserved => "no migration seen",
            MigrationStatus::Pending => "kubelet pending",
            MigrationStatus::Complete => "complete",
            MigrationStatus::Unknown => "unknown",
        }
    }

    fn class(self) -> &'static str {
        match self {
            MigrationStatus::NotMigrated => "c-bad",
            MigrationStatus::Pending => "c-warn",
            MigrationStatus::Unknown => "c-unknown",
            MigrationStatus::Complete | MigrationStatus::NoneObserved => "c-ok",
        }
    }
}

/// A bar of `counts`, its parts in the order of `order`.
fn stacked<K: BarPart>(
    title: &'static str,
    counts: &std::collections::BTreeMap<K, usize>,
    order: &[K],
) -> StackedBar {
    let total: usize = counts.values().sum();
    let mut keys: Vec<K> = counts.keys().copied().collect();
    keys.sort_by_key(|k| order.iter().position(|o| o == k).unwrap_or(order.len()));
    let mut x = 0.0;
    let segments = keys
        .into_iter()
        .filter(|k| counts[k] > 0)
        .map(|k| {
            let n = counts[&k];
            let w = if total == 0 {
                0.0
            } else {
                n as f64 * 100.0 / total as f64
            };
            let s = Segment {
                label: k.label().to_string(),
                n,
                class: k.class(),
                x: round2(x),
                w: round2(w),
                percent: (w * 10.0).round() / 10.0,
            };
            x += w;
            s
        })
        .collect();
    StackedBar { title, segments }
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// A subscription's compliance bar: managed, pending, on SP, as percentages.
#[derive(Serialize)]
struct SubBar {
    g: GroupRow,
    managed_pct: f64,
    pending_pct: f64,
    sp_pct: f64,
}

fn sub_bar(g: GroupRow) -> SubBar {
    let pct = |n: i64| round2(n as f64 * 100.0 / g.clusters.max(1) as f64);
    SubBar {
        managed_pct: pct(g.managed),
        pending_pct: pct(g.pending_clusters),
        sp_pct: pct(g.on_sp),
        g,
    }
}

/// Trend chart geometry, in the SVG's 360×170 user units.
const W: f64 = 360.0;
const H: f64 = 170.0;
const LEFT: f64 = 30.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 146.0;

#[derive(Serialize)]
struct Line {
    label: &'static str,
    class: &'static str,
    points: String,
    dots: Vec<(f64, f64)>,
    first: i64,
    last: i64,
}

#[derive(Serialize)]
struct Tick {
    y: f64,
    label: i64,
}

#[derive(Serialize)]
struct XLabel {
    x: f64,
    label: String,
    anchor: &'static str,
}

#[derive(Serialize)]
struct Rect {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
    class: &'static str,
}

#[derive(Serialize)]
struct TrendView {
    granularity: &'static str,
    n: usize,
    since: String,
    lines: Vec<Line>,
    line_ticks: Vec<Tick>,
    bars: Vec<Rect>,
    bar_ticks: Vec<Tick>,
    x_labels: Vec<XLabel>,
    /// Findings (all severities) at the first and last point.
    findings_first: i64,
    findings_last: i64,
    width: f64,
    height: f64,
    left: f64,
    right: f64,
    bottom: f64,
}

/// The smallest step of 1, 2, 5 × 10^k with 4 steps covering `max`.
fn step_for(max: i64) -> i64 {
    let mut step = 1;
    loop {
        for m in [1, 2, 5] {
            if 4 * step * m >= max {
                return step * m;
            }
        }
        step *= 10;
    }
}

fn ticks(step: i64) -> Vec<Tick> {
    let ymax = (4 * step) as f64;
    (0..=4)
        .map(|i| Tick {
            y: round2(BOTTOM - (i * step) as f64 / ymax * (BOTTOM - TOP)),
            label: i * step,
        })
        .collect()
}

fn trend_view(t: &Trend) -> TrendView {
    let n = t.points.len().max(1);
    let slot = (W - LEFT - RIGHT) / n as f64;
    let cx = |i: usize| round2(LEFT + slot * (i as f64 + 0.5));
    type Series = (&'static str, &'static str, fn(&RunRecord) -> i64);
    let series: [Series; 3] = [
        ("clusters on service principal", "l-sp", |r| r.on_sp),
        ("clusters with kubelet pending", "l-pending", |r| {
            r.pending_clusters
        }),
        ("node pools pending re-image", "l-pools", |r| {
            r.pending_pools
        }),
    ];
    let line_max = t
        .points
        .iter()
        .flat_map(|p| series.iter().map(move |s| (s.2)(p)))
        .max()
        .unwrap_or(0);
    let line_step = step_for(line_max.max(1));
    let y = |v: i64, step: i64| round2(BOTTOM - v as f64 / (4 * step) as f64 * (BOTTOM - TOP));
    let lines = series
        .iter()
        .map(|(label, class, f)| {
            let dots: Vec<(f64, f64)> = t
                .points
                .iter()
                .enumerate()
                .map(|(i, p)| (cx(i), y(f(p), line_step)))
                .collect();
            Line {
                label,
                class,
                points: dots
                    .iter()
                    .map(|(x, y)| format!("{x},{y}"))
                    .collect::<Vec<_>>()
                    .join(" "),
                dots,
                first: t.points.first().map(f).unwrap_or(0),
                last: t.points.last().map(f).unwrap_or(0),
            }
        })
        .collect();
    let bar_max = t.points.iter().map(RunRecord::findings).max().unwrap_or(0);
    let bar_step = step_for(bar_max.max(1));
    let bw = round2((slot * 0.7).clamp(1.0, 24.0));
    let mut bars = Vec::new();
    for (i, p) in t.points.iter().enumerate() {
        let mut base = 0;
        for (v, class) in [
            (p.critical, "s-critical"),
            (p.high, "s-high"),
            (p.medium, "s-medium"),
            (p.low, "s-low"),
            (p.info, "s-info"),
        ] {
            if v == 0 {
                continue;
            }
            let top = y(base + v, bar_step);
            bars.push(Rect {
                x: round2(cx(i) - bw / 2.0),
                y: top,
                w: bw,
                h: round2(y(base, bar_step) - top),
                class,
            });
            base += v;
        }
    }
    let fmt = |r: &RunRecord| r.run_at.format("%b %d").to_string();
    let mut x_labels = Vec::new();
    if let Some(first) = t.points.first() {
        x_labels.push(XLabel {
            x: LEFT,
            label: fmt(first),
            anchor: "start",
        });
    }
    if t.points.len() >= 5 {
        let mid = t.points.len() / 2;
        x_labels.push(XLabel {
            x: cx(mid),
            label: fmt(&t.points[mid]),
            anchor: "middle",
        });
    }
    if t.points.len() >= 2 {
        x_labels.push(XLabel {
            x: W - RIGHT,
            label: fmt(t.points.last().unwrap()),
            anchor: "end",
        });
    }
    TrendView {
        granularity: t.granularity,
        n: t.points.len(),
        since: t
            .points
            .first()
            .map(|r| r.run_at.format("%Y-%m-%d").to_string())
            .unwrap_or_default(),
        lines,
        line_ticks: ticks(line_step),
        bars,
        bar_ticks: ticks(bar_step),
        x_labels,
        findings_first: t.points.first().map(RunRecord::findings).unwrap_or(0),
        findings_last: t.points.last().map(RunRecord::findings).unwrap_or(0),
        width: W,
        height: H,
        left: LEFT,
        right: W - RIGHT,
        bottom: BOTTOM,
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
    pub fn new(r: &'a Report) -> Self {
        Lookup {
            by_id: r
                .clusters
                .iter()
                .map(|c| (c.cluster_id.to_ascii_lowercase(), c))
                .collect(),
        }
    }

    pub fn cluster(&self, id: &str) -> Option<&'a ClusterRow> {
        self.by_id.get(&id.to_ascii_lowercase()).copied()
    }

    pub fn view(&self, f: &'a Finding) -> FindingView<'a> {
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
struct RuleGroup<'a> {
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
struct Resolved {
    rule: String,
    title: String,
    cluster: String,
    identity: String,
    subject: String,
}

fn resolved(fp: &str, look: &Lookup) -> Resolved {
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
struct Changes<'a> {
    has_previous: bool,
    new_count: usize,
    resolved_count: usize,
    new: Vec<FindingView<'a>>,
    resolved: Vec<Resolved>,
    by_rule: Vec<ChangeCount>,
}

#[derive(Serialize)]
struct SuppressionsView<'a> {
    findings: Vec<FindingView<'a>>,
    entries: &'a [EntryStatus],
    active: usize,
    expired: usize,
    stale: usize,
}

#[derive(Serialize)]
struct View<'a> {
    generated: String,
    headline: Headline,
    modes: Vec<StackedBar>,
    pivot: Pivot,
    subscriptions: Vec<SubBar>,
    owners: Vec<GroupRow>,
    trend: TrendView,
    changes: Changes<'a>,
    clusters: Vec<&'a ClusterRow>,
    clusters_more: usize,
    groups: Vec<RuleGroup<'a>>,
    suppressions: SuppressionsView<'a>,
    rules: Vec<RuleView<'a>>,
    max_per_rule: usize,
}

fn severity_rank(s: Option<Severity>) -> i32 {
    s.map(|s| s as i32 + 1).unwrap_or(0)
}

/// The run history including this run: `runs` if it already ends with it.
fn with_this_run(report: &Report, runs: &[RunRecord]) -> Vec<RunRecord> {
    let this = RunRecord::of(report);
    let mut out: Vec<RunRecord> = runs
        .iter()
        .filter(|r| r.run_at < this.run_at)
        .cloned()
        .collect();
    out.push(this);
    out
}

fn view<'a>(r: &'a Report, runs: &[RunRecord]) -> anyhow::Result<View<'a>> {
    let look = Lookup::new(r);
    let s = &r.summary;
    let modes = vec![
        stacked(
            "Control plane",
            &s.control_plane,
            &[
                ControlPlaneIdentity::ServicePrincipal,
                ControlPlaneIdentity::SystemAssigned,
                ControlPlaneIdentity::UserAssigned,
            ],
        ),
        stacked(
            "Kubelet identity (as ARM reports it)",
            &s.kubelet,
            &[
                KubeletIdentity::ServicePrincipal,
                KubeletIdentity::Missing,
                KubeletIdentity::AksManaged,
                KubeletIdentity::UserAssigned,
            ],
        ),
        stacked(
            "Kubelet migration",
            &s.migration,
            &[
                MigrationStatus::NotMigrated,
                MigrationStatus::Pending,
                MigrationStatus::Unknown,
                MigrationStatus::Complete,
                MigrationStatus::NoneObserved,
            ],
        ),
    ];
    let trend = trend::trend(&with_this_run(r, runs))?;

    let by_fp: HashMap<String, &Finding> =
        r.findings.iter().map(|f| (f.fingerprint(), f)).collect();
    let changes = Changes {
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
            .map(|fp| resolved(fp, &look))
            .collect(),
        by_rule: tables::changes_by_rule(r)?,
    };

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
    let clusters_more = clusters.len().saturating_sub(MAX_CLUSTERS);
    clusters.truncate(MAX_CLUSTERS);

    let groups = CATALOGUE
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
        .collect();

    let entries = &r.suppressions.entries;
    let count = |st: &str| entries.iter().filter(|e| e.status == st).count();
    let suppressions = SuppressionsView {
        findings: r
            .findings
            .iter()
            .filter(|f| f.suppressed.is_some())
            .map(|f| look.view(f))
            .collect(),
        entries,
        active: count("active"),
        expired: count("expired"),
        stale: count("stale"),
    };

    Ok(View {
        generated: when(r.generated_at),
        headline: headline(r),
        modes,
        pivot: tables::identity_modes(r)?,
        subscriptions: tables::by_subscription(r)?
            .into_iter()
            .map(sub_bar)
            .collect(),
        owners: tables::by_owner(r)?,
        trend: trend_view(&trend),
        changes,
        clusters,
        clusters_more,
        groups,
        suppressions,
        rules: CATALOGUE
            .iter()
            .map(|r| RuleView {
                id: r.id.as_str(),
                title: r.title,
                severity: r.severity.as_str(),
                rationale: r.rationale,
                source: r.source,
            })
            .collect(),
        max_per_rule: MAX_FINDINGS_PER_RULE,
    })
}

/// The report page; the trend shows this run only.
pub fn render(report: &Report) -> anyhow::Result<String> {
    render_with_runs(report, &[])
}

/// The report page with the trend over `runs` (oldest first; this run is added).
pub fn render_with_runs(report: &Report, runs: &[RunRecord]) -> anyhow::Result<String> {
    let mut ctx = Context::new();
    // Only what the page shows: the whole report would be serialized twice.
    ctx.insert("tool", &report.tool);
    ctx.insert("tool_version", &report.tool_version);
    ctx.insert("source", &report.source);
    ctx.insert("baseline", &report.baseline);
    ctx.insert("baseline_link", &https_link(&report.baseline.source));
    ctx.insert("coverage", &report.coverage);
    ctx.insert("v", &view(report, runs)?);
    engine()?
        .render("report.html", &ctx)
        .map_err(|e| anyhow::anyhow!("rendering report.html: {e:?}"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::rules::suppress::Applied;
    use crate::rules::RuleId;

    pub(crate) fn tiny() -> Report {
        let mut r: Report =
            serde_json::from_str(include_str!("testdata/tiny-report.json")).unwrap();
        let finding = |cluster: usize, sev: Severity, suppressed: Option<Applied>| {
            Finding {
            cluster_id: r.clusters[cluster].cluster_id.clone(),
            cluster_name: r.clusters[cluster].cluster_name.clone(),
            subscription_id: r.clusters[cluster].subscription_id.clone(),
            rule_id: RuleId::ServicePrincipal,
            severity: sev,
            identity: crate::rules::IdentityKey::ControlPlane,
            message: format!("cluster {cluster} uses a service principal"),
            remediation: format!("az aks update --name c{cluster} --enable-managed-identity\naz aks nodepool upgrade --node-image-only"),
            subject: String::new(),
            suppressed,
        }
        };
        let accepted = Applied {
            justification: "retired in May".into(),
            owner: "ciso@example.com".into(),
            expires: "2026-05-31".parse().unwrap(),
        };
        r.findings = vec![
            finding(0, Severity::High, None),
            finding(2, Severity::High, Some(accepted)),
        ];
        r.clusters[0].findings = 1;
        r.clusters[0].worst_severity = Some(Severity::High);
        r
    }

    #[test]
    fn steps_are_round_and_cover_the_maximum() {
        for (max, step) in [
            (1, 1),
            (4, 1),
            (5, 2),
            (8, 2),
            (9, 5),
            (20, 5),
            (21, 10),
            (1994, 500),
            (4379, 2000),
        ] {
            assert_eq!(step_for(max), step, "max {max}");
        }
    }

    #[test]
    fn the_page_has_every_section_and_no_script() {
        let r = tiny();
        let page = render(&r).unwrap();
        for id in [
            "summary",
            "trend",
            "changes",
            "subscriptions",
            "findings",
            "clusters",
            "suppressions",
            "coverage",
            "about",
        ] {
            assert!(
                page.contains(&format!("<section id=\"{id}\">")),
                "section {id}"
            );
        }
        assert!(
            !page.contains("<script") && !page.contains("<img") && !page.contains("<link"),
            "self-contained"
        );
        assert!(
            !page.contains("src=") && !page.contains("url("),
            "no external resources"
        );
        assert!(page.contains("<pre>az aks update --name c0 --enable-managed-identity\naz aks nodepool upgrade --node-image-only</pre>"));
        assert!(
            page.contains("retired in May")
                && page.contains("ciso@example.com")
                && page.contains("2026-05-31")
        );
        assert!(page.contains("Only this run so far"));
        // Tera escapes `/` too; the browser reads `&#x2F;` in an attribute as `/`.
        assert!(
            page.contains(&r.baseline.source.replace('/', "&#x2F;")) && page.contains("2021-09-01")
        );
        // The suppressed finding is not listed among the active ones.
        let findings =
            &page[page.find("id=\"findings\"").unwrap()..page.find("id=\"clusters\"").unwrap()];
        assert!(findings.contains("c0 --enable") && !findings.contains("c2 --enable"));
        assert!(findings.contains("(1, 1 suppressed)"));
    }

    #[test]
    fn trend_adds_this_run_and_draws_one_point_per_run() {
        let r = tiny();
        let earlier: Vec<RunRecord> = (1..=3)
            .map(|w| RunRecord {
                run_at: r.generated_at - chrono::Duration::weeks(w),
                on_sp: 3 + w,
                ..RunRecord::of(&r)
            })
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let runs = with_this_run(&r, &earlier);
        assert_eq!(runs.len(), 4);
        assert_eq!(runs.last().unwrap(), &RunRecord::of(&r));
        assert_eq!(
            with_this_run(&r, &runs).len(),
            4,
            "a table ending with this run is used as is"
        );
        let v = trend_view(&trend::trend(&runs).unwrap());
        let sp = &v.lines[0];
        assert_eq!((sp.first, sp.last, sp.dots.len()), (6, 1, 4));
        assert!(
            sp.dots
                .windows(2)
                .all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1),
            "falling line, left to right"
        );
        let page = render_with_runs(&r, &earlier).unwrap();
        assert!(page.contains("(4 runs)") && page.contains("<polyline"));
        let one = trend_view(&trend::trend(&runs[3..]).unwrap());
        assert!(
            one.bars.iter().all(|b| b.w <= 24.0),
            "a lone run is a column, not a wall"
        );
    }

    #[test]
    fn only_an_https_baseline_source_becomes_a_link() {
        for bad in [
            "javascript:alert(document.cookie)",
            " JavaScript:alert(1)",
            "java\tscript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "http://learn.microsoft.com/azure/aks",
            "vbscript:msgbox(1)",
            "//evil.example/x",
            "https:alert(1)",
            "https://\u{1b}[31m.example",
        ] {
            assert_eq!(https_link(bad), None, "{bad:?}");
        }
        assert_eq!(
            https_link("https://learn.microsoft.com/azure/aks/x?y=1#z"),
            Some("https://learn.microsoft.com/azure/aks/x?y=1#z")
        );

        let mut r = tiny();
        r.baseline.source = "javascript:alert(document.cookie)//\"><b>x</b>".into();
        let page = render(&r).unwrap();
        assert!(
            !page.to_ascii_lowercase().contains("href=\"javascript"),
            "link"
        );
        assert!(!page.contains("<b>x</b>"), "escaped");
        assert!(
            page.contains("<span class=\"id\">javascript:alert(document.cookie)"),
            "shown as text"
        );
        let mail = crate::report::render_email(&r, &[r.clusters[0].cluster_id.as_str()]).unwrap();
        assert!(
            !mail.to_ascii_lowercase().contains("href=\"javascript"),
            "{mail}"
        );
        assert!(mail.contains("against baseline aks-docs-2021 ("), "{mail}");

        r.baseline.source = "https://learn.microsoft.com/azure/aks".into();
        let page = render(&r).unwrap();
        assert!(page.contains("<a href=\"https:&#x2F;&#x2F;learn.microsoft.com&#x2F;azure&#x2F;aks\">aks-docs-2021</a>"));
        let mail = crate::report::render_email(&r, &[r.clusters[0].cluster_id.as_str()]).unwrap();
        assert!(
            mail.contains("href=\"https:&#x2F;&#x2F;learn.microsoft.com"),
            "{mail}"
        );
    }

    #[test]
    fn control_characters_never_reach_the_page_or_the_mail() {
        let mut r = tiny();
        r.clusters[0].cluster_name = "evil\0nul\u{1b}[31mred\u{9b}2J\u{85}\u{202e}".into();
        r.clusters[0].owner = "o\u{7}wner".into();
        let page = render(&r).unwrap();
        let mail = crate::report::render_email(&r, &[r.clusters[0].cluster_id.as_str()]).unwrap();
        for (what, text) in [("page", &page), ("mail", &mail)] {
            for c in ['\0', '\u{1b}', '\u{9b}', '\u{85}', '\u{7}', '\u{202e}'] {
                assert!(!text.contains(c), "{what}: {c:?}");
            }
            assert!(
                text.contains("evil\\0nul\\u{1b}[31mred\\u{9b}2J\\u{85}\\u{202e}"),
                "{what} shows the name as text"
            );
        }
    }
}
