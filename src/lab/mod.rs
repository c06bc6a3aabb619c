//! The lab: a real multi-node Pacemaker + Corosync + PostgreSQL cluster in Linux namespaces
//! on one machine. The namespaces, daemons and scenarios are driven by `tests/lab/lab.sh`;
//! what needs precise timing — the writer probe that measures outages and lost writes —
//! lives here.

pub mod probe;
