//! ocf:paceline:aws-vpc-move-ip — an overlay IP address that follows the primary across
//! availability zones, by VPC route tables.
//!
//! Why: a private IP belongs to one subnet, so to one AZ (awsvip). A cluster spread over
//! AZs uses an address outside the VPC's CIDR and has the VPC route it: each listed route
//! table holds `IP/32 -> this instance's interface`, and the address is configured on that
//! interface. The drop-in for resource-agents' aws-vpc-move-ip (same parameters).
//!
//! What the cluster expects from it:
//! * start: every table routes the address here — the route replaced, or created where the
//!   table has none — checked until EC2 shows it, then the address added locally;
//! * stop: the address removed from every interface of this node that holds it, and
//!   checked gone; the routes are left (the next start elsewhere replaces them, as
//!   heartbeat's agent does);
//! * monitor: the local address; and on a probe, or always with `monapi=true`, that every
//!   table routes it here. 7 ("not running") only when no interface of this node holds
//!   the address: Pacemaker then starts it elsewhere and never stops it here, so an
//!   address held here — on another interface, or while a table routes it elsewhere — is
//!   an error, which makes Pacemaker stop it here first. EC2 failures are errors too,
//!   never "not running" (src/aws);
//! * one DescribeRouteTables for all the tables (heartbeat makes one per table, with a
//!   `sleep 1` after each), no AWS CLI, no curl: IMDSv2 gives the interface's ENI.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use aws_sdk_ec2::types::{Route, RouteTable};

use crate::aws::{self, AwsParams, Session};
use crate::net::netlink::{AddrSpec, Broadcast, IfAddr, Link, Netlink};
use crate::net::require_root;
use crate::ocf::{ActionSpec, AgentSpec, OcfEnv, OcfError, OcfRc, OcfResult, Param, ParamKind, Params, Support};
use crate::{ocf_info, ocf_warn};

pub static PARAMS: &[Param] = &[
    Param::new("ip", ParamKind::String, "Overlay IP address",
        "The IPv4 address to move, outside the VPC's CIDR blocks (e.g. 192.0.2.100 in a VPC 10.0.0.0/16): the route tables route it to the primary's interface. Required (or its former name, address): heartbeat's meta-data marks it required but its agent accepts address alone, and so does this one.").unique(),
    Param::new("address", ParamKind::String, "Overlay IP address (deprecated)",
        "Heartbeat's former name of ip; used when ip is unset.").support(Support::Full),
    Param::new("routing_table", ParamKind::String, "Route tables",
        "The route tables to update, comma-separated (rtb-0123456789abcdef0,rtb-...): every table of the subnets the clients are in.").required(),
    Param::new("routing_table_role", ParamKind::String, "Role for the route tables",
        "An IAM role (arn:aws:iam::123456789012:role/name) to assume, through STS, for the route table calls: when the route tables belong to another account, or to keep the permission out of the instance role."),
    Param::new("interface", ParamKind::String, "Network interface",
        "The interface of this node that gets the address, and whose ENI the routes point at.").default("eth0"),
    Param::new("iflabel", ParamKind::String, "Interface label",
        "A label for the address (shown as <interface>:<label> by ifconfig and ip); at most 15 characters with the interface name."),
    Param::new("monapi", ParamKind::Boolean, "Check the route tables on every monitor",
        "When true, every monitor also checks that the route tables route the address here (one DescribeRouteTables); when false only probes do, and recurring monitors check the local address alone.").default("false"),
    Param::new("lookup_type", ParamKind::String, "How a route is recognised as ours",
        "InstanceId: a route to this instance (or to one of its interfaces) is ours; NetworkInterfaceId: only a route to the interface's ENI is.").default("InstanceId"),
];

pub static SPEC: AgentSpec = AgentSpec {
    name: "aws-vpc-move-ip",
    shortdesc: "Moves an overlay IP address between EC2 instances through VPC route tables (paceline)",
    longdesc: "Routes an overlay IPv4 address (outside the VPC's CIDR) to this instance in every listed VPC \
        route table on start, replacing or creating the route, and configures the address on the interface; \
        removes the address on stop and leaves the routes; checks the address, and on probes (or always with \
        monapi) the routes, on monitor. The address follows the primary across availability zones. A drop-in \
        replacement for ocf:heartbeat:aws-vpc-move-ip that calls the EC2 API directly (no AWS CLI, no curl), \
        with IMDSv2, retries with backoff within the action's timeout, and exit codes that never report an \
        API failure as 'not running'.",
    params: &[PARAMS, aws::COMMON],
    actions: &[
        ActionSpec::new("start", 180),
        ActionSpec::new("stop", 180),
        ActionSpec::new("monitor", 30).interval(60).depth(0),
        ActionSpec::new("meta-data", 5),
        ActionSpec::new("validate-all", 10),
    ],
};

/// Entry point of the agent (a link to `paceline`).
pub fn main() -> ! {
    ACTIONS.main(&SPEC)
}

// A start that placed the address adds its step to the incident record of a promotion here.
static ACTIONS: aws::Actions = aws::Actions { start: |env| start(env).inspect(|_| crate::history::note_address(env, SPEC.name)), stop, monitor, validate_all };

/// What makes a route ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupType {
    InstanceId,
    NetworkInterfaceId,
}

/// The checked configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub ip: Ipv4Addr,
    pub tables: Vec<String>,
    pub interface: String,
    pub label: Option<String>,
    pub monapi: bool,
    pub lookup: LookupType,
    pub aws: AwsParams,
}

fn bad(msg: impl Into<String>) -> OcfError {
    OcfError::configured(msg)
}

impl Config {
    pub fn from_env(env: &OcfEnv) -> Result<Config, OcfError> {
        let p = Params::parse(SPEC.params, env)?;
        let raw = p.str("ip").filter(|v| !v.trim().is_empty()).or_else(|| p.str("address")).unwrap_or_default().trim();
        if raw.is_empty() {
            return Err(bad("parameter 'ip' is required (or its former name, address)"));
        }
        let ip: Ipv4Addr = raw.parse().map_err(|_| bad(format!("ip '{raw}' is not an IPv4 address")))?;
        if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() || ip.is_loopback() || ip.is_link_local() {
            return Err(bad(format!("ip '{ip}' cannot be routed to an instance")));
        }
        let tables: Vec<String> = p.str("routing_table").unwrap_or_default().split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect();
        if tables.is_empty() {
            return Err(bad("routing_table names no route table"));
        }
        if let Some(t) = tables.iter().find(|t| !aws::valid_resource_id("rtb", t)) {
            return Err(bad(format!("routing_table '{t}' is not a route table id (rtb-...)")));
        }
        let interface = p.str("interface").unwrap_or("eth0").trim().to_owned();
        if interface.is_empty() || interface.len() > 15 || interface.contains(['/', ':']) || interface.chars().any(char::is_whitespace) {
            return Err(bad(format!("interface '{interface}' is not an interface name")));
        }
        let label = match p.str("iflabel").map(str::trim).filter(|l| !l.is_empty()) {
            None => None,
            Some(l) if interface.len() + 1 + l.len() > 15 || l.chars().any(char::is_whitespace) => {
                return Err(bad(format!("iflabel: '{interface}:{l}' is longer than 15 characters or has blanks")))
            }
            Some(l) => Some(format!("{interface}:{l}")),
        };
        let lookup = match p.str("lookup_type").unwrap_or("InstanceId").trim() {
            "InstanceId" => LookupType::InstanceId,
            "NetworkInterfaceId" => LookupType::NetworkInterfaceId,
            other => return Err(bad(format!("lookup_type '{other}' must be InstanceId or NetworkInterfaceId"))),
        };
        let aws = AwsParams::from_params(&p)?;
        Ok(Config { ip, tables, interface, label, monapi: p.bool("monapi"), lookup, aws })
    }

    fn cidr(&self) -> String {
        format!("{}/32", self.ip)
    }
}

/// The interface, and the overlay address on it if it is there.
fn local(nl: &Netlink, cfg: &Config) -> Result<(Link, Option<IfAddr>), OcfError> {
    let link = nl.link_by_name(&cfg.interface)?.ok_or_else(|| OcfError::installed(format!("interface {} does not exist on this node", cfg.interface)))?;
    let here = nl.addresses(Some(link.index))?.into_iter().find(|a| a.ip == IpAddr::V4(cfg.ip));
    Ok((link, here))
}

fn mac_text(mac: &[u8]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// Where the routes must point: this instance, and the ENI of the interface (IMDS, by the
/// interface's MAC address).
#[derive(Debug, Clone)]
struct Here {
    instance: String,
    eni: String,
}

async fn here(s: &Session, link: &Link) -> Result<Here, OcfError> {
    let mac = link.mac.as_deref().ok_or_else(|| bad(format!("interface {} has no MAC address: not an EC2 interface", link.name)))?;
    let mac = mac_text(mac);
    let eni = s.imds.interface_id(&mac).await.map_err(|e| e.context(format!("the ENI of {} ({mac})", link.name)))?;
    Ok(Here { instance: s.instance_id.clone(), eni: eni.trim().to_owned() })
}

/// Each table's route for the address (`None`: the table has none), in the order given.
async fn routes(s: &Session, cfg: &Config) -> Result<Vec<(String, Option<Route>)>, OcfError> {
    let c = s.ec2.client();
    let out = s.ec2.call("DescribeRouteTables", c.describe_route_tables().set_route_table_ids(Some(cfg.tables.clone())).send()).await?;
    let found: Vec<RouteTable> = out.route_tables.unwrap_or_default();
    cfg.tables
        .iter()
        .map(|t| {
            let table = found
                .iter()
                .find(|r| r.route_table_id.as_deref() == Some(t.as_str()))
                .ok_or_else(|| bad(format!("route table {t} does not exist (EC2 did not return it)")))?;
            let route = table.routes().iter().find(|r| r.destination_cidr_block.as_deref() == Some(cfg.cidr().as_str())).cloned();
            Ok((t.clone(), route))
        })
        .collect()
}

/// Whether `route` sends the address to us.
fn ours(route: &Route, here: &Here, lookup: LookupType) -> bool {
    let eni = route.network_interface_id.as_deref() == Some(here.eni.as_str());
    match lookup {
        LookupType::NetworkInterfaceId => eni,
        LookupType::InstanceId => eni || route.instance_id.as_deref() == Some(here.instance.as_str()),
    }
}

fn describe(route: &Option<Route>) -> String {
    match route {
        None => "no route".into(),
        Some(r) => {
            let target = r
                .network_interface_id
                .as_deref()
                .or(r.instance_id.as_deref())
                .or(r.gateway_id.as_deref())
                .or(r.transit_gateway_id.as_deref())
                .unwrap_or("another target");
            let state = r.state.as_ref().map(|s| format!(", {}", s.as_str())).unwrap_or_default();
            format!("a route to {target}{state}")
        }
    }
}

/// The tables that do not route the address to us, with what they hold.
fn elsewhere<'a>(all: &'a [(String, Option<Route>)], here: &Here, lookup: LookupType) -> Vec<(&'a str, String)> {
    all.iter().filter(|(_, r)| !r.as_ref().is_some_and(|r| ours(r, here, lookup))).map(|(t, r)| (t.as_str(), describe(r))).collect()
}

/// start: every table routes the address here (replaced or created, then seen), then the
/// address on the interface.
pub fn start(env: &OcfEnv) -> OcfResult {
    let cfg = Config::from_env(env)?;
    require_root("start")?;
    let nl = Netlink::open()?;
    let (link, present) = local(&nl, &cfg)?;
    aws::with_session(env, &cfg.aws, Duration::from_secs(180), async |s| {
        let me = here(s, &link).await?;
        let now = routes(s, &cfg).await?;
        let c = s.ec2.client();
        for (table, route) in &now {
            if route.as_ref().is_some_and(|r| ours(r, &me, cfg.lookup) && r.network_interface_id.as_deref() == Some(me.eni.as_str())) {
                continue;
            }
            match route {
                Some(_) => {
                    s.ec2
                        .call("ReplaceRoute", c.replace_route().route_table_id(table).destination_cidr_block(cfg.cidr()).network_interface_id(&me.eni).send())
                        .await?;
                    ocf_info!("{table}: {} now routed to {} (was {})", cfg.cidr(), me.eni, describe(route));
                }
                None => {
                    s.ec2
                        .call("CreateRoute", c.create_route().route_table_id(table).destination_cidr_block(cfg.cidr()).network_interface_id(&me.eni).send())
                        .await?;
                    ocf_info!("{table}: route {} -> {} created", cfg.cidr(), me.eni);
                }
            }
        }
        // EC2 is eventually consistent: look until every table shows the change.
        aws::wait_until(
            s.ec2.deadline(),
            async || routes(s, &cfg).await,
            |seen| elsewhere(seen, &me, cfg.lookup).is_empty(),
            |seen| {
                let (t, what) = &elsewhere(&seen, &me, cfg.lookup)[0];
                OcfError::generic(format!("{t} still holds {what} for {}, not {}, at the deadline", cfg.cidr(), me.eni))
            },
        )
        .await?;
        Ok(())
    })?;
    if present.is_none() {
        nl.add_address(&AddrSpec {
            index: link.index,
            ip: IpAddr::V4(cfg.ip),
            prefix: 32,
            broadcast: Broadcast::None,
            label: cfg.label.clone(),
            nodad: false,
            noprefixroute: false,
            preferred_lft: None,
        })?;
        ocf_info!("added {}/32 to {}", cfg.ip, link.name);
    }
    if !link.admin_up {
        nl.set_link_up(link.index)?;
    }
    Ok(OcfRc::Success)
}

/// stop: the address off every interface of this node that holds it (not only
/// `interface`), checked gone; the routes stay (the next start replaces them).
pub fn stop(env: &OcfEnv) -> OcfResult {
    let cfg = Config::from_env(env)?;
    require_root("stop")?;
    let nl = Netlink::open()?;
    for (a, name) in nl.remove_everywhere(IpAddr::V4(cfg.ip), None)? {
        if name == cfg.interface {
            ocf_info!("removed {}/{} from {name}", cfg.ip, a.prefix);
        } else {
            ocf_warn!("removed {}/{} from {name}, which is not interface {}", cfg.ip, a.prefix, cfg.interface);
        }
    }
    Ok(OcfRc::Success)
}

/// monitor: the address on the interface; on a probe or with monapi, the routes too.
/// 7 only when no interface of this node holds the address: held on another interface,
/// or held while a table routes it elsewhere, is an error — "not running" would let
/// Pacemaker start it on a second node and leave it configured here.
pub fn monitor(env: &OcfEnv) -> OcfResult {
    let cfg = Config::from_env(env)?;
    let probe = env.is_probe("monitor");
    let nl = Netlink::open()?;
    let found = nl.holders_of(IpAddr::V4(cfg.ip))?;
    let link = match nl.link_by_name(&cfg.interface)? {
        Some(l) => l,
        None => {
            if let Some((_, other)) = found.first() {
                return Err(OcfError::generic(format!("{} is on {other}, and interface {} does not exist", cfg.ip, cfg.interface)));
            }
            // A probe on a node without the interface: not running here.
            if probe {
                return Ok(OcfRc::NotRunning);
            }
            return Err(OcfError::installed(format!("interface {} does not exist on this node", cfg.interface)));
        }
    };
    if !found.iter().any(|(a, _)| a.index == link.index) {
        if let Some((_, other)) = found.first() {
            return Err(OcfError::generic(format!("{} is on {other}, not on interface {}", cfg.ip, link.name)));
        }
        return Ok(OcfRc::NotRunning);
    }
    if !(cfg.monapi || probe) {
        return Ok(OcfRc::Success);
    }
    aws::with_session(env, &cfg.aws, Duration::from_secs(30), async |s| {
        let me = here(s, &link).await?;
        let now = routes(s, &cfg).await?;
        let off = elsewhere(&now, &me, cfg.lookup);
        if let Some((t, what)) = off.first() {
            return Err(OcfError::generic(format!("{} is on {} but {t} holds {what}: not routed here", cfg.ip, link.name)));
        }
        Ok(OcfRc::Success)
    })
}

/// validate-all: the parameters, and that EC2 knows every route table.
pub fn validate_all(env: &OcfEnv) -> OcfResult {
    let cfg = Config::from_env(env)?;
    aws::with_session(env, &cfg.aws, Duration::from_secs(10), async |s| {
        routes(s, &cfg).await?;
        Ok(OcfRc::Success)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::testing::{self, env};

    #[test]
    fn heartbeat_parameters() {
        let c =
            Config::from_env(&env(&[("ip", "192.0.2.100"), ("routing_table", "rtb-0123456789abcdef0, rtb-00000000000000001"), ("iflabel", "vip")])).unwrap();
        assert_eq!(c.tables, ["rtb-0123456789abcdef0", "rtb-00000000000000001"]);
        assert_eq!((c.interface.as_str(), c.label.as_deref(), c.monapi, c.lookup), ("eth0", Some("eth0:vip"), false, LookupType::InstanceId));
        let c = Config::from_env(&env(&[
            ("ip", ""),
            ("address", "192.0.2.7"),
            ("routing_table", "rtb-0123456789abcdef0"),
            ("lookup_type", "NetworkInterfaceId"),
            ("monapi", "true"),
            ("routing_table_role", "arn:aws:iam::123456789012:role/rtb"),
        ]))
        .unwrap();
        assert_eq!((c.ip, c.lookup, c.monapi), ("192.0.2.7".parse().unwrap(), LookupType::NetworkInterfaceId, true));
        assert_eq!(c.aws.assume_role.as_deref(), Some("arn:aws:iam::123456789012:role/rtb"));
    }

    #[test]
    fn bad_input_is_configured_with_the_parameter_named() {
        for (pairs, want) in [
            (&[("ip", "192.0.2.300"), ("routing_table", "rtb-0123456789abcdef0")][..], "ip '192.0.2.300'"),
            (&[("ip", "2001:db8::1"), ("routing_table", "rtb-0123456789abcdef0")], "not an IPv4"),
            (&[("ip", "192.0.2.1"), ("routing_table", " , ")], "names no route table"),
            (&[("ip", "192.0.2.1"), ("routing_table", "rtb-0123456789abcdef0,igw-1")], "routing_table 'igw-1'"),
            (&[("ip", "192.0.2.1"), ("routing_table", "rtb-0123456789abcdef0"), ("lookup_type", "Tag")], "lookup_type 'Tag'"),
            (&[("ip", "192.0.2.1"), ("routing_table", "rtb-0123456789abcdef0"), ("iflabel", "averyverylonglabel")], "iflabel"),
            (&[("ip", "192.0.2.1"), ("routing_table", "rtb-0123456789abcdef0"), ("routing_table_role", "rtb-role")], "not an IAM role ARN"),
            (&[("ip", "192.0.2.1"), ("routing_table", "rtb-0123456789abcdef0"), ("region", "Mars 1")], "region 'Mars 1'"),
            (&[("routing_table", "rtb-0123456789abcdef0")], "'ip' is required"),
        ] {
            let e = Config::from_env(&env(pairs)).unwrap_err();
            assert_eq!(e.rc, OcfRc::ErrConfigured, "{pairs:?}: {e}");
            assert!(e.reason.contains(want), "{pairs:?}: {}", e.reason);
        }
    }

    #[test]
    fn metadata_and_docs_show_every_parameter() {
        testing::assert_documented(&SPEC);
    }

    #[test]
    fn which_routes_are_ours() {
        let me = Here { instance: "i-0123456789abcdef0".into(), eni: "eni-0123456789abcdef0".into() };
        let to_eni = Route::builder().destination_cidr_block("192.0.2.100/32").network_interface_id("eni-0123456789abcdef0").build();
        let to_instance =
            Route::builder().destination_cidr_block("192.0.2.100/32").instance_id("i-0123456789abcdef0").network_interface_id("eni-0000000000000000f").build();
        let other =
            Route::builder().destination_cidr_block("192.0.2.100/32").network_interface_id("eni-0000000000000000f").instance_id("i-0000000000000000f").build();
        assert!(ours(&to_eni, &me, LookupType::InstanceId) && ours(&to_eni, &me, LookupType::NetworkInterfaceId));
        assert!(ours(&to_instance, &me, LookupType::InstanceId) && !ours(&to_instance, &me, LookupType::NetworkInterfaceId));
        assert!(!ours(&other, &me, LookupType::InstanceId));
        let all = vec![("rtb-a".to_owned(), Some(to_eni)), ("rtb-b".to_owned(), None), ("rtb-c".to_owned(), Some(other))];
        let off = elsewhere(&all, &me, LookupType::InstanceId);
        assert_eq!(off.iter().map(|(t, _)| *t).collect::<Vec<_>>(), ["rtb-b", "rtb-c"]);
        assert_eq!(off[1].1, "a route to eni-0000000000000000f");
    }
}
