//! Sandboxes: a temporary PostgreSQL of the right major version, to load a
//! dump from the store into and run read-only queries against, then tear
//! down. Verification (`verify --level restore`) and browsing what only the
//! dump holds (`show --table`) use them; workflows never need one.
//!
//! Two implementations behind one small trait:
//! - [`docker`]: a container through the Docker engine (bollard), network
//!   `none`, labelled as n8n-ark's, named `n8n_postgres_verify_<suffix>` or
//!   `n8n_postgres_restore_<suffix>`; the dump streamed in and queries run
//!   through `docker exec` (no published ports);
//! - [`local`]: `initdb` in a temporary directory, listening on a unix socket
//!   in that directory only (no TCP).
//!
//! Sandboxes are made by a [`SandboxManager`] that the operations' Context
//! holds (a limit on how many run at once, leases with heartbeats, shutdown;
//! see [`manager`]); nothing here is process-wide.
//!
//! Teardown is guaranteed: [`Sandbox::teardown`] on the normal path (a
//! cancelled operation tears its sandbox down on the way out); the
//! implementations' drop guards on errors and panics;
//! [`SandboxManager::shutdown`] for a server that stops (and a front end's
//! last resort before it exits); and [`remove_leftovers`], run by the
//! manager's first request and then now and again, removes any sandbox of
//! ours whose owner is gone or whose lease went stale. The engine installs
//! no signal handler and never exits the process.
pub mod docker;
mod lease;
pub mod local;
pub mod manager;

pub(crate) use manager::Registry;
pub use manager::{SandboxConfig, SandboxManager, REPORT_ITEM};

use async_trait::async_trait;
use std::pin::Pin;
use tokio::io::AsyncRead;

/// Errors of the sandbox layer. Messages name what failed (the container,
/// the directory, the command) and what to do.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// No implementation can run here (no Docker engine, no initdb of that
    /// major version, an image that cannot be found).
    #[error("{0}")]
    Unavailable(String),
    /// Provisioning, loading or a query failed.
    #[error("{0}")]
    Failed(String),
    /// Removing a sandbox failed (it may be left behind; the message names it).
    #[error("{0}")]
    Teardown(String),
    /// Every sandbox this process may run is in use (the limit was
    /// reached and the wait ran out), or it is shutting down: try again.
    #[error("{0}")]
    Busy(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

impl SandboxError {
    pub fn is_retryable(&self) -> bool {
        match self {
            SandboxError::Store(e) => e.is_retryable(),
            SandboxError::Teardown(_) | SandboxError::Busy(_) => true,
            _ => false,
        }
    }
}

pub type Result<T, E = SandboxError> = std::result::Result<T, E>;

/// Which implementation: `--sandbox docker|local` / `ARK_SANDBOX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SandboxKind {
    Docker,
    Local,
}

/// What a sandbox is for (part of its name and labels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    Verify,
    Restore,
    Browse,
}

/// What to provision.
#[derive(Debug, Clone)]
pub struct SandboxSpec {
    pub purpose: Purpose,
    /// The PostgreSQL major version the dump came from (the manifest's
    /// server version): the sandbox runs this major or refuses.
    pub major: u32,
    /// Docker only: the image (default: the image of the running n8n
    /// postgres container when one is named, else configured).
    pub image: Option<String>,
    /// Docker only: limits (bytes, and CPUs as a fraction, e.g. 1.5).
    pub memory_bytes: Option<i64>,
    pub cpus: Option<f64>,
    /// Docker only: the n8n postgres container whose image the sandbox uses
    /// when no image is given (so the version matches): what backups use for
    /// `--pg-container` (flag, `ARK_PG_CONTAINER`, or the config file).
    pub image_from_container: Option<String>,
}

/// A temporary PostgreSQL holding restored databases.
#[async_trait]
pub trait Sandbox: Send + Sync {
    /// For people and events, e.g. `docker:n8n_postgres_verify_1a2b3c4d
    /// (n8n-ark-test/postgres:15)` or `local:/tmp/n8n-ark-sandbox-XXXX (PostgreSQL 15.18)`.
    fn describe(&self) -> String;

    /// Which implementation this is.
    fn kind(&self) -> SandboxKind;

    /// Creates `database` and loads a custom-format dump streamed from
    /// `dump` into it with the sandbox's own `pg_restore` (never staged on
    /// disk). Fails with pg_restore's message when the dump does not load.
    async fn restore_dump(
        &self,
        database: &str,
        dump: Pin<Box<dyn AsyncRead + Send>>,
    ) -> Result<()>;

    /// Runs one read-only query in `database` (a session with `TimeZone=UTC`,
    /// `default_transaction_read_only=on`) and returns each row as
    /// `row_to_json` of it, in order.
    async fn query_json(&self, database: &str, sql: &str) -> Result<Vec<serde_json::Value>>;

    /// Stops and removes the sandbox and everything it holds.
    async fn teardown(self: Box<Self>) -> Result<()>;

    /// Gives the handle up without removing the sandbox, as a handle lost
    /// by a bug would be: its lease is no longer refreshed, so a later
    /// sweep removes it (tests of that sweep).
    #[doc(hidden)]
    fn abandon(self: Box<Self>) {
        std::mem::forget(self);
    }

    /// Whether `name` was loaded completely into this sandbox (a dump loads
    /// under another name and is renamed once pg_restore succeeded), so a
    /// reused browse sandbox loads each dump once.
    async fn has_database(&self, name: &str) -> Result<bool> {
        let rows = self
            .query_json(
                "postgres",
                &format!(
                    "SELECT datname FROM pg_database WHERE datname = {}",
                    quote_literal(name)
                ),
            )
            .await?;
        Ok(!rows.is_empty())
    }
}

/// Where and how an operation makes its sandbox (the CLI's `--sandbox*`
/// flags and `ARK_SANDBOX*` variables, the config file, a request of the API).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SandboxOptions {
    /// docker (a container of the image below) or local (initdb in a
    /// temporary directory); none: docker when an engine answers and an
    /// image is known, else local.
    #[serde(default)]
    pub sandbox: Option<SandboxKind>,
    /// Docker: the PostgreSQL image of the sandbox (default: the image of
    /// the n8n postgres container).
    #[serde(default)]
    pub sandbox_image: Option<String>,
    /// Docker: memory limit in bytes.
    #[serde(default)]
    pub sandbox_memory: Option<i64>,
    /// Docker: CPU limit.
    #[serde(default)]
    pub sandbox_cpus: Option<f64>,
    /// Docker: the n8n postgres container whose image the sandbox takes when
    /// no image is given (see [`SandboxOptions::with_pg_container`]).
    #[serde(default)]
    pub pg_container: Option<String>,
}

impl SandboxOptions {
    /// These options with the n8n postgres container the command knows of
    /// (flag, variable or config file).
    pub fn with_pg_container(&self, pg_container: Option<String>) -> SandboxOptions {
        SandboxOptions {
            pg_container,
            ..self.clone()
        }
    }

    /// The spec for `purpose` and the dump's PostgreSQL major version.
    pub fn spec(&self, purpose: Purpose, major: u32) -> SandboxSpec {
        SandboxSpec {
            purpose,
            major,
            image: self.sandbox_image.clone(),
            memory_bytes: self.sandbox_memory,
            cpus: self.sandbox_cpus,
            image_from_container: self.pg_container.clone().or_else(pg_container_from_env),
        }
    }
}

impl SandboxSpec {
    /// A spec without image or limits (the image then comes from ARK_SANDBOX_IMAGE).
    pub fn new(purpose: Purpose, major: u32) -> SandboxSpec {
        SandboxSpec {
            purpose,
            major,
            image: None,
            memory_bytes: None,
            cpus: None,
            image_from_container: pg_container_from_env(),
        }
    }
}

/// The n8n postgres container named by `ARK_PG_CONTAINER`, if any.
pub fn pg_container_from_env() -> Option<String> {
    std::env::var("ARK_PG_CONTAINER")
        .ok()
        .filter(|s| !s.trim().is_empty())
}

/// `512m`, `2g`, `1.5G`, `1048576` -> bytes.
pub fn parse_memory(s: &str) -> std::result::Result<i64, String> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1u64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a size (e.g. 512m, 2g)"))?;
    let bytes = n * mult as f64;
    if !bytes.is_finite() || bytes < (6 << 20) as f64 || bytes > i64::MAX as f64 {
        return Err(format!(
            "{s:?}: a sandbox needs at least 6 MiB of memory (e.g. 512m, 2g)"
        ));
    }
    Ok(bytes as i64)
}

/// `1.5` -> CPUs (more than 0, at most 1024).
pub fn parse_cpus(s: &str) -> std::result::Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(n) if n.is_finite() && n > 0.0 && n <= 1024.0 => Ok(n),
        _ => Err(format!("{s:?} is not a CPU count (e.g. 1, 1.5)")),
    }
}

/// The default idle time of a browse sandbox.
pub const BROWSE_IDLE: std::time::Duration = std::time::Duration::from_secs(600);

/// Label/marker values.
pub(crate) const LABEL_SANDBOX: &str = "n8n-ark.sandbox";
pub(crate) const LABEL_PURPOSE: &str = "n8n-ark.purpose";
pub(crate) const LABEL_OWNER_PID: &str = "n8n-ark.owner-pid";
pub(crate) const LABEL_OWNER_START: &str = "n8n-ark.owner-start";
pub(crate) const LABEL_EXPIRES: &str = "n8n-ark.expires";
pub(crate) const LABEL_KEY: &str = "n8n-ark.browse-key";
pub(crate) const LABEL_LEASE: &str = "n8n-ark.lease";

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Verify => "verify",
            Purpose::Restore => "restore",
            Purpose::Browse => "browse",
        }
    }
}

impl SandboxKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SandboxKind::Docker => "docker",
            SandboxKind::Local => "local",
        }
    }
}

/// Who made a sandbox and until when it may live: the labels of a container,
/// the marker file of a local directory.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub(crate) struct Owner {
    pub purpose: String,
    pub owner_pid: u32,
    /// The owner's start time (clock ticks since boot, /proc/PID/stat), so a
    /// reused pid does not pass for the owner.
    pub owner_start: Option<u64>,
    /// Browse sandboxes: which backup/database they hold, and when they go.
    pub key: Option<String>,
    pub expires: Option<u64>,
    /// The lease file its owner keeps fresh while it uses it (absent for
    /// browse sandboxes, and in markers written before leases).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<String>,
}

impl Owner {
    pub fn me(purpose: Purpose, key: Option<&str>, expires: Option<u64>) -> Owner {
        let pid = std::process::id();
        Owner {
            purpose: purpose.as_str().to_string(),
            owner_pid: pid,
            owner_start: process_start(pid),
            key: key.map(str::to_string),
            expires,
            lease: None,
        }
    }

    /// Whether the sandbox is left over: a browse sandbox past its expiry, or
    /// any other whose lease is gone or stale (even when its owner still
    /// runs) or whose owner is gone.
    pub fn is_leftover(&self, now: u64) -> bool {
        if self.purpose == Purpose::Browse.as_str() {
            return self.expires.is_none_or(|e| e <= now);
        }
        if let Some(l) = &self.lease {
            if lease::is_abandoned(std::path::Path::new(l), now_ms()) == Some(true) {
                return true;
            }
        }
        !process_alive(self.owner_pid, self.owner_start)
    }
}

/// The start time of a process (field 22 of /proc/PID/stat), if it runs.
pub(crate) fn process_start(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let rest = &s[s.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether `pid` runs and (when known) started at `start`.
pub(crate) fn process_alive(pid: u32, start: Option<u64>) -> bool {
    if pid == 0 || pid > i32::MAX as u32 {
        return false;
    }
    if !crate::sys::pid_alive(pid) {
        return false;
    }
    match (start, process_start(pid)) {
        (Some(want), Some(now)) => want == now,
        _ => true,
    }
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// 8 random hex digits for a sandbox's name.
pub(crate) fn suffix() -> String {
    format!("{:08x}", rand::random::<u32>())
}

pub use crate::text::quote_ident;

/// An SQL string literal.
pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A database name a sandbox accepts: 1 to 50 characters, no NUL, not a
/// name the sandbox itself uses.
pub(crate) fn check_database(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 50 || name.contains('\0') {
        return Err(SandboxError::Failed(format!(
            "{name:?} is not a database name a sandbox can hold (1 to 50 characters)"
        )));
    }
    if matches!(name, "postgres" | "template0" | "template1") || name.ends_with(LOADING) {
        return Err(SandboxError::Failed(format!(
            "{name:?} is reserved in a sandbox: load the dump under another name"
        )));
    }
    Ok(())
}

/// A dump loads into `<name>__loading`, renamed once pg_restore succeeded,
/// so a database that exists in a sandbox is complete.
pub(crate) const LOADING: &str = "__loading";

/// The statements that (re)create the loading database of `name` (one
/// `psql -c` each: DROP DATABASE cannot run in a transaction block).
pub(crate) fn loading_sql(name: &str) -> (String, Vec<String>) {
    let loading = format!("{name}{LOADING}");
    let (l, n) = (quote_ident(&loading), quote_ident(name));
    (
        loading,
        vec![
            format!("DROP DATABASE IF EXISTS {l} WITH (FORCE)"),
            format!("DROP DATABASE IF EXISTS {n} WITH (FORCE)"),
            format!("CREATE DATABASE {l} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"),
        ],
    )
}

pub(crate) fn rename_sql(name: &str) -> String {
    format!(
        "ALTER DATABASE {} RENAME TO {};",
        quote_ident(&format!("{name}{LOADING}")),
        quote_ident(name)
    )
}

/// The query whose rows come back one JSON object a line.
pub(crate) fn json_query(sql: &str) -> String {
    let s = sql.trim().trim_end_matches(';').trim_end();
    format!("SELECT row_to_json(q)::text FROM ({s}\n) q")
}

/// The stack a sandbox's server may use, in MiB: PostgreSQL parses `json` and
/// `jsonb` recursively, one stack frame per level, so its default
/// `max_stack_depth` (2 MB, about 10,000 levels) refuses to load a dump whose
/// server stored deeper documents under a raised `max_stack_depth`. The
/// sandbox allows this much (about 1,000,000 levels; only the pages a load
/// touches are ever used).
pub(crate) const SANDBOX_STACK_MIB: u64 = 256;

/// `max_stack_depth` for a server whose stack limit is `limit_bytes`: the
/// limit less PostgreSQL's advised margin of 1 MiB, in kB; None when that
/// is no more than PostgreSQL's default (leave it).
pub(crate) fn max_stack_depth_kb(limit_bytes: u64) -> Option<u64> {
    let kb = (limit_bytes >> 10).saturating_sub(1024);
    (kb > 2048).then_some(kb)
}

/// `PGOPTIONS` of every query session.
pub(crate) const QUERY_OPTIONS: &str = "-c default_transaction_read_only=on -c TimeZone=UTC";

/// The arguments of pg_restore, after the connection ones.
pub(crate) fn pg_restore_args(loading: &str) -> Vec<String> {
    [
        "--no-owner",
        "--no-privileges",
        "--exit-on-error",
        "-d",
        loading,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Parses psql's `-At` output of [`json_query`]: one JSON object a line.
pub(crate) fn parse_rows(out: &[u8]) -> Result<Vec<serde_json::Value>> {
    let text = std::str::from_utf8(out)
        .map_err(|_| SandboxError::Failed("psql printed bytes that are not UTF-8".into()))?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| {
            SandboxError::Failed(format!(
                "psql printed line {} that is not a JSON row ({e}): {}",
                i + 1,
                truncate(line, 200)
            ))
        })?;
        if !v.is_object() {
            return Err(SandboxError::Failed(format!(
                "psql printed line {} that is not a JSON object: {}",
                i + 1,
                truncate(line, 200)
            )));
        }
        rows.push(v);
    }
    Ok(rows)
}

pub(crate) use crate::text::truncate;

/// The first lines of a tool's standard error, or its exit status.
pub(crate) fn tool_error(tool: &str, code: i64, stderr: &[u8]) -> String {
    let msg = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = msg
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take(6)
        .collect();
    if lines.is_empty() {
        format!("{tool} exited with status {code} and printed nothing")
    } else {
        format!("{tool} failed (exit status {code}): {}", lines.join(" / "))
    }
}

// ---------------------------------------------------------------------------
// Live sandboxes of this process, for the signal handlers.

/// What removes a sandbox without its handle (blocking, best effort).
#[derive(Debug, Clone)]
pub(crate) enum Remover {
    Container(String),
    Directory(std::path::PathBuf),
}

impl Remover {
    /// Removes it; the error names it.
    pub fn remove_blocking(&self) -> std::result::Result<(), String> {
        match self {
            Remover::Container(name) => docker::remove_container_blocking(name),
            Remover::Directory(dir) => local::remove_dir_blocking(dir),
        }
    }

    pub fn name(&self) -> String {
        match self {
            Remover::Container(n) => format!("container {n}"),
            Remover::Directory(d) => format!("directory {}", d.display()),
        }
    }
}

// ---------------------------------------------------------------------------
// Provisioning (through a [`SandboxManager`]).

async fn make(
    choice: Option<SandboxKind>,
    spec: &SandboxSpec,
    owner: Owner,
    live: &Registry,
    reporter: &dyn crate::ops::Reporter,
) -> Result<Box<dyn Sandbox>> {
    let keep = owner.purpose == Purpose::Browse.as_str();
    match choice {
        Some(SandboxKind::Local) => Ok(Box::new(
            local::LocalSandbox::create(spec, owner, keep, live).await?,
        )),
        Some(SandboxKind::Docker) => Ok(Box::new(
            docker::DockerSandbox::create(spec, owner, keep, live).await?,
        )),
        None => match docker::usable_image(spec).await {
            Ok(_) => Ok(Box::new(
                docker::DockerSandbox::create(spec, owner, keep, live).await?,
            )),
            Err(why) => {
                reporter.report(crate::ops::Progress::Item {
                    name: REPORT_ITEM.into(),
                    outcome: "local".into(),
                    detail: format!("not docker ({why}); using local"),
                });
                Ok(Box::new(
                    local::LocalSandbox::create(spec, owner, keep, live).await?,
                ))
            }
        },
    }
}

/// Removes our sandboxes whose owner process is gone or whose lease went
/// stale or, for browse sandboxes, whose idle time has passed: containers labelled
/// `n8n-ark.sandbox` and local directories with a marker. Returns what it
/// removed (also said on stderr).
pub async fn remove_leftovers() -> Result<Vec<String>> {
    let mut removed = local::remove_leftovers().await?;
    match docker::remove_leftovers().await {
        Ok(mut r) => removed.append(&mut r),
        Err(SandboxError::Unavailable(_)) => {}
        Err(e) => return Err(e),
    }
    for r in &removed {
        tracing::warn!("removed the left-over sandbox {r}");
    }
    lease::remove_stale();
    Ok(removed)
}

/// Moves a browse sandbox's expiry.
#[derive(Debug, Clone)]
pub(crate) enum Toucher {
    Local(std::path::PathBuf),
    Docker(String),
}

impl Toucher {
    async fn touch(&self, expires: u64) -> Result<()> {
        match self {
            Toucher::Local(d) => local::touch(d, expires),
            Toucher::Docker(n) => docker::touch(n, expires).await,
        }
    }
}

/// A browse sandbox in use: its expiry is `idle` after the last use, kept
/// moving while the handle lives (a long load is not reaped under it).
pub(crate) struct Browse {
    inner: Option<Box<dyn Sandbox>>,
    toucher: Toucher,
    idle: std::time::Duration,
    task: tokio::task::JoinHandle<()>,
}

impl Browse {
    pub(crate) fn new(
        inner: Box<dyn Sandbox>,
        toucher: Toucher,
        idle: std::time::Duration,
    ) -> Browse {
        let t = toucher.clone();
        let every = (idle / 3).max(std::time::Duration::from_millis(500));
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let _ = t.touch(now_secs() + idle.as_secs()).await;
            }
        });
        Browse {
            inner: Some(inner),
            toucher,
            idle,
            task,
        }
    }

    fn inner(&self) -> &dyn Sandbox {
        self.inner.as_deref().expect("present until teardown")
    }

    pub(crate) async fn touch(&self) {
        if let Err(e) = self.toucher.touch(now_secs() + self.idle.as_secs()).await {
            tracing::warn!("extending the browse sandbox's idle time: {e}");
        }
    }
}

impl Drop for Browse {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[async_trait]
impl Sandbox for Browse {
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
        let r = self.inner().restore_dump(database, dump).await;
        self.touch().await;
        r
    }

    async fn query_json(&self, database: &str, sql: &str) -> Result<Vec<serde_json::Value>> {
        let r = self.inner().query_json(database, sql).await;
        self.touch().await;
        r
    }

    async fn teardown(mut self: Box<Self>) -> Result<()> {
        self.task.abort();
        match self.inner.take() {
            Some(i) => i.teardown().await,
            None => Ok(()),
        }
    }
}

/// Starts `n8n-ark sandbox reap --until-empty` detached (its own session),
/// unless one runs already (it holds a lock). The program is
/// `$ARK_SANDBOX_REAPER_BIN`, else this executable.
pub fn spawn_reaper() {
    use std::os::unix::process::CommandExt;
    let exe = match std::env::var_os("ARK_SANDBOX_REAPER_BIN") {
        Some(p) => std::path::PathBuf::from(p),
        None => match std::env::current_exe() {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!("cannot start the sandbox reaper: {e}");
                return;
            }
        },
    };
    let mut cmd = std::process::Command::new(&exe);
    cmd.args(["sandbox", "reap", "--until-empty"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: setsid is async-signal-safe; it detaches the reaper from our
    // session and terminal (Ctrl-C here does not reach it).
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    match cmd.spawn() {
        // Reaped by a thread so it leaves no zombie while we run.
        Ok(mut child) => {
            std::thread::spawn(move || {
                let _ = child.wait();
            });
        }
        Err(e) => tracing::warn!("cannot start the sandbox reaper {}: {e}", exe.display()),
    }
}

/// The reaper's loop: removes left-over and expired sandboxes, then sleeps
/// until the next browse sandbox expires; returns when none is left. Only
/// one runs at a time (a lock file in the sandbox directory); another
/// returns at once.
pub async fn reap_until_empty() -> Result<()> {
    let lock_path = local::base_dir().join("n8n-ark-sandbox-reaper.lock");
    loop {
        let Some(lock) = local::try_lock(&lock_path)? else {
            return Ok(()); // another reaper runs
        };
        loop {
            remove_leftovers().await?;
            let next = next_expiry().await?;
            match next {
                Some(t) => {
                    // At most 5 s: a browse sandbox made meanwhile with a
                    // shorter idle time is reaped in time too.
                    let wait = t.saturating_sub(now_secs()) + 1;
                    tokio::time::sleep(std::time::Duration::from_secs(wait.min(5))).await;
                }
                None => break,
            }
        }
        drop(lock);
        // A browse sandbox made while we decided to stop: its maker's reaper
        // may have found our lock; then carry on.
        if next_expiry().await?.is_none() {
            return Ok(());
        }
    }
}

/// The earliest expiry of a live browse sandbox.
async fn next_expiry() -> Result<Option<u64>> {
    let mut all = local::browse_expiries().await?;
    match docker::browse_expiries().await {
        Ok(mut d) => all.append(&mut d),
        Err(SandboxError::Unavailable(_)) => {}
        Err(e) => return Err(e),
    }
    Ok(all.into_iter().min())
}

/// The sandboxes of n8n-ark on this machine, for `n8n-ark sandbox list`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SandboxInfo {
    pub kind: SandboxKind,
    pub name: String,
    pub purpose: String,
    pub owner_pid: u32,
    pub owner_alive: bool,
    pub key: Option<String>,
    pub expires: Option<u64>,
}

pub async fn list() -> Result<Vec<SandboxInfo>> {
    let mut all = local::list().await?;
    match docker::list().await {
        Ok(mut d) => all.append(&mut d),
        Err(SandboxError::Unavailable(_)) => {}
        Err(e) => return Err(e),
    }
    Ok(all)
}

/// Removes one sandbox of ours by name (container name or directory).
pub async fn remove(name: &str) -> Result<()> {
    for s in list().await? {
        if s.name == name {
            let r = match s.kind {
                SandboxKind::Docker => Remover::Container(s.name.clone()),
                SandboxKind::Local => Remover::Directory(s.name.clone().into()),
            };
            return tokio::task::spawn_blocking(move || r.remove_blocking())
                .await
                .map_err(|e| SandboxError::Teardown(e.to_string()))?
                .map_err(SandboxError::Teardown);
        }
    }
    Err(SandboxError::Failed(format!(
        "there is no sandbox of n8n-ark named {name:?} (see n8n-ark sandbox list)"
    )))
}

impl std::fmt::Debug for dyn Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}
