//! ocf:paceline:awseip against moto, inside a namespace per instance: every action,
//! idempotency, the Elastic IP moving between two instances, association with a secondary
//! private address, exact matching, bad input.

#[path = "common/aws.rs"]
mod aws;
mod common;

use aws::{expect, leak, skip_reason, Cloud, FaultKind, Node};

#[test]
fn every_action_and_the_address_moving_between_two_instances() {
    skip_unless_possible!("awseip");
    let cloud = Cloud::new();
    let (ia, ib) = (cloud.instance("node1", "192.0.2.11"), cloud.instance("node2", "192.0.2.12"));
    let (a, b) = (Node::new("eip-a", &ia), Node::new("eip-b", &ib));
    let (public, alloc) = cloud.allocate_eip();
    let (public, alloc) = (leak(&public), leak(&alloc));
    let by_alloc = [("allocation_id", alloc)];
    let by_ip = [("elastic_ip", public)];
    let both = [("elastic_ip", public), ("allocation_id", alloc)];
    let probe = [("allocation_id", alloc), ("OCF_RESKEY_CRM_meta_interval", "0")];

    expect(&a.agent("awseip", "validate-all", &both), 0, "validate-all");
    expect(&a.agent("awseip", "monitor", &probe), 7, "probe before start");
    expect(&a.agent("awseip", "stop", &by_alloc), 0, "stop when never started");
    expect(&a.agent("awseip", "start", &by_alloc), 0, "start on A");
    assert_eq!(cloud.address(alloc).instance_id.as_deref(), Some(ia.id.as_str()));
    expect(&a.agent("awseip", "monitor", &by_ip), 0, "monitor on A by elastic_ip");
    expect(&a.agent("awseip", "start", &both), 0, "second start on A");

    expect(&b.agent("awseip", "start", &by_ip), 0, "start on B (reassociation)");
    assert_eq!(cloud.address(alloc).instance_id.as_deref(), Some(ib.id.as_str()));
    expect(&a.agent("awseip", "monitor", &by_alloc), 7, "monitor on A after B took it");
    expect(&a.agent("awseip", "stop", &by_alloc), 0, "stop on A (not here)");
    assert_eq!(cloud.address(alloc).instance_id.as_deref(), Some(ib.id.as_str()), "A's stop touched B's association");
    expect(&b.agent("awseip", "stop", &by_alloc), 0, "stop on B");
    assert!(cloud.address(alloc).association_id.unwrap_or_default().is_empty());
    expect(&b.agent("awseip", "stop", &by_alloc), 0, "second stop on B");
    expect(&b.agent("awseip", "monitor", &by_alloc), 7, "monitor after stop");

    // On a secondary private address (the awsvip + awseip pairing).
    let with_private = [("allocation_id", alloc), ("private_ip_address", "192.0.2.100")];
    expect(&a.agent("awseip", "start", &with_private), 1, "start before the private address is here");
    cloud.assign(&ia.eni, "192.0.2.100");
    expect(&a.agent("awseip", "start", &with_private), 0, "start on the private address");
    let addr = cloud.address(alloc);
    assert_eq!(addr.private_ip_address.as_deref(), Some("192.0.2.100"));
    expect(&a.agent("awseip", "monitor", &with_private), 0, "monitor on the private address");
    // Associated with the instance, but on another private address: not what is configured.
    expect(&a.agent("awseip", "monitor", &[("allocation_id", alloc), ("private_ip_address", "192.0.2.11")]), 7, "monitor, other private address");
    expect(&a.agent("awseip", "stop", &with_private), 0, "stop");
    expect(&a.agent("awseip", "monitor", &with_private), 7, "monitor after stop");
}

#[test]
fn bad_input_and_errors() {
    skip_unless_possible!("awseip");
    let cloud = Cloud::new();
    let a = Node::new("eip-bad", &cloud.instance("node1", "192.0.2.21"));
    let (public, alloc) = cloud.allocate_eip();
    let (_public, alloc) = (leak(&public), leak(&alloc));
    let (other_public, _) = cloud.allocate_eip();
    let other_public = leak(&other_public);
    let cases: &[common::BadCase] = &[
        (&[], 6, "either elastic_ip or allocation_id"),
        (&[("elastic_ip", "1.2.3")], 6, "not an IPv4 address"),
        (&[("allocation_id", "alloc-1")], 6, "allocation_id"),
        (&[("allocation_id", alloc), ("elastic_ip", other_public)], 6, "not elastic_ip"),
        (&[("allocation_id", alloc), ("endpoint_url", "nope")], 6, "endpoint_url"),
        (&[("allocation_id", alloc), ("profile", "nosuchprofile")], 6, "nosuchprofile"),
        (&[("allocation_id", "eipalloc-0123456789abcdef0")], 6, "NotFound"),
    ];
    for action in ["start", "monitor", "validate-all"] {
        for (env, rc, needle) in cases {
            let r = a.agent("awseip", action, env);
            assert_eq!(r.rc, *rc, "{action} {env:?}: {}", r.stderr);
            assert!(r.stderr.contains(needle), "{action} {env:?}: reason lacks '{needle}': {}", r.stderr);
        }
    }
    // stop of an Elastic IP EC2 does not know: it is not associated here.
    expect(&a.agent("awseip", "stop", &[("allocation_id", "eipalloc-0123456789abcdef0")]), 0, "stop, unknown address");
    a.set_fault(FaultKind::error(403, "UnauthorizedOperation"), usize::MAX);
    for action in ["start", "stop", "monitor"] {
        let r = a.agent("awseip", action, &[("allocation_id", alloc)]);
        assert_eq!(r.rc, 4, "{action}: {}", r.stderr);
        assert!(r.stderr.contains("UnauthorizedOperation"), "{}", r.stderr);
    }
}
