//! The page: every section, the trend, links, escaping.
use super::charts::{step_for, trend_view};
use super::parts::with_this_run;
use super::*;
use crate::rules::suppress::Applied;
use crate::rules::{Finding, RuleId, Severity};

pub(crate) fn tiny() -> Report {
    let mut r: Report = serde_json::from_str(include_str!("../testdata/tiny-report.json")).unwrap();
    let finding = |cluster: usize, sev: Severity, suppressed: Option<Applied>| {
        Finding {
        cluster_id: r.clusters[cluster].cluster_id.clone(),
        cluster_name: r.clusters[cluster].cluster_name.clone(),
        subscription_id: r.clusters[cluster].subscription_id.clone(),
        rule_id: RuleId::ServicePrincipal,
        severity: sev,
        identity: crate::rules::IdentityKey::ControlPlane,
        message: format!("cluster {cluster} uses a service principal"),
        remediation: format!("az aks update --name c{cluster} --enable-managed-identity\naz aks nodepool upgrade --node-image-only"),
        subject: String::new(),
        suppressed,
        first_seen: None,
    }
    };
    let accepted = Applied {
        justification: "retired in May".into(),
        owner: "ciso@example.com".into(),
        expires: "2026-05-31".parse().unwrap(),
    };
    r.findings = vec![
        finding(0, Severity::High, None),
        finding(2, Severity::High, Some(accepted)),
    ];
    r.clusters[0].findings = 1;
    r.clusters[0].worst_severity = Some(Severity::High);
    r
}

#[test]
fn steps_are_round_and_cover_the_maximum() {
    for (max, step) in [
        (1, 1),
        (4, 1),
        (5, 2),
        (8, 2),
        (9, 5),
        (20, 5),
        (21, 10),
        (1994, 500),
        (4379, 2000),
    ] {
        assert_eq!(step_for(max), step, "max {max}");
    }
}

#[test]
fn the_page_has_every_section_and_no_script() {
    let r = tiny();
    let page = render(&r).unwrap();
    for id in [
        "summary",
        "trend",
        "changes",
        "subscriptions",
        "findings",
        "clusters",
        "suppressions",
        "coverage",
        "about",
    ] {
        assert!(
            page.contains(&format!("<section id=\"{id}\">")),
            "section {id}"
        );
    }
    assert!(
        !page.contains("<script") && !page.contains("<img") && !page.contains("<link"),
        "self-contained"
    );
    assert!(
        !page.contains("src=") && !page.contains("url("),
        "no external resources"
    );
    assert!(page.contains("<pre>az aks update --name c0 --enable-managed-identity\naz aks nodepool upgrade --node-image-only</pre>"));
    assert!(
        page.contains("retired in May")
            && page.contains("ciso@example.com")
            && page.contains("2026-05-31")
    );
    assert!(page.contains("Only this run so far"));
    // Tera escapes `/` too; the browser reads `&#x2F;` in an attribute as `/`.
    assert!(
        page.contains(&r.baseline.source.replace('/', "&#x2F;")) && page.contains("2021-09-01")
    );
    // The suppressed finding is not listed among the active ones.
    let findings =
        &page[page.find("id=\"findings\"").unwrap()..page.find("id=\"clusters\"").unwrap()];
    assert!(findings.contains("c0 --enable") && !findings.contains("c2 --enable"));
    assert!(findings.contains("(1, 1 suppressed)"));
    // What the audit does not evaluate is said where the auditor reads what was checked.
    let about = &page[page.find("id=\"about\"").unwrap()..];
    assert!(
        about.contains("Not checked") && about.contains("group membership"),
        "{about}"
    );
}

#[test]
fn trend_adds_this_run_and_draws_one_point_per_run() {
    let r = tiny();
    let earlier: Vec<RunRecord> = (1..=3)
        .map(|w| RunRecord {
            run_at: r.generated_at - chrono::Duration::weeks(w),
            on_sp: 3 + w,
            ..RunRecord::of(&r)
        })
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let runs = with_this_run(&r, &earlier);
    assert_eq!(runs.len(), 4);
    assert_eq!(runs.last().unwrap(), &RunRecord::of(&r));
    assert_eq!(
        with_this_run(&r, &runs).len(),
        4,
        "a table ending with this run is used as is"
    );
    let v = trend_view(&trend::trend(&runs).unwrap());
    let sp = &v.lines[0];
    assert_eq!((sp.first, sp.last, sp.dots.len()), (6, 1, 4));
    assert!(
        sp.dots
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1),
        "falling line, left to right"
    );
    let page = render_with_runs(&r, &earlier, crate::i18n::Lang::En).unwrap();
    assert!(page.contains("(4 runs)") && page.contains("<polyline"));
    let one = trend_view(&trend::trend(&runs[3..]).unwrap());
    assert!(
        one.bars.iter().all(|b| b.w <= 24.0),
        "a lone run is a column, not a wall"
    );
}

#[test]
fn only_an_https_baseline_source_becomes_a_link() {
    for bad in [
        "javascript:alert(document.cookie)",
        " JavaScript:alert(1)",
        "java\tscript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "http://learn.microsoft.com/azure/aks",
        "vbscript:msgbox(1)",
        "//evil.example/x",
        "https:alert(1)",
        "https://\u{1b}[31m.example",
    ] {
        assert_eq!(https_link(bad), None, "{bad:?}");
    }
    assert_eq!(
        https_link("https://learn.microsoft.com/azure/aks/x?y=1#z"),
        Some("https://learn.microsoft.com/azure/aks/x?y=1#z")
    );

    let mut r = tiny();
    r.baseline.source = "javascript:alert(document.cookie)//\"><b>x</b>".into();
    let page = render(&r).unwrap();
    assert!(
        !page.to_ascii_lowercase().contains("href=\"javascript"),
        "link"
    );
    assert!(!page.contains("<b>x</b>"), "escaped");
    assert!(
        page.contains("<span class=\"id\">javascript:alert(document.cookie)"),
        "shown as text"
    );
    let mail = crate::report::render_email(&r, &[r.clusters[0].cluster_id.as_str()]).unwrap();
    assert!(
        !mail.to_ascii_lowercase().contains("href=\"javascript"),
        "{mail}"
    );
    assert!(mail.contains("against baseline aks-docs-2021 ("), "{mail}");

    r.baseline.source = "https://learn.microsoft.com/azure/aks".into();
    let page = render(&r).unwrap();
    assert!(page.contains(
        "<a href=\"https:&#x2F;&#x2F;learn.microsoft.com&#x2F;azure&#x2F;aks\">aks-docs-2021</a>"
    ));
    let mail = crate::report::render_email(&r, &[r.clusters[0].cluster_id.as_str()]).unwrap();
    assert!(
        mail.contains("href=\"https:&#x2F;&#x2F;learn.microsoft.com"),
        "{mail}"
    );
}

#[test]
fn control_characters_never_reach_the_page_or_the_mail() {
    let mut r = tiny();
    r.clusters[0].cluster_name = "evil\0nul\u{1b}[31mred\u{9b}2J\u{85}\u{202e}".into();
    r.clusters[0].owner = "o\u{7}wner".into();
    let page = render(&r).unwrap();
    let mail = crate::report::render_email(&r, &[r.clusters[0].cluster_id.as_str()]).unwrap();
    for (what, text) in [("page", &page), ("mail", &mail)] {
        for c in ['\0', '\u{1b}', '\u{9b}', '\u{85}', '\u{7}', '\u{202e}'] {
            assert!(!text.contains(c), "{what}: {c:?}");
        }
        assert!(
            text.contains("evil\\0nul\\u{1b}[31mred\\u{9b}2J\\u{85}\\u{202e}"),
            "{what} shows the name as text"
        );
    }
}

#[test]
fn compliant_is_shown_apart_from_managed_identity() {
    let mut r = tiny();
    // Cluster 0 has a high finding; cluster 2's is suppressed; cluster 1 has none.
    let h = headline(&r);
    assert_eq!((h.clusters, h.compliant, h.compliant_percent), (3, 2, 66.7));
    assert_eq!(h.managed_percent, 66.7);
    let page = render(&r).unwrap();
    assert!(page.contains("<b>66.7%</b>compliant (2 of 3)"), "{page}");
    // A tenant fully on managed identity can be 0 % compliant: the page says both.
    r.summary.managed_identity_percent = 100.0;
    r.summary.compliant = 0;
    let page = render(&r).unwrap();
    assert!(page.contains("<b>100%</b>control plane on managed identity"));
    assert!(page.contains("<b>0%</b>compliant (0 of 3)"), "{page}");
    // Per subscription and per owner, from the clusters and their findings.
    let r = tiny();
    let subs = crate::report::tables::by_subscription(&r).unwrap();
    let owners = crate::report::tables::by_owner(&r).unwrap();
    assert_eq!(subs.iter().map(|g| g.compliant).sum::<i64>(), 2);
    assert_eq!(owners.iter().map(|g| g.compliant).sum::<i64>(), 2);
    let c0 = &r.clusters[0];
    let sub = subs.iter().find(|g| g.key == c0.subscription_id).unwrap();
    assert_eq!((sub.clusters, sub.compliant), (2, 1), "{sub:?}");
}

#[test]
fn clusters_beyond_the_page_are_named_not_linked() {
    // More clusters with findings than the page lists: every link still lands.
    let mut r = tiny();
    let (c0, f0) = (r.clusters[0].clone(), r.findings[0].clone());
    r.clusters.clear();
    r.findings.clear();
    for i in 0..MAX_CLUSTERS + 3 {
        let mut c = c0.clone();
        c.cluster_name = format!("c{i:05}");
        c.cluster_id = format!("{}-{i}", c0.cluster_id);
        let mut f = f0.clone();
        f.cluster_id = c.cluster_id.clone();
        f.cluster_name = c.cluster_name.clone();
        r.clusters.push(c);
        r.findings.push(f);
    }
    // The last clusters' findings first: the rule section and the top action name
    // clusters whose rows are not in the page.
    r.findings.reverse();
    let page = render(&r).unwrap();
    let ids: std::collections::HashSet<&str> = page
        .split(" id=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .collect();
    let hrefs: Vec<&str> = page
        .split("href=\"#")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .collect();
    assert!(hrefs.len() > MAX_CLUSTERS);
    for h in hrefs {
        assert!(ids.contains(h), "#{h} lands nowhere");
    }
    assert_eq!(page.matches("<tr class=\"detail\">").count(), MAX_CLUSTERS);
    assert!(page.contains("and 3 more clusters"), "the rest are counted");
    assert!(
        page.contains("<b>c02002</b>"),
        "named in its rule section, not linked"
    );
}
