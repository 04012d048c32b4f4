//! One audit run as named stages: load (inputs, the locked state), collect, generate,
//! write outputs, outbox, commit history, deliver, prune, summarise. The only place
//! that writes report files. The order makes mail exactly-once: see [`crate::state`].
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use std::sync::Mutex;

use chrono::{DateTime, Utc};

use crate::config::{Settings, Source};
use crate::exit::Exit;
use crate::history::{self, History};
use crate::inventory::{folder, Inventory};
use crate::report::{self, trend, RenderOptions};
use crate::rules::{self, suppress, Baseline, Report};
use crate::state::{Entry, FolderLock, Ledger};

/// What a run produced, for callers (CLI, scheduler, tests).
pub struct RunResult {
    pub report: Report,
    pub out_dir: PathBuf,
    pub exit_code: Exit,
    /// What mail delivery did.
    pub mail: crate::mail::Delivery,
    /// Teams / Slack digests posted and failed.
    pub webhooks: crate::webhook::Outcome,
    /// Rows sent to Log Analytics and not.
    pub log_analytics: crate::log_analytics::Outcome,
    /// What the Blob Storage upload did.
    pub upload: crate::upload::Outcome,
}

/// The default output folder: `reports/<UTC timestamp>/`.
pub fn default_out_dir(now: DateTime<Utc>) -> PathBuf {
    Path::new("reports").join(now.format("%Y-%m-%dT%H%M%SZ").to_string())
}

/// The embedded demo inventory (the same tenant the emulator serves for `--demo`),
/// read offline. Only with the cargo feature `emulator`, whose crate embeds the files.
#[cfg(feature = "emulator")]
pub fn demo_inventory() -> anyhow::Result<Inventory> {
    use crate::inventory::Kind;
    let mut loader = crate::inventory::Loader::new();
    for kind in [
        Kind::Subscriptions,
        Kind::ResourceGroups,
        Kind::Registries,
        Kind::Clusters,
        Kind::RoleAssignments,
    ] {
        let name = kind.file_name();
        let text = azure_emulator::demo::file(name)
            .ok_or_else(|| anyhow::anyhow!("the embedded demo tenant has no {name}"))?;
        folder::load_text(&mut loader, kind, &format!("demo/{name}"), text)?;
    }
    Ok(loader.finish())
}

/// The error for what needs the embedded Azure emulator (`--demo`, the `emulator`
/// command) in a binary built without the cargo feature `emulator`.
pub fn not_in_this_build(what: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{what} is not available: this binary was built without the embedded Azure emulator \
         (cargo feature `emulator`, on by default; the container image leaves it out). \
         Audit an --inventory folder or Azure, or use a default build (`cargo run --release -- run --demo`)"
    )
}

/// Refuses, before the state folder is touched, a source this build cannot read:
/// `--demo` without the emulator.
pub fn check_source(settings: &Settings) -> anyhow::Result<()> {
    if settings.source == Source::Demo && !cfg!(feature = "emulator") {
        return Err(not_in_this_build("--demo (the built-in demo tenant)"));
    }
    Ok(())
}

/// Test hook: with `AKS_AUDIT_TEST_CRASH_AT=<point>` the process aborts there, as a
/// SIGKILL would stop it (no destructor, no flush): how the tests prove that a crash at
/// any stage boundary loses no notification. Points: `after-reports`, `after-outbox`,
/// `after-commit`, `after-first-send` (mail), `after-first-delivery` (a webhook digest
/// or a Log Analytics batch confirmed).
pub fn crash_point(point: &str) {
    if std::env::var("AKS_AUDIT_TEST_CRASH_AT").is_ok_and(|p| p == point) {
        eprintln!("AKS_AUDIT_TEST_CRASH_AT={point}: aborting");
        std::process::abort();
    }
}

/// What the run holds from its start to its end: the state folder's lock, the
/// previous history, the trend and the mail ledger.
struct Loaded {
    baseline: Baseline,
    suppressions: Vec<suppress::Suppression>,
    prev: History,
    runs: Vec<trend::RunRecord>,
    /// Held until the run returns: no other run reads or writes this state meanwhile.
    _lock: Option<FolderLock>,
    ledger: Option<Ledger>,
    backfill: bool,
}

/// Stage 1: inputs that are not the inventory; the state folder is locked first.
fn load(settings: &Settings, now: DateTime<Utc>) -> anyhow::Result<Loaded> {
    let baseline = Baseline::load(&settings.baseline)?;
    let suppressions = match &settings.suppressions {
        Some(p) => suppress::load(p)?,
        None => vec![],
    };
    let lock = match &settings.state {
        Some(dir) => {
            let lock = FolderLock::acquire(dir, settings.lock_wait, "state folder")?;
            crate::state::clean_stale_temporaries(dir);
            Some(lock)
        }
        None => None,
    };
    let mut prev = match &settings.state {
        Some(dir) => {
            // Freed cluster by cluster in classification, on the same thread (crate::memory).
            let dir = dir.clone();
            crate::memory::on_inventory_thread_blocking(move || History::load(&dir))?
        }
        None => History::default(),
    };
    if settings.source == Source::Demo && prev.clusters.is_empty() {
        prev = crate::state::demo_seed::seed_history(now);
    }
    let mut runs = match &settings.state {
        Some(dir) => trend::load_runs(dir)?,
        None => vec![],
    };
    if settings.source == Source::Demo && runs.is_empty() {
        runs = crate::state::demo_seed::seed_runs(now);
    }
    let backfill = match prev.last_run {
        Some(last) if now < last => {
            if !settings.backfill {
                anyhow::bail!(
                    "--now {} is before the last run in the state folder ({}): a backfill would rewind history; \
                     pass --backfill to insert this run into runs.csv and leave state.json as it is",
                    now.to_rfc3339(),
                    last.to_rfc3339()
                );
            }
            true
        }
        _ => false,
    };
    let ledger = match &settings.state {
        Some(dir) if settings.mail.enabled => Some(Ledger::load(dir)?),
        _ => None,
    };
    Ok(Loaded {
        baseline,
        suppressions,
        prev,
        runs,
        _lock: lock,
        ledger,
        backfill,
    })
}

/// Before this run's mail: earlier runs whose history was committed but whose mail
/// was interrupted get their outbox sent now. Returns messages still undelivered.
async fn finish_earlier_mail(
    ledger: &Mutex<Ledger>,
    last_run: Option<DateTime<Utc>>,
    mail: &crate::mail::MailSettings,
) -> usize {
    if let Err(e) = lock(ledger).adopt_last_run(last_run) {
        tracing::error!(error = %crate::exit::render_error(&e), "mail ledger: could not record the last run as committed");
    }
    let (pending, superseded) = lock(ledger).unfinished(last_run);
    for id in superseded {
        tracing::warn!(run_id = %id, "mail: an earlier run was interrupted before its history was committed; this run reports its changes instead");
        let _ = lock(ledger).append(Entry::Done { run_id: id });
    }
    let mut undelivered = 0;
    for p in pending {
        if !mail.transport.sends() {
            tracing::warn!(run_id = %p.run_id, outbox = %p.out_dir.join(crate::mail::outbox::OUTBOX).display(), "mail: an earlier run's messages wait in its outbox and this run sends no mail (no --smtp or --mail-via graph)");
            continue;
        }
        tracing::info!(run_id = %p.run_id, out = %p.out_dir.display(), "mail: sending what an interrupted earlier run left in its outbox");
        let run_id = p.run_id.clone();
        let record = |path: &Path, to: &lettre::Address| record_accepted(ledger, &run_id, path, to);
        match crate::mail::send_leftovers(&p.out_dir, mail, &p.accepted_files, &record).await {
            Ok(d) if d.undelivered == 0 => {
                let _ = lock(ledger).append(Entry::Done { run_id: p.run_id });
            }
            Ok(d) => undelivered += d.undelivered,
            Err(e) => {
                undelivered += 1;
                tracing::error!(run_id = %p.run_id, error = %crate::exit::render_error(&e), "mail: could not read an earlier run's outbox");
            }
        }
    }
    undelivered
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn record_accepted(ledger: &Mutex<Ledger>, run_id: &str, path: &Path, to: &lettre::Address) {
    let file = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    if let Err(e) = lock(ledger).append(Entry::Accepted {
        run_id: run_id.to_string(),
        to: to.to_string(),
        file,
    }) {
        tracing::error!(error = %crate::exit::render_error(&e), "mail ledger: could not record a sent message (a retry of this run id may send it again)");
    }
}

/// Stage 2: the inventory, from the folder, the demo tenant or Resource Graph.
/// `old_sps`: service principals migrated clusters left, looked up in Microsoft Graph
/// too (a kubelet not yet re-imaged still uses one).
async fn collect(
    settings: &Settings,
    old_sps: &[String],
    migrated: &[history::PendingCandidate],
    prior: crate::azure::signals::Prior<'_>,
    missing: crate::azure::MissingGrants,
) -> anyhow::Result<(Inventory, String, crate::azure::stats::TableStats)> {
    let owners = settings.owners.clone();
    let needs_group: crate::azure::NeedsGroup =
        std::sync::Arc::new(move |c| crate::rules::owner::needs_resource_group(&owners, c));
    let (inventory, source, collect_stats) = match &settings.source {
        Source::Inventory(dir) => {
            let mut inv = {
                let dir = dir.clone();
                crate::memory::on_inventory_thread(move || folder::read_folder(&dir)).await?
            };
            crate::azure::signals::from_folder(dir, &mut inv, &prior)?;
            (inv, format!("inventory folder {}", dir.display()), None)
        }
        #[cfg(feature = "emulator")]
        Source::Demo => {
            let (inv, stats) = crate::azure::collect_demo(
                &settings.azure,
                &crate::azure::Progress::for_stderr(),
                old_sps,
                migrated,
                needs_group.clone(),
                prior,
                missing.clone(),
            )
            .await?;
            (
                inv,
                "built-in demo tenant (embedded emulator, live path)".to_string(),
                Some(stats),
            )
        }
        #[cfg(not(feature = "emulator"))]
        Source::Demo => return Err(not_in_this_build("--demo (the built-in demo tenant)")),
        Source::Live => {
            let (inv, stats) = crate::azure::collect(
                &settings.azure,
                &crate::azure::Progress::for_stderr(),
                old_sps,
                migrated,
                needs_group.clone(),
                prior,
                missing.clone(),
            )
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
    Ok((
        inventory,
        source,
        collect_stats.map(|s| s.totals()).unwrap_or_default(),
    ))
}

pub async fn run(settings: &Settings) -> anyhow::Result<RunResult> {
    check_source(settings)?;
    let started = Instant::now();
    let now = settings.now.unwrap_or_else(Utc::now);
    let run_id = settings
        .run_id
        .clone()
        .unwrap_or_else(|| crate::state::default_run_id(now));

    // 1. Load: baseline, suppressions, the locked state, the ledger.
    let Loaded {
        baseline,
        suppressions,
        prev,
        runs,
        _lock,
        ledger,
        backfill,
    } = load(settings, now)?;
    let last_run = prev.last_run;
    let ledger = ledger.map(Mutex::new);
    let mut earlier_undelivered = 0;
    if let Some(l) = &ledger {
        earlier_undelivered = finish_earlier_mail(l, last_run, &settings.mail).await;
    }

    // 2. Collect.
    let missing: crate::azure::MissingGrants = {
        let baseline = baseline.clone();
        std::sync::Arc::new(move |inv| rules::groups::missing_needs(inv, &baseline, now))
    };
    let (inventory, source, http) = collect(
        settings,
        &history::migrated_sp_client_ids(&prev),
        &history::pending_candidates(&prev),
        crate::azure::signals::Prior {
            history: &prev,
            now,
        },
        missing,
    )
    .await?;
    let collected = started.elapsed();
    crate::memory::log("collect");

    // 3. Generate (pure; the inventory is consumed cluster by cluster).
    let opts = rules::Options {
        source,
        owners: settings.owners.clone(),
        suppressions,
        history_days: settings.history_days,
        graph: settings.azure.graph,
    };
    let rules::Outcome {
        mut report,
        history,
    } = {
        // Where the inventory and the history were built: what each audited cluster frees
        // is reused for its findings (crate::memory).
        let _trimming = crate::memory::Trimming::every(Duration::from_millis(200));
        crate::memory::on_inventory_thread(move || {
            Report::generate(inventory, &baseline, prev, now, &opts)
        })
        .await
    };
    let trimming = std::thread::spawn(crate::memory::trim);
    let classified = started.elapsed();
    crate::memory::log("classify");

    // The next history is written now, under a temporary name, and freed: the reports do
    // not need it (a large estate's is ~200 MB). It is put in place at step 6, after the
    // outbox, as before; an error writing it is returned there too.
    let staged_history = match &settings.state {
        Some(dir) if !backfill => Some(history.stage(dir)),
        _ => None,
    };
    drop(history);

    // 4. Write outputs: every file on its own; one that fails does not stop the others.
    let out_dir = settings.out.clone().unwrap_or_else(|| default_out_dir(now));
    let runs = if backfill {
        trend::insert(&runs, trend::RunRecord::of(&report), settings.history_days)
    } else {
        trend::append(&runs, trend::RunRecord::of(&report), settings.history_days)
    };
    let render = RenderOptions {
        csv_excel: settings.csv_excel,
        lang: settings.lang,
    };
    crate::history::create_private_dir(&out_dir)?;
    report.output_errors = write_reports_with_runs(&report, &out_dir, &render, &runs);
    if !report.output_errors.is_empty() {
        for e in &report.output_errors {
            tracing::error!(file = %e.file, error = %e.error, "report file not written; the others are");
        }
        // report.json says which file is missing (when it can be written at all).
        let _ = history::write_atomic_with(&out_dir.join("report.json"), |w| {
            report::render_to("report.json", &report, &render, &runs, w)
        });
    }

    crash_point("after-reports");

    // 4b. Upload to Blob Storage: before mail (so mail could point at it), never
    // holding it back: a failure is counted, the run goes on.
    let upload_started = started.elapsed();
    let upload = match &settings.upload {
        Some(u) => crate::upload::upload(&out_dir, &run_id, u).await,
        None => crate::upload::Outcome::default(),
    };
    let upload_ms = (started.elapsed() - upload_started).as_millis() as u64;

    // 5. Outbox: every message on disk (fsync) before history moves on.
    let skip = |to: &lettre::Address| {
        ledger
            .as_ref()
            .is_some_and(|l| lock(l).accepted(&run_id, to.as_ref()))
    };
    let mail_settings = crate::upload::with_links(&settings.mail, &upload);
    let prepared = crate::mail::prepare(&report, &out_dir, &mail_settings, &skip);
    if let Some(l) = &ledger {
        lock(l).append(Entry::Outbox {
            run_id: run_id.clone(),
            run_at: now,
            out_dir: std::path::absolute(&out_dir).unwrap_or_else(|_| out_dir.clone()),
            messages: prepared.messages(),
        })?;
    }

    // 5b. Webhook digests and Log Analytics rows in the delivery queue (with --state).
    let mut deliveries = crate::delivery_queue::Deliveries::prepare(
        settings, &run_id, now, last_run, &report, &out_dir,
    );

    crash_point("after-outbox");

    // 6. Commit history: state.json and runs.csv (a backfill touches runs.csv only).
    if let Some(dir) = &settings.state {
        if backfill {
            tracing::info!(now = %now.to_rfc3339(), "backfill: run inserted into runs.csv; state.json left as it was");
        } else if let Some(staged) = staged_history {
            staged?.commit()?;
        }
        crate::secure_fs::write_atomic(
            &dir.join(trend::RUNS_FILE),
            trend::runs_csv(&runs)?.as_bytes(),
        )?;
    }
    if let Some(l) = &ledger {
        lock(l).append(Entry::Committed {
            run_id: run_id.clone(),
        })?;
    }
    deliveries.committed(&run_id);
    let _ = trimming.join();
    crate::memory::trim();
    let reported = started.elapsed();
    crate::memory::log("report");

    crash_point("after-commit");

    // 7. Deliver.
    let record = |path: &Path, to: &lettre::Address| {
        if let Some(l) = &ledger {
            record_accepted(l, &run_id, path, to);
        }
        crash_point("after-first-send");
    };
    let mail = crate::mail::send_prepared(prepared, &out_dir, &settings.mail, &record).await;
    if let Some(l) = &ledger {
        if mail.undelivered == 0 {
            lock(l).append(Entry::Done {
                run_id: run_id.clone(),
            })?;
        }
        let _ = lock(l).compact(now, chrono::Duration::days(35));
    }
    let mailed = started.elapsed();

    // 7b. Webhook digests: after mail, so a slow or failing webhook never holds it.
    let delivered = || crash_point("after-first-delivery");
    let webhooks = deliveries
        .webhooks(&run_id, &report, &out_dir, &settings.webhooks, &delivered)
        .await;

    // 7c. Log Analytics rows: after mail too.
    let hooked = started.elapsed();
    let log_analytics = deliveries
        .log_analytics(
            &run_id,
            &report,
            settings.log_analytics.as_ref(),
            &delivered,
        )
        .await;
    deliveries.compact(now);
    let logged = started.elapsed();

    // 8. Retention: only folders this tool made, never this run's.
    if let Some(keep) = settings.keep_reports {
        crate::retention::prune(&out_dir, keep, now);
    }

    // 9. Summarise.
    let mut exit_code = exit_code(&report, settings.fail_on);
    if mail.undelivered > 0
        || mail.unmarked > 0
        || earlier_undelivered > 0
        || webhooks.failed > 0
        || log_analytics.rows_failed > 0
        || upload.failed > 0
    {
        exit_code = Exit::Gaps;
    }
    let s = &report.summary;
    tracing::info!(
        run_id = %run_id,
        clusters = s.clusters,
        critical = s.findings.critical,
        high = s.findings.high,
        medium = s.findings.medium,
        low = s.findings.low,
        suppressed = s.suppressed,
        skipped_rows = s.skipped_rows,
        gaps = s.gaps,
        not_written = report.output_errors.len(),
        mail_sent = mail.sent,
        mail_undelivered = mail.undelivered,
        mail_unroutable = mail.unroutable,
        mail_already_sent = mail.already_sent,
        webhooks_sent = webhooks.sent,
        webhooks_failed = webhooks.failed,
        webhooks_delayed = webhooks.delayed,
        log_analytics_rows_sent = log_analytics.rows_sent,
        log_analytics_rows_failed = log_analytics.rows_failed,
        uploaded = upload.uploaded,
        upload_failed = upload.failed,
        upload_ms,
        collect_ms = collected.as_millis() as u64,
        classify_ms = (classified - collected).as_millis() as u64,
        report_ms = (reported - classified).as_millis() as u64,
        mail_ms = (mailed - reported).as_millis() as u64,
        log_analytics_ms = (logged - hooked).as_millis() as u64,
        requests = http.requests,
        pages = http.pages,
        rows = http.rows,
        bytes = http.bytes,
        throttled_429 = http.throttled_429,
        retries = http.retries,
        total_ms = started.elapsed().as_millis() as u64,
        out = %out_dir.display(),
        exit_code = exit_code.code(),
        "audit finished"
    );
    Ok(RunResult {
        report,
        out_dir,
        exit_code,
        mail,
        webhooks,
        log_analytics,
        upload,
    })
}

/// One line for a person at a terminal: what was audited, what was found, where the
/// report is and why the exit code is what it is.
pub fn human_summary(r: &RunResult) -> String {
    let s = &r.report.summary;
    let count = |k: &str| k.parse().map_or(0, |k| s.findings.get(k));
    let why = match r.exit_code {
        Exit::Ok => "exit 0: nothing at or above --fail-on".to_string(),
        Exit::Findings => "exit 1: findings at or above --fail-on".to_string(),
        _ => {
            let mut parts = Vec::new();
            if s.gaps > 0 {
                parts.push(format!("{} coverage gap(s)", s.gaps));
            }
            if s.skipped_rows > 0 {
                parts.push(format!("{} skipped row(s)", s.skipped_rows));
            }
            if !r.report.output_errors.is_empty() {
                let names: Vec<&str> = r
                    .report
                    .output_errors
                    .iter()
                    .map(|e| e.file.as_str())
                    .collect();
                parts.push(format!("not written: {}", names.join(", ")));
            }
            if r.mail.undelivered > 0 {
                parts.push(format!("{} message(s) undelivered", r.mail.undelivered));
            }
            if r.mail.unmarked > 0 {
                parts.push(format!(
                    "{} sent message(s) not moved to sent/",
                    r.mail.unmarked
                ));
            }
            if r.upload.failed > 0 {
                parts.push(format!("{} report file(s) not uploaded", r.upload.failed));
            }
            if r.webhooks.failed > 0 {
                parts.push(format!(
                    "{} webhook digest(s) undelivered",
                    r.webhooks.failed
                ));
            }
            if r.log_analytics.rows_failed > 0 {
                parts.push(format!(
                    "{} row(s) not sent to Log Analytics",
                    r.log_analytics.rows_failed
                ));
            }
            if parts.is_empty() {
                parts.push("mail of an earlier run undelivered".into());
            }
            format!("exit 3: {}", parts.join(", "))
        }
    };
    let clusters = if s.clusters == 0 {
        "no clusters in scope".to_string()
    } else {
        format!("{} clusters", s.clusters)
    };
    format!(
        "{clusters}; findings: {} critical, {} high, {} medium, {} low; report: {}; {why}",
        count("critical"),
        count("high"),
        count("medium"),
        count("low"),
        r.out_dir.join("report.html").display()
    )
}

/// 3 (gaps) outranks 1 (findings): a job that could not see everything must say so first.
pub fn exit_code(report: &Report, fail_on: Option<rules::Severity>) -> Exit {
    if !report.coverage.is_complete() || !report.output_errors.is_empty() {
        return Exit::Gaps;
    }
    match (fail_on, report.worst()) {
        (Some(threshold), Some(worst)) if worst >= threshold => Exit::Findings,
        _ => Exit::Ok,
    }
}

/// Renders every file and writes each atomically into `dir`; `runs` is the run history
/// (`runs.csv`) the HTML trend draws. Two files at a time (the machine this is measured
/// on has two cores), the largest first. A file that fails is left out and returned;
/// the others are written.
pub fn write_reports_with_runs(
    report: &Report,
    dir: &Path,
    opts: &RenderOptions,
    runs: &[trend::RunRecord],
) -> Vec<rules::OutputError> {
    let mut names = report::FILES.to_vec();
    names.sort_by_key(|n| !(n.ends_with(".json") || n.ends_with(".html")));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let write = || -> Vec<rules::OutputError> {
        let mut failed = Vec::new();
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(name) = names.get(i) else {
                return failed;
            };
            let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                history::write_atomic_with(&dir.join(name), |w| {
                    report::render_to(name, report, opts, runs, w)
                })
            }));
            match res {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failed.push(rules::OutputError {
                    file: name.to_string(),
                    error: crate::exit::render_error(&e),
                }),
                Err(_) => failed.push(rules::OutputError {
                    file: name.to_string(),
                    error: "the renderer panicked".into(),
                }),
            }
            crate::memory::log(name);
        }
    };
    let mut failed = std::thread::scope(|s| {
        let other = s.spawn(write);
        let mut mine = write();
        mine.extend(
            other
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p)),
        );
        mine
    });
    failed.sort_by(|a, b| a.file.cmp(&b.file));
    failed
}
