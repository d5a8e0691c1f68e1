//! The sandbox manager: what a process (one CLI command, or `n8n-ark serve`
//! with many jobs) holds to make sandboxes, held in the operations'
//! `Context` instead of process-wide state.
//!
//! - **A limit**: at most [`SandboxConfig::max_concurrent`] sandboxes in use
//!   at once (a browse sandbox counts while a handle on it is held). A
//!   request over the limit waits up to [`SandboxConfig::wait`] for one to
//!   be given back, then fails with [`SandboxError::Busy`] (retryable: the
//!   operation's error is `unavailable`), so a burst of jobs queues instead
//!   of starting PostgreSQL ten times over.
//! - **Leases** ([`super::lease`]): each sandbox in use has a lease file its
//!   handle keeps fresh; leftovers are judged by a stale heartbeat as well
//!   as by a dead owner, and swept on the first request and then at most
//!   every [`SandboxConfig::sweep_every`] (or on [`SandboxManager::reap`]).
//! - **Shutdown** ([`SandboxManager::shutdown`]): removes every sandbox in
//!   use and refuses new ones, for a server that stops. The engine installs
//!   no signal handler and never exits the process: a front end cancels its
//!   operations (each tears its sandbox down on the way out) or calls this.
//! - **What is used is reported** through the operation's [`Reporter`], as
//!   [`Progress::Item`]s named [`REPORT_ITEM`] (`local:… (PostgreSQL 15.4)`,
//!   `… (reused)`, `not docker (…); using local`).
use super::{
    make, now_secs, spawn_reaper, Browse, Owner, Purpose, Remover, Result, Sandbox, SandboxError,
    SandboxKind, SandboxSpec, Toucher,
};
use crate::ops::{Progress, Reporter};
use async_trait::async_trait;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncRead;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The name of the progress items that say which sandbox is used.
pub const REPORT_ITEM: &str = "sandbox";

/// How many sandboxes, how long to wait for one, how often leases beat.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxConfig {
    /// At most this many sandboxes in use at once (`ARK_SANDBOX_MAX`,
    /// default 4; at least 1).
    pub max_concurrent: usize,
    /// How long a request over the limit waits for a free one before it
    /// fails (`ARK_SANDBOX_WAIT`, seconds, default 600; 0: fail at once).
    pub wait: Duration,
    /// How often a sandbox's lease is refreshed (default 15 s); a lease not
    /// refreshed for 4 times that is stale and its sandbox left over.
    pub heartbeat: Duration,
    /// At most how often a request sweeps leftovers first (default 5 min;
    /// the first request of a manager always does).
    pub sweep_every: Duration,
}

impl Default for SandboxConfig {
    fn default() -> SandboxConfig {
        SandboxConfig {
            max_concurrent: 4,
            wait: Duration::from_secs(600),
            heartbeat: Duration::from_secs(15),
            sweep_every: Duration::from_secs(300),
        }
    }
}

impl SandboxConfig {
    /// The defaults with `ARK_SANDBOX_MAX` and `ARK_SANDBOX_WAIT` as `get`
    /// gives them (a front end passes its environment snapshot); an invalid
    /// value is an error naming the variable.
    pub fn from_vars<'a>(
        get: impl Fn(&str) -> Option<&'a str>,
    ) -> std::result::Result<SandboxConfig, String> {
        let mut c = SandboxConfig::default();
        if let Some(v) = get("ARK_SANDBOX_MAX").filter(|v| !v.trim().is_empty()) {
            c.max_concurrent = match v.trim().parse::<usize>() {
                Ok(n) if (1..=1024).contains(&n) => n,
                _ => {
                    return Err(format!(
                        "ARK_SANDBOX_MAX={v:?}: give how many sandboxes may run at once (1 to 1024)"
                    ))
                }
            };
        }
        if let Some(v) = get("ARK_SANDBOX_WAIT").filter(|v| !v.trim().is_empty()) {
            c.wait = match v.trim().parse::<u64>() {
                Ok(s) => Duration::from_secs(s),
                _ => {
                    return Err(format!(
                        "ARK_SANDBOX_WAIT={v:?}: give the seconds a request waits for a free sandbox (0: none)"
                    ))
                }
            };
        }
        Ok(c)
    }
}

/// The sandboxes of this manager that are in use, to remove without their
/// handles (shutdown, a front end's last-resort exit).
#[derive(Debug, Clone, Default)]
pub(crate) struct Registry(Arc<Mutex<Vec<(u64, Remover)>>>);

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl Registry {
    pub fn register(&self, r: Remover) -> u64 {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((id, r));
        id
    }

    pub fn unregister(&self, id: u64) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(i, _)| *i != id);
    }

    fn drain(&self) -> Vec<Remover> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .map(|(_, r)| r)
            .collect()
    }

    fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// Makes sandboxes for the operations of one process (see the module doc).
pub struct SandboxManager {
    config: SandboxConfig,
    slots: Arc<Semaphore>,
    live: Registry,
    last_sweep: tokio::sync::Mutex<Option<Instant>>,
    closed: AtomicBool,
}

impl std::fmt::Debug for SandboxManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxManager")
            .field("config", &self.config)
            .field("in_use", &self.in_use())
            .field("live", &self.live.len())
            .finish()
    }
}

impl Default for SandboxManager {
    fn default() -> SandboxManager {
        SandboxManager::new(SandboxConfig::default())
    }
}

impl SandboxManager {
    pub fn new(config: SandboxConfig) -> SandboxManager {
        let max = config.max_concurrent.max(1);
        SandboxManager {
            config,
            slots: Arc::new(Semaphore::new(max)),
            live: Registry::default(),
            last_sweep: tokio::sync::Mutex::new(None),
            closed: AtomicBool::new(false),
        }
    }

    pub fn config(&self) -> &SandboxConfig {
        &self.config
    }

    /// How many sandboxes are in use now (handles held).
    pub fn in_use(&self) -> usize {
        self.config
            .max_concurrent
            .max(1)
            .saturating_sub(self.slots.available_permits())
    }

    /// A slot under the limit: at once, after waiting, or [`SandboxError::Busy`].
    async fn slot(&self, reporter: &dyn Reporter) -> Result<OwnedSemaphorePermit> {
        let closed = || {
            SandboxError::Busy(
                "no new sandbox: n8n-ark is shutting down (try again once it runs)".into(),
            )
        };
        if self.closed.load(Ordering::SeqCst) {
            return Err(closed());
        }
        match self.slots.clone().try_acquire_owned() {
            Ok(p) => return Ok(p),
            Err(tokio::sync::TryAcquireError::Closed) => return Err(closed()),
            Err(tokio::sync::TryAcquireError::NoPermits) => {}
        }
        let max = self.config.max_concurrent.max(1);
        let busy = || {
            SandboxError::Busy(format!(
                "all {max} sandboxes are in use (waited {}s for one): try again later, \
                 or allow more with ARK_SANDBOX_MAX",
                self.config.wait.as_secs()
            ))
        };
        if self.config.wait.is_zero() {
            return Err(busy());
        }
        reporter.report(Progress::Item {
            name: REPORT_ITEM.into(),
            outcome: "waiting".into(),
            detail: format!("waiting for a free sandbox ({max} in use)"),
        });
        match tokio::time::timeout(self.config.wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(p)) => Ok(p),
            Ok(Err(_)) => Err(closed()),
            Err(_) => Err(busy()),
        }
    }

    /// Sweeps leftovers when this manager never did or did long enough ago.
    async fn sweep_if_due(&self) {
        let mut last = self.last_sweep.lock().await;
        if last.is_some_and(|t| t.elapsed() < self.config.sweep_every) {
            return;
        }
        *last = Some(Instant::now());
        if let Err(e) = super::remove_leftovers().await {
            tracing::warn!("removing left-over sandboxes: {e}");
        }
    }

    /// Removes the sandboxes left over on this machine now (dead owners,
    /// stale leases, expired browse sandboxes; this process's too). Returns
    /// what it removed.
    pub async fn reap(&self) -> Result<Vec<String>> {
        *self.last_sweep.lock().await = Some(Instant::now());
        super::remove_leftovers().await
    }

    /// A sandbox for one use: `Some(kind)` that one (or a clear error),
    /// `None` docker when an engine answers and an image is known, else
    /// local. Says through `reporter` which one it made. Its lease and its
    /// slot are given back when it is torn down (or dropped: it is then
    /// removed too).
    pub async fn provision(
        &self,
        choice: Option<SandboxKind>,
        spec: &SandboxSpec,
        reporter: &dyn Reporter,
    ) -> Result<Box<dyn Sandbox>> {
        let permit = self.slot(reporter).await?;
        self.sweep_if_due().await;
        let lease = super::lease::Lease::take(spec.purpose, self.config.heartbeat)?;
        let mut owner = Owner::me(spec.purpose, None, None);
        owner.lease = Some(lease.path().display().to_string());
        let sb = make(choice, spec, owner, &self.live, reporter).await?;
        say(reporter, "made", sb.describe());
        Ok(Box::new(Leased {
            inner: Some(sb),
            lease: Some(lease),
            _permit: permit,
        }))
    }

    /// A browse sandbox for `key` (e.g. backup id and database): a live one
    /// of that key, else a new one. It is not removed when the handle drops:
    /// it stays up for `idle` after its last use (while the handle lives,
    /// its expiry keeps moving), then a detached reaper (`n8n-ark sandbox
    /// reap --until-empty`) or the next request removes it. It counts
    /// against the limit while the handle is held.
    pub async fn browse(
        &self,
        choice: Option<SandboxKind>,
        key: &str,
        spec: &SandboxSpec,
        idle: Duration,
        reporter: &dyn Reporter,
    ) -> Result<Box<dyn Sandbox>> {
        let permit = self.slot(reporter).await?;
        self.sweep_if_due().await;
        let idle = idle.max(Duration::from_secs(1));
        let expires = now_secs() + idle.as_secs();
        let leased = |b: Browse| -> Box<dyn Sandbox> {
            Box::new(Leased {
                inner: Some(Box::new(b)),
                lease: None,
                _permit: permit,
            })
        };
        let mut found: Option<(Box<dyn Sandbox>, Toucher)> = None;
        if choice != Some(SandboxKind::Docker) {
            if let Some(sb) = super::local::find_browse(key, spec.major, expires).await? {
                let t = Toucher::Local(sb.dir().to_path_buf());
                found = Some((Box::new(sb), t));
            }
        }
        if found.is_none() && choice != Some(SandboxKind::Local) {
            match super::docker::find_browse(key, spec.major, expires).await {
                Ok(Some(sb)) => {
                    let t = Toucher::Docker(sb.name().to_string());
                    found = Some((Box::new(sb), t));
                }
                Ok(None) | Err(SandboxError::Unavailable(_)) => {}
                Err(e) => return Err(e),
            }
        }
        if let Some((sb, t)) = found {
            say(reporter, "reused", format!("{} (reused)", sb.describe()));
            return Ok(leased(Browse::new(sb, t, idle)));
        }
        let mut spec = spec.clone();
        spec.purpose = Purpose::Browse;
        // Until the first use, a grace period covers a slow start-up.
        let owner = Owner::me(Purpose::Browse, Some(key), Some(expires + 120));
        let use_docker = match choice {
            Some(k) => k == SandboxKind::Docker,
            None => match super::docker::usable_image(&spec).await {
                Ok(_) => true,
                Err(why) => {
                    say(
                        reporter,
                        "local",
                        format!("not docker ({why}); using local"),
                    );
                    false
                }
            },
        };
        let (sb, t): (Box<dyn Sandbox>, Toucher) = if use_docker {
            let sb = super::docker::DockerSandbox::create(&spec, owner, true, &self.live).await?;
            let t = Toucher::Docker(sb.name().to_string());
            (Box::new(sb), t)
        } else {
            let sb = super::local::LocalSandbox::create(&spec, owner, true, &self.live).await?;
            let t = Toucher::Local(sb.dir().to_path_buf());
            (Box::new(sb), t)
        };
        say(
            reporter,
            "made",
            format!(
                "{} (kept {}s after its last use)",
                sb.describe(),
                idle.as_secs()
            ),
        );
        let b = Browse::new(sb, t, idle);
        b.touch().await;
        spawn_reaper();
        Ok(leased(b))
    }

    /// Removes every sandbox in use by this manager's operations and makes
    /// no new one (requests fail with [`SandboxError::Busy`]): for a server
    /// that stops. Their handles stay valid (a query then fails); tearing
    /// them down afterwards is harmless. One line per sandbox, saying what
    /// happened.
    pub async fn shutdown(&self) -> Vec<String> {
        self.closed.store(true, Ordering::SeqCst);
        self.slots.close();
        let live = self.live.clone();
        tokio::task::spawn_blocking(move || remove_all(&live))
            .await
            .unwrap_or_default()
    }

    /// [`SandboxManager::shutdown`] without a runtime (blocking), for a front
    /// end about to exit on a second Ctrl-C.
    pub fn remove_live_blocking(&self) -> Vec<String> {
        self.closed.store(true, Ordering::SeqCst);
        self.slots.close();
        remove_all(&self.live)
    }
}

fn remove_all(live: &Registry) -> Vec<String> {
    live.drain()
        .into_iter()
        .map(|r| match r.remove_blocking() {
            Ok(()) => format!("removed the sandbox {}", r.name()),
            Err(e) => e,
        })
        .collect()
}

fn say(reporter: &dyn Reporter, outcome: &str, detail: String) {
    tracing::debug!("sandbox: {detail}");
    reporter.report(Progress::Item {
        name: REPORT_ITEM.into(),
        outcome: outcome.into(),
        detail,
    });
}

/// A sandbox in use: its lease (none for a browse sandbox, which its
/// expiry keeps) and its slot, given back after it is gone.
struct Leased {
    // Dropped in this order: the sandbox (removed unless kept), then its
    // lease, then its slot.
    inner: Option<Box<dyn Sandbox>>,
    lease: Option<super::lease::Lease>,
    _permit: OwnedSemaphorePermit,
}

impl Leased {
    fn inner(&self) -> &dyn Sandbox {
        self.inner.as_deref().expect("present until teardown")
    }
}

#[async_trait]
impl Sandbox for Leased {
    fn describe(&self) -> String {
        self.inner().describe()
    }

    fn kind(&self) -> SandboxKind {
        self.inner().kind()
    }

    async fn restore_dump(
        &self,
        database: &str,
        dump: Pin<Box<dyn AsyncRead + Send>>,
    ) -> Result<()> {
        self.inner().restore_dump(database, dump).await
    }

    async fn query_json(&self, database: &str, sql: &str) -> Result<Vec<serde_json::Value>> {
        self.inner().query_json(database, sql).await
    }

    async fn has_database(&self, name: &str) -> Result<bool> {
        self.inner().has_database(name).await
    }

    async fn teardown(mut self: Box<Self>) -> Result<()> {
        let r = match self.inner.take() {
            Some(i) => i.teardown().await,
            None => Ok(()),
        };
        // Gone or not, the lease goes: a sandbox that could not be removed
        // is then reaped by the next sweep.
        drop(self.lease.take());
        r
    }

    fn abandon(mut self: Box<Self>) {
        if let Some(l) = self.lease.take() {
            l.abandon();
        }
        if let Some(i) = self.inner.take() {
            i.abandon();
        }
    }
}
