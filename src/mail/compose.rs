//! Who gets which clusters, and the messages themselves. Pure apart from reading the
//! written report files that the admin message attaches.
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use anyhow::Context;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::{Address, Message};

use super::address::{self, DomainPolicy};
use crate::i18n::Lang;
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
/// once per run: the report without its per-cluster rows is copied once, and the
/// positions of every cluster's rows are indexed, so each owner's copy costs their
/// rows only (a thousand owners of a 100,000-cluster report must not each scan it).
pub struct Narrower<'a> {
    full: &'a Report,
    empty: Report,
    /// Lower-cased cluster id → positions of its row, findings and role checks.
    by_cluster: HashMap<String, Positions>,
}

#[derive(Default)]
struct Positions {
    rows: Vec<u32>,
    findings: Vec<u32>,
    role_checks: Vec<u32>,
    /// In `changes.new` and `changes.resolved`.
    new: Vec<u32>,
    resolved: Vec<u32>,
}

impl<'a> Narrower<'a> {
    pub fn new(full: &'a Report) -> Self {
        let empty = Report {
            clusters: vec![],
            findings: vec![],
            role_checks: vec![],
            output_errors: vec![],
            schema_version: full.schema_version,
            tool: full.tool.clone(),
            tool_version: full.tool_version.clone(),
            generated_at: full.generated_at,
            source: full.source.clone(),
            baseline: full.baseline.clone(),
            summary: full.summary.clone(),
            coverage: full.coverage.clone(),
            changes: Default::default(),
            suppressions: full.suppressions.clone(),
        };
        let mut by_cluster: HashMap<String, Positions> = HashMap::new();
        fn at<'m>(m: &'m mut HashMap<String, Positions>, id: &str) -> &'m mut Positions {
            m.entry(id.to_ascii_lowercase()).or_default()
        }
        for (i, c) in full.clusters.iter().enumerate() {
            at(&mut by_cluster, &c.cluster_id).rows.push(i as u32);
        }
        for (i, f) in full.findings.iter().enumerate() {
            at(&mut by_cluster, &f.cluster_id).findings.push(i as u32);
        }
        for (i, r) in full.role_checks.iter().enumerate() {
            at(&mut by_cluster, &r.cluster_id)
                .role_checks
                .push(i as u32);
        }
        // A fingerprint is `rule|cluster id (lower-cased)|identity|subject`.
        let cluster_of = |fp: &str| fp.split('|').nth(1).unwrap_or_default().to_string();
        for (i, fp) in full.changes.new.iter().enumerate() {
            at(&mut by_cluster, &cluster_of(fp)).new.push(i as u32);
        }
        for (i, fp) in full.changes.resolved.iter().enumerate() {
            at(&mut by_cluster, &cluster_of(fp)).resolved.push(i as u32);
        }
        Narrower {
            full,
            empty: Report {
                changes: crate::rules::Changes {
                    has_previous: full.changes.has_previous,
                    new: vec![],
                    resolved: vec![],
                },
                ..empty
            },
            by_cluster,
        }
    }

    pub fn full(&self) -> &'a Report {
        self.full
    }

    /// The report of `ids` only; rows keep their order in the full report.
    pub fn narrow(&self, ids: &[String]) -> Report {
        let lower: BTreeSet<String> = ids.iter().map(|i| i.to_ascii_lowercase()).collect();
        let mine: Vec<&Positions> = lower
            .iter()
            .filter_map(|i| self.by_cluster.get(i))
            .collect();
        fn pick<T: Clone>(all: &[T], mine: &[&Positions], of: fn(&Positions) -> &[u32]) -> Vec<T> {
            let mut at: Vec<u32> = mine.iter().flat_map(|p| of(p).iter().copied()).collect();
            at.sort_unstable();
            at.into_iter().map(|i| all[i as usize].clone()).collect()
        }
        let f = self.full;
        let mut r = self.empty.clone();
        r.clusters = pick(&f.clusters, &mine, |p| &p.rows);
        r.findings = pick(&f.findings, &mine, |p| &p.findings);
        r.role_checks = pick(&f.role_checks, &mine, |p| &p.role_checks);
        r.changes.new = pick(&f.changes.new, &mine, |p| &p.new);
        r.changes.resolved = pick(&f.changes.resolved, &mine, |p| &p.resolved);
        r
    }

    /// True when one of these clusters has an unsuppressed finding.
    pub fn needs_action(&self, ids: &[String]) -> bool {
        ids.iter().any(|id| {
            self.by_cluster
                .get(&id.to_ascii_lowercase())
                .is_some_and(|p| {
                    p.findings
                        .iter()
                        .any(|i| self.full.findings[*i as usize].suppressed.is_none())
                })
        })
    }

    /// True when a finding of these clusters appeared or went away since the last run
    /// (always true on a first run).
    pub fn changed_for(&self, ids: &[String]) -> bool {
        !self.full.changes.has_previous
            || ids.iter().any(|id| {
                self.by_cluster
                    .get(&id.to_ascii_lowercase())
                    .is_some_and(|p| !p.new.is_empty() || !p.resolved.is_empty())
            })
    }
}

/// Unsuppressed findings of a (sub)report by severity.
fn counts(r: &Report) -> BTreeMap<Severity, usize> {
    let mut m = BTreeMap::new();
    for f in r.findings.iter().filter(|f| f.suppressed.is_none()) {
        *m.entry(f.severity).or_default() += 1;
    }
    m
}

fn severity_note(r: &Report, lang: Lang) -> String {
    let c = counts(r);
    let parts: Vec<String> = [Severity::Critical, Severity::High]
        .iter()
        .filter_map(|s| {
            c.get(s).map(|n| {
                lang.tf(
                    "mail.severity_count",
                    &[("n", n), ("severity", &lang.t(&format!("severity.{s}")))],
                )
            })
        })
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(&lang.t("mail.list_separator")))
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

/// `AKS identity audit: 3 clusters need action (2 high)` or `..., nothing to do`.
pub fn subject(r: &Report) -> String {
    subject_in(r, Lang::En)
}

/// [`subject`] in `lang` (lettre encodes a subject that is not ASCII as RFC 2047
/// encoded words).
pub fn subject_in(r: &Report, lang: Lang) -> String {
    let need = r.clusters.iter().filter(|c| c.findings > 0).count();
    let note = severity_note(r, lang);
    let s = if r.clusters.len() == 1 {
        let name = header_text(&r.clusters[0].cluster_name, 80);
        if need == 1 {
            lang.tf(
                "mail.subject_one_needs_action",
                &[("name", &name), ("note", &note)],
            )
        } else {
            lang.tf("mail.subject_one_nothing", &[("name", &name)])
        }
    } else if need > 0 {
        lang.plural("mail.subject_need_action", need, &[("note", &note)])
    } else {
        lang.plural("mail.subject_nothing", r.clusters.len(), &[])
    };
    header_text(&s, 200)
}

fn admin_subject(r: &Report, unroutable: usize, lang: Lang) -> String {
    let need = r.clusters.iter().filter(|c| c.findings > 0).count();
    let mut s = lang.plural(
        "mail.subject_admin",
        r.clusters.len(),
        &[("need", &need), ("note", &severity_note(r, lang))],
    );
    if unroutable > 0 {
        s.push_str(&lang.tf("mail.subject_unroutable", &[("n", &unroutable)]));
    }
    header_text(&s, 200)
}

/// The HTML and plain-text bodies of an owner's message: the report's own email
/// renderers, narrowed to the owner's clusters.
pub fn bodies(report: &Report, ids: &[String], lang: Lang) -> anyhow::Result<(String, String)> {
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    Ok((
        report::render_email_in(report, &ids, lang)?,
        report::render_text_in(report, &ids, lang),
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

/// `unroutable.csv`'s columns.
pub const UNROUTABLE_COLUMNS: &[&str] = &[
    "cluster_id",
    "cluster_name",
    "owner_source",
    "owner_value",
    "reason",
];

fn unroutable_csv(rows: &[UnroutableRow], opts: &RenderOptions) -> anyhow::Result<String> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    report::csv::header(&mut w, UNROUTABLE_COLUMNS, opts)?;
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
    if opts.csv_excel {
        s.insert(0, '\u{feff}');
    }
    Ok(s)
}

/// `left_out`: report files too large to attach (name, bytes), found in `out_dir`.
/// With `links` (the uploaded run folder), the files left out are named with their URL.
fn admin_bodies(
    r: &Report,
    plan: &Plan,
    left_out: &[(String, u64)],
    out_dir: &Path,
    links: Option<&url::Url>,
    lang: Lang,
) -> (String, String) {
    let subj = admin_subject(r, plan.unroutable.len(), lang);
    let attached = if left_out.is_empty() {
        lang.t("admin.attached").into_owned()
    } else if let Some(base) = links {
        let names: Vec<String> = left_out
            .iter()
            .map(|(n, b)| {
                let url = base.join(n).map(|u| u.to_string()).unwrap_or_default();
                format!("{n} ({:.1} MB): {url}", *b as f64 / 1e6)
            })
            .collect();
        lang.tf(
            "admin.uploaded",
            &[("files", &names.join(&lang.t("mail.list_separator")))],
        )
    } else {
        let names: Vec<String> = left_out
            .iter()
            .map(|(n, b)| format!("{n} ({:.1} MB)", *b as f64 / 1e6))
            .collect();
        lang.tf(
            "admin.too_large",
            &[
                ("dir", &out_dir.display()),
                ("files", &names.join(&lang.t("mail.list_separator"))),
            ],
        )
    };
    // The summary, top actions and changes, so the body reads without the attachments.
    let (summary_html, summary_text) =
        report::render_admin_summary_in(r, lang).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "admin mail: no summary in the body");
            (String::new(), String::new())
        });
    let mut t = format!("{subj}\n\n{attached}\n\n{summary_text}\n");
    for e in &r.output_errors {
        let not_written = lang.tf(
            "admin.not_written",
            &[("file", &e.file), ("error", &e.error)],
        );
        t.push_str(&format!("{not_written}\n"));
    }
    let mailed = lang.tf("admin.owners_mailed", &[("n", &plan.owners.len())]);
    t.push_str(&format!("{mailed}\n\n"));
    let mut h = String::from("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"></head><body style=\"font-family:sans-serif\">");
    h.push_str(&format!(
        "<h2>{}</h2><p>{} {}{}</p>",
        html_escape(&subj),
        html_escape(&attached),
        html_escape(&mailed),
        lang.t("report.sentence_end")
    ));
    h.push_str(&summary_html);
    for e in &r.output_errors {
        h.push_str(&format!(
            "<p style=\"color:#b00020\"><b>{}</b></p>",
            html_escape(&lang.tf(
                "admin.not_written",
                &[("file", &e.file), ("error", &e.error)]
            ))
        ));
    }
    if plan.unroutable.is_empty() {
        let all = lang.t("admin.all_routable");
        t.push_str(&format!("{all}\n"));
        h.push_str(&format!("<p>{}</p>", html_escape(&all)));
    } else {
        let n = plan.unroutable.len();
        let title = lang.tf("admin.unroutable_title", &[("n", &n)]);
        let why = lang.t("admin.unroutable_why");
        t.push_str(&format!(
            "{title}: {why} [owners] subscriptions / fallback.\n"
        ));
        h.push_str(&format!(
            "<h3>{}</h3><p>{} <code>[owners] subscriptions</code> / <code>fallback</code>.</p><table border=\"1\" cellpadding=\"4\" style=\"border-collapse:collapse\"><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
            html_escape(&title),
            html_escape(&why),
            html_escape(&lang.t("report.col_cluster")),
            html_escape(&lang.t("admin.col_owner_from")),
            html_escape(&lang.t("admin.col_value")),
            html_escape(&lang.t("report.col_why")),
        ));
        for u in plan.unroutable.iter().take(UNROUTABLE_IN_BODY) {
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
        if plan.unroutable.len() > UNROUTABLE_IN_BODY {
            let more = lang.tf(
                "admin.unroutable_more",
                &[("n", &(plan.unroutable.len() - UNROUTABLE_IN_BODY))],
            );
            t.push_str(&format!("{more}\n"));
            h.push_str(&format!("<p>{more}</p>"));
        }
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
    lang: Lang,
) -> anyhow::Result<Message> {
    // The owner's part of the report: the same summary, suppressions and coverage,
    // only their clusters' rows and changes (the bodies then cost their rows only).
    let sub = narrower.narrow(&owner.cluster_ids);
    let opts = RenderOptions { csv_excel, lang };
    let attachments = vec![
        Attachment::new("clusters.csv".into())
            .body(report::csv::clusters(&sub, &opts)?, csv_type()),
        Attachment::new("findings.csv".into())
            .body(report::csv::findings(&sub, &opts)?, csv_type()),
    ];
    build(
        from,
        &owner.address,
        subject_in(&sub, lang),
        bodies(&sub, &owner.cluster_ids, lang)?,
        attachments,
    )
}

/// Attachments of an admin's message stop here (raw bytes; base64 makes it a third
/// more, under the 25–35 MB most mail servers accept). Files left out are named in
/// the body with their place on disk.
pub const ADMIN_ATTACHMENTS_MAX_BYTES: u64 = 15 * 1024 * 1024;

/// With the report uploaded and linked (`--upload-base-url`), attachments stop here:
/// base64 makes 2 MiB about 2.7 MB, so the message stays under Microsoft Graph's 4 MB
/// request limit ([`crate::mail::graph::MAX_REQUEST_BYTES`]) and Graph never has to
/// drop an attachment; the rest is linked.
pub const LINKED_ATTACHMENTS_MAX_BYTES: u64 = 2 * 1024 * 1024;

/// Unroutable clusters listed in an admin's message body; all are in unroutable.csv.
pub const UNROUTABLE_IN_BODY: usize = 200;

/// An admin's message: summary and unroutable list in the body; unroutable.csv,
/// report.html and the report's CSVs ([`crate::report::FILES`], regular files only)
/// from the output folder attached, as far as they fit in
/// [`ADMIN_ATTACHMENTS_MAX_BYTES`].
pub fn admin_message(
    report: &Report,
    plan: &Plan,
    admin: &Address,
    from: &Mailbox,
    out_dir: &Path,
    (csv_excel, lang): (bool, Lang),
    links: Option<&url::Url>,
) -> anyhow::Result<Message> {
    let max = if links.is_some() {
        LINKED_ATTACHMENTS_MAX_BYTES
    } else {
        ADMIN_ATTACHMENTS_MAX_BYTES
    };
    admin_message_within(
        report,
        plan,
        admin,
        from,
        out_dir,
        (csv_excel, lang),
        max,
        links,
    )
}

#[allow(clippy::too_many_arguments)]
fn admin_message_within(
    report: &Report,
    plan: &Plan,
    admin: &Address,
    from: &Mailbox,
    out_dir: &Path,
    (csv_excel, lang): (bool, Lang),
    max_bytes: u64,
    links: Option<&url::Url>,
) -> anyhow::Result<Message> {
    let unroutable = unroutable_csv(&plan.unroutable, &RenderOptions { csv_excel, lang })?;
    let mut total = unroutable.len() as u64;
    let mut attachments =
        vec![Attachment::new("unroutable.csv".into()).body(unroutable, csv_type())];
    // Only the report files this run writes, by name (never whatever else lies in the
    // folder), and only as regular files: a symbolic link is not followed.
    let mut names: Vec<&str> = crate::report::FILES
        .iter()
        .copied()
        .filter(|n| n.ends_with(".csv"))
        .collect();
    names.sort_unstable();
    names.insert(0, "report.html");
    let mut left_out = Vec::new();
    for name in names {
        let p = out_dir.join(name);
        let (mut f, size) = match crate::secure_fs::open_regular(&p) {
            Ok(opened) => opened,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
                tracing::warn!(file = %p.display(), "admin mail: not attached: {e}");
                continue;
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", p.display())),
        };
        let name = name.to_string();
        if total + size > max_bytes {
            left_out.push((name, size));
            continue;
        }
        let mut bytes = Vec::with_capacity(size as usize);
        std::io::Read::read_to_end(&mut f, &mut bytes)
            .with_context(|| format!("reading {}", p.display()))?;
        total += bytes.len() as u64;
        let kind = if name.ends_with(".html") {
            html_type()
        } else {
            csv_type()
        };
        attachments.push(Attachment::new(name).body(bytes, kind));
    }
    build(
        from,
        admin,
        admin_subject(report, plan.unroutable.len(), lang),
        admin_bodies(report, plan, &left_out, out_dir, links, lang),
        attachments,
    )
}

#[cfg(test)]
mod tests;
