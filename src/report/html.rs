//! `report.html`: a self-contained page (inline CSS, charts as inline SVG, no scripts,
//! no external assets). Every value reaches the page through Tera with autoescape on;
//! the charts are numbers computed here and drawn by the template.
mod charts;
mod parts;
#[cfg(test)]
pub(crate) mod tests;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tera::{Context, Tera};

use super::actions::{self, Action, ClusterRef};
use super::tables::{self, GroupRow, Pivot};
use super::trend::{self, RunRecord};
use crate::i18n::Lang;
use crate::rules::Report;
use charts::{StackedBar, SubBar, TrendView};
pub(crate) use parts::{headline, FindingView, Headline, Lookup};
use parts::{Changes, ClusterView, RuleGroup, RuleView, SuppressionsView};

const REPORT_TEMPLATE: &str = include_str!("../../templates/report.html");
const EMAIL_TEMPLATE: &str = include_str!("../../templates/email.html");
const ADMIN_TEMPLATE: &str = include_str!("../../templates/admin.html");

/// Findings listed per rule in the page (every finding is also in its cluster's detail);
/// the rest are in `findings.csv` and `actions.csv`.
pub const MAX_FINDINGS_PER_RULE: usize = 50;
/// Clusters listed in the page; the rest are in `clusters.csv`.
pub const MAX_CLUSTERS: usize = 2000;
/// New and resolved findings listed each; the counts per rule are complete.
pub const MAX_CHANGES: usize = 100;

/// The template engine of `lang` with every template, parsed once; names end in
/// `.html`, so Tera autoescapes every value in all of them. Each language's engine has
/// its catalogue's `t` function and `t` / `date` filters ([`crate::i18n::register`]).
pub(crate) fn engine(lang: Lang) -> anyhow::Result<&'static Tera> {
    static ENGINES: [std::sync::OnceLock<Result<Tera, String>>; 2] =
        [std::sync::OnceLock::new(), std::sync::OnceLock::new()];
    ENGINES[lang as usize]
        .get_or_init(|| {
            let mut t = Tera::default();
            t.autoescape_on(vec![".html"]);
            t.set_escape_fn(escape_text);
            crate::i18n::register(&mut t, lang);
            t.add_raw_templates(vec![
                ("report.html", REPORT_TEMPLATE),
                ("email.html", EMAIL_TEMPLATE),
                ("admin.html", ADMIN_TEMPLATE),
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

/// Re-exported: the check lives with the baselines whose `source` it vets.
pub use crate::rules::baseline::https_link;

pub(crate) fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// Everything the page shows (`v` in the template), from the parts in [`parts`] and
/// [`charts`].
#[derive(Serialize)]
struct View<'a> {
    generated: String,
    headline: Headline,
    modes: Vec<StackedBar>,
    pivot: Pivot,
    subscriptions: Vec<Linked<SubBar>>,
    owners: Vec<Linked<GroupRow>>,
    trend: TrendView,
    changes: Changes<'a>,
    actions: Vec<Action<'a>>,
    clusters: Vec<ClusterView<'a>>,
    clusters_more: usize,
    /// Clusters with findings, whose detail the page shows.
    detailed: usize,
    groups: Vec<RuleGroup<'a>>,
    suppressions: SuppressionsView<'a>,
    rules: Vec<RuleView<'a>>,
    max_per_rule: usize,
}

/// A subscription's or owner's row with its anchor and its clusters' links.
#[derive(Serialize)]
struct Linked<T> {
    #[serde(flatten)]
    row: T,
    anchor: String,
    links: Vec<ClusterRef>,
}

fn linked<T>(
    row: T,
    prefix: &str,
    key: &str,
    links: &mut std::collections::HashMap<String, parts::GroupClusters>,
) -> Linked<T> {
    Linked {
        row,
        anchor: actions::anchor_of(prefix, key),
        links: links
            .remove(&key.to_ascii_lowercase())
            .map(|g| g.links)
            .unwrap_or_default(),
    }
}

fn view<'a>(r: &'a Report, runs: &[RunRecord]) -> anyhow::Result<View<'a>> {
    let trend = trend::trend(&parts::with_this_run(r, runs))?;
    let (clusters, clusters_more) = parts::cluster_views(r, MAX_CLUSTERS);
    let look = Lookup::new(r).showing(
        clusters
            .iter()
            .map(|v| v.c.cluster_id.to_ascii_lowercase())
            .collect(),
    );
    let (mut by_sub, mut by_owner) = parts::cluster_links(&clusters);
    let mut top = actions::top_actions(r, &look);
    for a in &mut top {
        for c in &mut a.cluster_refs {
            if look.anchor(&c.id).is_none() {
                c.anchor.clear();
            }
        }
    }
    Ok(View {
        generated: when(r.generated_at),
        headline: headline(r),
        modes: charts::modes(&r.summary),
        pivot: tables::identity_modes(r)?,
        subscriptions: tables::by_subscription(r)?
            .into_iter()
            .map(|g| {
                let key = g.key.clone();
                linked(charts::sub_bar(g), "s", &key, &mut by_sub)
            })
            .collect(),
        owners: tables::by_owner(r)?
            .into_iter()
            .map(|g| {
                let key = g.key.clone();
                linked(g, "o", &key, &mut by_owner)
            })
            .collect(),
        trend: charts::trend_view(&trend),
        changes: parts::changes(r, &look)?,
        actions: top,
        detailed: clusters.iter().filter(|c| c.detail.is_some()).count(),
        clusters,
        clusters_more,
        groups: parts::rule_groups(r, &look),
        suppressions: parts::suppressions(r, &look),
        rules: parts::rules(),
        max_per_rule: MAX_FINDINGS_PER_RULE,
    })
}

/// The report page in English; the trend shows this run only.
pub fn render(report: &Report) -> anyhow::Result<String> {
    render_with_runs(report, &[], Lang::En)
}

/// The report page in `lang` with the trend over `runs` (oldest first; this run is
/// added).
pub fn render_with_runs(report: &Report, runs: &[RunRecord], lang: Lang) -> anyhow::Result<String> {
    let mut ctx = Context::new();
    ctx.insert("lang", lang.as_str());
    // Only what the page shows: the whole report would be serialized twice.
    ctx.insert("tool", &report.tool);
    ctx.insert("tool_version", &report.tool_version);
    ctx.insert("source", &report.source);
    ctx.insert("baseline", &report.baseline);
    ctx.insert("baseline_link", &https_link(&report.baseline.source));
    ctx.insert("coverage", &report.coverage);
    ctx.insert("v", &view(report, runs)?);
    engine(lang)?
        .render("report.html", &ctx)
        .map_err(|e| anyhow::anyhow!("rendering report.html: {e:?}"))
}
