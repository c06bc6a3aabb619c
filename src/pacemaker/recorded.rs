//! What Pacemaker's tools printed on the lab's EC2 cluster, read with this module's
//! parsers: Pacemaker 2.1.5 (Debian 12, tests/data/lab-ec2) and 3.0.0 (Debian 13,
//! tests/data/lab-ec2-debian13, `lab up --os debian13 --ec2`). The same calls the agents
//! make (each file's `request=` says which), the same answers expected from both: a version
//! that changes an output fails here before a cluster runs into it.

use super::{answer, attrs, cib, mon, nodes, xml, CRM_EX_NOSUCH};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");

/// Each recording: its directory, Pacemaker's version, the node that answered.
const RECORDINGS: &[(&str, &str, &str)] = &[("lab-ec2", "2.1.5", "node1"), ("lab-ec2-debian13", "3.0.0", "node1")];

fn read(dir: &str, file: &str) -> String {
    let path = format!("{DATA}/{dir}/{file}");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn crm_mon_and_the_cib_read_alike() {
    for (dir, version, _) in RECORDINGS {
        let m = mon::parse(&read(dir, "crm_mon.xml"));
        let text = read(dir, "crm_mon.xml");
        assert!(text.contains(&format!("version=\"{version}")), "{dir}: not Pacemaker {version}");
        assert!(m.quorate && m.stonith_enabled && m.dc.is_some(), "{dir}: {m:?}");
        assert_eq!(m.nodes.iter().filter(|n| n.online).count(), 3, "{dir}");
        assert_eq!(m.instances_of("pgsqld").filter(|i| i.role == "Promoted").count(), 1, "{dir}");
        assert!(!m.fencing.is_empty() && m.fencing.iter().all(|f| f.status == "success"), "{dir}: {:?}", m.fencing);
        let root = xml::parse(&read(dir, "cib.xml"));
        let prims = cib::primitives_in(&root);
        assert!(prims.iter().any(|p| p.agent == "ocf:paceline:pgsqlms" && p.clone.is_some()), "{dir}");
        assert!(prims.iter().any(|p| p.agent == "stonith:fence_paceline_aws"), "{dir}");
        let scores = cib::node_attribute_in(&root, "master-pgsqld");
        assert_eq!(scores.len(), 3, "{dir}: {scores:?}");
    }
}

#[test]
fn attribute_and_node_tools_answer_alike() {
    for (dir, _, local) in RECORDINGS {
        let Ok(q) = std::fs::read_to_string(format!("{DATA}/{dir}/crm_attribute-query.xml")) else {
            continue; // 2.1.5's were not recorded with the first recording
        };
        let a = answer(&q).expect("crm_attribute's answer");
        assert!(attrs::value_in(&a, "score").unwrap().is_some_and(|v| v.parse::<i64>().is_ok()), "{dir}: {q}");
        let absent = answer(&read(dir, "crm_attribute-absent.xml")).unwrap();
        assert_eq!(absent.code, CRM_EX_NOSUCH, "{dir}");
        assert_eq!(attrs::value_in(&absent, "absent").unwrap(), None, "{dir}");
        let absent = answer(&read(dir, "attrd_updater-absent.xml")).unwrap();
        assert_eq!(attrs::value_in(&absent, "absent").unwrap(), None, "{dir}: a missing private attribute is not an error");
        let all = answer(&read(dir, "attrd_updater-all.xml")).unwrap();
        let mut holders: Vec<String> = attrs::values_in(&all, "history").unwrap().into_iter().map(|(n, _)| n).collect();
        holders.sort();
        assert_eq!(holders, ["node1", "node2", "node3"], "{dir}");
        assert_eq!(read(dir, "crm_node-n.txt").trim(), *local, "{dir}");
        assert_eq!(nodes::members(&read(dir, "crm_node-partition.txt")), ["node1", "node2", "node3"], "{dir}");
        assert!(nodes::quorum_in(&read(dir, "crm_node-q.txt")).unwrap(), "{dir}");
        assert_eq!(answer(&read(dir, "stonith_admin-query.xml")).unwrap().code, 0, "{dir}");
    }
}
