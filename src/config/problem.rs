//! Typed configuration problems: which setting (a dotted key of the file or a flag),
//! why it is wrong, and on which line of the file.
use std::fmt;
use std::path::PathBuf;

/// One problem of a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// A dotted key of the file (`mail.smtp`), a flag (`--smtp`), or `(syntax)` /
    /// `(file)` for a file that does not parse or cannot be read.
    pub key: String,
    pub reason: String,
    /// The line of the file the key is on (1-based), when it is in the file.
    pub line: Option<usize>,
}

impl Problem {
    pub fn new(key: impl Into<String>, reason: impl fmt::Display) -> Problem {
        Problem {
            key: key.into(),
            reason: reason.to_string(),
            line: None,
        }
    }

    /// A flag's problem (`--smtp-timeout`), not the file's.
    pub fn is_flag(&self) -> bool {
        self.key.starts_with("--")
    }
}

/// Every problem of a configuration, file and flags. Rendered one per line: a flag's
/// as `--flag: reason`, the file's as `FILE: key: reason (line N)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems {
    /// The configuration file, when there is one.
    pub file: Option<PathBuf>,
    /// The flags' problems first, then the file's in line order.
    pub list: Vec<Problem>,
}

impl Problems {
    pub fn new(file: Option<PathBuf>, mut list: Vec<Problem>) -> Problems {
        // One problem per setting: a value that is wrong is not also reported missing.
        let mut seen = std::collections::BTreeSet::new();
        list.retain(|p| p.key.starts_with('(') || seen.insert(p.key.clone()));
        list.sort_by_key(|p| (!p.is_flag(), p.line.unwrap_or(usize::MAX)));
        Problems { file, list }
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The problems as `check-config` prints them, each line ending in a newline.
    pub fn render(&self) -> String {
        self.list
            .iter()
            .map(|p| format!("{}\n", self.line(p)))
            .collect()
    }

    fn line(&self, p: &Problem) -> String {
        let at = p.line.map(|n| format!(" (line {n})")).unwrap_or_default();
        match &self.file {
            Some(f) if !p.is_flag() => {
                format!("{}: {}: {}{at}", f.display(), p.key, p.reason)
            }
            _ => format!("{}: {}{at}", p.key, p.reason),
        }
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.render().trim_end())
    }
}

impl std::error::Error for Problems {}

/// A setting's two names: its flag and its key in the file (dotted). A setting that
/// only the file has (`azure.concurrency`) has no flag; one only a flag has (`--now`)
/// has no key: those are `""`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Names {
    pub flag: &'static str,
    pub key: &'static str,
}

/// A setting after its flag and its key were checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pick<T> {
    /// Neither the flag nor the file gives it.
    Absent,
    /// The value that would apply is wrong (a problem says why).
    Invalid,
    /// The value, and the name (flag or key) it came from.
    Set(T, &'static str),
}

impl<T> Pick<T> {
    pub fn value(self) -> Option<T> {
        match self {
            Pick::Set(v, _) => Some(v),
            _ => None,
        }
    }

    pub fn or(self, default: T) -> T {
        self.value().unwrap_or(default)
    }

    pub fn is_absent(&self) -> bool {
        matches!(self, Pick::Absent)
    }
}

/// Checks the flag's value and the file's (both when both are given: a wrong value in
/// the file is a problem even under a flag, as `check-config` says), each problem
/// naming where the value came from; the flag's value wins.
pub fn pick<T, U>(
    out: &mut Vec<Problem>,
    names: Names,
    flag: Option<T>,
    file: Option<T>,
    check: impl Fn(T) -> Result<U, String>,
) -> Pick<U> {
    let mut checked = |name: &'static str, v: Option<T>| {
        v.map(|v| check(v).map_err(|why| out.push(Problem::new(name, why))))
    };
    let file = checked(names.key, file);
    let flag = checked(names.flag, flag);
    match (flag, file) {
        (Some(Ok(v)), _) => Pick::Set(v, names.flag),
        (None, Some(Ok(v))) => Pick::Set(v, names.key),
        (None, None) => Pick::Absent,
        _ => Pick::Invalid,
    }
}

/// `check` for a number within `range`: `must be 1 to 20, got 0` (`unit` after the
/// upper bound, e.g. ` seconds`).
pub fn in_range<T: PartialOrd + fmt::Display + Copy>(
    range: std::ops::RangeInclusive<T>,
    unit: &'static str,
) -> impl Fn(T) -> Result<T, String> {
    move |v| {
        if range.contains(&v) {
            Ok(v)
        } else {
            Err(format!(
                "must be {} to {}{unit}, got {v}",
                range.start(),
                range.end()
            ))
        }
    }
}

/// A repeatable flag as an optional value: no occurrence is no value.
pub fn repeated<T: Clone>(v: &[T]) -> Option<Vec<T>> {
    (!v.is_empty()).then(|| v.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    const N: Names = Names {
        flag: "--retries",
        key: "mail.retries",
    };

    #[test]
    fn the_flag_wins_and_each_bad_value_names_its_origin() {
        let mut out = vec![];
        assert_eq!(
            pick(&mut out, N, Some(2), Some(3), in_range(0..=10, "")),
            Pick::Set(2, "--retries")
        );
        assert_eq!(
            pick(&mut out, N, None, Some(3), in_range(0..=10, "")),
            Pick::Set(3, "mail.retries")
        );
        assert_eq!(
            pick(&mut out, N, None::<u32>, None, in_range(0..=10, "")),
            Pick::Absent
        );
        assert!(out.is_empty());
        // A bad file value is a problem under a good flag too.
        assert_eq!(
            pick(&mut out, N, Some(2), Some(11), in_range(0..=10, "")),
            Pick::Set(2, "--retries")
        );
        assert_eq!(
            pick(&mut out, N, Some(12), None, in_range(0..=10, "")),
            Pick::Invalid
        );
        let keys: Vec<_> = out
            .iter()
            .map(|p| (p.key.as_str(), p.reason.as_str()))
            .collect();
        assert_eq!(
            keys,
            [
                ("mail.retries", "must be 0 to 10, got 11"),
                ("--retries", "must be 0 to 10, got 12")
            ]
        );
    }

    #[test]
    fn rendering_names_the_file_for_its_keys_only() {
        let mut a = Problem::new("schedule.cron", "bad");
        a.line = Some(4);
        let p = Problems::new(
            Some("/etc/a.toml".into()),
            vec![
                a,
                Problem::new("history_days", "must be 1 to 36500 days, got 0"),
                Problem::new("--smtp-timeout", "must be 1 to 3600 seconds, got 0"),
                Problem::new("schedule.cron", "is missing"),
            ],
        );
        assert_eq!(
            p.render(),
            "--smtp-timeout: must be 1 to 3600 seconds, got 0\n\
             /etc/a.toml: schedule.cron: bad (line 4)\n\
             /etc/a.toml: history_days: must be 1 to 36500 days, got 0\n"
        );
        assert_eq!(p.to_string(), p.render().trim_end());
    }
}
