//! paceline — Pacemaker agents that keep PostgreSQL highly available, and the operator's
//! tool that goes with them.
//!
//! One library behind three executables (`agents/`): `paceline`, the operator's tool and
//! the agents that call EC2, and `paceline-core`, the agents that do not (no AWS SDK:
//! they start fast), each agent a link to one of the two that runs the agent its
//! `argv[0]` names, once per action, exiting with the code Pacemaker reads; and
//! `paceline-lab`, the namespace lab, built but never packaged.
//!
//! The modules stand on floors, each using only modules of the floors below it (tests
//! aside), so that what a decision rests on reads from the bottom up and a change high up
//! cannot reach down:
//!
//! 0. Leaves. [`ocf`]: what every agent has in common — exit codes, parameter tables,
//!    meta-data and man pages, logging, action dispatch, the action's deadline.
//!    [`files`]: small files written atomically, never through a link. [`registry`]: the
//!    one list of agents. [`findings`]: what `status` and `check` report. [`civil`]: UTC
//!    dates, both ways.
//! 1. [`cmd`]: every external program, bounded by the action's deadline, its process
//!    group killed. [`net`]: addresses, routes, announcements (netlink). [`aws`]: IMDSv2,
//!    the EC2 client, honest error codes. [`fence`]: the fence-agent protocol.
//! 2. [`pg`]: PostgreSQL — pg_control, WAL positions, process identity, the in-process
//!    client. [`pacemaker`]: Pacemaker's tools, the one place they are called from.
//! 3. [`history`]: the incident records every node keeps (they travel between nodes as
//!    private node attributes). [`state`]: the node state service (routing checks, metrics, crash reports).
//! 4. [`agents`]: one module per agent, one function per action; each agent's entry.
//! 5. The operator's commands: [`status`], [`check`], [`install`]; then [`switchover`],
//!    which reads the cluster through `status`.
//!
//! [`lab`] stands apart: the lab's writer probe and storm, named only by `paceline-lab`.

pub mod agents;
pub mod aws;
pub mod check;
pub mod civil;
pub mod cmd;
pub mod fence;
pub mod files;
pub mod findings;
pub mod history;
pub mod install;
pub mod lab;
pub mod net;
pub mod ocf;
pub mod pacemaker;
pub mod pg;
pub mod registry;
pub mod reinit;
pub mod state;
pub mod status;
pub mod switchover;
