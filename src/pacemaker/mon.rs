//! The whole cluster as Pacemaker sees it, in one call: `crm_mon --one-shot
//! --output-as=xml --include=all`, read into typed values (`paceline status`).
//!
//! Why crm_mon and not the raw CIB: the status section holds each operation's history,
//! from which the scheduler derives roles, fail counts and placement; crm_mon prints what
//! it derived, in a schema Pacemaker keeps stable (api-version 2.x). One call, so every
//! field of a status screen comes from the same moment.

use std::collections::BTreeMap;

use super::xml::{self, Element};
use super::{run_xml, TOOL_TIMEOUT};
use crate::ocf::OcfError;

/// A node of the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub online: bool,
    pub standby: bool,
    pub maintenance: bool,
    /// Lost without a clean shutdown, not fenced yet.
    pub unclean: bool,
    pub is_dc: bool,
    /// A Pacemaker Remote or guest node: it runs resources but has no vote in quorum.
    pub remote: bool,
}

/// One instance of a resource (a clone has one per node it runs on, and inactive ones).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Instance {
    pub id: String,
    /// The clone (or group) it belongs to.
    pub parent: Option<String>,
    /// `class:provider:type`.
    pub agent: String,
    /// `Started`, `Stopped`, `Promoted`, `Unpromoted`, …
    pub role: String,
    pub node: Option<String>,
    pub failed: bool,
    pub managed: bool,
}

/// A fail count Pacemaker keeps for a resource on a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailCount {
    pub node: String,
    pub resource: String,
    pub count: u64,
    pub migration_threshold: Option<u64>,
}

/// One fencing action of the history.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FenceEvent {
    pub target: String,
    pub action: String,
    /// `success`, `failed`, `pending`.
    pub status: String,
    /// Who carried it out.
    pub delegate: Option<String>,
    /// When it completed, as crm_mon prints it.
    pub completed: Option<String>,
}

/// What `crm_mon` says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cluster {
    pub dc: Option<String>,
    /// The partition of the node asked has quorum.
    pub quorate: bool,
    pub stonith_enabled: bool,
    pub maintenance_mode: bool,
    pub nodes: Vec<Node>,
    pub instances: Vec<Instance>,
    /// Transient node attributes by node (the promotion scores among them).
    pub attributes: BTreeMap<String, BTreeMap<String, String>>,
    pub fail_counts: Vec<FailCount>,
    /// Newest first.
    pub fencing: Vec<FenceEvent>,
}

impl Cluster {
    /// The instances of resource `id` (the primitive's id, for a clone's instances too).
    pub fn instances_of<'a>(&'a self, id: &'a str) -> impl Iterator<Item = &'a Instance> + 'a {
        self.instances.iter().filter(move |i| i.id == id || i.id.split(':').next() == Some(id))
    }
}

/// Ask crm_mon.
pub fn query() -> Result<Cluster, OcfError> {
    let a = run_xml("crm_mon", &["--one-shot", "--include=all"], TOOL_TIMEOUT)?;
    if a.code != 0 {
        return Err(
            OcfError::generic(format!("crm_mon: {} (status {})", a.message, a.code)).context("is the cluster running on this node? (pcs cluster start)")
        );
    }
    Ok(cluster_in(&a.root))
}

fn flag(e: &Element, key: &str) -> bool {
    e.attr(key) == Some("true")
}

/// The cluster described by a crm_mon XML answer (`root`: its parsed document).
pub fn cluster_in(root: &Element) -> Cluster {
    let mut c = Cluster::default();
    if let Some(dc) = root.descendants("current_dc").next() {
        if flag(dc, "present") {
            c.dc = dc.attr("name").map(str::to_owned);
        }
        c.quorate = flag(dc, "with_quorum");
    }
    if let Some(o) = root.descendants("cluster_options").next() {
        // The name that wins when the answer has both (Pacemaker 3.0.2 writes both).
        let fencing = super::FENCING_ENABLED.iter().find(|n| o.attr(n).is_some()).unwrap_or(&super::FENCING_ENABLED[1]);
        c.stonith_enabled = flag(o, fencing);
        c.maintenance_mode = flag(o, "maintenance-mode");
    }
    for nodes in root.children.iter().flat_map(|r| r.children.iter()).filter(|e| e.name == "nodes") {
        for n in nodes.children.iter().filter(|n| n.name == "node") {
            c.nodes.push(Node {
                name: n.attr("name").unwrap_or_default().to_owned(),
                online: flag(n, "online"),
                standby: flag(n, "standby"),
                maintenance: flag(n, "maintenance"),
                unclean: flag(n, "unclean"),
                is_dc: flag(n, "is_dc"),
                remote: matches!(n.attr("type"), Some("remote" | "guest")),
            });
        }
    }
    if let Some(resources) = root.descendants("resources").next() {
        collect_instances(resources, None, &mut c.instances);
    }
    if let Some(attrs) = root.descendants("node_attributes").next() {
        for n in attrs.children.iter().filter(|n| n.name == "node") {
            let map = n
                .children
                .iter()
                .filter(|a| a.name == "attribute")
                .filter_map(|a| Some((a.attr("name")?.to_owned(), a.attr("value").unwrap_or_default().to_owned())))
                .collect();
            c.attributes.insert(n.attr("name").unwrap_or_default().to_owned(), map);
        }
    }
    if let Some(history) = root.descendants("node_history").next() {
        for n in history.children.iter().filter(|n| n.name == "node") {
            for r in n.children.iter().filter(|r| r.name == "resource_history") {
                let count = r.attr("fail-count").and_then(parse_count).unwrap_or(0);
                if count > 0 {
                    c.fail_counts.push(FailCount {
                        node: n.attr("name").unwrap_or_default().to_owned(),
                        resource: r.attr("id").unwrap_or_default().to_owned(),
                        count,
                        migration_threshold: r.attr("migration-threshold").and_then(parse_count),
                    });
                }
            }
        }
    }
    if let Some(fh) = root.descendants("fence_history").next() {
        for e in fh.children.iter().filter(|e| e.name == "fence_event") {
            c.fencing.push(FenceEvent {
                target: e.attr("target").unwrap_or_default().to_owned(),
                action: e.attr("action").unwrap_or_default().to_owned(),
                status: e.attr("status").unwrap_or_default().to_owned(),
                delegate: e.attr("delegate").map(str::to_owned),
                completed: e.attr("completed").map(str::to_owned),
            });
        }
    }
    c
}

/// A count as Pacemaker prints it (`INFINITY` is the largest).
fn parse_count(v: &str) -> Option<u64> {
    match v {
        "INFINITY" | "+INFINITY" => Some(u64::MAX),
        v => v.parse().ok(),
    }
}

fn collect_instances(e: &Element, parent: Option<&str>, out: &mut Vec<Instance>) {
    for child in &e.children {
        match child.name.as_str() {
            "resource" => {
                let nodes: Vec<&Element> = child.children.iter().filter(|n| n.name == "node").collect();
                let base = Instance {
                    id: child.attr("id").unwrap_or_default().to_owned(),
                    parent: parent.map(str::to_owned),
                    agent: child.attr("resource_agent").unwrap_or_default().to_owned(),
                    role: child.attr("role").unwrap_or_default().to_owned(),
                    node: None,
                    failed: flag(child, "failed"),
                    managed: flag(child, "managed"),
                };
                if nodes.is_empty() {
                    out.push(base);
                } else {
                    for n in nodes {
                        out.push(Instance { node: n.attr("name").map(str::to_owned), ..base.clone() });
                    }
                }
            }
            "clone" | "group" | "bundle" => collect_instances(child, child.attr("id"), out),
            _ => {}
        }
    }
}

/// Parse a recorded crm_mon answer (tests, `paceline status --from FILE`).
pub fn parse(text: &str) -> Cluster {
    cluster_in(&xml::parse(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Recorded in the lab (Pacemaker 2.1.5, Debian 12): crm_mon -1 --output-as=xml --include=all,
    // trimmed to the elements read; one fail count and one fencing action added in the
    // shape crm_mon prints them.
    const LAB: &str = r#"<pacemaker-result api-version="2.25" request="crm_mon -1 --output-as=xml --include=all">
  <summary>
    <current_dc present="true" version="2.1.5-a3f44794f94" name="node3" id="3" with_quorum="true" mixed_version="false"/>
    <cluster_options stonith-enabled="false" symmetric-cluster="true" no-quorum-policy="stop" maintenance-mode="false"/>
  </summary>
  <nodes>
    <node name="node1" id="1" online="true" standby="false" maintenance="false" pending="false" unclean="false" is_dc="false" type="member"/>
    <node name="node2" id="2" online="true" standby="false" maintenance="false" pending="false" unclean="false" is_dc="false" type="member"/>
    <node name="node3" id="3" online="false" standby="false" maintenance="false" pending="false" unclean="true" is_dc="true" type="member"/>
  </nodes>
  <resources>
    <clone id="pgsqld-clone" multi_state="true" unique="false" managed="true" disabled="false" failed="false">
      <resource id="pgsqld" resource_agent="ocf:paceline:pgsqlms" role="Unpromoted" active="true" managed="true" failed="false" nodes_running_on="1">
        <node name="node2" id="2" cached="true"/>
      </resource>
      <resource id="pgsqld" resource_agent="ocf:paceline:pgsqlms" role="Promoted" active="true" managed="true" failed="false" nodes_running_on="1">
        <node name="node1" id="1" cached="true"/>
      </resource>
      <resource id="pgsqld" resource_agent="ocf:paceline:pgsqlms" role="Stopped" active="false" managed="true" failed="false" nodes_running_on="0"/>
    </clone>
    <resource id="pgsql-vip" resource_agent="ocf:paceline:IPaddr2" role="Started" active="true" managed="true" failed="false" nodes_running_on="1">
      <node name="node1" id="1" cached="true"/>
    </resource>
  </resources>
  <node_attributes>
    <node name="node1"><attribute name="master-pgsqld" value="1001"/></node>
    <node name="node2"><attribute name="master-pgsqld" value="1000"/></node>
  </node_attributes>
  <node_history>
    <node name="node1">
      <resource_history id="pgsqld" orphan="false" migration-threshold="5" fail-count="2" last-failure="Wed Dec  2 09:59:14 2026">
        <operation_history call="7" task="start" rc="0" rc_text="ok"/>
      </resource_history>
      <resource_history id="pgsql-vip" orphan="false" migration-threshold="5"/>
    </node>
  </node_history>
  <fence_history>
    <fence_event action="reboot" target="node3" client="pacemaker-controld.37" origin="node1" status="success" delegate="node2" completed="2026-12-02 10:01:02 +00:00"/>
  </fence_history>
  <status code="0" message="OK"/>
</pacemaker-result>"#;

    #[test]
    fn reads_the_cluster_from_crm_mon() {
        let c = parse(LAB);
        assert_eq!(c.dc.as_deref(), Some("node3"));
        assert!(c.quorate && !c.stonith_enabled && !c.maintenance_mode);
        // Pacemaker 3.0.2 says fencing-enabled beside the deprecated stonith-enabled.
        assert!(parse(&LAB.replace(r#"stonith-enabled="false""#, r#"stonith-enabled="false" fencing-enabled="true""#)).stonith_enabled);
        assert!(!parse(&LAB.replace(r#"stonith-enabled="false""#, r#"stonith-enabled="true" fencing-enabled="false""#)).stonith_enabled);
        assert_eq!(c.nodes.len(), 3);
        assert!(c.nodes[0].online && !c.nodes[2].online && c.nodes[2].unclean && c.nodes[2].is_dc);
        let pg: Vec<_> = c.instances_of("pgsqld").collect();
        assert_eq!(pg.len(), 3);
        assert_eq!(pg[1].role, "Promoted");
        assert_eq!(pg[1].node.as_deref(), Some("node1"));
        assert_eq!(pg[1].parent.as_deref(), Some("pgsqld-clone"));
        assert_eq!(pg[2].node, None);
        let vip: Vec<_> = c.instances_of("pgsql-vip").collect();
        assert_eq!((vip[0].agent.as_str(), vip[0].node.as_deref()), ("ocf:paceline:IPaddr2", Some("node1")));
        assert_eq!(c.attributes["node2"]["master-pgsqld"], "1000");
        assert_eq!(c.fail_counts, vec![FailCount { node: "node1".into(), resource: "pgsqld".into(), count: 2, migration_threshold: Some(5) }]);
        assert_eq!(c.fencing[0].target, "node3");
        assert_eq!(c.fencing[0].delegate.as_deref(), Some("node2"));
    }

    #[test]
    fn garbage_is_an_empty_cluster() {
        let c = parse("<pacemaker-result><nodes><node");
        assert!(c.nodes.is_empty() && c.instances.is_empty() && !c.quorate);
        assert_eq!(parse_count("INFINITY"), Some(u64::MAX));
    }
    mod prop {
        use super::super::*;
        use super::LAB;
        use crate::pacemaker::xml::tests::prop::escape;
        use proptest::prelude::*;

        proptest! {
            /// Arbitrary text: a (possibly empty) cluster, never a panic.
            #[test]
            fn any_text_never_panics(text in any::<String>()) {
                let _ = parse(&text);
            }

            /// crm_mon's answer cut anywhere says less, never something else: its nodes,
            /// fencing actions and fail counts are the first ones of the whole answer, each
            /// exactly as the whole says it, and the DC is the whole's or none.
            #[test]
            fn a_cut_answer_says_less_not_otherwise(cut in 0..LAB.len()) {
                let whole = parse(LAB);
                let c = parse(&LAB[..cut]);
                prop_assert!(whole.nodes.starts_with(&c.nodes));
                prop_assert!(whole.fencing.starts_with(&c.fencing));
                prop_assert!(whole.fail_counts.starts_with(&c.fail_counts));
                prop_assert!(c.dc.is_none() || c.dc == whole.dc);
                prop_assert!(!c.quorate || whole.quorate);
                for (node, attrs) in &c.attributes {
                    for (k, v) in attrs {
                        prop_assert_eq!(whole.attributes[node].get(k), Some(v));
                    }
                }
                for i in c.instances.iter().filter(|i| i.node.is_some()) {
                    prop_assert!(whole.instances.contains(i), "{i:?}");
                }
            }

            /// A node name and a promotion score with any value read back as written.
            #[test]
            fn names_and_scores_read_back(name in any::<String>(), score in any::<String>()) {
                let x = format!(
                    r#"<pacemaker-result><nodes><node name="{n}" online="true"/></nodes><node_attributes><node name="{n}"><attribute name="master-pgsqld" value="{s}"/></node></node_attributes></pacemaker-result>"#,
                    n = escape(&name),
                    s = escape(&score)
                );
                let c = parse(&x);
                if let Some(n) = c.nodes.first() {
                    prop_assert_eq!(&n.name, &name);
                    prop_assert!(n.online);
                }
                if let Some(attrs) = c.attributes.get(&name) {
                    prop_assert_eq!(attrs.get("master-pgsqld"), Some(&score));
                }
            }

            /// A fail count: a number, INFINITY, or nothing — never a made-up count.
            #[test]
            fn a_fail_count_is_what_it_says(count in prop_oneof!["[0-9]{1,20}", "\\+?INFINITY", ".{0,6}"]) {
                let x = format!(r#"<pacemaker-result><node_history><node name="n"><resource_history id="r" fail-count="{}"/></node></node_history></pacemaker-result>"#, escape(&count));
                let expected = match count.as_str() {
                    "INFINITY" | "+INFINITY" => Some(u64::MAX),
                    c => c.parse::<u64>().ok(),
                };
                let got = parse(&x).fail_counts.first().map(|f| f.count);
                prop_assert_eq!(got, expected.filter(|c| *c > 0));
            }
        }
    }
}
