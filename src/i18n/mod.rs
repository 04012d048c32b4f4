//! The languages of what people read: the HTML report, the owner and admin mail and
//! the rule catalogue's text (`--lang en|ja`, key `lang`). Machine-read outputs
//! (report.json, the CSV column keys, rule ids, `az` commands, log lines) stay English
//! whatever the language: they are an API.
//!
//! Each language is a message catalogue (`catalogues/<lang>.toml`, embedded), looked
//! up by dotted key (`summary.title`, `severity.high`). The rule catalogue's English
//! text lives in [`crate::rules::catalogue`] (it is also the `rules` command's and
//! report.json's); other languages hold it as `rule.<ID>.title` and
//! `rule.<ID>.rationale`. The templates reach the catalogue through the Tera function
//! and filters that [`register`] adds:
//!
//! - `t(key="...", n=3, name="x")`: the message, with `{n}` and `{name}` replaced by
//!   the arguments; with `n`, the key's `one` form when `n` is 1 and the language has
//!   one, else its `other` form (plural handling is just that: Japanese has none).
//! - `value | t(ns="severity")`: the message `severity.<value>` (enumerated values:
//!   severities, identity modes, check families); a value with no message is shown as
//!   it is (an add-on key, a status the catalogue does not know).
//! - `message | msg`: a finding's English message in the language ([`messages`]).
//! - `status | reason`: why a check was not evaluated, in the language; `text |
//!   source`: where the inventory came from.
//! - `text | date`: a `YYYY-MM-DD` date or `YYYY-MM-DD HH:MM UTC` time in the
//!   language's format; anything else unchanged.
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::rules::catalogue::{RuleId, CATALOGUE};

mod messages;
#[cfg(test)]
mod tests;

/// A language of the report and mail.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    En,
    Ja,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Ja];

    /// The code users give (`--lang ja`) and the page's `<html lang>`.
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ja => "ja",
        }
    }

    fn source(self) -> &'static str {
        match self {
            Lang::En => include_str!("catalogues/en.toml"),
            Lang::Ja => include_str!("catalogues/ja.toml"),
        }
    }

    /// The language's messages, parsed once.
    pub fn catalogue(self) -> &'static Catalogue {
        static CATALOGUES: [OnceLock<Catalogue>; 2] = [OnceLock::new(), OnceLock::new()];
        CATALOGUES[self as usize].get_or_init(|| {
            // The embedded files are tested to parse (i18n::tests): a broken one is a
            // build that fails its tests, never a run that panics in the field.
            Catalogue::parse(self, self.source()).unwrap_or_else(|e| {
                tracing::error!(lang = self.as_str(), error = %e, "message catalogue does not parse; English is used");
                Catalogue::default()
            })
        })
    }

    /// The message `key` of this language, if it has one.
    pub fn lookup(self, key: &str) -> Option<&'static str> {
        self.catalogue().get(key).or_else(|| rule_text(self, key))
    }

    /// The message `key`; a key the language lacks falls back to English, then to the
    /// key itself (both are test failures: every key is in every catalogue).
    pub fn t(self, key: &str) -> Cow<'static, str> {
        if let Some(m) = self.lookup(key) {
            return Cow::Borrowed(m);
        }
        if self != Lang::En {
            return Lang::En.t(key);
        }
        Cow::Owned(key.to_string())
    }

    /// The message `key` with each `{name}` replaced by its argument.
    pub fn tf(self, key: &str, args: &[(&str, &dyn fmt::Display)]) -> String {
        interpolate(&self.t(key), |name| {
            args.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        })
    }

    /// The message `key` for a count `n` (`{n}` in it): `key.one` when `n` is 1 and the
    /// language has it, else `key.other`.
    pub fn plural(self, key: &str, n: usize, args: &[(&str, &dyn fmt::Display)]) -> String {
        let form = self.plural_key(key, n as f64);
        let mut all: Vec<(&str, &dyn fmt::Display)> = vec![("n", &n)];
        all.extend_from_slice(args);
        self.tf(&form, &all)
    }

    /// `key` itself when the language has it (a message that only shows `{n}`), else
    /// its count form.
    fn plural_key(self, key: &str, n: f64) -> String {
        if self.lookup(key).is_some() {
            return key.to_string();
        }
        let one = format!("{key}.one");
        if n == 1.0 && self.lookup(&one).is_some() {
            one
        } else {
            format!("{key}.other")
        }
    }

    /// A rule's title in this language.
    pub fn rule_title(self, id: RuleId) -> Cow<'static, str> {
        self.t(&format!("rule.{id}.title"))
    }

    /// A rule's rationale in this language.
    pub fn rule_rationale(self, id: RuleId) -> Cow<'static, str> {
        self.t(&format!("rule.{id}.rationale"))
    }

    /// A day in the language's format: `2026-12-04`; `2026 年 12 月 4 日` in Japanese,
    /// as Microsoft Learn's Japanese pages write dates (half-width spaces between
    /// digits and kanji, no zero padding).
    pub fn date(self, d: NaiveDate) -> String {
        match self {
            Lang::En => d.format("%Y-%m-%d").to_string(),
            Lang::Ja => format!("{} 年 {} 月 {} 日", d.year(), d.month(), d.day()),
        }
    }

    /// A day on a chart's axis: `Dec 04`; `12/4` in Japanese.
    pub fn short_date(self, d: NaiveDate) -> String {
        match self {
            Lang::En => d.format("%b %d").to_string(),
            Lang::Ja => format!("{}/{}", d.month(), d.day()),
        }
    }

    /// A `YYYY-MM-DD` date or `YYYY-MM-DD HH:MM UTC` time (as the report writes them)
    /// in the language's format; any other text unchanged.
    pub fn localize_date_text(self, s: &str) -> String {
        if self == Lang::En {
            return s.to_string();
        }
        let Some(day) = s
            .get(..10)
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        else {
            return s.to_string();
        };
        let rest = &s[10..];
        let time_ok = rest.is_empty()
            || (rest.starts_with(' ')
                && rest[1..]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == ':' || c == ' '));
        if !time_ok {
            return s.to_string();
        }
        format!("{}{rest}", self.date(day))
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Lang {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Lang::ALL
            .into_iter()
            .find(|l| l.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("unknown language `{s}` (expected en or ja)"))
    }
}

/// The catalogue as text for `aks-identity-audit rules --lang LANG` (English:
/// [`crate::rules::catalogue::render_text`], byte for byte).
pub fn render_rules(lang: Lang) -> String {
    if lang == Lang::En {
        return crate::rules::catalogue::render_text();
    }
    let mut out = String::new();
    for r in CATALOGUE {
        out.push_str(&format!(
            "{}  {:<8}  {}\n    {}\n    {}: {}\n\n",
            r.id,
            lang.t(&format!("severity.{}", r.severity)),
            lang.rule_title(r.id),
            lang.rule_rationale(r.id),
            lang.t("report.col_source"),
            r.source
        ));
    }
    out
}

/// The English rule text comes from the rule catalogue itself.
fn rule_text(lang: Lang, key: &str) -> Option<&'static str> {
    if lang != Lang::En {
        return None;
    }
    let rest = key.strip_prefix("rule.")?;
    let (id, field) = rest.split_once('.')?;
    let info = CATALOGUE.iter().find(|r| r.id.as_str() == id)?;
    match field {
        "title" => Some(info.title),
        "rationale" => Some(info.rationale),
        _ => None,
    }
}

/// Replaces each `{name}` in `text` by `arg(name)`; an unknown `{name}` stays as it is.
fn interpolate(text: &str, arg: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close)
                if after[..close]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && close > 0 =>
            {
                let name = &after[..close];
                match arg(name) {
                    Some(v) => out.push_str(&v),
                    None => {
                        out.push('{');
                        out.push_str(name);
                        out.push('}');
                    }
                }
                rest = &after[close + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// One language's messages by dotted key.
#[derive(Debug, Default)]
pub struct Catalogue {
    messages: HashMap<String, String>,
}

impl Catalogue {
    /// Every table of the TOML file flattened to dotted keys; every value must be a
    /// string.
    fn parse(lang: Lang, text: &str) -> Result<Catalogue, String> {
        let table: toml::Table =
            toml::from_str(text).map_err(|e| format!("catalogues/{lang}.toml: {e}"))?;
        let mut messages = HashMap::new();
        flatten("", &table, &mut messages)
            .map_err(|key| format!("catalogues/{lang}.toml: `{key}` is not a string"))?;
        Ok(Catalogue { messages })
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.messages.get(key).map(String::as_str)
    }

    /// Every key, sorted.
    pub fn keys(&self) -> Vec<&str> {
        let mut k: Vec<&str> = self.messages.keys().map(String::as_str).collect();
        k.sort_unstable();
        k
    }

    /// Every (key, message).
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.messages.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

fn flatten(
    prefix: &str,
    table: &toml::Table,
    out: &mut HashMap<String, String>,
) -> Result<(), String> {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::String(s) => {
                out.insert(key, s.clone());
            }
            toml::Value::Table(t) => flatten(&key, t, out)?,
            _ => return Err(key),
        }
    }
    Ok(())
}

/// A Tera value as the text a message shows: strings as they are, whole numbers
/// without a fraction.
fn value_text(v: &tera::Value) -> String {
    match v {
        tera::Value::String(s) => s.clone(),
        tera::Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
            _ => n.to_string(),
        },
        tera::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Adds the `t` function and the `t` and `date` filters for `lang` to `tera`.
pub fn register(tera: &mut tera::Tera, lang: Lang) {
    tera.register_function(
        "t",
        move |args: &HashMap<String, tera::Value>| -> tera::Result<tera::Value> {
            let key = args
                .get("key")
                .and_then(|v| v.as_str())
                .ok_or_else(|| tera::Error::msg("t() needs key=\"...\""))?;
            let key = match args.get("n").and_then(|v| v.as_f64()) {
                Some(n) => lang.plural_key(key, n),
                None => key.to_string(),
            };
            let text = lang.t(&key);
            Ok(tera::Value::String(interpolate(&text, |name| {
                args.get(name).map(value_text)
            })))
        },
    );
    tera.register_filter(
        "t",
        move |v: &tera::Value, args: &HashMap<String, tera::Value>| -> tera::Result<tera::Value> {
            let ns = args
                .get("ns")
                .and_then(|v| v.as_str())
                .ok_or_else(|| tera::Error::msg("the t filter needs ns=\"...\""))?;
            let value = value_text(v);
            let mut key = format!("{ns}.{value}");
            if let Some(s) = args.get("suffix").and_then(|v| v.as_str()) {
                key = format!("{key}.{s}");
            }
            if let Some(n) = args.get("n").and_then(|v| v.as_f64()) {
                key = lang.plural_key(&key, n);
            }
            Ok(tera::Value::String(match lang.lookup(&key) {
                Some(text) => interpolate(text, |name| args.get(name).map(value_text)),
                None => value,
            }))
        },
    );
    tera.register_filter(
        "reason",
        move |v: &tera::Value, _: &HashMap<String, tera::Value>| -> tera::Result<tera::Value> {
            Ok(tera::Value::String(
                lang.not_evaluated_reason(&value_text(v)),
            ))
        },
    );
    tera.register_filter(
        "source",
        move |v: &tera::Value, _: &HashMap<String, tera::Value>| -> tera::Result<tera::Value> {
            Ok(tera::Value::String(lang.source_text(&value_text(v))))
        },
    );
    tera.register_filter(
        "msg",
        move |v: &tera::Value, _: &HashMap<String, tera::Value>| -> tera::Result<tera::Value> {
            Ok(tera::Value::String(
                lang.finding_message_or_english(&value_text(v)),
            ))
        },
    );
    tera.register_filter(
        "short_date",
        move |v: &tera::Value, _: &HashMap<String, tera::Value>| -> tera::Result<tera::Value> {
            let text = value_text(v);
            Ok(tera::Value::String(
                match NaiveDate::parse_from_str(&text, "%Y-%m-%d") {
                    Ok(d) => lang.short_date(d),
                    Err(_) => text,
                },
            ))
        },
    );
    tera.register_filter(
        "date",
        move |v: &tera::Value, _: &HashMap<String, tera::Value>| -> tera::Result<tera::Value> {
            Ok(tera::Value::String(lang.localize_date_text(&value_text(v))))
        },
    );
}
