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

/// Fixes listed in the admin's mail; the rest are in the report and `actions.csv`.
pub const ADMIN_ACTIONS: usize = 10;
/// Commands shown per fix in the admin's mail.
pub const ADMIN_COMMANDS: usize = 3;
/// Owners named per fix in the admin's mail.
pub const ADMIN_OWNERS: usize = 3;
/// New findings listed in the admin's mail.
pub const ADMIN_NEW: usize = 20;

#[derive(Serialize)]
struct AdminAction<'a> {
    #[serde(flatten)]
    action: super::actions::Action<'a>,
    owners_more: usize,
}

#[derive(Serialize)]
struct AdminView<'a> {
    tenant: Headline,
    actions: Vec<AdminAction<'a>>,
    actions_more: usize,
    has_previous: bool,
    new_count: usize,
    resolved_count: usize,
    new: Vec<FindingView<'a>>,
    by_rule: Vec<super::tables::ChangeCount>,
}

fn admin_view(r: &Report) -> anyhow::Result<AdminView<'_>> {
    let look = Lookup::new(r);
    let mut actions = super::actions::top_actions(r, &look);
    let actions_more = actions.len().saturating_sub(ADMIN_ACTIONS);
    actions.truncate(ADMIN_ACTIONS);
    let actions = actions
        .into_iter()
        .map(|mut a| {
            let shown = a.commands.len().min(ADMIN_COMMANDS);
            a.more_commands += a.commands.len() - shown;
            a.commands.truncate(shown);
            let owners_more = a.owners.len().saturating_sub(ADMIN_OWNERS);
            a.owners.truncate(ADMIN_OWNERS);
            AdminAction {
                action: a,
                owners_more,
            }
        })
        .collect();
    let by_fp: std::collections::HashMap<String, &crate::rules::Finding> =
        r.findings.iter().map(|f| (f.fingerprint(), f)).collect();
    Ok(AdminView {
        tenant: headline(r),
        actions,
        actions_more,
        has_previous: r.changes.has_previous,
        new_count: r.changes.new.len(),
        resolved_count: r.changes.resolved.len(),
        new: r
            .changes
            .new
            .iter()
            .filter_map(|fp| by_fp.get(fp))
            .take(ADMIN_NEW)
            .map(|f| look.view(f))
            .collect(),
        by_rule: super::tables::changes_by_rule(r)?,
    })
}

/// The admin mail's summary, top actions and changes: an HTML fragment for the body
/// and its plain-text alternative.
pub fn render_admin_summary(r: &Report) -> anyhow::Result<(String, String)> {
    render_admin_summary_in(r, Lang::En)
}

/// [`render_admin_summary`] in `lang`.
pub fn render_admin_summary_in(r: &Report, lang: Lang) -> anyhow::Result<(String, String)> {
    let a = admin_view(r)?;
    let mut ctx = Context::new();
    ctx.insert("a", &a);
    let html = engine(lang)?
        .render("admin.html", &ctx)
        .map_err(|e| anyhow::anyhow!("rendering admin.html: {e:?}"))?;
    let t = &a.tenant;
    let mut out = lang.tf(
        "admin.text_summary",
        &[
            ("clusters", &t.clusters),
            ("subscriptions", &t.subscriptions),
            ("managed", &t.managed_percent),
            ("compliant_pct", &t.compliant_percent),
            ("compliant", &t.compliant),
            ("on_sp", &t.on_sp),
            ("pending", &t.kubelet_on_sp),
            ("severities", &severity_list(lang, &t.severities)),
            ("suppressed", &t.suppressed),
            ("gaps", &t.gaps),
        ],
    );
    out.push_str("\n\n");
    out.push_str(&lang.t("admin.text_top_actions"));
    out.push('\n');
    if a.actions.is_empty() {
        out.push_str(&lang.t("report.actions_none"));
        out.push('\n');
    }
    for (i, x) in a.actions.iter().enumerate() {
        let x = &x.action;
        let severity = match lang {
            Lang::En => x.severity.as_str().to_uppercase(),
            _ => lang.t(&format!("severity.{}", x.severity)).into_owned(),
        };
        let title = match lang {
            Lang::En => x.title.clone(),
            _ => lang.plural(&format!("action.{}", x.rule), x.findings, &[]),
        };
        out.push_str(&format!(
            "{}. [{severity}] {} ({}; {})\n",
            i + 1,
            one_line(&title),
            x.rule,
            lang.plural("admin.clusters_count", x.clusters, &[])
        ));
        for c in &x.commands {
            out.push_str(&indent(&clean(c), "    "));
        }
    }
    if a.actions_more > 0 {
        out.push_str(&lang.tf("admin.text_more_fixes", &[("n", &a.actions_more)]));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&if !a.has_previous {
        lang.t("mail.text_changes_first").into_owned()
    } else {
        lang.tf(
            "admin.text_changes",
            &[("new", &a.new_count), ("resolved", &a.resolved_count)],
        )
    });
    out.push('\n');
    for x in &a.new {
        let severity = match lang {
            Lang::En => x.f.severity.as_str().to_uppercase(),
            _ => lang.t(&format!("severity.{}", x.f.severity)).into_owned(),
        };
        out.push_str(&format!(
            "- [{severity}] {} {}: {}\n",
            x.f.rule_id,
            one_line(&x.f.cluster_name),
            one_line(&lang.finding_message_or_english(&x.f.message))
        ));
    }
    Ok((html, out))
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
            (
                "date",
                &lang.localize_date_text(&one_line(&m.baseline_date)),
            ),
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

    /// The admin summary and owner mail in Japanese: headings, the action sentence,
    /// severities and the finding's message in Japanese; the command as it is.
    #[test]
    fn the_mail_bodies_in_japanese() {
        let r = tiny();
        let (html, text) = render_admin_summary_in(&r, Lang::Ja).unwrap();
        assert!(html.contains(">優先する対応</h3>"), "{html}");
        assert!(
            html.contains("1 個のクラスターをサービス プリンシパルからマネージド ID に移行する"),
            "{html}"
        );
        assert!(html.contains("az aks update --name c0 --enable-managed-identity"));
        assert!(
            text.contains("1. [高] 1 個のクラスターをサービス プリンシパルから"),
            "{text}"
        );
        assert!(
            text.starts_with("概要: 2 個のサブスクリプションの 3 個のクラスター。"),
            "{text}"
        );
        let id = r.clusters[0].cluster_id.clone();
        let owner = render_text_in(&r, &[&id], Lang::Ja);
        assert!(owner.starts_with("AKS ID 監査、"), "{owner}");
        assert!(
            owner.contains("あなたのクラスター: 1 個、うち 1 個に対応が必要です (高 1 件)。"),
            "{owner}"
        );
        let page = render_email_in(&r, &[&id], Lang::Ja).unwrap();
        assert!(page.contains("<html lang=\"ja\">"));
        assert!(
            page.contains("あなたの 1 個のクラスターのうち 1 個に対応が必要です"),
            "{page}"
        );
    }

    #[test]
    fn the_admin_summary_has_the_tenant_top_actions_and_changes() {
        let mut r = tiny();
        let (html, text) = render_admin_summary(&r).unwrap();
        assert!(html.contains(">Top actions</h3>"), "{html}");
        assert!(
            html.contains("Migrate 1 cluster from its service principal to managed identity"),
            "{html}"
        );
        assert!(html.contains("az aks update --name c0 --enable-managed-identity"));
        assert!(
            !html.contains("c2 --enable"),
            "the suppressed finding is no action"
        );
        assert!(text.contains("1. [HIGH] Migrate 1 cluster"), "{text}");
        assert!(text.contains("\n    az aks update --name c0"), "{text}");
        assert!(text.contains("66.7% compliant (2 of 3:"), "{text}");
        // Changes: the first run says so; later, what is new.
        assert!(!r.changes.has_previous);
        assert!(html.contains("First run with this state"), "{html}");
        r.changes.has_previous = true;
        r.changes.new = vec![r.findings[0].fingerprint()];
        let (html, text) = render_admin_summary(&r).unwrap();
        assert!(html.contains("1 new, 0 resolved (AKSMI001 +1)"), "{html}");
        assert!(
            html.contains("cluster 0 uses a service principal"),
            "{html}"
        );
        assert!(
            text.contains("Since the last run: 1 new, 0 resolved."),
            "{text}"
        );
        // Many fixes: the first ADMIN_ACTIONS, and how many more.
        let f = r.findings[0].clone();
        r.findings = crate::rules::catalogue::CATALOGUE
            .iter()
            .map(|rule| {
                let mut f = f.clone();
                f.rule_id = rule.id;
                f
            })
            .collect();
        let (html, _) = render_admin_summary(&r).unwrap();
        let more = crate::rules::catalogue::CATALOGUE.len() - ADMIN_ACTIONS;
        assert!(
            html.contains(&format!("and {more} more fixes in the report")),
            "{html}"
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
