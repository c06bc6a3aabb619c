//! `fence_paceline_aws` as a program: the fence-agent protocol end to end, without EC2.
//!
//! What this proves:
//! - the metadata (asked for on argv and on stdin, as `metadata` and `meta-data`) validates
//!   against fence-agents' RelaxNG schema `/usr/share/cluster/relaxng/metadata.rng`;
//! - `-h`, `-V`, `manpage`, `validate-all` work without any AWS access;
//! - bad input (no plug, unknown action, bad numbers, unknown options, node names instead
//!   of instance ids…) exits 1 with a message, on stdin and on argv, before any request;
//! - an endpoint that refuses connections fails `status`, `monitor` and `off` in bounded
//!   time (power_timeout), never claims a power state;
//! - the secret key never appears on stdout, stderr, the debug file or a log file, also
//!   with `-v`;
//! - installed in /usr/sbin (`paceline::install`), Pacemaker's `stonith_admin --metadata`
//!   and `pcs stonith describe` read it, `stonith_admin --validate` (a made-up target)
//!   passes a good configuration and reports a bad one, and `pcs -f <cib> stonith create` accepts its
//!   options and refuses a misspelt one; `crm_verify` accepts the CIB.
//!
//! Network: only 127.0.0.1 ports nothing listens on. The install test needs root, `pcs`,
//! `stonith_admin`, `cibadmin`, `crm_verify` and leaves the agent installed (idempotent).

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{in_path, text, TempDir};

/// fence_paceline_aws of this build.
fn bin() -> String {
    common::agent("fence_paceline_aws")
}
const RNG: &str = "/usr/share/cluster/relaxng/metadata.rng";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY";
/// A loopback port with nothing listening (the discard port).
const DEAD_ENDPOINT: &str = "http://127.0.0.1:9";

struct Run {
    rc: i32,
    stdout: String,
    stderr: String,
    took: Duration,
}

fn command() -> Command {
    let mut c = Command::new(bin());
    c.env_clear();
    c.env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
    c.env("HA_LOGFACILITY", "none");
    // No credentials from this machine, and nothing but a dead loopback port to talk to,
    // whatever a case leaves out (IMDS and the regional endpoint included).
    c.env("AWS_EC2_METADATA_SERVICE_ENDPOINT", DEAD_ENDPOINT);
    c.env("AWS_ENDPOINT_URL", DEAD_ENDPOINT);
    c.env("AWS_CONFIG_FILE", "/nonexistent");
    c.env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent");
    c
}

fn finish(out: Output, started: Instant) -> Run {
    Run {
        rc: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took: started.elapsed(),
    }
}

fn argv(args: &[&str], env: &[(&str, &str)]) -> Run {
    let started = Instant::now();
    let out = command().args(args).envs(env.iter().copied()).stdin(Stdio::null()).output().expect("run the agent");
    finish(out, started)
}

fn stdin(input: &str, env: &[(&str, &str)]) -> Run {
    let started = Instant::now();
    let mut child = command().envs(env.iter().copied()).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("run the agent");
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    finish(child.wait_with_output().unwrap(), started)
}

fn shown(r: &Run) -> String {
    format!("rc {} in {:?}\n--- stdout\n{}--- stderr\n{}", r.rc, r.took, r.stdout, r.stderr)
}

fn validates(xml: &str) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("fence-meta-{}", std::process::id()));
    std::fs::write(&dir, xml).unwrap();
    let out = Command::new("xmllint").args(["--noout", "--relaxng", RNG]).arg(&dir).output().expect("xmllint");
    let _ = std::fs::remove_file(&dir);
    if out.status.success() {
        Ok(())
    } else {
        Err(text(&out))
    }
}

#[test]
fn metadata_validates_against_fence_agents_schema() {
    let variants = [argv(&["-o", "metadata"], &[]), argv(&["--action=meta-data"], &[]), stdin("action=metadata\n", &[]), stdin("action=meta-data\n", &[])];
    for r in &variants {
        assert_eq!(r.rc, 0, "{}", shown(r));
        assert!(r.stdout.contains("<resource-agent name=\"fence_paceline_aws\""), "{}", shown(r));
        assert!(r.stdout.contains("<parameter name=\"plug\"") && r.stdout.contains("<action name=\"list-status\"/>"));
        assert_eq!(r.stdout, variants[0].stdout);
    }
    if !(Path::new(RNG).is_file() && in_path("xmllint")) {
        eprintln!("skipping the RelaxNG check: {RNG} (fence-agents) or xmllint (libxml2-utils) missing");
        return;
    }
    validates(&variants[0].stdout).unwrap();
    // The schema is strict enough to catch a wrong document.
    assert!(validates(&variants[0].stdout.replace("<vendor-url>", "<vendorurl>").replace("</vendor-url>", "</vendorurl>")).is_err());
}

#[test]
fn help_version_manpage_validate() {
    let h = argv(&["-h"], &[]);
    assert_eq!(h.rc, 0);
    for o in ["-n, --plug=[id]", "-o, --action=[action]", "-s, --secret-key=[key]", "--power-timeout=[seconds]", "--skip-race-check"] {
        assert!(h.stdout.contains(o), "{o}: {}", h.stdout);
    }
    let v = argv(&["-V"], &[]);
    assert_eq!(v.rc, 0);
    assert!(v.stdout.starts_with("fence_paceline_aws "), "{}", v.stdout);
    let m = argv(&["-o", "manpage"], &[]);
    assert_eq!(m.rc, 0);
    assert!(m.stdout.starts_with(".TH FENCE_PACELINE_AWS 8") && m.stdout.contains(".SH ACTIONS"), "{}", m.stdout);
    let ok = stdin("action=validate-all\nregion=eu-west-1\nport=i-0123456789abcdef0\npower_timeout=30\nfilter=tag:Cluster=pg\n", &[]);
    assert_eq!(ok.rc, 0, "{}", shown(&ok));
    let ok = argv(&["-o", "validate-all"], &[]);
    assert_eq!(ok.rc, 0, "no plug needed to validate: {}", shown(&ok));
}

#[test]
fn bad_input_matrix() {
    // Each case must fail before any request: the endpoint would refuse anyway, but the
    // message must be the input's fault, and fast.
    let base = format!("endpoint_url={DEAD_ENDPOINT}\nregion=eu-west-1\n");
    let cases: Vec<(Run, &str)> = vec![
        (stdin(&format!("{base}action=off\n"), &[]), "no target given: 'off' needs plug"),
        (stdin(&format!("{base}action=reboot\nnodename=node2\n"), &[]), "no target given: 'reboot' needs plug"),
        (stdin(&format!("{base}plug=i-0123456789abcdef0\naction=frobnicate\n"), &[]), "unrecognised action 'frobnicate'"),
        (stdin(&format!("{base}action=off\nplug=node2\n"), &[]), "plug 'node2' is not an EC2 instance id"),
        (stdin(&format!("{base}action=off\nplug=i-0123456789abcdef0\npower_timeout=ten\n"), &[]), "option 'power_timeout' must be a number of seconds"),
        (stdin(&format!("{base}action=off\nplug=i-0123456789abcdef0\ndelay=-1\n"), &[]), "option 'delay' must be a number of seconds"),
        (stdin(&format!("{base}action=on\nplug=i-0123456789abcdef0\nretry_on=x\n"), &[]), "option 'retry_on' must be an integer"),
        (stdin(&format!("{base}action=status\nplug=i-0123456789abcdef0\nregion=Mars\n"), &[]), "region 'Mars' is not an AWS region name"),
        (stdin("action=status\nplug=i-0123456789abcdef0\nendpoint_url=ftp://x\n", &[]), "endpoint_url 'ftp://x' must start with https:// or http://"),
        (stdin(&format!("{base}action=list\nfilter=nonsense\n"), &[]), "filter 'nonsense' must be name=value"),
        (stdin(&format!("{base}action=status\nplug=i-0123456789abcdef0\naccess_key=AKIAEXAMPLE\n"), &[]), "access_key is set but secret_key is not"),
        (argv(&["-o", "off", "--endpoint-url", DEAD_ENDPOINT], &[]), "no target given: 'off' needs plug"),
        (argv(&["-o", "off", "-n", "i-0123456789abcdef0", "--bogus"], &[]), "option --bogus not recognized"),
        (argv(&["-o", "off", "-Z"], &[]), "option -Z not recognized"),
        (argv(&["-o", "status", "-n"], &[]), "option -n requires an argument"),
        (argv(&["-o", "status", "-n", "i-0123456789abcdef0", "--power-timeout=0"], &[]), "power_timeout must be greater than 0"),
        (argv(&["-o", "explode", "-n", "i-0123456789abcdef0"], &[]), "unrecognised action 'explode'"),
    ];
    for (r, expect) in &cases {
        assert_eq!(r.rc, 1, "{expect}: {}", shown(r));
        assert!(r.stderr.contains(expect), "expected '{expect}': {}", shown(r));
        assert!(r.stdout.is_empty(), "{}", shown(r));
        assert!(r.took < Duration::from_secs(3), "input errors are immediate: {}", shown(r));
    }
    // Unknown names on stdin are warned about and skipped, by name only.
    let r = stdin("action=validate-all\nfrobnicate=hunter2\n", &[("HA_LOGFACILITY", "daemon")]);
    assert_eq!(r.rc, 0, "{}", shown(&r));
    assert!(r.stderr.contains("ignoring unknown option 'frobnicate'") && !r.stderr.contains("hunter2"), "{}", shown(&r));
}

#[test]
fn unreachable_endpoint_fails_in_bounded_time() {
    let keys = [("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"), ("AWS_SECRET_ACCESS_KEY", SECRET)];
    for action in ["status", "monitor", "off", "list"] {
        let r = stdin(
            &format!("action={action}\nplug=i-0123456789abcdef0\nregion=eu-west-1\nendpoint_url={DEAD_ENDPOINT}\npower_timeout=4\nskip_race_check=1\n"),
            &keys,
        );
        assert_eq!(r.rc, 1, "{action}: {}", shown(&r));
        assert!(r.stdout.is_empty(), "no state claimed: {}", shown(&r));
        assert!(r.stderr.contains("Failed:"), "{}", shown(&r));
        // Out of time while the SDK still retried: the message keeps the cause.
        assert!(r.stderr.contains("Connection refused"), "{action}: {}", shown(&r));
        assert!(r.took < Duration::from_secs(12), "{action} must give up near power_timeout: {}", shown(&r));
    }
}

#[test]
fn the_secret_key_is_never_echoed() {
    let dir = std::env::temp_dir().join(format!("fence-secret-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let debug = dir.join("debug.log");
    let logfile = dir.join("ha.log");
    let d = debug.to_str().unwrap();
    let env = [("HA_LOGFILE", logfile.to_str().unwrap()), ("HA_LOGFACILITY", "none")];
    let runs = [
        argv(&["-v", "-v", "-o", "status", "-n", "i-0123456789abcdef0", "-r", "eu-west-1", "-a", "AKIDEXAMPLE", "-s", SECRET, "--endpoint-url", DEAD_ENDPOINT, "--power-timeout=2", "-D", d], &env),
        stdin(&format!("action=off\nplug=i-0123456789abcdef0\nregion=eu-west-1\naccess_key=AKIDEXAMPLE\nsecret_key={SECRET}\nendpoint_url={DEAD_ENDPOINT}\npower_timeout=2\nskip_race_check=1\nverbose=1\ndebug_file={d}\n"), &env),
        stdin(&format!("action=status\nplug=i-0123456789abcdef0\nsecret_key=\"{SECRET}\"\nverbose=1\n"), &env),
        argv(&["-o", "status", "-n", "i-0123456789abcdef0", "-s", SECRET, "--retry-on=abc"], &env),
    ];
    for r in &runs {
        assert_eq!(r.rc, 1, "{}", shown(r));
        assert!(!r.stdout.contains(SECRET) && !r.stderr.contains(SECRET), "secret leaked: {}", shown(r));
    }
    assert!(runs[0].stderr.contains("secret_key=(hidden)"), "the debug line lists the option: {}", shown(&runs[0]));
    for f in [&debug, &logfile] {
        let content = std::fs::read_to_string(f).unwrap_or_default();
        assert!(!content.is_empty(), "{} is empty", f.display());
        assert!(!content.contains(SECRET), "secret in {}:\n{content}", f.display());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn ok(cmd: &mut Command) -> Output {
    let shown = format!("{cmd:?}");
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    assert!(out.status.success(), "{shown} failed:\n{}", text(&out));
    out
}

#[test]
fn installed_agent_is_accepted_by_stonith_admin_and_pcs() {
    let tools = ["pcs", "stonith_admin", "cibadmin", "crm_verify"];
    if !common::privileged() || tools.iter().any(|t| !in_path(t)) {
        eprintln!("skipping: needs root and {}", tools.join(", "));
        return;
    }
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_paceline")).parent().unwrap();
    let done = paceline::install::install(bin_dir, Path::new("/")).expect("install the agents");
    let target = Path::new("/usr/sbin/fence_paceline_aws");
    assert!(done.iter().any(|p| p == target), "install wrote {done:?}");
    assert_eq!(std::fs::metadata(target).unwrap().len(), std::fs::metadata(env!("CARGO_BIN_EXE_paceline")).unwrap().len());

    let meta = ok(Command::new("stonith_admin").args(["--metadata", "-a", "fence_paceline_aws"]));
    let meta = String::from_utf8_lossy(&meta.stdout);
    assert!(meta.contains("<parameter name=\"plug\"") && meta.contains("power_timeout"), "{meta}");

    let describe = ok(Command::new("pcs").args(["stonith", "describe", "fence_paceline_aws"]));
    let describe = String::from_utf8_lossy(&describe.stdout);
    for p in ["region:", "power_timeout:", "skip_race_check:", "pcmk_host_map:"] {
        assert!(describe.contains(p), "pcs stonith describe lacks {p}:\n{describe}");
    }

    // Pacemaker's own validation runs validate-all with a made-up target (plug=node1).
    ok(Command::new("stonith_admin").args(["--validate", "--agent", "fence_paceline_aws", "--option", "region=eu-west-1", "--option", "power_timeout=30"]));
    let bad = Command::new("stonith_admin").args(["--validate", "--agent", "fence_paceline_aws", "--option", "region=Mars"]).output().unwrap();
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stdout).contains("region 'Mars' is not an AWS region name"), "{}", text(&bad));

    let tmp = TempDir::new("pcs");
    let cib = tmp.0.join("cib.xml");
    std::fs::write(&cib, ok(Command::new("cibadmin").arg("--empty")).stdout).unwrap();
    let pcs = |args: &[&str]| {
        let mut c = Command::new("pcs");
        c.arg("-f").arg(&cib).args(args);
        c
    };
    ok(&mut pcs(&[
        "stonith",
        "create",
        "fence-ec2",
        "fence_paceline_aws",
        "region=eu-west-1",
        "pcmk_host_map=node1:i-0123456789abcdef0;node2:i-0fedcba9876543210",
        "power_timeout=120",
        "skip_os_shutdown=true",
        "delay=0",
        "op",
        "monitor",
        "interval=60s",
    ]));
    let bad = pcs(&["stonith", "create", "fence-typo", "fence_paceline_aws", "regoin=eu-west-1"]).output().unwrap();
    assert!(!bad.status.success(), "pcs accepted a misspelt option:\n{}", text(&bad));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid stonith option 'regoin'"), "{}", text(&bad));
    let xml = std::fs::read_to_string(&cib).unwrap();
    assert!(xml.contains("type=\"fence_paceline_aws\"") && xml.contains("name=\"pcmk_host_map\""), "{xml}");
    ok(Command::new("crm_verify").arg("-x").arg(&cib));
}

/// An endpoint that cannot be reached fails within login_timeout, saying which bound it
/// hit (fence_aws takes 7-10 s whatever it is set to): the login is bounded as fence-agents
/// users expect, whatever power_timeout allows.
#[test]
fn an_unreachable_endpoint_fails_within_login_timeout() {
    for (login, bound) in [("2", Duration::from_secs(4)), ("5", Duration::from_secs(7))] {
        let r = stdin(
            &format!("action=monitor\nplug=i-0123456789abcdef0\nregion=eu-west-1\naccess_key=AKIDEXAMPLE\nsecret_key=x\nendpoint_url={DEAD_ENDPOINT}\npower_timeout=60\nlogin_timeout={login}\n"),
            &[("HA_LOGFACILITY", "none")],
        );
        assert_eq!(r.rc, 1, "{}", shown(&r));
        assert!(r.took < bound, "login_timeout={login}: {}", shown(&r));
        assert!(r.stderr.contains(&format!("login_timeout, {login} s")), "says which bound it hit: {}", shown(&r));
    }
}
