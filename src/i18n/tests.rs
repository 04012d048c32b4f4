//! The catalogues: every key in both, every key the templates and code use exists.
use std::collections::BTreeSet;

use super::*;

fn keys(lang: Lang) -> BTreeSet<String> {
    lang.catalogue()
        .keys()
        .into_iter()
        .map(str::to_string)
        .collect()
}

/// A catalogue's keys without the `.one` forms (a language without a singular, as
/// Japanese, has only `.other`), each `.one` checked to have its `.other`.
fn comparable(lang: Lang) -> BTreeSet<String> {
    let all = keys(lang);
    for k in all.iter().filter(|k| k.ends_with(".one")) {
        let other = format!("{}.other", k.trim_end_matches(".one"));
        assert!(all.contains(&other), "{lang}: {k} without {other}");
    }
    all.into_iter().filter(|k| !k.ends_with(".one")).collect()
}

#[test]
fn both_catalogues_parse_and_hold_only_strings() {
    for lang in Lang::ALL {
        Catalogue::parse(lang, lang.source()).unwrap();
    }
    assert!(Catalogue::parse(Lang::En, "a = 1").unwrap_err().contains("`a` is not a string"));
}

#[test]
fn every_key_is_in_both_catalogues() {
    let en = comparable(Lang::En);
    let mut ja = comparable(Lang::Ja);
    // The rule texts: English in the rule catalogue, every rule's in ja.toml.
    let rule_keys: BTreeSet<String> = CATALOGUE
        .iter()
        .flat_map(|r| [format!("rule.{}.title", r.id), format!("rule.{}.rationale", r.id)])
        .collect();
    for k in &rule_keys {
        assert!(ja.remove(k), "ja.toml lacks {k}");
        assert_ne!(Lang::En.t(k), Lang::Ja.t(k), "{k} is not translated");
    }
    let only_en: Vec<_> = en.difference(&ja).collect();
    let only_ja: Vec<_> = ja.difference(&en).collect();
    assert!(only_en.is_empty(), "keys missing from ja.toml: {only_en:?}");
    assert!(only_ja.is_empty(), "keys missing from en.toml: {only_ja:?}");
}

#[test]
fn every_argument_of_a_message_is_in_its_translation() {
    let args = |s: &str| -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut rest = s;
        while let Some(i) = rest.find('{') {
            rest = &rest[i + 1..];
            if let Some(j) = rest.find('}') {
                out.insert(rest[..j].to_string());
                rest = &rest[j + 1..];
            }
        }
        out
    };
    let ja = Lang::Ja.catalogue();
    for (k, en) in Lang::En.catalogue().entries() {
        let other = k.strip_suffix(".one").map(|b| format!("{b}.other"));
        let Some(j) = ja.get(other.as_deref().unwrap_or(k)) else {
            continue; // every_key_is_in_both_catalogues says so
        };
        // A `.one` form may say "1" instead of `{n}`; the translation has the others.
        let mut want = args(en);
        if other.is_some() {
            want.insert("n".into());
        }
        assert_eq!(want, args(j), "{k}: the arguments differ");
    }
}

/// Every `t(key="...")` in the templates and every `"key"` the code looks up exists in
/// both languages.
#[test]
fn every_key_used_exists() {
    let sources = [
        ("templates/report.html", include_str!("../../templates/report.html")),
        ("templates/email.html", include_str!("../../templates/email.html")),
    ];
    let mut used = BTreeSet::new();
    for (name, text) in sources {
        let mut rest = text;
        let mut n = 0;
        while let Some(i) = rest.find("t(key=\"") {
            rest = &rest[i + 7..];
            let end = rest.find('"').unwrap();
            let key = &rest[..end];
            // With `n=` the key names a count's forms.
            let call_end = rest.find(')').unwrap_or(rest.len());
            if rest[..call_end].contains(" n=") {
                used.insert(format!("{key}.other"));
            } else {
                used.insert(key.to_string());
            }
            n += 1;
        }
        assert!(n > 10, "{name} uses t(key=...) only {n} times");
    }
    // `value | t(ns="...")`: every value of each enumeration the templates translate.
    for s in crate::rules::Severity::ALL {
        used.insert(format!("severity.{s}"));
    }
    for v in ["service_principal", "system_assigned", "user_assigned"] {
        used.insert(format!("control_plane.{v}"));
    }
    for v in ["service_principal", "aks_managed", "user_assigned", "missing"] {
        used.insert(format!("kubelet.{v}"));
    }
    for v in ["not_migrated", "none_observed", "pending", "complete", "unknown"] {
        used.insert(format!("migration.{v}"));
    }
    for v in ["classification", "roles", "secret_expiry", "migration"] {
        used.insert(format!("family.{v}"));
    }
    for lang in Lang::ALL {
        let have = keys(lang);
        let missing: Vec<_> = used
            .iter()
            .filter(|k| !have.contains(*k) && rule_text(lang, k).is_none())
            .collect();
        assert!(missing.is_empty(), "{lang}: used but missing: {missing:?}");
    }
}

#[test]
fn lookups_interpolate_and_pick_the_count_form() {
    assert_eq!(Lang::Ja.t("severity.high"), "高");
    assert_eq!(
        Lang::En.plural("mail.subject_nothing", 1, &[]),
        "AKS identity audit: 1 cluster, nothing to do"
    );
    assert_eq!(
        Lang::En.plural("mail.subject_nothing", 2, &[]),
        "AKS identity audit: 2 clusters, nothing to do"
    );
    assert_eq!(
        Lang::Ja.plural("mail.subject_nothing", 1, &[]),
        "AKS ID 監査: 1 個のクラスター、対応は不要です"
    );
    // An unknown key is the key (a test failure elsewhere, never a panic); an unknown
    // argument stays as written; braces that are not an argument are kept.
    assert_eq!(Lang::Ja.t("no.such.key"), "no.such.key");
    assert_eq!(interpolate("a {x} {y} {} {a-b", |n| (n == "x").then(|| "1".into())), "a 1 {y} {} {a-b");
    assert_eq!(Lang::Ja.rule_title(RuleId::ServicePrincipal), "コントロール プレーンがサービス プリンシパルを使用しています");
    assert_eq!(Lang::En.rule_title(RuleId::ServicePrincipal), RuleId::ServicePrincipal.info().title);
}

#[test]
fn dates_in_the_language_format() {
    let d = NaiveDate::from_ymd_opt(2026, 12, 4).unwrap();
    assert_eq!(Lang::En.date(d), "2026-12-04");
    assert_eq!(Lang::Ja.date(d), "2026 年 12 月 4 日");
    assert_eq!(Lang::Ja.localize_date_text("2026-12-04 06:00 UTC"), "2026 年 12 月 4 日 06:00 UTC");
    assert_eq!(Lang::Ja.localize_date_text("2026-12-04"), "2026 年 12 月 4 日");
    assert_eq!(Lang::En.localize_date_text("2026-12-04 06:00 UTC"), "2026-12-04 06:00 UTC");
    // Not a date: unchanged.
    assert_eq!(Lang::Ja.localize_date_text("never"), "never");
    assert_eq!(Lang::Ja.localize_date_text("2026-13-04"), "2026-13-04");
    assert_eq!(Lang::Ja.localize_date_text("2026-12-04T06:00:00Z"), "2026-12-04T06:00:00Z");
}

#[test]
fn languages_parse_by_code() {
    assert_eq!("ja".parse::<Lang>(), Ok(Lang::Ja));
    assert_eq!("EN".parse::<Lang>(), Ok(Lang::En));
    assert_eq!("jp".parse::<Lang>().unwrap_err(), "unknown language `jp` (expected en or ja)");
}
