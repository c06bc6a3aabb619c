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
    addresses_in(&text).map_err(|e| OcfError::generic(format!("{path}: {e}")))
}

/// The `node { ring0_addr: A  name: N }` blocks of a corosync.conf nodelist (a node without
/// a name is named by its address), read line by line as corosync reads the file: a line
/// whose first non-blank character is `#` is a comment (a `#` further on is part of a value,
/// `name: db#1`), a line with `{` opens a section, else one with `:` is `key: value`, else
/// one with `}` closes the section. Braces that do not balance are an error, as corosync
/// refuses such a file: a cut or mangled file never passes for a shorter nodelist.
pub fn addresses_in(conf: &str) -> Result<Vec<(String, String)>, String> {
    let blank = |s: &'_ str| s.trim_matches([' ', '\t', '\r']).to_owned();
    let mut out = Vec::new();
    let mut path: Vec<String> = Vec::new();
    let (mut name, mut addr) = (None::<String>, None::<String>);
    for (n, line) in conf.lines().enumerate() {
        let line = blank(line);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let in_node = |path: &[String]| matches!(path, [a, b] if a == "nodelist" && b == "node");
        if let Some((section, _)) = line.split_once('{') {
            path.push(blank(section));
            if in_node(&path) {
                (name, addr) = (None, None);
            }
        } else if let Some((k, v)) = line.split_once(':') {
            let v = Some(blank(v)).filter(|v| !v.is_empty());
            match blank(k).as_str() {
                "name" if in_node(&path) => name = v,
                "ring0_addr" if in_node(&path) => addr = v,
                _ => {}
            }
        } else if line.contains('}') {
            if in_node(&path) {
                if let Some(a) = addr.take() {
                    out.push((name.take().unwrap_or_else(|| a.clone()), a));
                }
            }
            if path.pop().is_none() {
                return Err(format!("line {}: unexpected closing brace", n + 1));
            }
        }
    }
    match path.last() {
        Some(open) => Err(format!("section '{open}' is not closed")),
        None => Ok(out),
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

    #[test]
    fn corosync_nodelist_addresses() {
        let conf = "totem {\n    version: 2\n}\nnodelist {\n    node {\n        ring0_addr: 192.0.2.11\n        name: node1\n        nodeid: 1\n    }\n    node {\n        # no name: the address is the name\n        ring0_addr: 2001:db8::12\n    }\n}\nquorum {\n    provider: corosync_votequorum\n}\n";
        assert_eq!(addresses_in(conf).unwrap(), vec![("node1".to_owned(), "192.0.2.11".to_owned()), ("2001:db8::12".to_owned(), "2001:db8::12".to_owned())]);
        assert!(addresses_in("garbage { { }").is_err());
        assert!(addresses_in("}").is_err());
        assert_eq!(addresses_in("").unwrap(), vec![]);
    }

    #[test]
    fn corosync_comments_are_whole_lines() {
        // Found by `a_generated_nodelist_reads_back`: a '#' inside a value cut it ("db#1"
        // read as "db"), where corosync keeps it; and "} # node 1" closes as corosync closes.
        let conf = "nodelist {\n  node {\n    name: db#1\n    ring0_addr: 192.0.2.11\n  } # node 1\n  node {\n    ring0_addr: 192.0.2.12\n  }\n}\n";
        assert_eq!(addresses_in(conf).unwrap(), vec![("db#1".to_owned(), "192.0.2.11".to_owned()), ("192.0.2.12".to_owned(), "192.0.2.12".to_owned())]);
    }

    mod prop {
        use super::super::*;
        use proptest::prelude::*;

        /// A corosync.conf with `nodes` (name, address) in its nodelist, other sections and
        /// keys around and inside, comments and indentation of tabs or spaces.
        fn conf(nodes: &[(Option<String>, String)], indent: &str, comments: bool) -> String {
            let c = |s: &str| if comments { format!("{indent}# {s}\n") } else { String::new() };
            let mut t =
                format!("{}totem {{\n{indent}version: 2\n{indent}interface {{\n{indent}{indent}ring0_addr: 203.0.113.1\n{indent}}}\n}}\n", c("cluster"));
            t.push_str(&format!("nodelist {{\n{}", c("the nodes")));
            for (i, (name, addr)) in nodes.iter().enumerate() {
                t.push_str(&format!("{indent}node {{\n{}", c("a node")));
                if let Some(n) = name {
                    t.push_str(&format!("{indent}{indent}name: {n}\n"));
                }
                t.push_str(&format!(
                    "{indent}{indent}nodeid: {}\n{indent}{indent}ring0_addr:{indent}{addr}\n{indent}}}{}\n",
                    i + 1,
                    if comments { " # end" } else { "" }
                ));
            }
            t.push_str("}\nquorum {\n\tprovider: corosync_votequorum\n}\n");
            t
        }

        fn nodes() -> impl Strategy<Value = Vec<(Option<String>, String)>> {
            prop::collection::vec((prop::option::of("[a-z][a-z0-9#.-]{0,10}"), "[0-9]{1,3}(\\.[0-9]{1,3}){3}|[0-9a-f:]{2,20}|[a-z][a-z0-9.-]{0,12}"), 0..5)
        }

        proptest! {
            /// Arbitrary text: an error or a list, never a panic.
            #[test]
            fn any_text_never_panics(text in any::<String>()) {
                let _ = addresses_in(&text);
            }

            /// Arbitrary lines of braces, colons and comments: never a panic, and an error
            /// whenever the braces do not balance.
            #[test]
            fn unbalanced_braces_are_errors(lines in prop::collection::vec("[ \t]{0,2}(nodelist|node|name|ring0_addr|#|[a-z]{1,3})?[ :#]{0,2}[{}]?[a-z0-9:. ]{0,6}", 0..16)) {
                let text = lines.join("\n");
                let (mut depth, mut balanced) = (0i32, true);
                for l in &lines {
                    let l = l.trim_matches([' ', '\t']);
                    if l.is_empty() || l.starts_with('#') {
                        continue;
                    }
                    if l.contains('{') {
                        depth += 1;
                    } else if !l.contains(':') && l.contains('}') {
                        depth -= 1;
                        balanced &= depth >= 0;
                    }
                }
                prop_assert_eq!(addresses_in(&text).is_ok(), balanced && depth == 0, "{:?}", text);
            }

            /// A nodelist written out reads back as written, '#' in names and all.
            #[test]
            fn a_generated_nodelist_reads_back(nodes in nodes(), tabs in any::<bool>(), comments in any::<bool>()) {
                let text = conf(&nodes, if tabs { "\t" } else { "    " }, comments);
                let expected: Vec<(String, String)> = nodes.iter().map(|(n, a)| (n.clone().unwrap_or_else(|| a.clone()), a.clone())).collect();
                prop_assert_eq!(addresses_in(&text), Ok(expected));
            }

            /// A file cut anywhere is an error, or says all of its nodelist or none of it.
            #[test]
            fn a_cut_file_is_an_error_or_all_or_nothing(nodes in nodes(), cut in any::<prop::sample::Index>()) {
                let text = conf(&nodes, "  ", true);
                let whole = addresses_in(&text).unwrap();
                let at = cut.index(text.len() + 1);
                if let Ok(some) = addresses_in(&text[..at]) {
                    prop_assert!(some.is_empty() || some == whole, "{:?}", &text[..at]);
                }
            }

            /// `crm_node -q`: quorate only for "1", not for "0", an error for anything else.
            #[test]
            fn quorum_is_one_zero_or_an_error(text in prop_oneof!["[01]", "\\s*[01]\\s*", any::<String>()]) {
                let expected = match text.trim() {
                    "1" => Some(true),
                    "0" => Some(false),
                    _ => None,
                };
                prop_assert_eq!(quorum_in(&text).ok(), expected);
            }
        }
    }
}
