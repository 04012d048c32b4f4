//! CSV for spreadsheets: RFC 4180, header row, formula injection neutralised.
use std::borrow::Cow;
use std::io::Write;

use super::RenderOptions;
use crate::rules::Report;

/// Characters that start a formula at the beginning of a cell.
const FORMULA_START: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// A cell as written: control characters other than line breaks and tabs (NUL, ESC,
/// C1 ...) escaped as `\u{..}` text; a cell that a spreadsheet would run as a formula gets
/// a leading apostrophe, and so does each part after a `;` that would start one when a
/// semicolon-locale spreadsheet splits the line at `;` (`a;=cmd()` → `a;'=cmd()`).
pub fn cell(s: &str) -> Cow<'_, str> {
    let mut s = crate::logfmt::escape_except(s, &['\n', '\r', '\t']);
    if semicolon_formula(&s) {
        let mut out = String::with_capacity(s.len() + 4);
        for (i, c) in s.char_indices() {
            out.push(c);
            if c == ';' && formula_follows(&s[i + 1..]) {
                out.push('\'');
            }
        }
        s = Cow::Owned(out);
    }
    match s.chars().next() {
        Some(c) if FORMULA_START.contains(&c) => Cow::Owned(format!("'{s}")),
        _ => s,
    }
}

/// Whether a formula would start at the beginning of `rest` (after blanks and quotes a
/// spreadsheet drops).
fn formula_follows(rest: &str) -> bool {
    rest.trim_start_matches([' ', '"'])
        .starts_with(FORMULA_START)
}

fn semicolon_formula(s: &str) -> bool {
    s.match_indices(';')
        .any(|(i, _)| formula_follows(&s[i + 1..]))
}

/// Runs a streaming renderer into a `String` (for mail attachments and tests).
fn to_string(render: impl FnOnce(&mut dyn Write) -> anyhow::Result<()>) -> anyhow::Result<String> {
    let mut out = Vec::new();
    render(&mut out)?;
    Ok(String::from_utf8(out)?)
}

/// A CSV writer on `out`, after the byte-order mark when Excel wants one.
fn writer<'w>(
    out: &'w mut dyn Write,
    opts: &RenderOptions,
) -> anyhow::Result<csv::Writer<&'w mut dyn Write>> {
    if opts.csv_excel {
        out.write_all("\u{feff}".as_bytes())?;
    }
    Ok(csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(out))
}

/// The header row: the columns' stable English keys; with `--csv-excel` in another
/// language than English, a second row naming them in that language (`csv.<key>` of
/// its catalogue), for a person opening the file in a spreadsheet. Programs read the
/// first row; the second is data to them, so it is only there on request.
pub fn header<W: Write>(
    w: &mut csv::Writer<W>,
    columns: &[&str],
    opts: &RenderOptions,
) -> csv::Result<()> {
    w.write_record(columns)?;
    if opts.csv_excel && opts.lang != crate::i18n::Lang::En {
        let names: Vec<String> = columns
            .iter()
            .map(|c| opts.lang.t(&format!("csv.{c}")).into_owned())
            .collect();
        write_row(w, &names)?;
    }
    Ok(())
}

/// Every CSV's columns (for the translated header row's test).
pub const ALL_COLUMNS: &[&[&str]] = &[
    CLUSTER_COLUMNS,
    FINDING_COLUMNS,
    ACTION_COLUMNS,
    ROLE_COLUMNS,
    SUMMARY_COLUMNS,
];

/// One record, every cell neutralised by [`cell`], without a copy per cell.
pub fn write_row<W: Write, S: AsRef<str>>(w: &mut csv::Writer<W>, rec: &[S]) -> csv::Result<()> {
    for field in rec {
        w.write_field(cell(field.as_ref()).as_bytes())?;
    }
    w.write_record(None::<&[u8]>)
}

fn finish(mut w: csv::Writer<&mut dyn Write>) -> anyhow::Result<()> {
    w.flush()?;
    Ok(())
}

pub const CLUSTER_COLUMNS: &[&str] = &[
    "subscription_id",
    "subscription_name",
    "resource_group",
    "cluster_name",
    "cluster_id",
    "location",
    "control_plane_identity",
    "kubelet_identity",
    "migration_status",
    "pools_pending_upgrade",
    "owner",
    "findings",
    "worst_severity",
    "pending_pools",
    "node_resource_group",
    "kubernetes_version",
    "migration_observed_at",
    "checks",
];

pub fn clusters(r: &Report, opts: &RenderOptions) -> anyhow::Result<String> {
    to_string(|out| clusters_to(r, opts, out))
}

/// [`clusters`] into a writer.
pub fn clusters_to(r: &Report, opts: &RenderOptions, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut w = writer(out, opts)?;
    header(&mut w, CLUSTER_COLUMNS, opts)?;
    for c in &r.clusters {
        let rec = [
            c.subscription_id.clone(),
            c.subscription_name.clone(),
            c.resource_group.clone(),
            c.cluster_name.clone(),
            c.cluster_id.clone(),
            c.location.clone(),
            c.control_plane_identity.as_str().to_string(),
            c.kubelet_identity.as_str().to_string(),
            c.migration_status.as_str().to_string(),
            c.pools_pending_upgrade.to_string(),
            c.owner.clone(),
            c.findings.to_string(),
            c.worst_severity
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            c.pending_pools.join(" "),
            c.node_resource_group.clone(),
            c.kubernetes_version.clone(),
            c.migration_observed_at
                .map(|t| t.to_rfc3339())
                .unwrap_or_default(),
            c.checks.cell(),
        ];
        write_row(&mut w, &rec)?;
    }
    finish(w)
}

pub const FINDING_COLUMNS: &[&str] = &[
    "cluster_id",
    "rule_id",
    "severity",
    "identity",
    "message",
    "remediation",
    "suppressed",
    "cluster_name",
    "subscription_id",
    "suppression_justification",
    "suppression_owner",
    "suppression_expires",
    "first_seen",
];

pub fn findings(r: &Report, opts: &RenderOptions) -> anyhow::Result<String> {
    to_string(|out| findings_to(r, opts, out))
}

/// [`findings`] into a writer.
pub fn findings_to(r: &Report, opts: &RenderOptions, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut w = writer(out, opts)?;
    header(&mut w, FINDING_COLUMNS, opts)?;
    for f in &r.findings {
        let s = f.suppressed.as_ref();
        let rec = [
            f.cluster_id.clone(),
            f.rule_id.as_str().to_string(),
            f.severity.as_str().to_string(),
            f.identity.to_string(),
            f.message.clone(),
            f.remediation.clone(),
            if s.is_some() { "true" } else { "false" }.to_string(),
            f.cluster_name.clone(),
            f.subscription_id.clone(),
            s.map(|s| s.justification.clone()).unwrap_or_default(),
            s.map(|s| s.owner.clone()).unwrap_or_default(),
            s.map(|s| s.expires.to_string()).unwrap_or_default(),
            rfc3339(f.first_seen),
        ];
        write_row(&mut w, &rec)?;
    }
    finish(w)
}

fn rfc3339(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map(|t| t.to_rfc3339()).unwrap_or_default()
}

/// `actions.csv`: one row per unsuppressed finding, in the order of the top actions
/// (most severe fix first), with everything needed to act on it without a lookup.
pub const ACTION_COLUMNS: &[&str] = &[
    "subscription_name",
    "resource_group",
    "cluster_name",
    "owner",
    "severity",
    "rule_id",
    "message",
    "remediation",
    "doc_link",
    "first_seen",
    "action",
    "rule_title",
    "identity",
    "subscription_id",
    "cluster_id",
];

pub fn actions(r: &Report, opts: &RenderOptions) -> anyhow::Result<String> {
    to_string(|out| actions_to(r, opts, out))
}

/// [`actions`] into a writer.
pub fn actions_to(r: &Report, opts: &RenderOptions, out: &mut dyn Write) -> anyhow::Result<()> {
    let look = super::html::Lookup::new(r);
    let mut w = writer(out, opts)?;
    header(&mut w, ACTION_COLUMNS, opts)?;
    for a in super::actions::top_actions(r, &look) {
        for f in &a.items {
            let c = look.cluster(&f.cluster_id);
            let field = |get: fn(&crate::rules::ClusterRow) -> &str| c.map(get).unwrap_or_default();
            let subscription = Some(field(|c| &c.subscription_name))
                .filter(|s| !s.is_empty())
                .unwrap_or(&f.subscription_id);
            let identity = f.identity.as_str();
            let first_seen = rfc3339(f.first_seen);
            let rec: [&str; 15] = [
                subscription,
                field(|c| &c.resource_group),
                &f.cluster_name,
                field(|c| &c.owner),
                f.severity.as_str(),
                f.rule_id.as_str(),
                &f.message,
                &f.remediation,
                f.rule_id.info().source,
                &first_seen,
                &a.title,
                a.rule_title,
                &identity,
                &f.subscription_id,
                &f.cluster_id,
            ];
            write_row(&mut w, &rec)?;
        }
    }
    finish(w)
}

pub const ROLE_COLUMNS: &[&str] = &[
    "cluster_id",
    "identity",
    "principal_id",
    "expected_role",
    "expected_scope",
    "actual_role",
    "actual_scope",
    "status",
];

/// `role-assignments.csv`: one row per identity and expected role or actual assignment.
pub fn role_assignments(r: &Report, opts: &RenderOptions) -> anyhow::Result<String> {
    to_string(|out| role_assignments_to(r, opts, out))
}

/// [`role_assignments`] into a writer.
pub fn role_assignments_to(
    r: &Report,
    opts: &RenderOptions,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let mut w = writer(out, opts)?;
    header(&mut w, ROLE_COLUMNS, opts)?;
    for c in &r.role_checks {
        let identity = c.identity.as_str();
        let rec: [&str; 8] = [
            &c.cluster_id,
            &identity,
            &c.principal_id,
            &c.expected_role,
            &c.expected_scope,
            &c.actual_role,
            &c.actual_scope,
            c.status.as_str(),
        ];
        write_row(&mut w, &rec)?;
    }
    finish(w)
}

pub const SUMMARY_COLUMNS: &[&str] = &[
    "group",
    "key",
    "name",
    "clusters",
    "on_sp",
    "pending_clusters",
    "pending_pools",
    "managed",
    "critical",
    "high",
    "medium",
    "low",
    "info",
    "compliant",
];

/// `summary.csv`: per subscription, then per owner.
pub fn summary(r: &Report, opts: &RenderOptions) -> anyhow::Result<String> {
    to_string(|out| summary_to(r, opts, out))
}

/// [`summary`] into a writer.
pub fn summary_to(r: &Report, opts: &RenderOptions, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut w = writer(out, opts)?;
    header(&mut w, SUMMARY_COLUMNS, opts)?;
    let mut rows = super::tables::by_subscription(r)?;
    rows.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.key.cmp(&b.key)));
    let mut owners = super::tables::by_owner(r)?;
    owners.sort_by(|a, b| a.key.cmp(&b.key));
    rows.extend(owners);
    for g in rows {
        let rec = [
            g.group.to_string(),
            g.key,
            g.name,
            g.clusters.to_string(),
            g.on_sp.to_string(),
            g.pending_clusters.to_string(),
            g.pending_pools.to_string(),
            g.managed.to_string(),
            g.critical.to_string(),
            g.high.to_string(),
            g.medium.to_string(),
            g.low.to_string(),
            g.info.to_string(),
            g.compliant.to_string(),
        ];
        write_row(&mut w, &rec)?;
    }
    finish(w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::Lang;

    /// `--csv-excel --lang ja`: the BOM, the English keys, then the Japanese names; no
    /// second row without `--csv-excel` or in English.
    #[test]
    fn excel_in_japanese_gets_a_translated_second_header_row() {
        let r = crate::report::html::tests::tiny();
        let ja = RenderOptions {
            csv_excel: true,
            lang: Lang::Ja,
        };
        let text = clusters(&r, &ja).unwrap();
        let mut lines = text.split("\r\n");
        assert_eq!(
            lines.next().unwrap(),
            format!("\u{feff}{}", CLUSTER_COLUMNS.join(","))
        );
        let second = lines.next().unwrap();
        assert!(
            second.starts_with(
                "サブスクリプション ID,サブスクリプション,リソース グループ,クラスター,"
            ),
            "{second}"
        );
        assert_eq!(second.split(',').count(), CLUSTER_COLUMNS.len());
        let data_rows = text.split("\r\n").filter(|l| !l.is_empty()).count() - 2;
        assert_eq!(data_rows, r.clusters.len());
        for opts in [
            RenderOptions {
                csv_excel: false,
                lang: Lang::Ja,
            },
            RenderOptions {
                csv_excel: true,
                lang: Lang::En,
            },
        ] {
            let text = findings(&r, &opts).unwrap();
            let second = text.split("\r\n").nth(1).unwrap();
            assert!(
                second.is_ascii() && !second.starts_with("cluster_id"),
                "{opts:?}: {second}"
            );
        }
    }

    /// Every column of every CSV has a name in every language.
    #[test]
    fn every_column_is_named_in_every_catalogue() {
        for lang in Lang::ALL {
            for cols in ALL_COLUMNS
                .iter()
                .chain([&crate::mail::compose::UNROUTABLE_COLUMNS])
            {
                for c in *cols {
                    let key = format!("csv.{c}");
                    assert!(lang.catalogue().get(&key).is_some(), "{lang}: {key}");
                }
            }
        }
    }

    #[test]
    fn formulas_are_neutralised() {
        assert_eq!(
            cell("=HYPERLINK(\"http://x\",\"y\")"),
            "'=HYPERLINK(\"http://x\",\"y\")"
        );
        for s in ["+1", "-1", "@SUM(A1)", "\tx", "\rx"] {
            assert!(cell(s).starts_with('\''), "{s:?}");
        }
        assert_eq!(cell("alice@example.com"), "alice@example.com");
    }

    #[test]
    fn a_formula_after_a_semicolon_is_neutralised() {
        assert_eq!(cell("a;=cmd|' /C calc'!A0"), "a;'=cmd|' /C calc'!A0");
        assert_eq!(cell("a; +1;b;-2;@x"), "a;' +1;b;'-2;'@x");
        assert_eq!(cell("a;\"=1\""), "a;'\"=1\"");
        assert_eq!(cell("=1;=2"), "'=1;'=2");
        assert_eq!(cell("a;b; c"), "a;b; c");
        assert_eq!(cell("x;"), "x;");
    }

    #[test]
    fn control_characters_are_escaped_line_breaks_kept() {
        assert_eq!(
            cell("a\0b\u{1b}[31mc\u{85}d\u{9b}e\u{7f}"),
            "a\\0b\\u{1b}[31mc\\u{85}d\\u{9b}e\\u{7f}"
        );
        assert_eq!(cell("line1\nline2\r\n"), "line1\nline2\r\n");
        let mut w = csv::WriterBuilder::new().from_writer(vec![]);
        write_row(&mut w, &["n\0ame\u{1b}", "ok"]).unwrap();
        let bytes = w.into_inner().unwrap();
        assert!(!bytes.iter().any(|b| *b == 0 || *b == 0x1b), "{bytes:?}");
    }
}
