//! Exit codes, documented in the README.

/// Audited; nothing at or above `--fail-on`.
pub const OK: u8 = 0;
/// Findings at or above `--fail-on`.
pub const FINDINGS: u8 = 1;
/// Error: bad configuration or unreadable input.
pub const ERROR: u8 = 2;
/// Audited with gaps: skipped rows, unreadable subscriptions, undelivered mail.
pub const GAPS: u8 = 3;

/// Renders an error chain on one line: `outer: inner: root`, with every known secret
/// ([`crate::redact`]) masked, whatever a server echoed into it.
pub fn render_error(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for (i, cause) in err.chain().enumerate() {
        if i > 0 {
            out.push_str(": ");
        }
        out.push_str(&cause.to_string());
    }
    crate::redact::redact(&out).into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn rendered_errors_mask_known_secrets() {
        crate::redact::register("Exit-Test-Secret-1f2e");
        let e = anyhow::anyhow!("AADSTS7000215: client_secret=Exit-Test-Secret-1f2e is invalid")
            .context("authentication (client-secret) failed");
        let text = super::render_error(&e);
        assert_eq!(
            text,
            "authentication (client-secret) failed: AADSTS7000215: client_secret=*** is invalid"
        );
    }
}
