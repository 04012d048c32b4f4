//! The `schedule` command's timing: flags `--cron`, `--timezone`, `--no-run-missed`,
//! `--shutdown-grace` and the `[schedule]` table (`cron`, `timezone`, `run_missed`,
//! `shutdown_grace_seconds`). A run validates the table too: a file that `schedule`
//! would refuse is refused by every command.
use std::path::Path;
use std::time::Duration;

use chrono_tz::Tz;
use serde::Deserialize;

use super::problem::{pick, Names, Pick, Problem};
use crate::schedule::{
    parse_cron, parse_timezone, Schedule, ScheduleOptions, DEFAULT_SHUTDOWN_GRACE_SECONDS,
    MAX_SHUTDOWN_GRACE_SECONDS,
};

/// Flags of the `schedule` subcommand (flattened next to the run flags).
#[derive(Debug, Clone, Default, clap::Args)]
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

/// The `[schedule]` table: what `schedule` runs by when its flags are absent.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleFile {
    /// Kubernetes CronJob schedule, 5 fields (as `--cron`).
    pub cron: Option<String>,
    /// IANA timezone [default: UTC].
    pub timezone: Option<String>,
    /// Run the latest missed run at start [default: true].
    pub run_missed: Option<bool>,
    /// Seconds a run may finish after SIGTERM [default: 60].
    pub shutdown_grace_seconds: Option<u64>,
}

const CRON: Names = Names {
    flag: "--cron",
    key: "schedule.cron",
};
const TIMEZONE: Names = Names {
    flag: "--timezone",
    key: "schedule.timezone",
};
const SHUTDOWN_GRACE: Names = Names {
    flag: "--shutdown-grace",
    key: "schedule.shutdown_grace_seconds",
};

/// The resolved section; `schedule` is `None` when neither flag nor file gives one
/// (fine for every command but `schedule`).
#[derive(Debug, Clone)]
pub struct ValidSchedule {
    pub schedule: Option<Schedule>,
    pub run_missed: bool,
    pub shutdown_grace: Duration,
}

impl ValidSchedule {
    /// What `schedule` runs by; `state_dir` is where it keeps `schedule-state.json`.
    pub fn options(self, state_dir: &Path, out: &mut Vec<Problem>) -> Option<ScheduleOptions> {
        let Some(schedule) = self.schedule else {
            out.push(Problem::new(
                CRON.flag,
                "no schedule: give --cron EXPR or `cron` in the [schedule] table of the config file",
            ));
            return None;
        };
        Some(ScheduleOptions {
            schedule,
            state_dir: state_dir.to_path_buf(),
            run_missed: self.run_missed,
            shutdown_grace: self.shutdown_grace,
        })
    }
}

/// Flags over the file over defaults; every value given is checked, each problem
/// naming the flag or key it came from. `None` when there is a problem.
pub fn resolve(
    args: &ScheduleArgs,
    file: &ScheduleFile,
    out: &mut Vec<Problem>,
) -> Option<ValidSchedule> {
    let before = out.len();
    let tz = pick(
        out,
        TIMEZONE,
        args.timezone.as_deref(),
        file.timezone.as_deref(),
        |t| parse_timezone(t).map_err(|e| e.to_string()),
    );
    // A cron is checked in UTC when the timezone is wrong: both are reported.
    let in_tz = match tz {
        Pick::Set(tz, _) => tz,
        _ => Tz::UTC,
    };
    let schedule = pick(out, CRON, args.cron.as_deref(), file.cron.as_deref(), |c| {
        parse_cron(c, in_tz).map_err(|e| e.to_string())
    });
    if schedule.is_absent() && (file.timezone.is_some() || file.run_missed.is_some()) {
        out.push(Problem::new(
            CRON.key,
            "is missing: the [schedule] table sets other keys but no schedule",
        ));
    }
    let grace = pick(
        out,
        SHUTDOWN_GRACE,
        args.shutdown_grace,
        file.shutdown_grace_seconds,
        |g| {
            if g <= MAX_SHUTDOWN_GRACE_SECONDS {
                Ok(g)
            } else {
                Err(format!(
                    "must be at most {MAX_SHUTDOWN_GRACE_SECONDS} seconds (a day), got {g}"
                ))
            }
        },
    );
    if out.len() > before {
        return None;
    }
    Some(ValidSchedule {
        schedule: schedule.value(),
        run_missed: !args.no_run_missed && file.run_missed.unwrap_or(true),
        shutdown_grace: Duration::from_secs(grace.or(DEFAULT_SHUTDOWN_GRACE_SECONDS)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct TestCli {
        #[command(flatten)]
        args: ScheduleArgs,
    }

    fn args(flags: &[&str]) -> ScheduleArgs {
        let mut v = vec!["x"];
        v.extend_from_slice(flags);
        TestCli::try_parse_from(v).unwrap().args
    }

    fn file(text: &str) -> ScheduleFile {
        toml::from_str(text).unwrap()
    }

    fn options(a: &ScheduleArgs, text: &str) -> Result<ScheduleOptions, Vec<Problem>> {
        let mut out = vec![];
        resolve(a, &file(text), &mut out)
            .and_then(|v| v.options(Path::new("s"), &mut out))
            .ok_or(out)
    }

    fn problems(a: &ScheduleArgs, text: &str) -> Vec<(String, String)> {
        options(a, text)
            .unwrap_err()
            .into_iter()
            .map(|p| (p.key, p.reason))
            .collect()
    }

    #[test]
    fn args_defaults_and_options() {
        let a = args(&["--cron", "0 2 * * *"]);
        assert_eq!((a.timezone.as_deref(), a.shutdown_grace), (None, None));
        assert!(!a.no_run_missed);
        let o = options(&a, "").unwrap();
        assert!(o.run_missed);
        assert_eq!(o.shutdown_grace, Duration::from_secs(60));
        assert_eq!(o.schedule.timezone(), Tz::UTC);
        assert_eq!(o.state_dir, Path::new("s"));
        let a = args(&[
            "--cron",
            "0 6 * * 1",
            "--timezone",
            "Asia/Tokyo",
            "--no-run-missed",
            "--shutdown-grace",
            "5",
        ]);
        let o = options(&a, "").unwrap();
        assert!(!o.run_missed);
        assert_eq!(o.shutdown_grace, Duration::from_secs(5));
        assert_eq!(o.schedule.timezone(), chrono_tz::Asia::Tokyo);
    }

    #[test]
    fn file_under_flags() {
        let text = "cron = \"30 1 * * *\"\ntimezone = \"Europe/Berlin\"\nrun_missed = false\nshutdown_grace_seconds = 9\n";
        let o = options(&args(&[]), text).unwrap();
        assert_eq!(o.schedule.expression(), "30 1 * * *");
        assert_eq!(o.schedule.timezone(), chrono_tz::Europe::Berlin);
        assert!(!o.run_missed);
        assert_eq!(o.shutdown_grace, Duration::from_secs(9));
        let o = options(
            &args(&["--cron", "0 3 * * *", "--shutdown-grace", "2"]),
            text,
        )
        .unwrap();
        assert_eq!(o.schedule.expression(), "0 3 * * *");
        assert_eq!(o.schedule.timezone(), chrono_tz::Europe::Berlin);
        assert_eq!(o.shutdown_grace, Duration::from_secs(2));
    }

    #[test]
    fn problems_name_the_flag_or_key() {
        // Without --cron the config file's [schedule] table must give it.
        let p = problems(&args(&[]), "");
        assert_eq!(p[0].0, "--cron");
        let p = problems(&args(&[]), "cron = \"0 25 * * *\"\n");
        assert!(
            p[0].0 == "schedule.cron" && p[0].1.contains("hour"),
            "{p:?}"
        );
        let p = problems(&args(&["--cron", "61 * * * *"]), "");
        assert!(p[0].0 == "--cron" && p[0].1.contains("minute"), "{p:?}");
        let p = problems(
            &args(&["--cron", "0 2 * * *", "--timezone", "Mars/Base"]),
            "",
        );
        assert!(
            p[0].0 == "--timezone" && p[0].1.contains("Mars/Base"),
            "{p:?}"
        );
        // Both a bad timezone and a bad cron.
        let p = problems(
            &args(&[]),
            "cron = \"every night\"\ntimezone = \"Mars/Base\"\n",
        );
        let keys: Vec<&str> = p.iter().map(|p| p.0.as_str()).collect();
        assert_eq!(keys, ["schedule.timezone", "schedule.cron"]);
        let p = problems(&args(&[]), "timezone = \"UTC\"\n");
        assert!(
            p[0].0 == "schedule.cron" && p[0].1.contains("missing"),
            "{p:?}"
        );
        let p = problems(
            &args(&["--cron", "0 2 * * *", "--shutdown-grace", "86401"]),
            "",
        );
        assert_eq!(p[0].0, "--shutdown-grace");
        assert!(p[0].1.starts_with("must be at most 86400"), "{p:?}");
        // A table with a cron but no other key is fine without a schedule of its own:
        // the grace alone needs no cron.
        let mut out = vec![];
        let v = resolve(&args(&[]), &file("shutdown_grace_seconds = 5\n"), &mut out).unwrap();
        assert!(v.schedule.is_none() && out.is_empty());
    }
}
