//! paceline — Pacemaker agents that keep PostgreSQL highly available.
//!
//! The crate is one library shared by several small binaries (see `agents/`): each binary
//! is an OCF resource agent or a fence agent that Pacemaker runs once per action and that
//! exits with the code Pacemaker reads. Everything an agent has in common — exit codes,
//! parameter tables, meta-data, logging, action dispatch — lives once in [`ocf`]; what the
//! agents do to the machine lives in [`net`] (addresses, routes, announcements). The
//! agents themselves are in [`agents`], one module per agent, one function per action.

pub mod agents;
pub mod aws;
pub mod check;
pub mod cmd;
pub mod fence;
pub mod files;
pub mod findings;
pub mod install;
pub mod lab;
pub mod net;
pub mod ocf;
pub mod pacemaker;
pub mod pg;
pub mod registry;
pub mod state;
pub mod status;
pub mod switchover;
