//! Reading the file as a whole: the TOML is parsed with recovery (every syntax error,
//! not the first), then each section's table is read key by key, so every unknown key
//! and every value of the wrong type is a problem of its own, with its line, and the
//! keys that are right are kept.
use std::collections::BTreeMap;
use std::ops::Range;

use serde::de::{Deserialize, Visitor};
use toml::de::{DeString, DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

use super::problem::Problem;

/// The line of every key of the file (dotted: `mail.smtp`, `owners.subscriptions.x`).
#[derive(Debug, Clone, Default)]
pub struct Lines(BTreeMap<String, usize>);

impl Lines {
    /// The line of `key`, else of the nearest table above it that is in the file (a
    /// missing `mail.from` points at `[mail]`).
    pub fn of(&self, key: &str) -> Option<usize> {
        let mut k = key;
        loop {
            if let Some(n) = self.0.get(k) {
                return Some(*n);
            }
            k = &k[..k.rfind('.')?];
        }
    }

    fn record(&mut self, text: &str, prefix: &str, table: &DeTable<'_>) {
        for (k, v) in table {
            let key = dotted(prefix, k.get_ref());
            self.0.insert(key.clone(), line_at(text, k.span().start));
            if let DeValue::Table(t) = v.get_ref() {
                self.record(text, &key, t);
            }
        }
    }
}

/// The 1-based line of byte offset `at`.
pub fn line_at(text: &str, at: usize) -> usize {
    let at = at.min(text.len());
    text.as_bytes()[..at]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

fn dotted(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// The parsed file: the root table, where each section's keys are, and the problems
/// found so far.
pub struct Document<'i> {
    text: &'i str,
    root: DeTable<'i>,
    pub lines: Lines,
    /// Syntax errors: what follows them may be misread, so no cross-key check runs.
    pub syntax_errors: bool,
}

impl<'i> Document<'i> {
    pub fn parse(text: &'i str, out: &mut Vec<Problem>) -> Document<'i> {
        let (root, errors) = DeTable::parse_recoverable(text);
        for e in &errors {
            let mut p = Problem::new("(syntax)", e.message().trim_end());
            p.line = e.span().map(|s| line_at(text, s.start));
            out.push(p);
        }
        let root = root.into_inner();
        let mut lines = Lines::default();
        lines.record(text, "", &root);
        Document {
            text,
            root,
            lines,
            syntax_errors: !errors.is_empty(),
        }
    }

    /// The keys of the root table that no section claims, as problems.
    pub fn unknown_root_keys(&self, known: &[&str], out: &mut Vec<Problem>) {
        for (k, _) in &self.root {
            if !known.contains(&k.get_ref().as_ref()) {
                let mut p = Problem::new(k.get_ref().as_ref(), unknown_field(k.get_ref(), known));
                p.line = Some(line_at(self.text, k.span().start));
                out.push(p);
            }
        }
    }

    /// The section whose keys are at the top of the file, among other sections' keys.
    pub fn root_section<T>(&self, out: &mut Vec<Problem>) -> T
    where
        T: for<'de> Deserialize<'de> + Default,
    {
        let fields = field_names::<T>();
        let mine: DeTable<'i> = self
            .root
            .iter()
            .filter(|(k, _)| fields.contains(&k.get_ref().as_ref()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        self.read("", mine, 0..0, out)
    }

    /// The section of table `[name]`; absent, it is the section's defaults.
    pub fn table_section<T>(&self, name: &str, out: &mut Vec<Problem>) -> T
    where
        T: for<'de> Deserialize<'de> + Default,
    {
        let Some((k, v)) = self.root.get_key_value(name) else {
            return T::default();
        };
        match v.get_ref() {
            DeValue::Table(t) => self.read(name, t.clone(), v.span(), out),
            other => {
                let mut p = Problem::new(
                    name,
                    format!("invalid type: {}, expected a table", other.type_str()),
                );
                p.line = Some(line_at(self.text, k.span().start));
                out.push(p);
                T::default()
            }
        }
    }

    /// Reads `table` key by key: an unknown key or a value of the wrong type is a
    /// problem and is left out; the rest is deserialized.
    fn read<T>(
        &self,
        prefix: &str,
        table: DeTable<'i>,
        span: Range<usize>,
        out: &mut Vec<Problem>,
    ) -> T
    where
        T: for<'de> Deserialize<'de> + Default,
    {
        let fields = field_names::<T>();
        let mut good = DeTable::new();
        for (k, v) in table {
            let key = dotted(prefix, k.get_ref());
            let line = line_at(self.text, k.span().start);
            if !fields.contains(&k.get_ref().as_ref()) {
                let mut p = Problem::new(key, unknown_field(k.get_ref(), fields));
                p.line = Some(line);
                out.push(p);
                continue;
            }
            let mut one = DeTable::new();
            one.insert(k.clone(), v.clone());
            match deserialize::<T>(one, span.clone()) {
                Ok(_) => {
                    good.insert(k, v);
                }
                Err((path, e)) => {
                    let mut p = Problem::new(dotted(prefix, &path), e.message().trim_end());
                    p.line = Some(
                        e.span()
                            .filter(|s| s.start > 0)
                            .map(|s| line_at(self.text, s.start))
                            .unwrap_or(line),
                    );
                    out.push(p);
                }
            }
        }
        match deserialize::<T>(good, span) {
            Ok(v) => v,
            Err((path, e)) => {
                // Keys that each read alone but not together.
                out.push(Problem::new(dotted(prefix, &path), e.message().trim_end()));
                T::default()
            }
        }
    }
}

fn deserialize<T>(table: DeTable<'_>, span: Range<usize>) -> Result<T, (String, toml::de::Error)>
where
    T: for<'de> Deserialize<'de>,
{
    let de = ValueDeserializer::from(Spanned::new(span, DeValue::Table(table)));
    serde_path_to_error::deserialize(de).map_err(|e| (e.path().to_string(), e.into_inner()))
}

fn unknown_field(key: &DeString<'_>, expected: &[&str]) -> String {
    let list: Vec<String> = expected.iter().map(|f| format!("`{f}`")).collect();
    format!("unknown field `{key}`, expected one of {}", list.join(", "))
}

/// The keys of a section, as its `Deserialize` (derived, a struct) names them.
pub fn field_names<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    struct Fields<'a>(&'a mut &'static [&'static str]);
    impl<'de> serde::Deserializer<'de> for Fields<'_> {
        type Error = serde::de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(serde::de::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(serde::de::Error::custom("fields read"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map
            enum identifier ignored_any
        }
    }
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Fields(&mut fields));
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, serde::Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct T {
        a: Option<u32>,
        b: Option<Vec<String>>,
        #[serde(default)]
        m: BTreeMap<String, String>,
    }

    #[test]
    fn every_bad_key_is_a_problem_and_the_rest_is_kept() {
        let text = "[t]\na = \"x\"\nzz = 1\nb = [\"ok\"]\n[t.m]\nk = \"v\"\nn = 5\n";
        let mut out = vec![];
        let doc = Document::parse(text, &mut out);
        let t: T = doc.table_section("t", &mut out);
        assert_eq!(t.b, Some(vec!["ok".to_string()]));
        assert_eq!(t.a, None);
        // `m` as a whole is left out: one of its values is wrong.
        assert!(t.m.is_empty());
        let got: Vec<(&str, Option<usize>)> =
            out.iter().map(|p| (p.key.as_str(), p.line)).collect();
        assert_eq!(
            got,
            [("t.a", Some(2)), ("t.m.n", Some(7)), ("t.zz", Some(3))]
        );
        assert!(out[0].reason.contains("invalid type"), "{out:?}");
        assert!(out[2]
            .reason
            .starts_with("unknown field `zz`, expected one of `a`, `b`, `m`"));
        assert_eq!(doc.lines.of("t.m.k"), Some(6));
        assert_eq!(doc.lines.of("t.c"), Some(1));
        assert_eq!(doc.lines.of("u.c"), None);
    }

    #[test]
    fn syntax_errors_are_all_reported() {
        let mut out = vec![];
        let doc = Document::parse("a = \nb = 1\nc = [\n", &mut out);
        assert!(doc.syntax_errors);
        assert!(out.len() >= 2, "{out:?}");
        assert!(out.iter().all(|p| p.key == "(syntax)" && p.line.is_some()));
    }

    #[test]
    fn field_names_of_a_struct() {
        assert_eq!(field_names::<T>(), ["a", "b", "m"]);
    }
}
