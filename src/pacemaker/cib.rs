//! CIB queries (`cibadmin --query`), read with quick-xml.
//!
//! Two things the agents ask of the CIB: node attributes as the `nodes` section holds them
//! (the promotion scores, re-read to notice a score someone else overwrote or erased), and
//! a node's `node_state` in the status section (whether Pacemaker already counts a node as
//! down — fenced or lost — before Corosync has dropped it). `paceline status` reads the
//! configuration once: its primitives, and the moves (`cli-prefer-`/`cli-ban-`) in place.

use std::collections::BTreeMap;
use std::process::Command;

use super::xml::{self, Element};
use super::{run, TOOL_TIMEOUT};
use crate::ocf::OcfError;

/// Attribute `attr` of every node that has it in the `nodes` section, by node name.
pub fn node_attribute(attr: &str) -> Result<BTreeMap<String, String>, OcfError> {
    let xml = run("cibadmin", &["--query", "--scope", "nodes"], TOOL_TIMEOUT)?;
    Ok(node_attribute_in(&xml::parse(&xml), attr))
}

/// `<node uname=N> ... <nvpair name=ATTR value=V/>` pairs below `root`.
pub fn node_attribute_in(root: &Element, attr: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for node in root.descendants("node") {
        let Some(name) = node.attr("uname") else { continue };
        if let Some(v) = node.descendants("nvpair").find(|p| p.attr("name") == Some(attr)).and_then(|p| p.attr("value")) {
            out.insert(name.to_owned(), v.to_owned());
        }
    }
    out
}

/// What the status section says of a node's membership, read as Pacemaker's scheduler
/// reads it: before 2.1.7 `in_ccm` is a boolean and `crmd` "online"/"offline"; since, each
/// is the time the node joined, `0` when it has not. A value neither form allows (or none)
/// means not a member / offline, as the scheduler presumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeState {
    /// In Corosync's membership (`in_ccm`: "true", "1"…, or a timestamp other than 0).
    pub member: bool,
    /// Its controller is up (`crmd`: "online", or a timestamp other than 0).
    pub controller: bool,
}

/// `in_ccm`: one of Pacemaker's booleans, else a join time (0: not a member).
fn member_value(v: &str) -> bool {
    match v.to_ascii_lowercase().as_str() {
        "true" | "on" | "yes" | "y" | "1" => true,
        "false" | "off" | "no" | "n" | "0" => false,
        t => t.parse::<i64>().is_ok_and(|t| t > 0),
    }
}

/// `crmd`: "online"/"offline" (any case), else a join time (0: offline).
fn controller_value(v: &str) -> bool {
    match v.to_ascii_lowercase().as_str() {
        "online" => true,
        "offline" => false,
        t => t.parse::<i64>().is_ok_and(|t| t > 0),
    }
}

impl NodeState {
    /// Out of the membership, or its controller offline: what fencing or a lost node leaves.
    pub fn down(&self) -> bool {
        !self.member || !self.controller
    }
}

/// `node`'s `node_state`: `Ok(None)` when the status section has none for it.
pub fn node_state(node: &str) -> Result<Option<NodeState>, OcfError> {
    if node.contains(['\'', '"']) {
        return Err(OcfError::generic(format!("node name {node:?} cannot be queried")));
    }
    let xpath = format!("//node_state[@uname='{node}']");
    let done = crate::cmd::finish(Command::new("cibadmin").args(["--query", "--xpath", &xpath]), super::bound(TOOL_TIMEOUT))?;
    match done.success {
        true => Ok(node_state_in(&xml::parse(&done.stdout))),
        // An XPath that matches nothing: cibadmin fails with "No such device or address".
        false if done.stderr.contains("No such") => Ok(None),
        false => Err(OcfError::generic(format!("cibadmin --query --xpath {xpath}: {}", done.stderr.trim()))),
    }
}

/// The first `<node_state>` below `root`.
pub fn node_state_in(root: &Element) -> Option<NodeState> {
    let e = root.descendants("node_state").next()?;
    Some(NodeState { member: e.attr("in_ccm").is_some_and(member_value), controller: e.attr("crmd").is_some_and(controller_value) })
}

/// A primitive resource of the configuration, with its parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Primitive {
    pub id: String,
    /// `class:provider:type` (`stonith:type` for fence devices), as crm_mon names agents.
    pub agent: String,
    pub params: BTreeMap<String, String>,
    pub meta: BTreeMap<String, String>,
    /// The clone it is in, with the clone's meta attributes.
    pub clone: Option<(String, BTreeMap<String, String>)>,
}

/// An agent's type: the last part of `class:provider:type` (`pgsqlms`, `fence_paceline_aws`).
pub fn agent_type(agent: &str) -> &str {
    agent.rsplit(':').next().unwrap_or(agent)
}

/// A location constraint left by `crm_resource --move` / `--ban` (`pcs resource move`,
/// `ban`): it pins or bans a resource until cleared, whoever set it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    pub id: String,
    pub resource: String,
    pub node: String,
    /// `cli-ban-`: keep away from `node`; else `cli-prefer-`: run on it.
    pub ban: bool,
    /// `Promoted` for a `--promoted` move.
    pub role: Option<String>,
}

/// The configuration section, read once: its primitives and the moves in place.
#[derive(Debug, Clone, Default)]
pub struct Configuration {
    pub primitives: Vec<Primitive>,
    pub moves: Vec<Move>,
}

/// The whole CIB as the CIB manager has it (`cibadmin --query`), unparsed: for a reader
/// that judges the document as a whole (`paceline check`).
pub fn whole() -> Result<String, OcfError> {
    run("cibadmin", &["--query"], TOOL_TIMEOUT)
}

/// The configuration (`cibadmin --query --scope configuration`).
pub fn configuration() -> Result<Configuration, OcfError> {
    let xml = run("cibadmin", &["--query", "--scope", "configuration"], TOOL_TIMEOUT)?;
    let root = xml::parse(&xml);
    Ok(Configuration { primitives: primitives_in(&root), moves: moves_in(&root) })
}

/// The `cli-prefer-*` and `cli-ban-*` location constraints below `root`.
pub fn moves_in(root: &Element) -> Vec<Move> {
    root.descendants("rsc_location")
        .filter_map(|c| {
            let id = c.attr("id")?;
            let ban = id.starts_with("cli-ban-");
            if !ban && !id.starts_with("cli-prefer-") {
                return None;
            }
            Some(Move {
                id: id.to_owned(),
                resource: c.attr("rsc")?.to_owned(),
                node: c.attr("node").unwrap_or_default().to_owned(),
                ban,
                role: c.attr("role").map(str::to_owned),
            })
        })
        .collect()
}

fn nvpairs(e: &Element, set: &str) -> BTreeMap<String, String> {
    e.children
        .iter()
        .filter(|c| c.name == set)
        .flat_map(|c| c.children.iter().filter(|p| p.name == "nvpair"))
        .filter_map(|p| Some((p.attr("name")?.to_owned(), p.attr("value").unwrap_or_default().to_owned())))
        .collect()
}

/// The `<primitive>` elements below `root`, in document order.
pub fn primitives_in(root: &Element) -> Vec<Primitive> {
    let mut out = Vec::new();
    collect(root, None, &mut out);
    out
}

fn collect(e: &Element, clone: Option<&(String, BTreeMap<String, String>)>, out: &mut Vec<Primitive>) {
    for c in &e.children {
        match c.name.as_str() {
            "primitive" => {
                let class = c.attr("class").unwrap_or_default();
                let agent = match c.attr("provider") {
                    Some(p) => format!("{class}:{p}:{}", c.attr("type").unwrap_or_default()),
                    None => format!("{class}:{}", c.attr("type").unwrap_or_default()),
                };
                out.push(Primitive {
                    id: c.attr("id").unwrap_or_default().to_owned(),
                    agent,
                    params: nvpairs(c, "instance_attributes"),
                    meta: nvpairs(c, "meta_attributes"),
                    clone: clone.cloned(),
                });
            }
            "clone" | "master" => {
                let me = (c.attr("id").unwrap_or_default().to_owned(), nvpairs(c, "meta_attributes"));
                collect(c, Some(&me), out);
            }
            _ => collect(c, clone, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_attribute_from_the_nodes_section() {
        // `cibadmin --query --scope nodes`, recorded in the lab (Pacemaker 2.1.5), with node3's
        // score removed and another attribute added.
        let x = xml::parse(
            r#"<nodes>
  <node id="1" uname="node1">
    <instance_attributes id="nodes-1">
      <nvpair id="nodes-1-master-pgsqld" name="master-pgsqld" value="1001"/>
      <nvpair id="nodes-1-other" name="other" value="5"/>
    </instance_attributes>
  </node>
  <node id="2" uname="node2">
    <instance_attributes id="nodes-2">
      <nvpair id="nodes-2-master-pgsqld" name="master-pgsqld" value="-1000"/>
    </instance_attributes>
  </node>
  <node id="3" uname="node3"/>
</nodes>"#,
        );
        let s = node_attribute_in(&x, "master-pgsqld");
        assert_eq!(s.into_iter().collect::<Vec<_>>(), vec![("node1".to_string(), "1001".to_string()), ("node2".to_string(), "-1000".to_string())]);
        assert!(node_attribute_in(&xml::parse("<nodes><node"), "master-pgsqld").is_empty());
    }

    #[test]
    fn node_state_down_or_up() {
        let st = |x: &str| node_state_in(&xml::parse(x));
        // Recorded in the lab (cibadmin --query --xpath, Pacemaker 2.1.5), its lrm part cut.
        let up = r##"<node_state id="1" uname="node1" in_ccm="true" crmd="online" crm-debug-origin="do_update_resource" join="member" expected="member">
  <lrm id="1"><lrm_resources/></lrm>
  <transient_attributes id="1"><instance_attributes id="status-1"><nvpair id="status-1-.feature-set" name="#feature-set" value="3.16.1"/></instance_attributes></transient_attributes>
</node_state>"##;
        assert_eq!(st(up), Some(NodeState { member: true, controller: true }));
        assert!(!st(r#"<node_state id="2" uname="node2" in_ccm="true" crmd="online" join="member" expected="member"/>"#).unwrap().down());
        assert!(!st(r#"<node_state id="2" uname="node2" in_ccm="1700000000" crmd="1700000000" join="member"/>"#).unwrap().down());
        assert!(st(r#"<node_state id="1" uname="node1" in_ccm="false" crmd="offline" join="down" expected="down"/>"#).unwrap().down());
        assert!(st(r#"<node_state id="1" uname="node1" in_ccm="true" crmd="offline" join="down"/>"#).unwrap().down());
        assert_eq!(st(""), None);
        // Found by `node_state_values_read_as_pacemaker_reads_them`: Pacemaker ≥ 2.1.7 writes
        // 0 for a node out of the membership, with its controller offline; this read as up.
        assert!(st(r#"<node_state id="1" uname="node1" in_ccm="0" crmd="0" join="down" expected="down"/>"#).unwrap().down());
        assert!(st(r#"<node_state id="1" uname="node1" in_ccm="1700000000" crmd="0" join="down"/>"#).unwrap().down());
    }

    #[test]
    fn primitives_with_their_parameters_and_clone() {
        let cib = r#"<resources>
  <clone id="pgsqld-clone">
    <primitive id="pgsqld" class="ocf" provider="paceline" type="pgsqlms">
      <instance_attributes id="pgsqld-instance_attributes">
        <nvpair id="a" name="pgport" value="5434"/>
        <nvpair id="b" name="pghost" value="/run/postgresql"/>
      </instance_attributes>
    </primitive>
    <meta_attributes id="m"><nvpair id="c" name="notify" value="true"/><nvpair id="d" name="promotable" value="true"/></meta_attributes>
  </clone>
  <primitive id="pgsql-vip" class="ocf" provider="heartbeat" type="IPaddr2">
    <instance_attributes id="v"><nvpair id="e" name="ip" value="192.0.2.100"/></instance_attributes>
  </primitive>
  <primitive id="fence-ec2" class="stonith" type="fence_paceline_aws"/>
</resources>"#;
        let p = primitives_in(&xml::parse(cib));
        assert_eq!(p.len(), 3);
        assert_eq!((p[0].id.as_str(), p[0].agent.as_str()), ("pgsqld", "ocf:paceline:pgsqlms"));
        assert_eq!(p[0].params["pgport"], "5434");
        let (clone, meta) = p[0].clone.as_ref().unwrap();
        assert_eq!((clone.as_str(), meta["notify"].as_str()), ("pgsqld-clone", "true"));
        assert_eq!(p[1].params["ip"], "192.0.2.100");
        assert!(p[1].clone.is_none());
        assert_eq!(p[2].agent, "stonith:fence_paceline_aws");
    }

    #[test]
    fn moves_left_by_crm_resource() {
        // What `crm_resource --move --promoted` and `--ban` write (Pacemaker 2.1.5).
        let x = xml::parse(
            r#"<configuration><constraints>
  <rsc_location id="cli-prefer-pgsqld-clone" rsc="pgsqld-clone" role="Promoted" node="node2" score="INFINITY"/>
  <rsc_location id="cli-ban-pgsqld-clone-on-node1" rsc="pgsqld-clone" node="node1" score="-INFINITY"/>
  <rsc_location id="loc-vip" rsc="pgsql-vip" node="node3" score="100"/>
</constraints></configuration>"#,
        );
        let m = moves_in(&x);
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].node.as_str(), m[0].ban, m[0].role.as_deref()), ("node2", false, Some("Promoted")));
        assert_eq!((m[1].id.as_str(), m[1].node.as_str(), m[1].ban), ("cli-ban-pgsqld-clone-on-node1", "node1", true));
    }
    mod prop {
        use super::super::*;
        use crate::pacemaker::xml::tests::prop::escape;
        use proptest::prelude::*;

        proptest! {
            /// Arbitrary text: no panic from any reader of the CIB.
            #[test]
            fn any_text_never_panics(text in any::<String>(), attr in "[a-z-]{1,12}") {
                let root = xml::parse(&text);
                let _ = (node_attribute_in(&root, &attr), node_state_in(&root), primitives_in(&root), moves_in(&root));
            }

            /// A node attribute with any value reads back as that value.
            #[test]
            fn an_attribute_value_reads_back(uname in "[a-z0-9-]{1,12}", value in any::<String>()) {
                let x = format!(r#"<nodes><node id="1" uname="{uname}"><instance_attributes id="i"><nvpair id="n" name="master-pgsqld" value="{}"/></instance_attributes></node></nodes>"#, escape(&value));
                let got = node_attribute_in(&xml::parse(&x), "master-pgsqld");
                // Refused (a code point XML cannot carry) or exactly the value.
                prop_assert!(got.is_empty() || got.get(&uname) == Some(&value), "{got:?}");
            }

            /// `in_ccm` and `crmd` as Pacemaker's scheduler reads them: member for a true
            /// boolean or a positive time, online for "online" or a positive time; 0, false,
            /// offline and anything unrecognised are down.
            #[test]
            fn node_state_values_read_as_pacemaker_reads_them(
                in_ccm in prop_oneof!["true|TRUE|yes|on|y|1", "false|no|off|n|0", "[1-9][0-9]{0,9}", "-[0-9]{1,5}", ".{0,8}"],
                crmd in prop_oneof!["online|ONLINE|Online", "offline|OFFLINE", "0", "[1-9][0-9]{0,9}", "-[0-9]{1,5}", ".{0,8}"],
            ) {
                let x = format!(r#"<node_state id="1" uname="n" in_ccm="{}" crmd="{}"/>"#, escape(&in_ccm), escape(&crmd));
                let member = ["true", "yes", "on", "y", "1"].contains(&in_ccm.to_ascii_lowercase().as_str())
                    || in_ccm.parse::<i64>().is_ok_and(|t| t > 0);
                let controller = crmd.eq_ignore_ascii_case("online") || crmd.parse::<i64>().is_ok_and(|t| t > 0);
                if let Some(st) = node_state_in(&xml::parse(&x)) {
                    prop_assert_eq!(st, NodeState { member, controller }, "in_ccm={:?} crmd={:?}", in_ccm, crmd);
                }
            }
        }
    }
}
