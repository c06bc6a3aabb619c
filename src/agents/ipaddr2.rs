//! `ocf:paceline:IPaddr2` — a virtual IP address that follows the resource.
//!
//! What the cluster expects: after `start` returns, the address is configured on this
//! node's interface and the neighbours have been told (gratuitous ARP / unsolicited NA) so
//! that traffic arrives here at once; after `stop` returns it is gone from this node; and
//! `monitor` says which of the two is true, with an error — not "stopped" — when the
//! answer is "configured, but not usable" (interface down, DAD failed, wrong prefix, on
//! another interface than `nic`). "Stopped" (7 from monitor, 0 from stop) is only ever
//! said when no interface of this node holds the address: Pacemaker believes it and
//! starts the address on another node, so saying it of an address still here would put
//! it on two nodes at once.
//! Parameters are those of heartbeat's IPaddr2, so a resource migrates by changing its
//! provider; the few heartbeat features we do not implement are declared in the table with
//! how they are treated (see `docs/IPaddr2.md`).
//!
//! Codes chosen where the heartbeat agent is vague: a configuration that cannot be right
//! anywhere (bad address, bad prefix, unsupported feature) is `OCF_ERR_CONFIGURED`; one
//! that only fails on this node (the interface does not exist here, no connected route
//! covers the address here) is `OCF_ERR_INSTALLED` on start, so Pacemaker places the
//! address on another node instead of stopping it everywhere — and `OCF_ERR_CONFIGURED`
//! from `validate-all`, which judges the configuration as a whole.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use crate::net::announce;
use crate::net::netlink::link_scoped;
use crate::net::{AddrSpec, Broadcast, IfAddr, Link, Netlink};
use crate::ocf::{main_with, Action, ActionSpec, AgentSpec, OcfEnv, OcfError, OcfRc, OcfResult, Param, ParamKind, Params, Support};
use crate::{ocf_info, ocf_warn};

/// The parameter table: meta-data, parsing and docs all come from it.
pub static PARAMS: &[Param] = &[
    Param::new("ip", ParamKind::String, "IPv4 or IPv6 address",
        "The virtual IP address to manage, IPv4 (192.0.2.10) or IPv6 (2001:db8::10).").required().unique(),
    Param::new("nic", ParamKind::String, "Network interface",
        "The interface to put the address on. When unset, the interface whose connected route covers the address with the longest prefix is used (like heartbeat's findif). 'eth0:label' sets the label too."),
    Param::new("cidr_netmask", ParamKind::String, "Prefix length",
        "Prefix length of the address (24, or a dotted IPv4 netmask such as 255.255.255.0). When unset, the prefix of the connected route that covers the address."),
    Param::new("broadcast", ParamKind::String, "Broadcast address",
        "IPv4 broadcast address: an address, '+' (host part all ones, the default) or '-' (none). Ignored for IPv6."),
    Param::new("iflabel", ParamKind::String, "Interface label",
        "IPv4 only: label the address 'nic:iflabel' (at most 15 characters in all), as ifconfig-style tools show it."),
    Param::new("arp_count", ParamKind::Integer, "Announcements on start",
        "How many gratuitous ARP rounds (IPv4: a request and a reply) or unsolicited neighbour advertisements (IPv6) to send after the address is added. 0 disables them.").default("5"),
    Param::new("arp_interval", ParamKind::Integer, "Milliseconds between announcements",
        "Time between two announcement rounds, in milliseconds.").default("200"),
    Param::new("arp_count_refresh", ParamKind::Integer, "Announcements per monitor",
        "IPv4: gratuitous ARP rounds to send on every recurring monitor, to keep switches and neighbours up to date. 0 disables them.").default("0"),
    Param::new("arp_bg", ParamKind::String, "Announce in the background",
        "Whether announcements after the first round are sent by a background process so that start returns at once. Empty means true for IPv4 and false for IPv6 (IPv6 start waits for duplicate address detection anyway).").default(""),
    Param::new("preferred_lft", ParamKind::String, "IPv6 preferred lifetime",
        "IPv6 only: preferred lifetime of the address in seconds, or 'forever'. 0 makes the address deprecated, so the kernel does not pick it as the source of outgoing connections.").default("forever"),
    Param::new("noprefixroute", ParamKind::Boolean, "Do not add a prefix route",
        "Do not create the route for the address's prefix (the 'noprefixroute' flag of ip-address).").default("false"),
    Param::new("nodad", ParamKind::Boolean, "Skip duplicate address detection",
        "IPv6 only: mark the address 'nodad', so it is usable at once instead of after duplicate address detection.").default("false"),
    Param::new("check_link_status", ParamKind::Boolean, "Fail monitor when the link has no carrier",
        "When true, monitor fails if the interface has no carrier (cable out, peer down). The address being on an administratively down interface is always a failure.").default("true"),
    // Heartbeat parameters we accept but do not implement.
    Param::new("arp_sender", ParamKind::String, "ARP sender program",
        "Heartbeat chooses an external program to send gratuitous ARP; paceline sends them itself.").support(Support::Ignored),
    Param::new("send_arp_opts", ParamKind::String, "Options for the ARP sender",
        "Extra options of heartbeat's external ARP sender.").support(Support::Ignored),
    Param::new("flush_routes", ParamKind::Boolean, "Flush the route cache on stop",
        "Heartbeat flushes the (long gone) IPv4 route cache on stop.").default("false").support(Support::Ignored),
    Param::new("mac", ParamKind::String, "Cluster IP MAC address",
        "Multicast MAC address of heartbeat's CLUSTERIP mode, which paceline does not support.").support(Support::Ignored),
    Param::new("clusterip_hash", ParamKind::String, "Cluster IP hash",
        "Hash mode of heartbeat's CLUSTERIP mode, which paceline does not support.").default("sourceip-sourceport").support(Support::Ignored),
    Param::new("lvs_ipv6_addrlabel_value", ParamKind::Integer, "LVS IPv6 address label",
        "Label value for heartbeat's LVS IPv6 support.").default("99").support(Support::Ignored),
    Param::new("lvs_support", ParamKind::Boolean, "LVS direct routing support",
        "Heartbeat's LVS direct-routing mode (moving the address between lo and the interface).").default("false").support(Support::DefaultOnly),
    Param::new("lvs_ipv6_addrlabel", ParamKind::Boolean, "LVS IPv6 address label",
        "Heartbeat's LVS IPv6 address-label mode.").default("false").support(Support::DefaultOnly),
    Param::new("unique_clone_address", ParamKind::Boolean, "One address per clone instance",
        "Heartbeat's mode where each clone instance adds its number to the address.").default("false").support(Support::DefaultOnly),
    Param::new("run_arping", ParamKind::Boolean, "Refuse to start if the address is in use",
        "Heartbeat probes the network with arping before adding an IPv4 address.").default("false").support(Support::DefaultOnly),
    Param::new("network_namespace", ParamKind::String, "Network namespace",
        "Heartbeat re-runs itself in this network namespace; paceline manages the namespace it runs in.").support(Support::DefaultOnly),
];

pub static SPEC: AgentSpec = AgentSpec {
    name: "IPaddr2",
    shortdesc: "Manages a virtual IPv4 or IPv6 address (paceline)",
    longdesc: "Adds a virtual IP address to a local interface and announces it to the neighbours \
        (gratuitous ARP for IPv4, unsolicited neighbour advertisement for IPv6), removes it on stop, \
        and checks it on monitor. A drop-in replacement for ocf:heartbeat:IPaddr2 that talks to the \
        kernel over netlink and raw sockets instead of forking ip, arping or send_arp.",
    params: &[PARAMS],
    actions: &[
        ActionSpec::new("start", 20),
        ActionSpec::new("stop", 20),
        ActionSpec::new("status", 20),
        ActionSpec::new("monitor", 20).interval(10).depth(0),
        ActionSpec::new("meta-data", 5),
        ActionSpec::new("validate-all", 20),
    ],
};

/// Entry point of the `IPaddr2` binary.
pub fn main() -> ! {
    main_with(&SPEC, dispatch)
}

fn dispatch(a: &Action) -> Option<OcfResult> {
    Some(match a.name {
        // A start that placed the address adds its step to the incident record of a promotion here.
        "start" => start(a.env).inspect(|_| crate::history::note_address(a.env, SPEC.name)),
        "stop" => stop(a.env),
        "monitor" | "status" => monitor(a.env, a.name),
        "validate-all" => validate_all(a.env),
        _ => return None,
    })
}

/// The checked configuration of one resource. Building it touches nothing on the system,
/// so every syntactic problem is found the same way on every node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub ip: IpAddr,
    pub prefix: Option<u8>,
    pub nic: Option<String>,
    pub iflabel: Option<String>,
    pub broadcast: Broadcast,
    pub arp_count: u32,
    pub arp_interval: Duration,
    pub arp_count_refresh: u32,
    pub arp_bg: bool,
    pub preferred_lft: Option<u32>,
    pub noprefixroute: bool,
    pub nodad: bool,
    pub check_link_status: bool,
}

fn bad(msg: String) -> OcfError {
    OcfError::configured(msg)
}

/// Parse `cidr_netmask`: a prefix length, or (IPv4) a dotted netmask.
pub fn parse_prefix(raw: &str, ip: IpAddr) -> Result<u8, OcfError> {
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let raw = raw.trim();
    if let Ok(p) = raw.parse::<u32>() {
        if (1..=max).contains(&p) {
            return Ok(p as u8);
        }
        return Err(bad(format!("cidr_netmask '{raw}' is out of range (1-{max} for {ip})")));
    }
    if let (true, Ok(mask)) = (ip.is_ipv4(), raw.parse::<Ipv4Addr>()) {
        let m = u32::from(mask);
        let p = m.leading_ones();
        if p >= 1 && m.checked_shl(p).unwrap_or(0) == 0 {
            ocf_warn!("cidr_netmask '{raw}' given as a netmask; using prefix length {p}");
            return Ok(p as u8);
        }
        return Err(bad(format!("cidr_netmask '{raw}' is not a contiguous netmask")));
    }
    Err(bad(format!("cidr_netmask '{raw}' is not a prefix length")))
}

fn bounded(p: &Params, name: &str, max: i64) -> Result<u32, OcfError> {
    let v = p.int(name).unwrap_or(0);
    if !(0..=max).contains(&v) {
        return Err(bad(format!("{name} must be between 0 and {max}, got {v}")));
    }
    Ok(v as u32)
}

fn valid_ifname(name: &str) -> bool {
    !name.is_empty() && name.len() <= 15 && !name.contains(['/', ':']) && !name.chars().any(char::is_whitespace)
}

impl Config {
    pub fn from_env(env: &OcfEnv) -> Result<Config, OcfError> {
        let p = Params::parse(SPEC.params, env)?;
        let raw_ip = p.str("ip").unwrap_or_default().trim();
        let ip: IpAddr = raw_ip.parse().map_err(|_| bad(format!("ip '{raw_ip}' is not an IPv4 or IPv6 address")))?;
        let unusable = match ip {
            IpAddr::V4(v4) => v4.is_unspecified() || v4.is_broadcast() || v4.is_multicast(),
            IpAddr::V6(v6) => v6.is_unspecified() || v6.is_multicast(),
        };
        if unusable {
            return Err(bad(format!("ip '{ip}' cannot be assigned to an interface (unspecified, broadcast or multicast)")));
        }
        let prefix = p.str("cidr_netmask").map(|raw| parse_prefix(raw, ip)).transpose()?;

        // 'eth0:label' in nic is heartbeat's older way to set a label.
        let (nic, mut iflabel) = match p.str("nic").map(str::trim) {
            Some(n) => match n.split_once(':') {
                Some((n, l)) => (Some(n.to_owned()), Some(l.to_owned())),
                None => (Some(n.to_owned()), None),
            },
            None => (None, None),
        };
        if let Some(n) = &nic {
            if !valid_ifname(n) {
                return Err(bad(format!("nic '{n}' is not a valid interface name")));
            }
        }
        if let Some(l) = p.str("iflabel") {
            iflabel = Some(l.trim().to_owned());
        }
        if let Some(l) = &iflabel {
            if ip.is_ipv6() {
                ocf_warn!("iflabel is ignored for IPv6 addresses");
                iflabel = None;
            } else if l.is_empty() || l.chars().any(|c| c.is_whitespace() || c == '/') {
                return Err(bad(format!("iflabel '{l}' is not a valid label")));
            } else if let Some(n) = &nic {
                if n.len() + 1 + l.len() > 15 {
                    return Err(bad(format!("label '{n}:{l}' is longer than 15 characters")));
                }
            }
        }
        if nic.is_none() && link_scoped(ip) {
            return Err(bad(format!("link-local address {ip} needs the nic parameter")));
        }

        let broadcast = match p.str("broadcast").map(str::trim) {
            None | Some("+") => Broadcast::Computed,
            Some("-") => Broadcast::None,
            Some(b) => match (ip, b.parse::<Ipv4Addr>()) {
                (IpAddr::V4(_), Ok(addr)) => Broadcast::Addr(addr),
                (IpAddr::V4(_), Err(_)) => return Err(bad(format!("broadcast '{b}' is not an IPv4 address, '+' or '-'"))),
                (IpAddr::V6(_), _) => {
                    ocf_warn!("broadcast is ignored for IPv6 addresses");
                    Broadcast::None
                }
            },
        };

        let arp_count = bounded(&p, "arp_count", 1000)?;
        let arp_interval = Duration::from_millis(u64::from(bounded(&p, "arp_interval", 60_000)?));
        let arp_count_refresh = bounded(&p, "arp_count_refresh", 1000)?;
        let arp_bg = match p.str("arp_bg").map(str::trim).filter(|v| !v.is_empty()) {
            None => ip.is_ipv4(),
            Some(v) => crate::ocf::params::parse_bool(v).ok_or_else(|| bad(format!("arp_bg must be true or false, got '{v}'")))?,
        };
        let preferred_lft = match p.str("preferred_lft").map(str::trim) {
            None | Some("forever") => None,
            Some(v) => match v.parse::<u32>() {
                Ok(s) if s < u32::MAX => Some(s),
                _ => return Err(bad(format!("preferred_lft must be a number of seconds or 'forever', got '{v}'"))),
            },
        };
        let preferred_lft = if ip.is_ipv4() && preferred_lft.is_some() {
            ocf_warn!("preferred_lft is ignored for IPv4 addresses");
            None
        } else {
            preferred_lft
        };
        let nodad = p.bool("nodad");
        if nodad && ip.is_ipv4() {
            ocf_warn!("nodad is ignored for IPv4 addresses");
        }
        if env.clone_max().is_some_and(|n| n > 1) {
            return Err(bad("IPaddr2 cannot be cloned: heartbeat's CLUSTERIP mode is not supported by paceline".into()));
        }
        Ok(Config {
            ip,
            prefix,
            nic,
            iflabel,
            broadcast,
            arp_count,
            arp_interval,
            arp_count_refresh,
            arp_bg,
            preferred_lft,
            noprefixroute: p.bool("noprefixroute"),
            nodad: nodad && ip.is_ipv6(),
            check_link_status: p.bool("check_link_status"),
        })
    }
}

/// Why the address has no place on this node.
#[derive(Debug)]
enum Unplaceable {
    NoSuchNic(String),
    NoRoute(String),
    BadLabel(String),
    System(OcfError),
}

impl Unplaceable {
    /// The error, with one code per fault whichever action meets it (start, validate-all):
    /// * no subnet or netmask fits → `OCF_ERR_GENERIC`, as heartbeat's findif says it: the
    ///   addresses of this node may change (a base address added back), so Pacemaker
    ///   recovers as usual, within migration-threshold, instead of banning the node;
    /// * the named interface is not on this node → `OCF_ERR_INSTALLED`: this node cannot
    ///   host the address, others may (heartbeat says 6, which stops it on every node);
    /// * a label too long for any interface → `OCF_ERR_CONFIGURED`, as heartbeat.
    fn into_error(self) -> OcfError {
        match self {
            Unplaceable::NoSuchNic(n) => OcfError::installed(format!("interface {n} does not exist on this node")),
            Unplaceable::NoRoute(msg) => OcfError::generic(msg),
            Unplaceable::BadLabel(msg) => OcfError::configured(msg),
            Unplaceable::System(e) => e,
        }
    }
}

/// Where the address goes on this node: the interface and the prefix length.
#[derive(Debug)]
struct Placement {
    link: Link,
    prefix: u8,
}

fn place(nl: &Netlink, cfg: &Config) -> Result<Placement, Unplaceable> {
    let loopback = cfg.ip.is_loopback();
    let nic = cfg.nic.clone().or_else(|| loopback.then(|| "lo".to_owned()));
    let (link, route_prefix) = match &nic {
        Some(name) => {
            let link = nl.link_by_name(name).map_err(Unplaceable::System)?.ok_or_else(|| Unplaceable::NoSuchNic(name.clone()))?;
            let route = if cfg.prefix.is_none() { nl.connected_route(cfg.ip, Some(link.index), None).map_err(Unplaceable::System)? } else { None };
            (link, route.map(|(_, p)| p))
        }
        None => {
            let (index, prefix) = nl.connected_route(cfg.ip, None, cfg.prefix).map_err(Unplaceable::System)?.ok_or_else(|| {
                Unplaceable::NoRoute(match cfg.prefix {
                    Some(p) => format!("no connected subnet holds {}/{p} (a wider prefix than the subnet's is refused): set nic to force it", cfg.ip),
                    None => format!("no interface has a connected route covering {}: set nic and cidr_netmask", cfg.ip),
                })
            })?;
            let link = nl.link_by_index(index).map_err(Unplaceable::System)?.ok_or_else(|| Unplaceable::NoSuchNic(format!("#{index}")))?;
            // The subnet's prefix when cidr_netmask is unset; a given (narrower) one wins below.
            (link, Some(prefix))
        }
    };
    // Loopback addresses live in the local table, not the main one: heartbeat uses /8 there.
    let loopback_default = loopback.then_some(if cfg.ip.is_ipv4() { 8 } else { 128 });
    let prefix = cfg.prefix.or(route_prefix).or(loopback_default).ok_or_else(|| {
        Unplaceable::NoRoute(format!("cannot tell the prefix length of {} on {}: no connected route covers it; set cidr_netmask", cfg.ip, link.name))
    })?;
    if let Some(l) = &cfg.iflabel {
        if link.name.len() + 1 + l.len() > 15 {
            return Err(Unplaceable::BadLabel(format!("label '{}:{l}' is longer than 15 characters", link.name)));
        }
    }
    Ok(Placement { link, prefix })
}

/// start: add the address (already there is fine), wait for IPv6 DAD, announce it.
pub fn start(env: &OcfEnv) -> OcfResult {
    let cfg = Config::from_env(env)?;
    crate::net::require_root("start")?;
    let nl = Netlink::open()?;
    let Placement { link, prefix } = place(&nl, &cfg).map_err(Unplaceable::into_error)?;
    let deadline = Instant::now() + env.timeout_or(Duration::from_secs(20)).saturating_sub(Duration::from_secs(2));

    let present = nl.addresses_of(cfg.ip)?;
    if let Some(other) = present.iter().find(|a| a.index != link.index) {
        ocf_warn!("{} is also configured on interface #{}; adding it to {} anyway", cfg.ip, other.index, link.name);
    }
    let already = present.iter().any(|a| a.index == link.index && a.prefix == prefix && !a.dad_failed());
    if already {
        ocf_info!("{}/{prefix} is already on {}", cfg.ip, link.name);
    } else {
        let label = cfg.iflabel.as_ref().map(|l| format!("{}:{l}", link.name));
        nl.add_address(&AddrSpec {
            index: link.index,
            ip: cfg.ip,
            prefix,
            broadcast: cfg.broadcast,
            label,
            nodad: cfg.nodad,
            noprefixroute: cfg.noprefixroute,
            preferred_lft: cfg.preferred_lft,
        })?;
        ocf_info!("added {}/{prefix} to {}", cfg.ip, link.name);
    }
    if !link.admin_up {
        nl.set_link_up(link.index)?;
        ocf_info!("set {} up", link.name);
    }
    if cfg.ip.is_ipv6() && !cfg.nodad {
        wait_for_dad(&nl, &cfg, &link, prefix, deadline.min(Instant::now() + Duration::from_secs(10)))?;
    }
    announce(&cfg, &link, cfg.arp_count, cfg.arp_bg);
    Ok(OcfRc::Success)
}

/// IPv6: the address is unusable while tentative; a DAD failure means another host has it.
fn wait_for_dad(nl: &Netlink, cfg: &Config, link: &Link, prefix: u8, until: Instant) -> Result<(), OcfError> {
    loop {
        let mine: Vec<IfAddr> = nl.addresses_of(cfg.ip)?.into_iter().filter(|a| a.index == link.index).collect();
        if let Some(a) = mine.iter().find(|a| a.dad_failed()) {
            nl.del_address(a)?;
            return Err(OcfError::generic(format!("duplicate address detection failed for {}/{prefix} on {}: another host uses it", cfg.ip, link.name)));
        }
        if !mine.iter().any(IfAddr::tentative) {
            return Ok(());
        }
        if Instant::now() >= until {
            ocf_warn!("{} is still tentative on {} (duplicate address detection not finished)", cfg.ip, link.name);
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Send `count` announcement rounds. With `background`, the first round is sent now and
/// the rest by a forked child that stops early if the address leaves the interface.
/// Failures are logged, never fatal: the address is up, which is what start promises.
fn announce(cfg: &Config, link: &Link, count: u32, background: bool) {
    if count == 0 || link.loopback {
        return;
    }
    let Some(mac) = link.mac.as_deref() else {
        ocf_info!("{} has no hardware address: no announcement sent", link.name);
        return;
    };
    let announcer = match cfg.ip {
        IpAddr::V4(v4) => announce::Announcer::arp(link.index, mac, v4),
        IpAddr::V6(v6) => announce::Announcer::na(link.index, &link.name, mac, v6),
    };
    let warn = |e: OcfError| ocf_warn!("announcing {} failed: {}", cfg.ip, e.reason);
    let announcer = match announcer {
        Ok(a) => a,
        Err(e) => return warn(e),
    };
    if !background || count == 1 {
        return announcer.rounds(count, cfg.arp_interval).unwrap_or_else(warn);
    }
    if let Err(e) = announcer.round() {
        return warn(e);
    }
    // SAFETY: the process is single-threaded here (current-thread runtime, no spawned
    // threads), so the child may run arbitrary code.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Child) => {
            detach_stdio();
            let nl = Netlink::open().ok();
            for _ in 1..count {
                std::thread::sleep(cfg.arp_interval);
                let still_here = nl.as_ref().and_then(|nl| nl.addresses_of(cfg.ip).ok()).is_some_and(|v| v.iter().any(|a| a.index == link.index));
                if !still_here || announcer.round().is_err() {
                    break;
                }
            }
            // Leave without running the parent's exit handlers.
            // SAFETY: _exit has no preconditions.
            unsafe { libc::_exit(0) };
        }
        // The child holds the socket now: dropping our descriptor does not wait for its release.
        Ok(_) => ocf_info!("sending {} more announcements for {} in the background", count - 1, cfg.ip),
        Err(e) => {
            ocf_warn!("cannot fork the announcer ({}); announcing in the foreground", e.desc());
            announcer.rounds(count - 1, cfg.arp_interval).unwrap_or_else(warn);
        }
    }
}

/// Point stdin/stdout/stderr at /dev/null, so Pacemaker does not wait for our pipes.
fn detach_stdio() {
    if let Ok(null) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null") {
        use std::os::fd::AsRawFd;
        for fd in 0..3 {
            // SAFETY: dup2 onto the standard descriptors of this (child) process.
            unsafe { libc::dup2(null.as_raw_fd(), fd) };
        }
    }
    let _ = nix::unistd::setsid();
}

/// stop: remove the address from every interface of this node that holds it — not only
/// from `nic` or from the interface start would choose — and check that none still does.
/// Not on this node is success. An IPv6 link-local address is per link: only `nic`'s copy
/// is ours there.
pub fn stop(env: &OcfEnv) -> OcfResult {
    let cfg = Config::from_env(env)?;
    crate::net::require_root("stop")?;
    let nl = Netlink::open()?;
    let only = if link_scoped(cfg.ip) {
        match nl.link_by_name(cfg.nic.as_deref().unwrap_or_default())? {
            Some(l) => Some(l.index),
            None => {
                ocf_info!("{} cannot be on this node (its interface is not here): nothing to stop", cfg.ip);
                return Ok(OcfRc::Success);
            }
        }
    } else {
        None
    };
    let removed = nl.remove_everywhere(cfg.ip, only)?;
    if removed.is_empty() {
        ocf_info!("{} is not on this node: already stopped", cfg.ip);
    }
    for (a, name) in &removed {
        match &cfg.nic {
            Some(nic) if nic != name => ocf_warn!("removed {}/{} from {name}, which is not nic {nic}", a.ip, a.prefix),
            _ => ocf_info!("removed {}/{} from {name}", a.ip, a.prefix),
        }
    }
    Ok(OcfRc::Success)
}

/// monitor: 0 when the address is on the right interface and usable; 7 only when no
/// interface of this node holds it; an error when it is here but broken — including on
/// another interface than `nic` (7 there would let Pacemaker start it on a second node
/// while this one still answers for it).
pub fn monitor(env: &OcfEnv, action: &str) -> OcfResult {
    let cfg = Config::from_env(env)?;
    let probe = env.is_probe(action);
    let nl = Netlink::open()?;
    let named = match &cfg.nic {
        Some(name) => nl.link_by_name(name)?,
        None => None,
    };
    // A link-local address on another link is another address.
    let found: Vec<(IfAddr, String)> =
        nl.holders_of(cfg.ip)?.into_iter().filter(|(a, _)| !link_scoped(cfg.ip) || named.as_ref().is_some_and(|l| l.index == a.index)).collect();
    let link = match (&cfg.nic, named) {
        (Some(_), Some(l)) => l,
        (Some(name), None) => {
            if let Some((_, other)) = found.first() {
                return Err(OcfError::generic(format!("{} is on {other}, and nic {name} does not exist", cfg.ip)));
            }
            if probe {
                return Ok(OcfRc::NotRunning);
            }
            return Err(OcfError::generic(format!("interface {name} is gone")));
        }
        (None, _) => {
            // Without nic, the address is wherever it is (start chose by route).
            let Some((a, name)) = found.first() else { return Ok(OcfRc::NotRunning) };
            match nl.link_by_index(a.index)? {
                Some(l) => l,
                None => return Err(OcfError::generic(format!("{} is on {name}, which vanished while it was checked", cfg.ip))),
            }
        }
    };
    let Some(addr) = found.iter().map(|(a, _)| a).find(|a| a.index == link.index) else {
        if let Some((_, other)) = found.first() {
            return Err(OcfError::generic(format!("{} is on {other}, not on nic {}", cfg.ip, link.name)));
        }
        return Ok(OcfRc::NotRunning);
    };
    if let Some(p) = cfg.prefix {
        if addr.prefix != p {
            return Err(OcfError::generic(format!("{} is on {} with prefix /{}, expected /{p}", cfg.ip, link.name, addr.prefix)));
        }
    }
    if addr.dad_failed() {
        return Err(OcfError::generic(format!("{} failed duplicate address detection on {}: another host uses it", cfg.ip, link.name)));
    }
    if !link.admin_up {
        return Err(OcfError::generic(format!("interface {} is down", link.name)));
    }
    if !link.carrier && (cfg.check_link_status || env.check_level() >= 10) {
        return Err(OcfError::generic(format!("interface {} has no carrier", link.name)));
    }
    if !probe && cfg.arp_count_refresh > 0 && cfg.ip.is_ipv4() {
        announce(&cfg, &link, cfg.arp_count_refresh, false);
    }
    Ok(OcfRc::Success)
}

/// validate-all: the configuration, and whether it can be placed on this node.
pub fn validate_all(env: &OcfEnv) -> OcfResult {
    let cfg = Config::from_env(env)?;
    let nl = Netlink::open()?;
    place(&nl, &cfg).map_err(Unplaceable::into_error)?;
    Ok(OcfRc::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> OcfEnv {
        OcfEnv::from_pairs(pairs.iter().map(|(k, v)| {
            let key = if k.starts_with("OCF_") { k.to_string() } else { format!("OCF_RESKEY_{k}") };
            (key, v.to_string())
        }))
    }

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, OcfError> {
        Config::from_env(&env(pairs))
    }

    #[test]
    fn minimal_ipv4() {
        let c = cfg(&[("ip", "192.0.2.10")]).unwrap();
        assert_eq!(c.ip, "192.0.2.10".parse::<IpAddr>().unwrap());
        assert_eq!(c.prefix, None);
        assert_eq!(c.arp_count, 5);
        assert_eq!(c.arp_interval, Duration::from_millis(200));
        assert!(c.arp_bg);
        assert!(c.check_link_status);
        assert_eq!(c.broadcast, Broadcast::Computed);
    }

    #[test]
    fn full_ipv6() {
        let c = cfg(&[("ip", "2001:db8::10"), ("cidr_netmask", "64"), ("nic", "eth0"), ("nodad", "true"), ("preferred_lft", "0"), ("noprefixroute", "yes")])
            .unwrap();
        assert_eq!(c.prefix, Some(64));
        assert!(c.nodad && c.noprefixroute && !c.arp_bg);
        assert_eq!(c.preferred_lft, Some(0));
    }

    #[test]
    fn dotted_netmask_and_labels() {
        let c = cfg(&[("ip", "192.0.2.10"), ("cidr_netmask", "255.255.255.0"), ("nic", "eth0:vip")]).unwrap();
        assert_eq!(c.prefix, Some(24));
        assert_eq!(c.nic.as_deref(), Some("eth0"));
        assert_eq!(c.iflabel.as_deref(), Some("vip"));
        let c = cfg(&[("ip", "192.0.2.10"), ("broadcast", "192.0.2.255"), ("iflabel", "x")]).unwrap();
        assert_eq!(c.broadcast, Broadcast::Addr(Ipv4Addr::new(192, 0, 2, 255)));
        assert_eq!(cfg(&[("ip", "192.0.2.10"), ("broadcast", "-")]).unwrap().broadcast, Broadcast::None);
    }

    /// Every invalid combination we could think of → OCF_ERR_CONFIGURED, never a panic.
    #[test]
    fn bad_input_matrix() {
        let cases: &[&[(&str, &str)]] = &[
            &[],
            &[("ip", "")],
            &[("ip", "not-an-ip")],
            &[("ip", "192.0.2.300")],
            &[("ip", "192.0.2.1/24")],
            &[("ip", "0.0.0.0")],
            &[("ip", "255.255.255.255")],
            &[("ip", "224.0.0.1")],
            &[("ip", "::")],
            &[("ip", "ff02::1")],
            &[("ip", "fe80::1")],
            &[("ip", "192.0.2.1"), ("cidr_netmask", "0")],
            &[("ip", "192.0.2.1"), ("cidr_netmask", "33")],
            &[("ip", "192.0.2.1"), ("cidr_netmask", "-1")],
            &[("ip", "192.0.2.1"), ("cidr_netmask", "abc")],
            &[("ip", "192.0.2.1"), ("cidr_netmask", "255.0.255.0")],
            &[("ip", "192.0.2.1"), ("cidr_netmask", "0.0.0.0")],
            &[("ip", "2001:db8::1"), ("cidr_netmask", "129")],
            &[("ip", "2001:db8::1"), ("cidr_netmask", "255.255.255.0")],
            &[("ip", "192.0.2.1"), ("nic", "eth/0")],
            &[("ip", "192.0.2.1"), ("nic", "averyveryverylongname0")],
            &[("ip", "192.0.2.1"), ("nic", "eth 0")],
            &[("ip", "192.0.2.1"), ("nic", "eth0"), ("iflabel", "waytoolonglabel")],
            &[("ip", "192.0.2.1"), ("iflabel", "a b")],
            &[("ip", "192.0.2.1"), ("broadcast", "nope")],
            &[("ip", "192.0.2.1"), ("arp_count", "-1")],
            &[("ip", "192.0.2.1"), ("arp_count", "many")],
            &[("ip", "192.0.2.1"), ("arp_count", "1001")],
            &[("ip", "192.0.2.1"), ("arp_interval", "-5")],
            &[("ip", "192.0.2.1"), ("arp_interval", "99999999999999999999")],
            &[("ip", "192.0.2.1"), ("arp_count_refresh", "x")],
            &[("ip", "192.0.2.1"), ("arp_bg", "sometimes")],
            &[("ip", "2001:db8::1"), ("preferred_lft", "-1")],
            &[("ip", "2001:db8::1"), ("preferred_lft", "later")],
            &[("ip", "192.0.2.1"), ("nodad", "perhaps")],
            &[("ip", "192.0.2.1"), ("noprefixroute", "2")],
            &[("ip", "192.0.2.1"), ("check_link_status", "dunno")],
            &[("ip", "192.0.2.1"), ("lvs_support", "true")],
            &[("ip", "192.0.2.1"), ("lvs_ipv6_addrlabel", "1")],
            &[("ip", "192.0.2.1"), ("unique_clone_address", "yes")],
            &[("ip", "192.0.2.1"), ("run_arping", "true")],
            &[("ip", "192.0.2.1"), ("network_namespace", "blue")],
            &[("ip", "192.0.2.1"), ("OCF_RESKEY_CRM_meta_clone_max", "2")],
        ];
        for case in cases {
            match cfg(case) {
                Err(e) => assert_eq!(e.rc, OcfRc::ErrConfigured, "{case:?}: {e}"),
                Ok(c) => panic!("{case:?} accepted: {c:?}"),
            }
        }
    }

    #[test]
    fn compatible_leftovers_are_accepted() {
        let c = cfg(&[
            ("ip", "192.0.2.1"),
            ("arp_sender", "send_arp"),
            ("send_arp_opts", "-A"),
            ("flush_routes", "true"),
            ("lvs_support", "false"),
            ("clusterip_hash", "sourceip"),
            ("OCF_RESKEY_CRM_meta_clone_max", "1"),
        ]);
        assert!(c.is_ok(), "{c:?}");
    }

    #[test]
    fn unknown_action_is_unimplemented() {
        let a = Action { name: "promote", env: &env(&[("ip", "192.0.2.1")]) };
        assert!(dispatch(&a).is_none());
    }

    #[test]
    fn metadata_lists_every_parameter_and_action() {
        let xml = SPEC.metadata_xml();
        for p in PARAMS {
            assert!(xml.contains(&format!("<parameter name=\"{}\"", p.name)), "{}", p.name);
        }
        for a in ["start", "stop", "monitor", "meta-data", "validate-all"] {
            assert!(xml.contains(&format!("<action name=\"{a}\"")), "{a}");
        }
        assert!(xml.contains("<parameter name=\"ip\" unique=\"1\" required=\"1\">"));
    }

    #[test]
    fn config_reads_only_declared_parameters() {
        // Params::str debug-asserts that a name is in the table; building a config with
        // every parameter set exercises every lookup.
        let all: Vec<(String, String)> = PARAMS
            .iter()
            .filter(|p| p.support == Support::Full)
            .map(|p| {
                (
                    format!("OCF_RESKEY_{}", p.name),
                    match p.name {
                        "ip" => "192.0.2.1".into(),
                        "cidr_netmask" => "24".into(),
                        "nic" => "eth0".into(),
                        "broadcast" => "+".into(),
                        "iflabel" => "l".into(),
                        "arp_bg" => "false".into(),
                        "preferred_lft" => "forever".into(),
                        _ => p.default.unwrap_or("1").into(),
                    },
                )
            })
            .collect();
        assert!(Config::from_env(&OcfEnv::from_pairs(all)).is_ok());
    }

    #[test]
    fn docs_show_the_parameter_table() {
        assert_eq!(crate::ocf::params::docs_block("IPaddr2").unwrap(), SPEC.markdown_table(), "regenerate with `paceline params IPaddr2`");
    }
}
