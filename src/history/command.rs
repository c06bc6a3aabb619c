//! `paceline history`: the records this node keeps, brought up to date first with what
//! the other nodes publish (one `attrd_updater` query; without a running cluster, the local
//! records alone, said on stderr).

use anyhow::{bail, Result};

use super::{render, Store};

/// The pgsqlms resources this node keeps records of (directory names).
pub fn resources() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(super::base())
        .map(|d| d.filter_map(|e| e.ok()).filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

/// The resources of the records kept here or, with none yet, the pgsqlms resources the
/// cluster's configuration has (their records may be on the other nodes).
fn known_or_configured() -> Vec<String> {
    let known = resources();
    if !known.is_empty() {
        return known;
    }
    crate::pacemaker::cib::configuration()
        .map(|c| c.primitives.into_iter().filter(|p| crate::pacemaker::cib::agent_type(&p.agent) == "pgsqlms").map(|p| p.id).collect())
        .unwrap_or_default()
}

/// The text (or JSON) `paceline history [show TL] [--json]` prints.
pub fn run(resource: Option<&str>, show: Option<u32>, json: bool) -> Result<String> {
    let resource = match resource {
        Some(r) => r.to_owned(),
        None => match known_or_configured().as_slice() {
            [] => return Ok(if json { "[]".into() } else { "no change of primary recorded on this node yet\n".into() }),
            [one] => one.clone(),
            many => bail!("records of several resources ({}): say which with --resource", many.join(", ")),
        },
    };
    let store = Store::open(&resource);
    if let Err(why) = super::gather(&store, &resource) {
        eprintln!("paceline history: the other nodes' records not read ({why}): this node's only");
    }
    if let Some(tl) = show {
        let Some(r) = store.get(tl) else { bail!("no record of timeline {tl} on this node (paceline history lists them)") };
        return Ok(if json { format!("{:#}\n", render::json(&r)) } else { render::show(&r) });
    }
    let records = store.records();
    Ok(if json {
        format!("{:#}\n", serde_json::Value::Array(records.iter().map(render::json).collect()))
    } else if records.is_empty() {
        "no change of primary recorded on this node yet\n".into()
    } else {
        render::table(&records)
    })
}
