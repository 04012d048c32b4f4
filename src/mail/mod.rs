//! Mail to owners and admins, after the reports are written.
//!
//! - Each routable owner gets one message with only their clusters; admins get the full
//!   report and the list of unroutable owners ([`compose`]).
//! - Owner values are parsed strictly and only allowed domains receive mail
//!   ([`address`]).
//! - Every message is first an `.eml` file in `<out>/outbox/`; with SMTP or Microsoft
//!   Graph ([`graph`]) it is sent and moved to `<out>/sent/`; what fails stays in
//!   `outbox/` for `resend` ([`outbox`]).
//! - Undelivered mail makes the run exit 3 ("audited with gaps").
pub mod address;
pub mod compose;
pub mod graph;
pub mod outbox;
pub mod settings;
pub mod transport;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::StreamExt;
use lettre::Address;

use crate::rules::Report;
pub use settings::{MailSettings, MailWhen, Transport, Via};

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
    /// Owners not mailed because nothing changed, or nothing needs action
    /// (`--mail-when changed|action`).
    pub unchanged: usize,
    /// Clusters whose owner value cannot receive mail.
    pub unroutable: usize,
    /// Recipients skipped because an earlier attempt of this run id mailed them.
    pub already_sent: usize,
    /// Sent, but still in `outbox/` (recorded in its journal): the exit is not 0.
    pub unmarked: usize,
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

/// This run's messages, written to `<out>/outbox/` (each fsynced) and not yet sent.
pub struct Prepared {
    pub delivery: Delivery,
    outgoing: Vec<Outgoing>,
    started: Instant,
}

impl Prepared {
    /// Messages in the outbox waiting to be sent.
    pub fn messages(&self) -> usize {
        self.outgoing.len()
    }
}

/// Composes this run's messages and writes each to the outbox; `skip` says which
/// recipients already have theirs (accepted for this run id by an earlier attempt).
/// Never fails: problems are logged and counted.
pub fn prepare(
    report: &Report,
    out_dir: &Path,
    s: &MailSettings,
    skip: &(dyn Fn(&Address) -> bool + Sync),
) -> Prepared {
    let mut d = Delivery::default();
    let started = Instant::now();
    if !s.enabled {
        tracing::info!("mail: disabled (--no-email)");
        return Prepared {
            delivery: d,
            outgoing: vec![],
            started,
        };
    }
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
    // The weekly digest: every owner on that day, whatever changed.
    let digest_day = s.digest == Some(chrono::Datelike::weekday(&report.generated_at));
    // Who gets a message; each is composed, written to the outbox and dropped in
    // turn, so a thousand owners' messages are never all in memory.
    let mut recipients: Vec<(&Address, Option<&compose::OwnerPlan>)> = Vec::new();
    for o in &plan.owners {
        let due = match s.when {
            MailWhen::Always => true,
            _ if digest_day => true,
            MailWhen::Changed => narrower.changed_for(&o.cluster_ids),
            MailWhen::Action => {
                narrower.changed_for(&o.cluster_ids) || narrower.needs_action(&o.cluster_ids)
            }
        };
        if !due {
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
    // Admins: under `changed`, when a finding changed or a report file was not
    // written (an unroutable owner alone is logged, and mailed with the next change);
    // under `action` also when there is a finding or an unroutable owner to fix.
    let admins_due = match s.when {
        MailWhen::Always => true,
        MailWhen::Changed => !report.output_errors.is_empty() || narrower.changed_for(&all_ids),
        MailWhen::Action => {
            !report.output_errors.is_empty()
                || !plan.unroutable.is_empty()
                || narrower.changed_for(&all_ids)
                || narrower.needs_action(&all_ids)
        }
    };
    drop(all_ids);
    if admins_due {
        recipients.extend(s.admins.iter().map(|a| (a, None)));
    }
    let before = recipients.len();
    recipients.retain(|(to, _)| !skip(to));
    d.already_sent = before - recipients.len();
    if d.already_sent > 0 {
        tracing::info!(
            already_sent = d.already_sent,
            "mail: recipients already mailed for this run id (a retry) are not mailed again"
        );
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
                Some(o) => compose::owner_message(&narrower, o, &s.from, s.csv_excel, s.lang),
                None => compose::admin_message(
                    report,
                    &plan,
                    to,
                    &s.from,
                    out_dir,
                    (s.csv_excel, s.lang),
                    s.report_links.as_ref(),
                ),
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
    Prepared {
        delivery: d,
        outgoing,
        started,
    }
}

/// Sends what [`prepare`] wrote (with SMTP); `accepted` is told of every message the
/// server accepted (the mail ledger records it). Never fails.
pub async fn send_prepared(
    p: Prepared,
    out_dir: &Path,
    s: &MailSettings,
    accepted: &(dyn Fn(&Path, &Address) + Sync),
) -> Delivery {
    let Prepared {
        delivery: mut d,
        outgoing,
        started,
    } = p;
    if !s.enabled {
        return d;
    }
    let outbox_dir = out_dir.join(outbox::OUTBOX);
    match &s.transport {
        Transport::Outbox => {
            tracing::info!(
                written = d.written,
                unroutable = d.unroutable,
                unchanged = d.unchanged,
                outbox = %outbox_dir.display(),
                "mail: messages written to the outbox, not sent (no --smtp, or --mail-via outbox)"
            );
        }
        Transport::Smtp(_) | Transport::Graph(_) => {
            let r = send_all(outgoing, out_dir, s, accepted).await;
            d.sent = r.sent;
            d.undelivered += r.failed;
            d.unmarked = r.unmarked;
        }
    }
    finish_log(&d, out_dir, started, s);
    d
}

/// Sends the outbox of an earlier run whose history was committed but whose mail was
/// interrupted (a crash, SIGKILL, a failed SMTP server); `done_files` were accepted
/// already (recorded in the ledger) and are not sent again.
pub async fn send_leftovers(
    dir: &Path,
    s: &MailSettings,
    done_files: &std::collections::BTreeSet<String>,
    accepted: &(dyn Fn(&Path, &Address) + Sync),
) -> anyhow::Result<Delivery> {
    send_outbox(dir, s, done_files, accepted, true).await
}

/// Sends `<dir>/outbox/` but `done_files`; with `quiet_when_empty` an empty outbox
/// is neither sent nor logged.
async fn send_outbox(
    dir: &Path,
    s: &MailSettings,
    done_files: &std::collections::BTreeSet<String>,
    accepted: &(dyn Fn(&Path, &Address) + Sync),
    quiet_when_empty: bool,
) -> anyhow::Result<Delivery> {
    let started = Instant::now();
    let mut d = Delivery::default();
    let outgoing = read_outbox(dir, s, done_files, &mut d)?;
    d.written = outgoing.len();
    if quiet_when_empty && outgoing.is_empty() {
        return Ok(d);
    }
    let r = send_all(outgoing, dir, s, accepted).await;
    d.sent = r.sent;
    d.undelivered += r.failed;
    d.unmarked = r.unmarked;
    finish_log(&d, dir, started, s);
    Ok(d)
}

/// The messages waiting in `<dir>/outbox/`, each checked against the mail policy.
fn read_outbox(
    dir: &Path,
    s: &MailSettings,
    done_files: &std::collections::BTreeSet<String>,
    d: &mut Delivery,
) -> anyhow::Result<Vec<Outgoing>> {
    let mut outgoing = Vec::new();
    for path in outbox::pending(dir)? {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        if done_files.contains(&name) {
            // Accepted before, but could not be moved out of the outbox: now it can.
            if let Err(e) = outbox::mark_sent(&path) {
                tracing::warn!(file = %name, error = %crate::exit::render_error(&e), "mail: already sent (ledger), still not movable to sent/");
            }
            continue;
        }
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
    Ok(outgoing)
}

/// Sends what waits in `<dir>/outbox/` and moves what succeeds to `<dir>/sent/`.
/// Holds `<dir>/.lock` so two resends never send the same message twice.
pub async fn resend(dir: &Path, s: &MailSettings, lock_wait: Duration) -> anyhow::Result<Delivery> {
    if !s.transport.sends() {
        anyhow::bail!(
            "resend needs a way to send: give --smtp URL (or [mail] smtp), or --mail-via graph with --mail-from"
        );
    }
    if !s.enabled {
        anyhow::bail!("resend with mail disabled (--no-email or [mail] enabled = false)");
    }
    let _lock = crate::state::FolderLock::acquire(dir, lock_wait, "output folder")?;
    send_outbox(dir, s, &Default::default(), &|_, _| {}, false).await
}

/// What [`send_all`] did.
struct SendResult {
    sent: usize,
    failed: usize,
    /// Accepted, but left recognisable only by the `.accepted` journal.
    unmarked: usize,
}

/// What sends: an SMTP connection pool or a Graph client, set up once per delivery.
enum Sender<'a> {
    Smtp {
        smtp: transport::Smtp,
        retry: transport::Retry<'a>,
        from: Address,
    },
    Graph(graph::GraphSender),
}

impl Sender<'_> {
    async fn connect<'s>(s: &'s MailSettings, dir: &Path) -> anyhow::Result<Sender<'s>> {
        match &s.transport {
            Transport::Smtp(t) => Ok(Sender::Smtp {
                smtp: transport::build(t, s.timeout, CONCURRENCY as u32)?,
                retry: transport::Retry {
                    retries: s.retries,
                    base: s.backoff,
                    secret: t.password.as_ref(),
                },
                from: s.from.email.clone(),
            }),
            Transport::Graph(g) => Ok(Sender::Graph(
                graph::GraphSender::connect(g, dir, s.retries, s.backoff).await?,
            )),
            Transport::Outbox => anyhow::bail!("nothing to send with: messages stay in the outbox"),
        }
    }

    /// Sends one message; `Ok(retries)` once the server accepted it.
    async fn send(&self, bytes: &[u8], to: &Address, label: &str) -> Result<u32, String> {
        match self {
            Sender::Smtp { smtp, retry, from } => {
                transport::send(smtp, (from, to), bytes, retry, label).await
            }
            Sender::Graph(g) => g.send(bytes, to, label).await.map(|()| 0),
        }
    }
}

async fn send_all(
    outgoing: Vec<Outgoing>,
    dir: &Path,
    s: &MailSettings,
    accepted: &(dyn Fn(&Path, &Address) + Sync),
) -> SendResult {
    let failed_all = |n| SendResult {
        sent: 0,
        failed: n,
        unmarked: 0,
    };
    let server = s.transport.display();
    let sender = match Sender::connect(s, dir).await {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(server = %server, error = %crate::exit::render_error(&e), "mail: could not set up sending; every message stays in the outbox");
            return failed_all(outgoing.len());
        }
    };
    // (sent, unmarked)
    let results: Vec<(bool, bool)> = futures::stream::iter(outgoing)
        .map(|o| {
            let sender = &sender;
            let server = &server;
            async move {
                let label = o
                    .path
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default();
                let sent = match std::fs::read(&o.path) {
                    Ok(bytes) => sender.send(&bytes, &o.to, &label).await,
                    Err(e) => Err(format!("reading {}: {e}", o.path.display())),
                };
                match sent {
                    Ok(retries) => {
                        accepted(&o.path, &o.to);
                        match outbox::mark_sent(&o.path) {
                            Ok(_) => {
                                tracing::debug!(file = %label, retries, "mail: sent");
                                (true, false)
                            }
                            Err(e) => {
                                // Sent, but still in outbox/: recorded in the journal so
                                // no resend sends it again; the exit says so.
                                let journal = outbox::journal_accepted(&o.path);
                                tracing::error!(
                                    file = %label,
                                    error = %crate::exit::render_error(&e),
                                    journal = journal.as_ref().map(|p| p.display().to_string()).unwrap_or_else(crate::exit::render_error),
                                    "mail: sent but could not be moved to sent/"
                                );
                                (true, true)
                            }
                        }
                    }
                    Err(e) => {
                        tracing::error!(file = %label, server = %server, error = %e, "mail: not delivered");
                        (false, false)
                    }
                }
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    if let Sender::Graph(g) = &sender {
        let (requests, retries, throttled_429) = g.counts();
        tracing::info!(
            requests,
            retries,
            throttled_429,
            "mail: Microsoft Graph sendMail calls"
        );
    }
    let sent = results.iter().filter(|(ok, _)| *ok).count();
    SendResult {
        sent,
        failed: results.len() - sent,
        unmarked: results.iter().filter(|(_, u)| *u).count(),
    }
}

fn finish_log(d: &Delivery, dir: &Path, started: Instant, s: &MailSettings) {
    let ms = started.elapsed().as_millis() as u64;
    let server = s.transport.display();
    if d.unmarked > 0 {
        tracing::error!(
            unmarked = d.unmarked,
            "mail: {} message(s) were sent but could not be moved to sent/; they are listed in {} and are not sent again",
            d.unmarked,
            dir.join(outbox::OUTBOX).join(outbox::JOURNAL).display()
        );
    }
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
    } else if s.transport.sends() {
        tracing::info!(sent = d.sent, unroutable = d.unroutable, unchanged = d.unchanged, server = %server, elapsed_ms = ms, "mail: all messages sent");
    }
}

/// `aks-identity-audit resend DIR` with the resolved mail settings (the `[mail]` table
/// of the configuration with the flags on top); exit 0 when everything went out, 3
/// when something is still in the outbox.
pub fn resend_command(
    dir: &Path,
    settings: &MailSettings,
    lock_wait: Duration,
) -> anyhow::Result<crate::exit::Exit> {
    let rt = tokio::runtime::Runtime::new()?;
    let d = rt.block_on(resend(dir, settings, lock_wait))?;
    println!("sent {}, undelivered {}", d.sent, d.undelivered);
    Ok(if d.undelivered > 0 || d.unmarked > 0 {
        crate::exit::Exit::Gaps
    } else {
        crate::exit::Exit::Ok
    })
}
