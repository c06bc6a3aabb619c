//! Where a resource runs, and in which role (`crm_resource --locate --output-as=xml`), and
//! the writes: reporting a resource failed on a node (`crm_resource --fail`), moving,
//! banning and clearing (`--move --promoted`, `--ban`, `--clear`).

use super::xml::Element;
use super::{run_xml, CRM_EX_NOSUCH, TOOL_TIMEOUT};
use crate::ocf::OcfError;

/// One node a resource is active on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub node: String,
    /// Running the promoted role there.
    pub promoted: bool,
}

/// The nodes `resource` is active on; empty when it runs nowhere or does not exist.
pub fn locate(resource: &str) -> Result<Vec<Location>, OcfError> {
    let a = run_xml("crm_resource", &["--locate", "--resource", resource], TOOL_TIMEOUT)?;
    match a.code {
        0 => Ok(locations_in(&a.root)),
        CRM_EX_NOSUCH => Ok(Vec::new()),
        code => Err(OcfError::generic(format!("crm_resource --locate {resource}: {} (status {code})", a.message))),
    }
}

/// Tell the cluster that `resource` has failed on `node`, now: the controller records a
/// failed operation for it there, and the scheduler recovers it as it would after a failed
/// monitor (fail count, demote/stop/start, promotion elsewhere), without waiting for the
/// next monitor.
pub fn fail(resource: &str, node: &str) -> Result<(), OcfError> {
    let a = run_xml("crm_resource", &["--fail", "--resource", resource, "--node", node], TOOL_TIMEOUT)?;
    match a.code {
        0 => Ok(()),
        code => Err(OcfError::generic(format!("crm_resource --fail {resource} on {node}: {} (status {code})", a.message))),
    }
}

/// Ask the cluster to run `resource`'s promoted role on `node` (`crm_resource --move
/// --promoted`): a `cli-prefer-` location constraint, which stays until [`clear`].
pub fn move_promoted(resource: &str, node: &str) -> Result<(), OcfError> {
    let a = run_xml("crm_resource", &["--move", "--promoted", "--resource", resource, "--node", node], super::CIB_WRITE_TIMEOUT)?;
    match a.code {
        0 => Ok(()),
        code => Err(OcfError::generic(format!("crm_resource --move --promoted {resource} to {node}: {} (status {code})", a.message))),
    }
}

/// Keep `resource` off `node` (`crm_resource --ban`): a `cli-ban-` location constraint,
/// which stays until [`clear`].
pub fn ban(resource: &str, node: &str) -> Result<(), OcfError> {
    let a = run_xml("crm_resource", &["--ban", "--resource", resource, "--node", node], super::CIB_WRITE_TIMEOUT)?;
    match a.code {
        0 => Ok(()),
        code => Err(OcfError::generic(format!("crm_resource --ban {resource} from {node}: {} (status {code})", a.message))),
    }
}

/// Remove the constraints `--move` and `--ban` made for `resource` (`crm_resource --clear`).
pub fn clear(resource: &str) -> Result<(), OcfError> {
    let a = run_xml("crm_resource", &["--clear", "--resource", resource], super::CIB_WRITE_TIMEOUT)?;
    match a.code {
        0 => Ok(()),
        code => Err(OcfError::generic(format!("crm_resource --clear {resource}: {} (status {code})", a.message))),
    }
}

/// `<nodes resource=R><node state="promoted">N</node>...` below `root`.
pub fn locations_in(root: &Element) -> Vec<Location> {
    root.descendants("nodes")
        .flat_map(|ns| ns.children.iter().filter(|n| n.name == "node" && !n.text.is_empty()))
        .map(|n| Location { node: n.text.clone(), promoted: n.attr("state") == Some("promoted") })
        .collect()
}

/// The node other than `me` running `resource`'s promoted role, among `locations`.
pub fn promoted_elsewhere(locations: &[Location], me: &str) -> Option<String> {
    locations.iter().find(|l| l.promoted && l.node != me).map(|l| l.node.clone())
}

#[cfg(test)]
mod tests {
    use super::super::answer;
    use super::*;

    // Recorded from Pacemaker 2.1.5 (Debian 12) in the lab.
    const LOCATE: &str = r#"<pacemaker-result api-version="2.25" request="crm_resource --locate --resource pgsqld --output-as=xml">
  <nodes resource="pgsqld">
    <node>node3</node>
    <node>node2</node>
    <node state="promoted">node1</node>
  </nodes>
  <status code="0" message="OK"/>
</pacemaker-result>"#;

    #[test]
    fn finds_the_promoted_node() {
        let a = answer(LOCATE).unwrap();
        let l = locations_in(&a.root);
        assert_eq!(l.len(), 3);
        assert_eq!(promoted_elsewhere(&l, "node2").as_deref(), Some("node1"));
        assert_eq!(promoted_elsewhere(&l, "node1"), None);
        let none = answer(r#"<pacemaker-result><nodes resource="pgsqld"/><status code="0" message="OK"/></pacemaker-result>"#).unwrap();
        assert!(locations_in(&none.root).is_empty());
    }
}
