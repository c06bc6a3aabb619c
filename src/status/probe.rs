//! PostgreSQL's own view of every node, from the node's state service (`GET /metrics`).
//!
//! Why the state service and not a connection per node: it already keeps PostgreSQL's view
//! current (every 50 ms), needs no credentials or pg_hba rule for the asking node, and
//! answers in well under a millisecond; asking every node at once, with a short bound,
//! keeps `paceline status` within its 100 ms even with a node down.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;

/// How long a node's state service gets to answer.
pub const TIMEOUT: Duration = Duration::from_millis(500);

/// PostgreSQL on one node, as its state service reports it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PgNode {
    pub up: bool,
    pub writable: bool,
    pub streaming: bool,
    pub timeline: Option<u64>,
    pub lsn: Option<u64>,
    /// Standby: bytes the primary reported beyond what is replayed here.
    pub lag_bytes: Option<u64>,
    pub synchronous: bool,
    /// The node answers "primary" to routing checks.
    pub routing_primary: bool,
    pub last_failover: Option<i64>,
    pub crash_reports: u64,
    /// Primary: each standby's (sync_state, bytes, seconds), by application_name.
    pub standbys: BTreeMap<String, (String, u64, f64)>,
    /// Its replication slots, by name.
    pub slots: BTreeMap<String, SlotSample>,
}

/// One replication slot, from the `paceline_slot_*` metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SlotSample {
    /// `physical` or `logical`.
    pub kind: String,
    /// WAL it holds, in bytes (None: none, e.g. lost).
    pub retained: Option<u64>,
    pub active: bool,
    /// Its WAL was removed: its client cannot resume.
    pub invalidated: bool,
}

/// One sample line: `name{labels} value`.
fn sample(line: &str) -> Option<(&str, BTreeMap<&str, &str>, f64)> {
    let (head, value) = line.rsplit_once(' ')?;
    let value: f64 = match value.trim() {
        "NaN" => f64::NAN,
        v => v.parse().ok()?,
    };
    let (name, labels) = match head.split_once('{') {
        None => (head, BTreeMap::new()),
        Some((n, rest)) => {
            let rest = rest.strip_suffix('}')?;
            // Our own labels: application_name (a node name), sync_state, a slot's name and
            // type: no commas inside.
            let labels = rest.split("\",").filter_map(|kv| kv.split_once("=\"")).map(|(k, v)| (k.trim(), v.trim_end_matches('"'))).collect();
            (n, labels)
        }
    };
    Some((name, labels, value))
}

/// Read the state service's Prometheus text.
pub fn parse_metrics(text: &str) -> PgNode {
    let mut n = PgNode::default();
    let some = |v: f64| (!v.is_nan()).then_some(v);
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let Some((name, labels, v)) = sample(line) else { continue };
        match name.strip_prefix("paceline_").unwrap_or_default() {
            "postgres_up" => n.up = v == 1.0,
            "postgres_primary" => n.writable = v == 1.0,
            "postgres_streaming" => n.streaming = v == 1.0,
            "postgres_timeline" => n.timeline = some(v).map(|v| v as u64),
            "postgres_wal_lsn_bytes" => n.lsn = some(v).map(|v| v as u64),
            "postgres_replication_lag_bytes" => n.lag_bytes = some(v).map(|v| v as u64),
            "postgres_synchronous" => n.synchronous = v == 1.0,
            "routing_primary" => n.routing_primary = v == 1.0,
            "last_failover_timestamp_seconds" => n.last_failover = some(v).map(|v| v as i64),
            "crash_reports_total" => n.crash_reports = v as u64,
            "standby_lag_bytes" => {
                let e = n.standbys.entry(labels.get("application_name").copied().unwrap_or_default().to_owned()).or_default();
                e.0 = labels.get("sync_state").copied().unwrap_or_default().to_owned();
                e.1 = v as u64;
            }
            "slot_retained_bytes" | "slot_active" | "slot_invalidated" => {
                let e = n.slots.entry(labels.get("slot").copied().unwrap_or_default().to_owned()).or_default();
                e.kind = labels.get("slot_type").copied().unwrap_or_default().to_owned();
                match name {
                    "paceline_slot_retained_bytes" => e.retained = some(v).map(|v| v as u64),
                    "paceline_slot_active" => e.active = v == 1.0,
                    _ => e.invalidated = v == 1.0,
                }
            }
            "standby_lag_seconds" => {
                n.standbys.entry(labels.get("application_name").copied().unwrap_or_default().to_owned()).or_default().2 = v;
            }
            _ => {}
        }
    }
    n
}

/// `GET /metrics` from `addr:port`, within [`TIMEOUT`]; Err says why not.
async fn fetch(addr: String, port: u16) -> Result<PgNode, String> {
    let host = if addr.contains(':') { format!("[{addr}]") } else { addr.clone() };
    let work = async {
        let stream = tokio::net::TcpStream::connect((addr.as_str(), port)).await.map_err(|e| format!("{host}:{port}: {e}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let req = hyper::Request::get("/metrics").header("host", format!("{host}:{port}")).body(Empty::<Bytes>::new()).map_err(|e| e.to_string())?;
        let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("{host}:{port}/metrics: HTTP {}", resp.status()));
        }
        let body = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok(parse_metrics(&String::from_utf8_lossy(&body)))
    };
    tokio::time::timeout(TIMEOUT, work).await.unwrap_or_else(|_| Err(format!("{host}:{port}: no answer within {} ms", TIMEOUT.as_millis())))
}

/// Ask every `(name, address)` at once on `port`: each node's view, or why there is none.
pub fn all(nodes: &[(String, String)], port: u16) -> BTreeMap<String, Result<PgNode, String>> {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return nodes.iter().map(|(n, _)| (n.clone(), Err(format!("no runtime: {e}")))).collect(),
    };
    rt.block_on(async {
        let tasks: Vec<_> = nodes.iter().map(|(n, a)| (n.clone(), tokio::spawn(fetch(a.clone(), port)))).collect();
        let mut out = BTreeMap::new();
        for (n, t) in tasks {
            out.insert(n, t.await.unwrap_or_else(|e| Err(e.to_string())));
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_state_services_metrics() {
        let text = "# HELP paceline_postgres_up x\n# TYPE paceline_postgres_up gauge\npaceline_postgres_up 1\npaceline_postgres_primary 1\n\
                    paceline_postgres_timeline 3\npaceline_postgres_wal_lsn_bytes 67108864\npaceline_postgres_replication_lag_bytes NaN\n\
                    paceline_routing_primary 1\npaceline_last_failover_timestamp_seconds 1796200000\npaceline_crash_reports_total 2\n\
                    paceline_standby_lag_bytes{application_name=\"node2\",sync_state=\"quorum\"} 42\n\
                    paceline_standby_lag_seconds{application_name=\"node2\",sync_state=\"quorum\"} 0.25\nnot a metric\n\
                    paceline_slot_retained_bytes{slot=\"paceline_node2\",slot_type=\"physical\"} 4096\n\
                    paceline_slot_active{slot=\"paceline_node2\",slot_type=\"physical\"} 1\n\
                    paceline_slot_invalidated{slot=\"paceline_node2\",slot_type=\"physical\"} 0\n\
                    paceline_slot_retained_bytes{slot=\"cdc\",slot_type=\"logical\"} NaN\n\
                    paceline_slot_invalidated{slot=\"cdc\",slot_type=\"logical\"} 1\n";
        let n = parse_metrics(text);
        assert!(n.up && n.writable && n.routing_primary && !n.streaming);
        assert_eq!((n.timeline, n.lsn, n.lag_bytes), (Some(3), Some(64 << 20), None));
        assert_eq!((n.last_failover, n.crash_reports), (Some(1796200000), 2));
        assert_eq!(n.standbys["node2"], ("quorum".to_owned(), 42, 0.25));
        assert_eq!(n.slots["paceline_node2"], SlotSample { kind: "physical".into(), retained: Some(4096), active: true, invalidated: false });
        assert_eq!(n.slots["cdc"], SlotSample { kind: "logical".into(), retained: None, active: false, invalidated: true });
        assert_eq!(parse_metrics(""), PgNode::default());
    }

    #[test]
    fn an_absent_service_is_an_error_not_a_wait() {
        // A port nothing listens on, on loopback: refused at once.
        let t = std::time::Instant::now();
        let r = all(&[("node1".into(), "127.0.0.1".into())], 9);
        assert!(r["node1"].is_err());
        assert!(t.elapsed() < Duration::from_secs(2));
    }
}
