//! Running the external tools an agent may call (Pacemaker's CLI, pg_ctl, pg_controldata),
//! always with a deadline derived from the action's timeout: an agent that hangs past
//! Pacemaker's timeout is killed and counted as failed, so we stop first and say why.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::ocf::OcfError;

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
/// whose report is on stderr (pg_rewind). Not starting, or a timeout, is an error.
pub fn finish(cmd: &mut Command, timeout: Duration) -> Result<Finished, OcfError> {
    let what = describe(cmd);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| OcfError::installed(format!("cannot run {}: {e}", program(cmd))).context(&what))?;
    // Drain both pipes while waiting, so a chatty tool cannot block on a full pipe.
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut o = String::new();
        let mut e = String::new();
        if let Some(s) = out.as_mut() {
            let _ = s.read_to_string(&mut o);
        }
        if let Some(s) = err.as_mut() {
            let _ = s.read_to_string(&mut e);
        }
        (o, e)
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(OcfError::generic(format!("{} did not finish within {timeout:?}", program(cmd))).context(what));
            }
            Err(e) => return Err(OcfError::generic(format!("{}: {e}", program(cmd))).context(what)),
        }
    };
    let (stdout, stderr) = reader.join().unwrap_or_default();
    Ok(Finished { success: status.success(), stdout, stderr })
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
}
