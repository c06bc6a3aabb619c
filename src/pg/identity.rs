//! Acting as `system_user` (the account that owns the data directory) from root.
//!
//! Why: the agents run as root, and the data directory, the socket directory and the server
//! log directory belong to the `postgres` account — which any database superuser becomes
//! with `COPY … TO PROGRAM`. A file that root creates, truncates, rewrites or unlinks there
//! may be a link planted by that account, pointing anywhere (root follows it: `/etc/passwd`
//! truncated and handed to postgres). Done as the account itself, the same call can reach
//! only what the account could reach anyway, so no link can make it worse — the privilege
//! separation OpenSSH uses, and PostgreSQL's own refusal to run as root. The files it
//! creates are the account's, with no `chown` (which would follow a link too).
//!
//! The switch is the calling thread's alone (the raw `setresuid`/`setresgid`/`setgroups`
//! system calls: Linux keeps credentials per thread, glibc's wrappers would change every
//! thread). The state service connects from one thread while others run Pacemaker's tools
//! and write the log: with a process-wide switch those ran as `system_user` for that moment,
//! and the controller refused them (permission denied) or a log line was lost. The
//! supplementary groups go too (root's `root` group could still write group-writable files).
//! Leaving the switch restores root's ids and groups; a failed switch runs nothing.
//!
//! The PostgreSQL programs root starts ([`command_as`]) run as the account with its own
//! groups too, as its packages would start them: a server without them fails where the
//! distribution's configuration relies on one (Debian's `ssl-cert`).

use std::path::Path;

use nix::unistd::{Gid, Uid};

/// The OS identity to act as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub uid: Uid,
    pub gid: Gid,
}

impl Identity {
    /// Look `name` up in `/etc/passwd`.
    ///
    /// Only local users: the agents are linked statically against the C library (start-up
    /// cost, see `.cargo/config.toml`), and a static binary cannot safely load NSS modules
    /// (`getpwnam` of an unknown name crashes in libnss_systemd). PostgreSQL packages create
    /// their OS user locally, which is what this supports.
    pub fn lookup(name: &str) -> std::io::Result<Option<Identity>> {
        Ok(Self::find(&std::fs::read_to_string("/etc/passwd")?, name))
    }

    /// The entry for `name` in passwd-format `text`.
    pub fn find(text: &str, name: &str) -> Option<Identity> {
        text.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 4 || f[0] != name {
                return None;
            }
            Some(Identity { uid: Uid::from_raw(f[2].parse().ok()?), gid: Gid::from_raw(f[3].parse().ok()?) })
        })
    }
}

/// `who`'s name and home directory, from `/etc/passwd`.
pub fn account(who: Identity) -> Option<(String, String)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 6 && f[2].parse::<u32>().ok() == Some(who.uid.as_raw())).then(|| (f[0].to_owned(), f[5].to_owned()))
    })
}

/// The groups of group-format `text` whose member list names `user`.
pub fn groups_listing(text: &str, user: &str) -> Vec<Gid> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 4 && f[3].split(',').any(|m| m.trim() == user)).then(|| f[2].parse().ok().map(Gid::from_raw)).flatten()
        })
        .collect()
}

/// Make `cmd` (run by root) run as `who`: its groups (primary, then those of `/etc/group`
/// that list its name: what `runuser`, `su` or systemd give it through `initgroups`; local
/// groups only, as [`Identity::lookup`]), gid and uid set in the child before exec, with
/// raw system calls (the child of a threaded parent), and `HOME`, `USER`, `LOGNAME` the
/// account's, as `runuser -u` gives them. std's own `uid()` drops every supplementary group
/// instead — and Debian's default `ssl = on` reads the snakeoil key through `ssl-cert`, so
/// PostgreSQL failed to start — and root's `HOME` made libpq in a standby's walreceiver (and
/// pg_rewind, pg_basebackup) read `/root/.pgpass` instead of the account's: a replication
/// password kept where PostgreSQL's documentation puts it was never found.
pub fn command_as(cmd: &mut std::process::Command, who: Identity) {
    use std::os::unix::process::CommandExt;
    let mut groups: Vec<libc::gid_t> = vec![who.gid.as_raw()];
    if let Some((name, home)) = account(who) {
        cmd.env("HOME", home).env("USER", &name).env("LOGNAME", &name);
        let listed = std::fs::read_to_string("/etc/group").map(|g| groups_listing(&g, &name)).unwrap_or_default();
        groups.extend(listed.iter().map(|g| g.as_raw()).filter(|g| *g != who.gid.as_raw()));
    }
    let (uid, gid) = (who.uid.as_raw(), who.gid.as_raw());
    // SAFETY: only async-signal-safe system calls in the child, on integers and a list
    // allocated before the fork.
    unsafe {
        cmd.pre_exec(move || {
            let ok = libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) == 0
                && libc::syscall(libc::SYS_setresgid, gid, gid, gid) == 0
                && libc::syscall(libc::SYS_setresuid, uid, uid, uid) == 0;
            if ok {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
}

/// Run file operation `f` as `who` (effective uid and gid, and `who`'s primary group as the
/// only group) on this thread only, then return to the ids it had. `None`, or a process
/// that is not root, runs `f` as it is. If the switch cannot be made, `f` is not run.
pub fn as_user<T>(who: Option<Identity>, f: impl FnOnce() -> std::io::Result<T>) -> std::io::Result<T> {
    try_as_user(who, f).map_err(|SwitchFailed| std::io::Error::new(std::io::ErrorKind::PermissionDenied, "cannot switch to system_user's identity"))?
}

/// The thread could not take the account's identity.
#[derive(Debug, Clone, Copy)]
pub struct SwitchFailed;

/// Run `f` as `who` as [`as_user`] does, whatever `f` returns.
pub fn try_as_user<T>(who: Option<Identity>, f: impl FnOnce() -> T) -> Result<T, SwitchFailed> {
    let Some(who) = who.filter(|_| nix::unistd::geteuid().is_root()) else { return Ok(f()) };
    let (euid, egid) = (nix::unistd::geteuid(), nix::unistd::getegid());
    let groups = nix::unistd::getgroups().unwrap_or_default();
    // SAFETY: raw system calls on integer ids; -1 (as the kernel's unsigned) keeps an id.
    let set = |nr: libc::c_long, id: u32| unsafe { libc::syscall(nr, u32::MAX, id, u32::MAX) == 0 };
    // SAFETY: a list of gids valid for the call.
    let set_groups = |g: &[libc::gid_t]| unsafe { libc::syscall(libc::SYS_setgroups, g.len(), g.as_ptr()) == 0 };
    let restore = || {
        set(libc::SYS_setresuid, euid.as_raw());
        set(libc::SYS_setresgid, egid.as_raw());
        let raw: Vec<libc::gid_t> = groups.iter().map(|g| g.as_raw()).collect();
        set_groups(&raw);
    };
    let switched = set_groups(&[who.gid.as_raw()]) && set(libc::SYS_setresgid, who.gid.as_raw()) && set(libc::SYS_setresuid, who.uid.as_raw());
    if !switched {
        restore();
        return Err(SwitchFailed);
    }
    let out = f();
    restore();
    Ok(out)
}

/// Become `who` for good, the whole process (every thread: the C library's `setresuid`
/// changes them all): `who`'s group and `extra` as the only groups, the saved ids too, so
/// that no way back to root is left. Checked after the change.
pub fn drop_for_good(who: Identity, extra: &[Gid]) -> std::io::Result<()> {
    let mut groups = vec![who.gid];
    groups.extend(extra.iter().copied().filter(|g| *g != who.gid));
    nix::unistd::setgroups(&groups)?;
    nix::unistd::setresgid(who.gid, who.gid, who.gid)?;
    nix::unistd::setresuid(who.uid, who.uid, who.uid)?;
    let ids = nix::unistd::getresuid()?;
    if ids.real != who.uid || ids.effective != who.uid || ids.saved != who.uid || nix::unistd::setuid(Uid::from_raw(0)).is_ok() {
        return Err(std::io::Error::other("the process still holds root after dropping it"));
    }
    Ok(())
}

/// The id of local group `name` (`/etc/group`, as [`Identity::lookup`] reads `/etc/passwd`).
pub fn group_id(name: &str) -> Option<Gid> {
    let text = std::fs::read_to_string("/etc/group").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 3 && f[0] == name).then(|| f[2].parse().ok().map(Gid::from_raw)).flatten()
    })
}

/// Write `bytes` to `path` as `who`, atomically: a new file beside it (created, never
/// opened if there), then renamed over `path`. A reader sees the old or the new content.
pub fn write_as(who: Option<Identity>, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    as_user(who, || crate::files::write_atomic(path, bytes, 0o600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_groups_that_list_a_user() {
        let text = "root:x:0:\nssl-cert:x:103:postgres\nhaclient:x:110:hacluster,postgres\npostgres:x:120:\nbroken:x:zz:postgres\nother:x:7:postgresql\n";
        assert_eq!(groups_listing(text, "postgres").iter().map(|g| g.as_raw()).collect::<Vec<_>>(), [103, 110]);
        assert!(groups_listing(text, "nobody").is_empty());
    }

    #[test]
    fn passwd_lookup() {
        let text = "root:x:0:0:root:/root:/bin/bash\npostgres:x:105:110:PostgreSQL administrator,,,:/var/lib/postgresql:/bin/bash\n";
        let pg = Identity::find(text, "postgres").unwrap();
        assert_eq!((pg.uid.as_raw(), pg.gid.as_raw()), (105, 110));
        assert!(Identity::find(text, "nobody").is_none());
        assert!(Identity::find("broken:x:notanumber:1::\n", "broken").is_none());
    }

    /// As root: inside the switch the thread is the account, after it root again; a link
    /// planted toward a root-only file cannot be written through.
    #[test]
    fn the_switch_is_the_threads_and_is_undone() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let nobody = Identity { uid: Uid::from_raw(65534), gid: Gid::from_raw(65534) };
        let inside = try_as_user(Some(nobody), || (nix::unistd::geteuid(), nix::unistd::getgroups().unwrap_or_default())).unwrap();
        assert_eq!(inside.0.as_raw(), 65534);
        assert_eq!(inside.1, vec![Gid::from_raw(65534)]);
        assert!(nix::unistd::geteuid().is_root());
        let dir = std::env::temp_dir().join(format!("paceline-identity-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let secret = dir.join("root-only");
        std::fs::write(&secret, b"root's").unwrap();
        let link = dir.join("link");
        std::os::unix::fs::symlink(&secret, &link).unwrap();
        let e = as_user(Some(nobody), || std::fs::write(&link, b"pwned")).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied);
        assert_eq!(std::fs::read(&secret).unwrap(), b"root's");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
