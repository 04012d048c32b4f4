//! The owner's mail body: their clusters and what to run first, then one line per
//! other section of the report. HTML with tables and CSS bars only (mail clients strip
//! SVG, scripts and often `<style>`), and a plain-text alternative with the same content.
use std::collections::HashSet;

use serde::Serialize;
use tera::Context;

use super::html::{engine, headline, when, FindingView, Headline, Lookup};
use crate::history::MigrationStatus;
use crate::i18n::Lang;
use crate::rules::suppress::EntryState;
use crate::rules::{ClusterRow, ControlPlaneIdentity, Report, Severity};

/// Findings listed in a message; the rest are in the attached `findings.csv`.
pub const MAX_FINDINGS: usize = 50;

#[derive(Serialize)]
struct MailView<'a> {
    generated: String,
    clusters: Vec<&'a ClusterRow>,
    need_action: usize,
    /// (severity, count) over the owner's unsuppressed findings, most severe first, non-zero.
    severities: Vec<(&'static str, usize)>,
    findings: Vec<FindingView<'a>>,
    findings_total: usize,
    /// Findings beyond the [`MAX_FINDINGS`] shown (Tera cannot subtract a `length`).
    findings_more: usize,
    managed_pct: f64,
    pending_pct: f64,
    sp_pct: f64,
    suppressed: usize,
    expired: usize,
    new: usize,
    resolved: usize,
    has_previous: bool,
    tenant: Headline,
    gaps: usize,
    baseline: String,
    baseline_date: String,
    baseline_source: String,
    /// `baseline_source` when it is safe as a link ([`super::html::https_link`]).
    baseline_link: Option<String>,
    tool: String,
}

fn mail_view<'a>(r: &'a Report, ids: &[&str]) -> MailView<'a> {
    let wanted: HashSet<String> = ids.iter().map(|i| i.to_ascii_lowercase()).collect();
    let mine = |id: &str| wanted.contains(&id.to_ascii_lowercase());
    let look = Lookup::new(r);
    let rank = |s: Option<Severity>| s.map(|s| s as i32 + 1).unwrap_or(0);
    let mut clusters: Vec<&ClusterRow> =
        r.clusters.iter().filter(|c| mine(&c.cluster_id)).collect();
    clusters.sort_by(|a, b| {
        (rank(b.worst_severity), b.findings, &a.cluster_name).cmp(&(
            rank(a.worst_severity),
            a.findings,
            &b.cluster_name,
        ))
    });
    let active: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.suppressed.is_none() && mine(&f.cluster_id))
        .collect();
    let severities = Severity::ALL
        .iter()
        .map(|s| {
            (
                s.as_str(),
                active.iter().filter(|f| f.severity == *s).count(),
            )
        })
        .filter(|(_, n)| *n > 0)
        .collect();
    let fp_mine = |fp: &String| fp.split('|').nth(1).is_some_and(mine);
    let n = clusters.len().max(1) as f64;
    let pct = |k: usize| (k as f64 * 1000.0 / n).round() / 10.0;
    let on_sp = clusters
        .iter()
        .filter(|c| c.control_plane_identity == ControlPlaneIdentity::ServicePrincipal)
        .count();
    let pending = clusters
        .iter()
        .filter(|c| c.migration_status == MigrationStatus::Pending)
        .count();
    let suppressed: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.suppressed.is_some() && mine(&f.cluster_id))
        .collect();
    MailView {
        generated: when(r.generated_at),
        need_action: clusters.iter().filter(|c| c.findings > 0).count(),
        managed_pct: if clusters.is_empty() {
            0.0
        } else {
            pct(clusters.len() - on_sp - pending)
        },
        pending_pct: if clusters.is_empty() {
            0.0
        } else {
            pct(pending)
        },
        sp_pct: if clusters.is_empty() { 0.0 } else { pct(on_sp) },
        clusters,
        severities,
        findings_total: active.len(),
        findings_more: active.len().saturating_sub(MAX_FINDINGS),
        findings: active
            .into_iter()
            .take(MAX_FINDINGS)
            .map(|f| look.view(f))
            .collect(),
        suppressed: suppressed.len(),
        expired: r
            .suppressions
            .entries
            .iter()
            .filter(|e| e.status == EntryState::Expired)
            .count(),
        new: r.changes.new.iter().filter(|fp| fp_mine(fp)).count(),
        resolved: r.changes.resolved.iter().filter(|fp| fp_mine(fp)).count(),
        has_previous: r.changes.has_previous,
        tenant: headline(r),
        gaps: r.summary.gaps + r.summary.skipped_rows,
        baseline: r.baseline.name.clone(),
        baseline_date: r.baseline.date.clone(),
        baseline_source: r.baseline.source.clone(),
        baseline_link: super::html::https_link(&r.baseline.source).map(str::to_string),
        tool: format!("{} {}", r.tool, r.tool_version),
    }
}

/// The HTML body of one owner's message, about the clusters in `clusters` (ids, any case).
pub fn render_email(report: &Report, clusters: &[&str]) -> anyhow::Result<String> {
    render_email_in(report, clusters, Lang::En)
}

/// [`render_email`] in `lang`.
pub fn render_email_in(report: &Report, clusters: &[&str], lang: Lang) -> anyhow::Result<String> {
    let mut ctx = Context::new();
    ctx.insert("lang", lang.as_str());
    ctx.insert("m", &mail_view(report, clusters));
    engine(lang)?
        .render("email.html", &ctx)
        .map_err(|e| anyhow::anyhow!("rendering email.html: {e:?}"))
}

fn indent(text: &str, by: &str) -> String {
    text.lines().map(|l| format!("{by}{l}\n")).collect()
}

/// Control characters other than newline and tab would garble a terminal or mail
/// client; values come from tags anyone with Contributor can write.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                ' '
            } else {
                c
            }
        })
        .collect()
}

fn one_line(s: &str) -> String {
    clean(s).replace(['\n', '\t'], " ")
}

/// The plain-text alternative of [`render_email`], with the same content.
pub fn render_text(report: &Report, clusters: &[&str]) -> String {
    render_text_in(report, clusters, Lang::En)
}

/// An identity key (`control_plane`, `kubelet`, `addon:<key>`) as the language names
/// it; an add-on's key stays as it is.
fn identity_label(lang: Lang, key: &str) -> String {
    match lang {
        Lang::En => key.to_string(),
        _ => lang
            .lookup(&format!("identity.{key}"))
            .map(str::to_string)
            .unwrap_or_else(|| key.to_string()),
    }
}

/// `(severity, n)` pairs as `2 high, 1 medium` (`高 2 件、中 1 件` in Japanese).
fn severity_list(lang: Lang, sev: &[(&str, usize)]) -> String {
    sev.iter()
        .map(|(s, n)| {
            lang.tf(
                "mail.severity_count",
                &[("n", n), ("severity", &lang.t(&format!("severity.{s}")))],
            )
        })
        .collect::<Vec<_>>()
        .join(&lang.t("mail.list_separator"))
}

/// [`render_text`] in `lang`.
pub fn render_text_in(report: &Report, clusters: &[&str], lang: Lang) -> String {
    let m = mail_view(report, clusters);
    let generated = lang.localize_date_text(&m.generated);
    let mut out = lang.tf("mail.text_heading", &[("generated", &generated)]);
    out.push_str("\n\n");
    if m.clusters.is_empty() {
        out.push_str(&lang.t("mail.text_none_yours"));
        out.push('\n');
    } else {
        let sev = severity_list(lang, &m.severities);
        let sev = if sev.is_empty() {
            String::new()
        } else {
            format!(" ({sev})")
        };
        out.push_str(&lang.tf(
            "mail.text_your_clusters",
            &[
                ("n", &m.clusters.len()),
                ("need", &m.need_action),
                ("severities", &sev),
            ],
        ));
        out.push_str("\n\n");
        let sep = lang.t("mail.list_separator");
        for c in &m.clusters {
            let state = match c.migration_status {
                MigrationStatus::Pending => lang.tf(
                    "mail.text_state_pending",
                    &[("pools", &c.pending_pools.join(&sep))],
                ),
                _ if c.control_plane_identity == ControlPlaneIdentity::ServicePrincipal => {
                    lang.t("mail.text_state_sp").into_owned()
                }
                s => lang.tf(
                    "mail.text_state_other",
                    &[
                        (
                            "mode",
                            &lang.t(&format!("control_plane.{}", c.control_plane_identity)),
                        ),
                        ("status", &lang.t(&format!("migration.{s}"))),
                    ],
                ),
            };
            let worst = c
                .worst_severity
                .map(|s| {
                    lang.tf(
                        "mail.text_worst",
                        &[
                            ("n", &c.findings),
                            ("severity", &lang.t(&format!("severity.{s}"))),
                        ],
                    )
                })
                .unwrap_or_else(|| lang.t("mail.text_no_findings").into_owned());
            out.push_str(&format!(
                "- {} ({}, {}): {worst}; {state}\n",
                one_line(&c.cluster_name),
                one_line(&c.subscription_name),
                one_line(&c.resource_group)
            ));
        }
        if !m.findings.is_empty() {
            out.push('\n');
            out.push_str(&lang.t("mail.text_what_to_run"));
            out.push('\n');
        }
        for x in &m.findings {
            let f = x.f;
            let severity = match lang {
                Lang::En => f.severity.as_str().to_uppercase(),
                _ => lang.t(&format!("severity.{}", f.severity)).into_owned(),
            };
            out.push_str(&format!(
                "\n[{severity}] {} {} ({}): {}\n",
                f.rule_id,
                one_line(&f.cluster_name),
                one_line(&identity_label(lang, &f.identity.as_str())),
                one_line(&lang.finding_message_or_english(&f.message))
            ));
            out.push_str(&indent(&clean(&f.remediation), "    "));
        }
        if m.findings_total > m.findings.len() {
            out.push('\n');
            out.push_str(&lang.tf(
                "mail.text_more",
                &[("n", &(m.findings_total - m.findings.len()))],
            ));
            out.push('\n');
        }
    }
    let t = &m.tenant;
    out.push('\n');
    out.push_str(&lang.tf(
        "mail.text_tenant",
        &[
            ("clusters", &t.clusters),
            ("managed", &t.managed_percent),
            ("on_sp", &t.on_sp),
            ("pending", &t.kubelet_on_sp),
            ("severities", &severity_list(lang, &t.severities)),
        ],
    ));
    out.push('\n');
    out.push_str(&if m.has_previous {
        lang.tf(
            "mail.text_changes",
            &[("new", &m.new), ("resolved", &m.resolved)],
        )
    } else {
        lang.t("mail.text_changes_first").into_owned()
    });
    out.push('\n');
    out.push_str(&lang.tf(
        "mail.text_suppressed",
        &[("n", &m.suppressed), ("expired", &m.expired)],
    ));
    out.push('\n');
    out.push_str(&if m.gaps == 0 {
        lang.t("mail.text_coverage_all").into_owned()
    } else {
        lang.tf("mail.text_coverage_gaps", &[("n", &m.gaps)])
    });
    out.push('\n');
    out.push_str(&lang.tf(
        "mail.text_checked",
        &[
            ("baseline", &one_line(&m.baseline)),
            ("date", &lang.localize_date_text(&one_line(&m.baseline_date))),
            ("source", &one_line(&m.baseline_source)),
            ("tool", &m.tool),
        ],
    ));
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::html::tests::tiny;

    #[test]
    fn the_owner_sees_their_clusters_first_and_one_line_per_section() {
        let mut r = tiny();
        r.clusters[0].cluster_name = "a\u{1b}[31mred\rx".into();
        let id = r.clusters[0].cluster_id.to_uppercase();
        let text = render_text(&r, &[&id]);
        assert!(
            text.contains("Your clusters: 1; 1 need action (1 high)."),
            "{text}"
        );
        assert!(
            text.contains("- a [31mred x (one, rg)"),
            "control characters are blanked: {text}"
        );
        assert!(
            !text.contains("- b (") && !text.contains("- c ("),
            "only the owner's clusters: {text}"
        );
        assert!(text.contains(
            "\n    az aks update --name c0 --enable-managed-identity\n    az aks nodepool upgrade"
        ));
        for line in [
            "Tenant: 3 clusters",
            "Since the last run",
            "Suppressed (your clusters): 0",
            "Coverage: everything",
            "Checked against baseline aks-docs-2021",
        ] {
            assert!(text.contains(line), "{line}: {text}");
        }
        let html = render_email(&r, &[&id]).unwrap();
        assert!(
            html.contains("1 of your 1 cluster needs action (1 high)"),
            "{html}"
        );
        assert!(!html.contains("<svg") && !html.contains("<script"));
        let c = render_email(&r, &[r.clusters[2].cluster_id.as_str()]).unwrap();
        assert!(
            c.contains("nothing to do") && c.contains("1 of your findings are suppressed"),
            "{c}"
        );
    }

    #[test]
    fn an_owner_with_more_findings_than_shown_is_told_how_many_more() {
        let mut r = tiny();
        let f = r.findings[0].clone();
        let id = f.cluster_id.clone();
        r.findings = (0..MAX_FINDINGS + 7)
            .map(|i| {
                let mut f = f.clone();
                f.subject = format!("subject-{i}");
                f
            })
            .collect();
        let html = render_email(&r, &[&id]).unwrap();
        assert!(
            html.contains("… and 7 more in the attached findings.csv"),
            "{html}"
        );
        let text = render_text(&r, &[&id]);
        assert!(text.contains("7 more"), "{text}");
    }
}
