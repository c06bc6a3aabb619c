//! An EC2 client that answers before Pacemaker's timeout.
//!
//! The client is built from aws-config, so the region, credential and endpoint rules are
//! the SDK's (and every other AWS tool's): `AWS_REGION`, profiles, the instance role,
//! `AWS_ENDPOINT_URL(_EC2)`. What we add is time: the whole call — the SDK's retries with
//! jittered exponential backoff included — must end before the action's [`Deadline`]. The
//! per-attempt timeout is a fraction of the budget, so one slow answer leaves room for
//! another attempt; the operation timeout is the budget itself; and [`Ec2::call`] also wraps
//! the future in the deadline, as a last guarantee.
//!
//! Credentials are resolved once, up front, so that a missing or wrong credential source
//! is reported as what it is (`OCF_ERR_PERM` / `OCF_ERR_CONFIGURED`) instead of surfacing
//! as an opaque dispatch failure of the first API call.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_config::default_provider::credentials::DefaultCredentialsChain;
use aws_config::meta::region::ProvideRegion;
use aws_config::profile::{ProfileFileCredentialsProvider, ProfileFileRegionProvider};
use aws_config::provider_config::ProviderConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::ProvideCredentials;
use aws_credential_types::Credentials;
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};

use super::params::valid_region;
use super::{AwsError, AwsParams, Deadline, Imds};
use crate::ocf::{OcfError, OcfRc};
use crate::ocf_debug;

/// An EC2 client for one action, with the action's deadline.
#[derive(Clone)]
pub struct Ec2 {
    client: aws_sdk_ec2::Client,
    region: String,
    deadline: Deadline,
    attempts: Arc<Attempts>,
}

/// What the attempts of the current call saw, so that a call cut short by the deadline
/// can still say why the attempts failed (throttled? 500? no answer?).
#[derive(Debug, Default)]
struct Attempts {
    count: AtomicU32,
    last_error: Mutex<Option<String>>,
}

impl Attempts {
    fn reset(&self) {
        self.count.store(0, Ordering::SeqCst);
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

#[derive(Debug)]
struct AttemptRecorder(Arc<Attempts>);

impl aws_sdk_ec2::config::Intercept for AttemptRecorder {
    fn name(&self) -> &'static str {
        "paceline::AttemptRecorder"
    }

    fn read_after_attempt(
        &self,
        context: &aws_sdk_ec2::config::interceptors::FinalizerInterceptorContextRef<'_>,
        _rc: &aws_sdk_ec2::config::RuntimeComponents,
        _cfg: &mut aws_sdk_ec2::config::ConfigBag,
    ) -> Result<(), aws_sdk_ec2::error::BoxError> {
        self.0.count.fetch_add(1, Ordering::SeqCst);
        if let Some(Err(e)) = context.output_or_error() {
            let status = context.response().map(|r| format!("HTTP {}: ", r.status().as_u16())).unwrap_or_default();
            *self.0.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(format!("{status}{}", super::error::chain(e)));
        }
        Ok(())
    }
}

impl fmt::Debug for Ec2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ec2").field("region", &self.region).field("deadline", &self.deadline).finish_non_exhaustive()
    }
}

impl Ec2 {
    /// Resolve region and credentials and build the client. Makes no EC2 call; may ask IMDS
    /// (region, instance role) and read the shared configuration files.
    pub async fn connect(p: &AwsParams, deadline: &Deadline, imds: &Imds) -> Result<Ec2, OcfError> {
        p.validate()?;
        let region = resolve_region(p, imds).await?;
        let credentials = resolve_credentials(p, &region, deadline, imds).await?;
        let budget = deadline.remaining();
        let attempt = (budget / 4).clamp(Duration::from_secs(2), Duration::from_secs(10));
        let timeouts = TimeoutConfig::builder()
            .connect_timeout((budget / 10).clamp(Duration::from_secs(1), Duration::from_secs(3)))
            .read_timeout(attempt)
            .operation_attempt_timeout(attempt)
            .operation_timeout(budget.max(Duration::from_millis(1)))
            .build();
        // The deadline, not the attempt count, ends the retries.
        let retry = RetryConfig::standard()
            .with_max_attempts(10)
            .with_initial_backoff(Duration::from_millis(200))
            .with_max_backoff((budget / 4).clamp(Duration::from_millis(500), Duration::from_secs(5)));
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(region.clone()))
            .credentials_provider(credentials)
            .timeout_config(timeouts)
            .retry_config(retry);
        if let Some(profile) = &p.profile {
            loader = loader.profile_name(profile);
        }
        let sdk = loader.load().await;
        let mut conf = aws_sdk_ec2::config::Builder::from(&sdk);
        if let Some(role) = &p.assume_role {
            conf = conf.credentials_provider(assume_role(role, &sdk, deadline).await?);
        }
        if let Some(url) = &p.endpoint_url {
            conf = conf.endpoint_url(url);
        }
        let attempts = Arc::new(Attempts::default());
        conf = conf.interceptor(AttemptRecorder(attempts.clone()));
        ocf_debug!("EC2 client: region {region}, endpoint {}", p.endpoint_url.as_deref().unwrap_or("from the SDK configuration"));
        Ok(Ec2 { client: aws_sdk_ec2::Client::from_conf(conf.build()), region, deadline: *deadline, attempts })
    }

    /// The same client with each attempt (connect, send, answer) bounded by `t`: a fence
    /// agent's shell_timeout. The deadline still bounds the whole call and its retries.
    pub fn with_attempt_timeout(mut self, t: Duration) -> Ec2 {
        let t = t.max(Duration::from_millis(100));
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(t.min(Duration::from_secs(3)))
            .read_timeout(t)
            .operation_attempt_timeout(t)
            .operation_timeout(self.deadline.remaining().max(Duration::from_millis(1)))
            .build();
        let conf = self.client.config().to_builder().timeout_config(timeouts).build();
        self.client = aws_sdk_ec2::Client::from_conf(conf);
        self
    }

    /// The SDK client, to build requests with.
    pub fn client(&self) -> &aws_sdk_ec2::Client {
        &self.client
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    pub fn deadline(&self) -> &Deadline {
        &self.deadline
    }

    /// Await one EC2 request (`op` names it in messages), bounded by the deadline, and map
    /// its failure to an [`AwsError`].
    pub async fn call<T, E, R, F>(&self, op: &str, request: F) -> Result<T, AwsError>
    where
        F: Future<Output = Result<T, SdkError<E, R>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: fmt::Debug + 'static,
    {
        let started = Instant::now();
        self.attempts.reset();
        ocf_debug!("EC2 {op}: sending ({:.1} s left)", self.deadline.remaining().as_secs_f64());
        let outcome = match tokio::time::timeout(self.deadline.remaining(), request).await {
            Err(_) => Err(AwsError::new(
                OcfRc::ErrGeneric,
                None,
                format!("EC2 {op}: no answer before the action's deadline ({:.1} s, retries included)", started.elapsed().as_secs_f64()),
            )),
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(AwsError::from_sdk(op, e)),
        };
        // Cut short (deadline, SDK timeout): say what the attempts ran into.
        let outcome = outcome.map_err(|mut e| {
            if e.code().is_none() && (e.reason.contains("deadline") || e.reason.contains("did not complete")) {
                let n = self.attempts.count.load(Ordering::SeqCst);
                if let Some(last) = self.attempts.last_error.lock().unwrap_or_else(|e| e.into_inner()).clone() {
                    if !e.reason.contains(&last) {
                        e.reason = format!("{}; {n} attempt(s), last: {last}", e.reason);
                    }
                }
            }
            e
        });
        match &outcome {
            Ok(_) => ocf_debug!("EC2 {op}: ok in {} ms", started.elapsed().as_millis()),
            Err(e) => ocf_debug!("EC2 {op}: {} after {} ms", e.reason, started.elapsed().as_millis()),
        }
        outcome
    }
}

impl AwsParams {
    /// This node's instance: the `instance_id` parameter, else IMDS.
    pub async fn resolve_instance_id(&self, imds: &Imds) -> Result<String, OcfError> {
        match &self.instance_id {
            Some(i) => Ok(i.clone()),
            None => {
                let id = imds.instance_id().await.map_err(|e| e.context("cannot tell this node's instance: set instance_id"))?;
                if !super::params::valid_instance_id(&id) {
                    return Err(OcfError::generic(format!("instance metadata service returned '{id}' as instance id")));
                }
                Ok(id)
            }
        }
    }
}

/// Region: parameter, environment, profile, IMDS — the first that has one.
async fn resolve_region(p: &AwsParams, imds: &Imds) -> Result<String, OcfError> {
    if let Some(r) = &p.region {
        return Ok(r.clone());
    }
    for var in ["AWS_REGION", "AWS_DEFAULT_REGION"] {
        if let Ok(v) = std::env::var(var) {
            let v = v.trim();
            if v.is_empty() {
                continue;
            }
            if !valid_region(v) {
                return Err(OcfError::configured(format!("{var}='{v}' is not an AWS region name")));
            }
            return Ok(v.to_owned());
        }
    }
    let mut from_profile = ProfileFileRegionProvider::builder();
    if let Some(profile) = &p.profile {
        from_profile = from_profile.profile_name(profile);
    }
    if let Some(r) = from_profile.build().region().await {
        return Ok(r.to_string());
    }
    let r = imds.region().await.map_err(|e| e.context("no region parameter, none in the environment or profile: set region"))?;
    if !valid_region(&r) {
        return Err(OcfError::generic(format!("instance metadata service returned '{r}' as region")));
    }
    Ok(r)
}

/// Credentials: explicit keys, else the named profile alone, else the SDK default chain.
async fn resolve_credentials(p: &AwsParams, region: &str, deadline: &Deadline, imds: &Imds) -> Result<Credentials, OcfError> {
    if let (Some(a), Some(s)) = (&p.access_key, &p.secret_key) {
        return Ok(Credentials::new(a.expose(), s.expose(), None, None, "paceline-parameters"));
    }
    let region = Region::new(region.to_owned());
    let (source, result) = match &p.profile {
        Some(profile) => {
            // A named profile is used alone, as awscli's --profile does: environment
            // credentials must not silently replace the ones the configuration names.
            let conf = ProviderConfig::without_region().with_region(Some(region));
            let provider = ProfileFileCredentialsProvider::builder().profile_name(profile).configure(&conf).build();
            (format!("profile '{profile}'"), tokio::time::timeout(deadline.remaining(), provider.provide_credentials()).await)
        }
        None => {
            let chain = DefaultCredentialsChain::builder().region(region).imds_client(imds.client()).build().await;
            ("the default chain".to_owned(), tokio::time::timeout(deadline.remaining(), chain.provide_credentials()).await)
        }
    };
    let named = p.profile.is_some();
    match result {
        Ok(Ok(c)) => {
            ocf_debug!("AWS credentials from {source}");
            Ok(c)
        }
        Err(_) => Err(OcfError::generic(format!("AWS credentials from {source}: no answer in the time left"))),
        Ok(Err(e)) => Err(credentials_error(&source, named, &e)),
    }
}

/// Credentials of `role`, from STS AssumeRole with the configuration's own credentials
/// (endpoint: the SDK's, `AWS_ENDPOINT_URL_STS`/`AWS_ENDPOINT_URL`), within the deadline.
async fn assume_role(role: &str, sdk: &aws_config::SdkConfig, deadline: &Deadline) -> Result<Credentials, OcfError> {
    let provider = aws_config::sts::AssumeRoleProvider::builder(role).session_name("paceline").configure(sdk).build().await;
    match tokio::time::timeout(deadline.remaining(), provider.provide_credentials()).await {
        Ok(Ok(c)) => {
            ocf_debug!("AWS credentials of role {role} (STS AssumeRole)");
            Ok(c)
        }
        Err(_) => Err(OcfError::generic(format!("STS AssumeRole {role}: no answer in the time left"))),
        Ok(Err(e)) => {
            let detail = super::error::chain(&e);
            // STS refuses a role these credentials may not assume with AccessDenied.
            let denied = detail.contains("AccessDenied") || detail.contains("not authorized");
            let msg = format!("cannot assume {role}: {detail}");
            Err(if denied { OcfError::perm(msg) } else { OcfError::generic(msg) })
        }
    }
}

fn credentials_error(source: &str, named_profile: bool, e: &CredentialsError) -> OcfError {
    let detail = super::error::chain(e);
    match e {
        CredentialsError::CredentialsNotLoaded(_) | CredentialsError::InvalidConfiguration(_) if named_profile => {
            OcfError::configured(format!("no usable AWS credentials in {source}: {detail}"))
        }
        CredentialsError::InvalidConfiguration(_) => OcfError::configured(format!("AWS credentials configuration is invalid: {detail}")),
        CredentialsError::CredentialsNotLoaded(_) => {
            OcfError::perm(format!("no AWS credentials found on this node (environment, profile, instance role): {detail}"))
        }
        CredentialsError::ProviderTimedOut(_) => OcfError::generic(format!("AWS credentials from {source} timed out: {detail}")),
        _ => OcfError::generic(format!("AWS credentials from {source} failed: {detail}")),
    }
}
