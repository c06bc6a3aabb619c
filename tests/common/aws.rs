//! A fake EC2 region and fake instances to run the AWS agents against, for real.
//!
//! * [`moto()`]: one `moto_server` per test binary (tests/aws/moto_server.py: moto's EC2,
//!   patched so that AllowReassignment moves an address and AssociateAddress keeps its
//!   private address) on 127.0.0.1 of the root namespace, on a free port. It exits when the
//!   test process does (it serves until its stdin closes).
//! * [`Cloud::new()`]: a VPC 192.0.0.0/16 with a subnet 192.0.2.0/24 of its own (tests run
//!   in parallel against the same moto, each in its own VPC). `cloud.instance("node1",
//!   "192.0.2.11")` runs an instance with that primary private IP and a `Name` tag;
//!   `cloud.client` is an `aws_sdk_ec2::Client` on moto for setup and assertions
//!   (`eni_ips`, `state`, `allocate_eip`, `address`...). Use [`block`] to await it.
//! * [`Node::new(tag, &instance)`]: a network namespace `plt-<pid>-<tag>` playing that
//!   instance. Inside it, on its own loopback only: an IMDSv2 stub on 169.254.169.254:80
//!   (token PUT, instance-id, placement/region, mac, network/interfaces/macs/..., local-ipv4;
//!   401 without a token) and the EC2 endpoint `http://127.0.0.1:5000` ([`EC2_ENDPOINT`]),
//!   an HTTP proxy to moto that can inject faults ([`Node::set_fault`], [`Node::set_fault_on`]
//!   for one EC2 action: EC2 error answers,
//!   delays, garbage, dropped connections; [`Node::requests`] counts what it saw). Both
//!   are threads of the test process whose listening sockets were created inside the
//!   namespace, so no address outside the namespace's loopback is ever used and no veth or
//!   bridge is needed. Drop deletes the namespace and stops the threads.
//! * [`Node::run(bin, args, env, stdin)`] runs a binary inside the namespace (`ip netns
//!   exec`) with a clean environment: credentials [`ACCESS_KEY`]/[`SECRET_KEY`] in
//!   `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, `AWS_ENDPOINT_URL` = the proxy, `HOME` and
//!   the AWS config files pointing at nothing; `env` adds or overrides (`name=value` pairs
//!   whose name starts with a lower-case letter become `OCF_RESKEY_<name>`; an empty value
//!   removes a variable). [`Node::agent(agent, action, env)`] does that for
//!   `target/<triple>/debug/<agent>`, plus the OCF variables.
//!
//! * [`expect`]`(&run, rc, what)`: the run's exit code, its output shown when it is not
//!   `rc`; [`leak`] makes a run-time value (an id moto chose) a `&'static str` parameter.
//!
//! Use it from a test file with `mod common; #[path = "common/aws.rs"] mod aws;` (kept out of
//! `common/mod.rs` so that the other test binaries do not link the SDK).
//!
//! Fence tests: `cloud.instance(...)` for each node, `Node::new` for the fencing node, then
//! `node.run(&bin("fence_paceline_aws"), &[], &[], Some("action=status\nplug=i-...\n"))`.

#![allow(dead_code)]

use std::future::Future;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use aws_sdk_ec2 as ec2;
use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};

pub use crate::common::Run;

pub const MOTO_PYTHON: &str = "/opt/paceline-moto/bin/python3";
pub const REGION: &str = "eu-west-1";
/// Recognisable, so tests can check they never appear in logs.
pub const ACCESS_KEY: &str = "AKIAPACELINESECRETAK";
pub const SECRET_KEY: &str = "pacelineSECRETsecretKEY0123456789abcdefXY";
/// The EC2 endpoint inside every [`Node`].
pub const EC2_ENDPOINT: &str = "http://127.0.0.1:5000";
const IMDS_ADDR: &str = "169.254.169.254:80";

/// Why the AWS tests cannot run here, if they cannot.
pub fn skip_reason() -> Option<String> {
    if !crate::common::privileged() {
        return Some("needs root and iproute2".into());
    }
    if !Path::new(MOTO_PYTHON).exists() {
        return Some(format!("{MOTO_PYTHON} missing (tests/deps.sh installs moto)"));
    }
    None
}

pub use crate::common::agent as bin;

/// The run ended with `rc` (`what` names the step); the failure shows its output.
pub fn expect(r: &Run, rc: i32, what: &str) {
    assert_eq!(r.rc, rc, "{what}: rc {} (want {rc})\nstdout: {}\nstderr: {}", r.rc, r.stdout, r.stderr);
}

/// A value made at run time (an id moto chose) as the `&'static str` the parameter
/// lists are made of; a test process lives briefly, so the leak is harmless.
pub fn leak(s: impl Into<String>) -> &'static str {
    Box::leak(s.into().into_boxed_str())
}

/// Run a future on a throw-away current-thread runtime.
pub fn block<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(f)
}

// ---------------------------------------------------------------------------------------
// moto

pub struct Moto {
    pub port: u16,
    // Keeping the child (and its stdin) alive keeps the server up; it exits with us.
    _child: Mutex<Child>,
}

impl Moto {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// The moto server of this test binary, started on first use.
pub fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(|| {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/aws/moto_server.py");
        let mut child =
            Command::new(MOTO_PYTHON).arg(script).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("start moto_server.py");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("moto port");
        let port = line.trim().strip_prefix("PORT ").and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("moto said '{line}'"));
        Moto { port, _child: Mutex::new(child) }
    })
}

// ---------------------------------------------------------------------------------------
// The fake region

/// A VPC with one subnet in moto, and an SDK client for it.
pub struct Cloud {
    pub client: ec2::Client,
    pub vpc: String,
    pub subnet: String,
}

/// An instance in moto.
#[derive(Debug, Clone)]
pub struct Instance {
    pub id: String,
    pub name: String,
    pub ip: String,
    pub eni: String,
    pub mac: String,
}

/// An SDK client on moto (root namespace).
pub fn moto_client() -> ec2::Client {
    let creds = ec2::config::Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test");
    let conf = ec2::Config::builder()
        .behavior_version(ec2::config::BehaviorVersion::latest())
        .region(ec2::config::Region::new(REGION))
        .credentials_provider(creds)
        .endpoint_url(moto().url())
        .build();
    ec2::Client::from_conf(conf)
}

impl Cloud {
    pub fn new() -> Cloud {
        let client = moto_client();
        let (vpc, subnet) = block(async {
            let vpc = client.create_vpc().cidr_block("192.0.0.0/16").send().await.expect("CreateVpc").vpc.unwrap().vpc_id.unwrap();
            let subnet =
                client.create_subnet().vpc_id(&vpc).cidr_block("192.0.2.0/24").availability_zone(format!("{REGION}a")).send().await.expect("CreateSubnet");
            (vpc, subnet.subnet.unwrap().subnet_id.unwrap())
        });
        Cloud { client, vpc, subnet }
    }

    /// Run an instance named `name` whose primary private IP is `ip`.
    pub fn instance(&self, name: &str, ip: &str) -> Instance {
        block(async {
            let image = self
                .client
                .describe_images()
                .send()
                .await
                .expect("DescribeImages")
                .images
                .unwrap_or_default()
                .into_iter()
                .find_map(|i| i.image_id)
                .expect("an AMI");
            let tags = TagSpecification::builder().resource_type(ResourceType::Instance).tags(Tag::builder().key("Name").value(name).build()).build();
            let out = self
                .client
                .run_instances()
                .image_id(image)
                .instance_type(ec2::types::InstanceType::T3Micro)
                .min_count(1)
                .max_count(1)
                .subnet_id(&self.subnet)
                .private_ip_address(ip)
                .tag_specifications(tags)
                .send()
                .await
                .expect("RunInstances");
            let inst = out.instances.unwrap().remove(0);
            let id = inst.instance_id.unwrap();
            let nic = inst.network_interfaces.unwrap_or_default().into_iter().next().expect("an ENI");
            Instance {
                id,
                name: name.into(),
                ip: ip.into(),
                eni: nic.network_interface_id.unwrap(),
                mac: nic.mac_address.unwrap_or_else(|| "02:00:00:00:00:01".into()),
            }
        })
    }

    /// Every private IP on an ENI (primary first).
    /// `n` new route tables in the VPC: their ids.
    pub fn route_tables(&self, n: usize) -> Vec<String> {
        block(async {
            let mut out = Vec::new();
            for _ in 0..n {
                out.push(
                    self.client.create_route_table().vpc_id(&self.vpc).send().await.expect("CreateRouteTable").route_table.unwrap().route_table_id.unwrap(),
                );
            }
            out
        })
    }

    pub fn eni_ips(&self, eni: &str) -> Vec<String> {
        block(async {
            let out = self.client.describe_network_interfaces().network_interface_ids(eni).send().await.expect("DescribeNetworkInterfaces");
            out.network_interfaces
                .unwrap_or_default()
                .into_iter()
                .flat_map(|n| n.private_ip_addresses.unwrap_or_default())
                .filter_map(|a| a.private_ip_address)
                .collect()
        })
    }

    /// Add a secondary private IP to an ENI directly (test setup).
    pub fn assign(&self, eni: &str, ip: &str) {
        block(async {
            self.client
                .assign_private_ip_addresses()
                .network_interface_id(eni)
                .private_ip_addresses(ip)
                .allow_reassignment(true)
                .send()
                .await
                .expect("AssignPrivateIpAddresses");
        });
    }

    /// An instance's state name (running, stopped...).
    pub fn state(&self, id: &str) -> String {
        block(async {
            let out = self.client.describe_instances().instance_ids(id).send().await.expect("DescribeInstances");
            let i = out.reservations.unwrap_or_default().into_iter().flat_map(|r| r.instances.unwrap_or_default()).next().expect("instance");
            i.state.and_then(|s| s.name).map(|n| n.as_str().to_owned()).unwrap_or_default()
        })
    }

    /// Allocate an Elastic IP: (public IP, allocation id).
    pub fn allocate_eip(&self) -> (String, String) {
        block(async {
            let out = self.client.allocate_address().domain(ec2::types::DomainType::Vpc).send().await.expect("AllocateAddress");
            (out.public_ip.unwrap(), out.allocation_id.unwrap())
        })
    }

    /// The Elastic IP with this allocation id.
    pub fn address(&self, allocation_id: &str) -> ec2::types::Address {
        block(async {
            let out = self.client.describe_addresses().allocation_ids(allocation_id).send().await.expect("DescribeAddresses");
            out.addresses.unwrap_or_default().remove(0)
        })
    }

    /// Instances of this VPC.
    pub fn instances(&self) -> Vec<ec2::types::Instance> {
        block(async {
            let f = Filter::builder().name("vpc-id").values(&self.vpc).build();
            let out = self.client.describe_instances().filters(f).send().await.expect("DescribeInstances");
            out.reservations.unwrap_or_default().into_iter().flat_map(|r| r.instances.unwrap_or_default()).collect()
        })
    }
}

// ---------------------------------------------------------------------------------------
// Fault injection

/// What the EC2 proxy of a [`Node`] does to the next requests.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultKind {
    /// Answer with an EC2 error document: HTTP `status`, `<Code>code</Code>`.
    Error { status: u16, code: String },
    /// Wait, then pass the request on (the client may have given up by then).
    Delay(Duration),
    /// HTTP 200 with a body that is not XML.
    Garbage,
    /// Close the connection without answering.
    Drop,
}

impl FaultKind {
    pub fn error(status: u16, code: &str) -> FaultKind {
        FaultKind::Error { status, code: code.into() }
    }
}

/// An IAM identity policy, enforced by a node's proxy on every EC2 request (see
/// [`Node::set_policy`]): moto enforces IAM only against the resource `*` for EC2, so it
/// cannot tell a policy limited to the cluster's instances from one that is not — a seam
/// that cannot be real here. What it evaluates, as IAM does for these calls: each resource
/// the request acts on (its ARN, from the request's parameters) needs an Allow statement
/// whose actions and resources match (`*` a wildcard); an explicit Deny wins; conditions
/// are not evaluated (the policies we ship have none).
#[derive(Debug, Clone)]
pub struct Policy {
    statements: Vec<(bool, Vec<String>, Vec<String>)>,
}

impl Policy {
    /// A policy document (JSON); panics on a malformed one.
    pub fn parse(json: &str) -> Policy {
        let doc: serde_json::Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("policy: {e}:\n{json}"));
        let list = |v: &serde_json::Value| -> Vec<String> {
            match v {
                serde_json::Value::String(s) => vec![s.clone()],
                serde_json::Value::Array(a) => a.iter().map(|x| x.as_str().expect("a string").to_owned()).collect(),
                _ => panic!("policy: not a string or a list: {v}"),
            }
        };
        let statements = doc["Statement"]
            .as_array()
            .expect("policy: Statement")
            .iter()
            .map(|st| {
                assert!(
                    st.get("Condition").is_none() && st.get("NotAction").is_none() && st.get("NotResource").is_none(),
                    "policy: unsupported element in {st}"
                );
                (st["Effect"] == "Allow", list(&st["Action"]), list(&st["Resource"]))
            })
            .collect();
        Policy { statements }
    }

    /// Every `ec2:` action the policy allows somewhere.
    pub fn actions(&self) -> Vec<String> {
        let mut a: Vec<String> = self.statements.iter().filter(|s| s.0).flat_map(|s| s.1.iter().cloned()).collect();
        a.sort();
        a.dedup();
        a
    }

    /// The same policy without `action` in any statement.
    pub fn without(&self, action: &str) -> Policy {
        let statements = self.statements.iter().map(|(allow, a, r)| (*allow, a.iter().filter(|x| *x != action).cloned().collect(), r.clone())).collect();
        Policy { statements }
    }

    fn matches(pattern: &str, value: &str) -> bool {
        // IAM's wildcards: `*` any run of characters, `?` one.
        fn m(p: &[u8], v: &[u8]) -> bool {
            match (p.first(), v.first()) {
                (None, None) => true,
                (Some(b'*'), _) => m(&p[1..], v) || (!v.is_empty() && m(p, &v[1..])),
                (Some(b'?'), Some(_)) => m(&p[1..], &v[1..]),
                (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => m(&p[1..], &v[1..]),
                _ => false,
            }
        }
        m(pattern.as_bytes(), value.as_bytes())
    }

    /// Whether `ec2:<action>` on every one of `resources` is allowed.
    pub fn allows(&self, action: &str, resources: &[String]) -> bool {
        let action = format!("ec2:{action}");
        resources.iter().all(|r| {
            let hit = |allow: bool| {
                self.statements
                    .iter()
                    .any(|(a, acts, res)| *a == allow && acts.iter().any(|p| Self::matches(p, &action)) && res.iter().any(|p| Self::matches(p, r)))
            };
            !hit(false) && hit(true)
        })
    }
}

/// moto's account, in the ARNs the policies name.
pub const ACCOUNT: &str = "123456789012";

/// The resources (ARNs) an EC2 request acts on, as IAM authorizes it: `*` for the calls
/// that have no resource-level permissions (Describe*). `form`: the decoded parameters.
fn request_resources(action: &str, form: &[(String, String)], moto_port: u16) -> Vec<String> {
    let arn = |kind: &str, id: &str| format!("arn:aws:ec2:{REGION}:{ACCOUNT}:{kind}/{id}");
    let get = |k: &str| form.iter().filter(|(n, _)| n == k || n.starts_with(&format!("{k}."))).map(|(_, v)| v.clone()).collect::<Vec<_>>();
    let mut out = Vec::new();
    match action {
        "StopInstances" | "StartInstances" => out.extend(get("InstanceId").iter().map(|i| arn("instance", i))),
        "AssignPrivateIpAddresses" | "UnassignPrivateIpAddresses" => out.extend(get("NetworkInterfaceId").iter().map(|i| arn("network-interface", i))),
        "CreateRoute" | "ReplaceRoute" | "DeleteRoute" => out.extend(get("RouteTableId").iter().map(|i| arn("route-table", i))),
        "AssociateAddress" => {
            out.extend(get("AllocationId").iter().map(|i| arn("elastic-ip", i)));
            out.extend(get("InstanceId").iter().map(|i| arn("instance", i)));
            out.extend(get("NetworkInterfaceId").iter().map(|i| arn("network-interface", i)));
        }
        "DisassociateAddress" => {
            // IAM authorizes it on the address: its allocation, asked of moto.
            for assoc in get("AssociationId") {
                let alloc = allocation_of(&assoc, moto_port).unwrap_or_else(|| "unknown".into());
                out.push(arn("elastic-ip", &alloc));
            }
        }
        _ => {}
    }
    if out.is_empty() {
        out.push("*".into());
    }
    out
}

/// The allocation id of the address associated by `association` (moto, unsigned: it checks
/// no signature).
fn allocation_of(association: &str, moto_port: u16) -> Option<String> {
    let body = format!("Action=DescribeAddresses&Version=2016-11-15&Filter.1.Name=association-id&Filter.1.Value.1={association}");
    let mut up = TcpStream::connect(("127.0.0.1", moto_port)).ok()?;
    let req = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1:{moto_port}\r\nContent-Type: application/x-www-form-urlencoded\r\nAuthorization: AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20260101/{REGION}/ec2/aws4_request, SignedHeaders=host, Signature=0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    up.write_all(req.as_bytes()).ok()?;
    let mut answer = String::new();
    up.read_to_string(&mut answer).ok()?;
    let start = answer.find("<allocationId>")? + "<allocationId>".len();
    Some(answer[start..start + answer[start..].find('<')?].to_owned())
}

/// `application/x-www-form-urlencoded` pairs, decoded.
fn form_pairs(body: &str) -> Vec<(String, String)> {
    let decode = |s: &str| {
        let b = s.replace('+', " ").into_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' && i + 2 < b.len() {
                if let Ok(v) = u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    out.push(v);
                    i += 3;
                    continue;
                }
            }
            out.push(b[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    body.split('&').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (decode(k), decode(v))).collect()
}

#[derive(Debug, Default)]
struct FaultState {
    kind: Option<FaultKind>,
    /// How many requests still get the fault (usize::MAX: all).
    left: usize,
    /// Only requests of this EC2 action (`Action=...` of the form body) get it.
    only: Option<String>,
    /// The IAM policy the requests are held to (None: everything allowed).
    policy: Option<Policy>,
}

/// Served addresses (in the namespace) and their threads' stop switch.
struct Served {
    listeners: Vec<TcpListener>,
    stop: Arc<AtomicBool>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for l in &self.listeners {
            // Wakes the accept() of the serving thread.
            unsafe { libc::shutdown(l.as_raw_fd(), libc::SHUT_RDWR) };
        }
    }
}

/// What the IMDS stub answers.
#[derive(Debug, Clone)]
pub struct ImdsData {
    pub instance_id: String,
    pub region: String,
    pub mac: String,
    pub eni: String,
    pub ip: String,
}

// ---------------------------------------------------------------------------------------
// Nodes

/// A namespace playing one instance: IMDS stub + EC2 endpoint on its loopback.
pub struct Node {
    pub ns: String,
    pub instance: Instance,
    fault: Arc<Mutex<FaultState>>,
    requests: Arc<AtomicUsize>,
    imds_log: Arc<Mutex<Vec<String>>>,
    imds_enabled: Arc<AtomicBool>,
    imds_token: Arc<AtomicUsize>,
    served: Option<Served>,
}

fn create_listener_in(ns: &str, addr: &str) -> TcpListener {
    let ns = ns.to_owned();
    let addr: SocketAddr = addr.parse().unwrap();
    std::thread::spawn(move || {
        let f = std::fs::File::open(format!("/run/netns/{ns}")).expect("netns file");
        // Only this short-lived thread changes namespace; the socket stays in it.
        let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
        TcpListener::bind(addr).unwrap_or_else(|e| panic!("bind {addr} in {ns}: {e}"))
    })
    .join()
    .expect("listener thread")
}

impl Node {
    pub fn new(tag: &str, instance: &Instance) -> Node {
        let ns = format!("plt-{}-{tag}", std::process::id());
        let _ = crate::common::sh(&format!("ip netns del {ns} 2>/dev/null"));
        crate::common::must(&format!("ip netns add {ns} && ip -n {ns} link set lo up && ip -n {ns} addr add 169.254.169.254/32 dev lo"));
        let mut node = Node {
            ns: ns.clone(),
            instance: instance.clone(),
            fault: Arc::default(),
            requests: Arc::default(),
            imds_log: Arc::default(),
            imds_enabled: Arc::new(AtomicBool::new(true)),
            imds_token: Arc::default(),
            served: None,
        };
        let stop = Arc::new(AtomicBool::new(false));
        let imds = create_listener_in(&ns, IMDS_ADDR);
        let ec2 = create_listener_in(&ns, "127.0.0.1:5000");
        let data =
            ImdsData { instance_id: instance.id.clone(), region: REGION.into(), mac: instance.mac.clone(), eni: instance.eni.clone(), ip: instance.ip.clone() };
        {
            let (l, stop, log, enabled, token) =
                (imds.try_clone().unwrap(), stop.clone(), node.imds_log.clone(), node.imds_enabled.clone(), node.imds_token.clone());
            std::thread::spawn(move || serve(l, stop, move |s| imds_conn(s, &data, &log, &enabled, &token)));
        }
        {
            let (l, stop, fault, count) = (ec2.try_clone().unwrap(), stop.clone(), node.fault.clone(), node.requests.clone());
            let port = moto().port;
            std::thread::spawn(move || serve(l, stop, move |s| proxy_conn(s, port, &fault, &count)));
        }
        node.served = Some(Served { listeners: vec![imds, ec2], stop });
        node
    }

    /// [`Node::new`] with an eth0 that IMDS knows (a veth with the instance's MAC): where
    /// aws-vpc-move-ip puts the overlay address.
    pub fn with_eth0(tag: &str, instance: &Instance) -> Node {
        let n = Node::new(tag, instance);
        crate::common::must(&format!(
            "ip -n {0} link add eth0 address {1} type veth peer name eth0p && ip -n {0} link set eth0 up && ip -n {0} link set eth0p up",
            n.ns, instance.mac
        ));
        n
    }

    /// Inject `kind` into the next `count` EC2 requests (usize::MAX: all of them).
    pub fn set_fault(&self, kind: FaultKind, count: usize) {
        *self.fault.lock().unwrap() = FaultState { kind: Some(kind), left: count, only: None, policy: None };
    }

    /// Hold every EC2 request to `policy` (None: allow everything), as IAM would hold this
    /// instance's role: a request it does not allow gets EC2's `UnauthorizedOperation`.
    pub fn set_policy(&self, policy: Option<Policy>) {
        self.fault.lock().unwrap().policy = policy;
    }

    /// Inject `kind` into the next `count` requests of EC2 action `action` only (say, an
    /// IAM policy that denies `StopInstances`); the others pass.
    pub fn set_fault_on(&self, action: &str, kind: FaultKind, count: usize) {
        *self.fault.lock().unwrap() = FaultState { kind: Some(kind), left: count, only: Some(action.to_owned()), policy: None };
    }

    pub fn clear_fault(&self) {
        *self.fault.lock().unwrap() = FaultState::default();
    }

    /// EC2 requests the proxy received so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// `METHOD path` of every IMDS request so far.
    pub fn imds_requests(&self) -> Vec<String> {
        self.imds_log.lock().unwrap().clone()
    }

    /// Make IMDS refuse connections-level service (answers nothing: connections reset).
    pub fn set_imds(&self, up: bool) {
        self.imds_enabled.store(up, Ordering::SeqCst);
    }

    /// The next IMDSv2 token handed out expires at once: the GET that uses it gets 401
    /// and the client must fetch a new token.
    pub fn expire_next_imds_token(&self) {
        self.imds_token.fetch_or(EXPIRE_NEXT, Ordering::SeqCst);
    }

    /// Run `bin args` in the namespace (see the module doc for the environment).
    pub fn run(&self, bin: &str, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Run {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns, bin]).args(args);
        cmd.env_clear();
        let base: &[(&str, &str)] = &[
            ("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            ("HOME", "/nonexistent"),
            ("AWS_CONFIG_FILE", "/nonexistent/config"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials"),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
            ("AWS_ENDPOINT_URL", EC2_ENDPOINT),
            ("HA_LOGFACILITY", "none"),
        ];
        for (k, v) in base.iter().chain(env.iter()) {
            let key = if k.starts_with(|c: char| c.is_ascii_lowercase()) { format!("OCF_RESKEY_{k}") } else { k.to_string() };
            if v.is_empty() && !key.starts_with("OCF_RESKEY_") {
                cmd.env_remove(&key);
            } else {
                cmd.env(&key, v);
            }
        }
        cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() }).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("ip netns exec");
        if let Some(input) = stdin {
            let mut w = child.stdin.take().unwrap();
            let _ = w.write_all(input.as_bytes());
        }
        let out = child.wait_with_output().expect("wait");
        Run {
            rc: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
        .checked()
    }

    /// Run OCF agent `agent` (a binary of this crate) with `action`, as Pacemaker would.
    pub fn agent(&self, agent: &str, action: &str, env: &[(&str, &str)]) -> Run {
        let mut all: Vec<(&str, &str)> = vec![("OCF_ROOT", "/usr/lib/ocf"), ("OCF_RESOURCE_INSTANCE", "vip"), ("OCF_RESKEY_CRM_meta_timeout", "20000")];
        all.extend_from_slice(env);
        self.run(&bin(agent), &[action], &all, None)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.served.take();
        let _ = crate::common::sh(&format!("ip netns del {} 2>/dev/null", self.ns));
    }
}

fn serve(listener: TcpListener, stop: Arc<AtomicBool>, handle: impl Fn(TcpStream) + Send + Sync + 'static) {
    let handle = Arc::new(handle);
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(conn) = conn else { continue };
        let h = handle.clone();
        std::thread::spawn(move || h(conn));
    }
}

/// One HTTP/1.1 request: request line, headers (raw), body.
struct Request {
    line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

fn read_request(r: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let len = headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("content-length")).and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some(Request { line: line.trim_end().to_owned(), headers, body })
}

fn respond(s: &TcpStream, status: u16, content_type: &str, body: &[u8]) {
    respond_with(s, status, content_type, "", body)
}

fn respond_with(mut s: &TcpStream, status: u16, content_type: &str, extra_headers: &str, body: &[u8]) {
    let head = format!("HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{extra_headers}Connection: close\r\n\r\n", body.len());
    let _ = s.write_all(head.as_bytes());
    let _ = s.write_all(body);
    let _ = s.flush();
}

/// The EC2 proxy: one request per connection (answers carry `Connection: close`).
fn proxy_conn(client: TcpStream, moto_port: u16, fault: &Mutex<FaultState>, count: &AtomicUsize) {
    let _ = client.set_read_timeout(Some(Duration::from_secs(30)));
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let Some(req) = read_request(&mut reader) else { return };
    count.fetch_add(1, Ordering::SeqCst);
    let form = form_pairs(&String::from_utf8_lossy(&req.body));
    let action = form.iter().find(|(k, _)| k == "Action").map(|(_, v)| v.clone()).unwrap_or_default();
    // EC2's error document, or STS's (awsQuery) for an STS action.
    let error = |code: &str, message: &str| {
        if action == "AssumeRole" {
            format!("<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>")
        } else {
            format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>00000000-0000-0000-0000-000000000000</RequestID></Response>")
        }
    };
    let injected = {
        let mut f = fault.lock().unwrap();
        if f.policy.as_ref().is_some_and(|p| action != "AssumeRole" && !p.allows(&action, &request_resources(&action, &form, moto_port))) {
            drop(f);
            let body = error("UnauthorizedOperation", &format!("You are not authorized to perform this operation (ec2:{action}; the test proxy's IAM policy)"));
            return respond(&client, 403, "text/xml", body.as_bytes());
        }
        let targeted = f.only.as_ref().is_none_or(|a| *a == action);
        if f.left > 0 && f.kind.is_some() && targeted {
            if f.left != usize::MAX {
                f.left -= 1;
            }
            f.kind.clone()
        } else {
            None
        }
    };
    match injected {
        Some(FaultKind::Error { status, code }) => {
            let body = error(&code, "injected by the test proxy");
            return respond(&client, status, "text/xml", body.as_bytes());
        }
        Some(FaultKind::Garbage) => return respond(&client, 200, "text/xml", b"\x00\x01 this is not XML }{ <<<"),
        Some(FaultKind::Drop) => {
            let _ = client.shutdown(Shutdown::Both);
            return;
        }
        Some(FaultKind::Delay(d)) => std::thread::sleep(d),
        None => {}
    }
    // Pass through to moto, one connection per request.
    let Ok(mut up) = TcpStream::connect(("127.0.0.1", moto_port)) else {
        return respond(&client, 502, "text/plain", b"moto unreachable");
    };
    let mut out = format!("{}\r\n", req.line);
    for (k, v) in &req.headers {
        if !k.eq_ignore_ascii_case("connection") {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&req.body);
    if up.write_all(&bytes).is_err() {
        return respond(&client, 502, "text/plain", b"moto write failed");
    }
    let mut answer = Vec::new();
    let _ = up.read_to_end(&mut answer);
    // Force Connection: close on the way back.
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4).unwrap_or(answer.len());
    let head = String::from_utf8_lossy(&answer[..split]).into_owned();
    let mut new_head = String::new();
    for l in head.split("\r\n").filter(|l| !l.is_empty()) {
        if !l.to_ascii_lowercase().starts_with("connection:") {
            new_head.push_str(l);
            new_head.push_str("\r\n");
        }
    }
    new_head.push_str("Connection: close\r\n\r\n");
    let mut c = &client;
    let _ = c.write_all(new_head.as_bytes());
    let _ = c.write_all(&answer[split..]);
    let _ = c.flush();
}

const EXPIRE_NEXT: usize = 1 << 40;

/// Tokens are `paceline-test-imds-token-<generation>`; only the current generation is valid.
fn imds_conn(s: TcpStream, d: &ImdsData, log: &Mutex<Vec<String>>, enabled: &AtomicBool, generation: &AtomicUsize) {
    let token = format!("paceline-test-imds-token-{}", generation.load(Ordering::SeqCst) & !EXPIRE_NEXT);
    if !enabled.load(Ordering::SeqCst) {
        let _ = s.shutdown(Shutdown::Both);
        return;
    }
    let mut reader = BufReader::new(s.try_clone().unwrap());
    let Some(req) = read_request(&mut reader) else { return };
    let mut parts = req.line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    log.lock().unwrap().push(format!("{method} {path}"));
    if method == "PUT" && path == "/latest/api/token" {
        let Some(ttl) = req.header("x-aws-ec2-metadata-token-ttl-seconds").map(str::to_owned) else {
            return respond(&s, 400, "text/plain", b"missing TTL");
        };
        // Hand out the current token; if asked, make it stale right away (new generation).
        let g = generation.load(Ordering::SeqCst);
        if g & EXPIRE_NEXT != 0 {
            generation.store((g & !EXPIRE_NEXT) + 1, Ordering::SeqCst);
        }
        return respond_with(&s, 200, "text/plain", &format!("X-aws-ec2-metadata-token-ttl-seconds: {ttl}\r\n"), token.as_bytes());
    }
    if method != "GET" {
        return respond(&s, 405, "text/plain", b"");
    }
    if req.header("x-aws-ec2-metadata-token") != Some(token.as_str()) {
        return respond(&s, 401, "text/plain", b"");
    }
    let macs = format!("/latest/meta-data/network/interfaces/macs/{}", d.mac);
    let body = match path {
        "/latest/meta-data/instance-id" => d.instance_id.clone(),
        "/latest/meta-data/placement/region" => d.region.clone(),
        "/latest/meta-data/placement/availability-zone" => format!("{}a", d.region),
        "/latest/meta-data/mac" => d.mac.clone(),
        "/latest/meta-data/local-ipv4" => d.ip.clone(),
        "/latest/meta-data/network/interfaces/macs/" | "/latest/meta-data/network/interfaces/macs" => format!("{}/", d.mac),
        p if p == format!("{macs}/interface-id") => d.eni.clone(),
        p if p == format!("{macs}/device-number") => "0".into(),
        p if p == format!("{macs}/local-ipv4s") => d.ip.clone(),
        _ => return respond(&s, 404, "text/plain", b"Not Found"),
    };
    respond(&s, 200, "text/plain", body.as_bytes())
}
