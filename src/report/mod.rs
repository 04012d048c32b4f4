//! Renderers: each turns a [`Report`] into a `String`; only `run` writes files.
pub mod csv;
pub mod email;
pub mod html;
pub mod json;
pub mod tables;
pub mod trend;

pub use email::{render_email, render_text};

use crate::rules::Report;
use trend::RunRecord;

/// Output options shared by the renderers.
#[derive(Debug, Clone, Default)]
pub struct RenderOptions {
    /// Prefix CSV files with a UTF-8 byte-order mark for Excel.
    pub csv_excel: bool,
}

/// Every report file, by name; the HTML trend shows this run only.
pub fn render_all(report: &Report, opts: &RenderOptions) -> anyhow::Result<Vec<(String, String)>> {
    render_all_with_runs(report, opts, &[])
}

/// Every report file, by name; `runs` is the run history (`runs.csv`) the HTML trend
/// draws, oldest first. This run is added when it is not its last row.
pub fn render_all_with_runs(
    report: &Report,
    opts: &RenderOptions,
    runs: &[RunRecord],
) -> anyhow::Result<Vec<(String, String)>> {
    Ok(vec![
        ("clusters.csv".into(), csv::clusters(report, opts)?),
        ("findings.csv".into(), csv::findings(report, opts)?),
        (
            "role-assignments.csv".into(),
            csv::role_assignments(report, opts)?,
        ),
        ("summary.csv".into(), csv::summary(report, opts)?),
        ("report.json".into(), json::render(report)?),
        ("report.html".into(), html::render_with_runs(report, runs)?),
    ])
}
