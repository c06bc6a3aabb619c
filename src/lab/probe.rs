//! `paceline-lab probe` — the lab's writer probe.
//!
//! Why it exists: a failover is judged by what a client sees, not by what the cluster says.
//! The probe runs outside the cluster's nodes (in the lab's client namespace), writes through
//! the virtual IP at a fixed cadence while a scenario breaks something, and afterwards tells
//! how long writes were unavailable, whether any write the cluster acknowledged is gone, and
//! whether two nodes were ever primary at once. It prints one line of JSON on stdout; the
//! scenarios collect those lines into the benchmark tables.
//!
//! Definitions (the numbers mean exactly this):
//!
//! - **Attempt**: at `t0 + k × interval` (slot `k`, `t0` = when measuring began) the probe
//!   opens a *new* connection to the VIP and runs `INSERT INTO paceline_probe(run, seq)
//!   VALUES (run, k)` in autocommit. Attempts never overlap: when one overruns its slot, the
//!   slots that went by are *skipped* (missing), so `seq` is the slot number and a skipped
//!   slot is a seq that was never tried. An attempt is bounded by `--connect-timeout-ms` for
//!   connecting plus the same again for the INSERT, so a hung server cannot stall the probe.
//! - **Acknowledged**: the INSERT returned success to the probe. Anything else — refused,
//!   timed out, an error from the server, a connection cut before the answer — is *failed*,
//!   even if the row was in fact committed (those are counted as `unacked_committed`).
//! - **Outage** (`longest_outage_ms`): the longest time between the completion of two
//!   consecutive acknowledged attempts, counted only across spans that contain at least one
//!   failed attempt or skipped slot (so normal cadence and a merely slow write that missed no
//!   slot are not outages). The start of measuring counts as an acknowledgement; if writes
//!   never came back, the last span runs to the stop and `outage_open` is true. 0 when no
//!   attempt failed and no slot was skipped.
//! - **Lost**: acknowledged seqs missing from `SELECT seq FROM paceline_probe WHERE run = $1`
//!   read through the VIP after the stop, from a node that answers as a primary (retried for
//!   up to `--final-timeout-s`). If no primary answered, `final_check` holds the error and
//!   `lost_rows`/`lost` are null: unknown, not zero.
//! - **Primary**: a node that answers `SELECT pg_is_in_recovery()` with `false` on its own
//!   address. Every `--sample-ms` all nodes are asked at once (each bounded by
//!   min(300 ms, sample)); a node that does not answer is not counted, so a primary cut off
//!   from the probe is invisible to it. A double-primary range runs from the first sample
//!   that saw ≥ 2 primaries to the first later sample that saw fewer (or the last sample):
//!   `double_primary_ms` is their total, at the resolution of the sampling period.
//!
//! - **Routers** (`--via A,B,C`, for clusters without a VIP): the writes, the set-up and the
//!   final check go through a list of routers (the nodes' HAProxy, `--via-port`) instead of
//!   the VIP. An attempt connects to the router that last accepted a TCP connection; only
//!   when that one cannot be reached at all (refused, unreachable, `--connect-timeout-ms`)
//!   does it try the next in the list, in the same attempt, as libpq's multi-host
//!   connection strings do — so a crashed node's router costs one connect timeout once,
//!   not on every write. A router that accepts the connection and then has no server for it
//!   (it closes it) is a failed attempt, not a reason to change routers: the others see
//!   the same cluster. `via_switches` counts the changes, `acked_via` the acknowledged
//!   writes per router.
//! - **Routed to a non-primary** (`routed_to_non_primary`): attempts the server refused as
//!   read-only (SQLSTATE 25006, `cannot execute INSERT in a read-only transaction`): the
//!   connection reached a standby. (A write can reach no other non-primary and be
//!   acknowledged; a write acknowledged by a primary that should not have been one shows
//!   up in `lost_rows` or as two primaries.)
//!
//! Stop: SIGTERM, SIGINT or `--duration-s`. The attempt in flight is finished (it is
//! bounded, see above), one last sample of all nodes gives `final_primaries`, then the final
//! check runs. A second signal during the final check abandons it (`final_check` says so).
//! Exit status: 0 whenever the measurement ran — failed writes are a result, not an error;
//! non-zero only for bad arguments or when the probe could not start (no table through the
//! VIP within `--final-timeout-s`).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_postgres::{Client, Config, NoTls};

/// How many lost seqs, double-primary ranges and distinct error texts the JSON line lists.
const LIST_MAX: usize = 20;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The virtual IP clients write to (or --via).
    #[arg(long, required_unless_present = "via")]
    pub vip: Option<IpAddr>,
    /// Write through these routers instead of a VIP (comma-separated, tried in order from
    /// the last one reached; see the module doc), e.g. each node's HAProxy.
    #[arg(long, value_delimiter = ',', conflicts_with = "vip")]
    pub via: Vec<IpAddr>,
    /// The routers' port (--via); default --port.
    #[arg(long)]
    pub via_port: Option<u16>,
    /// Each node's own address, comma-separated; sampled for its role.
    #[arg(long, value_delimiter = ',', required = true)]
    pub nodes: Vec<IpAddr>,
    /// PostgreSQL port, on the VIP and on every node.
    #[arg(long, default_value_t = 5432)]
    pub port: u16,
    #[arg(long, default_value = "postgres")]
    pub user: String,
    #[arg(long, default_value = "postgres")]
    pub dbname: String,
    /// Write cadence: attempt k starts at t0 + k × interval.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    pub interval_ms: u64,
    /// Role sampling period.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..))]
    pub sample_ms: u64,
    /// Bound on connecting (and, again, on the INSERT) for each write attempt.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub connect_timeout_ms: u64,
    /// Measure for this long, then stop (default: until SIGTERM or SIGINT).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub duration_s: Option<u64>,
    /// Tag of this run's rows in paceline_probe (default: UTC time and pid).
    #[arg(long)]
    pub run_id: Option<String>,
    /// Created (with the run id in it) once the table exists and the first write was
    /// acknowledged, so a script knows measuring has begun. Removed at start if stale.
    #[arg(long)]
    pub ready_file: Option<PathBuf>,
    /// How long setup and the final check keep retrying the VIP.
    #[arg(long, default_value_t = 30)]
    pub final_timeout_s: u64,
    /// statement_timeout for the writes (a client that cancels its commit's wait for
    /// synchronous standbys: PostgreSQL then reports the commit as a success).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub statement_timeout_ms: Option<u64>,
    /// Emulate a driver's query timeout: when an INSERT has not answered after this long,
    /// send PostgreSQL a cancel request and take whatever it then answers. A commit whose
    /// wait for synchronous standbys is cancelled is reported as a success (with a WARNING):
    /// counted as acknowledged, as a client would take it.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub cancel_after_ms: Option<u64>,
    /// Where the final check reads the rows (default: the --vip address). A writer on a
    /// node that is cut off writes to that node, and checks on the cluster's VIP.
    #[arg(long)]
    pub check_at: Option<IpAddr>,
    /// The final check through these routers instead (`--via-port`), e.g. the other nodes'
    /// HAProxy for a writer on a node that is cut off, in a cluster without a VIP.
    #[arg(long, value_delimiter = ',', conflicts_with = "check_at")]
    pub check_via: Vec<IpAddr>,
}

/// Run the probe and print its JSON line.
pub fn run(args: Args) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")?;
    let line = rt.block_on(probe(args))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").and_then(|()| out.flush()).context("cannot write the result to stdout")
}

// ---------------------------------------------------------------------------------------
// Records. All times are offsets from t0, the moment measuring began.

#[derive(Debug, Clone, PartialEq)]
struct Attempt {
    seq: i64,
    /// Slots skipped just before this attempt (an earlier attempt overran).
    skipped_before: u64,
    start: Duration,
    end: Duration,
    result: Result<(), String>,
    /// The router (index into `--via`) the attempt's connection went through.
    via: Option<usize>,
}

#[derive(Debug, Default)]
struct Writer {
    attempts: Vec<Attempt>,
    /// Slots skipped after the last attempt, before the stop.
    skipped_at_end: u64,
}

#[derive(Debug, Clone)]
struct Sample {
    at: Duration,
    /// Indexes (into `--nodes`) of the nodes that answered `false`.
    primaries: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq)]
struct Outage {
    from: Duration,
    to: Duration,
    open: bool,
    failed: u64,
    skipped: u64,
}

#[derive(Debug, Clone, PartialEq)]
struct DoubleRange {
    from: Duration,
    to: Duration,
    nodes: BTreeSet<usize>,
}

// ---------------------------------------------------------------------------------------
// The measurement.

async fn probe(args: Args) -> Result<String> {
    let mut sigterm = signal(SignalKind::terminate()).context("cannot catch SIGTERM")?;
    let mut sigint = signal(SignalKind::interrupt()).context("cannot catch SIGINT")?;
    let run = args.run_id.clone().unwrap_or_else(default_run_id);
    anyhow::ensure!(!run.is_empty(), "--run-id must not be empty");
    if let Some(f) = &args.ready_file {
        match std::fs::remove_file(f) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => bail!("cannot remove the stale ready file {}: {e}", f.display()),
        }
    }
    let connect_timeout = Duration::from_millis(args.connect_timeout_ms);
    let final_timeout = Duration::from_secs(args.final_timeout_s);
    anyhow::ensure!(args.via.is_empty() || args.cancel_after_ms.is_none(), "--cancel-after-ms works with --vip only");
    let vip = match args.vip {
        Some(ip) => Target::Direct(pg_config(&args, ip, connect_timeout)),
        None => Target::via(pg_config_any(&args, connect_timeout), args.via.clone(), args.via_port.unwrap_or(args.port)),
    };
    let check = match args.check_at {
        Some(ip) => Target::Direct(pg_config(&args, ip, connect_timeout)),
        None if !args.check_via.is_empty() => Target::via(pg_config_any(&args, connect_timeout), args.check_via.clone(), args.via_port.unwrap_or(args.port)),
        None => match args.vip {
            Some(ip) => Target::Direct(pg_config(&args, ip, connect_timeout)),
            None => Target::via(pg_config_any(&args, connect_timeout), args.via.clone(), args.via_port.unwrap_or(args.port)),
        },
    };
    let mut sigusr1 = signal(SignalKind::user_defined1()).context("cannot catch SIGUSR1")?;

    tokio::select! {
        r = setup(&vip, connect_timeout, final_timeout) => r.with_context(|| {
            format!("cannot create the probe table through {} within {} s", vip.describe(), args.final_timeout_s)
        })?,
        _ = sigterm.recv() => bail!("interrupted (SIGTERM) before measuring began"),
        _ = sigint.recv() => bail!("interrupted (SIGINT) before measuring began"),
    }
    eprintln!(
        "paceline-lab probe: run {run}: writing to {} every {} ms, sampling {} node(s) every {} ms",
        vip.describe(),
        args.interval_ms,
        args.nodes.len(),
        args.sample_ms
    );

    let t0 = Instant::now();
    let wall0 = SystemTime::now();
    let (stop_tx, stop_rx) = watch::channel(false);
    let duration = args.duration_s.map(Duration::from_secs);
    let stopper = async {
        tokio::select! {
            _ = sigterm.recv() => {}
            _ = sigint.recv() => {}
            _ = async { match duration { Some(d) => tokio::time::sleep_until((t0 + d).into()).await, None => std::future::pending().await } } => {}
        }
        let _ = stop_tx.send(true);
    };
    let node_timeout = Duration::from_millis(args.sample_ms.min(300));
    // SIGUSR1 marks a moment (a scenario's event): acknowledgements after it are counted.
    let mut mark_stop = stop_rx.clone();
    let marker = async {
        tokio::select! {
            _ = sigusr1.recv() => Some(t0.elapsed()),
            _ = mark_stop.wait_for(|s| *s) => None,
        }
    };
    let (_, mark, writer, samples) = tokio::join!(
        stopper,
        marker,
        write_loop(
            &vip,
            &run,
            Duration::from_millis(args.interval_ms),
            connect_timeout,
            args.cancel_after_ms.map(Duration::from_millis),
            t0,
            args.ready_file.as_deref(),
            stop_rx.clone()
        ),
        sample_loop(&args, Duration::from_millis(args.sample_ms), node_timeout, t0, stop_rx.clone()),
    );
    let stopped = t0.elapsed();
    let mut samples = samples;

    // The end: one last look at every node (with more patience than the sampler), then the
    // rows through the VIP. A second signal abandons the final check.
    let final_roles = sample_nodes(&args, connect_timeout).await;
    samples.push(Sample { at: t0.elapsed(), primaries: primaries_of(&final_roles) });
    let final_rows = tokio::select! {
        r = final_check(&check, &run, connect_timeout, final_timeout) => r,
        _ = sigterm.recv() => Err("interrupted (SIGTERM) during the final check".to_string()),
        _ = sigint.recv() => Err("interrupted (SIGINT) during the final check".to_string()),
    };

    let report = Report {
        args: &args,
        run: &run,
        wall0,
        stopped,
        writer: &writer,
        samples: &samples,
        final_roles: &final_roles,
        final_rows: &final_rows,
        mark,
        via_switches: vip.switches(),
    };
    Ok(report.json().to_string())
}

fn pg_config(args: &Args, ip: IpAddr, connect_timeout: Duration) -> Config {
    let mut c = pg_config_any(args, connect_timeout);
    c.hostaddr(ip).port(args.port);
    c
}

/// The connection parameters without an address (for connections over a socket we opened).
fn pg_config_any(args: &Args, connect_timeout: Duration) -> Config {
    let mut c = Config::new();
    c.user(&args.user).dbname(&args.dbname).connect_timeout(connect_timeout).application_name("paceline-probe");
    if let Some(t) = args.statement_timeout_ms {
        c.options(format!("-c statement_timeout={t}"));
    }
    c
}

/// Where a connection goes: one address (the VIP, a node), or a list of routers (`--via`).
enum Target {
    Direct(Config),
    Via(Via),
}

/// Routers tried in order from the one that last accepted a TCP connection (module doc).
struct Via {
    cfg: Config,
    hosts: Vec<IpAddr>,
    port: u16,
    current: std::sync::atomic::AtomicUsize,
    switches: std::sync::atomic::AtomicU64,
}

impl Target {
    fn via(cfg: Config, hosts: Vec<IpAddr>, port: u16) -> Target {
        Target::Via(Via { cfg, hosts, port, current: 0.into(), switches: 0.into() })
    }

    fn describe(&self) -> String {
        match self {
            Target::Direct(c) => match (c.get_hostaddrs().first(), c.get_ports().first()) {
                (Some(h), Some(p)) => format!("{h}:{p}"),
                _ => "?".into(),
            },
            Target::Via(v) => format!("{} (port {}, in order)", v.hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>().join(","), v.port),
        }
    }

    fn switches(&self) -> Option<u64> {
        match self {
            Target::Direct(_) => None,
            Target::Via(v) => Some(v.switches.load(std::sync::atomic::Ordering::Relaxed)),
        }
    }

    /// Connect (each step bounded by `limit`): the client, its I/O task, and the router used.
    async fn connect(&self, limit: Duration) -> Result<(Conn, Option<usize>), String> {
        match self {
            Target::Direct(cfg) => match tokio::time::timeout(limit, cfg.connect(NoTls)).await {
                Ok(Ok((client, connection))) => Ok((
                    Conn {
                        client: Some(client),
                        task: Some(tokio::spawn(async move {
                            let _ = connection.await;
                        })),
                    },
                    None,
                )),
                Ok(Err(e)) => Err(short_error(&e)),
                Err(_) => Err("connect timed out".into()),
            },
            Target::Via(v) => {
                use std::sync::atomic::Ordering::Relaxed;
                let n = v.hosts.len();
                let first = v.current.load(Relaxed) % n.max(1);
                let mut last = String::from("no router");
                for k in 0..n {
                    let h = (first + k) % n;
                    let stream = match tokio::time::timeout(limit, tokio::net::TcpStream::connect((v.hosts[h], v.port))).await {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            last = format!("{}:{}: {e}", v.hosts[h], v.port);
                            continue;
                        }
                        Err(_) => {
                            last = format!("{}:{}: connect timed out", v.hosts[h], v.port);
                            continue;
                        }
                    };
                    if h != first {
                        v.current.store(h, Relaxed);
                        v.switches.fetch_add(1, Relaxed);
                    }
                    let _ = stream.set_nodelay(true);
                    return match tokio::time::timeout(limit, v.cfg.connect_raw(stream, NoTls)).await {
                        Ok(Ok((client, connection))) => Ok((
                            Conn {
                                client: Some(client),
                                task: Some(tokio::spawn(async move {
                                    let _ = connection.await;
                                })),
                            },
                            Some(h),
                        )),
                        Ok(Err(e)) => Err(short_error(&e)),
                        Err(_) => Err("connect timed out".into()),
                    };
                }
                Err(truncate(&format!("no router reachable (last: {last})"), 120))
            }
        }
    }
}

async fn setup(vip: &Target, connect_timeout: Duration, final_timeout: Duration) -> Result<()> {
    const DDL: &str = "CREATE TABLE IF NOT EXISTS paceline_probe (run text NOT NULL, seq bigint NOT NULL, \
                       at timestamptz NOT NULL DEFAULT clock_timestamp(), PRIMARY KEY (run, seq))";
    let deadline = Instant::now() + final_timeout;
    loop {
        let err = match query_once(vip, connect_timeout, |c| Box::pin(async move { c.batch_execute(DDL).await })).await {
            (Ok(()), _, _) => return Ok(()),
            (Err(e), _, _) => e,
        };
        if Instant::now() + Duration::from_millis(200) >= deadline {
            bail!("last error: {err}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[allow(clippy::too_many_arguments)]
async fn write_loop(
    vip: &Target,
    run: &str,
    interval: Duration,
    connect_timeout: Duration,
    cancel_after: Option<Duration>,
    t0: Instant,
    ready_file: Option<&std::path::Path>,
    mut stop: watch::Receiver<bool>,
) -> Writer {
    let mut w = Writer::default();
    let mut k: u64 = 0;
    let mut skipped: u64 = 0;
    let mut ready = ready_file.is_none();
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(slot(t0, interval, k).into()) => {}
            _ = stop.wait_for(|s| *s) => break,
        }
        if *stop.borrow() {
            break;
        }
        let seq = k as i64;
        let start = t0.elapsed();
        let run_ = run.to_string();
        let (result, end, via) = query_cancelling(vip, connect_timeout, cancel_after, move |c| {
            Box::pin(async move { c.execute("INSERT INTO paceline_probe(run, seq) VALUES ($1, $2)", &[&run_, &seq]).await })
        })
        .await;
        let ok = result.is_ok();
        w.attempts.push(Attempt { seq, skipped_before: skipped, start, end: end - t0, result: result.map(|_| ()), via });
        if ok && !ready {
            ready = true;
            if let Some(f) = ready_file {
                if let Err(e) = std::fs::write(f, format!("{run}\n")) {
                    eprintln!("paceline-lab probe: cannot create the ready file {}: {e}", f.display());
                }
            }
        }
        let next = next_slot(k, t0.elapsed(), interval);
        skipped = next - k - 1;
        k = next;
    }
    w.skipped_at_end = skipped;
    w
}

/// When slot `k` starts.
fn slot(t0: Instant, interval: Duration, k: u64) -> Instant {
    t0 + Duration::from_nanos(u64::try_from(interval.as_nanos()).unwrap_or(u64::MAX).saturating_mul(k))
}

/// The first slot after `k` that has not started yet at `now` (slots that went by while an
/// attempt ran are skipped).
fn next_slot(k: u64, now: Duration, interval: Duration) -> u64 {
    let iv = interval.as_nanos().max(1);
    let n = now.as_nanos();
    let due = u64::try_from(n.div_ceil(iv)).unwrap_or(u64::MAX);
    due.max(k + 1)
}

async fn sample_loop(args: &Args, period: Duration, node_timeout: Duration, t0: Instant, mut stop: watch::Receiver<bool>) -> Vec<Sample> {
    let mut samples = Vec::new();
    let mut k: u64 = 0;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(slot(t0, period, k).into()) => {}
            _ = stop.wait_for(|s| *s) => break,
        }
        if *stop.borrow() {
            break;
        }
        let at = t0.elapsed();
        let roles = sample_nodes(args, node_timeout).await;
        samples.push(Sample { at, primaries: primaries_of(&roles) });
        k = next_slot(k, t0.elapsed(), period);
    }
    samples
}

/// Every node's answer to `pg_is_in_recovery()`, asked at once: Ok(true) = primary.
async fn sample_nodes(args: &Args, timeout: Duration) -> Vec<Result<bool, String>> {
    let asks = args.nodes.iter().map(|ip| {
        let cfg = Target::Direct(pg_config(args, *ip, timeout));
        async move {
            let (r, _, _) = query_once(&cfg, timeout, |c| Box::pin(async move { c.simple_query("SELECT pg_is_in_recovery()").await })).await;
            r.and_then(|msgs| recovery_flag(&msgs)).map(|in_recovery| !in_recovery)
        }
    });
    futures::future::join_all(asks).await
}

fn primaries_of(roles: &[Result<bool, String>]) -> Vec<usize> {
    roles.iter().enumerate().filter(|(_, r)| matches!(r, Ok(true))).map(|(i, _)| i).collect()
}

fn recovery_flag(msgs: &[tokio_postgres::SimpleQueryMessage]) -> Result<bool, String> {
    for m in msgs {
        if let tokio_postgres::SimpleQueryMessage::Row(row) = m {
            return match row.get(0) {
                Some("t") => Ok(true),
                Some("f") => Ok(false),
                other => Err(format!("unexpected answer {other:?} to pg_is_in_recovery()")),
            };
        }
    }
    Err("no row from pg_is_in_recovery()".into())
}

/// The acknowledged rows as the primary behind the VIP has them, retried until a primary
/// answers or `final_timeout` has passed.
async fn final_check(vip: &Target, run: &str, connect_timeout: Duration, final_timeout: Duration) -> Result<HashSet<i64>, String> {
    let deadline = Instant::now() + final_timeout;
    loop {
        let run = run.to_string();
        let (r, _, _) = query_once(vip, connect_timeout, move |c| {
            Box::pin(async move {
                let in_recovery: bool = c.query_one("SELECT pg_is_in_recovery()", &[]).await?.get(0);
                let rows = c.query("SELECT seq FROM paceline_probe WHERE run = $1", &[&run]).await?;
                Ok((in_recovery, rows.iter().map(|r| r.get::<_, i64>(0)).collect::<HashSet<i64>>()))
            })
        })
        .await;
        let err = match r {
            Ok((false, seqs)) => return Ok(seqs),
            Ok((true, _)) => "the VIP (or router) answered only as a standby (in recovery)".to_string(),
            Err(e) => e,
        };
        if Instant::now() + Duration::from_millis(200) >= deadline {
            return Err(format!("{err} (gave up after {} s)", final_timeout.as_secs()));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

// ---------------------------------------------------------------------------------------
// One connection, one piece of work, bounded.

/// A connection whose I/O task is aborted when it is dropped, so an abandoned (timed out)
/// connection never lingers.
struct Conn {
    client: Option<Client>,
    task: Option<JoinHandle<()>>,
}

impl Conn {
    /// Say goodbye properly (the server then logs no "unexpected EOF"), briefly.
    async fn close(mut self) {
        self.client.take();
        if let Some(task) = self.task.as_mut() {
            let _ = tokio::time::timeout(Duration::from_millis(200), task).await;
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

type PgFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, tokio_postgres::Error>> + 'a>>;

/// Open a new connection (bounded by `limit`), run `work` on it (bounded by `limit` again)
/// and close it. Returns the result, when it was known (before the close), and the router
/// the connection went through (`--via`).
async fn query_once<T, F>(cfg: &Target, limit: Duration, work: F) -> (Result<T, String>, Instant, Option<usize>)
where
    F: for<'c> FnOnce(&'c Client) -> PgFuture<'c, T>,
{
    query_cancelling(cfg, limit, None, work).await
}

/// [`query_once`], sending a cancel request when the work has not answered after
/// `cancel_after` (then bounded by `limit` more).
async fn query_cancelling<T, F>(cfg: &Target, limit: Duration, cancel_after: Option<Duration>, work: F) -> (Result<T, String>, Instant, Option<usize>)
where
    F: for<'c> FnOnce(&'c Client) -> PgFuture<'c, T>,
{
    let (conn, via) = match cfg.connect(limit).await {
        Ok(c) => c,
        Err(e) => return (Err(e), Instant::now(), None),
    };
    let Some(client) = conn.client.as_ref() else { return (Err("no client".into()), Instant::now(), via) };
    let cancel = client.cancel_token();
    let mut work = work(client);
    let work = async {
        if let Some(after) = cancel_after {
            tokio::select! {
                r = &mut work => return r,
                _ = tokio::time::sleep(after) => {
                    let _ = tokio::time::timeout(limit, cancel.cancel_query(NoTls)).await;
                }
            }
        }
        work.await
    };
    let (result, timed_out) = match tokio::time::timeout(limit + cancel_after.unwrap_or_default(), work).await {
        Ok(Ok(v)) => (Ok(v), false),
        Ok(Err(e)) => (Err(short_error(&e)), false),
        Err(_) => (Err("statement timed out".into()), true),
    };
    let end = Instant::now();
    if !timed_out {
        conn.close().await;
    }
    (result, end, via)
}

/// A short, stable error text: the server's message, or the client's error and its cause.
fn short_error(e: &tokio_postgres::Error) -> String {
    let text = match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    };
    truncate(&text, 120)
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

// ---------------------------------------------------------------------------------------
// The numbers.

/// The longest outage (see the module doc), if any attempt failed or any slot was skipped.
fn longest_outage(w: &Writer, stopped: Duration) -> Option<Outage> {
    let mut best: Option<Outage> = None;
    let mut consider = |o: Outage| {
        if best.as_ref().is_none_or(|b| o.to - o.from > b.to - b.from) {
            best = Some(o);
        }
    };
    let (mut last_ack, mut failed, mut skipped) = (Duration::ZERO, 0u64, 0u64);
    for a in &w.attempts {
        skipped += a.skipped_before;
        if a.result.is_ok() {
            if failed + skipped > 0 {
                consider(Outage { from: last_ack, to: a.end, open: false, failed, skipped });
            }
            (last_ack, failed, skipped) = (a.end, 0, 0);
        } else {
            failed += 1;
        }
    }
    skipped += w.skipped_at_end;
    if failed + skipped > 0 {
        consider(Outage { from: last_ack, to: stopped.max(last_ack), open: true, failed, skipped });
    }
    best
}

/// The spans during which at least two primaries were seen (see the module doc).
fn double_ranges(samples: &[Sample]) -> Vec<DoubleRange> {
    let mut out = Vec::new();
    let mut open: Option<DoubleRange> = None;
    for s in samples {
        if s.primaries.len() >= 2 {
            let r = open.get_or_insert_with(|| DoubleRange { from: s.at, to: s.at, nodes: BTreeSet::new() });
            r.nodes.extend(s.primaries.iter().copied());
            r.to = s.at;
        } else if let Some(mut r) = open.take() {
            r.to = s.at;
            out.push(r);
        }
    }
    out.extend(open);
    out
}

struct Report<'a> {
    args: &'a Args,
    run: &'a str,
    wall0: SystemTime,
    stopped: Duration,
    writer: &'a Writer,
    samples: &'a [Sample],
    final_roles: &'a [Result<bool, String>],
    final_rows: &'a Result<HashSet<i64>, String>,
    /// When SIGUSR1 came, if it did.
    mark: Option<Duration>,
    /// Router changes (`--via`), None without routers.
    via_switches: Option<u64>,
}

impl Report<'_> {
    fn at(&self, d: Duration) -> Value {
        Value::String(rfc3339(self.wall0 + d))
    }

    fn json(&self) -> Value {
        let w = self.writer;
        let acked: Vec<i64> = w.attempts.iter().filter(|a| a.result.is_ok()).map(|a| a.seq).collect();
        let failed = w.attempts.len() - acked.len();
        let skipped: u64 = w.attempts.iter().map(|a| a.skipped_before).sum::<u64>() + w.skipped_at_end;
        let mut errors: BTreeMap<&str, u64> = BTreeMap::new();
        for a in &w.attempts {
            if let Err(e) = &a.result {
                *errors.entry(e.as_str()).or_default() += 1;
            }
        }
        let mut errors: Vec<(&str, u64)> = errors.into_iter().collect();
        errors.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let errors: serde_json::Map<String, Value> = errors.into_iter().take(LIST_MAX).map(|(e, n)| (e.to_string(), json!(n))).collect();
        // Refused as read-only: the connection reached a standby (module doc).
        let routed_to_non_primary = w.attempts.iter().filter(|a| matches!(&a.result, Err(e) if e.starts_with("25006:"))).count();
        let mut acked_via: BTreeMap<String, u64> = BTreeMap::new();
        for a in w.attempts.iter().filter(|a| a.result.is_ok()) {
            if let Some(h) = a.via {
                *acked_via.entry(self.args.via[h].to_string()).or_default() += 1;
            }
        }
        let max_write_ms = w.attempts.iter().filter(|a| a.result.is_ok()).map(|a| ms(a.end.saturating_sub(a.start))).max().unwrap_or(0);

        let outage = longest_outage(w, self.stopped);
        let (lost_rows, lost, unacked_committed, final_check) = match self.final_rows {
            Ok(present) => {
                let lost: Vec<i64> = acked.iter().copied().filter(|s| !present.contains(s)).collect();
                let unacked = w.attempts.iter().filter(|a| a.result.is_err() && present.contains(&a.seq)).count();
                (json!(lost.len()), json!(lost.iter().take(LIST_MAX).collect::<Vec<_>>()), json!(unacked), json!("ok"))
            }
            Err(e) => (Value::Null, Value::Null, Value::Null, json!(e)),
        };

        let node = |i: usize| self.args.nodes[i].to_string();
        let ranges = double_ranges(self.samples);
        let double_ms: u64 = ranges.iter().map(|r| ms(r.to - r.from)).sum();
        let max_primaries = self.samples.iter().map(|s| s.primaries.len()).max().unwrap_or(0);
        let final_nodes: serde_json::Map<String, Value> = self
            .final_roles
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let role = match r {
                    Ok(true) => "primary".to_string(),
                    Ok(false) => "standby".to_string(),
                    Err(e) => format!("down: {e}"),
                };
                (node(i), json!(role))
            })
            .collect();

        json!({
            "run": self.run,
            "vip": self.args.vip.map_or(Value::Null, |v| json!(v.to_string())),
            "via": self.args.via.iter().map(|h| h.to_string()).collect::<Vec<_>>(),
            "via_port": if self.args.via.is_empty() { Value::Null } else { json!(self.args.via_port.unwrap_or(self.args.port)) },
            "via_switches": self.via_switches,
            "acked_via": acked_via,
            "routed_to_non_primary": routed_to_non_primary,
            "started_at": self.at(Duration::ZERO),
            "duration_ms": ms(self.stopped),
            "interval_ms": self.args.interval_ms,
            "connect_timeout_ms": self.args.connect_timeout_ms,
            "attempts": w.attempts.len(),
            "acked": acked.len(),
            "failed": failed,
            "skipped": skipped,
            "max_write_ms": max_write_ms,
            "errors": errors,
            "longest_outage_ms": outage.as_ref().map_or(0, |o| ms(o.to - o.from)),
            "outage_from": outage.as_ref().map_or(Value::Null, |o| self.at(o.from)),
            "outage_to": outage.as_ref().map_or(Value::Null, |o| self.at(o.to)),
            "outage_open": outage.as_ref().is_some_and(|o| o.open),
            "outage_failed": outage.as_ref().map_or(0, |o| o.failed),
            "outage_skipped": outage.as_ref().map_or(0, |o| o.skipped),
            "final_check": final_check,
            "lost_rows": lost_rows,
            "lost": lost,
            "unacked_committed": unacked_committed,
            "samples": self.samples.len(),
            "max_primaries_seen": max_primaries,
            "double_primary": max_primaries >= 2,
            "double_primary_ms": double_ms,
            "double_primary_ranges": ranges.iter().take(LIST_MAX).map(|r| json!({
                "from": self.at(r.from), "to": self.at(r.to), "nodes": r.nodes.iter().map(|&i| node(i)).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "final_primaries": primaries_of(self.final_roles).into_iter().map(node).collect::<Vec<_>>(),
            "statement_timeout_ms": self.args.statement_timeout_ms,
            "cancel_after_ms": self.args.cancel_after_ms,
            "mark_at": self.mark.map_or(Value::Null, |m| self.at(m)),
            "acked_after_mark": self.mark.map_or(Value::Null, |m| json!(w.attempts.iter().filter(|a| a.result.is_ok() && a.end > m).count())),
            "final_nodes": final_nodes,
        })
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

// ---------------------------------------------------------------------------------------
// Time as text, without a date library.

fn default_run_id() -> String {
    let t = rfc3339(SystemTime::now());
    // 2026-11-23T19:05:16.123Z -> 20261123T190516Z-<pid>
    let compact: String = t[..19].chars().filter(|c| *c != '-' && *c != ':').collect();
    format!("{compact}Z-{}", std::process::id())
}

/// UTC, millisecond precision: `2026-11-23T19:05:16.123Z`.
fn rfc3339(t: SystemTime) -> String {
    crate::civil::rfc3339(t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms_(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn att(seq: i64, skipped_before: u64, end: u64, ok: bool) -> Attempt {
        Attempt { seq, skipped_before, start: ms_(end.saturating_sub(5)), end: ms_(end), result: if ok { Ok(()) } else { Err("x".into()) }, via: None }
    }

    #[test]
    fn no_failure_no_outage() {
        let w = Writer { attempts: (0..10).map(|k| att(k, 0, k as u64 * 100 + 5, true)).collect(), skipped_at_end: 0 };
        assert_eq!(longest_outage(&w, ms_(1000)), None);
    }

    #[test]
    fn outage_spans_ack_to_ack_around_failures() {
        let w = Writer {
            attempts: vec![
                att(0, 0, 5, true),
                att(1, 0, 105, true),
                att(2, 0, 300, false),
                att(5, 2, 1500, false),
                att(16, 10, 1605, true),
                att(17, 0, 1705, true),
            ],
            skipped_at_end: 0,
        };
        let o = longest_outage(&w, ms_(1800)).unwrap();
        assert_eq!((o.from, o.to, o.open, o.failed, o.skipped), (ms_(105), ms_(1605), false, 2, 12));
    }

    #[test]
    fn a_slow_write_that_skipped_slots_counts() {
        let w = Writer { attempts: vec![att(0, 0, 5, true), att(1, 0, 450, true), att(5, 3, 505, true)], skipped_at_end: 0 };
        let o = longest_outage(&w, ms_(600)).unwrap();
        assert_eq!((o.from, o.to, o.failed, o.skipped), (ms_(450), ms_(505), 0, 3));
    }

    #[test]
    fn outage_still_open_at_stop() {
        let w = Writer { attempts: vec![att(0, 0, 5, true), att(1, 0, 105, true), att(2, 0, 205, false), att(3, 0, 305, false)], skipped_at_end: 0 };
        let o = longest_outage(&w, ms_(2000)).unwrap();
        assert_eq!((o.from, o.to, o.open, o.failed), (ms_(105), ms_(2000), true, 2));
        // The longest wins: a short closed one earlier does not hide it.
        let w = Writer { attempts: vec![att(0, 0, 5, false), att(1, 0, 105, true), att(2, 0, 205, false)], skipped_at_end: 0 };
        let o = longest_outage(&w, ms_(2000)).unwrap();
        assert!(o.open && o.from == ms_(105));
    }

    #[test]
    fn failures_before_the_first_ack_count_from_t0() {
        let w = Writer { attempts: vec![att(0, 0, 5, false), att(1, 0, 705, true)], skipped_at_end: 0 };
        assert_eq!(longest_outage(&w, ms_(800)).unwrap().from, Duration::ZERO);
    }

    #[test]
    fn next_slot_skips_what_went_by() {
        let iv = ms_(100);
        assert_eq!(next_slot(0, ms_(3), iv), 1);
        assert_eq!(next_slot(0, ms_(100), iv), 1);
        assert_eq!(next_slot(0, ms_(101), iv), 2);
        assert_eq!(next_slot(3, ms_(1050), iv), 11);
    }

    #[test]
    fn double_primary_ranges() {
        let s = |at: u64, p: &[usize]| Sample { at: ms_(at), primaries: p.to_vec() };
        let samples = vec![s(0, &[0]), s(200, &[0, 1]), s(400, &[0, 1]), s(600, &[1]), s(800, &[1, 2]), s(1000, &[0, 1])];
        let r = double_ranges(&samples);
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].from, r[0].to, r[0].nodes.iter().copied().collect::<Vec<_>>()), (ms_(200), ms_(600), vec![0, 1]));
        assert_eq!((r[1].from, r[1].to, r[1].nodes.iter().copied().collect::<Vec<_>>()), (ms_(800), ms_(1000), vec![0, 1, 2]));
        assert!(double_ranges(&[s(0, &[0]), s(200, &[])]).is_empty());
    }

    #[test]
    fn rfc3339_utc() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_millis(951_782_400_123)), "2000-02-29T00:00:00.123Z");
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(1_798_761_599)), "2026-12-31T23:59:59.000Z");
        let id = default_run_id();
        assert!(id.len() > 17 && id.as_bytes()[8] == b'T' && id.contains("Z-"), "{id}");
    }

    /// --via: an unreachable router is skipped within the attempt, and the one that accepted
    /// becomes the first for the next attempts; a router that accepts and then fails the
    /// handshake (HAProxy with no server) is a failed attempt, not a reason to move on.
    #[test]
    fn via_moves_on_only_from_an_unreachable_router() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            // A router that accepts and closes at once, on 127.0.0.1; nothing on 127.0.0.2 at
            // that port (loopback refuses).
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = l.local_addr().unwrap().port();
            let closer = tokio::spawn(async move {
                loop {
                    let (s, _) = l.accept().await.unwrap();
                    drop(s);
                }
            });
            let hosts: Vec<IpAddr> = vec!["127.0.0.2".parse().unwrap(), "127.0.0.1".parse().unwrap()];
            let mut cfg = Config::new();
            cfg.user("postgres").dbname("postgres");
            let t = Target::via(cfg, hosts, port);
            let Target::Via(v) = &t else { unreachable!() };
            let limit = Duration::from_millis(500);
            let r = t.connect(limit).await;
            assert!(r.is_err(), "a closed handshake is a failure");
            assert_eq!((v.current.load(std::sync::atomic::Ordering::Relaxed), t.switches()), (1, Some(1)));
            let r = t.connect(limit).await;
            assert!(r.is_err());
            assert_eq!((v.current.load(std::sync::atomic::Ordering::Relaxed), t.switches()), (1, Some(1)), "stays on the router that answered");
            closer.abort();
            // Nothing reachable at all: every router tried once, a clear error.
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let dead = l.local_addr().unwrap().port();
            drop(l);
            let t = Target::via(Config::new(), vec!["127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap()], dead);
            let e = t.connect(limit).await.err().expect("nothing listens");
            assert!(e.starts_with("no router reachable"), "{e}");
            assert_eq!(t.switches(), Some(0));
        });
        assert_eq!(Target::Direct(Config::new()).switches(), None);
    }

    #[test]
    fn truncates_on_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "hé…");
        assert_eq!(truncate("abc", 3), "abc");
    }
}
