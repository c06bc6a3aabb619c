//! `ocf:paceline:pgsqlms` — see `src/agents/pgsqlms/` (one file per action).
fn main() {
    paceline::agents::pgsqlms::main()
}
