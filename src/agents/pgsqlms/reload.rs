//! reload-agent (and PAF's `reload`): Pacemaker changed parameters of a running resource.
//!
//! Every parameter except `pgdata` and `datadir` (which name another instance) is marked
//! reloadable in the meta-data, so that `pcs resource update pgsqld maxlag=…` never restarts
//! a primary: Pacemaker 2.1 calls `reload-agent` with the new values instead of stop/start
//! (an OCF 1.1 agent gets no legacy `reload`; PAF's name is kept for scripts that call it).
//! Most parameters are read afresh by every action anyway; what must happen now is done
//! here: the new values are checked as validate-all checks them (a bad value is refused
//! with the same code), the running instance must answer with the new connection
//! parameters (`system_user`, `pghost`, `pgport`), and on the primary the synchronous set
//! and the promotion scores follow the new `synchronous_mode`, `synchronous_node_count`
//! and `maxlag` at once instead of at the next monitor; on a standby, turning
//! `replication_slots` off removes the `primary_slot_name` the agent wrote. `start_opts`
//! and `bindir` take effect at the next start.

use super::instance::{self, State};
use super::{primary, sync, validate, Config};
use crate::ocf::{OcfEnv, OcfError, OcfRc, OcfResult};
use crate::{ocf_info, ocf_warn};

pub fn reload_agent(env: &OcfEnv) -> OcfResult {
    let cfg = Config::from_env(env)?;
    let who = validate::installed(&cfg)?;
    validate::check_clone(env)?;
    match instance::state_and_connection(&cfg, who, cfg.timeout / 2)? {
        (State::Primary, Some(local)) => {
            validate::check_sync_setting(&cfg)?;
            if cfg.sync_mode == sync::Mode::Off {
                primary::release(&local)?;
            }
            super::slots::ask_partition_next(&cfg);
            if let Err(e) = primary::update_from_primary(&cfg, &local) {
                ocf_warn!("cannot update promotion scores: {}", e.reason);
            }
            ocf_info!(
                "reloaded on the primary: synchronous_mode={}, synchronous_node_count={}, maxlag={} in effect",
                cfg.sync_mode.name(),
                cfg.sync_count,
                cfg.maxlag
            );
        }
        (State::Standby, local) => {
            if let (None, Some(local), Ok(me)) = (cfg.slot_ttl, local.as_ref(), super::scores::local_node(&cfg)) {
                if let Err(e) = super::slots::release(local, &me) {
                    ocf_warn!("cannot remove primary_slot_name: {}", e.reason);
                }
            }
            ocf_info!("reloaded on a standby: the new parameters are in effect")
        }
        (State::Broken(why), _) => {
            return Err(OcfError::generic(why).context(format!(
                "with the new parameters (system_user {}, pghost {}, pgport {})",
                cfg.system_user,
                cfg.pghost.display(),
                cfg.pgport
            )));
        }
        (st, _) => ocf_info!("reloaded while PostgreSQL is not running ({st:?}): the new parameters apply at the next start"),
    }
    Ok(OcfRc::Success)
}
