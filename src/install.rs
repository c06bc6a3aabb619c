//! Putting the agents where Pacemaker looks for them.
//!
//! Pacemaker finds `ocf:paceline:X` at `/usr/lib/ocf/resource.d/paceline/X`, and the fencer
//! finds fence agents as `fence_*` executables in `/usr/sbin`. Installing copies each
//! binary next to the `paceline` executable (i.e. `target/release/`) there, through a
//! temporary file and a rename, so a running cluster never executes a half-written agent
//! and running the install twice leaves the same result.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// What kind of agent a binary is, which decides where it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// OCF resource agent: `<root>/usr/lib/ocf/resource.d/paceline/<name>`.
    Resource,
    /// Fence agent: `<root>/usr/sbin/<name>`.
    Fence,
}

/// A binary of this crate that gets installed.
#[derive(Debug, Clone, Copy)]
pub struct Installable {
    pub bin: &'static str,
    pub kind: Kind,
}

/// Every agent paceline ships.
pub const AGENTS: &[Installable] = &[
    Installable { bin: "IPaddr2", kind: Kind::Resource },
    Installable { bin: "pgsqlms", kind: Kind::Resource },
    Installable { bin: "pgsql-state", kind: Kind::Resource },
    Installable { bin: "awsvip", kind: Kind::Resource },
    Installable { bin: "awseip", kind: Kind::Resource },
    Installable { bin: "fence_paceline_aws", kind: Kind::Fence },
];

/// The OCF provider directory, relative to the root.
pub const OCF_PROVIDER_DIR: &str = "usr/lib/ocf/resource.d/paceline";
pub const FENCE_DIR: &str = "usr/sbin";

/// Where `agent` goes under `root` (normally `/`).
pub fn target(root: &Path, agent: &Installable) -> PathBuf {
    match agent.kind {
        Kind::Resource => root.join(OCF_PROVIDER_DIR).join(agent.bin),
        Kind::Fence => root.join(FENCE_DIR).join(agent.bin),
    }
}

fn copy_atomically(from: &Path, to: &Path) -> io::Result<()> {
    let dir = to.parent().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "target has no parent"))?;
    fs::create_dir_all(dir)?;
    // One temporary name per process and call, so concurrent installs never share one.
    static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{}.paceline-tmp.{}.{n}", to.file_name().and_then(|n| n.to_str()).unwrap_or("agent"), std::process::id()));
    fs::copy(from, &tmp)?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755))?;
    fs::rename(&tmp, to)
}

/// Install every agent found in `bin_dir` under `root`; returns the paths written.
pub fn install(bin_dir: &Path, root: &Path) -> io::Result<Vec<PathBuf>> {
    let mut done = Vec::new();
    for agent in AGENTS {
        let from = bin_dir.join(agent.bin);
        if !from.is_file() {
            return Err(io::Error::new(io::ErrorKind::NotFound, format!("{} not found: build the agents first (cargo build --release)", from.display())));
        }
        let to = target(root, agent);
        copy_atomically(&from, &to)?;
        done.push(to);
    }
    Ok(done)
}

/// Remove every installed agent from `root`; missing files are fine. Returns the paths removed.
pub fn uninstall(root: &Path) -> io::Result<Vec<PathBuf>> {
    let mut done = Vec::new();
    for agent in AGENTS {
        let path = target(root, agent);
        match fs::remove_file(&path) {
            Ok(()) => done.push(path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    // The provider directory is ours alone: remove it when empty.
    let _ = fs::remove_dir(root.join(OCF_PROVIDER_DIR));
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_twice_then_uninstall() {
        let base = std::env::temp_dir().join(format!("paceline-install-{}", std::process::id()));
        let bin = base.join("bin");
        let root = base.join("root");
        fs::create_dir_all(&bin).unwrap();
        for a in AGENTS {
            fs::write(bin.join(a.bin), b"#!/bin/sh\n").unwrap();
        }
        let first = install(&bin, &root).unwrap();
        let second = install(&bin, &root).unwrap();
        assert_eq!(first, second);
        for p in &first {
            let mode = fs::metadata(p).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o755, "{}", p.display());
        }
        assert!(root.join(OCF_PROVIDER_DIR).join("IPaddr2").is_file());
        assert_eq!(uninstall(&root).unwrap().len(), AGENTS.len());
        assert!(uninstall(&root).unwrap().is_empty());
        assert!(!root.join(OCF_PROVIDER_DIR).exists());
        let missing = install(&base.join("nothing"), &root).unwrap_err();
        assert!(missing.to_string().contains("build the agents first"));
        fs::remove_dir_all(&base).unwrap();
    }
}
