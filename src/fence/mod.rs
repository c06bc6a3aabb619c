//! The fence-agent protocol, as Pacemaker's fencer speaks it.
//!
//! A fence agent is not an OCF resource agent. Pacemaker's fencer (pacemaker-fenced) runs
//! it with no arguments and writes `name=value` lines on its stdin; people run it with
//! fence-agents' options (`-o off -n i-0abc`). It answers with fixed exit codes — 0 success,
//! 1 failure, and for `status`/`monitor` 0 on, 2 off, 1 cannot tell — and with fixed stdout
//! lines that tools parse (`Status: ON`, `Success: Powered OFF`, one `id,name` line per
//! target for `list`). Its metadata follows fence-agents' RelaxNG schema, not the OCF one.
//! All of that is agent-independent and lives here once:
//!
//! * [`options`]: the option table ([`FenceOpt`]) — one definition drives stdin and argv
//!   parsing, metadata, `-h`, the manpage and the docs; [`options::COMMON`] holds the
//!   options every fence agent has;
//! * [`input`]: stdin and argv into one checked [`input::Input`];
//! * [`doc`]: metadata XML, usage, manpage, Markdown table;
//! * [`run`]: action dispatch and the power sequences (off, on, reboot with delay,
//!   power_timeout as a real deadline, power_wait, retry_on), on top of a [`Device`] that
//!   knows only how to read and change the power state of its targets.
//!
//! The fencing invariant this layer guards: "off" is reported only once the device itself
//! reports every target off. A power call that was accepted is not success; a target in
//! transition is progress, not failure; running out of time is failure, with the last
//! state seen in the message.

pub mod doc;
pub mod input;
pub mod options;
pub mod run;

use std::time::{Duration, Instant};

pub use input::Input;
pub use options::{FenceOpt, OptKind, OptSupport};
pub use run::main_with;

use crate::ocf::params::parse_bool;

/// Everything a fence agent says about itself.
#[derive(Debug, Clone, Copy)]
pub struct FenceSpec {
    /// The executable's name (`fence_paceline_aws`), also the log tag.
    pub name: &'static str,
    pub shortdesc: &'static str,
    pub longdesc: &'static str,
    pub vendor_url: &'static str,
    /// Option tables, the agent's own first, then [`options::COMMON`].
    pub options: &'static [&'static [FenceOpt]],
}

impl FenceSpec {
    /// Every option, in table order.
    pub fn options(&self) -> Vec<&'static FenceOpt> {
        self.options.iter().flat_map(|t| t.iter()).collect()
    }

    /// The option named `name` (canonical or alias).
    pub fn option(&self, name: &str) -> Option<&'static FenceOpt> {
        self.options().into_iter().find(|o| o.name == name)
    }
}

/// One action of the protocol, for metadata, manpage and docs.
#[derive(Debug, Clone, Copy)]
pub struct ActionDoc {
    pub name: &'static str,
    pub desc: &'static str,
}

/// The actions every paceline fence agent implements, in fence-agents' order.
pub static ACTIONS: &[ActionDoc] = &[
    ActionDoc {
        name: "on",
        desc: "Power the target(s) on and wait until the device reports them on. Prints 'Success: Powered ON' (or 'Success: Already ON').",
    },
    ActionDoc {
        name: "off",
        desc: "Power the target(s) off and wait until the device reports them off. Prints 'Success: Powered OFF' (or 'Success: Already OFF').",
    },
    ActionDoc { name: "reboot", desc: "off, then on; fails if either fails. Prints 'Success: Rebooted'." },
    ActionDoc {
        name: "status",
        desc: "Prints 'Status: ON' (exit 0) or 'Status: OFF' (exit 2); exit 1 when the state cannot be told (target missing, in transition, API error).",
    },
    ActionDoc { name: "list", desc: "One 'id,name' line per target the device can fence." },
    ActionDoc { name: "list-status", desc: "One 'id,name,on|off' line per target ('UNKNOWN' for a target in transition)." },
    ActionDoc { name: "monitor", desc: "Check that the device answers for the configured target(s); exit 1 on any error." },
    ActionDoc { name: "metadata", desc: "Print the metadata XML (also as 'meta-data')." },
    ActionDoc { name: "manpage", desc: "Print the manual page." },
    ActionDoc { name: "validate-all", desc: "Check the options without contacting the device." },
];

/// A parsed action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    On,
    Off,
    Reboot,
    Status,
    List,
    ListStatus,
    Monitor,
    Metadata,
    Manpage,
    ValidateAll,
}

impl Action {
    pub fn parse(s: &str) -> Option<Action> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "on" => Action::On,
            "off" => Action::Off,
            "reboot" => Action::Reboot,
            "status" => Action::Status,
            "list" => Action::List,
            "list-status" => Action::ListStatus,
            "monitor" => Action::Monitor,
            "metadata" | "meta-data" => Action::Metadata,
            "manpage" => Action::Manpage,
            "validate-all" => Action::ValidateAll,
            _ => return None,
        })
    }

    /// Whether the action acts on targets and so needs `plug`.
    pub fn needs_plug(self) -> bool {
        matches!(self, Action::On | Action::Off | Action::Reboot | Action::Status)
    }
}

/// One invocation: the action and its checked options.
#[derive(Debug, Clone)]
pub struct Request {
    pub spec: &'static FenceSpec,
    pub action: Action,
    pub input: Input,
}

impl Request {
    /// The value, or the option's default.
    pub fn str(&self, name: &str) -> Option<&str> {
        debug_assert!(self.spec.option(name).is_some(), "option '{name}' is not in the agent's table");
        self.input.get(name).or_else(|| self.spec.option(name).and_then(|o| o.default))
    }

    /// A boolean option (checked at parse time); unset without default is false.
    pub fn bool(&self, name: &str) -> bool {
        self.str(name).and_then(parse_bool).unwrap_or(false)
    }

    /// An integer option (checked at parse time), or its default, or 0.
    pub fn int(&self, name: &str) -> i64 {
        self.str(name).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
    }

    /// A seconds option (checked at parse time), or its default, or zero.
    pub fn seconds(&self, name: &str) -> Duration {
        self.str(name).and_then(options::parse_seconds).map(Duration::from_secs_f64).unwrap_or_default()
    }

    /// The targets in `plug`, split on `plug_separator`, blanks dropped, duplicates removed.
    pub fn plugs(&self) -> Vec<String> {
        let sep = self.str("plug_separator").unwrap_or(",");
        let mut out: Vec<String> = Vec::new();
        for p in self.input.get("plug").unwrap_or("").split(sep).map(str::trim).filter(|p| !p.is_empty()) {
            if !out.iter().any(|o| o == p) {
                out.push(p.to_owned());
            }
        }
        out
    }

    /// Whether debug output is wanted (`-v`, `verbose=1`, `verbose_level>0`).
    pub fn verbose(&self) -> bool {
        self.input.verbose > 0 || self.input.get("verbose_level").and_then(|v| v.parse::<i64>().ok()).is_some_and(|l| l > 0)
    }
}

/// The power state of one target as the device reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Power {
    On,
    Off,
    /// On its way to on (EC2 `pending`).
    Starting,
    /// On its way to off (EC2 `stopping`, `shutting-down`).
    Stopping,
}

impl Power {
    pub fn word(self) -> &'static str {
        match self {
            Power::On => "on",
            Power::Off => "off",
            Power::Starting => "starting",
            Power::Stopping => "stopping",
        }
    }
}

/// A target a device can fence, for `list` / `list-status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outlet {
    pub id: String,
    /// A human name (EC2: the `Name` tag), possibly empty.
    pub name: String,
    pub power: Option<Power>,
}

/// A failed fence operation. Fence agents have one failure code (1); `fatal` says whether
/// waiting longer could help (a throttled or timed-out call: no; refused credentials,
/// unknown target: yes, so the power sequences stop at once instead of polling until
/// power_timeout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FenceError {
    pub message: String,
    pub fatal: bool,
}

impl FenceError {
    /// An error that may go away (throttling, timeouts, 5xx).
    pub fn transient(message: impl Into<String>) -> Self {
        FenceError { message: message.into(), fatal: false }
    }
    /// An error that will not go away by waiting.
    pub fn fatal(message: impl Into<String>) -> Self {
        FenceError { message: message.into(), fatal: true }
    }
}

impl std::fmt::Display for FenceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for FenceError {}

/// What an agent must know how to do; the sequences around it are in [`run`]. Every call
/// gets the deadline it must finish by (its own API timeouts and retries fit inside it).
pub trait Device {
    /// The state of each target, in the order given.
    fn status(&mut self, plugs: &[String], deadline: Instant) -> Result<Vec<Power>, FenceError>;
    /// Ask for the targets to be powered on (`on`) or off; returns once the request is
    /// accepted (the caller polls [`Device::status`]).
    fn power(&mut self, plugs: &[String], on: bool, deadline: Instant) -> Result<(), FenceError>;
    /// Every target the device can fence.
    fn list(&mut self, with_status: bool, deadline: Instant) -> Result<Vec<Outlet>, FenceError>;
    /// Check the device answers for these targets (none given: a minimal authenticated call).
    fn monitor(&mut self, plugs: &[String], deadline: Instant) -> Result<(), FenceError>;
    /// Before off and reboot: refuse to fence when the fencing node itself is going away.
    /// A device that reads the targets' states in the same request returns them: they are
    /// the off sequence's first look (fencing is on the clock; one request fewer).
    fn race_check(&mut self, plugs: &[String], deadline: Instant) -> Result<Option<Vec<Power>>, FenceError>;
}

/// A fence agent: its spec, its own checks, and how to reach its device.
pub struct Agent {
    pub spec: &'static FenceSpec,
    /// Agent-specific checks of the options (no network).
    pub validate: fn(&Request) -> Result<(), FenceError>,
    /// Connect to the device (called only for actions that need it).
    pub open: fn(&Request) -> Result<Box<dyn Device>, FenceError>,
}

#[cfg(test)]
mod tests;
