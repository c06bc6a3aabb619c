//! `paceline reinit`: rebuild this node's standby from the primary, as `patronictl reinit`
//! does — for a standby that cannot rejoin (its WAL gone, a rewind that failed).
//!
//! Run on the node to rebuild (the copy is written here). The order, each step waited for:
//! 1. refused unless another node is the primary and this one is not (a primary's data is
//!    never replaced, nor a node's while no primary exists to copy from: it may hold the
//!    only copy of acknowledged writes);
//! 2. Pacemaker keeps the resource off this node (`crm_resource --ban`) and it stops here;
//! 3. pgsqlms's rebuild ([`crate::agents::pgsqlms::rebuild`]): the old data directory moved
//!    aside, never deleted, `pg_basebackup` from the primary, this node's own configuration
//!    files put back;
//! 4. the ban is removed (always, also when a step failed), Pacemaker starts the standby,
//!    and the command waits until it streams.
//!
//! While it runs, the node attribute `paceline-reinit` says which step (`paceline status`
//! shows it); it is removed at the end.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::agents::pgsqlms;
use crate::pacemaker::{self, cib::agent_type};

/// The node attribute that shows a reinit under way (transient: gone with a reboot).
pub const ATTRIBUTE: &str = "paceline-reinit";

fn phase(me: &str, what: Option<&str>) {
    let done = match what {
        Some(w) => pacemaker::attrs::set_transient(ATTRIBUTE, me, w),
        None => pacemaker::attrs::delete_transient(ATTRIBUTE, me),
    };
    if let Err(e) = done {
        eprintln!("paceline reinit: cannot record the step in the node attribute {ATTRIBUTE}: {}", e.reason);
    }
}

/// Rebuild this node's standby. `timeout` bounds the whole command. Returns what was done.
pub fn run(timeout: Duration) -> Result<String> {
    let until = Instant::now() + timeout;
    let me = pacemaker::nodes::local_name().map_err(|e| anyhow::anyhow!("reinit refused: cannot tell this node's name: {}", e.reason))?;
    let st = crate::status::gather().map_err(|e| anyhow::anyhow!("reinit refused: cannot ask the cluster: {}", e.reason))?;
    let clone = st.clone.clone().context("reinit refused: no promotable pgsqlms resource in the configuration")?;
    let resource = st.resource.clone().context("reinit refused: no pgsqlms resource")?;
    match st.primary() {
        Some(p) if p == me => bail!("reinit refused: {me} is the primary (switch over first: paceline switchover)"),
        Some(_) => {}
        None => bail!("reinit refused: no primary to copy from (this node may hold the only copy of acknowledged writes)"),
    }
    let cfg = crate::pacemaker::cib::configuration().map_err(|e| anyhow::anyhow!("cannot read the configuration: {}", e.reason))?;
    let prim = cfg.primitives.iter().find(|p| p.id == resource && agent_type(&p.agent) == "pgsqlms").context("no pgsqlms primitive")?;
    let mut pairs: Vec<(String, String)> = prim.params.iter().map(|(k, v)| (format!("OCF_RESKEY_{k}"), v.clone())).collect();
    pairs.push(("OCF_RESOURCE_INSTANCE".into(), resource.clone()));
    let pg = pgsqlms::Config::from_env(&crate::ocf::OcfEnv::from_pairs(pairs)).map_err(|e| anyhow::anyhow!("{resource}'s parameters: {}", e.reason))?;
    let who = pgsqlms::identity_of(&pg.system_user).map_err(|e| anyhow::anyhow!("{}", e.reason))?;

    phase(&me, Some("stopping"));
    pacemaker::resource::ban(&clone, &me).map_err(|e| anyhow::anyhow!("{}", e.reason))?;
    let rebuilt = stop_and_rebuild(&pg, who, &resource, &me, until);
    // The ban goes whatever happened: with the old data back, the node is what it was.
    let cleared = pacemaker::resource::clear(&clone);
    phase(&me, None);
    let aside = rebuilt?;
    cleared.map_err(|e| anyhow::anyhow!("rebuilt, but the ban could not be removed ({}): pcs resource clear {clone}", e.reason))?;
    wait_streaming(&pg, who, &resource, &me, until)?;
    // An old primary rebuilt: how it came back, for the incident record (paceline history).
    let store = crate::history::Store::open(&resource);
    let step =
        crate::history::Step::new(&me, "rebuilt", format!("paceline reinit: a base backup of the primary; the old data directory is {}", aside.display()));
    if let Err(e) = store.note_return(step).map_err(|e| e.to_string()).and_then(|_| crate::history::publish(&store, &resource)) {
        eprintln!("paceline reinit: the incident record does not say it ({e})");
    }
    Ok(format!("{me} rebuilt from the primary and streaming; the old data directory is {} (delete it once you no longer need it)", aside.display()))
}

fn stop_and_rebuild(pg: &pgsqlms::Config, who: crate::pg::client::Identity, resource: &str, me: &str, until: Instant) -> Result<std::path::PathBuf> {
    loop {
        let here = pacemaker::resource::locate(resource).map(|l| l.iter().any(|l| l.node == me)).unwrap_or(true);
        if !here && pgsqlms::postmaster_of(&pg.datadir).is_none() {
            break;
        }
        if Instant::now() >= until {
            bail!("{resource} did not stop on {me} in time");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    phase(me, Some("pg_basebackup"));
    pgsqlms::rebuild::rebuild(pg, who, until).map_err(|e| anyhow::anyhow!("{}", e.reason))
}

/// Until Pacemaker runs the resource here again and the local PostgreSQL streams (asked
/// in-process, so that it works without a state service too).
fn wait_streaming(pg: &pgsqlms::Config, who: crate::pg::client::Identity, resource: &str, me: &str, until: Instant) -> Result<()> {
    let streaming = || -> bool {
        let here = pacemaker::resource::locate(resource).map(|l| l.iter().any(|l| l.node == me && !l.promoted)).unwrap_or(false);
        here && crate::pg::client::Local::connect_named(&pg.pghost, pg.pgport, &pg.system_user, Some(who), Duration::from_secs(2), "paceline-reinit")
            .and_then(|l| {
                l.query_text("SELECT status FROM pg_stat_wal_receiver", Duration::from_secs(2)).map_err(|e| crate::pg::client::ConnectError::Other(e.reason))
            })
            .is_ok_and(|rows| rows.iter().any(|r| r.first().cloned().flatten().as_deref() == Some("streaming")))
    };
    loop {
        if streaming() {
            return Ok(());
        }
        if Instant::now() >= until {
            bail!("rebuilt, but {me} does not stream yet: paceline status");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
