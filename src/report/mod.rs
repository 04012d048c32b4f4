//! Renderers: each turns a [`Report`] into a `String` or streams it into a writer;
//! only `run` writes files.
pub mod actions;
pub mod csv;
pub mod email;
pub mod html;
pub mod json;
pub mod tables;
#[cfg(test)]
mod tests;
pub mod trend;

use std::io::Write;

pub use email::{
    render_admin_summary, render_admin_summary_in, render_email, render_email_in, render_text,
    render_text_in,
};

use crate::rules::Report;
use trend::RunRecord;

/// Output options shared by the renderers.
#[derive(Debug, Clone, Default)]
pub struct RenderOptions {
    /// Prefix CSV files with a UTF-8 byte-order mark for Excel.
    pub csv_excel: bool,
    /// The language of report.html (and, with `csv_excel`, of the CSVs' second header
    /// row).
    pub lang: crate::i18n::Lang,
}

/// Every report file, by name; the HTML trend shows this run only.
pub fn render_all(report: &Report, opts: &RenderOptions) -> anyhow::Result<Vec<(String, String)>> {
    render_all_with_runs(report, opts, &[])
}

/// The report files, in the order they are written.
pub const FILES: &[&str] = &[
    "clusters.csv",
    "findings.csv",
    "actions.csv",
    "role-assignments.csv",
    "summary.csv",
    "report.json",
    "report.html",
];

/// Every report file, by name; `runs` is the run history (`runs.csv`) the HTML trend
/// draws, oldest first. This run is added when it is not its last row.
pub fn render_all_with_runs(
    report: &Report,
    opts: &RenderOptions,
    runs: &[RunRecord],
) -> anyhow::Result<Vec<(String, String)>> {
    FILES
        .iter()
        .map(|name| {
            let mut out = Vec::new();
            render_to(name, report, opts, runs, &mut out)?;
            Ok((name.to_string(), String::from_utf8(out)?))
        })
        .collect()
}

/// Renders the report file `name` (one of [`FILES`]) into `out`, streaming the large
/// ones (`report.json`, the CSVs) instead of building them as one `String`.
pub fn render_to(
    name: &str,
    report: &Report,
    opts: &RenderOptions,
    runs: &[RunRecord],
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    match name {
        "clusters.csv" => csv::clusters_to(report, opts, out),
        "findings.csv" => csv::findings_to(report, opts, out),
        "actions.csv" => csv::actions_to(report, opts, out),
        "role-assignments.csv" => csv::role_assignments_to(report, opts, out),
        "summary.csv" => csv::summary_to(report, opts, out),
        "report.json" => json::render_to(report, out),
        "report.html" => {
            Ok(out.write_all(html::render_with_runs(report, runs, opts.lang)?.as_bytes())?)
        }
        other => anyhow::bail!("no report file named {other}"),
    }
}
