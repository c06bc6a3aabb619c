//! The service's loop: one connection to the local PostgreSQL, a poll every
//! [`POLL`], the guard's decision carried out, until SIGTERM.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::guard::{Guard, Member, Waiter};
use crate::ocf::OcfError;
use crate::pg::client::{Identity, Local};
use crate::{ocf_debug, ocf_info, ocf_warn};

/// How often the service looks. A commit is ended at most this much after the guard's
/// limit; 20 small catalog reads a second cost PostgreSQL nothing measurable.
pub const POLL: Duration = Duration::from_millis(50);

/// How long it waits before connecting again to an instance that is down.
const RECONNECT: Duration = Duration::from_millis(200);

const QUERY_TIMEOUT: Duration = Duration::from_secs(2);

/// What the service needs to know.
#[derive(Debug, Clone)]
pub struct Settings {
    pub socket_dir: PathBuf,
    pub port: u16,
    pub user: String,
    /// The OS identity to connect as (peer authentication), when running as root.
    pub who: Option<Identity>,
    /// The guard's limit; zero disables it.
    pub sync_wait_limit: Duration,
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_term(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn handle_signals() -> Result<(), OcfError> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let act = SigAction::new(SigHandler::Handler(on_term), SaFlags::empty(), SigSet::empty());
    for sig in [Signal::SIGTERM, Signal::SIGINT] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { sigaction(sig, &act) }.map_err(|e| OcfError::generic(format!("cannot handle {sig}: {e}")))?;
    }
    Ok(())
}

/// One poll's view of the instance.
#[derive(Debug, Default)]
struct Seen {
    primary: bool,
    /// k of synchronous_standby_names (0: asynchronous).
    k: usize,
    waiters: Vec<Waiter>,
    members: Vec<Member>,
}

fn look(local: &Local) -> Result<Seen, OcfError> {
    let rows = local.query_text(
        "SELECT 'w', pid::text, backend_start::text || ' ' || coalesce(xact_start::text, '') FROM pg_stat_activity WHERE wait_event = 'SyncRep' \
         UNION ALL SELECT 'm', application_name, coalesce(reply_time::text, '') || ' ' || coalesce(flush_lsn::text, '') FROM pg_stat_replication WHERE sync_state IN ('sync', 'quorum') \
         UNION ALL SELECT 's', current_setting('synchronous_standby_names'), (NOT pg_is_in_recovery())::text",
        QUERY_TIMEOUT,
    )?;
    let mut seen = Seen::default();
    for r in rows {
        let col = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
        match col(0).as_str() {
            "w" => {
                if let Ok(pid) = col(1).parse() {
                    seen.waiters.push(Waiter { pid, xact: col(2) });
                }
            }
            "m" => seen.members.push(Member { name: col(1), reply: col(2) }),
            "s" => {
                seen.k = super::guard::required_acks(&col(1));
                seen.primary = col(2) == "true";
            }
            _ => {}
        }
    }
    Ok(seen)
}

/// Run until SIGTERM. Never returns an error for PostgreSQL being down: it waits for it.
pub fn serve(s: &Settings) -> Result<(), OcfError> {
    handle_signals()?;
    let mut guard = Guard::new(s.sync_wait_limit);
    let mut local: Option<Local> = None;
    let mut down_since: Option<Instant> = Some(Instant::now());
    ocf_info!("state service running (synchronous-commit guard: {})", if s.sync_wait_limit.is_zero() { "off".to_string() } else { format!("{:?}", s.sync_wait_limit) });
    while !STOP.load(Ordering::SeqCst) {
        let Some(l) = local.as_ref() else {
            match Local::connect_named(&s.socket_dir, s.port, &s.user, s.who, Duration::from_secs(2), "paceline-state") {
                Ok(l) => {
                    if down_since.take().is_some() {
                        ocf_info!("connected to PostgreSQL");
                    }
                    local = Some(l);
                }
                Err(e) => {
                    ocf_debug!("PostgreSQL not reachable: {}", e.message());
                    std::thread::sleep(RECONNECT);
                }
            }
            continue;
        };
        match look(l) {
            Ok(seen) if seen.primary => {
                for pid in guard.observe(Instant::now(), &seen.waiters, &seen.members, seen.k) {
                    end_session(l, pid, s.sync_wait_limit);
                }
            }
            Ok(_) => guard = Guard::new(s.sync_wait_limit),
            Err(e) => {
                ocf_warn!("lost the connection to PostgreSQL: {}", e.reason);
                local = None;
                down_since = Some(Instant::now());
                continue;
            }
        }
        std::thread::sleep(POLL);
    }
    ocf_info!("state service stopping (SIGTERM)");
    Ok(())
}

fn end_session(local: &Local, pid: i32, limit: Duration) {
    match local.query_one::<bool>(&format!("SELECT pg_terminate_backend({pid})"), QUERY_TIMEOUT) {
        Ok(true) => ocf_warn!(
            "ended session {pid}: its commit waited {limit:?} for synchronous standbys that do not answer; its client gets an error, not a success a cancel would give (the commit is not acknowledged)"
        ),
        Ok(false) => ocf_debug!("session {pid} was gone already"),
        Err(e) => ocf_warn!("cannot end session {pid}: {}", e.reason),
    }
}
