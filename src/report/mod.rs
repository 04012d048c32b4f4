//! Renderers: each turns a [`Report`] into a `String`; only `run` writes files.
pub mod csv;
pub mod html;
pub mod json;

use crate::rules::Report;

/// Output options shared by the renderers.
#[derive(Debug, Clone, Default)]
pub struct RenderOptions {
    /// Prefix CSV files with a UTF-8 byte-order mark for Excel.
    pub csv_excel: bool,
}

/// Every report file, by name.
pub fn render_all(report: &Report, opts: &RenderOptions) -> anyhow::Result<Vec<(String, String)>> {
    Ok(vec![
        ("clusters.csv".into(), csv::clusters(report, opts)?),
        ("findings.csv".into(), csv::findings(report, opts)?),
        ("report.json".into(), json::render(report)?),
        ("report.html".into(), html::render(report)?),
    ])
}
