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
    // A buffer of a known type: serde_json writes many tiny pieces, each would
    // otherwise be a dynamic call.
    let mut w = std::io::BufWriter::with_capacity(64 * 1024, out);
    serde_json::to_writer_pretty(&mut w, report)?;
    w.write_all(b"\n")?;
    w.flush()?;
    Ok(())
}
