//! This node, its partition and quorum (`crm_node`), and the nodes' addresses (Corosync's
//! configuration).
//!
//! `crm_node` prints these as single values in Pacemaker 2.1 (no XML schema exists for
//! them), so they are read as text — here, once. Addresses come from corosync.conf's
//! nodelist, the one place every node of a cluster has them.

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

/// Each node's first ring address (`ring0_addr`), by name, from corosync.conf
/// (`$COROSYNC_MAIN_CONFIG_FILE`, as corosync reads it, or /etc/corosync/corosync.conf).
pub fn addresses() -> Result<Vec<(String, String)>, OcfError> {
    let path = std::env::var("COROSYNC_MAIN_CONFIG_FILE").unwrap_or_else(|_| "/etc/corosync/corosync.conf".into());
    let text = std::fs::read_to_string(&path).map_err(|e| OcfError::generic(format!("cannot read {path}: {e}")))?;
    Ok(addresses_in(&text))
}

/// The `node { ring0_addr: A  name: N }` blocks of a corosync.conf nodelist.
pub fn addresses_in(conf: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let (mut depth, mut in_nodelist, mut in_node) = (0usize, false, false);
    let (mut name, mut addr) = (None::<String>, None::<String>);
    for line in conf.lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if let Some(block) = line.strip_suffix('{') {
            depth += 1;
            match block.trim() {
                "nodelist" if depth == 1 => in_nodelist = true,
                "node" if in_nodelist && depth == 2 => {
                    in_node = true;
                    (name, addr) = (None, None);
                }
                _ => {}
            }
        } else if line == "}" {
            if in_node && depth == 2 {
                if let Some(a) = addr.take() {
                    out.push((name.take().unwrap_or_else(|| a.clone()), a));
                }
                in_node = false;
            } else if in_nodelist && depth == 1 {
                in_nodelist = false;
            }
            depth = depth.saturating_sub(1);
        } else if in_node {
            if let Some((k, v)) = line.split_once(':') {
                match k.trim() {
                    "name" => name = Some(v.trim().to_owned()),
                    "ring0_addr" => addr = Some(v.trim().to_owned()),
                    _ => {}
                }
            }
        }
    }
    out
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

    #[test]
    fn corosync_nodelist_addresses() {
        let conf = "totem {\n    version: 2\n}\nnodelist {\n    node {\n        ring0_addr: 192.0.2.11\n        name: node1\n        nodeid: 1\n    }\n    node {\n        # no name: the address is the name\n        ring0_addr: 2001:db8::12\n    }\n}\nquorum {\n    provider: corosync_votequorum\n}\n";
        assert_eq!(addresses_in(conf), vec![("node1".to_owned(), "192.0.2.11".to_owned()), ("2001:db8::12".to_owned(), "2001:db8::12".to_owned())]);
        assert!(addresses_in("garbage { { }").is_empty());
    }
}
