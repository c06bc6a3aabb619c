//! `paceline check`'s EC2 permissions against moto, inside a namespace playing an
//! instance: every call the AWS agents will make is asked (DryRun where EC2 has it), as
//! the agent would ask it; a denied call is a critical finding naming the resource and the
//! call, an unanswered one a warning, no credentials at all a critical finding. The denial
//! is the test proxy answering `UnauthorizedOperation` for one action, as EC2 does for an
//! IAM policy without it (moto enforces no IAM policies).

#[path = "common/aws.rs"]
mod aws;
mod common;

use aws::{skip_reason, Cloud, FaultKind, Node};

/// The findings (not their fix lines) of `paceline check --cib FILE` run in `node`, and its exit code.
fn check(node: &Node, cib: &std::path::Path, env: &[(&str, &str)]) -> (i32, Vec<String>) {
    let r = node.run(env!("CARGO_BIN_EXE_paceline"), &["check", "--cib", &cib.display().to_string()], env, None);
    assert!(!r.stderr.contains("panicked"), "{r:?}");
    let lines = r.stdout.lines().filter(|l| (l.starts_with("CRITICAL") || l.starts_with("WARNING")) && !l.contains("pgsqlms")).map(str::to_owned).collect();
    (r.rc, lines)
}

#[test]
fn permissions_of_the_aws_agents_asked_with_dry_run() {
    skip_unless_possible!("check_aws");
    let cloud = Cloud::new();
    let i1 = cloud.instance("node1", "192.0.2.11");
    let i2 = cloud.instance("node2", "192.0.2.12");
    let node = Node::new("chk", &i1);
    let (_, alloc) = cloud.allocate_eip();
    // Two route tables for the overlay IP: one routes it to node2 already, one has no route.
    let (with, without) = aws::block(async {
        let mk = || async {
            cloud.client.create_route_table().vpc_id(&cloud.vpc).send().await.expect("CreateRouteTable").route_table.unwrap().route_table_id.unwrap()
        };
        let (a, b) = (mk().await, mk().await);
        cloud
            .client
            .create_route()
            .route_table_id(&a)
            .destination_cidr_block("192.0.2.250/32")
            .network_interface_id(&i2.eni)
            .send()
            .await
            .expect("CreateRoute");
        (a, b)
    });
    let dir = common::TempDir::new("check-aws");
    let cib = dir.0.join("cib.xml");
    // Ours and heartbeat's (the same parameters: a drop-in is checked the same way).
    std::fs::write(&cib, format!(r#"<cib><configuration><crm_config/><resources>
  <primitive id="pgsql-ip" class="ocf" provider="paceline" type="awsvip"><instance_attributes id="a"><nvpair id="a1" name="secondary_private_ip" value="192.0.2.100"/></instance_attributes></primitive>
  <primitive id="pgsql-eip" class="ocf" provider="heartbeat" type="awseip"><instance_attributes id="b"><nvpair id="b1" name="allocation_id" value="{alloc}"/></instance_attributes></primitive>
  <primitive id="pgsql-overlay" class="ocf" provider="paceline" type="aws-vpc-move-ip"><instance_attributes id="d"><nvpair id="d1" name="ip" value="192.0.2.250"/><nvpair id="d2" name="routing_table" value="{with},{without}"/></instance_attributes></primitive>
  <primitive id="fence-ec2" class="stonith" type="fence_paceline_aws"><instance_attributes id="c"><nvpair id="c1" name="pcmk_host_map" value="node1:{}"/></instance_attributes></primitive>
</resources><constraints/></configuration></cib>"#, i1.id)).unwrap();

    // Everything allowed: no EC2 finding; the calls were made, none changed anything.
    let before = node.requests();
    let (_, lines) = check(&node, &cib, &[]);
    assert!(lines.is_empty(), "allowed calls reported: {lines:#?}");
    assert!(node.requests() - before >= 9, "EC2 was not asked: {} requests", node.requests() - before);
    assert_eq!(cloud.state(&i1.id), "running", "a dry run stopped the instance");
    assert!(cloud.address(&alloc).association_id.unwrap_or_default().is_empty(), "a dry run associated the address");
    let routes = aws::block(async {
        cloud
            .client
            .describe_route_tables()
            .route_table_ids(&with)
            .route_table_ids(&without)
            .send()
            .await
            .expect("DescribeRouteTables")
            .route_tables
            .unwrap_or_default()
    });
    let overlay: Vec<Option<String>> = routes
        .iter()
        .map(|t| t.routes().iter().find(|r| r.destination_cidr_block() == Some("192.0.2.250/32")).and_then(|r| r.network_interface_id().map(str::to_owned)))
        .collect();
    assert_eq!(overlay.iter().flatten().collect::<Vec<_>>(), vec![&i2.eni], "a dry run changed a route: {overlay:?}");

    // One denied action at a time: critical, naming the resource, the call, what fails.
    for (action, resource, purpose) in [
        ("StopInstances", "fence-ec2", "fencing (off) would fail"),
        ("StartInstances", "fence-ec2", "fencing (on) would fail"),
        ("AssociateAddress", "pgsql-eip", "start would fail"),
        ("DescribeNetworkInterfaces", "pgsql-ip", "monitor would fail"),
        ("ReplaceRoute", "pgsql-overlay", "start would fail"),
        ("CreateRoute", "pgsql-overlay", "start would fail"),
    ] {
        node.set_fault_on(action, FaultKind::error(403, "UnauthorizedOperation"), usize::MAX);
        let (rc, lines) = check(&node, &cib, &[]);
        node.clear_fault();
        assert_eq!(rc, 2, "{action} denied: {lines:#?}");
        assert_eq!(lines.len(), 1, "{action} denied: one finding: {lines:#?}");
        let l = &lines[0];
        assert!(l.starts_with("CRITICAL") && l.contains(resource) && l.contains(&format!("ec2:{action}")) && l.contains(purpose), "{action}: {l}");
    }

    // EC2 throttling every answer: no verdict, a warning per call, not "denied".
    node.set_fault(FaultKind::error(503, "RequestLimitExceeded"), usize::MAX);
    let (_, lines) = check(&node, &cib, &[]);
    node.clear_fault();
    assert!(!lines.is_empty() && lines.iter().all(|l| l.starts_with("WARNING") && l.contains("could not check")), "throttled: {lines:#?}");

    // No credentials anywhere (no keys, no profile, the metadata service has no role).
    let (rc, lines) = check(&node, &cib, &[("AWS_ACCESS_KEY_ID", ""), ("AWS_SECRET_ACCESS_KEY", "")]);
    assert_eq!(rc, 2, "{lines:#?}");
    assert_eq!(lines.len(), 4, "one finding per resource: {lines:#?}");
    assert!(lines.iter().all(|l| l.starts_with("CRITICAL") && l.contains("no AWS credentials")), "{lines:#?}");
}
