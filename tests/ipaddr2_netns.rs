//! ocf:paceline:IPaddr2 against the real kernel, in network namespaces made per test:
//! start/monitor/stop cycles, idempotency, IPv6 with DAD, announcements seen on the peer,
//! link failures, ocf-tester, logging. Needs root (CI runs as root); skips otherwise.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{agent_in, must, Pair, Run};

/// ocf:paceline:IPaddr2 of this build.
fn agent() -> String {
    common::agent("IPaddr2")
}

fn run(p: &Pair, action: &str, env: &[(&str, &str)]) -> Run {
    agent_in(&p.a, &agent(), action, env)
}

const RECURRING: (&str, &str) = ("CRM_meta_interval", "10000");

fn with<'a>(base: &[(&'a str, &'a str)], extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut v = base.to_vec();
    v.extend_from_slice(extra);
    v
}

fn recurring<'a>(base: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    with(base, &[("OCF_RESKEY_CRM_meta_interval", RECURRING.1)])
}

#[test]
fn ipv4_start_monitor_stop_cycles() {
    require_root!();
    let p = Pair::new("v4");
    let vip = [("ip", "192.0.2.50"), ("cidr_netmask", "24"), ("nic", "eth0")];
    assert_eq!(run(&p, "monitor", &vip).rc, 7, "probe before start");
    for cycle in 0..3 {
        let r = run(&p, "start", &vip);
        assert_eq!(r.rc, 0, "cycle {cycle} start: {r:?}");
        assert!(p.addrs().contains("inet 192.0.2.50/24 brd 192.0.2.255"), "{}", p.addrs());
        assert_eq!(run(&p, "monitor", &recurring(&vip)).rc, 0);
        assert_eq!(run(&p, "monitor", &vip).rc, 0, "probe while running");
        assert_eq!(run(&p, "start", &vip).rc, 0, "second start is a no-op");
        assert_eq!(p.addrs().matches("192.0.2.50/").count(), 1, "added once");
        assert_eq!(run(&p, "stop", &vip).rc, 0);
        assert!(!p.addrs().contains("192.0.2.50/"));
        assert_eq!(run(&p, "stop", &vip).rc, 0, "second stop is a no-op");
        assert_eq!(run(&p, "monitor", &recurring(&vip)).rc, 7);
    }
}

#[test]
fn ipv4_without_nic_or_netmask_uses_the_connected_route() {
    require_root!();
    let p = Pair::new("findif");
    let vip = [("ip", "192.0.2.60")];
    assert_eq!(run(&p, "validate-all", &vip).rc, 0);
    assert_eq!(run(&p, "start", &vip).rc, 0);
    assert!(p.addrs().contains("inet 192.0.2.60/24"), "{}", p.addrs());
    assert_eq!(run(&p, "monitor", &recurring(&vip)).rc, 0);
    assert_eq!(run(&p, "stop", &vip).rc, 0);
    assert!(!p.addrs().contains("192.0.2.60/"));
    // No route covers this address and nothing says where it goes.
    let lost = [("ip", "198.51.100.7")];
    // As heartbeat's findif: OCF_ERR_GENERIC (1) from validate-all and start alike.
    let r = run(&p, "validate-all", &lost);
    assert_eq!(r.rc, 1, "{r:?}");
    assert!(r.stderr.contains("ocf-exit-reason:no interface has a connected route covering 198.51.100.7"), "{}", r.stderr);
    assert_eq!(run(&p, "start", &lost).rc, 1, "start: not placeable on this node");
    assert_eq!(run(&p, "monitor", &lost).rc, 7);
    assert_eq!(run(&p, "stop", &lost).rc, 0);
}

#[test]
fn a_netmask_wider_than_the_subnet_is_refused_without_nic() {
    require_root!();
    let p = Pair::new("wide");
    // eth0 holds 192.0.2.1/24 and 2001:db8::1/64.
    for (ip, wide, narrow) in [("192.0.2.70", "23", "25"), ("2001:db8::70", "48", "80")] {
        let wider = [("ip", ip), ("cidr_netmask", wide)];
        let r = run(&p, "start", &wider);
        assert_eq!(r.rc, 1, "{ip}/{wide}: {r:?}");
        assert!(r.stderr.contains("ocf-exit-reason:no connected subnet holds"), "{}", r.stderr);
        assert!(!p.addrs().contains(&format!("{ip}/")), "nothing installed: {}", p.addrs());
        assert_eq!(run(&p, "validate-all", &wider).rc, 1);
        // Narrower than the subnet is fine, and so is a wider one on a named interface.
        let narrower = [("ip", ip), ("cidr_netmask", narrow), ("nodad", "true")];
        assert_eq!(run(&p, "start", &narrower).rc, 0, "{ip}/{narrow}");
        assert!(p.addrs().contains(&format!("{ip}/{narrow}")), "{}", p.addrs());
        assert_eq!(run(&p, "stop", &narrower).rc, 0);
        let forced = [("ip", ip), ("cidr_netmask", wide), ("nic", "eth0"), ("nodad", "true")];
        assert_eq!(run(&p, "start", &forced).rc, 0, "{ip}/{wide} on eth0");
        assert_eq!(run(&p, "stop", &forced).rc, 0);
    }
    // A named interface this node does not have: OCF_ERR_INSTALLED, whichever action.
    let missing = [("ip", "192.0.2.71"), ("cidr_netmask", "24"), ("nic", "eth7")];
    assert_eq!(run(&p, "start", &missing).rc, 5);
    assert_eq!(run(&p, "validate-all", &missing).rc, 5);
}

#[test]
fn label_broadcast_and_dotted_netmask() {
    require_root!();
    let p = Pair::new("label");
    let vip = [("ip", "192.0.2.70"), ("cidr_netmask", "255.255.255.0"), ("nic", "eth0"), ("iflabel", "vip"), ("broadcast", "-")];
    assert_eq!(run(&p, "start", &vip).rc, 0);
    let a = p.addrs();
    let line = a.lines().find(|l| l.contains("192.0.2.70/24")).unwrap_or_else(|| panic!("{a}"));
    assert!(line.contains("eth0:vip"), "{line}");
    assert!(!line.contains("brd"), "{line}");
    assert_eq!(run(&p, "stop", &vip).rc, 0);
}

#[test]
fn ipv6_with_and_without_dad() {
    require_root!();
    let p = Pair::new("v6");
    let vip = [("ip", "2001:db8::50"), ("cidr_netmask", "64"), ("nic", "eth0")];
    assert_eq!(run(&p, "monitor", &vip).rc, 7);
    let r = run(&p, "start", &vip);
    assert_eq!(r.rc, 0, "{r:?}");
    let a = p.addrs();
    let line = a.lines().find(|l| l.contains("2001:db8::50/64")).unwrap_or_else(|| panic!("{a}"));
    assert!(!line.contains("tentative"), "start returns after DAD: {line}");
    assert_eq!(run(&p, "monitor", &recurring(&vip)).rc, 0);
    assert_eq!(run(&p, "start", &vip).rc, 0);
    assert_eq!(run(&p, "stop", &vip).rc, 0);
    assert_eq!(run(&p, "stop", &vip).rc, 0);
    assert!(!p.addrs().contains("2001:db8::50/"));

    let fast = with(&vip, &[("nodad", "true"), ("preferred_lft", "0")]);
    assert_eq!(run(&p, "start", &fast).rc, 0);
    let a = p.addrs();
    let line = a.lines().find(|l| l.contains("2001:db8::50/64")).unwrap_or_else(|| panic!("{a}"));
    assert!(line.contains("nodad") && line.contains("deprecated"), "{line}");
    assert_eq!(run(&p, "stop", &fast).rc, 0);

    // Without nic: found through the prefix route of 2001:db8::1/64.
    let bare = [("ip", "2001:db8::51")];
    assert_eq!(run(&p, "start", &bare).rc, 0);
    assert!(p.addrs().contains("2001:db8::51/64"), "{}", p.addrs());
    assert_eq!(run(&p, "stop", &bare).rc, 0);
}

#[test]
fn ipv6_duplicate_address_fails_start() {
    require_root!();
    let p = Pair::new("dad");
    // The peer already owns the address: DAD on our side must fail.
    must(&format!("ip -n {} addr add 2001:db8::99/64 dev eth0 nodad", p.b));
    let vip = [("ip", "2001:db8::99"), ("cidr_netmask", "64"), ("nic", "eth0")];
    let r = run(&p, "start", &vip);
    assert_eq!(r.rc, 1, "{r:?}");
    assert!(r.stderr.contains("ocf-exit-reason:duplicate address detection failed"), "{}", r.stderr);
    assert!(!p.addrs().contains("2001:db8::99/"), "failed address removed: {}", p.addrs());
}

/// Start tcpdump on the peer; returns the receiver of its output lines once it listens.
fn capture(p: &Pair, filter: &str, count: usize) -> (std::process::Child, mpsc::Receiver<String>) {
    let mut child = Command::new("ip")
        .args(["netns", "exec", &p.b, "tcpdump", "-i", "eth0", "-t", "-nn", "-e", "-l", "-vv", "-c", &count.to_string()])
        .arg(filter)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tcpdump");
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    let tx2 = tx.clone();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx2.send(l);
        }
    });
    let err = child.stderr.take().unwrap();
    let (ready_tx, ready_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(err).lines().map_while(Result::ok) {
            if l.contains("listening on") {
                let _ = ready_tx.send(());
            }
        }
    });
    ready_rx.recv_timeout(Duration::from_secs(10)).expect("tcpdump did not start");
    drop(tx);
    (child, rx)
}

/// Collect tcpdump's output until it has seen its `-c` packets and exits, or `wait` passes;
/// then stop it (our own child). Continuation lines (-vv) are joined to their packet.
fn collect(mut child: std::process::Child, rx: mpsc::Receiver<String>, wait: Duration) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let deadline = std::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) if l.starts_with(char::is_whitespace) && !lines.is_empty() => {
                let last = lines.len() - 1;
                lines[last].push_str(&l);
            }
            Ok(l) => lines.push(l),
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    lines
}

#[test]
fn gratuitous_arp_is_seen_on_the_peer() {
    require_root!();
    let p = Pair::new("garp");
    let mac = p.mac(&p.a);
    // The peer believes the address is at another node's MAC, as after a failover; Linux
    // updates an existing entry from gratuitous ARP (it does not create one unless arp_accept).
    must(&format!("ip netns exec {} sysctl -qw net.ipv4.neigh.eth0.locktime=0", p.b));
    for bg in ["false", "true"] {
        must(&format!("ip -n {} neigh replace 192.0.2.80 lladdr 02:00:00:00:00:99 dev eth0 nud stale", p.b));
        let vip = [("ip", "192.0.2.80"), ("cidr_netmask", "24"), ("nic", "eth0"), ("arp_count", "3"), ("arp_interval", "100"), ("arp_bg", bg)];
        let (child, rx) = capture(&p, "arp and host 192.0.2.80", 6);
        assert_eq!(run(&p, "start", &vip).rc, 0);
        let lines = collect(child, rx, Duration::from_secs(5));
        assert_eq!(lines.len(), 6, "arp_bg={bg}: 3 rounds of request+reply: {lines:#?}");
        let requests = lines.iter().filter(|l| l.contains("Request who-has 192.0.2.80 tell 192.0.2.80")).count();
        let replies = lines.iter().filter(|l| l.contains(&format!("Reply 192.0.2.80 is-at {mac}"))).count();
        assert_eq!((requests, replies), (3, 3), "{lines:#?}");
        for l in &lines {
            assert!(l.starts_with(&mac) || l.contains(&format!(" {mac} > ff:ff:ff:ff:ff:ff")), "sender MAC {mac}: {l}");
            assert!(l.contains("ff:ff:ff:ff:ff:ff"), "broadcast: {l}");
        }
        // The peer's neighbour table now points at us, from the announcement alone.
        let neigh = must(&format!("ip -n {} neigh show 192.0.2.80", p.b));
        assert!(neigh.contains(&mac), "{neigh}");
        assert_eq!(run(&p, "stop", &vip).rc, 0);
    }
}

#[test]
fn arp_refresh_on_monitor() {
    require_root!();
    let p = Pair::new("refresh");
    let vip = [("ip", "192.0.2.81"), ("cidr_netmask", "24"), ("nic", "eth0"), ("arp_count", "0"), ("arp_count_refresh", "1")];
    assert_eq!(run(&p, "start", &vip).rc, 0);
    let (child, rx) = capture(&p, "arp and host 192.0.2.81", 2);
    assert_eq!(run(&p, "monitor", &recurring(&vip)).rc, 0);
    let lines = collect(child, rx, Duration::from_secs(5));
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert_eq!(run(&p, "stop", &vip).rc, 0);
}

#[test]
fn unsolicited_neighbour_advertisement_is_seen_on_the_peer() {
    require_root!();
    let p = Pair::new("una");
    let mac = p.mac(&p.a);
    let vip = [("ip", "2001:db8::80"), ("cidr_netmask", "64"), ("nic", "eth0"), ("nodad", "true"), ("arp_count", "2"), ("arp_interval", "100")];
    let (child, rx) = capture(&p, "icmp6 and ip6[40] == 136", 2);
    assert_eq!(run(&p, "start", &vip).rc, 0);
    let lines = collect(child, rx, Duration::from_secs(5));
    let text = lines.join("\n");
    assert_eq!(lines.iter().filter(|l| l.starts_with(&mac)).count(), 2, "2 NAs from {mac}: {text}");
    assert!(text.contains("neighbor advertisement, length 32, tgt is 2001:db8::80"), "{text}");
    assert!(text.contains("Flags [override]"), "{text}");
    assert!(text.contains(&format!("destination link-address option (2), length 8 (1): {mac}")), "{text}");
    assert!(text.contains("ff02::1"), "{text}");
    assert!(text.contains("hlim 255"), "{text}");
    assert_eq!(run(&p, "stop", &vip).rc, 0);
}

#[test]
fn link_failures_are_errors_not_stopped() {
    require_root!();
    let p = Pair::new("link");
    let vip = [("ip", "192.0.2.90"), ("cidr_netmask", "24"), ("nic", "eth0")];
    assert_eq!(run(&p, "start", &vip).rc, 0);
    // Peer down: no carrier here.
    must(&format!("ip -n {} link set eth0 down", p.b));
    std::thread::sleep(Duration::from_millis(200));
    let r = run(&p, "monitor", &recurring(&vip));
    assert_eq!(r.rc, 1, "{r:?}");
    assert!(r.stderr.contains("has no carrier"), "{}", r.stderr);
    let relaxed = with(&vip, &[("check_link_status", "false")]);
    assert_eq!(run(&p, "monitor", &recurring(&relaxed)).rc, 0);
    let deep = with(&relaxed, &[("OCF_CHECK_LEVEL", "10")]);
    assert_eq!(run(&p, "monitor", &recurring(&deep)).rc, 1, "depth 10 checks the carrier anyway");
    must(&format!("ip -n {} link set eth0 up", p.b));
    // Administratively down here: the address stays, but it serves nothing.
    must(&format!("ip -n {} link set eth0 down", p.a));
    let r = run(&p, "monitor", &recurring(&vip));
    assert_eq!(r.rc, 1, "{r:?}");
    assert!(r.stderr.contains("interface eth0 is down"), "{}", r.stderr);
    // start brings the interface back up.
    assert_eq!(run(&p, "start", &vip).rc, 0);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(run(&p, "monitor", &recurring(&vip)).rc, 0);
    // Wrong prefix on the interface is not "ours".
    assert_eq!(run(&p, "monitor", &recurring(&[("ip", "192.0.2.90"), ("cidr_netmask", "25"), ("nic", "eth0")])).rc, 1);
    // The interface disappears: the probe says stopped, the recurring monitor fails.
    must(&format!("ip -n {} link del eth0", p.a));
    assert_eq!(run(&p, "monitor", &vip).rc, 7);
    let r = run(&p, "monitor", &recurring(&vip));
    assert_eq!(r.rc, 1, "{r:?}");
    assert!(r.stderr.contains("interface eth0 is gone"), "{}", r.stderr);
    assert_eq!(run(&p, "stop", &vip).rc, 0, "stop with the interface gone");
    let r = run(&p, "start", &vip);
    assert_eq!(r.rc, 5, "start where the interface does not exist: {r:?}");
    assert_eq!(run(&p, "validate-all", &vip).rc, 5, "the same fault, the same code");
}

/// The address on another interface of this node than `nic` (put there by hand, or left by
/// an older configuration) is never "stopped": monitor fails naming both interfaces, stop
/// removes it from every interface and only then says stopped. An IPv6 link-local address
/// on another link is another address, and is left alone.
#[test]
fn an_address_on_another_interface_is_never_reported_stopped() {
    require_root!();
    let p = Pair::new("other");
    must(&format!("ip -n {0} link add eth1 type veth peer name eth1p && ip -n {0} link set eth1 up && ip -n {0} link set eth1p up", p.a));
    let all = || must(&format!("ip -n {} -o addr show", p.a));
    let on = |dev: &str, ip: &str| all().lines().any(|l| l.split_whitespace().nth(1) == Some(dev) && l.contains(&format!(" {ip}/")));
    for (ip, prefix) in [("192.0.2.120", "24"), ("2001:db8::120", "64")] {
        must(&format!("ip -n {} addr add {ip}/{prefix} dev eth1 nodad", p.a));
        let vip = [("ip", ip), ("cidr_netmask", prefix), ("nic", "eth0"), ("nodad", "true")];
        for env in [vip.to_vec(), recurring(&vip)] {
            let r = run(&p, "monitor", &env);
            assert_eq!(r.rc, 1, "{ip} on eth1 only: {r:?}");
            assert!(r.stderr.contains(&format!("ocf-exit-reason:{ip} is on eth1, not on nic eth0")), "{}", r.stderr);
        }
        // On both: ours is on eth0, so monitor is content; stop removes both.
        assert_eq!(run(&p, "start", &vip).rc, 0);
        assert!(on("eth0", ip) && on("eth1", ip), "{}", all());
        assert_eq!(run(&p, "monitor", &recurring(&vip)).rc, 0);
        let r = run(&p, "stop", &vip);
        assert_eq!(r.rc, 0, "{r:?}");
        assert!(!on("eth0", ip) && !on("eth1", ip), "stop left the address: {}", all());
        assert_eq!(run(&p, "monitor", &vip).rc, 7, "gone from every interface: stopped");
        // On eth1 only: stop removes it there too.
        must(&format!("ip -n {} addr add {ip}/{prefix} dev eth1 nodad", p.a));
        assert_eq!(run(&p, "stop", &vip).rc, 0);
        assert!(!on("eth1", ip), "{}", all());
        // nic names an interface this node lacks while another holds the address.
        must(&format!("ip -n {} addr add {ip}/{prefix} dev eth1 nodad", p.a));
        let elsewhere = [("ip", ip), ("cidr_netmask", prefix), ("nic", "eth7")];
        let r = run(&p, "monitor", &elsewhere);
        assert_eq!(r.rc, 1, "probe, nic missing, address on eth1: {r:?}");
        assert!(r.stderr.contains(&format!("ocf-exit-reason:{ip} is on eth1, and nic eth7 does not exist")), "{}", r.stderr);
        assert_eq!(run(&p, "stop", &elsewhere).rc, 0);
        assert!(!on("eth1", ip), "{}", all());
        assert_eq!(run(&p, "monitor", &elsewhere).rc, 7);
    }
    // Without nic: wherever it is, it is ours; stop still removes every copy.
    must(&format!("ip -n {0} addr add 192.0.2.121/24 dev eth1 && ip -n {0} addr add 192.0.2.121/24 dev eth0", p.a));
    assert_eq!(run(&p, "monitor", &recurring(&[("ip", "192.0.2.121")])).rc, 0);
    assert_eq!(run(&p, "stop", &[("ip", "192.0.2.121")]).rc, 0);
    assert!(!all().contains(" 192.0.2.121/"), "{}", all());
    // Link-local: eth1's fe80::120 is not eth0's.
    must(&format!("ip -n {} addr add fe80::120/64 dev eth1 nodad", p.a));
    let ll = [("ip", "fe80::120"), ("cidr_netmask", "64"), ("nic", "eth0")];
    assert_eq!(run(&p, "monitor", &ll).rc, 7);
    assert_eq!(run(&p, "stop", &ll).rc, 0);
    assert!(on("eth1", "fe80::120"), "stop removed another link's link-local address: {}", all());
}

#[test]
fn entry_point_codes() {
    require_root!();
    let p = Pair::new("codes");
    assert_eq!(run(&p, "start", &[]).rc, 6, "ip missing");
    assert_eq!(run(&p, "monitor", &[("ip", "nonsense")]).rc, 6);
    let r = run(&p, "frobnicate", &[("ip", "192.0.2.5")]);
    assert_eq!(r.rc, 3);
    assert!(r.stderr.contains("ocf-exit-reason:action 'frobnicate' is not implemented"), "{}", r.stderr);
    let out = Command::new(agent()).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "no action");
    // start/stop as an unprivileged user: OCF_ERR_PERM, and nothing touched.
    let vip = "OCF_RESKEY_ip=192.0.2.5 OCF_RESKEY_nic=eth0 OCF_RESKEY_cidr_netmask=24 HA_LOGFACILITY=none";
    let agent = agent();
    let o = common::sh(&format!("ip netns exec {} setpriv --reuid=65534 --regid=65534 --clear-groups env {vip} {agent} start", p.a));
    assert_eq!(o.status.code(), Some(4), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!p.addrs().contains("192.0.2.5/"));
    // meta-data works for anyone, without parameters.
    let o = common::sh(&format!("setpriv --reuid=65534 --regid=65534 --clear-groups env -i {agent} meta-data"));
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn metadata_validates_against_the_resource_agents_schema() {
    if Command::new("xmllint").arg("--version").output().is_err() {
        eprintln!("skipped: xmllint missing");
        return;
    }
    let dir = std::env::temp_dir().join(format!("paceline-md-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("IPaddr2.xml");
    let out = Command::new(agent()).arg("meta-data").output().unwrap();
    assert!(out.status.success());
    std::fs::write(&file, &out.stdout).unwrap();
    for args in [vec!["--relaxng", "/usr/share/resource-agents/metadata.rng"], vec!["--dtdvalid", "/usr/share/resource-agents/ra-api-1.dtd"]] {
        let o = Command::new("xmllint").arg("--noout").args(&args).arg(&file).output().unwrap();
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn ocf_tester_passes() {
    require_root!();
    if Command::new("sh").args(["-c", "command -v ocf-tester"]).output().map(|o| !o.status.success()).unwrap_or(true) {
        eprintln!("skipped: ocf-tester missing");
        return;
    }
    let p = Pair::new("tester");
    for opts in [vec!["ip=192.0.2.100", "cidr_netmask=24"], vec!["ip=2001:db8::100", "cidr_netmask=64", "nic=eth0"], vec!["ip=127.0.0.2", "nic=lo"]] {
        let o_args: Vec<String> = opts.iter().map(|o| format!("-o {o}")).collect();
        let agent = agent();
        let o = common::sh(&format!("ip netns exec {} ocf-tester -n vip {} {agent} 2>&1", p.a, o_args.join(" ")));
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success() && text.contains("passed all tests"), "{opts:?}:\n{text}");
    }
    assert!(!p.addrs().contains("192.0.2.100/"));
}

#[test]
fn logs_go_where_ocf_log_puts_them() {
    require_root!();
    let p = Pair::new("log");
    let dir = std::env::temp_dir().join(format!("paceline-log-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("ha.log");
    let debug = dir.join("ha-debug.log");
    let (log_s, debug_s) = (log.to_str().unwrap(), debug.to_str().unwrap());
    let vip = [("ip", "192.0.2.110"), ("cidr_netmask", "24"), ("nic", "eth0"), ("HA_LOGFILE", log_s)];
    assert_eq!(run(&p, "start", &vip).rc, 0);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("IPaddr2(vip)["), "{text}");
    assert!(text.contains("INFO: added 192.0.2.110/24 to eth0"), "{text}");
    assert!(!text.contains("DEBUG:"), "no debug unless asked: {text}");
    let dbg = with(&vip, &[("HA_debug", "1"), ("HA_DEBUGLOG", debug_s)]);
    assert_eq!(run(&p, "monitor", &recurring(&dbg)).rc, 0);
    let text = std::fs::read_to_string(&debug).unwrap();
    assert!(text.contains("DEBUG: monitor returned OCF_SUCCESS"), "{text}");
    // A failure is logged as ERROR and handed to Pacemaker as the exit reason.
    let r = run(&p, "start", &[("ip", "192.0.2.111"), ("nic", "eth7"), ("HA_LOGFILE", log_s)]);
    assert_eq!(r.rc, 5);
    assert!(r.stderr.contains("ocf-exit-reason:interface eth7 does not exist on this node"), "{}", r.stderr);
    assert!(std::fs::read_to_string(&log).unwrap().contains("ERROR: interface eth7 does not exist"));
    assert_eq!(run(&p, "stop", &vip).rc, 0);
    // The file layout is ocf_log's own: the same line from ocf-shellfuncs, digits masked
    // (date and pid), has the same shape up to the message.
    let mask = |l: &str| l.chars().map(|c| if c.is_ascii_digit() { '0' } else { c }).collect::<String>();
    let ours = std::fs::read_to_string(&log).unwrap().lines().find(|l| l.contains("INFO: added 192.0.2.110")).map(mask).unwrap();
    let theirs_log = dir.join("ocf_log.log");
    let o = Command::new("bash")
        .args(["-c", ". /usr/lib/ocf/lib/heartbeat/ocf-shellfuncs; __SCRIPT_NAME=IPaddr2; ocf_log info 'added 192.0.2.110/24 to eth0' </dev/null"])
        .envs([("OCF_ROOT", "/usr/lib/ocf"), ("OCF_RESOURCE_INSTANCE", "vip"), ("HA_LOGFACILITY", "none"), ("HA_LOGFILE", theirs_log.to_str().unwrap())])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    if o.status.success() && theirs_log.exists() {
        let theirs = mask(std::fs::read_to_string(&theirs_log).unwrap().lines().next().unwrap_or_default());
        assert_eq!(ours, theirs, "HA_LOGFILE line layout differs from ocf_log's");
    } else {
        eprintln!("ocf-shellfuncs not runnable here: layout compared with the literal only");
    }
    assert!(ours.starts_with(&mask("Dec 01 22:02:30  IPaddr2(vip)[")) || ours.chars().nth(3) == Some(' '), "{ours}");
    // HA_DATEFMT and HA_LOGTAG are honoured, as ocf_log honours them.
    let custom = with(&vip, &[("HA_DATEFMT", "%Y-%m-%dT%T "), ("HA_LOGTAG", "pgha-vip")]);
    assert_eq!(run(&p, "stop", &custom).rc, 0);
    let last = std::fs::read_to_string(&log).unwrap().lines().last().unwrap_or_default().to_owned();
    assert_eq!(mask(&last[..30.min(last.len())]), "0000-00-00T00:00:00  pgha-vip:", "{last}");
    std::fs::remove_dir_all(&dir).unwrap();
}
