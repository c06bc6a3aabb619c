//! `paceline status`: the cluster and every PostgreSQL in it, on one screen, from any node.
//!
//! What a DBA otherwise pieces together from `crm_mon`, `psql` on every node and
//! `crm_attribute`: per node the Pacemaker role next to PostgreSQL's own view (primary,
//! streaming standby, stopped), timeline, LSN, lag, synchronous state, promotion score and
//! fail counts; where the VIP or EC2 address is; the fence devices and the last fencing;
//! quorum; and one verdict line — "healthy", or what is wrong and the command that shows
//! more.
//!
//! Where each part comes from, each read once: the cluster from one `crm_mon` call
//! ([`crate::pacemaker::mon`]) and the configuration from one `cibadmin` query, both run at
//! the same time; PostgreSQL from every node's state service at once ([`probe`]). The
//! invariant: the verdict says "healthy" only when both views agree — exactly one primary,
//! promoted by Pacemaker and writable, every other online node a streaming standby that a
//! failover could choose (a promotion score above 0), the address on the primary, no
//! recorded failure, quorum, fencing on.

pub mod probe;
pub mod render;

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::{json, Value};

use crate::findings::{Finding, Severity};
use crate::pacemaker::cib::{agent_type, Move, Primitive};
use crate::pacemaker::mon::{Cluster, FenceEvent};
use probe::PgNode;

/// One node's row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeRow {
    pub name: String,
    pub online: bool,
    pub standby: bool,
    pub unclean: bool,
    pub dc: bool,
    /// The PostgreSQL resource's role here as Pacemaker has it (`Promoted`, `Unpromoted`,
    /// `Stopped`), with `(failed)` when Pacemaker marks it failed.
    pub role: String,
    /// PostgreSQL's own view (`primary`, `streaming standby`, `standby, not streaming`,
    /// `stopped`), or why it is unknown.
    pub postgres: String,
    pub pg: Option<PgNode>,
    /// From the primary's pg_stat_replication: this standby's sync state, lag in bytes and seconds.
    pub sync_state: Option<String>,
    pub lag_bytes: Option<u64>,
    pub lag_seconds: Option<f64>,
    pub score: Option<String>,
    /// Resource → fail count.
    pub fail_counts: BTreeMap<String, u64>,
    /// `paceline reinit` runs here: its step.
    pub reinit: Option<String>,
}

/// A floating address resource: the VIP, or an EC2 secondary / Elastic IP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub resource: String,
    pub agent: String,
    pub address: String,
    pub nodes: Vec<String>,
}

/// A fence device and where it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FenceDevice {
    pub id: String,
    pub agent: String,
    pub node: Option<String>,
}

/// Everything `paceline status` shows.
#[derive(Debug, Clone, Default)]
pub struct Status {
    pub resource: Option<String>,
    /// The promotable clone holding it (what `crm_resource --move --promoted` takes).
    pub clone: Option<String>,
    pub dc: Option<String>,
    pub quorate: bool,
    pub stonith_enabled: bool,
    pub maintenance_mode: bool,
    pub nodes: Vec<NodeRow>,
    pub addresses: Vec<Address>,
    /// The primary's replication slots (from its state service).
    pub slots: BTreeMap<String, probe::SlotSample>,
    pub fence_devices: Vec<FenceDevice>,
    pub last_fencing: Option<FenceEvent>,
    /// The newest incident record this node keeps (`paceline history`).
    pub last_change: Option<crate::history::Record>,
    /// The whole fencing history, newest first (for the nodes fenced and still off).
    pub fencing: Vec<FenceEvent>,
    /// Moves and bans of the database's clone in place (`cli-prefer-`, `cli-ban-`).
    pub moves: Vec<Move>,
    pub findings: Vec<Finding>,
    /// How long gathering took (milliseconds).
    pub elapsed_ms: u64,
}

/// Gather everything, from this node. Errors only when the cluster cannot be asked at all.
pub fn gather() -> Result<Status, crate::ocf::OcfError> {
    let t = Instant::now();
    let (mon, cib) = std::thread::scope(|s| {
        let cib = s.spawn(crate::pacemaker::cib::configuration);
        let mon = crate::pacemaker::mon::query();
        (mon, cib.join().unwrap_or_else(|_| Err(crate::ocf::OcfError::generic("the CIB query thread failed"))))
    });
    let mon = mon?;
    let cfg = cib.unwrap_or_default();
    let prims = cfg.primitives;
    let port = state_port(&prims);
    let addrs = crate::pacemaker::nodes::addresses().unwrap_or_default();
    let pg = match port {
        Some(port) => probe::all(&addrs, port),
        None => BTreeMap::new(),
    };
    let mut st = assemble(&mon, &prims, &pg, port.is_some(), &cfg.moves);
    st.last_change = st.resource.as_deref().and_then(|r| crate::history::Store::open(r).newest());
    st.elapsed_ms = t.elapsed().as_millis() as u64;
    Ok(st)
}

/// The state service's HTTP port, if the configuration has one (a pgsql-state primitive).
fn state_port(prims: &[Primitive]) -> Option<u16> {
    let p = prims.iter().find(|p| agent_type(&p.agent) == "pgsql-state")?;
    let port: u16 = p.params.get("http_port").map(String::as_str).unwrap_or("8008").parse().ok()?;
    (port != 0).then_some(port)
}

/// Put the views together and judge them (no I/O: tests feed recorded views).
pub fn assemble(mon: &Cluster, prims: &[Primitive], pg: &BTreeMap<String, Result<PgNode, String>>, has_service: bool, moves: &[Move]) -> Status {
    let pgsql = prims.iter().find(|p| agent_type(&p.agent) == "pgsqlms").map(|p| p.id.clone());
    let clone = prims.iter().find(|p| agent_type(&p.agent) == "pgsqlms").and_then(|p| p.clone.as_ref()).map(|(id, _)| id.clone());
    let mut st = Status {
        resource: pgsql.clone(),
        clone,
        dc: mon.dc.clone(),
        quorate: mon.quorate,
        stonith_enabled: mon.stonith_enabled,
        maintenance_mode: mon.maintenance_mode,
        ..Default::default()
    };
    let promoted: Vec<String> =
        pgsql.as_deref().map(|r| mon.instances_of(r).filter(|i| i.role == "Promoted").filter_map(|i| i.node.clone()).collect()).unwrap_or_default();
    // The standbys as the primary's PostgreSQL sees them.
    let primary_view = promoted.first().and_then(|p| pg.get(p)).and_then(|r| r.as_ref().ok()).cloned();
    let service = prims.iter().find(|p| agent_type(&p.agent) == "pgsql-state").map(|p| p.id.clone());
    for n in &mon.nodes {
        // Pacemaker stopped the state service here (a node in standby, say): its silence
        // says nothing is wrong with it.
        let service_stopped = service.as_deref().is_some_and(|id| !mon.instances_of(id).any(|i| i.node.as_deref() == Some(&n.name)));
        let mut row = NodeRow { name: n.name.clone(), online: n.online, standby: n.standby, unclean: n.unclean, dc: n.is_dc, ..Default::default() };
        if let Some(r) = &pgsql {
            let here: Vec<_> = mon.instances_of(r).filter(|i| i.node.as_deref() == Some(&n.name)).collect();
            row.role = match here.first() {
                Some(i) if i.failed => format!("{} (failed)", i.role),
                Some(i) => i.role.clone(),
                None => "Stopped".into(),
            };
            row.score = mon.attributes.get(&n.name).and_then(|a| a.get(&format!("master-{r}"))).cloned();
        }
        row.fail_counts = mon.fail_counts.iter().filter(|f| f.node == n.name).map(|f| (f.resource.clone(), f.count)).collect();
        row.postgres = match pg.get(&n.name) {
            _ if !n.online => "node offline".into(),
            Some(Ok(v)) => {
                row.pg = Some(v.clone());
                if !v.up {
                    "stopped".into()
                } else if v.writable {
                    "primary".into()
                } else if v.streaming {
                    "streaming standby".into()
                } else {
                    "standby, not streaming".into()
                }
            }
            // Both stopped by Pacemaker: PostgreSQL is down (pgsqlms's stop saw to it).
            Some(Err(_)) if service_stopped && row.role == "Stopped" => "stopped".into(),
            Some(Err(e)) => format!("unknown: state service: {e}"),
            None if has_service => "unknown: no address in corosync.conf".into(),
            None => "unknown: no state service (ocf:paceline:pgsql-state)".into(),
        };
        if let Some(pv) = &primary_view {
            if let Some((sync, bytes, secs)) = pv.standbys.get(&n.name) {
                row.sync_state = Some(sync.clone());
                row.lag_bytes = Some(*bytes);
                row.lag_seconds = Some(*secs);
            }
        }
        if row.lag_bytes.is_none() {
            row.lag_bytes = row.pg.as_ref().and_then(|v| v.lag_bytes);
        }
        // `paceline reinit` under way here: what it does now, in place of PostgreSQL's view.
        if let Some(step) = mon.attributes.get(&n.name).and_then(|a| a.get(crate::reinit::ATTRIBUTE)) {
            row.postgres = format!("reinit: {step}");
            row.reinit = Some(step.clone());
        }
        st.nodes.push(row);
    }
    for p in prims {
        // A resource that floats an address (ours or heartbeat's agent of the same name).
        if let Some(param) = crate::registry::get(agent_type(&p.agent)).and_then(|a| a.address) {
            let nodes = mon.instances_of(&p.id).filter(|i| i.role == "Started").filter_map(|i| i.node.clone()).collect();
            st.addresses.push(Address { resource: p.id.clone(), agent: p.agent.clone(), address: p.params.get(param).cloned().unwrap_or_default(), nodes });
        }
        if p.agent.starts_with("stonith:") {
            let node = mon.instances_of(&p.id).find(|i| i.role == "Started").and_then(|i| i.node.clone());
            st.fence_devices.push(FenceDevice { id: p.id.clone(), agent: p.agent.clone(), node });
        }
    }
    st.last_fencing = mon.fencing.first().cloned();
    st.fencing = mon.fencing.clone();
    st.moves =
        moves.iter().filter(|m| st.clone.as_deref() == Some(m.resource.as_str()) || st.resource.as_deref() == Some(m.resource.as_str())).cloned().collect();
    st.slots = primary_view.as_ref().map(|v| v.slots.clone()).unwrap_or_default();
    st.findings = judge(&st, &promoted, has_service);
    st
}

fn judge(st: &Status, promoted: &[String], has_service: bool) -> Vec<Finding> {
    use Severity::*;
    let mut f = Vec::new();
    let mut add = |severity, what: String, hint: &str| f.push(Finding { severity, what, hint: hint.to_owned() });
    if !st.quorate {
        add(Critical, "this node's partition has no quorum".into(), "crm_mon -1 (run paceline status on a node of the majority)");
    }
    let Some(r) = &st.resource else {
        add(Critical, "no pgsqlms resource in the configuration".into(), "pcs resource config");
        return f;
    };
    match promoted.len() {
        0 => add(Critical, format!("no primary: {r} is promoted nowhere"), "crm_mon -1rf"),
        1 => {}
        n => add(Critical, format!("{n} primaries: {r} promoted on {}", promoted.join(", ")), "crm_mon -1rf"),
    }
    // A move in place: a switchover under way, or one that left its constraint behind
    // (the scheduler keeps obeying it, and the next failover cannot use that node).
    for m in &st.moves {
        let what = match (m.ban, m.role.as_deref()) {
            (true, _) => format!("{} is banned from {} ({})", m.resource, m.node, m.id),
            (false, Some(role)) => format!("{} is moved: {role} on {} ({}): a switchover under way, or its constraint left behind", m.resource, m.node, m.id),
            (false, None) => format!("{} is moved to {} ({})", m.resource, m.node, m.id),
        };
        add(Warning, what, &format!("pcs resource clear {}", m.resource));
    }
    if st.maintenance_mode {
        add(Warning, "maintenance-mode is on: Pacemaker watches but does not act".into(), "pcs property set maintenance-mode=false");
    }
    for name in st.slots.iter().filter(|(_, s)| s.invalidated).map(|(n, _)| n) {
        add(Critical, format!("replication slot {name} on the primary lost its WAL: its standby or consumer cannot resume from it"), "paceline check");
    }
    for n in &st.nodes {
        if n.unclean {
            add(Critical, format!("{} is lost and not fenced yet", n.name), "stonith_admin --history '*'");
            continue;
        }
        if !n.online {
            // Fenced by a reboot and still off: the reboot succeeded once the node was off
            // (fence-agents' semantics); a power-on that failed is only in the fence agent's
            // log, and nobody else will start the node. (Right after the reboot it may just
            // be booting: hence a warning, with what to do if it does not come back.)
            let rebooted = st.fencing.iter().find(|e| e.target == n.name && e.action == "reboot" && e.status == "success");
            match rebooted {
                Some(e) => add(
                    Warning,
                    format!(
                        "{} was fenced by a reboot{} and is still offline: if it does not come back, its power-on failed (see the fence agent's log)",
                        n.name,
                        e.completed.as_deref().map(|c| format!(" at {c}")).unwrap_or_default()
                    ),
                    "start the instance (or the machine), then pcs resource cleanup",
                ),
                None => add(Warning, format!("{} is offline", n.name), "crm_mon -1"),
            }
            continue;
        }
        if n.standby {
            add(Warning, format!("{} is in standby", n.name), "pcs node unstandby");
        }
        if let Some(step) = &n.reinit {
            add(Warning, format!("{}: paceline reinit under way ({step})", n.name), "wait for it; its output says where the old data went");
            continue;
        }
        if let Some(pg) = &n.pg {
            match (n.role.as_str(), pg.up, pg.writable, pg.streaming) {
                ("Promoted", true, true, _) => {}
                ("Promoted", _, _, _) => add(Critical, format!("{}: promoted, but PostgreSQL there is {}", n.name, n.postgres), "crm_mon -1rf"),
                (_, true, true, _) => {
                    add(Critical, format!("{}: PostgreSQL is writable but not promoted by Pacemaker", n.name), "crm_resource --force-check -r pgsqld -V")
                }
                // Streaming, but a failover now would not choose it: the primary's monitor has
                // not scored it yet (just started, just after a switchover), or it lags.
                ("Unpromoted", true, false, true) => {
                    if let Some(score) = n.score.as_deref().and_then(|s| s.parse::<i64>().ok()).filter(|s| *s <= 0) {
                        add(
                            Warning,
                            format!("{}: standby not promotable yet (promotion score {score})", n.name),
                            "wait for the primary's next monitor; if it stays, crm_resource --force-check -r pgsqld -V on that node",
                        );
                    }
                }
                ("Unpromoted", true, false, false) => {
                    add(Warning, format!("{}: standby not streaming", n.name), "journal of PostgreSQL on that node; primary_conninfo")
                }
                ("Unpromoted", false, _, _) => add(Critical, format!("{}: Pacemaker says Unpromoted, PostgreSQL is stopped", n.name), "crm_mon -1rf"),
                _ => {}
            }
            if has_service && pg.routing_primary != (n.role == "Promoted" && st.quorate) {
                add(
                    Warning,
                    format!("{}: routing checks say {}primary", n.name, if pg.routing_primary { "" } else { "not " }),
                    "curl http://<node>:8008/primary",
                );
            }
        }
        if !n.role.starts_with("Promoted") && !n.role.starts_with("Unpromoted") {
            add(Warning, format!("{}: {r} is {}", n.name, n.role), "crm_mon -1rf");
        }
        for (res, count) in &n.fail_counts {
            add(
                Warning,
                format!("{}: {count} failure{} recorded for {res}", n.name, if *count == 1 { "" } else { "s" }),
                &format!("crm_mon -1rf; then pcs resource cleanup {res}"),
            );
        }
    }
    for a in &st.addresses {
        match a.nodes.as_slice() {
            [] => add(Critical, format!("{} ({}) runs nowhere", a.resource, a.address), "crm_mon -1rf"),
            [one] if promoted.len() == 1 && one != &promoted[0] => {
                add(Critical, format!("{} ({}) is on {one}, the primary on {}", a.resource, a.address, promoted[0]), "pcs constraint")
            }
            [_] => {}
            many => add(Critical, format!("{} ({}) runs on {}", a.resource, a.address, many.join(", ")), "crm_mon -1rf"),
        }
    }
    if !st.stonith_enabled {
        add(Warning, "fencing is disabled (stonith-enabled=false): a hung primary cannot be fenced".into(), "pcs property set stonith-enabled=true");
    } else if st.fence_devices.is_empty() {
        add(Critical, "stonith-enabled=true but no fence device is configured".into(), "pcs stonith config");
    }
    if let Some(e) = &st.last_fencing {
        if e.status != "success" && !e.status.is_empty() {
            add(Warning, format!("the last fencing of {} ({}) is {}", e.target, e.action, e.status), "stonith_admin --history '*'");
        }
    }
    f.sort_by_key(|f| std::cmp::Reverse(f.severity));
    f
}

impl Status {
    /// "healthy", or the worst finding and how many more there are.
    pub fn verdict(&self) -> String {
        match self.findings.as_slice() {
            [] => "healthy".into(),
            [one] => format!("{}: {} (see: {})", one.severity.label(), one.what, one.hint),
            [first, rest @ ..] => format!("{}: {} (see: {}; and {} more below)", first.severity.label(), first.what, first.hint, rest.len()),
        }
    }

    /// The primary: the node Pacemaker promoted.
    pub fn primary(&self) -> Option<&str> {
        self.nodes.iter().find(|n| n.role == "Promoted").map(|n| n.name.as_str())
    }

    pub fn to_json(&self) -> Value {
        let nodes: Vec<Value> = self
            .nodes
            .iter()
            .map(|n| {
                json!({
                    "name": n.name, "online": n.online, "standby": n.standby, "unclean": n.unclean, "dc": n.dc,
                    "role": n.role, "postgres": n.postgres,
                    "timeline": n.pg.as_ref().and_then(|p| p.timeline), "lsn": n.pg.as_ref().and_then(|p| p.lsn),
                    "lag_bytes": n.lag_bytes, "lag_seconds": n.lag_seconds, "sync_state": n.sync_state,
                    "synchronous": n.pg.as_ref().map(|p| p.synchronous), "routing_primary": n.pg.as_ref().map(|p| p.routing_primary),
                    "last_failover": n.pg.as_ref().and_then(|p| p.last_failover), "crash_reports": n.pg.as_ref().map(|p| p.crash_reports),
                    "score": n.score, "fail_counts": n.fail_counts, "reinit": n.reinit,
                })
            })
            .collect();
        json!({
            "verdict": self.verdict(),
            "healthy": self.findings.is_empty(),
            "resource": self.resource, "primary": self.primary(), "dc": self.dc, "quorate": self.quorate,
            "stonith_enabled": self.stonith_enabled, "maintenance_mode": self.maintenance_mode,
            "nodes": nodes,
            "addresses": self.addresses.iter().map(|a| json!({"resource": a.resource, "agent": a.agent, "address": a.address, "nodes": a.nodes})).collect::<Vec<_>>(),
            "slots": self.slots.iter().map(|(n, s)| json!({"name": n, "type": s.kind, "retained_bytes": s.retained, "active": s.active, "invalidated": s.invalidated})).collect::<Vec<_>>(),
            "fence_devices": self.fence_devices.iter().map(|d| json!({"id": d.id, "agent": d.agent, "node": d.node})).collect::<Vec<_>>(),
            "moves": self.moves.iter().map(|m| json!({"id": m.id, "resource": m.resource, "node": m.node, "ban": m.ban, "role": m.role})).collect::<Vec<_>>(),
            "last_fencing": self.last_fencing.as_ref().map(|e| json!({"target": e.target, "action": e.action, "status": e.status, "delegate": e.delegate, "completed": e.completed})),
            "last_change": self.last_change.as_ref().map(crate::history::render::json),
            "findings": self.findings.iter().map(|f| json!({"severity": f.severity.label(), "what": f.what, "hint": f.hint})).collect::<Vec<_>>(),
            "elapsed_ms": self.elapsed_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pacemaker::mon::{FailCount, Instance, Node};

    fn cluster(promoted: &str) -> Cluster {
        let node = |n: &str| Node { name: n.into(), online: true, ..Default::default() };
        let inst = |role: &str, n: &str| Instance {
            id: "pgsqld".into(),
            parent: Some("pgsqld-clone".into()),
            agent: "ocf:paceline:pgsqlms".into(),
            role: role.into(),
            node: Some(n.into()),
            managed: true,
            failed: false,
        };
        let mut instances: Vec<Instance> =
            ["node1", "node2", "node3"].iter().map(|n| inst(if *n == promoted { "Promoted" } else { "Unpromoted" }, n)).collect();
        instances.push(Instance {
            id: "pgsql-vip".into(),
            agent: "ocf:paceline:IPaddr2".into(),
            role: "Started".into(),
            node: Some(promoted.into()),
            managed: true,
            ..Default::default()
        });
        instances.push(Instance {
            id: "fence-ec2".into(),
            agent: "stonith:fence_paceline_aws".into(),
            role: "Started".into(),
            node: Some("node3".into()),
            managed: true,
            ..Default::default()
        });
        Cluster {
            dc: Some("node3".into()),
            quorate: true,
            stonith_enabled: true,
            nodes: vec![node("node1"), node("node2"), node("node3")],
            instances,
            ..Default::default()
        }
    }
    fn prims() -> Vec<Primitive> {
        let p = |id: &str, agent: &str, params: &[(&str, &str)]| Primitive {
            id: id.into(),
            agent: agent.into(),
            params: params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..Default::default()
        };
        vec![
            p("pgsqld", "ocf:paceline:pgsqlms", &[]),
            p("pgsql-vip", "ocf:paceline:IPaddr2", &[("ip", "192.0.2.100")]),
            p("fence-ec2", "stonith:fence_paceline_aws", &[]),
            p("pgsql-state", "ocf:paceline:pgsql-state", &[]),
        ]
    }
    fn views(primary: &str) -> BTreeMap<String, Result<PgNode, String>> {
        let mut standbys = BTreeMap::new();
        for n in ["node1", "node2", "node3"].iter().filter(|n| **n != primary) {
            standbys.insert(n.to_string(), ("async".to_owned(), 128, 0.002));
        }
        ["node1", "node2", "node3"]
            .iter()
            .map(|n| {
                let v = if *n == primary {
                    PgNode {
                        up: true,
                        writable: true,
                        timeline: Some(2),
                        lsn: Some(1000),
                        routing_primary: true,
                        standbys: standbys.clone(),
                        ..Default::default()
                    }
                } else {
                    PgNode { up: true, streaming: true, timeline: Some(2), lsn: Some(872), lag_bytes: Some(0), ..Default::default() }
                };
                (n.to_string(), Ok(v))
            })
            .collect()
    }

    #[test]
    fn the_primarys_slots_are_shown_and_a_lost_one_is_critical() {
        let mut v = views("node1");
        if let Some(Ok(p)) = v.get_mut("node1") {
            p.slots.insert("paceline_node2".into(), probe::SlotSample { kind: "physical".into(), retained: Some(3 << 20), active: true, invalidated: false });
            p.slots.insert("paceline_node3".into(), probe::SlotSample { kind: "physical".into(), retained: None, active: false, invalidated: true });
        }
        let st = assemble(&cluster("node1"), &prims(), &v, true, &[]);
        assert_eq!(st.findings.len(), 1, "{:?}", st.findings);
        assert!(st.findings[0].severity == Severity::Critical && st.findings[0].what.contains("paceline_node3"), "{:?}", st.findings);
        let text = render::text(&st);
        assert!(text.contains("Slot: paceline_node2 (physical) holds 3.0 MB, in use"), "{text}");
        assert!(text.contains("Slot: paceline_node3 (physical) LOST its WAL, unused"), "{text}");
        assert_eq!(st.to_json()["slots"][0]["retained_bytes"], 3 << 20);
    }

    #[test]
    fn a_reinit_under_way_is_shown_as_one_finding() {
        let mut c = cluster("node1");
        c.attributes.entry("node3".into()).or_default().insert(crate::reinit::ATTRIBUTE.into(), "pg_basebackup".into());
        // Banned from node3 while it runs: Pacemaker has the instance stopped there.
        c.instances.retain(|i| !(i.node.as_deref() == Some("node3") && i.id == "pgsqld"));
        let mut v = views("node1");
        v.insert("node3".into(), Ok(PgNode::default()));
        let st = assemble(&c, &prims(), &v, true, &[]);
        assert_eq!(st.nodes[2].postgres, "reinit: pg_basebackup");
        let what: Vec<&str> = st.findings.iter().map(|f| f.what.as_str()).collect();
        assert_eq!(what, ["node3: paceline reinit under way (pg_basebackup)"], "{:?}", st.findings);
    }

    #[test]
    fn a_healthy_cluster_says_so() {
        let st = assemble(&cluster("node1"), &prims(), &views("node1"), true, &[]);
        assert_eq!(st.verdict(), "healthy", "{:?}", st.findings);
        assert_eq!(st.primary(), Some("node1"));
        assert_eq!(st.nodes[1].postgres, "streaming standby");
        assert_eq!((st.nodes[1].lag_bytes, st.nodes[1].sync_state.as_deref()), (Some(128), Some("async")));
        assert_eq!(st.addresses[0].nodes, vec!["node1"]);
        assert_eq!(st.fence_devices[0].node.as_deref(), Some("node3"));
        let j = st.to_json();
        assert_eq!(j["healthy"], true);
        assert_eq!(j["nodes"][0]["postgres"], "primary");
        assert_eq!(j["nodes"][2]["lag_seconds"], 0.002);
    }

    /// A streaming standby that a failover would not choose (not scored yet, or lagging):
    /// "healthy" would invite a switchover that is refused.
    #[test]
    fn a_standby_a_failover_would_not_choose_is_a_finding() {
        let mut c = cluster("node1");
        c.attributes.entry("node2".into()).or_default().insert("master-pgsqld".into(), "-1000".into());
        c.attributes.entry("node3".into()).or_default().insert("master-pgsqld".into(), "990".into());
        let st = assemble(&c, &prims(), &views("node1"), true, &[]);
        let what: Vec<&str> = st.findings.iter().map(|f| f.what.as_str()).collect();
        assert_eq!(what, ["node2: standby not promotable yet (promotion score -1000)"], "{:?}", st.findings);
        assert_eq!(st.findings[0].severity, Severity::Warning);
    }

    #[test]
    fn a_move_in_place_is_a_finding_with_the_command_that_clears_it() {
        let mv = |id: &str, rsc: &str, ban| Move { id: id.into(), resource: rsc.into(), node: "node2".into(), ban, role: (!ban).then(|| "Promoted".into()) };
        let moves = [mv("cli-prefer-pgsqld-clone", "pgsqld-clone", false), mv("cli-prefer-other", "other", false)];
        let mut p = prims();
        p[0].clone = Some(("pgsqld-clone".into(), BTreeMap::new()));
        let st = assemble(&cluster("node1"), &p, &views("node1"), true, &moves);
        assert_eq!(st.findings.len(), 1, "only the database's clone counts: {:?}", st.findings);
        assert!(
            st.findings[0].what.contains("Promoted on node2 (cli-prefer-pgsqld-clone)") && st.findings[0].hint == "pcs resource clear pgsqld-clone",
            "{:?}",
            st.findings
        );
        assert_eq!(st.to_json()["moves"][0]["node"], "node2");
    }

    #[test]
    fn each_disagreement_is_a_finding() {
        // The VIP on a standby.
        let mut c = cluster("node1");
        c.instances.iter_mut().find(|i| i.id == "pgsql-vip").unwrap().node = Some("node2".into());
        let st = assemble(&c, &prims(), &views("node1"), true, &[]);
        assert!(st.verdict().starts_with("CRITICAL: pgsql-vip (192.0.2.100) is on node2, the primary on node1"), "{}", st.verdict());
        // A standby that does not stream, a fail count, no fencing.
        let mut v = views("node1");
        if let Some(Ok(n)) = v.get_mut("node3") {
            n.streaming = false;
        }
        let mut c = cluster("node1");
        c.fail_counts.push(FailCount { node: "node2".into(), resource: "pgsqld".into(), count: 2, migration_threshold: Some(5) });
        c.stonith_enabled = false;
        let st = assemble(&c, &prims(), &v, true, &[]);
        let what: Vec<&str> = st.findings.iter().map(|f| f.what.as_str()).collect();
        assert!(what.contains(&"node3: standby not streaming"), "{what:?}");
        assert!(what.contains(&"node2: 2 failures recorded for pgsqld"), "{what:?}");
        assert!(what.iter().any(|w| w.starts_with("fencing is disabled")), "{what:?}");
        // PostgreSQL writable where Pacemaker has no primary; no quorum.
        let mut c = cluster("node1");
        c.quorate = false;
        for i in c.instances.iter_mut().filter(|i| i.id == "pgsqld") {
            i.role = "Unpromoted".into();
        }
        let st = assemble(&c, &prims(), &views("node1"), true, &[]);
        let what: Vec<&str> = st.findings.iter().map(|f| f.what.as_str()).collect();
        assert!(what.contains(&"this node's partition has no quorum"), "{what:?}");
        assert!(what.contains(&"no primary: pgsqld is promoted nowhere"), "{what:?}");
        assert!(what.contains(&"node1: PostgreSQL is writable but not promoted by Pacemaker"), "{what:?}");
        assert_eq!(st.findings[0].severity, Severity::Critical);
    }

    /// A node fenced by a reboot whose power-on failed: the reboot succeeded (the node is
    /// off), so only status can say that nobody will start it.
    #[test]
    fn a_node_fenced_by_a_reboot_and_still_off_says_so() {
        let mut c = cluster("node1");
        c.nodes[2].online = false;
        c.instances.retain(|i| i.node.as_deref() != Some("node3"));
        let offline = assemble(&c, &prims(), &views("node1"), true, &[]);
        assert!(offline.findings.iter().any(|f| f.what == "node3 is offline" && f.severity == Severity::Warning), "{:?}", offline.findings);
        c.fencing.push(crate::pacemaker::mon::FenceEvent {
            target: "node3".into(),
            action: "reboot".into(),
            status: "success".into(),
            delegate: Some("node2".into()),
            completed: Some("2026-12-06 23:00:00Z".into()),
        });
        let st = assemble(&c, &prims(), &views("node1"), true, &[]);
        let f = st.findings.iter().find(|f| f.what.starts_with("node3 was fenced by a reboot")).expect("the finding");
        assert_eq!(f.severity, Severity::Warning);
        assert!(f.what.contains("still offline") && f.what.contains("power-on failed") && f.what.contains("at 2026-12-06 23:00:00Z"), "{}", f.what);
        assert!(f.hint.starts_with("start the instance"), "{}", f.hint);
    }

    #[test]
    fn a_node_in_standby_is_stopped_not_unknown() {
        let mut c = cluster("node1");
        c.nodes[2].standby = true;
        c.instances.retain(|i| i.node.as_deref() != Some("node3"));
        for n in ["node1", "node2"] {
            c.instances.push(Instance {
                id: "pgsql-state".into(),
                parent: Some("pgsql-state-clone".into()),
                agent: "ocf:paceline:pgsql-state".into(),
                role: "Started".into(),
                node: Some(n.into()),
                managed: true,
                failed: false,
            });
        }
        let mut v = views("node1");
        v.insert("node3".into(), Err("192.0.2.13:8008: Connection refused".into()));
        let st = assemble(&c, &prims(), &v, true, &[]);
        assert_eq!((st.nodes[2].role.as_str(), st.nodes[2].postgres.as_str()), ("Stopped", "stopped"));
        assert!(st.verdict().starts_with("WARNING: node3 is in standby (see: pcs node unstandby"), "{}", st.verdict());
        // The service runs there but does not answer: that is unknown.
        c.instances.push(Instance {
            id: "pgsql-state".into(),
            agent: "ocf:paceline:pgsql-state".into(),
            role: "Started".into(),
            node: Some("node3".into()),
            managed: true,
            ..Default::default()
        });
        let st = assemble(&c, &prims(), &v, true, &[]);
        assert!(st.nodes[2].postgres.starts_with("unknown: state service"), "{}", st.nodes[2].postgres);
    }

    #[test]
    fn no_state_service_leaves_postgres_unknown_but_judges_the_cluster() {
        let mut p = prims();
        p.retain(|p| p.id != "pgsql-state");
        let st = assemble(&cluster("node2"), &p, &BTreeMap::new(), false, &[]);
        assert_eq!(st.nodes[0].postgres, "unknown: no state service (ocf:paceline:pgsql-state)");
        assert_eq!(st.verdict(), "healthy");
        let st = assemble(&Cluster::default(), &[], &BTreeMap::new(), false, &[]);
        assert!(st.findings.iter().any(|f| f.what == "no pgsqlms resource in the configuration"), "{:?}", st.findings);
    }

    /// What `crm_mon --include=all --output-as=xml`, `cibadmin --query` and each node's
    /// /metrics said on the EC2 lab (tests/data/lab-ec2: `lab up --ec2`, paceline stack with
    /// synchronous replication, after a switchover, a kill-postgres and a fence of node2,
    /// then node1's; node2 primary on timeline 6, all three online).
    #[test]
    fn a_recorded_ec2_lab() {
        let mon = crate::pacemaker::mon::parse(include_str!("../../tests/data/lab-ec2/crm_mon.xml"));
        let cib = crate::pacemaker::xml::parse(include_str!("../../tests/data/lab-ec2/cib.xml"));
        let prims = crate::pacemaker::cib::primitives_in(&cib);
        let metrics = [
            include_str!("../../tests/data/lab-ec2/metrics-node1.txt"),
            include_str!("../../tests/data/lab-ec2/metrics-node2.txt"),
            include_str!("../../tests/data/lab-ec2/metrics-node3.txt"),
        ];
        let pg: BTreeMap<String, Result<PgNode, String>> =
            metrics.iter().enumerate().map(|(i, m)| (format!("node{}", i + 1), Ok(super::probe::parse_metrics(m)))).collect();
        let st = assemble(&mon, &prims, &pg, true, &[]);
        assert_eq!(st.primary(), Some("node2"));
        assert_eq!(st.resource.as_deref(), Some("pgsqld"));
        assert!(st.quorate && st.stonith_enabled && !st.maintenance_mode);
        let rows: Vec<(&str, &str, &str)> = st.nodes.iter().map(|n| (n.name.as_str(), n.role.as_str(), n.postgres.as_str())).collect();
        assert_eq!(rows, [("node1", "Unpromoted", "streaming standby"), ("node2", "Promoted", "primary"), ("node3", "Unpromoted", "streaming standby")]);
        assert!(st.nodes.iter().all(|n| n.pg.as_ref().and_then(|p| p.timeline) == Some(6)));
        for n in [&st.nodes[0], &st.nodes[2]] {
            assert!(n.lag_bytes.is_some() && n.sync_state.is_some() && n.score.is_some(), "{n:?}");
        }
        assert_eq!(st.fence_devices.iter().map(|d| d.agent.as_str()).collect::<Vec<_>>(), ["stonith:fence_paceline_aws"]);
        let last = st.last_fencing.as_ref().expect("the fence history");
        assert_eq!((last.target.as_str(), last.action.as_str(), last.status.as_str()), ("node1", "reboot", "success"));
        let addr: Vec<(&str, &str, Vec<String>)> = st.addresses.iter().map(|a| (a.agent.as_str(), a.resource.as_str(), a.nodes.clone())).collect();
        assert!(addr.iter().all(|(_, _, nodes)| nodes == &["node2"]), "{addr:?}");
        assert!(addr.iter().any(|(agent, _, _)| agent.ends_with(":awsvip")), "{addr:?}");
    }
}
