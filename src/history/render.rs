//! The records as people read them: one line each (`paceline history`, like `patronictl
//! history` with the outage and loss columns it lacks), the whole record (`paceline
//! history show`), and the JSON both take with `--json`.

use super::{Kind, Record};
use serde_json::{json, Value};

/// `YYYY-MM-DD HH:MM:SS.mmm` (UTC) of milliseconds since the epoch.
pub fn utc(ms: u64) -> String {
    crate::civil::utc(ms)
}

fn seconds(ms: u64) -> String {
    format!("{}.{:03} s", ms / 1000, ms % 1000)
}

/// The old primary, `?` when unknown.
fn old(r: &Record) -> &str {
    r.old_primary.as_deref().unwrap_or("?")
}

/// The first writable moment, `?` when unknown.
fn writable(r: &Record) -> String {
    r.writable_at().map(utc).unwrap_or_else(|| "?".into())
}

/// The outage in seconds, `?` when unknown.
fn outage(r: &Record) -> String {
    r.outage_ms().map(seconds).unwrap_or_else(|| "?".into())
}

/// The loss column: bytes when the old primary's end is known (`>= N B` when only a lower
/// bound is), `0 B` for a clean switchover the new primary received all of, `0 acked` for a
/// synchronous failover (every acknowledged commit was on a member the election compared;
/// beside the bytes too: the WAL past the fork held nothing acknowledged), `?` otherwise.
pub fn loss(r: &Record) -> String {
    // With synchronous replication the WAL past the fork held nothing acknowledged.
    let acked = if r.sync_set.is_some() { " (0 acked)" } else { "" };
    match r.lost_bytes() {
        Some(0) => "0 B".into(),
        Some(b) if r.lost_at_least() => format!(">= {b} B{acked}"),
        Some(b) => format!("{b} B{acked}"),
        None if r.kind == Kind::Switchover => "0 B".into(),
        None if r.sync_set.is_some() => "0 acked".into(),
        None => "?".into(),
    }
}

/// How the old primary came back, in a few words.
pub fn returned(r: &Record) -> String {
    if matches!(r.kind, Kind::Recovery | Kind::Start) {
        return "-".into();
    }
    match (r.return_step(), r.first("restarted")) {
        (Some(s), _) => format!("{} {}", s.what, utc(s.at).get(11..19).unwrap_or("")),
        (None, Some(_)) => "standby (demote)".into(),
        (None, None) => "not yet".into(),
    }
}

/// The table: a header and one line per record, oldest first.
pub fn table(records: &[Record]) -> String {
    let mut out = format!(
        "{:>4}  {:<10}  {:<10}  {:<10}  {:<23}  {:>9}  {:>9}  {:<18}  {}\n",
        "TL", "KIND", "OLD", "NEW", "WRITABLE AT (UTC)", "OUTAGE", "LOST", "OLD PRIMARY", "WHY"
    );
    for r in records {
        out.push_str(&format!(
            "{:>4}  {:<10}  {:<10}  {:<10}  {:<23}  {:>9}  {:>9}  {:<18}  {}\n",
            r.timeline,
            r.kind.as_str(),
            old(r),
            r.new_primary,
            writable(r),
            outage(r),
            loss(r),
            returned(r),
            r.why
        ));
    }
    out
}

/// One record, whole.
pub fn show(r: &Record) -> String {
    let mut out = format!(
        "timeline {} ({}, resource {}, system {})\n{} -> {}\nwhy: {}\n",
        r.timeline,
        r.kind.as_str(),
        r.resource,
        r.system,
        old(r),
        r.new_primary,
        r.why
    );
    if let Some(o) = r.outage_ms() {
        out.push_str(&format!(
            "writes down: {} (from {} to {})\n",
            seconds(o),
            r.writes_stopped_at().map(utc).unwrap_or_default(),
            r.writes_back_at().map(utc).unwrap_or_default()
        ));
    }
    if let (Some(a), Some(o)) = (r.address_at(), r.address_outage_ms()) {
        out.push_str(&format!("address moved: {} (clients through it: writes down {})\n", utc(a), seconds(o)));
    }
    out.push_str(&format!(
        "new timeline starts at {}; received from the old primary {}; last commit received {}\n",
        r.fork.as_deref().unwrap_or("?"),
        r.received.as_deref().unwrap_or("?"),
        r.last_commit.map(utc).unwrap_or_else(|| "?".into())
    ));
    out.push_str(&format!(
        "old primary's end of WAL: {}{}; lost: {}\n",
        r.old_end.as_deref().or_else(|| r.return_step().and_then(|s| s.lsn.as_deref())).unwrap_or("unknown"),
        r.old_end_source
            .as_deref()
            .map(|s| format!(" ({s})"))
            .or_else(|| r.lost_at_least().then(|| " (at least: pg_control on its return)".to_owned()))
            .unwrap_or_default(),
        loss(r)
    ));
    out.push_str(&format!("synchronous set: {}\n", r.sync_set.as_deref().unwrap_or("none (asynchronous)")));
    if !r.candidates.is_empty() {
        out.push_str("candidates:\n");
        out.push_str(&format!("  {:<12} {:<9} {:>4} {:>14} {:>12} {:>8}  {}\n", "NODE", "STANDING", "TL", "LSN", "LAG", "SCORE", "MEMBER"));
        for c in &r.candidates {
            out.push_str(&format!(
                "{} {:<12} {:<9} {:>4} {:>14} {:>12} {:>8}  {}\n",
                if c.chosen { "*" } else { " " },
                c.node,
                c.standing,
                c.timeline.map(|t| t.to_string()).unwrap_or_else(|| "-".into()),
                c.lsn.as_deref().unwrap_or("-"),
                c.lag.map(|l| format!("{l} B")).unwrap_or_else(|| "-".into()),
                c.score.map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
                if c.member { "yes" } else { "no" }
            ));
        }
    }
    out.push_str("steps:\n");
    for s in &r.steps {
        out.push_str(&format!("  {}  {:<10} {:<9} {}\n", utc(s.at), s.node, s.what, s.detail));
    }
    out
}

/// A record as JSON, with the derived figures beside its facts.
pub fn json(r: &Record) -> Value {
    let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("writable_at".into(), json!(r.writable_at()));
        m.insert("writes_stopped_at".into(), json!(r.writes_stopped_at()));
        m.insert("outage_ms".into(), json!(r.outage_ms()));
        m.insert("writes_back_at".into(), json!(r.writes_back_at()));
        m.insert("address_at".into(), json!(r.address_at()));
        m.insert("address_outage_ms".into(), json!(r.address_outage_ms()));
        m.insert("lost_bytes".into(), json!(r.lost_bytes()));
        m.insert("lost".into(), json!(loss(r)));
        m.insert("old_primary_back".into(), json!(r.return_step().map(|s| s.what.clone())));
    }
    v
}

/// The summary line `paceline status` prints for the newest record.
pub fn summary(r: &Record) -> String {
    format!(
        "timeline {}: {} {} -> {} at {} UTC, writes down {}, lost {}, old primary {}",
        r.timeline,
        r.kind.as_str(),
        old(r),
        r.new_primary,
        writable(r),
        outage(r),
        loss(r),
        returned(r)
    )
}
