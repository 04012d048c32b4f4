//! Exit codes, documented in the README.

/// How a command ended, as the process's exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Exit {
    /// 0: audited; nothing at or above `--fail-on`.
    Ok = 0,
    /// 1: findings at or above `--fail-on`.
    Findings = 1,
    /// 2: error: bad configuration or unreadable input.
    Error = 2,
    /// 3: audited with gaps: skipped rows, unreadable subscriptions, undelivered mail.
    Gaps = 3,
}

impl Exit {
    /// The numeric exit code.
    pub const fn code(self) -> u8 {
        self as u8
    }
}

impl From<Exit> for u8 {
    fn from(e: Exit) -> u8 {
        e.code()
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> std::process::ExitCode {
        std::process::ExitCode::from(e.code())
    }
}

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
    use super::Exit;

    #[test]
    fn codes_are_the_documented_ones() {
        assert_eq!(
            [Exit::Ok, Exit::Findings, Exit::Error, Exit::Gaps].map(u8::from),
            [0, 1, 2, 3]
        );
    }

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
