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

/// Where executable `b` is, for an install from `bin_dir`: beside the others (a build
/// tree, or any copy of the two side by side), or where an install put it when `bin_dir`
/// is an installed tree's `usr/sbin` (`paceline install` run as /usr/sbin/paceline, whose
/// `paceline-core` is in /usr/lib/paceline).
fn source(bin_dir: &Path, b: &crate::registry::Binary) -> Option<PathBuf> {
    let beside = bin_dir.join(b.name);
    if beside.is_file() {
        return Some(beside);
    }
    let sbin = Path::new(crate::registry::PACELINE.dir);
    if !bin_dir.ends_with(sbin) {
        return None;
    }
    let installed = bin_dir.ancestors().nth(sbin.components().count())?.join(b.dir).join(b.name);
    installed.is_file().then_some(installed)
}

/// The directory of the running executable: /proc/self/exe's, or without /proc (a chroot,
/// a container that does not mount it) `argv[0]`'s — a path as given, or the first
/// directory of `PATH` holding that name, as the shell found it.
pub fn own_dir() -> io::Result<PathBuf> {
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            return Ok(dir.to_path_buf());
        }
    }
    let arg0 = std::env::args_os().next().map(PathBuf::from).unwrap_or_default();
    let found = if arg0.components().count() > 1 {
        Some(std::env::current_dir()?.join(&arg0))
    } else {
        std::env::var_os("PATH").and_then(|path| std::env::split_paths(&path).map(|d| d.join(&arg0)).find(|p| p.is_file()))
    };
    found
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "cannot tell where this executable is (no /proc/self/exe, argv[0] not found): pass --from DIR"))
}

/// Install both executables from `bin_dir` and every agent's link under `root`; returns
/// the paths written, the executables first.
pub fn install(bin_dir: &Path, root: &Path) -> io::Result<Vec<PathBuf>> {
    let mut done = Vec::new();
    for b in BINARIES {
        let Some(from) = source(bin_dir, &b) else {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} not found: copy paceline and paceline-core side by side, or build them (cargo build --release)", bin_dir.join(b.name).display()),
            ));
        };
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

/// Every agent as docs/paceline.md shows it (between `<!-- agents -->` and
/// `<!-- /agents -->`; a test holds the two equal): its kind, where it is installed, the
/// executable its link leads to, its man page.
pub fn markdown_table() -> String {
    let mut t = String::from("| agent | kind | installed as | a link to | man page |\n|---|---|---|---|---|\n");
    for a in AGENTS {
        let kind = match a.kind {
            Kind::Resource => format!("resource agent `ocf:paceline:{}`", a.name),
            Kind::Fence => "fence agent".to_owned(),
        };
        let (section, page) = a.man_page();
        let b = a.binary();
        let calls = if a.calls_ec2 { " (calls EC2)" } else { "" };
        t.push_str(&format!("| `{}` | {kind} | `{}` | `/{}/{}`{calls} | `{page}({section})` |\n", a.name, target(Path::new("/"), a).display(), b.dir, b.name));
    }
    t
}

/// `paceline install`'s one-line help (in `paceline --help`'s list), from the list of agents.
pub fn install_about() -> String {
    let names: Vec<&str> = BINARIES.iter().map(|b| b.name).collect();
    format!("Install {} and the {} agents, each a symbolic link to one of them", names.join(", "), AGENTS.len())
}

/// `paceline install --help`, from the list of agents: which executable each agent is a
/// link to, and where each goes.
pub fn install_help() -> String {
    let executables: Vec<String> = BINARIES
        .iter()
        .map(|b| {
            let tool = if *b == crate::registry::PACELINE { "the tool, and " } else { "" };
            format!("/{}/{} ({tool}{})", b.dir, b.name, crate::registry::names_in(*b))
        })
        .collect();
    format!(
        "Install the executables, {}, and each agent as a symbolic link to its executable: OCF agents in /{OCF_PROVIDER_DIR}/, fence agents in /{FENCE_DIR}/",
        executables.join(" and ")
    )
}

/// `paceline uninstall`'s help, from the same list.
pub fn uninstall_help() -> String {
    let names: Vec<&str> = AGENTS.iter().map(|a| a.name).collect();
    let executables: Vec<String> = BINARIES.iter().map(|b| format!("/{}/{}", b.dir, b.name)).collect();
    format!("Remove what install put there: the links of the agents ({}) and the executables ({})", names.join(", "), executables.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/paceline.md's table of agents is [`markdown_table`]'s (regenerate with
    /// PACELINE_REGEN_DOCS=1 cargo test --lib docs_agents_table_is_generated).
    #[test]
    fn docs_agents_table_is_generated() {
        let path = format!("{}/docs/paceline.md", env!("CARGO_MANIFEST_DIR"));
        let doc = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let open = "<!-- agents -->\n";
        let start = doc.find(open).map(|i| i + open.len()).unwrap_or_else(|| panic!("{path}: no {open:?} marker"));
        let end = doc[start..].find("<!-- /agents -->").map(|i| i + start).unwrap_or_else(|| panic!("{path}: no <!-- /agents --> marker"));
        let expected = markdown_table();
        if std::env::var_os("PACELINE_REGEN_DOCS").is_some() {
            fs::write(&path, format!("{}{expected}{}", &doc[..start], &doc[end..])).unwrap();
            return;
        }
        assert_eq!(
            &doc[start..end],
            expected,
            "docs/paceline.md's agents disagree with src/registry.rs: PACELINE_REGEN_DOCS=1 cargo test --lib docs_agents_table_is_generated"
        );
    }

    /// The README names every agent (an OCF agent as `ocf:paceline:<name>`) and links its
    /// page; the package's description names every agent.
    #[test]
    fn readme_and_package_name_every_agent() {
        let root = env!("CARGO_MANIFEST_DIR");
        let readme = fs::read_to_string(format!("{root}/README.md")).unwrap_or_default();
        let cargo = fs::read_to_string(format!("{root}/Cargo.toml")).unwrap_or_default();
        let description = cargo.split("extended-description = \"\"\"").nth(1).and_then(|d| d.split("\"\"\"").next()).unwrap_or_default();
        for a in AGENTS {
            let in_package = match a.kind {
                Kind::Resource => format!("ocf:paceline:{}", a.name),
                Kind::Fence => a.name.to_owned(),
            };
            assert!(description.contains(&in_package), "Cargo.toml's extended-description does not name {in_package}");
            let named = match a.kind {
                Kind::Resource => format!("`ocf:paceline:{}`", a.name),
                Kind::Fence => format!("`{}`", a.name),
            };
            assert!(readme.contains(&named), "README.md does not name {named}");
            assert!(readme.contains(&format!("(docs/{}.md)", a.name)), "README.md does not link docs/{}.md", a.name);
            assert!(Path::new(&format!("{root}/docs/{}.md", a.name)).is_file(), "no docs/{}.md", a.name);
        }
    }

    #[test]
    fn help_names_every_agent_and_its_executable() {
        let h = install_help();
        for b in BINARIES {
            assert!(h.contains(&format!("/{}/{} (", b.dir, b.name)) && h.contains(&crate::registry::names_in(b)), "{h}");
        }
        let u = uninstall_help();
        assert!(AGENTS.iter().all(|a| h.contains(a.name) && u.contains(a.name)), "{h}\n{u}");
        assert!(install_about().contains(&format!("the {} agents", AGENTS.len())), "{}", install_about());
    }

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
        // The installed tree's usr/sbin is a source too (`paceline install` as
        // /usr/sbin/paceline: paceline-core is in usr/lib/paceline), into a second root.
        let again = base.join("again");
        let from_installed = install(&root.join(crate::registry::PACELINE.dir), &again).unwrap();
        assert_eq!(from_installed.len(), AGENTS.len() + 2);
        assert_eq!(fs::read(again.join(CORE.dir).join(CORE.name)).unwrap(), fs::read(bin.join(CORE.name)).unwrap());
        // Installed onto itself: nothing to copy, the links made again.
        assert_eq!(install(&root.join(crate::registry::PACELINE.dir), &root).unwrap(), first);
        assert_eq!(uninstall(&root).unwrap().len(), AGENTS.len() + 2);
        assert!(uninstall(&root).unwrap().is_empty());
        assert!(!root.join(OCF_PROVIDER_DIR).exists() && !root.join(CORE.dir).exists());
        let missing = install(&base.join("nothing"), &root).unwrap_err();
        assert!(missing.to_string().contains("side by side"), "{missing}");
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
