//! An instance's network interfaces as EC2 describes them, and the addresses on them —
//! what both address agents compare, always as parsed addresses (exact equality, never
//! the substring matching the reference agents use).

use std::net::Ipv4Addr;

use aws_sdk_ec2::types::{Filter, NetworkInterface};

use super::Ec2;
use crate::ocf::OcfError;

/// The network interfaces attached to `instance_id`.
pub async fn interfaces_of(ec2: &Ec2, instance_id: &str) -> Result<Vec<NetworkInterface>, OcfError> {
    let f = Filter::builder().name("attachment.instance-id").values(instance_id).build();
    let out = ec2.call("DescribeNetworkInterfaces", ec2.client().describe_network_interfaces().filters(f).send()).await?;
    Ok(out.network_interfaces.unwrap_or_default())
}

/// The private IPv4 addresses of an interface, each with whether it is the primary one.
pub fn addresses(n: &NetworkInterface) -> impl Iterator<Item = (Ipv4Addr, bool)> + '_ {
    n.private_ip_addresses.iter().flatten().filter_map(|a| Some((a.private_ip_address.as_deref()?.trim().parse().ok()?, a.primary.unwrap_or(false))))
}

/// Whether `ip` is one of the interface's private addresses.
pub fn holds(n: &NetworkInterface, ip: Ipv4Addr) -> bool {
    addresses(n).any(|(a, _)| a == ip)
}
