//! PostgreSQL, as the promotable agent needs to see it: positions in the WAL ([`Lsn`]),
//! what `pg_control` says about a stopped instance ([`controldata`]), and talking to a
//! running one in-process ([`client`]), and which process is the instance ([`process`]).
//!
//! The agent must tell apart, without guessing, an instance that is cleanly stopped (safe
//! to start as a standby), one that crashed while primary (it may hold writes nobody else
//! has), and one that runs. A running instance is asked over its local socket; a stopped
//! one is judged from `pg_control`, the only record PostgreSQL keeps of how it stopped.

pub mod client;
pub mod conninfo;
pub mod controldata;
pub mod identity;
pub mod lsn;
pub mod process;

pub use controldata::{ClusterState, ControlData};
pub use lsn::Lsn;
