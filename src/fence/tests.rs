//! The power sequences against a scripted device.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use super::options::COMMON;
use super::*;

static EXTRA: &[FenceOpt] = &[
    FenceOpt::new("secret_key", "secret-key", OptKind::String, "[key]", "Secret", "Secret.").short('s').secret(),
    FenceOpt::flag("skip_race_check", "skip-race-check", "Skip race check", "Skip it."),
];
static SPEC: FenceSpec =
    FenceSpec { name: "fence_test", shortdesc: "Test", longdesc: "A test agent.", vendor_url: "https://example.org", options: &[EXTRA, COMMON] };

/// A machine that reaches the requested state after `lag` status polls.
#[derive(Debug, Clone)]
struct Machine {
    power: Power,
    lag: u32,
    polls: u32,
}

#[derive(Debug, Default)]
struct World {
    machines: HashMap<String, Machine>,
    calls: Vec<String>,
    /// The race check refuses.
    self_stopping: bool,
    /// Every status call fails (transient or fatal).
    status_error: Option<FenceError>,
    /// The power call fails.
    power_error: Option<FenceError>,
    /// Targets that ignore power calls.
    stuck: Vec<String>,
    /// The race check reads the targets' states in its own request (as EC2's does).
    race_reads_targets: bool,
}

static WORLD: Mutex<Option<World>> = Mutex::new(None);
static SERIAL: Mutex<()> = Mutex::new(());

struct Fake;

fn with<T>(f: impl FnOnce(&mut World) -> T) -> T {
    f(WORLD.lock().unwrap().as_mut().unwrap())
}

impl Device for Fake {
    fn status(&mut self, plugs: &[String], _deadline: Instant) -> Result<Vec<Power>, FenceError> {
        with(|w| {
            w.calls.push(format!("status {}", plugs.join(",")));
            if let Some(e) = &w.status_error {
                return Err(e.clone());
            }
            plugs
                .iter()
                .map(|p| {
                    let m = w.machines.get_mut(p).ok_or_else(|| FenceError::fatal(format!("{p} does not exist")))?;
                    if matches!(m.power, Power::Starting | Power::Stopping) {
                        m.polls += 1;
                        if m.polls > m.lag {
                            m.power = if m.power == Power::Starting { Power::On } else { Power::Off };
                        }
                    }
                    Ok(m.power)
                })
                .collect()
        })
    }
    fn power(&mut self, plugs: &[String], on: bool, _deadline: Instant) -> Result<(), FenceError> {
        with(|w| {
            w.calls.push(format!("{} {}", if on { "start" } else { "stop" }, plugs.join(",")));
            if let Some(e) = &w.power_error {
                return Err(e.clone());
            }
            for p in plugs {
                if w.stuck.contains(p) {
                    continue;
                }
                let m = w.machines.get_mut(p).unwrap();
                m.power = if on { Power::Starting } else { Power::Stopping };
                m.polls = 0;
            }
            Ok(())
        })
    }
    fn list(&mut self, with_status: bool, _deadline: Instant) -> Result<Vec<Outlet>, FenceError> {
        with(|w| {
            let mut v: Vec<Outlet> =
                w.machines.iter().map(|(id, m)| Outlet { id: id.clone(), name: format!("name-{id}"), power: with_status.then_some(m.power) }).collect();
            v.sort_by(|a, b| a.id.cmp(&b.id));
            Ok(v)
        })
    }
    fn monitor(&mut self, plugs: &[String], deadline: Instant) -> Result<(), FenceError> {
        self.status(plugs, deadline).map(|_| ())
    }
    fn race_check(&mut self, plugs: &[String], _deadline: Instant) -> Result<Option<Vec<Power>>, FenceError> {
        with(|w| {
            w.calls.push("race_check".into());
            if w.self_stopping {
                return Err(FenceError::fatal("this node is itself stopping: refusing to fence"));
            }
            Ok(w.race_reads_targets.then(|| plugs.iter().map(|p| w.machines[p].power).collect()))
        })
    }
}

static AGENT: Agent = Agent { spec: &SPEC, validate: |_| Ok(()), open: |_| Ok(Box::new(Fake)) };

struct Outcome {
    rc: i32,
    out: String,
    err: String,
    calls: Vec<String>,
}

fn machine(power: Power, lag: u32) -> Machine {
    Machine { power, lag, polls: 0 }
}

fn run(world: World, stdin: Option<&str>, args: &[&str]) -> Outcome {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    *WORLD.lock().unwrap() = Some(world);
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let text = stdin.unwrap_or("").to_owned();
    let mut read = move || Ok(text.clone());
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let rc = run::run_with(&AGENT, &args, &mut read, &mut out, &mut err, false);
    let calls = WORLD.lock().unwrap().take().unwrap().calls;
    Outcome { rc, out: String::from_utf8(out).unwrap(), err: String::from_utf8(err).unwrap(), calls }
}

fn world(machines: &[(&str, Power, u32)]) -> World {
    World { machines: machines.iter().map(|(id, p, lag)| (id.to_string(), machine(*p, *lag))).collect(), ..World::default() }
}

const FAST: &str = "stonith_status_sleep=0.01\n";

#[test]
fn off_waits_for_stopped_and_counts_stopping_as_progress() {
    let o = run(world(&[("i-1", Power::On, 3)]), Some(&format!("action=off\nplug=i-1\n{FAST}")), &[]);
    assert_eq!((o.rc, o.out.as_str()), (0, "Success: Powered OFF\n"), "{}", o.err);
    assert_eq!(o.calls[0], "race_check");
    assert_eq!(o.calls[2], "stop i-1");
    // 3 polls "stopping", then "stopped".
    assert_eq!(o.calls.iter().filter(|c| c.starts_with("status")).count(), 1 + 4, "{:?}", o.calls);
}

#[test]
fn off_takes_its_first_look_from_the_race_check() {
    let mut w = world(&[("i-1", Power::On, 1)]);
    w.race_reads_targets = true;
    let o = run(w, Some(&format!("action=off\nplug=i-1\n{FAST}")), &[]);
    assert_eq!((o.rc, o.out.as_str()), (0, "Success: Powered OFF\n"), "{}", o.err);
    assert_eq!(&o.calls[..2], ["race_check", "stop i-1"], "no status request between the race check and the stop");

    let mut w = world(&[("i-1", Power::Off, 0)]);
    w.race_reads_targets = true;
    let o = run(w, Some("action=off\nplug=i-1\n"), &[]);
    assert_eq!((o.out.as_str(), o.calls.as_slice()), ("Success: Already OFF\n", ["race_check".to_string()].as_slice()));
}

#[test]
fn off_when_already_off() {
    let o = run(world(&[("i-1", Power::Off, 0)]), Some("action=off\nport=i-1\n"), &[]);
    assert_eq!((o.rc, o.out.as_str()), (0, "Success: Already OFF\n"));
    assert!(!o.calls.iter().any(|c| c.starts_with("stop")));
}

#[test]
fn off_times_out_with_the_last_state() {
    let mut w = world(&[("i-1", Power::On, 0)]);
    w.stuck = vec!["i-1".into()];
    let t = Instant::now();
    let o = run(w, Some(&format!("action=off\nplug=i-1\npower_timeout=0.3\n{FAST}")), &[]);
    assert_eq!(o.rc, 1);
    assert!(t.elapsed().as_secs_f64() < 2.0, "{:?}", t.elapsed());
    assert!(o.err.contains("Failed: Timed out waiting to power OFF after 0.3 s (power_timeout): i-1 is on"), "{}", o.err);
    assert!(o.out.is_empty());
}

#[test]
fn off_fails_fast_on_fatal_errors_and_polls_through_transient_ones() {
    let mut w = world(&[("i-1", Power::On, 0)]);
    w.power_error = Some(FenceError::fatal("UnauthorizedOperation: not allowed"));
    let o = run(w, Some("action=off\nplug=i-1\n"), &[]);
    assert_eq!(o.rc, 1);
    assert!(o.err.contains("Failed: UnauthorizedOperation"), "{}", o.err);

    let mut w = world(&[("i-1", Power::On, 0)]);
    w.status_error = Some(FenceError::transient("throttled"));
    let o = run(w, Some(&format!("action=status\nplug=i-1\n{FAST}")), &[]);
    assert_eq!(o.rc, 1);
    assert!(o.err.contains("throttled"), "{}", o.err);
}

#[test]
fn race_check_refuses_and_can_be_skipped() {
    let mut w = world(&[("i-1", Power::On, 0)]);
    w.self_stopping = true;
    let o = run(w, Some("action=reboot\nplug=i-1\n"), &[]);
    assert_eq!(o.rc, 1);
    assert!(o.err.contains("refusing to fence"), "{}", o.err);
    assert_eq!(o.calls, vec!["race_check"]);

    let mut w = world(&[("i-1", Power::On, 0)]);
    w.self_stopping = true;
    let o = run(w, Some(&format!("action=off\nplug=i-1\nskip_race_check=yes\n{FAST}")), &[]);
    assert_eq!((o.rc, o.out.as_str()), (0, "Success: Powered OFF\n"), "{}", o.err);
    assert!(!o.calls.contains(&"race_check".to_string()));
}

#[test]
fn reboot_is_off_then_on_and_a_failed_on_after_a_confirmed_off_is_an_error_not_a_failure() {
    let o = run(world(&[("i-1", Power::On, 1)]), Some(&format!("plug=i-1\n{FAST}")), &[]);
    assert_eq!((o.rc, o.out.as_str()), (0, "Success: Rebooted\n"), "default action is reboot; {}", o.err);
    let seq: Vec<&str> = o.calls.iter().filter(|c| !c.starts_with("status")).map(String::as_str).collect();
    assert_eq!(seq, ["race_check", "stop i-1", "start i-1"]);

    // The target goes off but never comes back on: fenced (success, as fence-agents), and
    // the failed power-on is an error line with both facts.
    let mut w = world(&[("i-1", Power::Off, 0)]);
    w.stuck = vec!["i-1".into()];
    let o = run(w, Some(&format!("action=reboot\nplug=i-1\npower_timeout=0.2\nretry_on=2\n{FAST}")), &[]);
    assert_eq!((o.rc, o.out.as_str()), (0, "Success: Rebooted\n"), "{}", o.err);
    assert!(o.err.contains("ERROR: reboot: i-1 powered OFF (fenced), but not powered ON again: Timed out waiting to power ON"), "{}", o.err);
    assert!(!o.err.contains("Failed:"), "{}", o.err);
    assert_eq!(o.calls.iter().filter(|c| c.starts_with("start")).count(), 2, "retry_on=2: {:?}", o.calls);
}

#[test]
fn on_waits_for_a_stopping_target_first() {
    let o = run(world(&[("i-1", Power::Stopping, 2)]), Some(&format!("action=on\nplug=i-1\n{FAST}")), &[]);
    assert_eq!((o.rc, o.out.as_str()), (0, "Success: Powered ON\n"), "{}", o.err);
    assert!(!o.calls.contains(&"race_check".to_string()), "no race check for on");
    let o = run(world(&[("i-1", Power::On, 0)]), Some("action=on\nplug=i-1\n"), &[]);
    assert_eq!(o.out, "Success: Already ON\n");
}

#[test]
fn several_plugs() {
    let o = run(
        world(&[("i-1", Power::On, 1), ("i-2", Power::Off, 0), ("i-3", Power::Starting, 1)]),
        Some(&format!("action=off\nplug=i-1,i-2, i-3,i-1\n{FAST}")),
        &[],
    );
    assert_eq!((o.rc, o.out.as_str()), (0, "Success: Powered OFF\n"), "{}", o.err);
    // i-3 was booting: it is stopped once up; i-2 was off already.
    assert!(o.calls.contains(&"stop i-1,i-3".to_string()), "{:?}", o.calls);

    let o = run(world(&[("i-1", Power::Off, 0), ("i-2", Power::On, 0)]), None, &["-o", "status", "-n", "i-1:i-2", "--plug-separator=:"]);
    assert_eq!((o.rc, o.out.as_str()), (0, "Status: ON\n"));
}

#[test]
fn status_codes() {
    let o = run(world(&[("i-1", Power::On, 0)]), None, &["-o", "status", "-n", "i-1"]);
    assert_eq!((o.rc, o.out.as_str()), (0, "Status: ON\n"));
    let o = run(world(&[("i-1", Power::Off, 0)]), None, &["--action=status", "--plug=i-1"]);
    assert_eq!((o.rc, o.out.as_str()), (2, "Status: OFF\n"));
    let o = run(world(&[("i-1", Power::Stopping, 9)]), None, &["-ostatus", "-ni-1"]);
    assert_eq!(o.rc, 1);
    assert!(o.err.contains("Unable to obtain correct plug status: i-1 is stopping"), "{}", o.err);
    let o = run(world(&[]), None, &["-o", "status", "-n", "i-9"]);
    assert_eq!(o.rc, 1);
    assert!(o.err.contains("i-9 does not exist"), "{}", o.err);
}

#[test]
fn list_and_list_status() {
    let w = || world(&[("i-1", Power::On, 0), ("i-2", Power::Off, 0), ("i-3", Power::Stopping, 9)]);
    let o = run(w(), Some("action=list\n"), &[]);
    assert_eq!((o.rc, o.out.as_str()), (0, "i-1,name-i-1\ni-2,name-i-2\ni-3,name-i-3\n"));
    let o = run(w(), None, &["-o", "list-status", "-C", ";"]);
    assert_eq!(o.out, "i-1;name-i-1;on\ni-2;name-i-2;off\ni-3;name-i-3;UNKNOWN\n");
}

#[test]
fn bad_input() {
    let w = || world(&[("i-1", Power::On, 0)]);
    for (stdin, args, expect) in [
        (Some("action=off\n"), vec![], "no target given: 'off' needs plug"),
        (None, vec!["-o", "reboot"], "no target given: 'reboot' needs plug"),
        (Some("action=explode\nplug=i-1\n"), vec![], "unrecognised action 'explode'"),
        (Some("action=off\nplug=i-1\npower_timeout=soon\n"), vec![], "option 'power_timeout' must be a number of seconds"),
        (Some("action=off\nplug=i-1\npower_timeout=0\n"), vec![], "power_timeout must be greater than 0"),
        (Some("action=on\nplug=i-1\nretry_on=0\n"), vec![], "retry_on must be between 1 and 100"),
        (Some("action=on\nplug=i-1\nretry_on=1.5\n"), vec![], "option 'retry_on' must be an integer"),
        (Some("plug\n"), vec![], "option 'plug' has no value"),
        (None, vec!["-o", "off", "-x"], "option -x not recognized"),
        (None, vec!["--bogus"], "option --bogus not recognized"),
        (None, vec!["-o"], "option -o requires an argument"),
        (None, vec!["--quiet=1"], "option --quiet must not have an argument"),
        (None, vec!["--p=x"], "option --p is ambiguous"),
        (Some("action=off\nplug=i-1\nskip_race_check=perhaps\n"), vec![], "option 'skip_race_check' must be a boolean"),
    ] {
        let o = run(w(), stdin, &args);
        assert_eq!(o.rc, 1, "{stdin:?} {args:?}");
        assert!(o.err.contains(expect), "{stdin:?} {args:?}: {}", o.err);
        assert!(o.out.is_empty());
        assert!(!o.calls.iter().any(|c| c.starts_with("stop") || c.starts_with("start")), "{stdin:?} {args:?}");
    }
}

#[test]
fn secrets_are_never_echoed() {
    let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    for (stdin, args) in [
        (Some(format!("action=status\nplug=i-1\nsecret_key={secret}\nverbose=1\n")), vec![]),
        (None, vec!["-v".to_string(), "-o".into(), "status".into(), "-n".into(), "i-1".into(), "-s".into(), secret.into()]),
        (Some(format!("action=off\nsecret_key={secret}\nverbose=1\n")), vec![]),
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = run(world(&[("i-1", Power::On, 0)]), stdin.as_deref(), &args);
        assert!(o.err.contains("secret_key=(hidden)"), "debug line lists the option: {}", o.err);
        assert!(!o.err.contains(secret) && !o.out.contains(secret), "{}{}", o.out, o.err);
    }
}

#[test]
fn stdin_tolerance() {
    let o = run(
        world(&[("i-1", Power::Off, 0)]),
        Some("# Pacemaker's fencer\n\naction=status\nnodename=node1\nnodeid=2\nport=\"i-1\"\nstonith-status-sleep=0.5\nfrobnicate=1\npassword=hunter2\n"),
        &[],
    );
    assert_eq!((o.rc, o.out.as_str()), (2, "Status: OFF\n"), "{}", o.err);
    assert!(o.err.contains("ignoring unknown option 'frobnicate'"), "{}", o.err);
    assert!(!o.err.contains("nodename") && !o.err.contains("nodeid"), "nodename/nodeid are silent: {}", o.err);
    assert!(!o.err.contains("hunter2"), "unknown values are not echoed: {}", o.err);
}

#[test]
fn quiet_silences_warnings() {
    let o = run(world(&[("i-1", Power::Off, 0)]), Some("action=status\nplug=i-1\nfoo=bar\nquiet=1\n"), &[]);
    assert_eq!(o.rc, 2);
    assert!(o.err.is_empty(), "{}", o.err);
}

#[test]
fn help_version_metadata_validate() {
    let o = run(world(&[]), None, &["-h"]);
    assert_eq!(o.rc, 0);
    assert!(o.out.contains("-n, --plug=[id]") && o.out.contains("--skip-race-check"), "{}", o.out);
    let o = run(world(&[]), None, &["-V"]);
    assert!(o.out.starts_with("fence_test "), "{}", o.out);
    for a in ["metadata", "meta-data"] {
        let o = run(world(&[]), Some(&format!("action={a}\n")), &[]);
        assert_eq!(o.rc, 0);
        assert!(o.out.contains("<resource-agent name=\"fence_test\""), "{}", o.out);
    }
    let o = run(world(&[]), None, &["-o", "manpage"]);
    assert!(o.out.starts_with(".TH FENCE_TEST 8"), "{}", o.out);
    let o = run(world(&[]), Some("action=validate-all\n"), &[]);
    assert_eq!((o.rc, o.calls.len()), (0, 0), "validate-all without plug, no device call");
}

#[test]
fn metadata_shape() {
    let xml = SPEC.metadata_xml();
    assert!(xml.contains("<resource-agent name=\"fence_test\" shortdesc=\"Test\">"), "{xml}");
    assert!(xml.contains("<parameter name=\"plug\" unique=\"0\" required=\"0\" obsoletes=\"port\">"), "{xml}");
    assert!(xml.contains("<parameter name=\"port\" unique=\"0\" required=\"0\" deprecated=\"1\">"), "{xml}");
    assert!(xml.contains("<getopt mixed=\"-n, --plug=[id]\"/>"), "{xml}");
    assert!(xml.contains("<content type=\"second\" default=\"60\"/>"), "{xml}");
    assert!(xml.contains("<action name=\"on\" automatic=\"0\"/>"), "{xml}");
    assert!(xml.contains("<action name=\"list-status\"/>"), "{xml}");
    assert!(!xml.contains("longdesc lang"), "metadata.rng allows no per-parameter longdesc");
}

#[test]
fn delay_comes_before_the_race_check() {
    let t = Instant::now();
    let o = run(world(&[("i-1", Power::Off, 0)]), Some("action=off\nplug=i-1\ndelay=0.2\n"), &[]);
    assert_eq!(o.rc, 0);
    assert!(t.elapsed().as_secs_f64() >= 0.2);
    let t = Instant::now();
    let o = run(world(&[("i-1", Power::Off, 0)]), Some("action=on\nplug=i-1\ndelay=5\n"), &[]);
    assert_eq!(o.rc, 0);
    assert!(t.elapsed().as_secs_f64() < 4.0, "no delay for on");
}
