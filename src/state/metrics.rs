//! Every metric the state service exposes on `/metrics`, written once.
//!
//! Why a table: the names are an interface. Dashboards and alert rules are written against
//! them, and two pages document them (docs/state-service.md, docs/pgsql-state.md). When each
//! renderer wrote its own `# HELP`/`# TYPE` lines, a metric could be added to the output and
//! to one page but not the other, and nothing noticed. Now the renderers ([`super::role`],
//! [`super::http`], [`super::demoting`]) take a metric's name, type and help from here only,
//! a test renders every one of them and compares the output with [`ALL`], and another
//! compares [`ALL`] with both pages' lists.

use std::fmt::{Display, Write as _};

/// The Prometheus type of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    Gauge,
    Counter,
}

impl Type {
    pub fn as_str(self) -> &'static str {
        match self {
            Type::Gauge => "gauge",
            Type::Counter => "counter",
        }
    }
}

/// One metric: its full name, type, label names (in the order they are written) and the
/// one-line help of its `# HELP` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metric {
    pub name: &'static str,
    pub kind: Type,
    pub labels: &'static [&'static str],
    pub help: &'static str,
}

impl Metric {
    const fn gauge(name: &'static str, help: &'static str) -> Metric {
        Metric { name, kind: Type::Gauge, labels: &[], help }
    }
    const fn counter(name: &'static str, help: &'static str) -> Metric {
        Metric { name, kind: Type::Counter, labels: &[], help }
    }
    const fn labelled(self, labels: &'static [&'static str]) -> Metric {
        Metric { labels, ..self }
    }

    /// Its `# HELP` and `# TYPE` lines.
    pub fn header(&self, m: &mut String) {
        let _ = writeln!(m, "# HELP {} {}\n# TYPE {} {}", self.name, self.help, self.name, self.kind.as_str());
    }

    /// Its header and its one sample, for a metric without labels.
    pub fn write(&self, m: &mut String, value: impl Display) {
        self.header(m);
        let _ = writeln!(m, "{} {value}", self.name);
    }

    /// One sample with these label values (already escaped), in [`Metric::labels`]' order.
    pub fn sample(&self, m: &mut String, values: &[&str], value: impl Display) {
        let _ = write!(m, "{}{{", self.name);
        for (i, (l, v)) in self.labels.iter().zip(values).enumerate() {
            let _ = write!(m, "{}{l}=\"{v}\"", if i == 0 { "" } else { "," });
        }
        let _ = writeln!(m, "}} {value}");
    }
}

// PostgreSQL's view (src/state/role.rs).
pub const POSTGRES_UP: Metric = Metric::gauge("paceline_postgres_up", "PostgreSQL answers the state service on this node.");
pub const POSTGRES_PRIMARY: Metric = Metric::gauge("paceline_postgres_primary", "PostgreSQL here is writable (not in recovery).");
pub const POSTGRES_STREAMING: Metric = Metric::gauge("paceline_postgres_streaming", "PostgreSQL here is a standby whose WAL receiver streams.");
pub const POSTGRES_TIMELINE: Metric = Metric::gauge("paceline_postgres_timeline", "The timeline PostgreSQL is on here.");
pub const POSTGRES_WAL_LSN_BYTES: Metric =
    Metric::gauge("paceline_postgres_wal_lsn_bytes", "Current WAL position (primary) or last replayed (standby), in bytes.");
pub const POSTGRES_REPLICATION_LAG_BYTES: Metric =
    Metric::gauge("paceline_postgres_replication_lag_bytes", "Standby: bytes the primary reported beyond what is replayed here.");
pub const POSTGRES_SYNCHRONOUS: Metric = Metric::gauge("paceline_postgres_synchronous", "synchronous_standby_names is set on this node.");
pub const STANDBY_LAG_BYTES: Metric =
    Metric::gauge("paceline_standby_lag_bytes", "Primary: bytes each standby has not replayed yet.").labelled(&["application_name", "sync_state"]);
pub const STANDBY_LAG_SECONDS: Metric =
    Metric::gauge("paceline_standby_lag_seconds", "Primary: each standby's replay lag (pg_stat_replication.replay_lag; 0 when idle).")
        .labelled(&["application_name", "sync_state"]);
pub const SLOT_RETAINED_BYTES: Metric =
    Metric::gauge("paceline_slot_retained_bytes", "Each replication slot: WAL it holds here (current position minus restart_lsn).")
        .labelled(&["slot", "slot_type"]);
pub const SLOT_ACTIVE: Metric = Metric::gauge("paceline_slot_active", "Each replication slot: a client uses it now.").labelled(&["slot", "slot_type"]);
pub const SLOT_INVALIDATED: Metric =
    Metric::gauge("paceline_slot_invalidated", "Each replication slot: its WAL was removed (wal_status lost): its client cannot resume.")
        .labelled(&["slot", "slot_type"]);
pub const SLOT_SAFE_WAL_BYTES: Metric = Metric::gauge(
    "paceline_slot_safe_wal_bytes",
    "Each replication slot: WAL that can still be written before it loses what it holds (max_slot_wal_keep_size; NaN when unbounded).",
)
.labelled(&["slot", "slot_type"]);
pub const LAST_FAILOVER_TIMESTAMP_SECONDS: Metric =
    Metric::gauge("paceline_last_failover_timestamp_seconds", "When the current timeline began: the last promotion (Unix time; NaN on timeline 1).");

// The cluster's view and the answer (src/state/role.rs).
pub const CLUSTER_PROMOTED_HERE: Metric = Metric::gauge("paceline_cluster_promoted_here", "Pacemaker has the PostgreSQL resource promoted on this node.");
pub const CLUSTER_QUORATE: Metric = Metric::gauge("paceline_cluster_quorate", "This node's partition has quorum.");
pub const CLUSTER_PROMOTION_SCORE: Metric = Metric::gauge("paceline_cluster_promotion_score", "This node's promotion score (master-<resource>).");
pub const ROUTING_PRIMARY: Metric = Metric::gauge("paceline_routing_primary", "This node answers primary to routing checks.");
pub const CRASH_REPORTS_TOTAL: Metric = Metric::counter("paceline_crash_reports_total", "Crashed postmasters reported to Pacemaker by this service.");

// The service itself: its views' age (src/state/role.rs), its connections (src/state/http.rs),
// the peers a demote waits for (src/state/demoting.rs).
pub const STATE_POSTGRES_AGE_SECONDS: Metric = Metric::gauge("paceline_state_postgres_age_seconds", "Age of the PostgreSQL view the answers come from.");
pub const STATE_CLUSTER_AGE_SECONDS: Metric = Metric::gauge("paceline_state_cluster_age_seconds", "Age of the cluster view the answers come from.");
pub const STATE_CONNECTIONS: Metric = Metric::gauge("paceline_state_connections", "Routing-check connections served now.");
pub const STATE_CLIENTS: Metric = Metric::gauge("paceline_state_clients", "Clients (IPv4 addresses, IPv6 /64s) holding them.");
pub const STATE_CONNECTIONS_REFUSED_TOTAL: Metric =
    Metric::counter("paceline_state_connections_refused_total", "Connections closed unanswered, by reason.").labelled(&["reason"]);
pub const STATE_CONNECTIONS_EVICTED_TOTAL: Metric =
    Metric::counter("paceline_state_connections_evicted_total", "Connections closed to make room for a client holding fewer.");
/// Its help names [`super::demoting::MAX_PEERS`] (a test holds them equal).
pub const STATE_CHECKERS: Metric =
    Metric::gauge("paceline_state_checkers", "Peers remembered as asking for the primary (a demote waits for them), at most 256.");
pub const STATE_CHECKERS_NOT_RECORDED_TOTAL: Metric =
    Metric::counter("paceline_state_checkers_not_recorded_total", "Primary checks from a new peer not recorded: 256 peers were asking.");

// The incident records this node keeps (src/state/http.rs, from src/history).
pub const HISTORY_RECORDS: Metric =
    Metric::gauge("paceline_history_records", "Changes of primary this node keeps a record of (paceline history), by kind; the newest 200.")
        .labelled(&["kind"]);
pub const LAST_CHANGE_OUTAGE_SECONDS: Metric =
    Metric::gauge("paceline_last_change_outage_seconds", "The newest recorded change of primary: how long writes were down (NaN: none, or not known).");
pub const LAST_CHANGE_TIMESTAMP_SECONDS: Metric = Metric::gauge(
    "paceline_last_change_timestamp_seconds",
    "The newest recorded change of primary: when the new primary first accepted writes (Unix time; NaN: none).",
);

/// Every metric, in the order `/metrics` writes them.
pub const ALL: &[Metric] = &[
    POSTGRES_UP,
    POSTGRES_PRIMARY,
    POSTGRES_STREAMING,
    POSTGRES_TIMELINE,
    POSTGRES_WAL_LSN_BYTES,
    POSTGRES_REPLICATION_LAG_BYTES,
    POSTGRES_SYNCHRONOUS,
    CLUSTER_PROMOTED_HERE,
    CLUSTER_QUORATE,
    CLUSTER_PROMOTION_SCORE,
    ROUTING_PRIMARY,
    LAST_FAILOVER_TIMESTAMP_SECONDS,
    STATE_POSTGRES_AGE_SECONDS,
    STATE_CLUSTER_AGE_SECONDS,
    CRASH_REPORTS_TOTAL,
    STANDBY_LAG_BYTES,
    STANDBY_LAG_SECONDS,
    SLOT_RETAINED_BYTES,
    SLOT_ACTIVE,
    SLOT_INVALIDATED,
    SLOT_SAFE_WAL_BYTES,
    STATE_CONNECTIONS,
    STATE_CLIENTS,
    STATE_CONNECTIONS_REFUSED_TOTAL,
    STATE_CONNECTIONS_EVICTED_TOTAL,
    STATE_CHECKERS,
    STATE_CHECKERS_NOT_RECORDED_TOTAL,
    HISTORY_RECORDS,
    LAST_CHANGE_OUTAGE_SECONDS,
    LAST_CHANGE_TIMESTAMP_SECONDS,
];

/// The metrics a documentation page names between `<!-- metrics -->` and `<!-- /metrics -->`,
/// each as written there: `name` or `name{label,label}`. Every `paceline_` word of the block
/// counts (so a stale name is seen as one).
pub fn documented(doc: &str) -> Result<Vec<String>, String> {
    let open = "<!-- metrics -->";
    let start = doc.find(open).ok_or("no <!-- metrics --> marker")? + open.len();
    let end = doc[start..].find("<!-- /metrics -->").ok_or("no <!-- /metrics --> marker")? + start;
    Ok(names_in(&doc[start..end]))
}

/// The `paceline_…` words of `text` (a word starts after a character that cannot be part of
/// one, so `ocf_paceline_pgsql-state` is none), each with its `{labels}` if one follows.
pub fn names_in(text: &str) -> Vec<String> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("paceline_") {
        let before = rest[..i].chars().next_back();
        let tail = &rest[i..];
        let len = tail.find(|c: char| !(c.is_ascii_lowercase() || c == '_')).unwrap_or(tail.len());
        let mut name = tail[..len].to_owned();
        if let Some(labels) = tail[len..].strip_prefix('{').and_then(|t| t.split_once('}')).map(|(l, _)| l) {
            name = format!("{name}{{{labels}}}");
        }
        if !before.is_some_and(word) {
            out.push(name);
        }
        rest = &tail[len..];
    }
    out
}

/// How a page must write `m`: its name, with its labels in braces if it has any.
pub fn as_documented(m: &Metric) -> String {
    if m.labels.is_empty() {
        m.name.to_owned()
    } else {
        format!("{}{{{}}}", m.name, m.labels.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn names_are_unique_and_prometheus_names() {
        for (i, m) in ALL.iter().enumerate() {
            assert!(ALL[..i].iter().all(|o| o.name != m.name), "{} twice", m.name);
            assert!(m.name.starts_with("paceline_") && m.name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{}", m.name);
            assert_eq!(m.name.ends_with("_total"), m.kind == Type::Counter, "{}: counters, and only they, end in _total", m.name);
            assert!(!m.help.contains('\n') && !m.help.is_empty(), "{}", m.name);
        }
        let peers = super::super::demoting::MAX_PEERS.to_string();
        assert!(STATE_CHECKERS.help.contains(&peers) && STATE_CHECKERS_NOT_RECORDED_TOTAL.help.contains(&peers));
    }

    #[test]
    fn words_are_found_with_their_labels() {
        let t = "`paceline_a`, (paceline_b_total) `paceline_c{x,y}` ocf_paceline_pgsql-state /x/paceline_d";
        assert_eq!(names_in(t), ["paceline_a", "paceline_b_total", "paceline_c{x,y}", "paceline_d"]);
        assert_eq!(as_documented(&STANDBY_LAG_BYTES), "paceline_standby_lag_bytes{application_name,sync_state}");
        assert!(documented("no markers").is_err());
    }

    /// crm-examples/prometheus-alerts.yml alerts on metrics /metrics writes, and each label
    /// a rule shows (`$labels.x`) is `job`, `instance` or one of its metrics' labels.
    #[test]
    fn the_shipped_alert_rules_name_emitted_metrics() {
        let path = format!("{}/crm-examples/prometheus-alerts.yml", env!("CARGO_MANIFEST_DIR"));
        let rules = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let mut alerts = 0;
        for rule in rules.split("- alert: ").skip(1) {
            alerts += 1;
            let name = rule.lines().next().unwrap_or_default();
            let used: Vec<&Metric> = names_in(rule)
                .iter()
                .map(|n| ALL.iter().find(|m| m.name == n.as_str()).unwrap_or_else(|| panic!("alert {name} names {n}, which /metrics does not emit")))
                .collect();
            assert!(!used.is_empty(), "alert {name} names no metric");
            for part in rule.split("$labels.").skip(1) {
                let label: String = part.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                assert!(
                    label == "job" || label == "instance" || used.iter().any(|m| m.labels.contains(&label.as_str())),
                    "alert {name} shows $labels.{label}, which none of its metrics has"
                );
            }
        }
        assert!(alerts >= 10, "{alerts} alerts");
    }

    /// Both pages list every metric, with its labels, and no other; anywhere else on them a
    /// `paceline_` name is one of these. docs/state-service.md's table also says which are
    /// counters.
    #[test]
    fn both_pages_list_exactly_these_metrics() {
        let want: BTreeSet<String> = ALL.iter().map(as_documented).collect();
        let bare: BTreeSet<&str> = ALL.iter().map(|m| m.name).collect();
        for page in ["docs/state-service.md", "docs/pgsql-state.md"] {
            let path = format!("{}/{page}", env!("CARGO_MANIFEST_DIR"));
            let doc = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            let listed = documented(&doc).unwrap_or_else(|e| panic!("{page}: {e}"));
            let got: BTreeSet<String> = listed.iter().cloned().collect();
            assert_eq!(got.len(), listed.len(), "{page}: a metric listed twice: {listed:?}");
            let missing: Vec<&String> = want.difference(&got).collect();
            let unknown: Vec<&String> = got.difference(&want).collect();
            assert!(
                missing.is_empty() && unknown.is_empty(),
                "{page}'s metric list disagrees with src/state/metrics.rs: missing {missing:?}, not emitted {unknown:?}"
            );
            for name in names_in(&doc) {
                let bare_name = name.split('{').next().unwrap_or_default();
                assert!(bare.contains(bare_name), "{page} names {name}, which /metrics does not emit");
            }
        }
        let doc = std::fs::read_to_string(format!("{}/docs/state-service.md", env!("CARGO_MANIFEST_DIR"))).unwrap_or_default();
        let block = &doc[doc.find("<!-- metrics -->").unwrap_or(0)..];
        for row in block.lines().take_while(|l| !l.starts_with("<!-- /metrics -->")).filter(|l| l.starts_with("| `paceline_")) {
            let first = row.split('|').nth(1).unwrap_or_default();
            for name in names_in(first) {
                let m = ALL.iter().find(|m| name.split('{').next() == Some(m.name));
                let counter = m.is_some_and(|m| m.kind == Type::Counter);
                assert_eq!(first.contains("(counter)"), counter, "docs/state-service.md: {row}");
            }
        }
    }
}
