//! ocf:paceline:pgsqlms against real PostgreSQL instances, with no cluster: a primary and a
//! streaming standby in temp directories on local ports, driven through the agent's actions
//! exactly as Pacemaker would run them (environment in, exit code out). Local authentication
//! is `peer`, so this also proves the agent connects as system_user in-process; `paceline
//! check`'s PostgreSQL rules are judged against the same instances. Debian's 15
//! by default; tests/pg_majors.sh runs it again on 14, 16, 17 and 18 (`PACELINE_PG_BINDIR`).
//! Needs root and PostgreSQL; skips otherwise.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

/// ocf:paceline:pgsqlms of this build.
fn agent() -> String {
    common::agent("pgsqlms")
}
use common::PG_BINDIR as BINDIR;

#[derive(Clone)]
struct Instance {
    data: PathBuf,
    sock: PathBuf,
    port: u16,
}

struct Fixture {
    base: PathBuf,
    primary: Instance,
    standby: Instance,
    /// The state services this fixture started (instance, name, log, environment): stopped
    /// when it is dropped, so that a failed test leaves no `pgsql-state serve` behind.
    services: std::cell::RefCell<Vec<Service>>,
}

/// A state service a fixture started: its instance, name, log and environment.
type Service = (Instance, String, String, Vec<(String, String)>);

use common::sh;
fn must(cmd: &str) {
    let o = sh(cmd);
    assert!(o.status.success(), "{cmd}: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
}
fn as_pg(cmd: &str) {
    must(&format!("cd / && runuser -u postgres -- sh -c '{cmd}'"));
}

impl Fixture {
    fn new(tag: u16) -> Fixture {
        let pid = std::process::id();
        let base = std::env::temp_dir().join(format!("paceline-pgsqlms-{pid}-{tag}"));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).unwrap();
        must(&format!("chown postgres: {}", base.display()));
        // Tags 0..=21 (all taken): each test its own pair of ports (and directory).
        let port = 6000 + (pid % 300) as u16 * 44 + tag * 2;
        let mk = |name: &str, port: u16| Instance { data: base.join(name), sock: base.join(format!("{name}-sock")), port };
        let f = Fixture { primary: mk("primary", port), standby: mk("standby", port + 1), base, services: Default::default() };
        for i in [&f.primary, &f.standby] {
            as_pg(&format!("mkdir -p {}", i.sock.display()));
        }
        let p = &f.primary;
        as_pg(&format!("{BINDIR}/initdb -D {} --auth-local=peer --auth-host=trust >/dev/null", p.data.display()));
        let conf = |i: &Instance, name: &str| {
            format!(
                "listen_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\nwal_level = replica\nhot_standby = on\nwal_log_hints = {}\n\
                 primary_conninfo = 'host=127.0.0.1 port={} user=postgres application_name={name}'\nrecovery_target_timeline = 'latest'\n",
                i.port,
                i.sock.display(),
                // pg_rewind needs wal_log_hints (or checksums): on for the rewind tests.
                if matches!(tag, 3 | 8 | 14 | 15 | 17 | 18) { "on" } else { "off" },
                p.port
            )
        };
        std::fs::write(p.data.join("postgresql.auto.conf"), conf(p, "primary")).unwrap();
        std::fs::write(p.data.join("pg_hba.conf"), "local all all peer\nhost all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n").unwrap();
        as_pg(&format!("{BINDIR}/pg_ctl -D {} -w -l {}/primary.log start >/dev/null", p.data.display(), f.base.display()));
        let s = &f.standby;
        as_pg(&format!("{BINDIR}/pg_basebackup -h 127.0.0.1 -p {} -D {} -X stream -c fast", p.port, s.data.display()));
        std::fs::write(s.data.join("postgresql.auto.conf"), conf(s, "standby")).unwrap();
        as_pg(&format!("{BINDIR}/pg_ctl -D {} -w -m fast stop >/dev/null", p.data.display()));
        must(&format!("chown -R postgres: {}", f.base.display()));
        f
    }

    fn agent(&self, i: &Instance, action: &str, extra: &[(&str, &str)]) -> (i32, String) {
        let mut cmd = Command::new(agent());
        cmd.arg(action)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("OCF_ROOT", "/usr/lib/ocf")
            .env("OCF_RESOURCE_INSTANCE", "pgsqld")
            .env("HA_LOGFACILITY", "none")
            .env("HA_RSCTMP", &self.base)
            .env("PACELINE_HISTORY_DIR", self.base.join("history"))
            .env("OCF_RESKEY_bindir", BINDIR.path())
            .env("OCF_RESKEY_pgdata", &i.data)
            .env("OCF_RESKEY_pghost", &i.sock)
            .env("OCF_RESKEY_pgport", i.port.to_string())
            .env("OCF_RESKEY_CRM_meta_timeout", "30000");
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let o = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        // The exit-reason contract: one line, within the 128 characters Pacemaker keeps.
        let reasons: Vec<&str> = err.lines().filter_map(|l| l.strip_prefix("ocf-exit-reason:")).collect();
        assert!(reasons.len() <= 1 && reasons.iter().all(|r| !r.is_empty() && r.len() <= 128), "{action}: {err}");
        assert!(!err.contains("panicked at"), "{action}: {err}");
        (o.status.code().unwrap_or(-1), err)
    }

    /// `pgsql-state ACTION` for instance `i` as resource instance `name`, logging to
    /// `<log>.log` in the fixture, with `extra` environment: its exit code.
    fn state_agent(&self, i: &Instance, name: &str, log: &str, action: &str, extra: &[(&str, &str)]) -> i32 {
        if action == "start" {
            let env = extra.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            self.services.borrow_mut().push((i.clone(), name.to_owned(), log.to_owned(), env));
        }
        Command::new(common::agent("pgsql-state"))
            .arg(action)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("OCF_RESOURCE_INSTANCE", name)
            .env("HA_LOGFACILITY", "none")
            .env("HA_LOGFILE", self.base.join(format!("{log}.log")))
            .env("HA_RSCTMP", &self.base)
            .env("OCF_RESKEY_pghost", &i.sock)
            .env("OCF_RESKEY_pgport", i.port.to_string())
            .env("OCF_RESKEY_CRM_meta_timeout", "20000")
            .envs(extra.iter().copied())
            .status()
            .unwrap()
            .code()
            .unwrap_or(-1)
    }

    /// The usual pair through the agent: the primary started and promoted, the standby
    /// started.
    fn primary_and_standby(&self) {
        assert_eq!(self.rc(&self.primary, "start"), 0);
        assert_eq!(self.rc(&self.primary, "promote"), 0);
        assert_eq!(self.rc(&self.standby, "start"), 0);
    }

    fn rc(&self, i: &Instance, action: &str) -> i32 {
        let (rc, err) = self.agent(i, action, &[]);
        eprintln!("{} {action} -> {rc} {}", i.data.file_name().unwrap().to_string_lossy(), err.trim());
        rc
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for (i, name, log, env) in self.services.take() {
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            self.state_agent(&i, &name, &log, "stop", &env);
        }
        for i in [&self.primary, &self.standby] {
            if i.data.join("postmaster.pid").exists() {
                let _ = sh(&format!("cd / && runuser -u postgres -- {BINDIR}/pg_ctl -D {} -m immediate -w stop", i.data.display()));
            }
        }
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

fn possible() -> bool {
    let ok = nix::unistd::geteuid().is_root() && Path::new(&BINDIR.path()).join("initdb").exists();
    if !ok {
        eprintln!("skipped: needs root and PostgreSQL 15");
    }
    ok
}

#[test]
fn lifecycle_switchover_and_crashed_primary() {
    if !possible() {
        return;
    }
    let f = Fixture::new(0);
    let (p, s) = (&f.primary, &f.standby);
    assert_eq!(f.rc(p, "validate-all"), 0);
    assert_eq!(f.rc(p, "monitor"), 7, "cleanly stopped");
    assert_eq!(f.rc(s, "monitor"), 7, "fresh basebackup: stopped standby");

    // start always gives a standby, even for the ex-primary.
    assert_eq!(f.rc(p, "start"), 0);
    assert!(p.data.join("standby.signal").exists());
    // PostgreSQL runs with postgres's groups, as runuser or systemd would start it (Debian's
    // ssl-cert: its default ssl = on reads the snakeoil key through that group).
    let status = std::fs::read_to_string(format!("/proc/{}/status", postmaster_pid(p))).unwrap();
    let mut running: Vec<u32> = status.lines().find_map(|l| l.strip_prefix("Groups:")).unwrap().split_whitespace().map(|g| g.parse().unwrap()).collect();
    let who = paceline::pg::identity::Identity::lookup("postgres").unwrap().unwrap();
    let mut wanted: Vec<u32> = std::iter::once(who.gid.as_raw())
        .chain(paceline::pg::identity::groups_listing(&std::fs::read_to_string("/etc/group").unwrap(), "postgres").iter().map(|g| g.as_raw()))
        .collect();
    running.sort();
    wanted.sort();
    wanted.dedup();
    assert_eq!(running, wanted, "the postmaster's groups");
    // And its HOME, where libpq finds ~/.pgpass for the standby's walreceiver and pg_rewind.
    let environ = std::fs::read(format!("/proc/{}/environ", postmaster_pid(p))).unwrap();
    let home = environ.split(|b| *b == 0).find_map(|kv| kv.strip_prefix(b"HOME=")).map(|h| String::from_utf8_lossy(h).into_owned());
    assert_eq!(home, paceline::pg::identity::account(who).map(|(_, h)| h), "the postmaster's HOME");
    assert_eq!(f.rc(p, "monitor"), 0, "running standby");
    assert_eq!(f.rc(p, "start"), 0, "start is idempotent");
    assert_eq!(f.rc(p, "promote"), 0);
    assert_eq!(f.rc(p, "monitor"), 8, "running primary");
    assert_eq!(f.rc(p, "promote"), 0, "promote is idempotent");

    assert_eq!(f.rc(s, "start"), 0);
    assert_eq!(f.rc(s, "monitor"), 0);

    // reload-agent (and PAF's reload): the new parameters, no restart (same postmasters).
    let pid = |i: &Instance| std::fs::read_to_string(i.data.join("postmaster.pid")).unwrap().lines().next().unwrap().to_owned();
    let (pp, sp) = (pid(p), pid(s));
    for action in ["reload-agent", "reload"] {
        assert_eq!(f.agent(p, action, &[("OCF_RESKEY_maxlag", "1000000")]).0, 0, "{action} on the primary");
        assert_eq!(f.rc(s, action), 0, "{action} on the standby");
    }
    let (rc, err) = f.agent(p, "reload-agent", &[("OCF_RESKEY_pgport", "1")]);
    assert_eq!(rc, 1, "the instance does not answer on the new pgport: {err}");
    assert_eq!(f.agent(p, "reload-agent", &[("OCF_RESKEY_synchronous_mode", "sometimes")]).0, 6);
    assert_eq!((pid(p), pid(s)), (pp, sp), "nothing restarted");
    let o = sh(&format!("{} methods", agent()));
    let methods = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success() && methods.lines().any(|l| l == "reload-agent") && methods.lines().any(|l| l == "methods"), "{methods}");

    // Switchover: demote the primary (clean shutdown, restart as standby), promote the standby.
    // Each under a node name of its own: the incident record (one store, as both share this
    // machine) gets the demoted primary's shutdown and the promotion.
    assert_eq!(f.agent(p, "demote", &[("OCF_RESKEY_CRM_meta_on_node", "local-p")]).0, 0);
    assert_eq!(f.rc(p, "monitor"), 0);
    assert_eq!(f.agent(s, "promote", &[("OCF_RESKEY_CRM_meta_on_node", "local-s")]).0, 0);
    assert_eq!(f.rc(s, "monitor"), 8);
    let history = paceline::history::Store::at(&f.base.join("history").join("pgsqld"));
    let r = history.newest().expect("an incident record of the switchover");
    assert_eq!((r.timeline, r.new_primary.as_str(), r.kind), (3, "local-s", paceline::history::Kind::Switchover), "{r:#?}");
    assert!(r.first("shutdown").is_some_and(|st| st.node == "local-p" && st.detail.starts_with("clean")), "{r:#?}");
    assert!(r.outage_ms().is_some_and(|o| o < 30_000) && r.fork.is_some() && !r.system.is_empty(), "{r:#?}");
    assert!(history.pending().is_empty(), "the shutdown step is settled in the record");

    // A hung primary (every process of the instance stopped, as an I/O stall leaves them):
    // demote escalates fast -> immediate -> kill in seconds, not its 120 s timeout, and the
    // instance starts again as a standby (no stale postmaster.pid or shared memory).
    let hung = pid(s);
    // The postmaster first (it then forks no more), then its children one by one: a child
    // may exit between pgrep and kill (a standby's walreceiver retries), which is no failure.
    must(&format!("kill -STOP {hung} && for c in $(pgrep -P {hung}); do kill -STOP $c 2>/dev/null || true; done"));
    let t = std::time::Instant::now();
    let (rc, err) = f.agent(s, "demote", &[("OCF_RESKEY_CRM_meta_timeout", "120000")]);
    let _ = sh(&format!("kill -CONT {hung} $(pgrep -P {hung}) 2>/dev/null"));
    assert_eq!(rc, 0, "demote of a hung primary: {err}");
    assert!(t.elapsed() < std::time::Duration::from_secs(40), "bounded by the escalation, not the timeout: {:?}", t.elapsed());
    assert_ne!(pid(s), hung, "a new postmaster");
    assert_eq!(f.rc(s, "monitor"), 0, "a standby again");
    assert_eq!(f.agent(s, "promote", &[("OCF_RESKEY_CRM_meta_on_node", "local-s")]).0, 0);
    assert_eq!(f.rc(s, "monitor"), 8);
    let r = history.newest().expect("a record of the recovery");
    assert_eq!((r.timeline, r.old_primary.as_deref(), r.kind), (4, Some("local-s"), paceline::history::Kind::Recovery), "{r:#?}");

    // A crashed primary: monitor says 9, stop succeeds (no fence loop), start gives a standby.
    must(&format!("kill -9 $(head -1 {}/postmaster.pid)", s.data.display()));
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(f.rc(s, "monitor"), 9, "crashed primary");
    assert_eq!(f.rc(s, "stop"), 0, "stop of a crashed instance succeeds");
    assert_eq!(f.rc(s, "stop"), 0);
    assert_eq!(f.rc(s, "monitor"), 9, "still a crashed primary until restarted");

    for i in [p, s] {
        assert_eq!(f.rc(i, "stop"), 0);
        assert_eq!(f.rc(i, "stop"), 0, "stop is idempotent");
    }
    assert_eq!(f.rc(p, "monitor"), 7);
}

#[test]
fn bad_installation_and_configuration_codes() {
    if !possible() {
        return;
    }
    let f = Fixture::new(1);
    let p = &f.primary;
    let run = |extra: &[(&str, &str)], action: &str| f.agent(p, action, extra).0;
    // One code for one fault, whichever action meets it: what this node lacks is
    // OCF_ERR_INSTALLED (5: not here, maybe elsewhere); a probe of a node that lacks it
    // answers "not running here" (7), as resource-agents' ocf_is_probe convention says.
    let probe = [("OCF_RESKEY_CRM_meta_interval", "0")];
    let recurring = ("OCF_RESKEY_CRM_meta_interval", "15000");
    for missing in [
        ("OCF_RESKEY_system_user", "nosuchuser"),
        ("OCF_RESKEY_bindir", "/nonexistent"),
        ("OCF_RESKEY_pgdata", "/nonexistent"),
        ("OCF_RESKEY_datadir", "/nonexistent"),
    ] {
        for action in ["validate-all", "start", "reload-agent"] {
            assert_eq!(run(&[missing], action), 5, "{action} with {missing:?}");
        }
        assert_eq!(run(&[missing, recurring], "monitor"), 5, "recurring monitor with {missing:?}");
        assert_eq!(run(&[&[missing][..], &probe[..]].concat(), "monitor"), 7, "probe with {missing:?}");
        assert_eq!(run(&[missing], "stop"), 0, "stop with {missing:?}: nothing runs");
    }
    assert_eq!(run(&[("OCF_RESKEY_pgdata", "relative")], "start"), 6);
    assert_eq!(run(&[("OCF_RESKEY_CRM_meta_clone_max", "3")], "validate-all"), 6, "notify not set");
    assert_eq!(run(&[], "frobnicate"), 3);
    // pg_rewind needs wal_log_hints or data checksums: initdb turns checksums on from
    // PostgreSQL 18, and then auto_rewind is valid without wal_log_hints.
    let control = common::must(&format!("LC_ALL=C {BINDIR}/pg_controldata {}", p.data.display()));
    let checksums = control.lines().any(|l| l.starts_with("Data page checksum version:") && !l.ends_with(" 0"));
    assert_eq!(
        run(&[("OCF_RESKEY_auto_rewind", "true")], "validate-all"),
        if checksums { 0 } else { 6 },
        "auto_rewind without wal_log_hints (checksums: {checksums})"
    );
    assert_eq!(run(&[("OCF_RESKEY_auto_rewind", "maybe")], "validate-all"), 6);
    // Nothing was started by any of these.
    assert!(!p.data.join("postmaster.pid").exists());
}

#[test]
fn ocf_tester_passes() {
    if !possible() {
        return;
    }
    if !sh("command -v ocf-tester").status.success() {
        eprintln!("skipped: ocf-tester missing");
        return;
    }
    let f = Fixture::new(2);
    let p = &f.primary;
    let agent = agent();
    let o = sh(&format!(
        "cd / && ocf-tester -n pgsqld -o bindir={BINDIR} -o pgdata={} -o pghost={} -o pgport={} {agent} 2>&1",
        p.data.display(),
        p.sock.display(),
        p.port
    ));
    let text = String::from_utf8_lossy(&o.stdout);
    // ocf-tester validates meta-data against resource-agents' ra-api-1.dtd, which predates
    // OCF 1.1: it knows neither `reloadable` nor `reload-agent`, which Pacemaker needs to
    // reload instead of restarting (Pacemaker's own ocf:pacemaker:remote fails it the same
    // way). That one check fails, for exactly those two; every other check passes.
    let failed: Vec<&str> = text.lines().filter(|l| l.starts_with("* rc=")).collect();
    assert!(failed.len() == 1 && failed[0].contains("does not conform to ra-api-1.dtd") && text.contains("failed 1 tests"), "{text}");
    for l in text.lines().filter(|l| l.contains("validity error")) {
        assert!(l.contains("attribute reloadable") || l.contains("\"reload-agent\""), "a DTD error other than OCF 1.1's additions: {l}\n{text}");
    }
    assert!(!text.contains("does not support promotable clones"), "{text}");
    // Against the same DTD with OCF 1.1's two additions, the meta-data is valid.
    let dtd = f.base.join("ra-api-1.1.dtd");
    let orig = std::fs::read_to_string("/usr/share/resource-agents/ra-api-1.dtd").expect("ra-api-1.dtd");
    let patched = orig.replacen("unique  (1|0)   \"0\">", "unique  (1|0)   \"0\"\n        reloadable (1|0) \"0\">", 1).replacen(
        "name (start|",
        "name (reload-agent|start|",
        1,
    );
    assert_ne!(orig, patched, "the DTD's shape changed: adapt the patch");
    std::fs::write(&dtd, patched).unwrap();
    let o = sh(&format!("{agent} meta-data | xmllint --noout --dtdvalid {} - 2>&1", dtd.display()));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
}

/// `psql -XAt` on an instance's socket, as postgres.
fn sql(i: &Instance, q: &str) -> String {
    let o = sh(&format!("cd / && runuser -u postgres -- psql -XAt -h {} -p {} -d postgres -c \"{q}\"", i.sock.display(), i.port));
    assert!(o.status.success(), "{q}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

/// Poll `q` on `i` until it returns `want` (10 s).
fn wait_sql(i: &Instance, q: &str, want: &str) {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let o = sh(&format!("cd / && runuser -u postgres -- psql -XAt -h {} -p {} -d postgres -c \"{q}\"", i.sock.display(), i.port));
        let got = String::from_utf8_lossy(&o.stdout).trim().to_owned();
        if got == want {
            return;
        }
        assert!(std::time::Instant::now() < until, "{q} on port {}: {got:?}, want {want:?}", i.port);
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// A CIB (for `CIB_file`) in which `pgsqld` runs promoted on `node`: what
/// `crm_resource --locate` reads at start to know there is a primary to follow.
fn cib_with_primary(dir: &Path, node: &str) -> PathBuf {
    let (base, out) = (dir.join("cib-base.xml"), dir.join("cib.xml"));
    let on = |args: &str| must(&format!("CIB_file={} {args}", base.display()));
    must(&format!("cibadmin --empty > {}", base.display()));
    on(&format!("pcs -f {} property set stonith-enabled=false", base.display()));
    on(&format!("pcs -f {} resource create pgsqld ocf:pacemaker:Stateful promotable", base.display()));
    on(&format!("cibadmin --create -o nodes --xml-text '<node id=\"1\" uname=\"{node}\"/>'"));
    on(&format!("crm_attribute --node {node} --name master-pgsqld --update 10 --lifetime forever"));
    must(&format!("crm_simulate -x {} -S -O {} --quorum true --node-up {node} >/dev/null", base.display(), out.display()));
    let o = sh(&format!("CIB_file={} crm_resource --locate --resource pgsqld", out.display()));
    assert!(String::from_utf8_lossy(&o.stdout).contains(&format!("{node} Promoted")), "{o:?}");
    out
}

/// [`possible`], and pcs and crm_simulate for a CIB file that names the primary.
fn possible_with_pacemaker_tools() -> bool {
    let ok = possible() && sh("command -v pcs && command -v crm_simulate").status.success();
    if !ok {
        eprintln!("skipped: needs root, PostgreSQL 15, pcs and Pacemaker's tools");
    }
    ok
}

/// A split brain: the fixture's primary `p` started and promoted through the agent, its
/// standby `s` started and replaying `setup` (`replayed`: a query on s and its answer once
/// it has); then a failover while p still takes writes (a partition): s promoted by hand and
/// given `on_s`, p given `on_p` and crashed, so their histories fork; p's own configuration
/// names s as its upstream. Returns p's postgresql.auto.conf and its text.
fn split_brain(f: &Fixture, setup: &str, replayed: (&str, &str), on_s: &str, on_p: &str) -> (PathBuf, String) {
    let (p, s) = (&f.primary, &f.standby);
    f.primary_and_standby();
    sql(p, setup);
    wait_sql(s, replayed.0, replayed.1);
    as_pg(&format!("{BINDIR}/pg_ctl -D {} -w promote >/dev/null", s.data.display()));
    sql(s, on_s);
    sql(p, on_p);
    as_pg(&format!("{BINDIR}/pg_ctl -D {} -w -m immediate stop >/dev/null", p.data.display()));
    let auto_conf = p.data.join("postgresql.auto.conf");
    let own = std::fs::read_to_string(&auto_conf).unwrap().replace(&format!("port={} user", p.port), &format!("port={} user", s.port));
    std::fs::write(&auto_conf, &own).unwrap();
    (auto_conf, own)
}

#[test]
fn diverged_ex_primary_is_refused_then_rewound_with_auto_rewind() {
    if !possible_with_pacemaker_tools() {
        return;
    }
    let f = Fixture::new(3);
    let (p, s) = (&f.primary, &f.standby);
    let (auto_conf, own) = split_brain(
        &f,
        "CREATE TABLE t (i int); INSERT INTO t SELECT generate_series(1, 10)",
        ("SELECT count(*) FROM t", "10"),
        "INSERT INTO t SELECT generate_series(11, 15)",
        "INSERT INTO t SELECT generate_series(100, 199)",
    );

    let cib = cib_with_primary(&f.base, "nodeS");
    let log = f.base.join("agent.log");
    let cluster = [("CIB_file", cib.to_str().unwrap()), ("OCF_RESKEY_CRM_meta_on_node", "nodeP"), ("HA_LOGFILE", log.to_str().unwrap())];

    // Refused, with the reason, and left stopped.
    let (rc, err) = f.agent(p, "start", &cluster);
    assert_eq!(rc, 1, "{err}");
    assert!(err.contains("ocf-exit-reason:timeline diverged from the primary on nodeS") && err.contains("auto_rewind"), "{err}");
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(log_text.contains("this instance holds WAL the primary never received"), "the whole chain is in the log: {log_text}");
    assert_eq!(f.rc(p, "monitor"), 7, "left stopped");
    assert_eq!(f.rc(p, "stop"), 0);

    // auto_rewind=true: rewound from the new primary, started as a standby that follows it,
    // its diverged rows gone, its own configuration kept.
    let rewind = [cluster.as_slice(), &[("OCF_RESKEY_auto_rewind", "true")]].concat();
    assert_eq!(f.agent(p, "validate-all", &rewind).0, 0);
    let (rc, err) = f.agent(p, "start", &rewind);
    assert_eq!(rc, 0, "{err}\n{}", std::fs::read_to_string(&log).unwrap_or_default());
    assert_eq!(f.rc(p, "monitor"), 0);
    assert_eq!(std::fs::read_to_string(&auto_conf).unwrap(), own, "pg_rewind's copy of the primary's postgresql.auto.conf was replaced by our own");
    sql(s, "INSERT INTO t SELECT generate_series(16, 20)");
    wait_sql(p, "SELECT count(*), max(i) FROM t", "20|20");
    wait_sql(p, "SELECT status FROM pg_stat_wal_receiver", "streaming");

    // A restart now finds nothing to rewind.
    assert_eq!(f.rc(p, "stop"), 0);
    let (rc, err) = f.agent(p, "start", &cluster);
    assert_eq!(rc, 0, "{err}");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("rewinding this instance") && text.contains("this instance can follow it"), "{text}");
}

/// Issue #26.9: an ex-primary whose only WAL past the fork is what its own clean shutdown
/// wrote (a running-transactions record, the shutdown checkpoint) — a primary stopped after
/// its standby went away, the standby then promoted — rejoins by itself with auto_rewind
/// off: nothing a client was told committed lies past the fork, so the rewind loses nothing.
/// The same with one committed row past the fork is refused (the test above).
#[test]
fn ex_primary_diverged_by_its_shutdown_checkpoint_only_rejoins() {
    if !possible_with_pacemaker_tools() {
        return;
    }
    let f = Fixture::new(15);
    let (p, s) = (&f.primary, &f.standby);
    f.primary_and_standby();
    sql(p, "CREATE TABLE t (i int); INSERT INTO t SELECT generate_series(1, 10)");
    let end = sql(p, "SELECT pg_current_wal_lsn()");
    wait_sql(s, &format!("SELECT pg_last_wal_replay_lsn() >= '{end}'"), "t");
    // The standby goes away first; the primary's clean shutdown then writes its checkpoint
    // where the standby never sees it. The standby is promoted alone and takes writes.
    as_pg(&format!("{BINDIR}/pg_ctl -D {} -w -m fast stop >/dev/null", s.data.display()));
    as_pg(&format!("{BINDIR}/pg_ctl -D {} -w -m fast stop >/dev/null", p.data.display()));
    as_pg(&format!("{BINDIR}/pg_ctl -D {} -l {}/s.log -w start >/dev/null", s.data.display(), f.base.display()));
    as_pg(&format!("{BINDIR}/pg_ctl -D {} -w promote >/dev/null", s.data.display()));
    sql(s, "INSERT INTO t SELECT generate_series(11, 15)");
    let auto_conf = p.data.join("postgresql.auto.conf");
    let own = std::fs::read_to_string(&auto_conf).unwrap().replace(&format!("port={} user", p.port), &format!("port={} user", s.port));
    std::fs::write(&auto_conf, &own).unwrap();

    let cib = cib_with_primary(&f.base, "nodeS");
    let log = f.base.join("agent.log");
    let cluster = [("CIB_file", cib.to_str().unwrap()), ("OCF_RESKEY_CRM_meta_on_node", "nodeP"), ("HA_LOGFILE", log.to_str().unwrap())];
    let (rc, err) = f.agent(p, "start", &cluster);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(rc, 0, "{err}\n{text}");
    assert!(text.contains("holds no transaction") && text.contains("CHECKPOINT_SHUTDOWN") && text.contains("auto_rewind=false"), "{text}");
    assert_eq!(f.rc(p, "monitor"), 0);
    sql(s, "INSERT INTO t SELECT generate_series(16, 20)");
    wait_sql(p, "SELECT count(*), max(i) FROM t", "20|20");
    wait_sql(p, "SELECT status FROM pg_stat_wal_receiver", "streaming");
    assert_eq!(std::fs::read_to_string(&auto_conf).unwrap(), own, "its own configuration kept");
}

/// Seen in the lab's chain of faults (issue #26.9): a primary fenced mid-partition rejoins;
/// Pacemaker demotes what its probe found crashed in the promoted role. The demote used to
/// start it as a standby with no comparison: its crash recovery replayed the WAL the new
/// primary never received, and its stop recorded a minimum recovery point past the fork.
/// The start that followed saw no primary in the rejoining node's CIB (not synced yet), so
/// it compared nothing either, and PostgreSQL refused ("requested timeline 3 does not
/// contain minimum recovery point … on timeline 2"): a failed start, the node banned.
/// Now the demote goes the start's way (with a primary in view: crash recovery, compare,
/// rewind), and a start PostgreSQL refuses for its history is compared with the primary
/// its primary_conninfo names: refused with the reason, or rewound with auto_rewind.
#[test]
fn a_crashed_primary_past_the_fork_is_compared_by_demote_and_by_a_start_that_sees_no_primary() {
    if !possible_with_pacemaker_tools() {
        return;
    }
    let setup = "CREATE TABLE t (i int); INSERT INTO t SELECT generate_series(1, 10)";
    let replayed = ("SELECT count(*) FROM t", "10");
    let (on_s, on_p) = ("INSERT INTO t SELECT generate_series(11, 15)", "INSERT INTO t SELECT generate_series(100, 199)");

    // The demote, with the new primary in view: compared and rewound like a start.
    let f = Fixture::new(18);
    let (p, s) = (&f.primary, &f.standby);
    split_brain(&f, setup, replayed, on_s, on_p);
    let cib = cib_with_primary(&f.base, "nodeS");
    let log = f.base.join("agent.log");
    let with_primary = [
        ("CIB_file", cib.to_str().unwrap()),
        ("OCF_RESKEY_CRM_meta_on_node", "nodeP"),
        ("HA_LOGFILE", log.to_str().unwrap()),
        ("OCF_RESKEY_auto_rewind", "true"),
    ];
    assert_eq!(f.agent(p, "monitor", &with_primary).0, 9, "crashed while primary");
    let (rc, err) = f.agent(p, "demote", &with_primary);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(rc, 0, "{err}\n{text}");
    assert!(text.contains("crash recovery first") && text.contains("rewinding this instance"), "{text}");
    sql(s, "INSERT INTO t SELECT generate_series(16, 20)");
    wait_sql(p, "SELECT count(*), max(i) FROM t", "20|20");
    wait_sql(p, "SELECT status FROM pg_stat_wal_receiver", "streaming");
    drop(f);

    // No primary in view (an empty CIB): the demote starts it as before, it replays its own
    // WAL and fetches the new timeline's history it cannot follow; stopped, it is what the
    // lab's node was. The start then hears PostgreSQL's refusal and compares.
    let f = Fixture::new(17);
    let (p, s) = (&f.primary, &f.standby);
    split_brain(&f, setup, replayed, on_s, on_p);
    let empty = f.base.join("empty-cib.xml");
    must(&format!("cibadmin --empty > {}", empty.display()));
    let log = f.base.join("agent.log");
    let no_primary = [("CIB_file", empty.to_str().unwrap()), ("OCF_RESKEY_CRM_meta_on_node", "nodeP"), ("HA_LOGFILE", log.to_str().unwrap())];
    let (rc, err) = f.agent(p, "demote", &no_primary);
    assert_eq!(rc, 0, "{err}");
    let until = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !p.data.join("pg_wal/00000002.history").exists() {
        assert!(std::time::Instant::now() < until, "p never fetched timeline 2's history");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(f.agent(p, "stop", &no_primary).0, 0);
    let (rc, err) = f.agent(p, "start", &no_primary);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(rc, 1, "{err}\n{text}");
    assert!(err.contains("ocf-exit-reason:timeline diverged from the primary on the node its primary_conninfo names"), "{err}\n{text}");
    assert!(text.contains("does not contain minimum recovery point") || text.contains("is not a child of this server's history"), "{text}");
    assert_eq!(f.rc(p, "monitor"), 7, "left stopped");
    let rewind = [no_primary.as_slice(), &[("OCF_RESKEY_auto_rewind", "true")]].concat();
    let (rc, err) = f.agent(p, "start", &rewind);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(rc, 0, "{err}\n{text}");
    assert!(text.contains("rewinding this instance"), "{text}");
    sql(s, "INSERT INTO t SELECT generate_series(16, 20)");
    wait_sql(p, "SELECT count(*), max(i) FROM t", "20|20");
    wait_sql(p, "SELECT status FROM pg_stat_wal_receiver", "streaming");
}

/// Issue #26.9: with `logging_collector` on, the startup process writes its FATAL line to
/// the collector's file in `log_directory`, not to pg_ctl's log: a failed start quotes it
/// from there (and names that file).
#[test]
fn a_failed_start_quotes_the_fatal_line_from_log_directory() {
    if !possible() {
        return;
    }
    let f = Fixture::new(16);
    let p = &f.primary;
    let conf = p.data.join("postgresql.auto.conf");
    let text = std::fs::read_to_string(&conf).unwrap() + "logging_collector = on\nlog_directory = 'log'\nrecovery_target_timeline = '99'\n";
    std::fs::write(&conf, text).unwrap();
    let (rc, err) = f.agent(p, "start", &[]);
    assert_eq!(rc, 1, "{err}");
    assert!(err.contains("ocf-exit-reason:PostgreSQL exited while starting as a standby: FATAL:  recovery target timeline 99 does not exist"), "{err}");
    assert!(err.contains(&format!("(its log: {}/log/", p.data.display())), "{err}");
}

/// pg_rewind against a primary promoted a moment ago. PostgreSQL 15's pg_rewind reads the
/// source's timeline from its pg_control, which a promoted primary rewrites only when the
/// promotion's spread checkpoint ends; here that checkpoint has hundreds of buffers to
/// write (about 0.1 s each while ahead of schedule), so it lasts a minute. A rewind user
/// that may not CHECKPOINT: the agent waits for the primary's own, in vain, says so, does
/// not rewind, and starts the standby as when the check cannot be made — PostgreSQL refuses
/// the diverged history, and start fails at once with its reason. The superuser: the agent
/// asks for a CHECKPOINT, and the comparison and the rewind are right at once.
#[test]
fn rewind_from_a_just_promoted_primary_checkpoints_it_first() {
    if !possible_with_pacemaker_tools() {
        return;
    }
    let f = Fixture::new(8);
    let (p, s) = (&f.primary, &f.standby);
    // Replay dirties the standby's buffers: its promotion checkpoint will have them to write.
    split_brain(
        &f,
        "CREATE ROLE rewinder LOGIN; GRANT EXECUTE ON FUNCTION pg_ls_dir(text, boolean, boolean), pg_stat_file(text, boolean), pg_read_binary_file(text), pg_read_binary_file(text, bigint, bigint, boolean) TO rewinder; \
         CREATE TABLE t AS SELECT i, repeat('x', 200) AS pad FROM generate_series(1, 40000) i",
        ("SELECT count(*) FROM t", "40000"),
        "INSERT INTO t SELECT i, '' FROM generate_series(40001, 40005) i",
        "INSERT INTO t SELECT i, '' FROM generate_series(50001, 50100) i",
    );
    // Timelines as the new primary's control file and its WAL say (the agent's promote made 2, this one 3).
    let timelines = || {
        sql(s, "SELECT (SELECT timeline_id FROM pg_control_checkpoint()) || ' ' || ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int")
    };
    let stale = timelines();
    let (done, now) = stale.split_once(' ').unwrap();
    assert_ne!(done, now, "the new primary's control file is still on an old timeline: {stale}");

    let cib = cib_with_primary(&f.base, "nodeS");
    let log = f.base.join("agent.log");
    let cluster = [
        ("CIB_file", cib.to_str().unwrap()),
        ("OCF_RESKEY_CRM_meta_on_node", "nodeP"),
        ("HA_LOGFILE", log.to_str().unwrap()),
        ("OCF_RESKEY_auto_rewind", "true"),
    ];

    // No CHECKPOINT privilege: waited for, in vain; not rewound; started as a standby as
    // when the check cannot be made — which PostgreSQL refuses for a diverged history, and
    // start fails at once with its words.
    let without = [cluster.as_slice(), &[("OCF_RESKEY_rewind_user", "rewinder")]].concat();
    let t = std::time::Instant::now();
    let (rc, err) = f.agent(p, "start", &without);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(rc, 1, "{err}\n{text}");
    assert!(err.contains("ocf-exit-reason:PostgreSQL exited while starting as a standby: FATAL:  requested timeline"), "{err}");
    assert!(t.elapsed() < std::time::Duration::from_secs(20), "start waited out its timeout: {:?}", t.elapsed());
    assert!(text.contains("asking it for a CHECKPOINT") && text.contains("no CHECKPOINT (") && text.contains("waiting for the primary's own"), "{text}");
    assert!(
        text.contains("cannot compare this instance's history") && text.contains(&format!("control file is still on timeline {done}, its WAL on {now}")),
        "{text}"
    );
    assert!(!text.contains("rewinding this instance"), "rewound from a stale source: {text}");
    assert_eq!(f.rc(p, "monitor"), 7, "left stopped");
    assert_eq!(timelines(), stale, "the primary's checkpoint is still under way");
    assert_eq!(f.rc(p, "stop"), 0);

    // The superuser (primary_conninfo's user): a CHECKPOINT, then diverged, rewound, streaming.
    std::fs::write(&log, "").unwrap();
    let (rc, err) = f.agent(p, "start", &cluster);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(rc, 0, "{err}\n{text}");
    assert!(
        text.contains("asking it for a CHECKPOINT")
            && !text.contains("no CHECKPOINT (")
            && text.contains("rewinding this instance")
            && text.contains("rewound from the primary"),
        "{text}"
    );
    assert_eq!(timelines(), format!("{now} {now}"), "the CHECKPOINT brought the control file to the primary's timeline");
    wait_sql(p, "SELECT status FROM pg_stat_wal_receiver", "streaming");
    wait_sql(p, "SELECT count(*), max(i) FROM t", "40005|40005");
}

/// A commit on a primary whose synchronous standbys are absent, cancelled after
/// `cancel_ms` as a driver's query timeout does (a cancel request; statement_timeout is no
/// use here: PostgreSQL disables it before the commit). The cancel hole without the state
/// service: success, with a WARNING; with it, an error. Returns (psql succeeded, its
/// stderr, how long it took).
fn commit_cancelled_after(i: &Instance, cancel_ms: u64, value: i32) -> (bool, String, std::time::Duration) {
    let t = std::time::Instant::now();
    let child = Command::new("sh")
        .arg("-c")
        .arg(format!("cd / && runuser -u postgres -- psql -X -h 127.0.0.1 -p {} -d postgres -c 'INSERT INTO s VALUES ({value})'", i.port))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let canceller = {
        let (done, sock, port) = (done.clone(), i.sock.clone(), i.port);
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(cancel_ms));
            if !done.load(std::sync::atomic::Ordering::SeqCst) {
                sh(&format!("cd / && runuser -u postgres -- psql -XAt -h {} -p {port} -d postgres -c \"SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE wait_event = 'SyncRep'\"", sock.display()));
            }
        })
    };
    let out = child.wait_with_output().unwrap();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let took = t.elapsed();
    canceller.join().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned(), took)
}

#[test]
fn state_service_closes_the_cancel_hole_of_synchronous_commits() {
    if !possible() {
        return;
    }
    let f = Fixture::new(4);
    let p = &f.primary;
    assert_eq!(f.rc(p, "start"), 0);
    assert_eq!(f.rc(p, "promote"), 0);
    sql(p, "CREATE TABLE s (i int)");
    // A synchronous standby that never comes (a primary cut off from its standbys).
    sql(p, "ALTER SYSTEM SET synchronous_standby_names = 'ANY 1 (\\\"nobody\\\")'");
    sql(p, "SELECT pg_reload_conf()");
    wait_sql(p, "SHOW synchronous_standby_names", "ANY 1 (\"nobody\")");

    // The hole: the client cancels its wait and is told the commit succeeded.
    let (ok, err, _) = commit_cancelled_after(p, 1000, 1);
    assert!(ok && err.contains("canceling wait for synchronous replication"), "expected PostgreSQL's false success: {err}");

    // With the state service: the session is ended, the client gets an error, in time.
    let state = |action: &str, extra: &[(&str, &str)]| {
        // The routing checks have a test of their own.
        let env = [&[("OCF_RESKEY_sync_wait_limit", "300"), ("OCF_RESKEY_http_port", "0")][..], extra].concat();
        f.state_agent(p, "pgsql-state:0", "state", action, &env)
    };
    assert_eq!(state("monitor", &[]), 7, "not started yet");
    assert_eq!(state("validate-all", &[("OCF_RESKEY_sync_wait_limit", "-5")]), 6);
    assert_eq!(state("start", &[]), 0);
    assert_eq!(state("start", &[]), 0, "start is idempotent");
    assert_eq!(state("monitor", &[]), 0);
    std::thread::sleep(std::time::Duration::from_millis(200));
    for n in 0..3 {
        let (ok, err, took) = commit_cancelled_after(p, 2000, 10 + n);
        assert!(!ok, "acknowledged although no standby has it: {err}");
        assert!(!err.contains("canceling wait"), "the client's cancel fired first: {err}");
        assert!(err.contains("terminating connection due to administrator command"), "{err}");
        assert!(took < std::time::Duration::from_millis(1500), "ended after {took:?}");
    }
    let log = std::fs::read_to_string(f.base.join("state.log")).unwrap_or_default();
    assert!(log.contains("ended session"), "{log}");
    // An asynchronous primary's commits are left alone.
    sql(p, "ALTER SYSTEM RESET synchronous_standby_names");
    sql(p, "SELECT pg_reload_conf()");
    wait_sql(p, "SHOW synchronous_standby_names", "");
    let (ok, err, _) = commit_cancelled_after(p, 2000, 20);
    assert!(ok && !err.contains("canceling"), "{err}");

    assert_eq!(state("stop", &[]), 0);
    assert_eq!(state("monitor", &[]), 7);
    assert_eq!(state("stop", &[]), 0, "stop is idempotent");
}

/// Instant reconnect (issue #23.3): a standby that lost its primary tries again only after
/// wal_retrieve_retry_interval — 60 s here, so that "waits" and "woken" differ by far more
/// than any machine's hiccup. The state service wakes it once the primary answers: started
/// while the standby waits, and with the service running when the primary goes and comes.
#[test]
fn state_service_wakes_a_standby_whose_primary_is_back() {
    if !possible() {
        return;
    }
    let f = Fixture::new(19);
    f.primary_and_standby();
    let (p, s) = (&f.primary, &f.standby);
    sql(s, "ALTER SYSTEM SET wal_retrieve_retry_interval = '60s'");
    sql(s, "SELECT pg_reload_conf()");
    wait_sql(s, "SELECT status FROM pg_stat_wal_receiver", "streaming");
    let primary = |action: &str| {
        let log = if action == "start" { format!(" -l {}/primary.log", f.base.display()) } else { String::new() };
        as_pg(&format!("{BINDIR}/pg_ctl -D {} -m fast -w{log} {action} >/dev/null", p.data.display()));
    };
    let streaming = || sql(s, "SELECT coalesce((SELECT status FROM pg_stat_wal_receiver), 'none')") == "streaming";

    // Without the service: the primary goes and comes back; the standby waits its 60 s.
    primary("stop");
    wait_sql(s, "SELECT wait_event FROM pg_stat_activity WHERE backend_type = 'startup'", "RecoveryRetrieveRetryInterval");
    primary("start");
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert!(!streaming(), "streams again without being woken: the retry interval did not hold the standby back");

    // The service, started now, wakes it: streaming long before the 60 s.
    let state = |action: &str, extra: &[(&str, &str)]| {
        let env = [&[("OCF_RESKEY_http_port", "0"), ("OCF_RESKEY_crash_reports", "false")][..], extra].concat();
        f.state_agent(s, "pgsql-state:0", "state", action, &env)
    };
    assert_eq!(state("validate-all", &[("OCF_RESKEY_instant_reconnect", "perhaps")]), 6);
    assert_eq!(state("start", &[]), 0);
    wait_sql(s, "SELECT status FROM pg_stat_wal_receiver", "streaming");
    // Running all along: the primary goes and comes back, the standby follows at once.
    primary("restart");
    wait_sql(s, "SELECT status FROM pg_stat_wal_receiver", "streaming");
    let log = std::fs::read_to_string(f.base.join("state.log")).unwrap_or_default();
    assert!(log.matches("waking its retry now").count() >= 2, "{log}");

    // A primary_conninfo whose server accepts the connection and never answers (as packets
    // to a VIP that just moved can vanish): PostgreSQL's walreceiver ignores connect_timeout
    // and would wait for TCP to give up; the service ends it after STUCK_CONNECT.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    sql(s, &format!("ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port={port} user=postgres application_name=standby connect_timeout=2'"));
    sql(s, "SELECT pg_reload_conf()");
    let ended = (0..150).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(200));
        std::fs::read_to_string(f.base.join("state.log")).unwrap_or_default().contains("ended the walreceiver")
    });
    assert!(
        ended,
        "the walreceiver stuck connecting was not ended ({}): {}",
        sql(s, "SELECT string_agg(backend_type || ' ' || pid || ' ' || coalesce(wait_event, '-'), ', ') FROM pg_stat_activity WHERE backend_type IN ('walreceiver', 'startup')"),
        std::fs::read_to_string(f.base.join("state.log")).unwrap_or_default()
    );
    drop(silent);
    // (The fixture's own conninfo is in postgresql.auto.conf, which ALTER SYSTEM rewrites.)
    sql(s, &format!("ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port={} user=postgres application_name=standby'", p.port));
    sql(s, "SELECT pg_reload_conf()");
    wait_sql(s, "SELECT status FROM pg_stat_wal_receiver", "streaming");
    assert_eq!(state("stop", &[]), 0);

    // Off: the standby waits again.
    assert_eq!(state("start", &[("OCF_RESKEY_instant_reconnect", "false")]), 0);
    primary("restart");
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert!(!streaming(), "instant_reconnect=false still woke the standby");
    assert_eq!(state("stop", &[("OCF_RESKEY_instant_reconnect", "false")]), 0);
    assert_eq!(f.rc(s, "stop"), 0);
    primary("stop");
}

/// replication_slots (issue #23.1): the primary's monitor gives the standby a slot, the
/// standby's monitor streams through it, and a standby stopped while the primary recycles
/// far more WAL than wal_keep_size (0 here) covers rejoins without a base backup. Turned
/// off, the standby drops primary_slot_name and the primary the slot — and the same outage
/// then leaves the standby without its WAL (what the slot was for). A slot of the agent's
/// created on a standby (as a promotion does, in recovery) is dropped by its monitor.
#[test]
fn replication_slots_keep_a_stopped_standbys_wal() {
    if !possible() {
        return;
    }
    let f = Fixture::new(20);
    let (p, s) = (&f.primary, &f.standby);
    // A recurring monitor (an interval: not a probe), as this node.
    let on = |node: &'static str| [("OCF_RESKEY_replication_slots", "true"), ("OCF_RESKEY_CRM_meta_on_node", node), ("OCF_RESKEY_CRM_meta_interval", "15000")];
    let off =
        |node: &'static str| [("OCF_RESKEY_replication_slots", "false"), ("OCF_RESKEY_CRM_meta_on_node", node), ("OCF_RESKEY_CRM_meta_interval", "15000")];
    assert_eq!(f.agent(p, "validate-all", &[("OCF_RESKEY_replication_slots", "true"), ("OCF_RESKEY_slot_ttl", "0")]).0, 6);
    f.primary_and_standby();
    sql(p, "ALTER SYSTEM SET wal_keep_size = 0");
    sql(p, "SELECT pg_reload_conf()");
    wait_sql(s, "SELECT status FROM pg_stat_wal_receiver", "streaming");
    // A slot of the agent's on the standby (left from a term as primary, or a promotion's
    // that did not happen): created in recovery, dropped by the standby's monitor.
    sql(s, "SELECT pg_create_physical_replication_slot('paceline_gone', true)");
    let (rc, err) = f.agent(p, "monitor", &on("primary"));
    assert_eq!(rc, 8, "{err}");
    assert_eq!(sql(p, "SELECT slot_name FROM pg_replication_slots"), "paceline_standby", "{err}");
    assert_eq!(f.agent(s, "monitor", &on("standby")).0, 0);
    assert_eq!(sql(s, "SELECT count(*) FROM pg_replication_slots"), "0", "the stale slot on the standby");
    assert_eq!(sql(s, "SHOW primary_slot_name"), "paceline_standby");
    wait_sql(p, "SELECT active FROM pg_replication_slots WHERE slot_name = 'paceline_standby'", "t");
    assert_eq!(f.agent(p, "monitor", &on("primary")).0, 8, "steady state");
    // The state service shows the slot: what it holds, that it is used.
    let http = (p.port + 1000).to_string();
    let svc = [("OCF_RESKEY_listen_address", "127.0.0.1"), ("OCF_RESKEY_http_port", http.as_str()), ("OCF_RESKEY_crash_reports", "false")];
    assert_eq!(f.state_agent(p, "state-p", "state-p", "start", &svc), 0);
    let labels = "{slot=\"paceline_standby\",slot_type=\"physical\"}";
    let mut metrics = String::new();
    for _ in 0..50 {
        metrics = http_get(p.port + 1000, "/metrics").1;
        if metrics.contains(&format!("paceline_slot_active{labels} 1")) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(metrics.contains(&format!("paceline_slot_active{labels} 1")), "{metrics}");
    assert!(metrics.contains(&format!("paceline_slot_invalidated{labels} 0")), "{metrics}");
    assert!(metrics.lines().any(|l| l.starts_with(&format!("paceline_slot_retained_bytes{labels} ")) && !l.ends_with("NaN")), "{metrics}");
    assert_eq!(f.state_agent(p, "state-p", "state-p", "stop", &svc), 0);

    // Down while the primary writes and recycles its WAL: back without a base backup.
    let churn = |n: u32| {
        sql(p, "CREATE TABLE IF NOT EXISTS churn (i int, pad text)");
        for _ in 0..n {
            sql(p, "INSERT INTO churn SELECT g, repeat('x', 500) FROM generate_series(1, 20000) g");
            sql(p, "SELECT pg_switch_wal()");
        }
        sql(p, "CHECKPOINT");
        sql(p, "CHECKPOINT");
    };
    assert_eq!(f.agent(s, "stop", &on("standby")).0, 0);
    let needed = sql(p, "SELECT pg_walfile_name(restart_lsn) FROM pg_replication_slots WHERE slot_name = 'paceline_standby'");
    churn(6);
    assert!(f.primary.data.join("pg_wal").join(&needed).exists(), "the slot kept {needed}");
    assert_eq!(f.agent(p, "monitor", &on("primary")).0, 8, "an inactive slot within its TTL is kept");
    assert_eq!(sql(p, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'paceline_standby'"), "1");
    assert_eq!(f.agent(s, "start", &on("standby")).0, 0);
    wait_sql(s, "SELECT status FROM pg_stat_wal_receiver", "streaming");
    let rows = sql(p, "SELECT count(*) FROM churn");
    wait_sql(s, "SELECT count(*) FROM churn", &rows);

    // Off: the standby's reload removes primary_slot_name, the primary's monitor the slot.
    assert_eq!(f.agent(s, "reload-agent", &off("standby")).0, 0);
    assert_eq!(sql(s, "SHOW primary_slot_name"), "");
    wait_sql(p, "SELECT coalesce((SELECT active::text FROM pg_replication_slots WHERE slot_name = 'paceline_standby'), 'none')", "false");
    assert_eq!(f.agent(p, "monitor", &off("primary")).0, 8);
    assert_eq!(sql(p, "SELECT count(*) FROM pg_replication_slots"), "0");
    // The same outage without a slot: the WAL the standby needs is gone.
    wait_sql(s, "SELECT status FROM pg_stat_wal_receiver", "streaming");
    assert_eq!(f.agent(s, "stop", &off("standby")).0, 0);
    churn(6);
    // The primary's server log, where the agent's start put it (from here on).
    let debian = Path::new("/var/log/postgresql");
    let plog = if debian.is_dir() { debian.join(format!("paceline-pgsqld-{}.log", p.port)) } else { p.data.join("paceline-server.log") };
    let from = std::fs::metadata(&plog).map(|m| m.len() as usize).unwrap_or(0);
    let _ = f.agent(s, "start", &off("standby"));
    let gone = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(200));
        String::from_utf8_lossy(std::fs::read(&plog).unwrap_or_default().get(from..).unwrap_or_default()).contains("has already been removed")
    });
    assert!(gone, "without a slot the standby's WAL was expected gone: the test's churn is too small");
    let _ = f.agent(s, "stop", &off("standby"));
    assert_eq!(f.rc(p, "stop"), 0);
}

#[test]
fn synchronous_mode_bad_input_and_no_cluster() {
    if !possible() {
        return;
    }
    let f = Fixture::new(5);
    let p = &f.primary;
    let on = [("OCF_RESKEY_synchronous_mode", "on")];
    assert_eq!(f.agent(p, "validate-all", &on).0, 0);
    assert_eq!(f.agent(p, "validate-all", &[("OCF_RESKEY_synchronous_mode", "yes")]).0, 6);
    // k larger than the clone's standbys.
    let big = [
        ("OCF_RESKEY_synchronous_mode", "on"),
        ("OCF_RESKEY_synchronous_node_count", "2"),
        ("OCF_RESKEY_CRM_meta_clone_max", "2"),
        ("OCF_RESKEY_CRM_meta_notify", "true"),
    ];
    let (rc, err) = f.agent(p, "validate-all", &big);
    assert_eq!(rc, 6, "{err}");
    assert!(err.contains("synchronous_node_count 2 needs 2 standbys"), "{err}");
    // Set by hand: refused with the reason.
    let auto_conf = p.data.join("postgresql.auto.conf");
    let conf = std::fs::read_to_string(&auto_conf).unwrap();
    std::fs::write(&auto_conf, format!("{conf}synchronous_standby_names = 'FIRST 1 (standby)'\n")).unwrap();
    let (rc, err) = f.agent(p, "validate-all", &on);
    assert_eq!(rc, 6, "{err}");
    assert!(err.contains("set by hand") || err.contains("manages this setting"), "{err}");
    assert_eq!(f.agent(p, "validate-all", &[]).0, 0, "synchronous_mode off leaves it alone");
    std::fs::write(&auto_conf, &conf).unwrap();

    // No cluster to ask for the standbys: the promotion is refused, the instance stays a standby.
    assert_eq!(f.agent(p, "start", &on).0, 0);
    let (rc, err) = f.agent(p, "promote", &on);
    assert_eq!(rc, 1, "{err}");
    assert_eq!(f.rc(p, "monitor"), 0, "still a standby");
    // The same instance with synchronous_mode off promotes, and clears nothing it did not write.
    assert_eq!(f.rc(p, "promote"), 0);
    assert_eq!(sql(p, "SHOW synchronous_standby_names"), "");
    assert_eq!(f.rc(p, "stop"), 0);
}

/// One HTTP/1.1 request on a fresh connection: the status code and the body.
fn http_get(port: u16, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    c.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
    write!(c, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    let _ = c.read_to_string(&mut text);
    let code = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default())
}

#[test]
fn state_service_answers_routing_checks_from_postgres_and_the_cluster() {
    if !possible() {
        return;
    }
    let f = Fixture::new(6);
    let (p, s) = (&f.primary, &f.standby);
    f.primary_and_standby();
    wait_sql(s, "SELECT status FROM pg_stat_wal_receiver", "streaming");
    let (http_p, tcp_p, http_s) = (p.port + 1000, p.port + 2000, s.port + 1000);
    let state = |i: &Instance, name: &str, action: &str, http: u16, tcp: u16| {
        let (http, tcp) = (http.to_string(), tcp.to_string());
        // A 2 s operation timeout: the service outlives its start's by far, and must not
        // think itself bound by it (the checks below run after it has passed).
        f.state_agent(
            i,
            name,
            name,
            action,
            &[
                ("OCF_RESKEY_listen_address", "127.0.0.1"),
                ("OCF_RESKEY_http_port", &http),
                ("OCF_RESKEY_tcp_port", &tcp),
                ("OCF_RESKEY_CRM_meta_timeout", "2000"),
            ],
        )
    };
    assert_eq!(state(p, "state-p", "validate-all", http_p, http_p), 6, "the same port twice");
    assert_eq!(state(p, "state-p", "start", http_p, tcp_p), 0);
    assert_eq!(state(s, "state-s", "start", http_s, 0), 0);
    std::thread::sleep(std::time::Duration::from_millis(2500));
    // A network daemon: it has dropped root for postgres (every id, no root group).
    let svc = std::fs::read_to_string(f.base.join("paceline-state-state-p.pid")).unwrap();
    let status = std::fs::read_to_string(format!("/proc/{}/status", svc.split_whitespace().next().unwrap())).unwrap();
    let pg_uid = String::from_utf8_lossy(&sh("id -u postgres").stdout).trim().to_owned();
    let ids = |key: &str| status.lines().find_map(|l| l.strip_prefix(key)).unwrap_or_default().split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    assert!(ids("Uid:").iter().all(|u| *u == pg_uid), "{status}");
    assert!(!ids("Groups:").iter().any(|g| g == "0") && !ids("Gid:").iter().any(|g| g == "0"), "{status}");
    assert!(status.lines().any(|l| l.starts_with("CapEff:") && l.ends_with("0000000000000000")), "{status}");

    // No cluster here (no controller answers crm_node): the primary's PostgreSQL is
    // writable, but without Pacemaker's word it is not "the primary" — fail closed.
    let (code, body) = http_get(http_p, "/primary");
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("\"state\":\"running\""), "{body}");
    assert_eq!(http_get(http_p, "/health").0, 200);
    assert_eq!(http_get(http_p, "/replica").0, 503, "a primary is not a replica");
    assert_eq!(http_get(http_p, "/nope").0, 404);
    let (code, metrics) = http_get(http_p, "/metrics");
    assert_eq!(code, 200);
    for line in ["paceline_postgres_up 1", "paceline_postgres_primary 1", "paceline_routing_primary 0", "paceline_cluster_promoted_here 0"] {
        assert!(metrics.lines().any(|l| l == line), "{line} in:\n{metrics}");
    }
    assert!(metrics.contains("paceline_standby_lag_bytes{application_name="), "the primary's standby: {metrics}");
    // The streaming standby is a replica (PostgreSQL's view alone decides that), also with
    // a lag bound it meets.
    let (code, body) = http_get(http_s, "/replica");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"role\":\"replica\""), "{body}");
    assert_eq!(http_get(http_s, "/replica?lag=1GB").0, 200);
    assert_eq!(http_get(http_s, "/read-only").0, 200);
    assert_eq!(http_get(http_s, "/primary").0, 503);
    // The seed demo's TCP check: one word, then close.
    let mut word = String::new();
    std::io::Read::read_to_string(&mut std::net::TcpStream::connect(("127.0.0.1", tcp_p)).unwrap(), &mut word).unwrap();
    assert_eq!(word, "standby\n", "not production without the cluster's word");

    // Garbage and oversized requests get no panic and do not stop the service.
    for junk in [&b"\x00\x01\x02garbage\r\n\r\n"[..], format!("GET /{} HTTP/1.1\r\n\r\n", "x".repeat(64 * 1024)).as_bytes()] {
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect(("127.0.0.1", http_p)).unwrap();
        c.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
        let _ = c.write_all(junk);
        let mut out = Vec::new();
        let _ = c.read_to_end(&mut out);
    }
    // A storm of checks, each on its own connection: every one answered.
    for n in 0..2000 {
        assert_eq!(http_get(http_s, "/replica").0, 200, "check {n}");
    }
    assert_eq!(http_get(http_p, "/health").0, 200, "still serving");
    // PostgreSQL stopped under the service: health says so at once.
    assert_eq!(f.rc(s, "stop"), 0);
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(http_get(http_s, "/health").0, 503);
    assert_eq!(http_get(http_s, "/replica").0, 503);
    let log = std::fs::read_to_string(f.base.join("state-p.log")).unwrap_or_default();
    assert!(!log.contains("panicked"), "{log}");
    assert_eq!(state(p, "state-p", "stop", http_p, tcp_p), 0);
    assert_eq!(state(s, "state-s", "stop", http_s, 0), 0);
}

/// The state service's crash reports (docs/state-service.md): a postmaster killed under it
/// is reported (here without a cluster, so the report itself fails and says so), a clean
/// stop is not, nor is pgsqlms's own kill of a hung instance (its stop's last step).
#[test]
fn state_service_reports_a_crash_but_not_a_shutdown_or_the_stops_kill() {
    if !possible() {
        return;
    }
    let f = Fixture::new(7);
    let p = &f.primary;
    let pid = || std::fs::read_to_string(p.data.join("postmaster.pid")).unwrap().lines().next().unwrap().to_owned();
    let log = || std::fs::read_to_string(f.base.join("state.log")).unwrap_or_default();
    let wait_log = |what: &str| {
        let t = std::time::Instant::now();
        while !log().contains(what) {
            assert!(t.elapsed() < std::time::Duration::from_secs(10), "no '{what}' in the log:\n{}", log());
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    // Debug lines go to HA_DEBUGLOG only (as ha_debug's): the same file as HA_LOGFILE here.
    let debuglog = f.base.join("state.log").display().to_string();
    let state = |action: &str| {
        f.state_agent(
            p,
            "state",
            "state",
            action,
            &[("OCF_RESKEY_http_port", "0"), ("OCF_RESKEY_CRM_meta_on_node", "node1"), ("HA_debug", "1"), ("HA_DEBUGLOG", &debuglog)],
        )
    };
    assert_eq!(f.rc(p, "start"), 0);
    assert_eq!(state("start"), 0);
    let first = pid();
    wait_log(&format!("watching the postmaster (pid {first})"));
    // A clean stop removes the lock file: a shutdown, not a crash.
    assert_eq!(f.rc(p, "stop"), 0);
    wait_log(&format!("the postmaster (pid {first}) shut down"));
    // The stop of a hung instance ends with a kill the agent marks as its own.
    assert_eq!(f.rc(p, "start"), 0);
    let hung = pid();
    wait_log(&format!("watching the postmaster (pid {hung})"));
    // The postmaster first (it then forks no more), then its children one by one: a child
    // may exit between pgrep and kill (a standby's walreceiver retries), which is no failure.
    must(&format!("kill -STOP {hung} && for c in $(pgrep -P {hung}); do kill -STOP $c 2>/dev/null || true; done"));
    let (rc, err) = f.agent(p, "stop", &[("OCF_RESKEY_CRM_meta_timeout", "20000")]);
    let _ = sh(&format!("kill -CONT {hung} $(pgrep -P {hung}) 2>/dev/null"));
    assert_eq!(rc, 0, "stop of a hung instance: {err}");
    eprintln!("stop of the hung instance:\n{err}");
    wait_log(&format!("the postmaster (pid {hung}) was killed by the resource's stop"));
    assert!(
        std::fs::read_dir(&f.base).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().starts_with("paceline-killing-")),
        "the kill's mark is cleared"
    );
    // kill -9: the lock file is left, a crash. No cluster answers here, so the report
    // fails, and the service says the next monitor will find it.
    assert_eq!(f.rc(p, "start"), 0);
    let killed = pid();
    wait_log(&format!("watching the postmaster (pid {killed})"));
    must(&format!("kill -9 {killed}"));
    wait_log(&format!("the postmaster (pid {killed}) died"));
    let text = log();
    for p in [&first, &hung] {
        assert!(!text.contains(&format!("the postmaster (pid {p}) died")), "pid {p} reported as a crash:\n{text}");
    }
    assert!(!text.contains("panicked"), "{text}");
    assert_eq!(state("stop"), 0);
    assert_eq!(f.rc(p, "stop"), 0);
}

/// The postmaster pid `postmaster.pid` names now.
fn postmaster_pid(i: &Instance) -> i32 {
    std::fs::read_to_string(i.data.join("postmaster.pid")).unwrap().lines().next().unwrap().trim().parse().unwrap()
}

fn alive(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    !stat.is_empty() && !stat.rsplit_once(')').is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
}

/// Contents and ownership of `paths`, to compare before and after an action.
fn fingerprint(paths: &[&Path]) -> String {
    let list: Vec<String> = paths.iter().map(|p| format!("'{}'", p.display())).collect();
    String::from_utf8_lossy(&sh(&format!("for f in {}; do stat -c '%n %s %U %G %a %Y' \"$f\" 2>&1; md5sum \"$f\" 2>&1; done", list.join(" "))).stdout)
        .into_owned()
}

/// "Stopped" or "not running" is never said of a PostgreSQL that runs, whatever the
/// `postgres` account did to postmaster.pid, and wherever the parameters point.
#[test]
fn no_false_stopped_whatever_postmaster_pid_says() {
    if !possible() {
        return;
    }
    let f = Fixture::new(9);
    let (p, s) = (&f.primary, &f.standby);
    let probe = [("OCF_RESKEY_CRM_meta_interval", "0")];
    let pidfile = p.data.join("postmaster.pid");
    // postmaster.pid overwritten with garbage, replaced by a link, naming another process,
    // removed: each time stop really stops the instance (it was found by its cwd).
    let forgeries = [
        ("garbage", "echo notapid > {f}".to_owned()),
        ("a link", "cp {f} {f}.real && rm {f} && ln -s {f}.real {f}".to_owned()),
        ("another process", "printf '1\\n/\\n' > {f}".to_owned()),
        ("removed", "rm {f}".to_owned()),
    ];
    for (what, forge) in &forgeries {
        assert_eq!(f.rc(p, "start"), 0, "{what}");
        let pid = postmaster_pid(p);
        as_pg(&forge.replace("{f}", &pidfile.display().to_string()));
        assert_eq!(f.agent(p, "monitor", &probe).0, 0, "probe with postmaster.pid {what}: running");
        let (rc, err) = f.agent(p, "stop", &[]);
        assert_eq!(rc, 0, "stop with postmaster.pid {what}: {err}");
        assert!(!alive(pid), "stop with postmaster.pid {what} said stopped, but the postmaster (pid {pid}) runs: {err}");
        let _ = std::fs::remove_file(p.data.join("postmaster.pid.real"));
        assert_eq!(f.agent(p, "monitor", &probe).0, 7, "{what}: stopped now");
    }
    // datadir pointing at another (stopped) data directory while the instance serves the
    // socket: neither stop nor a probe says stopped.
    assert_eq!(f.rc(p, "start"), 0);
    let pid = postmaster_pid(p);
    let wrong = [("OCF_RESKEY_datadir", s.data.to_str().unwrap())];
    let (rc, err) = f.agent(p, "stop", &wrong);
    assert_eq!(rc, 1, "{err}");
    assert!(err.contains("ocf-exit-reason:") && err.contains("fix pgdata/datadir"), "{err}");
    assert!(alive(pid));
    let (rc, err) = f.agent(p, "monitor", &[&wrong[..], &probe[..]].concat());
    assert_ne!(rc, 7, "a probe with the wrong datadir: {err}");
    assert_eq!(f.rc(p, "stop"), 0);
    assert!(!alive(pid));
}

/// Every file of /etc and /root (content, size, owner, mode, time) and the metadata of the
/// system's programs (/usr/bin, /usr/sbin, /usr/local, /usr/lib/postgresql, /usr/lib/ocf):
/// what a root tricked by a link would change. The tests' own victim files are left out
/// (several tests run at once), and so are the toolchain's directories.
fn system_fingerprint() -> String {
    let out = sh("{ find /etc /root /usr/bin /usr/sbin /usr/local /usr/lib/postgresql /usr/lib/ocf -xdev \\( -path /root/.cargo -o -path /root/.rustup -o -path /root/.cache -o -name '*paceline*victim*' \\) -prune -o -printf '%p %s %T@ %U %G %m\\n' 2>/dev/null | sort; \
                    find /etc /root -xdev \\( -path /root/.cargo -o -path /root/.rustup -o -path /root/.cache -o -name '*paceline*victim*' \\) -prune -o -type f -print0 2>/dev/null | sort -z | xargs -0 md5sum 2>/dev/null; } | md5sum");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// As the `postgres` account, links planted where the agent (root) writes, and a forged
/// postmaster.pid naming root's files: nothing outside postgres's own tree changes (the
/// victims, and every file of /etc and /root, the system's programs: [`system_fingerprint`]).
#[test]
fn hostile_postgres_account_cannot_steer_root() {
    if !possible() {
        return;
    }
    let f = Fixture::new(10);
    let p = &f.primary;
    let tag = format!("{}-{}", std::process::id(), p.port);
    // Root's files the links point at.
    let vdir = PathBuf::from(format!("/root/paceline-victim-{tag}"));
    let _ = std::fs::remove_dir_all(&vdir);
    std::fs::create_dir_all(&vdir).unwrap();
    let victims: Vec<PathBuf> = ["log", "signal", "conf"].iter().map(|n| vdir.join(n)).collect();
    for v in &victims {
        std::fs::write(v, format!("root's {}\n", v.display())).unwrap();
    }
    let etc_victim = PathBuf::from(format!("/etc/paceline-victim-{tag}"));
    std::fs::write(&etc_victim, "root's\n").unwrap();
    let watched: Vec<&Path> = victims.iter().map(PathBuf::as_path).chain([etc_victim.as_path(), Path::new("/etc/passwd"), Path::new("/etc/shadow")]).collect();
    let before = fingerprint(&watched);
    let system_before = system_fingerprint();
    let res = format!("pgsqld-hostile-{tag}");
    let named = [("OCF_RESOURCE_INSTANCE", res.as_str())];
    let log = PathBuf::from(format!("/var/log/postgresql/paceline-{res}-{}.log", p.port));

    // The server log's name and standby.signal: links to root's files.
    as_pg(&format!("ln -sf {} {}", victims[0].display(), log.display()));
    as_pg(&format!("ln -sf {} {}/standby.signal", etc_victim.display(), p.data.display()));
    let (rc, err) = f.agent(p, "start", &named);
    eprintln!("start with planted links -> {rc} {err}");
    assert_eq!(fingerprint(&watched), before, "root's files changed through postgres's links");
    assert!(std::fs::symlink_metadata(p.data.join("standby.signal")).is_ok_and(|m| m.file_type().is_file()), "the link was replaced, not followed");
    // Without the log link the instance starts.
    let _ = std::fs::remove_file(&log);
    let _ = f.agent(p, "stop", &named);
    assert_eq!(f.agent(p, "start", &named).0, 0);
    assert!(std::fs::symlink_metadata(&log).is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) != 0), "the log is postgres's");

    // A forged postmaster.pid for a hung postmaster: the stop's kill may remove only the
    // instance's own lock files and shared memory, not root's file nor a segment of root's.
    let pid = postmaster_pid(p);
    let o = sh("ipcmk -M 4096");
    let text = String::from_utf8_lossy(&o.stdout);
    let shmid: i32 = text.split_whitespace().last().and_then(|v| v.parse().ok()).expect("ipcmk gives an id");
    let sockdir_lock = vdir.join(format!(".s.PGSQL.{}.lock", p.port));
    std::fs::write(&sockdir_lock, format!("{pid}\n{}\n", p.data.display())).unwrap();
    let pidfile = p.data.join("postmaster.pid");
    let real = std::fs::read_to_string(&pidfile).unwrap();
    let mut lines: Vec<String> = real.lines().map(str::to_owned).collect();
    lines[4] = vdir.display().to_string();
    lines[6] = format!("{:>9} {:>9}", 1, shmid);
    let forged = f.base.join("forged.pid");
    std::fs::write(&forged, lines.join("\n") + "\n").unwrap();
    must(&format!("chown postgres: {0} && cp -p {0} {1}", forged.display(), pidfile.display()));
    must(&format!("kill -STOP {pid} && for c in $(pgrep -P {pid}); do kill -STOP $c 2>/dev/null || true; done"));
    let (rc, err) = f.agent(p, "stop", &named);
    let _ = sh(&format!("kill -CONT {pid} $(pgrep -P {pid}) 2>/dev/null"));
    assert_eq!(rc, 0, "{err}");
    assert!(!alive(pid));
    assert!(sockdir_lock.exists(), "root's file named as the socket directory's lock was removed: {err}");
    let segment_left = sh(&format!("ipcs -m -i {shmid}")).status.success();
    let _ = sh(&format!("ipcrm -m {shmid}"));
    assert!(segment_left, "a shared memory segment that is not the instance's was removed: {err}");
    assert!(err.contains("not the killed instance's"), "{err}");

    // A hostile postgresql.auto.conf link before a rewind is covered by rewind's own test
    // (the files are read and written back as postgres); here: a link at a config file does
    // not make root read root's file into the data directory on a start.
    assert_eq!(fingerprint(&watched), before);
    assert_eq!(system_fingerprint(), system_before, "a file of /etc, /root or the system's programs changed");
    let _ = std::fs::remove_file(&log);
    let _ = std::fs::remove_file(&etc_victim);
    let _ = std::fs::remove_dir_all(&vdir);
}

/// A PostgreSQL that accepts connections but never answers (its postmaster stopped): every
/// action returns before its timeout, with an honest code and the reason in its log.
#[test]
fn a_postgres_that_does_not_answer_costs_each_action_its_timeout_at_most() {
    if !possible() {
        return;
    }
    let f = Fixture::new(11);
    let p = &f.primary;
    assert_eq!(f.rc(p, "start"), 0);
    let pid = postmaster_pid(p);
    must(&format!("kill -STOP {pid}"));
    let timeout = [("OCF_RESKEY_CRM_meta_timeout", "6000")];
    for (action, want) in [("monitor", 1), ("promote", 1), ("start", 1), ("reload-agent", 1), ("notify", 0)] {
        let extra: Vec<(&str, &str)> = match action {
            "notify" => vec![timeout[0], ("OCF_RESKEY_CRM_meta_notify_type", "pre"), ("OCF_RESKEY_CRM_meta_notify_operation", "promote")],
            _ => vec![timeout[0]],
        };
        let t = std::time::Instant::now();
        let (rc, err) = f.agent(p, action, &extra);
        let took = t.elapsed();
        eprintln!("{action} on a silent postgres -> {rc} in {took:?}: {err}");
        assert!(took < std::time::Duration::from_secs(6), "{action} outlived its 6 s timeout: {took:?}");
        if action != "notify" {
            assert_eq!(rc, want, "{action}: {err}");
            assert!(err.contains("did not answer") || err.contains("no answer"), "{action} does not say what it waited for: {err}");
        }
    }
    // stop: the postmaster does not acknowledge the shutdown, and is killed in time.
    let t = std::time::Instant::now();
    let (rc, err) = f.agent(p, "stop", &timeout);
    let _ = sh(&format!("kill -CONT {pid} 2>/dev/null"));
    assert!(t.elapsed() < std::time::Duration::from_secs(6), "stop outlived its 6 s timeout: {:?}", t.elapsed());
    assert_eq!(rc, 0, "{err}");
    assert!(!alive(pid));
    assert_eq!(f.rc(p, "monitor"), 7, "stopped");
}

/// `pgsql-state ACTION` with no PostgreSQL at all (the service waits for one): HA_RSCTMP
/// and the socket directory in `dir`, no HTTP, no crash reports, a 4 s operation timeout.
fn bare_state(dir: &Path, action: &str) -> (i32, String) {
    let o = Command::new(common::agent("pgsql-state"))
        .arg(action)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("OCF_RESOURCE_INSTANCE", "pgsql-state:0")
        .env("HA_LOGFACILITY", "none")
        .env("HA_RSCTMP", dir)
        .env("OCF_RESKEY_pghost", dir)
        .env("OCF_RESKEY_pgport", "5999")
        .env("OCF_RESKEY_http_port", "0")
        .env("OCF_RESKEY_crash_reports", "false")
        .env("OCF_RESKEY_CRM_meta_timeout", "4000")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    let reasons: Vec<&str> = err.lines().filter_map(|l| l.strip_prefix("ocf-exit-reason:")).collect();
    assert!(reasons.len() <= 1 && reasons.iter().all(|r| !r.is_empty() && r.len() <= 128), "{action}: {err}");
    (o.status.code().unwrap_or(-1), err)
}

/// The state of process `pid` ('R', 'S', 'T', 'Z'…), None once it is reaped.
fn proc_state(pid: i32) -> Option<char> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s.rsplit_once(')')?.1.split_whitespace().next()?.chars().next()
}

/// The stop of pgsql-state ends the service for real and never anything else: a service
/// that ignores SIGTERM (stopped with SIGSTOP) is killed and stop waits until it is gone
/// (a zombie, or reaped); a pid file naming a pid now used by another program — or by the
/// service, but with another start time — is "not running" and nothing is signalled.
#[test]
fn state_service_stop_kills_only_the_service_and_waits_for_it() {
    if !nix::unistd::geteuid().is_root() || !sh("id postgres").status.success() {
        eprintln!("skipped: needs root and the postgres user");
        return;
    }
    let dir = common::TempDir::new("state-stop");
    let pidfile = dir.path("paceline-state-pgsql-state.pid");
    let recorded = || -> (i32, u64) {
        let text = std::fs::read_to_string(&pidfile).unwrap();
        let mut w = text.split_whitespace();
        (w.next().unwrap().parse().unwrap(), w.next().expect("a start time in the pid file").parse().unwrap())
    };

    assert_eq!(bare_state(&dir.0, "monitor").0, 7);
    assert_eq!(bare_state(&dir.0, "start").0, 0);
    assert_eq!(bare_state(&dir.0, "monitor").0, 0);
    let (pid, started) = recorded();
    // Should an assertion fail, the service this test started does not outlive it.
    struct KillOnDrop(i32);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            if std::fs::read(format!("/proc/{}/cmdline", self.0)).is_ok_and(|c| c.starts_with(b"pgsql-state\0serve")) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.0), nix::sys::signal::Signal::SIGKILL);
            }
        }
    }
    let _service = KillOnDrop(pid);

    // A pid file older than the process it names (the start time differs): not the
    // service, and stop leaves the process alone.
    std::fs::write(&pidfile, format!("{pid} {}\n", started + 1)).unwrap();
    assert_eq!(bare_state(&dir.0, "monitor").0, 7, "a stale pid file taken for the service");
    assert_eq!(bare_state(&dir.0, "stop").0, 0);
    assert!(matches!(proc_state(pid), Some(s) if s != 'Z'), "stop signalled a process the pid file no longer names");
    std::fs::write(&pidfile, format!("{pid} {started}\n")).unwrap();

    // A service that does not end on SIGTERM: SIGKILL before the deadline, and stop
    // returns only once the process is gone.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGSTOP).unwrap();
    let t = std::time::Instant::now();
    let (rc, err) = bare_state(&dir.0, "stop");
    assert_eq!(rc, 0, "{err}");
    assert!(t.elapsed() >= std::time::Duration::from_secs(1), "SIGTERM was given its time: {:?}", t.elapsed());
    assert!(matches!(proc_state(pid), None | Some('Z')), "stop returned while the service runs: {:?}", proc_state(pid));
    assert!(!pidfile.exists());
    assert_eq!(bare_state(&dir.0, "monitor").0, 7);

    // The pid file names a pid the kernel gave to another program (old and new format).
    let mut other = Command::new("sleep").arg("30").spawn().unwrap();
    let opid = other.id() as i32;
    let ostart = std::fs::read_to_string(format!("/proc/{opid}/stat")).unwrap().rsplit_once(')').unwrap().1.split_whitespace().nth(19).unwrap().to_owned();
    for text in [format!("{opid}\n"), format!("{opid} {ostart}\n")] {
        std::fs::write(&pidfile, &text).unwrap();
        assert_eq!(bare_state(&dir.0, "monitor").0, 7, "{text:?}");
        assert_eq!(bare_state(&dir.0, "stop").0, 0, "{text:?}");
        assert_eq!(other.try_wait().unwrap(), None, "stop killed an unrelated process ({text:?})");
    }
    other.kill().unwrap();
    other.wait().unwrap();
    assert_eq!(bare_state(&dir.0, "stop").0, 0, "stop is idempotent");
}

/// A streaming standby's monitor does not raise the score the primary gave it: catching
/// up (−1) or beyond maxlag (negative) stays what it is; a standby nobody ranked yet
/// (no score at all) makes itself promotable (1).
#[test]
fn a_standby_monitor_never_raises_the_primarys_verdict() {
    if !possible_with_pacemaker_tools() {
        return;
    }
    let f = Fixture::new(12);
    let s = &f.standby;
    f.primary_and_standby();
    wait_sql(s, "SELECT status FROM pg_stat_wal_receiver", "streaming");
    let cib = cib_with_primary(&f.base, "nodeP");
    must(&format!("CIB_file={} cibadmin --create -o nodes --xml-text '<node id=\"2\" uname=\"nodeS\"/>'", cib.display()));
    let on_s = [("CIB_file", cib.to_str().unwrap()), ("OCF_RESKEY_CRM_meta_on_node", "nodeS"), ("OCF_RESKEY_CRM_meta_interval", "3000")];
    let score = || {
        let o = sh(&format!("CIB_file={} crm_attribute --lifetime forever --node nodeS --name master-pgsqld --query -q", cib.display()));
        String::from_utf8_lossy(&o.stdout).trim().to_owned()
    };
    for verdict in ["-1", "-20", "-1000"] {
        must(&format!("CIB_file={} crm_attribute --lifetime forever --node nodeS --name master-pgsqld --update {verdict}", cib.display()));
        let (rc, err) = f.agent(s, "monitor", &on_s);
        assert_eq!(rc, 0, "{err}");
        assert_eq!(score(), verdict, "the standby's monitor raised the primary's verdict {verdict}: {err}");
    }
    must(&format!("CIB_file={} crm_attribute --lifetime forever --node nodeS --name master-pgsqld --delete", cib.display()));
    let (rc, err) = f.agent(s, "monitor", &on_s);
    assert_eq!(rc, 0, "{err}");
    assert_eq!(score(), "1", "nobody ranked it: promotable once streaming ({err})");
}

/// CRC-32C (Castagnoli), as pg_control's checksum.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for b in data {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ if crc & 1 == 1 { 0x82F6_3B78 } else { 0 };
        }
    }
    !crc
}

/// Write `state` (PostgreSQL's DBState: 0 starting up, 3 shutting down, 4 in crash
/// recovery…) into `i`'s pg_control, as a server stopped at that moment leaves it.
fn set_cluster_state(i: &Instance, state: u32) {
    let path = i.data.join("global/pg_control");
    let mut buf = std::fs::read(&path).unwrap();
    // The checksum covers the struct up to itself: find where it is (288 in PostgreSQL 15).
    let at = (24..600).step_by(4).find(|&l| crc32c(&buf[..l]) == u32::from_le_bytes(buf[l..l + 4].try_into().unwrap())).expect("pg_control's CRC");
    buf[16..20].copy_from_slice(&state.to_le_bytes());
    let crc = crc32c(&buf[..at]);
    buf[at..at + 4].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&path, buf).unwrap();
}

/// An instance stopped in the middle of a transition is a crashed instance of the role it
/// was in: the probe says 9 (primary) or 7 (standby), start recovers it as a standby — what
/// PostgreSQL itself does with those states. "starting up" is never written by a server
/// (PostgreSQL refuses it: "invalid database cluster state"): start fails with its words.
#[test]
fn every_pg_control_state_has_an_answer() {
    if !possible() {
        return;
    }
    let f = Fixture::new(13);
    let p = &f.primary;
    let probe = [("OCF_RESKEY_CRM_meta_interval", "0")];
    let probe_rc = || f.agent(p, "monitor", &probe);
    // A primary stopped while writing its shutdown checkpoint.
    set_cluster_state(p, 3);
    assert_eq!(probe_rc().0, 9, "shutting down: a crashed primary");
    assert_eq!(f.rc(p, "stop"), 0, "nothing runs: stopped");
    assert_eq!(f.rc(p, "start"), 0, "started as a standby after crash recovery");
    assert_eq!(f.rc(p, "monitor"), 0);
    assert_eq!(f.rc(p, "stop"), 0);
    // A standby (standby.signal) killed in crash recovery.
    assert!(p.data.join("standby.signal").exists());
    set_cluster_state(p, 4);
    assert_eq!(probe_rc().0, 7, "in crash recovery with standby.signal: a crashed standby");
    assert_eq!(f.rc(p, "start"), 0);
    assert_eq!(f.rc(p, "monitor"), 0);
    assert_eq!(f.rc(p, "stop"), 0);
    // Crash recovery of a primary's start (no standby.signal).
    std::fs::remove_file(p.data.join("standby.signal")).unwrap();
    set_cluster_state(p, 4);
    assert_eq!(probe_rc().0, 9, "in crash recovery without standby.signal: a crashed primary");
    // "starting up": the probe answers by role; start quotes PostgreSQL's refusal.
    set_cluster_state(p, 0);
    assert_eq!(probe_rc().0, 9);
    let (rc, err) = f.agent(p, "start", &[]);
    assert_eq!(rc, 1, "{err}");
    assert!(err.contains("invalid database cluster state"), "{err}");
}

/// The rewind keeps this node's configuration files (it reads them before pg_rewind and
/// writes them back after, as system_user): as the `postgres` account, one of them made a
/// link to root's file. pg_rewind itself refuses a link where the primary has a file (the
/// comparison cannot be made, PostgreSQL then refuses the diverged start); whatever comes
/// of it, root's file is neither read into the data directory nor written.
#[test]
fn a_rewind_does_not_follow_postgres_links_to_roots_files() {
    if !possible_with_pacemaker_tools() {
        return;
    }
    let f = Fixture::new(14);
    let p = &f.primary;
    split_brain(
        &f,
        "CREATE TABLE t (i int)",
        ("SELECT count(*) FROM pg_class WHERE relname = 't'", "1"),
        "INSERT INTO t VALUES (1)",
        "INSERT INTO t VALUES (2)",
    );
    let cib = cib_with_primary(&f.base, "nodeS");
    let rewind = [("CIB_file", cib.to_str().unwrap()), ("OCF_RESKEY_CRM_meta_on_node", "nodeP"), ("OCF_RESKEY_auto_rewind", "true")];
    let victim = PathBuf::from(format!("/root/paceline-rewind-victim-{}-{}", std::process::id(), p.port));
    std::fs::write(&victim, "root's secret\n").unwrap();
    let before = fingerprint(&[victim.as_path(), Path::new("/etc/passwd"), Path::new("/etc/shadow")]);
    let ident = p.data.join("pg_ident.conf");
    as_pg(&format!("rm -f {0} && ln -s {1} {0}", ident.display(), victim.display()));
    let (rc, err) = f.agent(p, "start", &rewind);
    eprintln!("start (rewind) with pg_ident.conf linked to root's file -> {rc}: {err}");
    assert_eq!(fingerprint(&[victim.as_path(), Path::new("/etc/passwd"), Path::new("/etc/shadow")]), before, "root's file changed");
    let now = std::fs::symlink_metadata(&ident).map(|m| m.file_type().is_symlink());
    let text = std::fs::read_to_string(&ident).unwrap_or_default();
    assert!(now.is_ok_and(|l| l) || !text.contains("root's secret"), "root's file was copied into the data directory");
    let _ = std::fs::remove_file(&victim);
}

/// `paceline::agents::pgsqlms::standing` for instance `i`: what its pre-promote would publish.
fn standing(f: &Fixture, i: &Instance) -> paceline::agents::pgsqlms::election::Standing {
    let env = paceline::ocf::OcfEnv::from_pairs([
        ("OCF_RESOURCE_INSTANCE".to_string(), "pgsqld".to_string()),
        ("OCF_RESKEY_bindir".into(), BINDIR.path()),
        ("OCF_RESKEY_pgdata".into(), i.data.display().to_string()),
        ("OCF_RESKEY_pghost".into(), i.sock.display().to_string()),
        ("OCF_RESKEY_pgport".into(), i.port.to_string()),
        ("HA_RSCTMP".into(), f.base.display().to_string()),
    ]);
    paceline::agents::pgsqlms::standing(&env).expect("a standing")
}

/// One history in the election: an ex-primary whose last records lie on its old timeline
/// past the new timeline's fork — by transactions made while cut off, or only by its own
/// shutdown checkpoint — runs as a standby that has fetched the new timeline's history.
/// Its LSN is ahead of the fork, yet it stands diverged (no candidate), not as a position
/// on the new timeline; the new primary's true standby would win.
#[test]
fn a_node_past_the_fork_is_no_candidate_whatever_its_lsn() {
    if !possible() {
        return;
    }
    use paceline::agents::pgsqlms::election::Standing;
    for (tag, by) in [(9u16, "transactions"), (10, "its shutdown checkpoint")] {
        let f = Fixture::new(tag);
        let (p, s) = (&f.primary, &f.standby);
        assert_eq!(f.rc(p, "start"), 0);
        assert_eq!(f.rc(p, "promote"), 0);
        assert_eq!(f.rc(s, "start"), 0);
        sql(p, "CREATE TABLE t (i int)");
        wait_sql(s, "SELECT count(*) FROM pg_class WHERE relname = 't'", "1");
        // A streaming standby on the primary's timeline (2, since p's promote) is a candidate.
        assert!(matches!(standing(&f, s), Standing::Candidate(pos) if pos.timeline == 2), "{:?}", standing(&f, s));
        // The failover: s promoted by hand while p is cut off from it.
        as_pg(&format!("{BINDIR}/pg_ctl -D {} -w promote >/dev/null", s.data.display()));
        sql(s, "INSERT INTO t VALUES (1)");
        if by == "transactions" {
            sql(p, "INSERT INTO t SELECT generate_series(1, 1000)");
        }
        as_pg(&format!("{BINDIR}/pg_ctl -D {} -w -m fast stop >/dev/null", p.data.display()));
        // p, following s now, started by hand (the agent's start would refuse it): it runs as
        // a standby on its own timeline and fetches s's history, which it cannot follow.
        let auto_conf = p.data.join("postgresql.auto.conf");
        let conf = std::fs::read_to_string(&auto_conf).unwrap().replace(&format!("port={} user", p.port), &format!("port={} user", s.port));
        std::fs::write(&auto_conf, conf).unwrap();
        as_pg(&format!("touch {}/standby.signal", p.data.display()));
        as_pg(&format!("{BINDIR}/pg_ctl -D {} -w -l {}/p.log start >/dev/null", p.data.display(), f.base.display()));
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        // (p's promote by the agent made timeline 2; s's by hand, 3.)
        while !p.data.join("pg_wal/00000003.history").exists() {
            assert!(std::time::Instant::now() < until, "p never fetched timeline 3's history");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        match standing(&f, p) {
            Standing::Diverged(pos) => assert_eq!(pos.timeline, 2, "diverged by {by}: {pos:?}"),
            other => panic!("diverged by {by}, yet it stands {other:?}"),
        }
    }
}

/// `paceline check`'s judgement of a real PostgreSQL, on the primary and on a streaming
/// standby: every query it makes (pg_settings, pg_hba_file_rules, pg_control_init,
/// pg_replication_slots, the rewind role's privileges) answered and read, each rule seen to
/// fire and to clear. tests/pg_majors.sh runs it on every major, where the catalogs differ:
/// `pg_checkpoint` exists from 15, initdb turns checksums on from 18, slot invalidation
/// reads differently from 17.
#[test]
fn check_judges_a_real_postgres_on_either_role() {
    if !possible() {
        return;
    }
    let f = Fixture::new(21);
    let (p, s) = (&f.primary, &f.standby);
    f.primary_and_standby();
    wait_sql(s, "SELECT status FROM pg_stat_wal_receiver", "streaming");
    let major: u32 = sql(p, "SHOW server_version_num").parse::<u32>().unwrap() / 10000;
    // Every finding as "Severity: what", for node `me` (instance `i`) with the 127.0.0.1 the
    // fixture's pg_hba lets replication in from among its addresses, pgsqlms's `params` and
    // pgsql-state's.
    let judge = |i: &Instance, me: &str, params: &str, state: &str| -> Vec<String> {
        let nv = |id: &str, kv: &str| -> String {
            kv.split_whitespace()
                .enumerate()
                .map(|(n, kv)| {
                    let (k, v) = kv.split_once('=').unwrap();
                    format!(r#"<nvpair id="{id}-{n}" name="{k}" value="{v}"/>"#)
                })
                .collect()
        };
        let cib = format!(
            r#"<cib><configuration><nodes><node id="1" uname="primary"/><node id="2" uname="standby"/><node id="3" uname="third"/></nodes><resources>
<clone id="pgsqld-clone"><primitive id="pgsqld" class="ocf" provider="paceline" type="pgsqlms"><instance_attributes id="pa">{}</instance_attributes></primitive></clone>
<clone id="state-clone"><primitive id="pgsql-state" class="ocf" provider="paceline" type="pgsql-state"><instance_attributes id="sa">{}</instance_attributes></primitive></clone>
</resources></configuration></cib>"#,
            nv("pa", &format!("pghost={} pgport={} pgdata={} bindir={BINDIR} {params}", i.sock.display(), i.port, i.data.display())),
            nv("sa", state)
        );
        let mine = ["127.0.0.1".parse().unwrap(), "192.0.2.1".parse().unwrap()];
        let found = paceline::check::postgres_of(&paceline::pacemaker::xml::parse(&cib), me, &mine).unwrap_or_else(|e| panic!("{me}: {}", e.reason));
        let mut out: Vec<String> = found.iter().map(|f| format!("{:?}: {}", f.severity, f.what)).collect();
        out.sort();
        out
    };
    // Each expected finding by its start; nothing else.
    let expect = |got: Vec<String>, want: &[&str], what: &str| {
        let mut want: Vec<&str> = want.to_vec();
        want.sort();
        assert!(got.len() == want.len() && got.iter().zip(&want).all(|(g, w)| g.starts_with(w)), "PostgreSQL {major}, {what}:\n got {got:#?}\nwant {want:#?}");
    };
    let control = common::must(&format!("{BINDIR}/pg_controldata {}", p.data.display()));
    let checksums = control.lines().any(|l| l.starts_with("Data page checksum version:") && !l.ends_with(" 0"));
    assert_eq!(checksums, major >= 18, "initdb's checksums default");
    let params = "auto_rewind=true rewind_user=rewinder synchronous_mode=on replication_slots=true";
    let hba = "Critical: pg_hba.conf lets replication in from 127.0.0.1 (host trust)";
    let unbounded = "Warning: replication_slots=true with max_slot_wal_keep_size unbounded";
    let no_hints = if checksums { None } else { Some("Critical: auto_rewind=true but neither wal_log_hints nor data checksums are on") };
    let with = |more: &[&'static str]| -> Vec<&'static str> { [hba, unbounded].into_iter().chain(no_hints).chain(more.iter().copied()).collect() };
    for (i, me) in [(p, "primary"), (s, "standby")] {
        expect(judge(i, me, params, ""), &with(&["Critical: the rewind user rewinder does not exist"]), &format!("{me}, as set up"));
    }
    // A standby must be named as the node it runs on.
    expect(
        judge(s, "third", params, ""),
        &with(&["Critical: the rewind user rewinder does not exist", "Critical: primary_conninfo's application_name is standby"]),
        "standby, named for another node",
    );
    // Synchronous replication, PostgreSQL's 5 s reconnect interval: fine while pgsql-state
    // wakes the standbys (primary_conninfo has an address to probe), not without it.
    let no_wake = "Warning: wal_retrieve_retry_interval=5000ms with synchronous replication and pgsql-state's instant_reconnect=false";
    expect(judge(p, "primary", params, "instant_reconnect=false"), &with(&["Critical: the rewind user rewinder does not exist", no_wake]), "no wake-up");
    // The rewind role, step by step to what pg_rewind and the timeline check need.
    sql(p, "CREATE ROLE rewinder LOGIN");
    expect(judge(p, "primary", params, ""), &with(&["Critical: the rewind user rewinder lacks pg_rewind's privileges"]), "a bare role");
    let functions = paceline::agents::pgsqlms::REWIND_FUNCTIONS.join(", ");
    sql(p, &format!("GRANT EXECUTE ON FUNCTION {functions} TO rewinder"));
    let cannot_checkpoint = "Warning: the rewind user rewinder cannot CHECKPOINT";
    expect(judge(p, "primary", params, ""), &with(&[cannot_checkpoint]), "the functions granted");
    if major >= 15 {
        sql(p, "GRANT pg_checkpoint TO rewinder");
        expect(judge(p, "primary", params, ""), &with(&[]), "pg_checkpoint granted");
        // The standby reads the same roles, once replayed.
        wait_sql(s, "SELECT pg_has_role('rewinder', 'pg_checkpoint', 'USAGE')", "t");
        expect(judge(s, "standby", params, ""), &with(&[]), "standby, the role replayed");
    } else {
        // No pg_checkpoint before 15: only a superuser can CHECKPOINT, which check says.
        expect(judge(s, "standby", params, ""), &with(&[cannot_checkpoint]), "standby, PostgreSQL 14");
    }
    let settled: Vec<&str> = if major >= 15 { vec![] } else { vec![cannot_checkpoint] };
    // A slot whose WAL went past max_slot_wal_keep_size: invalidated ("lost"), said CRITICAL.
    sql(p, "ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'");
    sql(p, "ALTER SYSTEM SET wal_keep_size = 0");
    sql(p, "SELECT pg_reload_conf()");
    wait_sql(p, "SHOW max_slot_wal_keep_size", "1MB");
    sql(p, "SELECT pg_create_physical_replication_slot('held', true)");
    let with_bounded =
        |more: &[&'static str]| -> Vec<&'static str> { [hba].into_iter().chain(no_hints).chain(settled.iter().copied()).chain(more.iter().copied()).collect() };
    expect(judge(p, "primary", params, ""), &with_bounded(&[]), "a slot within its bound");
    sql(p, "CREATE TABLE w AS SELECT generate_series(1, 100000) AS i");
    let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while sql(p, "SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'held'") != "lost" {
        assert!(std::time::Instant::now() < until, "the slot was never invalidated");
        sql(p, "INSERT INTO w SELECT generate_series(1, 10000)");
        sql(p, "SELECT pg_switch_wal()");
        sql(p, "CHECKPOINT");
    }
    expect(judge(p, "primary", params, ""), &with_bounded(&["Critical: replication slot held: its WAL was removed"]), "an invalidated slot");
    sql(p, "SELECT pg_drop_replication_slot('held')");
    // The PostgreSQL named is not there: check says so, no finding invented.
    let gone = Instance { data: p.data.clone(), sock: f.base.join("nowhere"), port: p.port };
    let cib = |i: &Instance| {
        format!(
            r#"<cib><configuration><resources><primitive id="pgsqld" class="ocf" provider="paceline" type="pgsqlms"><instance_attributes id="a"><nvpair id="a1" name="pghost" value="{}"/><nvpair id="a2" name="pgport" value="{}"/></instance_attributes></primitive></resources></configuration></cib>"#,
            i.sock.display(),
            i.port
        )
    };
    let err = paceline::check::postgres_of(&paceline::pacemaker::xml::parse(&cib(&gone)), "primary", &[]).expect_err("no PostgreSQL on that port");
    assert!(err.reason.starts_with("cannot connect"), "{}", err.reason);
}
