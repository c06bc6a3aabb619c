//! The status screen as text: a header (quorum, DC, fencing), one line per node, the
//! floating addresses, the primary's replication slots, then the verdict and every
//! finding with its command.

use std::fmt::Write as _;

use super::Status;

/// A WAL position as PostgreSQL prints it (`0/4036170`).
pub fn lsn(bytes: u64) -> String {
    format!("{:X}/{:X}", bytes >> 32, bytes & 0xffff_ffff)
}

fn bytes(b: u64) -> String {
    match b {
        b if b >= 1 << 30 => format!("{:.1} GB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} kB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

pub fn text(st: &Status) -> String {
    let mut o = String::new();
    let fencing = if !st.stonith_enabled {
        "fencing OFF".to_owned()
    } else if st.fence_devices.is_empty() {
        "fencing on, no device".to_owned()
    } else {
        let d: Vec<String> = st.fence_devices.iter().map(|d| format!("{} on {}", d.id, d.node.as_deref().unwrap_or("nowhere"))).collect();
        format!("fencing on ({})", d.join(", "))
    };
    let _ = writeln!(
        o,
        "Cluster: {}, DC {}, {fencing}{}",
        if st.quorate { "quorate" } else { "NO QUORUM" },
        st.dc.as_deref().unwrap_or("none"),
        if st.maintenance_mode { ", MAINTENANCE MODE" } else { "" }
    );
    if let Some(r) = &st.last_change {
        let _ = writeln!(o, "Last change: {}", crate::history::render::summary(r));
    }
    if let Some(e) = &st.last_fencing {
        let _ = writeln!(
            o,
            "Last fencing: {} of {} by {}, {}{}",
            e.action,
            e.target,
            e.delegate.as_deref().unwrap_or("?"),
            e.status,
            e.completed.as_deref().map(|c| format!(" at {c}")).unwrap_or_default()
        );
    }
    if let Some(r) = &st.resource {
        let _ = writeln!(o, "PostgreSQL: {r}, primary {}", st.primary().unwrap_or("NONE"));
    }
    let _ = writeln!(o);
    let rows: Vec<[String; 9]> = st
        .nodes
        .iter()
        .map(|n| {
            let pg = n.pg.as_ref();
            let lag = match (n.lag_bytes, n.lag_seconds) {
                _ if pg.is_some_and(|p| p.writable) => "-".to_owned(),
                (Some(b), Some(s)) => format!("{} {s:.3}s", bytes(b)),
                (Some(b), None) => bytes(b),
                _ => "-".to_owned(),
            };
            let fails: Vec<String> = n.fail_counts.iter().map(|(r, c)| format!("{r}:{c}")).collect();
            let mut name = n.name.clone();
            if !n.online {
                name += " (offline)";
            } else if n.standby {
                name += " (standby)";
            }
            [
                name,
                n.role.clone(),
                n.postgres.clone(),
                pg.and_then(|p| p.timeline).map(|t| t.to_string()).unwrap_or_else(|| "-".into()),
                pg.and_then(|p| p.lsn).map(lsn).unwrap_or_else(|| "-".into()),
                lag,
                n.sync_state
                    .clone()
                    .or_else(|| pg.filter(|p| p.writable).map(|p| if p.synchronous { "sync on".into() } else { "async".into() }))
                    .unwrap_or_else(|| "-".into()),
                n.score.clone().unwrap_or_else(|| "-".into()),
                if fails.is_empty() { "-".into() } else { fails.join(" ") },
            ]
        })
        .collect();
    let head = ["NODE", "PACEMAKER", "POSTGRESQL", "TL", "LSN", "LAG", "SYNC", "SCORE", "FAILS"];
    let mut width = head.map(str::len);
    for r in &rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |o: &mut String, cells: &[String]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            let _ = write!(s, "{c:<w$}  ", w = width[i]);
        }
        let _ = writeln!(o, "{}", s.trim_end());
    };
    line(&mut o, &head.map(str::to_owned));
    for r in &rows {
        line(&mut o, r);
    }
    if !st.addresses.is_empty() {
        let _ = writeln!(o);
        for a in &st.addresses {
            let _ = writeln!(
                o,
                "Address: {} {} ({}) on {}",
                a.resource,
                a.address,
                a.agent,
                if a.nodes.is_empty() { "NOWHERE".into() } else { a.nodes.join(", ") }
            );
        }
    }
    if !st.slots.is_empty() {
        let _ = writeln!(o);
        for (name, sl) in &st.slots {
            let held = match (sl.invalidated, sl.retained) {
                (true, _) => "LOST its WAL".to_owned(),
                (false, Some(b)) => format!("holds {}", bytes(b)),
                (false, None) => "holds nothing yet".to_owned(),
            };
            let _ = writeln!(o, "Slot: {name} ({}) {held}, {}", sl.kind, if sl.active { "in use" } else { "unused" });
        }
    }
    let _ = writeln!(o, "\n{}  ({} ms)", st.verdict(), st.elapsed_ms);
    if st.findings.len() > 1 {
        for f in &st.findings {
            let _ = writeln!(o, "  {}: {} — {}", f.severity.label(), f.what, f.hint);
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_and_sizes_read_as_postgresql_and_people_write_them() {
        assert_eq!(lsn(0x4036170), "0/4036170");
        assert_eq!(lsn((3u64 << 32) | 0xA0), "3/A0");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(16 << 20), "16.0 MB");
    }

    #[test]
    fn the_screen_has_a_line_per_node_and_the_verdict() {
        let st = Status {
            resource: Some("pgsqld".into()),
            quorate: true,
            stonith_enabled: false,
            nodes: vec![super::super::NodeRow {
                name: "node1".into(),
                online: true,
                role: "Promoted".into(),
                postgres: "primary".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let t = text(&st);
        assert!(t.starts_with("Cluster: quorate, DC none, fencing OFF\n"), "{t}");
        assert!(t.lines().any(|l| l.starts_with("node1  Promoted   primary")), "{t}");
        assert!(t.contains("\nhealthy  (0 ms)"), "{t}");
    }
}
