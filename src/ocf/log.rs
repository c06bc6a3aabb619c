//! Logging where `ocf_log` would put it.
//!
//! Operators look for agent messages where the shell agents leave them: syslog (facility
//! `HA_LOGFACILITY`, default `daemon`, `none` to disable), the file named by `HA_LOGFILE`
//! (Pacemaker sets it from `PCMK_logfile`), debug lines only when `HA_debug`/`HA_DEBUG` is
//! on and then also in `HA_DEBUGLOG`, and stderr when a person runs the agent at a
//! terminal. Every line is tagged `agent(instance)[pid]`, with the level first
//! (`INFO:`, `WARNING:`, `ERROR:`), as `ocf_log` does, so existing log filters keep working.
//!
//! Failure reasons are also printed as `ocf-exit-reason:<reason>` on stderr: Pacemaker
//! picks that line up and shows it in `crm_mon`, `pcs status` and
//! `crm_resource --force-* -V` output.

use std::ffi::CString;
use std::fs::OpenOptions;
use std::io::{IsTerminal, Write};
use std::sync::OnceLock;

use super::OcfEnv;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Err,
    Crit,
}

impl Level {
    fn label(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARNING",
            Level::Err => "ERROR",
            Level::Crit => "CRIT",
        }
    }
    fn syslog_priority(self) -> libc::c_int {
        match self {
            Level::Debug => libc::LOG_DEBUG,
            Level::Info => libc::LOG_INFO,
            Level::Warn => libc::LOG_WARNING,
            Level::Err => libc::LOG_ERR,
            Level::Crit => libc::LOG_CRIT,
        }
    }
}

#[derive(Debug)]
struct Logger {
    tag: String,
    syslog: bool,
    logfile: Option<String>,
    debuglog: Option<String>,
    debug: bool,
    stderr: bool,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// Map a facility name (`daemon`, `local0`…) to syslog's constant; `none` or garbage → None.
pub fn facility(name: &str) -> Option<libc::c_int> {
    Some(match name.trim().to_ascii_lowercase().as_str() {
        "" | "daemon" => libc::LOG_DAEMON,
        "user" => libc::LOG_USER,
        "auth" => libc::LOG_AUTH,
        "authpriv" => libc::LOG_AUTHPRIV,
        "local0" => libc::LOG_LOCAL0,
        "local1" => libc::LOG_LOCAL1,
        "local2" => libc::LOG_LOCAL2,
        "local3" => libc::LOG_LOCAL3,
        "local4" => libc::LOG_LOCAL4,
        "local5" => libc::LOG_LOCAL5,
        "local6" => libc::LOG_LOCAL6,
        "local7" => libc::LOG_LOCAL7,
        _ => return None,
    })
}

fn is_on(v: Option<&str>) -> bool {
    matches!(v.map(str::trim), Some(v) if !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false") && !v.eq_ignore_ascii_case("no") && !v.eq_ignore_ascii_case("off"))
}

/// Set up logging for this invocation. Later calls are ignored.
pub fn init(agent: &str, env: &OcfEnv) {
    let tag = format!("{agent}({})", env.instance());
    let facility = facility(env.var("HA_LOGFACILITY").unwrap_or("daemon"));
    if let Some(f) = facility {
        if let Ok(ident) = CString::new(tag.clone()) {
            // openlog keeps the pointer: the identity must live as long as the process.
            let ident: &'static CString = Box::leak(Box::new(ident));
            // SAFETY: ident is a valid NUL-terminated string that is never freed.
            unsafe { libc::openlog(ident.as_ptr(), libc::LOG_PID, f) };
        }
    }
    let logfile = env.var("HA_LOGFILE").filter(|v| !v.is_empty()).map(str::to_owned);
    let debuglog = env.var("HA_DEBUGLOG").filter(|v| !v.is_empty()).map(str::to_owned);
    let debug = is_on(env.var("HA_debug")) || is_on(env.var("HA_DEBUG"));
    let stderr = std::io::stderr().is_terminal() || (facility.is_none() && logfile.is_none());
    let _ = LOGGER.set(Logger { tag, syslog: facility.is_some(), logfile, debuglog, debug, stderr });
}

fn timestamp() -> String {
    let mut now: libc::time_t = 0;
    // SAFETY: time and localtime_r only write into the provided, properly sized values.
    unsafe {
        libc::time(&mut now);
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&now, &mut tm).is_null() {
            return String::new();
        }
        format!(
            "{:04}/{:02}/{:02}_{:02}:{:02}:{:02}",
            tm.tm_year + 1900,
            tm.tm_mon + 1,
            tm.tm_mday,
            tm.tm_hour,
            tm.tm_min,
            tm.tm_sec
        )
    }
}

fn append(path: &str, line: &str) {
    if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(path) {
        let _ = f.write_all(line.as_bytes());
    }
}

/// Log one message at `level`.
pub fn log(level: Level, msg: &str) {
    let Some(l) = LOGGER.get() else {
        // Not initialised (unit tests, early failures): stderr is all there is.
        if level > Level::Debug {
            eprintln!("{}: {msg}", level.label());
        }
        return;
    };
    if level == Level::Debug && !l.debug {
        return;
    }
    let text = format!("{}: {msg}", level.label());
    if l.syslog {
        if let Ok(c) = CString::new(text.replace('\0', " ")) {
            // SAFETY: both the format and the argument are valid C strings.
            unsafe { libc::syslog(level.syslog_priority(), c"%s".as_ptr(), c.as_ptr()) };
        }
    }
    let file = if level == Level::Debug { l.debuglog.as_ref().or(l.logfile.as_ref()) } else { l.logfile.as_ref() };
    if let Some(path) = file {
        append(path, &format!("{}[{}]:\t{} {text}\n", l.tag, std::process::id(), timestamp()));
    }
    if l.stderr {
        eprintln!("{text}");
    }
}

/// Log the reason of a failure and hand it to Pacemaker as `ocf-exit-reason:`.
pub fn exit_reason(reason: &str) {
    log(Level::Err, reason);
    let one_line = reason.replace('\n', " ");
    eprintln!("ocf-exit-reason:{one_line}");
}

/// `ocf_log debug`.
#[macro_export]
macro_rules! ocf_debug { ($($t:tt)*) => { $crate::ocf::log::log($crate::ocf::log::Level::Debug, &format!($($t)*)) } }
/// `ocf_log info`.
#[macro_export]
macro_rules! ocf_info { ($($t:tt)*) => { $crate::ocf::log::log($crate::ocf::log::Level::Info, &format!($($t)*)) } }
/// `ocf_log warn`.
#[macro_export]
macro_rules! ocf_warn { ($($t:tt)*) => { $crate::ocf::log::log($crate::ocf::log::Level::Warn, &format!($($t)*)) } }
/// `ocf_log err`.
#[macro_export]
macro_rules! ocf_err { ($($t:tt)*) => { $crate::ocf::log::log($crate::ocf::log::Level::Err, &format!($($t)*)) } }

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facilities() {
        assert_eq!(facility("daemon"), Some(libc::LOG_DAEMON));
        assert_eq!(facility(""), Some(libc::LOG_DAEMON));
        assert_eq!(facility("LOCAL7"), Some(libc::LOG_LOCAL7));
        assert_eq!(facility("none"), None);
        assert_eq!(facility("bogus"), None);
    }

    #[test]
    fn debug_switch() {
        assert!(is_on(Some("1")) && is_on(Some("yes")));
        assert!(!is_on(Some("0")) && !is_on(None) && !is_on(Some("")) && !is_on(Some("false")));
    }

    #[test]
    fn timestamp_shape() {
        let t = timestamp();
        assert_eq!(t.len(), 19, "{t}");
        assert_eq!(&t[4..5], "/");
        assert_eq!(&t[10..11], "_");
    }
}
