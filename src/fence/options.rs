//! Fence-agent options: one definition per option, many uses.
//!
//! A fence agent is configured through options that have three spellings at once: the
//! `name=value` line Pacemaker's fencer writes on stdin (`plug=i-0abc`), the long option a
//! person types (`--plug=i-0abc`), and the short option of the fence-agents tradition
//! (`-n i-0abc`). The same option also appears in the agent's metadata (which pcs and
//! `stonith_admin` read), in its `-h` text, its manpage and `docs/<agent>.md`. Each of those
//! is produced from one [`FenceOpt`] table, so an agent cannot accept a spelling it does not
//! advertise or advertise one it does not accept.
//!
//! The common options every fence-agents agent has (`action`, `plug`, `delay`,
//! `power_timeout`…) are declared once here, in [`COMMON`]; an agent adds its own table in
//! front of it (see [`super::FenceSpec`]).

use crate::ocf::params::parse_bool;

/// The metadata content type of an option (the values `metadata.rng` allows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptKind {
    String,
    Boolean,
    Integer,
    /// A duration in seconds; paceline also accepts decimals (`0.5`).
    Second,
}

impl OptKind {
    pub fn name(self) -> &'static str {
        match self {
            OptKind::String => "string",
            OptKind::Boolean => "boolean",
            OptKind::Integer => "integer",
            OptKind::Second => "second",
        }
    }
}

/// How far the agent honours an option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptSupport {
    Full,
    /// Accepted for compatibility with fence-agents; setting it logs a warning and does nothing.
    Ignored,
}

/// One option of a fence agent.
#[derive(Debug, Clone, Copy)]
pub struct FenceOpt {
    /// The stdin name and metadata name (`power_timeout`).
    pub name: &'static str,
    /// The short option letter (`-n`), if any.
    pub short: Option<char>,
    /// The long option without dashes (`power-timeout`).
    pub long: &'static str,
    /// The value placeholder shown in `-h` (`[seconds]`); `None` makes it a flag that takes
    /// no value on the command line (a boolean that the flag sets).
    pub placeholder: Option<&'static str>,
    pub kind: OptKind,
    pub default: Option<&'static str>,
    /// Another name of the same option (`port` for `plug`): shown deprecated in the metadata.
    pub alias_of: Option<&'static str>,
    /// The value must never be printed or logged.
    pub secret: bool,
    pub support: OptSupport,
    pub shortdesc: &'static str,
    pub longdesc: &'static str,
}

impl FenceOpt {
    /// A valued option whose long form is `name` with `-` for `_`; refine with the builders.
    pub const fn new(
        name: &'static str,
        long: &'static str,
        kind: OptKind,
        placeholder: &'static str,
        shortdesc: &'static str,
        longdesc: &'static str,
    ) -> Self {
        FenceOpt {
            name,
            short: None,
            long,
            placeholder: Some(placeholder),
            kind,
            default: None,
            alias_of: None,
            secret: false,
            support: OptSupport::Full,
            shortdesc,
            longdesc,
        }
    }
    /// A flag: no value on the command line, a boolean on stdin.
    pub const fn flag(name: &'static str, long: &'static str, shortdesc: &'static str, longdesc: &'static str) -> Self {
        let mut o = Self::new(name, long, OptKind::Boolean, "", shortdesc, longdesc);
        o.placeholder = None;
        o
    }
    pub const fn short(mut self, c: char) -> Self {
        self.short = Some(c);
        self
    }
    pub const fn default(mut self, v: &'static str) -> Self {
        self.default = Some(v);
        self
    }
    pub const fn alias_of(mut self, name: &'static str) -> Self {
        self.alias_of = Some(name);
        self
    }
    pub const fn secret(mut self) -> Self {
        self.secret = true;
        self
    }
    pub const fn ignored(mut self) -> Self {
        self.support = OptSupport::Ignored;
        self
    }

    /// Whether the option takes a value on the command line.
    pub fn takes_value(&self) -> bool {
        self.placeholder.is_some()
    }

    /// The canonical name values are stored under (`plug` for `port`).
    pub fn canonical(&self) -> &'static str {
        self.alias_of.unwrap_or(self.name)
    }

    /// The `getopt mixed` text of the metadata and the left column of `-h`:
    /// `-n, --plug=[id]`.
    pub fn getopt(&self) -> String {
        let long = match self.placeholder {
            Some(p) => format!("--{}={p}", self.long),
            None => format!("--{}", self.long),
        };
        match self.short {
            Some(c) => format!("-{c}, {long}"),
            None => long,
        }
    }

    /// Check a value against the kind; the error says what was expected.
    pub fn check(&self, value: &str) -> Result<(), String> {
        let ok = match self.kind {
            OptKind::String => true,
            OptKind::Boolean => parse_bool(value).is_some(),
            OptKind::Integer => value.trim().parse::<i64>().is_ok(),
            OptKind::Second => parse_seconds(value).is_some(),
        };
        if ok {
            return Ok(());
        }
        let shown = if self.secret { "(hidden)".to_owned() } else { format!("'{value}'") };
        Err(format!(
            "option '{}' must be {}, got {shown}",
            self.name,
            match self.kind {
                OptKind::Boolean => "a boolean (1/yes/on/true or 0/no/off/false)",
                OptKind::Integer => "an integer",
                OptKind::Second => "a number of seconds",
                OptKind::String => "a string",
            }
        ))
    }
}

/// A non-negative number of seconds, decimals allowed (at most a day: anything longer is a typo).
pub fn parse_seconds(value: &str) -> Option<f64> {
    let v: f64 = value.trim().parse().ok()?;
    (v.is_finite() && (0.0..=86_400.0).contains(&v)).then_some(v)
}

/// Names Pacemaker's fencer passes that an agent may ignore without a warning: the
/// target's node name and node id (the target itself comes as `plug`).
pub const SILENT: &[&str] = &["nodename", "nodeid"];

/// The options every fence agent has, as fence-agents' fencing library spells them.
pub static COMMON: &[FenceOpt] = &[
    FenceOpt::new("action", "action", OptKind::String, "[action]", "Fencing action",
        "What to do: on, off, reboot (the default), status, list, list-status, monitor, metadata, manpage or validate-all. Pacemaker's fencer sets it; do not configure it on a device (use pcmk_off_action and friends instead).")
        .short('o').default("reboot"),
    FenceOpt::new("plug", "plug", OptKind::String, "[id]", "Machine to fence (instance ID)",
        "The machine to act on. Several may be given, separated by plug_separator; an action on several succeeds only when it succeeds on each. Pacemaker's fencer passes the target here, mapped through pcmk_host_map.")
        .short('n'),
    FenceOpt::new("port", "plug", OptKind::String, "[id]", "Machine to fence (instance ID)",
        "Old name of plug.")
        .short('n').alias_of("plug"),
    FenceOpt::flag("quiet", "quiet", "Disable logging to stderr",
        "Do not print warnings and debug output on stderr (syslog is not affected).")
        .short('q'),
    FenceOpt::flag("verbose", "verbose", "Verbose mode",
        "Log debug output (each API call and its outcome). Given on the command line, -v may be repeated.")
        .short('v'),
    FenceOpt::new("verbose_level", "verbose-level", OptKind::Integer, "[level]", "Level of debugging detail",
        "Debug output when greater than 0 (the number of -v flags by default)."),
    FenceOpt::new("debug_file", "debug-file", OptKind::String, "[debugfile]", "Write debug information to this file",
        "Append debug output to this file (secrets are never written).")
        .short('D'),
    FenceOpt::new("debug", "debug-file", OptKind::String, "[debugfile]", "Write debug information to this file",
        "Old name of debug_file.")
        .short('D').alias_of("debug_file"),
    FenceOpt::flag("version", "version", "Display version information and exit", "Print the version and exit.").short('V'),
    FenceOpt::flag("help", "help", "Display help and exit", "Print the option list and exit.").short('h'),
    FenceOpt::new("plug_separator", "plug-separator", OptKind::String, "[char]", "Separator between several plugs",
        "The character separating several machines in plug.")
        .default(","),
    FenceOpt::new("separator", "separator", OptKind::String, "[char]", "Separator for the list output",
        "The character separating the fields of the list and list-status output.")
        .short('C').default(","),
    FenceOpt::new("delay", "delay", OptKind::Second, "[seconds]", "Wait X seconds before fencing is started",
        "Seconds to wait before off and reboot (not before on), so that in a split brain one side fences first. Pacemaker's pcmk_delay_base and pcmk_delay_max do the same in the fencer.")
        .default("0"),
    FenceOpt::new("disable_timeout", "disable-timeout", OptKind::String, "[true/false]", "Disable timeout",
        "fence-agents disables its own timeouts when run by Pacemaker 2.0 or later and then waits as long as Pacemaker lets it. paceline always keeps power_timeout as a real deadline, so that a fencing that cannot succeed fails in bounded time.")
        .ignored(),
    FenceOpt::new("login_timeout", "login-timeout", OptKind::Second, "[seconds]", "Wait X seconds for cmd prompt after login",
        "How long logging in may take: resolving the region and credentials, then the first exchange with the endpoint. An endpoint that cannot be reached fails in this time, saying so, instead of being retried until power_timeout.")
        .default("5"),
    FenceOpt::new("power_timeout", "power-timeout", OptKind::Second, "[seconds]", "Test X seconds for status change after ON/OFF",
        "How long to wait, in seconds, for the machine to reach the requested state after the power call — a real deadline, also when Pacemaker disables the agent's timeouts (PCMK_service=pacemaker-fenced). Keep it below the fencer's timeout for the action (stonith-timeout, pcmk_off_timeout).")
        .default("60"),
    FenceOpt::new("power_wait", "power-wait", OptKind::Second, "[seconds]", "Wait X seconds after issuing ON/OFF",
        "Seconds to wait after a power call before polling the state.")
        .default("0"),
    FenceOpt::new("shell_timeout", "shell-timeout", OptKind::Second, "[seconds]", "Wait X seconds for cmd prompt after issuing command",
        "How long one attempt of an API call may take once logged in (connect, send, answer); a slower attempt is abandoned and retried, the whole call staying within power_timeout.")
        .default("3"),
    FenceOpt::new("stonith_status_sleep", "stonith-status-sleep", OptKind::Second, "[seconds]", "Sleep X seconds between status calls during a STONITH action",
        "Seconds between two state polls while waiting for the machine to reach the requested state.")
        .default("1"),
    FenceOpt::new("retry_on", "retry-on", OptKind::Integer, "[attempts]", "Count of attempts to retry power on",
        "How many times on is attempted (each with its own power_timeout) before it fails.")
        .default("1"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn getopt_text() {
        let plug = COMMON.iter().find(|o| o.name == "plug").unwrap();
        assert_eq!(plug.getopt(), "-n, --plug=[id]");
        let quiet = COMMON.iter().find(|o| o.name == "quiet").unwrap();
        assert_eq!(quiet.getopt(), "-q, --quiet");
        let pt = COMMON.iter().find(|o| o.name == "power_timeout").unwrap();
        assert_eq!(pt.getopt(), "--power-timeout=[seconds]");
    }

    #[test]
    fn kinds_are_checked() {
        let pt = COMMON.iter().find(|o| o.name == "power_timeout").unwrap();
        assert!(pt.check("30").is_ok() && pt.check("0.5").is_ok());
        assert!(pt.check("-1").is_err() && pt.check("abc").is_err() && pt.check("inf").is_err());
        let r = COMMON.iter().find(|o| o.name == "retry_on").unwrap();
        assert!(r.check("2").is_ok());
        assert!(r.check("2.5").unwrap_err().contains("an integer"));
        let v = COMMON.iter().find(|o| o.name == "verbose").unwrap();
        assert!(v.check("yes").is_ok() && v.check("maybe").is_err());
    }

    #[test]
    fn secrets_are_not_echoed_in_type_errors() {
        let s = FenceOpt::new("secret_key", "secret-key", OptKind::Integer, "[key]", "s", "s").secret();
        let e = s.check("hunter2").unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
    }
}
