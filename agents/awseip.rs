//! `ocf:paceline:awseip` — see `src/agents/awseip.rs` for what each action does.
fn main() {
    paceline::agents::awseip::main()
}
