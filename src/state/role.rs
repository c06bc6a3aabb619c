//! What this node answers to a routing check, from PostgreSQL's view *and* the cluster's.
//!
//! A load balancer (HAProxy's `httpchk`/`tcp-check`) sends writes to whichever node says
//! "primary". Saying it wrongly sends writes to a node that will lose them, so the answer
//! is "primary" only when all of these hold, as seen no longer ago than [`STALE`]:
//!
//! * PostgreSQL answers here and is writable (not in recovery);
//! * Pacemaker has the pgsqlms resource promoted **on this node** — a primary that
//!   Pacemaker is demoting (pgsqlms marks its demote for the service from its first step:
//!   [`super::demoting`]), or one started outside its control, is not the primary;
//! * this node's partition is quorate — a primary cut off from the majority is about to be
//!   fenced, and its writes are the ones that would be lost.
//!
//! During a switchover the old primary stops being writable (demote shuts it down) before
//! Pacemaker records the new one promoted, so no two nodes say "primary" at once. "replica"
//! is a streaming standby (optionally within a lag bound). Anything unknown — PostgreSQL or
//! the cluster not seen recently — answers no to everything but `/liveness`: a check that
//! cannot be vouched for is a "no".

use std::time::{Duration, Instant};

/// The oldest a view may be for an answer; older is "unknown". Both views are refreshed
/// every 50 ms (PostgreSQL) and 200 ms (cluster), so an answer reflects state at most this
/// old (the documented bound is the refresh period plus one tool run: ≤ 250 ms normally).
pub const STALE: Duration = Duration::from_secs(1);

/// PostgreSQL's own view, from the service's poll.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PgView {
    /// Connected and answering.
    pub up: bool,
    /// `NOT pg_is_in_recovery()`.
    pub writable: bool,
    /// A standby whose WAL receiver is streaming.
    pub streaming: bool,
    pub timeline: Option<u32>,
    /// The primary's current WAL position, or the standby's last replayed one (bytes).
    pub lsn: Option<u64>,
    /// Standby: bytes between what the primary last reported and what is replayed here.
    pub lag_bytes: Option<u64>,
    /// Primary: each standby as `pg_stat_replication` shows it.
    pub standbys: Vec<Standby>,
    /// `synchronous_standby_names` is set (synchronous replication in force).
    pub synchronous: bool,
    /// When the current timeline began — the last promotion (failover or switchover), as
    /// the timeline's history file records it (Unix seconds; None on timeline 1).
    pub promoted_at: Option<i64>,
    /// pgsqlms is demoting this instance ([`super::demoting`]): not the primary any more.
    pub demoting: bool,
    /// Its replication slots (`pg_replication_slots`).
    pub slots: Vec<SlotView>,
}

/// One replication slot of this instance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlotView {
    pub name: String,
    /// `physical` or `logical`.
    pub kind: String,
    pub active: bool,
    /// `wal_status`: reserved, extended, unreserved, lost.
    pub wal_status: String,
    /// WAL it holds here, in bytes (None: no restart_lsn, e.g. never used or lost).
    pub retained: Option<u64>,
    /// `safe_wal_size` (None when max_slot_wal_keep_size is unbounded).
    pub safe: Option<i64>,
}

/// One standby of this primary.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Standby {
    pub name: String,
    /// `sync`, `quorum`, `potential`, `async`.
    pub sync_state: String,
    /// Bytes of WAL it has not replayed yet.
    pub lag_bytes: u64,
    /// `replay_lag`: how long its last replay took to come back (None when idle).
    pub lag_seconds: Option<f64>,
}

/// The cluster's view, from Pacemaker's tools.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterView {
    /// The pgsqlms resource is promoted on this node.
    pub promoted_here: bool,
    /// The pgsqlms resource is active (in any role) on this node.
    pub active_here: bool,
    /// This node's partition has quorum.
    pub quorate: bool,
    /// This node's promotion score, if it has one.
    pub score: Option<i64>,
}

/// Both views, each with when it was taken (None: never).
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub pg: PgView,
    pub pg_at: Option<Instant>,
    pub cluster: ClusterView,
    pub cluster_at: Option<Instant>,
}

fn fresh(at: Option<Instant>, now: Instant) -> bool {
    at.is_some_and(|t| now.saturating_duration_since(t) <= STALE)
}

/// A routing question, as Patroni's REST API names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// `/primary`, `/master`, `/leader`, `/read-write`, `/`.
    Primary,
    /// `/replica`, `/standby`, optionally `?lag=<max>`.
    Replica { max_lag: Option<u64> },
    /// `/read-only`: primary or replica.
    ReadOnly,
    /// `/health`: PostgreSQL is up and answering (any role).
    Health,
    /// `/liveness`: the service itself runs.
    Liveness,
}

impl Snapshot {
    /// Whether this node is the primary the cluster wants written to.
    /// Whether the cluster's view is recent enough to answer from.
    pub fn cluster_fresh(&self, now: Instant) -> bool {
        fresh(self.cluster_at, now)
    }

    pub fn is_primary(&self, now: Instant) -> bool {
        fresh(self.pg_at, now)
            && fresh(self.cluster_at, now)
            && self.pg.up
            && self.pg.writable
            && !self.pg.demoting
            && self.cluster.promoted_here
            && self.cluster.quorate
    }

    /// Whether this node is a streaming standby (within `max_lag` bytes when given).
    pub fn is_replica(&self, now: Instant, max_lag: Option<u64>) -> bool {
        let lag_ok = match max_lag {
            None => true,
            Some(max) => self.pg.lag_bytes.is_some_and(|l| l <= max),
        };
        fresh(self.pg_at, now) && self.pg.up && !self.pg.writable && self.pg.streaming && lag_ok
    }

    /// The answer to `check`: true is HTTP 200, false 503.
    pub fn answer(&self, check: Check, now: Instant) -> bool {
        match check {
            Check::Primary => self.is_primary(now),
            Check::Replica { max_lag } => self.is_replica(now, max_lag),
            Check::ReadOnly => self.is_primary(now) || self.is_replica(now, None),
            Check::Health => fresh(self.pg_at, now) && self.pg.up,
            Check::Liveness => true,
        }
    }

    /// The role word of the seed demo's TCP check (`production` / `standby`).
    pub fn tcp_word(&self, now: Instant) -> &'static str {
        if self.is_primary(now) {
            "production"
        } else {
            "standby"
        }
    }

    /// The role as JSON's `role` field says it (Patroni's names).
    pub fn role(&self, now: Instant) -> &'static str {
        if self.is_primary(now) {
            "primary"
        } else if self.is_replica(now, None) {
            "replica"
        } else if fresh(self.pg_at, now) && self.pg.up {
            if self.pg.writable {
                "demoted"
            } else {
                "starting"
            }
        } else {
            "stopped"
        }
    }

    /// The Prometheus text exposition of both views (names, types and help: [`metrics`]).
    pub fn metrics(&self, now: Instant) -> String {
        use super::metrics as M;
        let mut m = String::new();
        let b = |v: bool| u8::from(v);
        let nan = |v: Option<String>| v.unwrap_or_else(|| "NaN".into());
        let age = |at: Option<Instant>| at.map(|t| now.saturating_duration_since(t).as_secs_f64()).unwrap_or(f64::INFINITY);
        M::POSTGRES_UP.write(&mut m, b(self.pg.up));
        M::POSTGRES_PRIMARY.write(&mut m, b(self.pg.writable));
        M::POSTGRES_STREAMING.write(&mut m, b(self.pg.streaming));
        M::POSTGRES_TIMELINE.write(&mut m, nan(self.pg.timeline.map(|t| t.to_string())));
        M::POSTGRES_WAL_LSN_BYTES.write(&mut m, nan(self.pg.lsn.map(|l| l.to_string())));
        M::POSTGRES_REPLICATION_LAG_BYTES.write(&mut m, nan(self.pg.lag_bytes.map(|l| l.to_string())));
        M::POSTGRES_SYNCHRONOUS.write(&mut m, b(self.pg.synchronous));
        M::CLUSTER_PROMOTED_HERE.write(&mut m, b(self.cluster.promoted_here));
        M::CLUSTER_QUORATE.write(&mut m, b(self.cluster.quorate));
        M::CLUSTER_PROMOTION_SCORE.write(&mut m, nan(self.cluster.score.map(|s| s.to_string())));
        M::ROUTING_PRIMARY.write(&mut m, b(self.is_primary(now)));
        M::LAST_FAILOVER_TIMESTAMP_SECONDS.write(&mut m, nan(self.pg.promoted_at.map(|t| t.to_string())));
        M::STATE_POSTGRES_AGE_SECONDS.write(&mut m, format!("{:.3}", age(self.pg_at)));
        M::STATE_CLUSTER_AGE_SECONDS.write(&mut m, format!("{:.3}", age(self.cluster_at)));
        M::CRASH_REPORTS_TOTAL.write(&mut m, super::crash::REPORTS.load(std::sync::atomic::Ordering::Relaxed));
        if !self.pg.standbys.is_empty() {
            M::STANDBY_LAG_BYTES.header(&mut m);
            for st in &self.pg.standbys {
                M::STANDBY_LAG_BYTES.sample(&mut m, &[&escape(&st.name), &escape(&st.sync_state)], st.lag_bytes);
            }
            M::STANDBY_LAG_SECONDS.header(&mut m);
            for st in &self.pg.standbys {
                M::STANDBY_LAG_SECONDS.sample(&mut m, &[&escape(&st.name), &escape(&st.sync_state)], st.lag_seconds.unwrap_or(0.0));
            }
        }
        if !self.pg.slots.is_empty() {
            let each = |m: &mut String, metric: &M::Metric, v: &dyn Fn(&SlotView) -> String| {
                metric.header(m);
                for sl in &self.pg.slots {
                    metric.sample(m, &[&escape(&sl.name), &escape(&sl.kind)], v(sl));
                }
            };
            each(&mut m, &M::SLOT_RETAINED_BYTES, &|sl| nan(sl.retained.map(|r| r.to_string())));
            each(&mut m, &M::SLOT_ACTIVE, &|sl| b(sl.active).to_string());
            each(&mut m, &M::SLOT_INVALIDATED, &|sl| b(sl.wal_status == "lost").to_string());
            each(&mut m, &M::SLOT_SAFE_WAL_BYTES, &|sl| nan(sl.safe.map(|r| r.to_string())));
        }
        m
    }
}

/// A Prometheus label value: backslash, quote and newline escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The check a request path asks for (Patroni's paths), or None for an unknown one.
pub fn check_for(path: &str, query: Option<&str>) -> Option<Check> {
    let lag = query.and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("lag="))).and_then(parse_lag);
    Some(match path.trim_end_matches('/') {
        "" | "/primary" | "/master" | "/leader" | "/read-write" => Check::Primary,
        "/replica" | "/standby" => Check::Replica { max_lag: lag },
        "/read-only" => Check::ReadOnly,
        "/health" => Check::Health,
        "/liveness" => Check::Liveness,
        _ => return None,
    })
}

/// A lag bound as Patroni takes it: bytes, or with a unit (`16MB`, `1GB`, `512kB`).
pub fn parse_lag(v: &str) -> Option<u64> {
    let v = v.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (n, unit) = v.split_at(split);
    let n: u64 = n.parse().ok()?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1 << 10,
        "mb" => 1 << 20,
        "gb" => 1 << 30,
        "tb" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(pg: PgView, cluster: ClusterView) -> Snapshot {
        let now = Instant::now();
        Snapshot { pg, pg_at: Some(now), cluster, cluster_at: Some(now) }
    }
    fn primary_pg() -> PgView {
        PgView { up: true, writable: true, ..Default::default() }
    }
    fn here() -> ClusterView {
        ClusterView { promoted_here: true, active_here: true, quorate: true, score: Some(1001) }
    }

    #[test]
    fn primary_needs_postgres_and_the_cluster() {
        let now = Instant::now();
        assert!(snap(primary_pg(), here()).answer(Check::Primary, now));
        // Writable but not promoted here (being demoted, or started by hand): no.
        assert!(!snap(primary_pg(), ClusterView { promoted_here: false, ..here() }).answer(Check::Primary, now));
        // Promoted here but the partition lost quorum (about to be fenced): no.
        assert!(!snap(primary_pg(), ClusterView { quorate: false, ..here() }).answer(Check::Primary, now));
        // Promoted here but PostgreSQL not writable yet (promotion under way) or down: no.
        assert!(!snap(PgView { writable: false, ..primary_pg() }, here()).answer(Check::Primary, now));
        assert!(!snap(PgView { up: false, ..primary_pg() }, here()).answer(Check::Primary, now));
        // pgsqlms has begun to demote it (still writable, still promoted for Pacemaker): no.
        assert!(!snap(PgView { demoting: true, ..primary_pg() }, here()).answer(Check::Primary, now));
        assert_eq!(snap(primary_pg(), here()).tcp_word(now), "production");
        assert_eq!(snap(primary_pg(), ClusterView::default()).tcp_word(now), "standby");
    }

    #[test]
    fn stale_views_answer_no() {
        let s = snap(primary_pg(), here());
        let later = Instant::now() + STALE + Duration::from_millis(10);
        assert!(!s.answer(Check::Primary, later));
        assert!(!s.answer(Check::Health, later));
        assert!(s.answer(Check::Liveness, later));
        assert!(!Snapshot::default().answer(Check::ReadOnly, Instant::now()));
    }

    #[test]
    fn replicas_stream_within_the_lag_bound() {
        let now = Instant::now();
        let standby = PgView { up: true, writable: false, streaming: true, lag_bytes: Some(1000), ..Default::default() };
        let s = snap(standby.clone(), ClusterView { quorate: true, ..Default::default() });
        assert!(s.answer(Check::Replica { max_lag: None }, now));
        assert!(s.answer(Check::Replica { max_lag: Some(1000) }, now));
        assert!(!s.answer(Check::Replica { max_lag: Some(999) }, now));
        assert!(s.answer(Check::ReadOnly, now) && !s.answer(Check::Primary, now));
        assert_eq!(s.role(now), "replica");
        // Not streaming (its primary is gone): not a replica to read from.
        let lost = snap(PgView { streaming: false, ..standby }, ClusterView::default());
        assert!(!lost.answer(Check::Replica { max_lag: None }, now) && lost.answer(Check::Health, now));
    }

    #[test]
    fn patroni_paths_and_lag_units() {
        assert_eq!(check_for("/primary", None), Some(Check::Primary));
        assert_eq!(check_for("/", None), Some(Check::Primary));
        assert_eq!(check_for("/master", None), Some(Check::Primary));
        assert_eq!(check_for("/replica", Some("lag=16MB")), Some(Check::Replica { max_lag: Some(16 << 20) }));
        assert_eq!(check_for("/replica", Some("x=1&lag=100")), Some(Check::Replica { max_lag: Some(100) }));
        assert_eq!(check_for("/read-only/", None), Some(Check::ReadOnly));
        assert_eq!(check_for("/nope", None), None);
        assert_eq!(parse_lag("1GB"), Some(1 << 30));
        assert_eq!(parse_lag("12 parsecs"), None);
        assert_eq!(parse_lag("99999999999999999999TB"), None);
    }

    #[test]
    fn metrics_are_prometheus_text() {
        let mut pg = primary_pg();
        pg.standbys = vec![
            Standby { name: "node2".into(), sync_state: "quorum".into(), lag_bytes: 42, lag_seconds: Some(0.25) },
            Standby { name: "a\"b".into(), sync_state: "async".into(), lag_bytes: 0, lag_seconds: None },
        ];
        let m = snap(pg, here()).metrics(Instant::now());
        assert!(m.contains("# TYPE paceline_postgres_up gauge\npaceline_postgres_up 1\n"), "{m}");
        assert!(m.contains("paceline_routing_primary 1\n"));
        assert!(m.contains("paceline_standby_lag_bytes{application_name=\"node2\",sync_state=\"quorum\"} 42\n"));
        assert!(m.contains("paceline_standby_lag_seconds{application_name=\"node2\",sync_state=\"quorum\"} 0.25\n"), "{m}");
        assert!(m.contains("application_name=\"a\\\"b\""));
        assert!(m.contains("paceline_postgres_timeline NaN\n"));
        assert!(m.contains("# TYPE paceline_crash_reports_total counter\npaceline_crash_reports_total "), "{m}");
        assert!(m.contains("paceline_last_failover_timestamp_seconds NaN\n"));
        assert!(!m.contains("paceline_slot_"), "no slot, no slot metric");
        let mut pg = primary_pg();
        pg.slots = vec![
            SlotView { name: "paceline_node3".into(), kind: "physical".into(), active: false, wal_status: "lost".into(), retained: None, safe: None },
            SlotView { name: "cdc".into(), kind: "logical".into(), active: true, wal_status: "extended".into(), retained: Some(1 << 20), safe: Some(-5) },
        ];
        let m = snap(pg, here()).metrics(Instant::now());
        assert!(m.contains("paceline_slot_invalidated{slot=\"paceline_node3\",slot_type=\"physical\"} 1\n"), "{m}");
        assert!(m.contains("paceline_slot_retained_bytes{slot=\"paceline_node3\",slot_type=\"physical\"} NaN\n"), "{m}");
        assert!(m.contains("paceline_slot_retained_bytes{slot=\"cdc\",slot_type=\"logical\"} 1048576\n"), "{m}");
        assert!(m.contains("paceline_slot_safe_wal_bytes{slot=\"cdc\",slot_type=\"logical\"} -5\n"), "{m}");
        assert!(m.contains("paceline_slot_active{slot=\"cdc\",slot_type=\"logical\"} 1\n"), "{m}");
    }

    /// What `/metrics` writes (this snapshot's metrics, then the service's) is exactly
    /// src/state/metrics.rs's table, in its order, each metric's type as the table says and
    /// every sample under its own header.
    #[test]
    fn metrics_are_the_table() {
        let mut pg = primary_pg();
        pg.standbys = vec![Standby { name: "node2".into(), sync_state: "sync".into(), lag_bytes: 1, lag_seconds: None }];
        pg.slots = vec![SlotView {
            name: "paceline_node2".into(),
            kind: "physical".into(),
            active: true,
            wal_status: "reserved".into(),
            retained: Some(5),
            safe: None,
        }];
        let text = snap(pg, here()).metrics(Instant::now()) + &super::super::http::metrics();
        let types: Vec<(&str, &str)> = text.lines().filter_map(|l| l.strip_prefix("# TYPE ")).filter_map(|l| l.split_once(' ')).collect();
        let want: Vec<(&str, &str)> = super::super::metrics::ALL.iter().map(|m| (m.name, m.kind.as_str())).collect();
        assert_eq!(types, want, "{text}");
        let mut current = "";
        for l in text.lines() {
            if let Some(t) = l.strip_prefix("# TYPE ") {
                current = t.split(' ').next().unwrap_or_default();
            } else if !l.starts_with('#') {
                let name = l.split(['{', ' ']).next().unwrap_or_default();
                assert_eq!(name, current, "a sample outside its metric's block: {l}");
            }
        }
    }
}
