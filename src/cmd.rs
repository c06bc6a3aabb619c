//! Running the external tools an agent may call (Pacemaker's CLI, pg_ctl, pg_controldata,
//! pg_rewind), always within a bound: an agent that hangs past Pacemaker's timeout is killed
//! and counted as failed — a stop that times out gets the node fenced — so we give up first
//! and say what we waited for.
//!
//! What keeps a call bounded, whatever the tool does:
//! - the bound is the caller's, cut to what is left of the running action
//!   ([`crate::ocf::deadline::bound`]): calls one after the other cannot add up past the
//!   action's timeout;
//! - both pipes are drained at once, each by its own thread, so a tool that fills its stderr
//!   pipe while we read its stdout (or the reverse) cannot block;
//! - the tool runs in a process group of its own, and at the deadline the whole group is
//!   killed, not just the direct child: a shell's or a wrapper's children die with it;
//! - nothing is waited for without bound: not the readers (a grandchild that left the group
//!   may hold a pipe open for ever — we take what was read by the deadline), not the reaping
//!   of a killed tool stuck in the kernel;
//! - what a tool prints is kept up to [`KEEP`] bytes per stream (the rest is read and dropped).

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::ocf::OcfError;

/// How much of each output stream is kept.
pub const KEEP: usize = 32 << 20;

/// How long a killed tool gets to be reaped, and its readers to see the end of the pipes.
const AFTER_KILL: Duration = Duration::from_millis(500);

/// Run `cmd` to completion within `timeout`; its stdout on success. A missing program is
/// `OCF_ERR_INSTALLED`; a failure carries the tool's stderr; a timeout kills it.
pub fn run(cmd: &mut Command, timeout: Duration) -> Result<String, OcfError> {
    let what = describe(cmd);
    let done = finish(cmd, timeout)?;
    if done.success {
        Ok(done.stdout)
    } else {
        // The cause (the tool's own words) first, the command line after it.
        let said = done.stderr.trim().replace('\n', " ");
        Err(OcfError::generic(format!("{} failed: {said}", program(cmd))).context(what))
    }
}

/// The tool's file name, for the start of a reason (`pg_ctl`, `crm_attribute`).
fn program(cmd: &Command) -> String {
    let p = cmd.get_program().to_string_lossy();
    p.rsplit('/').next().unwrap_or(&p).to_owned()
}

/// This agent's own binary, run as agent `name` with `action` in a session of its own with
/// no standard streams: a process that outlives the action that starts it (the state
/// service; the incident record's copy after a promotion). Without its own session it would
/// be in the action's process group, which Pacemaker signals; with the action's pipes it
/// would hold them open, and pacemaker-execd would count the action as running until it
/// ends. It is not bound by the action's timeout (`OCF_RESKEY_CRM_meta_timeout` removed):
/// what it does must bound itself.
pub fn this_agent_detached(name: &str, action: &str) -> Result<Command, OcfError> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().map_err(|e| OcfError::installed(format!("cannot find this agent's binary: {e}")))?;
    let mut cmd = Command::new(&exe);
    // Under the agent's name: the binary is paceline's multi-call one (src/install.rs).
    cmd.arg0(name);
    cmd.env_remove("OCF_RESKEY_CRM_meta_timeout");
    cmd.arg(action).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| nix::unistd::setsid().map(|_| ()).map_err(std::io::Error::from));
    }
    Ok(cmd)
}

/// What a tool that ran to completion (or failed) printed.
#[derive(Debug)]
pub struct Finished {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// The command line, for messages. Never put a secret on a command line.
fn describe(cmd: &Command) -> String {
    format!("{} {}", cmd.get_program().to_string_lossy(), cmd.get_args().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" "))
}

/// Run `cmd` within `timeout` and return its outcome whatever its exit status, for tools
/// whose report is on stderr (pg_rewind). Not starting, or a timeout, is an error; the
/// timeout's reason names the tool, the bound and the last line it printed.
pub fn finish(cmd: &mut Command, timeout: Duration) -> Result<Finished, OcfError> {
    use std::os::unix::process::CommandExt;
    let what = describe(cmd);
    let timeout = crate::ocf::deadline::bound(timeout);
    let deadline = Instant::now() + timeout;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| OcfError::installed(format!("cannot run {}: {e}", program(cmd))).context(&what))?;
    let (tx, rx) = mpsc::channel();
    if let Some(s) = child.stdout.take() {
        drain(s, 0, tx.clone());
    }
    if let Some(s) = child.stderr.take() {
        drain(s, 1, tx);
    } else {
        drop(tx);
    }
    let status = match wait_until(&mut child, deadline) {
        Ok(Some(status)) => status,
        Ok(None) => {
            kill_group(&child);
            let _ = wait_until(&mut child, Instant::now() + AFTER_KILL);
            let (_, err) = collect(&rx, Instant::now() + AFTER_KILL);
            let last = String::from_utf8_lossy(&err).lines().last().map(|l| format!(" (last said: {})", l.trim())).unwrap_or_default();
            return Err(OcfError::generic(format!("{} did not finish within {} ms: killed{last}", program(cmd), timeout.as_millis())).context(what));
        }
        Err(e) => {
            kill_group(&child);
            return Err(OcfError::generic(format!("{}: {e}", program(cmd))).context(what));
        }
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let (o, e, complete) = collect_all(&rx, deadline.max(Instant::now() + Duration::from_millis(100)));
    out.extend(o);
    err.extend(e);
    if !complete {
        // The tool exited, but something it started still holds its output open: that
        // leftover of its group goes, and we answer with what was printed.
        kill_group(&child);
        let (o, e, _) = collect_all(&rx, Instant::now() + AFTER_KILL);
        out.extend(o);
        err.extend(e);
        crate::ocf_warn!("{} exited but a process it left holds its output open: killed its process group", program(cmd));
    }
    Ok(Finished { success: status.success(), stdout: String::from_utf8_lossy(&out).into_owned(), stderr: String::from_utf8_lossy(&err).into_owned() })
}

/// Read `stream` to its end in a thread of its own, sending each chunk (tagged `which`)
/// and an empty chunk at the end; keeps at most [`KEEP`] bytes.
fn drain(mut stream: impl Read + Send + 'static, which: u8, tx: mpsc::Sender<(u8, Vec<u8>)>) {
    std::thread::spawn(move || {
        let mut kept = 0usize;
        let mut buf = vec![0u8; 64 << 10];
        loop {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let take = n.min(KEEP.saturating_sub(kept));
                    kept += take;
                    if take > 0 && tx.send((which, buf[..take].to_vec())).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        let _ = tx.send((which, Vec::new()));
    });
}

/// Both streams' chunks until both have ended or `until`; whether both ended.
fn collect_all(rx: &mpsc::Receiver<(u8, Vec<u8>)>, until: Instant) -> (Vec<u8>, Vec<u8>, bool) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut ended = 0;
    while ended < 2 {
        match rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
            Ok((_, chunk)) if chunk.is_empty() => ended += 1,
            Ok((0, chunk)) => out.extend(chunk),
            Ok((_, chunk)) => err.extend(chunk),
            // Every reader gone (both ended): nothing more will come.
            Err(mpsc::RecvTimeoutError::Disconnected) => return (out, err, true),
            Err(mpsc::RecvTimeoutError::Timeout) => return (out, err, false),
        }
    }
    (out, err, true)
}

/// What was printed by `until`, for a tool that was killed.
fn collect(rx: &mpsc::Receiver<(u8, Vec<u8>)>, until: Instant) -> (Vec<u8>, Vec<u8>) {
    let (o, e, _) = collect_all(rx, until);
    (o, e)
}

/// Wait for `child` until `until`: its status, or `None` if it still runs.
fn wait_until(child: &mut Child, until: Instant) -> std::io::Result<Option<ExitStatus>> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= until {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// SIGKILL the tool's process group (the group it leads: see `process_group(0)`).
fn kill_group(child: &Child) {
    let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ocf::OcfRc;

    #[test]
    fn outcomes() {
        assert_eq!(run(Command::new("sh").args(["-c", "echo hi"]), Duration::from_secs(5)).unwrap(), "hi\n");
        let e = run(Command::new("sh").args(["-c", "echo oops >&2; exit 3"]), Duration::from_secs(5)).unwrap_err();
        assert_eq!(e.rc, OcfRc::ErrGeneric);
        assert!(e.reason.contains("oops"), "{}", e.reason);
        let e = run(&mut Command::new("/nonexistent/tool"), Duration::from_secs(5)).unwrap_err();
        assert_eq!(e.rc, OcfRc::ErrInstalled);
        let t = Instant::now();
        let e = run(Command::new("sleep").arg("5"), Duration::from_millis(200)).unwrap_err();
        assert!(e.reason.contains("did not finish"), "{}", e.reason);
        assert!(t.elapsed() < Duration::from_secs(2));
    }

    /// A tool that writes a lot to stderr before its stdout does not block on a full pipe.
    #[test]
    fn chatty_stderr_does_not_block() {
        let t = Instant::now();
        let done = finish(Command::new("sh").args(["-c", "head -c 1000000 /dev/zero >&2; echo out"]), Duration::from_secs(10)).unwrap();
        assert!(done.success);
        assert_eq!(done.stdout, "out\n");
        assert_eq!(done.stderr.len(), 1_000_000);
        assert!(t.elapsed() < Duration::from_secs(5));
    }

    /// At the deadline the whole group dies: the shell's background child too.
    #[test]
    fn timeout_kills_the_group() {
        let dir = std::env::temp_dir().join(format!("paceline-cmd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pidf = dir.join("child.pid");
        let script = format!("sleep 30 & echo $! > {}; echo waiting >&2; wait", pidf.display());
        let t = Instant::now();
        let e = run(Command::new("sh").args(["-c", &script]), Duration::from_millis(500)).unwrap_err();
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
        assert!(e.reason.contains("did not finish within") && e.reason.contains("waiting"), "{}", e.reason);
        let pid: i32 = std::fs::read_to_string(&pidf).unwrap().trim().parse().unwrap();
        let until = Instant::now() + Duration::from_secs(2);
        while Instant::now() < until && std::path::Path::new(&format!("/proc/{pid}/stat")).exists() {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            if stat.rsplit_once(')').is_some_and(|(_, r)| r.trim_start().starts_with('Z')) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(stat.is_empty() || stat.rsplit_once(')').is_some_and(|(_, r)| r.trim_start().starts_with('Z')), "the background sleep survived: {stat}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A tool that exits but leaves a process holding its stdout (outside its group, so it
    /// survives the group kill) does not hold the caller past the bound.
    #[test]
    fn a_leftover_holding_the_pipe_is_not_waited_for() {
        let t = Instant::now();
        let done = finish(Command::new("sh").args(["-c", "echo before; setsid sleep 3 & exit 0"]), Duration::from_millis(700)).unwrap();
        assert!(done.success);
        assert_eq!(done.stdout, "before\n");
        assert!(t.elapsed() < Duration::from_millis(2500), "{:?}", t.elapsed());
    }
}
