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
/// next monitor. Only root and hacluster may: the controller refuses anyone else in its
/// log while crm_resource still exits 0 (src/state/crash.rs's reporter stays root for it).
/// One report counts once against migration-threshold, as a failed monitor does:
/// [`report_count`] before it, [`count_report_once`] after it.
pub fn fail(resource: &str, node: &str) -> Result<(), OcfError> {
    let a = run_xml("crm_resource", &["--fail", "--resource", resource, "--node", node], TOOL_TIMEOUT)?;
    match a.code {
        0 => Ok(()),
        code => Err(OcfError::generic(format!("crm_resource --fail {resource} on {node}: {} (status {code})", a.message))),
    }
}

/// The fail count [`fail`]'s reports add to (`fail-count-<resource>#asyncmon_0`: the
/// controller records a report as a failed `asyncmon` of interval 0): 0 when unset, None
/// when it cannot be read.
pub fn report_count(resource: &str, node: &str) -> Option<u64> {
    let v = super::attrs::transient(&format!("fail-count-{resource}#asyncmon_0"), node).ok()?;
    Some(v.and_then(|v| v.parse().ok()).unwrap_or(0))
}

/// After one [`fail`], with the count [`report_count`] read before it: Pacemaker 2.1.5 adds
/// 2 for one `crm_resource --fail` (its controller takes both history entries the injected
/// result writes, `_last_failure_0` and `_last_0`, as failures from outside the cluster;
/// 3.0 adds 1), so with migration-threshold=5 a node's instance would move away after its
/// third crash instead of its fifth. Once the count has risen, wait a moment for a second
/// rise and take it back. A count that rose by more, or that cannot be read, is left.
pub fn count_report_once(resource: &str, node: &str, before: u64) {
    let name = format!("fail-count-{resource}#asyncmon_0");
    let start = std::time::Instant::now();
    let mut first_rise: Option<std::time::Instant> = None;
    while start.elapsed() < std::time::Duration::from_secs(3) {
        match report_count(resource, node) {
            Some(n) if n == before + 2 => {
                match super::attrs::update_held(&name, node, &(before + 1).to_string()) {
                    Ok(()) => crate::ocf_info!("{name} on {node} rose by 2 for one report: set back to {}", before + 1),
                    Err(e) => crate::ocf_warn!("{name} on {node} rose by 2 for one report, and cannot be set back: {}", e.reason),
                }
                return;
            }
            Some(n) if n == before + 1 => {
                let at = *first_rise.get_or_insert_with(std::time::Instant::now);
                if at.elapsed() >= std::time::Duration::from_millis(700) {
                    return;
                }
            }
            Some(n) if n > before + 2 => return,
            None => return,
            _ => {}
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
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
