//! A demote in progress, told by pgsqlms to the state service on the same node.
//!
//! Pacemaker records a demote only once it is over: until then `crm_resource --locate` says
//! Promoted, and PostgreSQL stays writable until the demote's shutdown. A load balancer
//! that asks during that time must already hear "not primary", or it keeps sending new
//! sessions to an instance that is going away — and, once the demote has restarted it as a
//! standby, to a read-only one. So pgsqlms marks the demote before anything else (a file
//! in `$HA_RSCTMP` named after the port, the instance's identity on the node), and the
//! service, which looks for the mark on every poll of PostgreSQL, answers "not primary"
//! while it is there. The mark goes when the demote returns; a promote removes one that a
//! demote killed by its timeout left behind (meanwhile the instance is no primary anyway).

use std::path::{Path, PathBuf};

fn mark_in(dir: &Path, port: u16) -> PathBuf {
    dir.join(format!("paceline-demoting-{port}"))
}

fn mark(port: u16) -> PathBuf {
    mark_in(&crate::ocf::env::rsc_tmp(), port)
}

/// The demote of the instance on `port` is under way until this is dropped.
#[must_use]
pub struct Demoting(PathBuf);

/// pgsqlms's demote begins: from now on the state service does not say primary.
pub fn begin(port: u16) -> Demoting {
    begin_at(mark(port))
}

fn begin_at(path: PathBuf) -> Demoting {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Err(e) = std::fs::write(&path, b"") {
        crate::ocf_warn!("cannot write {} ({e}): load balancers learn of this demote only when PostgreSQL stops", path.display());
    }
    Demoting(path)
}

impl Drop for Demoting {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A mark a demote that was killed left behind (promote calls this).
pub fn clear(port: u16) {
    let _ = std::fs::remove_file(mark(port));
}

/// Whether a demote of the instance on `port` is under way (the service's poll).
pub fn under_way(port: u16) -> bool {
    mark(port).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mark_lasts_as_long_as_the_demote() {
        let dir = std::env::temp_dir().join(format!("paceline-demoting-{}", std::process::id()));
        let path = mark_in(&dir, 5432);
        assert_eq!(path, dir.join("paceline-demoting-5432"));
        let d = begin_at(path.clone());
        assert!(path.exists() && !mark_in(&dir, 5433).exists());
        drop(d);
        assert!(!path.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
