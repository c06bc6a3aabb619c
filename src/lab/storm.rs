//! `paceline-lab storm` — a storm of routing checks, as load balancers (or an attacker)
//! send them, against a node state service.
//!
//! Why it exists: the state service must answer however often it is asked (issue #11:
//! 10,000 checks/s without a failure, no fork per check), and the seed demo's psql-based
//! service is judged against the same load. A shell loop cannot offer that rate, and
//! `curl` or `nc` in a loop would measure their own start-up. Each check here is what
//! HAProxy does: a **new TCP connection**, then either `GET <path> HTTP/1.1` with
//! `Connection: close` and the status read (HTTP mode, `option httpchk`), or just the one
//! line the server writes (TCP mode, `tcp-check expect string`), read to the server's close.
//!
//! Definitions (the numbers mean exactly this):
//!
//! - **Schedule**: check `i` is due at `t0 + i / rate`; at most `--concurrency` are in
//!   flight. When the service is slower than the rate, checks start late (the offered rate is
//!   not reached: `achieved_rate` says so, `late_ms_max` by how much) rather than pile up.
//! - **ok**: the expected answer — the HTTP status (`--expect-status`, default 200) on a
//!   well-formed status line, or the expected line (`--expect-line`; by default `production`
//!   or `standby`) — within `--timeout-ms` from the start of connecting.
//! - **failed**: anything else, by kind: `refused`, `reset` (reset, broken pipe, aborted),
//!   `timeout`, `wrong` (a well-formed answer other than the expected one), `garbage` (not a
//!   status line / not a known line, or empty), `other` (any other error, e.g. no local port).
//! - **latency**: from the start of connecting to the server's close, for ok checks.
//! - **Watched processes** (`--watch NAME=PID`), measured over an idle window of
//!   `--idle-s` (no checks: the process's own background work) and over the storm:
//!   CPU seconds from `/proc/PID/stat` (user + system, plus the children it has waited for:
//!   the seed's per-connection shells and psql), forks (every pid allocated in PID's own PID
//!   namespace: `/proc/sys/kernel/ns_last_pid` read from inside it by one shell started
//!   before measuring that reads it with builtins only, so reading costs no pid; sampled
//!   every 100 ms so the wrap at pid_max is followed), and peak RSS (`VmHWM`). The per-check
//!   figures subtract the idle window's rate and divide by the checks sent (each was
//!   accepted and handled, answered in time or not): `forks_per_check` and
//!   `cpu_ms_per_1000` are what the checks cost, not the polling the service does anyway.
//!
//! A hostile client beside the checks (issue #26: one client must not knock the primary
//! out of its load balancers' pool): `--slowloris N` slow connections, each a request line
//! then one header line a second, never finished, reopened a second after the server
//! closes one; `--odd-rate R` requests a second on odd spellings of the paths (`/primary/`,
//! `/primary?x=1`, `//primary`, 4 KiB of slashes, random paths), each on a new connection.
//! It comes from `--hostile-from` (one address, or networks: many clients), the checks
//! from `--from`, so that the service, which counts connections per client, tells them
//! apart; it starts `--hostile-lead-s` before the checks and stops with them, and the JSON
//! line's `hostile` says what it did (connections opened, closed by the server, the most
//! open at once; the odd paths' answers by status).
//!
//! Addresses: checks go where `--addr` says; the lab uses loopback or addresses inside its
//! own namespaces. Output: one JSON line on stdout. Exit status 0 whenever the storm ran
//! (failures are a result), non-zero for bad arguments or a watch that cannot be set up.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Semaphore;

/// The most of an answer that is read; a check answer is a few hundred bytes.
const ANSWER_MAX: usize = 64 * 1024;
/// How many distinct error texts the JSON line lists.
const ERRORS_MAX: usize = 10;
/// How often the watched namespaces' last pid is read (the counter wraps at pid_max).
const PID_SAMPLE: Duration = Duration::from_millis(100);

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Where the checks go (loopback, or an address inside the lab's namespaces).
    #[arg(long)]
    pub addr: SocketAddr,
    /// HTTP mode: the path of `GET <path> HTTP/1.1` (e.g. /primary). Without it: TCP mode,
    /// one line read.
    #[arg(long)]
    pub path: Option<String>,
    /// HTTP mode: the status that counts as ok.
    #[arg(long, default_value_t = 200)]
    pub expect_status: u16,
    /// TCP mode: the line that counts as ok (default: production or standby).
    #[arg(long)]
    pub expect_line: Option<String>,
    /// Checks per second offered.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate: u32,
    /// How long the storm lasts.
    #[arg(long, default_value_t = 10.0)]
    pub duration_s: f64,
    /// Checks in flight at most.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=65536))]
    pub concurrency: u64,
    /// Bound on one check, connecting included.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout_ms: u64,
    /// Threads sending checks (each its own share of the rate and of the concurrency).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub threads: u64,
    /// A process to measure, NAME=PID (repeatable): CPU with its waited-for children,
    /// forks in its PID namespace (when it has one of its own), peak RSS.
    #[arg(long = "watch")]
    pub watch: Vec<String>,
    /// Measure the watched processes for this long with no checks before the storm.
    #[arg(long, default_value_t = 0.0)]
    pub idle_s: f64,
    /// Free text copied into the JSON line (which side this run measures).
    #[arg(long)]
    pub label: Option<String>,
    /// The checks' source addresses (as `--hostile-from`; check `i` from address `i mod n`):
    /// the checker is a client of its own (127.0.0.1 beside a hostile 127.0.0.2: any
    /// address of 127/8 is on `lo`). The service serves one client (an IPv4 address, an IPv6
    /// /64) at most 32 connections at once: a storm with more in flight is many clients' load,
    /// and comes from as many addresses. Default: the kernel's choice.
    #[arg(long)]
    pub from: Option<String>,
    /// A hostile client beside the checks: this many slow connections at once (slowloris),
    /// each sending a request line and then one header line a second, never finishing; one
    /// the server closes is opened again a second later.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=60_000))]
    pub slowloris: u32,
    /// The hostile client's requests on odd paths (`/primary/`, `/primary?x=1`,
    /// `//primary`, long and random paths), per second, each on a new connection.
    #[arg(long, default_value_t = 0)]
    pub odd_rate: u32,
    /// The hostile client's addresses: addresses or networks (`127.0.1.0/24`; at most 65,536
    /// addresses in all), separated by commas or spaces; its connection `i` comes from
    /// address `i mod n`.
    #[arg(long, default_value = "127.0.0.2")]
    pub hostile_from: String,
    /// How long the hostile client runs before the checks start (its slow connections in
    /// place); it stops when they end.
    #[arg(long, default_value_t = 3.0)]
    pub hostile_lead_s: f64,
}

/// Run the storm and print its JSON line.
pub fn run(args: Args) -> Result<()> {
    let line = storm(&args)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").and_then(|()| out.flush()).context("cannot write the result to stdout")
}

/// The storm, the watches around it, and the JSON line.
pub fn storm(args: &Args) -> Result<Value> {
    ensure!(args.duration_s > 0.0 && args.duration_s.is_finite(), "--duration-s must be positive");
    ensure!(args.idle_s >= 0.0 && args.idle_s.is_finite(), "--idle-s must be 0 or more");
    if let Some(p) = &args.path {
        ensure!(
            p.starts_with('/') && !p.contains(|c: char| c.is_whitespace() || c.is_control()),
            "--path must be an absolute request path without spaces, got {p:?}"
        );
    }
    ensure!(args.path.is_none() || args.expect_line.is_none(), "--expect-line is for TCP mode (no --path)");
    if let Some(f) = &args.from {
        parse_sources(f)?;
    }
    ensure!(args.hostile_lead_s >= 0.0 && args.hostile_lead_s.is_finite(), "--hostile-lead-s must be 0 or more");
    let hostile_from = if args.slowloris > 0 || args.odd_rate > 0 { parse_sources(&args.hostile_from)? } else { Vec::new() };
    if args.slowloris > 0 {
        // One descriptor a slow connection: the soft limit up to the hard one.
        raise_nofile(u64::from(args.slowloris) + u64::from(args.odd_rate) + args.concurrency + 256)?;
    }
    let mut watches = args.watch.iter().map(|w| Watch::new(w)).collect::<Result<Vec<_>>>()?;

    // A sampler follows every watched namespace's last pid while the windows run.
    let stop = Arc::new(AtomicBool::new(false));
    let counters: Vec<Arc<Mutex<PidCounter>>> = watches.iter().filter_map(|w| w.pids.clone()).collect();
    let sampler = {
        let (stop, counters) = (stop.clone(), counters.clone());
        std::thread::Builder::new().name("storm-pids".into()).spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                for c in &counters {
                    let _ = c.lock().unwrap_or_else(|e| e.into_inner()).sample();
                }
                std::thread::sleep(PID_SAMPLE);
            }
        })?
    };
    let result = (|| {
        if args.idle_s > 0.0 {
            let marks: Vec<Mark> = watches.iter_mut().map(|w| w.mark()).collect::<Result<_>>()?;
            std::thread::sleep(Duration::from_secs_f64(args.idle_s));
            for (w, m) in watches.iter_mut().zip(marks) {
                w.idle = Some(w.mark()?.since(&m));
            }
        }
        // The hostile client, its slow connections in place before the first check.
        let hostile = if hostile_from.is_empty() { None } else { Some(Hostile::start(args, hostile_from.clone())?) };
        if hostile.is_some() {
            std::thread::sleep(Duration::from_secs_f64(args.hostile_lead_s));
        }
        let marks: Vec<Mark> = watches.iter_mut().map(|w| w.mark()).collect::<Result<_>>()?;
        let t0 = Instant::now();
        let stats = send_all(args);
        let took = t0.elapsed();
        let hostile = hostile.map(Hostile::finish).transpose()?;
        let stats = stats?;
        for (w, m) in watches.iter_mut().zip(marks) {
            w.storm = Some(w.mark()?.since(&m));
        }
        Ok::<_, anyhow::Error>((stats, took, hostile))
    })();
    stop.store(true, Ordering::SeqCst);
    let _ = sampler.join();
    let (mut stats, took, hostile) = result?;

    stats.latencies_us.sort_unstable();
    let pct = |p: f64| -> Value {
        let l = &stats.latencies_us;
        if l.is_empty() {
            return Value::Null;
        }
        let i = ((l.len() as f64 * p).ceil() as usize).clamp(1, l.len()) - 1;
        json!(round3(l[i] as f64 / 1000.0))
    };
    let failed: u64 = stats.failures.values().sum();
    let ok = stats.ok;
    let watch: serde_json::Map<String, Value> = watches.iter().map(|w| (w.name.clone(), w.report(stats.sent))).collect();
    Ok(json!({
        "label": args.label,
        "mode": if args.path.is_some() { "http" } else { "tcp" },
        "addr": args.addr.to_string(),
        "check": match &args.path {
            Some(p) => format!("GET {p} -> {}", args.expect_status),
            None => format!("line {}", args.expect_line.as_deref().unwrap_or("production|standby")),
        },
        "rate": args.rate,
        "duration_s": args.duration_s,
        "concurrency": args.concurrency,
        "threads": args.threads,
        "sent": stats.sent,
        "ok": ok,
        "failed": failed,
        "failures": stats.failures,
        "errors": stats.errors,
        "elapsed_s": round3(took.as_secs_f64()),
        "achieved_rate": round3(stats.sent as f64 / took.as_secs_f64()),
        "late_ms_max": round3(stats.late_max.as_secs_f64() * 1000.0),
        "latency_ms": { "p50": pct(0.50), "p90": pct(0.90), "p99": pct(0.99), "max": pct(1.0) },
        "from": args.from,
        "hostile": hostile,
        "watch": watch,
    }))
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

// ---------------------------------------------------------------------------------------
// The checks.

#[derive(Debug, Default)]
struct Stats {
    sent: u64,
    ok: u64,
    failures: BTreeMap<&'static str, u64>,
    errors: Vec<String>,
    latencies_us: Vec<u32>,
    late_max: Duration,
}

impl Stats {
    fn merge(&mut self, o: Stats) {
        self.sent += o.sent;
        self.ok += o.ok;
        for (k, v) in o.failures {
            *self.failures.entry(k).or_default() += v;
        }
        for e in o.errors {
            if self.errors.len() < ERRORS_MAX && !self.errors.contains(&e) {
                self.errors.push(e);
            }
        }
        self.latencies_us.extend(o.latencies_us);
        self.late_max = self.late_max.max(o.late_max);
    }

    fn record(&mut self, outcome: Result<Duration, (&'static str, String)>) {
        match outcome {
            Ok(d) => {
                self.ok += 1;
                self.latencies_us.push(u32::try_from(d.as_micros()).unwrap_or(u32::MAX));
            }
            Err((kind, text)) => {
                *self.failures.entry(kind).or_default() += 1;
                if self.errors.len() < ERRORS_MAX && !self.errors.contains(&text) {
                    self.errors.push(text);
                }
            }
        }
    }
}

/// What one check expects, shared by the tasks.
#[derive(Debug)]
struct Check {
    addr: SocketAddr,
    request: Option<Vec<u8>>,
    expect_status: u16,
    expect_line: Option<String>,
    timeout: Duration,
    /// Check `i` comes from `from[i % len]`; empty: the kernel's choice.
    from: Vec<IpAddr>,
}

/// Every thread's share of the storm, merged.
fn send_all(args: &Args) -> Result<Stats> {
    let request =
        args.path.as_ref().map(|p| format!("GET {p} HTTP/1.1\r\nHost: {}\r\nUser-Agent: paceline-storm\r\nConnection: close\r\n\r\n", args.addr).into_bytes());
    let check = Arc::new(Check {
        addr: args.addr,
        request,
        expect_status: args.expect_status,
        expect_line: args.expect_line.clone(),
        timeout: Duration::from_millis(args.timeout_ms),
        from: args.from.as_deref().map(parse_sources).transpose()?.unwrap_or_default(),
    });
    let total = (args.rate as f64 * args.duration_s).round() as u64;
    let threads = args.threads;
    let t0 = Instant::now() + Duration::from_millis(5);
    let deadline = t0 + Duration::from_secs_f64(args.duration_s);
    let handles: Vec<_> = (0..threads)
        .map(|n| {
            let check = check.clone();
            // Thread n sends checks n, n + threads, ...: together, the schedule.
            let mine = (total + threads - 1 - n) / threads;
            let concurrency = (args.concurrency / threads).max(1) as usize;
            let rate = args.rate as f64;
            std::thread::Builder::new().name(format!("storm-{n}")).spawn(move || -> Result<Stats> {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")?;
                Ok(rt.block_on(send(check, t0, deadline, n, threads, mine, rate, concurrency)))
            })
        })
        .collect::<std::io::Result<_>>()
        .context("cannot start the sending threads")?;
    let mut all = Stats::default();
    for h in handles {
        all.merge(h.join().map_err(|_| anyhow::anyhow!("a sending thread panicked"))??);
    }
    Ok(all)
}

// One sender's plan: what it checks, when, how many, how fast, how many at once.
#[allow(clippy::too_many_arguments)]
async fn send(check: Arc<Check>, t0: Instant, deadline: Instant, first: u64, step: u64, count: u64, rate: f64, concurrency: usize) -> Stats {
    let limit = Arc::new(Semaphore::new(concurrency));
    let stats = Arc::new(Mutex::new(Stats { latencies_us: Vec::with_capacity(count as usize), ..Stats::default() }));
    let mut late_max = Duration::ZERO;
    for k in 0..count {
        let i = first + k * step;
        let due = t0 + Duration::from_secs_f64(i as f64 / rate);
        // A service slower than the rate gets the checks it can take until the end, no more.
        if Instant::now() >= deadline {
            break;
        }
        if due > Instant::now() {
            tokio::time::sleep_until(due.into()).await;
        }
        let Ok(permit) = limit.clone().acquire_owned().await else { break };
        late_max = late_max.max(Instant::now().saturating_duration_since(due));
        let (check, stats) = (check.clone(), stats.clone());
        tokio::spawn(async move {
            let outcome = one(&check, i).await;
            let mut s = stats.lock().unwrap_or_else(|e| e.into_inner());
            s.sent += 1;
            s.record(outcome);
            drop(permit);
        });
    }
    // Every check is bounded by its timeout: wait until all permits are back.
    let _ = limit.acquire_many(concurrency as u32).await;
    let mut s = std::mem::take(&mut *stats.lock().unwrap_or_else(|e| e.into_inner()));
    s.late_max = late_max;
    s
}

/// Check `i` on a new connection: its latency, or the kind of failure and its text.
async fn one(check: &Check, i: u64) -> Result<Duration, (&'static str, String)> {
    let start = Instant::now();
    let from = (!check.from.is_empty()).then(|| check.from[(i % check.from.len() as u64) as usize]);
    let answer = tokio::time::timeout(check.timeout, async {
        let mut c = connect_from(from, check.addr).await.map_err(|e| io_failure("connect", &e))?;
        if let Some(req) = &check.request {
            c.write_all(req).await.map_err(|e| io_failure("write", &e))?;
        }
        let mut buf = Vec::with_capacity(512);
        let mut chunk = [0u8; 4096];
        loop {
            let n = c.read(&mut chunk).await.map_err(|e| io_failure("read", &e))?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            if buf.len() > ANSWER_MAX {
                return Err(("garbage", format!("answer longer than {ANSWER_MAX} bytes")));
            }
        }
        Ok(buf)
    })
    .await
    .map_err(|_| ("timeout", format!("no complete answer within {:?}", check.timeout)))??;
    let took = start.elapsed();
    match &check.request {
        Some(_) => judge_http(&answer, check.expect_status),
        None => judge_line(&answer, check.expect_line.as_deref()),
    }
    .map(|()| took)
}

fn io_failure(step: &str, e: &std::io::Error) -> (&'static str, String) {
    use std::io::ErrorKind::*;
    let kind = match e.kind() {
        ConnectionRefused => "refused",
        ConnectionReset | ConnectionAborted | BrokenPipe => "reset",
        TimedOut => "timeout",
        _ => "other",
    };
    (kind, format!("{step}: {e}"))
}

/// A status line `HTTP/1.x NNN ...` with the expected code.
fn judge_http(answer: &[u8], want: u16) -> Result<(), (&'static str, String)> {
    let line = answer.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.trim_end().splitn(3, ' ');
    let (version, code) = (parts.next().unwrap_or(""), parts.next().and_then(|c| c.parse::<u16>().ok()));
    match code {
        Some(c) if version.starts_with("HTTP/1.") && c == want => Ok(()),
        Some(c) if version.starts_with("HTTP/1.") => Err(("wrong", format!("status {c}, expected {want}"))),
        _ => Err(("garbage", format!("not an HTTP status line: {:?}", line.chars().take(60).collect::<String>()))),
    }
}

/// One line, the expected one (or either role word).
fn judge_line(answer: &[u8], want: Option<&str>) -> Result<(), (&'static str, String)> {
    let text = String::from_utf8_lossy(answer);
    let word = text.strip_suffix('\n').unwrap_or(&text).trim_end_matches('\r');
    let known = word == "production" || word == "standby";
    match want {
        Some(w) if word == w => Ok(()),
        None if known => Ok(()),
        _ if known => Err(("wrong", format!("line {word:?}, expected {:?}", want.unwrap_or("production|standby")))),
        _ => Err(("garbage", format!("not a role line: {:?}", text.chars().take(60).collect::<String>()))),
    }
}

/// A new connection to `to`, from `from` when given. The local port is chosen at connect
/// (IP_BIND_ADDRESS_NO_PORT), per destination, as for an unbound socket: thousands of
/// connections from one address do not run out of ports at bind.
async fn connect_from(from: Option<IpAddr>, to: SocketAddr) -> std::io::Result<TcpStream> {
    let Some(ip) = from else { return TcpStream::connect(to).await };
    let sock = if ip.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    let one: libc::c_int = 1;
    // SAFETY: a valid socket descriptor and an int option of the right size.
    unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&sock),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
    sock.bind(SocketAddr::new(ip, 0))?;
    sock.connect(to).await
}

/// The soft limit on open descriptors raised to `need` (at most the hard limit).
fn raise_nofile(need: u64) -> Result<()> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).context("getrlimit")?;
    if soft < need {
        setrlimit(Resource::RLIMIT_NOFILE, need.min(hard), hard).context("setrlimit")?;
    }
    ensure!(need <= hard, "{need} descriptors needed, the hard limit is {hard} (ulimit -Hn)");
    Ok(())
}

/// `--from`, `--hostile-from`: addresses and networks, every address of each network.
fn parse_sources(text: &str) -> Result<Vec<IpAddr>> {
    const MAX: u128 = 65_536;
    let mut out = Vec::new();
    for w in text.split(|c: char| c == ',' || c.is_whitespace()).filter(|w| !w.is_empty()) {
        let (ip, prefix) = w.split_once('/').unwrap_or((w, ""));
        let ip: IpAddr = ip.parse().with_context(|| format!("{w:?} is not an address or network"))?;
        let bits: u32 = if ip.is_ipv4() { 32 } else { 128 };
        let prefix: u32 = if prefix.is_empty() { bits } else { prefix.parse().ok().filter(|p| *p <= bits).with_context(|| format!("bad prefix in {w:?}"))? };
        let count = 1u128.checked_shl(bits - prefix).unwrap_or(u128::MAX);
        ensure!(count <= MAX && out.len() as u128 + count <= MAX, "more than {MAX} addresses");
        for i in 0..count {
            out.push(match ip {
                IpAddr::V4(a) => IpAddr::from(std::net::Ipv4Addr::from(((u32::from(a) as u128 & !(count - 1)) | i) as u32)),
                IpAddr::V6(a) => IpAddr::from(std::net::Ipv6Addr::from((u128::from(a) & !(count - 1)) | i)),
            });
        }
    }
    ensure!(!out.is_empty(), "no address");
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// The hostile client.

/// Odd spellings of the routing paths, and paths that are none: what a scanner or a
/// misconfigured client sends. Each is sent as is; `RANDOM` and `LONG` are made up.
const ODD_PATHS: &[&str] = &[
    "/primary/",
    "/primary?x=1",
    "//primary",
    "/primary//",
    "/read-write/",
    "/master?",
    "/leader/?a=b",
    "/%70rimary",
    "/primary/x",
    "/replica?lag=abc",
    "/metrics?x",
    "/",
    "RANDOM",
    "LONG",
];

/// What the hostile client did, counted by its tasks.
#[derive(Default)]
struct HostileStats {
    /// Slow connections opened (connected), and closed by the server.
    opened: std::sync::atomic::AtomicU64,
    closed: std::sync::atomic::AtomicU64,
    connect_failed: std::sync::atomic::AtomicU64,
    /// Slow connections open now, and the most at once.
    open: std::sync::atomic::AtomicU64,
    open_max: std::sync::atomic::AtomicU64,
    /// Odd-path requests by outcome (a status, `closed`, `error`).
    odd: Mutex<BTreeMap<String, u64>>,
}

/// The hostile client's thread: slow connections and odd paths until told to stop.
struct Hostile {
    stop: Arc<AtomicBool>,
    stats: Arc<HostileStats>,
    thread: std::thread::JoinHandle<()>,
    started: Instant,
    slowloris: u32,
    odd_rate: u32,
    sources: usize,
}

impl Hostile {
    fn start(args: &Args, from: Vec<IpAddr>) -> Result<Hostile> {
        let (stop, stats) = (Arc::new(AtomicBool::new(false)), Arc::new(HostileStats::default()));
        let (addr, slowloris, odd_rate, sources) = (args.addr, args.slowloris, args.odd_rate, from.len());
        let thread = {
            let (stop, stats) = (stop.clone(), stats.clone());
            std::thread::Builder::new().name("storm-hostile".into()).spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
                rt.block_on(async move {
                    let from = Arc::new(from);
                    let mut tasks = Vec::new();
                    for i in 0..slowloris as usize {
                        let src = from[i % from.len()];
                        tasks.push(tokio::spawn(slow_connection(addr, src, stop.clone(), stats.clone())));
                    }
                    if odd_rate > 0 {
                        tasks.push(tokio::spawn(odd_paths(addr, from.clone(), odd_rate, stop.clone(), stats.clone())));
                    }
                    for t in tasks {
                        let _ = t.await;
                    }
                })
            })?
        };
        Ok(Hostile { stop, stats, thread, started: Instant::now(), slowloris, odd_rate, sources })
    }

    fn finish(self) -> Result<Value> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().map_err(|_| anyhow::anyhow!("the hostile client's thread panicked"))?;
        let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::SeqCst);
        let s = &self.stats;
        Ok(json!({
            "sources": self.sources,
            "s": round3(self.started.elapsed().as_secs_f64()),
            "slowloris": { "target": self.slowloris, "opened": n(&s.opened), "closed_by_server": n(&s.closed), "connect_failed": n(&s.connect_failed), "open_max": n(&s.open_max) },
            "odd": { "rate": self.odd_rate, "outcomes": *s.odd.lock().unwrap_or_else(|e| e.into_inner()) },
        }))
    }
}

/// One slow connection, again and again: the request line, then one header line a second,
/// never the blank line that ends the head. Whatever the server says is read and dropped;
/// when it closes, the next one is opened a second later.
async fn slow_connection(addr: SocketAddr, src: IpAddr, stop: Arc<AtomicBool>, stats: Arc<HostileStats>) {
    const TICK: Duration = Duration::from_secs(1);
    while !stop.load(Ordering::SeqCst) {
        let Ok(Ok(mut c)) = tokio::time::timeout(TICK, connect_from(Some(src), addr)).await else {
            stats.connect_failed.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(TICK).await;
            continue;
        };
        stats.opened.fetch_add(1, Ordering::SeqCst);
        let open = stats.open.fetch_add(1, Ordering::SeqCst) + 1;
        stats.open_max.fetch_max(open, Ordering::SeqCst);
        let mut line: &[u8] = b"GET /primary HTTP/1.1\r\n";
        let mut buf = [0u8; 1024];
        let closed = 'conn: loop {
            if c.write_all(line).await.is_err() {
                break true;
            }
            line = b"X-Slow: 1\r\n";
            let next = tokio::time::Instant::now() + TICK;
            loop {
                if stop.load(Ordering::SeqCst) {
                    break 'conn false;
                }
                tokio::select! {
                    r = c.read(&mut buf) => if !matches!(r, Ok(1..)) { break 'conn true },
                    _ = tokio::time::sleep_until(next) => break,
                }
            }
        };
        stats.open.fetch_sub(1, Ordering::SeqCst);
        drop(c);
        if closed {
            stats.closed.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(TICK).await;
        }
    }
}

/// Requests on odd paths, `rate` a second, each on a new connection from the next source
/// address (so as many peers as addresses ask), at most 64 in flight.
async fn odd_paths(addr: SocketAddr, from: Arc<Vec<IpAddr>>, rate: u32, stop: Arc<AtomicBool>, stats: Arc<HostileStats>) {
    let limit = Arc::new(Semaphore::new(64));
    let t0 = Instant::now();
    // A xorshift: random paths, no dependency, the same sequence every run.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut i: u64 = 0;
    while !stop.load(Ordering::SeqCst) {
        let due = t0 + Duration::from_secs_f64(i as f64 / f64::from(rate));
        if due > Instant::now() {
            tokio::time::sleep_until(due.into()).await;
        }
        let Ok(permit) = limit.clone().acquire_owned().await else { break };
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let path = match ODD_PATHS[(i % ODD_PATHS.len() as u64) as usize] {
            "RANDOM" => format!("/{x:x}/{}", x % 1000),
            "LONG" => format!("/primary{}", "/".repeat(4000)),
            p => p.to_owned(),
        };
        let src = from[(i % from.len() as u64) as usize];
        let stats = stats.clone();
        tokio::spawn(async move {
            let outcome = tokio::time::timeout(Duration::from_secs(2), async {
                let mut c = connect_from(Some(src), addr).await.map_err(|_| "error".to_owned())?;
                c.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).await.map_err(|_| "closed".to_owned())?;
                let mut answer = Vec::new();
                let _ = c.read_to_end(&mut answer).await;
                let line = answer.split(|b| *b == b'\n').next().unwrap_or_default();
                let code = String::from_utf8_lossy(line).split_whitespace().nth(1).map(str::to_owned);
                Ok::<_, String>(code.unwrap_or_else(|| "closed".into()))
            })
            .await
            .unwrap_or_else(|_| Err("timeout".into()));
            let key = outcome.unwrap_or_else(|e| e);
            *stats.odd.lock().unwrap_or_else(|e| e.into_inner()).entry(key).or_default() += 1;
            drop(permit);
        });
        i += 1;
    }
    let _ = limit.acquire_many(64).await;
}

// ---------------------------------------------------------------------------------------
// The watched processes.

struct Watch {
    name: String,
    pid: i32,
    pids: Option<Arc<Mutex<PidCounter>>>,
    idle: Option<Window>,
    storm: Option<Window>,
}

/// The cumulative readings at one moment.
struct Mark {
    at: Instant,
    cpu_s: f64,
    forks: Option<u64>,
}

/// What a window cost.
#[derive(Debug, Clone, Copy)]
struct Window {
    s: f64,
    cpu_s: f64,
    forks: Option<u64>,
}

impl Mark {
    fn since(&self, start: &Mark) -> Window {
        Window { s: (self.at - start.at).as_secs_f64(), cpu_s: self.cpu_s - start.cpu_s, forks: self.forks.zip(start.forks).map(|(b, a)| b.saturating_sub(a)) }
    }
}

impl Watch {
    fn new(spec: &str) -> Result<Watch> {
        let (name, pid) = spec.split_once('=').with_context(|| format!("--watch takes NAME=PID, got {spec:?}"))?;
        let pid: i32 = pid.trim().parse().with_context(|| format!("--watch {spec:?}: not a pid"))?;
        ensure!(!name.is_empty() && pid > 0, "--watch takes NAME=PID, got {spec:?}");
        cpu_seconds(pid).with_context(|| format!("--watch {name}: cannot read process {pid}"))?;
        let theirs = std::fs::read_link(format!("/proc/{pid}/ns/pid")).with_context(|| format!("--watch {name}: cannot read the PID namespace of {pid}"))?;
        let ours = std::fs::read_link("/proc/self/ns/pid").context("cannot read our own PID namespace")?;
        // In our own namespace every pid of the machine would count: no fork figure.
        let pids = if theirs != ours {
            Some(Arc::new(Mutex::new(PidCounter::new(pid).with_context(|| format!("--watch {name}: cannot count forks in the PID namespace of {pid}"))?)))
        } else {
            None
        };
        Ok(Watch { name: name.to_owned(), pid, pids, idle: None, storm: None })
    }

    fn mark(&mut self) -> Result<Mark> {
        let forks = match &self.pids {
            Some(c) => {
                let mut c = c.lock().unwrap_or_else(|e| e.into_inner());
                c.sample()?;
                Some(c.total)
            }
            None => None,
        };
        let cpu_s = cpu_seconds(self.pid).with_context(|| format!("watched process {} ({}) is gone", self.name, self.pid))?;
        Ok(Mark { at: Instant::now(), cpu_s, forks })
    }

    /// The windows, and what one check of the `sent` cost.
    fn report(&self, sent: u64) -> Value {
        let win = |w: &Option<Window>| w.map(|w| json!({ "s": round3(w.s), "cpu_s": round3(w.cpu_s), "forks": w.forks }));
        // What the checks cost: the storm minus the background rate of the idle window.
        let (mut cpu, mut forks) = (None, None);
        if let Some(s) = self.storm {
            let (idle_cpu_rate, idle_fork_rate) = match self.idle {
                Some(i) if i.s > 0.0 => (i.cpu_s / i.s, i.forks.map(|f| f as f64 / i.s)),
                _ => (0.0, Some(0.0)),
            };
            if sent > 0 {
                cpu = Some(round3(((s.cpu_s - idle_cpu_rate * s.s).max(0.0)) * 1e6 / sent as f64));
                forks = s.forks.zip(idle_fork_rate).map(|(f, r)| round3((f as f64 - r * s.s).max(0.0) / sent as f64));
            }
        }
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
        let kb = |key: &str| status.lines().find_map(|l| l.strip_prefix(key)).and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
        json!({
            "pid": self.pid,
            "idle": win(&self.idle),
            "storm": win(&self.storm),
            "cpu_ms_per_1000": cpu,
            "forks_per_check": forks,
            "vmhwm_kb": kb("VmHWM:"),
            "vmrss_kb": kb("VmRSS:"),
        })
    }
}

/// User + system CPU of a process and of the children it has waited for, in seconds.
fn cpu_seconds(pid: i32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces and parentheses).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).context("unreadable /proc stat")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime, stime, cutime, cstime: fields 14-17 of proc(5), 11-14 after the name.
    let ticks: u64 = f.get(11..15).context("short /proc stat")?.iter().map(|v| v.parse::<u64>().unwrap_or(0)).sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Ok(ticks as f64 / hz)
}

/// Pids allocated in one PID namespace: a shell inside it reads the namespace's
/// `ns_last_pid` with builtins on each request (so reading allocates no pid there).
struct PidCounter {
    child: Child,
    input: Option<ChildStdin>,
    output: BufReader<ChildStdout>,
    last: u64,
    total: u64,
    pid_max: u64,
}

impl PidCounter {
    fn new(pid: i32) -> Result<PidCounter> {
        let mut child = Command::new("nsenter")
            .args([
                "--target",
                &pid.to_string(),
                "--pid",
                "--",
                "bash",
                "-c",
                "while read -r _; do read -r v < /proc/sys/kernel/ns_last_pid && echo \"$v\"; done",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot run nsenter")?;
        let input = child.stdin.take().context("no stdin")?;
        let output = BufReader::new(child.stdout.take().context("no stdout")?);
        let pid_max = std::fs::read_to_string("/proc/sys/kernel/pid_max").ok().and_then(|v| v.trim().parse().ok()).unwrap_or(32768);
        let mut c = PidCounter { child, input: Some(input), output, last: 0, total: 0, pid_max };
        c.last = c.read()?;
        Ok(c)
    }

    fn read(&mut self) -> Result<u64> {
        let input = self.input.as_mut().context("the namespace's pid reader is closed")?;
        input.write_all(b"\n").and_then(|()| input.flush()).context("the namespace's pid reader is gone")?;
        let mut line = String::new();
        self.output.read_line(&mut line).context("the namespace's pid reader is gone")?;
        line.trim().parse().with_context(|| format!("unreadable ns_last_pid {line:?}"))
    }

    /// Add the pids allocated since the last reading (allocation restarts at 300 after
    /// pid_max, as the kernel does).
    fn sample(&mut self) -> Result<()> {
        let now = self.read()?;
        self.total += if now >= self.last { now - self.last } else { (self.pid_max - self.last) + now.saturating_sub(300) };
        self.last = now;
        Ok(())
    }
}

impl Drop for PidCounter {
    fn drop(&mut self) {
        // End of input ends the reader's loop, then nsenter (its parent, outside the
        // namespace) reaps it and exits: nothing is left in the watched namespace.
        drop(self.input.take());
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_answers_are_judged_by_their_status_line() {
        assert!(judge_http(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n", 200).is_ok());
        assert!(judge_http(b"HTTP/1.1 503 Service Unavailable\r\n\r\n", 503).is_ok());
        assert_eq!(judge_http(b"HTTP/1.1 503 Service Unavailable\r\n\r\n", 200).unwrap_err().0, "wrong");
        assert_eq!(judge_http(b"", 200).unwrap_err().0, "garbage");
        assert_eq!(judge_http(b"production\n", 200).unwrap_err().0, "garbage");
    }

    #[test]
    fn lines_are_judged_whole() {
        assert!(judge_line(b"standby\n", None).is_ok());
        assert!(judge_line(b"production\n", Some("production")).is_ok());
        assert_eq!(judge_line(b"standby\n", Some("production")).unwrap_err().0, "wrong");
        assert_eq!(judge_line(b"productionX\n", None).unwrap_err().0, "garbage");
        assert_eq!(judge_line(b"", None).unwrap_err().0, "garbage");
    }

    #[test]
    fn hostile_sources_are_addresses_and_networks() {
        let v = parse_sources("127.0.0.2, 127.0.1.0/30 2001:db8::/127").unwrap();
        let want: Vec<IpAddr> =
            ["127.0.0.2", "127.0.1.0", "127.0.1.1", "127.0.1.2", "127.0.1.3", "2001:db8::", "2001:db8::1"].iter().map(|a| a.parse().unwrap()).collect();
        assert_eq!(v, want);
        assert_eq!(parse_sources("127.0.1.77/24").unwrap().len(), 256);
        for bad in ["", "nope", "127.0.0.0/33", "10.0.0.0/8", "2001:db8::/64"] {
            assert!(parse_sources(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cpu_of_this_process_is_readable() {
        assert!(cpu_seconds(std::process::id() as i32).unwrap() >= 0.0);
    }
}
