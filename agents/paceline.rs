//! `paceline` — the operator's tool (install the agents, status, check, switchover), and
//! the agents that call EC2: run under an agent's name (the links `paceline
//! install` makes, `src/install.rs`), it is that agent (a multi-call binary). The other
//! agents are links to `paceline-core` (agents/paceline-core.rs), which has no AWS SDK.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use paceline::{install, registry};

#[derive(Parser)]
#[command(name = "paceline", version, about = "Pacemaker agents for highly available PostgreSQL")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    // The help texts that name agents are built from src/registry.rs's list (install_help
    // and the others below), never written by hand: they cannot drift from what is installed.
    #[command(about = install::install_about(), long_about = install::install_help())]
    Install {
        /// Directory holding paceline and paceline-core side by side, or an installed
        /// usr/sbin (default: the directory of this executable).
        #[arg(long)]
        from: Option<PathBuf>,
        /// Install under this root instead of / (for packaging).
        #[arg(long, default_value = "/")]
        root: PathBuf,
    },
    #[command(about = "Remove what install put there", long_about = install::uninstall_help())]
    Uninstall {
        /// Remove from under this root instead of /.
        #[arg(long, default_value = "/")]
        root: PathBuf,
    },
    /// The cluster and every PostgreSQL in it, on one screen (run on any node, as root).
    Status {
        /// One JSON document instead of the screen (for scripts and monitoring).
        #[arg(long)]
        json: bool,
        /// Refresh in place until interrupted.
        #[arg(long)]
        watch: bool,
        /// Seconds between refreshes with --watch.
        #[arg(long, default_value_t = 1.0)]
        interval: f64,
    },
    /// Preflight: the cluster configuration, this node's PostgreSQL, the fence devices'
    /// monitor and this node's EC2 permissions (DryRun) against what the agents rely on;
    /// each finding with how to fix it (run on every node before go-live).
    Check {
        /// Check this CIB file (e.g. one built with pcs -f) instead of the running cluster
        /// (no PostgreSQL, no fence device monitor; EC2 permissions are still asked).
        #[arg(long)]
        cib: Option<PathBuf>,
    },
    /// Move the primary role to a standby (the best one, or --to): a clean demote, the
    /// promotion, the move's constraint removed; prints what the cluster saw.
    Switchover {
        /// The standby to promote (default: the one with the highest promotion score).
        #[arg(long)]
        to: Option<String>,
        /// Give up (and remove the constraint) after this many seconds.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
    },
    /// Promote a standby when the primary is not healthy (refused while it is).
    Failover {
        #[arg(long)]
        to: Option<String>,
        #[arg(long, default_value_t = 120)]
        timeout: u64,
    },
    /// Rebuild this node's standby from the primary (pg_basebackup), as patronictl reinit
    /// does: Pacemaker stops it here, the old data directory is moved aside (never
    /// deleted), the copy is made, Pacemaker starts it again; waits until it streams. Run
    /// on the node to rebuild; refused on the primary or while there is none.
    Reinit {
        /// Do it without asking (scripts).
        #[arg(long)]
        force: bool,
        /// Give up after this many seconds (the base backup included).
        #[arg(long, default_value_t = 3600)]
        timeout: u64,
    },
    /// One line per change of primary (switchover, failover, recovery in place), oldest
    /// first, as the agents recorded it: timeline, old and new primary, when writes came
    /// back, how long they were down, what was lost, how the old primary came back, why.
    History {
        /// The pgsqlms resource (needed only when this node keeps records of several).
        #[arg(long)]
        resource: Option<String>,
        /// JSON instead of the table.
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        show: Option<HistoryShow>,
    },
    #[command(about = "Write the man pages: paceline's, and one per agent", long_about = man_help())]
    Man {
        /// Directory to write them to (man7/ and man8/ below it).
        #[arg(long)]
        out: PathBuf,
    },
    /// Print a shell completion script for paceline.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the parameter table of an agent as Markdown (used for the docs).
    Params {
        /// Agent name.
        #[arg(value_parser = clap::builder::PossibleValuesParser::new(registry::AGENTS.iter().map(|a| a.name)))]
        agent: String,
    },
    /// Every agent, one a line: name, kind, installed path, the executable it is a link
    /// to, man page (relative to the man directory). For scripts (tests/package.sh).
    #[command(hide = true)]
    Agents,
}

/// `paceline history show`.
#[derive(clap::Subcommand, Debug)]
enum HistoryShow {
    /// The whole record of one change: every step with its time and node, every
    /// candidate's timeline, LSN, lag and score at the decision, the synchronous set, what
    /// the old primary had past the new timeline's start.
    Show {
        /// The record's id: the timeline the promotion started.
        timeline: u32,
        #[arg(long)]
        json: bool,
    },
}

/// `paceline man`'s help: the pages it writes, each agent's from the list of agents.
fn man_help() -> String {
    let pages: Vec<String> = registry::AGENTS
        .iter()
        .map(|a| {
            let (section, page) = a.man_page();
            format!("{page}({section})")
        })
        .collect();
    format!(
        "Write the man pages: paceline(8), paceline-<command>(8), and one per agent: {} — all from the definitions that drive the meta-data",
        pages.join(", ")
    )
}

/// Run agent `name`. Its own links point here for the agents that call EC2; the others
/// are links to paceline-core (src/install.rs), but run here too, should a link say so.
fn run_agent(name: &str) -> ! {
    match paceline::agents::entry(name) {
        Some(agent) => (agent.main)(),
        None => {
            eprintln!("paceline: no agent {name}");
            std::process::exit(5)
        }
    }
}

fn main() -> Result<()> {
    if let Some(agent) = std::env::args_os().next().as_deref().and_then(registry::named) {
        run_agent(agent.name)
    }
    match Cli::parse().command {
        Command::Install { from, root } => {
            let from = match from {
                Some(f) => f,
                None => install::own_dir()?,
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
        Command::Status { json, watch, interval } => return status(json, watch, interval),
        Command::Man { out } => {
            for p in man_pages(&out)? {
                println!("wrote {}", p.display());
            }
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "paceline", &mut std::io::stdout());
        }
        Command::Check { cib } => return check(cib),
        Command::Switchover { to, timeout } => return move_primary(to, false, timeout),
        Command::Failover { to, timeout } => return move_primary(to, true, timeout),
        Command::Reinit { force, timeout } => return reinit(force, timeout),
        Command::History { resource, json, show } => {
            let (tl, json) = match show {
                Some(HistoryShow::Show { timeline, json: j }) => (Some(timeline), json || j),
                None => (None, json),
            };
            match paceline::history::command::run(resource.as_deref(), tl, json) {
                Ok(text) => print!("{text}"),
                Err(e) => {
                    eprintln!("paceline history: {e:#}");
                    std::process::exit(1)
                }
            }
        }
        Command::Params { agent } => {
            let entry = paceline::agents::entry(&agent).with_context(|| format!("no agent {agent}"))?;
            print!("{}", entry.doc.markdown_table());
        }
        Command::Agents => {
            for a in registry::AGENTS {
                let (section, page) = a.man_page();
                let b = a.binary();
                println!("{} {} {} /{}/{} man{section}/{page}.{section}", a.name, a.kind.label(), install::target(Path::new("/"), a).display(), b.dir, b.name);
            }
        }
    }
    Ok(())
}

/// `paceline status`: exit 0 when healthy, 1 when something is wrong, 2 when the cluster
/// cannot be asked at all (as `crm_mon` exits non-zero without a cluster).
fn status(json: bool, watch: bool, interval: f64) -> Result<()> {
    if !(0.1..=3600.0).contains(&interval) {
        anyhow::bail!("--interval must be between 0.1 and 3600 seconds, not {interval}");
    }
    loop {
        let st = match paceline::status::gather() {
            Ok(st) => st,
            Err(e) => cannot_ask("status", &e, 2),
        };
        let out = if json { format!("{:#}\n", st.to_json()) } else { paceline::status::render::text(&st) };
        if !watch {
            print!("{out}");
            std::process::exit(if st.findings.is_empty() { 0 } else { 1 });
        }
        // Home, the screen, then clear what the previous, longer screen left below.
        print!("\x1b[H{}\x1b[J", out.replace('\n', "\x1b[K\n"));
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        std::thread::sleep(std::time::Duration::from_secs_f64(interval));
    }
}

/// `paceline reinit`: asks first (the node's data directory is replaced), unless --force.
fn reinit(force: bool, timeout: u64) -> Result<()> {
    if !force {
        use std::io::{BufRead, IsTerminal, Write};
        if !std::io::stdin().is_terminal() {
            eprintln!("paceline reinit: not a terminal to ask on; run it with --force");
            std::process::exit(1);
        }
        print!("Rebuild this node's PostgreSQL from the primary (its data directory is moved aside)? Type yes: ");
        let _ = std::io::stdout().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        if answer.trim() != "yes" {
            eprintln!("paceline reinit: not done");
            std::process::exit(1);
        }
    }
    match paceline::reinit::run(std::time::Duration::from_secs(timeout)) {
        Ok(said) => {
            println!("{said}");
            Ok(())
        }
        Err(e) => {
            eprintln!("paceline reinit: {e:#}");
            std::process::exit(1)
        }
    }
}

/// `paceline switchover` / `failover`: the outcome on stdout, or one line saying why not on
/// stderr and exit status 1 (a refusal is an answer, not a crash: no backtrace).
fn move_primary(to: Option<String>, failover: bool, timeout: u64) -> Result<()> {
    match paceline::switchover::run(to.as_deref(), failover, std::time::Duration::from_secs(timeout)) {
        Ok(out) => {
            print!("{out}");
            Ok(())
        }
        Err(e) => {
            eprintln!("paceline: {e:#}");
            if !nix::unistd::geteuid().is_root() {
                eprintln!("  (paceline asks Pacemaker and PostgreSQL as root: run it as root)");
            }
            std::process::exit(1);
        }
    }
}

/// The cluster could not be asked at all (no cluster here, Pacemaker down, not root): say
/// so in full — the likely fix first, the tool's own words after — and exit with `code`.
fn cannot_ask(what: &str, e: &paceline::ocf::OcfError, code: i32) -> ! {
    eprintln!("paceline {what}: {}", e.chain());
    if !nix::unistd::geteuid().is_root() {
        eprintln!("  (paceline asks Pacemaker as root, as crm_mon and cibadmin need: run it as root)");
    }
    std::process::exit(code);
}

/// `paceline man --out DIR`: every page of the package.
fn man_pages(out: &std::path::Path) -> Result<Vec<PathBuf>> {
    use clap::CommandFactory;
    let (man7, man8) = (out.join("man7"), out.join("man8"));
    for d in [&man7, &man8] {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let mut written = Vec::new();
    // paceline(8) and paceline-<command>(8): clap_mangen, from the definition above.
    let root = Cli::command().name("paceline");
    let mut pages = vec![("paceline".to_owned(), root.clone())];
    for sub in root.get_subcommands().filter(|s| s.get_name() != "help" && !s.is_hide_set()) {
        let name = format!("paceline-{}", sub.get_name());
        // (clap keeps static names; a page name lives as long as this short-lived command)
        let display: &'static str = Box::leak(name.clone().into_boxed_str());
        pages.push((name, sub.clone().name(display)));
    }
    for (name, cmd) in pages {
        let mut buf = Vec::new();
        clap_mangen::Man::new(cmd).section("8").render(&mut buf).with_context(|| format!("rendering {name}(8)"))?;
        let p = man8.join(format!("{name}.8"));
        std::fs::write(&p, buf).with_context(|| format!("writing {}", p.display()))?;
        written.push(p);
    }
    for a in registry::AGENTS {
        let doc = paceline::agents::entry(a.name).with_context(|| format!("no entry for agent {}", a.name))?.doc;
        let (section, page) = a.man_page();
        let p = out.join(format!("man{section}")).join(format!("{page}.{section}"));
        std::fs::write(&p, doc.manpage()).with_context(|| format!("writing {}", p.display()))?;
        written.push(p);
    }
    written.sort();
    Ok(written)
}

/// `paceline check`: the findings, worst first; exit 0 none, 1 warnings only, 2 critical
/// ones, 3 when it could not look at all.
fn check(cib: Option<PathBuf>) -> Result<()> {
    use paceline::findings::Severity;
    let findings = match paceline::check::run(cib.as_deref()) {
        Ok(f) => f,
        Err(e) => cannot_ask("check", &e, 3),
    };
    for f in &findings {
        println!("{}: {}\n    fix: {}", f.severity.label(), f.what, f.hint);
    }
    let worst = findings.iter().map(|f| f.severity).max();
    println!(
        "{}",
        match worst {
            None => "check: nothing to fix".to_owned(),
            Some(_) => format!("check: {} finding{}", findings.len(), if findings.len() == 1 { "" } else { "s" }),
        }
    );
    std::process::exit(match worst {
        None => 0,
        Some(Severity::Warning) => 1,
        Some(Severity::Critical) => 2,
    });
}
