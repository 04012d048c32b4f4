//! The page's charts as numbers: stacked bars of the identity modes and the
//! subscriptions' compliance, and the trend's geometry. The template draws them.
use std::collections::BTreeMap;

use serde::Serialize;

use super::super::tables::GroupRow;
use super::super::trend::{RunRecord, Trend};
use crate::history::MigrationStatus;
use crate::rules::{ControlPlaneIdentity, KubeletIdentity, Summary};

/// One coloured part of a 100-wide stacked bar.
#[derive(Serialize)]
pub(super) struct Segment {
    label: String,
    /// The catalogue key of the label (`control_plane.service_principal`).
    key: String,
    n: usize,
    class: &'static str,
    x: f64,
    w: f64,
    percent: f64,
}

#[derive(Serialize)]
pub(super) struct StackedBar {
    title: &'static str,
    /// The catalogue key of the title.
    key: &'static str,
    segments: Vec<Segment>,
}

/// A value shown as a part of a stacked bar: its label and colour class.
trait BarPart: Copy + Ord + crate::named::Named {
    /// The catalogue table of the values' labels.
    const NS: &'static str;
    fn label(self) -> &'static str;
    fn class(self) -> &'static str;
}

impl BarPart for ControlPlaneIdentity {
    const NS: &'static str = "control_plane";
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
    const NS: &'static str = "kubelet";
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
    const NS: &'static str = "migration";
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
    (title, key): (&'static str, &'static str),
    counts: &BTreeMap<K, usize>,
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
                key: format!("{}.{}", K::NS, k.as_str()),
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
    StackedBar {
        title,
        key,
        segments,
    }
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// A subscription's compliance bar: managed, pending, on SP, as percentages.
#[derive(Serialize)]
pub(super) struct SubBar {
    g: GroupRow,
    managed_pct: f64,
    pending_pct: f64,
    sp_pct: f64,
}

pub(super) fn sub_bar(g: GroupRow) -> SubBar {
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
pub(super) struct Line {
    pub(super) label: &'static str,
    pub(super) class: &'static str,
    pub(super) points: String,
    pub(super) dots: Vec<(f64, f64)>,
    pub(super) first: i64,
    pub(super) last: i64,
}

#[derive(Serialize)]
pub(super) struct Tick {
    y: f64,
    label: i64,
}

#[derive(Serialize)]
pub(super) struct XLabel {
    x: f64,
    label: String,
    /// The day (`YYYY-MM-DD`), for the `short_date` filter of other languages.
    day: String,
    anchor: &'static str,
}

#[derive(Serialize)]
pub(super) struct Rect {
    pub(super) x: f64,
    pub(super) y: f64,
    pub(super) w: f64,
    pub(super) h: f64,
    pub(super) class: &'static str,
}

#[derive(Serialize)]
pub(super) struct TrendView {
    pub(super) granularity: &'static str,
    pub(super) n: usize,
    pub(super) since: String,
    pub(super) lines: Vec<Line>,
    pub(super) line_ticks: Vec<Tick>,
    pub(super) bars: Vec<Rect>,
    pub(super) bar_ticks: Vec<Tick>,
    pub(super) x_labels: Vec<XLabel>,
    /// Findings (all severities) at the first and last point.
    pub(super) findings_first: i64,
    pub(super) findings_last: i64,
    pub(super) width: f64,
    pub(super) height: f64,
    pub(super) left: f64,
    pub(super) right: f64,
    pub(super) bottom: f64,
}

/// The smallest step of 1, 2, 5 × 10^k with 4 steps covering `max`.
pub(super) fn step_for(max: i64) -> i64 {
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

pub(super) fn trend_view(t: &Trend) -> TrendView {
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
    let day = |r: &RunRecord| r.run_at.format("%Y-%m-%d").to_string();
    let mut x_labels = Vec::new();
    if let Some(first) = t.points.first() {
        x_labels.push(XLabel {
            x: LEFT,
            label: fmt(first),
            day: day(first),
            anchor: "start",
        });
    }
    if t.points.len() >= 5 {
        let mid = t.points.len() / 2;
        x_labels.push(XLabel {
            x: cx(mid),
            label: fmt(&t.points[mid]),
            day: day(&t.points[mid]),
            anchor: "middle",
        });
    }
    if t.points.len() >= 2 {
        x_labels.push(XLabel {
            x: W - RIGHT,
            label: fmt(t.points.last().unwrap()),
            day: day(t.points.last().unwrap()),
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

/// The control plane, kubelet identity and migration bars.
pub(super) fn modes(s: &Summary) -> Vec<StackedBar> {
    vec![
        stacked(
            ("Control plane", "chart.modes_control_plane"),
            &s.control_plane,
            &[
                ControlPlaneIdentity::ServicePrincipal,
                ControlPlaneIdentity::SystemAssigned,
                ControlPlaneIdentity::UserAssigned,
            ],
        ),
        stacked(
            (
                "Kubelet identity (as ARM reports it)",
                "chart.modes_kubelet",
            ),
            &s.kubelet,
            &[
                KubeletIdentity::ServicePrincipal,
                KubeletIdentity::Missing,
                KubeletIdentity::AksManaged,
                KubeletIdentity::UserAssigned,
            ],
        ),
        stacked(
            ("Kubelet migration", "chart.modes_migration"),
            &s.migration,
            &[
                MigrationStatus::NotMigrated,
                MigrationStatus::Pending,
                MigrationStatus::Unknown,
                MigrationStatus::Complete,
                MigrationStatus::NoneObserved,
            ],
        ),
    ]
}
