//! The outbox: every message is an `.eml` file in `<out>/outbox/` before it is sent,
//! and moves to `<out>/sent/` once the server accepted it. What stays in `outbox/` is
//! what `resend` sends.
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use lettre::Address;

use super::address;
use crate::secure_fs::write_atomic;

pub const OUTBOX: &str = "outbox";
pub const SENT: &str = "sent";
/// Inside `outbox/`: names of messages the server accepted that could not be moved
/// to `sent/` (one per line); they are never sent again.
pub const JOURNAL: &str = ".accepted";

/// `<n>-<recipient>.eml`, with anything but `[A-Za-z0-9@._+-]` replaced.
pub fn file_name(n: usize, to: &Address) -> String {
    let safe: String = to
        .to_string()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "@._+-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{n:04}-{safe}.eml")
}

/// The number after the highest `<n>-` already used in `outbox/` or `sent/`, so a
/// second run into the same folder does not overwrite the first one's messages.
pub fn next_number(out_dir: &Path) -> usize {
    let mut max = 0;
    for sub in [OUTBOX, SENT] {
        if let Ok(rd) = std::fs::read_dir(out_dir.join(sub)) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if let Some(n) = name.split('-').next().and_then(|d| d.parse::<usize>().ok()) {
                    max = max.max(n);
                }
            }
        }
    }
    max + 1
}

/// Writes one message into `<out>/outbox/`; returns its path.
pub fn write(out_dir: &Path, name: &str, bytes: &[u8]) -> anyhow::Result<PathBuf> {
    let path = out_dir.join(OUTBOX).join(name);
    write_atomic(&path, bytes)?;
    Ok(path)
}

/// The `.eml` files waiting in `<dir>/outbox/`, sorted.
pub fn pending(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let outbox = dir.join(OUTBOX);
    if !outbox.is_dir() {
        return Ok(vec![]);
    }
    let journal: std::collections::BTreeSet<String> =
        match std::fs::read_to_string(outbox.join(JOURNAL)) {
            Ok(t) => t.lines().map(str::to_string).collect(),
            Err(_) => Default::default(),
        };
    let mut v: Vec<PathBuf> = std::fs::read_dir(&outbox)
        .with_context(|| format!("listing {}", outbox.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        // Regular files only: a link planted in the outbox is never read and sent.
        .filter(|p| {
            p.symlink_metadata().is_ok_and(|m| m.is_file())
                && p.extension().is_some_and(|x| x == "eml")
                && !p
                    .file_name()
                    .is_some_and(|n| journal.contains(n.to_string_lossy().as_ref()))
        })
        .collect();
    v.sort();
    Ok(v)
}

/// Moves a sent message from `outbox/` to `sent/` beside it.
pub fn mark_sent(path: &Path) -> anyhow::Result<PathBuf> {
    let outbox = path.parent().context("message has no folder")?;
    let sent = outbox.parent().unwrap_or(Path::new(".")).join(SENT);
    crate::secure_fs::create_dir_all(&sent)
        .with_context(|| format!("creating {}", sent.display()))?;
    let dest = sent.join(path.file_name().context("message has no name")?);
    std::fs::rename(path, &dest)
        .with_context(|| format!("moving {} to {}", path.display(), dest.display()))?;
    Ok(dest)
}

/// Records in `outbox/.accepted` that the message at `path` was accepted although it
/// could not be moved to `sent/`, so no later send repeats it.
pub fn journal_accepted(path: &Path) -> anyhow::Result<PathBuf> {
    use std::io::Write;
    let outbox = path.parent().context("message has no folder")?;
    let journal = outbox.join(JOURNAL);
    let name = path
        .file_name()
        .context("message has no name")?
        .to_string_lossy()
        .to_string();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&journal)
        .with_context(|| format!("opening {}", journal.display()))?;
    f.write_all(format!("{name}\n").as_bytes())
        .and_then(|_| f.sync_data())
        .with_context(|| format!("writing {}", journal.display()))?;
    Ok(journal)
}

/// The envelope of a message we wrote: the addresses of its `From:` and `To:` headers.
/// Exactly one recipient, parsed strictly; anything else is refused.
pub fn envelope(bytes: &[u8]) -> anyhow::Result<(Address, Address)> {
    let text = String::from_utf8_lossy(bytes);
    let head = text
        .split("\r\n\r\n")
        .next()
        .filter(|h| h.len() < text.len())
        .context("no header block")?;
    // Unfold continuation lines.
    let mut headers: Vec<String> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = headers.last_mut() {
                last.push_str(line);
                continue;
            }
        }
        headers.push(line.to_string());
    }
    let get = |name: &str| -> anyhow::Result<String> {
        let found: Vec<&String> = headers
            .iter()
            .filter(|h| {
                h.split_once(':')
                    .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            })
            .collect();
        match found.as_slice() {
            [one] => Ok(one
                .split_once(':')
                .map(|x| x.1.trim().to_string())
                .unwrap_or_default()),
            [] => bail!("no {name}: header"),
            _ => bail!("more than one {name}: header"),
        }
    };
    for refused in ["Cc", "Bcc"] {
        if get(refused).is_ok() {
            bail!("has a {refused}: header");
        }
    }
    let addr = |v: String| -> anyhow::Result<Address> {
        let inner = match (v.rfind('<'), v.rfind('>')) {
            (Some(a), Some(b)) if a < b => v[a + 1..b].to_string(),
            _ => v,
        };
        address::parse_one(&inner)
            .map_err(|why| anyhow::anyhow!("`{}`: {why}", address::escape(&inner, 80)))
    };
    Ok((addr(get("From")?)?, addr(get("To")?)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_safe_and_numbers_continue() {
        let a: Address = "a.b+c@contoso.com".parse().unwrap();
        assert_eq!(file_name(7, &a), "0007-a.b+c@contoso.com.eml");
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(next_number(dir.path()), 1);
        write(dir.path(), "0003-a@contoso.com.eml", b"x").unwrap();
        assert_eq!(next_number(dir.path()), 4);
        let p = pending(dir.path()).unwrap();
        assert_eq!(p.len(), 1);
        let s = mark_sent(&p[0]).unwrap();
        assert!(s.ends_with("sent/0003-a@contoso.com.eml"));
        assert!(pending(dir.path()).unwrap().is_empty());
        assert_eq!(next_number(dir.path()), 4);
    }

    #[test]
    fn envelope_from_headers() {
        let eml = b"From: \"AKS audit\" <audit@contoso.com>\r\nTo: alice@contoso.com\r\nSubject: x\r\n\r\nbody\r\n";
        let (f, t) = envelope(eml).unwrap();
        assert_eq!(
            (f.to_string().as_str(), t.to_string().as_str()),
            ("audit@contoso.com", "alice@contoso.com")
        );
        let two = b"From: audit@contoso.com\r\nTo: a@contoso.com, evil@x.com\r\n\r\nb";
        assert!(envelope(two).is_err());
        let bcc = b"From: audit@contoso.com\r\nTo: a@contoso.com\r\nBcc: evil@x.com\r\n\r\nb";
        assert!(envelope(bcc).is_err());
    }
}
