//! Test fixtures shared by the integration tests: throw-away network namespaces and a way
//! to run an agent inside one, as Pacemaker would (environment only, exit code read).
//!
//! Safety: every address used is in 192.0.2.0/24 or 2001:db8::/32, inside namespaces the
//! fixture creates; Drop deletes them even when a test panics.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// Whether the tests can create namespaces (root) — CI runs as root.
pub fn privileged() -> bool {
    nix::unistd::geteuid().is_root() && Command::new("ip").arg("-V").output().is_ok()
}

/// Skip the calling test (return early) when not privileged.
#[macro_export]
macro_rules! require_root {
    () => {
        if !common::privileged() {
            eprintln!("skipped: needs root and iproute2");
            return;
        }
    };
}

/// The directory of the PostgreSQL programs the real-PostgreSQL tests run: Debian 12's 15
/// unless `PACELINE_PG_BINDIR` names another major's (tests/postgresql.sh fetches 14, 16,
/// 17 and 18; tests/pg_majors.sh runs the tests on each). A unit struct that displays as
/// the path, so that `format!("{PG_BINDIR}/pg_ctl")` reads as the constant it replaces.
pub struct PgBindir;
pub const PG_BINDIR: PgBindir = PgBindir;

impl PgBindir {
    pub fn path(&self) -> String {
        std::env::var("PACELINE_PG_BINDIR").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into())
    }
}

impl std::fmt::Display for PgBindir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.path())
    }
}

/// Agent `name` of this build: its link to the paceline executable (src/install.rs).
pub fn agent(name: &str) -> String {
    paceline::install::built(std::path::Path::new(env!("CARGO_BIN_EXE_paceline")), name).expect("the agent's link").display().to_string()
}

pub fn sh(cmd: &str) -> Output {
    Command::new("sh").arg("-c").arg(cmd).output().expect("sh")
}

/// Run a shell command that must succeed.
pub fn must(cmd: &str) -> String {
    let o = sh(cmd);
    assert!(o.status.success(), "`{cmd}` failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Two namespaces `a` and `b` joined by a veth pair, both ends called eth0:
/// a = 192.0.2.1/24, 2001:db8::1/64; b = 192.0.2.2/24, 2001:db8::2/64.
pub struct Pair {
    pub a: String,
    pub b: String,
}

impl Pair {
    pub fn new(tag: &str) -> Pair {
        let base = format!("plt-{}-{tag}", std::process::id());
        let pair = Pair { a: format!("{base}-a"), b: format!("{base}-b") };
        let (a, b) = (&pair.a, &pair.b);
        must(&format!(
            "ip netns add {a} && ip netns add {b} && \
             ip -n {a} link add eth0 type veth peer name eth0 netns {b} && \
             ip -n {a} addr add 192.0.2.1/24 dev eth0 && ip -n {b} addr add 192.0.2.2/24 dev eth0 && \
             ip -n {a} addr add 2001:db8::1/64 dev eth0 nodad && ip -n {b} addr add 2001:db8::2/64 dev eth0 nodad && \
             for n in {a} {b}; do ip -n $n link set lo up && ip -n $n link set eth0 up; done"
        ));
        pair
    }

    /// The MAC address of eth0 in `ns`.
    pub fn mac(&self, ns: &str) -> String {
        must(&format!("ip netns exec {ns} cat /sys/class/net/eth0/address")).trim().to_owned()
    }

    /// `ip -o addr show dev eth0` in `a`.
    pub fn addrs(&self) -> String {
        must(&format!("ip -n {} -o addr show dev eth0", self.a))
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            let _ = sh(&format!("ip netns del {ns} 2>/dev/null"));
        }
    }
}

/// The result of one agent run.
#[derive(Debug)]
pub struct Run {
    pub rc: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Run `agent action` inside namespace `ns` with a clean environment plus `env`
/// (`ip=...` becomes `OCF_RESKEY_ip`; names starting with an upper-case letter pass as is).
pub fn agent_in(ns: &str, agent: &str, action: &str, env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns, agent, action]);
    cmd.env_clear();
    cmd.env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
    cmd.env("OCF_ROOT", "/usr/lib/ocf");
    cmd.env("OCF_RESOURCE_INSTANCE", "vip");
    cmd.env("HA_LOGFACILITY", "none");
    for (k, v) in env {
        if k.starts_with(|c: char| c.is_ascii_uppercase()) {
            cmd.env(k, v);
        } else {
            cmd.env(format!("OCF_RESKEY_{k}"), v);
        }
    }
    let out = cmd.output().expect("ip netns exec");
    Run {
        rc: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
    .checked()
}

impl Run {
    /// Every run of an agent in the tests keeps the exit-reason contract: at most one
    /// `ocf-exit-reason:` line, within the 128 characters Pacemaker keeps, never a panic.
    pub fn checked(self) -> Run {
        let reasons: Vec<&str> = self.stderr.lines().filter_map(|l| l.strip_prefix("ocf-exit-reason:")).collect();
        assert!(reasons.len() <= 1, "several exit reasons: {}", self.stderr);
        if let Some(r) = reasons.first() {
            assert!(r.len() <= 128, "exit reason longer than Pacemaker keeps ({} bytes): {r}", r.len());
            assert!(!r.is_empty(), "empty exit reason: {}", self.stderr);
        }
        assert!(!self.stderr.contains("panicked at"), "{}", self.stderr);
        self
    }
}

/// Whether `tool` is on PATH (or in /usr/sbin, /sbin, where Pacemaker's tools live).
pub fn in_path(tool: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).chain(["/usr/sbin", "/sbin"].map(PathBuf::from)).any(|d| d.join(tool).is_file())
}

/// A command's exit code, stdout and stderr, for assertion messages.
pub fn text(out: &Output) -> String {
    format!("exit {:?}\n--- stdout\n{}--- stderr\n{}", out.status.code(), String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// Skip the calling test (return early) when the test file's `skip_reason()` says why.
#[macro_export]
macro_rules! skip_unless_possible {
    ($name:expr) => {
        if let Some(why) = skip_reason() {
            eprintln!("skipping {}: {why}", $name);
            return;
        }
    };
}

/// A temporary directory, unique per test process and call, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("paceline-test-{}-{n}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Environment pairs given to an agent (`OCF_RESKEY_x`, value).
pub type Pairs<'a> = &'a [(&'a str, &'a str)];

/// A bad-input case: the parameters, the exit code expected, a word of the reason.
pub type BadCase<'a> = (Pairs<'a>, i32, &'a str);
