//! `paceline check`: a preflight before go-live — what the agents rely on, checked before
//! the first failover finds it missing.
//!
//! Its sources, each read once: the whole CIB (`cibadmin --query`, or a file: a
//! configuration can be checked before it is loaded), the local PostgreSQL in-process
//! (`pg_settings`, `pg_hba_file_rules`, `pg_control_init`, the rewind user's privileges), each fence device's monitor
//! through the fencer (`stonith_admin --query`), and EC2 for the permissions of the AWS
//! agents ([`ec2`]: DryRun requests as the agents would make them). Each finding says how
//! bad it is, what is wrong and how to fix it, in the vocabulary `paceline status` shares
//! ([`crate::findings`]). The rules are pure functions of what was read ([`cluster`],
//! [`postgres`]), so each is tested on its own broken input.

mod constraints;
pub mod ec2;

use std::collections::BTreeMap;
use std::net::IpAddr;

use tokio_postgres::types::ToSql;

use crate::findings::{Finding, Severity};
use crate::pacemaker::cib::{agent_type, primitives_in, Primitive};
use crate::pacemaker::xml::Element;

/// An attribute that is set and true, as the OCF shell functions read booleans.
fn is_true(v: Option<&String>) -> bool {
    v.and_then(|s| crate::ocf::params::parse_bool(s)) == Some(true)
}

/// The cluster configuration's findings, from the CIB (`root`: the parsed document).
pub fn cluster(root: &Element) -> Vec<Finding> {
    use Severity::*;
    let mut f = Vec::new();
    let prims = primitives_in(root);
    let props: BTreeMap<String, String> = root
        .descendants("cluster_property_set")
        .flat_map(|s| s.children.iter().filter(|c| c.name == "nvpair"))
        .filter_map(|p| Some((p.attr("name")?.to_owned(), p.attr("value").unwrap_or_default().to_owned())))
        .collect();
    let Some(pg) = prims.iter().find(|p| agent_type(&p.agent) == "pgsqlms") else {
        f.push(Finding::new(Critical, "no pgsqlms resource in the configuration", "crm-examples/pgsql-ha.sh creates one"));
        return f;
    };
    let Some((clone, meta)) = &pg.clone else {
        f.push(Finding::new(
            Critical,
            format!("{} is not in a clone: it cannot have a primary and standbys", pg.id),
            "pcs resource promotable <id>, then pcs resource meta <id>-clone notify=true promoted-max=1",
        ));
        return f;
    };
    if !is_true(meta.get("promotable")) && !root.descendants("master").any(|m| m.attr("id") == Some(clone)) {
        f.push(Finding::new(Critical, format!("{clone} is not promotable"), format!("pcs resource update {clone} meta promotable=true")));
    }
    if !is_true(meta.get("notify")) {
        f.push(Finding::new(
            Critical,
            format!("{clone} has notify=false: the agent elects the best standby in its notifications"),
            format!("pcs resource meta {clone} notify=true"),
        ));
    }
    let max = meta.get("promoted-max").or_else(|| meta.get("master-max")).map(String::as_str).unwrap_or("1");
    if max != "1" {
        f.push(Finding::new(
            Critical,
            format!("{clone} has promoted-max={max}: PostgreSQL has one primary"),
            format!("pcs resource meta {clone} promoted-max=1"),
        ));
    }
    // Both roles monitored, at different intervals (one operation otherwise).
    let ops: Vec<&Element> = root
        .descendants("primitive")
        .filter(|p| p.attr("id") == Some(&pg.id))
        .flat_map(|p| p.descendants("op"))
        .filter(|o| o.attr("name") == Some("monitor"))
        .collect();
    for role in ["Promoted", "Unpromoted"] {
        let alias = if role == "Promoted" { "Master" } else { "Slave" };
        if !ops.iter().any(|o| matches!(o.attr("role"), Some(r) if r == role || r == alias)) {
            f.push(Finding::new(
                Critical,
                format!("{}: no monitor for the {role} role: a failed {} goes unnoticed", pg.id, if role == "Promoted" { "primary" } else { "standby" }),
                format!("pcs resource op add {} monitor interval=<s> role={role}", pg.id),
            ));
        }
    }
    if pg.params.get("synchronous_mode").is_some_and(|m| m != "off") && !prims.iter().any(|p| agent_type(&p.agent) == "pgsql-state") {
        f.push(Finding::new(
            Warning,
            "synchronous_mode is on but no pgsql-state clone guards the commits against cancelled waits",
            "crm-examples/pgsql-ha.sh (STATE_SERVICE=true)",
        ));
    }
    // Each floating address (ours or heartbeat's agent of the same name): with the
    // promoted role, and ordered around promote/demote — as Pacemaker applies constraints:
    // to the address itself or to the group it is in, in a plain constraint or through
    // resource sets ([`constraints`]).
    for ip in prims.iter().filter(|p| crate::registry::get(agent_type(&p.agent)).is_some_and(|a| a.address.is_some())) {
        let holders = constraints::holders(root, &ip.id);
        if !constraints::colocated_with_promoted(root, &holders, clone) {
            f.push(Finding::new(
                Critical,
                format!("{} is not colocated with the Promoted role of {clone}: the address may be on a standby", ip.id),
                format!("pcs constraint colocation add {} with Promoted {clone} score=INFINITY", ip.id),
            ));
        }
        if !constraints::ordered(root, clone, "promote", &holders, "start") {
            f.push(Finding::new(
                Warning,
                format!("no order promote {clone} then start {}: clients may reach the new primary before it accepts writes", ip.id),
                format!("pcs constraint order promote {clone} then start {} symmetrical=false", ip.id),
            ));
        }
        if !constraints::ordered(root, clone, "demote", &holders, "stop") {
            f.push(Finding::new(
                Warning,
                format!("no order demote {clone} then stop {}: the standbys may miss the old primary's last WAL", ip.id),
                format!("pcs constraint order demote {clone} then stop {} symmetrical=false", ip.id),
            ));
        }
    }
    // Fencing.
    let devices: Vec<&Primitive> = prims.iter().filter(|p| p.agent.starts_with("stonith:")).collect();
    let fencing = crate::pacemaker::FENCING_ENABLED.iter().find_map(|n| props.get(*n));
    if fencing.is_some() && !is_true(fencing) {
        f.push(Finding::new(
            Critical,
            "fencing is disabled (stonith-enabled=false): a primary that hangs or is cut off may go on writing while a standby is promoted",
            "pcs property set stonith-enabled=true, with a fence device",
        ));
    } else if devices.is_empty() {
        f.push(Finding::new(Critical, "no fence device is configured", "pcs stonith create ... (fence_paceline_aws on EC2; docs/fence_paceline_aws.md)"));
    }
    // Two nodes: quorum cannot tell a cut-off standby from a dead one (Corosync's two_node
    // keeps both halves quorate), so a lost member leaves the synchronous set only once
    // fencing confirms it down (sync::may_leave) — without fencing, never.
    let voters = root.descendants("nodes").flat_map(|n| n.children.iter()).filter(|n| n.name == "node" && n.attr("type").is_none_or(|t| t == "member")).count();
    let sync_mode = pg.params.get("synchronous_mode").map(|m| m.trim().to_ascii_lowercase()).filter(|m| !matches!(m.as_str(), "" | "off" | "false" | "0"));
    if let (Some(mode), 2, false) = (&sync_mode, voters, is_true(fencing) || fencing.is_none()) {
        f.push(Finding::new(
            Critical,
            format!(
                "synchronous_mode={mode} in a two-node cluster without fencing: a lost standby never leaves the synchronous set (quorum cannot tell it from a cut-off one), so writes wait until it is back"
            ),
            "pcs property set stonith-enabled=true with a fence device, or add a third node",
        ));
    }
    if props.get("no-quorum-policy").is_some_and(|p| p == "ignore") {
        f.push(Finding::new(
            Critical,
            "no-quorum-policy=ignore: a partition without quorum keeps (or promotes) a primary",
            "pcs property set no-quorum-policy=stop",
        ));
    }
    f
}

/// One rule of `pg_hba_file_rules`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HbaRule {
    /// `local`, `host`, `hostssl`, ...
    pub kind: String,
    pub databases: Vec<String>,
    pub address: Option<String>,
    pub netmask: Option<String>,
    pub method: String,
}

/// Whether `rule` covers a replication connection from `ip` (`None`: over the local socket).
fn covers(rule: &HbaRule, ip: Option<IpAddr>) -> bool {
    if !rule.databases.iter().any(|d| d == "replication") {
        return false;
    }
    match (rule.kind.as_str(), ip) {
        ("local", None) => true,
        ("local", Some(_)) | (_, None) => false,
        (_, Some(ip)) => match rule.address.as_deref() {
            Some("all") => true,
            Some("samehost") => true,
            Some(a) => {
                let Ok(net) = a.parse::<IpAddr>() else { return false };
                let prefix = rule.netmask.as_deref().and_then(|m| m.parse::<IpAddr>().ok()).map(|m| match m {
                    IpAddr::V4(v) => u32::from(v).count_ones() as u8,
                    IpAddr::V6(v) => u128::from(v).count_ones() as u8,
                });
                crate::net::netlink::covers(net, prefix.unwrap_or(if net.is_ipv4() { 32 } else { 128 }), ip)
            }
            None => false,
        },
    }
}

/// What the local PostgreSQL's settings and pg_hba say. `me`: this node's name, `mine`: its
/// addresses (a standby must not replicate from itself through a VIP or a load balancer),
/// `auto_rewind`: the resource's parameter, `checksums`: the cluster has data checksums.
pub fn postgres(settings: &BTreeMap<String, String>, hba: &[HbaRule], me: &str, mine: &[IpAddr], auto_rewind: bool, checksums: bool) -> Vec<Finding> {
    use Severity::*;
    let mut f = Vec::new();
    let get = |k: &str| settings.get(k).map(String::as_str).unwrap_or("");
    if !matches!(get("wal_level"), "replica" | "logical") {
        f.push(Finding::new(
            Critical,
            format!("wal_level={}: standbys need replica or logical", get("wal_level")),
            "ALTER SYSTEM SET wal_level = replica; restart",
        ));
    }
    if get("hot_standby") != "on" {
        f.push(Finding::new(Critical, "hot_standby=off: the agent cannot read a standby's state", "ALTER SYSTEM SET hot_standby = on"));
    }
    if get("max_wal_senders").parse::<u32>().unwrap_or(0) < 2 {
        f.push(Finding::new(
            Warning,
            format!("max_wal_senders={}: fewer than the standbys plus a pg_rewind or a basebackup", get("max_wal_senders")),
            "ALTER SYSTEM SET max_wal_senders = 10",
        ));
    }
    let conninfo = get("primary_conninfo");
    let app = crate::pg::conninfo::ConnInfo::parse(conninfo).ok().and_then(|c| c.get("application_name").map(str::to_owned));
    if conninfo.is_empty() {
        f.push(Finding::new(
            Critical,
            "primary_conninfo is empty: a standby started here would not replicate",
            "set primary_conninfo (host = the VIP or the local HAProxy, application_name = this node's name)",
        ));
    } else if app.as_deref() != Some(me) {
        f.push(Finding::new(
            Critical,
            format!(
                "primary_conninfo's application_name is {} — it must be this node's name, {me}: the agent finds its standbys (and the synchronous set) by it",
                app.as_deref().unwrap_or("unset")
            ),
            format!("application_name={me} in primary_conninfo"),
        ));
    }
    if get("recovery_target_timeline") != "latest" {
        f.push(Finding::new(
            Critical,
            format!("recovery_target_timeline={}: a standby would not follow a promotion", get("recovery_target_timeline")),
            "ALTER SYSTEM SET recovery_target_timeline = 'latest'",
        ));
    }
    if auto_rewind && get("wal_log_hints") != "on" && !checksums {
        f.push(Finding::new(
            Critical,
            "auto_rewind=true but neither wal_log_hints nor data checksums are on: pg_rewind refuses to run",
            "ALTER SYSTEM SET wal_log_hints = on; restart",
        ));
    }
    // The first rule that covers replication from this node decides; it must reject.
    for (what, ip) in std::iter::once(("the local socket".to_owned(), None)).chain(mine.iter().map(|a| (a.to_string(), Some(*a)))) {
        if let Some(rule) = hba.iter().find(|r| covers(r, ip)) {
            if rule.method != "reject" {
                f.push(Finding::new(
                    Critical,
                    format!(
                        "pg_hba.conf lets replication in from {what} ({} {}): a standby may replicate from itself through the VIP or a load balancer",
                        rule.kind, rule.method
                    ),
                    "a 'reject' replication rule for this node's own addresses before the others (crm-examples/README.md)",
                ));
            }
        }
    }
    f
}

/// Whether the standbys follow a new primary at once (issue #23.3): with synchronous
/// replication the new primary's commits wait for the first standby to reconnect, and a
/// standby retries only every `wal_retrieve_retry_interval` — unless pgsql-state's
/// `instant_reconnect` wakes it, which needs an address in `primary_conninfo` to probe.
/// `synchronous`: pgsqlms's synchronous_mode is on or strict; `instant`: None without a
/// pgsql-state resource, else its instant_reconnect.
pub fn reconnect(settings: &BTreeMap<String, String>, synchronous: bool, instant: Option<bool>) -> Vec<Finding> {
    // pg_settings gives the value in its unit, milliseconds.
    let retry_ms: u64 = settings.get("wal_retrieve_retry_interval").and_then(|v| v.parse().ok()).unwrap_or(5000);
    if !synchronous || retry_ms <= 1000 {
        return Vec::new();
    }
    let conninfo = settings.get("primary_conninfo").map(String::as_str).unwrap_or("");
    let probed = crate::pg::conninfo::ConnInfo::parse(conninfo).map(|c| !c.literal_addresses().is_empty()).unwrap_or(false);
    let wait = format!("wal_retrieve_retry_interval={retry_ms}ms with synchronous replication");
    match instant {
        Some(true) if probed => Vec::new(),
        Some(true) => vec![Finding::new(
            Severity::Warning,
            format!("{wait}: primary_conninfo names no IP address, so pgsql-state cannot probe it and wake the standbys (instant_reconnect); after each switchover the new primary's commits wait up to {retry_ms} ms for them"),
            "hostaddr=<the VIP's address> in primary_conninfo, or ALTER SYSTEM SET wal_retrieve_retry_interval = '500ms'",
        )],
        Some(false) => vec![Finding::new(
            Severity::Warning,
            format!("{wait} and pgsql-state's instant_reconnect=false: after each switchover the new primary's commits wait up to {retry_ms} ms for a standby"),
            "pcs resource update pgsql-state instant_reconnect=true, or ALTER SYSTEM SET wal_retrieve_retry_interval = '500ms'",
        )],
        None => vec![Finding::new(
            Severity::Warning,
            format!("{wait} and no pgsql-state resource: after each switchover the new primary's commits wait up to {retry_ms} ms for a standby"),
            "run ocf:paceline:pgsql-state as a clone (crm-examples/pgsql-ha.sh), or ALTER SYSTEM SET wal_retrieve_retry_interval = '500ms'",
        )],
    }
}

/// One replication slot, as `pg_replication_slots` shows it to [`slots`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotRow {
    pub name: String,
    /// `wal_status` (PostgreSQL 13+; empty before).
    pub wal_status: String,
    /// The WAL it holds, in bytes.
    pub retained: u64,
}

/// The replication slots' findings (issue #23.1). `slots_on`: pgsqlms's
/// replication_slots; `nodes`: the cluster's nodes; `wal_free`: free bytes on the file
/// system that holds pg_wal, when it could be read.
pub fn slots(settings: &BTreeMap<String, String>, slots: &[SlotRow], slots_on: bool, nodes: usize, wal_free: Option<u64>) -> Vec<Finding> {
    use Severity::*;
    let mut f = Vec::new();
    for s in slots {
        match s.wal_status.as_str() {
            "lost" => f.push(Finding::new(
                Critical,
                format!("replication slot {}: its WAL was removed (max_slot_wal_keep_size): its standby or consumer cannot resume from it", s.name),
                "rebuild that standby (pg_basebackup), or drop the slot: SELECT pg_drop_replication_slot('<slot>')",
            )),
            "unreserved" => f.push(Finding::new(
                Warning,
                format!("replication slot {}: it holds more than max_slot_wal_keep_size; its WAL goes at the next checkpoint", s.name),
                "bring its standby or consumer back now",
            )),
            _ => {}
        }
    }
    let retained: u64 = slots.iter().map(|s| s.retained).sum();
    if let Some(free) = wal_free {
        if retained > 0 && retained >= free / 2 {
            f.push(Finding::new(
                Warning,
                format!(
                    "the replication slots hold {} MB of WAL, and pg_wal's file system has {} MB free: the disk fills if they keep holding",
                    retained >> 20,
                    free >> 20
                ),
                "paceline status (which slot), and max_slot_wal_keep_size to bound them",
            ));
        }
    }
    if slots_on {
        let max: usize = settings.get("max_replication_slots").and_then(|v| v.parse().ok()).unwrap_or(0);
        if max < nodes {
            f.push(Finding::new(
                Critical,
                format!("replication_slots=true but max_replication_slots={max}: a slot per node needs at least {nodes}"),
                format!("ALTER SYSTEM SET max_replication_slots = {}; restart", (nodes + 8).max(10)),
            ));
        }
        if settings.get("max_slot_wal_keep_size").is_none_or(|v| v == "-1") {
            f.push(Finding::new(
                Warning,
                "replication_slots=true with max_slot_wal_keep_size unbounded: a standby away for slot_ttl keeps all the WAL written meanwhile",
                "ALTER SYSTEM SET max_slot_wal_keep_size = '<what pg_wal's disk can spare>'",
            ));
        }
    }
    f
}

/// What PostgreSQL says of the role pgsqlms's timeline check and `auto_rewind` connect to
/// the primary as (roles are the same on every node of a streaming cluster, so the local
/// instance can tell).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RewindRole {
    /// pg_ls_dir, pg_stat_file and both pg_read_binary_file: pg_rewind's reads.
    pub can_read: bool,
    /// Superuser, or `pg_checkpoint` (PostgreSQL 15+): it can CHECKPOINT a just-promoted
    /// primary, whose control file pg_rewind would otherwise read stale.
    pub can_checkpoint: bool,
}

/// The rewind role's findings. `role`: None when no such role exists; `auto_rewind`: the
/// resource's parameter (without it, only the check at start needs the role).
pub fn rewind_role(user: &str, role: Option<RewindRole>, auto_rewind: bool) -> Vec<Finding> {
    use Severity::*;
    let needs = if auto_rewind {
        "auto_rewind cannot rewind and the timeline check at start cannot run"
    } else {
        "the timeline check at start cannot run (a diverged ex-primary starts as a standby that cannot follow)"
    };
    let severity = if auto_rewind { Critical } else { Warning };
    let grant = format!(
        "GRANT EXECUTE ON FUNCTION {} TO {user}; GRANT pg_checkpoint TO {user} (or set rewind_user)",
        crate::agents::pgsqlms::REWIND_FUNCTIONS.join(", ")
    );
    match role {
        None => vec![Finding::new(severity, format!("the rewind user {user} does not exist: {needs}"), format!("CREATE ROLE {user} LOGIN, then {grant}"))],
        Some(RewindRole { can_read: false, .. }) => vec![Finding::new(severity, format!("the rewind user {user} lacks pg_rewind's privileges: {needs}"), grant)],
        Some(RewindRole { can_checkpoint: false, .. }) => vec![Finding::new(
            Warning,
            format!("the rewind user {user} cannot CHECKPOINT: right after a failover the timeline check waits for the new primary's first checkpoint, and may not tell"),
            format!("GRANT pg_checkpoint TO {user} (PostgreSQL 15+; superuser before)"),
        )],
        Some(_) => Vec::new(),
    }
}

/// Everything `paceline check` gathers and judges (I/O; `cib_file`: check that file
/// instead of the running cluster's CIB, and no PostgreSQL).
pub fn run(cib_file: Option<&std::path::Path>) -> Result<Vec<Finding>, crate::ocf::OcfError> {
    use crate::ocf::OcfError;
    let text = match cib_file {
        Some(p) => std::fs::read_to_string(p).map_err(|e| OcfError::generic(format!("cannot read {}: {e}", p.display())))?,
        None => crate::pacemaker::cib::whole().map_err(|e| e.context("is the cluster running on this node?"))?,
    };
    let root = crate::pacemaker::xml::parse(&text);
    let mut out = cluster(&root);
    let prims = primitives_in(&root);
    if cib_file.is_none() {
        match local_postgres(&root) {
            Ok(mut pg) => out.append(&mut pg),
            Err(e) => out.push(Finding::new(
                Severity::Warning,
                format!("PostgreSQL on this node was not checked: {}", e.reason),
                "run paceline check where PostgreSQL runs (start it, or pcs resource debug-start)",
            )),
        }
        out.append(&mut fence_devices(&prims));
    }
    // This node's AWS permissions, for a loaded configuration or one about to be.
    out.append(&mut ec2::judge(&ec2::ask(&prims)));
    out.sort_by_key(|f| std::cmp::Reverse(f.severity));
    Ok(out)
}

/// Each fence device's monitor, run by the fencer with its CIB options: a device that does
/// not answer now will not fence later.
fn fence_devices(prims: &[Primitive]) -> Vec<Finding> {
    let mut f = Vec::new();
    for d in prims.iter().filter(|p| p.agent.starts_with("stonith:")) {
        match crate::pacemaker::fencing::monitor(&d.id) {
            Ok(Ok(())) => {}
            Ok(Err(why)) => f.push(Finding::new(
                Severity::Critical,
                format!("fence device {} fails its monitor: {why}", d.id),
                format!("pcs stonith config {0}; pcs stonith update {0} ... (then pcs stonith cleanup {0})", d.id),
            )),
            Err(e) => {
                f.push(Finding::new(Severity::Warning, format!("fence device {} was not checked: {}", d.id, e.reason), "is the cluster running on this node?"))
            }
        }
    }
    f
}

/// The local PostgreSQL's findings, this node's name and addresses asked of Pacemaker.
fn local_postgres(root: &Element) -> Result<Vec<Finding>, crate::ocf::OcfError> {
    let me = crate::pacemaker::nodes::local_name()?;
    let mine: Vec<IpAddr> =
        crate::pacemaker::nodes::addresses().unwrap_or_default().into_iter().filter(|(n, _)| *n == me).filter_map(|(_, a)| a.parse().ok()).collect();
    postgres_of(root, &me, &mine)
}

/// What the PostgreSQL that the CIB's pgsqlms resource (`root`) names on this node says,
/// judged by [`postgres`], [`reconnect`], [`slots`] and [`rewind_role`]: every query
/// `paceline check` makes of PostgreSQL, in-process as the resource's `system_user`. `me`:
/// this node's name, `mine`: its addresses. Public for the tests that run it on every
/// PostgreSQL major (tests/pgsqlms_local.rs): the queries are what differs between them.
pub fn postgres_of(root: &Element, me: &str, mine: &[IpAddr]) -> Result<Vec<Finding>, crate::ocf::OcfError> {
    use crate::ocf::OcfError;
    use std::time::Duration;
    let prims = primitives_in(root);
    let pg = prims.iter().find(|p| agent_type(&p.agent) == "pgsqlms").ok_or_else(|| OcfError::generic("no pgsqlms resource"))?;
    let param = |k: &str, d: &str| pg.params.get(k).cloned().unwrap_or_else(|| d.to_owned());
    let user = param("system_user", "postgres");
    let who = crate::agents::pgsqlms::identity_of(&user)?;
    let sock = std::path::PathBuf::from(param("pghost", "/var/run/postgresql"));
    let port: u16 = param("pgport", "5432").parse().map_err(|_| OcfError::generic("pgport is not a port"))?;
    let local = crate::pg::client::Local::connect_named(&sock, port, &user, Some(who), Duration::from_secs(3), "paceline-check")
        .map_err(|e| OcfError::generic(format!("cannot connect ({})", e.message())))?;
    let t = Duration::from_secs(5);
    let settings: BTreeMap<String, String> = local
        .query_text("SELECT name, setting FROM pg_settings", t)?
        .into_iter()
        .filter_map(|r| Some((r.first()?.clone()?, r.get(1).cloned().flatten().unwrap_or_default())))
        .collect();
    let hba = local
        .query_text(
            "SELECT type, array_to_string(database, ','), address, netmask, auth_method FROM pg_hba_file_rules WHERE error IS NULL ORDER BY line_number",
            t,
        )?
        .into_iter()
        .map(|r| {
            let col = |i: usize| r.get(i).cloned().flatten();
            HbaRule {
                kind: col(0).unwrap_or_default(),
                databases: col(1).unwrap_or_default().split(',').map(str::to_owned).collect(),
                address: col(2),
                netmask: col(3),
                method: col(4).unwrap_or_default(),
            }
        })
        .collect::<Vec<_>>();
    let checksums = local.query_one::<i32>("SELECT data_page_checksum_version FROM pg_control_init()", t).map(|v| v > 0).unwrap_or(false);
    let auto_rewind = is_true(pg.params.get("auto_rewind"));
    let mut out = postgres(&settings, &hba, me, mine, auto_rewind, checksums);
    let synchronous = matches!(pg.params.get("synchronous_mode").map(|m| m.trim().to_ascii_lowercase()).as_deref(), Some("on" | "strict"));
    let instant = prims
        .iter()
        .find(|p| agent_type(&p.agent) == "pgsql-state")
        .map(|p| p.params.get("instant_reconnect").and_then(|v| crate::ocf::params::parse_bool(v)).unwrap_or(true));
    out.append(&mut reconnect(&settings, synchronous, instant));
    let slot_rows: Vec<SlotRow> = local
        .query_text(
            "SELECT slot_name::text, coalesce(to_jsonb(s) ->> 'wal_status', ''), coalesce(greatest(0, pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() \
             THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END, restart_lsn))::bigint::text, '0') FROM pg_replication_slots s",
            t,
        )
        .unwrap_or_else(|e| {
            out.push(Finding::new(Severity::Warning, format!("the replication slots were not checked: {}", e.reason), "psql -c 'TABLE pg_replication_slots'"));
            Vec::new()
        })
        .into_iter()
        .filter_map(|r| {
            Some(SlotRow { name: r.first()?.clone()?, wal_status: r.get(1).cloned().flatten()?, retained: r.get(2).cloned().flatten()?.parse().ok()? })
        })
        .collect();
    let nodes = root.descendants("node").filter(|n| n.attr("uname").is_some() && n.attr("type").is_none_or(|t| t == "member")).count();
    let datadir = settings.get("data_directory").map(std::path::PathBuf::from);
    let wal_free = datadir.and_then(|d| nix::sys::statvfs::statvfs(&d.join("pg_wal")).ok()).map(|v| v.blocks_available().saturating_mul(v.fragment_size()));
    out.append(&mut slots(&settings, &slot_rows, is_true(pg.params.get("replication_slots")), nodes, wal_free));
    // Ours only: PAF has neither the timeline check nor auto_rewind.
    if pg.agent.contains(":paceline:") {
        // pg_rewind's user, as the agent picks it: rewind_user, else primary_conninfo's, else
        // libpq's default (the OS user the tools run as).
        let conninfo = crate::pg::conninfo::ConnInfo::parse(settings.get("primary_conninfo").map(String::as_str).unwrap_or("")).unwrap_or_default();
        let rewinder = crate::agents::pgsqlms::rewind_role_name(pg.params.get("rewind_user").map(String::as_str), &conninfo, &user);
        // The role and the functions as bind parameters ($1 the role, $2… the functions):
        // a role name is the operator's text, and goes nowhere near the SQL's.
        let functions = crate::agents::pgsqlms::REWIND_FUNCTIONS;
        let reads: Vec<String> = (2..functions.len() + 2).map(|n| format!("has_function_privilege(oid, ${n}::text, 'EXECUTE')")).collect();
        let sql = format!(
            "SELECT ({})::text, \
             (CASE WHEN rolsuper THEN true WHEN to_regrole('pg_checkpoint') IS NULL THEN false ELSE pg_has_role(oid, 'pg_checkpoint', 'USAGE') END)::text \
             FROM pg_roles WHERE rolname = $1",
            reads.join(" AND ")
        );
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&rewinder];
        params.extend(functions.iter().map(|f| f as &(dyn ToSql + Sync)));
        match local.query_text_with(&sql, &params, t) {
            Ok(rows) => {
                let role = rows.first().map(|r| RewindRole {
                    can_read: r.first().cloned().flatten().as_deref() == Some("true"),
                    can_checkpoint: r.get(1).cloned().flatten().as_deref() == Some("true"),
                });
                out.append(&mut rewind_role(&rewinder, role, auto_rewind));
            }
            Err(e) => {
                out.push(Finding::new(Severity::Warning, format!("the rewind user {rewinder}'s privileges were not checked: {}", e.reason), "psql -c '\\du'"))
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What crm-examples/pgsql-ha.sh writes (STACK=paceline), fencing on with a device.
    const GOOD: &str = r#"<cib><configuration>
  <crm_config><cluster_property_set id="o"><nvpair id="a" name="stonith-enabled" value="true"/></cluster_property_set></crm_config>
  <resources>
    <clone id="pgsqld-clone">
      <primitive id="pgsqld" class="ocf" type="pgsqlms" provider="paceline">
        <instance_attributes id="i"><nvpair id="b" name="pgport" value="5432"/></instance_attributes>
        <operations>
          <op name="monitor" interval="15s" role="Promoted" timeout="10s" id="m1"/>
          <op name="monitor" interval="16s" role="Unpromoted" timeout="10s" id="m2"/>
        </operations>
      </primitive>
      <meta_attributes id="m"><nvpair id="c" name="notify" value="true"/><nvpair id="d" name="promotable" value="true"/><nvpair id="e" name="promoted-max" value="1"/></meta_attributes>
    </clone>
    <primitive id="pgsql-vip" class="ocf" type="IPaddr2" provider="paceline"/>
    <primitive id="fence-ec2" class="stonith" type="fence_paceline_aws"/>
  </resources>
  <constraints>
    <rsc_colocation rsc="pgsql-vip" with-rsc="pgsqld-clone" score="INFINITY" rsc-role="Started" with-rsc-role="Promoted" id="c1"/>
    <rsc_order first="pgsqld-clone" then="pgsql-vip" kind="Mandatory" first-action="promote" then-action="start" symmetrical="false" id="o1"/>
    <rsc_order first="pgsqld-clone" then="pgsql-vip" kind="Mandatory" first-action="demote" then-action="stop" symmetrical="false" id="o2"/>
  </constraints>
</configuration></cib>"#;

    fn check(cib: &str) -> Vec<String> {
        cluster(&crate::pacemaker::xml::parse(cib)).into_iter().map(|f| f.what).collect()
    }

    #[test]
    fn the_shipped_configuration_passes() {
        assert_eq!(check(GOOD), Vec::<String>::new());
        // The EC2 lab's recorded CIB (tests/data/lab-ec2, what crm-examples/pgsql-ha-ec2.sh
        // writes, after failovers and fencing): nothing to fix either.
        assert_eq!(check(include_str!("../../tests/data/lab-ec2/cib.xml")), Vec::<String>::new());
    }

    #[test]
    fn one_fault_each() {
        let cases = [
            (r#"name="notify" value="true""#, r#"name="notify" value="false""#, "notify=false"),
            (r#"name="promoted-max" value="1""#, r#"name="promoted-max" value="2""#, "promoted-max=2"),
            (r#"role="Unpromoted""#, r#"role="Stopped""#, "no monitor for the Unpromoted role"),
            (r#"with-rsc-role="Promoted""#, r#"with-rsc-role="Started""#, "is not colocated with the Promoted role"),
            (r#"first-action="demote""#, r#"first-action="stop""#, "no order demote"),
            (r#"name="stonith-enabled" value="true""#, r#"name="stonith-enabled" value="false""#, "fencing is disabled"),
            // Pacemaker 3.0.2's name wins over the older one beside it.
            (
                r#"name="stonith-enabled" value="true"/>"#,
                r#"name="stonith-enabled" value="true"/><nvpair id="f" name="fencing-enabled" value="false"/>"#,
                "fencing is disabled",
            ),
            (r#"name="stonith-enabled" value="true""#, r#"name="fencing-enabled" value="false""#, "fencing is disabled"),
            (r#"<primitive id="fence-ec2" class="stonith" type="fence_paceline_aws"/>"#, "", "no fence device"),
        ];
        for (from, to, want) in cases {
            assert!(GOOD.contains(from), "{from}");
            let got = check(&GOOD.replace(from, to));
            assert!(got.len() == 1 && got[0].contains(want), "{want}: {got:?}");
        }
        assert!(check("<cib/>")[0].contains("no pgsqlms resource"));
    }

    /// GOOD's address and a second one in a group, the group constrained (issue #22: two
    /// CRITICAL "not colocated" and four "no order" warnings on this healthy layout before).
    fn grouped() -> String {
        let group = r#"<group id="addrs"><primitive id="pgsql-vip" class="ocf" type="IPaddr2" provider="paceline"/><primitive id="pgsql-aws" class="ocf" type="awsvip" provider="paceline"/></group>"#;
        let constraints = r#"<constraints>
    <rsc_colocation rsc="addrs" with-rsc="pgsqld-clone" score="INFINITY" rsc-role="Started" with-rsc-role="Promoted" id="c1"/>
    <rsc_order first="pgsqld-clone" then="addrs" first-action="promote" then-action="start" symmetrical="false" id="o1"/>
    <rsc_order first="pgsqld-clone" then="addrs" first-action="demote" then-action="stop" symmetrical="false" id="o2"/>
  </constraints>"#;
        with_constraints(&GOOD.replace(r#"<primitive id="pgsql-vip" class="ocf" type="IPaddr2" provider="paceline"/>"#, group), constraints)
    }

    /// `cib` with its `<constraints>` block replaced by `constraints`.
    fn with_constraints(cib: &str, constraints: &str) -> String {
        let block = &cib[cib.find("<constraints>").unwrap()..cib.find("</constraints>").unwrap() + "</constraints>".len()];
        cib.replace(block, constraints)
    }

    /// GOOD's constraints written as resource sets, as `pcs constraint colocation set` and
    /// `pcs constraint order set` write them (checked against pcs 0.11).
    fn with_sets() -> String {
        let constraints = r#"<constraints>
    <rsc_colocation score="INFINITY" id="cs"><resource_set id="cs-1"><resource_ref id="pgsql-vip"/></resource_set><resource_set role="Promoted" id="cs-2"><resource_ref id="pgsqld-clone"/></resource_set></rsc_colocation>
    <rsc_order symmetrical="false" id="os1"><resource_set action="promote" id="os1-1"><resource_ref id="pgsqld-clone"/></resource_set><resource_set action="start" id="os1-2"><resource_ref id="pgsql-vip"/></resource_set></rsc_order>
    <rsc_order symmetrical="false" id="os2"><resource_set action="demote" id="os2-1"><resource_ref id="pgsqld-clone"/></resource_set><resource_set action="stop" id="os2-2"><resource_ref id="pgsql-vip"/></resource_set></rsc_order>
  </constraints>"#;
        with_constraints(GOOD, constraints)
    }

    #[test]
    fn constraints_through_groups_and_sets_count() {
        assert_eq!(check(&grouped()), Vec::<String>::new(), "addresses in a constrained group");
        assert_eq!(check(&with_sets()), Vec::<String>::new(), "resource sets");
        // Each still judged: a preference is not a colocation, the sets' order matters, an
        // optional order or a then-action that defaults to promote is no order.
        let broken = [
            (grouped(), r#"rsc="addrs" with-rsc="pgsqld-clone" score="INFINITY""#, r#"rsc="addrs" with-rsc="pgsqld-clone" score="100""#, "is not colocated", 2),
            (
                grouped(),
                r#"then="addrs" first-action="demote" then-action="stop""#,
                r#"then="addrs" first-action="demote" then-action="stop" kind="Optional""#,
                "no order demote",
                2,
            ),
            (grouped(), r#"then="addrs" first-action="promote" then-action="start""#, r#"then="addrs" first-action="promote""#, "no order promote", 2),
            (grouped(), r#"<group id="addrs">"#, r#"<group id="others">"#, "", 6),
            (with_sets(), r#"<resource_set role="Promoted" id="cs-2">"#, r#"<resource_set role="Started" id="cs-2">"#, "pgsql-vip is not colocated", 1),
            (with_sets(), r#"action="promote" id="os1-1""#, r#"action="start" id="os1-1""#, "no order promote", 1),
        ];
        for (cib, from, to, want, n) in broken {
            assert!(cib.contains(from), "{from}");
            let got = check(&cib.replace(from, to));
            assert!(got.len() == n && got.iter().all(|f| f.contains(want)), "{to}: {got:?}");
        }
        // The sets the other way round: the clone's promoted set placed with the address.
        let reversed = with_sets().replace(
            r#"<resource_set id="cs-1"><resource_ref id="pgsql-vip"/></resource_set><resource_set role="Promoted" id="cs-2"><resource_ref id="pgsqld-clone"/></resource_set>"#,
            r#"<resource_set role="Promoted" id="cs-2"><resource_ref id="pgsqld-clone"/></resource_set><resource_set id="cs-1"><resource_ref id="pgsql-vip"/></resource_set>"#,
        );
        assert!(check(&reversed).iter().any(|f| f.contains("pgsql-vip is not colocated")), "{:?}", check(&reversed));
    }

    #[test]
    fn synchronous_mode_in_two_nodes_needs_fencing() {
        let two = r#"<nodes><node id="1" uname="n1"/><node id="2" uname="n2" type="member"/><node id="r" uname="r1" type="remote"/></nodes>"#;
        let sync = r#"<nvpair id="b" name="pgport" value="5432"/><nvpair id="s" name="synchronous_mode" value="on"/>"#;
        let cib = GOOD.replace("<configuration>", &format!("<configuration>{two}")).replace(r#"<nvpair id="b" name="pgport" value="5432"/>"#, sync);
        let state_warning = |f: &String| f.contains("no pgsql-state");
        assert_eq!(check(&cib).into_iter().filter(|f| !state_warning(f)).count(), 0, "fencing on: nothing to say");
        let unfenced = cib.replace(r#"name="stonith-enabled" value="true""#, r#"name="stonith-enabled" value="false""#);
        let got = check(&unfenced);
        assert!(got.iter().any(|f| f.contains("synchronous_mode=on in a two-node cluster without fencing")), "{got:?}");
        let three = unfenced.replace(r#"<node id="r" uname="r1" type="remote"/>"#, r#"<node id="3" uname="n3"/>"#);
        assert!(!check(&three).iter().any(|f| f.contains("two-node")), "three nodes: quorum tells");
        let off = unfenced.replace(r#"value="on""#, r#"value="off""#);
        assert!(!check(&off).iter().any(|f| f.contains("two-node")), "asynchronous: nothing waits");
    }

    fn good_settings() -> BTreeMap<String, String> {
        [
            ("wal_level", "replica"),
            ("hot_standby", "on"),
            ("max_wal_senders", "10"),
            ("primary_conninfo", "host=192.0.2.100 user=replicator application_name=node1"),
            ("recovery_target_timeline", "latest"),
            ("wal_log_hints", "on"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    fn hba(rules: &[(&str, &str, Option<&str>, &str)]) -> Vec<HbaRule> {
        rules
            .iter()
            .map(|(kind, db, addr, method)| {
                let (address, netmask) = match addr {
                    Some(a) => {
                        let (ip, mask) = a.split_once(' ').map(|(i, m)| (i.to_owned(), Some(m.to_owned()))).unwrap_or((a.to_string(), None));
                        (Some(ip), mask)
                    }
                    None => (None, None),
                };
                HbaRule { kind: kind.to_string(), databases: db.split(',').map(str::to_owned).collect(), address, netmask, method: method.to_string() }
            })
            .collect()
    }

    #[test]
    fn postgresql_settings_and_self_replication() {
        let me: Vec<IpAddr> = vec!["192.0.2.11".parse().unwrap()];
        let safe = hba(&[
            ("local", "replication", None, "reject"),
            ("host", "replication", Some("192.0.2.11 255.255.255.255"), "reject"),
            ("host", "replication", Some("192.0.2.0 255.255.255.0"), "trust"),
            ("local", "all", None, "peer"),
        ]);
        assert_eq!(postgres(&good_settings(), &safe, "node1", &me, true, false), vec![]);
        let what = |s: &BTreeMap<String, String>, h: &[HbaRule], rewind: bool| {
            postgres(s, h, "node1", &me, rewind, false).into_iter().map(|f| f.what).collect::<Vec<_>>()
        };
        let open = hba(&[("host", "replication", Some("192.0.2.0 255.255.255.0"), "trust")]);
        let got = what(&good_settings(), &open, false);
        assert!(got.len() == 1 && got[0].contains("lets replication in from 192.0.2.11"), "{got:?}");
        for (k, v, want) in [
            ("primary_conninfo", "host=192.0.2.100 user=replicator", "application_name is unset"),
            ("primary_conninfo", "host=192.0.2.100 application_name=node2", "application_name is node2"),
            ("wal_level", "minimal", "wal_level=minimal"),
            ("recovery_target_timeline", "current", "recovery_target_timeline=current"),
            ("wal_log_hints", "off", "auto_rewind=true but"),
        ] {
            let mut s = good_settings();
            s.insert(k.into(), v.into());
            let got = what(&s, &safe, true);
            assert!(got.len() == 1 && got[0].contains(want), "{want}: {got:?}");
        }
        // Checksums make wal_log_hints unnecessary for pg_rewind.
        let mut s = good_settings();
        s.insert("wal_log_hints".into(), "off".into());
        assert_eq!(postgres(&s, &safe, "node1", &me, true, true), vec![]);
    }

    #[test]
    fn standbys_that_would_reconnect_late_to_a_synchronous_primary() {
        let mut s = good_settings();
        s.insert("wal_retrieve_retry_interval".into(), "5000".into());
        let said =
            |s: &BTreeMap<String, String>, sync: bool, instant: Option<bool>| reconnect(s, sync, instant).into_iter().map(|f| f.what).collect::<Vec<_>>();
        assert!(said(&s, true, Some(true)).is_empty(), "the service wakes them: {:?}", said(&s, true, Some(true)));
        assert!(said(&s, false, None).is_empty(), "asynchronous: nothing waits for them");
        assert!(said(&s, true, None).iter().any(|f| f.contains("no pgsql-state resource") && f.contains("5000 ms")), "{:?}", said(&s, true, None));
        assert!(said(&s, true, Some(false)).iter().any(|f| f.contains("instant_reconnect=false")));
        let mut named = s.clone();
        named.insert("primary_conninfo".into(), "host=pg-vip.example user=replicator application_name=node1".into());
        assert!(said(&named, true, Some(true)).iter().any(|f| f.contains("names no IP address")));
        named.insert("primary_conninfo".into(), "host=pg-vip.example hostaddr=192.0.2.100 application_name=node1".into());
        assert!(said(&named, true, Some(true)).is_empty());
        // A short retry needs nothing from the service.
        s.insert("wal_retrieve_retry_interval".into(), "500".into());
        assert!(said(&s, true, None).is_empty());
    }

    #[test]
    fn slots_that_lost_their_wal_or_could_fill_the_disk() {
        let row = |name: &str, status: &str, retained: u64| SlotRow { name: name.into(), wal_status: status.into(), retained };
        let mut s = good_settings();
        s.insert("max_replication_slots".into(), "10".into());
        s.insert("max_slot_wal_keep_size".into(), "10240".into());
        let said = |s: &BTreeMap<String, String>, rows: &[SlotRow], on: bool, free: Option<u64>| -> Vec<String> {
            slots(s, rows, on, 3, free).into_iter().map(|f| format!("{} {}", f.severity.label(), f.what)).collect()
        };
        assert!(said(&s, &[row("paceline_node2", "reserved", 1 << 20)], true, Some(1 << 40)).is_empty());
        let lost = said(&s, &[row("paceline_node2", "lost", 0), row("cdc", "unreserved", 5)], false, None);
        assert!(lost[0].starts_with("CRITICAL replication slot paceline_node2") && lost[1].starts_with("WARNING replication slot cdc"), "{lost:?}");
        let full = said(&s, &[row("paceline_node2", "extended", 6 << 30)], true, Some(10 << 30));
        assert!(full.iter().any(|f| f.contains("6144 MB of WAL") && f.contains("10240 MB free")), "{full:?}");
        let mut few = s.clone();
        few.insert("max_replication_slots".into(), "2".into());
        few.insert("max_slot_wal_keep_size".into(), "-1".into());
        let w = said(&few, &[], true, None);
        assert!(w.iter().any(|f| f.starts_with("CRITICAL") && f.contains("max_replication_slots=2")), "{w:?}");
        assert!(w.iter().any(|f| f.starts_with("WARNING") && f.contains("unbounded")), "{w:?}");
        assert!(said(&few, &[], false, None).is_empty(), "slots off: their settings are not ours to judge");
    }

    #[test]
    fn the_rewind_role() {
        let full = RewindRole { can_read: true, can_checkpoint: true };
        assert_eq!(rewind_role("postgres", Some(full), true), vec![]);
        let one = |role, auto| {
            let f = rewind_role("rewinder", role, auto);
            assert_eq!(f.len(), 1, "{f:?}");
            (f[0].severity, f[0].what.clone(), f[0].hint.clone())
        };
        // Without its reads, auto_rewind cannot work: critical; without auto_rewind, the check only.
        let (sev, what, hint) = one(Some(RewindRole { can_read: false, can_checkpoint: false }), true);
        assert_eq!(sev, Severity::Critical);
        assert!(
            what.contains("rewinder lacks pg_rewind's privileges: auto_rewind cannot rewind")
                && hint.contains("pg_read_binary_file(text, bigint, bigint, boolean) TO rewinder"),
            "{what} / {hint}"
        );
        assert_eq!(one(Some(RewindRole { can_read: false, can_checkpoint: true }), false).0, Severity::Warning);
        let (sev, what, _) = one(None, true);
        assert!(sev == Severity::Critical && what.contains("does not exist"), "{what}");
        // Reads but no CHECKPOINT: works, slower and less sure right after a failover.
        let (sev, what, hint) = one(Some(RewindRole { can_read: true, can_checkpoint: false }), true);
        assert!(
            sev == Severity::Warning && what.contains("cannot CHECKPOINT") && hint == "GRANT pg_checkpoint TO rewinder (PostgreSQL 15+; superuser before)",
            "{what} / {hint}"
        );
    }
}
