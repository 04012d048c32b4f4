//! `report.json`: the serialized [`Report`], schema documented in the README.
use crate::rules::Report;

pub fn render(report: &Report) -> anyhow::Result<String> {
    let mut s = serde_json::to_string_pretty(report)?;
    s.push('\n');
    Ok(s)
}
