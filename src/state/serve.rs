//! The service's loops: one connection to the local PostgreSQL, a poll every [`POLL`]
//! (the guard's decision carried out, PostgreSQL's view of the snapshot refreshed), and a
//! look at the cluster every [`CLUSTER_POLL`] (the cluster's view), until SIGTERM.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::guard::{Guard, Member, Waiter};
use super::http::{self, Endpoints};
use super::role::{ClusterView, PgView, Snapshot, Standby};
use crate::ocf::OcfError;
use crate::pg::client::{Identity, Local};
use crate::{ocf_debug, ocf_info, ocf_warn};

/// How often the service looks. A commit is ended at most this much after the guard's
/// limit; 20 small catalog reads a second cost PostgreSQL nothing measurable.
pub const POLL: Duration = Duration::from_millis(50);

/// How long it waits before connecting again to an instance that is down.
const RECONNECT: Duration = Duration::from_millis(200);

const QUERY_TIMEOUT: Duration = Duration::from_secs(2);

/// How often the cluster's view is refreshed (two short Pacemaker tool runs).
pub const CLUSTER_POLL: Duration = Duration::from_millis(200);

/// What the service needs to know.
#[derive(Debug, Clone)]
pub struct Settings {
    pub socket_dir: PathBuf,
    pub port: u16,
    pub user: String,
    /// The OS identity to connect as (peer authentication), when running as root.
    pub who: Option<Identity>,
    /// The guard's limit; zero disables it.
    pub sync_wait_limit: Duration,
    /// Where the routing checks are answered.
    pub endpoints: Endpoints,
    /// The pgsqlms resource whose promotion makes this node the primary.
    pub resource: String,
    /// This node's name as Pacemaker knows it, when Pacemaker started the service.
    pub node: Option<String>,
    /// Report a crashed postmaster to Pacemaker at once ([`super::crash`]).
    pub crash_reports: bool,
    /// Wake a standby's retry the moment its primary answers ([`super::follow`]).
    pub instant_reconnect: bool,
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_term(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn handle_signals() -> Result<(), OcfError> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let act = SigAction::new(SigHandler::Handler(on_term), SaFlags::empty(), SigSet::empty());
    for sig in [Signal::SIGTERM, Signal::SIGINT] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { sigaction(sig, &act) }.map_err(|e| OcfError::generic(format!("cannot handle {sig}: {e}")))?;
    }
    Ok(())
}

/// One poll's view of the instance. (wal_status and safe_wal_size, PostgreSQL 13+, are read
/// through to_jsonb so that the same statement runs on 12.)
#[derive(Debug)]
struct Seen {
    /// k of synchronous_standby_names (0: asynchronous).
    k: usize,
    waiters: Vec<Waiter>,
    members: Vec<Member>,
    view: PgView,
    /// A standby's walreceiver (a primary's: Running, nothing to follow).
    receiver: super::follow::Receiver,
}

fn look(local: &Local) -> Result<Seen, OcfError> {
    let rows = local.query_text(
        "SELECT 'w', pid::text, backend_start::text || ' ' || coalesce(xact_start::text, '') FROM pg_stat_activity WHERE wait_event = 'SyncRep' \
         UNION ALL SELECT 'm', application_name, coalesce(reply_time::text, '') || ' ' || coalesce(flush_lsn::text, '') FROM pg_stat_replication WHERE sync_state IN ('sync', 'quorum') \
         UNION ALL SELECT 's', current_setting('synchronous_standby_names'), (NOT pg_is_in_recovery())::text \
         UNION ALL SELECT 'p', CASE WHEN pg_is_in_recovery() THEN (SELECT received_tli::text FROM pg_stat_wal_receiver) ELSE (SELECT timeline_id::text FROM pg_control_checkpoint()) END, \
           CASE WHEN pg_is_in_recovery() THEN coalesce(pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')::bigint::text, '') || ' ' || \
             coalesce((SELECT greatest(0, pg_wal_lsn_diff(latest_end_lsn, pg_last_wal_replay_lsn()))::bigint::text FROM pg_stat_wal_receiver WHERE status = 'streaming'), '') \
           ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint::text || ' ' END \
         UNION ALL SELECT 'f', coalesce((SELECT pid::text FROM pg_stat_activity WHERE backend_type = 'walreceiver' LIMIT 1), ''), \
           coalesce((SELECT wait_event FROM pg_stat_activity WHERE backend_type = 'walreceiver' LIMIT 1), '') WHERE pg_is_in_recovery() \
         UNION ALL SELECT 'l', slot_name::text, slot_type || ' ' || active::text || ' ' || coalesce(to_jsonb(s) ->> 'wal_status', '-') || ' ' || \
           coalesce(greatest(0, pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END, restart_lsn))::bigint::text, '-') \
           || ' ' || coalesce(to_jsonb(s) ->> 'safe_wal_size', '-') FROM pg_replication_slots s \
         UNION ALL SELECT 'r', application_name, sync_state || ' ' || coalesce(greatest(0, pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn))::bigint::text, '') || ' ' || coalesce(extract(epoch FROM replay_lag)::text, '') FROM pg_stat_replication WHERE NOT pg_is_in_recovery()",
        QUERY_TIMEOUT,
    )?;
    let mut seen = Seen { k: 0, waiters: Vec::new(), members: Vec::new(), view: PgView::default(), receiver: super::follow::Receiver::Running };
    for r in rows {
        let col = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
        match col(0).as_str() {
            "w" => {
                if let Ok(pid) = col(1).parse() {
                    seen.waiters.push(Waiter { pid, xact: col(2) });
                }
            }
            "m" => seen.members.push(Member { name: col(1), reply: col(2) }),
            "s" => {
                seen.k = super::guard::required_acks(&col(1));
                seen.view.writable = col(2) == "true";
                seen.view.synchronous = !col(1).trim().is_empty();
            }
            "p" => {
                seen.view.timeline = col(1).trim().parse().ok();
                let pos = col(2);
                let mut it = pos.split(' ');
                seen.view.lsn = it.next().and_then(|v| v.parse().ok());
                seen.view.lag_bytes = it.next().and_then(|v| v.parse().ok());
            }
            "l" => {
                let rest = col(2);
                let f: Vec<&str> = rest.split(' ').collect();
                let get = |i: usize| f.get(i).copied().filter(|v| *v != "-");
                seen.view.slots.push(super::role::SlotView {
                    name: col(1),
                    kind: get(0).unwrap_or_default().to_owned(),
                    active: get(1) == Some("true"),
                    wal_status: get(2).unwrap_or_default().to_owned(),
                    retained: get(3).and_then(|v| v.parse().ok()),
                    safe: get(4).and_then(|v| v.parse().ok()),
                });
            }
            "f" => {
                use super::follow::Receiver;
                seen.receiver = match col(1).parse() {
                    Err(_) => Receiver::None,
                    Ok(pid) if col(2).eq_ignore_ascii_case(super::follow::CONNECT_WAIT_EVENT) => Receiver::Connecting(pid),
                    Ok(_) => Receiver::Running,
                };
            }
            "r" => {
                let rest = col(2);
                let mut it = rest.split(' ');
                let sync_state = it.next().unwrap_or_default().to_owned();
                let lag_bytes = it.next().and_then(|v| v.parse().ok()).unwrap_or(0);
                let lag_seconds = it.next().and_then(|v| v.parse().ok());
                seen.view.standbys.push(Standby { name: col(1), sync_state, lag_bytes, lag_seconds });
            }
            _ => {}
        }
    }
    seen.view.up = true;
    seen.view.streaming = !seen.view.writable && seen.view.lag_bytes.is_some();
    Ok(seen)
}

/// When timeline `tl` began: the modification time of its history file, which the
/// promotion wrote (and a standby received). None on timeline 1, which has no history.
fn timeline_began(local: &Local, tl: u32) -> Option<i64> {
    if tl <= 1 {
        return None;
    }
    let file = format!("pg_wal/{tl:08X}.history");
    let sql = "SELECT extract(epoch FROM modification)::bigint::text FROM pg_stat_file($1, true)";
    local.query_text_with(sql, &[&file], QUERY_TIMEOUT).ok()?.first()?.first()?.as_ref()?.parse().ok()
}

/// The cluster's view: is the resource promoted here, is the partition quorate (and, every
/// tenth look, this node's promotion score). An error leaves the view to go stale, which
/// answers "no": the service never vouches for what it could not see.
fn look_at_cluster(s: &Settings, me: &str, with_score: bool, previous: &ClusterView) -> Result<ClusterView, OcfError> {
    use crate::pacemaker::{attrs, nodes, resource};
    let located = resource::locate(&s.resource)?;
    let promoted_here = located.iter().any(|l| l.promoted && l.node == me);
    let active_here = located.iter().any(|l| l.node == me);
    let quorate = nodes::quorate(QUERY_TIMEOUT)?;
    let score =
        if with_score { attrs::permanent(&format!("master-{}", s.resource), me).ok().flatten().and_then(|v| v.trim().parse().ok()) } else { previous.score };
    Ok(ClusterView { promoted_here, active_here, quorate, score })
}

/// Keep the snapshot's cluster view current, from a thread of its own (the tools take a
/// few milliseconds each; the PostgreSQL poll must not wait for them).
fn spawn_cluster_watch(s: &Settings, snap: Arc<RwLock<Snapshot>>) -> Result<(), OcfError> {
    let s = s.clone();
    std::thread::Builder::new()
        .name("paceline-cluster".into())
        .spawn(move || {
            let mut me = s.node.clone();
            let mut n: u64 = 0;
            let mut failing = false;
            while !STOP.load(Ordering::SeqCst) {
                if me.is_none() {
                    me = crate::pacemaker::nodes::local_name().ok();
                }
                if let Some(me) = &me {
                    let previous = snap.read().unwrap_or_else(|e| e.into_inner()).cluster.clone();
                    match look_at_cluster(&s, me, n.is_multiple_of(10), &previous) {
                        Ok(view) => {
                            if failing {
                                ocf_info!("the cluster's view is back");
                                failing = false;
                            }
                            let mut w = snap.write().unwrap_or_else(|e| e.into_inner());
                            w.cluster = view;
                            w.cluster_at = Some(Instant::now());
                        }
                        Err(e) if !failing => {
                            ocf_warn!("cannot see the cluster ({}): routing checks answer no until it is back", e.reason);
                            failing = true;
                        }
                        Err(_) => {}
                    }
                }
                n += 1;
                std::thread::sleep(CLUSTER_POLL);
            }
        })
        .map(|_| ())
        .map_err(|e| OcfError::generic(format!("cannot start the cluster watch: {e}")))
}

/// Raise the limit on open descriptors to what the routing checks' limits need
/// ([`http::NOFILE`]), while still root: the soft limit a service gets is 1024 (systemd's,
/// Pacemaker's), fewer than the connection pool, and a service out of descriptors can take
/// no connection, open no pipe to Pacemaker's tools (its cluster view goes stale: every
/// answer "no") and lose PostgreSQL. Raising the hard limit needs root; without root the
/// soft limit goes up to the hard one, and what is missing is logged, not fatal.
fn raise_nofile() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let need = http::NOFILE;
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else { return };
    if soft >= need {
        return;
    }
    let wanted = (need, hard.max(need));
    let got = setrlimit(Resource::RLIMIT_NOFILE, wanted.0, wanted.1).map(|()| wanted).or_else(|_| {
        let partial = (need.min(hard), hard);
        setrlimit(Resource::RLIMIT_NOFILE, partial.0, partial.1).map(|()| partial)
    });
    match got {
        Ok((s, _)) if s >= need => ocf_debug!("open descriptors: limit raised from {soft} to {s}"),
        Ok((s, _)) => ocf_warn!("open descriptors: limit {s} (hard limit {hard}), below the {need} the routing checks' limits need"),
        Err(e) => ocf_warn!("cannot raise the open descriptors' limit ({soft}) to {need}: {e}"),
    }
}

/// Give up root for `s.who` (when running as root), keeping the haclient group if the
/// node has one.
fn drop_root(s: &Settings) -> Result<(), OcfError> {
    let Some(who) = s.who.filter(|_| nix::unistd::geteuid().is_root()) else { return Ok(()) };
    let haclient: Vec<nix::unistd::Gid> = crate::pg::identity::group_id("haclient").into_iter().collect();
    crate::ocf::log::hold_open();
    crate::pg::identity::drop_for_good(who, &haclient).map_err(|e| OcfError::generic(format!("cannot drop root for {}: {e}", s.user)))?;
    ocf_info!("running as {} (uid {}){}", s.user, who.uid, if haclient.is_empty() { "" } else { " with the haclient group" });
    Ok(())
}

/// Run until SIGTERM. Never returns an error for PostgreSQL being down: it waits for it.
pub fn serve(s: &Settings) -> Result<(), OcfError> {
    handle_signals()?;
    let snap = Arc::new(RwLock::new(Snapshot::default()));
    let _ = http::HISTORY_OF.set(s.resource.clone());
    if s.endpoints.http.is_some() || s.endpoints.tcp.is_some() {
        raise_nofile();
        http::spawn(&s.endpoints, snap.clone())?;
    }
    // Crash reports need root (the controller refuses crm_resource --fail from other
    // accounts): their reporter is started first, and keeps it (crash.rs says what for).
    let reporter = if s.crash_reports && s.who.is_some() && nix::unistd::geteuid().is_root() { Some(super::crash::Reporter::spawn()?) } else { None };
    // Its ports bound (and its descriptors' limit raised), a network daemon has no use for
    // root: it becomes system_user (which connects by peer authentication as itself) with
    // the haclient group (Pacemaker's tools: the cluster's view). Refused to run on as root
    // if that fails.
    drop_root(s)?;
    if s.endpoints.http.is_some() || s.endpoints.tcp.is_some() {
        spawn_cluster_watch(s, snap.clone())?;
    }
    if s.crash_reports {
        // With the routing checks on, the cluster watch already knows whether the resource
        // is active here: the report need not ask again (one tool run less, ~50 ms).
        let known = (s.endpoints.http.is_some() || s.endpoints.tcp.is_some()).then(|| snap.clone());
        super::crash::spawn(super::crash::Watch::new(&s.socket_dir, s.port, &s.resource, s.node.clone(), known), reporter, &STOP)?;
    }
    let set_pg = |view: PgView| {
        let mut w = snap.write().unwrap_or_else(|e| e.into_inner());
        w.pg = view;
        w.pg_at = Some(Instant::now());
    };
    let mut guard = Guard::new(s.sync_wait_limit);
    let mut local: Option<Local> = None;
    let mut down_since: Option<Instant> = Some(Instant::now());
    let mut timeline: (Option<u32>, Option<i64>) = (None, None);
    // While routing checks are served: a demote waits for the load balancers to hear it.
    let _serving = (s.endpoints.http.is_some() || s.endpoints.tcp.is_some()).then(|| super::demoting::serving(s.port));
    let mut demote_seen: Option<Instant> = None;
    let mut follow = super::follow::Follow::default();
    let mut answering_primary = false;
    ocf_info!(
        "state service running (synchronous-commit guard: {})",
        if s.sync_wait_limit.is_zero() { "off".to_string() } else { format!("{:?}", s.sync_wait_limit) }
    );
    while !STOP.load(Ordering::SeqCst) {
        let Some(l) = local.as_ref() else {
            match Local::connect_named(&s.socket_dir, s.port, &s.user, s.who, Duration::from_secs(2), "paceline-state") {
                Ok(l) => {
                    if down_since.take().is_some() {
                        ocf_info!("connected to PostgreSQL");
                    }
                    local = Some(l);
                }
                Err(e) => {
                    ocf_debug!("PostgreSQL not reachable: {}", e.message());
                    // Seen down: an answer ("not running here"), not a stale view.
                    set_pg(PgView::default());
                    std::thread::sleep(RECONNECT);
                }
            }
            continue;
        };
        match look(l) {
            Ok(mut seen) => {
                // The promotion time changes only with the timeline: asked once per timeline.
                if seen.view.timeline != timeline.0 {
                    timeline = (seen.view.timeline, seen.view.timeline.and_then(|tl| timeline_began(l, tl)));
                }
                seen.view.promoted_at = timeline.1;
                seen.view.demoting = seen.view.writable && super::demoting::under_way(s.port);
                let demoting = seen.view.demoting;
                if seen.view.writable {
                    for pid in guard.observe(Instant::now(), &seen.waiters, &seen.members, seen.k) {
                        end_session(l, pid, s.sync_wait_limit);
                    }
                } else {
                    guard = Guard::new(s.sync_wait_limit);
                }
                if seen.view.streaming {
                    follow.streaming();
                }
                let receiver = if s.instant_reconnect { seen.receiver } else { super::follow::Receiver::Running };
                match follow.step(Instant::now(), receiver, || primary_targets(l), super::follow::accepts) {
                    super::follow::Act::Nothing => {}
                    super::follow::Act::Nudge => nudge(l),
                    super::follow::Act::EndStuck(pid) => end_stuck_receiver(l, pid),
                }
                set_pg(seen.view);
                // The moment this service starts answering "primary": the incident record's
                // routing step (the load balancers move the writes on their next check).
                let answering = snap.read().unwrap_or_else(|e| e.into_inner()).is_primary(Instant::now());
                if answering && !answering_primary {
                    publish_routing(&s.resource);
                }
                answering_primary = answering;
                // From now on every answer is "no": tell the demote once all have heard one.
                if demoting {
                    super::demoting::tell_if_all_told(s.port, *demote_seen.get_or_insert_with(Instant::now));
                } else {
                    demote_seen = None;
                }
            }
            Err(e) => {
                ocf_warn!("lost the connection to PostgreSQL: {}", e.reason);
                set_pg(PgView::default());
                local = None;
                down_since = Some(Instant::now());
                continue;
            }
        }
        std::thread::sleep(POLL);
    }
    ocf_info!("state service stopping (SIGTERM)");
    Ok(())
}

/// Publish, in a thread (a tool run must not hold the poll), when this service began
/// answering "primary" ([`crate::history::routing_attribute`]; best effort).
fn publish_routing(resource: &str) {
    let (name, at) = (crate::history::routing_attribute(resource), crate::history::now_ms().to_string());
    std::thread::spawn(move || {
        if let Err(e) = crate::pacemaker::attrs::publish(&name, &at) {
            ocf_debug!("the routing step's time is not published: {}", e.reason);
        }
    });
}

/// Where this standby streams from ([`super::follow::targets`]); nothing when it cannot be
/// read.
fn primary_targets(local: &Local) -> Vec<std::net::SocketAddr> {
    match local.query_one::<String>("SELECT current_setting('primary_conninfo')", QUERY_TIMEOUT) {
        Ok(c) => super::follow::targets(&c),
        Err(e) => {
            ocf_debug!("cannot read primary_conninfo: {}", e.reason);
            Vec::new()
        }
    }
}

/// Wake the standby's startup process (its SIGHUP handler ends the retry wait).
fn nudge(local: &Local) {
    match local.query_one::<bool>("SELECT pg_reload_conf()", QUERY_TIMEOUT) {
        Ok(_) => ocf_info!("the primary this standby streams from answers: waking its retry now (pg_reload_conf), not after wal_retrieve_retry_interval"),
        Err(e) => ocf_warn!("cannot wake the standby's retry: {}", e.reason),
    }
}

/// End a walreceiver whose connection attempt hangs ([`super::follow::STUCK_CONNECT`]),
/// if it is still that one and still connecting once a pidfd holds it.
fn end_stuck_receiver(local: &Local, pid: i32) {
    let still = || {
        local
            .query_one_with::<bool>(
                "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE backend_type = 'walreceiver' AND pid = $1 AND lower(wait_event) = $2)",
                &[&pid, &super::follow::CONNECT_WAIT_EVENT],
                QUERY_TIMEOUT,
            )
            .unwrap_or(false)
    };
    match super::follow::signal_checked(pid, nix::sys::signal::Signal::SIGTERM, still) {
        Ok(true) => ocf_warn!(
            "ended the walreceiver (pid {pid}): its connection attempt hung for {:?} (PostgreSQL's walreceiver ignores connect_timeout); the standby tries again",
            super::follow::STUCK_CONNECT
        ),
        Ok(false) => ocf_debug!("the walreceiver {pid} got through meanwhile"),
        Err(e) => ocf_warn!("cannot end the stuck walreceiver (pid {pid}): {e}"),
    }
}

fn end_session(local: &Local, pid: i32, limit: Duration) {
    match local.query_one_with::<bool>("SELECT pg_terminate_backend($1)", &[&pid], QUERY_TIMEOUT) {
        Ok(true) => ocf_warn!(
            "ended session {pid}: its commit waited {limit:?} for synchronous standbys that do not answer; its client gets an error, not a success a cancel would give (the commit is not acknowledged)"
        ),
        Ok(false) => ocf_debug!("session {pid} was gone already"),
        Err(e) => ocf_warn!("cannot end session {pid}: {}", e.reason),
    }
}
