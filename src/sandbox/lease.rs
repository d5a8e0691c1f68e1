//! Leases: while a sandbox is in use, its owner keeps a small file
//! (`n8n-ark-lease-<id>.json` beside the local sandboxes) fresh with a heartbeat, as a
//! backup session keeps its store lock (src/store/lock.rs). The sandbox's
//! marker or labels name the lease file. A sandbox whose lease is gone or
//! whose heartbeat is older than its promise (4 × its refresh interval) is
//! left over even when its owner process still runs: a long-lived process
//! (`n8n-ark serve`) that loses a handle without removing the sandbox (a
//! teardown that failed, a handle given up) has it reaped by its own next
//! sweep or by any other process's.
//!
//! The lease is written before the sandbox is made and removed after the
//! sandbox is, so a sandbox that names a lease never lacks it while its owner
//! holds it.
use super::{now_ms, process_alive, process_start, Purpose, Result, SandboxError};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A lease whose heartbeat is older than this many refresh intervals is stale.
pub const STALE_FACTOR: u64 = 4;
/// The shortest refresh interval a judge assumes (a lease promising faster
/// heartbeats is judged by this one).
const MIN_REFRESH_MS: u64 = 100;
/// The lease files' prefix, in the local sandboxes' directory.
const PREFIX: &str = "n8n-ark-lease-";

/// What a lease file holds.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub(crate) struct LeaseRecord {
    pub id: String,
    pub purpose: String,
    pub pid: u32,
    pub pid_start: Option<u64>,
    /// The promise: a heartbeat at least this often (ms).
    pub refresh_ms: u64,
    /// The last heartbeat (ms since the epoch).
    pub heartbeat_ms: u64,
}

impl LeaseRecord {
    /// Whether the holder stopped keeping it: its process is gone, or its
    /// heartbeat is older than its promise allows.
    pub fn is_stale(&self, now_ms: u64) -> bool {
        let limit = self.refresh_ms.max(MIN_REFRESH_MS) * STALE_FACTOR;
        now_ms.saturating_sub(self.heartbeat_ms) > limit || !process_alive(self.pid, self.pid_start)
    }
}

/// Where the lease files live.
pub(crate) fn dir() -> PathBuf {
    super::local::base_dir()
}

/// What a sandbox's lease says of it: `Some(true)` when it is stale or gone,
/// `Some(false)` when it is held, `None` when it cannot be told (unreadable:
/// another user's, say), so the owner's process decides.
pub(crate) fn is_abandoned(path: &Path, now_ms: u64) -> Option<bool> {
    match std::fs::read(path) {
        Ok(bytes) => match serde_json::from_slice::<LeaseRecord>(&bytes) {
            Ok(r) => Some(r.is_stale(now_ms)),
            // Being rewritten (rename makes that atomic) or damaged: the
            // file's age decides.
            Err(_) => Some(
                std::fs::metadata(path)
                    .and_then(|m| m.modified())
                    .map(|t| t.elapsed().unwrap_or_default() > Duration::from_secs(60))
                    .unwrap_or(true),
            ),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(true),
        Err(_) => None,
    }
}

fn write(path: &Path, rec: &LeaseRecord) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&serde_json::to_vec(rec).expect("a lease serializes"))?;
    std::fs::rename(&tmp, path)
}

/// A held lease. Its heartbeat runs until it is released (or dropped);
/// [`Lease::abandon`] stops the heartbeat and leaves the file to go stale.
#[derive(Debug)]
pub(crate) struct Lease {
    path: PathBuf,
    /// `true` once released or abandoned: the heartbeat writes under this
    /// lock and never after, so a released lease is never written again.
    done: Arc<Mutex<bool>>,
    heartbeat: Option<tokio::task::JoinHandle<()>>,
}

impl Lease {
    /// Writes a fresh lease and starts its heartbeat (every `refresh`).
    pub fn take(purpose: Purpose, refresh: Duration) -> Result<Lease> {
        let dir = dir();
        std::fs::create_dir_all(&dir).map_err(|e| {
            SandboxError::Unavailable(format!(
                "cannot create the sandbox directory {}: {e}",
                dir.display()
            ))
        })?;
        let id = format!("{}-{}", purpose.as_str(), super::suffix());
        let path = dir.join(format!("{PREFIX}{id}.json"));
        let pid = std::process::id();
        let mut rec = LeaseRecord {
            id,
            purpose: purpose.as_str().into(),
            pid,
            pid_start: process_start(pid),
            refresh_ms: refresh.as_millis().max(1) as u64,
            heartbeat_ms: now_ms(),
        };
        write(&path, &rec).map_err(|e| {
            SandboxError::Unavailable(format!(
                "cannot write the sandbox lease {}: {e}",
                path.display()
            ))
        })?;
        let done = Arc::new(Mutex::new(false));
        let (p, d) = (path.clone(), done.clone());
        let heartbeat = tokio::spawn(async move {
            loop {
                tokio::time::sleep(refresh).await;
                rec.heartbeat_ms = now_ms();
                let (p2, d, r) = (p.clone(), d.clone(), rec.clone());
                let wrote = tokio::task::spawn_blocking(move || {
                    let done = d.lock().unwrap_or_else(|e| e.into_inner());
                    if *done {
                        return None;
                    }
                    Some(write(&p2, &r))
                })
                .await;
                match wrote {
                    Ok(None) | Err(_) => return,
                    Ok(Some(Err(e))) => {
                        tracing::warn!("sandbox lease heartbeat {}: {e}", p.display())
                    }
                    Ok(Some(Ok(()))) => {}
                }
            }
        });
        Ok(Lease {
            path,
            done,
            heartbeat: Some(heartbeat),
        })
    }

    /// The lease file (named by the sandbox's marker or labels).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops the heartbeat; removes the file when `remove`.
    fn finish(&mut self, remove: bool) {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
        let mut done = self.done.lock().unwrap_or_else(|e| e.into_inner());
        if *done {
            return;
        }
        *done = true;
        if remove {
            let _ = std::fs::remove_file(&self.path);
        }
    }

    /// Gives the lease up without removing it, as a lost handle would: it
    /// goes stale and its sandbox is reaped by the next sweep.
    pub fn abandon(mut self) {
        self.finish(false);
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.finish(true);
    }
}

/// Removes lease files whose holder is gone or stale (their sandbox, if
/// any, was judged by them already). Returns how many.
pub(crate) fn remove_stale() -> usize {
    let Ok(rd) = std::fs::read_dir(dir()) else {
        return 0;
    };
    let now = now_ms();
    let mut n = 0;
    for e in rd.flatten() {
        let p = e.path();
        if !e.file_name().to_string_lossy().starts_with(PREFIX) {
            continue;
        }
        let stale = if p.extension().is_some_and(|x| x == "json") {
            is_abandoned(&p, now) == Some(true)
        } else {
            // A temporary file of a heartbeat that died mid-write.
            e.metadata()
                .and_then(|m| m.modified())
                .map(|t| t.elapsed().unwrap_or_default() > Duration::from_secs(60))
                .unwrap_or(false)
        };
        if stale && std::fs::remove_file(&p).is_ok() {
            n += 1;
        }
    }
    n
}
