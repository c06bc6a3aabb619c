//! Node attributes: permanent ones (`crm_attribute --lifetime forever`, kept in the CIB's
//! `nodes` section across reboots — promotion scores live there, as PAF keeps them) and
//! private ones (`attrd_updater --private --lifetime reboot`: held by the attribute
//! manager only, never written to the CIB, so setting one never triggers a transition —
//! what the election's per-node positions need).
//!
//! Reads say `Ok(None)` for an attribute that does not exist and `Err` when the tool could
//! not answer: a caller deciding something safety-relevant must not take "could not ask"
//! for "not set".

use super::{run, run_xml, run_xml_any_node, Answer, CIB_WRITE_TIMEOUT, CRM_EX_NOSUCH, TOOL_TIMEOUT};
use crate::ocf::OcfError;

/// attrd_updater 2.1.5's status for a query of an attribute it does not hold: "Invalid
/// configuration" (`CRM_EX_CONFIG`), with "attribute does not exist" in its error line.
const ATTRD_ABSENT: (i64, &str) = (78, "attribute does not exist");

/// The value of `<attribute value=...>` in a query's answer: `None` when the tool said the
/// attribute does not exist, or gave it an empty value.
pub fn value_in(a: &Answer, what: &str) -> Result<Option<String>, OcfError> {
    match a.code {
        0 => Ok(a.root.descendants("attribute").find_map(|e| e.attr("value")).filter(|v| !v.is_empty()).map(str::to_owned)),
        CRM_EX_NOSUCH => Ok(None),
        code if code == ATTRD_ABSENT.0 && a.message.contains(ATTRD_ABSENT.1) => Ok(None),
        code => Err(OcfError::generic(format!("cannot read {what}: {} (status {code})", a.message))),
    }
}

/// Permanent attribute `name` of `node`.
pub fn permanent(name: &str, node: &str) -> Result<Option<String>, OcfError> {
    let a = run_xml("crm_attribute", &["--lifetime", "forever", "--node", node, "--name", name, "--query"], TOOL_TIMEOUT)?;
    value_in(&a, &format!("{name} of {node}"))
}

/// Set permanent attribute `name` of `node` (returns once the CIB has it).
pub fn set_permanent(name: &str, node: &str, value: &str) -> Result<(), OcfError> {
    run("crm_attribute", &["--lifetime", "forever", "--node", node, "--name", name, "--update", value], CIB_WRITE_TIMEOUT).map(|_| ())
}

/// Set transient attribute `name` of `node` (`--lifetime reboot`: gone when the node's
/// cluster stack restarts; shown by crm_mon).
pub fn set_transient(name: &str, node: &str, value: &str) -> Result<(), OcfError> {
    run("crm_attribute", &["--lifetime", "reboot", "--node", node, "--name", name, "--update", value], CIB_WRITE_TIMEOUT).map(|_| ())
}

/// Transient attribute `name` of `node` as the attribute manager holds it (fail counts
/// live there: `fail-count-<resource>#<op>_<interval>`).
pub fn transient(name: &str, node: &str) -> Result<Option<String>, OcfError> {
    let a = run_xml("attrd_updater", &["--name", name, "--node", node, "--query"], TOOL_TIMEOUT)?;
    value_in(&a, &format!("{name} of {node}"))
}

/// Set transient attribute `name` of `node` in the attribute manager (`attrd_updater
/// --update`, not private: written to the CIB's status section as a fail count is).
pub fn update_held(name: &str, node: &str, value: &str) -> Result<(), OcfError> {
    run("attrd_updater", &["--name", name, "--node", node, "--update", value], TOOL_TIMEOUT).map(|_| ())
}

/// Delete transient attribute `name` of `node`.
pub fn delete_transient(name: &str, node: &str) -> Result<(), OcfError> {
    run("crm_attribute", &["--lifetime", "reboot", "--node", node, "--name", name, "--delete"], CIB_WRITE_TIMEOUT).map(|_| ())
}

/// This node's private attribute `name`, set to `value`.
pub fn publish(name: &str, value: &str) -> Result<(), OcfError> {
    run("attrd_updater", &["--private", "--lifetime", "reboot", "--name", name, "--update", value], TOOL_TIMEOUT).map(|_| ())
}

/// Delete this node's private attribute `name`.
pub fn forget(name: &str) -> Result<(), OcfError> {
    run("attrd_updater", &["--private", "--lifetime", "reboot", "--name", name, "--delete"], TOOL_TIMEOUT).map(|_| ())
}

/// Private attribute `name` of `node`.
pub fn private(name: &str, node: &str) -> Result<Option<String>, OcfError> {
    let a = run_xml("attrd_updater", &["--private", "--lifetime", "reboot", "--name", name, "--node", node, "--query"], TOOL_TIMEOUT)?;
    value_in(&a, &format!("{name} of {node}"))
}

/// Private attribute `name` of every node that has it, as `(node, value)`.
pub fn private_all(name: &str) -> Result<Vec<(String, String)>, OcfError> {
    let a = run_xml_any_node("attrd_updater", &["--private", "--lifetime", "reboot", "--name", name, "--all", "--query"], TOOL_TIMEOUT)?;
    values_in(&a, name)
}

/// Every `<attribute host=... value=...>` of a query's answer with a non-empty value.
pub fn values_in(a: &Answer, what: &str) -> Result<Vec<(String, String)>, OcfError> {
    match a.code {
        0 => Ok(a
            .root
            .descendants("attribute")
            .filter_map(|e| Some((e.attr("host")?.to_owned(), e.attr("value").filter(|v| !v.is_empty())?.to_owned())))
            .collect()),
        CRM_EX_NOSUCH => Ok(Vec::new()),
        code if code == ATTRD_ABSENT.0 && a.message.contains(ATTRD_ABSENT.1) => Ok(Vec::new()),
        code => Err(OcfError::generic(format!("cannot read {what}: {} (status {code})", a.message))),
    }
}

#[cfg(test)]
mod tests {
    use super::super::answer;
    use super::*;

    // Recorded from Pacemaker 2.1.5 (Debian 12) in the lab.
    const FOUND: &str = r#"<pacemaker-result api-version="2.25" request="attrd_updater --private --lifetime reboot --name test-x --node node2 --query --output-as=xml">
  <attribute name="test-x" value="1#2" host="node2"/>
  <status code="0" message="OK"/>
</pacemaker-result>"#;
    const DELETED: &str = r#"<pacemaker-result api-version="2.25" request="attrd_updater --private --lifetime reboot --name lsn_location-pgsqld --node node2 --query --output-as=xml">
  <attribute name="lsn_location-pgsqld" value="" host="node2"/>
  <status code="0" message="OK"/>
</pacemaker-result>"#;
    const ATTRD_NEVER_SET: &str = r#"<pacemaker-result api-version="2.25" request="attrd_updater --private --lifetime reboot --name nosuch --node node2 --query --output-as=xml">
  <status code="78" message="Invalid configuration">
    <errors>
      <error>attrd_updater: Could not query value of nosuch: attribute does not exist</error>
    </errors>
  </status>
</pacemaker-result>"#;
    const SCORE: &str = r#"<pacemaker-result api-version="2.25" request="crm_attribute --lifetime forever --node node2 --name master-pgsqld --query --output-as=xml">
  <attribute name="master-pgsqld" value="1000" scope="nodes"/>
  <status code="0" message="OK"/>
</pacemaker-result>"#;
    const NO_SCORE: &str = r#"<pacemaker-result api-version="2.25" request="crm_attribute --lifetime forever --node node2 --name nosuch --query --output-as=xml">
  <status code="105" message="No such object">
    <errors>
      <error>crm_attribute: Error performing operation: No such device or address</error>
    </errors>
  </status>
</pacemaker-result>"#;

    #[test]
    fn reads_a_value_an_absence_and_an_error() {
        assert_eq!(value_in(&answer(FOUND).unwrap(), "x").unwrap().as_deref(), Some("1#2"));
        assert_eq!(value_in(&answer(SCORE).unwrap(), "x").unwrap().as_deref(), Some("1000"));
        for absent in [DELETED, ATTRD_NEVER_SET, NO_SCORE] {
            assert_eq!(value_in(&answer(absent).unwrap(), "x").unwrap(), None, "{absent}");
        }
        let other78 =
            r#"<pacemaker-result><status code="78" message="Invalid configuration"><errors><error>bad option</error></errors></status></pacemaker-result>"#;
        assert!(value_in(&answer(other78).unwrap(), "x").is_err());
        let down =
            r#"<pacemaker-result><status code="102" message="Not connected"><errors><error>Could not connect</error></errors></status></pacemaker-result>"#;
        let e = value_in(&answer(down).unwrap(), "score of node2").unwrap_err();
        assert!(e.reason.contains("score of node2") && e.reason.contains("Not connected"), "{}", e.reason);
        assert!(answer("").is_none());
        assert!(answer("<pacemaker-result><status message=\"x\"/></pacemaker-result>").is_none());
    }
    mod prop {
        use super::super::super::answer;
        use super::super::*;
        use super::FOUND;
        use crate::pacemaker::xml::tests::prop::escape;
        use proptest::prelude::*;

        proptest! {
            /// Arbitrary text: no answer, or an answer read without a panic.
            #[test]
            fn any_text_never_panics(text in any::<String>()) {
                if let Some(a) = answer(&text) {
                    let _ = value_in(&a, "x");
                }
            }

            /// Text with no `<status` element is no answer (never a success).
            #[test]
            fn no_status_is_no_answer(text in any::<String>().prop_filter("no status", |t| !t.contains("status"))) {
                prop_assert!(answer(&text).is_none());
            }

            /// An answer cut anywhere is no answer, or the whole one's value: the status
            /// comes last, so a cut answer is never read as "the attribute is absent".
            #[test]
            fn a_cut_answer_is_none_or_the_whole(cut in 0..FOUND.len()) {
                if let Some(a) = answer(&FOUND[..cut]) {
                    let v = value_in(&a, "x").ok().flatten();
                    prop_assert_eq!(v.as_deref(), Some("1#2"));
                }
            }

            /// Any value reads back as itself (empty: absent); any status code is a value,
            /// an absence or an error as the code says; a code that is not a number is no
            /// answer at all.
            #[test]
            fn values_and_codes_are_what_they_say(value in any::<String>(), code in prop_oneof!["0", "105", "-?[0-9]{1,4}", ".{0,4}"]) {
                let x = format!(r#"<pacemaker-result><attribute name="a" value="{}"/><status code="{}" message="m"/></pacemaker-result>"#, escape(&value), escape(&code));
                let Some(a) = answer(&x) else {
                    // Refused: a code that is no number, or a value XML cannot carry.
                    prop_assert!(code.parse::<i64>().is_err() || value.chars().any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r')));
                    return Ok(());
                };
                let got = value_in(&a, "x");
                match code.parse::<i64>() {
                    Ok(0) => prop_assert_eq!(got.ok().flatten(), Some(value).filter(|v| !v.is_empty())),
                    Ok(105) => prop_assert_eq!(got.ok().flatten(), None),
                    _ => prop_assert!(got.is_err()),
                }
            }
        }
    }
}
