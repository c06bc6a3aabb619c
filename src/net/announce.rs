//! Telling the neighbours that an address moved here.
//!
//! When a virtual IP moves, clients and routers still map it to the old node's MAC until
//! their ARP / neighbour cache entry expires — minutes of black hole unless the new owner
//! announces itself. IPv4 uses gratuitous ARP (a request and a reply per round, both
//! broadcast, sender = target = the address, sender MAC = this interface); IPv6 uses an
//! unsolicited neighbour advertisement to all-nodes with the Override flag and the target
//! link-layer address option (RFC 4861 §7.2.6). Both are sent from raw sockets in-process,
//! instead of forking `send_arp`/`arping`/`send_ua` as the heartbeat agent does.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV6};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use nix::sys::socket::{
    bind, sendto, setsockopt, socket, sockopt, AddressFamily, LinkAddr, MsgFlags, SockFlag, SockProtocol, SockType, SockaddrIn6, SockaddrLike,
};

use crate::ocf::OcfError;

const ARP_REQUEST: u16 = 1;
const ARP_REPLY: u16 = 2;

/// The 28-byte ARP payload of a gratuitous ARP (Ethernet/IPv4).
pub fn garp_packet(op: u16, mac: [u8; 6], ip: Ipv4Addr) -> [u8; 28] {
    let mut p = [0u8; 28];
    p[0..2].copy_from_slice(&1u16.to_be_bytes()); // hardware type: Ethernet
    p[2..4].copy_from_slice(&0x0800u16.to_be_bytes()); // protocol: IPv4
    p[4] = 6;
    p[5] = 4;
    p[6..8].copy_from_slice(&op.to_be_bytes());
    p[8..14].copy_from_slice(&mac);
    p[14..18].copy_from_slice(&ip.octets());
    // Target hardware address: zero in the request (who-has), broadcast in the reply.
    if op == ARP_REPLY {
        p[18..24].copy_from_slice(&[0xff; 6]);
    }
    p[24..28].copy_from_slice(&ip.octets());
    p
}

/// The ICMPv6 unsolicited neighbour advertisement for `target` (checksum left to the kernel).
pub fn unsolicited_na_packet(mac: [u8; 6], target: Ipv6Addr) -> [u8; 32] {
    let mut p = [0u8; 32];
    p[0] = 136; // Neighbor Advertisement
    p[1] = 0; // code
              // p[2..4]: checksum, filled in by the kernel for ICMPv6 raw sockets
    p[4] = 0x20; // flags: Override (not Router, not Solicited)
    p[8..24].copy_from_slice(&target.octets());
    p[24] = 2; // option: target link-layer address
    p[25] = 1; // length in units of 8 bytes
    p[26..32].copy_from_slice(&mac);
    p
}

fn sys(what: &str, e: nix::Error) -> OcfError {
    OcfError::generic(format!("{what}: {}", e.desc()))
}

fn mac6(mac: &[u8]) -> Result<[u8; 6], OcfError> {
    mac.try_into().map_err(|_| OcfError::generic(format!("interface has a {}-byte hardware address, cannot announce on it", mac.len())))
}

/// An open announcement channel for one address on one interface.
///
/// Opening and closing are kept apart from sending because closing an `AF_PACKET` socket
/// waits for an RCU grace period (~9 ms here): a start that sends the first round and
/// hands the rest to a background child lets the child hold the last reference, so the
/// parent returns at once.
pub struct Announcer {
    fd: OwnedFd,
    kind: Kind,
}

enum Kind {
    Arp { dest: LinkAddr, request: [u8; 28], reply: [u8; 28] },
    Na { dest: SockaddrIn6, packet: [u8; 32] },
}

impl Announcer {
    /// Gratuitous ARP for `ip` out of interface `ifindex`.
    pub fn arp(ifindex: u32, mac: &[u8], ip: Ipv4Addr) -> Result<Announcer, OcfError> {
        let mac = mac6(mac)?;
        let fd = socket(AddressFamily::Packet, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None).map_err(|e| sys("cannot open a packet socket", e))?;
        // SAFETY: sockaddr_ll is plain data; all-zero is a valid value before we fill it in.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = (libc::ETH_P_ARP as u16).to_be();
        sll.sll_ifindex = ifindex as i32;
        sll.sll_halen = 6;
        sll.sll_addr[..6].copy_from_slice(&[0xff; 6]);
        // SAFETY: the pointer and length describe the sockaddr_ll built above.
        let dest = unsafe { LinkAddr::from_raw((&sll as *const libc::sockaddr_ll).cast(), Some(std::mem::size_of::<libc::sockaddr_ll>() as u32)) }
            .ok_or_else(|| OcfError::generic("cannot build the link-layer address"))?;
        Ok(Announcer { fd, kind: Kind::Arp { dest, request: garp_packet(ARP_REQUEST, mac, ip), reply: garp_packet(ARP_REPLY, mac, ip) } })
    }

    /// Unsolicited neighbour advertisement for `ip` out of interface `ifindex` (`ifname`).
    pub fn na(ifindex: u32, ifname: &str, mac: &[u8], ip: Ipv6Addr) -> Result<Announcer, OcfError> {
        let mac = mac6(mac)?;
        let fd =
            socket(AddressFamily::Inet6, SockType::Raw, SockFlag::SOCK_CLOEXEC, SockProtocol::IcmpV6).map_err(|e| sys("cannot open an ICMPv6 socket", e))?;
        // Neighbour discovery packets must carry hop limit 255, or receivers drop them.
        setsockopt(&fd, sockopt::Ipv6MulticastHops, &255).map_err(|e| sys("cannot set the hop limit", e))?;
        setsockopt(&fd, sockopt::BindToDevice, &std::ffi::OsString::from(ifname)).map_err(|e| sys("cannot bind to the interface", e))?;
        // Send from the announced address itself when the kernel lets us (it refuses while DAD
        // is still running); otherwise the kernel picks the interface's link-local address.
        let scope = if ip.segments()[0] & 0xffc0 == 0xfe80 { ifindex } else { 0 };
        let _ = bind(fd.as_raw_fd(), &SockaddrIn6::from(SocketAddrV6::new(ip, 0, 0, scope)));
        let dest = SockaddrIn6::from(SocketAddrV6::new(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1), 0, 0, ifindex));
        Ok(Announcer { fd, kind: Kind::Na { dest, packet: unsolicited_na_packet(mac, ip) } })
    }

    /// Send one round: ARP request + reply, or one neighbour advertisement.
    pub fn round(&self) -> Result<(), OcfError> {
        let fd = self.fd.as_raw_fd();
        match &self.kind {
            Kind::Arp { dest, request, reply } => {
                for pkt in [request, reply] {
                    sendto(fd, pkt, dest, MsgFlags::empty()).map_err(|e| sys("cannot send gratuitous ARP", e))?;
                }
            }
            Kind::Na { dest, packet } => {
                sendto(fd, packet, dest, MsgFlags::empty()).map_err(|e| sys("cannot send the neighbour advertisement", e))?;
            }
        }
        Ok(())
    }

    /// Send `count` rounds, `interval` apart.
    pub fn rounds(&self, count: u32, interval: Duration) -> Result<(), OcfError> {
        for i in 0..count {
            if i > 0 {
                std::thread::sleep(interval);
            }
            self.round()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garp_layout() {
        let mac = [0x02, 0, 0, 0, 0, 0x01];
        let ip = Ipv4Addr::new(192, 0, 2, 50);
        let req = garp_packet(ARP_REQUEST, mac, ip);
        assert_eq!(&req[0..8], &[0, 1, 8, 0, 6, 4, 0, 1]);
        assert_eq!(&req[8..14], &mac);
        assert_eq!(&req[14..18], &[192, 0, 2, 50]);
        assert_eq!(&req[18..24], &[0; 6]);
        assert_eq!(&req[24..28], &[192, 0, 2, 50]);
        let rep = garp_packet(ARP_REPLY, mac, ip);
        assert_eq!(&rep[6..8], &[0, 2]);
        assert_eq!(&rep[18..24], &[0xff; 6]);
    }

    #[test]
    fn na_layout() {
        let mac = [0x02, 0, 0, 0, 0, 0x01];
        let ip: Ipv6Addr = "2001:db8::50".parse().unwrap();
        let p = unsolicited_na_packet(mac, ip);
        assert_eq!(p[0], 136);
        assert_eq!(p[4], 0x20);
        assert_eq!(&p[8..24], &ip.octets());
        assert_eq!(&p[24..26], &[2, 1]);
        assert_eq!(&p[26..32], &mac);
    }
}
