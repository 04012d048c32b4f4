//! The built-in scheduler (`aks-identity-audit schedule`): Kubernetes CronJob schedule
//! strings, and a loop that runs the audit at each fire time, one run at a time.
//!
//! - [`parse_cron`] / [`Schedule`]: 5-field expressions with Kubernetes semantics.
//! - [`plan`]: the pure decision (missed run? next run?), [`run_schedule`]: the loop.
//! - [`ScheduleArgs`] / [`options_from_args`]: the CLI flags.
//! - [`check_cron_cli`]: the text printed by `check-cron`.
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;

mod cron_expr;
mod runner;

pub use cron_expr::{parse_cron, CronError, Schedule};
pub use runner::{
    plan, read_state, run_loop, run_schedule, state_path, write_state, Clock, Plan,
    ScheduleOptions, ScheduleState, SystemClock,
};

/// Flags of the `schedule` subcommand (flattened next to the run flags).
#[derive(Debug, Clone, clap::Args)]
pub struct ScheduleArgs {
    /// When to run: a Kubernetes CronJob schedule, 5 fields "minute hour day-of-month
    /// month day-of-week" (day-of-week 0 or 7 = Sunday, 1 = Monday; names like MON,
    /// JAN; ranges, steps, lists) or @hourly, @daily, @midnight, @weekly, @monthly,
    /// @yearly. Example: "0 2 * * MON-FRI" [config: schedule.cron]
    #[arg(long, value_name = "EXPR")]
    pub cron: Option<String>,

    /// IANA timezone the schedule is read in, e.g. Europe/Berlin or Asia/Tokyo
    /// [default: UTC; config: schedule.timezone]
    #[arg(long, value_name = "IANA")]
    pub timezone: Option<String>,

    /// Do not run a missed run at start (by default, after downtime the latest missed
    /// run runs once at start) [config: schedule.run_missed = false]
    #[arg(long)]
    pub no_run_missed: bool,

    /// On SIGTERM/SIGINT during a run, seconds to let it finish before abandoning it
    /// [default: 60; config: schedule.shutdown_grace_seconds]
    #[arg(long, value_name = "SECONDS")]
    pub shutdown_grace: Option<u64>,
}

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

/// Turns the flags into [`ScheduleOptions`]; `state_dir` is where the scheduler keeps
/// `schedule-state.json` (the run's `--state` directory).
pub fn options_from_args(args: &ScheduleArgs, state_dir: &Path) -> anyhow::Result<ScheduleOptions> {
    options_from(args, &crate::config::ScheduleConfig::default(), state_dir)
}

/// [`options_from_args`] with the config file's `[schedule]` table under the flags.
pub fn options_from(
    args: &ScheduleArgs,
    file: &crate::config::ScheduleConfig,
    state_dir: &Path,
) -> anyhow::Result<ScheduleOptions> {
    let tz = match (&args.timezone, &file.timezone) {
        (Some(t), _) => parse_timezone(t).context("--timezone")?,
        (None, Some(t)) => parse_timezone(t).context("schedule.timezone")?,
        (None, None) => Tz::UTC,
    };
    let schedule = match (&args.cron, &file.cron) {
        (Some(c), _) => parse_cron(c, tz).context("--cron")?,
        (None, Some(c)) => parse_cron(c, tz).context("schedule.cron")?,
        (None, None) => anyhow::bail!(
            "no schedule: give --cron EXPR or `cron` in the [schedule] table of the config file"
        ),
    };
    let grace = args
        .shutdown_grace
        .or(file.shutdown_grace_seconds)
        .unwrap_or(DEFAULT_SHUTDOWN_GRACE_SECONDS);
    anyhow::ensure!(
        grace <= MAX_SHUTDOWN_GRACE_SECONDS,
        "{} must be at most {MAX_SHUTDOWN_GRACE_SECONDS} seconds (a day), got {grace}",
        if args.shutdown_grace.is_some() {
            "--shutdown-grace"
        } else {
            "schedule.shutdown_grace_seconds"
        }
    );
    Ok(ScheduleOptions {
        schedule,
        state_dir: state_dir.to_path_buf(),
        run_missed: !args.no_run_missed && file.run_missed.unwrap_or(true),
        shutdown_grace: Duration::from_secs(grace),
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
    use clap::Parser;

    #[derive(Parser)]
    struct TestCli {
        #[command(flatten)]
        args: ScheduleArgs,
    }

    #[test]
    fn args_defaults_and_options() {
        let cli = TestCli::try_parse_from(["x", "--cron", "0 2 * * *"]).unwrap();
        assert_eq!(cli.args.timezone, None);
        assert_eq!(cli.args.shutdown_grace, None);
        assert!(!cli.args.no_run_missed);
        let opts = options_from_args(&cli.args, Path::new("/tmp/state")).unwrap();
        assert!(opts.run_missed);
        assert_eq!(opts.shutdown_grace, Duration::from_secs(60));
        assert_eq!(opts.schedule.timezone(), Tz::UTC);
        assert_eq!(opts.state_dir, Path::new("/tmp/state"));

        let cli = TestCli::try_parse_from([
            "x",
            "--cron",
            "0 6 * * 1",
            "--timezone",
            "Asia/Tokyo",
            "--no-run-missed",
            "--shutdown-grace",
            "5",
        ])
        .unwrap();
        let opts = options_from_args(&cli.args, Path::new("s")).unwrap();
        assert!(!opts.run_missed);
        assert_eq!(opts.shutdown_grace, Duration::from_secs(5));
        assert_eq!(opts.schedule.timezone(), chrono_tz::Asia::Tokyo);

        // Without --cron the config file's [schedule] table must give it.
        let cli = TestCli::try_parse_from(["x"]).unwrap();
        let e = options_from_args(&cli.args, Path::new("s")).unwrap_err();
        assert!(e.to_string().contains("--cron"), "{e}");
        let file = crate::config::ScheduleConfig {
            cron: Some("30 1 * * *".into()),
            timezone: Some("Europe/Berlin".into()),
            run_missed: Some(false),
            shutdown_grace_seconds: Some(9),
        };
        let opts = options_from(&cli.args, &file, Path::new("s")).unwrap();
        assert_eq!(opts.schedule.expression(), "30 1 * * *");
        assert_eq!(opts.schedule.timezone(), chrono_tz::Europe::Berlin);
        assert!(!opts.run_missed);
        assert_eq!(opts.shutdown_grace, Duration::from_secs(9));
        // Flags win over the file.
        let cli =
            TestCli::try_parse_from(["x", "--cron", "0 3 * * *", "--shutdown-grace", "2"]).unwrap();
        let opts = options_from(&cli.args, &file, Path::new("s")).unwrap();
        assert_eq!(opts.schedule.expression(), "0 3 * * *");
        assert_eq!(opts.shutdown_grace, Duration::from_secs(2));
        let bad = crate::config::ScheduleConfig {
            cron: Some("0 25 * * *".into()),
            ..Default::default()
        };
        let e = format!(
            "{:#}",
            options_from(&cli_none(), &bad, Path::new("s")).unwrap_err()
        );
        assert!(e.contains("schedule.cron") && e.contains("hour"), "{e}");
    }

    fn cli_none() -> ScheduleArgs {
        TestCli::try_parse_from(["x"]).unwrap().args
    }

    #[test]
    fn options_errors_name_the_flag() {
        let cli = TestCli::try_parse_from(["x", "--cron", "61 * * * *"]).unwrap();
        let e = format!(
            "{:#}",
            options_from_args(&cli.args, Path::new("s")).unwrap_err()
        );
        assert!(e.contains("--cron") && e.contains("minute"), "{e}");
        let cli = TestCli::try_parse_from(["x", "--cron", "0 2 * * *", "--timezone", "Mars/Base"])
            .unwrap();
        let e = format!(
            "{:#}",
            options_from_args(&cli.args, Path::new("s")).unwrap_err()
        );
        assert!(e.contains("--timezone") && e.contains("Mars/Base"), "{e}");
    }

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
