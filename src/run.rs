//! One audit run: read, generate, write reports, then history. The only place that
//! writes report files.
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use chrono::{DateTime, Utc};

use crate::config::{Settings, Source};
use crate::exit;
use crate::history::{self, History};
use crate::inventory::{folder, Inventory};
use crate::report::{self, trend, RenderOptions};
use crate::rules::{self, suppress, Baseline, Report};

/// What a run produced, for callers (CLI, scheduler, tests).
pub struct RunResult {
    pub report: Report,
    pub out_dir: PathBuf,
    pub exit_code: u8,
}

/// The default output folder: `reports/<UTC timestamp>/`.
pub fn default_out_dir(now: DateTime<Utc>) -> PathBuf {
    Path::new("reports").join(now.format("%Y-%m-%dT%H%M%SZ").to_string())
}

/// The embedded demo inventory (the same tenant the emulator serves for `--demo`).
pub fn demo_inventory() -> anyhow::Result<Inventory> {
    let mut loader = crate::inventory::Loader::new();
    for (kind, name, text) in crate::inventory::demo::FILES {
        folder::load_text(&mut loader, *kind, &format!("demo/{name}"), text)?;
    }
    Ok(loader.finish())
}

pub async fn run(settings: &Settings) -> anyhow::Result<RunResult> {
    let started = Instant::now();
    let now = settings.now.unwrap_or_else(Utc::now);
    let baseline = Baseline::load(&settings.baseline)?;
    let suppressions = match &settings.suppressions {
        Some(p) => suppress::load(p)?,
        None => vec![],
    };
    let mut prev = match &settings.state {
        Some(dir) => History::load(dir)?,
        None => History::default(),
    };
    if settings.source == Source::Demo && prev.clusters.is_empty() {
        prev = crate::inventory::demo::seed_history(now);
    }
    let mut runs = match &settings.state {
        Some(dir) => trend::load_runs(dir)?,
        None => vec![],
    };
    if settings.source == Source::Demo && runs.is_empty() {
        runs = crate::inventory::demo::seed_runs(now);
    }
    let (inventory, source, collect_stats) = match &settings.source {
        Source::Inventory(dir) => (
            folder::read_folder(dir)?,
            format!("inventory folder {}", dir.display()),
            None,
        ),
        Source::Demo => {
            let (inv, stats) =
                crate::azure::collect_demo(&settings.azure, &crate::azure::Progress::for_stderr())
                    .await?;
            (
                inv,
                "built-in demo tenant (embedded emulator, live path)".to_string(),
                Some(stats),
            )
        }
        Source::Live => {
            let (inv, stats) =
                crate::azure::collect(&settings.azure, &crate::azure::Progress::for_stderr())
                    .await?;
            (
                inv,
                format!(
                    "Azure Resource Graph ({} subscriptions)",
                    stats.subscriptions
                ),
                Some(stats),
            )
        }
    };
    // Totals of the HTTP side (zero for an inventory folder), for the summary line.
    let http = collect_stats.map(|s| s.totals()).unwrap_or_default();
    let collected = started.elapsed();
    crate::memory::log("collect");
    let opts = rules::Options {
        source,
        owners: settings.owners.clone(),
        suppressions,
        history_days: settings.history_days,
    };
    // The inventory is consumed (freed cluster by cluster as they are audited).
    let rules::Outcome { report, history } =
        Report::generate(inventory, &baseline, prev, now, &opts);
    // What the audit freed goes back to the system while reports are written.
    let trimming = std::thread::spawn(crate::memory::trim);
    let classified = started.elapsed();
    crate::memory::log("classify");
    let out_dir = settings.out.clone().unwrap_or_else(|| default_out_dir(now));
    let runs = trend::append(&runs, trend::RunRecord::of(&report), settings.history_days);
    let render = RenderOptions {
        csv_excel: settings.csv_excel,
    };
    write_reports_with_runs(&report, &out_dir, &render, &runs)?;
    if let Some(dir) = &settings.state {
        history.save(dir)?;
        history::write_atomic(
            &dir.join(trend::RUNS_FILE),
            trend::runs_csv(&runs)?.as_bytes(),
        )?;
    }
    // Mail needs only the report: the next history (as large as the report) goes first.
    drop(history);
    let _ = trimming.join();
    crate::memory::trim();
    let reported = started.elapsed();
    crate::memory::log("report");
    let mail = crate::mail::deliver(&report, &out_dir, &settings.mail).await;
    let mailed = started.elapsed();
    let mut exit_code = exit_code(&report, settings.fail_on);
    if mail.undelivered > 0 {
        exit_code = exit::GAPS;
    }
    let s = &report.summary;
    tracing::info!(
        clusters = s.clusters,
        critical = s.findings.get("critical").copied().unwrap_or(0),
        high = s.findings.get("high").copied().unwrap_or(0),
        medium = s.findings.get("medium").copied().unwrap_or(0),
        low = s.findings.get("low").copied().unwrap_or(0),
        suppressed = s.suppressed,
        skipped_rows = s.skipped_rows,
        gaps = s.gaps,
        mail_sent = mail.sent,
        mail_undelivered = mail.undelivered,
        mail_unroutable = mail.unroutable,
        collect_ms = collected.as_millis() as u64,
        classify_ms = (classified - collected).as_millis() as u64,
        report_ms = (reported - classified).as_millis() as u64,
        mail_ms = (mailed - reported).as_millis() as u64,
        requests = http.requests,
        pages = http.pages,
        rows = http.rows,
        bytes = http.bytes,
        throttled_429 = http.throttled_429,
        retries = http.retries,
        total_ms = started.elapsed().as_millis() as u64,
        out = %out_dir.display(),
        exit_code,
        "audit finished"
    );
    Ok(RunResult {
        report,
        out_dir,
        exit_code,
    })
}

/// 3 (gaps) outranks 1 (findings): a job that could not see everything must say so first.
pub fn exit_code(report: &Report, fail_on: Option<rules::Severity>) -> u8 {
    if !report.coverage.is_complete() {
        return exit::GAPS;
    }
    match (fail_on, report.worst()) {
        (Some(threshold), Some(worst)) if worst >= threshold => exit::FINDINGS,
        _ => exit::OK,
    }
}

/// Renders every file and writes each atomically into `dir`; `runs` is the run history
/// (`runs.csv`) the HTML trend draws. Two files at a time (the machine this is measured
/// on has two cores), the largest first; the first error is returned.
pub fn write_reports_with_runs(
    report: &Report,
    dir: &Path,
    opts: &RenderOptions,
    runs: &[trend::RunRecord],
) -> anyhow::Result<()> {
    crate::secure_fs::create_dir_all(dir)
        .with_context(|| format!("creating output folder {}", dir.display()))?;
    let mut names = report::FILES.to_vec();
    names.sort_by_key(|n| !(n.ends_with(".json") || n.ends_with(".html")));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let write = || -> anyhow::Result<()> {
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(name) = names.get(i) else {
                return Ok(());
            };
            history::write_atomic_with(&dir.join(name), |w| {
                report::render_to(name, report, opts, runs, w)
            })?;
            crate::memory::log(name);
        }
    };
    std::thread::scope(|s| {
        let other = s.spawn(write);
        let mine = write();
        let theirs = other
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        mine.and(theirs)
    })
}
