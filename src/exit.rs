//! Exit codes, documented in the README.

/// Audited; nothing at or above `--fail-on`.
pub const OK: u8 = 0;
/// Findings at or above `--fail-on`.
pub const FINDINGS: u8 = 1;
/// Error: bad configuration or unreadable input.
pub const ERROR: u8 = 2;
/// Audited with gaps: skipped rows, unreadable subscriptions, undelivered mail.
pub const GAPS: u8 = 3;

/// Renders an error chain on one line: `outer: inner: root`.
pub fn render_error(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for (i, cause) in err.chain().enumerate() {
        if i > 0 {
            out.push_str(": ");
        }
        out.push_str(&cause.to_string());
    }
    out
}
