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
mod tests;
