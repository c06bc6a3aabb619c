//! The routing endpoints: HTTP with Patroni's paths and codes, and the seed demo's TCP line.
//!
//! A load balancer checks every node many times a second, and an attacker may check far
//! more: an answer must cost nothing, so it is read from the [`Snapshot`] the service's
//! loops keep current (never a query or a fork per request). HTTP is served by hyper
//! (HTTP/1.1, keep-alive) on a current-thread tokio runtime of its own thread, so the
//! PostgreSQL poll never waits for a client.
//!
//! Why the connections are shared out by client: HAProxy marks a server DOWN after a few
//! failed checks in a row, so a client that makes the load balancers' checks fail takes the
//! primary out of its pool — a write outage with nothing wrong in the cluster. A single
//! global cap did not stop it: one client holding 1,100 slow connections (a header line a
//! second) kept the pool full and half of another node's `/primary` checks failed; the
//! descriptors ran out first (the service had the default 1024), and then even the service's
//! own Pacemaker tools could not start and the answer went stale (503). So:
//!
//! - [`Pool`]: at most [`MAX_CONNECTIONS`] connections at once, and at most
//!   [`MAX_PER_CLIENT`] of them from one client — an IPv4 address, an IPv6 /64 (one host
//!   has a whole /64 to take addresses from). When the pool is full, a new connection from a
//!   client that holds fewer than the biggest holder takes that holder's oldest connection
//!   (closed at once); otherwise it is closed unanswered. So a load balancer, which holds a
//!   connection or two at a time, is always served: to refuse it, the pool must be full of
//!   clients that each hold no more than it does — 1,024 distinct hosts (or /64s), not one
//!   client, however many connections it opens, nor a handful.
//! - `allow` (the parameter): a client outside the allowed networks is closed at accept and
//!   never holds a slot; give the load balancers' networks, and the pool is theirs.
//! - [`MAX_REQUEST`] bytes of request head, [`HEADER_TIMEOUT`] to send it (a slow client's
//!   connection lasts that long), [`CONNECTION_TIMEOUT`] for a whole connection, no request
//!   body read.
//! - The descriptors all this needs are the service's to have: it raises its RLIMIT_NOFILE
//!   to [`NOFILE`] before it drops root (super::serve).
//!
//! Paths (any method; HEAD without a body): `/primary` (`/`, `/master`, `/leader`,
//! `/read-write`), `/replica` (`/standby`, `?lag=16MB`), `/read-only`, `/health`,
//! `/liveness` → 200 or 503 with a small JSON body, as Patroni answers them, so an HAProxy
//! configuration written for Patroni works unchanged; `/metrics` → Prometheus text, with
//! the pool's figures (connections held, refused and evicted by reason). A trailing slash
//! or a query does not change the check; any other path is 404.
//! The TCP port writes `production` or `standby` and a newline, then closes.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use super::role::{check_for, Snapshot};
use crate::ocf::OcfError;
use crate::{ocf_info, ocf_warn};

/// Connections served at once, over every client.
pub const MAX_CONNECTIONS: usize = 1024;
/// Connections served at once from one client (an IPv4 address, an IPv6 /64). HAProxy opens
/// one connection per check and closes it within milliseconds, so even a dozen pools, or
/// several load balancers behind one NAT address, hold a few at a time; Prometheus holds
/// one. A 32nd at once is no load balancer's.
pub const MAX_PER_CLIENT: usize = 32;
/// The descriptors the service needs: the pool, as many again for connections being closed
/// (over a limit, evicted, or from outside `allow`: each is accepted first), and its own
/// (PostgreSQL, the log, the pipes of the Pacemaker tools it runs).
pub const NOFILE: u64 = 2 * MAX_CONNECTIONS as u64 + 256;
/// The most a request head may take.
pub const MAX_REQUEST: usize = 8 * 1024;
/// How long a client may take to send its request head.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest one connection (keep-alive included) is kept.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);

/// A client, as the pool counts them: an IPv4 address (an IPv4-mapped IPv6 one counted as
/// IPv4), or the /64 of an IPv6 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Client {
    V4(Ipv4Addr),
    V6(u64),
}

impl Client {
    pub fn of(ip: IpAddr) -> Client {
        match ip.to_canonical() {
            IpAddr::V4(a) => Client::V4(a),
            IpAddr::V6(a) => Client::V6((u128::from(a) >> 64) as u64),
        }
    }
}

/// Why a connection was closed unanswered, or taken back: the reasons of the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// From outside `allow`.
    NotAllowed,
    /// Its client holds [`MAX_PER_CLIENT`] already.
    PerClient,
    /// The pool is full of clients that hold no more than this one.
    Full,
}

/// Connections refused since start, by [`Refused`] reason; connections evicted.
static REFUSED: [AtomicU64; 3] = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];
static EVICTED: AtomicU64 = AtomicU64::new(0);
/// Connections held now, and the clients holding them (for /metrics).
static HELD: AtomicU64 = AtomicU64::new(0);
static CLIENTS: AtomicU64 = AtomicU64::new(0);

fn refused(why: Refused) {
    REFUSED[why as usize].fetch_add(1, Ordering::Relaxed);
}

/// The connections being served, by client: see the module's doc for the rules.
#[derive(Debug)]
pub struct Pool {
    max: usize,
    per_client: usize,
    state: Mutex<Held>,
}

#[derive(Debug, Default)]
struct Held {
    total: usize,
    next: u64,
    /// Each client's connections, oldest first: an id, and how to close it.
    clients: HashMap<Client, Vec<(u64, Arc<Notify>)>>,
}

/// One connection's place in the [`Pool`], given back on drop.
#[derive(Debug)]
pub struct Slot {
    pool: Arc<Pool>,
    client: Client,
    id: u64,
    evict: Arc<Notify>,
}

impl Pool {
    pub fn new(max: usize, per_client: usize) -> Arc<Pool> {
        Arc::new(Pool { max, per_client, state: Mutex::new(Held::default()) })
    }

    /// A place for a new connection from `client`, or why there is none. When the pool is
    /// full, the biggest holder's oldest connection is told to close (its [`Slot::evicted`])
    /// if that holder has more than `client` will have with this one.
    pub fn admit(self: &Arc<Self>, client: Client) -> Result<Slot, Refused> {
        let mut h = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mine = h.clients.get(&client).map_or(0, Vec::len);
        if mine >= self.per_client {
            return Err(Refused::PerClient);
        }
        if h.total >= self.max {
            // Linear in the clients (at most `max`), only while the pool is full.
            let biggest = h.clients.iter().max_by_key(|(_, c)| c.len()).map(|(k, c)| (*k, c.len()));
            let Some((victim, n)) = biggest.filter(|(_, n)| *n > mine + 1) else { return Err(Refused::Full) };
            let conns = h.clients.get_mut(&victim).ok_or(Refused::Full)?;
            let (_, notify) = conns.remove(0);
            if n == 1 {
                h.clients.remove(&victim);
            }
            h.total -= 1;
            notify.notify_one();
            EVICTED.fetch_add(1, Ordering::Relaxed);
        }
        h.next += 1;
        let (id, evict) = (h.next, Arc::new(Notify::new()));
        h.clients.entry(client).or_default().push((id, evict.clone()));
        h.total += 1;
        HELD.store(h.total as u64, Ordering::Relaxed);
        CLIENTS.store(h.clients.len() as u64, Ordering::Relaxed);
        Ok(Slot { pool: self.clone(), client, id, evict })
    }

    /// Connections held, and by how many clients.
    pub fn held(&self) -> (usize, usize) {
        let h = self.state.lock().unwrap_or_else(|e| e.into_inner());
        (h.total, h.clients.len())
    }
}

impl Slot {
    /// Completes when the pool has given this connection's place to another client's.
    pub async fn evicted(&self) {
        self.evict.notified().await;
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut h = self.pool.state.lock().unwrap_or_else(|e| e.into_inner());
        let Some(conns) = h.clients.get_mut(&self.client) else { return };
        // An evicted connection's place was taken back when it was evicted.
        if let Some(i) = conns.iter().position(|(id, _)| *id == self.id) {
            conns.remove(i);
            if conns.is_empty() {
                h.clients.remove(&self.client);
            }
            h.total -= 1;
        }
        HELD.store(h.total as u64, Ordering::Relaxed);
        CLIENTS.store(h.clients.len() as u64, Ordering::Relaxed);
    }
}

/// The pool's figures and the demote's peers, in Prometheus text (appended to /metrics;
/// names, types and help: [`super::metrics`]).
pub fn metrics() -> String {
    use super::metrics as M;
    let mut m = String::new();
    M::STATE_CONNECTIONS.write(&mut m, HELD.load(Ordering::Relaxed));
    M::STATE_CLIENTS.write(&mut m, CLIENTS.load(Ordering::Relaxed));
    M::STATE_CONNECTIONS_REFUSED_TOTAL.header(&mut m);
    for (why, name) in [(Refused::NotAllowed, "not_allowed"), (Refused::PerClient, "per_client"), (Refused::Full, "full")] {
        M::STATE_CONNECTIONS_REFUSED_TOTAL.sample(&mut m, &[name], REFUSED[why as usize].load(Ordering::Relaxed));
    }
    M::STATE_CONNECTIONS_EVICTED_TOTAL.write(&mut m, EVICTED.load(Ordering::Relaxed));
    m.push_str(&super::demoting::metrics());
    m.push_str(&history_metrics());
    m
}

/// The pgsqlms resource whose incident records `/metrics` summarizes (set at the start).
pub static HISTORY_OF: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// The records' figures. The directory is read again only when it changed (a record is
/// replaced by a rename, which changes the directory's mtime): a scrape costs a `stat`.
fn history_metrics() -> String {
    use super::metrics as M;
    use crate::history::{Kind, Store};
    static CACHE: std::sync::Mutex<Option<(std::time::SystemTime, String)>> = std::sync::Mutex::new(None);
    let store = HISTORY_OF.get().map(|r| Store::open(r));
    let mtime = store.as_ref().and_then(|s| std::fs::metadata(s.dir()).and_then(|m| m.modified()).ok());
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let (Some(t), Some((at, text))) = (mtime, cache.as_ref()) {
        if *at == t {
            return text.clone();
        }
    }
    let records = store.map(|s| s.records()).unwrap_or_default();
    let mut m = String::new();
    M::HISTORY_RECORDS.header(&mut m);
    for kind in [Kind::Switchover, Kind::Failover, Kind::Recovery, Kind::Start] {
        M::HISTORY_RECORDS.sample(&mut m, &[kind.as_str()], records.iter().filter(|r| r.kind == kind).count());
    }
    let last = records.last();
    let secs = |ms: Option<u64>| ms.map(|v| format!("{:.3}", v as f64 / 1000.0)).unwrap_or_else(|| "NaN".into());
    M::LAST_CHANGE_OUTAGE_SECONDS.write(&mut m, secs(last.and_then(|r| r.outage_ms())));
    M::LAST_CHANGE_TIMESTAMP_SECONDS.write(&mut m, secs(last.and_then(|r| r.writable_at())));
    if let Some(t) = mtime {
        *cache = Some((t, m.clone()));
    }
    m
}

/// Where to listen (either may be absent), and whom to answer.
#[derive(Debug, Clone, Default)]
pub struct Endpoints {
    pub http: Option<SocketAddr>,
    pub tcp: Option<SocketAddr>,
    /// The networks clients may connect from (`address/prefix`); empty: any.
    pub allow: Vec<(IpAddr, u8)>,
}

impl Endpoints {
    /// Whether a client at `peer` may be answered.
    pub fn allows(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.allow.is_empty() || self.allow.iter().any(|(net, prefix)| crate::net::netlink::covers(*net, *prefix, peer))
    }
}

/// The allow-list parameter: networks (`192.0.2.0/24`, `2001:db8::/32`) or addresses,
/// separated by spaces or commas.
pub fn parse_allow(text: &str) -> Result<Vec<(IpAddr, u8)>, String> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let (ip, prefix) = w.split_once('/').unwrap_or((w, ""));
            let ip: IpAddr = ip.parse().map_err(|_| format!("'{w}' is not an address or network"))?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let prefix = if prefix.is_empty() {
                max
            } else {
                prefix.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| format!("'{w}': the prefix length must be 0 to {max}"))?
            };
            Ok((ip, prefix))
        })
        .collect()
}

/// Bind the endpoints now (so that a port in use fails the service's start), then serve
/// them from a thread of their own until the process ends.
pub fn spawn(ep: &Endpoints, snap: Arc<RwLock<Snapshot>>) -> Result<(), OcfError> {
    let rt =
        tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| OcfError::generic(format!("cannot start the HTTP runtime: {e}")))?;
    // A listen backlog of 4096 (the kernel caps it at net.core.somaxconn) rather than the
    // standard library's 128: under a check storm, a moment when this process is not
    // scheduled must not fill the accept queue and drop the load balancers' SYNs.
    let bind = |a: SocketAddr| {
        rt.block_on(async {
            let sock = if a.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
            sock.set_reuseaddr(true)?;
            sock.bind(a)?;
            sock.listen(4096)
        })
        .map_err(|e| OcfError::configured(format!("cannot listen on {a}: {e}")))
    };
    let http = ep.http.map(bind).transpose()?;
    let tcp = ep.tcp.map(bind).transpose()?;
    if let Some(a) = ep.http {
        ocf_info!("routing checks over HTTP on {a} (Patroni's paths), metrics on http://{a}/metrics");
    }
    if let Some(a) = ep.tcp {
        ocf_info!("routing checks over TCP on {a} (production / standby)");
    }
    if !ep.allow.is_empty() {
        let nets: Vec<String> = ep.allow.iter().map(|(n, p)| format!("{n}/{p}")).collect();
        ocf_info!("answering clients from {} only", nets.join(", "));
    }
    let ep = ep.clone();
    std::thread::Builder::new()
        .name("paceline-http".into())
        .spawn(move || {
            let limit = Pool::new(MAX_CONNECTIONS, MAX_PER_CLIENT);
            rt.block_on(async move {
                let mut tasks = Vec::new();
                let ep = Arc::new(ep);
                if let Some(l) = http {
                    tasks.push(tokio::spawn(serve_http(l, snap.clone(), limit.clone(), ep.clone())));
                }
                if let Some(l) = tcp {
                    tasks.push(tokio::spawn(serve_tcp(l, snap, limit, ep)));
                }
                for t in tasks {
                    let _ = t.await;
                }
            })
        })
        .map_err(|e| OcfError::generic(format!("cannot start the HTTP thread: {e}")))?;
    Ok(())
}

/// The next client the allow-list and the [`Pool`] admit: one from elsewhere, or with no
/// place, is closed at once, unanswered; a failed accept (out of descriptors) waits a moment
/// instead of spinning.
async fn next_client(listener: &TcpListener, pool: &Arc<Pool>, ep: &Endpoints) -> (TcpStream, SocketAddr, Slot) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                if !ep.allows(peer.ip()) {
                    refused(Refused::NotAllowed);
                    continue;
                }
                match pool.admit(Client::of(peer.ip())) {
                    Ok(slot) => return (stream, peer, slot),
                    Err(why) => refused(why),
                }
            }
            Err(e) => {
                ocf_warn!("accept failed on {:?}: {e}", listener.local_addr().ok());
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn serve_http(listener: TcpListener, snap: Arc<RwLock<Snapshot>>, pool: Arc<Pool>, ep: Arc<Endpoints>) {
    loop {
        let (stream, peer, slot) = next_client(&listener, &pool, &ep).await;
        let _ = stream.set_nodelay(true);
        let snap = snap.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = serve_connection(stream, snap, Some(peer.ip())) => {}
                () = slot.evicted() => {}
            }
            drop(slot);
        });
    }
}

/// Answer the requests of one connection (hyper parses them: a malformed request gets its
/// 4xx from hyper and never reaches [`respond`]), within [`CONNECTION_TIMEOUT`].
async fn serve_connection<I>(io: I, snap: Arc<RwLock<Snapshot>>, peer: Option<IpAddr>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let snap = snap.clone();
        async move { Ok::<_, std::convert::Infallible>(respond(&req, &snap, peer)) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_REQUEST)
        .serve_connection(TokioIo::new(io), service);
    let _ = tokio::time::timeout(CONNECTION_TIMEOUT, conn).await;
}

/// The response to one request, from the snapshot: 400 for a target that is not a path,
/// 404 for an unknown path.
fn respond(req: &Request<Incoming>, snap: &RwLock<Snapshot>, peer: Option<IpAddr>) -> Response<Full<Bytes>> {
    let now = Instant::now();
    let s = snap.read().unwrap_or_else(|e| e.into_inner()).clone();
    let head = req.method() == Method::HEAD;
    let reply = |status: StatusCode, ctype: &str, body: String| {
        let body = if head { Bytes::new() } else { Bytes::from(body) };
        Response::builder().status(status).header("content-type", ctype).header("cache-control", "no-store").body(Full::new(body)).unwrap_or_default()
    };
    let path = req.uri().path();
    // A target that is no path ("GET primary", authority-form, or "*") has the empty path
    // (or "*"), which must not pass for "/" (the primary check): it is a bad request.
    if !path.starts_with('/') {
        return reply(StatusCode::BAD_REQUEST, "application/json", "{\"error\":\"the request target is not a path\"}\n".into());
    }
    if path == "/metrics" {
        return reply(StatusCode::OK, "text/plain; version=0.0.4", s.metrics(now) + &metrics());
    }
    let Some(check) = check_for(path, req.uri().query()) else {
        return reply(StatusCode::NOT_FOUND, "application/json", "{\"error\":\"unknown path\"}\n".into());
    };
    // A load balancer asking for the primary: a demote waits until it has heard the answer
    // (super::demoting), recorded by the check's name, never the path as sent.
    if let (Some(p), super::role::Check::Primary, Some(asked)) = (peer, check, super::demoting::Asked::of_path(path)) {
        super::demoting::checked_by(p, asked);
    }
    let status = if s.answer(check, now) { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = serde_json::json!({
        "state": if s.pg.up { "running" } else { "stopped" },
        "role": s.role(now),
        "timeline": s.pg.timeline,
        "replication_lag": s.pg.lag_bytes,
        "cluster": { "promoted_here": s.cluster.promoted_here, "quorate": s.cluster.quorate },
    });
    reply(status, "application/json", format!("{body}\n"))
}

async fn serve_tcp(listener: TcpListener, snap: Arc<RwLock<Snapshot>>, pool: Arc<Pool>, ep: Arc<Endpoints>) {
    loop {
        let (mut stream, peer, slot) = next_client(&listener, &pool, &ep).await;
        super::demoting::checked_by(peer.ip(), super::demoting::Asked::Tcp);
        let word = snap.read().unwrap_or_else(|e| e.into_inner()).tcp_word(Instant::now());
        tokio::spawn(async move {
            let write = tokio::time::timeout(HEADER_TIMEOUT, async {
                let _ = stream.write_all(format!("{word}\n").as_bytes()).await;
                let _ = stream.shutdown().await;
            });
            tokio::select! {
                _ = write => {}
                () = slot.evicted() => {}
            }
            drop(slot);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allow_list_admits_its_networks_only() {
        let ep = Endpoints { allow: parse_allow("192.0.2.0/24, 2001:db8::/32 127.0.0.1").unwrap(), ..Default::default() };
        for ok in ["192.0.2.13", "2001:db8::5", "127.0.0.1", "::ffff:192.0.2.200"] {
            assert!(ep.allows(ok.parse().unwrap()), "{ok}");
        }
        for no in ["198.51.100.1", "127.0.0.2", "2001:db9::1", "::1"] {
            assert!(!ep.allows(no.parse().unwrap()), "{no}");
        }
        assert!(Endpoints::default().allows("198.51.100.1".parse().unwrap()), "empty: anyone");
        for bad in ["192.0.2.0/33", "node1", "2001:db8::/129", "192.0.2.1/x"] {
            assert!(parse_allow(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_allow("").unwrap(), vec![]);
    }

    fn client(a: &str) -> Client {
        Client::of(a.parse().unwrap())
    }

    #[test]
    fn a_client_is_an_ipv4_address_or_an_ipv6_64() {
        assert_eq!(client("192.0.2.1"), client("::ffff:192.0.2.1"));
        assert_ne!(client("192.0.2.1"), client("192.0.2.2"));
        assert_eq!(client("2001:db8:1:2::1"), client("2001:db8:1:2:ffff:ffff:ffff:ffff"));
        assert_ne!(client("2001:db8:1:2::1"), client("2001:db8:1:3::1"));
    }

    #[test]
    fn one_client_holds_its_share_and_no_more() {
        let pool = Pool::new(8, 3);
        let hostile: Vec<Slot> = (0..3).map(|_| pool.admit(client("192.0.2.66")).unwrap()).collect();
        assert_eq!(pool.admit(client("192.0.2.66")).unwrap_err(), Refused::PerClient);
        // Its /64 is one client, whatever the address.
        let six: Vec<Slot> = (0..3).map(|i| pool.admit(client(&format!("2001:db8::{i}"))).unwrap()).collect();
        assert_eq!(pool.admit(client("2001:db8::ffff")).unwrap_err(), Refused::PerClient);
        let lb = pool.admit(client("192.0.2.11")).unwrap();
        assert_eq!(pool.held(), (7, 3));
        drop(hostile);
        drop(six);
        drop(lb);
        assert_eq!(pool.held(), (0, 0));
    }

    #[test]
    fn a_full_pool_makes_room_for_a_client_holding_less() {
        let rt = prop::runtime();
        let pool = Pool::new(4, 4);
        let a: Vec<Slot> = (0..3).map(|_| pool.admit(client("192.0.2.66")).unwrap()).collect();
        let b = pool.admit(client("192.0.2.67")).unwrap();
        // Full. The load balancer takes the biggest holder's oldest connection.
        let lb = pool.admit(client("192.0.2.11")).unwrap();
        assert_eq!(pool.held(), (4, 3));
        rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(1), a[0].evicted()).await.expect("the oldest of the biggest holder is evicted");
            assert!(tokio::time::timeout(Duration::from_millis(20), a[1].evicted()).await.is_err(), "one only");
        });
        // A second connection of the load balancer: the biggest holds 2, it would hold 2.
        assert_eq!(pool.admit(client("192.0.2.11")).unwrap_err(), Refused::Full);
        // The biggest holder gets nothing back by asking again.
        assert_eq!(pool.admit(client("192.0.2.66")).unwrap_err(), Refused::Full);
        // A newcomer still does (192.0.2.66 holds 2).
        let c = pool.admit(client("192.0.2.68")).unwrap();
        assert_eq!(pool.held(), (4, 4));
        // Every client holds 1: full for everyone.
        assert_eq!(pool.admit(client("192.0.2.69")).unwrap_err(), Refused::Full);
        // The evicted ones' drops give back nothing twice.
        drop(a);
        assert_eq!(pool.held(), (3, 3));
        drop((b, lb, c));
        assert_eq!(pool.held(), (0, 0));
    }

    #[test]
    fn a_target_that_is_no_path_is_a_bad_request() {
        // Found by `garbage_is_a_client_error_not_a_route`: hyper reads "primary" as an
        // authority, whose path is "", which check_for took for "/": the primary check.
        let rt = prop::runtime();
        for (request, status) in [("GET primary HTTP/1.1\r\n\r\n", 400), ("GET * HTTP/1.1\r\n\r\n", 400), ("GET / HTTP/1.1\r\n\r\n", 503)] {
            assert_eq!(prop::statuses(&prop::exchange(&rt, request.as_bytes())), vec![status], "{request:?}");
        }
    }

    mod prop {
        use super::super::*;
        use proptest::prelude::*;
        use tokio::io::AsyncReadExt;

        /// What the server writes back for `request`, on one connection of its own, until
        /// it closes the connection or is silent for 100 ms (a request left incomplete, a
        /// kept-alive connection).
        pub(super) fn exchange(rt: &tokio::runtime::Runtime, request: &[u8]) -> Vec<u8> {
            rt.block_on(async {
                let (mut client, server) = tokio::io::duplex(64 * 1024);
                let serve = tokio::spawn(serve_connection(server, Arc::new(RwLock::new(Snapshot::default())), None));
                let _ = client.write_all(request).await;
                let mut out = Vec::new();
                let mut buf = [0u8; 4096];
                while let Ok(Ok(n @ 1..)) = tokio::time::timeout(Duration::from_millis(100), client.read(&mut buf)).await {
                    out.extend_from_slice(&buf[..n]);
                }
                serve.abort();
                out
            })
        }

        pub(super) fn runtime() -> tokio::runtime::Runtime {
            tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
        }

        /// The status codes of the responses in `out`, in order.
        pub(super) fn statuses(out: &[u8]) -> Vec<u16> {
            let text = String::from_utf8_lossy(out);
            text.match_indices("HTTP/1.").filter_map(|(i, _)| text[i + 9..].get(..3)?.parse().ok()).collect()
        }

        /// Whether `line` is a request line a server may route: a method token, an
        /// origin-form path (or absolute-form, which HTTP/1.1 servers must take), HTTP/1.0
        /// or 1.1.
        fn routable(line: &[u8]) -> bool {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let parts: Vec<&[u8]> = line.split(|b| *b == b' ').collect();
            matches!(parts.as_slice(), [m, p, v]
                if !m.is_empty() && m.iter().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b))
                && (p.first() == Some(&b'/') || p.starts_with(b"http://")) && (*v == b"HTTP/1.1" || *v == b"HTTP/1.0"))
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

            /// Arbitrary bytes: a 4xx or no answer; a routed answer (200, 503, 404 from
            /// [`respond`]) only when the bytes began with a well-formed request line.
            #[test]
            fn garbage_is_a_client_error_not_a_route(bytes in prop_oneof![
                prop::collection::vec(any::<u8>(), 0..200),
                (
                    prop::sample::select(&["GET", "HEAD", "OPTIONS", "get", "G T", "", "\0"][..]),
                    prop::sample::select(&[" ", " ", " ", "", "  ", "\t"][..]),
                    prop::sample::select(&["/", "/primary", "/replica?lag=1MB", "/nope", "primary", "*", "http://x/primary", "/re%ZZ", "/a\x7f", "/\u{e9}"][..]),
                    prop::sample::select(&["HTTP/1.1", "HTTP/1.1", "HTTP/1.0", "HTTP/9", "HTTP/1.1x", "", "http/1.1"][..]),
                    prop::sample::select(&["\r\n", "\r\n", "\n", ""][..]),
                    prop_oneof![3 => "([A-Za-z-]{1,6}: [a-z]{0,4}\r\n){0,2}\r\n", 1 => "([^\r\n]{1,6}\r\n){0,2}(\r\n)?"],
                ).prop_map(|(m, sp, p, v, eol, h)| format!("{m}{sp}{p}{sp}{v}{eol}{h}").into_bytes()),
            ]) {
                let rt = runtime();
                let out = exchange(&rt, &bytes);
                let first = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
                for status in statuses(&out) {
                    if !(400..500).contains(&status) || status == 404 {
                        prop_assert!(routable(first), "{status} for {:?}", String::from_utf8_lossy(&bytes));
                    }
                }
            }

            /// A well-formed request for any path: one of Patroni's paths is routed (200 or
            /// 503), any other path is 404 — never a check answered for an unknown path.
            #[test]
            fn only_known_paths_are_routed(path in "/[a-zA-Z0-9/._~-]{0,16}(\\?[a-z=0-9&]{0,10})?", head in any::<bool>()) {
                let rt = runtime();
                let method = if head { "HEAD" } else { "GET" };
                let out = exchange(&rt, format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes());
                let (p, q) = path.split_once('?').map_or((path.as_str(), None), |(p, q)| (p, Some(q)));
                let expected: &[u16] = if p == "/metrics" { &[200] } else if super::super::super::role::check_for(p, q).is_some() { &[200, 503] } else { &[404] };
                let got = statuses(&out);
                prop_assert!(got.len() == 1 && expected.contains(&got[0]), "{path}: {got:?}");
            }

            /// The allow-list: any text is an error or networks, never a panic; a network
            /// written out reads back as itself.
            #[test]
            fn allow_lists_read_back(text in any::<String>(), v4 in any::<[u8; 4]>(), p4 in 0u8..=32, v6 in any::<[u16; 8]>(), p6 in 0u8..=128) {
                let _ = parse_allow(&text);
                let a4 = IpAddr::from(v4);
                let a6 = IpAddr::from(v6);
                prop_assert_eq!(parse_allow(&format!("{a4}/{p4}, {a6}/{p6} {a4}")), Ok(vec![(a4, p4), (a6, p6), (a4, 32)]));
                let too_long = format!("{a4}/{}", p4 + 33);
                prop_assert!(parse_allow(&too_long).is_err());
            }
        }
    }
}
