//! Small file-system helpers: atomic writes, lock files, private directories.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::PkgError;

/// Creates `dir` and its parents; new directories get mode 0700 on Unix.
pub fn create_private_dir(dir: &Path) -> Result<(), PkgError> {
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
        .map_err(|e| PkgError::io(format!("cannot create {}", dir.display()), e))
}

/// A fresh sibling name `<dir>/.<tag>-<pid>-<n>` that does not exist yet.
pub fn temp_sibling(dir: &Path, tag: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    loop {
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p = dir.join(format!(".{tag}-{}-{nanos}-{n}", std::process::id()));
        if fs::symlink_metadata(&p).is_err() {
            return p;
        }
    }
}

/// Writes `content` to `path` atomically: temporary file, fsync, rename.
pub fn atomic_write(path: &Path, content: &[u8]) -> Result<(), PkgError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = temp_sibling(dir, "alc-write");
    let res = (|| -> std::io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(content)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = res {
        let _ = fs::remove_file(&tmp);
        return Err(PkgError::io(format!("cannot write {}", path.display()), e));
    }
    Ok(())
}

/// An exclusive advisory lock held on a lock file until dropped.
pub struct FileLock {
    _file: fs::File,
}

impl FileLock {
    /// Locks `path` (created if missing), blocking until the lock is free.
    pub fn acquire(path: &Path) -> Result<FileLock, PkgError> {
        if let Some(d) = path.parent() {
            if !d.exists() {
                create_private_dir(d)?;
            }
        }
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| PkgError::io(format!("cannot open lock {}", path.display()), e))?;
        #[cfg(unix)]
        {
            use std::os::unix::io::AsRawFd;
            // SAFETY: flock on a valid, open descriptor owned by `file`.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
            if rc != 0 {
                return Err(PkgError::io(
                    format!("cannot lock {}", path.display()),
                    std::io::Error::last_os_error(),
                ));
            }
        }
        Ok(FileLock { _file: file })
    }
}

/// Whether `p` is a symbolic link (not followed).
pub fn is_symlink(p: &Path) -> bool {
    fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink())
}

/// Removes a file, link or directory tree at `p` (links are removed, never followed).
pub fn remove_any(p: &Path) -> std::io::Result<()> {
    let m = fs::symlink_metadata(p)?;
    if m.is_dir() {
        fs::remove_dir_all(p)
    } else {
        fs::remove_file(p)
    }
}

/// Creates a directory symlink `link` → `target`.
pub fn symlink_dir(target: &Path, link: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(target, link)
    }
    #[cfg(windows)]
    {
        std::os::windows::fs::symlink_dir(target, link)
    }
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
