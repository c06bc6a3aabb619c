use super::scores::{self, rank, Replica};
use super::*;
use crate::ocf::OcfRc;
use crate::pg::Lsn;

fn env(pairs: &[(&str, &str)]) -> OcfEnv {
    OcfEnv::from_pairs(pairs.iter().map(|(k, v)| {
        let key = if k.starts_with("OCF_") { k.to_string() } else { format!("OCF_RESKEY_{k}") };
        (key, v.to_string())
    }))
}

#[test]
fn defaults_are_pafs() {
    let c = Config::from_env(&env(&[("OCF_RESOURCE_INSTANCE", "pgsqld:1")])).unwrap();
    assert_eq!(c.system_user, "postgres");
    assert_eq!(c.bindir, PathBuf::from("/usr/bin"));
    assert_eq!(c.pgdata, PathBuf::from("/var/lib/pgsql/data"));
    assert_eq!(c.datadir, c.pgdata);
    assert_eq!(c.pghost, PathBuf::from("/var/run/postgresql"));
    assert_eq!(c.pgport, 5432);
    assert_eq!(c.maxlag, 0);
    assert!(!c.auto_rewind);
    assert_eq!(c.resource, "pgsqld");
    assert_eq!(c.score_attribute(), "master-pgsqld");
}

#[test]
fn bad_input_matrix() {
    let cases: &[&[(&str, &str)]] = &[
        &[("pgdata", "relative/path")],
        &[("datadir", "data")],
        &[("bindir", "bin")],
        &[("pghost", "localhost")],
        &[("pgport", "0")],
        &[("pgport", "70000")],
        &[("pgport", "-1")],
        &[("pgport", "five")],
        &[("maxlag", "-5")],
        &[("maxlag", "lots")],
        &[("system_user", "post gres")],
        &[("system_user", "a/b")],
        &[("auto_rewind", "perhaps")],
        &[("synchronous_mode", "yes please")],
        &[("synchronous_mode", "quorum")],
        &[("synchronous_node_count", "0")],
        &[("synchronous_node_count", "-1")],
        &[("synchronous_node_count", "two")],
        // k larger than the standbys of a 3-node clone
        &[("synchronous_mode", "on"), ("synchronous_node_count", "3"), ("OCF_RESKEY_CRM_meta_clone_max", "3")],
    ];
    for case in cases {
        match Config::from_env(&env(case)) {
            Err(e) => assert_eq!(e.rc, OcfRc::ErrConfigured, "{case:?}: {e}"),
            Ok(c) => panic!("{case:?} accepted: {c:?}"),
        }
    }
}

#[test]
fn synchronous_parameters() {
    let c = Config::from_env(&env(&[])).unwrap();
    assert_eq!((c.sync_mode, c.sync_count), (sync::Mode::Off, 1), "off by default: a PAF cluster migrates unchanged");
    let c = Config::from_env(&env(&[("synchronous_mode", "strict"), ("synchronous_node_count", "2"), ("OCF_RESKEY_CRM_meta_clone_max", "3")])).unwrap();
    assert_eq!((c.sync_mode, c.sync_count), (sync::Mode::Strict, 2));
    let e = Config::from_env(&env(&[("synchronous_mode", "on"), ("synchronous_node_count", "3"), ("OCF_RESKEY_CRM_meta_clone_max", "3")])).unwrap_err();
    assert!(e.reason.contains("needs 3 standbys, the clone has 2"), "{}", e.reason);
    assert!(e.reason.len() <= 128, "fits Pacemaker's exit reason");
    // With synchronous_mode off the count is not checked against the clone.
    assert!(Config::from_env(&env(&[("synchronous_node_count", "5"), ("OCF_RESKEY_CRM_meta_clone_max", "3")])).is_ok());
}

#[test]
fn ranking_with_a_synchronous_set() {
    let nodes: Vec<String> = ["n1", "n2", "n3", "n4"].iter().map(|s| s.to_string()).collect();
    let reps = [replica("n2", "streaming", true, 100), replica("n3", "streaming", false, 300), replica("n4", "catchup", false, 0)];
    let eligible = vec!["n2".to_string()];
    let s = rank("n1", &nodes, &reps, Lsn(300), 0, Some(&eligible));
    assert_eq!(s["n2"], 1000);
    assert_eq!(s["n3"], scores::NOT_SYNCHRONOUS, "ahead, but not a member: not promotable");
    assert_eq!(s["n4"], scores::NOT_STREAMING);
    let s = rank("n1", &nodes, &reps, Lsn(300), 0, Some(&[]));
    assert!(s.iter().filter(|(n, _)| *n != "n1").all(|(_, v)| *v < 0), "no member: nobody promotable {s:?}");
}

#[test]
fn clone_meta_checks() {
    assert!(validate::check_clone(&env(&[])).is_ok(), "by hand: not a clone");
    let e = validate::check_clone(&env(&[("OCF_RESKEY_CRM_meta_clone_max", "3")])).unwrap_err();
    assert_eq!(e.rc, OcfRc::ErrConfigured);
    assert!(e.reason.contains("notify=true"));
    let ok = [("OCF_RESKEY_CRM_meta_clone_max", "3"), ("OCF_RESKEY_CRM_meta_notify", "true"), ("OCF_RESKEY_CRM_meta_promoted_max", "1")];
    assert!(validate::check_clone(&env(&ok)).is_ok());
    let two = [("OCF_RESKEY_CRM_meta_clone_max", "3"), ("OCF_RESKEY_CRM_meta_notify", "true"), ("OCF_RESKEY_CRM_meta_master_max", "2")];
    assert_eq!(validate::check_clone(&env(&two)).unwrap_err().rc, OcfRc::ErrConfigured);
}

#[test]
fn missing_installation_is_err_installed() {
    let c = Config::from_env(&env(&[("bindir", "/nonexistent/bin"), ("pgdata", "/nonexistent/data")])).unwrap();
    assert_eq!(validate::check_installation(&c).unwrap_err().rc, OcfRc::ErrInstalled);
}

fn replica(name: &str, state: &str, sync: bool, flushed: u64) -> Replica {
    Replica { name: name.into(), state: state.into(), sync, flushed: Some(Lsn(flushed)) }
}

#[test]
fn ranking_prefers_sync_then_most_wal() {
    let nodes: Vec<String> = ["n1", "n2", "n3", "n4"].iter().map(|s| s.to_string()).collect();
    let reps = [replica("n2", "streaming", false, 100), replica("n3", "streaming", false, 300)];
    let s = rank("n1", &nodes, &reps, Lsn(300), 0, None);
    assert_eq!(s["n1"], 1001);
    assert_eq!(s["n3"], 1000, "most WAL first (PAF 2.3.0 had this backwards)");
    assert_eq!(s["n2"], 990);
    assert_eq!(s["n4"], -1000, "absent from replication");
    let reps = [replica("n2", "streaming", true, 100), replica("n3", "streaming", false, 300)];
    let s = rank("n1", &nodes, &reps, Lsn(300), 0, None);
    assert_eq!((s["n2"], s["n3"]), (1000, 990), "synchronous first");
}

#[test]
fn ranking_penalises_lag_and_not_streaming() {
    let nodes: Vec<String> = ["n1", "n2", "n3"].iter().map(|s| s.to_string()).collect();
    let reps = [replica("n2", "streaming", false, 1000), replica("n3", "catchup", false, 0)];
    let s = rank("n1", &nodes, &reps, Lsn(5000), 1000, None);
    assert_eq!(s["n2"], -1000, "lag 4000 > maxlag 1000");
    assert_eq!(s["n3"], -1);
    // Replicas outside the partition are ignored.
    let s = rank("n1", &nodes, &[replica("stranger", "streaming", false, 1)], Lsn(1), 0, None);
    assert!(!s.contains_key("stranger"));
}

#[test]
fn metadata_is_promotable_and_lists_every_parameter() {
    let xml = SPEC.metadata_xml();
    for p in SPEC.all_params() {
        assert!(xml.contains(&format!("<parameter name=\"{}\"", p.name)), "{}", p.name);
    }
    for a in ["start", "stop", "promote", "demote", "notify", "monitor", "validate-all"] {
        assert!(xml.contains(&format!("<action name=\"{a}\"")), "{a}");
    }
    assert!(xml.contains("role=\"Promoted\"") && xml.contains("role=\"Unpromoted\""));
}

#[test]
fn docs_show_the_parameter_table() {
    assert_eq!(crate::ocf::params::docs_block("pgsqlms").unwrap(), SPEC.markdown_table(), "regenerate with `paceline params pgsqlms`");
}

#[test]
fn the_primary_ranks_a_replica_it_never_scored() {
    use super::primary::nodes_to_rank;
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let members = || Ok(names(&["n1", "n2", "n3"]));
    let no_fork = || -> Result<Vec<String>, crate::ocf::OcfError> { panic!("crm_node --partition asked in the steady state") };
    // Steady state: every replica already scored, no fork.
    let reps = [replica("n2", "streaming", false, 1), replica("n3", "streaming", false, 1)];
    assert_eq!(nodes_to_rank(names(&["n1", "n2", "n3"]), &reps, no_fork).unwrap(), names(&["n1", "n2", "n3"]));
    // Just promoted, memory holds only itself: the partition is asked, every member ranked.
    assert_eq!(nodes_to_rank(names(&["n1"]), &reps, members).unwrap(), names(&["n1", "n2", "n3"]));
    // No memory at all.
    assert_eq!(nodes_to_rank(vec![], &[], members).unwrap(), names(&["n1", "n2", "n3"]));
    // A replica that is no cluster node (a backup tool) is asked about, and stays unranked.
    let s = rank(
        "n1",
        &nodes_to_rank(names(&["n1", "n2", "n3"]), &[replica("pg_receivewal", "streaming", false, 1)], members).unwrap(),
        &[replica("pg_receivewal", "streaming", false, 1)],
        Lsn(1),
        0,
        None,
    );
    assert!(!s.contains_key("pg_receivewal"), "{s:?}");
}

/// A standby makes itself promotable only when nobody ranked it: the primary's verdict
/// (catching up, beyond maxlag, absent) stands, and an unreadable score is not "none".
#[test]
fn a_standby_never_raises_the_primarys_verdict() {
    assert_eq!(scores::self_score(Ok(None)), Some(scores::BOOTSTRAP));
    for verdict in [scores::NOT_STREAMING, scores::NOT_SYNCHRONOUS, scores::ABSENT, 0, -5] {
        assert_eq!(scores::self_score(Ok(Some(verdict))), None, "{verdict}");
    }
    assert_eq!(scores::self_score(Ok(Some(scores::BEST_STANDBY))), None, "already promotable: nothing to write");
    assert_eq!(scores::self_score(Err(())), None);
}

#[test]
fn start_opts_split_as_the_shell_splits_them() {
    let words = |o: &str| Config::from_env(&env(&[("start_opts", o)])).unwrap().start_words();
    assert_eq!(Config::from_env(&env(&[])).unwrap().start_words().unwrap(), Vec::<String>::new());
    assert_eq!(words("").unwrap(), Vec::<String>::new());
    assert_eq!(words("-c config_file=/etc/postgresql/15/main/postgresql.conf").unwrap(), ["-c", "config_file=/etc/postgresql/15/main/postgresql.conf"]);
    // One setting with a blank in its value, however it is quoted: not two words.
    for o in ["-c cluster_name='pg main'", "-c \"cluster_name=pg main\"", "-c cluster_name=pg\\ main", "  -c\tcluster_name='pg main'  "] {
        assert_eq!(words(o).unwrap(), ["-c", "cluster_name=pg main"], "{o}");
    }
    assert_eq!(words(r#"-c 'search_path="my schema", public'"#).unwrap(), ["-c", r#"search_path="my schema", public"#]);
    assert_eq!(words("-c log_line_prefix='%m [%p] '").unwrap(), ["-c", "log_line_prefix=%m [%p] "]);
}

#[test]
fn start_opts_the_shell_cannot_split_are_refused() {
    for o in ["-c cluster_name='pg main", "-c \"x", "-c x=\\", "'"] {
        let e = Config::from_env(&env(&[("start_opts", o)])).unwrap().start_words().unwrap_err();
        assert_eq!(e.rc, OcfRc::ErrConfigured, "{o}");
        assert!(e.reason.contains("start_opts") && e.reason.contains("does not split"), "{o}: {}", e.reason);
    }
    // validate-all says so before it looks at the installation.
    let e = validate::validate_all(&env(&[("start_opts", "-c cluster_name='pg"), ("bindir", "/nonexistent/bin")])).unwrap_err();
    assert_eq!(e.rc, OcfRc::ErrConfigured, "{}", e.reason);
}

#[test]
fn only_records_without_a_transaction_past_the_fork_allow_a_rewind() {
    use super::rewind::{fork_point, judge_past_fork};
    assert_eq!(fork_point("servers diverged at WAL location 0/402FB58 on timeline 4"), Some((Lsn(0x402FB58), 4)));
    assert_eq!(fork_point("servers diverged at WAL location 1/0 on timeline 12."), Some((Lsn(1 << 32), 12)));
    for bad in ["", "servers diverged", "servers diverged at WAL location x/y on timeline 4", "servers diverged at WAL location 0/1 on timeline"] {
        assert_eq!(fork_point(bad), None, "{bad}");
    }
    // What a fast shutdown of an isolated primary leaves (PostgreSQL 15's pg_waldump).
    let shutdown = "rmgr: Standby     len (rec/tot):     50/    50, tx:          0, lsn: 0/0402FB58, prev 0/0402FB20, desc: RUNNING_XACTS nextXid 745 latestCompletedXid 744 oldestRunningXid 745\n\
rmgr: XLOG        len (rec/tot):    114/   114, tx:          0, lsn: 0/0402FBD0, prev 0/0402FB58, desc: CHECKPOINT_SHUTDOWN redo 0/402FBD0; tli 4; prev tli 4; fpw true; xid 0:745; oid 24576; multi 1; offset 0; oldest xid 716 in DB 1; oldest multi 1 in DB 1; oldest/newest commit timestamp xid: 0/0; oldest running xid 0; shutdown\n";
    let ok = judge_past_fork(shutdown).unwrap();
    assert_eq!(ok, "2 records: Standby RUNNING_XACTS, XLOG CHECKPOINT_SHUTDOWN");
    let commit = format!(
        "{shutdown}rmgr: Heap        len (rec/tot):     59/    59, tx:        745, lsn: 0/0402FC48, prev 0/0402FBD0, desc: INSERT off 3 flags 0x00, blkref #0: rel 1663/5/16384 blk 0\n\
rmgr: Transaction len (rec/tot):     34/    34, tx:        745, lsn: 0/0402FC88, prev 0/0402FC48, desc: COMMIT 2026-12-07 03:40:00.000000 UTC\n"
    );
    assert!(judge_past_fork(&commit).unwrap_err().contains("transaction 745"), "a commit past the fork");
    let message = "rmgr: LogicalMessage len (rec/tot):     65/    65, tx:          0, lsn: 0/0402FB58, prev 0/0402FB20, desc: MESSAGE non-transactional, prefix \"x\"; payload (1 bytes): 79\n";
    assert!(judge_past_fork(message).is_err(), "a logical message is a client's data");
    assert!(judge_past_fork("").is_err(), "nothing read: nothing proven");
    assert!(judge_past_fork("rmgr: XLOG garbage\n").is_err(), "unreadable: nothing proven");
    let many = "rmgr: Standby     len (rec/tot):     50/    50, tx:          0, lsn: 0/0402FB58, prev 0/0402FB20, desc: RUNNING_XACTS\n".repeat(201);
    assert!(judge_past_fork(&many).is_err(), "more than a shutdown leaves");
}

#[test]
fn a_node_recovered_in_the_promoting_transition_takes_part_in_the_election() {
    use crate::ocf::env::Notify;
    let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    // Seen in the lab: node1's failed promote recovered (its instance stopped and started
    // again) in the transition that promotes node3.
    let n = Notify {
        active_uname: v(&["node1", "node3"]),
        stop_uname: v(&["node1"]),
        start_uname: v(&["node1"]),
        promote_uname: v(&["node3"]),
        ..Default::default()
    };
    assert_eq!(super::notify::taking_part(&n), "node1 node3");
    // Stopped for good: out; starting: in.
    let n = Notify { active_uname: v(&["node1", "node2"]), stop_uname: v(&["node2"]), start_uname: v(&["node3"]), ..Default::default() };
    assert_eq!(super::notify::taking_part(&n), "node1 node3");
}
