//! Links, addresses and routes through rtnetlink.
//!
//! [`Netlink`] is a small synchronous facade over the async `rtnetlink` crate: agents are
//! short-lived processes that make a handful of requests, so each one owns a current-thread
//! tokio runtime and blocks on it. Errors come back as [`OcfError`]s with
//! `OCF_ERR_GENERIC`, except where the caller knows better (a missing interface is a
//! question of configuration or of this node, and the caller picks the code).

use std::net::{IpAddr, Ipv4Addr};

use futures::TryStreamExt;
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags, AddressMessage, AddressScope, CacheInfo};
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteScope, RouteType};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::{Handle, LinkUnspec, RouteMessageBuilder};
use tokio::runtime::Runtime;

use crate::ocf::OcfError;

/// A network interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// Hardware address (absent on some virtual links).
    pub mac: Option<Vec<u8>>,
    /// Administratively up (IFF_UP).
    pub admin_up: bool,
    /// Carrier present (IFF_LOWER_UP).
    pub carrier: bool,
    pub loopback: bool,
}

/// One address configured on an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfAddr {
    pub index: u32,
    pub ip: IpAddr,
    pub prefix: u8,
    pub flags: AddressFlags,
    pub label: Option<String>,
}

impl IfAddr {
    pub fn tentative(&self) -> bool {
        self.flags.contains(AddressFlags::Tentative)
    }
    pub fn dad_failed(&self) -> bool {
        self.flags.contains(AddressFlags::Dadfailed)
    }
}

/// The broadcast address to set on an IPv4 address, as `ip addr add ... brd` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Broadcast {
    /// `brd +`: host part all ones.
    Computed,
    /// `brd -`: no broadcast address.
    None,
    Addr(Ipv4Addr),
}

/// An address to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrSpec {
    pub index: u32,
    pub ip: IpAddr,
    pub prefix: u8,
    pub broadcast: Broadcast,
    pub label: Option<String>,
    pub nodad: bool,
    pub noprefixroute: bool,
    /// IPv6 preferred lifetime in seconds; `None` is forever.
    pub preferred_lft: Option<u32>,
}

/// A connection to the kernel's routing netlink.
pub struct Netlink {
    rt: Runtime,
    handle: Handle,
}

fn nl_err(what: &str, e: rtnetlink::Error) -> OcfError {
    OcfError::generic(format!("{what}: {e}"))
}

/// The errno of a netlink error reply, if it is one.
fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
        _ => None,
    }
}

fn link_from(msg: LinkMessage) -> Link {
    let mut link = Link {
        index: msg.header.index,
        name: String::new(),
        mac: None,
        admin_up: msg.header.flags.contains(LinkFlags::Up),
        carrier: msg.header.flags.contains(LinkFlags::LowerUp),
        loopback: msg.header.flags.contains(LinkFlags::Loopback),
    };
    for a in msg.attributes {
        match a {
            LinkAttribute::IfName(n) => link.name = n,
            LinkAttribute::Address(m) => link.mac = Some(m),
            _ => {}
        }
    }
    link
}

fn addr_from(msg: AddressMessage) -> Option<IfAddr> {
    let mut local = None;
    let mut address = None;
    let mut label = None;
    let mut flags = AddressFlags::from_bits_retain(u32::from(msg.header.flags.bits()));
    for a in msg.attributes {
        match a {
            AddressAttribute::Local(ip) => local = Some(ip),
            AddressAttribute::Address(ip) => address = Some(ip),
            AddressAttribute::Label(l) => label = Some(l),
            AddressAttribute::Flags(f) => flags = f,
            _ => {}
        }
    }
    // For IPv4, IFA_LOCAL is the interface's own address (IFA_ADDRESS is the peer on
    // point-to-point links); IPv6 only sends IFA_ADDRESS.
    Some(IfAddr { index: msg.header.index, ip: local.or(address)?, prefix: msg.header.prefix_len, flags, label })
}

/// Whether `ip` only means something on one link (IPv6 link-local, fe80::/10): the same
/// address on two interfaces is two addresses, so only the configured interface's counts.
pub fn link_scoped(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80)
}

/// Whether `net/prefix` contains `ip`.
pub fn covers(net: IpAddr, prefix: u8, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) if prefix <= 32 => {
            let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) if prefix <= 128 => {
            let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - prefix) };
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

impl Netlink {
    pub fn open() -> Result<Netlink, OcfError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| OcfError::generic(format!("cannot start the netlink runtime: {e}")))?;
        let handle = rt.block_on(async {
            let (conn, handle, _) = rtnetlink::new_connection().map_err(|e| OcfError::generic(format!("cannot open a netlink socket: {e}")))?;
            tokio::spawn(conn);
            Ok::<_, OcfError>(handle)
        })?;
        Ok(Netlink { rt, handle })
    }

    /// The interface called `name`, or None if there is none.
    pub fn link_by_name(&self, name: &str) -> Result<Option<Link>, OcfError> {
        let h = self.handle.clone();
        self.rt.block_on(async move {
            match h.link().get().match_name(name.to_owned()).execute().try_next().await {
                Ok(m) => Ok(m.map(link_from)),
                Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(None),
                Err(e) => Err(nl_err(&format!("cannot read interface {name}"), e)),
            }
        })
    }

    /// The interface with index `index`, or None.
    pub fn link_by_index(&self, index: u32) -> Result<Option<Link>, OcfError> {
        let h = self.handle.clone();
        self.rt.block_on(async move {
            match h.link().get().match_index(index).execute().try_next().await {
                Ok(m) => Ok(m.map(link_from)),
                Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(None),
                Err(e) => Err(nl_err(&format!("cannot read interface #{index}"), e)),
            }
        })
    }

    /// Set an interface administratively up (`ip link set dev X up`).
    pub fn set_link_up(&self, index: u32) -> Result<(), OcfError> {
        let h = self.handle.clone();
        self.rt.block_on(async move {
            h.link().set(LinkUnspec::new_with_index(index).up().build()).execute().await.map_err(|e| nl_err("cannot set the interface up", e))
        })
    }

    /// Every address equal to `ip`, on any interface.
    pub fn addresses_of(&self, ip: IpAddr) -> Result<Vec<IfAddr>, OcfError> {
        Ok(self.addresses(None)?.into_iter().filter(|a| a.ip == ip).collect())
    }

    /// Every address equal to `ip`, on any interface, each with its interface's name (for
    /// messages that must name where the address is).
    pub fn holders_of(&self, ip: IpAddr) -> Result<Vec<(IfAddr, String)>, OcfError> {
        self.addresses_of(ip)?.into_iter().map(|a| Ok((a.clone(), self.link_name(a.index)?))).collect()
    }

    /// The name of interface `index`, or `#index` when it has none (gone meanwhile).
    pub fn link_name(&self, index: u32) -> Result<String, OcfError> {
        Ok(self.link_by_index(index)?.map(|l| l.name).filter(|n| !n.is_empty()).unwrap_or_else(|| format!("#{index}")))
    }

    /// Remove `ip` from every interface of this node that holds it, whatever its prefix
    /// (or from interface `only`), then read the addresses again. Why every interface: a
    /// stop that removes the address from one interface and says "stopped" while another
    /// still holds it lets Pacemaker start it on a second node — two nodes answering for
    /// one address. Returns what was removed (with the interface's name); an error naming
    /// the interface when one still holds the address afterwards.
    pub fn remove_everywhere(&self, ip: IpAddr, only: Option<u32>) -> Result<Vec<(IfAddr, String)>, OcfError> {
        let mine = |a: &IfAddr| only.is_none_or(|i| a.index == i);
        let found: Vec<(IfAddr, String)> = self.holders_of(ip)?.into_iter().filter(|(a, _)| mine(a)).collect();
        for (a, _) in &found {
            self.del_address(a)?;
        }
        if let Some(left) = self.addresses_of(ip)?.into_iter().find(|a| mine(a)) {
            return Err(OcfError::generic(format!("{ip} is still on {} after removal", self.link_name(left.index)?)));
        }
        Ok(found)
    }

    /// The addresses of one interface (or of all).
    pub fn addresses(&self, index: Option<u32>) -> Result<Vec<IfAddr>, OcfError> {
        let h = self.handle.clone();
        self.rt.block_on(async move {
            let mut req = h.address().get();
            if let Some(i) = index {
                req = req.set_link_index_filter(i);
            }
            let msgs: Vec<AddressMessage> = req.execute().try_collect().await.map_err(|e| nl_err("cannot list addresses", e))?;
            Ok(msgs.into_iter().filter_map(addr_from).collect())
        })
    }

    /// Add an address (`ip addr add`). An identical address already present is success.
    pub fn add_address(&self, spec: &AddrSpec) -> Result<(), OcfError> {
        let h = self.handle.clone();
        let spec = spec.clone();
        self.rt.block_on(async move {
            let mut req = h.address().add(spec.index, spec.ip, spec.prefix);
            let msg = req.message_mut();
            // iproute2 gives 127/8 addresses host scope; the kernel refuses them with global scope.
            if spec.ip.is_loopback() {
                msg.header.scope = AddressScope::Host;
            }
            if spec.ip.is_ipv4() {
                msg.attributes.retain(|a| !matches!(a, AddressAttribute::Broadcast(_)));
                match spec.broadcast {
                    Broadcast::None => {}
                    Broadcast::Addr(b) => msg.attributes.push(AddressAttribute::Broadcast(b)),
                    Broadcast::Computed => {
                        let host = if spec.prefix >= 32 { 0 } else { u32::MAX >> spec.prefix };
                        let ip = match spec.ip {
                            IpAddr::V4(v4) => u32::from(v4),
                            IpAddr::V6(_) => 0,
                        };
                        msg.attributes.push(AddressAttribute::Broadcast(Ipv4Addr::from(ip | host)));
                    }
                }
                if let Some(l) = &spec.label {
                    msg.attributes.push(AddressAttribute::Label(l.clone()));
                }
            }
            let mut flags = AddressFlags::empty();
            if spec.nodad {
                flags |= AddressFlags::Nodad;
            }
            if spec.noprefixroute {
                flags |= AddressFlags::Noprefixroute;
            }
            if !flags.is_empty() {
                msg.attributes.push(AddressAttribute::Flags(flags));
            }
            if let Some(p) = spec.preferred_lft {
                let mut ci = CacheInfo::default();
                ci.ifa_preferred = p;
                ci.ifa_valid = u32::MAX;
                msg.attributes.push(AddressAttribute::CacheInfo(ci));
            }
            match req.execute().await {
                Ok(()) => Ok(()),
                Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(()),
                Err(e) => Err(nl_err(&format!("cannot add {}/{}", spec.ip, spec.prefix), e)),
            }
        })
    }

    /// Remove an address (`ip addr del`). Already gone is success.
    pub fn del_address(&self, a: &IfAddr) -> Result<(), OcfError> {
        let h = self.handle.clone();
        let mut msg = AddressMessage::default();
        msg.header.index = a.index;
        msg.header.prefix_len = a.prefix;
        msg.header.family = if a.ip.is_ipv4() { AddressFamily::Inet } else { AddressFamily::Inet6 };
        if a.ip.is_ipv4() {
            msg.attributes.push(AddressAttribute::Local(a.ip));
        }
        msg.attributes.push(AddressAttribute::Address(a.ip));
        self.rt.block_on(async move {
            match h.address().del(msg).execute().await {
                Ok(()) => Ok(()),
                Err(e) if matches!(errno(&e), Some(libc::EADDRNOTAVAIL) | Some(libc::ENODEV) | Some(libc::ESRCH)) => Ok(()),
                Err(e) => Err(nl_err(&format!("cannot delete {}/{}", a.ip, a.prefix), e)),
            }
        })
    }

    /// The connected route that covers `ip` with the longest prefix, like IPaddr2's findif:
    /// returns (interface index, prefix length). With `oif`, only routes through it count.
    /// With `within`, only routes that cover the whole `ip/within` subnet count (findif's
    /// `ip route list match ip/within`): an address may be installed with a narrower prefix
    /// than its connected subnet, never a wider one, which would claim addresses on-link
    /// that are not and change routing for the whole range.
    pub fn connected_route(&self, ip: IpAddr, oif: Option<u32>, within: Option<u8>) -> Result<Option<(u32, u8)>, OcfError> {
        let h = self.handle.clone();
        let routes: Vec<RouteMessage> = self.rt.block_on(async move {
            let msg = match ip {
                IpAddr::V4(_) => RouteMessageBuilder::<Ipv4Addr>::new().build(),
                IpAddr::V6(_) => RouteMessageBuilder::<std::net::Ipv6Addr>::new().build(),
            };
            h.route().get(msg).execute().try_collect().await.map_err(|e| nl_err("cannot list routes", e))
        })?;
        let mut best: Option<(u32, u8)> = None;
        for r in routes {
            if r.header.kind != RouteType::Unicast || r.header.destination_prefix_length == 0 {
                continue;
            }
            let table = r.attributes.iter().find_map(|a| if let RouteAttribute::Table(t) = a { Some(*t) } else { None }).unwrap_or(u32::from(r.header.table));
            if table != u32::from(RouteHeader::RT_TABLE_MAIN) {
                continue;
            }
            // A connected route has no gateway; for IPv4 its scope is link.
            if r.attributes.iter().any(|a| matches!(a, RouteAttribute::Gateway(_) | RouteAttribute::MultiPath(_))) {
                continue;
            }
            if ip.is_ipv4() && r.header.scope != RouteScope::Link {
                continue;
            }
            let dest = r.attributes.iter().find_map(|a| match a {
                RouteAttribute::Destination(RouteAddress::Inet(v4)) => Some(IpAddr::V4(*v4)),
                RouteAttribute::Destination(RouteAddress::Inet6(v6)) => Some(IpAddr::V6(*v6)),
                _ => None,
            });
            let out = r.attributes.iter().find_map(|a| if let RouteAttribute::Oif(i) = a { Some(*i) } else { None });
            let (Some(dest), Some(out)) = (dest, out) else { continue };
            let prefix = r.header.destination_prefix_length;
            if oif.is_some_and(|o| o != out) || !covers(dest, prefix, ip) || within.is_some_and(|w| prefix > w) {
                continue;
            }
            if best.is_none_or(|(_, p)| prefix > p) {
                best = Some((out, prefix));
            }
        }
        Ok(best)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_coverage() {
        let n: IpAddr = "192.0.2.0".parse().unwrap();
        assert!(covers(n, 24, "192.0.2.200".parse().unwrap()));
        assert!(!covers(n, 24, "192.0.3.1".parse().unwrap()));
        assert!(covers(n, 0, "10.0.0.1".parse().unwrap()));
        assert!(covers("2001:db8::".parse().unwrap(), 64, "2001:db8::5".parse().unwrap()));
        assert!(!covers("2001:db8::".parse().unwrap(), 64, "2001:db9::5".parse().unwrap()));
        assert!(!covers(n, 24, "2001:db8::5".parse().unwrap()));
        assert!(!covers(n, 33, "192.0.2.1".parse().unwrap()));
    }

    #[test]
    fn link_scope() {
        assert!(link_scoped("fe80::1".parse().unwrap()) && link_scoped("febf::1".parse().unwrap()));
        assert!(!link_scoped("fec0::1".parse().unwrap()) && !link_scoped("2001:db8::1".parse().unwrap()));
        assert!(!link_scoped("169.254.1.1".parse().unwrap()));
    }
}
