//! `ocf:paceline:pgsql-state` — the node state service and its agent (`src/agents/pgsql_state.rs`, `src/state/`).
fn main() {
    paceline::agents::pgsql_state::main()
}
