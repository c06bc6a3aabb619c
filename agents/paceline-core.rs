//! `paceline-core` — the agents that do not call EC2 (pgsqlms, IPaddr2, pgsql-state), as
//! links to one binary that does not link the AWS SDK, so that the agent Pacemaker runs
//! most often starts as fast as a binary of its own (src/install.rs says why two).

use paceline::agents::{ipaddr2, pgsql_state, pgsqlms};
use paceline::install;

fn main() {
    let argv0 = std::env::args_os().next().unwrap_or_default();
    match install::agent_named(&argv0).map(|a| a.bin) {
        Some("pgsqlms") => pgsqlms::main(),
        Some("IPaddr2") => ipaddr2::main(),
        Some("pgsql-state") => pgsql_state::main(),
        _ => {
            // Run by its own name: nothing to be. OCF_ERR_INSTALLED, as for a missing agent.
            eprintln!(
                "paceline-core runs the agents pgsqlms, IPaddr2 and pgsql-state through links named after them (paceline install makes them), not as {}",
                argv0.to_string_lossy()
            );
            std::process::exit(5);
        }
    }
}
