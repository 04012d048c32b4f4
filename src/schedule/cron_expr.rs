//! Kubernetes CronJob schedule strings, translated for the `cron` crate.
//!
//! Kubernetes parses `spec.schedule` with robfig/cron's standard parser: five fields
//! (minute hour day-of-month month day-of-week), day-of-week 0-6 with 0 = Sunday,
//! three-letter names (`MON`, `JAN`, any case), `*`/`?`, ranges, `N/step` (= `N-max/step`),
//! lists, and the descriptors `@yearly`/`@annually`/`@monthly`/`@weekly`/`@daily`/
//! `@midnight`/`@hourly`. When both day fields are restricted, a day matches if
//! *either* matches (classic cron OR semantics).
//!
//! The `cron` crate wants a seconds field first, counts weekdays 1 = Sunday and ANDs
//! the day fields. So each field is parsed here into its set of values and re-emitted
//! as an explicit list (weekdays as the unambiguous names `SUN`..`SAT`); the OR case
//! becomes two `cron` schedules whose fire times are merged.
//!
//! Deviations from Kubernetes, on purpose: day-of-week `7` is accepted as Sunday (as in
//! Vixie cron; Kubernetes rejects it — [`Schedule::kubernetes_note`] says so), and
//! `@every <duration>` is rejected (it is not a calendar schedule).
//!
//! Daylight-saving time follows robfig/cron: a local time that does not exist (the hour
//! skipped in spring) does not fire that day; a local time that occurs twice (autumn)
//! fires once, at its first occurrence.
use std::collections::BTreeSet;
use std::str::FromStr;

use chrono::{DateTime, SubsecRound, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

/// Why a schedule string was rejected. Messages name the field and the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    #[error("the cron expression is empty: expected 5 fields (minute hour day-of-month month day-of-week)")]
    Empty,
    #[error("expected 5 fields (minute hour day-of-month month day-of-week), found {found} in {expr:?}{hint}")]
    FieldCount {
        found: usize,
        expr: String,
        hint: &'static str,
    },
    #[error("invalid {field} field {value:?}: {reason}")]
    Field {
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error("unknown descriptor {0:?}: expected one of @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly")]
    UnknownDescriptor(String),
    #[error("{0:?} is not supported: use a 5-field expression such as \"0 2 * * *\"")]
    Every(String),
    #[error("TZ= / CRON_TZ= in the expression {0:?} is not supported: give the timezone separately (--timezone / timeZone)")]
    TimezoneInExpression(String),
    #[error("the expression {0:?} never fires (no such date)")]
    NeverFires(String),
    #[error("internal error translating {expr:?} to {translated:?}: {message}")]
    Translate {
        expr: String,
        translated: String,
        message: String,
    },
}

/// A parsed schedule in a timezone. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Schedule {
    expr: String,
    tz: Tz,
    /// One schedule, or two whose union is the schedule (day-of-month OR day-of-week).
    inner: Vec<cron::Schedule>,
    dow_seven: bool,
}

#[derive(Clone, Copy)]
struct FieldSpec {
    name: &'static str,
    min: u32,
    max: u32,
    /// The end of `*` and of `N/step`: `max`, except day-of-week, where 7 is only an
    /// alias for Sunday (so `*/2` and `1/2` stay as robfig reads them).
    star_max: u32,
    names: &'static [(&'static str, u32)],
}

const MINUTE: FieldSpec = FieldSpec {
    name: "minute",
    min: 0,
    max: 59,
    star_max: 59,
    names: &[],
};
const HOUR: FieldSpec = FieldSpec {
    name: "hour",
    min: 0,
    max: 23,
    star_max: 23,
    names: &[],
};
const DAY_OF_MONTH: FieldSpec = FieldSpec {
    name: "day-of-month",
    min: 1,
    max: 31,
    star_max: 31,
    names: &[],
};
const MONTH: FieldSpec = FieldSpec {
    name: "month",
    min: 1,
    max: 12,
    star_max: 12,
    names: &[
        ("jan", 1),
        ("feb", 2),
        ("mar", 3),
        ("apr", 4),
        ("may", 5),
        ("jun", 6),
        ("jul", 7),
        ("aug", 8),
        ("sep", 9),
        ("oct", 10),
        ("nov", 11),
        ("dec", 12),
    ],
};
/// 0-7, 0 and 7 = Sunday; normalised to 0-6 after parsing.
const DAY_OF_WEEK: FieldSpec = FieldSpec {
    name: "day-of-week",
    min: 0,
    max: 7,
    star_max: 6,
    names: &[
        ("sun", 0),
        ("mon", 1),
        ("tue", 2),
        ("wed", 3),
        ("thu", 4),
        ("fri", 5),
        ("sat", 6),
    ],
};
const WEEKDAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// One parsed field: its values, and whether it was written as `*`/`?` (step 1),
/// which robfig uses to decide between AND and OR for the two day fields.
struct Field {
    values: BTreeSet<u32>,
    star: bool,
}

/// Parses a Kubernetes CronJob schedule (5 fields or a descriptor) for `tz`.
pub fn parse_cron(expr: &str, tz: Tz) -> Result<Schedule, CronError> {
    let trimmed = expr.trim();
    if trimmed.is_empty() {
        return Err(CronError::Empty);
    }
    if trimmed.starts_with("TZ=") || trimmed.starts_with("CRON_TZ=") {
        return Err(CronError::TimezoneInExpression(trimmed.to_string()));
    }
    let five = if let Some(desc) = trimmed.strip_prefix('@') {
        match desc {
            "yearly" | "annually" => "0 0 1 1 *",
            "monthly" => "0 0 1 * *",
            "weekly" => "0 0 * * 0",
            "daily" | "midnight" => "0 0 * * *",
            "hourly" => "0 * * * *",
            d if d.starts_with("every") => return Err(CronError::Every(trimmed.to_string())),
            _ => return Err(CronError::UnknownDescriptor(trimmed.to_string())),
        }
    } else {
        trimmed
    };
    let fields: Vec<&str> = five.split_whitespace().collect();
    if fields.len() != 5 {
        let hint = match fields.len() {
            6 => " (a seconds field is not supported: drop the first field)",
            7 => " (seconds and year fields are not supported)",
            _ => "",
        };
        return Err(CronError::FieldCount {
            found: fields.len(),
            expr: trimmed.to_string(),
            hint,
        });
    }
    let minute = parse_field(fields[0], MINUTE)?;
    let hour = parse_field(fields[1], HOUR)?;
    let dom = parse_field(fields[2], DAY_OF_MONTH)?;
    let month = parse_field(fields[3], MONTH)?;
    let mut dow = parse_field(fields[4], DAY_OF_WEEK)?;
    let dow_seven = dow.values.remove(&7);
    if dow_seven {
        dow.values.insert(0);
    }

    let min_s = emit(&minute.values, MINUTE, None);
    let hour_s = emit(&hour.values, HOUR, None);
    let month_s = emit(&month.values, MONTH, None);
    let dom_s = emit(&dom.values, DAY_OF_MONTH, None);
    let dow_spec = FieldSpec {
        max: 6,
        star_max: 6,
        ..DAY_OF_WEEK
    };
    let dow_s = emit(&dow.values, dow_spec, Some(&WEEKDAY_NAMES));
    let line = |d: &str, w: &str| format!("0 {min_s} {hour_s} {d} {month_s} {w}");
    let translated = if dom.star || dow.star {
        vec![line(&dom_s, &dow_s)]
    } else {
        vec![line(&dom_s, "*"), line("*", &dow_s)]
    };
    let mut inner = Vec::with_capacity(translated.len());
    for t in translated {
        let s = cron::Schedule::from_str(&t).map_err(|e| CronError::Translate {
            expr: trimmed.to_string(),
            translated: t.clone(),
            message: e.to_string(),
        })?;
        inner.push(s);
    }
    let schedule = Schedule {
        expr: trimmed.to_string(),
        tz,
        inner,
        dow_seven,
    };
    // `0 0 31 2 *` parses but never fires: say so now rather than sleeping forever.
    let probe = Utc
        .with_ymd_and_hms(2000, 1, 1, 0, 0, 0)
        .single()
        .expect("fixed date");
    if schedule.next_after(probe).is_none() {
        return Err(CronError::NeverFires(trimmed.to_string()));
    }
    Ok(schedule)
}

fn field_err(spec: FieldSpec, value: &str, reason: impl Into<String>) -> CronError {
    CronError::Field {
        field: spec.name,
        value: value.to_string(),
        reason: reason.into(),
    }
}

fn parse_field(text: &str, spec: FieldSpec) -> Result<Field, CronError> {
    let mut values = BTreeSet::new();
    let mut star = false;
    for part in text.split(',') {
        if part.is_empty() {
            return Err(field_err(spec, text, "empty list element"));
        }
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                if s.contains('/') {
                    return Err(field_err(spec, text, "more than one '/'"));
                }
                let step: u32 = s.parse().map_err(|_| {
                    field_err(spec, text, format!("step {s:?} is not a positive number"))
                })?;
                if step == 0 {
                    return Err(field_err(spec, text, "step must be at least 1"));
                }
                (r, Some(step))
            }
            None => (part, None),
        };
        let (start, end) = if range == "*" || range == "?" {
            if step.unwrap_or(1) == 1 {
                star = true;
            }
            (spec.min, spec.star_max)
        } else {
            match range.split_once('-') {
                Some((a, b)) => {
                    if b.contains('-') {
                        return Err(field_err(spec, text, "more than one '-'"));
                    }
                    (value(a, spec, text)?, value(b, spec, text)?)
                }
                // `N/step` means `N-max/step`.
                None if step.is_some() => (value(range, spec, text)?, spec.star_max),
                None => {
                    let v = value(range, spec, text)?;
                    (v, v)
                }
            }
        };
        if start > end {
            return Err(field_err(
                spec,
                text,
                format!("range start {start} is after its end {end}"),
            ));
        }
        values.extend((start..=end).step_by(step.unwrap_or(1) as usize));
    }
    Ok(Field { values, star })
}

fn value(token: &str, spec: FieldSpec, field_text: &str) -> Result<u32, CronError> {
    let lower = token.to_ascii_lowercase();
    if let Some((_, v)) = spec.names.iter().find(|(n, _)| *n == lower) {
        return Ok(*v);
    }
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_digit()) {
        let allowed = if spec.names.is_empty() {
            format!("a number {}-{}", spec.min, spec.max)
        } else {
            let names: Vec<String> = spec.names.iter().map(|(n, _)| n.to_uppercase()).collect();
            format!(
                "a number {}-{} or one of {}",
                spec.min,
                spec.max,
                names.join(",")
            )
        };
        let reason = if token.is_empty() {
            format!("a value is missing (expected {allowed})")
        } else {
            format!("{token:?} is not {allowed}")
        };
        return Err(field_err(spec, field_text, reason));
    }
    match token.parse::<u32>() {
        Ok(v) if (spec.min..=spec.max).contains(&v) => Ok(v),
        _ => Err(field_err(
            spec,
            field_text,
            format!("{token} is out of range {}-{}", spec.min, spec.max),
        )),
    }
}

/// Emits a value set as `*` or a list of values and ranges (`a-b` for runs of 3+).
fn emit(values: &BTreeSet<u32>, spec: FieldSpec, names: Option<&[&str; 7]>) -> String {
    if values.len() as u32 == spec.max - spec.min + 1 {
        return "*".to_string();
    }
    let show = |v: u32| match names {
        Some(n) => n[v as usize].to_string(),
        None => v.to_string(),
    };
    let sorted: Vec<u32> = values.iter().copied().collect();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i;
        while j + 1 < sorted.len() && sorted[j + 1] == sorted[j] + 1 {
            j += 1;
        }
        if j - i >= 2 {
            parts.push(format!("{}-{}", show(sorted[i]), show(sorted[j])));
        } else {
            parts.extend(sorted[i..=j].iter().map(|&v| show(v)));
        }
        i = j + 1;
    }
    parts.join(",")
}

impl Schedule {
    /// The expression as given (trimmed).
    pub fn expression(&self) -> &str {
        &self.expr
    }

    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// The `cron` crate expressions this schedule was translated to (one, or two whose
    /// union it is).
    pub fn translated(&self) -> Vec<&str> {
        self.inner.iter().map(|s| s.source()).collect()
    }

    /// A remark when the expression is accepted here but would be rejected by the
    /// Kubernetes API server (day-of-week 7).
    pub fn kubernetes_note(&self) -> Option<&'static str> {
        self.dow_seven.then_some(
            "Kubernetes CronJob rejects day-of-week 7; write 0 or SUN for Sunday in a CronJob",
        )
    }

    /// The first fire time strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&self.tz);
        self.inner
            .iter()
            .filter_map(|s| {
                // A fresh iterator per call: an autumn time that occurs twice is
                // returned once (its first occurrence), as robfig/cron does.
                s.after(&local)
                    .map(|t| t.with_timezone(&Utc))
                    .find(|t| *t > after)
            })
            .min()
    }

    /// The latest fire time at or before `at`.
    pub fn latest_at_or_before(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // `cron`'s backwards search starts strictly before a whole-second instant.
        let start = (at.trunc_subsecs(0) + TimeDelta::seconds(1)).with_timezone(&self.tz);
        self.inner
            .iter()
            .filter_map(|s| {
                s.after(&start)
                    .rev()
                    .map(|t| t.with_timezone(&Utc))
                    .find(|t| *t <= at)
            })
            .max()
    }

    /// The next `n` fire times strictly after `after`.
    pub fn upcoming(&self, after: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::with_capacity(n);
        let mut cursor = after;
        while out.len() < n {
            match self.next_after(cursor) {
                Some(t) => {
                    out.push(t);
                    cursor = t;
                }
                None => break,
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, Timelike, Weekday};

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    fn berlin() -> Tz {
        chrono_tz::Europe::Berlin
    }

    fn next_n(expr: &str, tz: Tz, from: DateTime<Utc>, n: usize) -> Vec<DateTime<Tz>> {
        parse_cron(expr, tz)
            .unwrap_or_else(|e| panic!("{expr}: {e}"))
            .upcoming(from, n)
            .into_iter()
            .map(|t| t.with_timezone(&tz))
            .collect()
    }

    #[test]
    fn monday_is_one() {
        // 2025-01-01 is a Wednesday.
        let times = next_n("0 6 * * 1", berlin(), utc(2025, 1, 1, 0, 0), 4);
        assert_eq!(times.len(), 4);
        for t in &times {
            assert_eq!(t.weekday(), Weekday::Mon, "{t}");
            assert_eq!((t.hour(), t.minute(), t.second()), (6, 0, 0), "{t}");
        }
        // 06:00 in Berlin in winter is 05:00 UTC.
        assert_eq!(times[0].with_timezone(&Utc), utc(2025, 1, 6, 5, 0));
        assert_eq!(times[1].with_timezone(&Utc), utc(2025, 1, 13, 5, 0));
    }

    #[test]
    fn sunday_is_zero_seven_and_sun() {
        for expr in ["0 6 * * 0", "0 6 * * 7", "0 6 * * SUN", "0 6 * * sun"] {
            let times = next_n(expr, Tz::UTC, utc(2025, 1, 1, 0, 0), 3);
            assert_eq!(
                times[0].with_timezone(&Utc),
                utc(2025, 1, 5, 6, 0),
                "{expr}"
            );
            for t in &times {
                assert_eq!(t.weekday(), Weekday::Sun, "{expr}: {t}");
            }
        }
        assert!(parse_cron("0 6 * * 7", Tz::UTC)
            .unwrap()
            .kubernetes_note()
            .is_some());
        assert!(parse_cron("0 6 * * 0", Tz::UTC)
            .unwrap()
            .kubernetes_note()
            .is_none());
    }

    #[test]
    fn weekday_numbers_map_to_names() {
        let s = parse_cron("0 6 * * 1", Tz::UTC).unwrap();
        assert_eq!(s.translated(), vec!["0 0 6 * * MON"]);
        let s = parse_cron("0 6 * * 5-7", Tz::UTC).unwrap();
        assert_eq!(s.translated(), vec!["0 0 6 * * SUN,FRI,SAT"]);
        // `*` and `N/step` end at Saturday, as in robfig/cron: 7 is only an alias.
        let s = parse_cron("0 6 * * */2", Tz::UTC).unwrap();
        assert_eq!(s.translated(), vec!["0 0 6 * * SUN,TUE,THU,SAT"]);
        let s = parse_cron("0 6 * * 1/2", Tz::UTC).unwrap();
        assert_eq!(s.translated(), vec!["0 0 6 * * MON,WED,FRI"]);
        let s = parse_cron("0 6 * * *", Tz::UTC).unwrap();
        assert_eq!(s.translated(), vec!["0 0 6 * * *"]);
        assert!(s.kubernetes_note().is_none());
    }

    #[test]
    fn every_fifteen_minutes() {
        let times = next_n("*/15 * * * *", Tz::UTC, utc(2025, 3, 1, 10, 7), 5);
        let mins: Vec<(u32, u32)> = times.iter().map(|t| (t.hour(), t.minute())).collect();
        assert_eq!(mins, vec![(10, 15), (10, 30), (10, 45), (11, 0), (11, 15)]);
        // `N/step` is `N-max/step`.
        let times = next_n("5/20 * * * *", Tz::UTC, utc(2025, 3, 1, 10, 7), 3);
        let mins: Vec<u32> = times.iter().map(|t| t.minute()).collect();
        assert_eq!(mins, vec![25, 45, 5]);
    }

    #[test]
    fn weekdays_at_two() {
        // 2025-01-03 is a Friday.
        let times = next_n("0 2 * * MON-FRI", berlin(), utc(2025, 1, 3, 12, 0), 6);
        let days: Vec<Weekday> = times.iter().map(|t| t.weekday()).collect();
        use Weekday::*;
        assert_eq!(days, vec![Mon, Tue, Wed, Thu, Fri, Mon]);
        assert!(times.iter().all(|t| t.hour() == 2 && t.minute() == 0));
        // Same set written as numbers, as a list, lower case.
        for alt in ["0 2 * * 1-5", "0 2 * * 1,2,3,4,5", "0 2 * * mon-fri"] {
            assert_eq!(
                next_n(alt, berlin(), utc(2025, 1, 3, 12, 0), 6),
                times,
                "{alt}"
            );
        }
    }

    #[test]
    fn names_for_months_and_lists() {
        let times = next_n("30 9,17 1 JAN,jul *", Tz::UTC, utc(2025, 2, 1, 0, 0), 3);
        let got: Vec<(u32, u32, u32, u32)> = times
            .iter()
            .map(|t| (t.month(), t.day(), t.hour(), t.minute()))
            .collect();
        assert_eq!(got, vec![(7, 1, 9, 30), (7, 1, 17, 30), (1, 1, 9, 30)]);
    }

    #[test]
    fn restricted_day_of_month_and_week_are_ored() {
        // 1st of the month OR any Monday (robfig/cron, Vixie cron).
        let s = parse_cron("0 0 1 * MON", Tz::UTC).unwrap();
        assert_eq!(s.translated().len(), 2);
        // From Wed 2025-01-01 00:30: Mondays 6, 13, 20, 27 Jan, then Sat 1 Feb.
        let days: Vec<u32> = s
            .upcoming(utc(2025, 1, 1, 0, 30), 5)
            .iter()
            .map(|t| t.day())
            .collect();
        assert_eq!(days, vec![6, 13, 20, 27, 1]);
        // With a star in either day field, they are ANDed (the star matches all).
        let s = parse_cron("0 0 * * MON", Tz::UTC).unwrap();
        assert_eq!(s.translated().len(), 1);
        let s = parse_cron("0 0 */1 * MON", Tz::UTC).unwrap();
        assert_eq!(s.translated().len(), 1);
    }

    #[test]
    fn descriptors() {
        let from = utc(2025, 5, 14, 10, 30);
        let cases = [
            ("@hourly", utc(2025, 5, 14, 11, 0)),
            ("@daily", utc(2025, 5, 15, 0, 0)),
            ("@midnight", utc(2025, 5, 15, 0, 0)),
            ("@weekly", utc(2025, 5, 18, 0, 0)),
            ("@monthly", utc(2025, 6, 1, 0, 0)),
            ("@yearly", utc(2026, 1, 1, 0, 0)),
            ("@annually", utc(2026, 1, 1, 0, 0)),
        ];
        for (expr, want) in cases {
            let s = parse_cron(expr, Tz::UTC).unwrap();
            assert_eq!(s.next_after(from), Some(want), "{expr}");
        }
    }

    #[test]
    fn timezone_shifts_fire_time() {
        let s = parse_cron("0 2 * * *", chrono_tz::Asia::Tokyo).unwrap();
        // 02:00 JST = 17:00 UTC the previous day.
        assert_eq!(
            s.next_after(utc(2025, 6, 1, 0, 0)),
            Some(utc(2025, 6, 1, 17, 0))
        );
    }

    #[test]
    fn dst_in_berlin_does_not_panic_and_behaves() {
        // Spring: 2025-03-30 02:00 -> 03:00 CEST. Autumn: 2025-10-26 03:00 -> 02:00 CET.
        for expr in [
            "30 2 * * *",
            "0 * * * *",
            "*/15 * * * *",
            "0 3 * * *",
            "0 2 * * SUN",
        ] {
            let s = parse_cron(expr, berlin()).unwrap();
            for from in [utc(2025, 3, 29, 0, 0), utc(2025, 10, 25, 0, 0)] {
                let times = s.upcoming(from, 200);
                assert_eq!(times.len(), 200, "{expr}");
                assert!(times.windows(2).all(|w| w[0] < w[1]), "{expr}");
            }
        }
        // 02:30 does not exist on 2025-03-30: no run that day.
        let s = parse_cron("30 2 * * *", berlin()).unwrap();
        let spring: Vec<_> = s.upcoming(utc(2025, 3, 29, 12, 0), 2);
        assert_eq!(
            spring,
            vec![utc(2025, 3, 31, 0, 30), utc(2025, 4, 1, 0, 30)]
        );
        // 02:30 happens twice on 2025-10-26: one run, at the first (CEST) one.
        let autumn: Vec<_> = s.upcoming(utc(2025, 10, 25, 12, 0), 2);
        assert_eq!(
            autumn,
            vec![utc(2025, 10, 26, 0, 30), utc(2025, 10, 27, 1, 30)]
        );
        // 03:00 on the spring day exists (CEST, 01:00 UTC).
        let s = parse_cron("0 3 * * *", berlin()).unwrap();
        assert_eq!(
            s.next_after(utc(2025, 3, 29, 12, 0)),
            Some(utc(2025, 3, 30, 1, 0))
        );
    }

    #[test]
    fn latest_at_or_before_includes_the_instant() {
        let s = parse_cron("0 6 * * *", Tz::UTC).unwrap();
        let six = utc(2025, 1, 2, 6, 0);
        assert_eq!(s.latest_at_or_before(six), Some(six));
        assert_eq!(
            s.latest_at_or_before(six - TimeDelta::seconds(1)),
            Some(utc(2025, 1, 1, 6, 0))
        );
        assert_eq!(
            s.latest_at_or_before(six + TimeDelta::milliseconds(1500)),
            Some(six)
        );
        let or = parse_cron("0 0 1 * MON", Tz::UTC).unwrap();
        // Sat 2025-02-01 is the 1st; Mon 2025-02-03 a Monday.
        assert_eq!(
            or.latest_at_or_before(utc(2025, 2, 2, 12, 0)),
            Some(utc(2025, 2, 1, 0, 0))
        );
        assert_eq!(
            or.latest_at_or_before(utc(2025, 2, 4, 0, 0)),
            Some(utc(2025, 2, 3, 0, 0))
        );
    }

    fn err(expr: &str) -> String {
        match parse_cron(expr, Tz::UTC) {
            Ok(s) => panic!("{expr:?} parsed as {:?}", s.translated()),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn invalid_expressions_name_field_and_value() {
        let e = err("0 0 6 * * 1");
        assert!(e.contains("found 6") && e.contains("seconds"), "{e}");
        let e = err("61 * * * *");
        assert!(
            e.contains("minute") && e.contains("61") && e.contains("0-59"),
            "{e}"
        );
        let e = err("* * * * 8");
        assert!(e.contains("day-of-week") && e.contains('8'), "{e}");
        let e = err("* 24 * * *");
        assert!(e.contains("hour") && e.contains("24"), "{e}");
        let e = err("* * 0 * *");
        assert!(e.contains("day-of-month"), "{e}");
        let e = err("* * * 13 *");
        assert!(e.contains("month") && e.contains("13"), "{e}");
        let e = err("* * * FOO *");
        assert!(
            e.contains("month") && e.contains("FOO") && e.contains("JAN"),
            "{e}"
        );
        let e = err("* * * * MONDAY");
        assert!(e.contains("day-of-week") && e.contains("MONDAY"), "{e}");
        let e = err("*/0 * * * *");
        assert!(e.contains("minute") && e.contains("step"), "{e}");
        let e = err("5-1 * * * *");
        assert!(e.contains("after its end"), "{e}");
        let e = err("1,,2 * * * *");
        assert!(e.contains("empty"), "{e}");
        let e = err("* * * *");
        assert!(e.contains("found 4"), "{e}");
        assert!(err("").contains("empty"));
        assert!(err("   ").contains("empty"));
        assert!(err("-5 * * * *").contains("minute"));
        assert!(err("1-2-3 * * * *").contains("minute"));
        assert!(err("* * L * *").contains("day-of-month"));
        assert!(err("* * * * 1#2").contains("day-of-week"));
        assert!(err("@DAILY").contains("unknown descriptor"));
        assert!(err("@reboot").contains("unknown descriptor"));
        assert!(err("@every 1h").contains("not supported"));
        assert!(err("TZ=UTC 0 2 * * *").contains("timezone"));
        assert!(err("0 0 31 2 *").contains("never fires"));
        assert!(err("0 0 30 FEB *").contains("never fires"));
    }

    #[test]
    fn leap_day_is_not_never() {
        let s = parse_cron("0 0 29 2 *", Tz::UTC).unwrap();
        assert_eq!(
            s.next_after(utc(2025, 1, 1, 0, 0)),
            Some(utc(2028, 2, 29, 0, 0))
        );
    }
}
