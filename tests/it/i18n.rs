//! `--lang ja` end to end: the demo run's report, owner and admin mail hold no English
//! catalogue text (the commands, ids and names they show aside).
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use aks_identity_audit::i18n::Lang;
use aks_identity_audit::rules::catalogue::CATALOGUE;
use serde_json::Value;

use crate::support::{bin, read, root, stderr};

/// English values that may appear in a Japanese page: names Azure prints in English
/// in the portal's Japanese UI and in commands (role names), product names.
const ALLOWED: &[&str] = &[
    "Managed Identity Operator",
    "Key Vault Crypto User",
    "Key Vault Contributor",
    "Private DNS Zone Contributor",
    "Container Registry Repository Reader",
    "Network Contributor",
    "Monitoring Metrics Publisher",
    "User Access Administrator",
    "Owner",
    "Contributor",
    "Reader",
    "AcrPull",
    "Container Insights",
    "Microsoft Entra",
    "Microsoft Graph",
];

/// Every English text of the catalogue a Japanese page must not show: each message
/// that differs from its Japanese (a value both languages spell the same, such as
/// `kubelet`, is a name), the rule catalogue's titles and rationales, and the literal
/// runs of at least three words of each finding-message pattern.
fn english_texts() -> BTreeSet<String> {
    let ja = Lang::Ja.catalogue();
    let mut out = BTreeSet::new();
    for (key, en) in Lang::En.catalogue().entries() {
        let ja_key = key
            .strip_suffix(".one")
            .map(|b| format!("{b}.other"))
            .unwrap_or_else(|| key.to_string());
        if ja.get(&ja_key) == Some(en) || key == "misc.phrase_separator" {
            continue;
        }
        // The literal parts between placeholders.
        let mut rest = en;
        let mut parts = vec![];
        while let Some(open) = rest.find('{') {
            parts.push(&rest[..open]);
            rest = rest[open..]
                .find('}')
                .map(|c| &rest[open + c + 1..])
                .unwrap_or("");
        }
        parts.push(rest);
        let whole = parts.len() == 1;
        for p in parts {
            let p = p.trim_matches(|c: char| c.is_whitespace() || ",;:.()`".contains(c));
            // A whole short message is checked as a word ("Findings"); a fragment
            // between placeholders only when it says something (three words or more).
            if p.is_empty() || (!whole && p.split_whitespace().count() < 3) {
                continue;
            }
            if !ALLOWED.contains(&p) {
                out.insert(p.to_string());
            }
        }
    }
    for r in CATALOGUE {
        out.insert(r.title.to_string());
        out.insert(r.rationale.to_string());
    }
    out
}

/// The text a reader sees: outside tags, without `<pre>`, `<code>`, `<style>` (the
/// commands and CSS) and entities decoded enough for the comparison.
fn visible_text(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    let mut skip: Option<&str> = None;
    while let Some(open) = rest.find('<') {
        if skip.is_none() {
            out.push_str(&rest[..open]);
            out.push(' ');
        }
        let Some(close) = rest[open..].find('>').map(|c| open + c) else {
            break;
        };
        let tag = rest[open + 1..close].to_ascii_lowercase();
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        match skip {
            Some(s) if tag.starts_with('/') && name == s => skip = None,
            None if !tag.starts_with('/') && ["pre", "code", "style"].contains(&name.as_str()) => {
                skip = Some(match name.as_str() {
                    "pre" => "pre",
                    "code" => "code",
                    _ => "style",
                })
            }
            _ => {}
        }
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out.replace("&#x27;", "'")
        .replace("&#x2F;", "/")
        .replace("&quot;", "\"")
        .replace("&gt;", ">")
        .replace("&lt;", "<")
        .replace("&amp;", "&")
}

/// Whether `needle` occurs in `hay` as words (not inside a longer word or id).
fn contains_words(hay: &str, needle: &str) -> bool {
    let word = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || "_-/".contains(c));
    hay.match_indices(needle).any(|(i, _)| {
        !word(hay[..i].chars().next_back()) && !word(hay[i + needle.len()..].chars().next())
    })
}

/// The catalogue texts found in `text`, after removing the allowed names and file
/// names (`clusters.csv`, `report.json`), which are names, not prose.
fn leaks(text: &str, english: &BTreeSet<String>) -> Vec<String> {
    let mut text = text.to_string();
    for a in ALLOWED {
        text = text.replace(a, " ");
    }
    let text: String = text
        .split(' ')
        .filter(|w| {
            ![".csv", ".json", ".md", ".toml"].iter().any(|ext| {
                w.trim_end_matches([')', ',', '.', '、', '。'])
                    .ends_with(ext)
            })
        })
        .collect::<Vec<_>>()
        .join(" ");
    english
        .iter()
        .filter(|e| contains_words(&text, e))
        .cloned()
        .collect()
}

/// The venv's Python (scripts/setup-test-tools.sh); it parses the .eml files.
fn python() -> PathBuf {
    let p = root().join("tests/.tools/venv/bin/python");
    assert!(
        p.is_file(),
        "{} is missing: run scripts/setup-test-tools.sh",
        p.display()
    );
    p
}

/// An .eml's decoded subject, plain-text and HTML parts.
fn parse_eml(path: &Path) -> Value {
    let script = r#"
import email, email.policy, json, sys
msg = email.message_from_bytes(open(sys.argv[1], "rb").read(), policy=email.policy.default)
raw = open(sys.argv[1], "rb").read().split(b"\r\n\r\n", 1)[0].decode("ascii")
out = {"subject": str(msg["Subject"]), "raw_head": raw, "text": None, "html": None}
for part in msg.walk():
    if part.get_content_disposition() == "attachment" or part.is_multipart():
        continue
    if part.get_content_type() == "text/plain" and out["text"] is None:
        out["text"] = part.get_content()
    elif part.get_content_type() == "text/html" and out["html"] is None:
        out["html"] = part.get_content()
json.dump(out, sys.stdout)
"#;
    let o = Command::new(python())
        .args(["-c", script])
        .arg(path)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}: {}", path.display(), stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn demo_run(lang: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = bin()
        .args([
            "run",
            "--demo",
            "--lang",
            lang,
            "--admin",
            "audit-admins@contoso.com",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", stderr(&o));
    (tmp, out)
}

fn owner_mails(out: &Path) -> Vec<(String, Value)> {
    let mut v: Vec<(String, Value)> = std::fs::read_dir(out.join("outbox"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().to_string(),
                parse_eml(&p),
            )
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(!v.is_empty(), "no owner mail in the outbox");
    v
}

#[test]
fn the_leak_check_finds_english_in_an_english_run() {
    // The check itself: on the English demo it must find the catalogue's text.
    let (_tmp, out) = demo_run("en");
    let english = english_texts();
    let page = visible_text(&read(&out.join("report.html")));
    let found = leaks(&page, &english);
    for must in ["Summary", "Findings by rule", "What was checked"] {
        assert!(
            found.iter().any(|f| f == must),
            "{must} not found: {found:?}"
        );
    }
    assert!(
        found.iter().any(|f| CATALOGUE.iter().any(|r| r.title == f)),
        "no rule title found: {found:?}"
    );
    let (_, mail) = &owner_mails(&out)[0];
    assert!(!leaks(&visible_text(mail["html"].as_str().unwrap()), &english).is_empty());
}

#[test]
fn a_japanese_demo_run_shows_no_untranslated_catalogue_text() {
    let (_tmp, out) = demo_run("ja");
    let english = english_texts();
    let html = read(&out.join("report.html"));
    assert!(html.contains("<html lang=\"ja\">"));
    let report: Value = serde_json::from_str(&read(&out.join("report.json"))).unwrap();
    // The baseline's title is the name of a document (data of the baseline file).
    let baseline_title = report["baseline"]["title"].as_str().unwrap();
    let page = visible_text(&html).replace(baseline_title, " ");
    assert_eq!(leaks(&page, &english), Vec::<String>::new(), "report.html");
    // Every reason a check was not evaluated was shown in Japanese.
    let mut reasons = 0;
    for c in report["clusters"].as_array().unwrap() {
        for (family, status) in c["checks"].as_object().unwrap() {
            let status = status.as_str().unwrap();
            if status != "evaluated" {
                reasons += 1;
                let why = status.trim_start_matches("not_evaluated: ");
                assert_ne!(
                    Lang::Ja.not_evaluated_reason(status),
                    why,
                    "{family}: untranslated"
                );
            }
        }
    }
    assert!(reasons > 0, "the demo has a cluster not fully checked");
    let source = report["source"].as_str().unwrap();
    assert_ne!(Lang::Ja.source_text(source), source, "source untranslated");
    // Every finding's message was shown in Japanese (none fell back to English).
    let findings = report["findings"].as_array().unwrap();
    assert!(findings.len() > 10);
    for f in findings {
        let m = f["message"].as_str().unwrap();
        assert!(
            Lang::Ja.finding_message(m).is_some(),
            "untranslated message: {m}"
        );
    }
    // report.json and the CSVs stay English: they are an API.
    assert!(findings.iter().any(|f| f["severity"] == "high"));
    assert!(read(&out.join("findings.csv")).starts_with("cluster_id,rule_id,severity"));
    for (name, mail) in owner_mails(&out) {
        let subject = mail["subject"].as_str().unwrap();
        assert!(subject.starts_with("AKS ID 監査"), "{name}: {subject}");
        let raw: String = mail["raw_head"]
            .as_str()
            .unwrap()
            .lines()
            .skip_while(|l| !l.starts_with("Subject:"))
            .take_while(|l| l.starts_with("Subject:") || l.starts_with(' '))
            .collect();
        assert!(
            raw.is_ascii() && raw.to_ascii_lowercase().contains("=?utf-8?b?"),
            "{name}: {raw}"
        );
        let body = visible_text(mail["html"].as_str().unwrap());
        assert_eq!(
            leaks(&body, &english),
            Vec::<String>::new(),
            "{name} (HTML)"
        );
        // The text part without the commands (indented by four spaces).
        let text: String = mail["text"]
            .as_str()
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("    "))
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(
            leaks(&text, &english),
            Vec::<String>::new(),
            "{name} (text)"
        );
    }
}

// ------------------------------------------------- the Japanese pages in a browser

use crate::report::{assert_not_blank, browse, decode, demo_report, now, screenshot};
use aks_identity_audit::report::{html, render_email_in};
use aks_identity_audit::state::demo_seed as demo;

/// A Japanese glyph draws something other than the box a font without it draws (tofu):
/// the machine has a Japanese font (scripts/setup-test-tools.sh installs one), so the
/// screenshots below show text.
#[test]
fn japanese_text_renders_with_real_glyphs() {
    let dir = tempfile::tempdir().unwrap();
    let shot = |name: &str, text: &str| {
        let page = dir.path().join(format!("{name}.html"));
        std::fs::write(
            &page,
            format!("<!DOCTYPE html><meta charset=utf-8><body style=\"margin:0;font-size:120px\">{text}</body>"),
        )
        .unwrap();
        // Not `screenshot`: these pages are no documentation.
        let png = dir.path().join(format!("{name}.png"));
        browse(
            &page,
            &[
                "--window-size=400,200",
                &format!("--screenshot={}", png.display()),
            ],
        );
        decode(&png).rgb
    };
    // Private-use code points: no font has them, every one is drawn as the same box.
    let tofu = shot("tofu", "\u{F0001}\u{F0002}");
    assert_eq!(
        tofu,
        shot("tofu2", "\u{F0003}\u{F0004}"),
        "the reference boxes differ"
    );
    let kanji = shot("kanji", "監査");
    assert_ne!(
        kanji, tofu,
        "Japanese text is drawn as empty boxes: no Japanese font (run scripts/setup-test-tools.sh)"
    );
    assert_ne!(
        kanji,
        shot("kana", "ノード"),
        "different characters, different glyphs"
    );
}

/// The Japanese report at desktop width and the owner mail at phone width render
/// (`AKS_AUDIT_SCREENSHOTS=$PWD/docs` writes docs/report-ja.png and
/// docs/email-ja-phone.png).
#[test]
fn browser_renders_the_japanese_report_and_mail() {
    let dir = tempfile::tempdir().unwrap();
    let r = demo_report();
    let page = dir.path().join("report-ja.html");
    std::fs::write(
        &page,
        html::render_with_runs(&r, &demo::seed_runs(now()), Lang::Ja).unwrap(),
    )
    .unwrap();
    assert!(read(&page).contains("優先する対応"));
    // Taller than the English one: Japanese lines wrap more, the charts come lower.
    assert_not_blank(&screenshot(&page, 1200, 3200, &[]), "Japanese report");
    let owner = "legacy-owners@contoso.com";
    let ids: Vec<&str> = r
        .clusters
        .iter()
        .filter(|c| c.owner == owner)
        .map(|c| c.cluster_id.as_str())
        .collect();
    let mail = dir.path().join("email-ja.html");
    std::fs::write(&mail, render_email_in(&r, &ids, Lang::Ja).unwrap()).unwrap();
    assert!(read(&mail).contains("実行するコマンド"));
    let phone = screenshot(&mail, 390, 844, &[]);
    assert!(
        phone
            .rgb
            .iter()
            .filter(|p| **p == [0xd3, 0x2f, 0x2f])
            .count()
            > 300,
        "the red status bar of the owner's clusters is drawn"
    );
}

/// A generated tenant (`emulator generate`: every identity mode, migrations, grants
/// and add-ons at random) writes messages of many shapes: each one translates.
#[test]
fn every_finding_of_a_generated_tenant_translates() {
    let tmp = tempfile::tempdir().unwrap();
    let inv = tmp.path().join("inv");
    let o = bin()
        .args([
            "emulator",
            "generate",
            "--subscriptions",
            "8",
            "--clusters",
            "400",
        ])
        .args(["--role-assignments", "4000", "--seed", "7", "--out"])
        .arg(&inv)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = tmp.path().join("out");
    let o = bin()
        .args(["run", "--no-email", "--lang", "ja", "--inventory"])
        .arg(&inv)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", stderr(&o));
    let report: Value = serde_json::from_str(&read(&out.join("report.json"))).unwrap();
    let findings = report["findings"].as_array().unwrap();
    let rules: BTreeSet<&str> = findings
        .iter()
        .map(|f| f["rule_id"].as_str().unwrap())
        .collect();
    assert!(
        rules.len() >= 5,
        "too few kinds of finding to mean much: {rules:?}"
    );
    let untranslated: BTreeSet<&str> = findings
        .iter()
        .map(|f| f["message"].as_str().unwrap())
        .filter(|m| Lang::Ja.finding_message(m).is_none())
        .collect();
    assert!(untranslated.is_empty(), "{untranslated:#?}");
}
