//! Azure emulator: a protocol-faithful stand-in for the parts of Azure the
//! aks-identity-audit uses (Resource Graph, ARM subscriptions and agent-pool upgrade
//! profiles, Microsoft Graph applications, Entra and managed-identity token
//! endpoints), served over HTTPS with a CA generated at start.
//!
//! A crate of its own so the audit binary that holds Azure credentials can be built
//! without any HTTP server code (the audit's cargo feature `emulator`). It depends on
//! nothing of the audit.
//!
//! Layout: [`tenant`] holds the rows, [`demo`] the built-in demo tenant's files,
//! [`kql`] evaluates the supported query subset, [`resource_graph`], [`arm`],
//! [`ms_graph`] (Microsoft Graph applications), [`mail`] (Graph `sendMail`) and [`token`] are the HTTP surfaces, [`faults`] parses `--faults`, [`generate`] writes
//! synthetic tenants and [`server`] ties it together.
#![forbid(unsafe_code)]

pub mod arm;
pub mod demo;
pub mod faults;
pub mod generate;
pub mod kql;
pub mod logs_ingestion;
pub mod mail;
pub mod ms_graph;
pub mod resource_graph;
pub mod server;
pub mod tenant;
pub mod tls;
pub mod token;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use faults::Faults;
pub use generate::{generate, GenerateArgs};
pub use server::{start, RunningEmulator, Stats};
pub use tenant::Tenant;

/// Resource Graph query quota: `queries` per `window`, per client (keyed by the
/// bearer token's client id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub queries: u32,
    pub window: Duration,
}

impl Default for Quota {
    /// Resource Graph's documented default: 15 queries per 5-second window.
    fn default() -> Self {
        Quota {
            queries: 15,
            window: Duration::from_secs(5),
        }
    }
}

impl std::str::FromStr for Quota {
    type Err = anyhow::Error;
    /// Parses `N/SECONDS` (e.g. `15/5`). `off` is handled by [`parse_quota`].
    fn from_str(s: &str) -> anyhow::Result<Quota> {
        let (n, secs) = s
            .split_once('/')
            .ok_or_else(|| anyhow::anyhow!("quota must be N/SECONDS or off, got {s:?}"))?;
        let queries: u32 = n
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("quota count {n:?} is not a whole number"))?;
        let secs: u64 = secs.trim().parse().map_err(|_| {
            anyhow::anyhow!("quota window {secs:?} is not a whole number of seconds")
        })?;
        anyhow::ensure!(queries > 0, "quota count must be at least 1");
        anyhow::ensure!(secs > 0, "quota window must be at least 1 second");
        Ok(Quota {
            queries,
            window: Duration::from_secs(secs),
        })
    }
}

/// Parses the `--quota` flag: `off` or `N/SECONDS`.
pub fn parse_quota(s: &str) -> anyhow::Result<Option<Quota>> {
    if s.trim().eq_ignore_ascii_case("off") {
        Ok(None)
    } else {
        s.parse().map(Some)
    }
}

/// Everything the emulator needs to start.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    pub tenant: Tenant,
    pub listen: SocketAddr,
    /// `None` = no quota (headers still sent, with a large remaining count).
    pub quota: Option<Quota>,
    pub faults: Faults,
    /// Secret expected in `x-identity-header` on `/msi/token`; random when `None`.
    pub msi_secret: Option<String>,
    /// Page size of ARM `GET /subscriptions` (`nextLink` paging).
    pub subscriptions_page_size: usize,
}

impl EmulatorConfig {
    /// Loopback on a free port, default quota, no faults.
    pub fn new(tenant: Tenant) -> Self {
        EmulatorConfig {
            tenant,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            quota: Some(Quota::default()),
            faults: Faults::default(),
            msi_secret: None,
            subscriptions_page_size: 100,
        }
    }
}

/// `emulator` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum EmulatorCommand {
    /// Serve a tenant over HTTPS until SIGTERM / ctrl-c.
    Serve(ServeArgs),
    /// Write a reproducible synthetic tenant as an inventory folder.
    Generate(GenerateArgs),
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Inventory folder to serve (clusters.json, role-assignments.json, ...).
    #[arg(long, conflicts_with = "demo", required_unless_present = "demo")]
    pub inventory: Option<PathBuf>,
    /// Serve the built-in demo tenant.
    #[arg(long)]
    pub demo: bool,
    /// Address to listen on (port 0 = any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Write the generated CA certificate (PEM) here.
    #[arg(long)]
    pub ca_out: Option<PathBuf>,
    /// Resource Graph quota: N/SECONDS or off.
    #[arg(long, default_value = "15/5")]
    pub quota: String,
    /// Fault injection, comma-separated (e.g. `429-burst=3,5xx=10,seed=7`).
    #[arg(long, default_value = "")]
    pub faults: String,
    /// Secret the managed-identity endpoint expects in `x-identity-header`.
    #[arg(long)]
    pub msi_secret: Option<String>,
    /// Page size of ARM GET /subscriptions.
    #[arg(long, default_value_t = 100)]
    pub subscriptions_page_size: usize,
}

/// Entry point used by the CLI.
pub async fn run_cli(cmd: EmulatorCommand) -> anyhow::Result<()> {
    match cmd {
        EmulatorCommand::Generate(args) => {
            let out = args.out.clone();
            let summary = tokio::task::spawn_blocking(move || generate(&args)).await??;
            println!(
                "generated {} subscriptions, {} clusters, {} role assignments into {}",
                summary.subscriptions,
                summary.clusters,
                summary.role_assignments,
                out.display()
            );
            Ok(())
        }
        EmulatorCommand::Serve(args) => serve(args).await,
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let quota = parse_quota(&args.quota)?;
    let faults: Faults = args.faults.parse()?;
    let tenant = match (&args.inventory, args.demo) {
        (Some(dir), _) => {
            let dir = dir.clone();
            tokio::task::spawn_blocking(move || Tenant::from_inventory_dir(&dir)).await??
        }
        (None, _) => Tenant::demo(),
    };
    let config = EmulatorConfig {
        tenant,
        listen: args.listen,
        quota,
        faults,
        msi_secret: args.msi_secret.clone(),
        subscriptions_page_size: args.subscriptions_page_size.max(1),
    };
    let emu = start(config).await?;
    let ca = match &args.ca_out {
        Some(path) => {
            std::fs::write(path, &emu.ca_pem)
                .map_err(|e| anyhow::anyhow!("cannot write CA to {}: {e}", path.display()))?;
            path.display().to_string()
        }
        None => "not written; pass --ca-out FILE".to_string(),
    };
    println!("emulator listening on {} (ca: {ca})", emu.url());
    wait_for_shutdown_signal().await;
    let stats = emu.stats();
    emu.shutdown().await;
    eprintln!("emulator stopped: {}", stats.summary());
    Ok(())
}

async fn wait_for_shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_parses() {
        assert_eq!(parse_quota("off").unwrap(), None);
        let q = parse_quota("15/5").unwrap().unwrap();
        assert_eq!(q.queries, 15);
        assert_eq!(q.window, Duration::from_secs(5));
        assert!(parse_quota("15").is_err());
        assert!(parse_quota("0/5").is_err());
        assert!(parse_quota("a/5").is_err());
        assert!(parse_quota("5/0").is_err());
    }
}
