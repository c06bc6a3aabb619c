use super::*;

fn step(at: u64, node: &str, what: &str, detail: &str) -> Step {
    Step::at(at, node, what, detail)
}

fn record(tl: u32, kind: Kind, writable: u64) -> Record {
    Record {
        timeline: tl,
        system: "7301".into(),
        resource: "pgsqld".into(),
        kind,
        old_primary: Some("node1".into()),
        new_primary: "node2".into(),
        why: "most WAL".into(),
        candidates: vec![],
        sync_set: None,
        fork: Some("0/3000000".into()),
        received: Some("0/3000100".into()),
        last_commit: None,
        old_end: None,
        old_end_source: None,
        steps: vec![step(writable - 300, "node2", "promote", ""), step(writable, "node2", "writable", "")],
    }
}

fn temp_store(name: &str) -> Store {
    let dir = std::env::temp_dir().join(format!("paceline-history-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    Store::at(&dir)
}

#[test]
fn a_switchover_counts_from_the_shutdown() {
    let mut r = record(3, Kind::Switchover, 10_000);
    r.last_commit = Some(9_000);
    r.add_step(step(9_100, "node1", "shutdown", "clean, checkpoint 0/3000028"));
    assert_eq!(r.writes_stopped_at(), Some(9_100));
    assert_eq!(r.outage_ms(), Some(900));
    assert_eq!(render::loss(&r), "0 B");
}

#[test]
fn a_busy_failover_counts_from_the_last_commit_an_idle_one_from_the_detection() {
    let mut r = record(4, Kind::Failover, 200_000);
    r.add_step(step(195_000, "node2", "election", ""));
    r.last_commit = Some(192_000);
    assert_eq!(r.writes_stopped_at(), Some(192_000));
    assert_eq!(r.outage_ms(), Some(8_000));
    r.last_commit = Some(195_000 - BUSY_WITHIN_MS - 1);
    assert_eq!(r.writes_stopped_at(), Some(195_000));
    assert_eq!(render::loss(&r), "?");
    r.sync_set = Some("ANY 1 (node2, node3)".into());
    assert_eq!(render::loss(&r), "0 acked");
    r.old_end = Some("0/3000200".into());
    r.old_end_source = Some("on its return".into());
    assert_eq!(r.lost_bytes(), Some(0x200));
}

#[test]
fn merge_is_a_union_in_any_order_and_twice() {
    let a = {
        let mut r = record(5, Kind::Failover, 30_000);
        r.add_step(step(29_000, "node1", "crashed", "postmaster killed"));
        r
    };
    let b = {
        let mut r = record(5, Kind::Failover, 30_000);
        r.add_step(step(30_500, "node2", "address", "192.0.2.50 up"));
        r.candidates = vec![Candidate {
            node: "node3".into(),
            standing: "candidate".into(),
            timeline: Some(4),
            lsn: Some("0/1".into()),
            lag: Some(3),
            score: None,
            member: false,
            chosen: false,
        }];
        r
    };
    let mut ab = a.clone();
    ab.merge(&b);
    let mut ba = b.clone();
    ba.merge(&a);
    assert_eq!(ab.steps, ba.steps);
    assert_eq!(ab.candidates, ba.candidates);
    let again = ab.clone();
    ab.merge(&again);
    assert_eq!(ab, again);
    assert_eq!(ab.steps.len(), 4);
}

#[test]
fn pending_steps_attach_to_the_record_they_belong_to_and_settle() {
    let s = temp_store("pending");
    s.note_pending(step(now_ms() - 1_000, "node1", "shutdown", "clean, checkpoint 0/3000028")).unwrap();
    let mut r = record(6, Kind::Failover, now_ms());
    r.old_primary = Some("node1".into());
    let kept = s.save(&r).unwrap();
    assert_eq!(kept.kind, Kind::Switchover, "a clean shutdown makes it a switchover");
    assert!(kept.first("shutdown").is_some());
    s.settle_pending();
    assert!(s.pending().is_empty());
    // A step from after the record's writable moment waits for the next one.
    s.note_pending(step(now_ms() + 60_000, "node1", "shutdown", "clean")).unwrap();
    s.settle_pending();
    assert_eq!(s.pending().len(), 1);
    // One from before the newest record belongs to it or an earlier one: never to the next.
    let mut next = record(7, Kind::Failover, now_ms() + 120_000);
    next.old_primary = Some("node2".into());
    let stale = step(kept.writable_at().unwrap() - 5, "node1", "shutdown", "clean, old");
    let mut fresh = next.clone();
    assert!(!fresh.attach(std::slice::from_ref(&stale), kept.writable_at(), None));
    assert!(fresh.attach(&s.pending(), kept.writable_at(), None), "the step after the previous change is attached");
    next.steps.clear();
    let _ = std::fs::remove_dir_all(s.dir());
}

#[test]
fn absorb_takes_other_nodes_records_and_pending_steps() {
    let s = temp_store("absorb");
    let r = record(7, Kind::Failover, now_ms());
    let theirs = Outbox { records: vec![r.clone()], pending: vec![step(now_ms() - 2_000, "node1", "crashed", "postmaster killed")] };
    assert_eq!(s.absorb(std::slice::from_ref(&theirs)), 1);
    let kept = s.get(7).unwrap();
    assert!(kept.first("crashed").is_some());
    assert_eq!(s.absorb(&[theirs]), 0, "nothing new the second time");
    // And it travels: what this node publishes decodes to the same record.
    let out = decode_outbox(&encode_outbox(&s.outbox())).unwrap();
    assert_eq!(out.records, vec![kept]);
    let _ = std::fs::remove_dir_all(s.dir());
}

#[test]
fn old_records_roll_off() {
    let s = temp_store("roll");
    for tl in 2..(KEEP as u32 + 7) {
        s.save(&record(tl, Kind::Failover, 1_000_000 + u64::from(tl) * 1000)).unwrap();
    }
    let all = s.records();
    assert_eq!(all.len(), KEEP);
    assert_eq!(all[0].timeline, 7);
    assert_eq!(s.newest().unwrap().timeline, KEEP as u32 + 6);
    let _ = std::fs::remove_dir_all(s.dir());
}

#[test]
fn hostile_files_are_skipped_not_followed() {
    let s = temp_store("hostile");
    s.save(&record(2, Kind::Failover, 5_000)).unwrap();
    std::fs::write(s.dir().join("junk.json"), b"{not json").unwrap();
    std::os::unix::fs::symlink("/etc/shadow", s.dir().join("link.json")).unwrap();
    assert_eq!(s.records().len(), 1);
    assert!(decode_outbox("[1,2]").is_none());
    let n = safe_name("../../etc");
    assert!(!n.contains('/') && !n.starts_with('.'), "{n}");
    let _ = std::fs::remove_dir_all(s.dir());
}

#[test]
fn render_lines_and_times() {
    assert_eq!(render::utc(0), "1970-01-01 00:00:00.000");
    assert_eq!(render::utc(1_796_644_800_123), "2026-12-07 12:00:00.123");
    let mut r = record(3, Kind::Switchover, 1_796_644_800_123);
    r.add_step(step(1_796_644_799_000, "node1", "shutdown", "clean"));
    let t = render::table(&[r.clone()]);
    assert_eq!(t.lines().count(), 2);
    assert!(t.contains("switchover") && t.contains("1.123 s") && t.contains("not yet"), "{t}");
    assert!(render::show(&r).contains("writes down: 1.123 s"));
    assert_eq!(render::json(&r)["outage_ms"], 1123);
}

#[test]
fn a_return_attaches_to_the_change_it_follows() {
    let s = temp_store("return");
    let w = now_ms() - 60_000;
    let mut first = record(8, Kind::Failover, w);
    first.old_primary = Some("node1".into());
    s.save(&first).unwrap();
    // node1 comes back after the promotion: its return belongs to timeline 8's record.
    s.note_pending(step(w + 30_000, "node1", "rejoined", REJOINED_AS_IT_WAS)).unwrap();
    let kept = s.save(&first).unwrap();
    assert_eq!(kept.return_step().map(|r| r.what.as_str()), Some("rejoined"));
    assert_eq!(kept.lost_bytes(), Some(0));
    assert_eq!(render::returned(&kept).split(' ').next(), Some("rejoined"));
    s.settle_pending();
    assert!(s.pending().is_empty());
    // Another node's return is not this change's; nor one after the next change.
    let mut other = record(9, Kind::Failover, w + 40_000);
    other.old_primary = Some("node2".into());
    assert!(!other.attach(&[step(w + 50_000, "node3", "rewound", "")], None, None));
    assert!(!other.attach(&[step(w + 50_000, "node2", "rewound", "")], None, Some(w + 45_000)));
    assert!(other.attach(&[step(w + 50_000, "node2", "rewound", "")], None, None));
    // A rewound old primary's pg_control said how far its WAL reached: the loss is at least that.
    let mut back = step(w + 50_000, "node2", "rewound", "servers diverged");
    back.lsn = Some("0/3000300".into());
    let mut third = record(10, Kind::Failover, w + 40_000);
    third.old_primary = Some("node2".into());
    assert!(third.attach(&[back], None, None));
    assert_eq!((third.lost_bytes(), third.lost_at_least()), (Some(0x300), true));
    assert_eq!(render::loss(&third), ">= 768 B");
    third.sync_set = Some("ANY 1 (node1, node3)".into());
    assert_eq!(render::loss(&third), ">= 768 B (0 acked)");
    let _ = std::fs::remove_dir_all(s.dir());
}
