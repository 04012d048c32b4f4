//! The command line: subcommands and their dispatch.
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::RunArgs;
use crate::exit::Exit;
use crate::rules::Baseline;

#[derive(Debug, Parser)]
#[command(
    name = "aks-identity-audit",
    version,
    about = "Audit the identities of AKS clusters: service principals, kubelet migration, documented roles"
)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value = "plain")]
    pub log_format: LogFormat,
    /// Log level (error, warn, info, debug, trace).
    #[arg(long, global = true, default_value = "info", env = "AKS_AUDIT_LOG")]
    pub log_level: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogFormat {
    Plain,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one audit and write reports.
    Run(RunArgs),
    /// Run audits on a cron schedule, as a long-lived process.
    Schedule {
        #[command(flatten)]
        run: RunArgs,
        #[command(flatten)]
        schedule: crate::config::schedule::ScheduleArgs,
    },
    /// The Azure emulator: serve a tenant over HTTPS, or generate synthetic tenants.
    #[cfg(feature = "emulator")]
    Emulator {
        #[command(subcommand)]
        command: azure_emulator::EmulatorCommand,
    },
    /// Not in this build (built without the cargo feature `emulator`): refused.
    #[cfg(not(feature = "emulator"))]
    #[command(hide = true, disable_help_flag = true)]
    Emulator {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
        args: Vec<String>,
    },
    /// Print the rule catalogue.
    Rules {
        /// Language of the titles and rationales: en or ja.
        #[arg(long, value_name = "LANG", default_value = "en")]
        lang: crate::i18n::Lang,
    },
    /// Print the next fire times of a Kubernetes CronJob schedule.
    CheckCron {
        /// A 5-field schedule, e.g. "0 6 * * 1".
        expr: String,
        /// IANA timezone.
        #[arg(long, default_value = "UTC")]
        timezone: String,
    },
    /// Print the embedded baselines and the roles each documents.
    Baselines {
        /// Print what changed from baseline A to baseline B (embedded names or TOML files).
        #[arg(long, num_args = 2, value_names = ["A", "B"])]
        diff: Option<Vec<String>>,
    },
    /// Send the messages left in DIR/outbox/ by a failed send; move what succeeds to DIR/sent/.
    Resend {
        /// The run's output folder (holding outbox/).
        dir: PathBuf,
        /// TOML configuration file whose [mail] section applies; flags override it.
        #[arg(long, value_name = "FILE", env = "AKS_AUDIT_CONFIG")]
        config: Option<PathBuf>,
        #[command(flatten)]
        mail: crate::config::mail::MailArgs,
        /// The credential, Graph endpoint and CA of `--mail-via graph`.
        #[command(flatten)]
        azure: crate::config::azure::AzureArgs,
    },
    /// Validate a configuration file and exit.
    CheckConfig {
        /// The TOML configuration file.
        file: PathBuf,
    },
}

fn init_logging(format: LogFormat, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Each record goes out with every known secret masked (crate::redact).
        .with_writer(crate::redact::Stderr)
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        )
        .with_target(false);
    let _ = match format {
        // Control characters in names and messages escaped: one event, one inert line.
        LogFormat::Plain => builder.fmt_fields(crate::logfmt::EscapedFields).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Prints a fatal error: one line `error: …` on stderr, or with `--log-format json`
/// one JSON object like every other log line.
pub fn report_fatal(format: LogFormat, err: &anyhow::Error) {
    let text = crate::exit::render_error(err);
    match format {
        LogFormat::Plain => eprintln!("error: {text}"),
        LogFormat::Json => eprintln!(
            "{}",
            crate::redact::escape_c1(&serde_json::json!({
                "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                "level": "ERROR",
                "message": "fatal error",
                "error": text,
                "exit_code": crate::exit::Exit::Error.code(),
            })
            .to_string())
        ),
    }
}

/// Writes `text` to standard output; a reader that went away (`| head`) is not an
/// error (the text was for it), any other write error is.
fn write_out(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// Runs a parsed command line; returns the process exit code.
pub fn dispatch(cli: Cli) -> anyhow::Result<Exit> {
    init_logging(cli.log_format, &cli.log_level);
    match cli.command {
        Command::Run(args) => {
            let settings = crate::config::resolve(&args)?;
            let rt = tokio::runtime::Runtime::new()?;
            let res = rt.block_on(crate::run::run(&settings))?;
            println!("{}", res.out_dir.display());
            if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
                eprintln!("{}", crate::run::human_summary(&res));
            }
            Ok(res.exit_code)
        }
        Command::Schedule { run, schedule } => {
            // Validate once at start; each run re-reads the configuration.
            let (first, opts) = crate::config::resolve_schedule(&run, &schedule)?;
            crate::run::check_source(&first)?;
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(crate::schedule::run_schedule(opts, |_scheduled| {
                let (run, schedule) = (run.clone(), schedule.clone());
                async move {
                    // With the schedule's flags: a file that leaves the cron to --cron
                    // is as valid for each run as it was at start.
                    let (settings, _) = crate::config::resolve_schedule(&run, &schedule)?;
                    let res = crate::run::run(&settings).await?;
                    Ok(res.exit_code.code())
                }
            }))?;
            Ok(Exit::Ok)
        }
        #[cfg(feature = "emulator")]
        Command::Emulator { command } => {
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(azure_emulator::run_cli(command))?;
            Ok(Exit::Ok)
        }
        #[cfg(not(feature = "emulator"))]
        Command::Emulator { .. } => Err(crate::run::not_in_this_build("the `emulator` command")),
        Command::CheckCron { expr, timezone } => {
            write_out(&crate::schedule::check_cron_cli(&expr, &timezone)?)?;
            Ok(Exit::Ok)
        }
        Command::Rules { lang } => {
            write_out(&crate::i18n::render_rules(lang))?;
            Ok(Exit::Ok)
        }
        Command::Baselines { diff: Some(pair) } => {
            let (a, b) = (Baseline::load(&pair[0])?, Baseline::load(&pair[1])?);
            let mut text = format!("{} ({}) -> {} ({})\n", a.name, a.date, b.name, b.date);
            let lines = crate::rules::baseline::diff(&a, &b);
            if lines.is_empty() {
                text.push_str("no difference\n");
            }
            for l in lines {
                text.push_str(&l);
                text.push('\n');
            }
            write_out(&text)?;
            Ok(Exit::Ok)
        }
        Command::Baselines { diff: None } => {
            let mut text = String::new();
            for name in Baseline::embedded_names() {
                let b = Baseline::load(name)?;
                text.push_str(&format!(
                    "{}  {} ({})\n    {}\n",
                    b.name, b.title, b.date, b.source
                ));
                for (ident, roles) in &b.identities {
                    let list: Vec<String> = roles
                        .iter()
                        .map(|r| {
                            format!(
                                "{}{} @ {:?}{}",
                                r.role_name,
                                if r.required { "" } else { " (allowed)" },
                                r.scope,
                                r.when
                                    .map(|w| format!(" when {}", w.as_str()))
                                    .unwrap_or_default()
                            )
                        })
                        .collect();
                    text.push_str(&format!(
                        "    {ident}: {}\n",
                        if list.is_empty() {
                            "none".into()
                        } else {
                            list.join(", ")
                        }
                    ));
                }
            }
            write_out(&text)?;
            Ok(Exit::Ok)
        }
        Command::Resend {
            dir,
            config,
            mail,
            azure,
        } => {
            let (settings, lock_wait) =
                crate::config::resolve_resend(config.as_deref(), &mail, &azure)?;
            crate::mail::resend_command(&dir, &settings, lock_wait)
        }
        Command::CheckConfig { file } => {
            let problems = crate::config::check(&file);
            if problems.is_empty() {
                println!("{}: ok", file.display());
                Ok(Exit::Ok)
            } else {
                eprint!("{}", problems.render());
                Ok(Exit::Error)
            }
        }
    }
}
