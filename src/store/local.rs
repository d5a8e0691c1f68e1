//! A store in a local directory; also correct on NFS: it relies on no atime, no
//! hard links and no flock. Every write goes to a temporary file in the target
//! directory, is fsynced, renamed into place, and the directory is fsynced.
//!
//! Exclusive creation (journal records, locks) claims the name with an
//! `O_EXCL` create of an empty file (atomic on local file systems and on NFSv3+),
//! then publishes the content by renaming a complete temporary file over the
//! claim. A reader therefore sees a name as absent, as an empty claim, or whole.
//!
//! The store's directory is made only by [`Backend::create_location`] (`init`).
//! The backend remembers which directory that is (its device and inode, taken
//! at `init` or at the first use), checks before every change that the name
//! still leads there, and creates missing directories one level at a time
//! below it, never the directory itself: a store moved away, or a disk
//! unmounted from under it, makes writes fail instead of silently starting a
//! new, keyless store at the old name or in the empty mount point.
use super::backend::{BResult, Backend, Entry};
use super::error::BackendError;
use async_trait::async_trait;
use bytes::Bytes;
use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone)]
pub struct LocalBackend {
    root: Arc<PathBuf>,
    /// Directories whose entries changed since the last `sync`.
    dirty: Arc<Mutex<HashSet<PathBuf>>>,
    /// The store directory's device and inode, from its creation or first use.
    pinned: Arc<Mutex<Option<(u64, u64)>>>,
}

pub const TEMP_PREFIX: &str = ".tmp-";

impl LocalBackend {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalBackend {
            root: Arc::new(root.into()),
            dirty: Arc::default(),
            pinned: Arc::default(),
        }
    }

    fn gone(&self, detail: &str) -> BackendError {
        BackendError::Gone {
            location: self.location(),
            detail: detail.to_string(),
        }
    }

    /// Checks that the root is still the directory this backend first used
    /// (remembering it on the first call).
    fn check_root(&self) -> BResult<()> {
        use std::os::unix::fs::MetadataExt;
        let md = match fs::metadata(self.root.as_path()) {
            Ok(md) if md.is_dir() => md,
            Ok(_) => return Err(self.gone("its name is now something other than a directory")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(self.gone("its directory no longer exists"))
            }
            Err(e) => return Err(BackendError::io(self.location(), e)),
        };
        let id = (md.dev(), md.ino());
        let mut pinned = self.pinned.lock().unwrap();
        match *pinned {
            None => {
                *pinned = Some(id);
                Ok(())
            }
            Some(p) if p == id => Ok(()),
            Some(_) => Err(self.gone(
                "another directory now has its name (its disk is no longer mounted there, or it was replaced)",
            )),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn full(&self, path: &str) -> BResult<PathBuf> {
        if path.is_empty()
            || path.starts_with('/')
            || path
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..")
        {
            return Err(BackendError::Io {
                path: path.to_string(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "invalid store path"),
            });
        }
        Ok(self.root.join(path))
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&LocalBackend) -> BResult<T> + Send + 'static,
    ) -> BResult<T> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || f(&me))
            .await
            .map_err(|e| BackendError::Io {
                path: String::new(),
                source: std::io::Error::other(format!("worker failed: {e}")),
            })?
    }

    /// The directory `full` goes into, made if missing: one level at a time
    /// below the root, never the root itself (see the module documentation).
    fn ensure_parent(&self, path: &str, full: &Path) -> BResult<PathBuf> {
        self.check_root()?;
        let parent = full
            .parent()
            .expect("store paths have a parent")
            .to_path_buf();
        if parent.is_dir() {
            return Ok(parent);
        }
        let rel = parent
            .strip_prefix(self.root.as_path())
            .expect("store paths are under the root")
            .to_path_buf();
        let mut dir = self.root.to_path_buf();
        for c in rel.components() {
            let up = dir.clone();
            dir.push(c);
            match fs::create_dir(&dir) {
                // The new directory's own name must survive a crash too.
                Ok(()) => fsync_dir(&up).map_err(|e| BackendError::io(path, e))?,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => {}
                // The root went away between the check and here.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(self.gone("its directory no longer exists"))
                }
                Err(e) => return Err(BackendError::io(path, e)),
            }
        }
        Ok(parent)
    }

    /// Writes a complete, fsynced temporary file next to `full` and returns its path.
    fn write_temp(&self, path: &str, parent: &Path, data: &[u8]) -> BResult<PathBuf> {
        let tmp = parent.join(format!("{TEMP_PREFIX}{}", uuid::Uuid::new_v4().simple()));
        let res = (|| {
            let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
            f.write_all(data)?;
            f.sync_all()
        })();
        if let Err(e) = res {
            let _ = fs::remove_file(&tmp);
            return Err(BackendError::io(path, e));
        }
        Ok(tmp)
    }

    fn put_sync(&self, path: &str, data: &[u8], durable_name: bool) -> BResult<()> {
        let full = self.full(path)?;
        let parent = self.ensure_parent(path, &full)?;
        let tmp = self.write_temp(path, &parent, data)?;
        if let Err(e) = fs::rename(&tmp, &full) {
            let _ = fs::remove_file(&tmp);
            return Err(BackendError::io(path, e));
        }
        if durable_name {
            fsync_dir(&parent).map_err(|e| BackendError::io(path, e))?;
        } else {
            self.dirty.lock().unwrap().insert(parent);
        }
        Ok(())
    }
}

/// The error of reading `path`. A name that is a directory (only a prefix of
/// other names) or that runs through a file holds no object, as on object
/// storage: that is `NotFound`, not an I/O error.
fn read_err(path: &str, e: std::io::Error) -> BackendError {
    match e.kind() {
        std::io::ErrorKind::IsADirectory | std::io::ErrorKind::NotADirectory => {
            BackendError::NotFound {
                path: path.to_string(),
            }
        }
        _ => BackendError::io(path, e),
    }
}

fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

fn modified_ms(md: &fs::Metadata) -> i64 {
    md.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[async_trait]
impl Backend for LocalBackend {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    async fn create_exclusive(&self, path: &str, data: Bytes) -> BResult<()> {
        let path = path.to_string();
        self.blocking(move |me| {
            let full = me.full(&path)?;
            let parent = me.ensure_parent(&path, &full)?;
            // The complete content first, so that the claim below stays empty
            // only for the instant between two system calls.
            let tmp = me.write_temp(&path, &parent, &data)?;
            // Claim: exclusive creation of an empty file.
            if let Err(e) = OpenOptions::new().write(true).create_new(true).open(&full) {
                let _ = fs::remove_file(&tmp);
                return Err(BackendError::io(&path, e));
            }
            // Publish: rename the complete temporary file over our own claim.
            if let Err(e) = fs::rename(&tmp, &full) {
                let _ = fs::remove_file(&tmp);
                let _ = fs::remove_file(&full);
                return Err(BackendError::io(&path, e));
            }
            fsync_dir(&parent).map_err(|e| BackendError::io(&path, e))
        })
        .await
    }

    async fn put(&self, path: &str, data: Bytes) -> BResult<()> {
        let path = path.to_string();
        self.blocking(move |me| me.put_sync(&path, &data, false))
            .await
    }

    async fn get(&self, path: &str) -> BResult<Bytes> {
        let path = path.to_string();
        self.blocking(move |me| {
            let full = me.full(&path)?;
            fs::read(&full)
                .map(Bytes::from)
                .map_err(|e| read_err(&path, e))
        })
        .await
    }

    async fn get_range(&self, path: &str, range: Range<u64>) -> BResult<Bytes> {
        let path = path.to_string();
        self.blocking(move |me| {
            let full = me.full(&path)?;
            let mut f = File::open(&full).map_err(|e| read_err(&path, e))?;
            f.seek(SeekFrom::Start(range.start))
                .map_err(|e| read_err(&path, e))?;
            let mut buf =
                Vec::with_capacity((range.end.saturating_sub(range.start)).min(64 << 20) as usize);
            f.take(range.end.saturating_sub(range.start))
                .read_to_end(&mut buf)
                .map_err(|e| read_err(&path, e))?;
            Ok(Bytes::from(buf))
        })
        .await
    }

    async fn list(&self, prefix: &str) -> BResult<Vec<Entry>> {
        let prefix = prefix.to_string();
        self.blocking(move |me| {
            // Walk from the deepest directory the prefix names.
            let (dir_part, _) = match prefix.rfind('/') {
                Some(i) => (&prefix[..i], &prefix[i + 1..]),
                None => ("", prefix.as_str()),
            };
            let start = if dir_part.is_empty() {
                me.root.to_path_buf()
            } else {
                me.root.join(dir_part)
            };
            let mut out = Vec::new();
            let mut stack = vec![start];
            while let Some(dir) = stack.pop() {
                let rd = match fs::read_dir(&dir) {
                    Ok(rd) => rd,
                    // A prefix whose directory part is missing, or is a file, names nothing.
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                        ) =>
                    {
                        continue
                    }
                    Err(e) => return Err(BackendError::io(dir.display().to_string(), e)),
                };
                for ent in rd {
                    let ent = ent.map_err(|e| BackendError::io(dir.display().to_string(), e))?;
                    let name = ent.file_name();
                    let name = name.to_string_lossy();
                    if name.starts_with(TEMP_PREFIX) {
                        continue;
                    }
                    let p = ent.path();
                    let rel = p
                        .strip_prefix(me.root.as_path())
                        .unwrap()
                        .to_string_lossy()
                        .replace('\\', "/");
                    let ft = ent.file_type().map_err(|e| BackendError::io(&rel, e))?;
                    if ft.is_dir() {
                        if rel.starts_with(&prefix) || prefix.starts_with(&format!("{rel}/")) {
                            stack.push(p);
                        }
                    } else if rel.starts_with(&prefix) {
                        let md = match ent.metadata() {
                            Ok(m) => m,
                            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                            Err(e) => return Err(BackendError::io(&rel, e)),
                        };
                        out.push(Entry {
                            path: rel,
                            size: md.len(),
                            modified_ms: modified_ms(&md),
                        });
                    }
                }
            }
            Ok(out)
        })
        .await
    }

    async fn stat(&self, path: &str) -> BResult<Entry> {
        let path = path.to_string();
        self.blocking(move |me| {
            let md = fs::metadata(me.full(&path)?).map_err(|e| read_err(&path, e))?;
            if md.is_dir() {
                return Err(BackendError::NotFound { path });
            }
            Ok(Entry {
                path,
                size: md.len(),
                modified_ms: modified_ms(&md),
            })
        })
        .await
    }

    async fn delete(&self, path: &str) -> BResult<()> {
        let path = path.to_string();
        self.blocking(move |me| {
            let full = me.full(&path)?;
            me.check_root()?;
            match fs::remove_file(&full) {
                Ok(()) => {
                    me.dirty
                        .lock()
                        .unwrap()
                        .insert(full.parent().unwrap().to_path_buf());
                    Ok(())
                }
                // Absent, a directory (no object), or under a file: nothing to remove.
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::NotFound
                            | std::io::ErrorKind::IsADirectory
                            | std::io::ErrorKind::NotADirectory
                    ) =>
                {
                    Ok(())
                }
                Err(e) => Err(BackendError::io(&path, e)),
            }
        })
        .await
    }

    async fn rename(&self, from: &str, to: &str) -> BResult<()> {
        let (from, to) = (from.to_string(), to.to_string());
        self.blocking(move |me| {
            let f = me.full(&from)?;
            let t = me.full(&to)?;
            me.check_root()?;
            // Only an object moves: a name that is a directory holds none (and
            // renaming it would move a whole subtree). Checked before the
            // target's directory is created, so a failed rename leaves nothing.
            let md = fs::metadata(&f).map_err(|e| read_err(&from, e))?;
            if md.is_dir() {
                return Err(BackendError::NotFound { path: from });
            }
            let parent = me.ensure_parent(&to, &t)?;
            fs::rename(&f, &t).map_err(|e| read_err(&from, e))?;
            let mut d = me.dirty.lock().unwrap();
            d.insert(parent);
            d.insert(f.parent().unwrap().to_path_buf());
            Ok(())
        })
        .await
    }

    async fn sync(&self) -> BResult<()> {
        let mut dirs: HashSet<PathBuf> = std::mem::take(&mut *self.dirty.lock().unwrap());
        // Objects another process wrote but has not synced yet may be reused
        // by this one: make every object directory's names durable.
        let objects = self.root.join("objects");
        if let Ok(rd) = fs::read_dir(&objects) {
            dirs.extend(rd.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
        }
        let dirs: Vec<PathBuf> = dirs.into_iter().collect();
        if dirs.is_empty() {
            return Ok(());
        }
        let me = self.clone();
        self.blocking(move |_| {
            for d in &dirs {
                if let Err(e) = fsync_dir(d) {
                    // Put it back so a later sync tries again.
                    me.dirty.lock().unwrap().extend(dirs.iter().cloned());
                    return Err(BackendError::io(d.display().to_string(), e));
                }
            }
            Ok(())
        })
        .await
    }

    async fn create_location(&self, dirs: &[&str]) -> BResult<()> {
        let dirs: Vec<String> = dirs
            .iter()
            .map(|d| d.trim_end_matches('/').to_string())
            .collect();
        self.blocking(move |me| {
            let root = me.root.as_path();
            let loc = me.location();
            fs::create_dir_all(root).map_err(|e| BackendError::io(&loc, e))?;
            if let Some(up) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
                fsync_dir(up).map_err(|e| BackendError::io(&loc, e))?;
            }
            me.check_root()?;
            for d in &dirs {
                if d.is_empty() || d.contains('/') {
                    return Err(BackendError::io(
                        d,
                        std::io::Error::new(
                            std::io::ErrorKind::InvalidInput,
                            "not a top-level directory name",
                        ),
                    ));
                }
                match fs::create_dir(root.join(d)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(BackendError::io(d, e)),
                }
            }
            fsync_dir(root).map_err(|e| BackendError::io(&loc, e))
        })
        .await
    }

    async fn check_location(&self) -> BResult<()> {
        self.blocking(|me| me.check_root()).await
    }

    async fn remove_stale_temporaries(&self, older_than_ms: i64) -> BResult<u64> {
        self.blocking(move |me| {
            me.check_root()?;
            let cutoff = super::now_ms() - older_than_ms;
            let mut removed = 0;
            let mut stack = vec![me.root.to_path_buf()];
            while let Some(dir) = stack.pop() {
                let rd = match fs::read_dir(&dir) {
                    Ok(rd) => rd,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(BackendError::io(dir.display().to_string(), e)),
                };
                for ent in rd.flatten() {
                    let Ok(ft) = ent.file_type() else { continue };
                    if ft.is_dir() {
                        stack.push(ent.path());
                        continue;
                    }
                    if !ent.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
                        continue;
                    }
                    let Ok(md) = ent.metadata() else { continue };
                    if modified_ms(&md) >= cutoff {
                        continue;
                    }
                    match fs::remove_file(ent.path()) {
                        Ok(()) => {
                            removed += 1;
                            me.dirty.lock().unwrap().insert(dir.clone());
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => {
                            return Err(BackendError::io(ent.path().display().to_string(), e))
                        }
                    }
                }
            }
            Ok(removed)
        })
        .await
    }

    async fn remove_empty_dirs(&self, prefix: &str) -> BResult<u64> {
        let prefix = prefix.trim_end_matches('/').to_string();
        self.blocking(move |me| {
            me.check_root()?;
            let top = me.full(&prefix)?;
            let mut removed = 0;
            let rd = match fs::read_dir(&top) {
                Ok(rd) => rd,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
                Err(e) => return Err(BackendError::io(&prefix, e)),
            };
            for ent in rd.flatten() {
                if !ent.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    continue;
                }
                // Fails, and is left alone, unless it is empty.
                if fs::remove_dir(ent.path()).is_ok() {
                    removed += 1;
                }
            }
            if removed > 0 {
                me.dirty.lock().unwrap().insert(top);
            }
            Ok(removed)
        })
        .await
    }

    fn fills_up(&self) -> bool {
        true
    }
}
