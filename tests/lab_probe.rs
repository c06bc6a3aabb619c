//! `paceline-lab probe` against a real PostgreSQL 15 on loopback: a quiet run, a SIGTERM
//! stop, an immediate crash and restart in the middle of a run (the outage is measured and
//! no acknowledged write is lost), and the exits for bad arguments and a VIP that never
//! answers. The PostgreSQL cases need root (to run PostgreSQL as user postgres) and the
//! Debian binaries in /usr/lib/postgresql/15/bin; they skip otherwise.
//!
//! Safety: each case has its own data directory under the temp dir and its own port on
//! 127.0.0.1; Drop stops only that PostgreSQL (`pg_ctl -D <its dir> stop`) and removes the
//! directory, also when the test panics.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The probe's timings are the subject of these tests: a quiet run must see no skipped slot,
/// which a PostgreSQL being crashed and restarted by the test beside it (on a 2-core
/// machine) can cause. The tests that run a PostgreSQL take turns.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

const PACELINE_LAB: &str = env!("CARGO_BIN_EXE_paceline-lab");
const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

fn have_postgres() -> bool {
    let ok = nix::unistd::geteuid().is_root()
        && Path::new(PG_BIN).join("initdb").is_file()
        && nix::unistd::User::from_name("postgres").ok().flatten().is_some()
        && Command::new("runuser").arg("--help").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
    if !ok {
        eprintln!("skipped: needs root, user postgres, runuser and PostgreSQL 15 in {PG_BIN}");
    }
    ok
}

/// A throw-away PostgreSQL owned by this test.
struct Pg {
    dir: PathBuf,
    port: u16,
}

impl Pg {
    fn new(case: u16) -> Pg {
        let pid = std::process::id();
        let dir = std::env::temp_dir().join(format!("paceline-probe-test-{pid}-{case}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).expect("create the temp dir");
        // The guard exists from here on: whatever fails next, Drop cleans up.
        let pg = Pg { dir, port: free_port(5400 + (pid % 500) as u16 + 500 * case) };
        let user = nix::unistd::User::from_name("postgres").unwrap().unwrap();
        nix::unistd::chown(&pg.dir, Some(user.uid), Some(user.gid)).expect("chown the temp dir");
        pg.as_postgres("initdb", &["-D", &pg.data(), "-A", "trust", "-U", "postgres", "--no-sync"]);
        pg.start();
        pg
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn as_postgres(&self, tool: &str, args: &[&str]) -> Output {
        let out = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(Path::new(PG_BIN).join(tool))
            .args(args)
            .current_dir(&self.dir)
            .output()
            .expect("run runuser");
        assert!(out.status.success(), "{tool} {args:?} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        out
    }

    fn start(&self) {
        let opts = format!("-c listen_addresses=127.0.0.1 -p {} -c unix_socket_directories={}", self.port, self.dir.display());
        let log = self.dir.join("log").display().to_string();
        self.as_postgres("pg_ctl", &["-D", &self.data(), "-l", &log, "-o", &opts, "-w", "-t", "30", "start"]);
    }

    fn stop_immediate(&self) {
        self.as_postgres("pg_ctl", &["-D", &self.data(), "-m", "immediate", "-w", "stop"]);
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        if self.dir.join("data/postmaster.pid").exists() {
            let _ = Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(Path::new(PG_BIN).join("pg_ctl"))
                .args(["-D", &self.data(), "-m", "immediate", "-w", "stop"])
                .output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The first port from `from` on that nothing listens on at 127.0.0.1.
fn free_port(from: u16) -> u16 {
    (from..from + 200).find(|p| TcpListener::bind(("127.0.0.1", *p)).is_ok()).expect("a free port")
}

fn probe_cmd(port: u16, extra: &[&str]) -> Command {
    let mut c = Command::new(PACELINE_LAB);
    c.args(["probe", "--vip", "127.0.0.1", "--nodes", "127.0.0.1", "--port", &port.to_string()]).args(extra);
    c
}

/// The probe's one JSON line; it must have exited 0.
fn report(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "probe exited {:?}: {}", out.status, String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout.lines().count(), 1, "one line expected, got: {stdout}");
    let v: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"));
    eprintln!("probe: {v}");
    v
}

fn n(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("{key} is not a number in {v}"))
}

fn wait_for(path: &Path, limit: Duration) {
    let t = Instant::now();
    while !path.exists() {
        assert!(t.elapsed() < limit, "{} did not appear within {limit:?}", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn quiet_run_and_sigterm() {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !have_postgres() {
        return;
    }
    let pg = Pg::new(0);

    let v = report(&probe_cmd(pg.port, &["--duration-s", "3", "--run-id", "quiet"]).output().unwrap());
    assert_eq!(v["run"], "quiet");
    assert!(n(&v, "acked") >= 20, "{v}");
    assert_eq!(n(&v, "acked") + n(&v, "failed"), n(&v, "attempts"));
    assert_eq!(n(&v, "failed"), 0, "{v}");
    // A quiet run has no outage — unless a write was slow enough to skip a slot, which by
    // definition counts (seen on this 2-core machine: a session 140 ms from authorization to
    // disconnection, the INSERT itself under 50 ms, with today's probe and the previous one
    // alike). Then the outage must be made of skipped slots only, and be short.
    if n(&v, "skipped") == 0 {
        assert_eq!(n(&v, "longest_outage_ms"), 0, "{v}");
    } else {
        assert_eq!(n(&v, "outage_failed"), 0, "{v}");
        assert!(n(&v, "longest_outage_ms") < 1000, "{v}");
    }
    assert_eq!(v["final_check"], "ok");
    assert_eq!(n(&v, "lost_rows"), 0, "{v}");
    assert_eq!(n(&v, "max_primaries_seen"), 1, "{v}");
    assert_eq!(v["double_primary"], false);
    assert_eq!(v["final_primaries"], serde_json::json!(["127.0.0.1"]));
    let d = n(&v, "duration_ms");
    assert!((3000..5000).contains(&d), "duration_ms {d}");

    // No duration: runs until SIGTERM, then reports as usual.
    let ready = pg.dir.join("ready");
    let child =
        probe_cmd(pg.port, &["--ready-file", ready.to_str().unwrap(), "--run-id", "term"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    wait_for(&ready, Duration::from_secs(10));
    assert_eq!(std::fs::read_to_string(&ready).unwrap(), "term\n");
    std::thread::sleep(Duration::from_millis(500));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    let v = report(&child.wait_with_output().unwrap());
    assert!(n(&v, "acked") >= 3, "{v}");
    assert_eq!(n(&v, "lost_rows"), 0, "{v}");
}

#[test]
fn crash_and_restart_is_an_outage_without_loss() {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !have_postgres() {
        return;
    }
    let pg = Pg::new(1);
    let ready = pg.dir.join("ready");
    let child =
        probe_cmd(pg.port, &["--duration-s", "6", "--ready-file", ready.to_str().unwrap()]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    wait_for(&ready, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(1500));
    pg.stop_immediate(); // fsync is on: what was acknowledged is on disk
    std::thread::sleep(Duration::from_secs(1));
    pg.start();
    let v = report(&child.wait_with_output().unwrap());
    assert!(n(&v, "failed") > 0, "{v}");
    let outage = n(&v, "longest_outage_ms");
    assert!((800..=5000).contains(&outage), "longest_outage_ms {outage}: {v}");
    assert_eq!(v["outage_open"], false, "{v}");
    assert!(v["outage_from"].is_string() && v["outage_to"].is_string(), "{v}");
    assert_eq!(v["final_check"], "ok");
    assert_eq!(n(&v, "lost_rows"), 0, "{v}");
    assert_eq!(v["double_primary"], false);
    assert!(v["errors"].as_object().is_some_and(|e| !e.is_empty()), "{v}");
}

#[test]
fn bad_arguments_exit_2() {
    let out = probe_cmd(5432, &["--nodes", "127.0.0.1,not-an-ip"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid value 'not-an-ip'"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = Command::new(PACELINE_LAB).args(["probe", "--vip", "127.0.0.1"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}

#[test]
fn a_vip_that_never_answers_fails_setup() {
    // Something that accepts TCP connections and never speaks: each try must time out.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let t = Instant::now();
    let out = probe_cmd(port, &["--connect-timeout-ms", "200", "--final-timeout-s", "1"]).env("RUST_BACKTRACE", "0").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && out.stdout.is_empty(), "{out:?}");
    assert!(stderr.contains("cannot create the probe table through 127.0.0.1:") && stderr.contains("timed out"), "{stderr}");
    assert!(t.elapsed() < Duration::from_secs(5), "took {:?}", t.elapsed());
}
