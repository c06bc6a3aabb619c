//! `paceline status`, `check`, `switchover`, `failover` and `history` where they cannot work: no
//! cluster on this node, not root, bad options, a CIB file that is missing or not XML.
//! Each gives a clear message on stderr and its documented exit status, never a panic.
//! Run in a network namespace of its own (`unshare --net`): Pacemaker's IPC sockets are
//! per namespace, so no cluster answers there even on a machine that runs one. And what
//! scripts read of it: `paceline agents` and the man pages, one per agent; and the help texts
//! that name agents.

mod common;

use std::process::Command;

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

/// `paceline ARGS` in a fresh network namespace, as `user` (None: root).
fn paceline(user: Option<&str>, args: &[&str]) -> Out {
    let mut cmd = Command::new("unshare");
    cmd.arg("--net");
    if let Some(u) = user {
        cmd.args(["runuser", "-u", u, "--"]);
    }
    let o = cmd.arg(env!("CARGO_BIN_EXE_paceline")).args(args).current_dir("/").output().expect("unshare");
    let out = Out { code: o.status.code().unwrap_or(-1), stdout: String::from_utf8_lossy(&o.stdout).into(), stderr: String::from_utf8_lossy(&o.stderr).into() };
    assert!(!out.stderr.contains("panicked") && !out.stderr.contains("RUST_BACKTRACE"), "paceline {args:?} panicked: {}", out.stderr);
    out
}

fn skip() -> bool {
    let ok = common::privileged() && Command::new("crm_mon").arg("--version").output().is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipping: needs root and Pacemaker's tools");
    }
    !ok
}

#[test]
fn no_cluster_here() {
    if skip() {
        return;
    }
    for args in [&["status"][..], &["status", "--json"]] {
        let o = paceline(None, args);
        assert_eq!(o.code, 2, "{args:?}: {}", o.stderr);
        assert!(o.stdout.is_empty(), "{args:?} printed a status without a cluster: {}", o.stdout);
        assert!(o.stderr.starts_with("paceline status: is the cluster running on this node?"), "{args:?}: {}", o.stderr);
    }
    let o = paceline(None, &["check"]);
    assert_eq!(o.code, 3, "{}", o.stderr);
    assert!(o.stderr.starts_with("paceline check: is the cluster running on this node?") && o.stderr.contains("cibadmin"), "{}", o.stderr);
    for args in [&["switchover"][..], &["failover", "--to", "node2"]] {
        let o = paceline(None, args);
        assert_eq!(o.code, 1, "{args:?}: {}", o.stderr);
        assert!(o.stderr.starts_with("paceline: ") && o.stderr.contains("crm_mon"), "{args:?}: {}", o.stderr);
    }
}

/// `paceline history` reads this node's records when the cluster cannot be asked (says so
/// on stderr): nothing recorded, then one record in the table, whole, and as JSON; an
/// unknown timeline is an error. A record file that is not JSON is passed over.
#[test]
fn history_without_a_cluster() {
    if skip() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("paceline-cli-history-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let run = |args: &[&str]| {
        let o = Command::new("unshare")
            .arg("--net")
            .arg(env!("CARGO_BIN_EXE_paceline"))
            .arg("history")
            .args(args)
            .env("PACELINE_HISTORY_DIR", &dir)
            .output()
            .expect("unshare");
        let out =
            Out { code: o.status.code().unwrap_or(-1), stdout: String::from_utf8_lossy(&o.stdout).into(), stderr: String::from_utf8_lossy(&o.stderr).into() };
        assert!(!out.stderr.contains("panicked"), "history {args:?}: {}", out.stderr);
        out
    };
    let o = run(&[]);
    assert_eq!((o.code, o.stdout.as_str()), (0, "no change of primary recorded on this node yet\n"), "{}", o.stderr);
    assert_eq!(run(&["--json"]).stdout.trim(), "[]");
    std::fs::create_dir_all(dir.join("pgsqld")).unwrap();
    let record = r#"{"timeline":3,"system":"7301","resource":"pgsqld","kind":"switchover","old_primary":"node1","new_primary":"node2",
        "why":"most WAL of 3 candidates","fork":"0/4000100","received":"0/4000100","old_end":"0/4000028","old_end_source":"shutdown checkpoint",
        "steps":[{"at":1796644799000,"node":"node1","what":"shutdown","detail":"clean"},{"at":1796644800123,"node":"node2","what":"writable","detail":"timeline 3"}]}"#;
    std::fs::write(dir.join("pgsqld/7301-00000003.json"), record).unwrap();
    std::fs::write(dir.join("pgsqld/7301-00000004.json"), "{not json").unwrap();
    let o = run(&[]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stderr.contains("this node's only"), "says the other nodes were not read: {}", o.stderr);
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert!(lines.len() == 2 && lines[1].contains("switchover") && lines[1].contains("1.123 s") && lines[1].contains("0 B"), "{}", o.stdout);
    let o = run(&["show", "3"]);
    assert!(o.code == 0 && o.stdout.contains("node1 -> node2") && o.stdout.contains("writes down: 1.123 s"), "{}{}", o.stdout, o.stderr);
    let o = run(&["--json"]);
    let j: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!((j[0]["timeline"].as_u64(), j[0]["outage_ms"].as_u64(), j[0]["lost_bytes"].as_u64()), (Some(3), Some(1123), Some(0)), "{j:#}");
    let o = run(&["show", "9"]);
    assert!(o.code == 1 && o.stderr.contains("no record of timeline 9"), "{}", o.stderr);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn not_root() {
    if skip() {
        return;
    }
    let o = paceline(Some("nobody"), &["status"]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("run it as root"), "{}", o.stderr);
    let o = paceline(Some("nobody"), &["check"]);
    assert_eq!(o.code, 3, "{}", o.stderr);
    assert!(o.stderr.contains("run it as root"), "{}", o.stderr);
    let o = paceline(Some("nobody"), &["switchover", "--to", "node2"]);
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.stderr.contains("run it as root"), "{}", o.stderr);
}

#[test]
fn bad_options_and_cib_files() {
    if skip() {
        return;
    }
    let o = paceline(None, &["status", "--watch", "--interval", "0"]);
    assert!(o.code != 0 && o.stderr.contains("--interval must be between 0.1 and 3600 seconds"), "{}: {}", o.code, o.stderr);
    let o = paceline(None, &["status", "--no-such-option"]);
    assert_eq!(o.code, 2, "clap's usage error: {}", o.stderr);
    let o = paceline(None, &["check", "--cib", "/nonexistent/cib.xml"]);
    assert_eq!(o.code, 3, "{}", o.stderr);
    assert!(o.stderr.contains("cannot read /nonexistent/cib.xml"), "{}", o.stderr);
    let dir = common::TempDir::new("operator-cli");
    let bad = dir.0.join("cib.xml");
    std::fs::write(&bad, "<cib><configuration><resources><primitive id=").unwrap();
    let o = paceline(None, &["check", "--cib", &bad.display().to_string()]);
    assert_eq!(o.code, 2, "{}{}", o.stdout, o.stderr);
    assert!(o.stdout.starts_with("CRITICAL: no pgsqlms resource in the configuration"), "{}", o.stdout);
    let o = paceline(None, &["switchover", "--to", "node2", "--timeout", "abc"]);
    assert_eq!(o.code, 2, "{}", o.stderr);
}

/// `paceline agents` (what tests/package.sh checks the package against) and `paceline man`:
/// a line and a page for every agent of the one list (src/registry.rs), each line naming
/// where the agent is installed and the executable its link leads to.
#[test]
fn agents_listing_and_man_pages() {
    let run = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_paceline")).args(args).output().expect("paceline");
        assert!(o.status.success(), "paceline {args:?}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let listing = run(&["agents"]);
    let lines: Vec<Vec<&str>> = listing.lines().map(|l| l.split(' ').collect()).collect();
    assert_eq!(lines.len(), paceline::registry::AGENTS.len(), "{listing}");
    let out = std::env::temp_dir().join(format!("paceline-man-{}", std::process::id()));
    run(&["man", "--out", &out.display().to_string()]);
    for (l, a) in lines.iter().zip(paceline::registry::AGENTS) {
        let [name, kind, path, binary, page] = l[..] else { panic!("not five fields: {l:?}") };
        assert_eq!((name, kind), (a.name, a.kind.label()));
        assert_eq!(path, paceline::install::target(std::path::Path::new("/"), a).display().to_string());
        assert_eq!(binary, format!("/{}/{}", a.binary().dir, a.binary().name));
        assert!(out.join(page).is_file(), "no page {page}");
    }
    assert!(!run(&["--help"]).lines().any(|l| l.trim_start().starts_with("agents ")), "the listing is for scripts, not in the help");
    std::fs::remove_dir_all(&out).unwrap();
}

/// The help texts that name agents say what the one list of agents (src/registry.rs) says:
/// `install` which executable each agent is a link to, `uninstall`, `man` and `params`
/// every agent. None needs root or a cluster.
#[test]
fn help_texts_name_the_agents_of_the_list() {
    use paceline::registry::{names_in, AGENTS, BINARIES};
    let help = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_paceline")).args(args).output().expect("paceline");
        assert!(o.status.success(), "paceline {args:?}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let install = help(&["install", "--help"]);
    for b in BINARIES {
        // "/usr/sbin/paceline (the tool, and awsvip, ... and fence_paceline_aws)"
        let from = install.find(&format!("/{}/{} (", b.dir, b.name)).unwrap_or_else(|| panic!("install --help does not name /{}/{}: {install}", b.dir, b.name));
        let said = install[from..].split(')').next().unwrap_or_default();
        assert!(said.ends_with(&names_in(b)), "install --help: the agents linked to {} are {}, it says {said}", b.name, names_in(b));
    }
    assert!(
        install.contains(&format!("the {} agents", AGENTS.len())) || help(&["install", "-h"]).contains(&format!("the {} agents", AGENTS.len())),
        "{install}"
    );
    let (uninstall, man, params) = (help(&["uninstall", "--help"]), help(&["man", "--help"]), help(&["params", "--help"]));
    let values = params.split("[possible values: ").nth(1).and_then(|v| v.split(']').next()).unwrap_or_default();
    assert_eq!(values.split(", ").collect::<Vec<_>>(), AGENTS.iter().map(|a| a.name).collect::<Vec<_>>(), "params --help: {params}");
    for a in AGENTS {
        let (section, page) = a.man_page();
        assert!(man.contains(&format!("{page}({section})")), "man --help lacks {page}({section}): {man}");
        assert!(uninstall.contains(a.name), "uninstall --help lacks {}: {uninstall}", a.name);
    }
}

/// `paceline install` from any copy of the two executables side by side, with /proc or
/// without it (a private mount namespace that unmounts it: the executable's directory then
/// comes from argv[0], a path or a name found in PATH), and from an installed tree's
/// usr/sbin, whose paceline-core is in usr/lib/paceline.
#[test]
fn install_from_a_copy_with_or_without_proc() {
    if !common::privileged() {
        return eprintln!("skipping: needs root");
    }
    let base = std::env::temp_dir().join(format!("paceline-copy-{}", std::process::id()));
    let bin = base.join("copy");
    std::fs::create_dir_all(&bin).unwrap();
    let built = std::path::Path::new(env!("CARGO_BIN_EXE_paceline"));
    for name in ["paceline", "paceline-core"] {
        std::fs::copy(built.with_file_name(name), bin.join(name)).unwrap();
    }
    let installed = |root: &std::path::Path| {
        for a in paceline::registry::AGENTS {
            let link = paceline::install::target(root, a);
            let exe = root.join(a.binary().dir).join(a.binary().name);
            assert_eq!(std::fs::canonicalize(&link).ok(), std::fs::canonicalize(&exe).ok(), "{} under {}", a.name, root.display());
        }
    };
    let sh = |script: String| {
        let o = Command::new("unshare").args(["--mount", "sh", "-c", &script]).current_dir("/").output().unwrap();
        assert!(o.status.success(), "{script}: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    };
    let (b, r) = (bin.display(), base.display());
    sh(format!("umount -l /proc && ! test -e /proc/self/exe && exec {b}/paceline install --root {r}/by-path"));
    installed(&base.join("by-path"));
    sh(format!("umount -l /proc && PATH={b}:/usr/sbin:/usr/bin:/sbin:/bin exec paceline install --root {r}/by-name"));
    installed(&base.join("by-name"));
    sh(format!("exec {r}/by-path/usr/sbin/paceline install --root {r}/from-installed"));
    installed(&base.join("from-installed"));
    std::fs::remove_dir_all(&base).unwrap();
}
