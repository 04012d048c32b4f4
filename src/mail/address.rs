//! Owner addresses from tag values, parsed strictly, and the domain policy that decides
//! who may receive mail.
//!
//! Decisions (documented in the README's mail section):
//! - A tag holds one address or a comma-separated list (at most [`MAX_LIST`]); `;` and
//!   whitespace-separated lists are not accepted. A list is routed all or nothing: one
//!   bad or foreign element makes the whole value unroutable (never half-sent).
//! - Bare addresses only: no display names (`Name <a@b>`), no comments, no quotes, no
//!   control characters, ASCII only, local part `[A-Za-z0-9._+-]`, at most 254 bytes.
//! - No source routes, which a relay would forward to a domain the policy never saw:
//!   `%` (`user%other.example@allowed`), `!` (bang paths), a leading `@` route
//!   (`@relay:user@host`) and quoted local parts (`"user@other"@allowed`) are refused,
//!   each with its reason.
//! - A tag is writable by anyone with Contributor on the resource, so only addresses
//!   whose domain equals or is a subdomain of an allowed domain receive mail. With no
//!   allowed domains configured, the admins' domains and the sender's domain are allowed.
use std::fmt;

use lettre::Address;

/// At most this many addresses in one tag value.
pub const MAX_LIST: usize = 10;
/// Raw values are shown to admins truncated to this many characters.
pub const RAW_SHOWN: usize = 120;

/// Why an owner value cannot receive mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unroutable {
    /// No owner tag, map entry or fallback.
    NoOwner,
    /// Not a bare address (with the reason).
    Invalid(String),
    /// A valid address outside the allowed domains.
    Foreign(String),
}

impl fmt::Display for Unroutable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unroutable::NoOwner => write!(f, "no owner tag, subscription mapping or fallback"),
            Unroutable::Invalid(why) => write!(f, "invalid address: {why}"),
            Unroutable::Foreign(domain) => {
                write!(f, "domain {domain} is not an allowed domain")
            }
        }
    }
}

/// Which domains may receive mail: exact or subdomain match, case-insensitive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DomainPolicy {
    domains: Vec<String>,
}

impl DomainPolicy {
    pub fn new<I: IntoIterator<Item = S>, S: AsRef<str>>(domains: I) -> anyhow::Result<Self> {
        let mut out: Vec<String> = Vec::new();
        for d in domains {
            let d = d
                .as_ref()
                .trim()
                .trim_start_matches('@')
                .trim_end_matches('.');
            let lower = d.to_ascii_lowercase();
            let ok = !lower.is_empty()
                && lower.len() <= 253
                && lower.split('.').all(|l| {
                    !l.is_empty()
                        && l.len() <= 63
                        && !l.starts_with('-')
                        && !l.ends_with('-')
                        && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                });
            if !ok {
                anyhow::bail!(
                    "allowed domain `{}` is not a domain name",
                    escape(d, RAW_SHOWN)
                );
            }
            if !out.contains(&lower) {
                out.push(lower);
            }
        }
        Ok(DomainPolicy { domains: out })
    }

    pub fn domains(&self) -> &[String] {
        &self.domains
    }

    pub fn allows(&self, addr: &Address) -> bool {
        let d = addr.domain().to_ascii_lowercase();
        self.domains.iter().any(|a| {
            d == *a
                || (d.len() > a.len()
                    && d.ends_with(a.as_str())
                    && d[..d.len() - a.len()].ends_with('.'))
        })
    }
}

/// Why `s` is a source-routed address (mail a relay would forward to a domain other than
/// the one after the last `@`), if it is one.
fn source_route(s: &str) -> Option<&'static str> {
    if s.starts_with('@') && s.contains(':') {
        Some("a source route (`@relay:user@host`): a relay would forward it elsewhere")
    } else if s.starts_with('"') || s.contains("\"@") {
        Some("a quoted local part (`\"user@other\"@domain`) is not accepted")
    } else if s
        .rsplit_once('@')
        .is_some_and(|(user, _)| user.contains('%'))
    {
        Some("`%` in the local part (`user%other.example@domain`) is a source route a relay would forward to another domain")
    } else if s.contains('!') {
        Some("`!` (a bang path, `other!user@domain`) is a source route a relay would forward to another host")
    } else {
        None
    }
}

/// Parses one bare address strictly (see the module docs).
pub fn parse_one(raw: &str) -> Result<Address, String> {
    let s = raw.trim_matches(|c| c == ' ' || c == '\t');
    if s.is_empty() {
        return Err("empty".into());
    }
    if s.chars().any(|c| c.is_control()) {
        return Err("contains control characters (CR, LF, tab...)".into());
    }
    if !s.is_ascii() {
        return Err("contains non-ASCII characters".into());
    }
    if s.len() > 254 {
        return Err("longer than 254 characters".into());
    }
    if let Some(why) = source_route(s) {
        return Err(why.into());
    }
    if s.contains(['<', '>', '"', '(', ')', ' ', ',', ';', ':', '\\', '[', ']']) {
        return Err("not a bare address (display name, comment, quote or list)".into());
    }
    let (user, domain) = s.rsplit_once('@').ok_or_else(|| "no @".to_string())?;
    if user.contains('@') {
        return Err("more than one @".into());
    }
    if user.is_empty()
        || !user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'+' | b'-'))
    {
        return Err("unsupported characters in the local part".into());
    }
    if !domain.contains('.') {
        return Err("domain has no dot".into());
    }
    if DomainPolicy::new([domain]).is_err() {
        return Err("invalid domain".into());
    }
    Address::new(user, domain).map_err(|e| e.to_string())
}

/// Parses an owner value: one address or a comma-separated list, then applies the
/// policy. All or nothing.
pub fn route(raw: &str, policy: &DomainPolicy) -> Result<Vec<Address>, Unroutable> {
    if raw.trim().is_empty() {
        return Err(Unroutable::NoOwner);
    }
    if raw.chars().any(|c| c.is_control()) {
        return Err(Unroutable::Invalid(
            "contains control characters (CR, LF, tab...)".into(),
        ));
    }
    let parts: Vec<&str> = raw.split(',').collect();
    if parts.len() > MAX_LIST {
        return Err(Unroutable::Invalid(format!(
            "more than {MAX_LIST} addresses"
        )));
    }
    let is_list = parts.len() > 1;
    let mut out: Vec<Address> = Vec::new();
    for p in parts {
        let a = parse_one(p).map_err(|why| {
            if is_list {
                Unroutable::Invalid(format!("`{}`: {why}", escape(p.trim(), 60)))
            } else {
                Unroutable::Invalid(why)
            }
        })?;
        if !policy.allows(&a) {
            return Err(Unroutable::Foreign(a.domain().to_ascii_lowercase()));
        }
        let a = normalise(&a);
        if !out.contains(&a) {
            out.push(a);
        }
    }
    Ok(out)
}

/// Lower-cases an address: one owner, one message, whatever the tag's spelling.
pub fn normalise(a: &Address) -> Address {
    Address::new(
        a.user().to_ascii_lowercase(),
        a.domain().to_ascii_lowercase(),
    )
    .unwrap_or_else(|_| a.clone())
}

/// A raw value made safe to show: control and non-printable characters escaped
/// (`\r`, `\n`, `\u{..}`), truncated to `max` characters with an ellipsis.
pub fn escape(raw: &str, max: usize) -> String {
    let mut out = String::new();
    for (n, c) in raw.chars().enumerate() {
        if n >= max {
            out.push('…');
            break;
        }
        match c {
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\\' => out.push_str("\\\\"),
            c if c.is_control()
                || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') =>
            {
                out.push_str(&c.escape_unicode().to_string())
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> DomainPolicy {
        DomainPolicy::new(["Contoso.com"]).unwrap()
    }

    #[test]
    fn bare_addresses_in_allowed_domains_route() {
        let p = policy();
        assert_eq!(
            route("Alice@Contoso.COM", &p).unwrap()[0].to_string(),
            "alice@contoso.com"
        );
        assert_eq!(
            route(" bob@eu.contoso.com ", &p).unwrap()[0].to_string(),
            "bob@eu.contoso.com"
        );
        let list = route("a@contoso.com, b@contoso.com,a@contoso.com", &p).unwrap();
        assert_eq!(list.len(), 2);
    }

    #[test]
    fn foreign_and_lookalike_domains_are_refused() {
        let p = policy();
        for raw in [
            "a@evil.com",
            "a@notcontoso.com",
            "a@contoso.com.evil.com",
            "a@contoso.co",
        ] {
            assert!(
                matches!(route(raw, &p), Err(Unroutable::Foreign(_))),
                "{raw}"
            );
        }
        // One foreign element sinks the whole list: never half-sent.
        assert!(matches!(
            route("a@contoso.com, x@evil.com", &p),
            Err(Unroutable::Foreign(_))
        ));
    }

    #[test]
    fn tricks_are_invalid() {
        let p = policy();
        for raw in [
            "a@contoso.com\r\nBcc: evil@x.com",
            "a@contoso.com\nBcc: evil@x.com",
            "Alice <a@contoso.com>",
            "\"evil@x.com\" <a@contoso.com>",
            "a@contoso.com <evil@x.com>",
            "evil@x.com@contoso.com",
            "a@contoso.com; b@contoso.com",
            "a@contoso.com b@contoso.com",
            "a(comment)@contoso.com",
            "a@[127.0.0.1]",
            "a@localhost",
            "ä@contoso.com",
            "a/b@contoso.com",
            "team",
            "@contoso.com",
        ] {
            assert!(
                matches!(route(raw, &p), Err(Unroutable::Invalid(_))),
                "{raw:?} -> {:?}",
                route(raw, &p)
            );
        }
        assert_eq!(route("   ", &p), Err(Unroutable::NoOwner));
        let many = ["a@contoso.com"; MAX_LIST + 1].join(",");
        assert!(matches!(route(&many, &p), Err(Unroutable::Invalid(_))));
    }

    #[test]
    fn source_routes_are_refused_with_their_reason() {
        let p = policy();
        for (raw, why) in [
            ("user%other.example@contoso.com", "`%`"),
            ("user%evil.com%relay@contoso.com", "`%`"),
            ("evil.com!user@contoso.com", "bang path"),
            ("user!x@contoso.com", "bang path"),
            ("@relay.contoso.com:user@evil.com", "source route"),
            ("@contoso.com:user@contoso.com", "source route"),
            ("\"user@evil.com\"@contoso.com", "quoted local part"),
            ("\"user\"@contoso.com", "quoted local part"),
        ] {
            match route(raw, &p) {
                Err(Unroutable::Invalid(reason)) => {
                    assert!(reason.contains(why), "{raw}: {reason}")
                }
                other => panic!("{raw}: {other:?}"),
            }
            assert!(parse_one(raw).is_err(), "{raw}");
        }
        // In a list, the element is named.
        match route("a@contoso.com, user%x@contoso.com", &p) {
            Err(Unroutable::Invalid(reason)) => {
                assert!(
                    reason.contains("user%x@contoso.com") && reason.contains("`%`"),
                    "{reason}"
                )
            }
            other => panic!("{other:?}"),
        }
        assert!(route("first.last+tag@contoso.com", &p).is_ok());
    }

    #[test]
    fn escape_makes_raw_values_inert_and_short() {
        assert_eq!(escape("a\r\nBcc: x", 50), "a\\r\\nBcc: x");
        assert_eq!(escape("abcdef", 3), "abc…");
        assert_eq!(escape("a\u{202e}b", 10), "a\\u{202e}b");
    }

    #[test]
    fn policy_rejects_garbage_domains() {
        assert!(DomainPolicy::new(["conto\r\nso.com"]).is_err());
        assert!(DomainPolicy::new(["*.contoso.com"]).is_err());
        assert_eq!(
            DomainPolicy::new(["@Contoso.com."]).unwrap().domains(),
            ["contoso.com"]
        );
    }
}
