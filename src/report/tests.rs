//! Every renderer (report.html, every CSV, report.json, the owner and admin mail) over
//! reports at the sizes the page and the mails cut at, and over random hostile text.
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use base64::Engine as _;
use chrono::{Duration, NaiveDate};
use lettre::message::Mailbox;
use lettre::Address;
use proptest::prelude::*;

use super::html::tests::tiny;
use super::html::MAX_CHANGES;
use super::trend::RunRecord;
use super::{render_to, RenderOptions, FILES};
use crate::inventory::{Gap, SkippedRow};
use crate::mail::address::DomainPolicy;
use crate::mail::compose::{self, Narrower};
use crate::rules::catalogue::CATALOGUE;
use crate::rules::suppress::{Applied, EntryState, EntryStatus};
use crate::rules::{Finding, IdentityKey, Report, RoleCheck, RoleCheckStatus, Severity};

const DOMAIN: &str = "example.com";

fn cluster_id(i: usize, suffix: &str) -> String {
    format!("/subscriptions/s{}/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c{i}{suffix}", i % 2 + 1)
}

/// Text for every string field of a synthetic report; `i` is the row.
trait Text {
    fn text(&mut self, what: &str, i: usize) -> String;
}

/// Plain, predictable text.
struct Plain;

impl Text for Plain {
    fn text(&mut self, what: &str, i: usize) -> String {
        format!("{what}-{i}")
    }
}

/// Cluster, finding, role check and coverage rows of `r` rebuilt from `tiny()`'s rows
/// (so fields added to the model later keep their values): `clusters` clusters, one
/// finding per cluster plus `new` new ones (every rule and severity), one suppressed,
/// `resolved` fingerprints of findings gone since the last run, suppression entries of
/// every status, skipped rows, gaps and role checks. The summary is made to match.
fn build(
    clusters: usize,
    new: usize,
    resolved: usize,
    owner_of: &mut dyn FnMut(usize) -> String,
    t: &mut dyn Text,
) -> Report {
    let mut r = tiny();
    let row = r.clusters.clone();
    let base = r.findings[0].clone();
    let accepted = r.findings[1]
        .suppressed
        .clone()
        .expect("tiny suppresses one");
    r.clusters = (0..clusters)
        .map(|i| {
            let mut c = row[i % row.len()].clone();
            c.cluster_id = cluster_id(i, &t.text("id", i));
            c.cluster_name = t.text("cluster", i);
            c.subscription_id = format!("s{}", i % 2 + 1);
            c.subscription_name = t.text("subscription", i % 2);
            c.resource_group = t.text("rg", i);
            c.owner = owner_of(i);
            c.owner_source = t.text("owner source", i);
            c.kubernetes_version = t.text("version", i);
            c.node_resource_group = t.text("node rg", i);
            c.location = t.text("location", i);
            c.pending_pools = c.pending_pools.iter().map(|p| t.text(p, i)).collect();
            c
        })
        .collect();
    let finding = |i: usize, subject: String, t: &mut dyn Text| {
        let c = &r.clusters[i % clusters];
        let rule = &CATALOGUE[i % CATALOGUE.len()];
        let mut f = base.clone();
        f.cluster_id = c.cluster_id.clone();
        f.cluster_name = c.cluster_name.clone();
        f.subscription_id = c.subscription_id.clone();
        f.rule_id = rule.id;
        f.severity = Severity::ALL[i % Severity::ALL.len()];
        // Hostile text reaches an identity through an add-on's key.
        f.identity = IdentityKey::Addon(t.text("identity", i));
        f.message = t.text("message", i);
        f.remediation = format!("{}\n{}", t.text("az one", i), t.text("az two", i));
        f.subject = subject;
        f.suppressed = None;
        f
    };
    let mut findings: Vec<Finding> = (0..clusters)
        .map(|i| finding(i, format!("old-{i}"), t))
        .collect();
    let mut fresh = Vec::with_capacity(new);
    for i in 0..new {
        let f = finding(i, format!("new-{i}-{}", t.text("subject", i)), t);
        fresh.push(f.fingerprint());
        findings.push(f);
    }
    let mut gone = finding(0, "suppressed".into(), t);
    gone.suppressed = Some(Applied {
        justification: t.text("why", 0),
        owner: t.text("accepted by", 0),
        ..accepted
    });
    findings.push(gone);
    r.findings = findings;
    r.changes.has_previous = true;
    r.changes.new = fresh;
    r.changes.resolved = (0..resolved)
        .map(|i| {
            let c = &r.clusters[i % clusters];
            format!(
                "{}|{}|{}|{}",
                CATALOGUE[i % CATALOGUE.len()].id,
                c.cluster_id.to_ascii_lowercase(),
                t.text("identity", i),
                t.text("gone", i)
            )
        })
        .collect();
    r.suppressions.entries = EntryState::ALL
        .iter()
        .enumerate()
        .map(|(i, status)| EntryStatus {
            rule: CATALOGUE[i].id,
            cluster: t.text("glob", i),
            identity: (i > 0).then(|| t.text("entry identity", i)),
            owner: t.text("entry owner", i),
            justification: t.text("justification", i),
            expires: NaiveDate::from_ymd_opt(2026, 1 + i as u32, 1).unwrap(),
            status: *status,
            matched: i,
        })
        .collect();
    r.coverage.skipped_rows = (0..2)
        .map(|i| SkippedRow {
            source: t.text("file", i),
            index: i,
            reason: t.text("reason", i),
        })
        .collect();
    r.coverage.gaps = vec![Gap {
        scope: t.text("scope", 0),
        reason: t.text("gap", 0),
        tables: vec!["role-assignments".into()],
    }];
    r.role_checks = (0..clusters * 2)
        .map(|i| RoleCheck {
            cluster_id: r.clusters[i % clusters].cluster_id.as_str().into(),
            identity: IdentityKey::Addon(t.text("identity", i)),
            principal_id: t.text("principal", i).into(),
            expected_role: t.text("role", i).into(),
            expected_scope: t.text("scope", i).into(),
            actual_role: t.text("actual role", i).into(),
            actual_scope: t.text("actual scope", i).into(),
            status: RoleCheckStatus::ALL[i % 4],
        })
        .collect();
    let mut per_cluster: BTreeMap<String, (usize, Option<Severity>)> = BTreeMap::new();
    for f in r.findings.iter().filter(|f| f.suppressed.is_none()) {
        let e = per_cluster.entry(f.cluster_id.clone()).or_default();
        e.0 += 1;
        e.1 = e.1.max(Some(f.severity));
    }
    for c in &mut r.clusters {
        (c.findings, c.worst_severity) =
            per_cluster.get(&c.cluster_id).copied().unwrap_or_default();
    }
    let s = &mut r.summary;
    s.clusters = clusters;
    s.subscriptions = 2.min(clusters);
    for sev in Severity::ALL {
        let n = r
            .findings
            .iter()
            .filter(|f| f.suppressed.is_none() && f.severity == sev)
            .count();
        *s.findings.get_mut(sev) = n;
    }
    s.suppressed = 1;
    s.skipped_rows = r.coverage.skipped_rows.len();
    s.gaps = r.coverage.gaps.len();
    r
}

/// Four earlier runs, a week apart, so that the trend section draws lines and bars.
fn runs(r: &Report) -> Vec<RunRecord> {
    (1..=4)
        .rev()
        .map(|w| RunRecord {
            run_at: r.generated_at - Duration::weeks(w),
            on_sp: 3 + w,
            high: 10 * w,
            ..RunRecord::of(r)
        })
        .collect()
}

/// Every report file of `r`, by name.
fn render_files(r: &Report, opts: &RenderOptions) -> BTreeMap<&'static str, String> {
    let runs = runs(r);
    FILES
        .iter()
        .map(|name| {
            let mut out = Vec::new();
            render_to(name, r, opts, &runs, &mut out)
                .unwrap_or_else(|e| panic!("rendering {name}: {e:#}"));
            (*name, String::from_utf8(out).unwrap())
        })
        .collect()
}

/// Data rows of a CSV file, each checked to have the header's width.
fn csv_rows(name: &str, text: &str) -> usize {
    let mut rd = csv::ReaderBuilder::new().from_reader(text.as_bytes());
    let width = rd.headers().unwrap().len();
    let mut n = 0;
    for rec in rd.records() {
        let rec = rec.unwrap_or_else(|e| panic!("{name} does not parse back: {e}"));
        assert_eq!(rec.len(), width, "{name} row {n}");
        n += 1;
    }
    n
}

/// Rows of each CSV must be the model's rows, and report.json the model itself.
fn check_tables(r: &Report, files: &BTreeMap<&str, String>) {
    let summary_rows = super::tables::by_subscription(r).unwrap().len()
        + super::tables::by_owner(r).unwrap().len();
    for (name, rows) in [
        ("clusters.csv", r.clusters.len()),
        ("findings.csv", r.findings.len()),
        (
            "actions.csv",
            r.findings.iter().filter(|f| f.suppressed.is_none()).count(),
        ),
        ("role-assignments.csv", r.role_checks.len()),
        ("summary.csv", summary_rows),
    ] {
        assert_eq!(csv_rows(name, &files[name]), rows, "{name}");
    }
    let back: Report = serde_json::from_str(&files["report.json"]).expect("report.json parses");
    assert!(back == *r, "report.json reads back as the report");
}

/// Opening and closing tags of the elements whose nesting a stray `<` or `"` from
/// data would break: every one opened is closed.
fn check_balanced(what: &str, html: &str) {
    for tag in [
        "section", "table", "tr", "td", "th", "p", "pre", "div", "b", "span", "a",
    ] {
        let open =
            html.matches(&format!("<{tag}>")).count() + html.matches(&format!("<{tag} ")).count();
        let close = html.matches(&format!("</{tag}>")).count();
        assert_eq!(open, close, "{what}: <{tag}> opened {open}, closed {close}");
    }
    let lower = html.to_ascii_lowercase();
    for tag in ["<script", "<img", "<iframe", "<object", "=\"javascript:"] {
        assert!(!lower.contains(tag), "{what}: {tag} in the page");
    }
}

/// `(content type, decoded body)` of every leaf part of a formatted message.
fn mime_parts(raw: &[u8]) -> Vec<(String, String)> {
    fn unfold(head: &str) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                if let Some(last) = out.last_mut() {
                    last.1.push_str(line.trim_start());
                }
            } else if let Some((k, v)) = line.split_once(':') {
                out.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        out
    }
    fn qp(body: &str) -> Vec<u8> {
        let b = body.replace("=\r\n", "");
        let b = b.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'=' && i + 2 < b.len() {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).expect("quoted-printable escape"));
                i += 3;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        out
    }
    fn walk(part: &str, out: &mut Vec<(String, String)>) {
        let (head, body) = part.split_once("\r\n\r\n").unwrap_or((part, ""));
        let headers = unfold(head);
        let get = |k: &str| {
            headers
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let ctype = get("content-type");
        if let Some(b) = ctype.split("boundary=").nth(1) {
            let b = b.split(';').next().unwrap().trim_matches('"');
            let delim = format!("--{b}");
            for p in body.split(&delim).skip(1) {
                if p.starts_with("--") {
                    break;
                }
                walk(p.trim_start_matches("\r\n"), out);
            }
            return;
        }
        let bytes = match get("content-transfer-encoding")
            .to_ascii_lowercase()
            .as_str()
        {
            "base64" => base64::engine::general_purpose::STANDARD
                .decode(body.replace("\r\n", "").trim())
                .expect("base64 body"),
            "quoted-printable" => qp(body),
            _ => body.as_bytes().to_vec(),
        };
        out.push((ctype, String::from_utf8_lossy(&bytes).replace("\r\n", "\n")));
    }
    let mut out = Vec::new();
    walk(&String::from_utf8_lossy(raw), &mut out);
    out
}

fn part<'a>(parts: &'a [(String, String)], ctype: &str) -> &'a str {
    parts
        .iter()
        .find(|(t, _)| t.starts_with(ctype))
        .map(|(_, b)| b.as_str())
        .unwrap_or_else(|| panic!("no {ctype} part"))
}

/// Every owner's message and the admin's, built from the rendered files in `dir`; the
/// decoded bodies, by recipient (the admin last).
fn mails(
    r: &Report,
    files: &BTreeMap<&str, String>,
    dir: &Path,
) -> Vec<(String, Vec<(String, String)>)> {
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let policy = DomainPolicy::new([DOMAIN]).unwrap();
    let plan = compose::plan(r, &policy);
    let from: Mailbox = format!("audit@{DOMAIN}").parse().unwrap();
    let narrower = Narrower::new(r);
    let mut out = Vec::new();
    for o in &plan.owners {
        let m = compose::owner_message(&narrower, o, &from, false, crate::i18n::Lang::En)
            .unwrap_or_else(|e| panic!("owner message to {}: {e:#}", o.address));
        out.push((o.address.to_string(), mime_parts(&m.formatted())));
    }
    let admin: Address = format!("sec@{DOMAIN}").parse().unwrap();
    let m = compose::admin_message(
        r,
        &plan,
        &admin,
        &from,
        dir,
        (false, crate::i18n::Lang::En),
        None,
    )
    .unwrap_or_else(|e| panic!("admin message: {e:#}"));
    out.push((admin.to_string(), mime_parts(&m.formatted())));
    out
}

/// `(new, resolved)` of the owner of `ids`, as the model has them.
fn owner_changes(r: &Report, ids: &BTreeSet<String>) -> (usize, usize) {
    let mine = |fp: &&String| fp.split('|').nth(1).is_some_and(|c| ids.contains(c));
    (
        r.changes.new.iter().filter(mine).count(),
        r.changes.resolved.iter().filter(mine).count(),
    )
}

fn the_changes_section(page: &str) -> &str {
    let start = page
        .find("<section id=\"changes\">")
        .expect("changes section");
    let end = start + page[start..].find("</section>").unwrap();
    &page[start..end]
}

/// New and resolved findings at 0, 1, the number the page lists, one more, and ten
/// thousand: every renderer succeeds, the page lists at most [`MAX_CHANGES`] of each
/// and says how many more, tables read back whole, each owner is told their counts.
#[test]
fn every_renderer_at_every_size_of_changes() {
    const CLUSTERS: usize = 7;
    let sizes = [0, 1, MAX_CHANGES, MAX_CHANGES + 1, 10_000];
    let mut cases: Vec<(usize, usize)> = sizes.iter().map(|&n| (n, n)).collect();
    cases.extend([
        (0, MAX_CHANGES + 1),
        (MAX_CHANGES + 1, 0),
        (10_000, 1),
        (1, 10_000),
    ]);
    for (new, resolved) in cases {
        let what = format!("{new} new, {resolved} resolved");
        // Three owners; cluster 6's owner tag is not an address (unroutable).
        let mut owner_of = |i: usize| match i {
            6 => "not an address".to_string(),
            i => format!("o{}@{DOMAIN}", i % 3),
        };
        let r = build(CLUSTERS, new, resolved, &mut owner_of, &mut Plain);
        let files = render_files(&r, &RenderOptions::default());
        check_tables(&r, &files);

        let page = &files["report.html"];
        check_balanced(&what, page);
        let ch = the_changes_section(page);
        if new == 0 && resolved == 0 {
            assert!(ch.contains("No change"), "{what}: {ch}");
        } else {
            assert!(
                ch.contains(&format!("{new} new, {resolved} resolved.")),
                "{what}"
            );
        }
        let listed_new = ch.matches("<tr><td data-l=\"Severity\">").count();
        let listed_resolved = ch.matches("<tr><td data-l=\"Rule\">").count();
        assert_eq!(listed_new, new.min(MAX_CHANGES), "{what}");
        assert_eq!(listed_resolved, resolved.min(MAX_CHANGES), "{what}");
        let more_new = format!(
            "and {} more: see findings.csv.",
            new.saturating_sub(MAX_CHANGES)
        );
        assert_eq!(ch.contains(&more_new), new > MAX_CHANGES, "{what}");
        let more_resolved = format!("and {} more.</p>", resolved.saturating_sub(MAX_CHANGES));
        assert_eq!(
            ch.contains(&more_resolved),
            resolved > MAX_CHANGES,
            "{what}"
        );

        let dir = tempfile::tempdir().unwrap();
        let mails = mails(&r, &files, dir.path());
        assert_eq!(mails.len(), 4, "{what}: three owners and the admin");
        for (to, parts) in &mails[..3] {
            let ids: BTreeSet<String> = r
                .clusters
                .iter()
                .filter(|c| &c.owner == to)
                .map(|c| c.cluster_id.to_ascii_lowercase())
                .collect();
            let (n, g) = owner_changes(&r, &ids);
            let html = part(parts, "text/html");
            let text = part(parts, "text/plain");
            check_balanced(&format!("{what}, mail to {to}"), html);
            assert!(
                html.contains(&format!("{n} new, {g} resolved on your clusters")),
                "{what}, {to}: {html}"
            );
            assert!(
                text.contains(&format!(
                    "Since the last run (your clusters): {n} new, {g} resolved."
                )),
                "{what}, {to}: {text}"
            );
            let attached = part(parts, "text/csv");
            assert!(attached.starts_with("subscription_id,"), "{what}, {to}");
        }
        let (to, parts) = &mails[3];
        let html = part(parts, "text/html");
        check_balanced(&format!("{what}, mail to {to}"), html);
        assert!(html.contains("Owners mailed: 3."), "{what}: {html}");
        assert!(html.contains("Unroutable owners (1)"), "{what}: {html}");
        let attached: Vec<&str> = parts.iter().map(|(t, _)| t.as_str()).collect();
        assert!(
            attached
                .iter()
                .filter(|t| t.starts_with("text/csv"))
                .count()
                == 6
                && attached
                    .iter()
                    .filter(|t| t.starts_with("text/html"))
                    .count()
                    == 2,
            "{what}: unroutable.csv, five CSVs, the page and the body: {attached:?}"
        );
    }
}

/// Text that the renderers must carry inertly: markup, quotes, formula starts, line
/// breaks and other control characters, bidi overrides, template syntax.
fn hostile() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => any::<char>().prop_map(String::from),
        1 => prop::sample::select(vec![
            "<script>alert(1)</script>", "<ScRiPt src=x>", "<img src=x onerror=alert(1)>",
            "\"><iframe>", "'", "\"", "&amp;", "&", "<", ">", "/", "=", "+", "-", "@",
            "\r", "\n", "\r\n", "\t", "\0", "\u{1b}[31m", "\u{202e}", "\u{feff}", "{{ x }}",
            "{% if %}", ",", ";", "|", "javascript:",
        ])
        .prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..6).prop_map(|v| v.concat())
}

/// Random text in every field, from a pool drawn by proptest.
struct Random {
    pool: Vec<String>,
    at: usize,
}

impl Text for Random {
    fn text(&mut self, _what: &str, _i: usize) -> String {
        self.at += 1;
        self.pool[self.at % self.pool.len()].clone()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Random counts and random text everywhere: no renderer fails, markup from data
    /// never reaches the page or a mail unescaped, every CSV reads back row for row.
    #[test]
    fn random_reports_render_safely(
        clusters in 1usize..6,
        new in 0usize..(MAX_CHANGES + 4),
        resolved in 0usize..(MAX_CHANGES + 4),
        pool in prop::collection::vec(hostile(), 1..24),
        owners in prop::collection::vec(prop_oneof![hostile(), (0usize..3).prop_map(|k| format!("o{k}@{DOMAIN}"))], 1..6),
        excel in any::<bool>(),
    ) {
        let mut owner_of = |i: usize| owners[i % owners.len()].clone();
        let r = build(clusters, new, resolved, &mut owner_of, &mut Random { pool, at: 0 });
        let files = render_files(&r, &RenderOptions { csv_excel: excel, ..Default::default() });
        check_tables(&r, &files);
        let page = &files["report.html"];
        check_balanced("report.html", page);
        for c in &r.clusters {
            let shown = format!("<b>{}</b>", crate::report::html::escape_text(&c.cluster_name));
            prop_assert!(page.contains(&shown), "{shown} not in the page");
        }
        for f in r.findings.iter().filter(|f| f.suppressed.is_none()).take(50) {
            let shown = format!("<pre>{}</pre>", crate::report::html::escape_text(&f.remediation));
            prop_assert!(page.contains(&shown), "{shown} not in the page");
        }
        let dir = tempfile::tempdir().unwrap();
        for (to, parts) in mails(&r, &files, dir.path()) {
            for (ctype, body) in &parts {
                if ctype.starts_with("text/html") && !body.contains("<section id=\"summary\">") {
                    check_balanced(&format!("mail to {to}"), body);
                }
                if ctype.starts_with("text/csv") {
                    csv_rows(&format!("attachment to {to}"), body);
                }
            }
        }
    }
}
