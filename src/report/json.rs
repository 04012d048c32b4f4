//! `report.json`: the serialized [`Report`], schema documented in the README.
use std::io::Write;

use crate::rules::Report;

pub fn render(report: &Report) -> anyhow::Result<String> {
    let mut out = Vec::new();
    render_to(report, &mut out)?;
    Ok(String::from_utf8(out)?)
}

/// [`render`] into a writer, without holding the whole text.
pub fn render_to(report: &Report, out: &mut dyn Write) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report)?;
    out.write_all(b"\n")?;
    Ok(())
}
