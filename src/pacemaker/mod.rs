//! Pacemaker's command-line tools, the one place they are called from (outside tests, no
//! other module runs `crm_*`, `cibadmin`, `attrd_updater` or `stonith_admin`), and
//! corosync.conf, the one file of the cluster stack read directly.
//!
//! Why a layer: the agents' decisions (who is promotable, whether a switchover is safe,
//! whether a node is down) and the operator's commands (status, check, switchover) must
//! not depend on how a tool happens to format its output. Each tool is run here, with a
//! deadline, and its output is parsed here once — XML with quick-xml wherever the tool
//! offers it (`cibadmin --query`; `--output-as=xml` of `crm_resource`, `crm_attribute
//! --query`, `attrd_updater --query`, `crm_mon` and `stonith_admin`), plain text only
//! where Pacemaker 2.1 prints a single value or list (`crm_node -n`, `-q`,
//! `--partition`); of a write (`crm_attribute --update`, `attrd_updater --update` and
//! `--delete`) only the exit status counts. The callers get typed answers: names,
//! attribute values, [`cib::NodeState`], the promoted node, the cluster as [`mon`] reads it.
//!
//! What the cluster expects from it: attribute writes go through the daemons
//! (`crm_attribute` for permanent node attributes, which live in the CIB's `nodes`
//! section; `attrd_updater --private` for reboot-lifetime ones, which never reach the CIB
//! and so never trigger a transition); reads never modify anything.
//!
//! * [`nodes`] — this node's name, the partition's members, quorum, the nodes' ring
//!   addresses (corosync.conf);
//! * [`attrs`] — permanent and private node attributes;
//! * [`cib`] — CIB queries: node attributes of the `nodes` section, a node's `node_state`,
//!   the whole CIB and the configuration's primitives and moves (`paceline status`, `check`);
//! * [`resource`] — where a resource runs and in which role, failure reports, and the
//!   promoted role's move and its constraint's removal (`paceline switchover`);
//! * [`mon`] — the whole cluster at once, as crm_mon sees it (`paceline status`);
//! * [`fencing`] — a fence device's monitor, through the fencer (`paceline check`);
//! * [`xml`] — the small element tree the XML answers are read into.

pub mod attrs;
pub mod cib;
pub mod fencing;
pub mod mon;
pub mod nodes;
#[cfg(test)]
mod recorded;
pub mod resource;
pub mod xml;

use std::process::Command;
use std::time::Duration;

use crate::ocf::OcfError;

/// The cluster property that turns fencing on, by each name Pacemaker reads it under, the
/// one that wins first: 3.0.2's `fencing-enabled`, then `stonith-enabled` (its alias since).
/// Read from crm_mon's answer ([`mon`]) and from the CIB (`paceline check`) alike.
pub const FENCING_ENABLED: [&str; 2] = ["fencing-enabled", "stonith-enabled"];

/// The bound on one call of a Pacemaker tool outside an action (the state service, the
/// operator's commands): they answer in milliseconds from local daemons, so anything
/// longer means a daemon is stuck, not busy.
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(5);

/// The same for a call that writes through the CIB manager (a CIB write may wait for the
/// other nodes' acknowledgements).
pub const CIB_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// The bound for one tool call: inside an agent's action, all that is left of the action —
/// during a membership change the CIB manager can take many seconds to answer, and a fixed
/// 5 s would fail a monitor that had the time to wait (Pacemaker would then recover a
/// healthy primary); outside an action, `fixed`.
fn bound(fixed: Duration) -> Duration {
    crate::ocf::deadline::action().map(|d| d.remaining()).unwrap_or(fixed)
}

/// Run Pacemaker tool `tool` with `args` within [`bound`]`(timeout)`; its stdout.
fn run(tool: &str, args: &[&str], timeout: Duration) -> Result<String, OcfError> {
    crate::cmd::run(Command::new(tool).args(args), bound(timeout))
}

/// Pacemaker's exit status for "no such object" (`CRM_EX_NOSUCH`): an attribute or a
/// resource that does not exist.
pub const CRM_EX_NOSUCH: i64 = 105;

/// A tool's `--output-as=xml` answer: the `<pacemaker-result>` tree and its status.
#[derive(Debug)]
pub struct Answer {
    pub root: xml::Element,
    /// `<status code=...>`: 0 on success, [`CRM_EX_NOSUCH`] for a missing object.
    pub code: i64,
    /// The status message and the error lines under it.
    pub message: String,
}

/// Run `tool ARGS --output-as=xml` within `timeout` and read its answer, whatever its
/// exit status (the status is in the answer). A tool that printed no status — it did not
/// understand the request, or crashed — is an error carrying its stderr.
fn run_xml(tool: &str, args: &[&str], timeout: Duration) -> Result<Answer, OcfError> {
    run_xml_in(Command::new(tool), tool, args, timeout)
}

/// [`run_xml`] without the agent's `OCF_RESKEY_CRM_meta_on_node`: attrd_updater takes it
/// for the node to query, so `--all` run from an agent answers for that node only.
fn run_xml_any_node(tool: &str, args: &[&str], timeout: Duration) -> Result<Answer, OcfError> {
    let mut cmd = Command::new(tool);
    cmd.env_remove("OCF_RESKEY_CRM_meta_on_node");
    run_xml_in(cmd, tool, args, timeout)
}

fn run_xml_in(mut cmd: Command, tool: &str, args: &[&str], timeout: Duration) -> Result<Answer, OcfError> {
    let done = crate::cmd::finish(cmd.args(args).arg("--output-as=xml"), bound(timeout))?;
    answer(&done.stdout).ok_or_else(|| OcfError::generic(format!("{tool} {}: no answer ({})", args.join(" "), done.stderr.trim())))
}

/// The status of a `<pacemaker-result>` document, with the tree.
pub fn answer(stdout: &str) -> Option<Answer> {
    let root = xml::parse(stdout);
    let status = root.descendants("status").next()?;
    let code = status.attr("code")?.parse().ok()?;
    // The message, then the tool's own words (`<errors><error>`), which say what failed.
    let mut message = status.attr("message").unwrap_or_default().to_owned();
    for e in status.descendants("error") {
        message.push_str(": ");
        message.push_str(e.text.trim());
    }
    Some(Answer { root, code, message })
}
