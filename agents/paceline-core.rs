//! `paceline-core` — the agents that do not call EC2 (pgsqlms, IPaddr2, pgsql-state), as
//! links to one binary that does not link the AWS SDK, so that the agent Pacemaker runs
//! most often starts as fast as a binary of its own (src/install.rs says why two). It asks
//! only `agents::core` for an agent: that names no agent that calls EC2.

use paceline::{agents, registry};

fn main() {
    let argv0 = std::env::args_os().next().unwrap_or_default();
    match registry::named(&argv0).and_then(|a| agents::core(a.name)) {
        Some(agent) => (agent.main)(),
        None => {
            // Run by its own name: nothing to be. OCF_ERR_INSTALLED, as for a missing agent.
            eprintln!(
                "paceline-core runs the agents {} through links named after them (paceline install makes them), not as {}",
                registry::names_in(registry::CORE),
                argv0.to_string_lossy()
            );
            std::process::exit(5);
        }
    }
}
