//! The lab: a real multi-node Pacemaker + Corosync + PostgreSQL cluster in Linux namespaces
//! on one machine. The namespaces, daemons and scenarios are driven by `tests/lab/lab.sh`;
//! what needs precise timing — the writer probe that measures outages and lost writes —
//! lives here, and so does the storm of routing checks the state service is measured with
//! (a shell loop cannot offer 10,000 new connections a second).
//!
//! Only `paceline-lab` (agents/paceline-lab.rs), which is never packaged, names this
//! module: the executables a node runs do not link it.

pub mod probe;
pub mod storm;
