//! resource-agents' own ocft suites — the IPaddr2v4, IPaddr2v6 and pgsqlms configs shipped
//! in /usr/share/resource-agents/ocft/configs — run by tests/ocft/run.sh against heartbeat's
//! agents and against ours, side by side. Every case heartbeat's agent passes, ours must
//! pass. The cases heartbeat's agent fails as well, because what the shipped config
//! expects is out of date, are listed in KNOWN with the reason and what each provider
//! must do there (the script keeps the same list, and this test checks that they agree).
//!
//! ocft waits a whole second after starting every agent run, so one config takes 1–1.5 min
//! whatever the agent: the six runs (2 providers × 3 configs) go at once, each in its own
//! network namespace (plt-<pid>-ocft) and work directory, which the script removes itself,
//! also on failure. About 100 s in all.
//!
//! What it catches: built from 6a32676 (before 520d018), our IPaddr2 failed IPaddr2v4 cases
//! 8, 9, 12 and IPaddr2v6 6, 10, 11 (OCF_ERR_INSTALLED where heartbeat's findif gives
//! OCF_ERR_GENERIC: no connected subnet fits) and IPaddr2v4 10 (a netmask wider than the
//! connected subnet accepted without nic), and then every later case that needs the base
//! address — ocft does not restore it when a "(not exist base_ip)" case fails half-way.
//!
//! Needs root, ocft (resource-agents), heartbeat's IPaddr2, PAF and PostgreSQL 15
//! (tests/deps.sh); skips otherwise.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ocft/run.sh");
const PROVIDERS: [&str; 2] = ["heartbeat", "paceline"];
const CONFIGS: [&str; 3] = ["IPaddr2v4", "IPaddr2v6", "pgsqlms"];
/// Far above a run's ~100 s; ocft's own HangTimeout bounds each agent run (20 s, 120 s).
const DEADLINE: Duration = Duration::from_secs(600);

/// What a provider's agent must do in a case.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    Pass,
    /// Fail, with this text in the case's line (ocft's verdict on the failed step).
    Fail(&'static str),
}

/// Cases heartbeat's agents fail because the shipped config's expectation is out of date.
struct Known {
    config: &'static str,
    cases: &'static [u32],
    reason: &'static str,
    heartbeat: Expect,
    paceline: Expect,
    /// A message the heartbeat agent must have logged (the cause of its failure).
    heartbeat_logged: Option<&'static str>,
}

const KNOWN: &[Known] = &[
    Known {
        config: "IPaddr2v6",
        cases: &[13],
        reason: "\"params with force cidr_netmask (base netmask < assigned netmask)\": ip/80 with \
                 no nic, in a connected /64, is expected to fail with OCF_ERR_GENERIC; findif.sh \
                 has long accepted a prefix narrower than the connected subnet (`ip route list \
                 match IP/80` finds the /64) and IPaddr2v4's case 14 expects success for the \
                 same shape (/28 in a /24). Our IPaddr2 does as heartbeat's: it starts, rc 0.",
        heartbeat: Expect::Fail("The return value 'OCF_SUCCESS' != 'OCF_ERR_GENERIC'"),
        paceline: Expect::Fail("The return value 'OCF_SUCCESS' != 'OCF_ERR_GENERIC'"),
        heartbeat_logged: None,
    },
    Known {
        config: "pgsqlms",
        cases: &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
        reason: "the config dates from PAF 1.x (2016, PostgreSQL 9.3) and sets none of what PAF \
                 2.x's validate-all, run before every action, requires from Pacemaker: \
                 crm_feature_set > 3.0.9, meta notify=true (read back with crm_resource), meta \
                 master-max=1. So the monitor of each case's `AgentRun stop` preamble exits 5 \
                 (OCF_ERR_INSTALLED) and no case gets to its own step. Ours checks the clone's \
                 meta attributes only when run as a clone (clone_max set), so it runs them all.",
        heartbeat: Expect::Fail("'./pgsqlms monitor' failed, the return code is 5."),
        paceline: Expect::Pass,
        heartbeat_logged: Some("is compatible with Pacemaker 1.1.13 and greater"),
    },
];

fn skip_reason() -> Option<String> {
    if !common::privileged() {
        return Some("needs root and iproute2".into());
    }
    let needed = [
        "/usr/sbin/ocft",
        "/usr/share/resource-agents/ocft/caselib",
        "/usr/lib/ocf/resource.d/heartbeat/IPaddr2",
        "/usr/lib/ocf/resource.d/heartbeat/pgsqlms",
        "/usr/lib/postgresql/15/bin/postgres",
    ];
    let missing: Vec<&str> = needed.iter().copied().filter(|p| !Path::new(p).exists()).collect();
    if !missing.is_empty() {
        return Some(format!("missing {missing:?} (resource-agents, resource-agents-paf, postgresql-15)"));
    }
    for c in CONFIGS {
        if !Path::new(&format!("/usr/share/resource-agents/ocft/configs/{c}")).exists() {
            return Some(format!("ocft config {c} missing"));
        }
    }
    None
}

/// One case's line: `PROVIDER CONFIG CASE_NO "name" pass|FAIL (details)`.
#[derive(Debug)]
struct Case {
    name: String,
    passed: bool,
    line: String,
}

struct RunOut {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    cases: BTreeMap<u32, Case>,
}

fn parse(provider: &str, config: &str, stdout: &str) -> BTreeMap<u32, Case> {
    let mut cases = BTreeMap::new();
    for line in stdout.lines() {
        let Some(rest) = line.strip_prefix(&format!("{provider} {config} ")) else { continue };
        let Some((no, rest)) = rest.split_once(' ') else { continue };
        let Ok(no) = no.parse::<u32>() else { continue };
        let Some(rest) = rest.strip_prefix('"') else { continue };
        let Some((name, verdict)) = rest.split_once("\" ") else { continue };
        let passed = verdict.starts_with("pass");
        assert!(passed || verdict.starts_with("FAIL"), "unparsable verdict: {line}");
        cases.insert(no, Case { name: name.to_owned(), passed, line: line.to_owned() });
    }
    cases
}

fn spawn(provider: &str, config: &str, bin_dir: &Path) -> Child {
    Command::new("bash")
        .arg(SCRIPT)
        .args([provider, config])
        .env("PACELINE_BIN_DIR", bin_dir)
        .env_remove("OCFT_KEEP_LOGS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash tests/ocft/run.sh")
}

fn known(config: &str, no: u32) -> Option<&'static Known> {
    KNOWN.iter().find(|k| k.config == config && k.cases.contains(&no))
}

fn expectation(provider: &str, config: &str, no: u32) -> Expect {
    match known(config, no) {
        Some(k) if provider == "heartbeat" => k.heartbeat,
        Some(k) => k.paceline,
        None => Expect::Pass,
    }
}

#[test]
fn ocft_suites_heartbeat_and_paceline() {
    if let Some(why) = skip_reason() {
        eprintln!("skipped: {why}");
        return;
    }
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_paceline")).parent().unwrap().to_path_buf();

    // All six at once; a thread per run drains its pipes. Past the deadline (a hang ocft's
    // own HangTimeout did not catch), each run still going gets SIGTERM: its trap tears
    // its namespace and work directory down.
    let start = Instant::now();
    let mut handles = Vec::new();
    for provider in PROVIDERS {
        for config in CONFIGS {
            let child = spawn(provider, config, &bin_dir);
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            handles.push(((provider, config), pid, std::thread::spawn(move || child.wait_with_output().expect("run.sh output"))));
        }
    }
    while !handles.iter().all(|(_, _, h)| h.is_finished()) {
        if start.elapsed() > DEADLINE {
            for (key, pid, h) in &handles {
                if !h.is_finished() {
                    eprintln!("{key:?} still running after {DEADLINE:?}: SIGTERM");
                    let _ = nix::sys::signal::kill(*pid, nix::sys::signal::Signal::SIGTERM);
                }
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut runs: BTreeMap<(&str, &str), RunOut> = BTreeMap::new();
    for (key, _, h) in handles {
        let o = h.join().expect("run thread");
        let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
        let cases = parse(key.0, key.1, &stdout);
        runs.insert(key, RunOut { code: o.status.code(), stdout, stderr: String::from_utf8_lossy(&o.stderr).into_owned(), cases });
    }
    let took = start.elapsed();
    eprintln!("ocft: 6 runs in {:.0} s", took.as_secs_f64());

    let mut problems: Vec<String> = Vec::new();
    for config in CONFIGS {
        let hb = &runs[&("heartbeat", config)];
        let ours = &runs[&("paceline", config)];
        let names = |r: &RunOut| r.cases.iter().map(|(n, c)| (*n, c.name.clone())).collect::<Vec<_>>();
        if hb.cases.is_empty() || names(hb) != names(ours) {
            problems.push(format!("{config}: the two runs did not report the same, non-empty list of cases"));
        }
        for k in KNOWN.iter().filter(|k| k.config == config) {
            for no in k.cases {
                if !hb.cases.contains_key(no) {
                    problems.push(format!("{config}: KNOWN names case {no}, which ocft does not have (the shipped config changed?)"));
                }
            }
            if let Some(text) = k.heartbeat_logged {
                if !hb.stdout.contains(text) {
                    problems.push(format!("heartbeat {config}: the agent did not log \"{text}\", the documented cause of its failures"));
                }
            }
        }
        for provider in PROVIDERS {
            let run = &runs[&(provider, config)];
            let mut unexpected = false;
            for (no, case) in &run.cases {
                let want = expectation(provider, config, *no);
                let marked = case.line.contains("(expected: ");
                match want {
                    Expect::Pass if !case.passed => {
                        unexpected = true;
                        let note = if provider == "heartbeat" {
                            " — heartbeat's own agent fails it: the environment or resource-agents changed; \
                             add it to KNOWN only if ocft's expectation is out of date"
                                .to_owned()
                        } else {
                            " — heartbeat's agent passes it".to_owned()
                        };
                        problems.push(format!("{}{note}", case.line));
                    }
                    Expect::Fail(text) if case.passed || !case.line.contains(text) => {
                        unexpected = true;
                        problems.push(format!(
                            "{} — documented (KNOWN: {}) as failing with \"{text}\"",
                            case.line,
                            known(config, *no).map(|k| k.reason).unwrap_or("")
                        ));
                    }
                    _ => {}
                }
                if marked != matches!(want, Expect::Fail(_)) {
                    problems.push(format!("{} — tests/ocft/run.sh's EXPECTED_FAIL and KNOWN here disagree on this case", case.line));
                }
            }
            if run.code != Some(if unexpected { 1 } else { 0 }) && !run.cases.is_empty() {
                problems.push(format!(
                    "{provider} {config}: run.sh exited {:?} with {} unexpected outcome(s)",
                    run.code,
                    if unexpected { "some" } else { "no" }
                ));
            }
            if run.cases.is_empty() {
                problems.push(format!("{provider} {config}: no case reported (exit {:?})", run.code));
            }
        }
    }
    if !problems.is_empty() {
        let mut msg = format!("{} problem(s):\n  {}\n", problems.len(), problems.join("\n  "));
        for ((provider, config), r) in &runs {
            if r.code != Some(0) {
                msg += &format!("\n--- {provider} {config} (exit {:?}):\n{}{}", r.code, r.stdout, r.stderr);
            }
        }
        panic!("{msg}");
    }
}
