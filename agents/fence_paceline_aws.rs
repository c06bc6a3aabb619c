//! `fence_paceline_aws` — STONITH for EC2; see `src/agents/fence_aws.rs` and `src/fence/`.
fn main() {
    paceline::agents::fence_aws::main()
}
