//! `ocf:paceline:awsvip` — a secondary private IPv4 address of the VPC that follows the
//! resource from instance to instance.
//!
//! What the cluster expects: after `start` returns 0, EC2 routes the address to this
//! instance's network interface (the OS side is IPaddr2's job, colocated with this
//! resource); after `stop` returns 0, this instance no longer holds it; `monitor` says
//! which of the two is true, from what EC2 answers. Parameters are heartbeat awsvip's, so a
//! resource migrates by changing its provider.
//!
//! Where this differs from heartbeat's agent, on purpose:
//! * start moves the address with `AllowReassignment` and then polls
//!   DescribeNetworkInterfaces until EC2 shows it on our interface, instead of sleeping
//!   `api_delay` and hoping;
//! * stop unassigns only from this instance's interfaces, and only what is there;
//! * monitor compares addresses exactly (192.0.2.1 is not 192.0.2.10);
//! * an API failure is never "not running": monitor answers 7 only when EC2 said the
//!   address is not on this instance, start and stop never answer 7, and every call ends
//!   before the action's timeout with the code [`crate::aws`] maps it to.

use std::net::Ipv4Addr;
use std::time::Duration;

use aws_sdk_ec2::types::NetworkInterface;

use crate::aws::eni::{addresses, holds, interfaces_of as our_interfaces};
use crate::aws::{self, AwsParams, Ec2};
use crate::ocf::{AgentSpec, OcfEnv, OcfError, OcfRc, OcfResult, Param, ParamKind, Params};
use crate::{ocf_err, ocf_info, ocf_warn};

pub static PARAMS: &[Param] = &[
    Param::new("secondary_private_ip", ParamKind::String, "Secondary private IPv4 address",
        "The private IPv4 address to move between the instances, in the subnet of their interfaces (e.g. 192.0.2.100).").required().unique(),
    Param::new("interface", ParamKind::String, "Network interface",
        "The interface of this instance that gets the address: a device index (0 is the primary interface), an ENI id (eni-...), or an OS interface name (eth1, ens6: matched by MAC address). Default: the primary interface."),
];

pub static SPEC: AgentSpec = AgentSpec {
    name: "awsvip",
    shortdesc: "Moves a secondary private IP address between EC2 instances (paceline)",
    longdesc: "Assigns a secondary private IPv4 address to this EC2 instance's network interface on start \
        (taking it from whichever instance holds it), unassigns it on stop, and checks on monitor that EC2 \
        routes it here. Pair it with IPaddr2 for the address inside the operating system. A drop-in \
        replacement for ocf:heartbeat:awsvip that calls the EC2 API directly (no AWS CLI, no curl), \
        with IMDSv2, retries with backoff within the action's timeout, and exit codes that never \
        report an API failure as 'not running'.",
    params: &[PARAMS, aws::COMMON],
    actions: aws::ADDRESS_ACTIONS,
};

/// Entry point of the `awsvip` binary.
pub fn main() -> ! {
    ACTIONS.main(&SPEC)
}

// A start that placed the address adds its step to the incident record of a promotion here.
static ACTIONS: aws::Actions = aws::Actions { start: |env| start(env).inspect(|_| crate::history::note_address(env, SPEC.name)), stop, monitor, validate_all };

/// Which of this instance's interfaces gets the address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interface {
    /// Device index 0.
    Primary,
    /// A device index.
    Index(i32),
    /// An ENI id.
    Eni(String),
    /// An OS interface name, matched by MAC address.
    OsName(String),
}

/// The checked configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub ip: Ipv4Addr,
    pub interface: Interface,
    pub aws: AwsParams,
}

fn bad(msg: String) -> OcfError {
    OcfError::configured(msg)
}

impl Config {
    pub fn from_env(env: &OcfEnv) -> Result<Config, OcfError> {
        let p = Params::parse(SPEC.params, env)?;
        let raw = p.str("secondary_private_ip").unwrap_or_default().trim();
        let ip = parse_ip(raw)?;
        let interface = match p.str("interface").map(str::trim).filter(|v| !v.is_empty()) {
            None => Interface::Primary,
            Some(v) => parse_interface(v)?,
        };
        Ok(Config { ip, interface, aws: AwsParams::from_params(&p)? })
    }
}

/// A private IPv4 address EC2 could assign (not network-wide special addresses).
pub fn parse_ip(raw: &str) -> Result<Ipv4Addr, OcfError> {
    let ip: Ipv4Addr = raw.parse().map_err(|_| {
        if raw.contains(':') {
            bad(format!("secondary_private_ip '{raw}' is IPv6: awsvip manages private IPv4 addresses"))
        } else {
            bad(format!("secondary_private_ip '{raw}' is not an IPv4 address"))
        }
    })?;
    if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() || ip.is_loopback() || ip.is_link_local() {
        return Err(bad(format!("secondary_private_ip '{ip}' cannot be a private address of an interface")));
    }
    Ok(ip)
}

fn parse_interface(v: &str) -> Result<Interface, OcfError> {
    if let Ok(i) = v.parse::<i32>() {
        return if (0..=64).contains(&i) {
            Ok(if i == 0 { Interface::Primary } else { Interface::Index(i) })
        } else {
            Err(bad(format!("interface index {i} is out of range")))
        };
    }
    if v.starts_with("eni-") {
        if aws::valid_resource_id("eni", v) {
            return Ok(Interface::Eni(v.to_owned()));
        }
        return Err(bad(format!("interface '{v}' is not a valid ENI id")));
    }
    if !v.is_empty() && v.len() <= 15 && !v.contains(['/', ':']) && !v.chars().any(char::is_whitespace) {
        return Ok(Interface::OsName(v.to_owned()));
    }
    Err(bad(format!("interface '{v}' is neither a device index, an ENI id nor an interface name")))
}

fn device_index(n: &NetworkInterface) -> Option<i32> {
    n.attachment.as_ref().and_then(|a| a.device_index)
}

fn eni_id(n: &NetworkInterface) -> &str {
    n.network_interface_id.as_deref().unwrap_or("?")
}

/// The interface `want` designates among `enis`, if this instance has it.
fn pick<'a>(enis: &'a [NetworkInterface], want: &Interface) -> Result<Option<&'a NetworkInterface>, OcfError> {
    Ok(match want {
        Interface::Primary => enis.iter().find(|n| device_index(n) == Some(0)),
        Interface::Index(i) => enis.iter().find(|n| device_index(n) == Some(*i)),
        Interface::Eni(id) => enis.iter().find(|n| n.network_interface_id.as_deref() == Some(id.as_str())),
        Interface::OsName(name) => {
            let path = format!("/sys/class/net/{name}/address");
            let mac = match std::fs::read_to_string(&path) {
                Ok(m) => m.trim().to_ascii_lowercase(),
                Err(_) => return Ok(None),
            };
            enis.iter().find(|n| n.mac_address.as_deref().map(str::to_ascii_lowercase).as_deref() == Some(mac.as_str()))
        }
    })
}

/// Refuse an address that is some interface's primary address: it cannot be moved.
fn check_not_primary(enis: &[NetworkInterface], ip: Ipv4Addr) -> Result<(), OcfError> {
    if let Some(n) = enis.iter().find(|n| addresses(n).any(|(a, primary)| a == ip && primary)) {
        return Err(bad(format!("{ip} is the primary address of {}: only secondary addresses can move", eni_id(n))));
    }
    Ok(())
}

fn describe_interface(want: &Interface) -> String {
    match want {
        Interface::Primary => "the primary interface".into(),
        Interface::Index(i) => format!("interface #{i}"),
        Interface::Eni(id) => id.clone(),
        Interface::OsName(n) => format!("the interface of {n}"),
    }
}

/// Poll until `ip` is (or, with `present == false`, is no longer) on `eni`.
async fn wait_for(ec2: &Ec2, eni: &str, ip: Ipv4Addr, present: bool) -> Result<(), OcfError> {
    let state = if present { "does not show it on" } else { "still shows it on" };
    aws::wait_until(
        ec2.deadline(),
        async || {
            let out = ec2.call("DescribeNetworkInterfaces", ec2.client().describe_network_interfaces().network_interface_ids(eni).send()).await?;
            Ok(out.network_interfaces.unwrap_or_default().iter().any(|n| holds(n, ip)))
        },
        |&there| there == present,
        |_| OcfError::generic(format!("EC2 accepted the change but {state} {eni} before the action's timeout")),
    )
    .await?;
    Ok(())
}

/// start: assign the address to our interface (taking it from whoever has it), then wait
/// until EC2 shows it there.
pub fn start(env: &OcfEnv) -> OcfResult {
    let cfg = Config::from_env(env)?;
    aws::with_session(env, &cfg.aws, Duration::from_secs(30), async |s| {
        let enis = our_interfaces(&s.ec2, &s.instance_id).await?;
        check_not_primary(&enis, cfg.ip)?;
        let Some(eni) = pick(&enis, &cfg.interface)? else {
            return Err(OcfError::installed(format!("instance {} has no {}", s.instance_id, describe_interface(&cfg.interface))));
        };
        let id = eni_id(eni).to_owned();
        if holds(eni, cfg.ip) {
            ocf_info!("{} is already assigned to {id} of {}", cfg.ip, s.instance_id);
            return Ok(OcfRc::Success);
        }
        if let Some(other) = enis.iter().find(|n| holds(n, cfg.ip)) {
            ocf_warn!("{} is on {} of this instance, not on {id}: moving it", cfg.ip, eni_id(other));
        }
        s.ec2
            .call(
                "AssignPrivateIpAddresses",
                s.ec2.client().assign_private_ip_addresses().network_interface_id(&id).private_ip_addresses(cfg.ip.to_string()).allow_reassignment(true).send(),
            )
            .await?;
        wait_for(&s.ec2, &id, cfg.ip, true).await?;
        ocf_info!("{} assigned to {id} of {}", cfg.ip, s.instance_id);
        Ok(OcfRc::Success)
    })
}

/// stop: unassign the address from every interface of this instance that holds it.
pub fn stop(env: &OcfEnv) -> OcfResult {
    let cfg = Config::from_env(env)?;
    aws::with_session(env, &cfg.aws, Duration::from_secs(30), async |s| {
        let enis = our_interfaces(&s.ec2, &s.instance_id).await?;
        // A primary address was never ours to assign (start refuses it): nothing to undo,
        // and failing the stop would get this node fenced for a configuration mistake.
        if let Err(e) = check_not_primary(&enis, cfg.ip) {
            ocf_err!("{}; leaving it alone", e.reason);
        }
        let holding: Vec<String> = enis.iter().filter(|n| addresses(n).any(|(a, primary)| a == cfg.ip && !primary)).map(|n| eni_id(n).to_owned()).collect();
        if holding.is_empty() {
            ocf_info!("{} is not assigned to {}: already stopped", cfg.ip, s.instance_id);
            return Ok(OcfRc::Success);
        }
        for id in &holding {
            let r = s
                .ec2
                .call(
                    "UnassignPrivateIpAddresses",
                    s.ec2.client().unassign_private_ip_addresses().network_interface_id(id).private_ip_addresses(cfg.ip.to_string()).send(),
                )
                .await;
            match r {
                Ok(_) => {}
                // Moved away meanwhile (another node's start): what we wanted. wait_for checks.
                Err(e) if e.code() == Some("InvalidParameterValue") => ocf_info!("{id} no longer holds {}: {}", cfg.ip, e.reason),
                Err(e) => return Err(e.into()),
            }
            wait_for(&s.ec2, id, cfg.ip, false).await?;
            ocf_info!("{} unassigned from {id} of {}", cfg.ip, s.instance_id);
        }
        Ok(OcfRc::Success)
    })
}

/// monitor: 0 when EC2 shows the address on our interface, 7 when EC2 shows it elsewhere
/// or nowhere, an error when EC2 cannot be asked.
pub fn monitor(env: &OcfEnv) -> OcfResult {
    let cfg = Config::from_env(env)?;
    aws::with_session(env, &cfg.aws, Duration::from_secs(30), async |s| {
        let enis = our_interfaces(&s.ec2, &s.instance_id).await?;
        let chosen = pick(&enis, &cfg.interface)?;
        if chosen.is_some_and(|n| holds(n, cfg.ip)) {
            return Ok(OcfRc::Success);
        }
        if let Some(other) = enis.iter().find(|n| holds(n, cfg.ip)) {
            ocf_warn!("{} is on {} of this instance, not on {}", cfg.ip, eni_id(other), describe_interface(&cfg.interface));
        }
        Ok(OcfRc::NotRunning)
    })
}

/// validate-all: the parameters, and that EC2 knows this instance and its interface.
pub fn validate_all(env: &OcfEnv) -> OcfResult {
    let cfg = Config::from_env(env)?;
    aws::with_session(env, &cfg.aws, Duration::from_secs(10), async |s| {
        let enis = our_interfaces(&s.ec2, &s.instance_id).await?;
        if enis.is_empty() {
            return Err(bad(format!("EC2 shows no network interface attached to instance {}", s.instance_id)));
        }
        check_not_primary(&enis, cfg.ip)?;
        if pick(&enis, &cfg.interface)?.is_none() {
            return Err(bad(format!("instance {} has no {}", s.instance_id, describe_interface(&cfg.interface))));
        }
        Ok(OcfRc::Success)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::testing::{self, env};

    #[test]
    fn minimal() {
        let c = Config::from_env(&env(&[("secondary_private_ip", "192.0.2.100")])).unwrap();
        assert_eq!(c.ip, Ipv4Addr::new(192, 0, 2, 100));
        assert_eq!(c.interface, Interface::Primary);
        assert_eq!(c.aws, AwsParams::default());
    }

    #[test]
    fn interfaces() {
        let i = |v: &str| Config::from_env(&env(&[("secondary_private_ip", "192.0.2.100"), ("interface", v)])).map(|c| c.interface);
        assert_eq!(i("0").unwrap(), Interface::Primary);
        assert_eq!(i("2").unwrap(), Interface::Index(2));
        assert_eq!(i("eni-0123abcd").unwrap(), Interface::Eni("eni-0123abcd".into()));
        assert_eq!(i("eth1").unwrap(), Interface::OsName("eth1".into()));
    }

    #[test]
    fn heartbeat_leftovers_are_accepted() {
        let c = Config::from_env(&env(&[
            ("secondary_private_ip", "192.0.2.100"),
            ("api_delay", "3"),
            ("awscli", "/usr/bin/aws"),
            ("profile", "cluster"),
            ("auth_type", "role"),
        ]))
        .unwrap();
        assert_eq!(c.aws.profile.as_deref(), Some("cluster"));
    }

    #[test]
    fn bad_input_matrix() {
        let cases: &[&[(&str, &str)]] = &[
            &[],
            &[("secondary_private_ip", "")],
            &[("secondary_private_ip", "nope")],
            &[("secondary_private_ip", "192.0.2.300")],
            &[("secondary_private_ip", "192.0.2.1/32")],
            &[("secondary_private_ip", "2001:db8::1")],
            &[("secondary_private_ip", "0.0.0.0")],
            &[("secondary_private_ip", "255.255.255.255")],
            &[("secondary_private_ip", "224.0.0.1")],
            &[("secondary_private_ip", "127.0.0.1")],
            &[("secondary_private_ip", "169.254.169.254")],
            &[("secondary_private_ip", "192.0.2.1"), ("interface", "-1")],
            &[("secondary_private_ip", "192.0.2.1"), ("interface", "999")],
            &[("secondary_private_ip", "192.0.2.1"), ("interface", "eni-xyz")],
            &[("secondary_private_ip", "192.0.2.1"), ("interface", "eth 0")],
            &[("secondary_private_ip", "192.0.2.1"), ("region", "Mars 1")],
            &[("secondary_private_ip", "192.0.2.1"), ("endpoint_url", "ec2.amazonaws.com")],
            &[("secondary_private_ip", "192.0.2.1"), ("endpoint_url", "http://")],
            &[("secondary_private_ip", "192.0.2.1"), ("instance_id", "i-nothex")],
            &[("secondary_private_ip", "192.0.2.1"), ("profile", "two words")],
            &[("secondary_private_ip", "192.0.2.1"), ("api_delay", "soon")],
        ];
        testing::assert_all_refused(cases, Config::from_env);
    }

    #[test]
    fn metadata_and_docs_show_every_parameter() {
        testing::assert_documented(&SPEC);
        assert!(SPEC.metadata_xml().contains("<parameter name=\"secondary_private_ip\" unique=\"1\" required=\"1\">"));
    }

    #[test]
    fn unknown_action_is_unimplemented() {
        let env = OcfEnv::default();
        assert!(ACTIONS.dispatch(&crate::ocf::Action { name: "promote", env: &env }).is_none());
    }
}
