//! `crm-examples/pgsql-ha.sh`, the cluster configuration we ship, checked with Pacemaker's
//! own tools against CIB files — no cluster daemons run.
//!
//! What this proves:
//! - the script builds, with `pcs -f`, the configuration PAF documents: the promotable clone
//!   `pgsqld-clone` (notify=true, one primary, per-role monitors), the VIP `pgsql-vip`, the
//!   colocation with the Promoted role and the promote→start / demote→stop orders;
//! - `crm_verify` accepts it, for the reference stack (ocf:heartbeat:*) and for ours
//!   (ocf:paceline:*, where `--force` is needed only while ocf:paceline:pgsqlms is missing);
//! - `crm_simulate` (the scheduler, with simulated action results) does what an operator
//!   expects from it, with the promotion scores PAF's agent would set (`master-pgsqld`,
//!   permanent node attributes: 1001 on the primary, 1000/990 on the standbys):
//!   three nodes come up → the primary is promoted on node1, standbys on node2 and node3,
//!   the VIP on node1; the primary crashes once → it is recovered in place, the VIP stays;
//!   it crashes a fifth time (migration-threshold=5) → node2 is promoted and the VIP moves
//!   there, after the demote and the promote; node1 is lost → node2 (or whichever standby
//!   has the higher score) is promoted and gets the VIP.
//!
//!
//! `crm-examples/pgsql-ha-ec2.sh` (the EC2 cluster) likewise: the fence device
//! fence_paceline_aws with the node→instance map, stonith-enabled=true, the secondary IP
//! (ocf:paceline:awsvip) placed and ordered like the VIP; crm_verify accepts it; bad settings
//! are refused before anything changes; and when the primary's node fails, crm_simulate
//! fences it before it promotes node2 and starts the VIP and the secondary IP there.
//!
//! Needs root (like the other Pacemaker-tool tests; installing ocf:paceline:IPaddr2 needs
//! it), `pcs`, `cibadmin`, `crm_verify`, `crm_simulate`, `crm_attribute`, `crm_mon` and the
//! PAF and heartbeat IPaddr2 agents; otherwise each test prints why and returns. If `ocf:paceline:IPaddr2` is not installed, the paceline-stack
//! test installs it (as `tests/pacemaker_tools.rs` does).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use common::{in_path, text, TempDir};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/crm-examples/pgsql-ha.sh");
const TOOLS: &[&str] = &["pcs", "cibadmin", "crm_verify", "crm_simulate", "crm_attribute", "crm_mon"];
const PAF: &str = "/usr/lib/ocf/resource.d/heartbeat/pgsqlms";
const HEARTBEAT_IPADDR2: &str = "/usr/lib/ocf/resource.d/heartbeat/IPaddr2";
const PACELINE_IPADDR2: &str = "/usr/lib/ocf/resource.d/paceline/IPaddr2";
const PACELINE_PGSQLMS: &str = "/usr/lib/ocf/resource.d/paceline/pgsqlms";
/// The script's default MONITOR_PROMOTED (15s), in ms: the key of the primary's monitor.
const PROMOTED_MONITOR_MS: u32 = 15_000;
/// The script's migration-threshold.
const MIGRATION_THRESHOLD: u32 = 5;
/// PAF's scores: 1001 on the primary, 1000, 990, ... on the standbys by replication lag.
const SCORES: &[(&str, i32)] = &[("node1", 1001), ("node2", 1000), ("node3", 990)];

/// Effective uid 0, read from /proc (std only).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0")))
        .unwrap_or(false)
}

/// Why this machine cannot run the tests, if it cannot.
fn skip_reason() -> Option<String> {
    if !is_root() {
        return Some("not root".into());
    }
    let missing: Vec<&str> = TOOLS.iter().copied().filter(|t| !in_path(t)).collect();
    if !missing.is_empty() {
        return Some(format!("missing {}", missing.join(", ")));
    }
    for agent in [PAF, HEARTBEAT_IPADDR2] {
        if !Path::new(agent).is_file() {
            return Some(format!("{agent} not installed (resource-agents-paf, resource-agents)"));
        }
    }
    None
}

fn combined(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn run(cmd: &mut Command) -> Output {
    let shown = format!("{cmd:?}");
    cmd.output().unwrap_or_else(|e| panic!("cannot run {shown}: {e}"))
}

/// Run and require exit 0.
fn ok(cmd: &mut Command) -> Output {
    let shown = format!("{cmd:?}");
    let out = run(cmd);
    assert!(out.status.success(), "{shown} failed:\n{}", text(&out));
    out
}

/// A command that works on the CIB file `cib` (CIB_file must be absolute: agents and
/// Pacemaker's tools may change directory).
fn on_file(cib: &Path, tool: &str) -> Command {
    let mut c = Command::new(tool);
    c.env("CIB_file", cib.canonicalize().expect("CIB file exists"));
    c
}

/// `cibadmin --empty` into `cib`.
fn empty_cib(cib: &Path) {
    let empty = ok(Command::new("cibadmin").arg("--empty"));
    assert!(String::from_utf8_lossy(&empty.stdout).contains("<cib"), "cibadmin --empty printed no CIB:\n{}", text(&empty));
    std::fs::write(cib, &empty.stdout).expect("write the CIB file");
}

/// Run the shipped script against `cib` with `env` (PCS is set to `pcs -f <cib>`).
fn run_script(cib: &Path, env: &[(&str, &str)]) -> Output {
    // pcs copies the actions an agent's meta-data advertises into the CIB: every script run
    // must see the agents installed, not only the runs after some test installed them.
    ensure_paceline_ipaddr2();
    let mut c = Command::new("sh");
    c.arg(SCRIPT).env("PCS", format!("pcs -f {}", cib.display()));
    for var in [
        "STACK",
        "STONITH",
        "PCS_CREATE_FLAGS",
        "VIP",
        "CIDR",
        "NIC",
        "PGDATA",
        "DATADIR",
        "BINDIR",
        "PGHOST",
        "PGPORT",
        "MONITOR_PROMOTED",
        "MONITOR_UNPROMOTED",
        "VIP_MONITOR",
        "STATE_ALLOW",
    ] {
        c.env_remove(var); // the caller's environment must not change the defaults under test
    }
    c.env_remove("CIB_file");
    c.envs(env.iter().copied());
    run(&mut c)
}

/// A fresh CIB built by the script with `env`; panics unless the script succeeds. The CIB
/// has no fence device, so STONITH is false unless `env` says otherwise (the script's
/// default, true, refuses a configuration without one: `script_is_safe_by_default`).
fn built_cib(dir: &TempDir, name: &str, env: &[(&str, &str)]) -> (PathBuf, Output) {
    let cib = dir.path(name);
    empty_cib(&cib);
    let env: Vec<(&str, &str)> = [("STONITH", "false")].into_iter().filter(|(k, _)| !env.iter().any(|(e, _)| e == k)).chain(env.iter().copied()).collect();
    let out = run_script(&cib, &env);
    assert!(out.status.success(), "{SCRIPT} with {env:?} failed:\n{}", text(&out));
    (cib, out)
}

/// The reference-stack CIB (script defaults), built once per test process (pcs takes ~8 s).
fn reference_cib() -> &'static str {
    static XML: OnceLock<String> = OnceLock::new();
    XML.get_or_init(|| {
        let dir = TempDir::new("reference");
        let (cib, _) = built_cib(&dir, "cib.xml", &[("STACK", "reference")]);
        std::fs::read_to_string(cib).expect("read the CIB")
    })
}

/// A fence device in `cib`, as the examples' default (STONITH=true) expects the cluster to
/// have before they run: what pcs would create for a platform's fence agent.
fn add_fence_device(cib: &Path) {
    ok(on_file(cib, "cibadmin").args(["--create", "-o", "resources", "--xml-text", FENCE_DEVICE]));
}
const FENCE_DEVICE: &str = r#"<primitive id="fence-test" class="stonith" type="fence_ipmilan"/>"#;

/// Asserts `crm_verify -x cib` exits 0 and prints no error.
fn verify(cib: &Path) {
    let v = run(Command::new("crm_verify").arg("-x").arg(cib).arg("-V"));
    let all = combined(&v).to_lowercase();
    assert!(
        v.status.success() && !all.contains("error"),
        "crm_verify rejected {}:\n{}\n{}",
        cib.display(),
        text(&v),
        std::fs::read_to_string(cib).unwrap_or_default()
    );
}

/// The element of `xml` (one element per line, as pcs writes) whose id is `id`.
fn line_with_id<'a>(xml: &'a str, id: &str) -> Option<&'a str> {
    let needle = format!("id=\"{id}\"");
    xml.lines().map(str::trim).find(|l| l.contains(&needle))
}

/// The value of attribute `name` in one XML start tag.
fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let start = tag.find(&key)? + key.len();
    tag[start..].find('"').map(|end| &tag[start..start + end])
}

/// Checks everything the configuration promises, for agents of `provider`.
fn assert_configuration(xml: &str, provider: &str) {
    let has = |id: &str, pairs: &[(&str, &str)]| {
        let line = line_with_id(xml, id).unwrap_or_else(|| panic!("no element {id} in the CIB:\n{xml}"));
        for (k, v) in pairs {
            assert_eq!(attr(line, k), Some(*v), "{id}: {k} is not {v}: {line}\n{xml}");
        }
    };
    has("pgsqld-clone", &[]);
    has("pgsqld", &[("class", "ocf"), ("provider", provider), ("type", "pgsqlms")]);
    assert!(xml.find("<clone id=\"pgsqld-clone\"").unwrap() < xml.find("<primitive id=\"pgsqld\"").unwrap(), "pgsqld is not inside pgsqld-clone:\n{xml}");
    has("pgsqld-clone-meta_attributes-promotable", &[("name", "promotable"), ("value", "true")]);
    has("pgsqld-clone-meta_attributes-notify", &[("name", "notify"), ("value", "true")]);
    has("pgsqld-clone-meta_attributes-promoted-max", &[("name", "promoted-max"), ("value", "1")]);
    // What PAF 2.3.0's validation reads when run by hand (crm_resource --force-check).
    has("pgsqld-clone-meta_attributes-master-max", &[("name", "master-max"), ("value", "1")]);
    for (name, value) in
        [("bindir", "/usr/lib/postgresql/17/bin"), ("pgdata", "/var/lib/postgresql/17/main"), ("pghost", "/run/postgresql"), ("pgport", "5432")]
    {
        has(&format!("pgsqld-instance_attributes-{name}"), &[("name", name), ("value", value)]);
    }
    assert!(!xml.contains("name=\"datadir\""), "datadir set although DATADIR was not:\n{xml}");
    for (op, timeout) in [("start", "60s"), ("stop", "60s"), ("promote", "30s"), ("demote", "120s"), ("notify", "60s")] {
        has(&format!("pgsqld-{op}-interval-0s"), &[("name", op), ("timeout", timeout)]);
    }
    has("pgsqld-monitor-interval-15s", &[("name", "monitor"), ("interval", "15s"), ("role", "Promoted"), ("timeout", "10s")]);
    has("pgsqld-monitor-interval-16s", &[("name", "monitor"), ("interval", "16s"), ("role", "Unpromoted"), ("timeout", "10s")]);

    has("pgsql-vip", &[("class", "ocf"), ("provider", provider), ("type", "IPaddr2")]);
    has("pgsql-vip-instance_attributes-ip", &[("name", "ip"), ("value", "192.0.2.100")]);
    has("pgsql-vip-instance_attributes-cidr_netmask", &[("name", "cidr_netmask"), ("value", "24")]);
    has("pgsql-vip-instance_attributes-nic", &[("name", "nic"), ("value", "eth0")]);
    has("pgsql-vip-monitor-interval-10s", &[("name", "monitor"), ("interval", "10s")]);
    // Created --disabled, then enabled: no target-role left behind.
    assert!(!xml.contains("target-role"), "a resource is left with a target-role:\n{xml}");

    let constraint = |tag: &str, pairs: &[(&str, &str)]| {
        let found = xml.lines().map(str::trim).filter(|l| l.starts_with(tag)).any(|l| pairs.iter().all(|(k, v)| attr(l, k) == Some(*v)));
        assert!(found, "no {tag} with {pairs:?} in the CIB:\n{xml}");
    };
    constraint("<rsc_colocation", &[("rsc", "pgsql-vip"), ("with-rsc", "pgsqld-clone"), ("with-rsc-role", "Promoted"), ("score", "INFINITY")]);
    constraint(
        "<rsc_order",
        &[
            ("first", "pgsqld-clone"),
            ("first-action", "promote"),
            ("then", "pgsql-vip"),
            ("then-action", "start"),
            ("kind", "Mandatory"),
            ("symmetrical", "false"),
        ],
    );
    constraint(
        "<rsc_order",
        &[
            ("first", "pgsqld-clone"),
            ("first-action", "demote"),
            ("then", "pgsql-vip"),
            ("then-action", "stop"),
            ("kind", "Mandatory"),
            ("symmetrical", "false"),
        ],
    );
    assert_eq!(xml.matches("<rsc_colocation ").count() + xml.matches("<rsc_order ").count(), 3, "unexpected constraints:\n{xml}");

    has("cib-bootstrap-options-stonith-enabled", &[("name", "stonith-enabled"), ("value", "false")]);
    has("rsc_defaults-meta_attributes-resource-stickiness", &[("value", "10")]);
    has("rsc_defaults-meta_attributes-migration-threshold", &[("value", &MIGRATION_THRESHOLD.to_string())]);
}

#[test]
fn reference_stack_builds_a_cib_crm_verify_accepts() {
    skip_unless_possible!("reference_stack_builds_a_cib_crm_verify_accepts");
    let dir = TempDir::new("ref");
    let cib = dir.path("cib.xml");
    std::fs::write(&cib, reference_cib()).unwrap();
    assert_configuration(reference_cib(), "heartbeat");
    verify(&cib);
}

/// The script's defaults are the safe ones (issue #22.3): our agents, fencing on. Fencing on
/// needs a fence device already configured, or Pacemaker would start nothing: without one
/// the script stops before changing anything, with one it sets stonith-enabled=true and
/// the result is a CIB crm_verify accepts. STONITH=false (a test cluster) says so in one
/// line. Bad values stop it before it changes anything too.
#[test]
fn script_is_safe_by_default_and_refuses_bad_settings() {
    skip_unless_possible!("script_is_safe_by_default_and_refuses_bad_settings");
    let dir = TempDir::new("settings");
    let unchanged = |cib: &Path, env: &[(&str, &str)], why: &str| {
        let before = std::fs::read_to_string(cib).unwrap();
        let out = run_script(cib, env);
        assert_eq!(out.status.code(), Some(2), "{env:?} was accepted:\n{}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("pgsql-ha.sh:") && stderr.contains(why), "{env:?}: expected \"{why}\":\n{}", text(&out));
        assert_eq!(std::fs::read_to_string(cib).unwrap(), before, "{env:?} changed the CIB");
    };

    // Defaults, no fence device yet: refused, nothing changed.
    let cib = dir.path("bare.xml");
    empty_cib(&cib);
    unchanged(&cib, &[("PCS_CREATE_FLAGS", "--force")], "no fence device is configured");

    // Defaults with the cluster's fence device: our agents, fencing on, no warning, valid.
    // (Same run: Debian's pg_createcluster layout, configuration and data apart.)
    let cib = dir.path("fence.xml");
    empty_cib(&cib);
    add_fence_device(&cib);
    let out = run_script(&cib, &[("PCS_CREATE_FLAGS", "--force"), ("PGDATA", "/etc/postgresql/15/main"), ("DATADIR", "/var/lib/postgresql/15/main")]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!combined(&out).contains("WARNING: stonith-enabled"), "{}", text(&out));
    let xml = std::fs::read_to_string(&cib).unwrap();
    assert_pgsqld_params(&xml, &[("pgdata", "/etc/postgresql/15/main"), ("datadir", "/var/lib/postgresql/15/main")]);
    for id in ["pgsqld", "pgsql-vip", "pgsql-state"] {
        assert_eq!(attr(line_with_id(&xml, id).unwrap_or_else(|| panic!("no {id}:\n{xml}")), "provider"), Some("paceline"), "{id}: not ours by default");
    }
    let line = line_with_id(&xml, "cib-bootstrap-options-stonith-enabled").expect("stonith-enabled set");
    assert_eq!(attr(line, "value"), Some("true"), "{xml}");
    verify(&cib);

    // STONITH=false says so on stderr, on one line.
    let (cib, out) = built_cib(&dir, "nofence.xml", &[("STONITH", "false"), ("PCS_CREATE_FLAGS", "--force")]);
    let warnings: Vec<String> =
        String::from_utf8_lossy(&out.stderr).lines().filter(|l| l.starts_with("WARNING: stonith-enabled=false")).map(String::from).collect();
    assert_eq!(warnings.len(), 1, "expected one fencing warning:\n{}", text(&out));
    assert_eq!(attr(line_with_id(&std::fs::read_to_string(&cib).unwrap(), "cib-bootstrap-options-stonith-enabled").unwrap(), "value"), Some("false"));

    // Bad values stop the script before it changes anything, each with its reason.
    // (AUTO_REWIND, REWIND_USER and SYNC_MODE are ocf:paceline:pgsqlms parameters: refused on the reference stack.)
    let paceline_only = "parameters of ocf:paceline:pgsqlms only";
    for (env, why) in [
        (vec![("STACK", "heartbeat")], "STACK must be reference or paceline"),
        (vec![("STONITH", "yes")], "STONITH must be true or false"),
        (vec![("MONITOR_UNPROMOTED", "15s")], "must differ"),
        (vec![("STACK", "reference"), ("AUTO_REWIND", "true")], paceline_only),
        (vec![("STACK", "reference"), ("REWIND_USER", "postgres")], paceline_only),
        (vec![("STACK", "reference"), ("SYNC_MODE", "on")], paceline_only),
    ] {
        let cib = dir.path("bad.xml");
        empty_cib(&cib);
        add_fence_device(&cib);
        unchanged(&cib, &env, why);
    }
}

/// Install ocf:paceline:IPaddr2 if it is not (from this build, like tests/pacemaker_tools.rs).
/// Once per test process, before any pcs run (tests run in parallel).
fn ensure_paceline_ipaddr2() {
    static DONE: std::sync::Once = std::sync::Once::new();
    DONE.call_once(|| {
        if Path::new(PACELINE_IPADDR2).is_file() {
            return;
        }
        let bin = Path::new(env!("CARGO_BIN_EXE_paceline"));
        paceline::install::install(bin.parent().expect("binary has a directory"), Path::new("/")).expect("install the agents");
    });
    assert!(Path::new(PACELINE_IPADDR2).is_file());
}

/// The CIB without the parts that depend on the agents' meta-data (pcs copies every action
/// an agent advertises into `<op>` elements — PAF's `methods` and `reload` — but cannot
/// while the agent is missing), with providers blanked.
fn agent_independent(xml: &str) -> Vec<String> {
    xml.lines()
        .filter(|l| !l.trim_start().starts_with("<op "))
        .map(|l| l.replace("provider=\"heartbeat\"", "provider=\"*\"").replace("provider=\"paceline\"", "provider=\"*\""))
        .collect()
}

/// pgsqld's instance attributes `name=value` in `xml`.
fn assert_pgsqld_params(xml: &str, params: &[(&str, &str)]) {
    for (name, value) in params {
        let line = line_with_id(xml, &format!("pgsqld-instance_attributes-{name}")).unwrap_or_else(|| panic!("no {name}:\n{xml}"));
        assert_eq!(attr(line, "value"), Some(*value), "{line}");
    }
}

#[test]
fn paceline_stack_builds_a_cib_crm_verify_accepts() {
    skip_unless_possible!("paceline_stack_builds_a_cib_crm_verify_accepts");
    ensure_paceline_ipaddr2();
    let dir = TempDir::new("paceline");
    let pgsqlms_installed = Path::new(PACELINE_PGSQLMS).is_file();

    if !pgsqlms_installed {
        // Without --force pcs refuses ocf:paceline:pgsqlms: it cannot read the meta-data of
        // an agent that is not installed. (The script stops there; that the VIP needs no
        // --force is shown below.)
        let cib = dir.path("noforce.xml");
        empty_cib(&cib);
        let out = run_script(&cib, &[("STACK", "paceline"), ("STONITH", "false")]);
        assert!(!out.status.success(), "pcs accepted a missing agent:\n{}", text(&out));
        let errors: Vec<&str> = std::str::from_utf8(&out.stderr).unwrap().lines().filter(|l| l.starts_with("Error: Agent")).collect();
        assert!(errors.len() == 1 && errors[0].contains("'ocf:paceline:pgsqlms' is not installed"), "{}", text(&out));
    }

    let (cib, out) = built_cib(&dir, "cib.xml", &[("STACK", "paceline"), ("PCS_CREATE_FLAGS", "--force")]);
    let xml = std::fs::read_to_string(&cib).unwrap();
    assert_configuration(&xml, "paceline");
    verify(&cib);
    // --force did not hide a problem with the VIP: pcs read ocf:paceline:IPaddr2's
    // meta-data (it copied the advertised start/stop timeouts) and warned about pgsqlms only.
    for op in ["start", "stop"] {
        let line =
            line_with_id(&xml, &format!("pgsql-vip-{op}-interval-0s")).unwrap_or_else(|| panic!("pcs added no {op} op from IPaddr2's meta-data:\n{xml}"));
        assert_eq!(attr(line, "timeout"), Some("20s"), "{line}");
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.lines().filter(|l| l.contains("is not installed")).all(|l| l.contains("ocf:paceline:pgsqlms")), "{}", text(&out));
    if !pgsqlms_installed {
        assert!(stderr.contains("Warning: Agent 'ocf:paceline:pgsqlms' is not installed"), "{}", text(&out));
    }

    // AUTO_REWIND / REWIND_USER become the agent's auto_rewind / rewind_user parameters.
    let rewind_env = [("STACK", "paceline"), ("PCS_CREATE_FLAGS", "--force"), ("AUTO_REWIND", "true"), ("REWIND_USER", "postgres")];
    let (rewind_cib, _) = built_cib(&dir, "rewind.xml", &rewind_env);
    let rewind_xml = std::fs::read_to_string(&rewind_cib).unwrap();
    assert_pgsqld_params(&rewind_xml, &[("auto_rewind", "true"), ("rewind_user", "postgres")]);
    let bad = dir.path("bad-rewind.xml");
    empty_cib(&bad);
    let out = run_script(&bad, &[("STACK", "paceline"), ("AUTO_REWIND", "yes")]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    // SYNC_MODE / SYNC_COUNT become synchronous_mode / synchronous_node_count, and on/strict
    // add the node state service as a clone with the same connection parameters.
    let sync_env = [("STACK", "paceline"), ("PCS_CREATE_FLAGS", "--force"), ("SYNC_MODE", "on"), ("SYNC_COUNT", "1")];
    let (sync_cib, _) = built_cib(&dir, "sync.xml", &sync_env);
    let sync_xml = std::fs::read_to_string(&sync_cib).unwrap();
    assert_pgsqld_params(&sync_xml, &[("synchronous_mode", "on"), ("synchronous_node_count", "1")]);
    assert!(sync_xml.contains(r#"<clone id="pgsql-state-clone""#) && sync_xml.contains(r#"type="pgsql-state""#), "no state service clone:\n{sync_xml}");
    let line = line_with_id(&sync_xml, "pgsql-state-instance_attributes-pghost").unwrap_or_else(|| panic!("no pghost:\n{sync_xml}"));
    assert_eq!(attr(line, "value"), Some("/run/postgresql"), "{line}");
    verify(&sync_cib);
    // The state service is there by default (crash reports, routing checks), with or
    // without SYNC_MODE; STATE_SERVICE=false leaves it out.
    assert!(xml.contains(r#"<clone id="pgsql-state-clone""#), "no state service by default:\n{xml}");
    let line = line_with_id(&xml, "pgsql-state-instance_attributes-pgsql_resource").unwrap_or_else(|| panic!("no pgsql_resource:\n{xml}"));
    assert_eq!(attr(line, "value"), Some("pgsqld"), "{line}");
    // Its answers and connections are for the cluster's network (the VIP's) and loopback.
    let line = line_with_id(&xml, "pgsql-state-instance_attributes-allow").unwrap_or_else(|| panic!("no allow:\n{xml}"));
    assert_eq!(attr(line, "value"), Some("192.0.2.100/24 127.0.0.1 ::1"), "{line}");
    let (bare_cib, _) = built_cib(&dir, "bare.xml", &[("STACK", "paceline"), ("PCS_CREATE_FLAGS", "--force"), ("STATE_SERVICE", "false")]);
    let bare_xml = std::fs::read_to_string(&bare_cib).unwrap();
    assert!(!bare_xml.contains("pgsql-state"), "STATE_SERVICE=false: no state service");
    let bad = dir.path("bad-state.xml");
    empty_cib(&bad);
    let out = run_script(&bad, &[("STACK", "paceline"), ("STATE_ALLOW", "")]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("STATE_ALLOW must list the networks"), "{}", text(&out));
    let out = run_script(&bad, &[("STACK", "paceline"), ("STATE_SERVICE", "yes")]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let bad = dir.path("bad-sync.xml");
    empty_cib(&bad);
    let out = run_script(&bad, &[("STACK", "paceline"), ("SYNC_MODE", "quorum")]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    // Without the state service, the two stacks differ in the agents' provider only (and
    // the ops pcs copies from meta-data it could read).
    let (ours, theirs) = (agent_independent(&bare_xml), agent_independent(reference_cib()));
    if ours != theirs {
        let diff: Vec<String> = ours.iter().zip(&theirs).filter(|(a, b)| a != b).map(|(a, b)| format!("paceline : {a}\nreference: {b}")).collect();
        panic!("the paceline and reference configurations differ ({} vs {} lines):\n{}", ours.len(), theirs.len(), diff.join("\n"));
    }
}

// ---------------------------------------------------------------------------------------
// crm_simulate

/// One `* Resource action: <rsc> <action> on <node>` line of crm_simulate's transition.
#[derive(Debug, Clone, PartialEq)]
struct Action {
    rsc: String,
    action: String,
    node: String,
}

/// One resource instance in crm_mon's XML: resource id, role, node (None when stopped).
#[derive(Debug)]
struct Instance {
    rsc: String,
    role: String,
    node: Option<String>,
}

/// One crm_simulate run: what it printed, the actions it took, the state it left.
struct Sim {
    command: String,
    output: String,
    actions: Vec<Action>,
    state: Vec<Instance>,
    state_xml: String,
}

impl Sim {
    /// The index of `rsc action on node` in the transition (clone instance numbers ignored).
    fn find(&self, rsc: &str, action: &str, node: &str) -> Option<usize> {
        self.actions.iter().position(|a| a.rsc == rsc && a.action == action && a.node == node)
    }

    fn must_find(&self, rsc: &str, action: &str, node: &str) -> usize {
        self.find(rsc, action, node).unwrap_or_else(|| panic!("no \"{rsc} {action} on {node}\" in the transition\n{self}"))
    }

    /// The nodes where `rsc` is in `role`.
    fn nodes(&self, rsc: &str, role: &str) -> Vec<&str> {
        let mut v: Vec<&str> = self.state.iter().filter(|i| i.rsc == rsc && i.role == role).filter_map(|i| i.node.as_deref()).collect();
        v.sort();
        v
    }

    /// Asserts the cluster ends with the primary and the VIP on `primary`, standbys on
    /// `standbys`, and nothing else running.
    fn assert_state(&self, primary: &str, standbys: &[&str]) {
        let ok =
            self.nodes("pgsqld", "Promoted") == [primary] && self.nodes("pgsqld", "Unpromoted") == standbys && self.nodes("pgsql-vip", "Started") == [primary];
        let running = self.state.iter().filter(|i| i.node.is_some()).count();
        assert!(
            ok && running == 2 + standbys.len(),
            "expected pgsqld Promoted on {primary}, Unpromoted on {standbys:?}, pgsql-vip on {primary}; got {:?}\n{self}",
            self.state
        );
    }

    fn summary(&self) -> Vec<&str> {
        let section = self.output.split("Transition Summary:").nth(1).unwrap_or("");
        let section = section.split("Executing Cluster Transition:").next().unwrap_or("");
        section.lines().map(str::trim).filter(|l| l.starts_with('*')).collect()
    }
}

impl std::fmt::Display for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "--- $ {}\n{}--- crm_mon --output-as=xml of the result\n{}", self.command, self.output, self.state_xml)
    }
}

/// `<rsc> <action> on <node>` from crm_simulate's "Executing Cluster Transition" section.
fn parse_actions(output: &str) -> Vec<Action> {
    let section = output.split("Executing Cluster Transition:").nth(1).unwrap_or("");
    let section = section.split("Revised Cluster Status:").next().unwrap_or("");
    section
        .lines()
        .filter_map(|l| l.trim().strip_prefix("* Resource action:"))
        .filter_map(|rest| match rest.split_whitespace().collect::<Vec<_>>()[..] {
            [rsc, action, "on", node] => Some(Action { rsc: rsc.split(':').next().unwrap().to_string(), action: action.to_string(), node: node.to_string() }),
            _ => None,
        })
        .collect()
}

/// The resource instances of crm_mon's XML (`<resource id= role=>` then its `<node name=>`).
fn parse_state(xml: &str) -> Vec<Instance> {
    let mut out = Vec::new();
    let mut open: Option<(String, String, bool)> = None; // rsc, role, node seen
    for line in xml.lines().map(str::trim) {
        if line.starts_with("<resource ") {
            let (rsc, role) = (attr(line, "id").unwrap_or("").to_string(), attr(line, "role").unwrap_or("").to_string());
            if line.ends_with("/>") {
                out.push(Instance { rsc, role, node: None });
            } else {
                open = Some((rsc, role, false));
            }
        } else if line.starts_with("<node ") {
            if let Some((rsc, role, seen)) = open.as_mut() {
                out.push(Instance { rsc: rsc.clone(), role: role.clone(), node: attr(line, "name").map(String::from) });
                *seen = true;
            }
        } else if line.starts_with("</resource>") {
            if let Some((rsc, role, false)) = open.take() {
                out.push(Instance { rsc, role, node: None });
            }
        }
    }
    out
}

/// `crm_simulate -x input --simulate --save-output output <args>`, and the state it saved.
fn simulate(input: &Path, output: &Path, args: &[&str]) -> Sim {
    let mut cmd = Command::new("crm_simulate");
    cmd.arg("--xml-file").arg(input).arg("--simulate").arg("--save-output").arg(output).args(args);
    let command = format!("{cmd:?}");
    let out = run(&mut cmd);
    let printed = combined(&out);
    assert!(out.status.success(), "{command} failed:\n{printed}");
    let mon = ok(on_file(output, "crm_mon").args(["--one-shot", "--output-as=xml"]));
    let state_xml = String::from_utf8_lossy(&mon.stdout).into_owned();
    Sim { actions: parse_actions(&printed), state: parse_state(&state_xml), command, output: printed, state_xml }
}

/// Three nodes with PAF's scores added to the CIB `xml`: `<dir>/base.xml`.
fn cib_with_nodes_from(dir: &TempDir, xml: &str, scores: &[(&str, i32)]) -> PathBuf {
    let cib = dir.path("base.xml");
    std::fs::write(&cib, xml).unwrap();
    for (i, (node, score)) in scores.iter().enumerate() {
        ok(on_file(&cib, "cibadmin").args(["--create", "-o", "nodes", "--xml-text", &format!("<node id=\"{}\" uname=\"{node}\"/>", i + 1)]));
        // What PAF's `crm_master --lifetime forever --update S` does: a permanent node
        // attribute master-<resource>, in the <nodes> section.
        ok(on_file(&cib, "crm_attribute").args(["--node", node, "--name", "master-pgsqld", "--update", &score.to_string(), "--lifetime", "forever"]));
        let read = ok(on_file(&cib, "crm_attribute").args(["--node", node, "--name", "master-pgsqld", "--query", "--quiet", "--lifetime", "forever"]));
        assert_eq!(String::from_utf8_lossy(&read.stdout).trim(), score.to_string());
    }
    cib
}

/// All three nodes come up and the cluster settles: `<dir>/steady.xml`.
fn steady_state(dir: &TempDir, scores: &[(&str, i32)]) -> (PathBuf, Sim) {
    steady_state_from(dir, reference_cib(), scores)
}

/// All three nodes come up with the configuration `xml` and the cluster settles.
fn steady_state_from(dir: &TempDir, xml: &str, scores: &[(&str, i32)]) -> (PathBuf, Sim) {
    let base = cib_with_nodes_from(dir, xml, scores);
    let steady = dir.path("steady.xml");
    // --quorum true: without it the scheduler blocks every start ("due to no quorum").
    // No op injection is needed: crm_simulate answers probes with 7 (not running) and
    // every other action with success, so one transition probes, starts, notifies,
    // promotes and starts the VIP.
    let sim = simulate(&base, &steady, &["--quorum", "true", "--node-up", "node1", "--node-up", "node2", "--node-up", "node3"]);
    (steady, sim)
}

#[test]
fn simulate_startup_promotes_the_highest_score_and_places_the_vip() {
    skip_unless_possible!("simulate_startup_promotes_the_highest_score_and_places_the_vip");
    let dir = TempDir::new("startup");
    let (steady, sim) = steady_state(&dir, SCORES);
    sim.assert_state("node1", &["node2", "node3"]);
    // The VIP starts after the promotion; the primary gets the Promoted monitor (15 s),
    // the standbys the Unpromoted one (16 s).
    assert!(sim.must_find("pgsqld", "promote", "node1") < sim.must_find("pgsql-vip", "start", "node1"), "{sim}");
    for node in ["node2", "node3"] {
        assert!(sim.find("pgsqld", "promote", node).is_none(), "{sim}");
        sim.must_find("pgsqld", "monitor=16000", node);
    }
    sim.must_find("pgsqld", "monitor=15000", "node1");

    // Pacemaker took the promotion scores from the master-pgsqld node attributes.
    let scores = combined(&ok(Command::new("crm_simulate").arg("--xml-file").arg(&steady).arg("--show-scores")));
    for expected in ["promotion score on node2: 1000", "promotion score on node3: 990"] {
        assert!(scores.lines().any(|l| l.starts_with("pgsqld:") && l.ends_with(expected)), "no \"{expected}\":\n{scores}");
    }

    // Steady: simulating again changes nothing.
    let again = simulate(&steady, &dir.path("again.xml"), &[]);
    assert!(again.actions.is_empty() && again.summary().is_empty(), "the cluster did not settle:\n{again}");
    again.assert_state("node1", &["node2", "node3"]);
}

/// `pgsqld_monitor_<promoted interval>@node1=9`: the primary's monitor finds PostgreSQL
/// crashed — PAF returns 9 (OCF_FAILED_MASTER) when pg_controldata still says "in
/// production" but nothing answers.
fn primary_crash() -> String {
    format!("pgsqld_monitor_{PROMOTED_MONITOR_MS}@node1=9")
}

#[test]
fn simulate_primary_crash_recovers_in_place_then_fails_over_at_migration_threshold() {
    skip_unless_possible!("simulate_primary_crash_recovers_in_place_then_fails_over_at_migration_threshold");
    let dir = TempDir::new("crash");
    let (mut current, _) = steady_state(&dir, SCORES);

    // Failures 1..threshold-1: recovered on node1 (demote, stop, start, promote); no other
    // node is promoted and the VIP stays put. (crm_simulate also prints "clear_failcount":
    // its injected failure record has no op digest, so the scheduler thinks the operation's
    // definition changed; the simulation does not act on it and the count keeps growing.)
    for n in 1..MIGRATION_THRESHOLD {
        let next = dir.path(&format!("crash{n}.xml"));
        let sim = simulate(&current, &next, &["--op-inject", &primary_crash()]);
        let steps = ["demote", "stop", "start", "promote"].map(|a| sim.must_find("pgsqld", a, "node1"));
        assert!(steps.windows(2).all(|w| w[0] < w[1]), "recovery out of order {steps:?}\n{sim}");
        assert!(sim.summary().iter().any(|l| l.starts_with("* Recover") && l.contains("Promoted node1")), "failure {n}: {:?}\n{sim}", sim.summary());
        for node in ["node2", "node3"] {
            assert!(sim.find("pgsqld", "promote", node).is_none(), "failure {n} promoted {node}\n{sim}");
        }
        assert!(sim.actions.iter().all(|a| a.rsc != "pgsql-vip"), "failure {n} touched the VIP\n{sim}");
        sim.assert_state("node1", &["node2", "node3"]);
        let count = ok(on_file(&next, "crm_attribute").args([
            "--node",
            "node1",
            "--name",
            &format!("fail-count-pgsqld#monitor_{PROMOTED_MONITOR_MS}"),
            "--query",
            "--quiet",
            "--lifetime",
            "reboot",
        ]));
        assert_eq!(String::from_utf8_lossy(&count.stdout).trim(), n.to_string(), "fail count after failure {n}");
        current = next;
    }

    // The threshold-th failure bans pgsqld from node1: demoted and stopped there, node2
    // (score 1000 > node3's 990) promoted, and the VIP moves — stopped on node1 after the
    // demote (demote-then-stop), started on node2 after the promote (promote-then-start).
    let sim = simulate(&current, &dir.path("failover.xml"), &["--op-inject", &primary_crash()]);
    let demote = sim.must_find("pgsqld", "demote", "node1");
    let vip_stop = sim.must_find("pgsql-vip", "stop", "node1");
    let stop = sim.must_find("pgsqld", "stop", "node1");
    let promote = sim.must_find("pgsqld", "promote", "node2");
    let vip_start = sim.must_find("pgsql-vip", "start", "node2");
    assert!(demote < vip_stop && vip_stop < vip_start && stop < promote && promote < vip_start, "actions out of order\n{sim}");
    assert!(sim.find("pgsqld", "start", "node1").is_none() && sim.find("pgsqld", "promote", "node3").is_none(), "{sim}");
    let summary = sim.summary();
    assert!(summary.iter().any(|l| l.starts_with("* Move") && l.contains("pgsql-vip") && l.contains("node1 -> node2")), "{summary:?}\n{sim}");
    assert!(summary.iter().any(|l| l.starts_with("* Promote") && l.contains("Unpromoted -> Promoted node2")), "{summary:?}\n{sim}");
    sim.assert_state("node2", &["node3"]);
    assert!(sim.state.iter().any(|i| i.rsc == "pgsqld" && i.role == "Stopped"), "pgsqld on node1 is not stopped\n{sim}");
}

/// Node1 disappears (`--node-down`, and `--node-fail`, which without fencing is the same: the
/// scheduler has "blind faith" the node is down): the standby with the higher score is
/// promoted and the VIP starts there.
fn node_loss(scores: &[(&str, i32)], how: &str, new_primary: &str, standby: &str) {
    let dir = TempDir::new(&format!("loss{how}"));
    let (steady, first) = steady_state(&dir, scores);
    first.assert_state("node1", &["node2", "node3"]);
    let sim = simulate(&steady, &dir.path("lost.xml"), &[how, "node1"]);
    let promote = sim.must_find("pgsqld", "promote", new_primary);
    assert!(promote < sim.must_find("pgsql-vip", "start", new_primary), "{sim}");
    assert!(sim.find("pgsqld", "promote", standby).is_none(), "{sim}");
    assert!(sim.actions.iter().all(|a| a.node != "node1"), "an action ran on the lost node1\n{sim}");
    sim.assert_state(new_primary, &[standby]);
    assert!(sim.output.contains("OFFLINE: [ node1 ]"), "{sim}");
}

#[test]
fn simulate_node_down_promotes_node2_and_moves_the_vip() {
    skip_unless_possible!("simulate_node_down_promotes_node2_and_moves_the_vip");
    node_loss(SCORES, "--node-down", "node2", "node3");
}

#[test]
fn simulate_node_fail_promotes_node2_and_moves_the_vip() {
    skip_unless_possible!("simulate_node_fail_promotes_node2_and_moves_the_vip");
    node_loss(SCORES, "--node-fail", "node2", "node3");
}

/// The choice follows the agent's scores, not node order: with node3 ahead of node2,
/// node3 becomes the primary.
#[test]
fn simulate_node_down_follows_the_scores() {
    skip_unless_possible!("simulate_node_down_follows_the_scores");
    node_loss(&[("node1", 1001), ("node2", 990), ("node3", 1000)], "--node-down", "node3", "node2");
}

// ---------------------------------------------------------------------------------------
// crm-examples/pgsql-ha-ec2.sh: the EC2 cluster (fence_paceline_aws + awsvip on top of the above)

const EC2_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/crm-examples/pgsql-ha-ec2.sh");
const HOST_MAP: &str = "node1:i-0000000000000000a;node2:i-0000000000000000b;node3:i-0000000000000000c";
const ENDPOINT: &str = "http://192.0.2.250:5000";

/// The settings the EC2 examples read from the environment (and `CIB_file`): cleared, so
/// that the machine running the test cannot steer them.
const EC2_VARS: &[&str] = &[
    "STACK",
    "STONITH",
    "VIP",
    "CIDR",
    "NIC",
    "PGDATA",
    "DATADIR",
    "BINDIR",
    "PGHOST",
    "PGPORT",
    "MONITOR_PROMOTED",
    "MONITOR_UNPROMOTED",
    "VIP_MONITOR",
    "AUTO_REWIND",
    "REWIND_USER",
    "REGION",
    "HOST_MAP",
    "ENDPOINT_URL",
    "PROFILE",
    "SECONDARY_IP",
    "AWSVIP_MONITOR",
    "POWER_TIMEOUT",
    "FENCE_MONITOR",
    "FENCE_DELAY_MAX",
    "FENCE_AGENT",
    "AWSVIP_AGENT",
    "STATE_ALLOW",
    "CIB_file",
];

/// Run an EC2 example `script` against `cib` with `env`, after clearing [`EC2_VARS`] and
/// `more` (PCS is `pcs -f <cib>`; --force because the agents need not be installed on the
/// machine running pcs — the lab test uses the real ones).
fn run_example(script: &str, cib: &Path, more: &[&str], env: &[(&str, &str)]) -> Output {
    ensure_paceline_ipaddr2();
    let mut c = Command::new("sh");
    c.arg(script).env("PCS", format!("pcs -f {}", cib.display()));
    for var in EC2_VARS.iter().chain(more) {
        c.env_remove(var);
    }
    c.env("PCS_CREATE_FLAGS", "--force");
    c.envs(env.iter().copied());
    run(&mut c)
}

fn run_ec2_script(cib: &Path, env: &[(&str, &str)]) -> Output {
    run_example(EC2_SCRIPT, cib, &[], env)
}

/// The EC2 example's CIB (REGION, HOST_MAP, ENDPOINT_URL set; other defaults), built once.
fn ec2_cib() -> &'static str {
    static XML: OnceLock<String> = OnceLock::new();
    XML.get_or_init(|| {
        let dir = TempDir::new("ec2");
        let cib = dir.path("cib.xml");
        empty_cib(&cib);
        let out = run_ec2_script(&cib, &[("REGION", "eu-west-1"), ("HOST_MAP", HOST_MAP), ("ENDPOINT_URL", ENDPOINT)]);
        assert!(out.status.success(), "{EC2_SCRIPT} failed:\n{}", text(&out));
        std::fs::read_to_string(cib).expect("read the CIB")
    })
}

#[test]
fn ec2_example_builds_a_cib_with_fencing_crm_verify_accepts() {
    skip_unless_possible!("ec2_example_builds_a_cib_with_fencing_crm_verify_accepts");
    let xml = ec2_cib();
    let has = |id: &str, pairs: &[(&str, &str)]| {
        let line = line_with_id(xml, id).unwrap_or_else(|| panic!("no element {id} in the CIB:\n{xml}"));
        for (k, v) in pairs {
            assert_eq!(attr(line, k), Some(*v), "{id}: {k} is not {v}: {line}\n{xml}");
        }
    };
    // The fence device: EC2 instances by Pacemaker node name, the fencer's deadlines above
    // the agent's own (power_timeout 60 s: off 90 s, reboot = off + on 150 s).
    has("fence-aws", &[("class", "stonith"), ("type", "fence_paceline_aws")]);
    for (name, value) in [
        ("pcmk_host_map", HOST_MAP),
        ("region", "eu-west-1"),
        ("endpoint_url", ENDPOINT),
        ("power_timeout", "60"),
        ("pcmk_off_timeout", "90s"),
        ("pcmk_reboot_timeout", "150s"),
    ] {
        has(&format!("fence-aws-instance_attributes-{name}"), &[("name", name), ("value", value)]);
    }
    assert!(!xml.contains("pcmk_delay_max"), "no fence delay unless asked:\n{xml}");
    has("cib-bootstrap-options-stonith-enabled", &[("value", "true")]);
    // Everything of pgsql-ha.sh, the paceline stack by default.
    has("pgsqld", &[("class", "ocf"), ("provider", "paceline"), ("type", "pgsqlms")]);
    has("pgsql-vip", &[("class", "ocf"), ("provider", "paceline"), ("type", "IPaddr2")]);
    // The secondary private IP: the VIP's address, moved by awsvip, placed like the VIP.
    has("pgsql-awsvip", &[("class", "ocf"), ("provider", "paceline"), ("type", "awsvip")]);
    for (name, value) in [("secondary_private_ip", "192.0.2.100"), ("region", "eu-west-1"), ("endpoint_url", ENDPOINT)] {
        has(&format!("pgsql-awsvip-instance_attributes-{name}"), &[("name", name), ("value", value)]);
    }
    let constraint = |tag: &str, pairs: &[(&str, &str)]| {
        let found = xml.lines().map(str::trim).filter(|l| l.starts_with(tag)).any(|l| pairs.iter().all(|(k, v)| attr(l, k) == Some(*v)));
        assert!(found, "no {tag} with {pairs:?} in the CIB:\n{xml}");
    };
    for rsc in ["pgsql-vip", "pgsql-awsvip"] {
        constraint("<rsc_colocation", &[("rsc", rsc), ("with-rsc", "pgsqld-clone"), ("with-rsc-role", "Promoted"), ("score", "INFINITY")]);
        constraint(
            "<rsc_order",
            &[("first", "pgsqld-clone"), ("first-action", "promote"), ("then", rsc), ("then-action", "start"), ("kind", "Mandatory"), ("symmetrical", "false")],
        );
        constraint(
            "<rsc_order",
            &[("first", "pgsqld-clone"), ("first-action", "demote"), ("then", rsc), ("then-action", "stop"), ("kind", "Mandatory"), ("symmetrical", "false")],
        );
    }
    assert_eq!(xml.matches("<rsc_colocation ").count() + xml.matches("<rsc_order ").count(), 6, "unexpected constraints:\n{xml}");
    assert!(!xml.contains("target-role"), "a resource is left with a target-role:\n{xml}");
    // With a fence device, stonith-enabled=true is a configuration crm_verify accepts (the
    // same property without a device is refused: script_warns_without_fencing_...).
    let dir = TempDir::new("ec2verify");
    let cib = dir.path("cib.xml");
    std::fs::write(&cib, xml).unwrap();
    verify(&cib);
}

#[test]
fn ec2_example_refuses_bad_settings() {
    skip_unless_possible!("ec2_example_refuses_bad_settings");
    let dir = TempDir::new("ec2bad");
    let good = [("REGION", "eu-west-1"), ("HOST_MAP", HOST_MAP)];
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![("HOST_MAP", HOST_MAP)], "REGION is required"),
        (vec![("REGION", "eu-west-1")], "HOST_MAP is required"),
        (vec![("REGION", "eu-west-1"), ("HOST_MAP", "node1=i-0a;node2:i-0b")], "'node1=i-0a' is not node:i-"),
        (vec![("REGION", "eu-west-1"), ("HOST_MAP", "node1:i-0a;node2")], "'node2' is not node:i-"),
        (good.iter().copied().chain([("STONITH", "false")]).collect(), "STONITH cannot be turned off"),
        (good.iter().copied().chain([("POWER_TIMEOUT", "60s")]).collect(), "POWER_TIMEOUT must be a number"),
        // pgsql-ha.sh's own checks still apply (it runs after the fence device is created:
        // a file that pcs -f edits is thrown away anyway, on a cluster see the README).
    ];
    for (env, why) in cases {
        let cib = dir.path("bad.xml");
        empty_cib(&cib);
        let before = std::fs::read_to_string(&cib).unwrap();
        let out = run_ec2_script(&cib, &env);
        assert_eq!(out.status.code(), Some(2), "{env:?} was accepted:\n{}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("pgsql-ha-ec2.sh:") && stderr.contains(why), "{env:?}: expected \"{why}\":\n{}", text(&out));
        assert_eq!(std::fs::read_to_string(&cib).unwrap(), before, "{env:?} changed the CIB");
    }
}

/// crm_simulate's "Executing Cluster Transition" steps, in order, "* " and padding removed
/// (e.g. "Fencing node1 (reboot)", "Resource action: pgsqld promote on node2").
fn transition_steps(sim: &Sim) -> Vec<String> {
    let section = sim.output.split("Executing Cluster Transition:").nth(1).unwrap_or("");
    let section = section.split("Revised Cluster Status:").next().unwrap_or("");
    section.lines().filter_map(|l| l.trim().strip_prefix("* ")).map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).collect()
}

/// The primary's node is lost (`--node-fail`: it stops answering; with fencing the scheduler
/// no longer has "blind faith" that it is down). Pacemaker must fence it (through the EC2
/// device) before it promotes node2, and the VIP and the secondary IP start on node2 only
/// after the promotion.
#[test]
fn simulate_ec2_node_fail_fences_before_promoting() {
    skip_unless_possible!("simulate_ec2_node_fail_fences_before_promoting");
    let dir = TempDir::new("ec2loss");
    let (steady, first) = steady_state_from(&dir, ec2_cib(), SCORES);
    assert_eq!(first.nodes("pgsqld", "Promoted"), ["node1"], "{first}");
    assert_eq!(first.nodes("pgsql-awsvip", "Started"), ["node1"], "{first}");
    assert_eq!(first.nodes("fence-aws", "Started").len(), 1, "the fence device runs somewhere:\n{first}");
    assert!(first.must_find("pgsqld", "promote", "node1") < first.must_find("pgsql-awsvip", "start", "node1"), "{first}");

    let sim = simulate(&steady, &dir.path("lost.xml"), &["--node-fail", "node1"]);
    let summary = sim.summary();
    assert!(summary.iter().any(|l| l.starts_with("* Fence (reboot) node1")), "no fencing of node1 planned: {summary:?}\n{sim}");
    let steps = transition_steps(&sim);
    let at = |what: &str| steps.iter().position(|l| l.starts_with(what)).unwrap_or_else(|| panic!("no \"{what}\" in the transition {steps:#?}\n{sim}"));
    let (fence, promote, awsvip) = (at("Fencing node1"), at("Resource action: pgsqld promote on node2"), at("Resource action: pgsql-awsvip start on node2"));
    assert!(fence < promote && promote < awsvip, "fence {fence}, promote {promote}, awsvip start {awsvip}: out of order\n{sim}");
    assert_eq!(sim.nodes("pgsqld", "Promoted"), ["node2"], "{sim}");
    assert_eq!(sim.nodes("pgsqld", "Unpromoted"), ["node3"], "{sim}");
    assert_eq!(sim.nodes("pgsql-vip", "Started"), ["node2"], "{sim}");
    assert_eq!(sim.nodes("pgsql-awsvip", "Started"), ["node2"], "{sim}");
    assert!(sim.actions.iter().all(|a| a.node != "node1"), "an action ran on the fenced node1\n{sim}");
}

// ---------------------------------------------------------------------------------------
// crm-examples/pgsql-ha-ec2-multiaz.sh: across availability zones, the overlay IP

const MULTIAZ_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/crm-examples/pgsql-ha-ec2-multiaz.sh");
const TABLES: &str = "rtb-0000000000000000a,rtb-0000000000000000b";

fn run_multiaz_script(cib: &Path, env: &[(&str, &str)]) -> Output {
    // STATE_ALLOW is required there (the overlay IP is no network): the nodes' subnets.
    let env: Vec<(&str, &str)> = [("STATE_ALLOW", MULTIAZ_ALLOW)].into_iter().chain(env.iter().copied()).collect();
    run_example(MULTIAZ_SCRIPT, cib, &["OVERLAY_IP", "ROUTE_TABLES", "OVERLAY_MONITOR", "MONAPI", "OVERLAY_AGENT", "MULTIAZ_REAL_PCS"], &env)
}

const MULTIAZ_ALLOW: &str = "10.0.1.0/24 10.0.2.0/24 127.0.0.1 ::1";

/// The multi-AZ example's CIB, built once.
fn multiaz_cib() -> &'static str {
    static XML: OnceLock<String> = OnceLock::new();
    XML.get_or_init(|| {
        let dir = TempDir::new("multiaz");
        let cib = dir.path("cib.xml");
        empty_cib(&cib);
        let out = run_multiaz_script(
            &cib,
            &[("REGION", "eu-west-1"), ("HOST_MAP", HOST_MAP), ("ENDPOINT_URL", ENDPOINT), ("OVERLAY_IP", "192.0.2.100"), ("ROUTE_TABLES", TABLES)],
        );
        assert!(out.status.success(), "{MULTIAZ_SCRIPT} failed:\n{}", text(&out));
        std::fs::read_to_string(cib).expect("read the CIB")
    })
}

/// pgsql-ha-ec2-multiaz.sh: pgsql-ha-ec2.sh's cluster (fencing through EC2) without its
/// VIP and secondary IP, with the overlay IP placed and ordered like them; crm_verify
/// accepts it; bad settings are refused before the CIB changes.
#[test]
fn multiaz_example_moves_an_overlay_ip_instead_of_the_vip() {
    skip_unless_possible!("multiaz_example_moves_an_overlay_ip_instead_of_the_vip");
    let xml = multiaz_cib();
    let has = |id: &str, pairs: &[(&str, &str)]| {
        let line = line_with_id(xml, id).unwrap_or_else(|| panic!("no element {id} in the CIB:\n{xml}"));
        for (k, v) in pairs {
            assert_eq!(attr(line, k), Some(*v), "{id}: {k} is not {v}: {line}\n{xml}");
        }
    };
    has("fence-aws", &[("class", "stonith"), ("type", "fence_paceline_aws")]);
    has("cib-bootstrap-options-stonith-enabled", &[("value", "true")]);
    has("pgsqld", &[("class", "ocf"), ("provider", "paceline"), ("type", "pgsqlms")]);
    has("pgsql-overlay", &[("class", "ocf"), ("provider", "paceline"), ("type", "aws-vpc-move-ip")]);
    for (name, value) in
        [("ip", "192.0.2.100"), ("routing_table", TABLES), ("interface", "eth0"), ("monapi", "false"), ("region", "eu-west-1"), ("endpoint_url", ENDPOINT)]
    {
        has(&format!("pgsql-overlay-instance_attributes-{name}"), &[("name", name), ("value", value)]);
    }
    assert!(!xml.contains("pgsql-vip") && !xml.contains("pgsql-awsvip"), "an address of one subnet in a multi-AZ cluster:\n{xml}");
    let constraint = |tag: &str, pairs: &[(&str, &str)]| {
        let found = xml.lines().map(str::trim).filter(|l| l.starts_with(tag)).any(|l| pairs.iter().all(|(k, v)| attr(l, k) == Some(*v)));
        assert!(found, "no {tag} with {pairs:?} in the CIB:\n{xml}");
    };
    constraint("<rsc_colocation", &[("rsc", "pgsql-overlay"), ("with-rsc", "pgsqld-clone"), ("with-rsc-role", "Promoted"), ("score", "INFINITY")]);
    constraint(
        "<rsc_order",
        &[
            ("first", "pgsqld-clone"),
            ("first-action", "promote"),
            ("then", "pgsql-overlay"),
            ("then-action", "start"),
            ("kind", "Mandatory"),
            ("symmetrical", "false"),
        ],
    );
    constraint(
        "<rsc_order",
        &[
            ("first", "pgsqld-clone"),
            ("first-action", "demote"),
            ("then", "pgsql-overlay"),
            ("then-action", "stop"),
            ("kind", "Mandatory"),
            ("symmetrical", "false"),
        ],
    );
    assert_eq!(xml.matches("<rsc_colocation ").count() + xml.matches("<rsc_order ").count(), 3, "unexpected constraints:\n{xml}");
    assert!(!xml.contains("target-role"), "a resource is left with a target-role:\n{xml}");
    let dir = TempDir::new("multiaz-verify");
    let cib = dir.path("cib.xml");
    std::fs::write(&cib, xml).unwrap();
    verify(&cib);
    // paceline check on the file: the configuration's rules hold. In a network namespace
    // of its own: no EC2 there (the permission checks cannot run), and nothing leaves.
    let o = Command::new("unshare").args(["--net", env!("CARGO_BIN_EXE_paceline"), "check", "--cib"]).arg(&cib).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(!out.lines().any(|l| l.starts_with("CRITICAL") && !l.contains("AWS") && !l.contains("ec2:")), "paceline check on the multi-AZ example:\n{out}");

    let dir = TempDir::new("multiaz-bad");
    let good = [("REGION", "eu-west-1"), ("HOST_MAP", HOST_MAP)];
    for (extra, why) in [
        (vec![("ROUTE_TABLES", TABLES)], "OVERLAY_IP is required"),
        (vec![("OVERLAY_IP", "192.0.2.100")], "ROUTE_TABLES is required"),
        (vec![("OVERLAY_IP", "192.0.2"), ("ROUTE_TABLES", TABLES)], "OVERLAY_IP must be an IPv4 address"),
        (vec![("OVERLAY_IP", "192.0.2.100"), ("ROUTE_TABLES", "rtb-0a,igw-0b")], "'igw-0b' is not a route table id"),
        (vec![("OVERLAY_IP", "192.0.2.100"), ("ROUTE_TABLES", TABLES), ("MONAPI", "yes")], "MONAPI must be true or false"),
        (vec![("OVERLAY_IP", "192.0.2.100"), ("ROUTE_TABLES", TABLES), ("STATE_ALLOW", "")], "STATE_ALLOW is required"),
    ] {
        let cib = dir.path("bad.xml");
        empty_cib(&cib);
        let before = std::fs::read_to_string(&cib).unwrap();
        let env: Vec<(&str, &str)> = good.iter().copied().chain(extra.iter().copied()).collect();
        let out = run_multiaz_script(&cib, &env);
        assert_eq!(out.status.code(), Some(2), "{env:?} was accepted:\n{}", text(&out));
        assert!(String::from_utf8_lossy(&out.stderr).contains(why), "{env:?}: expected \"{why}\":\n{}", text(&out));
        assert_eq!(std::fs::read_to_string(&cib).unwrap(), before, "{env:?} changed the CIB");
    }
}

/// The primary's node lost in the multi-AZ example: fenced through EC2 before node2 is
/// promoted, and the overlay IP starts on node2 (its routes rewritten) after the promotion.
#[test]
fn simulate_multiaz_node_fail_fences_then_moves_the_overlay_ip() {
    skip_unless_possible!("simulate_multiaz_node_fail_fences_then_moves_the_overlay_ip");
    let dir = TempDir::new("multiaz-loss");
    let (steady, first) = steady_state_from(&dir, multiaz_cib(), SCORES);
    assert_eq!(first.nodes("pgsqld", "Promoted"), ["node1"], "{first}");
    assert_eq!(first.nodes("pgsql-overlay", "Started"), ["node1"], "{first}");
    let sim = simulate(&steady, &dir.path("lost.xml"), &["--node-fail", "node1"]);
    let steps = transition_steps(&sim);
    let at = |what: &str| steps.iter().position(|l| l.starts_with(what)).unwrap_or_else(|| panic!("no \"{what}\" in the transition {steps:#?}\n{sim}"));
    let (fence, promote, overlay) = (at("Fencing node1"), at("Resource action: pgsqld promote on node2"), at("Resource action: pgsql-overlay start on node2"));
    assert!(fence < promote && promote < overlay, "fence {fence}, promote {promote}, overlay start {overlay}: out of order\n{sim}");
    assert_eq!(sim.nodes("pgsql-overlay", "Started"), ["node2"], "{sim}");
    assert!(sim.actions.iter().all(|a| a.node != "node1"), "an action ran on the fenced node1\n{sim}");
}

// ---------------------------------------------------------------------------------------
// crm-examples/pgsql-ha-haproxy.sh and crm-examples/haproxy.cfg: no VIP, HAProxy on every node

const HAPROXY_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/crm-examples/pgsql-ha-haproxy.sh");
const HAPROXY_CFG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/crm-examples/haproxy.cfg");
const LAB_SH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/lab/lab.sh");
/// The state service's `allow` of the HAProxy example's runs: the nodes' network, loopback.
const HAPROXY_ALLOW: &str = "192.0.2.0/24 127.0.0.1 ::1";

/// Run the HAProxy example against `cib` with `env` (PCS is `pcs -f <cib>`, --force: the
/// agents need not be installed where pcs runs).
fn run_haproxy_script(cib: &Path, env: &[(&str, &str)]) -> Output {
    ensure_paceline_ipaddr2();
    let mut c = Command::new("sh");
    c.arg(HAPROXY_SCRIPT).env("PCS", format!("pcs -f {}", cib.display()));
    for var in [
        "STACK",
        "STONITH",
        "VIP",
        "CIDR",
        "NIC",
        "PGDATA",
        "DATADIR",
        "BINDIR",
        "PGHOST",
        "PGPORT",
        "MONITOR_PROMOTED",
        "MONITOR_UNPROMOTED",
        "VIP_MONITOR",
        "AUTO_REWIND",
        "REWIND_USER",
        "SYNC_MODE",
        "SYNC_COUNT",
        "STATE_SERVICE",
        "EC2",
        "REGION",
        "HOST_MAP",
        "ENDPOINT_URL",
        "PROFILE",
        "SECONDARY_IP",
        "AWSVIP_MONITOR",
        "POWER_TIMEOUT",
        "FENCE_MONITOR",
        "FENCE_DELAY_MAX",
        "FENCE_AGENT",
        "AWSVIP_AGENT",
        "HAPROXY_REAL_PCS",
        "CIB_file",
    ] {
        c.env_remove(var);
    }
    c.env("PCS_CREATE_FLAGS", "--force");
    // Required (no VIP to take a default from): the nodes' network, unless a test says.
    c.env("STATE_ALLOW", HAPROXY_ALLOW);
    c.envs(env.iter().copied());
    run(&mut c)
}

/// The HAProxy example's CIB (defaults: the paceline stack; no fence device, so no
/// fencing), built once.
fn haproxy_cib() -> &'static str {
    static XML: OnceLock<String> = OnceLock::new();
    XML.get_or_init(|| {
        let dir = TempDir::new("haproxy");
        let cib = dir.path("cib.xml");
        empty_cib(&cib);
        let out = run_haproxy_script(&cib, &[("STONITH", "false")]);
        assert!(out.status.success(), "{HAPROXY_SCRIPT} failed:\n{}", text(&out));
        std::fs::read_to_string(cib).expect("read the CIB")
    })
}

/// The lines of `xml` from the element `<tag id="id"` to its closing `</tag>`.
fn element<'a>(xml: &'a str, tag: &str, id: &str) -> &'a str {
    let start = xml.find(&format!("<{tag} id=\"{id}\"")).unwrap_or_else(|| panic!("no <{tag} id=\"{id}\"> in\n{xml}"));
    let end = xml[start..].find(&format!("</{tag}>")).unwrap_or_else(|| panic!("<{tag} id=\"{id}\"> is not closed")) + start;
    &xml[start..end]
}

/// pgsql-ha-haproxy.sh = pgsql-ha.sh without the VIP: the same pgsqld clone, state service,
/// properties and defaults (built by pgsql-ha.sh itself), no VIP, no constraint — crm_verify
/// accepts it.
#[test]
fn haproxy_example_is_pgsql_ha_without_the_vip_crm_verify_accepts() {
    skip_unless_possible!("haproxy_example_is_pgsql_ha_without_the_vip_crm_verify_accepts");
    let xml = haproxy_cib();
    assert!(!xml.contains("pgsql-vip") && !xml.contains("IPaddr2"), "a VIP in the HAProxy example:\n{xml}");
    assert!(!xml.contains("<rsc_colocation") && !xml.contains("<rsc_order"), "constraints without a VIP:\n{xml}");
    let has = |id: &str, pairs: &[(&str, &str)]| {
        let line = line_with_id(xml, id).unwrap_or_else(|| panic!("no element {id} in the CIB:\n{xml}"));
        for (k, v) in pairs {
            assert_eq!(attr(line, k), Some(*v), "{id}: {k} is not {v}: {line}\n{xml}");
        }
    };
    has("pgsqld", &[("class", "ocf"), ("provider", "paceline"), ("type", "pgsqlms")]);
    has("pgsqld-clone-meta_attributes-promotable", &[("value", "true")]);
    has("pgsqld-clone-meta_attributes-notify", &[("value", "true")]);
    has("pgsqld-monitor-interval-15s", &[("role", "Promoted")]);
    has("pgsqld-monitor-interval-16s", &[("role", "Unpromoted")]);
    // The state service answers HAProxy's checks (port 8008, its default) on every node.
    has("pgsql-state", &[("class", "ocf"), ("provider", "paceline"), ("type", "pgsql-state")]);
    assert!(xml.contains(r#"<clone id="pgsql-state-clone""#), "no state service clone:\n{xml}");
    has("pgsql-state-instance_attributes-pgsql_resource", &[("value", "pgsqld")]);
    has("cib-bootstrap-options-stonith-enabled", &[("value", "false")]);
    has("rsc_defaults-meta_attributes-resource-stickiness", &[("value", "10")]);
    has("rsc_defaults-meta_attributes-migration-threshold", &[("value", &MIGRATION_THRESHOLD.to_string())]);
    // Exactly pgsql-ha.sh's definitions (one definition, run by the HAProxy script).
    let dir = TempDir::new("haproxy-vs-vip");
    let (vip_cib, _) = built_cib(&dir, "vip.xml", &[("STACK", "paceline"), ("PCS_CREATE_FLAGS", "--force"), ("STATE_ALLOW", HAPROXY_ALLOW)]);
    let vip_xml = std::fs::read_to_string(&vip_cib).unwrap();
    has("pgsql-state-instance_attributes-allow", &[("value", HAPROXY_ALLOW)]);
    for (tag, id) in [
        ("clone", "pgsqld-clone"),
        ("clone", "pgsql-state-clone"),
        ("cluster_property_set", "cib-bootstrap-options"),
        ("meta_attributes", "rsc_defaults-meta_attributes"),
    ] {
        assert_eq!(element(xml, tag, id), element(&vip_xml, tag, id), "{tag} {id} differs from pgsql-ha.sh's");
    }
    let dir = TempDir::new("haproxy-verify");
    let cib = dir.path("cib.xml");
    std::fs::write(&cib, xml).unwrap();
    verify(&cib);
}

#[test]
fn haproxy_example_refuses_bad_settings_and_runs_the_seed_stack() {
    skip_unless_possible!("haproxy_example_refuses_bad_settings_and_runs_the_seed_stack");
    let dir = TempDir::new("haproxy-bad");
    for (env, who, why) in [
        (vec![("STATE_SERVICE", "false")], "pgsql-ha-haproxy.sh:", "STATE_SERVICE must be true"),
        (vec![("STACK", "heartbeat")], "pgsql-ha-haproxy.sh:", "STACK must be paceline or reference"),
        (vec![("EC2", "yes")], "pgsql-ha-haproxy.sh:", "EC2 must be true or false"),
        (vec![("STATE_ALLOW", "")], "pgsql-ha-haproxy.sh:", "STATE_ALLOW is required"),
        // pgsql-ha.sh's own checks apply, before anything is created.
        (vec![("SYNC_MODE", "quorum")], "pgsql-ha.sh:", "SYNC_MODE must be off, on or strict"),
        (vec![("MONITOR_UNPROMOTED", "15s")], "pgsql-ha.sh:", "must differ"),
        // and pgsql-ha-ec2.sh's with EC2=true.
        (vec![("EC2", "true"), ("REGION", "eu-west-1")], "pgsql-ha-ec2.sh:", "HOST_MAP is required"),
    ] {
        let cib = dir.path("bad.xml");
        empty_cib(&cib);
        let before = std::fs::read_to_string(&cib).unwrap();
        let out = run_haproxy_script(&cib, &env);
        assert_eq!(out.status.code(), Some(2), "{env:?} was accepted:\n{}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(who) && stderr.contains(why), "{env:?}: expected \"{who} ... {why}\":\n{}", text(&out));
        assert_eq!(std::fs::read_to_string(&cib).unwrap(), before, "{env:?} changed the CIB");
    }
    // STACK=reference (the seed demo: PAF, and routing checks from elsewhere): PAF's
    // pgsqlms alone, no state service, no VIP; it says so.
    let cib = dir.path("seed.xml");
    empty_cib(&cib);
    let out = run_haproxy_script(&cib, &[("STACK", "reference"), ("STONITH", "false")]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no state service"), "{}", text(&out));
    let xml = std::fs::read_to_string(&cib).unwrap();
    let line = line_with_id(&xml, "pgsqld").unwrap();
    assert_eq!((attr(line, "provider"), attr(line, "type")), (Some("heartbeat"), Some("pgsqlms")), "{line}");
    assert!(!xml.contains("pgsql-state") && !xml.contains("pgsql-vip"), "{xml}");
    verify(&cib);
}

/// EC2=true: pgsql-ha-ec2.sh's fencing, without the VIP and without the secondary IP.
#[test]
fn haproxy_example_on_ec2_fences_without_addresses() {
    skip_unless_possible!("haproxy_example_on_ec2_fences_without_addresses");
    let dir = TempDir::new("haproxy-ec2");
    let cib = dir.path("cib.xml");
    empty_cib(&cib);
    let out = run_haproxy_script(&cib, &[("EC2", "true"), ("REGION", "eu-west-1"), ("HOST_MAP", HOST_MAP), ("ENDPOINT_URL", ENDPOINT)]);
    assert!(out.status.success(), "{}", text(&out));
    let xml = std::fs::read_to_string(&cib).unwrap();
    let line = line_with_id(&xml, "fence-aws").unwrap_or_else(|| panic!("no fence device:\n{xml}"));
    assert_eq!(attr(line, "type"), Some("fence_paceline_aws"), "{line}");
    assert_eq!(attr(line_with_id(&xml, "fence-aws-instance_attributes-pcmk_host_map").unwrap(), "value"), Some(HOST_MAP));
    assert_eq!(attr(line_with_id(&xml, "cib-bootstrap-options-stonith-enabled").unwrap(), "value"), Some("true"));
    assert!(!xml.contains("pgsql-vip") && !xml.contains("pgsql-awsvip") && !xml.contains("<rsc_colocation") && !xml.contains("<rsc_order"), "{xml}");
    assert!(xml.contains(r#"<clone id="pgsql-state-clone""#), "{xml}");
    verify(&cib);
}

/// crm_simulate on the HAProxy example: start-up promotes node1 and starts the state service
/// everywhere; a primary crash is recovered in place without touching the state service; a
/// lost node1 makes node2 the primary. (Where clients go is HAProxy's business: the state
/// service answers /primary on the promoted node only, docs/pgsql-state.md.)
#[test]
fn simulate_haproxy_example_startup_crash_and_node_loss() {
    skip_unless_possible!("simulate_haproxy_example_startup_crash_and_node_loss");
    let dir = TempDir::new("haproxy-sim");
    let (steady, first) = steady_state_from(&dir, haproxy_cib(), SCORES);
    assert_eq!(first.nodes("pgsqld", "Promoted"), ["node1"], "{first}");
    assert_eq!(first.nodes("pgsqld", "Unpromoted"), ["node2", "node3"], "{first}");
    assert_eq!(first.nodes("pgsql-state", "Started"), ["node1", "node2", "node3"], "{first}");
    assert!(first.state.iter().all(|i| i.rsc != "pgsql-vip"), "{first}");
    let again = simulate(&steady, &dir.path("again.xml"), &[]);
    assert!(again.actions.is_empty(), "the cluster did not settle:\n{again}");

    let crash = simulate(&steady, &dir.path("crash.xml"), &["--op-inject", &primary_crash()]);
    let steps = ["demote", "stop", "start", "promote"].map(|a| crash.must_find("pgsqld", a, "node1"));
    assert!(steps.windows(2).all(|w| w[0] < w[1]), "recovery out of order {steps:?}\n{crash}");
    assert!(crash.actions.iter().all(|a| a.rsc != "pgsql-state" || a.action.starts_with("monitor")), "the crash restarted the state service\n{crash}");
    assert_eq!(crash.nodes("pgsqld", "Promoted"), ["node1"], "{crash}");

    let lost = simulate(&steady, &dir.path("lost.xml"), &["--node-down", "node1"]);
    lost.must_find("pgsqld", "promote", "node2");
    assert!(lost.actions.iter().all(|a| a.node != "node1"), "an action ran on the lost node1\n{lost}");
    assert_eq!(lost.nodes("pgsqld", "Promoted"), ["node2"], "{lost}");
    assert_eq!(lost.nodes("pgsqld", "Unpromoted"), ["node3"], "{lost}");
    assert_eq!(lost.nodes("pgsql-state", "Started"), ["node2", "node3"], "{lost}");
}

/// `haproxy -c` accepts crm-examples/haproxy.cfg and the lab's versions of it (its ports;
/// the seed demo's tcp-check), and the file routes as documented: the primary pool checks
/// GET /primary on port 8008, the standby pool GET /replica, every server of both, and a
/// server leaving a pool takes its sessions with it.
#[test]
fn haproxy_cfg_is_valid_and_checks_the_state_service() {
    if !in_path("haproxy") {
        eprintln!("skipping haproxy_cfg_is_valid_and_checks_the_state_service: haproxy is not installed (tests/deps.sh)");
        return;
    }
    let check = |path: &Path| {
        let out = run(Command::new("haproxy").arg("-c").arg("-f").arg(path));
        assert!(out.status.success() && combined(&out).contains("Configuration file is valid"), "haproxy -c -f {}:\n{}", path.display(), text(&out));
    };
    check(Path::new(HAPROXY_CFG));
    let cfg = std::fs::read_to_string(HAPROXY_CFG).unwrap();
    let lines: Vec<&str> = cfg.lines().map(str::trim).filter(|l| !l.starts_with('#') && !l.is_empty()).collect();
    let section = |name: &str| -> Vec<&str> {
        lines.iter().skip_while(|l| **l != format!("listen {name}")).skip(1).take_while(|l| !l.starts_with("listen ")).copied().collect()
    };
    for (pool, bind, path) in
        [("pgsql-primary", "bind *:5432", "/primary"), ("pgsql-replication", "bind *:5435", "/read-write"), ("pgsql-standbys", "bind *:5433", "/replica")]
    {
        let s = section(pool);
        assert!(s.contains(&bind), "{pool}: {s:?}");
        assert!(s.contains(&format!("option httpchk GET {path}").as_str()) && s.contains(&"http-check expect status 200"), "{pool}: {s:?}");
        let servers: Vec<&&str> = s.iter().filter(|l| l.starts_with("server ")).collect();
        assert_eq!(servers.len(), 3, "{pool}: {s:?}");
        assert!(servers.iter().all(|l| l.ends_with(":5434 check port 8008")), "{pool}: {servers:?}");
        // Clients' sessions are cut when their server leaves the pool; the standbys'
        // replication is not (a demote's shutdown checkpoint must reach them).
        let ds = s.iter().find(|l| l.starts_with("default-server")).unwrap_or_else(|| panic!("{pool}: no default-server"));
        assert!(ds.contains("inter 200ms") && ds.contains("fall 1") && ds.contains("rise 1"), "{pool}: {ds}");
        assert_eq!(ds.contains("on-marked-down shutdown-sessions"), pool != "pgsql-replication", "{pool}: {ds}");
    }
    assert!(lines.contains(&"mode tcp"), "{lines:?}");

    // What `lab config --routing haproxy|seed` writes in each node, 2 and 3 nodes.
    let dir = TempDir::new("haproxy-cfg");
    for (routing, nodes) in [("haproxy", "3"), ("seed", "3"), ("haproxy", "2")] {
        let out = ok(Command::new("bash").args([LAB_SH, "_haproxy_cfg", routing, nodes]));
        let path = dir.path(&format!("{routing}-{nodes}.cfg"));
        std::fs::write(&path, &out.stdout).unwrap();
        check(&path);
        let lab = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(lab.matches("\n    server node").count(), 3 * nodes.parse::<usize>().unwrap(), "{lab}");
        assert!(lab.contains("bind *:5000") && lab.contains("bind *:5001") && lab.contains("bind *:5002"), "{lab}");
        assert!(
            lab.lines().filter(|l| l.trim_start().starts_with("server ")).all(|l| l.contains(":5432 check")),
            "the lab's PostgreSQL listens on 5432:\n{lab}"
        );
        if routing == "seed" {
            assert!(
                lab.contains("tcp-check connect port 5431")
                    && lab.contains("tcp-check expect string production")
                    && lab.contains("tcp-check expect string standby"),
                "{lab}"
            );
            assert!(lab.contains("default-server inter 2s fastinter 1s rise 2 fall 1 on-marked-down shutdown-sessions"), "{lab}");
            assert!(!lab.lines().any(|l| !l.trim_start().starts_with('#') && (l.contains("http-check") || l.contains("option httpchk"))), "{lab}");
        }
    }
}

/// Whatever crm-examples/haproxy.cfg says of `primary_conninfo`, in its comments too, names
/// the port of its replication pool (`listen pgsql-replication`), as the lab and
/// crm-examples/README.md use it. Needs nothing installed.
#[test]
fn haproxy_cfg_replication_goes_through_its_replication_pool() {
    let cfg = std::fs::read_to_string(HAPROXY_CFG).unwrap();
    let lines: Vec<&str> = cfg.lines().map(str::trim).collect();
    let pool = lines.iter().position(|l| *l == "listen pgsql-replication").expect("no listen pgsql-replication");
    let bind = lines[pool..].iter().find_map(|l| l.strip_prefix("bind *:")).expect("the replication pool binds no port");
    let said: Vec<&str> = cfg
        .split("primary_conninfo")
        .skip(1)
        .filter_map(|rest| rest.split("port=").nth(1))
        .map(|p| p.split(|c: char| !c.is_ascii_digit()).next().unwrap_or(""))
        .collect();
    assert!(!said.is_empty(), "haproxy.cfg says nothing of primary_conninfo's port");
    assert!(said.iter().all(|p| *p == bind), "haproxy.cfg: primary_conninfo ports {said:?}, the replication pool binds {bind}");
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/crm-examples/README.md")).unwrap();
    assert!(readme.contains(&format!("host=127.0.0.1 port={bind} ")), "crm-examples/README.md's primary_conninfo is not the replication pool's port {bind}");
}

// ---------------------------------------------------------------------------------------
// pcs 0.11 (Debian 12, this machine) and 0.12 (Debian 13, tests/lab/rootfs.sh's root)

/// Debian 13's root file system, when tests/lab/rootfs.sh has made it (tests/run.sh does).
fn trixie_root() -> Option<PathBuf> {
    let root = PathBuf::from(std::env::var("PACELINE_ROOTFS_CACHE").unwrap_or_else(|_| "/var/cache/paceline/rootfs".into())).join("trixie");
    root.join(".paceline-rootfs").is_file().then_some(root)
}

/// What pcs says that an operator would read as a warning about the configuration: each
/// line with "warning" or "deprecat" in it, with the indented lines that follow it (what an
/// agent said). Not counted: pcs's note after any `pcs resource defaults update` (it says
/// so whatever the defaults); inside a chroot, that it sees no init system; pcs 0.12's
/// preamble to an agent's validation result (the result itself counts); a validation
/// result that says only that this is no EC2 instance (the test's machine is none; the
/// EC2 agents' validate-all asks the instance metadata service). With `paf`, any
/// validation result of PAF's: pcs 0.12 runs validate-all at `pcs resource create` and
/// cannot be told not to, and PAF's wants the clone's notify=true, which pcs does not pass
/// it, and calls crm_node, which is not in its PATH there.
fn pcs_warnings(out: &str, paf: bool) -> Vec<String> {
    const NOT_ABOUT_THE_CONFIGURATION: &[&str] = &[
        "Warning: Defaults do not apply to resources which override them with their own defined values",
        "Warning: Unable to detect init system",
        "Warning: Validating resource options using the resource agent itself",
    ];
    const RESULT: &str = "Warning: Validation result from agent:";
    const NOT_EC2: &str = "no instance metadata service answers on this node";
    let mut blocks: Vec<Vec<&str>> = Vec::new();
    for l in out.lines() {
        match blocks.last_mut() {
            Some(b) if l.starts_with([' ', '\t']) => b.push(l),
            _ => blocks.push(vec![l]),
        }
    }
    blocks
        .into_iter()
        .filter(|b| {
            let (head, rest) = (b[0], &b[1..]);
            let lower = head.to_ascii_lowercase();
            (lower.contains("warning") || lower.contains("deprecat"))
                && !NOT_ABOUT_THE_CONFIGURATION.iter().any(|n| head.starts_with(n))
                && !(head.starts_with(RESULT) && (paf || (!rest.is_empty() && rest.iter().all(|r| r.contains(NOT_EC2)))))
        })
        .flatten()
        .map(String::from)
        .collect()
}

/// Run example `script` (a file name in crm-examples/) with `env` on a CIB that holds only
/// the cluster's fence device (what the examples' default, fencing on, expects): with
/// this machine's pcs when `root` is None, else inside `root` (an overlay of it, the agents
/// of this build installed, in a network namespace of its own whose one interface is the
/// examples' NIC, eth0: pcs 0.12 runs the agents' validate-all). Returns the output and the
/// CIB it left.
fn example_with_pcs(root: Option<&Path>, script: &str, env: &[(&str, &str)]) -> (Output, String) {
    let dir = TempDir::new("pcs-versions");
    let vars: String = env.iter().map(|(k, v)| format!("{k}='{v}' ")).collect();
    match root {
        None => {
            ensure_paceline_ipaddr2();
            let cib = dir.path("cib.xml");
            empty_cib(&cib);
            add_fence_device(&cib);
            let mut c = Command::new("sh");
            c.arg("-c").arg(format!(
                "env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin PCS='pcs -f {}' {vars} sh {}/crm-examples/{script}",
                cib.display(),
                env!("CARGO_MANIFEST_DIR")
            ));
            let out = run(&mut c);
            (out, std::fs::read_to_string(&cib).unwrap_or_default())
        }
        Some(root) => {
            let d = dir.0.display();
            let script_text = format!(
                "set -e; mkdir -p {d}/upper {d}/work {d}/merged
                 ip link add eth0 type veth peer name eth1
                 ip link set eth0 up
                 mount -t overlay overlay -o lowerdir={root},upperdir={d}/upper,workdir={d}/work {d}/merged
                 mount -t proc proc {d}/merged/proc && mount -t sysfs sysfs {d}/merged/sys
                 mkdir -p {d}/merged/src && mount --bind {src} {d}/merged/src
                 {paceline} install --root {d}/merged >/dev/null
                 exec chroot {d}/merged sh -c \"cd /tmp && cibadmin --empty >cib.xml && CIB_file=/tmp/cib.xml cibadmin --create -o resources --xml-text '{fence}' && env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin PCS='pcs -f /tmp/cib.xml' {vars} sh /src/crm-examples/{script}; rc=\\$?; cp /tmp/cib.xml /src-cib.xml; exit \\$rc\"",
                root = root.display(),
                src = env!("CARGO_MANIFEST_DIR"),
                paceline = env!("CARGO_BIN_EXE_paceline"),
                fence = FENCE_DEVICE.replace('"', "\\\""),
            );
            let out = run(Command::new("unshare").args(["--mount", "--net", "--propagation", "private", "sh", "-c", &script_text]));
            let cib = std::fs::read_to_string(dir.path("upper/src-cib.xml")).unwrap_or_default();
            (out, cib)
        }
    }
}

/// crm-examples without a warning from pcs 0.11 or 0.12 (issue #21.5): the clone's meta
/// attributes set on the clone (`pcs resource meta`, not after `promotable`, which 0.12
/// deprecates and where `meta` without --future lands on the primitive), colocation scores
/// as `score=`. Each example as its tests run it, the promotable clone's meta attributes on
/// the clone in both versions. Debian 13's pcs runs in tests/lab/rootfs.sh's root, made by
/// tests/run.sh before the tests; without it that half says it is skipped.
#[test]
fn examples_say_no_warning_on_pcs_0_11_or_0_12() {
    skip_unless_possible!("examples_say_no_warning_on_pcs_0_11_or_0_12");
    let ec2 = [("REGION", "eu-west-1"), ("HOST_MAP", HOST_MAP), ("ENDPOINT_URL", ENDPOINT)];
    let multiaz = [&ec2[..], &[("OVERLAY_IP", "192.0.2.100"), ("ROUTE_TABLES", TABLES), ("STATE_ALLOW", MULTIAZ_ALLOW)]].concat();
    let roots: Vec<(Option<PathBuf>, &str, &str, &str)> = [(None, "0.11", "/usr/lib/postgresql/15/bin", "/var/lib/postgresql/15/main")]
        .into_iter()
        .chain(trixie_root().map(|r| (Some(r), "0.12", "/usr/lib/postgresql/17/bin", "/var/lib/postgresql/17/main")))
        .collect();
    if roots.len() == 1 {
        eprintln!("pcs 0.12: skipped, no Debian 13 root (bash tests/lab/rootfs.sh makes it)");
    }
    for (root, version, bindir, pgdata) in &roots {
        let pg = [("BINDIR", *bindir), ("PGDATA", *pgdata)];
        let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
            ("pgsql-ha.sh", [&pg[..], &[("STACK", "paceline"), ("STONITH", "true")]].concat()),
            ("pgsql-ha.sh", [&pg[..], &[("STACK", "reference"), ("STONITH", "true")]].concat()),
            ("pgsql-ha-ec2.sh", [&pg[..], &ec2[..]].concat()),
            ("pgsql-ha-ec2-multiaz.sh", [&pg[..], &multiaz[..]].concat()),
            ("pgsql-ha-haproxy.sh", [&pg[..], &[("STATE_ALLOW", HAPROXY_ALLOW), ("STONITH", "true")]].concat()),
        ];
        for (script, env) in cases {
            let (out, cib) = example_with_pcs(root.as_deref(), script, &env);
            let said = combined(&out);
            assert!(out.status.success(), "pcs {version}: {script} {env:?} failed:\n{said}");
            let paf = env.contains(&("STACK", "reference"));
            let warnings = pcs_warnings(&said, paf);
            assert!(warnings.is_empty(), "pcs {version}: {script} {env:?} warns:\n{}", warnings.join("\n"));
            // The clone's own children: after its primitive, before its end.
            let clone = cib
                .split("<clone id=\"pgsqld-clone\"")
                .nth(1)
                .and_then(|c| c.split("</clone>").next())
                .and_then(|c| c.split("</primitive>").nth(1))
                .unwrap_or_default();
            for meta in ["name=\"notify\" value=\"true\"", "name=\"promoted-max\" value=\"1\""] {
                assert!(clone.contains(meta), "pcs {version}: {script}: {meta} is not on the clone:\n{cib}");
            }
        }
    }
}

/// crm-examples/README.md's "Every default, and why" (issue #22.3) against the scripts:
/// every `VAR=${VAR:-default}` of every script has its row with that default (one default
/// per variable across the scripts), every operation timeout a resource is created with and
/// every resource default the scripts set has its row as the script writes it, and the
/// table has no row the scripts do not set. Text only: runs anywhere.
#[test]
fn every_default_of_the_examples_is_explained_in_one_table() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("crm-examples");
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    let start = readme.find("\n## Every default, and why\n").expect("the README's defaults section");
    let section = &readme[start + 1..];
    let section = &section[..section[3..].find("\n## ").map(|e| e + 3).unwrap_or(section.len())];
    // (first cell, second cell) of each row.
    let table: Vec<(String, String)> = section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (cells[1].to_owned(), cells.get(2).map(|c| c.to_string()).unwrap_or_default())
        })
        .collect();
    let mut wanted: std::collections::BTreeMap<String, String> = Default::default();
    let mut scripts: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "sh")).collect();
    scripts.sort();
    for script in &scripts {
        let name = script.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(script).unwrap();
        // VAR=${VAR:-default} / VAR=${VAR-default}, exported or not.
        for line in text.lines() {
            let line = line.strip_prefix("export ").unwrap_or(line);
            let Some((var, rest)) = line.split_once("=${") else { continue };
            if var.is_empty() || !var.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_') {
                continue;
            }
            let Some(default) = rest.strip_prefix(var).and_then(|r| r.strip_prefix(":-").or_else(|| r.strip_prefix('-'))).and_then(|r| r.strip_suffix('}'))
            else {
                continue;
            };
            let value = if default.is_empty() { "(unset)".to_owned() } else { format!("`{default}`") };
            if let Some(other) = wanted.insert(format!("`{var}`"), value.clone()) {
                assert_eq!(other, value, "{var}: two defaults across the scripts ({name})");
            }
        }
        // Each command whole (continuation lines joined): the operation timeouts of each
        // resource and fence device it creates, and the resource defaults.
        for cmd in text.replace("\\\n", " ").lines() {
            let words: Vec<&str> = cmd.split_whitespace().collect();
            if let Some(i) = words.windows(2).position(|w| w == ["resource", "defaults"]) {
                for w in words[i + 2..].iter().filter(|w| w.contains('=')) {
                    wanted.insert(format!("`{w}`"), String::new());
                }
            }
            let Some(i) = words.windows(2).position(|w| (w[0] == "resource" || w[0] == "stonith") && w[1] == "create") else { continue };
            let id = words[i + 2];
            for (j, _) in words.iter().enumerate().filter(|(_, w)| **w == "op") {
                let op = words[j + 1];
                let timeout = words[j + 2..].iter().take_while(|w| **w != "op").find(|w| w.starts_with("timeout="));
                let timeout = timeout.unwrap_or_else(|| panic!("{name}: {id}'s op {op} has no timeout"));
                wanted.insert(format!("`{id}`: `op {op} {timeout}`"), String::new());
            }
        }
    }
    for (key, value) in &wanted {
        let row = table.iter().find(|(k, _)| k == key).unwrap_or_else(|| panic!("crm-examples/README.md, \"Every default, and why\": no row for {key}"));
        assert_eq!(&row.1, value, "crm-examples/README.md: {key}'s default");
    }
    for (key, _) in &table {
        assert!(wanted.contains_key(key), "crm-examples/README.md: {key} is in the defaults table but no script sets it");
    }
}
