//! ocf:paceline:aws-vpc-move-ip against moto, inside a namespace per instance (its eth0 a
//! veth with the instance's MAC, as IMDS describes it): the overlay address moving
//! between two instances through two route tables (created where missing, replaced where
//! another instance holds them), a route another actor changed, the fault proxy
//! (throttling, 5xx, garbage, a denied ReplaceRoute, a role STS refuses), routing_table_role,
//! the address on another interface of the node, bad input, ocf-tester.

#[path = "common/aws.rs"]
mod aws;
mod common;

use aws::{block, expect, leak, skip_reason, Cloud, FaultKind, Node};

const IP: &str = "192.0.2.250";

fn has_ip(n: &Node) -> bool {
    common::must(&format!("ip -n {} -o addr show dev eth0", n.ns)).contains(&format!("{IP}/32"))
}

/// Where each table routes IP/32: the target ENI, or None.
fn targets(cloud: &Cloud, tables: &[String]) -> Vec<Option<String>> {
    block(async {
        let out = cloud.client.describe_route_tables().set_route_table_ids(Some(tables.to_vec())).send().await.expect("DescribeRouteTables");
        let all = out.route_tables.unwrap_or_default();
        tables
            .iter()
            .map(|t| {
                let rt = all.iter().find(|r| r.route_table_id.as_deref() == Some(t)).expect("table");
                rt.routes().iter().find(|r| r.destination_cidr_block.as_deref() == Some(&format!("{IP}/32"))).and_then(|r| r.network_interface_id.clone())
            })
            .collect()
    })
}

#[test]
fn the_overlay_address_follows_the_routes_between_two_instances() {
    skip_unless_possible!("aws-vpc-move-ip");
    let cloud = Cloud::new();
    let (ia, ib) = (cloud.instance("node1", "192.0.2.11"), cloud.instance("node2", "192.0.2.12"));
    let (a, b) = (Node::with_eth0("rt-a", &ia), Node::with_eth0("rt-b", &ib));
    let tables = cloud.route_tables(2);
    let list = leak(tables.join(","));
    let res = [("ip", IP), ("routing_table", list)];
    let probe = [("ip", IP), ("routing_table", list), ("OCF_RESKEY_CRM_meta_interval", "0")];
    let recurring = [("ip", IP), ("routing_table", list), ("OCF_RESKEY_CRM_meta_interval", "60000")];
    let monapi = [("ip", IP), ("routing_table", list), ("OCF_RESKEY_CRM_meta_interval", "60000"), ("monapi", "true")];
    let agent = "aws-vpc-move-ip";

    expect(&a.agent(agent, "validate-all", &res), 0, "validate-all");
    expect(&a.agent(agent, "monitor", &probe), 7, "probe before start");
    expect(&a.agent(agent, "stop", &res), 0, "stop when never started");

    // Start on A: no route anywhere yet (created), the address on eth0.
    expect(&a.agent(agent, "start", &res), 0, "start on A");
    assert_eq!(targets(&cloud, &tables), vec![Some(ia.eni.clone()); 2]);
    assert!(has_ip(&a), "the address is on A's eth0");
    for (env, what) in [(&probe[..], "probe"), (&recurring[..], "monitor"), (&monapi[..], "monitor monapi")] {
        expect(&a.agent(agent, "monitor", env), 0, &format!("{what} on A"));
    }
    let before = a.requests();
    expect(&a.agent(agent, "start", &res), 0, "second start on A");
    assert!(a.requests() - before <= 2, "a start with every route in place rewrote routes ({} requests)", a.requests() - before);

    // Start on B: the routes replaced, the address on B; A still has it on eth0 but is no
    // longer routed: a probe or monapi says so with an error — never "not running" while
    // the address is configured on A (Pacemaker would leave it there) — and a plain
    // recurring monitor looks at the address only (as heartbeat's).
    expect(&b.agent(agent, "start", &res), 0, "start on B");
    assert_eq!(targets(&cloud, &tables), vec![Some(ib.eni.clone()); 2]);
    assert!(has_ip(&b));
    for (env, what) in [(&probe[..], "probe"), (&monapi[..], "monapi monitor")] {
        let r = a.agent(agent, "monitor", env);
        expect(&r, 1, &format!("{what} on A, routed to B, the address still on A"));
        assert!(r.stderr.contains(&format!("ocf-exit-reason:{IP} is on eth0 but {} holds a route to {}", tables[0], ib.eni)), "{}", r.stderr);
    }
    expect(&a.agent(agent, "monitor", &recurring), 0, "plain monitor on A (address still there)");
    expect(&a.agent(agent, "stop", &res), 0, "stop on A");
    assert!(!has_ip(&a), "stop removed the address");
    assert_eq!(targets(&cloud, &tables), vec![Some(ib.eni.clone()); 2], "A's stop left the routes");
    expect(&a.agent(agent, "stop", &res), 0, "second stop on A");
    expect(&a.agent(agent, "monitor", &recurring), 7, "monitor after stop");

    // Another actor points one table back at A: B's probe sees it, B's start mends it.
    block(async {
        cloud
            .client
            .replace_route()
            .route_table_id(&tables[1])
            .destination_cidr_block(format!("{IP}/32"))
            .network_interface_id(&ia.eni)
            .send()
            .await
            .expect("ReplaceRoute")
    });
    let r = b.agent(agent, "monitor", &probe);
    expect(&r, 1, "probe on B with a table changed behind its back");
    assert!(r.stderr.contains(&tables[1]) && r.stderr.contains(&ia.eni), "the reason names the table and its target: {}", r.stderr);
    expect(&b.agent(agent, "start", &res), 0, "start on B mends it");
    assert_eq!(targets(&cloud, &tables), vec![Some(ib.eni.clone()); 2]);

    // lookup_type=NetworkInterfaceId: the same routes (they name B's ENI) are B's.
    expect(
        &b.agent(agent, "monitor", &[("ip", IP), ("routing_table", list), ("OCF_RESKEY_CRM_meta_interval", "0"), ("lookup_type", "NetworkInterfaceId")]),
        0,
        "probe by ENI",
    );
    expect(&b.agent(agent, "stop", &res), 0, "stop on B");
}

/// The address configured on another interface of the node than `interface` — or while
/// `interface` does not exist — is never "not running" (Pacemaker would start it on a
/// second node and leave it here): monitor fails naming both; stop removes it from every
/// interface.
#[test]
fn an_address_on_another_interface_is_never_reported_stopped() {
    skip_unless_possible!("aws-vpc-move-ip");
    let cloud = Cloud::new();
    let ia = cloud.instance("node1", "192.0.2.31");
    let a = Node::with_eth0("rt-o", &ia);
    common::must(&format!("ip -n {0} link add eth1 type veth peer name eth1p && ip -n {0} link set eth1 up && ip -n {0} link set eth1p up", a.ns));
    let tables = cloud.route_tables(1);
    let list = leak(tables.join(","));
    let res = [("ip", IP), ("routing_table", list)];
    let probe = [("ip", IP), ("routing_table", list), ("OCF_RESKEY_CRM_meta_interval", "0")];
    let recurring = [("ip", IP), ("routing_table", list), ("OCF_RESKEY_CRM_meta_interval", "60000")];
    let agent = "aws-vpc-move-ip";
    let on_eth1 = || common::must(&format!("ip -n {} -o addr show dev eth1", a.ns)).contains(&format!("{IP}/32"));

    // Started here (routes to A), then the address also put on eth1, and taken off eth0.
    expect(&a.agent(agent, "start", &res), 0, "start on A");
    common::must(&format!("ip -n {0} addr add {IP}/32 dev eth1 && ip -n {0} addr del {IP}/32 dev eth0", a.ns));
    for (env, what) in [(&probe[..], "probe"), (&recurring[..], "monitor")] {
        let r = a.agent(agent, "monitor", env);
        expect(&r, 1, &format!("{what} with the address on eth1 only"));
        assert!(r.stderr.contains(&format!("ocf-exit-reason:{IP} is on eth1, not on interface eth0")), "{}", r.stderr);
    }
    expect(&a.agent(agent, "stop", &res), 0, "stop");
    assert!(!has_ip(&a) && !on_eth1(), "stop left the address on this node");
    expect(&a.agent(agent, "monitor", &probe), 7, "gone from every interface: not running");

    // On both interfaces: stop removes both.
    expect(&a.agent(agent, "start", &res), 0, "start again");
    common::must(&format!("ip -n {} addr add {IP}/32 dev eth1", a.ns));
    expect(&a.agent(agent, "monitor", &recurring), 0, "on eth0 (and eth1)");
    expect(&a.agent(agent, "stop", &res), 0, "stop");
    assert!(!has_ip(&a) && !on_eth1(), "stop left the address on this node");

    // `interface` missing on this node while eth1 holds the address: an error even on a
    // probe, and stop still removes it.
    common::must(&format!("ip -n {} addr add {IP}/32 dev eth1", a.ns));
    let missing = [("ip", IP), ("routing_table", list), ("interface", "eth9"), ("OCF_RESKEY_CRM_meta_interval", "0")];
    let r = a.agent(agent, "monitor", &missing);
    expect(&r, 1, "probe, interface missing, address on eth1");
    assert!(r.stderr.contains(&format!("ocf-exit-reason:{IP} is on eth1, and interface eth9 does not exist")), "{}", r.stderr);
    expect(&a.agent(agent, "stop", &[("ip", IP), ("routing_table", list), ("interface", "eth9")]), 0, "stop, interface missing");
    assert!(!on_eth1(), "stop left the address on eth1");
    expect(&a.agent(agent, "monitor", &missing), 7, "probe, interface missing, address nowhere");
}

#[test]
fn faults_bad_input_and_ocf_tester() {
    skip_unless_possible!("aws-vpc-move-ip");
    let cloud = Cloud::new();
    let ia = cloud.instance("node1", "192.0.2.21");
    let a = Node::with_eth0("rt-f", &ia);
    let tables = cloud.route_tables(1);
    let list = leak(tables.join(","));
    let res = [("ip", IP), ("routing_table", list)];
    let probe = [("ip", IP), ("routing_table", list), ("OCF_RESKEY_CRM_meta_interval", "0")];
    let agent = "aws-vpc-move-ip";

    // Throttled twice, then answered: the retries (backoff, within the deadline) succeed.
    a.set_fault(FaultKind::error(503, "RequestLimitExceeded"), 2);
    expect(&a.agent(agent, "start", &res), 0, "start through throttling");
    a.clear_fault();
    assert_eq!(targets(&cloud, &tables), vec![Some(ia.eni.clone())]);
    // EC2 failing on every request: an error, never "not running".
    for (kind, what) in [(FaultKind::error(500, "InternalError"), "5xx"), (FaultKind::Garbage, "garbage")] {
        a.set_fault(kind, usize::MAX);
        let r =
            a.agent(agent, "monitor", &[("ip", IP), ("routing_table", list), ("OCF_RESKEY_CRM_meta_interval", "0"), ("OCF_RESKEY_CRM_meta_timeout", "6000")]);
        a.clear_fault();
        expect(&r, 1, &format!("probe with {what}"));
        assert!(r.stderr.contains("ocf-exit-reason:"), "{what}: {}", r.stderr);
    }
    // A policy without ReplaceRoute: start fails with OCF_ERR_PERM, the route untouched.
    let other = cloud.route_tables(1);
    let other_list = leak(format!("{},{}", tables[0], other[0]));
    block(async {
        cloud
            .client
            .create_route()
            .route_table_id(&other[0])
            .destination_cidr_block(format!("{IP}/32"))
            .network_interface_id(&ia.eni)
            .send()
            .await
            .expect("CreateRoute")
    });
    let ib = cloud.instance("node2", "192.0.2.22");
    let b = Node::with_eth0("rt-g", &ib);
    b.set_fault_on("ReplaceRoute", FaultKind::error(403, "UnauthorizedOperation"), usize::MAX);
    let r = b.agent(agent, "start", &[("ip", IP), ("routing_table", other_list)]);
    b.clear_fault();
    expect(&r, 4, "start without ec2:ReplaceRoute");
    assert_eq!(targets(&cloud, &other), vec![Some(ia.eni.clone())]);

    // routing_table_role: the route calls made with the role's credentials (STS AssumeRole
    // through the same endpoint); a role these credentials may not assume is OCF_ERR_PERM.
    let role = [("ip", IP), ("routing_table", list), ("routing_table_role", "arn:aws:iam::123456789012:role/route-tables")];
    expect(&a.agent(agent, "start", &role), 0, "start with routing_table_role");
    a.set_fault_on("AssumeRole", FaultKind::error(403, "AccessDenied"), usize::MAX);
    let r = a.agent(agent, "validate-all", &role);
    a.clear_fault();
    expect(&r, 4, "a role that cannot be assumed");
    assert!(r.stderr.contains("route-tables"), "the reason names the role: {}", r.stderr);
    expect(&a.agent(agent, "stop", &role), 0, "stop with routing_table_role");

    // Bad input: the documented codes, before any EC2 call.
    for (env, rc, what) in [
        (&[("ip", "192.0.2.300"), ("routing_table", list)][..], 6, "bad ip"),
        (&[("ip", IP), ("routing_table", "rtb-nope")], 6, "bad table id"),
        (&[("ip", IP), ("routing_table", list), ("lookup_type", "Tag")], 6, "bad lookup_type"),
        (&[("ip", IP)], 6, "no routing_table"),
    ] {
        let before = a.requests();
        expect(&a.agent(agent, "start", env), rc, what);
        assert_eq!(a.requests(), before, "{what}: EC2 was called");
    }
    expect(&a.agent(agent, "validate-all", &[("ip", IP), ("routing_table", "rtb-0123456789abcdef0")]), 6, "validate-all with a table EC2 does not have");
    expect(&a.agent(agent, "start", &[("ip", IP), ("routing_table", list), ("interface", "eth9")]), 5, "start on a missing interface");
    expect(
        &a.agent(agent, "monitor", &[("ip", IP), ("routing_table", list), ("interface", "eth9"), ("OCF_RESKEY_CRM_meta_interval", "0")]),
        7,
        "probe on a missing interface",
    );
    expect(&a.agent(agent, "stop", &res), 0, "stop");
    expect(&a.agent(agent, "monitor", &probe), 7, "probe after stop");

    if !common::in_path("ocf-tester") {
        eprintln!("skipped ocf-tester: missing");
        return;
    }
    let r = a.run(
        "ocf-tester",
        &["-n", "res", "-o", &format!("ip={IP}"), "-o", &format!("routing_table={list}"), &aws::bin(agent)],
        &[("OCF_ROOT", "/usr/lib/ocf")],
        None,
    );
    assert!(r.rc == 0 && r.stdout.contains("passed all tests"), "ocf-tester:\n{}\n{}", r.stdout, r.stderr);
    expect(&a.agent(agent, "stop", &res), 0, "stop after ocf-tester");
}
