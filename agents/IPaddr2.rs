//! `ocf:paceline:IPaddr2` — see `src/agents/ipaddr2.rs` for what each action does.
fn main() {
    paceline::agents::ipaddr2::main()
}
