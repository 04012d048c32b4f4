//! The run history as a table (`STATE/runs.csv`, one row per run) and the trend the
//! report draws from it. The file is plain CSV with a header, so polars (or a
//! spreadsheet) reads it directly; the tool itself reads it with the `csv` crate and
//! does the bucketing with polars.
use anyhow::Context;
use chrono::{DateTime, Duration, Utc};
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::history::MigrationStatus;
use crate::rules::{ControlPlaneIdentity, Report, Severity};

/// The runs table in the state folder.
pub const RUNS_FILE: &str = "runs.csv";

/// At most this many points in a trend chart; more runs are bucketed by ISO week.
pub const MAX_POINTS: usize = 26;

/// One run, as `runs.csv` stores it. Column order is the file's column order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_at: DateTime<Utc>,
    pub clusters: i64,
    /// Clusters whose control plane still uses a service principal.
    pub on_sp: i64,
    /// Migrated clusters whose kubelet still runs on the old service principal.
    pub pending_clusters: i64,
    /// Node pools not re-imaged since the migration.
    pub pending_pools: i64,
    pub critical: i64,
    pub high: i64,
    pub medium: i64,
    pub low: i64,
    pub info: i64,
    pub suppressed: i64,
    pub gaps: i64,
}

impl RunRecord {
    /// The row this report adds to the table.
    pub fn of(r: &Report) -> RunRecord {
        let s = &r.summary;
        let sev = |v: Severity| s.findings.get(v) as i64;
        RunRecord {
            run_at: r.generated_at,
            clusters: s.clusters as i64,
            on_sp: r
                .clusters
                .iter()
                .filter(|c| c.control_plane_identity == ControlPlaneIdentity::ServicePrincipal)
                .count() as i64,
            pending_clusters: r
                .clusters
                .iter()
                .filter(|c| c.migration_status == MigrationStatus::Pending)
                .count() as i64,
            pending_pools: s.pools_pending_upgrade as i64,
            critical: sev(Severity::Critical),
            high: sev(Severity::High),
            medium: sev(Severity::Medium),
            low: sev(Severity::Low),
            info: sev(Severity::Info),
            suppressed: s.suppressed as i64,
            gaps: (s.gaps + s.skipped_rows) as i64,
        }
    }

    pub fn findings(&self) -> i64 {
        self.critical + self.high + self.medium + self.low + self.info
    }
}

/// Parses `runs.csv`; a malformed row is an error naming the line (history is never
/// reset silently).
pub fn parse_runs(text: &str, origin: &str) -> anyhow::Result<Vec<RunRecord>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut rd = csv::ReaderBuilder::new().from_reader(text.as_bytes());
    let mut out = Vec::new();
    for row in rd.deserialize::<RunRecord>() {
        let row = row.map_err(|e| {
            // Record 0 is the header on line 1; rows hold no line breaks.
            let line = e.position().map(|p| format!(" line {}", p.record() + 1)).unwrap_or_default();
            anyhow::anyhow!(
                "run history {origin}{line} is corrupt: {e} (fix or move the file away; it is never reset silently)"
            )
        })?;
        out.push(row);
    }
    out.sort_by_key(|r| r.run_at);
    Ok(out)
}

/// Reads `DIR/runs.csv`; a missing file is an empty table.
pub fn load_runs(dir: &std::path::Path) -> anyhow::Result<Vec<RunRecord>> {
    let path = dir.join(RUNS_FILE);
    match std::fs::read_to_string(&path) {
        Ok(t) => parse_runs(&t, &path.display().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(vec![]),
        Err(e) => Err(e).with_context(|| format!("reading run history {}", path.display())),
    }
}

/// The table as CSV text (header, one row per run, oldest first, CRLF).
pub fn runs_csv(rows: &[RunRecord]) -> anyhow::Result<String> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    if rows.is_empty() {
        w.write_record(COLUMNS)?;
    }
    for r in rows {
        w.serialize(r)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| anyhow::anyhow!("runs.csv: {e}"))?;
    Ok(String::from_utf8(bytes)?)
}

const COLUMNS: &[&str] = &[
    "run_at",
    "clusters",
    "on_sp",
    "pending_clusters",
    "pending_pools",
    "critical",
    "high",
    "medium",
    "low",
    "info",
    "suppressed",
    "gaps",
];

/// The table after this run: earlier rows within `keep_days` of it, then this run. A
/// row at or after this run's time (a clock set back, a rerun) is replaced.
pub fn append(prev: &[RunRecord], this: RunRecord, keep_days: i64) -> Vec<RunRecord> {
    let oldest = this.run_at - Duration::days(keep_days);
    let mut out: Vec<RunRecord> = prev
        .iter()
        .filter(|r| r.run_at >= oldest && r.run_at < this.run_at)
        .cloned()
        .collect();
    out.sort_by_key(|r| r.run_at);
    out.push(this);
    out
}

/// The trend as drawn: one point per run, or per ISO week (its last run) when there
/// are more than [`MAX_POINTS`] runs; the last `MAX_POINTS` points.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trend {
    /// `run` or `week`.
    pub granularity: &'static str,
    pub points: Vec<RunRecord>,
}

/// The table with a backfilled run inserted in time order: no row is removed but one
/// at exactly the same time (the same backfill run again) and rows older than
/// `keep_days` before the newest.
pub fn insert(prev: &[RunRecord], this: RunRecord, keep_days: i64) -> Vec<RunRecord> {
    let mut out: Vec<RunRecord> = prev
        .iter()
        .filter(|r| r.run_at != this.run_at)
        .cloned()
        .collect();
    out.push(this);
    out.sort_by_key(|r| r.run_at);
    if let Some(newest) = out.last().map(|r| r.run_at) {
        let oldest = newest - Duration::days(keep_days);
        out.retain(|r| r.run_at >= oldest);
    }
    out
}

/// Days from the Unix epoch to the Monday starting a run's ISO week.
fn week_of(t: DateTime<Utc>) -> i64 {
    // 1970-01-05 was a Monday.
    (t.timestamp().div_euclid(86_400) - 4).div_euclid(7)
}

fn frame(rows: &[RunRecord]) -> PolarsResult<DataFrame> {
    let ints = |f: fn(&RunRecord) -> i64| rows.iter().map(f).collect::<Vec<i64>>();
    df!(
        "ts" => ints(|r| r.run_at.timestamp_millis()),
        "week" => ints(|r| week_of(r.run_at)),
        "clusters" => ints(|r| r.clusters),
        "on_sp" => ints(|r| r.on_sp),
        "pending_clusters" => ints(|r| r.pending_clusters),
        "pending_pools" => ints(|r| r.pending_pools),
        "critical" => ints(|r| r.critical),
        "high" => ints(|r| r.high),
        "medium" => ints(|r| r.medium),
        "low" => ints(|r| r.low),
        "info" => ints(|r| r.info),
        "suppressed" => ints(|r| r.suppressed),
        "gaps" => ints(|r| r.gaps),
    )
}

fn records(df: &DataFrame) -> PolarsResult<Vec<RunRecord>> {
    let get = |name: &str| -> PolarsResult<Vec<i64>> {
        Ok(df
            .column(name)?
            .i64()?
            .iter()
            .map(|v| v.unwrap_or(0))
            .collect())
    };
    let ts = get("ts")?;
    let cols: Vec<Vec<i64>> = COLUMNS[1..]
        .iter()
        .map(|c| get(c))
        .collect::<PolarsResult<_>>()?;
    Ok((0..df.height())
        .map(|i| RunRecord {
            run_at: DateTime::from_timestamp_millis(ts[i]).unwrap_or_default(),
            clusters: cols[0][i],
            on_sp: cols[1][i],
            pending_clusters: cols[2][i],
            pending_pools: cols[3][i],
            critical: cols[4][i],
            high: cols[5][i],
            medium: cols[6][i],
            low: cols[7][i],
            info: cols[8][i],
            suppressed: cols[9][i],
            gaps: cols[10][i],
        })
        .collect())
}

/// Buckets the runs (oldest first, this run last) into the drawn trend.
pub fn trend(runs: &[RunRecord]) -> anyhow::Result<Trend> {
    let lf = frame(runs)?.lazy();
    let sorted = SortMultipleOptions::default();
    let (granularity, lf) = if runs.len() <= MAX_POINTS {
        ("run", lf.sort(["ts"], sorted))
    } else {
        // The last run of each week: what the week ended with.
        let last_of_week = COLUMNS[1..]
            .iter()
            .map(|c| {
                col(*c)
                    .sort_by([col("ts")], SortMultipleOptions::default())
                    .last()
            })
            .chain([col("ts").max()])
            .collect::<Vec<_>>();
        let weekly = lf
            .group_by([col("week")])
            .agg(last_of_week)
            .sort(["week"], sorted);
        ("week", weekly)
    };
    let df = lf.tail(MAX_POINTS as IdxSize).collect()?;
    Ok(Trend {
        granularity,
        points: records(&df)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(day: i64, on_sp: i64) -> RunRecord {
        RunRecord {
            run_at: DateTime::parse_from_rfc3339("2026-01-05T06:00:00Z")
                .unwrap()
                .with_timezone(&Utc)
                + Duration::days(day),
            clusters: 10,
            on_sp,
            pending_clusters: 1,
            pending_pools: 2,
            critical: 0,
            high: on_sp,
            medium: 1,
            low: 0,
            info: 0,
            suppressed: 0,
            gaps: 0,
        }
    }

    #[test]
    fn csv_round_trip_and_corrupt_row_names_the_line() {
        let rows = vec![run(0, 5), run(1, 4)];
        let text = runs_csv(&rows).unwrap();
        assert!(text.starts_with("run_at,clusters,on_sp,pending_clusters,pending_pools,critical,high,medium,low,info,suppressed,gaps\r\n"), "{text}");
        assert_eq!(parse_runs(&text, "runs.csv").unwrap(), rows);
        let bad = text.replacen(",5,", ",five,", 1);
        let e = parse_runs(&bad, "runs.csv").unwrap_err().to_string();
        assert!(
            e.contains("runs.csv line 2") && e.contains("corrupt"),
            "{e}"
        );
        assert_eq!(
            parse_runs(&runs_csv(&[]).unwrap(), "runs.csv").unwrap(),
            vec![]
        );
    }

    #[test]
    fn append_is_bounded_and_replaces_reruns() {
        let prev: Vec<RunRecord> = (0..30).map(|d| run(d, 30 - d)).collect();
        let out = append(&prev, run(30, 0), 10);
        assert_eq!(out.len(), 11, "days 20..=30");
        assert_eq!(out.first().unwrap().run_at, run(20, 0).run_at);
        assert_eq!(out.last().unwrap().on_sp, 0);
        // The same run time again (a rerun) replaces, never duplicates.
        let again = append(&out, run(30, 7), 10);
        assert_eq!(again.len(), 11);
        assert_eq!(again.last().unwrap().on_sp, 7);
    }

    #[test]
    fn few_runs_are_drawn_per_run_many_per_week() {
        let few: Vec<RunRecord> = (0..5).map(|d| run(d, 9 - d)).collect();
        let t = trend(&few).unwrap();
        assert_eq!(t.granularity, "run");
        assert_eq!(t.points, few);

        // 200 daily runs: 29 weeks, the last 26 drawn, each the week's last run.
        let many: Vec<RunRecord> = (0..200).map(|d| run(d, 200 - d)).collect();
        let t = trend(&many).unwrap();
        assert_eq!(t.granularity, "week");
        assert_eq!(t.points.len(), MAX_POINTS);
        assert_eq!(t.points.last().unwrap(), many.last().unwrap());
        // 2026-01-05 is a Monday: day 6 is the Sunday ending week 1.
        let first_week_end = &t.points[t.points.len() - 2];
        assert_eq!(first_week_end.run_at.format("%a").to_string(), "Sun");
        assert!(t.points.windows(2).all(|w| w[0].run_at < w[1].run_at));
    }
}
