//! `paceline-lab` — the lab: a real Pacemaker + Corosync + PostgreSQL cluster in
//! namespaces on this machine (docs/lab.md), its scenarios, the writer probe and the storm
//! of routing checks that measure them.
//!
//! A binary of its own, run from the build tree and never packaged: a production node runs
//! `paceline` and `paceline-core`, which carry no lab code and no path of the machine they
//! were built on (this one finds tests/lab/lab.sh through the source tree it was built
//! from). The tests and scripts that drive the lab run it beside `paceline`
//! (tests/lab/lab.sh finds it there).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;

#[derive(Parser)]
#[command(name = "paceline-lab", version, about = "The lab: a real Pacemaker + PostgreSQL cluster in namespaces on this machine (docs/lab.md)")]
enum LabVerb {
    /// Build the cluster: bridge, nodes, corosync, pacemaker, PostgreSQL replication.
    Up {
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(2..=3))]
        nodes: u8,
        /// An EC2 lab: a fake EC2 (moto) with one instance per node, an IMDS per node and a
        /// power controller; `config` then creates the EC2 cluster (fencing through
        /// fence_paceline_aws, ocf:paceline:awsvip) from crm-examples/pgsql-ha-ec2.sh.
        #[arg(long)]
        ec2: bool,
        /// With --ec2: two availability zones, a route table each and the VPC router that
        /// forwards the overlay IP as they say; `config` then uses
        /// crm-examples/pgsql-ha-ec2-multiaz.sh (ocf:paceline:aws-vpc-move-ip).
        #[arg(long, requires = "ec2")]
        multiaz: bool,
    },
    /// Create the resources from crm-examples/ for a stack.
    Config {
        #[arg(long, value_parser = ["reference", "paceline"])]
        stack: String,
        /// pgsqlms synchronous_mode (paceline stack only); on/strict also create the node
        /// state service (ocf:paceline:pgsql-state).
        #[arg(long, value_parser = ["off", "on", "strict"], default_value = "off")]
        sync: String,
        /// How clients find the primary: the VIP; haproxy (no VIP: HAProxy on every node,
        /// checks on the state service; paceline stack); seed (the seed demo's HAProxy and
        /// psql-based check; reference stack). docs/lab.md.
        #[arg(long, value_parser = ["vip", "haproxy", "seed"], default_value = "vip")]
        routing: String,
    },
    /// Run one scenario and print one JSON line.
    Scenario {
        #[arg(value_parser = ["switchover", "kill-postgres", "node-crash", "standby-crash", "standbys-down", "restart-all", "election", "migrate", "hang", "update-params", "partition", "fence"])]
        name: String,
    },
    /// crm_mon of the cluster, and each node's PostgreSQL role and LSN.
    Status,
    /// Tear everything down (also after a failed run).
    Down,
    /// up + config + switchover + kill-postgres + summary, then down.
    Demo {
        /// both: the paceline stack, then PAF's on a fresh lab, side by side.
        #[arg(long, default_value = "both", value_parser = ["both", "paceline", "reference"])]
        stack: String,
    },
    /// The writer probe (runs outside the nodes; used by the scenarios).
    Probe(paceline::lab::probe::Args),
    /// A storm of routing checks (a new connection each, as HAProxy's) against a state
    /// service, with the CPU, forks and memory of watched processes; one JSON line.
    Storm(paceline::lab::storm::Args),
}

/// The lab's shell side lives in tests/lab/lab.sh; the source tree is found through
/// PACELINE_SRC or, by default, where this binary was built from (this binary runs from a
/// build tree: it is not packaged).
fn lab_script(verb: &str, args: &[String]) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let src = std::env::var_os("PACELINE_SRC").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    let script = src.join("tests/lab/lab.sh");
    anyhow::ensure!(script.is_file(), "{} not found: set PACELINE_SRC to a paceline source tree", script.display());
    let err = std::process::Command::new("bash").arg(&script).arg(verb).args(args).env("PACELINE_SRC", &src).exec();
    Err(err).context("cannot run bash")
}

fn main() -> Result<()> {
    match LabVerb::parse() {
        LabVerb::Up { nodes, ec2, multiaz } => {
            let mut args = vec!["--nodes".to_string(), nodes.to_string()];
            if ec2 {
                args.push("--ec2".into());
            }
            if multiaz {
                args.push("--multiaz".into());
            }
            lab_script("up", &args)
        }
        LabVerb::Config { stack, sync, routing } => lab_script("config", &["--stack".into(), stack, "--sync".into(), sync, "--routing".into(), routing]),
        LabVerb::Scenario { name } => lab_script("scenario", &[name]),
        LabVerb::Status => lab_script("status", &[]),
        LabVerb::Down => lab_script("down", &[]),
        LabVerb::Demo { stack } => lab_script("demo", &["--stack".into(), stack]),
        LabVerb::Probe(args) => paceline::lab::probe::run(args),
        LabVerb::Storm(args) => paceline::lab::storm::run(args),
    }
}
