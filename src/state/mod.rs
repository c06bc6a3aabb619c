//! The node state service: one long-running process per node, started, monitored and
//! stopped by Pacemaker (`ocf:paceline:pgsql-state`, a clone), beside the pgsqlms resource.
//!
//! Why a process that runs all the time: some duties cannot wait for the next monitor.
//! The first is the synchronous-commit guard ([`guard`]): PostgreSQL acknowledges a commit
//! whose wait for its synchronous standbys was *cancelled* (statement_timeout,
//! pg_cancel_backend, a driver's cancel) with a mere WARNING, so a client of a primary cut
//! off from its standbys can be told "committed" for a write that the promoted standby
//! never received. The guard watches the commits waiting for replication and, when the
//! standbys stop answering, ends those sessions (the client sees an error, never a false
//! success) before a client's own cancel fires. The second is answering routing checks
//! ([`role`], [`http`]): a load balancer that cannot move a VIP asks every node "are you
//! the primary?", and the answer must come from PostgreSQL *and* the cluster, be current,
//! and cost nothing however often it is asked — so the service's loops keep a snapshot of
//! both views and the endpoints only read it; `/metrics` exposes the same snapshot.
//!
//! The third is following a new primary at once ([`follow`]): a standby that lost its
//! primary retries only every `wal_retrieve_retry_interval`, and synchronous commits on the
//! new primary wait for it; the service wakes the retry the moment the primary answers.
//!
//! What the cluster expects from it: it never changes PostgreSQL's configuration or data,
//! only ends sessions that are waiting on replication that is not coming and asks a
//! standby without a walreceiver to re-read its files (which ends its retry wait); it exits on
//! SIGTERM (Pacemaker's stop), and a monitor that finds it gone is a failure Pacemaker
//! recovers by restarting it.

pub mod crash;
pub mod demoting;
pub mod follow;
pub mod guard;
pub mod http;
pub mod metrics;
pub mod role;
pub mod serve;
