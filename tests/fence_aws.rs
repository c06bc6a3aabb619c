//! fence_paceline_aws against moto, run from a namespace playing the fencing node (IMDSv2
//! stub + EC2 endpoint proxy on the namespace's loopback, see tests/common/aws.rs).
//!
//! What this proves: every action through stdin (as Pacemaker's fencer writes it) and
//! argv, with fence_aws's stdout lines and exit codes, and EC2's state checked after each
//! power action; idempotency; several plugs in one call; the race check (a fencing node
//! whose own instance is stopped refuses, and so does one that cannot reach IMDS, in
//! bounded time; it costs no request of its own); power_timeout as a real deadline (also with `PCMK_service` set, under
//! which fence_aws disables its timeouts); throttling retried, refused credentials failing
//! fast; monitor failing on error answers, garbage and dropped connections; list and
//! list-status with the Name tag and a filter; secrets never in output or debug files.

#[path = "common/aws.rs"]
mod aws;
mod common;

use std::time::{Duration, Instant};

use aws::{bin, skip_reason, Cloud, FaultKind, Instance, Node, ACCESS_KEY, SECRET_KEY};
use common::Run;

const AGENT: &str = "fence_paceline_aws";

fn expect(r: &Run, rc: i32, what: &str) {
    assert_eq!(r.rc, rc, "{what}: rc {} (want {rc})\nstdout: {}\nstderr: {}", r.rc, r.stdout, r.stderr);
}

/// Run with `name=value` lines on stdin, as pacemaker-fenced does (it also sets
/// `PCMK_service` in its children's environment).
fn fenced(node: &Node, lines: &str) -> (Run, Duration) {
    let t = Instant::now();
    let r = node.run(&bin(AGENT), &[], &[("PCMK_service", "pacemaker-fenced")], Some(lines));
    (r, t.elapsed())
}

/// Run with a command line.
fn cli(node: &Node, args: &[&str]) -> (Run, Duration) {
    let t = Instant::now();
    let r = node.run(&bin(AGENT), args, &[], None);
    (r, t.elapsed())
}

/// A cloud with the fencing node `me` (its namespace) and two more instances.
fn setup(tag: &str) -> (Cloud, Node, Instance, Instance) {
    let cloud = Cloud::new();
    let me = cloud.instance("node1", "192.0.2.11");
    let (n2, n3) = (cloud.instance("node2", "192.0.2.12"), cloud.instance("node3", "192.0.2.13"));
    let node = Node::new(tag, &me);
    (cloud, node, n2, n3)
}

#[test]
fn every_action_through_stdin_like_the_fencer() {
    skip_unless_possible!(AGENT);
    let (cloud, node, n2, _) = setup("fa-stdin");
    let lines = |action: &str| format!("action={action}\nnodename=node2\nport={}\nregion=eu-west-1\nstonith_status_sleep=0.2\n", n2.id);

    let (r, _) = fenced(&node, &lines("status"));
    expect(&r, 0, "status of a running instance");
    assert_eq!(r.stdout, "Status: ON\n");
    let (r, _) = fenced(&node, &lines("monitor"));
    expect(&r, 0, "monitor");

    let (r, _) = fenced(&node, &lines("off"));
    expect(&r, 0, "off");
    assert_eq!(r.stdout, "Success: Powered OFF\n");
    assert_eq!(cloud.state(&n2.id), "stopped", "off reported only once EC2 says stopped");
    let (r, _) = fenced(&node, &lines("status"));
    expect(&r, 2, "status of a stopped instance");
    assert_eq!(r.stdout, "Status: OFF\n");
    let (r, _) = fenced(&node, &lines("off"));
    expect(&r, 0, "off again");
    assert_eq!(r.stdout, "Success: Already OFF\n");

    let (r, _) = fenced(&node, &lines("on"));
    expect(&r, 0, "on");
    assert_eq!(r.stdout, "Success: Powered ON\n");
    assert_eq!(cloud.state(&n2.id), "running");
    let (r, _) = fenced(&node, &lines("on"));
    expect(&r, 0, "on again");
    assert_eq!(r.stdout, "Success: Already ON\n");

    // No action line: reboot, fence-agents' default.
    let (r, _) = fenced(&node, &format!("nodename=node2\nplug={}\nstonith_status_sleep=0.2\n", n2.id));
    expect(&r, 0, "reboot (default action)");
    assert_eq!(r.stdout, "Success: Rebooted\n");
    assert_eq!(cloud.state(&n2.id), "running");

    // The fencer's monitor has no plug.
    let (r, _) = fenced(&node, "action=monitor\nregion=eu-west-1\n");
    expect(&r, 0, "monitor without plug");
    let (r, _) = fenced(&node, &format!("action=list\nfilter=vpc-id={}\n", cloud.vpc));
    expect(&r, 0, "list");
    assert!(r.stdout.lines().any(|l| l == format!("{},node2", n2.id)), "{}", r.stdout);
    assert_eq!(r.stdout.lines().count(), 3, "three instances in this VPC: {}", r.stdout);
    let (r, _) = fenced(&node, "action=validate-all\nregion=eu-west-1\n");
    expect(&r, 0, "validate-all");
}

#[test]
fn every_action_through_the_command_line() {
    skip_unless_possible!(AGENT);
    let (cloud, node, n2, n3) = setup("fa-argv");
    let (r, _) = cli(&node, &["-o", "status", "-n", &n2.id, "-r", "eu-west-1"]);
    expect(&r, 0, "status");
    assert_eq!(r.stdout, "Status: ON\n");
    let (r, _) = cli(&node, &["--action=off", &format!("--plug={}", n2.id), "--stonith-status-sleep=0.2"]);
    expect(&r, 0, "off");
    assert_eq!(r.stdout, "Success: Powered OFF\n");
    assert_eq!(cloud.state(&n2.id), "stopped");
    let (r, _) = cli(&node, &["-ostatus", &format!("-n{}", n2.id)]);
    expect(&r, 2, "status off");
    let (r, _) = cli(&node, &["-o", "list-status", "--filter", &format!("vpc-id={}", cloud.vpc), "-C", ";"]);
    expect(&r, 0, "list-status");
    assert!(r.stdout.lines().any(|l| l == format!("{};node2;off", n2.id)), "{}", r.stdout);
    assert!(r.stdout.lines().any(|l| l == format!("{};node3;on", n3.id)), "{}", r.stdout);
    let (r, _) = cli(&node, &["-o", "list", "--filter", "tag:Name=node3"]);
    expect(&r, 0, "list with a tag filter");
    assert!(r.stdout.lines().any(|l| l == format!("{},node3", n3.id)) && !r.stdout.contains("node2"), "{}", r.stdout);
    let (r, _) = cli(&node, &["-o", "on", "-n", &n2.id, "--retry-on", "2"]);
    expect(&r, 0, "on");
    assert_eq!(cloud.state(&n2.id), "running");
    let (r, _) = cli(&node, &["-o", "reboot", "-n", &n2.id, "-q"]);
    expect(&r, 0, "reboot");
    assert_eq!(r.stdout, "Success: Rebooted\n");
    let (r, _) = cli(&node, &["-o", "monitor", "-n", &format!("{},{}", n2.id, n3.id)]);
    expect(&r, 0, "monitor of the configured instances");
}

#[test]
fn several_plugs_in_one_call() {
    skip_unless_possible!(AGENT);
    let (cloud, node, n2, n3) = setup("fa-multi");
    let plugs = format!("{},{}", n2.id, n3.id);
    let (r, _) = fenced(&node, &format!("action=off\nplug={plugs}\nstonith_status_sleep=0.2\n"));
    expect(&r, 0, "off of two");
    assert_eq!((cloud.state(&n2.id).as_str(), cloud.state(&n3.id).as_str()), ("stopped", "stopped"));
    let (r, _) = fenced(&node, &format!("action=status\nplug={plugs}\n"));
    expect(&r, 2, "both off");
    let (r, _) = fenced(&node, &format!("action=on\nplug={}\n", n2.id));
    expect(&r, 0, "one on");
    let (r, _) = fenced(&node, &format!("action=status\nplug={plugs}\n"));
    expect(&r, 0, "on when any is on");
    let (r, _) = fenced(&node, &format!("action=off\nplug={plugs}\nstonith_status_sleep=0.2\n"));
    expect(&r, 0, "off with one already off");
    assert_eq!(r.stdout, "Success: Powered OFF\n");
}

#[test]
fn the_race_check_refuses_when_this_node_is_being_stopped() {
    skip_unless_possible!(AGENT);
    let (cloud, node, n2, _) = setup("fa-race");
    // Split brain: node2 fenced us first; our instance is stopped, we still run a moment.
    aws::block(async { cloud.client.stop_instances().instance_ids(&node.instance.id).force(true).send().await.expect("StopInstances") });
    let (r, took) = fenced(&node, &format!("action=reboot\nplug={}\n", n2.id));
    expect(&r, 1, "fencing from a stopped node");
    assert!(r.stderr.contains(&format!("race check: this node's own instance {} is stopped", node.instance.id)), "{}", r.stderr);
    assert!(r.stdout.is_empty());
    assert_eq!(cloud.state(&n2.id), "running", "the survivor was left alone");
    assert!(took < Duration::from_secs(10), "refused at once: {took:?}");
    assert!(node.imds_requests().iter().any(|l| l.contains("instance-id")), "{:?}", node.imds_requests());

    // status fences nothing: no race check.
    let (r, _) = fenced(&node, &format!("action=status\nplug={}\n", n2.id));
    expect(&r, 0, "status is not refused");

    // Outside EC2 the check can be turned off.
    let (r, _) = fenced(&node, &format!("action=off\nplug={}\nskip_race_check=1\nstonith_status_sleep=0.2\n", n2.id));
    expect(&r, 0, "skip_race_check");
    assert_eq!(cloud.state(&n2.id), "stopped");
}

/// The race check reads this node's instance and the target in one DescribeInstances,
/// which is also the off sequence's first look: off of a running instance is that request,
/// StopInstances, then the polls until EC2 says stopped (moto stops at once: one poll).
/// An unknown target makes EC2 refuse that whole request: the check then asks for this
/// node alone, and the error names the target, not the race check.
#[test]
fn the_race_check_is_the_first_look_of_off() {
    skip_unless_possible!(AGENT);
    let (cloud, node, n2, _) = setup("fa-firstlook");
    let before = node.requests();
    let (r, _) = fenced(&node, &format!("action=off\nplug={}\nstonith_status_sleep=0.2\n", n2.id));
    expect(&r, 0, "off");
    assert_eq!(cloud.state(&n2.id), "stopped");
    assert_eq!(node.requests() - before, 3, "DescribeInstances (race check + first look), StopInstances, one poll");

    let (r, _) = fenced(&node, "action=off\nplug=i-0000000000000dead\n");
    expect(&r, 1, "off of an unknown instance");
    assert!(!r.stderr.contains("race check"), "{}", r.stderr);
    assert!(r.stderr.contains("i-0000000000000dead"), "{}", r.stderr);
}

#[test]
fn the_race_check_fails_closed_without_imds() {
    skip_unless_possible!(AGENT);
    let (cloud, node, n2, _) = setup("fa-noimds");
    node.set_imds(false);
    let (r, took) = fenced(&node, &format!("action=off\nplug={}\nregion=eu-west-1\n", n2.id));
    expect(&r, 1, "off without IMDS");
    assert!(r.stderr.contains("race check: cannot tell this node's own instance"), "{}", r.stderr);
    assert!(took < Duration::from_secs(25), "bounded: {took:?}");
    assert_eq!(cloud.state(&n2.id), "running");
}

#[test]
fn power_timeout_is_a_real_deadline() {
    skip_unless_possible!(AGENT);
    let (cloud, node, n2, _) = setup("fa-deadline");
    // EC2 answers, but only after 30 s.
    node.set_fault(FaultKind::Delay(Duration::from_secs(30)), usize::MAX);
    for action in ["off", "status", "monitor"] {
        let (r, took) = fenced(&node, &format!("action={action}\nplug={}\npower_timeout=3\nskip_race_check=1\n", n2.id));
        expect(&r, 1, action);
        assert!(r.stderr.contains("timed out"), "{action}: {}", r.stderr);
        assert!(r.stdout.is_empty(), "{action}: claims nothing: {}", r.stdout);
        assert!(took < Duration::from_secs(8), "{action}: power_timeout=3 under PCMK_service, took {took:?}");
    }
    node.clear_fault();
    assert_eq!(cloud.state(&n2.id), "running");
}

/// A reboot whose power-on fails after a confirmed off (EC2 has no capacity for the
/// instance in its zone): the node is fenced, so the reboot succeeds, as fence-agents'
/// does; the failed power-on is an error line naming the instance and EC2's reason.
#[test]
fn a_reboot_whose_power_on_fails_still_fenced_the_node() {
    skip_unless_possible!(AGENT);
    let (cloud, node, n2, _) = setup("fa-noon");
    node.set_fault_on("StartInstances", FaultKind::error(500, "InsufficientInstanceCapacity"), usize::MAX);
    let (r, _) = fenced(&node, &format!("action=reboot\nplug={}\nskip_race_check=1\nstonith_status_sleep=0.2\npower_timeout=3\n", n2.id));
    expect(&r, 0, "reboot without power-on");
    assert_eq!(r.stdout, "Success: Rebooted\n");
    assert!(r.stderr.contains("powered OFF (fenced), but not powered ON again") && r.stderr.contains("InsufficientInstanceCapacity"), "{}", r.stderr);
    assert_eq!(cloud.state(&n2.id), "stopped", "the node is off");
    node.clear_fault();
    // An off that is not confirmed still fails the reboot.
    node.set_fault_on("StopInstances", FaultKind::error(403, "UnauthorizedOperation"), usize::MAX);
    let (r, _) = fenced(&node, &format!("action=on\nplug={}\n", n2.id));
    expect(&r, 0, "on again");
    let (r, _) = fenced(&node, &format!("action=reboot\nplug={}\nskip_race_check=1\n", n2.id));
    expect(&r, 1, "reboot whose off is refused");
    node.clear_fault();
}

#[test]
fn throttling_is_retried_and_refusals_fail_fast() {
    skip_unless_possible!(AGENT);
    let (cloud, node, n2, _) = setup("fa-errors");
    node.set_fault(FaultKind::error(503, "RequestLimitExceeded"), 3);
    let (r, _) = fenced(&node, &format!("action=off\nplug={}\nskip_race_check=1\nstonith_status_sleep=0.2\n", n2.id));
    expect(&r, 0, "off through throttling");
    assert_eq!(cloud.state(&n2.id), "stopped");

    node.set_fault(FaultKind::error(403, "UnauthorizedOperation"), usize::MAX);
    let (r, took) = fenced(&node, &format!("action=on\nplug={}\npower_timeout=30\n", n2.id));
    expect(&r, 1, "on refused");
    assert!(r.stderr.contains("UnauthorizedOperation"), "{}", r.stderr);
    assert!(took < Duration::from_secs(5), "a refusal does not wait for power_timeout: {took:?}");
    node.clear_fault();

    let (r, _) = fenced(&node, "action=status\nplug=i-0123456789abcdef0\n");
    expect(&r, 1, "unknown instance");
    assert!(r.stderr.contains("InvalidInstanceID.NotFound") && r.stdout.is_empty(), "{}", r.stderr);
}

#[test]
fn monitor_fails_on_any_error() {
    skip_unless_possible!(AGENT);
    let (_cloud, node, n2, _) = setup("fa-monitor");
    for (fault, what) in [
        (FaultKind::error(500, "InternalError"), "InternalError"),
        (FaultKind::error(401, "AuthFailure"), "AuthFailure"),
        (FaultKind::Garbage, "garbage"),
        (FaultKind::Drop, "dropped connection"),
    ] {
        node.set_fault(fault, usize::MAX);
        for plug in [format!("plug={}\n", n2.id), String::new()] {
            let (r, took) = fenced(&node, &format!("action=monitor\n{plug}power_timeout=4\n"));
            expect(&r, 1, &format!("monitor on {what} ({plug:?})"));
            assert!(took < Duration::from_secs(10), "{what}: {took:?}");
        }
    }
    node.clear_fault();
    let (r, _) = fenced(&node, &format!("action=monitor\nplug={}\n", n2.id));
    expect(&r, 0, "monitor once the endpoint is healthy again");
    let (r, _) = fenced(&node, "action=monitor\nplug=i-0123456789abcdef0\n");
    expect(&r, 1, "monitor of a configured instance that does not exist");
}

#[test]
fn secrets_stay_secret() {
    skip_unless_possible!(AGENT);
    let (_cloud, node, n2, _) = setup("fa-secret");
    let debug = format!("/tmp/fence-aws-debug-{}.log", std::process::id());
    let stdin = format!("action=status\nplug={}\naccess_key={ACCESS_KEY}\nsecret_key={SECRET_KEY}\nverbose=1\ndebug_file={debug}\n", n2.id);
    let (r, _) = fenced(&node, &stdin);
    expect(&r, 0, "status with explicit keys on stdin");
    let (r2, _) = cli(&node, &["-v", "-o", "status", "-n", &n2.id, "-a", ACCESS_KEY, "-s", SECRET_KEY]);
    expect(&r2, 0, "status with explicit keys on argv");
    let log = std::fs::read_to_string(&debug).unwrap_or_default();
    let _ = std::fs::remove_file(&debug);
    assert!(log.contains("DescribeInstances"), "debug file: {log}");
    for text in [&r.stdout, &r.stderr, &r2.stdout, &r2.stderr, &log] {
        assert!(!text.contains(SECRET_KEY), "secret key leaked: {text}");
    }
    assert!(r.stderr.contains("secret_key=(hidden)"), "{}", r.stderr);
}
