//! `ocf:paceline:awsvip` — see `src/agents/awsvip.rs` for what each action does.
fn main() {
    paceline::agents::awsvip::main()
}
