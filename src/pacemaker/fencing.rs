//! The fencer's view of a device (`stonith_admin --query`): whether it answers its
//! `monitor` now, through the fencer, with the options the CIB gives it — what a fencing
//! will need at the worst moment, asked before go-live.

use std::time::Duration;

use super::run_xml;
use crate::ocf::OcfError;

/// How long the fencer may take to run a device's monitor: a fence agent that talks to a
/// cloud API takes seconds, not the milliseconds of the other tools.
pub const MONITOR_TIMEOUT: Duration = Duration::from_secs(30);

/// Run `device`'s monitor through the fencer. `Ok(Err(why))`: the fencer answered and the
/// device failed (or is unknown to it); `Err`: the fencer itself could not be asked.
pub fn monitor(device: &str) -> Result<Result<(), String>, OcfError> {
    let secs = (MONITOR_TIMEOUT.as_secs() - 5).to_string();
    let a = match run_xml("stonith_admin", &["--query", device, "--timeout", &secs], MONITOR_TIMEOUT) {
        Ok(a) => a,
        // The fencer took the device's monitor past the bound: a device that cannot answer
        // in 30 s will not fence in time either — the device's failure, not the fencer's.
        Err(e) if e.reason.contains("did not finish within") => return Ok(Err(format!("no answer within {} s", MONITOR_TIMEOUT.as_secs()))),
        Err(e) => return Err(e),
    };
    Ok(match a.code {
        0 => Ok(()),
        code => Err(format!("{} (status {code})", a.message)),
    })
}
