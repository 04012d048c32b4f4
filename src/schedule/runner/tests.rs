//! Tests of the parent module.
use super::*;
use crate::schedule::parse_cron;
use chrono::{TimeDelta, TimeZone};
use chrono_tz::Tz;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Mutex;

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

fn daily_six() -> Schedule {
    parse_cron("0 6 * * *", Tz::UTC).unwrap()
}

#[test]
fn plan_first_start_waits() {
    let p = plan(utc(2025, 1, 2, 12, 0), None, &daily_six(), true);
    assert_eq!(
        p,
        Plan {
            run_now: None,
            missed: None,
            next: Some(utc(2025, 1, 3, 6, 0))
        }
    );
}

#[test]
fn plan_missed_runs_collapse_into_the_latest() {
    // Last ran 3 days ago; four slots passed: only the latest runs.
    let p = plan(
        utc(2025, 1, 5, 12, 0),
        Some(utc(2025, 1, 2, 6, 0)),
        &daily_six(),
        true,
    );
    assert_eq!(p.run_now, Some(utc(2025, 1, 5, 6, 0)));
    assert_eq!(p.missed, Some(utc(2025, 1, 5, 6, 0)));
    assert_eq!(p.next, Some(utc(2025, 1, 6, 6, 0)));
    let p = plan(
        utc(2025, 1, 5, 12, 0),
        Some(utc(2025, 1, 2, 6, 0)),
        &daily_six(),
        false,
    );
    assert_eq!(p.run_now, None);
    assert_eq!(p.missed, Some(utc(2025, 1, 5, 6, 0)));
}

#[test]
fn plan_nothing_missed_when_up_to_date() {
    let p = plan(
        utc(2025, 1, 5, 12, 0),
        Some(utc(2025, 1, 5, 6, 0)),
        &daily_six(),
        true,
    );
    assert_eq!(p.run_now, None);
    assert_eq!(p.missed, None);
    // Exactly at the slot time that already ran: not again, next is tomorrow.
    let p = plan(
        utc(2025, 1, 5, 6, 0),
        Some(utc(2025, 1, 5, 6, 0)),
        &daily_six(),
        true,
    );
    assert_eq!(p.run_now, None);
    assert_eq!(p.next, Some(utc(2025, 1, 6, 6, 0)));
    // Exactly at a slot that has not run: it is due now.
    let p = plan(
        utc(2025, 1, 5, 6, 0),
        Some(utc(2025, 1, 4, 6, 0)),
        &daily_six(),
        true,
    );
    assert_eq!(p.run_now, Some(utc(2025, 1, 5, 6, 0)));
}

#[test]
fn plan_clock_went_backwards() {
    let p = plan(
        utc(2025, 1, 5, 5, 0),
        Some(utc(2025, 1, 6, 6, 0)),
        &daily_six(),
        true,
    );
    assert_eq!(p.run_now, None);
    assert_eq!(p.next, Some(utc(2025, 1, 7, 6, 0)));
}

#[test]
fn state_roundtrip_is_atomic_file() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(read_state(dir.path()).unwrap(), None);
    let s = ScheduleState {
        last_scheduled: utc(2025, 1, 5, 6, 0),
        finished_at: utc(2025, 1, 5, 6, 3),
        exit_code: Some(1),
        expression: "0 6 * * *".into(),
        timezone: "UTC".into(),
    };
    write_state(dir.path(), &s).unwrap();
    write_state(dir.path(), &s).unwrap();
    assert_eq!(read_state(dir.path()).unwrap(), Some(s));
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec![STATE_FILE.to_string()]);
    std::fs::write(state_path(dir.path()), "{oops").unwrap();
    assert!(read_state(dir.path()).is_err());
}

/// A clock that jumps instead of sleeping.
struct FakeClock {
    now: Mutex<DateTime<Utc>>,
    slept_until: Mutex<Vec<DateTime<Utc>>>,
    /// How much a job "takes": added to `now` by the test job.
    step: TimeDelta,
}

impl FakeClock {
    fn new(now: DateTime<Utc>) -> Self {
        FakeClock {
            now: Mutex::new(now),
            slept_until: Mutex::new(Vec::new()),
            step: TimeDelta::minutes(5),
        }
    }
    fn advance(&self, d: TimeDelta) {
        *self.now.lock().unwrap() += d;
    }
}

impl Clock for FakeClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap()
    }
    async fn sleep_until(&self, t: DateTime<Utc>) {
        self.slept_until.lock().unwrap().push(t);
        let mut now = self.now.lock().unwrap();
        if *now < t {
            *now = t;
        }
    }
    async fn sleep(&self, d: Duration) {
        self.advance(TimeDelta::from_std(d).unwrap());
    }
}

fn options(dir: &Path, expr: &str, run_missed: bool) -> ScheduleOptions {
    ScheduleOptions {
        schedule: parse_cron(expr, Tz::UTC).unwrap(),
        state_dir: dir.to_path_buf(),
        run_missed,
        shutdown_grace: Duration::from_secs(60),
    }
}

/// Runs the loop with a job that records its slots, advances the fake clock by
/// `clock.step` per run and asks for shutdown after `runs` runs.
async fn drive(
    opts: ScheduleOptions,
    clock: &FakeClock,
    runs: usize,
    code: u8,
) -> Vec<DateTime<Utc>> {
    let (tx, rx) = watch::channel(0u32);
    let seen = Rc::new(RefCell::new(Vec::new()));
    let seen2 = seen.clone();
    let result = run_loop(opts, clock, rx, move |slot| {
        let seen = seen2.clone();
        let tx = tx.clone();
        async move {
            clock.advance(clock.step);
            seen.borrow_mut().push(slot);
            if seen.borrow().len() >= runs {
                tx.send_modify(|n| *n += 1);
            }
            Ok(code)
        }
    })
    .await;
    result.unwrap();
    let out = seen.borrow().clone();
    out
}

#[tokio::test]
async fn loop_runs_each_slot_and_records_it() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FakeClock::new(utc(2025, 1, 1, 10, 7));
    let seen = drive(options(dir.path(), "*/15 * * * *", true), &clock, 3, 0).await;
    assert_eq!(
        seen,
        vec![
            utc(2025, 1, 1, 10, 15),
            utc(2025, 1, 1, 10, 30),
            utc(2025, 1, 1, 10, 45)
        ]
    );
    let state = read_state(dir.path()).unwrap().unwrap();
    assert_eq!(state.last_scheduled, utc(2025, 1, 1, 10, 45));
    assert_eq!(state.finished_at, utc(2025, 1, 1, 10, 50));
    assert_eq!(state.exit_code, Some(0));
}

#[tokio::test]
async fn loop_runs_a_missed_slot_once_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(dir.path(), "0 6 * * *", true);
    // First life: one run on Jan 1.
    let clock = FakeClock::new(utc(2025, 1, 1, 0, 0));
    let seen = drive(opts.clone(), &clock, 1, 2).await;
    assert_eq!(seen, vec![utc(2025, 1, 1, 6, 0)]);
    assert_eq!(read_state(dir.path()).unwrap().unwrap().exit_code, Some(2));
    // Down until Jan 4 noon: Jan 2, 3 and 4 were missed; Jan 4 runs at once, then Jan 5.
    let clock = FakeClock::new(utc(2025, 1, 4, 12, 0));
    let seen = drive(opts.clone(), &clock, 2, 0).await;
    assert_eq!(seen, vec![utc(2025, 1, 4, 6, 0), utc(2025, 1, 5, 6, 0)]);
    // The missed run did not sleep; the regular one slept until its slot.
    assert_eq!(
        *clock.slept_until.lock().unwrap(),
        vec![utc(2025, 1, 5, 6, 0)]
    );
}

#[tokio::test]
async fn loop_without_run_missed_waits_for_the_next_slot() {
    let dir = tempfile::tempdir().unwrap();
    let s = ScheduleState {
        last_scheduled: utc(2025, 1, 1, 6, 0),
        finished_at: utc(2025, 1, 1, 6, 1),
        exit_code: Some(0),
        expression: "0 6 * * *".into(),
        timezone: "UTC".into(),
    };
    write_state(dir.path(), &s).unwrap();
    let clock = FakeClock::new(utc(2025, 1, 4, 12, 0));
    let seen = drive(options(dir.path(), "0 6 * * *", false), &clock, 1, 0).await;
    assert_eq!(seen, vec![utc(2025, 1, 5, 6, 0)]);
}

#[tokio::test]
async fn loop_skips_slots_that_pass_during_a_long_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut clock = FakeClock::new(utc(2025, 1, 1, 10, 7));
    clock.step = TimeDelta::minutes(20);
    let seen = drive(options(dir.path(), "*/15 * * * *", true), &clock, 3, 0).await;
    // 10:15 runs until 10:35 (10:30 skipped, no overlap, no catch-up), 10:45 until
    // 11:05 (11:00 skipped), then 11:15.
    assert_eq!(
        seen,
        vec![
            utc(2025, 1, 1, 10, 15),
            utc(2025, 1, 1, 10, 45),
            utc(2025, 1, 1, 11, 15)
        ]
    );
}

#[tokio::test]
async fn loop_records_failed_runs_and_keeps_going() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FakeClock::new(utc(2025, 1, 1, 0, 0));
    let (tx, rx) = watch::channel(0u32);
    let count = Rc::new(RefCell::new(0));
    let c2 = count.clone();
    run_loop(
        options(dir.path(), "0 * * * *", true),
        &clock,
        rx,
        move |_slot| {
            let c = c2.clone();
            let tx = tx.clone();
            async move {
                *c.borrow_mut() += 1;
                if *c.borrow() == 2 {
                    tx.send_modify(|n| *n += 1);
                }
                anyhow::bail!("boom")
            }
        },
    )
    .await
    .unwrap();
    assert_eq!(*count.borrow(), 2);
    let state = read_state(dir.path()).unwrap().unwrap();
    assert_eq!(state.last_scheduled, utc(2025, 1, 1, 2, 0));
    assert_eq!(state.exit_code, None);
}

#[tokio::test]
async fn shutdown_while_idle_returns_without_running() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FakeClock::new(utc(2025, 1, 1, 0, 0));
    let (tx, rx) = watch::channel(0u32);
    tx.send(1).unwrap();
    let mut ran = false;
    run_loop(options(dir.path(), "0 * * * *", true), &clock, rx, |_| {
        ran = true;
        async { Ok(0) }
    })
    .await
    .unwrap();
    assert!(!ran);
    assert_eq!(read_state(dir.path()).unwrap(), None);
}

#[tokio::test]
async fn shutdown_during_a_run_abandons_it_after_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FakeClock::new(utc(2025, 1, 1, 0, 0));
    let (tx, rx) = watch::channel(0u32);
    let dropped = Rc::new(RefCell::new(false));
    struct SetOnDrop(Rc<RefCell<bool>>);
    impl Drop for SetOnDrop {
        fn drop(&mut self) {
            *self.0.borrow_mut() = true;
        }
    }
    let d2 = dropped.clone();
    run_loop(
        options(dir.path(), "0 * * * *", true),
        &clock,
        rx,
        move |_| {
            let guard = SetOnDrop(d2.clone());
            tx.send(1).unwrap();
            async move {
                let _guard = guard;
                std::future::pending::<()>().await;
                Ok(0)
            }
        },
    )
    .await
    .expect_err("an abandoned run makes the scheduler exit non-zero");
    assert!(*dropped.borrow(), "the run's future was dropped");
    // The grace period elapsed on the clock, and nothing was recorded.
    assert_eq!(clock.now(), utc(2025, 1, 1, 1, 1));
    assert_eq!(read_state(dir.path()).unwrap(), None);
}

#[tokio::test]
async fn shutdown_during_a_run_lets_it_finish_within_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FakeClock::new(utc(2025, 1, 1, 0, 0));
    let (tx, rx) = watch::channel(0u32);
    let mut calls = 0;
    run_loop(options(dir.path(), "0 * * * *", true), &clock, rx, |_| {
        calls += 1;
        tx.send(1).unwrap();
        async {
            // Not ready at the first poll: the shutdown branch is taken first.
            tokio::task::yield_now().await;
            Ok(0)
        }
    })
    .await
    .unwrap();
    assert_eq!(calls, 1);
    let state = read_state(dir.path()).unwrap().unwrap();
    assert_eq!(state.last_scheduled, utc(2025, 1, 1, 1, 0));
}
