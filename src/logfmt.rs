//! Log fields for the plain format with control characters escaped.
//!
//! The default formatter writes a `%value` field and the message as they are: a newline
//! in a cluster name or an owner tag forged a log record, an escape sequence reached the
//! terminal. [`EscapedFields`] writes every field and the message with control characters
//! (C0, DEL, C1), line and paragraph separators and bidirectional overrides escaped as
//! `\n`, `\r`, `\t`, `\0` or `\u{..}`, so one event stays one line of inert text.
//! The JSON format escapes by itself.
use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::FormatFields;

/// Whether `c` must not reach a log line as it is.
pub fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{061c}'
        )
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

/// `s` with the characters of [`needs_escape`] escaped; anything else as it is.
pub fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    escape_except(s, &[])
}

/// [`escape`], keeping the characters of `keep` (e.g. line breaks inside a CSV cell or
/// an HTML `<pre>`, where they are data, not a new record).
pub fn escape_except<'a>(s: &'a str, keep: &[char]) -> std::borrow::Cow<'a, str> {
    let escaped = |c: char| needs_escape(c) && !keep.contains(&c);
    if !s.chars().any(escaped) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            c if !escaped(c) => out.push(c),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The plain format's field formatter: `message name=value ...`, every value escaped.
#[derive(Debug, Clone, Copy, Default)]
pub struct EscapedFields;

impl<'w> FormatFields<'w> for EscapedFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut v = Visitor {
            writer,
            empty: true,
            result: Ok(()),
        };
        fields.record(&mut v);
        v.result
    }
}

struct Visitor<'w> {
    writer: Writer<'w>,
    empty: bool,
    result: fmt::Result,
}

impl Visit for Visitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.record_debug(field, &format_args!("{value}"));
        } else {
            // Quoted, as the default formatter writes a string field.
            self.record_debug(field, &value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.result.is_err() {
            return;
        }
        let text = format!("{value:?}");
        let text = escape(&text);
        let pad = if std::mem::take(&mut self.empty) {
            ""
        } else {
            " "
        };
        let name = field.name();
        self.result = match name {
            "message" => write!(self.writer, "{pad}{text}"),
            // Fields of the `log` crate's records, as the default formatter skips them.
            n if n.starts_with("log.") => Ok(()),
            n => write!(
                self.writer,
                "{pad}{}={text}",
                n.strip_prefix("r#").unwrap_or(n)
            ),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape("plain text, ümlaut"), "plain text, ümlaut");
        assert_eq!(
            escape("a\nb\r\tc\0d\u{1b}[31me\u{9b}f\u{7f}g\u{2028}h\u{202e}i"),
            "a\\nb\\r\\tc\\0d\\u{1b}[31me\\u{9b}f\\u{7f}g\\u{2028}h\\u{202e}i"
        );
    }

    #[test]
    fn every_field_and_the_message_are_escaped() {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let w = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || w.clone())
            .with_ansi(false)
            .without_time()
            .with_target(false)
            .fmt_fields(EscapedFields)
            .finish();
        let name = "c1\n2026-01-01T00:00:00Z  INFO forged\u{1b}[31m\u{9b}2J";
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("cluster", name = %name);
            let _g = span.enter();
            tracing::warn!(owner = %name, quoted = name, debug = ?name, n = 3, "skipped {name}");
        });
        let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(out.matches('\n').count(), 1, "one line: {out:?}");
        assert!(
            !out.contains('\u{1b}') && !out.contains('\u{9b}'),
            "{out:?}"
        );
        assert!(
            out.contains("skipped c1\\n2026-01-01T00:00:00Z  INFO forged\\u{1b}[31m\\u{9b}2J"),
            "{out}"
        );
        assert!(out.contains(" owner=c1\\n2026"), "{out}");
        assert!(out.contains(" quoted=\"c1\\n2026"), "{out}");
        assert!(out.contains(" n=3"), "{out}");
        assert!(out.contains("cluster{name=c1\\n2026"), "{out}");
    }
}
