//! `paceline` — the operator's tool: install the agents, and (later) run the lab and
//! show the cluster's status.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use paceline::install;

#[derive(Parser)]
#[command(name = "paceline", version, about = "Pacemaker agents for highly available PostgreSQL")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install every agent: OCF agents in /usr/lib/ocf/resource.d/paceline/, fence agents in /usr/sbin/.
    Install {
        /// Directory holding the built agents (default: the directory of this executable).
        #[arg(long)]
        from: Option<PathBuf>,
        /// Install under this root instead of / (for packaging).
        #[arg(long, default_value = "/")]
        root: PathBuf,
    },
    /// Remove every installed agent.
    Uninstall {
        #[arg(long, default_value = "/")]
        root: PathBuf,
    },
    /// Print the parameter table of an agent as Markdown (used for the docs).
    Params {
        /// Agent name, e.g. IPaddr2.
        agent: String,
    },
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Install { from, root } => {
            let from = match from {
                Some(f) => f,
                None => std::env::current_exe()?.parent().context("executable has no directory")?.to_path_buf(),
            };
            for p in install::install(&from, &root).with_context(|| format!("installing from {}", from.display()))? {
                println!("installed {}", p.display());
            }
        }
        Command::Uninstall { root } => {
            for p in install::uninstall(&root)? {
                println!("removed {}", p.display());
            }
        }
        Command::Params { agent } => {
            let table = match agent.as_str() {
                "IPaddr2" => paceline::agents::ipaddr2::PARAMS,
                other => anyhow::bail!("unknown agent '{other}' (known: IPaddr2)"),
            };
            print!("{}", paceline::ocf::params::markdown_table(table));
        }
    }
    Ok(())
}
