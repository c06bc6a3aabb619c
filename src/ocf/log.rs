//! Logging where `ocf_log` would put it.
//!
//! Operators look for agent messages where the shell agents leave them: syslog (facility
//! `HA_LOGFACILITY`, default `daemon`, `none` to disable), the file named by `HA_LOGFILE`
//! (Pacemaker sets it from `PCMK_logfile`), debug lines only when `HA_debug`/`HA_DEBUG` is
//! on and then also in `HA_DEBUGLOG`, and stderr when a person runs the agent at a
//! terminal. Every line is tagged `agent(instance)[pid]` (or `HA_LOGTAG` when set), with
//! the level first (`INFO:`, `WARNING:`, `ERROR:`), and the file lines have `ocf_log`'s
//! layout — `<date> <tag>:    <LEVEL>: msg`, the date formatted by `HA_DATEFMT` (default
//! `%b %d %T `) — so existing log filters, logrotate rules and grep habits keep working.
//! Dates go through the C library's `strftime`, as `date +FORMAT` does for ocf_log, so any
//! `HA_DATEFMT` an operator set for the shell agents formats the same way here.
//!
//! Failure reasons are also printed as `ocf-exit-reason:<reason>` on stderr: Pacemaker
//! picks that line up and shows it in `crm_mon`, `pcs status` and
//! `crm_resource --force-* -V` output. It keeps 128 characters of it, so that line is the
//! short form ([`OcfError::exit_reason`]) and the log gets the whole chain.

use std::ffi::CString;
use std::fs::OpenOptions;
use std::io::{IsTerminal, Write};
use std::sync::OnceLock;

use super::{OcfEnv, OcfError};

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
    /// The tag of file lines: `agent(instance)[pid]`, or `HA_LOGTAG` as given.
    tag: String,
    /// `HA_DATEFMT`, as a C string for strftime.
    datefmt: CString,
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

/// ocf-directories' default `HA_DATEFMT`.
pub const DEFAULT_DATEFMT: &str = "%b %d %T ";

/// Set up logging for this invocation. Later calls are ignored.
pub fn init(agent: &str, env: &OcfEnv) {
    let own_tag = env.var("HA_LOGTAG").filter(|t| !t.trim().is_empty()).map(str::to_owned);
    let pid = std::process::id();
    // ocf-shellfuncs: agent(instance)[pid], or agent[pid] without an instance.
    let default_tag = match env.var("OCF_RESOURCE_INSTANCE").filter(|v| !v.is_empty()) {
        Some(i) => format!("{agent}({i})"),
        None => agent.to_owned(),
    };
    let facility = facility(env.var("HA_LOGFACILITY").unwrap_or("daemon"));
    if let Some(f) = facility {
        // syslog adds [pid] itself (LOG_PID) to the default tag; a HA_LOGTAG goes as given,
        // as `logger -t` sends it.
        let (ident, flags) = match &own_tag {
            Some(t) => (t.clone(), 0),
            None => (default_tag.clone(), libc::LOG_PID),
        };
        if let Ok(ident) = CString::new(ident) {
            // openlog keeps the pointer: the identity must live as long as the process.
            let ident: &'static CString = Box::leak(Box::new(ident));
            // SAFETY: ident is a valid NUL-terminated string that is never freed.
            unsafe { libc::openlog(ident.as_ptr(), flags, f) };
        }
    }
    let tag = own_tag.unwrap_or_else(|| format!("{default_tag}[{pid}]"));
    let datefmt = env.var("HA_DATEFMT").filter(|f| !f.is_empty()).unwrap_or(DEFAULT_DATEFMT);
    let datefmt = CString::new(datefmt).unwrap_or_else(|_| CString::new(DEFAULT_DATEFMT).unwrap_or_default());
    let logfile = env.var("HA_LOGFILE").filter(|v| !v.is_empty()).map(str::to_owned);
    let debuglog = env.var("HA_DEBUGLOG").filter(|v| !v.is_empty()).map(str::to_owned);
    let debug = is_on(env.var("HA_debug")) || is_on(env.var("HA_DEBUG"));
    let stderr = std::io::stderr().is_terminal() || (facility.is_none() && logfile.is_none());
    let _ = LOGGER.set(Logger { tag, datefmt, syslog: facility.is_some(), logfile, debuglog, debug, stderr });
}

/// Now, formatted by `fmt` in local time as `date +fmt` would (empty if it cannot be).
fn timestamp(fmt: &std::ffi::CStr) -> String {
    let mut buf = [0u8; 256];
    // SAFETY: time and localtime_r write only into the given values; strftime writes at
    // most buf.len() bytes into buf and returns how many it wrote (0 when it did not fit).
    let n = unsafe {
        let now = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&now, &mut tm).is_null() {
            return String::new();
        }
        libc::strftime(buf.as_mut_ptr().cast(), buf.len(), fmt.as_ptr(), &tm)
    };
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// A line of `HA_LOGFILE`, as ocf_log writes it: `<date> <tag>:    <text>`.
fn logfile_line(date: &str, tag: &str, text: &str) -> String {
    format!("{date} {tag}:    {text}\n")
}

/// A line of `HA_DEBUGLOG`, as ha_debug writes it: `<tag>:\t<date><text>`.
fn debuglog_line(date: &str, tag: &str, text: &str) -> String {
    format!("{tag}:\t{date}{text}\n")
}

/// Log files opened before the process gave up root ([`hold_open`]), by path.
static HELD: std::sync::Mutex<Vec<(String, std::fs::File)>> = std::sync::Mutex::new(Vec::new());

/// Append `line` to `path`, opened afresh for each line as ocf_log does (a rotated log is
/// followed); if it cannot be opened any more — the process dropped root — the descriptor
/// [`hold_open`] kept.
fn append(path: &str, line: &str) {
    match OpenOptions::new().create(true).append(true).open(path) {
        Ok(mut f) => {
            let _ = f.write_all(line.as_bytes());
        }
        Err(_) => {
            let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((_, f)) = held.iter_mut().find(|(p, _)| p == path) {
                let _ = f.write_all(line.as_bytes());
            }
        }
    }
}

/// Open the log files now and keep them, for a process about to give up root (the state
/// service): it may not be allowed to open them once it has.
pub fn hold_open() {
    let Some(l) = LOGGER.get() else { return };
    let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
    for path in [l.logfile.as_deref(), l.debuglog.as_deref()].into_iter().flatten() {
        if let Ok(f) = OpenOptions::new().create(true).append(true).open(path) {
            held.push((path.to_owned(), f));
        }
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
    let date = || timestamp(&l.datefmt);
    if level == Level::Debug {
        // ha_debug: HA_DEBUGLOG only (never HA_LOGFILE).
        if let Some(path) = &l.debuglog {
            append(path, &debuglog_line(&date(), &l.tag, &text));
        }
    } else {
        if let Some(path) = &l.logfile {
            append(path, &logfile_line(&date(), &l.tag, &text));
        }
        // ha_log copies to HA_DEBUGLOG too, unless it is the same file.
        if let Some(path) = l.debuglog.as_ref().filter(|d| l.logfile.as_ref() != Some(*d)) {
            append(path, &debuglog_line(&date(), &l.tag, &text));
        }
    }
    if l.stderr {
        eprintln!("{text}");
    }
}

/// Log a failure's whole chain and hand its short form to Pacemaker as `ocf-exit-reason:`.
pub fn exit_reason(e: &OcfError) {
    log(Level::Err, &e.chain().replace('\n', " "));
    eprintln!("ocf-exit-reason:{}", e.exit_reason());
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
    fn timestamp_follows_the_format() {
        // "%b %d %T " → "Dec 01 22:02:30 "
        let t = timestamp(&CString::new(DEFAULT_DATEFMT).unwrap());
        assert_eq!(t.len(), 16, "{t:?}");
        assert_eq!(&t[3..4], " ");
        assert_eq!(&t[9..10], ":");
        assert!(t.ends_with(' '));
        let iso = timestamp(&CString::new("%Y-%m-%d").unwrap());
        assert_eq!(iso.len(), 10, "{iso}");
    }

    #[test]
    fn file_lines_have_ocf_logs_layout() {
        assert_eq!(logfile_line("Dec 01 22:02:30 ", "IPaddr2(vip)[42]", "ERROR: msg"), "Dec 01 22:02:30  IPaddr2(vip)[42]:    ERROR: msg\n");
        assert_eq!(debuglog_line("Dec 01 22:02:30 ", "IPaddr2(vip)[42]", "DEBUG: msg"), "IPaddr2(vip)[42]:\tDec 01 22:02:30 DEBUG: msg\n");
    }
}
