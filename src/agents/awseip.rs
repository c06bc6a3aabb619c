//! `ocf:paceline:awseip` — an Elastic IP that follows the resource from instance to
//! instance.
//!
//! What the cluster expects: after `start` returns 0, EC2 associates the Elastic IP with
//! this instance (or with the given private address of one of its interfaces); after
//! `stop` returns 0, it is not associated with this instance; `monitor` tells which, from
//! DescribeAddresses. Parameters are heartbeat awseip's.
//!
//! Where this differs from heartbeat's agent, on purpose:
//! * the association is checked by comparing the instance id (and private address) EC2
//!   reports for this very address, not by grepping DescribeInstances output for a
//!   substring (1.2.3.4 is not 11.2.3.45);
//! * start associates with `AllowReassociation` (the address may still be on the failed
//!   node) and polls until EC2 shows it here instead of sleeping `api_delay`;
//! * stop disassociates only an association with this instance;
//! * `elastic_ip` or `allocation_id` is enough (the other is looked up); when both are
//!   given they must designate the same address;
//! * API failures are never "not running" (see `crate::aws`).

use std::net::Ipv4Addr;
use std::time::Duration;

use aws_sdk_ec2::types::Address;

use crate::aws::{self, eni, AwsParams, Ec2};
use crate::ocf::{AgentSpec, OcfEnv, OcfError, OcfRc, OcfResult, Param, ParamKind, Params};
use crate::{ocf_err, ocf_info};

pub static PARAMS: &[Param] = &[
    Param::new("elastic_ip", ParamKind::String, "Elastic IP address",
        "The public IPv4 address of the Elastic IP. Either elastic_ip or allocation_id is needed; with both, they must designate the same address.").unique(),
    Param::new("allocation_id", ParamKind::String, "Elastic IP allocation id",
        "The allocation id of the Elastic IP (eipalloc-...).").unique(),
    Param::new("private_ip_address", ParamKind::String, "Private IP address to associate with",
        "Associate the Elastic IP with this private IPv4 address of one of this instance's interfaces (for example the secondary address an awsvip resource moves), instead of the instance's primary address."),
];

pub static SPEC: AgentSpec = AgentSpec {
    name: "awseip",
    shortdesc: "Moves an Elastic IP between EC2 instances (paceline)",
    longdesc: "Associates an Elastic IP with this EC2 instance on start (taking it from whichever instance \
        holds it), disassociates it on stop, and checks the association on monitor. A drop-in replacement \
        for ocf:heartbeat:awseip that calls the EC2 API directly (no AWS CLI, no curl), with IMDSv2, \
        retries with backoff within the action's timeout, exact matching, and exit codes that never \
        report an API failure as 'not running'.",
    params: &[PARAMS, aws::COMMON],
    actions: aws::ADDRESS_ACTIONS,
};

/// Entry point of the `awseip` binary.
pub fn main() -> ! {
    ACTIONS.main(&SPEC)
}

// A start that placed the address adds its step to the incident record of a promotion here.
static ACTIONS: aws::Actions = aws::Actions { start: |env| start(env).inspect(|_| crate::history::note_address(env, SPEC.name)), stop, monitor, validate_all };

/// The checked configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub elastic_ip: Option<Ipv4Addr>,
    pub allocation_id: Option<String>,
    pub private_ip: Option<Ipv4Addr>,
    pub aws: AwsParams,
}

fn bad(msg: String) -> OcfError {
    OcfError::configured(msg)
}

fn parse_v4(name: &str, raw: &str) -> Result<Ipv4Addr, OcfError> {
    let ip: Ipv4Addr = raw.trim().parse().map_err(|_| bad(format!("{name} '{raw}' is not an IPv4 address")))?;
    // No further judgement: EC2 decides which public addresses exist.
    if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() {
        return Err(bad(format!("{name} '{ip}' cannot be an interface address")));
    }
    Ok(ip)
}

impl Config {
    pub fn from_env(env: &OcfEnv) -> Result<Config, OcfError> {
        let p = Params::parse(SPEC.params, env)?;
        let elastic_ip = p.str("elastic_ip").map(|v| parse_v4("elastic_ip", v)).transpose()?;
        let allocation_id = p.str("allocation_id").map(str::trim).map(str::to_owned);
        if let Some(a) = &allocation_id {
            if !aws::valid_resource_id("eipalloc", a) {
                return Err(bad(format!("allocation_id '{a}' is not an Elastic IP allocation id (eipalloc-...)")));
            }
        }
        if elastic_ip.is_none() && allocation_id.is_none() {
            return Err(bad("either elastic_ip or allocation_id is required".into()));
        }
        let private_ip = p.str("private_ip_address").map(|v| parse_v4("private_ip_address", v)).transpose()?;
        Ok(Config { elastic_ip, allocation_id, private_ip, aws: AwsParams::from_params(&p)? })
    }

    fn name(&self) -> String {
        match (&self.elastic_ip, &self.allocation_id) {
            (Some(ip), _) => ip.to_string(),
            (None, Some(a)) => a.clone(),
            (None, None) => "?".into(),
        }
    }
}

/// The address as EC2 describes it now.
async fn describe(ec2: &Ec2, cfg: &Config) -> Result<Address, OcfError> {
    let mut req = ec2.client().describe_addresses();
    req = match (&cfg.allocation_id, &cfg.elastic_ip) {
        (Some(a), _) => req.allocation_ids(a),
        (None, Some(ip)) => req.public_ips(ip.to_string()),
        (None, None) => return Err(bad("either elastic_ip or allocation_id is required".into())),
    };
    let out = ec2.call("DescribeAddresses", req.send()).await?;
    let addr = out.addresses.unwrap_or_default().into_iter().next().ok_or_else(|| bad(format!("EC2 knows no Elastic IP {}", cfg.name())))?;
    if let (Some(want), Some(got)) = (&cfg.elastic_ip, addr.public_ip.as_deref()) {
        if got.parse::<Ipv4Addr>().ok() != Some(*want) {
            return Err(bad(format!("allocation_id {} is the Elastic IP {got}, not elastic_ip {want}", cfg.allocation_id.as_deref().unwrap_or("?"))));
        }
    }
    Ok(addr)
}

/// Whether `addr` is associated with this instance (and the configured private address).
fn is_ours(addr: &Address, instance_id: &str, cfg: &Config) -> bool {
    if addr.instance_id.as_deref() != Some(instance_id) {
        return false;
    }
    match cfg.private_ip {
        None => true,
        Some(want) => addr.private_ip_address.as_deref().and_then(|p| p.parse::<Ipv4Addr>().ok()) == Some(want),
    }
}

fn where_is(addr: &Address) -> String {
    match (&addr.instance_id, &addr.network_interface_id) {
        (Some(i), _) if !i.is_empty() => format!("associated with {i} ({})", addr.private_ip_address.as_deref().unwrap_or("?")),
        (_, Some(n)) if !n.is_empty() => format!("associated with {n}"),
        _ => "not associated".into(),
    }
}

/// The ENI of this instance that holds `ip`.
async fn eni_holding(ec2: &Ec2, instance_id: &str, ip: Ipv4Addr) -> Result<Option<String>, OcfError> {
    Ok(eni::interfaces_of(ec2, instance_id).await?.into_iter().find(|n| eni::holds(n, ip)).and_then(|n| n.network_interface_id))
}

/// Poll DescribeAddresses until the association is (`ours == true`) or is not ours.
async fn wait_for(ec2: &Ec2, cfg: &Config, instance_id: &str, ours: bool) -> Result<(), OcfError> {
    aws::wait_until(
        ec2.deadline(),
        async || describe(ec2, cfg).await,
        |addr| is_ours(addr, instance_id, cfg) == ours,
        |addr| OcfError::generic(format!("EC2 accepted the change but Elastic IP {} is {} before the action's timeout", cfg.name(), where_is(&addr))),
    )
    .await?;
    Ok(())
}

/// start: associate the Elastic IP here (taking it from wherever it is), then wait until
/// EC2 shows the association.
pub fn start(env: &OcfEnv) -> OcfResult {
    let cfg = Config::from_env(env)?;
    aws::with_session(env, &cfg.aws, Duration::from_secs(30), async |s| {
        let addr = describe(&s.ec2, &cfg).await?;
        if is_ours(&addr, &s.instance_id, &cfg) {
            ocf_info!("Elastic IP {} is already associated with {}", cfg.name(), s.instance_id);
            return Ok(OcfRc::Success);
        }
        let mut req = s.ec2.client().associate_address().allow_reassociation(true);
        req = match (&addr.allocation_id, &addr.public_ip) {
            (Some(a), _) => req.allocation_id(a),
            (None, Some(ip)) => req.public_ip(ip),
            (None, None) => return Err(OcfError::generic(format!("EC2 describes Elastic IP {} without allocation id or address", cfg.name()))),
        };
        req = match cfg.private_ip {
            Some(ip) => {
                let eni = eni_holding(&s.ec2, &s.instance_id, ip).await?.ok_or_else(|| {
                    OcfError::generic(format!(
                        "private_ip_address {ip} is not assigned to an interface of {} (is the resource moving it started here?)",
                        s.instance_id
                    ))
                })?;
                req.network_interface_id(eni).private_ip_address(ip.to_string())
            }
            None => req.instance_id(&s.instance_id),
        };
        ocf_info!("associating Elastic IP {} with {} (it was {})", cfg.name(), s.instance_id, where_is(&addr));
        s.ec2.call("AssociateAddress", req.send()).await?;
        wait_for(&s.ec2, &cfg, &s.instance_id, true).await?;
        ocf_info!("Elastic IP {} associated with {}", cfg.name(), s.instance_id);
        Ok(OcfRc::Success)
    })
}

/// stop: disassociate the Elastic IP if, and only if, it is associated with this instance.
pub fn stop(env: &OcfEnv) -> OcfResult {
    let cfg = Config::from_env(env)?;
    aws::with_session(env, &cfg.aws, Duration::from_secs(30), async |s| {
        let addr = match describe(&s.ec2, &cfg).await {
            Ok(a) => a,
            // EC2 says the address does not exist: it is certainly not associated here.
            Err(e) if e.rc == OcfRc::ErrConfigured => {
                ocf_err!("{}; nothing to stop", e.reason);
                return Ok(OcfRc::Success);
            }
            Err(e) => return Err(e),
        };
        if addr.instance_id.as_deref() != Some(s.instance_id.as_str()) {
            ocf_info!("Elastic IP {} is {}, not with {}: already stopped", cfg.name(), where_is(&addr), s.instance_id);
            return Ok(OcfRc::Success);
        }
        let Some(assoc) = addr.association_id.clone().filter(|a| !a.is_empty()) else {
            return Err(OcfError::generic(format!("Elastic IP {} is associated with {} but EC2 gives no association id", cfg.name(), s.instance_id)));
        };
        match s.ec2.call("DisassociateAddress", s.ec2.client().disassociate_address().association_id(&assoc).send()).await {
            Ok(_) => {}
            Err(e) if e.is_not_found() => ocf_info!("association {assoc} is already gone"),
            Err(e) => return Err(e.into()),
        }
        // Not ours any more, with or without the private address: check the instance only.
        let any_private = Config { private_ip: None, ..cfg.clone() };
        wait_for(&s.ec2, &any_private, &s.instance_id, false).await?;
        ocf_info!("Elastic IP {} disassociated from {}", cfg.name(), s.instance_id);
        Ok(OcfRc::Success)
    })
}

/// monitor: 0 when EC2 shows the Elastic IP associated here, 7 when elsewhere or nowhere,
/// an error when EC2 cannot be asked.
pub fn monitor(env: &OcfEnv) -> OcfResult {
    let cfg = Config::from_env(env)?;
    aws::with_session(env, &cfg.aws, Duration::from_secs(30), async |s| {
        let addr = describe(&s.ec2, &cfg).await?;
        if is_ours(&addr, &s.instance_id, &cfg) {
            Ok(OcfRc::Success)
        } else {
            crate::ocf_debug!("Elastic IP {} is {}", cfg.name(), where_is(&addr));
            Ok(OcfRc::NotRunning)
        }
    })
}

/// validate-all: the parameters, and that EC2 knows the address and this instance.
pub fn validate_all(env: &OcfEnv) -> OcfResult {
    let cfg = Config::from_env(env)?;
    aws::with_session(env, &cfg.aws, Duration::from_secs(10), async |s| {
        describe(&s.ec2, &cfg).await?;
        s.ec2.call("DescribeInstances", s.ec2.client().describe_instances().instance_ids(&s.instance_id).send()).await?;
        Ok(OcfRc::Success)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::testing::{self, env};

    #[test]
    fn either_address_or_allocation() {
        let c = Config::from_env(&env(&[("elastic_ip", "198.51.100.7")])).unwrap();
        assert_eq!(c.elastic_ip, Some(Ipv4Addr::new(198, 51, 100, 7)));
        let c = Config::from_env(&env(&[("allocation_id", "eipalloc-0123abcd"), ("private_ip_address", "192.0.2.100"), ("api_delay", "3")])).unwrap();
        assert_eq!(c.allocation_id.as_deref(), Some("eipalloc-0123abcd"));
        assert_eq!(c.private_ip, Some(Ipv4Addr::new(192, 0, 2, 100)));
    }

    #[test]
    fn bad_input_matrix() {
        let cases: &[&[(&str, &str)]] = &[
            &[],
            &[("elastic_ip", "")],
            &[("elastic_ip", "x")],
            &[("elastic_ip", "198.51.100.7/32")],
            &[("elastic_ip", "0.0.0.0")],
            &[("allocation_id", "alloc-1")],
            &[("allocation_id", "eipalloc-")],
            &[("allocation_id", "eipalloc-zz")],
            &[("elastic_ip", "198.51.100.7"), ("private_ip_address", "nope")],
            &[("elastic_ip", "198.51.100.7"), ("private_ip_address", "2001:db8::1")],
            &[("elastic_ip", "198.51.100.7"), ("region", "nowhere")],
            &[("elastic_ip", "198.51.100.7"), ("endpoint_url", "file:///etc/passwd")],
            &[("elastic_ip", "198.51.100.7"), ("instance_id", "i-1")],
        ];
        testing::assert_all_refused(cases, Config::from_env);
    }

    #[test]
    fn metadata_and_docs_show_every_parameter() {
        testing::assert_documented(&SPEC);
    }
}
