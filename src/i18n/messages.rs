//! Findings' messages in another language. A finding's `message` is English (it is
//! report.json's and the CSVs' text, and what suppressions and scripts see); the rules
//! write it with `format!`. Here each message shape is a pattern in en.toml's
//! `[finding]` table, its translation under the same key in the other catalogue: the
//! English message is matched against the patterns and the translation filled with
//! what the placeholders matched. The rules stay as they are (no key to thread
//! through 25 call sites other work edits too); a message no pattern matches is shown
//! in English — `tests` and the Japanese demo test fail on any such message the demo
//! produces.
//!
//! A placeholder `{name}` matches one or more characters, copied as they are, with
//! suffixes that change that:
//! - `_o`: may match nothing;
//! - `_p`: must itself be a phrase of the `[phrase]` table (translated the same way);
//! - `_l`: one or more phrases joined by `; ` (joined by the language's separator);
//! - `_d`: a `YYYY-MM-DD` date, written in the language's format.
//!
//! Suffixes combine (`latest_op`: an optional phrase). More specific patterns (more
//! literal text) are tried first, and a placeholder matches as little as it can, so a
//! message with a trailing clause finds the pattern that names the clause.
use std::collections::HashMap;
use std::sync::OnceLock;

use super::Lang;

/// A pattern split into literal text and placeholders.
#[derive(Debug)]
struct Pattern {
    key: String,
    parts: Vec<Part>,
    literal_len: usize,
}

#[derive(Debug)]
enum Part {
    Lit(String),
    Hole {
        name: String,
        optional: bool,
        phrase: bool,
        list: bool,
        date: bool,
    },
}

fn parse(key: &str, text: &str) -> Pattern {
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}').map(|c| open + c) else {
            break;
        };
        let name = &rest[open + 1..close];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            parts.push(Part::Lit(rest[..=open].to_string()));
            rest = &rest[open + 1..];
            continue;
        }
        if open > 0 {
            parts.push(Part::Lit(rest[..open].to_string()));
        }
        let flags = name.rsplit_once('_').map(|(_, f)| f).unwrap_or("");
        let flagged = !flags.is_empty() && flags.chars().all(|c| "opld".contains(c));
        let has = |c| flagged && flags.contains(c);
        parts.push(Part::Hole {
            name: name.to_string(),
            optional: has('o'),
            phrase: has('p'),
            list: has('l'),
            date: has('d'),
        });
        rest = &rest[close + 1..];
    }
    if !rest.is_empty() {
        parts.push(Part::Lit(rest.to_string()));
    }
    // Adjacent literals (from a brace that was not a placeholder) joined.
    let mut joined: Vec<Part> = Vec::new();
    for p in parts {
        match (joined.last_mut(), p) {
            (Some(Part::Lit(a)), Part::Lit(b)) => a.push_str(&b),
            (_, p) => joined.push(p),
        }
    }
    let literal_len = joined
        .iter()
        .map(|p| match p {
            Part::Lit(s) => s.len(),
            Part::Hole { .. } => 0,
        })
        .sum();
    Pattern {
        key: key.to_string(),
        parts: joined,
        literal_len,
    }
}

/// The tables of patterns: findings' messages, their parts, the reasons a check was
/// not evaluated, and where the inventory came from.
const TABLES: [&str; 4] = ["finding", "phrase", "reason", "source"];

/// The English patterns of a table (one of [`TABLES`]), most literal text first.
fn patterns(table: &str) -> &'static [Pattern] {
    static CELLS: [OnceLock<Vec<Pattern>>; 4] = [
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
    ];
    let Some(i) = TABLES.iter().position(|t| *t == table) else {
        return &[];
    };
    CELLS[i].get_or_init(|| {
        let prefix = format!("{table}.");
        let mut v: Vec<Pattern> = Lang::En
            .catalogue()
            .entries()
            .filter_map(|(k, text)| k.strip_prefix(&prefix).map(|_| parse(k, text)))
            .collect();
        v.sort_by(|a, b| b.literal_len.cmp(&a.literal_len).then(a.key.cmp(&b.key)));
        v
    })
}

/// `text` translated by the first pattern of `table` that matches all of it.
fn translate(lang: Lang, table: &str, text: &str) -> Option<String> {
    patterns(table).iter().find_map(|p| {
        let mut caps = HashMap::new();
        if !match_parts(lang, &p.parts, text, &mut caps) {
            return None;
        }
        let target = lang.catalogue().get(&p.key)?;
        Some(super::interpolate(target, |name| caps.get(name).cloned()))
    })
}

/// Whether `parts` match all of `text`; the captures (already translated where the
/// placeholder says so) go to `caps`.
fn match_parts(lang: Lang, parts: &[Part], text: &str, caps: &mut HashMap<String, String>) -> bool {
    let Some((first, rest)) = parts.split_first() else {
        return text.is_empty();
    };
    match first {
        Part::Lit(s) => text
            .strip_prefix(s.as_str())
            .is_some_and(|t| match_parts(lang, rest, t, caps)),
        Part::Hole {
            name,
            optional,
            phrase,
            list,
            date,
        } => {
            let start = if *optional { 0 } else { 1 };
            // The shortest match first. The placeholder ends where what follows can
            // start: at an occurrence of the next literal, at the end of the text when
            // nothing follows, anywhere only before another placeholder.
            let ends: Vec<usize> = match rest.first() {
                None => vec![text.len()],
                Some(Part::Lit(next)) => {
                    text.match_indices(next.as_str()).map(|(i, _)| i).collect()
                }
                Some(Part::Hole { .. }) => (0..=text.len())
                    .filter(|i| text.is_char_boundary(*i))
                    .collect(),
            };
            for end in ends.into_iter().filter(|e| *e >= start) {
                let value = &text[..end];
                let shown = if value.is_empty() {
                    Some(String::new())
                } else if *list {
                    translate_list(lang, value)
                } else if *phrase {
                    translate(lang, "phrase", value)
                } else if *date {
                    chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d")
                        .ok()
                        .map(|d| lang.date(d))
                } else {
                    Some(value.to_string())
                };
                let Some(shown) = shown else { continue };
                let mut inner = caps.clone();
                inner.insert(name.clone(), shown);
                if match_parts(lang, rest, &text[end..], &mut inner) {
                    *caps = inner;
                    return true;
                }
            }
            false
        }
    }
}

/// Phrases joined by `; `, each translated: the first split whose parts are all
/// phrases (a phrase may hold `; ` itself), else the whole text as one phrase.
fn translate_list(lang: Lang, text: &str) -> Option<String> {
    let sep = "; ";
    text.match_indices(sep)
        .find_map(|(i, _)| {
            let head = translate(lang, "phrase", &text[..i])?;
            let tail = translate_list(lang, &text[i + sep.len()..])?;
            Some(format!("{head}{}{tail}", lang.t("misc.phrase_separator")))
        })
        .or_else(|| translate(lang, "phrase", text))
}

impl Lang {
    /// A finding's English `message` in this language: `None` when no pattern of
    /// `[finding]` matches it (shown in English then). English is the message itself.
    pub fn finding_message(self, message: &str) -> Option<String> {
        if self == Lang::En {
            return Some(message.to_string());
        }
        translate(self, "finding", message)
    }

    /// Why a family of checks was not evaluated (`not_evaluated: <why>` in
    /// report.json and clusters.csv, or just the reason) in this language; the English
    /// reason when no pattern of `[reason]` matches it.
    pub fn not_evaluated_reason(self, status: &str) -> String {
        let why = status.strip_prefix("not_evaluated: ").unwrap_or(status);
        if self == Lang::En {
            return why.to_string();
        }
        translate(self, "reason", why).unwrap_or_else(|| why.to_string())
    }

    /// Where the inventory came from (report.json's `source`) in this language; as it
    /// is when no pattern of `[source]` matches it.
    pub fn source_text(self, source: &str) -> String {
        if self == Lang::En {
            return source.to_string();
        }
        translate(self, "source", source).unwrap_or_else(|| source.to_string())
    }

    /// [`Lang::finding_message`], or the English message when no pattern matches.
    pub fn finding_message_or_english(self, message: &str) -> String {
        self.finding_message(message)
            .unwrap_or_else(|| message.to_string())
    }
}
