//! `fence_paceline_aws` — STONITH for EC2 instances, a replacement for fence-agents' fence_aws.
//!
//! Fencing is the one operation where "probably done" is wrong: Pacemaker promotes a new
//! primary as soon as this agent says the old node is off. So `off` reports success only
//! once EC2 itself reports the instance `stopped` (or `terminated`); `stopping` is
//! progress, not an answer; and the wait is bounded by `power_timeout` even when Pacemaker
//! tells fence agents to disable their timeouts (fence_aws then loops until the fencer
//! kills it). The sequences (delay, race check, polling, retries) are the protocol layer's
//! ([`crate::fence`]); this module only knows EC2:
//!
//! * state: `DescribeInstances(InstanceIds=plugs)` — running → on; stopped, terminated →
//!   off; pending → starting; stopping, shutting-down → stopping;
//! * off: `StopInstances(Force=true)`, plus `SkipOsShutdown=true` by default
//!   (`skip_os_shutdown`): a fenced node must stop now, not after a graceful OS shutdown
//!   that a hung node may never finish; on: `StartInstances`; several plugs in one call;
//! * the race check: in a split brain both nodes fence each other; the one that is already
//!   being stopped must not also stop the survivor. Before off and reboot this node looks
//!   up its own instance (IMDSv2), describes it in the same request as the targets (the off
//!   sequence's first look, so the check costs no request), and refuses, with a message
//!   that says so, when EC2 reports it anything but running — within a bounded time, and
//!   failing closed (refusing) when it cannot tell. `skip_race_check` turns it off for
//!   fencing nodes outside EC2;
//! * monitor: `DescribeInstances` of the configured instances only (the plug list), or one
//!   small page (`MaxResults=5`, the `filter` applied) when the fencer gives no plug — never
//!   a walk over the whole region — and any error fails it;
//! * list: every instance (with `filter`), `i-xxx,Name` from the Name tag.
//!
//! Errors EC2 will repeat (refused credentials, missing permission, unknown instance) end
//! a sequence at once; throttling, 5xx and timeouts are retried by the SDK within each
//! call's deadline and by the sequence until power_timeout.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_ec2::config::interceptors::FinalizerInterceptorContextRef;
use aws_sdk_ec2::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_ec2::types::{Filter, Instance, InstanceStateName};

use crate::aws::{self, AwsError, AwsParams, Deadline, Ec2, Imds};
use crate::fence::{self, Agent, Device, FenceError, FenceOpt, FenceSpec, OptKind, Outlet, Power, Request};
use crate::ocf::{OcfError, OcfRc};
use crate::ocf_debug;

/// The agent's own options; [`fence::options::COMMON`] follows them.
pub static OPTIONS: &[FenceOpt] = &[
    FenceOpt::new("region", "region", OptKind::String, "[region]", "AWS region, e.g. eu-west-1",
        "The AWS region of the instances. When unset: AWS_REGION or AWS_DEFAULT_REGION, then the profile's region, then the instance metadata service of this node.")
        .short('r'),
    FenceOpt::new("access_key", "access-key", OptKind::String, "[key]", "AWS access key id",
        "Access key id of explicit credentials (with secret_key). When unset, the SDK's default chain: environment, profile, instance role.")
        .short('a'),
    FenceOpt::new("secret_key", "secret-key", OptKind::String, "[key]", "AWS secret access key",
        "Secret access key of explicit credentials. Never printed or logged. Pass it on stdin (secret_key=...) or better use an instance role: on the command line it is visible to every user in the process list.")
        .short('s').secret(),
    FenceOpt::new("profile", "profile", OptKind::String, "[name]", "AWS credentials profile",
        "A profile of the AWS shared configuration files (of root) to take credentials and region from, used alone."),
    FenceOpt::new("endpoint_url", "endpoint-url", OptKind::String, "[url]", "EC2 endpoint URL",
        "The EC2 API endpoint to use instead of the regional one, e.g. a VPC interface endpoint. When unset, AWS_ENDPOINT_URL_EC2 or AWS_ENDPOINT_URL, else the regional endpoint."),
    FenceOpt::new("filter", "filter", OptKind::String, "[key=value]", "Filter for list and monitor",
        "An EC2 DescribeInstances filter, name=value (e.g. tag:Cluster=pg or vpc-id=vpc-0abc), applied by list, list-status and a monitor without plug."),
    FenceOpt::flag("skip_race_check", "skip-race-check", "Skip the race check",
        "Do not check, before off and reboot, that this node's own instance is running. Only for fencing nodes that are not EC2 instances: the check is what keeps a node that is being stopped from stopping the survivor too."),
    FenceOpt::new("skip_os_shutdown", "skip-os-shutdown", OptKind::Boolean, "[true/false]", "Stop without an OS shutdown",
        "Stop instances with StopInstances(Force=true, SkipOsShutdown=true): EC2 does not attempt a graceful OS shutdown first, so the instance is stopped in seconds even when its OS hangs. false keeps fence_aws's behaviour (Force only, which still tries a graceful shutdown first).")
        .default("true"),
    FenceOpt::new("boto3_debug", "boto3_debug", OptKind::String, "[option]", "Boto3 debug logging",
        "fence_aws's switch for boto3's debug log; use verbose instead.")
        .short('b').default("False").ignored(),
];

pub static SPEC: FenceSpec = FenceSpec {
    name: "fence_paceline_aws",
    shortdesc: "Fence agent for AWS EC2 instances (paceline)",
    longdesc: "fence_paceline_aws powers EC2 instances off and on through the EC2 API (StopInstances with Force, StartInstances, DescribeInstances), as fence_aws does, and reports off only once EC2 reports the instance stopped. power_timeout is a real deadline; before off and reboot the agent refuses to fence when its own instance is being stopped (the split-brain race). Credentials: access_key/secret_key, a profile, or the SDK's default chain (instance role). Map node names to instance ids with pcmk_host_map.",
    vendor_url: "https://aws.amazon.com",
    options: &[OPTIONS, fence::options::COMMON],
};

static AGENT: Agent = Agent { spec: &SPEC, validate, open };

/// Entry point of the `fence_paceline_aws` binary.
pub fn main() -> ! {
    fence::main_with(&AGENT)
}

/// What the fence options say about where and as whom to talk to EC2.
fn aws_params(req: &Request) -> AwsParams {
    AwsParams::read(|n| req.input.get(n))
}

/// `name=value` of the `filter` option.
fn parse_filter(raw: &str) -> Result<Filter, String> {
    match raw.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok(Filter::builder().name(k.trim()).values(v.trim()).build()),
        _ => Err(format!("filter '{raw}' must be name=value, e.g. tag:Cluster=pg")),
    }
}

fn validate(req: &Request) -> Result<(), FenceError> {
    aws_params(req).validate().map_err(|e| FenceError::fatal(e.reason))?;
    // Pacemaker validates a device with a made-up target (`stonith_admin --validate`,
    // pcs: plug=node1), so validate-all cannot judge the plug; the actions can.
    let plugs = if req.action == fence::Action::ValidateAll { Vec::new() } else { req.plugs() };
    for p in plugs {
        if !aws::valid_instance_id(&p) {
            return Err(FenceError::fatal(format!(
                "plug '{p}' is not an EC2 instance id (i-0123456789abcdef0); map node names to instance ids with pcmk_host_map=\"node1:i-0123456789abcdef0;node2:...\""
            )));
        }
    }
    if let Some(f) = req.input.get("filter") {
        parse_filter(f).map_err(FenceError::fatal)?;
    }
    Ok(())
}

/// The longest one invocation can take: delay, race check, off, then `retry_on` ons.
fn action_budget(req: &Request) -> Duration {
    let power = req.seconds("power_timeout") + req.seconds("power_wait") + Duration::from_secs(2);
    req.seconds("delay") + Duration::from_secs(20) + power * (1 + req.int("retry_on").max(1) as u32) + Duration::from_secs(5)
}

fn open(req: &Request) -> Result<Box<dyn Device>, FenceError> {
    let rt =
        tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| FenceError::fatal(format!("cannot start the async runtime: {e}")))?;
    let params = aws_params(req);
    let deadline = Deadline::after(action_budget(req));
    let imds = Imds::new(&deadline);
    // Logging in — resolving region and credentials, then the first EC2 exchange — is bounded
    // by login_timeout, as fence-agents bound a login; each later attempt by shell_timeout.
    let login = req.seconds("login_timeout").max(Duration::from_secs(1));
    let shell = req.seconds("shell_timeout").max(Duration::from_secs(1));
    let ec2 = rt
        .block_on(async { tokio::time::timeout(login, Ec2::connect(&params, &deadline, &imds)).await })
        .map_err(|_| FenceError::transient(format!("Timed out resolving the AWS region and credentials (login_timeout, {} s)", login.as_secs_f64())))?
        .map_err(ocf_to_fence)?
        .with_attempt_timeout(shell);
    let filter = req.input.get("filter").map(parse_filter).transpose().map_err(FenceError::fatal)?;
    let endpoint = params
        .endpoint_url
        .clone()
        .or_else(|| ["AWS_ENDPOINT_URL_EC2", "AWS_ENDPOINT_URL"].iter().find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty())))
        .unwrap_or_else(|| format!("the {} regional endpoint", ec2.region()));
    Ok(Box::new(Ec2Device {
        rt,
        ec2,
        imds,
        endpoint,
        last: LastAttempt::default(),
        filter,
        skip_os_shutdown: req.bool("skip_os_shutdown"),
        states: HashMap::new(),
        login: std::cell::Cell::new(Some(login)),
        shell,
    }))
}

/// Refused credentials, a missing permission, a configuration EC2 rejects: waiting will not help.
fn is_fatal(rc: OcfRc) -> bool {
    matches!(rc, OcfRc::ErrPerm | OcfRc::ErrConfigured | OcfRc::ErrInstalled)
}

fn ocf_to_fence(e: OcfError) -> FenceError {
    FenceError { fatal: is_fatal(e.rc), message: e.reason }
}

fn aws_to_fence(e: AwsError) -> FenceError {
    FenceError { fatal: is_fatal(e.rc), message: e.reason }
}

struct Ec2Device {
    rt: tokio::runtime::Runtime,
    ec2: Ec2,
    imds: Imds,
    /// Where requests go, for messages.
    endpoint: String,
    /// The failure of the latest attempt, for the message when a call runs out of time.
    last: LastAttempt,
    filter: Option<Filter>,
    skip_os_shutdown: bool,
    /// The EC2 state names of the last status call, for the power calls' decisions.
    states: HashMap<String, InstanceStateName>,
    /// login_timeout, until EC2 first answers (the login); then None.
    login: std::cell::Cell<Option<Duration>>,
    /// shell_timeout: each attempt's bound once logged in.
    shell: Duration,
}

/// Remembers why the latest attempt of a request failed. When the SDK is still retrying at
/// the deadline, its own error says only "timed out"; the operator needs the cause
/// (connection refused, TLS, throttling...).
#[derive(Debug, Clone, Default)]
struct LastAttempt(Arc<Mutex<Option<String>>>);

impl LastAttempt {
    fn take(&self) -> Option<String> {
        self.0.lock().ok().and_then(|mut l| l.take())
    }
}

impl Intercept for LastAttempt {
    fn name(&self) -> &'static str {
        "paceline-last-attempt"
    }

    fn read_after_attempt(
        &self,
        ctx: &FinalizerInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if let (Some(Err(e)), Ok(mut last)) = (ctx.output_or_error(), self.0.lock()) {
            *last = Some(aws::error_chain(e));
        }
        Ok(())
    }
}

fn power_of(state: &InstanceStateName) -> Option<Power> {
    Some(match state {
        InstanceStateName::Running => Power::On,
        InstanceStateName::Stopped | InstanceStateName::Terminated => Power::Off,
        InstanceStateName::Pending => Power::Starting,
        InstanceStateName::Stopping | InstanceStateName::ShuttingDown => Power::Stopping,
        _ => return None,
    })
}

fn name_tag(i: &Instance) -> String {
    i.tags().iter().find(|t| t.key() == Some("Name")).and_then(|t| t.value()).unwrap_or("").to_owned()
}

impl Ec2Device {
    /// Run one EC2 exchange within `deadline` (the SDK's retries inside it) — and, until EC2
    /// has answered once, within login_timeout: an endpoint that cannot be reached fails in
    /// that time, saying so, instead of retrying until power_timeout.
    fn within<T>(&self, deadline: Instant, what: &str, fut: impl std::future::Future<Output = Result<T, FenceError>>) -> Result<T, FenceError> {
        let login = self.login.get().filter(|_| what.starts_with("EC2"));
        let mut left = deadline.saturating_duration_since(Instant::now());
        let mut bound = "retries included".to_owned();
        if let Some(l) = login.filter(|l| *l < left) {
            left = l;
            bound = format!("login_timeout, {} s; each attempt up to shell_timeout, {} s", l.as_secs_f64(), self.shell.as_secs_f64());
        }
        self.last.take();
        let outcome = self.rt.block_on(async { tokio::time::timeout(left, fut).await }).unwrap_or_else(|_| {
            let cause = self.last.take().map(|e| format!("; last attempt: {e}")).unwrap_or_default();
            Err(FenceError::transient(format!("{what}: timed out (no answer from {} in {:.1} s: {bound}){cause}", self.endpoint_of(what), left.as_secs_f64())))
        });
        // EC2 answered (a result, or a refusal that says why): logged in.
        if login.is_some() && outcome.as_ref().map_or_else(|e| e.fatal, |_| true) {
            self.login.set(None);
        }
        outcome
    }

    fn endpoint_of(&self, what: &str) -> &str {
        if what.contains("metadata") {
            "the instance metadata service"
        } else {
            &self.endpoint
        }
    }

    /// `DescribeInstances(InstanceIds=ids)`, every page.
    async fn describe(&self, ids: &[String]) -> Result<Vec<Instance>, FenceError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let req = self.ec2.client().describe_instances().set_instance_ids(Some(ids.to_vec())).set_next_token(token.take());
            let page = self.ec2.call("DescribeInstances", req.customize().interceptor(self.last.clone()).send()).await.map_err(aws_to_fence)?;
            out.extend(page.reservations().iter().flat_map(|r| r.instances().iter().cloned()));
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => return Ok(out),
            }
        }
    }

    /// The EC2 state of each id, in order; an id EC2 does not return is an error.
    async fn states_of(&self, ids: &[String]) -> Result<Vec<InstanceStateName>, FenceError> {
        let found = self.describe(ids).await?;
        self.states_in(&found, ids)
    }

    /// The state of each id among instances already described, in order.
    fn states_in(&self, found: &[Instance], ids: &[String]) -> Result<Vec<InstanceStateName>, FenceError> {
        ids.iter()
            .map(|id| {
                found
                    .iter()
                    .find(|i| i.instance_id() == Some(id.as_str()))
                    .and_then(|i| i.state().and_then(|s| s.name()).cloned())
                    .ok_or_else(|| FenceError::fatal(format!("instance {id} not found in region {}", self.ec2.region())))
            })
            .collect()
    }

    /// Power of each target from its EC2 state, remembered for the power calls.
    fn record(&mut self, plugs: &[String], states: &[InstanceStateName]) -> Result<Vec<Power>, FenceError> {
        let mut out = Vec::with_capacity(plugs.len());
        for (id, s) in plugs.iter().zip(states) {
            ocf_debug!("{id}: {}", s.as_str());
            out.push(power_of(s).ok_or_else(|| FenceError::transient(format!("{id} is in an unknown state '{}'", s.as_str())))?);
            self.states.insert(id.clone(), s.clone());
        }
        Ok(out)
    }
}

impl Device for Ec2Device {
    fn status(&mut self, plugs: &[String], deadline: Instant) -> Result<Vec<Power>, FenceError> {
        let states = self.within(deadline, "EC2 DescribeInstances", self.states_of(plugs))?;
        self.record(plugs, &states)
    }

    fn power(&mut self, plugs: &[String], on: bool, deadline: Instant) -> Result<(), FenceError> {
        let c = self.ec2.client();
        if on {
            let req = c.start_instances().set_instance_ids(Some(plugs.to_vec()));
            return self.within(deadline, "EC2 StartInstances", async {
                self.ec2.call("StartInstances", req.customize().interceptor(self.last.clone()).send()).await.map(|_| ()).map_err(aws_to_fence)
            });
        }
        // An instance already terminating cannot be stopped; it will be off (terminated).
        let ids: Vec<String> = plugs.iter().filter(|p| self.states.get(*p) != Some(&InstanceStateName::ShuttingDown)).cloned().collect();
        if ids.is_empty() {
            return Ok(());
        }
        let mut req = c.stop_instances().set_instance_ids(Some(ids)).force(true);
        if self.skip_os_shutdown {
            req = req.skip_os_shutdown(true);
        }
        self.within(deadline, "EC2 StopInstances", async {
            self.ec2.call("StopInstances", req.customize().interceptor(self.last.clone()).send()).await.map(|_| ()).map_err(aws_to_fence)
        })
    }

    fn list(&mut self, with_status: bool, deadline: Instant) -> Result<Vec<Outlet>, FenceError> {
        let fut = async {
            let mut out = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let req = self.ec2.client().describe_instances().set_filters(self.filter.clone().map(|f| vec![f])).set_next_token(token.take());
                let page = self.ec2.call("DescribeInstances", req.customize().interceptor(self.last.clone()).send()).await.map_err(aws_to_fence)?;
                for i in page.reservations().iter().flat_map(|r| r.instances()) {
                    let Some(id) = i.instance_id() else { continue };
                    let power = if with_status { i.state().and_then(|s| s.name()).and_then(power_of) } else { None };
                    out.push(Outlet { id: id.to_owned(), name: name_tag(i), power });
                }
                match page.next_token() {
                    Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                    _ => return Ok(out),
                }
            }
        };
        self.within(deadline, "EC2 DescribeInstances", fut)
    }

    fn monitor(&mut self, plugs: &[String], deadline: Instant) -> Result<(), FenceError> {
        if !plugs.is_empty() {
            return self.status(plugs, deadline).map(|_| ());
        }
        // No target: prove endpoint, credentials and permission with one small page.
        let req = self.ec2.client().describe_instances().set_filters(self.filter.clone().map(|f| vec![f])).max_results(5);
        self.within(deadline, "EC2 DescribeInstances", async {
            self.ec2.call("DescribeInstances", req.customize().interceptor(self.last.clone()).send()).await.map(|_| ()).map_err(aws_to_fence)
        })
    }

    /// This node's own instance and the targets in one `DescribeInstances`: the targets'
    /// states are the off sequence's first look, so the check costs no extra EC2 request.
    /// Should that request fail (EC2 refuses the whole request when one target id is
    /// unknown), the check asks for this node's instance alone, and the sequence's own first
    /// look reports the target's error as such.
    fn race_check(&mut self, plugs: &[String], deadline: Instant) -> Result<Option<Vec<Power>>, FenceError> {
        let refuse =
            |why: String| FenceError::fatal(format!("race check: {why}; refusing to fence (set skip_race_check=1 only if this node is not an EC2 instance)"));
        let me = self
            .within(deadline, "instance metadata", async { self.imds.instance_id().await.map_err(|e| FenceError::fatal(e.reason)) })
            .map_err(|e| refuse(format!("cannot tell this node's own instance: {e}")))?;
        if !aws::valid_instance_id(&me) {
            return Err(refuse(format!("the instance metadata service returned '{me}' as this node's instance id")));
        }
        let mut ids = vec![me.clone()];
        ids.extend(plugs.iter().filter(|p| **p != me).cloned());
        let (mine, targets) = match self.within(deadline, "EC2 DescribeInstances", self.describe(&ids)) {
            Ok(found) => {
                let mine = self
                    .states_in(&found, std::slice::from_ref(&me))
                    .map_err(|e| refuse(format!("cannot tell the state of this node's own instance {me}: {e}")))?;
                (mine, Some(self.states_in(&found, plugs)))
            }
            Err(e) => {
                ocf_debug!("race check: describing {} failed ({e}); asking for {me} alone", ids.join(", "));
                let mine = self
                    .within(deadline, "EC2 DescribeInstances", self.states_of(std::slice::from_ref(&me)))
                    .map_err(|e| refuse(format!("cannot tell the state of this node's own instance {me}: {e}")))?;
                (mine, None)
            }
        };
        match &mine[0] {
            InstanceStateName::Running | InstanceStateName::Pending => ocf_debug!("race check: this node ({me}) is {}", mine[0].as_str()),
            s => {
                return Err(FenceError::fatal(format!(
                "race check: this node's own instance {me} is {}: it is being fenced itself, so it must not fence others (skip_race_check disables this check)",
                s.as_str()
            )))
            }
        }
        match targets {
            Some(states) => self.record(plugs, &states?).map(Some),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docs_options_table_is_generated() {
        let expected = SPEC.markdown_table();
        let got = crate::ocf::params::docs_block("fence_paceline_aws");
        if std::env::var_os("PACELINE_REGEN_DOCS").is_some() {
            let path = format!("{}/docs/fence_paceline_aws.md", env!("CARGO_MANIFEST_DIR"));
            let doc = std::fs::read_to_string(&path).unwrap();
            let open = "<!-- params:fence_paceline_aws -->\n";
            let start = doc.find(open).unwrap() + open.len();
            let end = doc[start..].find("<!-- /params -->").unwrap() + start;
            std::fs::write(&path, format!("{}{expected}{}", &doc[..start], &doc[end..])).unwrap();
            return;
        }
        assert_eq!(
            got.unwrap(),
            expected,
            "regenerate with `paceline params fence_paceline_aws`, or PACELINE_REGEN_DOCS=1 cargo test --lib docs_options_table_is_generated"
        );
    }

    #[test]
    fn states_map_to_power() {
        assert_eq!(power_of(&InstanceStateName::Running), Some(Power::On));
        assert_eq!(power_of(&InstanceStateName::Stopped), Some(Power::Off));
        assert_eq!(power_of(&InstanceStateName::Terminated), Some(Power::Off));
        assert_eq!(power_of(&InstanceStateName::Pending), Some(Power::Starting));
        assert_eq!(power_of(&InstanceStateName::Stopping), Some(Power::Stopping));
        assert_eq!(power_of(&InstanceStateName::ShuttingDown), Some(Power::Stopping));
    }

    #[test]
    fn filters() {
        let f = parse_filter("tag:Cluster=pg=1").unwrap();
        assert_eq!(f.name(), Some("tag:Cluster"));
        assert_eq!(f.values(), ["pg=1"]);
        assert!(parse_filter("novalue").is_err() && parse_filter("=x").is_err());
    }

    #[test]
    fn every_option_name_is_unique_and_short_letters_match_fence_aws() {
        let opts = SPEC.options();
        for o in &opts {
            assert_eq!(opts.iter().filter(|x| x.name == o.name).count(), 1, "{}", o.name);
        }
        for (name, c) in [
            ("action", 'o'),
            ("plug", 'n'),
            ("region", 'r'),
            ("access_key", 'a'),
            ("secret_key", 's'),
            ("verbose", 'v'),
            ("quiet", 'q'),
            ("help", 'h'),
            ("version", 'V'),
            ("debug_file", 'D'),
            ("separator", 'C'),
            ("boto3_debug", 'b'),
        ] {
            assert_eq!(SPEC.option(name).and_then(|o| o.short), Some(c), "{name}");
        }
    }
}
