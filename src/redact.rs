//! Known secret values (the client secret, the SMTP password, the federated token), kept
//! out of every error and log line whatever a server echoes back.
//!
//! Secrets are [`register`]ed where they are read; [`redact`] replaces each, and the
//! forms a server is likely to echo (form- or percent-encoded as it was sent, JSON-escaped),
//! with `***`. [`crate::exit::render_error`] redacts every error the binary prints, and
//! [`Stderr`] (the log writer) every log line, plain or JSON.
use std::borrow::Cow;
use std::io::Write;
use std::sync::RwLock;

/// Shorter values are not registered: redacting a two-letter word from every line would
/// garble the logs (and point at the secret by what is missing).
pub const MIN_LEN: usize = 6;
/// The newest values kept (a rotated federated token is registered at each run).
const MAX_VALUES: usize = 256;

pub const MASK: &str = "***";

static KNOWN: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// `s` with the two hex digits after each `%` in lower case.
fn lower_hex(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut hex = 0;
    for c in s.chars() {
        if c == '%' {
            hex = 2;
            out.push(c);
        } else if hex > 0 {
            hex -= 1;
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn variants(secret: &str) -> Vec<String> {
    // As sent in a form body (`+` for a space, upper-case hex) ...
    let form: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    // ... percent-encoded as in a URL ...
    let pct: String = secret
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    // ... and JSON-escaped.
    let json = serde_json::to_string(secret).unwrap_or_default();
    let json = json
        .strip_prefix('"')
        .and_then(|j| j.strip_suffix('"'))
        .unwrap_or(&json)
        .to_string();
    let mut v = vec![secret.to_string()];
    for x in [lower_hex(&form), lower_hex(&pct), form, pct, json] {
        if !v.contains(&x) {
            v.push(x);
        }
    }
    v
}

/// Remembers `secret` (and its encodings) for [`redact`]. Values shorter than
/// [`MIN_LEN`] characters are ignored.
pub fn register(secret: &str) {
    let secret = secret.trim();
    if secret.chars().count() < MIN_LEN {
        return;
    }
    let Ok(mut known) = KNOWN.write() else {
        return;
    };
    for v in variants(secret) {
        if let Some(i) = known.iter().position(|k| *k == v) {
            known.remove(i);
        }
        known.push(v);
    }
    let excess = known.len().saturating_sub(MAX_VALUES);
    known.drain(..excess);
}

/// `text` with every registered secret replaced by `***`.
pub fn redact(text: &str) -> Cow<'_, str> {
    let Ok(known) = KNOWN.read() else {
        return Cow::Borrowed(text);
    };
    if !known.iter().any(|k| text.contains(k.as_str())) {
        return Cow::Borrowed(text);
    }
    // Longest first, so a longer encoding is masked whole before a shorter one inside it.
    let mut by_len: Vec<&String> = known.iter().collect();
    by_len.sort_by_key(|k| std::cmp::Reverse(k.len()));
    let mut out = text.to_string();
    for k in by_len {
        if out.contains(k.as_str()) {
            out = out.replace(k.as_str(), MASK);
        }
    }
    Cow::Owned(out)
}

/// C1 control characters (U+0080–U+009F) as `\u00XX`: a terminal reads some of them
/// as escape sequences, and JSON encoders leave them raw (only below U+0020 must be
/// escaped). In a JSON record `\u00XX` is the same character, in a plain one inert text.
pub fn escape_c1(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| ('\u{80}'..='\u{9f}').contains(&c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if ('\u{80}'..='\u{9f}').contains(&c) {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// The log writer: standard error, each record redacted as a whole before it is written.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stderr;

/// One log record, buffered until flushed or dropped.
pub struct StderrRecord(Vec<u8>);

impl StderrRecord {
    fn take_redacted(&mut self) -> Vec<u8> {
        let text = String::from_utf8_lossy(&self.0);
        let out = escape_c1(&redact(&text)).into_owned().into_bytes();
        self.0.clear();
        out
    }
}

impl Write for StderrRecord {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.0.is_empty() {
            return Ok(());
        }
        let out = self.take_redacted();
        std::io::stderr().lock().write_all(&out)
    }
}

impl Drop for StderrRecord {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Stderr {
    type Writer = StderrRecord;

    fn make_writer(&'a self) -> StderrRecord {
        StderrRecord(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c1_controls_become_json_escapes() {
        let line = serde_json::json!({ "name": "a\u{85}b\u{9b}2J" }).to_string();
        let escaped = escape_c1(&line);
        assert!(
            !escaped.chars().any(|c| ('\u{80}'..='\u{9f}').contains(&c)),
            "{escaped}"
        );
        let back: serde_json::Value = serde_json::from_str(&escaped).unwrap();
        assert_eq!(
            back["name"], "a\u{85}b\u{9b}2J",
            "the same value once decoded"
        );
        assert!(matches!(escape_c1("plain é"), Cow::Borrowed(_)));
    }

    #[test]
    fn registered_secrets_and_their_encodings_are_masked() {
        let secret = "Zq8~r.Te+st/S3cr=t 42";
        register(secret);
        register("abc"); // too short: ignored
        let form: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        assert_eq!(form, "Zq8%7Er.Te%2Bst%2FS3cr%3Dt+42");
        let text = format!(
            "raw {secret}; body client_secret={form}&scope=x; \
             lower Zq8%7er.Te%2bst%2fS3cr%3dt+42; url Zq8~r.Te%2Bst%2FS3cr%3Dt%2042; json {}; abc",
            serde_json::to_string(secret).unwrap()
        );
        let out = redact(&text);
        assert!(!out.to_lowercase().contains("zq8"), "{out}");
        assert!(out.contains("raw ***;") && out.ends_with("abc"), "{out}");
        assert_eq!(redact("nothing here"), "nothing here");
    }

    #[test]
    fn the_log_writer_redacts_a_record_split_over_writes() {
        register("Split-Secret-Value-77");
        let mut w = StderrRecord(Vec::new());
        w.write_all(b"token request failed: Split-Secret").unwrap();
        w.write_all(b"-Value-77 echoed\n").unwrap();
        let out = String::from_utf8(w.take_redacted()).unwrap();
        assert_eq!(out, "token request failed: *** echoed\n");
    }
}
