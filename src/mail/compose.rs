//! Who gets which clusters, and the messages themselves. Pure apart from reading the
//! written report files that the admin message attaches.
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::Context;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::{Address, Message};

use super::address::{self, DomainPolicy};
use crate::report::{self, RenderOptions};
use crate::rules::{Report, Severity};

/// One owner and the clusters their message is about.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnerPlan {
    pub address: Address,
    pub cluster_ids: Vec<String>,
}

/// A cluster whose owner cannot receive mail: shown to admins.
#[derive(Debug, Clone, PartialEq)]
pub struct UnroutableRow {
    pub cluster_id: String,
    pub cluster_name: String,
    pub owner_source: String,
    /// The raw owner value, escaped and truncated.
    pub raw: String,
    pub reason: String,
}

/// Every routable owner (sorted by address) and every unroutable cluster.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub owners: Vec<OwnerPlan>,
    pub unroutable: Vec<UnroutableRow>,
}

pub fn plan(report: &Report, policy: &DomainPolicy) -> Plan {
    let mut by_owner: BTreeMap<String, (Address, Vec<String>)> = BTreeMap::new();
    let mut unroutable = Vec::new();
    for c in &report.clusters {
        match address::route(&c.owner, policy) {
            Ok(addrs) => {
                for a in addrs {
                    by_owner
                        .entry(a.to_string())
                        .or_insert_with(|| (a.clone(), vec![]))
                        .1
                        .push(c.cluster_id.clone());
                }
            }
            Err(why) => unroutable.push(UnroutableRow {
                cluster_id: c.cluster_id.clone(),
                cluster_name: c.cluster_name.clone(),
                owner_source: c.owner_source.clone(),
                raw: address::escape(&c.owner, address::RAW_SHOWN),
                reason: why.to_string(),
            }),
        }
    }
    Plan {
        owners: by_owner
            .into_values()
            .map(|(address, cluster_ids)| OwnerPlan {
                address,
                cluster_ids,
            })
            .collect(),
        unroutable,
    }
}

/// Narrows the report to some clusters and their findings (and role checks). Built
/// once per run: the report without its per-cluster rows is cloned once, and each
/// owner's copy is that plus their rows (no clone of the whole report per owner).
pub struct Narrower<'a> {
    full: &'a Report,
    empty: Report,
}

impl<'a> Narrower<'a> {
    pub fn new(full: &'a Report) -> Self {
        let mut empty = full.clone();
        empty.clusters.clear();
        empty.findings.clear();
        empty.role_checks.clear();
        Narrower { full, empty }
    }

    pub fn full(&self) -> &'a Report {
        self.full
    }

    pub fn narrow(&self, ids: &[String]) -> Report {
        let mine = |id: &str| ids.iter().any(|k| k.eq_ignore_ascii_case(id));
        let f = self.full;
        let mut r = self.empty.clone();
        r.clusters = f
            .clusters
            .iter()
            .filter(|c| mine(&c.cluster_id))
            .cloned()
            .collect();
        r.findings = f
            .findings
            .iter()
            .filter(|x| mine(&x.cluster_id))
            .cloned()
            .collect();
        r.role_checks = f
            .role_checks
            .iter()
            .filter(|x| mine(&x.cluster_id))
            .cloned()
            .collect();
        r
    }
}

/// True when a finding of these clusters appeared or went away since the last run
/// (always true on a first run).
pub fn changed_for(report: &Report, ids: &[String]) -> bool {
    if !report.changes.has_previous {
        return true;
    }
    let keep: BTreeSet<String> = ids.iter().map(|i| i.to_ascii_lowercase()).collect();
    report
        .changes
        .new
        .iter()
        .chain(&report.changes.resolved)
        .any(|fp| fp.split('|').nth(1).is_some_and(|c| keep.contains(c)))
}

/// Unsuppressed findings of a (sub)report by severity.
fn counts(r: &Report) -> BTreeMap<Severity, usize> {
    let mut m = BTreeMap::new();
    for f in r.findings.iter().filter(|f| f.suppressed.is_none()) {
        *m.entry(f.severity).or_default() += 1;
    }
    m
}

fn severity_note(r: &Report) -> String {
    let c = counts(r);
    let parts: Vec<String> = [Severity::Critical, Severity::High]
        .iter()
        .filter_map(|s| c.get(s).map(|n| format!("{n} {}", s.as_str())))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    }
}

/// Header-safe text: control characters become spaces, runs of spaces collapse, and
/// the result is cut to `max` characters.
pub fn header_text(s: &str, max: usize) -> String {
    let mut out = String::new();
    let mut space = false;
    for c in s.chars() {
        let c = if c.is_control() || c.is_whitespace() {
            ' '
        } else {
            c
        };
        if c == ' ' {
            if space || out.is_empty() {
                continue;
            }
            space = true;
        } else {
            space = false;
        }
        if out.chars().count() >= max {
            out.push('…');
            break;
        }
        out.push(c);
    }
    out.trim_end().to_string()
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `AKS identity audit: 3 clusters need action (2 high)` or `..., nothing to do`.
pub fn subject(r: &Report) -> String {
    let need = r.clusters.iter().filter(|c| c.findings > 0).count();
    let s = if r.clusters.len() == 1 {
        let name = header_text(&r.clusters[0].cluster_name, 80);
        if need == 1 {
            format!(
                "AKS identity audit: {name} needs action{}",
                severity_note(r)
            )
        } else {
            format!("AKS identity audit: {name}, nothing to do")
        }
    } else if need > 0 {
        format!(
            "AKS identity audit: {} action{}",
            plural(need, "cluster needs", "clusters need"),
            severity_note(r)
        )
    } else {
        format!(
            "AKS identity audit: {}, nothing to do",
            plural(r.clusters.len(), "cluster", "clusters")
        )
    };
    header_text(&s, 200)
}

fn admin_subject(r: &Report, unroutable: usize) -> String {
    let need = r.clusters.iter().filter(|c| c.findings > 0).count();
    let mut s = format!(
        "AKS identity audit (full report): {}, {} need action{}",
        plural(r.clusters.len(), "cluster", "clusters"),
        need,
        severity_note(r)
    );
    if unroutable > 0 {
        s.push_str(&format!(", {} unroutable", unroutable));
    }
    header_text(&s, 200)
}

/// The HTML and plain-text bodies of an owner's message: the report's own email
/// renderers, narrowed to the owner's clusters.
pub fn bodies(report: &Report, ids: &[String]) -> anyhow::Result<(String, String)> {
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    Ok((
        report::render_email(report, &ids)?,
        report::render_text(report, &ids),
    ))
}

pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn unroutable_csv(rows: &[UnroutableRow], excel: bool) -> anyhow::Result<String> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    w.write_record([
        "cluster_id",
        "cluster_name",
        "owner_source",
        "owner_value",
        "reason",
    ])?;
    for u in rows {
        let rec = [
            &u.cluster_id,
            &u.cluster_name,
            &u.owner_source,
            &u.raw,
            &u.reason,
        ];
        report::csv::write_row(&mut w, &rec)?;
    }
    let mut s = String::from_utf8(w.into_inner().map_err(|e| anyhow::anyhow!("csv: {e}"))?)?;
    if excel {
        s.insert(0, '\u{feff}');
    }
    Ok(s)
}

fn admin_bodies(r: &Report, plan: &Plan) -> (String, String) {
    let subj = admin_subject(r, plan.unroutable.len());
    let mut t = format!("{subj}\n\nThe full report is attached (report.html, CSV files).\n");
    t.push_str(&format!("Owners mailed: {}\n\n", plan.owners.len()));
    let mut h = String::from("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"></head><body style=\"font-family:sans-serif\">");
    h.push_str(&format!("<h2>{}</h2><p>The full report is attached (report.html, CSV files). Owners mailed: {}.</p>", html_escape(&subj), plan.owners.len()));
    if plan.unroutable.is_empty() {
        t.push_str("Every cluster's owner could be mailed.\n");
        h.push_str("<p>Every cluster's owner could be mailed.</p>");
    } else {
        t.push_str(&format!(
            "Unroutable owners ({}): these clusters' owners got no mail. Fix the owner tag, or set [owners] subscriptions / fallback.\n",
            plan.unroutable.len()
        ));
        h.push_str(&format!("<h3>Unroutable owners ({})</h3><p>These clusters' owners got no mail. Fix the owner tag, or set <code>[owners] subscriptions</code> / <code>fallback</code>.</p><table border=\"1\" cellpadding=\"4\" style=\"border-collapse:collapse\"><tr><th>Cluster</th><th>Owner from</th><th>Value</th><th>Why</th></tr>", plan.unroutable.len()));
        for u in &plan.unroutable {
            t.push_str(&format!(
                "- {} ({}): `{}` from {}: {}\n",
                header_text(&u.cluster_name, 120),
                u.cluster_id,
                u.raw,
                u.owner_source,
                u.reason
            ));
            h.push_str(&format!(
                "<tr><td>{}<br><small>{}</small></td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
                html_escape(&u.cluster_name),
                html_escape(&u.cluster_id),
                html_escape(&u.owner_source),
                html_escape(&u.raw),
                html_escape(&u.reason)
            ));
        }
        h.push_str("</table>");
    }
    h.push_str("</body></html>");
    (h, t)
}

fn auto_submitted() -> HeaderValue {
    HeaderValue::new(
        HeaderName::new_from_ascii_str("Auto-Submitted"),
        "auto-generated".into(),
    )
}

fn csv_type() -> ContentType {
    ContentType::parse("text/csv; charset=utf-8").expect("constant content type")
}

fn html_type() -> ContentType {
    ContentType::parse("text/html; charset=utf-8").expect("constant content type")
}

fn build(
    from: &Mailbox,
    to: &Address,
    subject: String,
    (html, text): (String, String),
    attachments: Vec<SinglePart>,
) -> anyhow::Result<Message> {
    let mut mixed = MultiPart::mixed().multipart(MultiPart::alternative_plain_html(text, html));
    for a in attachments {
        mixed = mixed.singlepart(a);
    }
    Message::builder()
        .from(from.clone())
        .to(Mailbox::new(None, to.clone()))
        .subject(subject)
        .message_id(None)
        .raw_header(auto_submitted())
        .multipart(mixed)
        .context("building the message")
}

/// One owner's message: only their clusters, their rows of the CSVs attached.
pub fn owner_message(
    narrower: &Narrower,
    owner: &OwnerPlan,
    from: &Mailbox,
    csv_excel: bool,
) -> anyhow::Result<Message> {
    let report = narrower.full();
    let sub = narrower.narrow(&owner.cluster_ids);
    let opts = RenderOptions { csv_excel };
    let attachments = vec![
        Attachment::new("clusters.csv".into())
            .body(report::csv::clusters(&sub, &opts)?, csv_type()),
        Attachment::new("findings.csv".into())
            .body(report::csv::findings(&sub, &opts)?, csv_type()),
    ];
    build(
        from,
        &owner.address,
        subject(&sub),
        bodies(report, &owner.cluster_ids)?,
        attachments,
    )
}

/// An admin's message: summary and unroutable list in the body; report.html, every CSV
/// of the output folder and unroutable.csv attached.
pub fn admin_message(
    report: &Report,
    plan: &Plan,
    admin: &Address,
    from: &Mailbox,
    out_dir: &Path,
    csv_excel: bool,
) -> anyhow::Result<Message> {
    let mut attachments = Vec::new();
    let html = out_dir.join("report.html");
    if html.is_file() {
        let bytes = std::fs::read(&html).with_context(|| format!("reading {}", html.display()))?;
        attachments.push(Attachment::new("report.html".into()).body(bytes, html_type()));
    }
    let mut csvs: Vec<_> = std::fs::read_dir(out_dir)
        .with_context(|| format!("listing {}", out_dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "csv"))
        .collect();
    csvs.sort();
    for p in csvs {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let bytes = std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
        attachments.push(Attachment::new(name).body(bytes, csv_type()));
    }
    attachments.push(
        Attachment::new("unroutable.csv".into())
            .body(unroutable_csv(&plan.unroutable, csv_excel)?, csv_type()),
    );
    build(
        from,
        admin,
        admin_subject(report, plan.unroutable.len()),
        admin_bodies(report, plan),
        attachments,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_text_strips_line_breaks() {
        assert_eq!(
            header_text("aks\r\nBcc: evil@x.com", 100),
            "aks Bcc: evil@x.com"
        );
        assert_eq!(header_text("  a \t b  ", 100), "a b");
        assert_eq!(header_text("abcdef", 3), "abc…");
    }

    #[test]
    fn html_escape_is_inert() {
        assert_eq!(
            html_escape("\"><img onerror=x>"),
            "&quot;&gt;&lt;img onerror=x&gt;"
        );
    }
}
