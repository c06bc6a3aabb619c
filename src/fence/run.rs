//! From stdin or argv to an exit code: dispatch and the power sequences.
//!
//! The sequences encode what the fencer relies on:
//!
//! * **off** succeeds only once the device reports every target off. A target on its way
//!   there (EC2 `stopping`) is progress; one on its way up (`pending`) is first allowed to
//!   settle, since it cannot be stopped mid-boot. `power_timeout` bounds the whole wait as
//!   a real deadline, also when Pacemaker turned fence-agents' own timeouts off — a fence
//!   action that cannot succeed must fail in bounded time, so the fencer can try the next
//!   device or level instead of hanging until its own timeout.
//! * **delay** (off and reboot only) comes first, then the agent's **race check**, so the
//!   node that was meant to lose a split brain finds out it is being stopped before it
//!   powers anything off.
//! * **on** is tried `retry_on` times, each with its own `power_timeout`.
//! * **reboot** is off then on. It fails if the off fails. Once the off is confirmed the node
//!   *is* fenced — all Pacemaker asked — so a failed power-on (no capacity in the zone, a
//!   retired instance, a start slower than `power_timeout`) is logged as an error and the
//!   reboot still succeeds, as fence-agents' reboot does: failing it would make Pacemaker
//!   retry fencing a node that is already off and never recover its resources. The node
//!   stays off, which `paceline status` shows (an offline node), and the error says why.
//! * Errors the device marks fatal (refused credentials, unknown target) end a sequence at
//!   once; transient ones (throttling, timeouts) are retried until the deadline.
//!
//! Output is fence-agents': results on stdout, failures as `Failed: …` on stderr (the text
//! Pacemaker shows, and scans for "timed out"), exit 0/1 (status and monitor: 0 on, 2 off).

use std::io::{IsTerminal, Read, Write};
use std::time::{Duration, Instant};

use super::input::{Input, InputError};
use super::{Action, Agent, Device, FenceError, Outlet, Power, Request};
use crate::ocf::log::{self, Level};
use crate::ocf::OcfEnv;

/// The most stdin we read: a fence device's options are a few hundred bytes.
const STDIN_LIMIT: u64 = 1 << 20;

/// How long a status check may still take once power_timeout has run out (the last look).
const LAST_LOOK: Duration = Duration::from_secs(2);

/// The longest the race check may take (it is also bounded by power_timeout).
const RACE_CHECK_BUDGET: Duration = Duration::from_secs(20);

/// Run a fence agent: read the options, act, exit with the fence code.
pub fn main_with(agent: &Agent) -> ! {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut read_stdin = || {
        let mut stdin = std::io::stdin();
        if stdin.is_terminal() {
            eprintln!("reading name=value lines from stdin until end of file (Ctrl-D); use -h for the options");
        }
        let mut text = String::new();
        stdin.by_ref().take(STDIN_LIMIT).read_to_string(&mut text).map(|_| text).map_err(|e| format!("cannot read stdin: {e}"))
    };
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr();
    let code = run_with(agent, &args, &mut read_stdin, &mut out, &mut err, true);
    let _ = out.flush();
    std::process::exit(code)
}

/// Where messages go: the OCF logger (syslog, HA_LOGFILE, HA_DEBUGLOG) and, when that does
/// not already print there, stderr — which the fencer logs and `stonith_admin` shows.
pub struct Reporter<'a> {
    err: &'a mut dyn Write,
    /// Messages also go through [`crate::ocf::log`] (false in unit tests).
    system: bool,
    /// The OCF logger already prints every line on stderr.
    logger_stderr: bool,
    quiet: bool,
    verbose: bool,
}

impl Reporter<'_> {
    fn emit(&mut self, level: Level, msg: &str) {
        if self.system {
            log::log(level, msg);
        }
        let wanted = match level {
            Level::Debug | Level::Info => self.verbose,
            _ => true,
        };
        if wanted && !self.quiet && !(self.system && self.logger_stderr) {
            let label = match level {
                Level::Debug => "DEBUG",
                Level::Info => "INFO",
                Level::Warn => "WARNING",
                _ => "ERROR",
            };
            let _ = writeln!(self.err, "{label}: {msg}");
        }
    }
    pub fn debug(&mut self, msg: &str) {
        self.emit(Level::Debug, msg);
    }
    pub fn info(&mut self, msg: &str) {
        self.emit(Level::Info, msg);
    }
    pub fn warn(&mut self, msg: &str) {
        self.emit(Level::Warn, msg);
    }
    /// An error that does not fail the action (a reboot's power-on after a confirmed off).
    pub fn error(&mut self, msg: &str) {
        self.emit(Level::Err, msg);
    }
    /// The failure of the action, in fence-agents' words.
    pub fn fail(&mut self, msg: &str) -> i32 {
        self.emit(Level::Err, &format!("Failed: {msg}"));
        1
    }
}

/// Set up the OCF logger for a fence agent and say whether it prints on stderr itself.
fn init_logging(req: &Request) -> bool {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let mut pairs: Vec<(String, String)> = Vec::new();
    let facility = var("HA_LOGFACILITY").or_else(|| var("PCMK_logfacility")).unwrap_or_else(|| "daemon".into());
    let logfile = var("HA_LOGFILE").or_else(|| var("PCMK_logfile"));
    pairs.push(("HA_LOGFACILITY".into(), facility.clone()));
    if let Some(f) = &logfile {
        pairs.push(("HA_LOGFILE".into(), f.clone()));
    }
    if let Some(f) = req.input.get("debug_file").map(str::to_owned).or_else(|| var("HA_DEBUGLOG")) {
        pairs.push(("HA_DEBUGLOG".into(), f));
    }
    if req.verbose() || req.input.is_set("debug_file") || var("HA_DEBUG").is_some_and(|v| v != "0") {
        pairs.push(("HA_DEBUG".into(), "1".into()));
    }
    // The log tag names the target: fence_paceline_aws(node2)[pid].
    let who = req.input.nodename.clone().or_else(|| req.input.get("plug").map(str::to_owned)).unwrap_or_else(|| "-".into());
    pairs.push(("OCF_RESOURCE_INSTANCE".into(), who));
    log::init(req.spec.name, &OcfEnv::from_pairs(pairs));
    std::io::stderr().is_terminal() || (log::facility(&facility).is_none() && logfile.is_none())
}

/// The testable body of [`main_with`]: `system` turns on the OCF logger (syslog).
pub fn run_with(
    agent: &Agent,
    args: &[String],
    read_stdin: &mut dyn FnMut() -> Result<String, String>,
    out: &mut dyn Write,
    err: &mut dyn Write,
    system: bool,
) -> i32 {
    let opts = agent.spec.options();
    let parsed = if args.is_empty() {
        match read_stdin() {
            Ok(text) => Input::from_stdin(&opts, &text),
            Err(e) => Err(InputError(e)),
        }
    } else {
        Input::from_argv(&opts, args)
    };
    let input = match parsed {
        Ok(i) => i,
        Err(e) => {
            let _ = writeln!(err, "ERROR: Parse error: {e}");
            if !args.is_empty() {
                let _ = writeln!(err, "ERROR: Please use '-h' for usage");
            }
            return 1;
        }
    };
    let is_on = |name: &str| input.get(name) == Some("1");
    if is_on("help") {
        let _ = write!(out, "{}", agent.spec.usage());
        return 0;
    }
    if is_on("version") {
        let _ = writeln!(out, "{} {} (paceline)", agent.spec.name, env!("CARGO_PKG_VERSION"));
        return 0;
    }
    let raw_action = input.get("action").or(agent.spec.option("action").and_then(|o| o.default)).unwrap_or("reboot").to_owned();
    let Some(action) = Action::parse(&raw_action) else {
        // Pacemaker maps "unrecognised action" on stderr to "operation not supported".
        let _ = writeln!(
            err,
            "ERROR: Failed: unrecognised action '{raw_action}' (one of: {})",
            super::ACTIONS.iter().map(|a| a.name).collect::<Vec<_>>().join(", ")
        );
        return 1;
    };
    match action {
        Action::Metadata => {
            let _ = write!(out, "{}", agent.spec.metadata_xml());
            return 0;
        }
        Action::Manpage => {
            let _ = write!(out, "{}", agent.spec.manpage());
            return 0;
        }
        _ => {}
    }
    let req = Request { spec: agent.spec, action, input };
    let logger_stderr = system && init_logging(&req);
    let mut rep = Reporter { err, system, logger_stderr, quiet: req.input.get("quiet") == Some("1"), verbose: req.verbose() };
    for w in &req.input.warnings {
        rep.warn(w);
    }
    rep.debug(&format!("action {raw_action}, options from {}: {}", if req.input.from_stdin { "stdin" } else { "the command line" }, describe_options(&req)));
    if let Err(e) = validate(agent, &req) {
        return rep.fail(&e.message);
    }
    if action == Action::ValidateAll {
        return 0;
    }
    let mut dev = match (agent.open)(&req) {
        Ok(d) => d,
        Err(e) => return rep.fail(&e.message),
    };
    act(dev.as_mut(), &req, out, &mut rep)
}

/// `name=value` of every option given, secrets shown as `(hidden)`.
fn describe_options(req: &Request) -> String {
    req.input
        .names()
        .map(|n| {
            let secret = req.spec.option(n).is_some_and(|o| o.secret);
            let v = if secret { "(hidden)" } else { req.input.get(n).unwrap_or("") };
            format!("{n}={v}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The checks every agent shares, then the agent's own.
fn validate(agent: &Agent, req: &Request) -> Result<(), FenceError> {
    if req.action.needs_plug() && req.plugs().is_empty() {
        return Err(FenceError::fatal(format!(
            "no target given: '{}' needs plug (the instance to act on: plug=<id> on stdin, -n <id> on the command line)",
            action_name(req.action)
        )));
    }
    if req.seconds("power_timeout").is_zero() {
        return Err(FenceError::fatal("power_timeout must be greater than 0"));
    }
    if req.seconds("stonith_status_sleep").is_zero() {
        return Err(FenceError::fatal("stonith_status_sleep must be greater than 0"));
    }
    let retry_on = req.int("retry_on");
    if !(1..=100).contains(&retry_on) {
        return Err(FenceError::fatal(format!("retry_on must be between 1 and 100, got {retry_on}")));
    }
    for sep in ["plug_separator", "separator"] {
        if req.str(sep).unwrap_or("").chars().count() != 1 {
            return Err(FenceError::fatal(format!("{sep} must be exactly one character")));
        }
    }
    (agent.validate)(req)
}

fn action_name(a: Action) -> &'static str {
    match a {
        Action::On => "on",
        Action::Off => "off",
        Action::Reboot => "reboot",
        Action::Status => "status",
        Action::List => "list",
        Action::ListStatus => "list-status",
        Action::Monitor => "monitor",
        Action::Metadata => "metadata",
        Action::Manpage => "manpage",
        Action::ValidateAll => "validate-all",
    }
}

fn act(dev: &mut dyn Device, req: &Request, out: &mut dyn Write, rep: &mut Reporter) -> i32 {
    let plugs = req.plugs();
    let one_call = || Instant::now() + req.seconds("power_timeout");
    let mut say = |line: &str| {
        let _ = writeln!(out, "{line}");
    };
    match req.action {
        Action::Status => match dev.status(&plugs, one_call()) {
            Ok(states) if states.contains(&Power::On) => {
                say("Status: ON");
                0
            }
            Ok(states) if states.iter().all(|s| *s == Power::Off) => {
                say("Status: OFF");
                2
            }
            Ok(states) => rep.fail(&format!("Unable to obtain correct plug status: {}", pending(&plugs, &states, None))),
            Err(e) => rep.fail(&format!("Unable to obtain correct plug status: {e}")),
        },
        Action::List | Action::ListStatus => match dev.list(req.action == Action::ListStatus, one_call()) {
            Ok(outlets) => {
                let sep = req.str("separator").unwrap_or(",");
                for o in outlets {
                    say(&list_line(&o, sep, req.action == Action::ListStatus));
                }
                0
            }
            Err(e) => rep.fail(&e.message),
        },
        Action::Monitor => match dev.monitor(&plugs, one_call()) {
            Ok(()) => 0,
            Err(e) => rep.fail(&e.message),
        },
        Action::On => match power_on(dev, req, &plugs, rep) {
            Ok(true) => {
                say("Success: Already ON");
                0
            }
            Ok(false) => {
                say("Success: Powered ON");
                0
            }
            Err(e) => rep.fail(&e.message),
        },
        Action::Off | Action::Reboot => {
            let delay = req.seconds("delay");
            if !delay.is_zero() {
                rep.info(&format!("waiting {} s (delay) before fencing", delay.as_secs_f64()));
                std::thread::sleep(delay);
            }
            let mut seen = None;
            if !req.bool("skip_race_check") {
                let budget = req.seconds("power_timeout").min(RACE_CHECK_BUDGET);
                match dev.race_check(&plugs, Instant::now() + budget) {
                    Ok(states) => seen = states,
                    Err(e) => return rep.fail(&e.message),
                }
            }
            rep.info(&format!("powering off {}", plugs.join(", ")));
            let already = match power_off(dev, req, &plugs, seen, rep) {
                Ok(a) => a,
                Err(e) => return rep.fail(&e.message),
            };
            if req.action == Action::Off {
                say(if already { "Success: Already OFF" } else { "Success: Powered OFF" });
                return 0;
            }
            rep.info(&format!("powering on {}", plugs.join(", ")));
            if let Err(e) = power_on(dev, req, &plugs, rep) {
                rep.error(&format!("reboot: {} powered OFF (fenced), but not powered ON again: {e}; start it by hand once it can run", plugs.join(", ")));
            }
            say("Success: Rebooted");
            0
        }
        Action::Metadata | Action::Manpage | Action::ValidateAll => 0,
    }
}

fn list_line(o: &Outlet, sep: &str, with_status: bool) -> String {
    if !with_status {
        return format!("{}{sep}{}", o.id, o.name);
    }
    let status = match o.power {
        Some(Power::On) => "on",
        Some(Power::Off) => "off",
        _ => "UNKNOWN",
    };
    format!("{}{sep}{}{sep}{status}", o.id, o.name)
}

/// "i-1 is stopping, i-2 is on" for the targets not in `want`.
fn pending(plugs: &[String], states: &[Power], want: Option<Power>) -> String {
    plugs.iter().zip(states).filter(|(_, s)| Some(**s) != want).map(|(p, s)| format!("{p} is {}", s.word())).collect::<Vec<_>>().join(", ")
}

/// What a wait is for: `done(states)` ends it; `what` and `want` word the messages.
struct Goal<'a> {
    what: &'a str,
    want: Option<Power>,
    done: &'a dyn Fn(&[Power]) -> bool,
}

/// Poll until the goal is reached, or fail at the deadline with the last state seen.
fn wait_until(dev: &mut dyn Device, req: &Request, plugs: &[String], deadline: Instant, goal: Goal, rep: &mut Reporter) -> Result<Vec<Power>, FenceError> {
    let Goal { what, want, done } = goal;
    let poll = req.seconds("stonith_status_sleep");
    let mut last;
    loop {
        let look = deadline.max(Instant::now() + LAST_LOOK.min(poll));
        match dev.status(plugs, look) {
            Ok(states) if done(&states) => return Ok(states),
            Ok(states) => {
                last = pending(plugs, &states, want);
                rep.debug(&format!("waiting to {what}: {last}"));
            }
            Err(e) if e.fatal => return Err(e),
            Err(e) => {
                rep.warn(&format!("state check failed, retrying: {e}"));
                last = format!("last check failed: {e}");
            }
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(FenceError::transient(format!(
                "Timed out waiting to {what} after {} s (power_timeout): {last}",
                req.seconds("power_timeout").as_secs_f64()
            )));
        }
        std::thread::sleep(poll.min(deadline - now));
    }
}

/// The off sequence; `Ok(true)` when every target was already off. `seen`: the targets'
/// states as the race check just read them, else the sequence looks first.
fn power_off(dev: &mut dyn Device, req: &Request, plugs: &[String], seen: Option<Vec<Power>>, rep: &mut Reporter) -> Result<bool, FenceError> {
    let deadline = Instant::now() + req.seconds("power_timeout");
    let mut states = match seen {
        Some(s) => s,
        None => dev.status(plugs, deadline)?,
    };
    if states.iter().all(|s| *s == Power::Off) {
        return Ok(true);
    }
    if states.contains(&Power::Starting) {
        // A booting machine cannot be stopped yet: let it finish, then stop it.
        let goal = Goal { what: "power OFF (target still starting)", want: None, done: &|s| !s.contains(&Power::Starting) };
        states = wait_until(dev, req, plugs, deadline, goal, rep)?;
    }
    let targets: Vec<String> = plugs.iter().zip(&states).filter(|(_, s)| **s != Power::Off).map(|(p, _)| p.clone()).collect();
    if !targets.is_empty() {
        dev.power(&targets, false, deadline)?;
        settle(req, deadline);
    }
    let goal = Goal { what: "power OFF", want: Some(Power::Off), done: &|s| s.iter().all(|p| *p == Power::Off) };
    wait_until(dev, req, plugs, deadline, goal, rep)?;
    Ok(false)
}

/// The on sequence with `retry_on` attempts; `Ok(true)` when every target was already on.
fn power_on(dev: &mut dyn Device, req: &Request, plugs: &[String], rep: &mut Reporter) -> Result<bool, FenceError> {
    let attempts = req.int("retry_on").max(1);
    let mut last = FenceError::transient("no attempt made");
    for attempt in 1..=attempts {
        match power_on_once(dev, req, plugs, rep) {
            Ok(already) => return Ok(already),
            Err(e) if e.fatal => return Err(e),
            Err(e) => {
                if attempt < attempts {
                    rep.warn(&format!("power on attempt {attempt} of {attempts} failed: {e}"));
                }
                last = e;
            }
        }
    }
    Err(last)
}

fn power_on_once(dev: &mut dyn Device, req: &Request, plugs: &[String], rep: &mut Reporter) -> Result<bool, FenceError> {
    let deadline = Instant::now() + req.seconds("power_timeout");
    let mut states = dev.status(plugs, deadline)?;
    if states.iter().all(|s| *s == Power::On) {
        return Ok(true);
    }
    if states.contains(&Power::Stopping) {
        // A machine cannot be started before it has finished stopping.
        let goal = Goal { what: "power ON (target still stopping)", want: None, done: &|s| !s.contains(&Power::Stopping) };
        states = wait_until(dev, req, plugs, deadline, goal, rep)?;
    }
    let targets: Vec<String> = plugs.iter().zip(&states).filter(|(_, s)| **s == Power::Off).map(|(p, _)| p.clone()).collect();
    if !targets.is_empty() {
        dev.power(&targets, true, deadline)?;
        settle(req, deadline);
    }
    let goal = Goal { what: "power ON", want: Some(Power::On), done: &|s| s.iter().all(|p| *p == Power::On) };
    wait_until(dev, req, plugs, deadline, goal, rep)?;
    Ok(false)
}

/// `power_wait` after a power call, within the deadline.
fn settle(req: &Request, deadline: Instant) {
    let wait = req.seconds("power_wait").min(deadline.saturating_duration_since(Instant::now()));
    if !wait.is_zero() {
        std::thread::sleep(wait);
    }
}
