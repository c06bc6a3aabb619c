//! What the AWS agents share: identity from IMDSv2, an EC2 client bounded by the action's
//! timeout, and an error mapping that never lies about the resource's state.
//!
//! # Why
//!
//! An agent that talks to EC2 has three ways to mislead Pacemaker, and the reference agents
//! use all three: it can run past the action's timeout (Pacemaker then kills it and
//! escalates, possibly to fencing), it can report an API failure as "not running" (a stop
//! that "succeeds" without unassigning, a probe that hides an address held here), and it
//! can report a configuration mistake as a transient error (retried forever). This module
//! makes each of those impossible to get wrong in an agent:
//!
//! * every EC2 call goes through [`Ec2::call`], which bounds it by a [`Deadline`] derived
//!   from `OCF_RESKEY_CRM_meta_timeout` (minus a safety margin), lets the SDK's standard
//!   retry mode (exponential backoff with jitter on throttling, 5xx, timeouts and I/O
//!   errors) work inside that bound, and turns every failure into an [`AwsError`] that
//!   carries its OCF code and the AWS error code;
//! * no code path maps an API failure to `OCF_NOT_RUNNING`: that is the agent's decision,
//!   taken only from an answer EC2 actually gave;
//! * secrets ([`Secret`]) print as `****` in `Debug` and `Display`; credentials are never
//!   logged, not even at `HA_DEBUG=1`; the SDK's own tracing has no subscriber.
//!
//! # API
//!
//! * [`block_on`]`(future) -> Result<T, OcfError>`: run async code on a single-threaded
//!   tokio runtime, so agents stay `fn start(env: &OcfEnv) -> OcfResult`.
//! * [`Deadline`]: `Deadline::for_action(env, default_timeout)` (Pacemaker's timeout, or
//!   `default_timeout` when run by hand, minus a margin of 10 % clamped to 1–5 s),
//!   `Deadline::after(duration)`, `remaining()`, `expired()`, `sleep(interval) -> bool`
//!   (sleeps at most until the deadline; false when none is left).
//! * [`Secret`]: `Secret::new(String)`, `expose() -> &str`; redacted in `Debug`/`Display`.
//! * [`COMMON`]: the parameter table every AWS resource agent adds to its own (region,
//!   profile, endpoint_url, instance_id, and heartbeat's ignored leftovers); [`Actions`]:
//!   their dispatch under heartbeat's action names; [`ADDRESS_ACTIONS`]: what awsvip and
//!   awseip advertise.
//! * [`AwsParams`] (`region`, `profile`, `endpoint_url`, `instance_id`, `access_key`,
//!   `secret_key`: all `Option`): `AwsParams::from_params(&Params)` reads the first four
//!   from an agent's parameter table (which must include [`REGION`], [`PROFILE`],
//!   [`ENDPOINT_URL`], [`INSTANCE_ID`]), `validate()` checks their syntax
//!   (`OCF_ERR_CONFIGURED`).
//! * [`Imds`]: `Imds::new(&Deadline)`; async `get(path)`, `instance_id()`, `region()`,
//!   `mac()`, `macs()`, `interface_id(mac)`, `primary_eni()`, `local_ipv4s(mac)`,
//!   `device_number(mac)`. IMDSv2 through `aws_config::imds::Client`: token fetched once and
//!   cached for its TTL (a fresh one after a 401), 1 s connect / 2 s read timeouts, 3 attempts,
//!   every request also bounded by the deadline. The endpoint follows the SDK's
//!   `AWS_EC2_METADATA_SERVICE_ENDPOINT` (tests point it at their stub). An IMDS that cannot
//!   be reached at all (no token, connection refused, no route: not an EC2 instance, or
//!   IMDS disabled) is `OCF_ERR_INSTALLED`, this node cannot run the agent; one that answers
//!   late, with an error status, or with an answer that is not what the path holds (a MAC,
//!   an address list, a device number) is `OCF_ERR_GENERIC`, worth a retry.
//! * [`Ec2`]: `connect(&AwsParams, &Deadline, &Imds).await -> Result<Ec2, OcfError>` resolves
//!   the region (parameter, else `AWS_REGION`/`AWS_DEFAULT_REGION`, else the profile's,
//!   else IMDS), the credentials (explicit keys, else the named profile alone, else the SDK
//!   default chain with our IMDS client) once, and builds an `aws_sdk_ec2::Client` whose
//!   endpoint is `endpoint_url`, else the SDK's `AWS_ENDPOINT_URL_EC2`/`AWS_ENDPOINT_URL`.
//!   `ec2.client()` is the SDK client; `ec2.region()`, `ec2.deadline()`;
//!   `ec2.call("DescribeAddresses", ec2.client().describe_addresses()….send()).await`
//!   returns `Result<Output, AwsError>`.
//! * [`Session`]: `Session::open(&AwsParams, &Deadline).await` = IMDS handle + this
//!   node's instance id ([`AwsParams::resolve_instance_id`]: parameter, else IMDS) + a
//!   connected [`Ec2`]; what a resource agent needs for one action.
//!   [`with_session`]`(env, &AwsParams, default_timeout, async |s| …)` is how an action
//!   runs: the deadline from the action's timeout, the session opened within it, the
//!   action's own work on it — so each agent's actions say only what is theirs.
//! * [`wait_until`]`(deadline, look, shows, late)`: look at EC2 until it shows an accepted
//!   change (backoff between looks, bounded by the deadline).
//! * [`AwsError`]: `rc`, `code()` (the AWS error code, e.g. `InvalidAddress.NotFound`),
//!   `reason`; `is_not_found()`; `From<AwsError> for OcfError`. [`rc_for_code`] is the table:
//!   auth and permission codes → `OCF_ERR_PERM`; a configured thing that does not exist or a
//!   malformed parameter → `OCF_ERR_CONFIGURED`; throttling, 5xx, timeouts, network errors
//!   (after the retries) and anything unknown → `OCF_ERR_GENERIC`.
//!
//! Credential failures: no credentials anywhere → `OCF_ERR_PERM` (this node lacks a role);
//! a named `profile` that does not exist or holds no credentials, or a credentials
//! configuration that is invalid → `OCF_ERR_CONFIGURED`; a role STS refuses to let these
//! credentials assume → `OCF_ERR_PERM`; a provider that does not answer in time →
//! `OCF_ERR_GENERIC`.
//!
//! Name resolution: the SDK resolves endpoints with `getaddrinfo` (hyper-util's
//! `GaiResolver`), which works in our static (+crt-static) glibc binaries as long as the
//! host's glibc matches the one linked in (glibc loads its NSS modules at run time); a
//! test resolves `localhost` through the SDK from the built binaries.

mod deadline;
mod ec2;
pub mod eni;
mod error;
mod imds;
mod params;
#[cfg(test)]
pub(crate) mod testing;

pub use deadline::{wait_until, Backoff, Deadline};
pub use ec2::Ec2;
/// An error and its sources on one line, each text once (no debug dumps).
pub(crate) use error::chain as error_chain;
pub use error::{rc_for_code, AwsError};
pub use imds::Imds;
pub use params::{valid_instance_id, valid_region, valid_resource_id, AwsParams, Secret, COMMON, ENDPOINT_URL, INSTANCE_ID, PROFILE, REGION};

use std::time::Duration;

use crate::ocf::{Action, ActionSpec, OcfEnv, OcfError, OcfResult};

/// The actions of an AWS resource agent, dispatched under the names heartbeat's agents
/// accept (`status` for monitor, `validate` for validate-all; a migration is a stop here
/// and a start there): one table, shared by awsvip, awseip and aws-vpc-move-ip.
pub struct Actions {
    pub start: fn(&OcfEnv) -> OcfResult,
    pub stop: fn(&OcfEnv) -> OcfResult,
    pub monitor: fn(&OcfEnv) -> OcfResult,
    pub validate_all: fn(&OcfEnv) -> OcfResult,
}

impl Actions {
    /// An AWS agent's entry point: its spec, these actions.
    pub fn main(&'static self, spec: &'static crate::ocf::AgentSpec) -> ! {
        crate::ocf::main_with(spec, |a| self.dispatch(a))
    }

    pub fn dispatch(&self, a: &Action) -> Option<OcfResult> {
        Some(match a.name {
            "start" | "migrate_from" => (self.start)(a.env),
            "stop" | "migrate_to" => (self.stop)(a.env),
            "monitor" | "status" => (self.monitor)(a.env),
            "validate-all" | "validate" => (self.validate_all)(a.env),
            _ => return None,
        })
    }
}

/// The actions awsvip and awseip advertise, with heartbeat's timeouts: [`Actions`]'s
/// names, migration included (an address moves with the resource; a migration is a stop
/// there and a start here).
pub static ADDRESS_ACTIONS: &[ActionSpec] = &[
    ActionSpec::new("start", 30),
    ActionSpec::new("stop", 30),
    ActionSpec::new("monitor", 30).interval(20).depth(0),
    ActionSpec::new("migrate_to", 30),
    ActionSpec::new("migrate_from", 30),
    ActionSpec::new("meta-data", 5),
    ActionSpec::new("validate-all", 10),
];

/// What one action of a resource agent works with: this node's instance, IMDS, EC2.
#[derive(Debug)]
pub struct Session {
    pub imds: Imds,
    pub ec2: Ec2,
    pub instance_id: String,
}

impl Session {
    /// Resolve the instance id (parameter or IMDS), then region and credentials.
    pub async fn open(p: &AwsParams, deadline: &Deadline) -> Result<Session, OcfError> {
        p.validate()?;
        let imds = Imds::new(deadline);
        let instance_id = p.resolve_instance_id(&imds).await?;
        let ec2 = Ec2::connect(p, deadline, &imds).await?;
        Ok(Session { imds, ec2, instance_id })
    }
}

/// One action of an AWS resource agent: a [`Deadline`] from the action's timeout
/// (`default_timeout` when run by hand), a [`Session`] opened within it, then `work` on
/// that session — on [`block_on`]'s runtime. The session's EC2 client carries the deadline
/// (`s.ec2.deadline()`) for whatever `work` waits for.
pub fn with_session<T>(env: &OcfEnv, p: &AwsParams, default_timeout: Duration, work: impl AsyncFnOnce(&Session) -> Result<T, OcfError>) -> Result<T, OcfError> {
    let deadline = Deadline::for_action(env, default_timeout);
    block_on(async {
        let s = Session::open(p, &deadline).await?;
        work(&s).await
    })?
}

/// Run `fut` to completion on a fresh single-threaded runtime (I/O and timers enabled).
///
/// The SDK's DNS lookups run on the runtime's blocking pool; everything else stays on the
/// calling thread.
pub fn block_on<F: std::future::Future>(fut: F) -> Result<F::Output, OcfError> {
    let rt =
        tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| OcfError::generic(format!("cannot start the async runtime: {e}")))?;
    Ok(rt.block_on(fut))
}

#[cfg(test)]
mod tests {
    /// The SDK's resolver is getaddrinfo (hyper-util's GaiResolver): it must work in our
    /// statically linked binaries (test binaries are linked like the agents).
    #[test]
    fn static_getaddrinfo_resolves_localhost() {
        use std::net::ToSocketAddrs;
        let addrs: Vec<_> = ("localhost", 80).to_socket_addrs().expect("getaddrinfo(localhost)").collect();
        assert!(addrs.iter().any(|a| a.ip().is_loopback()), "{addrs:?}");
    }
}
