//! This node, its partition and quorum (`crm_node`).
//!
//! `crm_node` prints these as single values in Pacemaker 2.1 (no XML schema exists for
//! them), so they are read as text — here, once.

use std::time::Duration;

use super::{run, TOOL_TIMEOUT};
use crate::ocf::OcfError;

/// This node's name as the cluster knows it (`crm_node -n`).
pub fn local_name() -> Result<String, OcfError> {
    let out = run("crm_node", &["-n"], TOOL_TIMEOUT)?;
    let name = out.trim();
    if name.is_empty() {
        return Err(OcfError::generic("crm_node -n printed no node name"));
    }
    Ok(name.to_owned())
}

/// The members of this node's partition (`crm_node --partition`).
pub fn partition() -> Result<Vec<String>, OcfError> {
    Ok(members(&run("crm_node", &["--partition"], TOOL_TIMEOUT)?))
}

/// The names in `crm_node --partition` output (space-separated, one line).
pub fn members(out: &str) -> Vec<String> {
    out.split_whitespace().map(str::to_owned).collect()
}

/// Whether this node's partition has quorum (`crm_node -q`): an isolated node learns it
/// lost quorum only after Corosync's token and consensus timeouts.
pub fn quorate(timeout: Duration) -> Result<bool, OcfError> {
    quorum_in(&run("crm_node", &["-q"], timeout)?)
}

/// `1` quorate, `0` not; anything else is an error (never guessed as quorate).
pub fn quorum_in(out: &str) -> Result<bool, OcfError> {
    match out.trim() {
        "1" => Ok(true),
        "0" => Ok(false),
        other => Err(OcfError::generic(format!("crm_node -q printed '{other}', not 0 or 1"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_and_quorum_text() {
        assert_eq!(members("node1 node2 node3\n"), vec!["node1", "node2", "node3"]);
        assert!(members("\n").is_empty());
        assert!(quorum_in("1\n").unwrap());
        assert!(!quorum_in("0").unwrap());
        for bad in ["", "yes", "2", "1 0"] {
            assert!(quorum_in(bad).is_err(), "{bad}");
        }
    }
}
