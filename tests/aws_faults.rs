//! The AWS agents under fault injection: a proxy between the agent and moto (inside the
//! instance's namespace) answers with throttling errors, 500s, slow answers, garbage or
//! dropped connections. The agents must retry within the action's timeout
//! (`CRM_meta_timeout`), succeed when the fault is transient, and otherwise answer with an
//! honest code — never 7 for "cannot tell" — before Pacemaker's timeout.

#[path = "common/aws.rs"]
mod aws;
mod common;

use std::time::{Duration, Instant};

use aws::{skip_reason, Cloud, FaultKind, Node};

const VIP: (&str, &str) = ("secondary_private_ip", "192.0.2.100");

fn timed(node: &Node, agent: &str, action: &str, timeout_ms: &'static str, extra: &[(&'static str, &'static str)]) -> (common::Run, Duration) {
    let mut env = vec![VIP, ("OCF_RESKEY_CRM_meta_timeout", timeout_ms)];
    env.extend_from_slice(extra);
    let t = Instant::now();
    let r = node.agent(agent, action, &env);
    (r, t.elapsed())
}

#[test]
fn transient_faults_are_retried_within_the_timeout() {
    skip_unless_possible!("aws_faults");
    let cloud = Cloud::new();
    let n = Node::new("flt-t", &cloud.instance("node1", "192.0.2.11"));
    let cases = [
        ("throttling", FaultKind::error(503, "RequestLimitExceeded"), 3),
        ("500", FaultKind::error(500, "InternalError"), 2),
        ("503 Unavailable", FaultKind::error(503, "Unavailable"), 2),
        ("dropped connection", FaultKind::Drop, 2),
        ("slow answer", FaultKind::Delay(Duration::from_secs(30)), 1),
    ];
    for (what, fault, count) in cases {
        let before = n.requests();
        n.set_fault(fault, count);
        let (r, took) = timed(&n, "awsvip", "monitor", "20000", &[]);
        assert_eq!(r.rc, 7, "{what}: {}", r.stderr);
        assert!(took < Duration::from_secs(18), "{what}: took {took:?}");
        assert!(n.requests() - before > count, "{what}: no retry seen");
    }
    // A start through throttling still assigns the address and waits for it.
    n.set_fault(FaultKind::error(503, "RequestLimitExceeded"), 2);
    let (r, _) = timed(&n, "awsvip", "start", "20000", &[]);
    assert_eq!(r.rc, 0, "{}", r.stderr);
    n.set_fault(FaultKind::error(500, "InternalError"), 2);
    let (r, _) = timed(&n, "awsvip", "stop", "20000", &[]);
    assert_eq!(r.rc, 0, "{}", r.stderr);
}

/// One persistent fault: the agents give up with 1 and the fault named, before the timeout.
fn persistent(tag: &str, fault: FaultKind, needle: &str, runs: &[(&str, &str, common::Pairs<'static>)]) {
    let cloud = Cloud::new();
    let n = Node::new(tag, &cloud.instance("node1", "192.0.2.21"));
    n.set_fault(fault, usize::MAX);
    for (agent, action, extra) in runs {
        let (r, took) = timed(&n, agent, action, "5000", extra);
        assert_eq!(r.rc, 1, "{agent} {action} under {tag}: {}", r.stderr);
        assert!(took < Duration::from_secs(5), "{agent} {action} under {tag}: took {took:?} (timeout 5 s)");
        assert!(r.stderr.contains(needle), "{agent} {action} under {tag}: reason lacks '{needle}': {}", r.stderr);
    }
}

const EIP: &[(&str, &str)] = &[("allocation_id", "eipalloc-0123456789abcdef0")];

#[test]
fn persistent_throttling() {
    skip_unless_possible!("aws_faults");
    persistent(
        "flt-thr",
        FaultKind::error(503, "RequestLimitExceeded"),
        "RequestLimitExceeded",
        &[("awsvip", "monitor", &[]), ("awsvip", "start", &[]), ("awseip", "monitor", EIP)],
    );
}

#[test]
fn persistent_500() {
    skip_unless_possible!("aws_faults");
    persistent("flt-500", FaultKind::error(500, "InternalError"), "InternalError", &[("awsvip", "monitor", &[]), ("awsvip", "stop", &[])]);
}

#[test]
fn persistent_garbage() {
    skip_unless_possible!("aws_faults");
    persistent("flt-gbg", FaultKind::Garbage, "unrecognised answer", &[("awsvip", "monitor", &[]), ("awseip", "stop", EIP)]);
}

#[test]
fn persistent_dropped_connections_and_slow_answers() {
    skip_unless_possible!("aws_faults");
    persistent("flt-drop", FaultKind::Drop, "EC2 DescribeNetworkInterfaces", &[("awsvip", "monitor", &[])]);
    persistent("flt-slow", FaultKind::Delay(Duration::from_secs(60)), "EC2 DescribeNetworkInterfaces", &[("awsvip", "monitor", &[]), ("awsvip", "start", &[])]);
}

#[test]
fn imds_down_is_cannot_tell() {
    skip_unless_possible!("aws_faults");
    let cloud = Cloud::new();
    let n = Node::new("flt-imds", &cloud.instance("node1", "192.0.2.31"));
    n.set_imds(false);
    let (r, took) = timed(&n, "awsvip", "monitor", "5000", &[]);
    // No IMDS at all: this node cannot run the agent (OCF_ERR_INSTALLED, as heartbeat's
    // agents say off EC2), and the exit reason leads with that, within Pacemaker's 128.
    assert_eq!(r.rc, 5, "{}", r.stderr);
    assert!(took < Duration::from_secs(5), "{took:?}");
    let reason = r.stderr.lines().find_map(|l| l.strip_prefix("ocf-exit-reason:")).unwrap_or_default().to_owned();
    assert!(reason.starts_with("no instance metadata service answers on this node"), "{}", r.stderr);
    assert!(reason.contains("set instance_id"), "what to do survives the cut: {reason}");
    assert!(reason.len() <= 128, "{reason}");
    // The whole chain is in the log (here: stderr, no syslog/file configured for a test).
    assert!(r.stderr.contains("GET /latest/meta-data/"), "{}", r.stderr);
    for agent in ["awsvip", "awseip"] {
        for action in ["validate-all", "validate"] {
            let (r, _) = timed(&n, agent, action, "5000", if agent == "awseip" { EIP } else { &[] });
            assert_eq!(r.rc, 5, "{agent} {action}: {}", r.stderr);
        }
    }
}
