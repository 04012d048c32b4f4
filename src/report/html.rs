//! `report.html`: a self-contained page (inline CSS, no scripts, no external assets).
use tera::{Context, Tera};

use crate::rules::catalogue::CATALOGUE;
use crate::rules::Report;

const REPORT_TEMPLATE: &str = include_str!("../../templates/report.html");

fn engine() -> anyhow::Result<Tera> {
    let mut t = Tera::default();
    // Names end in .html so Tera autoescapes every value.
    t.add_raw_template("report.html", REPORT_TEMPLATE)?;
    t.autoescape_on(vec![".html"]);
    Ok(t)
}

#[derive(serde::Serialize)]
struct RuleView<'a> {
    id: &'a str,
    title: &'a str,
    severity: &'a str,
    rationale: &'a str,
    source: &'a str,
}

pub fn render(report: &Report) -> anyhow::Result<String> {
    let mut ctx = Context::new();
    ctx.insert("r", report);
    let rules: Vec<RuleView> = CATALOGUE
        .iter()
        .map(|r| RuleView {
            id: r.id.as_str(),
            title: r.title,
            severity: r.severity.as_str(),
            rationale: r.rationale,
            source: r.source,
        })
        .collect();
    ctx.insert("rules", &rules);
    engine()?
        .render("report.html", &ctx)
        .map_err(|e| anyhow::anyhow!("rendering report.html: {e:?}"))
}
