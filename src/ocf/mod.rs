//! OCF plumbing shared by every paceline agent.
//!
//! Pacemaker talks to a resource agent through a narrow contract: the action in `argv[1]`,
//! the parameters in `OCF_RESKEY_*`, Pacemaker's own view in `OCF_RESKEY_CRM_meta_*`, and
//! an exit code whose meaning is fixed by the OCF specification. A wrong exit code is not
//! a cosmetic bug: `7` on a stop makes Pacemaker believe the resource is down, `6` stops
//! the resource on every node, `5` bans it from this node. This module keeps that contract
//! in one place so that no agent can get it subtly different:
//!
//! * [`OcfRc`] is the only way an agent names an exit code, and [`OcfError`] carries one,
//!   so a failure can never leave an agent without saying which code it means;
//! * [`params`] holds each agent's parameter table — defined once, it drives meta-data,
//!   the parsing and validation of `OCF_RESKEY_*`, and the documentation;
//! * [`env`] reads what Pacemaker tells the agent about the action (interval, timeout,
//!   depth, clone and notify variables), and [`deadline`] turns the timeout into the one
//!   deadline the action works to;
//! * [`log`] logs where `ocf_log` would, and prints `ocf-exit-reason:` lines;
//! * [`run`] dispatches `argv[1]` to the agent's action and turns the outcome into the
//!   process exit code.

pub mod deadline;
pub mod env;
pub mod exit;
pub mod log;
pub mod manpage;
pub mod metadata;
pub mod params;
mod run;

pub use deadline::Deadline;
pub use env::OcfEnv;
pub use exit::{OcfError, OcfRc, OcfResult};
pub use metadata::{ActionSpec, AgentSpec};
pub use params::{Param, ParamKind, Params, Support};
pub use run::{main_with, Action};
