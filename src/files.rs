//! Writing the small files the agents keep, so that no reader ever sees half of one and no
//! link ever redirects one.
//!
//! Why: an agent killed at its timeout (or a node losing power) in the middle of a plain
//! `write` leaves a truncated file, and the next action reads a score cache or a mark that
//! says something nobody wrote. And a plain `write` follows a link at the path: in a
//! directory another account can write to, that is a way to make root write anywhere. So
//! every write here creates a new file beside the target — `O_CREAT | O_EXCL | O_NOFOLLOW`,
//! it is never an existing file or a link — fills it, and renames it over the target, which
//! replaces a link instead of following it. Where the directory belongs to another account,
//! the caller also does this as that account ([`crate::pg::identity`]).

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// Write `bytes` to `path` atomically, the new file with `mode`.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let tmp = temporary(path)?;
    let written = (|| {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC).open(&tmp)?;
        f.write_all(bytes)?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// A name beside `path` that no other writer (thread or process) uses.
fn temporary(path: &Path) -> std::io::Result<PathBuf> {
    static N: AtomicU32 = AtomicU32::new(0);
    let name = path.file_name().ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "no file name"))?;
    let n = N.fetch_add(1, Ordering::Relaxed);
    Ok(path.with_file_name(format!(".{}.tmp-{}-{n}", name.to_string_lossy(), std::process::id())))
}

/// [`keep`] `text` at `path` only when the file holds something else: a memory rewritten
/// on every monitor would cost a write and a rename each time for nothing. Best effort,
/// like every mark of the agents: a failed write is seen again at the next call.
pub fn keep_changed(path: &Path, text: &str) {
    if std::fs::read_to_string(path).ok().as_deref() != Some(text) {
        let _ = keep(path, text.as_bytes());
    }
}

/// Keep `bytes` at `path` in a directory of the agents' own (`$HA_RSCTMP`, made if missing):
/// the one way the agents write their marks, caches and pid files there (atomically).
pub fn keep(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    write_atomic(path, bytes, 0o644)
}

/// The text of a small regular file (at most `max` bytes) that another account may control:
/// read without following a link at its last component, never a device or a fifo (which
/// could block or never end); `None` when it does not exist.
pub fn read_small(path: &Path, max: u64) -> Result<Option<String>, String> {
    let f = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY).open(path);
    let f = match f {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err("a symbolic link, not a file".into()),
        Err(e) => return Err(e.to_string()),
    };
    let meta = f.metadata().map_err(|e| e.to_string())?;
    if !meta.file_type().is_file() {
        return Err("not a regular file".into());
    }
    if meta.len() > max {
        return Err(format!("{} bytes: too large", meta.len()));
    }
    let mut text = String::new();
    std::io::Read::take(f, max).read_to_string(&mut text).map_err(|e| e.to_string())?;
    Ok(Some(text))
}

/// Remove `path` (a link is removed, never followed); a missing file is no error.
pub fn remove(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_a_link_instead_of_following_it() {
        let dir = std::env::temp_dir().join(format!("paceline-files-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let victim = dir.join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        let path = dir.join("cache");
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        write_atomic(&path, b"new\n", 0o600).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        assert!(!std::fs::symlink_metadata(&path).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read(&path).unwrap(), b"new\n");
        write_atomic(&path, b"newer\n", 0o600).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"newer\n");
        // No temporary left behind.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2);
        remove(&path).unwrap();
        remove(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
