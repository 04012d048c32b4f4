//! The scheduler loop: plan, wait, run, record; one run at a time.
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::cron_expr::Schedule;

/// Everything [`run_schedule`] needs. The timezone is the schedule's
/// ([`Schedule::timezone`]).
#[derive(Debug, Clone)]
pub struct ScheduleOptions {
    pub schedule: Schedule,
    /// Where `schedule-state.json` (the last scheduled time that ran) is kept.
    pub state_dir: PathBuf,
    /// After downtime, run the latest missed slot once at start (default true).
    pub run_missed: bool,
    /// On SIGTERM/SIGINT during a run, how long to let it finish before abandoning it.
    pub shutdown_grace: Duration,
}

/// What to do now, given the clock and the last slot that ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// A missed slot to run immediately (the latest one only), if catching up.
    pub run_now: Option<DateTime<Utc>>,
    /// The latest slot in `(last_run, now]`, whether or not it is run now.
    pub missed: Option<DateTime<Utc>>,
    /// The next slot strictly after both `now` and `last_run`; `None` if the schedule
    /// has no more fire times (after the year 2100).
    pub next: Option<DateTime<Utc>>,
}

/// Pure scheduling decision. A first start (`last_run` = `None`) never counts as
/// missed; many missed slots collapse into the latest one.
pub fn plan(
    now: DateTime<Utc>,
    last_run: Option<DateTime<Utc>>,
    schedule: &Schedule,
    run_missed: bool,
) -> Plan {
    let missed = last_run.and_then(|last| {
        schedule
            .latest_at_or_before(now)
            .filter(|slot| *slot > last)
    });
    // If the clock went backwards (last_run in the future), never repeat a slot.
    let from = match last_run {
        Some(last) if last > now => last,
        _ => now,
    };
    Plan {
        run_now: if run_missed { missed } else { None },
        missed,
        next: schedule.next_after(from),
    }
}

/// Wall clock and sleeping, injectable so the loop is tested without waiting.
pub trait Clock {
    fn now(&self) -> DateTime<Utc>;
    /// Returns once `now() >= t`.
    fn sleep_until(&self, t: DateTime<Utc>) -> impl Future<Output = ()>;
    fn sleep(&self, d: Duration) -> impl Future<Output = ()>;
}

/// The real clock. Sleeps in slices of at most a minute and re-reads the wall clock,
/// so a suspended machine or a clock step does not make it fire late or early.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    async fn sleep_until(&self, t: DateTime<Utc>) {
        loop {
            let left = t - Utc::now();
            let Ok(left) = left.to_std() else { return };
            if left.is_zero() {
                return;
            }
            tokio::time::sleep(left.min(Duration::from_secs(60))).await;
        }
    }

    async fn sleep(&self, d: Duration) {
        tokio::time::sleep(d).await;
    }
}

const STATE_FILE: &str = "schedule-state.json";

/// What `schedule-state.json` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleState {
    /// The scheduled time of the last run that finished (successfully or not).
    pub last_scheduled: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// The run's exit code; `None` when the job returned an error.
    pub exit_code: Option<u8>,
    pub expression: String,
    pub timezone: String,
}

pub fn state_path(state_dir: &Path) -> PathBuf {
    state_dir.join(STATE_FILE)
}

/// Reads the state file; a missing file is `None`, an unreadable one an error.
pub fn read_state(state_dir: &Path) -> anyhow::Result<Option<ScheduleState>> {
    let path = state_path(state_dir);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .with_context(|| format!("parsing {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Writes the state file atomically: a temporary file in the same directory, fsync,
/// then rename over the old one (mode 0600, no planted link followed: see
/// [`crate::secure_fs`]).
pub fn write_state(state_dir: &Path, state: &ScheduleState) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(state)?;
    text.push('\n');
    crate::secure_fs::write_atomic_with(&state_path(state_dir), |w| {
        Ok(w.write_all(text.as_bytes())?)
    })
}

/// Runs `job` at every slot of `opts.schedule` until SIGTERM or SIGINT.
///
/// One run at a time (the loop awaits the job; slots that pass during a run are
/// skipped with a warning). A signal while waiting returns `Ok(())` at once; during a
/// run, the run gets `opts.shutdown_grace` to finish (a second signal cuts it short),
/// then its future is dropped. An abandoned run is not recorded, so with `run_missed`
/// it is run again at the next start.
pub async fn run_schedule<F, Fut>(opts: ScheduleOptions, job: F) -> anyhow::Result<()>
where
    F: FnMut(DateTime<Utc>) -> Fut,
    Fut: Future<Output = anyhow::Result<u8>>,
{
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let (tx, rx) = watch::channel(0u32);
    let listener = tokio::spawn(async move {
        loop {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            tracing::info!(signal = name, "shutdown signal received");
            tx.send_modify(|n| *n += 1);
        }
    });
    let result = run_loop(opts, &SystemClock, rx, job).await;
    listener.abort();
    result
}

/// Resolves once at least `n` shutdown requests arrived; never if the sender is gone.
async fn requested(rx: &mut watch::Receiver<u32>, n: u32) {
    if rx.wait_for(|count| *count >= n).await.is_err() {
        std::future::pending::<()>().await;
    }
}

enum Outcome {
    Finished(anyhow::Result<u8>),
    Abandoned,
}

/// The loop behind [`run_schedule`], with the clock and the shutdown requests (a
/// counter: 1 = finish up, 2 = stop now) injected.
pub async fn run_loop<C, F, Fut>(
    opts: ScheduleOptions,
    clock: &C,
    mut shutdown: watch::Receiver<u32>,
    mut job: F,
) -> anyhow::Result<()>
where
    C: Clock,
    F: FnMut(DateTime<Utc>) -> Fut,
    Fut: Future<Output = anyhow::Result<u8>>,
{
    let tz = opts.schedule.timezone();
    crate::secure_fs::create_dir_all(&opts.state_dir)
        .with_context(|| format!("creating state directory {}", opts.state_dir.display()))?;
    let mut last = read_state(&opts.state_dir)?.map(|s| s.last_scheduled);
    tracing::info!(
        cron = opts.schedule.expression(),
        timezone = %tz,
        last_run = last.map(|t| t.to_rfc3339()).unwrap_or_else(|| "never".into()),
        run_missed = opts.run_missed,
        "scheduler started"
    );
    let mut catch_up = opts.run_missed;
    loop {
        let now = clock.now();
        let p = plan(now, last, &opts.schedule, catch_up);
        let first = catch_up;
        catch_up = false;
        let slot = match p.run_now {
            Some(slot) => {
                tracing::info!(slot = %slot.with_timezone(&tz), "running the missed run once");
                slot
            }
            None => {
                if let Some(m) = p.missed {
                    if first || last.is_none() {
                        tracing::info!(slot = %m.with_timezone(&tz), "missed run not run (--no-run-missed)");
                    } else {
                        tracing::warn!(slot = %m.with_timezone(&tz), "run skipped: the previous run was still running");
                    }
                }
                let Some(next) = p.next else {
                    anyhow::bail!(
                        "the schedule {:?} has no fire time after {now}",
                        opts.schedule.expression()
                    );
                };
                tracing::info!(next_run = %next.with_timezone(&tz), next_run_utc = %next, "next run");
                tokio::select! {
                    biased;
                    _ = requested(&mut shutdown, 1) => {
                        tracing::info!("shutting down while idle");
                        return Ok(());
                    }
                    _ = clock.sleep_until(next) => next,
                }
            }
        };

        tracing::info!(slot = %slot.with_timezone(&tz), "run starting");
        let (outcome, stop) = {
            let fut = job(slot);
            tokio::pin!(fut);
            tokio::select! {
                biased;
                r = &mut fut => (Outcome::Finished(r), false),
                _ = requested(&mut shutdown, 1) => {
                    tracing::warn!(grace_secs = opts.shutdown_grace.as_secs(), "shutdown requested during a run: letting it finish");
                    let o = tokio::select! {
                        biased;
                        r = &mut fut => Outcome::Finished(r),
                        _ = clock.sleep(opts.shutdown_grace) => Outcome::Abandoned,
                        _ = requested(&mut shutdown, 2) => Outcome::Abandoned,
                    };
                    (o, true)
                }
            }
        };
        match outcome {
            Outcome::Abandoned => {
                tracing::warn!(slot = %slot.with_timezone(&tz), "run abandoned at shutdown; it is not recorded and will be retried as a missed run");
                anyhow::bail!(
                    "run of {} abandoned at shutdown: messages it wrote but did not send wait in its report folder's outbox/; \
                     with --state the next start sends them (or run `aks-identity-audit resend DIR`)",
                    slot.with_timezone(&tz)
                );
            }
            Outcome::Finished(result) => {
                let exit_code = match &result {
                    Ok(0) => {
                        tracing::info!(slot = %slot.with_timezone(&tz), exit_code = 0, "run finished");
                        Some(0)
                    }
                    Ok(code) => {
                        tracing::warn!(slot = %slot.with_timezone(&tz), exit_code = *code, "run finished with a non-zero exit code");
                        Some(*code)
                    }
                    Err(e) => {
                        tracing::error!(slot = %slot.with_timezone(&tz), error = format!("{e:#}"), "run failed");
                        None
                    }
                };
                last = Some(slot);
                let state = ScheduleState {
                    last_scheduled: slot,
                    finished_at: clock.now(),
                    exit_code,
                    expression: opts.schedule.expression().to_string(),
                    timezone: tz.name().to_string(),
                };
                if let Err(e) = write_state(&opts.state_dir, &state) {
                    tracing::error!(error = format!("{e:#}"), "could not record the run");
                }
            }
        }
        if stop {
            tracing::info!("shutting down after the run");
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests;
