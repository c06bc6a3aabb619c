//! `ocf:paceline:IPaddr2` with Pacemaker's own tools, no cluster daemons running.
//!
//! What this proves:
//! - the agent installs where Pacemaker looks (`paceline::install::install`);
//! - `pcs` reads our meta-data: it creates a resource with our parameters, refuses an
//!   unknown one, and `pcs resource describe` lists them;
//! - `crm_verify` accepts the resulting CIB;
//! - `crm_resource --force-start/--force-check/--force-stop` (Pacemaker's executor code,
//!   run in-process against a CIB file) drive the agent in a throw-away network namespace
//!   and get the OCF codes back, and an `ocf-exit-reason:` reaches the user.
//!
//! Needs root, `pcs`, `crm_resource`, `cibadmin`, `crm_verify` and `ip`; otherwise each test
//! prints why and returns. Network traffic stays inside the namespaces the test creates
//! (192.0.2.0/24, TEST-NET-1). The agent is left installed in
//! `/usr/lib/ocf/resource.d/paceline/` (installing is idempotent).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use common::{in_path, text, TempDir};

const AGENT: &str = "ocf:paceline:IPaddr2";
const TOOLS: &[&str] = &["pcs", "crm_resource", "cibadmin", "crm_verify", "ip"];

/// Why this machine cannot run the tests, if it cannot.
fn skip_reason() -> Option<String> {
    if !common::privileged() {
        return Some("not root".into());
    }
    let missing: Vec<&str> = TOOLS.iter().copied().filter(|t| !in_path(t)).collect();
    (!missing.is_empty()).then(|| format!("missing {}", missing.join(", ")))
}

fn run(cmd: &mut Command) -> Output {
    let shown = format!("{cmd:?}");
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    eprintln!("$ {shown}\n{}", text(&out));
    out
}

/// Run and require exit 0.
fn ok(cmd: &mut Command) -> Output {
    let shown = format!("{cmd:?}");
    let out = run(cmd);
    assert!(out.status.success(), "{shown} failed:\n{}", text(&out));
    out
}

/// Install the agent once per test process.
fn install_agent() {
    static INSTALLED: OnceLock<Vec<PathBuf>> = OnceLock::new();
    let done = INSTALLED.get_or_init(|| {
        let bin = Path::new(env!("CARGO_BIN_EXE_paceline"));
        let bin_dir = bin.parent().expect("binary has a directory");
        let first = paceline::install::install(bin_dir, Path::new("/")).expect("install the agents");
        // Idempotent: a second run writes the same files.
        let second = paceline::install::install(bin_dir, Path::new("/")).expect("install the agents again");
        assert_eq!(first, second);
        first
    });
    let target = Path::new("/usr/lib/ocf/resource.d/paceline/IPaddr2");
    assert!(done.iter().any(|p| p == target), "install wrote {done:?}, not {}", target.display());
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(target).expect("installed agent");
    assert_eq!(meta.permissions().mode() & 0o777, 0o755);
    let built = std::fs::metadata(env!("CARGO_BIN_EXE_paceline-core")).expect("built agent");
    assert_eq!(meta.len(), built.len(), "installed agent differs from the built one");
}

fn pcs(cib: &Path) -> Command {
    let mut c = Command::new("pcs");
    c.arg("-f").arg(cib);
    c
}

/// An empty CIB with fencing off and the resource `vip` (ip 192.0.2.50/24 on eth0).
fn cib_with_vip(dir: &Path) -> PathBuf {
    let cib = dir.join("cib.xml");
    let empty = ok(Command::new("cibadmin").arg("--empty"));
    std::fs::write(&cib, &empty.stdout).expect("write cib.xml");
    assert!(String::from_utf8_lossy(&empty.stdout).contains("<cib"), "cibadmin --empty printed no CIB");
    ok(pcs(&cib).args(["property", "set", "stonith-enabled=false"]));
    ok(pcs(&cib).args(["resource", "create", "vip", AGENT, "ip=192.0.2.50", "cidr_netmask=24", "nic=eth0", "op", "monitor", "interval=10s"]));
    let xml = std::fs::read_to_string(&cib).expect("read cib.xml");
    assert!(xml.contains("id=\"vip\"") && xml.contains("provider=\"paceline\"") && xml.contains("type=\"IPaddr2\""), "vip missing from the CIB:\n{xml}");
    assert!(xml.contains("value=\"192.0.2.50\""), "{xml}");
    cib
}

/// Does `pcs resource describe` list parameter `name` (a line `  name: ...` or `  name (required): ...`)?
fn describes(listing: &str, name: &str) -> bool {
    listing.lines().any(|l| {
        let l = l.trim_start();
        l.strip_prefix(name).is_some_and(|rest| rest.starts_with(':') || rest.starts_with(" ("))
    })
}

#[test]
fn pcs_reads_metadata_and_crm_verify_accepts_the_cib() {
    skip_unless_possible!("pcs_reads_metadata_and_crm_verify_accepts_the_cib");
    install_agent();
    let dir = TempDir::new("pcs");
    let cib = cib_with_vip(&dir.0);

    // An unknown parameter is refused: pcs checked it against our parameter list.
    let before = std::fs::read_to_string(&cib).unwrap();
    let bad = run(pcs(&cib).args(["resource", "create", "bad", AGENT, "ip=192.0.2.51", "no_such_param=1"]));
    assert!(!bad.status.success(), "pcs accepted an unknown parameter:\n{}", text(&bad));
    let said = String::from_utf8_lossy(&bad.stderr);
    assert!(said.contains("no_such_param"), "pcs did not name the bad option:\n{}", text(&bad));
    // pcs lists the allowed options from our meta-data.
    assert!(said.contains("'cidr_netmask'") && said.contains("'arp_count'"), "{}", text(&bad));
    assert_eq!(std::fs::read_to_string(&cib).unwrap(), before, "refused create changed the CIB");

    let describe = ok(Command::new("pcs").args(["resource", "describe", AGENT]));
    let listing = String::from_utf8_lossy(&describe.stdout);
    for p in ["ip", "cidr_netmask", "nic", "arp_count"] {
        assert!(describes(&listing, p), "pcs resource describe does not list {p}:\n{listing}");
    }
    assert!(listing.contains("(paceline)"), "shortdesc missing:\n{listing}");

    let verify = ok(Command::new("crm_verify").arg("-x").arg(&cib));
    let all = format!("{}{}", String::from_utf8_lossy(&verify.stdout), String::from_utf8_lossy(&verify.stderr)).to_lowercase();
    assert!(!all.contains("error"), "crm_verify reported errors:\n{}", text(&verify));
}

/// `crm_resource <args>` in namespace `ns` against the CIB file.
fn crm_resource(ns: &str, cib: &Path, args: &[&str]) -> Output {
    run(Command::new("ip").args(["netns", "exec", ns, "env"]).arg(format!("CIB_file={}", cib.display())).arg("crm_resource").args(args))
}

fn combined(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn crm_resource_drives_the_agent_in_a_namespace() {
    skip_unless_possible!("crm_resource_drives_the_agent_in_a_namespace");
    install_agent();
    let dir = TempDir::new("crm");
    let cib = cib_with_vip(&dir.0);
    ok(pcs(&cib).args(["resource", "create", "vipbad", AGENT, "ip=192.0.2.52", "cidr_netmask=24", "nic=eth9"]));
    ok(Command::new("crm_verify").arg("-x").arg(&cib));

    let ns = common::Pair::new("pcmk");
    const VIP: &str = "inet 192.0.2.50/24 ";
    assert!(!ns.addrs().contains(VIP));

    let start = crm_resource(&ns.a, &cib, &["--force-start", "-r", "vip", "-V"]);
    assert_eq!(start.status.code(), Some(0), "force-start:\n{}", text(&start));
    assert!(combined(&start).contains("returned 0 (ok)"), "{}", text(&start));
    let addrs = ns.addrs();
    assert!(addrs.contains(VIP) && addrs.contains("eth0"), "192.0.2.50/24 not on eth0 after start:\n{addrs}");

    let check = crm_resource(&ns.a, &cib, &["--force-check", "-r", "vip"]);
    assert_eq!(check.status.code(), Some(0), "force-check while started:\n{}", text(&check));

    let stop = crm_resource(&ns.a, &cib, &["--force-stop", "-r", "vip", "-V"]);
    assert_eq!(stop.status.code(), Some(0), "force-stop:\n{}", text(&stop));
    let addrs = ns.addrs();
    assert!(!addrs.contains("192.0.2.50/"), "192.0.2.50 still on eth0 after stop:\n{addrs}");
    assert!(addrs.contains("inet 192.0.2.1/24 "), "stop removed the interface's own address:\n{addrs}");

    // Pacemaker 2.1.5 exits with the agent's code: 7 is both OCF_NOT_RUNNING and
    // CRM_EX_NOT_RUNNING, and it prints "returned 7 (not running)".
    let check = crm_resource(&ns.a, &cib, &["--force-check", "-r", "vip"]);
    assert_eq!(check.status.code(), Some(7), "force-check while stopped:\n{}", text(&check));
    assert!(combined(&check).contains("returned 7 (not running)"), "{}", text(&check));

    // A node without the interface: start fails with OCF_ERR_INSTALLED (5), and the agent's
    // ocf-exit-reason reaches the user (crm_resource puts it in its "returned" line, and
    // echoes the agent's stderr, on stdout).
    let bad = crm_resource(&ns.a, &cib, &["--force-start", "-r", "vipbad", "-V"]);
    assert!(!bad.status.success(), "force-start on a missing nic succeeded:\n{}", text(&bad));
    assert_eq!(bad.status.code(), Some(5), "expected OCF_ERR_INSTALLED:\n{}", text(&bad));
    let said = combined(&bad);
    assert!(said.contains("eth9"), "the exit reason did not reach the user:\n{}", text(&bad));
    assert!(said.contains("interface eth9 does not exist on this node"), "{}", text(&bad));
    assert!(String::from_utf8_lossy(&bad.stdout).contains("returned 5 (not installed: interface eth9 does not exist on this node)"), "{}", text(&bad));
    assert!(!ns.addrs().contains("192.0.2.52"));

    // Stopping and probing what cannot be here are not failures.
    let stop = crm_resource(&ns.a, &cib, &["--force-stop", "-r", "vipbad"]);
    assert_eq!(stop.status.code(), Some(0), "force-stop on a missing nic:\n{}", text(&stop));
    let check = crm_resource(&ns.a, &cib, &["--force-check", "-r", "vipbad"]);
    assert_eq!(check.status.code(), Some(7), "force-check on a missing nic:\n{}", text(&check));

    let names = [ns.a.clone(), ns.b.clone()];
    drop(ns);
    let list = String::from_utf8_lossy(&ok(Command::new("ip").args(["netns", "list"])).stdout).into_owned();
    assert!(names.iter().all(|n| !list.contains(n.as_str())), "namespaces left behind:\n{list}");
}

/// docs/IPaddr2.md's migration recipe: a resource created for ocf:heartbeat:IPaddr2 is
/// switched to ocf:paceline:IPaddr2 by changing its provider with cibadmin; the CIB stays
/// valid and our agent recognises the address the heartbeat agent started.
#[test]
fn migration_from_heartbeat_by_changing_the_provider() {
    skip_unless_possible!("migration_from_heartbeat_by_changing_the_provider");
    if !Path::new("/usr/lib/ocf/resource.d/heartbeat/IPaddr2").exists() {
        eprintln!("skipping: heartbeat IPaddr2 not installed");
        return;
    }
    install_agent();
    let dir = TempDir::new("migrate");
    let cib = dir.0.join("cib.xml");
    let empty = ok(Command::new("cibadmin").arg("--empty"));
    std::fs::write(&cib, &empty.stdout).unwrap();
    ok(pcs(&cib).args(["property", "set", "stonith-enabled=false"]));
    ok(pcs(&cib).args(["resource", "create", "vip", "ocf:heartbeat:IPaddr2", "ip=192.0.2.53", "cidr_netmask=24", "nic=eth0", "arp_sender=send_arp"]));
    let ns = common::Pair::new("migrate");
    assert_eq!(crm_resource(&ns.a, &cib, &["--force-start", "-r", "vip"]).status.code(), Some(0));
    assert!(ns.addrs().contains("inet 192.0.2.53/24"));

    let cib_env = format!("CIB_file={}", cib.display());
    let xml = dir.0.join("vip.xml");
    let q = ok(Command::new("env").arg(&cib_env).args(["cibadmin", "--query", "--xpath", "//primitive[@id='vip']"]));
    let edited = String::from_utf8_lossy(&q.stdout).replace("provider=\"heartbeat\"", "provider=\"paceline\"");
    std::fs::write(&xml, edited).unwrap();
    ok(Command::new("env").arg(&cib_env).args(["cibadmin", "--replace", "--xpath", "//primitive[@id='vip']", "--xml-file"]).arg(&xml));
    let now = std::fs::read_to_string(&cib).unwrap();
    assert!(now.contains("provider=\"paceline\"") && !now.contains("provider=\"heartbeat\""), "{now}");
    ok(Command::new("crm_verify").arg("-x").arg(&cib));

    // Our agent sees the running address (a probe after the switch finds it started),
    // accepts the heartbeat-only arp_sender with a warning, and stops it.
    let check = crm_resource(&ns.a, &cib, &["--force-check", "-r", "vip"]);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check));
    assert_eq!(crm_resource(&ns.a, &cib, &["--force-stop", "-r", "vip"]).status.code(), Some(0));
    assert!(!ns.addrs().contains("192.0.2.53/"));
}

#[test]
fn pcs_describes_every_pgsqlms_parameter() {
    skip_unless_possible!("pcs_describes_every_pgsqlms_parameter");
    install_agent();
    let describe = ok(Command::new("pcs").args(["resource", "describe", "--full", "ocf:paceline:pgsqlms"]));
    let listing = String::from_utf8_lossy(&describe.stdout);
    for p in paceline::agents::pgsqlms::SPEC.all_params() {
        assert!(describes(&listing, p.name), "pcs resource describe does not list {}:\n{listing}", p.name);
    }
    // The promotable-clone actions pcs shows from the meta-data.
    for action in ["promote", "demote", "notify"] {
        assert!(listing.contains(action), "no {action} in:\n{listing}");
    }
    // The node state service shares the connection group, and has its own parameter.
    let describe = ok(Command::new("pcs").args(["resource", "describe", "--full", "ocf:paceline:pgsql-state"]));
    let listing = String::from_utf8_lossy(&describe.stdout);
    for p in paceline::agents::pgsql_state::SPEC.all_params() {
        assert!(describes(&listing, p.name), "pcs resource describe does not list {}:\n{listing}", p.name);
    }
}
