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
    let tables = cloud.route_tables(2);
    let (with, without) = (tables[0].clone(), tables[1].clone());
    aws::block(async {
        cloud
            .client
            .create_route()
            .route_table_id(&with)
            .destination_cidr_block("192.0.2.250/32")
            .network_interface_id(&i2.eni)
            .send()
            .await
            .expect("CreateRoute");
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

/// docs/iam/*.json, the least-privilege policies per topology (issue #22.1–2), held to by the
/// proxy as IAM would hold the instance's role (aws::Policy: moto checks no resource ARNs):
/// each with its placeholders filled for this cloud lets `paceline check` find nothing
/// denied, lets the topology's agent start, monitor and stop and the fence device fence a
/// node of the cluster — and refuses to fence an instance outside it. Every action a policy
/// allows is needed: without it, `paceline check` names it as denied, or (for awsvip's
/// assignments, which EC2 cannot dry-run) the agent's start or stop fails.
#[test]
fn shipped_iam_policies_allow_each_topology_and_nothing_outside_the_cluster() {
    skip_unless_possible!("check_aws");
    let cloud = Cloud::new();
    let nodes = [cloud.instance("node1", "192.0.2.11"), cloud.instance("node2", "192.0.2.12"), cloud.instance("node3", "192.0.2.13")];
    let outsider = cloud.instance("outsider", "192.0.2.14");
    let me = Node::with_eth0("iam", &nodes[0]);
    let (_, alloc) = cloud.allocate_eip();
    const OVERLAY: &str = "192.0.2.250";
    // One table routes the overlay address to node2 already (start replaces it), the other
    // has no route (start creates it); the Elastic IP is on node2 (start moves it): so
    // check asks every call the agents make.
    let tables = cloud.route_tables(2);
    aws::block(async {
        cloud
            .client
            .create_route()
            .route_table_id(&tables[0])
            .destination_cidr_block(format!("{OVERLAY}/32"))
            .network_interface_id(&nodes[1].eni)
            .send()
            .await
            .expect("CreateRoute");
        cloud.client.associate_address().allocation_id(&alloc).instance_id(&nodes[1].id).send().await.expect("AssociateAddress");
    });
    let fill = |file: &str| -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/iam").join(file);
        let mut text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for (k, v) in [("<region>", aws::REGION), ("<account-id>", aws::ACCOUNT), ("<eip-allocation-id>", alloc.as_str())] {
            text = text.replace(k, v);
        }
        for (n, i) in nodes.iter().enumerate() {
            text = text.replace(&format!("<node{}-instance-id>", n + 1), &i.id).replace(&format!("<node{}-eni-id>", n + 1), &i.eni);
        }
        for (n, t) in tables.iter().enumerate() {
            text = text.replace(&format!("<route-table-id-{}>", n + 1), t);
        }
        assert!(!text.contains('<'), "{file}: a placeholder the test does not fill: {text}");
        text
    };
    let map = nodes.iter().enumerate().map(|(n, i)| format!("node{}:{}", n + 1, i.id)).collect::<Vec<_>>().join(";");
    let fence = format!(
        r#"<primitive id="fence-ec2" class="stonith" type="fence_paceline_aws"><instance_attributes id="c"><nvpair id="c1" name="pcmk_host_map" value="{map}"/></instance_attributes></primitive>"#
    );
    let list = tables.join(",");
    // (policy file, the resource agent it is for, that resource's parameters)
    type Topology<'a> = (&'a str, &'a str, Vec<(&'a str, String)>);
    let topologies: [Topology; 4] = [
        ("fencing.json", "", vec![]),
        ("secondary-ip.json", "awsvip", vec![("secondary_private_ip", "192.0.2.100".into())]),
        ("overlay-ip.json", "aws-vpc-move-ip", vec![("ip", OVERLAY.into()), ("routing_table", list.clone())]),
        ("elastic-ip.json", "awseip", vec![("allocation_id", alloc.clone())]),
    ];
    let dir = common::TempDir::new("check-iam");
    for (file, agent, params) in &topologies {
        let policy = aws::Policy::parse(&fill(file));
        let rsc = if agent.is_empty() {
            String::new()
        } else {
            let nv: String = params.iter().enumerate().map(|(n, (k, v))| format!(r#"<nvpair id="r{n}" name="{k}" value="{v}"/>"#)).collect();
            format!(
                r#"<primitive id="pgsql-ip" class="ocf" provider="paceline" type="{agent}"><instance_attributes id="r">{nv}</instance_attributes></primitive>"#
            )
        };
        let cib = dir.0.join(format!("{file}.xml"));
        std::fs::write(&cib, format!("<cib><configuration><crm_config/><resources>{fence}{rsc}</resources><constraints/></configuration></cib>")).unwrap();
        let env: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();

        // The policy as shipped: nothing denied.
        me.set_policy(Some(policy.clone()));
        let (_, lines) = check(&me, &cib, &[]);
        assert!(lines.is_empty(), "{file}: paceline check under the policy: {lines:#?}");

        // Every action it allows is needed.
        for action in policy.actions() {
            let call = action.trim_start_matches("ec2:");
            me.set_policy(Some(policy.without(&action)));
            let (_, lines) = check(&me, &cib, &[]);
            if lines.iter().any(|l| l.starts_with("CRITICAL") && l.contains(&format!("ec2:{call}"))) {
                continue;
            }
            // Not askable with DryRun: the agent itself is refused.
            let used_by = match call {
                "AssignPrivateIpAddresses" => "start",
                "UnassignPrivateIpAddresses" => "stop",
                _ => panic!("{file}: {action} is allowed, but without it paceline check finds nothing denied: {lines:#?}"),
            };
            if used_by == "stop" {
                me.set_policy(Some(policy.clone()));
                aws::expect(&me.agent(agent, "start", &env), 0, &format!("{file}: start"));
                me.set_policy(Some(policy.without(&action)));
            }
            let r = me.agent(agent, used_by, &env);
            assert_ne!(r.rc, 0, "{file}: {agent} {used_by} without {action} succeeded: {r:?}");
            me.set_policy(Some(policy.clone()));
            aws::expect(&me.agent(agent, "stop", &env), 0, &format!("{file}: stop"));
        }

        // The agents' own actions under the policy.
        me.set_policy(Some(policy.clone()));
        if !agent.is_empty() {
            let recurring: Vec<(&str, &str)> = env.iter().copied().chain([("OCF_RESKEY_CRM_meta_interval", "10000"), ("monapi", "true")]).collect();
            let recurring: Vec<(&str, &str)> = recurring.into_iter().filter(|(k, _)| *k != "monapi" || *agent == "aws-vpc-move-ip").collect();
            aws::expect(&me.agent(agent, "start", &env), 0, &format!("{file}: {agent} start"));
            aws::expect(&me.agent(agent, "monitor", &recurring), 0, &format!("{file}: {agent} monitor"));
            aws::expect(&me.agent(agent, "stop", &env), 0, &format!("{file}: {agent} stop"));
        }
        // Fencing a node of the cluster, off then on; an instance outside it, refused.
        let fence = |plug: &str, action: &str| {
            me.run(
                &aws::bin("fence_paceline_aws"),
                &[],
                &[("PCMK_service", "pacemaker-fenced")],
                Some(&format!("action={action}\nport={plug}\nregion={}\nstonith_status_sleep=0.2\npower_timeout=20\n", aws::REGION)),
            )
        };
        aws::expect(&fence(&nodes[2].id, "off"), 0, &format!("{file}: fencing node3 off"));
        aws::expect(&fence(&nodes[2].id, "on"), 0, &format!("{file}: node3 on again"));
        let r = fence(&outsider.id, "off");
        assert_ne!(r.rc, 0, "{file}: fenced an instance outside the cluster: {r:?}");
        assert!(r.stderr.contains("UnauthorizedOperation") || r.stdout.contains("UnauthorizedOperation"), "{file}: {r:?}");
        assert_eq!(cloud.state(&outsider.id), "running", "{file}: the outsider was stopped");
    }
    me.set_policy(None);
}
