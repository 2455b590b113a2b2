//! `paasd`: the one binary of the platform. `paasd dev` runs every service in one process on
//! the embedded defaults (SQLite, in-process bus, filesystem blobstore); `paasd run` runs any
//! subset joined to the others by NATS and PostgreSQL; `paasd stack build` builds the stack.
//!
//! This binary only parses configuration, sets up tracing, builds the services asked for and
//! waits for a signal. It must never contain service logic.

mod compose;
mod config;
mod host;
mod secrets;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::PaasdConfig;

#[derive(Parser)]
#[command(name = "paasd", version, about = "The paas platform daemon")]
struct Cli {
    /// Log lines as text or JSON (overrides `[telemetry] json`).
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Load the configuration and apply `--log-format` over it.
fn load(
    file: Option<&std::path::Path>,
    data_dir: Option<PathBuf>,
    format: Option<LogFormat>,
) -> Result<PaasdConfig, kit::config::ConfigError> {
    let mut cfg = PaasdConfig::load(file, data_dir)?;
    if let Some(f) = format {
        cfg.telemetry.json = matches!(f, LogFormat::Json);
    }
    Ok(cfg)
}

/// The specs of the stacks named (all known stacks when none is), or which names are unknown.
fn stack_specs(names: &[String]) -> anyhow::Result<Vec<stack::StackSpec>> {
    if names.is_empty() {
        return Ok(stack::STACKS.iter().filter_map(|n| stack::StackSpec::named(n)).collect());
    }
    names
        .iter()
        .map(|n| {
            stack::StackSpec::named(n).ok_or_else(|| {
                anyhow::anyhow!(
                    "unknown stack '{n}': known stacks are {}",
                    stack::STACKS.join(", ")
                )
            })
        })
        .collect()
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole platform in one process (SQLite, in-process bus).
    Dev {
        /// Where all state lives (default ~/.local/share/paas, or PAAS_DATA_DIR).
        #[arg(long, env = "PAAS_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// Optional TOML file with overrides.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Never install missing host packages (runc, nftables, debootstrap) with apt-get;
        /// without them apps run as plain processes.
        #[arg(long, env = "PAAS_DEV_NO_INSTALL")]
        no_install: bool,
    },
    /// Run some services, joined to the rest over NATS.
    Run {
        /// Comma-separated: api,stager,scheduler,cell,router,logs.
        #[arg(long, value_delimiter = ',')]
        services: Vec<String>,
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long, env = "PAAS_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Manage the root filesystem apps run on.
    Stack {
        #[command(subcommand)]
        command: StackCommand,
    },
    /// Check a configuration file and print the effective configuration (secrets hidden).
    CheckConfig {
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum StackCommand {
    /// Build the stacks with debootstrap (idempotent: a built one is kept; needs root).
    Build {
        #[arg(long, env = "PAAS_DATA_DIR")]
        data_dir: Option<PathBuf>,
        #[arg(long)]
        config: Option<PathBuf>,
        /// The stack to build (repeatable); all of them (bookworm, trixie) when not given.
        #[arg(long = "stack", short = 's')]
        stacks: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // What paasd writes for apps (droplets, stacks, instance directories, builders) must be
    // readable by the apps' user inside and outside containers, whatever umask the operator's
    // shell has; files that hold secrets are written 0600 explicitly.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("paasd: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("paasd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let format = cli.log_format;
    match cli.command {
        Command::Dev { data_dir, config, no_install } => {
            let cfg = load(config.as_deref(), data_dir, format)?;
            compose::dev(cfg, !no_install).await
        }
        Command::Run { services, config, data_dir } => {
            let mut cfg = load(config.as_deref(), data_dir, format)?;
            if !services.is_empty() {
                cfg.services = services;
            }
            for s in &cfg.services {
                s.parse::<config::ServiceName>()
                    .map_err(|m| anyhow::anyhow!("invalid configuration: services: {m}"))?;
            }
            if cfg.services.is_empty() {
                anyhow::bail!("invalid configuration: services: name at least one (--services api,router,...)");
            }
            compose::run(cfg).await
        }
        Command::Stack { command: StackCommand::Build { data_dir, config, stacks } } => {
            let specs = stack_specs(&stacks)?;
            let cfg = load(config.as_deref(), data_dir, format)?;
            kit::telemetry::init(&cfg.telemetry, Vec::new());
            let dir = cfg.data_dir.join("stacks");
            for spec in specs {
                let rootfs = stack::ensure(&dir, &spec).await?;
                println!("stack {} ready at {}", spec.name, rootfs.display());
            }
            Ok(())
        }
        Command::CheckConfig { config } => {
            let cfg = load(config.as_deref(), None, format)?;
            let mut shown = toml::Value::try_from(&cfg)?;
            secrets::hide(&mut shown);
            println!("{}", toml::to_string_pretty(&shown)?);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_build_builds_every_stack_or_the_ones_named() {
        let names = |v: Vec<stack::StackSpec>| v.into_iter().map(|s| s.name).collect::<Vec<_>>();
        assert_eq!(names(stack_specs(&[]).expect("all")), ["bookworm", "trixie"]);
        assert_eq!(names(stack_specs(&["trixie".into()]).expect("one")), ["trixie"]);
        let e = stack_specs(&["cflinuxfs4".into()]).expect_err("unknown").to_string();
        assert!(e.contains("unknown stack 'cflinuxfs4'") && e.contains("bookworm, trixie"), "{e}");
    }
}
