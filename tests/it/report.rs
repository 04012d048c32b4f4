//! Reports end to end: CSV files a spreadsheet opens safely, the run history kept across
//! runs, the owner's mail body, and the HTML page in a real browser (headless Chromium).
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aks_identity_audit::i18n::Lang;
use aks_identity_audit::inventory::{Gap, Inventory, SkippedRow};
use aks_identity_audit::report::{self, html, render_email, render_text, trend, RenderOptions};
use aks_identity_audit::rules::{baseline::DEFAULT_BASELINE, suppress, Baseline, Options, Report};
use aks_identity_audit::run;
use aks_identity_audit::state::demo_seed as demo;
use chrono::{DateTime, Utc};

use crate::support::{bin, stderr};

pub(crate) fn now() -> DateTime<Utc> {
    "2026-03-02T06:00:00Z".parse().unwrap()
}

fn generate(inv: &Inventory, opts: &Options) -> Report {
    let baseline = Baseline::load(DEFAULT_BASELINE).unwrap();
    Report::generate(
        inv.clone(),
        &baseline,
        demo::seed_history(now()),
        now(),
        opts,
    )
    .report
}

pub(crate) fn demo_report() -> Report {
    generate(&run::demo_inventory().unwrap(), &Options::default())
}

const HOSTILE: &[&str] = &[
    "<script>alert(1)</script>",
    "\"><img src=x onerror=alert(1)>",
    "=HYPERLINK(\"http://x\",\"y\")",
    "'><svg onload=alert(1)><b>bold</b>",
    "+cmd|' /C calc'!A0\nsecond line\r\nthird",
    "@SUM(1+1)\t-2",
    "-2+3",
    "\t=1+1",
    "\r=2+2",
    "{{ 7*7 }}{% raw %}",
];

fn hostile(i: usize) -> String {
    // Every 11th value is the 5,000-character one.
    if i % (HOSTILE.len() + 1) == HOSTILE.len() {
        format!("<i>{}</i>", "A".repeat(5000))
    } else {
        HOSTILE[i % (HOSTILE.len() + 1)].to_string()
    }
}

/// The same shape as [`hostile`] (equal values where it has equal values), harmless text.
fn benign(i: usize) -> String {
    format!("benign{}", i % (HOSTILE.len() + 1))
}

/// The demo tenant with its names, tags, coverage and a suppression from `pick`.
fn tenant(pick: fn(usize) -> String) -> (Inventory, Options) {
    let mut inv = run::demo_inventory().unwrap();
    let mut i = 0;
    let mut next = || {
        i += 1;
        pick(i - 1)
    };
    for c in &mut inv.clusters {
        c.name = next();
        c.location = next();
        c.kubernetes_version = Some(next());
        c.tags.insert("owner".into(), next());
        for p in &mut c.pools {
            p.name = next();
        }
    }
    for s in &mut inv.subscriptions {
        s.name = next();
    }
    inv.coverage.gaps.push(Gap {
        scope: next(),
        reason: next(),
        tables: vec![],
    });
    inv.coverage.skipped_rows.push(SkippedRow {
        source: next(),
        index: 3,
        reason: next(),
    });
    let toml = format!(
        "[[suppression]]\nrule = \"AKSMI001\"\ncluster = \"*legacy-podid\"\njustification = {}\nowner = {}\nexpires = \"2026-12-31\"\n",
        serde_json::to_string(&next()).unwrap(),
        serde_json::to_string(&next()).unwrap(),
    );
    let opts = Options {
        suppressions: suppress::parse(&toml, "hostile.toml").unwrap(),
        ..Default::default()
    };
    (inv, opts)
}

fn hostile_report() -> Report {
    let (inv, opts) = tenant(hostile);
    generate(&inv, &opts)
}

// ---------------------------------------------------------------- CSV

fn files(r: &Report, excel: bool) -> BTreeMap<String, String> {
    report::render_all(
        r,
        &RenderOptions {
            csv_excel: excel,
            ..Default::default()
        },
    )
    .unwrap()
    .into_iter()
    .collect()
}

fn records(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut rd = csv::ReaderBuilder::new().from_reader(text.as_bytes());
    let header = rd.headers().unwrap().iter().map(str::to_string).collect();
    let rows = rd
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect();
    (header, rows)
}

#[test]
fn csv_files_are_rfc4180_with_inert_cells() {
    let r = hostile_report();
    let out = files(&r, false);
    for name in [
        "clusters.csv",
        "findings.csv",
        "role-assignments.csv",
        "summary.csv",
    ] {
        let text = &out[name];
        assert!(
            !text.starts_with('\u{feff}'),
            "{name}: no BOM without --csv-excel"
        );
        let first_line = text.split("\r\n").next().unwrap();
        assert!(!first_line.contains('\n'), "{name}: CRLF after the header");
        let (header, rows) = records(text);
        assert!(!rows.is_empty(), "{name} has rows");
        for row in &rows {
            assert_eq!(
                row.len(),
                header.len(),
                "{name}: every row has every column"
            );
            for cell in row {
                assert!(
                    !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                    "{name}: a spreadsheet would run {cell:?}"
                );
            }
        }
    }
    let (header, rows) = records(&out["clusters.csv"]);
    assert_eq!(
        header[..9],
        [
            "subscription_id",
            "subscription_name",
            "resource_group",
            "cluster_name",
            "cluster_id",
            "location",
            "control_plane_identity",
            "kubelet_identity",
            "migration_status"
        ]
    );
    assert_eq!(rows.len(), r.clusters.len());
    let cells: HashSet<&str> = rows.iter().flatten().map(String::as_str).collect();
    for expected in [
        "'=HYPERLINK(\"http://x\",\"y\")",
        "'+cmd|' /C calc'!A0\nsecond line\r\nthird",
        "'@SUM(1+1)\t-2",
        "'-2+3",
        "'\t=1+1",
        "'\r=2+2",
        "<script>alert(1)</script>",
    ] {
        assert!(
            cells.contains(expected),
            "clusters.csv has {expected:?} (neutralised, newlines kept)"
        );
    }
    let (header, _) = records(&out["findings.csv"]);
    assert_eq!(
        header[..7],
        [
            "cluster_id",
            "rule_id",
            "severity",
            "identity",
            "message",
            "remediation",
            "suppressed"
        ]
    );
    let (header, _) = records(&out["role-assignments.csv"]);
    assert_eq!(
        header,
        [
            "cluster_id",
            "identity",
            "principal_id",
            "expected_role",
            "expected_scope",
            "actual_role",
            "actual_scope",
            "status"
        ]
    );
    let excel = files(&r, true);
    for name in [
        "clusters.csv",
        "findings.csv",
        "role-assignments.csv",
        "summary.csv",
    ] {
        assert!(
            excel[name].starts_with("\u{feff}"),
            "{name} has a BOM with --csv-excel"
        );
    }
}

#[test]
fn summary_csv_adds_up_per_subscription_and_per_owner() {
    let r = demo_report();
    let (header, rows) = records(&files(&r, false)["summary.csv"]);
    let col = |n: &str| header.iter().position(|h| h == n).unwrap();
    for group in ["subscription", "owner"] {
        let mine: Vec<&Vec<String>> = rows.iter().filter(|row| row[0] == group).collect();
        let sum = |c: &str| {
            mine.iter()
                .map(|row| row[col(c)].parse::<usize>().unwrap())
                .sum::<usize>()
        };
        assert_eq!(sum("clusters"), r.summary.clusters, "{group}");
        assert_eq!(
            sum("on_sp"),
            r.summary.control_plane
                [&aks_identity_audit::rules::ControlPlaneIdentity::ServicePrincipal],
            "{group}"
        );
        assert_eq!(sum("pending_clusters"), r.summary.kubelet_on_sp, "{group}");
        assert_eq!(sum("high"), r.summary.findings.high, "{group}");
        assert_eq!(sum("critical"), r.summary.findings.critical, "{group}");
    }
    assert_eq!(
        rows.iter().filter(|row| row[0] == "subscription").count(),
        3
    );
}

#[test]
fn role_assignments_csv_agrees_with_the_role_findings() {
    let r = demo_report();
    let statuses: HashSet<&str> = r.role_checks.iter().map(|c| c.status.as_str()).collect();
    for s in ["ok", "missing", "excess", "too_wide", "not_documented"] {
        assert!(
            statuses.contains(s),
            "the demo tenant has a `{s}` role check: {statuses:?}"
        );
    }
    for (rule, status) in [
        ("AKSMI010", "missing"),
        ("AKSMI011", "excess"),
        ("AKSMI012", "too_wide"),
    ] {
        for f in r.findings.iter().filter(|f| f.rule_id.as_str() == rule) {
            assert!(
                r.role_checks.iter().any(|c| c.status == status
                    && *c.cluster_id == *f.cluster_id
                    && c.identity == f.identity),
                "{rule} on {} {} has a `{status}` row",
                f.cluster_name,
                f.identity
            );
        }
    }
    let (_, rows) = records(&files(&r, false)["role-assignments.csv"]);
    assert_eq!(rows.len(), r.role_checks.len());
}

// ---------------------------------------------------------------- history and trend

fn audit(args: &[&str]) -> std::process::Output {
    bin().arg("run").args(args).output().unwrap()
}

#[test]
fn runs_csv_grows_per_run_bounded_by_history_days() {
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/demo");
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let state_s = state.to_str().unwrap();
    let run_at = |now: &str, days: &str| {
        let out = tmp.path().join(now.replace(':', ""));
        let o = audit(&[
            "--inventory",
            demo,
            "--state",
            state_s,
            "--out",
            out.to_str().unwrap(),
            "--now",
            now,
            "--history-days",
            days,
        ]);
        assert!(o.status.code().is_some_and(|c| c < 2), "{}", stderr(&o));
        let runs = trend::load_runs(&state).unwrap();
        (
            runs,
            std::fs::read_to_string(out.join("report.html")).unwrap(),
        )
    };
    let (runs, page) = run_at("2026-01-05T06:00:00Z", "400");
    assert_eq!(runs.len(), 1);
    assert!(
        page.contains("Only this run so far"),
        "one run, no trend yet"
    );
    let (runs, page) = run_at("2026-01-12T06:00:00Z", "400");
    assert_eq!(runs.len(), 2);
    assert!(
        page.contains("Since 2026-01-05 (2 runs)"),
        "the trend covers both runs"
    );
    // 30 days back from Feb 9 is Jan 10: the Jan 5 run falls out of the table.
    let (runs, _) = run_at("2026-02-09T06:00:00Z", "30");
    let days: Vec<String> = runs
        .iter()
        .map(|r| r.run_at.format("%m-%d").to_string())
        .collect();
    assert_eq!(days, ["01-12", "02-09"]);
    assert_eq!(runs[1].clusters, 11);
    assert!(runs[1].high > 0);

    std::fs::write(
        state.join(trend::RUNS_FILE),
        "run_at,clusters\nyesterday,x\n",
    )
    .unwrap();
    let o = audit(&[
        "--inventory",
        demo,
        "--state",
        state_s,
        "--out",
        tmp.path().join("bad").to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("runs.csv") && err.contains("line 2"),
        "a corrupt run table is named: {err}"
    );
}

#[test]
fn demo_without_state_shows_a_multi_week_trend() {
    let r = demo_report();
    let page = html::render_with_runs(&r, &demo::seed_runs(now()), Lang::En).unwrap();
    assert!(
        page.contains("Since 2025-12-22 (12 runs)"),
        "seeded weeks plus this run"
    );
    assert!(page.contains("<polyline"), "trend lines are drawn");
    let single = html::render(&r).unwrap();
    assert!(single.contains("Only this run so far"));
}

// ---------------------------------------------------------------- mail body

#[test]
fn owner_mail_holds_only_their_clusters() {
    let r = demo_report();
    let owner = "platform-team@contoso.com";
    let ids: Vec<&str> = r
        .clusters
        .iter()
        .filter(|c| c.owner == owner)
        .map(|c| c.cluster_id.as_str())
        .collect();
    assert!(ids.len() >= 2);
    let body = render_email(&r, &ids).unwrap();
    let text = render_text(&r, &ids);
    for c in &r.clusters {
        let mine = c.owner == owner;
        assert_eq!(
            body.contains(&format!("<b>{}</b>", c.cluster_name)),
            mine,
            "{} in the HTML body",
            c.cluster_name
        );
        assert_eq!(
            text.contains(&format!("- {} (", c.cluster_name)),
            mine,
            "{} in the text body",
            c.cluster_name
        );
    }
    let first = r
        .findings
        .iter()
        .find(|f| f.suppressed.is_none() && ids.contains(&f.cluster_id.as_str()))
        .unwrap();
    let command = first.remediation.lines().next().unwrap();
    assert!(
        text.contains(command),
        "the text part has the command to run: {command}"
    );
    assert!(
        !body.contains("<svg") && !body.contains("<script"),
        "mail bodies: tables and CSS only"
    );
    assert!(
        body.contains("Tenant") && body.contains("Coverage") && body.contains(&r.baseline.name)
    );
    let none = render_email(&r, &[]).unwrap();
    assert!(none.contains("None of the audited clusters is yours"));
}

#[test]
fn hostile_values_are_escaped_in_the_mail_body() {
    let r = hostile_report();
    let ids: Vec<&str> = r.clusters.iter().map(|c| c.cluster_id.as_str()).collect();
    let body = render_email(&r, &ids).unwrap();
    for bad in ["<script", "<img", "<svg", "<i>", "<b>bold"] {
        assert!(!body.contains(bad), "{bad} got through into the mail body");
    }
    assert!(body.contains("&lt;script&gt;alert(1)&lt;&#x2F;script&gt;"));
    let text = render_text(&r, &ids);
    assert!(
        !text.contains('\r'),
        "no carriage returns from tag values in the text part"
    );
}

// ---------------------------------------------------------------- a real browser

fn chromium() -> PathBuf {
    for p in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if Path::new(p).is_file() {
            return PathBuf::from(p);
        }
    }
    panic!(
        "chromium is not installed: the browser tests render the report in headless Chromium. \
         Run scripts/setup-test-tools.sh (it installs Debian's `chromium` package)."
    );
}

/// Runs headless Chromium with `args` on `page`; returns stdout.
pub(crate) fn browse(page: &Path, args: &[&str]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut s).unwrap();
        s
    });
    // A hang guard, not a timing assertion.
    let deadline = Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish within 180 s: {args:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "chromium failed: {status}");
    reader.join().unwrap()
}

pub(crate) struct Image {
    width: usize,
    height: usize,
    pub(crate) rgb: Vec<[u8; 3]>,
}

pub(crate) fn decode(path: &Path) -> Image {
    let bytes = std::fs::read(path).unwrap();
    let mut dec = png::Decoder::new(std::io::Cursor::new(bytes));
    dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = dec.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let rgb = buf[..info.buffer_size()]
        .chunks(channels)
        .map(|p| match channels {
            1 | 2 => [p[0]; 3],
            _ => [p[0], p[1], p[2]],
        })
        .collect();
    Image {
        width: info.width as usize,
        height: info.height as usize,
        rgb,
    }
}

pub(crate) fn screenshot(page: &Path, width: u32, height: u32, extra: &[&str]) -> Image {
    let png = page.with_file_name(format!("shot-{width}x{height}{}.png", extra.len()));
    let mut args = vec![
        format!("--window-size={width},{height}"),
        format!("--screenshot={}", png.display()),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    browse(page, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let img = decode(&png);
    assert_eq!((img.width, img.height), (width as usize, height as usize));
    // `AKS_AUDIT_SCREENSHOTS=$PWD/docs cargo test --test it report::browser` refreshes
    // the README's screenshots.
    if let Ok(dir) = std::env::var("AKS_AUDIT_SCREENSHOTS") {
        let stem = page.file_stem().unwrap().to_string_lossy();
        let name = if width < 600 {
            format!("{stem}-phone.png")
        } else {
            format!("{stem}.png")
        };
        if extra.is_empty() {
            std::fs::copy(&png, Path::new(&dir).join(name)).unwrap();
        }
    }
    img
}

pub(crate) fn assert_not_blank(img: &Image, what: &str) {
    let background = img.rgb[img.width * 2 + 2];
    let colours: HashSet<[u8; 3]> = img.rgb.iter().copied().collect();
    let drawn = img.rgb.iter().filter(|p| **p != background).count();
    assert!(
        colours.len() > 200,
        "{what}: only {} distinct colours: is the page blank?",
        colours.len()
    );
    assert!(
        drawn * 100 > img.rgb.len() * 8,
        "{what}: only {drawn} of {} pixels differ from the background",
        img.rgb.len()
    );
    // Red, amber and green from the bars and charts made it to the screen.
    let near = |c: [u8; 3]| {
        img.rgb
            .iter()
            .any(|p| p.iter().zip(c).all(|(a, b)| a.abs_diff(b) < 12))
    };
    for (name, c) in [
        ("red", [0xd3, 0x2f, 0x2f]),
        ("amber", [0xef, 0x9a, 0x00]),
        ("green", [0x2e, 0x7d, 0x32]),
    ] {
        assert!(
            near(c),
            "{what}: no {name} pixels: the charts did not render"
        );
    }
}

fn luma(p: [u8; 3]) -> u32 {
    (p[0] as u32 * 299 + p[1] as u32 * 587 + p[2] as u32 * 114) / 1000
}

#[test]
fn browser_renders_the_demo_report_at_desktop_and_phone_width() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    let r = demo_report();
    std::fs::write(
        &page,
        html::render_with_runs(&r, &demo::seed_runs(now()), Lang::En).unwrap(),
    )
    .unwrap();
    // Tall enough to reach the charts below the top actions.
    let desktop = screenshot(&page, 1200, 3600, &[]);
    assert_not_blank(&desktop, "desktop");
    // Tall enough to reach the charts below the top actions.
    let phone = screenshot(&page, 390, 6000, &[]);
    assert_not_blank(&phone, "phone");
    assert!(
        luma(phone.rgb[2 * phone.width + 2]) > 200,
        "light background by default"
    );
    // At 390 px nothing may overflow sideways: the page's right margin stays background.
    let right_edge_drawn = (0..phone.height)
        .filter(|y| phone.rgb[y * phone.width + phone.width - 2] != phone.rgb[2])
        .count();
    assert!(
        right_edge_drawn < phone.height / 50,
        "{right_edge_drawn} rows touch the right edge at 390 px"
    );
    let dark = screenshot(&page, 390, 844, &["--force-dark-mode"]);
    assert!(
        luma(dark.rgb[2 * dark.width + 2]) < 60,
        "prefers-color-scheme: dark gives a dark page"
    );
}

#[test]
fn browser_renders_the_owner_mail_at_phone_width() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("email.html");
    let r = demo_report();
    let owner = "legacy-owners@contoso.com";
    let ids: Vec<&str> = r
        .clusters
        .iter()
        .filter(|c| c.owner == owner)
        .map(|c| c.cluster_id.as_str())
        .collect();
    assert!(!ids.is_empty());
    std::fs::write(&page, render_email(&r, &ids).unwrap()).unwrap();
    let phone = screenshot(&page, 390, 844, &[]);
    let colours: HashSet<[u8; 3]> = phone.rgb.iter().copied().collect();
    assert!(
        colours.len() > 100,
        "only {} colours: is the mail blank?",
        colours.len()
    );
    // The CSS bar of the owner's clusters (all on service principals) is red.
    assert!(
        phone
            .rgb
            .iter()
            .filter(|p| **p == [0xd3, 0x2f, 0x2f])
            .count()
            > 300,
        "the red status bar is drawn"
    );
}

/// Tag names of every element in a serialized DOM. Text `<` is serialized as `&lt;`,
/// so each `<name` is an element.
fn elements(dom: &str) -> BTreeMap<String, usize> {
    let re = regex::Regex::new(r"<([a-zA-Z][a-zA-Z0-9-]*)").unwrap();
    let mut out = BTreeMap::new();
    for c in re.captures_iter(dom) {
        *out.entry(c[1].to_ascii_lowercase()).or_default() += 1;
    }
    out
}

#[test]
fn hostile_names_and_tags_stay_inert_in_the_browser() {
    let dir = tempfile::tempdir().unwrap();
    let (inv, opts) = tenant(benign);
    let benign_page = dir.path().join("benign.html");
    std::fs::write(&benign_page, html::render(&generate(&inv, &opts)).unwrap()).unwrap();
    let hostile_page = dir.path().join("hostile.html");
    let html = html::render(&hostile_report()).unwrap();
    std::fs::write(&hostile_page, &html).unwrap();
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;&#x2F;script&gt;"),
        "escaped in the page source"
    );

    let dom = browse(&hostile_page, &["--dump-dom"]);
    let expected = browse(&benign_page, &["--dump-dom"]);
    assert!(
        dom.contains("<main>"),
        "the DOM was dumped: {}",
        &dom[..dom.len().min(300)]
    );
    assert!(!elements(&dom).contains_key("script") && !elements(&dom).contains_key("img"));
    assert_eq!(
        elements(&dom),
        elements(&expected),
        "hostile values added or removed elements"
    );
    let attr = regex::Regex::new(r"<[^>]*\son[a-z]+=").unwrap();
    assert!(
        !attr.is_match(&dom),
        "an event handler attribute reached the DOM"
    );
    for text in [
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        "\"&gt;&lt;img src=x onerror=alert(1)&gt;",
        "=HYPERLINK(\"http://x\",\"y\")",
        "{{ 7*7 }}{% raw %}",
    ] {
        assert!(dom.contains(text), "shown as text: {text}");
    }
    assert!(
        dom.contains(&"A".repeat(5000)),
        "the 5,000-character value is shown whole"
    );
}

fn severity_rank(s: &str) -> usize {
    ["critical", "high", "medium", "low", "info"]
        .iter()
        .position(|x| *x == s)
        .unwrap_or_else(|| panic!("unknown severity {s}"))
}

/// Top actions come right after the headline, most severe first; each fix counts its
/// findings and together they count every unsuppressed finding once.
#[test]
fn top_actions_come_first_and_most_severe_first() {
    let r = demo_report();
    let page = html::render(&r).unwrap();
    let at = |id: &str| {
        page.find(&format!("<section id=\"{id}\">"))
            .unwrap_or_else(|| panic!("section {id}"))
    };
    assert!(at("summary") < at("actions") && at("actions") < at("identity"));
    assert!(at("actions") < at("trend") && at("actions") < at("findings"));
    let li = regex::Regex::new(
        r#"<li class="action" id="action-\d+" data-severity="([a-z]+)">\s*<div><span class="sev[^"]*">[a-z]+</span> <b>([^<]+)</b> <a[^>]*>AKSMI\d+</a></div>\s*<div class="small muted">(\d+) findings? on (\d+) clusters?"#,
    )
    .unwrap();
    let actions: Vec<(usize, String, usize)> = li
        .captures_iter(&page)
        .map(|c| {
            (
                severity_rank(&c[1]),
                c[2].to_string(),
                c[3].parse().unwrap(),
            )
        })
        .collect();
    let active: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.suppressed.is_none())
        .collect();
    assert!(
        actions.len() >= 4,
        "the demo needs several fixes: {actions:?}"
    );
    assert!(
        actions.windows(2).all(|w| w[0].0 <= w[1].0),
        "most severe first: {actions:?}"
    );
    assert_eq!(actions[0].0, severity_rank(r.worst().unwrap().as_str()));
    assert_eq!(
        actions.iter().map(|a| a.2).sum::<usize>(),
        active.len(),
        "every unsuppressed finding in exactly one action"
    );
    // The fix is said in words with its count ("Migrate 2 clusters ...").
    assert!(
        actions
            .iter()
            .any(|a| a.1.starts_with("Migrate ") && a.1.contains("managed identity")),
        "{actions:?}"
    );
    for a in &actions {
        assert!(a.1.contains(&a.2.to_string()), "{a:?}");
    }
    // The first action's commands are shown, copy-ready.
    let first = &page[at("actions")..at("identity")];
    assert!(first.contains("<details class=\"cmds\" open><summary>Commands"));
    assert!(first.contains("<pre>az "), "{first}");
}

/// The rule sections by severity (the worst finding's), then by id.
#[test]
fn rule_sections_are_in_severity_order() {
    let r = demo_report();
    let page = html::render(&r).unwrap();
    let h3 =
        regex::Regex::new(r#"<h3 id="rule-(AKSMI\d+)"><span class="sev sev-([a-z]+)">"#).unwrap();
    let sections: Vec<(usize, String)> = h3
        .captures_iter(&page)
        .map(|c| (severity_rank(&c[2]), c[1].to_string()))
        .collect();
    assert!(sections.len() >= 4, "{sections:?}");
    let mut sorted = sections.clone();
    sorted.sort();
    assert_eq!(sections, sorted, "severity first, then rule id");
    // Each section shows its worst unsuppressed finding's severity.
    for (rank, id) in &sections {
        let worst = r
            .findings
            .iter()
            .filter(|f| f.suppressed.is_none() && f.rule_id.as_str() == id)
            .map(|f| severity_rank(f.severity.as_str()))
            .min()
            .unwrap();
        assert_eq!(*rank, worst, "{id}");
    }
}

/// Every cluster has a row with an anchor; every in-page link lands on an element that
/// exists; subscription and owner rows list their clusters' links.
#[test]
fn every_cluster_row_links_to_an_existing_anchor() {
    let r = demo_report();
    let page = html::render(&r).unwrap();
    let ids: Vec<String> = regex::Regex::new(r#"\sid="([^"]+)""#)
        .unwrap()
        .captures_iter(&page)
        .map(|c| c[1].to_string())
        .collect();
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "ids are unique");
    let hrefs: Vec<String> = regex::Regex::new(r##"href="#([^"]+)""##)
        .unwrap()
        .captures_iter(&page)
        .map(|c| c[1].to_string())
        .collect();
    for h in &hrefs {
        assert!(unique.contains(h), "link to #{h} lands nowhere");
    }
    let clusters = &page[page.find("<section id=\"clusters\">").unwrap()
        ..page.find("<section id=\"suppressions\">").unwrap()];
    let row = regex::Regex::new(r#"(?s)<tr id="(c-[0-9a-f]{16})"[^>]*>(.*?)</tr>"#).unwrap();
    let rows: Vec<(String, String)> = row
        .captures_iter(clusters)
        .map(|c| (c[1].to_string(), c[2].to_string()))
        .collect();
    assert_eq!(rows.len(), r.clusters.len(), "one row per cluster");
    for (id, cells) in &rows {
        assert!(
            cells.contains(&format!("href=\"#{id}\"")),
            "{id} links to itself"
        );
        assert!(
            cells.contains("href=\"#s-") && cells.contains("href=\"#o-"),
            "{cells}"
        );
    }
    // Every cluster is linked from its subscription's row and its owner's row.
    for prefix in ["s-", "o-"] {
        let group = regex::Regex::new(&format!(
            r#"(?s)<tr id="({prefix}[0-9a-f]{{16}})">(.*?)</tr>"#
        ))
        .unwrap();
        let linked: usize = group
            .captures_iter(&page)
            .map(|c| c[2].matches("href=\"#c-").count())
            .sum();
        assert_eq!(
            linked,
            r.clusters.len(),
            "{prefix} rows link each cluster once"
        );
    }
    // A cluster with findings opens to its detail; one without has none.
    let with = r.clusters.iter().filter(|c| c.findings > 0).count();
    assert!(with > 0);
    assert_eq!(clusters.matches("<tr class=\"detail\">").count(), with);
    assert_eq!(clusters.matches("<b>Grants against ").count(), with);
}

/// At 390 px the control-plane × kubelet table fits its panel: no sideways scrolling
/// hides a column. Measured by the browser's layout: the page (unchanged, it has no
/// script) in a 390 px frame of a measuring page.
#[test]
fn browser_fits_the_identity_table_at_phone_width() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("measure.html");
    let html = html::render(&demo_report()).unwrap();
    let srcdoc = html.replace('&', "&amp;").replace('"', "&quot;");
    let probe = format!(
        r#"<!DOCTYPE html><html><body><iframe id="f" style="width:390px;height:844px;border:0" srcdoc="{srcdoc}"></iframe>
<script>
document.getElementById('f').addEventListener('load', () => {{
  const d = document.getElementById('f').contentDocument;
  const out = [];
  for (const w of d.querySelectorAll('.wrap')) {{
    if (w.offsetParent === null) continue;
    const t = w.querySelector('table');
    out.push((t && t.className || '-').replace(/ /g, '.') + ':' + w.scrollWidth + '/' + w.clientWidth);
  }}
  const p = document.createElement('pre');
  p.textContent = 'MEASURED ' + d.documentElement.clientWidth + ' ' + out.join(' ') + ' END';
  document.body.appendChild(p);
}});
</script></body></html>"#
    );
    std::fs::write(&page, probe).unwrap();
    let dom = browse(&page, &["--window-size=800,900", "--dump-dom"]);
    let m = regex::Regex::new(r"MEASURED (\d+) (.*?) END").unwrap();
    let c = m
        .captures(&dom)
        .unwrap_or_else(|| panic!("not measured: {}", &dom[dom.len().saturating_sub(500)..]));
    assert!(c[1].parse::<u32>().unwrap() <= 390, "viewport {}", &c[1]);
    let wraps: Vec<(&str, u32, u32)> = c
        .get(2)
        .unwrap()
        .as_str()
        .split(' ')
        .map(|x| {
            let (class, sizes) = x.rsplit_once(':').unwrap();
            let (sw, cw) = sizes.split_once('/').unwrap();
            (class, sw.parse().unwrap(), cw.parse().unwrap())
        })
        .collect();
    let pivot = wraps
        .iter()
        .find(|w| w.0 == "pivot")
        .unwrap_or_else(|| panic!("no pivot table measured: {wraps:?}"));
    assert!(
        pivot.1 <= pivot.2,
        "the pivot table scrolls sideways at 390 px: {pivot:?}"
    );
}

/// Pages of a PDF (its page objects).
fn pdf_pages(path: &Path) -> usize {
    let bytes = std::fs::read(path).unwrap();
    regex::bytes::Regex::new(r"/Type\s*/Page[^s]")
        .unwrap()
        .find_iter(&bytes)
        .count()
}

/// The print stylesheet: clusters without findings add no pages to the PDF (their rows
/// and details are left out), clusters with findings do (each prints its detail).
#[test]
fn browser_prints_only_clusters_with_findings() {
    let dir = tempfile::tempdir().unwrap();
    let base = demo_report();
    let with_clones = |n: usize, findings: bool| {
        let mut r = base.clone();
        let c0 = r.clusters[0].clone();
        let f0: Vec<_> = r
            .findings
            .iter()
            .filter(|f| f.cluster_id == c0.cluster_id && f.suppressed.is_none())
            .cloned()
            .collect();
        for i in 0..n {
            let mut c = c0.clone();
            c.cluster_name = format!("clone-{i:04}");
            c.cluster_id = format!("{}-clone-{i}", c0.cluster_id);
            if findings {
                for f in &f0 {
                    let mut f = f.clone();
                    f.cluster_id = c.cluster_id.clone();
                    f.cluster_name = c.cluster_name.clone();
                    r.findings.push(f);
                }
            } else {
                c.findings = 0;
                c.worst_severity = None;
            }
            r.clusters.push(c);
        }
        r
    };
    let print = |name: &str, r: &Report| {
        let page = dir.path().join(format!("{name}.html"));
        std::fs::write(&page, html::render(r).unwrap()).unwrap();
        let pdf = dir.path().join(format!("{name}.pdf"));
        browse(
            &page,
            &[
                "--no-pdf-header-footer",
                &format!("--print-to-pdf={}", pdf.display()),
            ],
        );
        pdf_pages(&pdf)
    };
    let demo = print("demo", &base);
    let clean = print("clean", &with_clones(300, false));
    let dirty = print("dirty", &with_clones(300, true));
    assert!(demo > 2, "the demo prints: {demo} pages");
    assert!(
        clean <= demo + 1,
        "300 clusters without findings added pages: {demo} -> {clean}"
    );
    assert!(
        dirty > demo + 10,
        "300 clusters with findings print their details: {demo} -> {dirty}"
    );
}
