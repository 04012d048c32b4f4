//! Mail to owners and admins, after the reports are written.
//!
//! - Each routable owner gets one message with only their clusters; admins get the full
//!   report and the list of unroutable owners ([`compose`]).
//! - Owner values are parsed strictly and only allowed domains receive mail
//!   ([`address`]).
//! - Every message is first an `.eml` file in `<out>/outbox/`; with SMTP it is sent and
//!   moved to `<out>/sent/`; what fails stays in `outbox/` for `resend` ([`outbox`]).
//! - Undelivered mail makes the run exit 3 ("audited with gaps").
pub mod address;
pub mod compose;
pub mod outbox;
pub mod settings;
pub mod transport;

use std::path::{Path, PathBuf};
use std::time::Instant;

use futures::StreamExt;
use lettre::Address;

use crate::rules::Report;
pub use settings::{MailArgs, MailConfig, MailContext, MailSettings, Transport};

/// Messages sent at once over the SMTP connection pool.
pub const CONCURRENCY: usize = 4;

/// What delivery did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivery {
    /// Messages written to the outbox.
    pub written: usize,
    /// Messages the SMTP server accepted (moved to `sent/`).
    pub sent: usize,
    /// Messages not delivered: left in `outbox/` or not even written.
    pub undelivered: usize,
    /// Owners not mailed because nothing changed (`--no-always-send`).
    pub unchanged: usize,
    /// Clusters whose owner value cannot receive mail.
    pub unroutable: usize,
}

/// A message in the outbox, read back when it is sent.
struct Outgoing {
    path: PathBuf,
    to: Address,
}

/// Distinct unroutable owner values shown as warnings; the rest are counted (every
/// cluster is at debug level, and in the admins' `unroutable.csv`).
const UNROUTABLE_WARNINGS: usize = 20;

/// One warning per distinct owner value and reason, not per cluster: a tenant whose
/// thousand owners share one bad domain would otherwise log a line per cluster.
fn log_unroutable(rows: &[compose::UnroutableRow]) {
    let mut groups: std::collections::BTreeMap<(&str, &str), (usize, &str)> = Default::default();
    for u in rows {
        tracing::debug!(cluster = %u.cluster_id, owner_source = %u.owner_source, owner = %u.raw, reason = %u.reason, "mail: owner unroutable");
        groups
            .entry((u.raw.as_str(), u.reason.as_str()))
            .or_insert((0, u.cluster_id.as_str()))
            .0 += 1;
    }
    for ((owner, reason), (clusters, example)) in groups.iter().take(UNROUTABLE_WARNINGS) {
        tracing::warn!(owner = %owner, reason = %reason, clusters, example_cluster = %example, "mail: owner unroutable");
    }
    if groups.len() > UNROUTABLE_WARNINGS {
        tracing::warn!(
            more_owner_values = groups.len() - UNROUTABLE_WARNINGS,
            "mail: more unroutable owner values (each cluster at --log-level debug)"
        );
    }
}

/// Composes, writes and (with SMTP) sends this run's messages. Never fails: problems
/// are logged and counted in [`Delivery::undelivered`].
pub async fn deliver(report: &Report, out_dir: &Path, s: &MailSettings) -> Delivery {
    let mut d = Delivery::default();
    if !s.enabled {
        tracing::info!("mail: disabled (--no-email)");
        return d;
    }
    let started = Instant::now();
    let plan = compose::plan(report, &s.policy);
    d.unroutable = plan.unroutable.len();
    log_unroutable(&plan.unroutable);
    if d.unroutable > 0 && s.admins.is_empty() {
        tracing::warn!(
            unroutable = d.unroutable,
            "mail: clusters with unroutable owners and no --admin to tell; see the warnings above"
        );
    }
    let narrower = compose::Narrower::new(report);
    // Who gets a message; each is composed, written to the outbox and dropped in
    // turn, so a thousand owners' messages are never all in memory.
    let mut recipients: Vec<(&Address, Option<&compose::OwnerPlan>)> = Vec::new();
    for o in &plan.owners {
        if !s.always_send && !narrower.changed_for(&o.cluster_ids) {
            d.unchanged += 1;
            continue;
        }
        recipients.push((&o.address, Some(o)));
    }
    let all_ids = report
        .clusters
        .iter()
        .map(|c| c.cluster_id.clone())
        .collect::<Vec<_>>();
    let admins_due = s.always_send || !plan.unroutable.is_empty() || narrower.changed_for(&all_ids);
    drop(all_ids);
    if admins_due {
        recipients.extend(s.admins.iter().map(|a| (a, None)));
    }
    // Composing is CPU work (templates, CSVs, encoding): two threads, one per core;
    // numbers are given first, so the outbox order does not depend on which is faster.
    let jobs: Vec<(usize, &Address, Option<&compose::OwnerPlan>)> =
        (outbox::next_number(out_dir)..)
            .zip(recipients)
            .map(|(n, (to, owner))| (n, to, owner))
            .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let compose_some = || {
        let mut done = Vec::new();
        while let Some(&(n, to, owner)) =
            jobs.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
        {
            let msg = match owner {
                Some(o) => compose::owner_message(&narrower, o, &s.from, s.csv_excel),
                None => compose::admin_message(report, &plan, to, &s.from, out_dir, s.csv_excel),
            };
            let written = msg.and_then(|m| {
                let path = outbox::write(out_dir, &outbox::file_name(n, to), &m.formatted())?;
                Ok(Outgoing {
                    path,
                    to: to.clone(),
                })
            });
            done.push((n, to, written));
        }
        done
    };
    let mut results = std::thread::scope(|sc| {
        let other = sc.spawn(compose_some);
        let mut mine = compose_some();
        mine.extend(
            other
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p)),
        );
        mine
    });
    results.sort_by_key(|(n, _, _)| *n);
    let mut outgoing = Vec::new();
    for (_, to, written) in results {
        match written {
            Ok(o) => outgoing.push(o),
            Err(e) => {
                d.undelivered += 1;
                tracing::error!(to = %to, error = %crate::exit::render_error(&e), "mail: could not write message");
            }
        }
    }
    d.written = outgoing.len();
    let outbox_dir = out_dir.join(outbox::OUTBOX);
    match &s.transport {
        Transport::Outbox => {
            tracing::info!(
                written = d.written,
                owners = plan.owners.len(),
                unroutable = d.unroutable,
                unchanged = d.unchanged,
                outbox = %outbox_dir.display(),
                "mail: no --smtp; messages written to the outbox"
            );
        }
        Transport::Smtp(_) => {
            let (sent, failed) = send_all(outgoing, s).await;
            d.sent = sent;
            d.undelivered += failed;
        }
    }
    finish_log(&d, out_dir, started, s);
    d
}

/// Sends what waits in `<dir>/outbox/` and moves what succeeds to `<dir>/sent/`.
pub async fn resend(dir: &Path, s: &MailSettings) -> anyhow::Result<Delivery> {
    if !matches!(s.transport, Transport::Smtp(_)) {
        anyhow::bail!("resend needs an SMTP server: give --smtp URL or [mail] smtp");
    }
    if !s.enabled {
        anyhow::bail!("resend with mail disabled (--no-email or [mail] enabled = false)");
    }
    let started = Instant::now();
    let mut d = Delivery::default();
    let mut outgoing = Vec::new();
    for path in outbox::pending(dir)? {
        let bytes = std::fs::read(&path)?;
        let checked = outbox::envelope(&bytes).and_then(|(_, to)| {
            let to = address::normalise(&to);
            if s.policy.allows(&to) || s.admins.contains(&to) {
                Ok(to)
            } else {
                anyhow::bail!("recipient {to} is neither in an allowed domain nor an admin")
            }
        });
        match checked {
            Ok(to) => outgoing.push(Outgoing { path, to }),
            Err(e) => {
                d.undelivered += 1;
                tracing::error!(file = %path.display(), error = %crate::exit::render_error(&e), "mail: not resending");
            }
        }
    }
    d.written = outgoing.len();
    let (sent, failed) = send_all(outgoing, s).await;
    d.sent = sent;
    d.undelivered += failed;
    finish_log(&d, dir, started, s);
    Ok(d)
}

async fn send_all(outgoing: Vec<Outgoing>, s: &MailSettings) -> (usize, usize) {
    let Transport::Smtp(smtp_settings) = &s.transport else {
        return (0, outgoing.len());
    };
    let smtp = match transport::build(smtp_settings, s.timeout, CONCURRENCY as u32) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %crate::exit::render_error(&e), "mail: SMTP setup failed");
            return (0, outgoing.len());
        }
    };
    let retry = transport::Retry {
        retries: s.retries,
        base: s.backoff,
        secret: smtp_settings.password.as_ref(),
    };
    let from = s.from.email.clone();
    let results: Vec<bool> = futures::stream::iter(outgoing)
        .map(|o| {
            let smtp = &smtp;
            let from = &from;
            let retry = &retry;
            async move {
                let label = o
                    .path
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default();
                let sent = match std::fs::read(&o.path) {
                    Ok(bytes) => transport::send(smtp, (from, &o.to), &bytes, retry, &label).await,
                    Err(e) => Err(format!("reading {}: {e}", o.path.display())),
                };
                match sent {
                    Ok(retries) => match outbox::mark_sent(&o.path) {
                        Ok(_) => {
                            tracing::debug!(file = %label, retries, "mail: sent");
                            true
                        }
                        Err(e) => {
                            // Sent, but still in outbox/: a resend would duplicate it; say so.
                            tracing::error!(file = %label, error = %crate::exit::render_error(&e), "mail: sent but could not be moved to sent/");
                            true
                        }
                    },
                    Err(e) => {
                        tracing::error!(file = %label, server = %smtp_settings.display(), error = %e, "mail: not delivered");
                        false
                    }
                }
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let sent = results.iter().filter(|ok| **ok).count();
    (sent, results.len() - sent)
}

fn finish_log(d: &Delivery, dir: &Path, started: Instant, s: &MailSettings) {
    let ms = started.elapsed().as_millis() as u64;
    let server = match &s.transport {
        Transport::Smtp(t) => t.display(),
        Transport::Outbox => "outbox".into(),
    };
    if d.undelivered > 0 {
        tracing::error!(
            undelivered = d.undelivered,
            sent = d.sent,
            server = %server,
            elapsed_ms = ms,
            "mail: {} message(s) undelivered, left in {}; send them later with `aks-identity-audit resend {}`",
            d.undelivered,
            dir.join(outbox::OUTBOX).display(),
            dir.display()
        );
    } else if matches!(s.transport, Transport::Smtp(_)) {
        tracing::info!(sent = d.sent, unroutable = d.unroutable, unchanged = d.unchanged, server = %server, elapsed_ms = ms, "mail: all messages sent");
    }
}

/// `aks-identity-audit resend DIR`: the `[mail]` section of `config` with `args` on
/// top; exit 0 when everything went out, 3 when something is still in the outbox.
pub fn resend_command(dir: &Path, config: Option<&Path>, args: &MailArgs) -> anyhow::Result<u8> {
    let file = match config {
        Some(p) => crate::config::FileConfig::load(p)?,
        None => crate::config::FileConfig::default(),
    };
    let settings = MailSettings::resolve(args, &file.mail, MailContext::default())?;
    let rt = tokio::runtime::Runtime::new()?;
    let d = rt.block_on(resend(dir, &settings))?;
    println!("sent {}, undelivered {}", d.sent, d.undelivered);
    Ok(if d.undelivered > 0 {
        crate::exit::GAPS
    } else {
        crate::exit::OK
    })
}
