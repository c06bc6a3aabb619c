//! ocf:paceline:awsvip against moto, run inside a namespace playing each instance (IMDS
//! stub + EC2 endpoint on the namespace's loopback): every action, idempotency, the
//! address moving between two instances, bad input, auth errors, and no secret in logs.

#[path = "common/aws.rs"]
mod aws;
mod common;

use aws::{expect, leak, skip_reason, Cloud, FaultKind, Node, ACCESS_KEY, SECRET_KEY};
use std::time::Instant;

const VIP: &str = "192.0.2.100";

fn vip(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut v = vec![("secondary_private_ip", VIP)];
    v.extend_from_slice(extra);
    v
}

#[test]
fn every_action_and_the_address_moving_between_two_instances() {
    skip_unless_possible!("awsvip");
    let cloud = Cloud::new();
    let (ia, ib) = (cloud.instance("node1", "192.0.2.11"), cloud.instance("node2", "192.0.2.12"));
    let (a, b) = (Node::new("vip-a", &ia), Node::new("vip-b", &ib));
    let probe = vip(&[("OCF_RESKEY_CRM_meta_interval", "0")]);
    let recurring = vip(&[("OCF_RESKEY_CRM_meta_interval", "20000")]);

    expect(&a.agent("awsvip", "validate-all", &vip(&[])), 0, "validate-all");
    expect(&a.agent("awsvip", "monitor", &probe), 7, "probe before start");
    expect(&a.agent("awsvip", "stop", &vip(&[])), 0, "stop when never started");

    let r = a.agent("awsvip", "start", &vip(&[]));
    expect(&r, 0, "start on A");
    assert!(cloud.eni_ips(&ia.eni).contains(&VIP.to_string()), "{:?}", cloud.eni_ips(&ia.eni));
    expect(&a.agent("awsvip", "monitor", &recurring), 0, "monitor on A");
    expect(&a.agent("awsvip", "start", &vip(&[])), 0, "second start on A");
    assert_eq!(cloud.eni_ips(&ia.eni).iter().filter(|i| *i == VIP).count(), 1);

    // B takes it over: EC2 (moto, patched like EC2) moves it; A's monitor now says 7.
    expect(&b.agent("awsvip", "monitor", &probe), 7, "probe on B");
    expect(&b.agent("awsvip", "start", &vip(&[])), 0, "start on B");
    assert!(cloud.eni_ips(&ib.eni).contains(&VIP.to_string()));
    assert!(!cloud.eni_ips(&ia.eni).contains(&VIP.to_string()), "{:?}", cloud.eni_ips(&ia.eni));
    expect(&a.agent("awsvip", "monitor", &recurring), 7, "monitor on A after B took it");
    expect(&b.agent("awsvip", "monitor", &recurring), 0, "monitor on B");

    // A's stop must not touch B's address.
    expect(&a.agent("awsvip", "stop", &vip(&[])), 0, "stop on A (not here)");
    assert!(cloud.eni_ips(&ib.eni).contains(&VIP.to_string()));
    expect(&b.agent("awsvip", "stop", &vip(&[])), 0, "stop on B");
    assert!(!cloud.eni_ips(&ib.eni).contains(&VIP.to_string()));
    expect(&b.agent("awsvip", "stop", &vip(&[])), 0, "second stop on B");
    expect(&b.agent("awsvip", "monitor", &recurring), 7, "monitor after stop");

    // Exact matching: 192.0.2.10 held here is not 192.0.2.100 (nor the other way round).
    cloud.assign(&ia.eni, "192.0.2.10");
    expect(&a.agent("awsvip", "monitor", &recurring), 7, "monitor with a prefix-sharing address");

    // migrate_from/migrate_to are start/stop.
    expect(&a.agent("awsvip", "migrate_from", &vip(&[])), 0, "migrate_from");
    expect(&a.agent("awsvip", "monitor", &recurring), 0, "monitor after migrate_from");
    expect(&a.agent("awsvip", "migrate_to", &vip(&[])), 0, "migrate_to");
    expect(&a.agent("awsvip", "monitor", &recurring), 7, "monitor after migrate_to");

    // One IMDSv2 token per run (cached by the client), never a GET without one.
    let before = a.imds_requests().len();
    expect(&a.agent("awsvip", "monitor", &recurring), 7, "monitor");
    let log = a.imds_requests()[before..].to_vec();
    assert_eq!(log.iter().filter(|l| l.starts_with("PUT")).count(), 1, "{log:?}");
    assert!(log.contains(&"GET /latest/meta-data/instance-id".to_string()), "{log:?}");

    // A token that turns out expired (401) is replaced, and the run still succeeds.
    let before = a.imds_requests().len();
    a.expire_next_imds_token();
    expect(&a.agent("awsvip", "monitor", &recurring), 7, "monitor with an expired IMDS token");
    let log = a.imds_requests()[before..].to_vec();
    assert_eq!(log.iter().filter(|l| l.starts_with("PUT")).count(), 2, "{log:?}");

    // The primary address of an interface is not a movable address.
    let r = a.agent("awsvip", "start", &[("secondary_private_ip", "192.0.2.11")]);
    expect(&r, 6, "start with an interface's primary address");
    let r = a.agent("awsvip", "stop", &[("secondary_private_ip", "192.0.2.11")]);
    expect(&r, 0, "stop with an interface's primary address (nothing of ours to undo)");
    assert!(cloud.eni_ips(&ia.eni).contains(&"192.0.2.11".to_string()));
}

#[test]
fn parameters_interface_instance_id_region_and_endpoint_url() {
    skip_unless_possible!("awsvip");
    let cloud = Cloud::new();
    let ia = cloud.instance("node1", "192.0.2.21");
    let a = Node::new("vip-p", &ia);
    let monitor = |extra: &[(&'static str, &'static str)]| a.agent("awsvip", "monitor", &vip(extra));

    // endpoint_url as a parameter (environment removed), through the name "localhost":
    // the static binary resolves it with getaddrinfo.
    let r = monitor(&[("AWS_ENDPOINT_URL", ""), ("endpoint_url", "http://localhost:5000"), ("region", "eu-west-1")]);
    expect(&r, 7, "endpoint_url=http://localhost:5000");
    // The SDK's per-service variable works too.
    expect(&monitor(&[("AWS_ENDPOINT_URL", ""), ("AWS_ENDPOINT_URL_EC2", "http://127.0.0.1:5000")]), 7, "AWS_ENDPOINT_URL_EC2");
    // instance_id given: no IMDS at all.
    let id = leak(&ia.id);
    let before = a.imds_requests().len();
    expect(&monitor(&[("instance_id", id), ("region", "eu-west-1")]), 7, "instance_id + region");
    assert_eq!(a.imds_requests().len(), before, "IMDS asked although instance_id and region were given");
    // interface by index, ENI id; a missing interface is OCF_ERR_INSTALLED on start.
    expect(&a.agent("awsvip", "start", &vip(&[("interface", "0")])), 0, "start interface=0");
    let eni = leak(&ia.eni);
    expect(&monitor(&[("interface", eni)]), 0, "monitor interface=<eni>");
    expect(&a.agent("awsvip", "start", &vip(&[("interface", "3")])), 5, "start on a missing interface");
    expect(&a.agent("awsvip", "validate-all", &vip(&[("interface", "3")])), 6, "validate-all with a missing interface");
    expect(&a.agent("awsvip", "stop", &vip(&[])), 0, "stop");
    // heartbeat leftovers are accepted with a warning.
    let r = monitor(&[("api_delay", "3"), ("awscli", "/usr/bin/aws"), ("HA_LOGFACILITY", "none")]);
    expect(&r, 7, "heartbeat parameters");
}

#[test]
fn bad_input_gives_the_right_code_without_panicking() {
    skip_unless_possible!("awsvip");
    let cloud = Cloud::new();
    let a = Node::new("vip-bad", &cloud.instance("node1", "192.0.2.31"));
    let cases: &[common::BadCase] = &[
        (&[], 6, "'secondary_private_ip' is required"),
        (&[("secondary_private_ip", "192.0.2")], 6, "not an IPv4 address"),
        (&[("secondary_private_ip", "2001:db8::1")], 6, "IPv6"),
        (&[("secondary_private_ip", VIP), ("endpoint_url", "ftp://x")], 6, "endpoint_url"),
        (&[("secondary_private_ip", VIP), ("region", "Europe")], 6, "region"),
        (&[("secondary_private_ip", VIP), ("profile", "nosuchprofile")], 6, "nosuchprofile"),
        (&[("secondary_private_ip", VIP), ("instance_id", "i-zzz")], 6, "instance_id"),
        (&[("secondary_private_ip", VIP), ("AWS_REGION", "not a region")], 6, "AWS_REGION"),
        // No credentials anywhere (environment cleared, no files, IMDS has no role): this node.
        (&[("secondary_private_ip", VIP), ("AWS_ACCESS_KEY_ID", ""), ("AWS_SECRET_ACCESS_KEY", "")], 4, "no AWS credentials"),
    ];
    for action in ["start", "stop", "monitor", "validate-all"] {
        for (env, rc, needle) in cases {
            let r = a.agent("awsvip", action, env);
            assert_eq!(r.rc, *rc, "{action} {env:?}: {}", r.stderr);
            assert!(r.stderr.contains(needle), "{action} {env:?}: reason lacks '{needle}': {}", r.stderr);
            assert!(!r.stderr.contains("panicked") && !r.stderr.contains("internal error"), "{}", r.stderr);
        }
    }
    // An endpoint that refuses connections: an error (never 7), long before the timeout.
    let t = Instant::now();
    let r = a.agent("awsvip", "monitor", &vip(&[("endpoint_url", "http://127.0.0.1:5999"), ("OCF_RESKEY_CRM_meta_timeout", "8000")]));
    assert_eq!(r.rc, 1, "{}", r.stderr);
    assert!(t.elapsed().as_secs_f64() < 8.0, "took {:?}", t.elapsed());
    // A monitor for an instance EC2 does not know: nothing is attached to it, so not here;
    // validate-all says the configuration is wrong.
    expect(&a.agent("awsvip", "validate-all", &vip(&[("instance_id", "i-0123456789abcdef0")])), 6, "validate-all, unknown instance");
    // Unknown action, no action.
    assert_eq!(a.agent("awsvip", "promote", &vip(&[])).rc, 3);
    assert_eq!(a.run(&aws::bin("awsvip"), &[], &[], None).rc, 2);
}

#[test]
fn auth_errors_are_perm_with_the_aws_code() {
    skip_unless_possible!("awsvip");
    let cloud = Cloud::new();
    let a = Node::new("vip-auth", &cloud.instance("node1", "192.0.2.41"));
    for (code, status) in [("AuthFailure", 401), ("UnauthorizedOperation", 403), ("InvalidClientTokenId", 403), ("SignatureDoesNotMatch", 403)] {
        a.set_fault(FaultKind::error(status, code), usize::MAX);
        for action in ["start", "stop", "monitor"] {
            let r = a.agent("awsvip", action, &vip(&[]));
            assert_eq!(r.rc, 4, "{action} with {code}: {}", r.stderr);
            assert!(r.stderr.contains(code), "{action}: reason lacks {code}: {}", r.stderr);
        }
    }
    a.clear_fault();
    // A configured thing EC2 does not know → 6 (here: the ENI of the configured interface).
    a.set_fault(FaultKind::error(400, "InvalidNetworkInterfaceID.NotFound"), usize::MAX);
    assert_eq!(a.agent("awsvip", "monitor", &vip(&[])).rc, 6);
}

#[test]
fn secrets_never_reach_the_logs() {
    skip_unless_possible!("awsvip");
    let cloud = Cloud::new();
    let a = Node::new("vip-sec", &cloud.instance("node1", "192.0.2.51"));
    let dir = std::env::temp_dir().join(format!("paceline-awsvip-logs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (log, dbg) = (dir.join("ha.log"), dir.join("ha-debug.log"));
    let (log_s, dbg_s): (&'static str, &'static str) = (leak(log.display().to_string()), leak(dbg.display().to_string()));
    let env = vip(&[("HA_DEBUG", "1"), ("HA_LOGFILE", log_s), ("HA_DEBUGLOG", dbg_s)]);
    let mut out = String::new();
    for action in ["validate-all", "start", "monitor", "stop"] {
        let r = a.agent("awsvip", action, &env);
        assert_eq!(r.rc, 0, "{action}: {}", r.stderr);
        out += &r.stdout;
        out += &r.stderr;
    }
    a.set_fault(FaultKind::error(403, "AuthFailure"), usize::MAX);
    let r = a.agent("awsvip", "monitor", &env);
    out += &r.stderr;
    let files = std::fs::read_to_string(&log).unwrap_or_default() + &std::fs::read_to_string(&dbg).unwrap_or_default();
    assert!(files.contains("EC2 DescribeNetworkInterfaces"), "debug log is empty?\n{files}");
    for secret in [ACCESS_KEY, SECRET_KEY] {
        assert!(!out.contains(secret) && !files.contains(secret), "{secret} leaked:\n{out}\n{files}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn metadata_is_valid_against_the_ocf_dtd() {
    let out = std::process::Command::new(aws::bin("awsvip")).arg("meta-data").output().unwrap();
    assert!(out.status.success());
    let dtd = "/usr/share/resource-agents/ra-api-1.dtd";
    if std::process::Command::new("xmllint").arg("--version").output().is_err() || !std::path::Path::new(dtd).exists() {
        eprintln!("skipped: xmllint or {dtd} missing");
        return;
    }
    for agent in ["awsvip", "awseip"] {
        let file = std::env::temp_dir().join(format!("paceline-{agent}-{}.xml", std::process::id()));
        let xml = std::process::Command::new(aws::bin(agent)).arg("meta-data").output().unwrap().stdout;
        std::fs::write(&file, xml).unwrap();
        let o = std::process::Command::new("xmllint").args(["--noout", "--dtdvalid", dtd]).arg(&file).output().unwrap();
        assert!(o.status.success(), "{agent}: {}", String::from_utf8_lossy(&o.stderr));
        let _ = std::fs::remove_file(&file);
    }
}

#[test]
fn ocf_tester_passes_for_awsvip_and_awseip() {
    skip_unless_possible!("awsvip");
    if !common::in_path("ocf-tester") {
        eprintln!("skipped: ocf-tester missing");
        return;
    }
    let cloud = Cloud::new();
    let n = Node::new("vip-tester", &cloud.instance("node1", "192.0.2.61"));
    let (_, alloc) = cloud.allocate_eip();
    let eip_opt = format!("allocation_id={alloc}");
    for (agent, opt) in [("awsvip", "secondary_private_ip=192.0.2.100"), ("awseip", eip_opt.as_str())] {
        let r = n.run("ocf-tester", &["-n", "res", "-o", opt, &aws::bin(agent)], &[("OCF_ROOT", "/usr/lib/ocf")], None);
        assert!(r.rc == 0 && r.stdout.contains("passed all tests"), "{agent}:\n{}\n{}", r.stdout, r.stderr);
    }
    // ocf-tester ends with migrate_from (a start) and no stop.
    expect(&n.agent("awsvip", "stop", &vip(&[])), 0, "stop after ocf-tester");
    assert!(!cloud.eni_ips(&n.instance.eni).contains(&VIP.to_string()));
}
