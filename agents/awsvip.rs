//! `awsvip` — work in progress (issue #5).
fn main() {
    std::process::exit(3)
}
