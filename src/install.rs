//! Putting the agents where Pacemaker looks for them.
//!
//! paceline is two executables, each a multi-call binary (as busybox): every agent is a
//! symbolic link to one of them, which runs the agent its name (`argv[0]`) says.
//!
//! * `paceline` (/usr/sbin): the operator's tool and the agents that call EC2 (awsvip,
//!   awseip, aws-vpc-move-ip, fence_paceline_aws). They link the AWS SDK once instead of once per agent: a
//!   release build a quarter shorter and a third of the installed size.
//! * `paceline-core` (/usr/lib/paceline): the agents that do not (pgsqlms, IPaddr2,
//!   pgsql-state). Without the SDK the loader has a tenth of the relocations to do, so the
//!   agent Pacemaker runs most (pgsqlms's monitor, every few seconds on every node) starts
//!   as fast, and as small, as when each agent was a binary of its own (docs/benchmarks.md).
//!
//! Pacemaker finds `ocf:paceline:X` at `/usr/lib/ocf/resource.d/paceline/X`, and the fencer
//! finds fence agents as `fence_*` executables in `/usr/sbin`: both follow the links.
//! Installing copies both executables and makes each link (relative, so that a tree
//! installed under another root — a package's — is right once unpacked), each through a
//! temporary name and a rename: a running cluster never executes a half-written agent, and
//! installing twice leaves the same result.
//!
//! What is installed is [`crate::registry`]'s list of agents, each a link to the binary
//! the list says; what runs an agent is [`crate::agents`]' entry for it, which
//! `paceline-core` asks only for the agents without the SDK.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::registry::{Agent, Kind, AGENTS, BINARIES, CORE};

/// The OCF provider directory, relative to the root.
pub const OCF_PROVIDER_DIR: &str = "usr/lib/ocf/resource.d/paceline";
pub const FENCE_DIR: &str = "usr/sbin";

/// Where `agent` goes under `root` (normally `/`).
pub fn target(root: &Path, agent: &Agent) -> PathBuf {
    match agent.kind {
        Kind::Resource => root.join(OCF_PROVIDER_DIR).join(agent.name),
        Kind::Fence => root.join(FENCE_DIR).join(agent.name),
    }
}

/// What `agent`'s link says: its binary, relative to the link's directory.
fn link_text(agent: &Agent) -> PathBuf {
    let from = match agent.kind {
        Kind::Resource => OCF_PROVIDER_DIR,
        Kind::Fence => FENCE_DIR,
    };
    let up = Path::new(from).components().map(|_| "..").collect::<PathBuf>();
    up.join(agent.binary().dir).join(agent.binary().name)
}

/// A temporary name beside `to`, one per process and call, so concurrent installs never
/// share one.
fn temporary(to: &Path) -> io::Result<PathBuf> {
    let dir = to.parent().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "target has no parent"))?;
    fs::create_dir_all(dir)?;
    static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Ok(dir.join(format!(".{}.paceline-tmp.{}.{n}", to.file_name().and_then(|n| n.to_str()).unwrap_or("agent"), std::process::id())))
}

fn copy_atomically(from: &Path, to: &Path) -> io::Result<()> {
    let tmp = temporary(to)?;
    fs::copy(from, &tmp)?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755))?;
    fs::rename(&tmp, to)
}

/// Make `to` a symbolic link saying `text`, replacing whatever is there (an agent a former
/// install copied, or an older link) in one rename.
fn link_atomically(text: &Path, to: &Path) -> io::Result<()> {
    let tmp = temporary(to)?;
    std::os::unix::fs::symlink(text, &tmp)?;
    fs::rename(&tmp, to)
}

/// Install both executables from `bin_dir` and every agent's link under `root`; returns
/// the paths written, the executables first.
pub fn install(bin_dir: &Path, root: &Path) -> io::Result<Vec<PathBuf>> {
    let mut done = Vec::new();
    for b in BINARIES {
        let from = bin_dir.join(b.name);
        if !from.is_file() {
            return Err(io::Error::new(io::ErrorKind::NotFound, format!("{} not found: build the agents first (cargo build --release)", from.display())));
        }
        let exe = root.join(b.dir).join(b.name);
        // Installing from the installed copy (`paceline install` run as /usr/sbin/paceline)
        // has nothing to copy.
        if fs::canonicalize(&from).ok() != fs::canonicalize(&exe).ok() {
            fs::create_dir_all(root.join(b.dir))?;
            copy_atomically(&from, &exe)?;
        }
        done.push(exe);
    }
    for agent in AGENTS {
        let to = target(root, agent);
        link_atomically(&link_text(agent), &to)?;
        done.push(to);
    }
    Ok(done)
}

/// Remove every installed agent and the executable from `root`; missing files are fine.
/// Returns the paths removed.
pub fn uninstall(root: &Path) -> io::Result<Vec<PathBuf>> {
    let mut done = Vec::new();
    for path in AGENTS.iter().map(|a| target(root, a)).chain(BINARIES.iter().map(|b| root.join(b.dir).join(b.name))) {
        match fs::remove_file(&path) {
            Ok(()) => done.push(path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    // The provider directory and /usr/lib/paceline are ours alone: removed when empty.
    let _ = fs::remove_dir(root.join(OCF_PROVIDER_DIR));
    let _ = fs::remove_dir(root.join(CORE.dir));
    Ok(done)
}

/// The agents of a build tree, without installing them: `<dir of paceline>/agents/<name>`,
/// each a link to its binary beside `paceline` (made once, atomically; tests and
/// benchmarks run them from there). Returns the path of agent `name`.
pub fn built(paceline: &Path, name: &str) -> io::Result<PathBuf> {
    let dir = paceline.parent().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "paceline has no directory"))?.join("agents");
    let agent = crate::registry::get(name).ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no agent {name}")))?;
    let to = dir.join(agent.name);
    let text = Path::new("..").join(agent.binary().name);
    if fs::read_link(&to).ok().as_deref() != Some(text.as_path()) {
        link_atomically(&text, &to)?;
    }
    Ok(to)
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
        for b in BINARIES {
            fs::write(bin.join(b.name), format!("#!/bin/sh\necho \"{} $0\"\n", b.name)).unwrap();
        }
        // A former install's copy is replaced by the link.
        fs::create_dir_all(root.join(OCF_PROVIDER_DIR)).unwrap();
        fs::write(root.join(OCF_PROVIDER_DIR).join("pgsqlms"), b"old").unwrap();
        let first = install(&bin, &root).unwrap();
        let second = install(&bin, &root).unwrap();
        assert_eq!(first, second);
        assert_eq!(first.len(), AGENTS.len() + 2);
        assert_eq!((first[0].clone(), first[1].clone()), (root.join("usr/sbin/paceline"), root.join("usr/lib/paceline/paceline-core")));
        for exe in &first[..2] {
            assert_eq!(fs::metadata(exe).unwrap().permissions().mode() & 0o777, 0o755);
        }
        for (p, a) in first[2..].iter().zip(AGENTS) {
            // Each link resolves to its installed executable, inside the root.
            let exe = root.join(a.binary().dir).join(a.binary().name);
            assert_eq!(fs::canonicalize(p).unwrap(), fs::canonicalize(&exe).unwrap(), "{}", p.display());
            assert!(fs::symlink_metadata(p).unwrap().file_type().is_symlink());
        }
        let ran = std::process::Command::new(root.join(OCF_PROVIDER_DIR).join("IPaddr2")).output().unwrap();
        let said = String::from_utf8_lossy(&ran.stdout);
        assert!(said.starts_with("paceline-core ") && said.trim_end().ends_with("/IPaddr2"), "IPaddr2 runs paceline-core, argv[0] the link's path: {said}");
        let ran = std::process::Command::new(root.join(FENCE_DIR).join("fence_paceline_aws")).output().unwrap();
        assert!(String::from_utf8_lossy(&ran.stdout).starts_with("paceline "), "the fence agent runs paceline");
        assert_eq!(uninstall(&root).unwrap().len(), AGENTS.len() + 2);
        assert!(uninstall(&root).unwrap().is_empty());
        assert!(!root.join(OCF_PROVIDER_DIR).exists() && !root.join(CORE.dir).exists());
        let missing = install(&base.join("nothing"), &root).unwrap_err();
        assert!(missing.to_string().contains("build the agents first"));
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn build_tree_links() {
        let base = std::env::temp_dir().join(format!("paceline-built-{}", std::process::id()));
        fs::create_dir_all(&base).unwrap();
        fs::write(base.join("paceline"), b"").unwrap();
        fs::write(base.join("paceline-core"), b"").unwrap();
        let p = built(&base.join("paceline"), "awsvip").unwrap();
        assert_eq!(p, base.join("agents/awsvip"));
        assert_eq!(fs::canonicalize(&p).unwrap(), fs::canonicalize(base.join("paceline")).unwrap());
        assert_eq!(built(&base.join("paceline"), "awsvip").unwrap(), p);
        let p = built(&base.join("paceline"), "pgsqlms").unwrap();
        assert_eq!(fs::canonicalize(&p).unwrap(), fs::canonicalize(base.join("paceline-core")).unwrap());
        assert!(built(&base.join("paceline"), "nope").is_err());
        fs::remove_dir_all(&base).unwrap();
    }
}
