//! Global pacing of Resource Graph queries from the quota headers on every reply
//! (`x-ms-user-quota-remaining`, `x-ms-user-quota-resets-after`), so that a run
//! never spends more than the window allows and draws no 429.
//!
//! The arithmetic lives in [`Window`] (pure, given a clock reading); [`Pacer`] adds
//! the lock and the sleeping.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;

/// Parses `hh:mm:ss`, `hh:mm:ss.fff` or `d.hh:mm:ss` (the .NET `TimeSpan` forms ARG uses).
pub fn parse_hhmmss(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (days, rest) = match s.split_once('.') {
        Some((d, r)) if r.contains(':') && !d.contains(':') => (d.parse::<u64>().ok()?, r),
        _ => (0, s),
    };
    let mut parts = rest.split(':');
    let h: u64 = parts.next()?.parse().ok()?;
    let m: u64 = parts.next()?.parse().ok()?;
    let sec: f64 = parts.next()?.parse().ok()?;
    if parts.next().is_some() || m >= 60 || !(0.0..60.0).contains(&sec) {
        return None;
    }
    Some(Duration::from_secs(days * 86_400 + h * 3600 + m * 60) + Duration::from_secs_f64(sec))
}

/// One reply's quota headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    pub remaining: u32,
    pub resets_after: Duration,
}

impl Reading {
    pub fn from_headers(h: &HeaderMap) -> Option<Reading> {
        let get = |k: &str| h.get(k).and_then(|v| v.to_str().ok());
        let remaining = get("x-ms-user-quota-remaining")?
            .trim()
            .parse::<i64>()
            .ok()?;
        let resets_after = parse_hhmmss(get("x-ms-user-quota-resets-after")?)?;
        Some(Reading {
            remaining: remaining.clamp(0, u32::MAX as i64) as u32,
            resets_after,
        })
    }
}

/// What the caller should do before sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    Go,
    /// The window is spent: sleep until it resets.
    WaitUntil(Instant),
    /// Nothing known yet and a probe is in flight: wait for its reply.
    WaitForReply,
}

/// The client's view of the current quota window.
#[derive(Debug, Clone, Default)]
pub struct Window {
    /// Queries still allowed in this window, per the latest replies.
    remaining: Option<u32>,
    /// When the window resets (an upper bound: the header is rounded up).
    reset_at: Option<Instant>,
    /// Window size learned from replies (largest `remaining` + 1).
    capacity: Option<u32>,
    /// Requests sent whose reply has not been observed.
    in_flight: u32,
}

impl Window {
    /// Decides for one request at `now`; on [`Plan::Go`] the request counts as in flight.
    pub fn plan(&mut self, now: Instant) -> Plan {
        if self.reset_at.is_some_and(|r| now >= r) {
            self.reset_at = None;
            self.remaining = self.capacity;
        }
        match self.remaining {
            None if self.in_flight == 0 => {
                self.in_flight += 1;
                Plan::Go
            }
            None => Plan::WaitForReply,
            Some(r) if r > self.in_flight => {
                self.in_flight += 1;
                Plan::Go
            }
            Some(_) => match self.reset_at {
                Some(t) => Plan::WaitUntil(t),
                None => Plan::WaitForReply,
            },
        }
    }

    /// A reply arrived at `now` (with or without quota headers).
    pub fn observe(&mut self, reading: Option<Reading>, now: Instant) {
        self.in_flight = self.in_flight.saturating_sub(1);
        let Some(r) = reading else { return };
        let reset = now + r.resets_after;
        self.capacity = Some(
            self.capacity
                .unwrap_or(0)
                .max(r.remaining.saturating_add(1)),
        );
        let newer_window = match self.reset_at {
            None => true,
            // Every reply of one window estimates its end within about a second (the
            // header is rounded up); an estimate clearly later belongs to the next window.
            Some(cur) => reset > cur + Duration::from_millis(1500),
        };
        if newer_window {
            self.remaining = Some(r.remaining);
            self.reset_at = Some(reset);
        } else {
            self.remaining = Some(self.remaining.map_or(r.remaining, |m| m.min(r.remaining)));
            self.reset_at = self.reset_at.map(|c| c.min(reset));
        }
    }

    /// A request was never sent or its reply was lost: it no longer counts.
    pub fn cancel(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    pub fn reset_at(&self) -> Option<Instant> {
        self.reset_at
    }
}

/// Shared by every query of a run: the quota is per user, not per query.
#[derive(Debug, Default)]
pub struct Pacer {
    window: Mutex<Window>,
    notify: tokio::sync::Notify,
    waited_ms: AtomicU64,
    /// Set while a request waits for the window to reset (for progress ETA).
    throttled_until: Mutex<Option<Instant>>,
}

/// A slot for one request; report its reply with [`Permit::observe`].
pub struct Permit<'a> {
    pacer: &'a Pacer,
    done: bool,
}

impl Pacer {
    pub fn new() -> Pacer {
        Pacer::default()
    }

    pub async fn acquire(&self) -> Permit<'_> {
        loop {
            let plan = {
                let mut w = self.window.lock().unwrap_or_else(|p| p.into_inner());
                w.plan(Instant::now())
            };
            match plan {
                Plan::Go => {
                    return Permit {
                        pacer: self,
                        done: false,
                    }
                }
                Plan::WaitUntil(t) => {
                    let start = Instant::now();
                    *self
                        .throttled_until
                        .lock()
                        .unwrap_or_else(|p| p.into_inner()) = Some(t);
                    tokio::time::sleep_until(t.into()).await;
                    *self
                        .throttled_until
                        .lock()
                        .unwrap_or_else(|p| p.into_inner()) = None;
                    self.waited_ms
                        .fetch_add(start.elapsed().as_millis() as u64, Ordering::Relaxed);
                }
                Plan::WaitForReply => {
                    tokio::select! {
                        _ = self.notify.notified() => {}
                        _ = tokio::time::sleep(Duration::from_millis(25)) => {}
                    }
                }
            }
        }
    }

    /// Total time spent waiting for quota windows to reset.
    pub fn waited(&self) -> Duration {
        Duration::from_millis(self.waited_ms.load(Ordering::Relaxed))
    }

    /// When the current throttle pause ends, if one is in progress.
    pub fn throttled_until(&self) -> Option<Instant> {
        *self
            .throttled_until
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }
}

impl Permit<'_> {
    /// Records the reply's quota headers and frees the slot.
    pub fn observe(mut self, headers: &HeaderMap) {
        let reading = Reading::from_headers(headers);
        self.pacer
            .window
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .observe(reading, Instant::now());
        self.done = true;
        self.pacer.notify.notify_waiters();
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.pacer
                .window
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .cancel();
            self.pacer.notify.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(remaining: u32, secs: u64) -> Option<Reading> {
        Some(Reading {
            remaining,
            resets_after: Duration::from_secs(secs),
        })
    }

    #[test]
    fn parses_time_spans() {
        assert_eq!(parse_hhmmss("00:00:05"), Some(Duration::from_secs(5)));
        assert_eq!(parse_hhmmss("01:02:03"), Some(Duration::from_secs(3723)));
        assert_eq!(
            parse_hhmmss("00:00:04.5"),
            Some(Duration::from_millis(4500))
        );
        assert_eq!(
            parse_hhmmss("1.00:00:01"),
            Some(Duration::from_secs(86_401))
        );
        for bad in ["", "5", "00:61:00", "a:b:c", "00:00:00:00", "00:00:-1"] {
            assert_eq!(parse_hhmmss(bad), None, "{bad}");
        }
    }

    #[test]
    fn reads_headers() {
        let mut h = HeaderMap::new();
        assert_eq!(Reading::from_headers(&h), None);
        h.insert("x-ms-user-quota-remaining", "12".parse().unwrap());
        h.insert("x-ms-user-quota-resets-after", "00:00:05".parse().unwrap());
        assert_eq!(Reading::from_headers(&h), reading(12, 5));
        h.insert("x-ms-user-quota-remaining", "-1".parse().unwrap());
        assert_eq!(Reading::from_headers(&h).unwrap().remaining, 0);
    }

    #[test]
    fn first_request_probes_alone() {
        let t0 = Instant::now();
        let mut w = Window::default();
        assert_eq!(w.plan(t0), Plan::Go);
        assert_eq!(w.plan(t0), Plan::WaitForReply);
        w.observe(reading(14, 5), t0);
        // 14 left: up to 14 in flight, then wait for the reset.
        for _ in 0..14 {
            assert_eq!(w.plan(t0), Plan::Go);
        }
        assert_eq!(w.plan(t0), Plan::WaitUntil(t0 + Duration::from_secs(5)));
    }

    #[test]
    fn spends_exactly_the_window_then_sleeps_until_reset() {
        let t0 = Instant::now();
        let mut w = Window::default();
        let mut sent = 0;
        let mut now = t0;
        // Sequential client: each reply says one fewer is left.
        let mut left = 15u32;
        loop {
            match w.plan(now) {
                Plan::Go => {
                    sent += 1;
                    left -= 1;
                    let resets = 5 - (now - t0).as_secs();
                    w.observe(reading(left, resets), now);
                    now += Duration::from_millis(100);
                }
                Plan::WaitUntil(t) => {
                    assert_eq!(t, t0 + Duration::from_secs(5));
                    break;
                }
                Plan::WaitForReply => panic!("nothing is in flight"),
            }
        }
        assert_eq!(sent, 15);
        // After the reset the learned capacity is available again, without a probe.
        let after = t0 + Duration::from_secs(5);
        for _ in 0..15 {
            assert_eq!(w.plan(after), Plan::Go);
        }
        assert!(matches!(w.plan(after), Plan::WaitForReply));
    }

    #[test]
    fn out_of_order_replies_keep_the_lowest_count() {
        let t0 = Instant::now();
        let mut w = Window::default();
        assert_eq!(w.plan(t0), Plan::Go);
        w.observe(reading(3, 5), t0);
        assert_eq!(w.plan(t0), Plan::Go);
        assert_eq!(w.plan(t0), Plan::Go);
        // The later-processed reply (1 left) arrives first, then the earlier one (2 left).
        w.observe(reading(1, 5), t0);
        w.observe(reading(2, 5), t0);
        assert_eq!(w.plan(t0), Plan::Go);
        assert!(matches!(w.plan(t0), Plan::WaitUntil(_)));
    }

    #[test]
    fn a_429_reply_pauses_until_its_reset() {
        let t0 = Instant::now();
        let mut w = Window::default();
        assert_eq!(w.plan(t0), Plan::Go);
        w.observe(reading(0, 3), t0);
        assert_eq!(w.plan(t0), Plan::WaitUntil(t0 + Duration::from_secs(3)));
        assert_eq!(w.plan(t0 + Duration::from_secs(3)), Plan::Go);
    }

    #[test]
    fn replies_without_headers_free_the_slot() {
        let t0 = Instant::now();
        let mut w = Window::default();
        assert_eq!(w.plan(t0), Plan::Go);
        w.observe(None, t0);
        assert_eq!(w.plan(t0), Plan::Go);
        w.cancel();
        assert_eq!(w.plan(t0), Plan::Go);
    }
}
