//! The built-in scheduler (`aks-identity-audit schedule`): Kubernetes CronJob schedule
//! strings, and a loop that runs the audit at each fire time, one run at a time.
//!
//! - [`parse_cron`] / [`Schedule`]: 5-field expressions with Kubernetes semantics.
//! - [`plan`]: the pure decision (missed run? next run?), [`run_schedule`]: the loop.
//! - The flags and the `[schedule]` table that resolve into [`ScheduleOptions`] are
//!   `crate::config::schedule`'s.
//! - [`check_cron_cli`]: the text printed by `check-cron`.
use chrono::{DateTime, Utc};
use chrono_tz::Tz;

mod cron_expr;
mod runner;

pub use cron_expr::{parse_cron, CronError, Schedule};
pub use runner::{
    plan, read_state, run_loop, run_schedule, state_path, write_state, Clock, Plan,
    ScheduleOptions, ScheduleState, SystemClock,
};

/// The default of `--shutdown-grace` / `schedule.shutdown_grace_seconds`.
pub const DEFAULT_SHUTDOWN_GRACE_SECONDS: u64 = 60;
/// The longest `--shutdown-grace`: a day.
pub const MAX_SHUTDOWN_GRACE_SECONDS: u64 = 86_400;

/// Parses an IANA timezone name with an error that says what is expected.
pub fn parse_timezone(name: &str) -> anyhow::Result<Tz> {
    name.trim().parse::<Tz>().map_err(|_| {
        anyhow::anyhow!("unknown timezone {name:?}: expected an IANA name such as UTC, Europe/Berlin or Asia/Tokyo")
    })
}

/// The text of `check-cron "<expr>" --timezone TZ`: the schedule and its next 3 fire
/// times from now. Errors (bad expression or timezone) are for a non-zero exit.
pub fn check_cron_cli(expr: &str, tz: &str) -> anyhow::Result<String> {
    check_cron_text(expr, tz, Utc::now(), 3)
}

/// [`check_cron_cli`] with the starting instant and count given. Output:
///
/// ```text
/// schedule: 0 2 * * *
/// timezone: Europe/Berlin
/// cron crate: 0 0 2 * * *
/// next 3 runs:
///   2025-01-02T02:00:00+01:00 (2025-01-02T01:00:00Z)
/// ```
///
/// plus a `note:` line when Kubernetes would reject the expression (day-of-week 7).
pub fn check_cron_text(
    expr: &str,
    tz: &str,
    from: DateTime<Utc>,
    n: usize,
) -> anyhow::Result<String> {
    let tz = parse_timezone(tz)?;
    let schedule = parse_cron(expr, tz)?;
    let mut out = format!(
        "schedule: {}\ntimezone: {}\ncron crate: {}\n",
        schedule.expression(),
        tz.name(),
        schedule.translated().join(" | ")
    );
    if let Some(note) = schedule.kubernetes_note() {
        out.push_str(&format!("note: {note}\n"));
    }
    let times = schedule.upcoming(from, n);
    out.push_str(&format!("next {} runs:\n", times.len()));
    for t in times {
        out.push_str(&format!(
            "  {} ({})\n",
            t.with_timezone(&tz).to_rfc3339(),
            t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn check_cron_text_lists_local_and_utc_times() {
        let from = Utc.with_ymd_and_hms(2025, 1, 1, 12, 0, 0).unwrap();
        let text = check_cron_text("0 2 * * MON-FRI", "Europe/Berlin", from, 3).unwrap();
        assert_eq!(
            text,
            "schedule: 0 2 * * MON-FRI\n\
             timezone: Europe/Berlin\n\
             cron crate: 0 0 2 * * MON-FRI\n\
             next 3 runs:\n  \
             2025-01-02T02:00:00+01:00 (2025-01-02T01:00:00Z)\n  \
             2025-01-03T02:00:00+01:00 (2025-01-03T01:00:00Z)\n  \
             2025-01-06T02:00:00+01:00 (2025-01-06T01:00:00Z)\n"
        );
        let text = check_cron_text("0 6 * * 7", "UTC", from, 1).unwrap();
        assert!(
            text.contains("note: Kubernetes CronJob rejects day-of-week 7"),
            "{text}"
        );
        assert!(check_cron_cli("* * * * 8", "UTC").is_err());
        assert!(check_cron_cli("0 2 * * *", "Nowhere/City").is_err());
        assert_eq!(
            check_cron_cli("0 2 * * *", "UTC").unwrap().lines().count(),
            7
        );
    }
}
