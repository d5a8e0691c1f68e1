//! The local sandbox: `initdb` of the dump's major version
//! (`/usr/lib/postgresql/<major>/bin`, Debian's layout; `ARK_SANDBOX_PG_ROOT`
//! overrides `/usr/lib/postgresql`) into a fresh directory
//! `n8n-ark-sandbox-<purpose>-<8 hex>` (mode 0700) of the temporary
//! directory (`ARK_SANDBOX_TMPDIR`, else `$TMPDIR`/`/tmp`), and a `postgres`
//! listening on a unix socket in that directory only (`listen_addresses=''`,
//! no TCP), run as the `postgres` OS user when we are root. A marker file
//! (`n8n-ark-sandbox.json`: owner pid and start time, browse key and expiry)
//! lets a later run remove it when its owner died or its idle time passed.
use super::{
    check_database, json_query, loading_sql, parse_rows, pg_restore_args, rename_sql, suffix,
    tool_error, Owner, Purpose, Registry, Remover, Result, Sandbox, SandboxError, SandboxInfo,
    SandboxKind, SandboxSpec, QUERY_OPTIONS,
};
use async_trait::async_trait;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

const PREFIX: &str = "n8n-ark-sandbox-";
const MARKER: &str = "n8n-ark-sandbox.json";
const PORT: &str = "5432";
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Where local sandboxes (and the reaper's lock) live.
pub fn base_dir() -> PathBuf {
    std::env::var_os("ARK_SANDBOX_TMPDIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
}

fn pg_root() -> PathBuf {
    std::env::var_os("ARK_SANDBOX_PG_ROOT")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql"))
}

/// The server binaries of `major`, or a clear refusal.
pub fn bin_dir(major: u32) -> Result<PathBuf> {
    let bin = pg_root().join(major.to_string()).join("bin");
    for tool in ["initdb", "postgres", "pg_restore", "psql", "pg_isready"] {
        if !bin.join(tool).is_file() {
            return Err(SandboxError::Unavailable(format!(
                "the local sandbox needs PostgreSQL {major}, but {} is missing \
                 (Debian: apt-get install postgresql-{major}; or use --sandbox docker)",
                bin.join(tool).display()
            )));
        }
    }
    Ok(bin)
}

use crate::sys::is_root;

/// uid and gid of the `postgres` OS user.
fn postgres_ids() -> Result<(u32, u32)> {
    crate::sys::user_ids("postgres").ok_or_else(|| {
        SandboxError::Unavailable(
            "running as root, the local sandbox runs PostgreSQL as the `postgres` OS user, \
             which does not exist (Debian: apt-get install postgresql)"
                .into(),
        )
    })
}

/// A server binary, run as `postgres` when we are root.
fn server_command(bin: &Path, tool: &str) -> Result<std::process::Command> {
    let mut c = clean(std::process::Command::new(bin.join(tool)));
    if is_root() {
        let (uid, gid) = postgres_ids()?;
        c.uid(uid).gid(gid);
        c.env("HOME", "/tmp");
    }
    Ok(c)
}

/// Without the caller's libpq environment.
fn clean(mut c: std::process::Command) -> std::process::Command {
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("PG") {
            c.env_remove(k);
        }
    }
    c.env("PGCONNECT_TIMEOUT", "10").env("LC_ALL", "C");
    c.stdin(std::process::Stdio::null());
    c
}

/// A temporary PostgreSQL on a unix socket in its own directory.
pub struct LocalSandbox {
    dir: PathBuf,
    bin: PathBuf,
    version: String,
    /// Registration with its manager, for shutdown (none for kept browse
    /// sandboxes).
    registration: Option<(Registry, u64)>,
    /// Browse sandboxes stay when the handle drops.
    keep: bool,
    torn_down: bool,
}

impl std::fmt::Debug for LocalSandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl LocalSandbox {
    /// The sandbox's directory (its socket is there too).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) async fn create(
        spec: &SandboxSpec,
        owner: Owner,
        keep: bool,
        live: &Registry,
    ) -> Result<LocalSandbox> {
        let bin = bin_dir(spec.major)?;
        let ids = if is_root() {
            Some(postgres_ids()?)
        } else {
            None
        };
        let base = base_dir();
        let dir = base.join(format!("{PREFIX}{}-{}", spec.purpose.as_str(), suffix()));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| {
                SandboxError::Unavailable(format!(
                    "cannot create the sandbox directory {}: {e}",
                    dir.display()
                ))
            })?;
        // From here on the directory is ours to remove, whatever happens.
        let mut sb = LocalSandbox {
            dir: dir.clone(),
            bin: bin.clone(),
            version: String::new(),
            registration: None,
            keep: false,
            torn_down: false,
        };
        sb.registration = Some((live.clone(), live.register(Remover::Directory(dir.clone()))));
        write_marker(&dir, &owner)?;
        if let Some((uid, gid)) = ids {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).map_err(|e| {
                SandboxError::Failed(format!("chown {} to postgres: {e}", dir.display()))
            })?;
        }
        let b = bin.clone();
        let d = dir.clone();
        let version = tokio::task::spawn_blocking(move || start_server(&b, &d))
            .await
            .map_err(|e| SandboxError::Failed(format!("starting the local sandbox: {e}")))??;
        sb.version = version;
        if keep {
            // It outlives this process: the reaper and later runs remove it.
            if let Some((r, id)) = sb.registration.take() {
                r.unregister(id);
            }
            sb.keep = true;
        }
        Ok(sb)
    }

    fn socket_args(&self) -> [String; 6] {
        [
            "-h".into(),
            self.dir.display().to_string(),
            "-p".into(),
            PORT.into(),
            "-U".into(),
            "postgres".into(),
        ]
    }

    fn client(&self, tool: &str) -> tokio::process::Command {
        let mut c =
            tokio::process::Command::from(clean(std::process::Command::new(self.bin.join(tool))));
        c.args(self.socket_args());
        c
    }

    /// Runs SQL statements (not read-only) as the superuser in `postgres`.
    async fn admin(&self, statements: &[String]) -> Result<()> {
        let mut c = self.client("psql");
        c.args(["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", "postgres"]);
        for s in statements {
            c.arg("-c").arg(s);
        }
        let o = c
            .output()
            .await
            .map_err(|e| SandboxError::Failed(format!("cannot run psql: {e}")))?;
        if !o.status.success() {
            return Err(SandboxError::Failed(format!(
                "in the sandbox {}: {}",
                self.dir.display(),
                tool_error("psql", o.status.code().unwrap_or(-1) as i64, &o.stderr)
            )));
        }
        Ok(())
    }
}

/// initdb and start the server; returns its version ("15.14").
fn start_server(bin: &Path, dir: &Path) -> Result<String> {
    let data = dir.join("data");
    let o = server_command(bin, "initdb")?
        .current_dir(dir)
        .arg("-D")
        .arg(&data)
        .args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "-N",
        ])
        .output()
        .map_err(|e| SandboxError::Failed(format!("cannot run initdb: {e}")))?;
    if !o.status.success() {
        return Err(SandboxError::Failed(format!(
            "in the sandbox {}: {}",
            dir.display(),
            tool_error("initdb", o.status.code().unwrap_or(-1) as i64, &o.stderr)
        )));
    }
    let log_path = dir.join("postgres.log");
    let log = std::fs::File::create(&log_path)
        .map_err(|e| SandboxError::Failed(format!("{}: {e}", log_path.display())))?;
    if is_root() {
        let (uid, gid) = postgres_ids()?;
        let _ = std::os::unix::fs::chown(&log_path, Some(uid), Some(gid));
    }
    let log2 = log
        .try_clone()
        .map_err(|e| SandboxError::Failed(format!("{}: {e}", log_path.display())))?;
    let mut cmd = server_command(bin, "postgres")?;
    // A stack as deep as the documents a dump may hold (see SANDBOX_STACK_MIB).
    let stack = raised_stack_limit(super::SANDBOX_STACK_MIB << 20);
    if let Some(kb) = super::max_stack_depth_kb(stack) {
        // SAFETY: getrlimit and setrlimit are async-signal-safe and change
        // only the child.
        unsafe {
            cmd.pre_exec(move || {
                let mut r = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                if libc::getrlimit(libc::RLIMIT_STACK, &mut r) == 0 && r.rlim_cur < stack {
                    r.rlim_cur = stack;
                    libc::setrlimit(libc::RLIMIT_STACK, &r);
                }
                Ok(())
            });
        }
        cmd.args(["-c", &format!("max_stack_depth={kb}kB")]);
    }
    cmd.current_dir(dir)
        .arg("-D")
        .arg(&data)
        .arg("-k")
        .arg(dir)
        .args(["-p", PORT])
        .args(["-c", "listen_addresses="])
        .args(["-c", "fsync=off"])
        .args(["-c", "synchronous_commit=off"])
        .args(["-c", "full_page_writes=off"])
        .args(["-c", "TimeZone=UTC"])
        .args(["-c", "max_connections=20"])
        .stdout(log)
        .stderr(log2)
        // Its own process group: Ctrl-C on our terminal does not reach it;
        // our handler removes it.
        .process_group(0);
    let mut child = cmd
        .spawn()
        .map_err(|e| SandboxError::Failed(format!("cannot run postgres: {e}")))?;
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            return Err(SandboxError::Failed(format!(
                "the sandbox's postgres ({}) exited during start-up ({status}): {}",
                dir.display(),
                last_lines(&text, 4)
            )));
        }
        let ready = clean(std::process::Command::new(bin.join("pg_isready")))
            .arg("-h")
            .arg(dir)
            .args(["-p", PORT, "-U", "postgres", "-q", "-t", "1"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ready {
            break;
        }
        if Instant::now() > deadline {
            return Err(SandboxError::Failed(format!(
                "the sandbox's postgres ({}) did not accept connections within {}s",
                dir.display(),
                READY_TIMEOUT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Not waited for: it is stopped by pid (see remove_dir_blocking), which
    // also reaps it.
    drop(child);
    Ok(server_version(bin))
}

/// The stack limit a child can be given: `want`, or this process's hard
/// limit when that is lower; this process's own limit when it is higher.
fn raised_stack_limit(want: u64) -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_STACK, &mut r) } != 0 {
        return 0;
    }
    if r.rlim_cur == libc::RLIM_INFINITY {
        return want;
    }
    r.rlim_cur.max(want.min(r.rlim_max))
}

fn server_version(bin: &Path) -> String {
    std::process::Command::new(bin.join("postgres"))
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            let s = String::from_utf8_lossy(&o.stdout).to_string();
            s.split("(PostgreSQL)")
                .nth(1)
                .and_then(|r| r.split_whitespace().next().map(str::to_string))
        })
        .unwrap_or_else(|| "?".into())
}

fn last_lines(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" / ")
}

#[async_trait]
impl Sandbox for LocalSandbox {
    fn describe(&self) -> String {
        format!("local:{} (PostgreSQL {})", self.dir.display(), self.version)
    }

    fn kind(&self) -> SandboxKind {
        SandboxKind::Local
    }

    async fn restore_dump(
        &self,
        database: &str,
        mut dump: Pin<Box<dyn AsyncRead + Send>>,
    ) -> Result<()> {
        check_database(database)?;
        let (loading, sql) = loading_sql(database);
        self.admin(&sql).await?;
        let mut child = self
            .client("pg_restore")
            .args(pg_restore_args(&loading))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| SandboxError::Failed(format!("cannot run pg_restore: {e}")))?;
        let mut stdin = child.stdin.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        let errors = tokio::spawn(async move {
            let mut buf = Vec::new();
            let _ = (&mut stderr).take(64 * 1024).read_to_end(&mut buf).await;
            // Drain the rest so pg_restore never blocks on a full pipe.
            let _ = tokio::io::copy(&mut stderr, &mut tokio::io::sink()).await;
            buf
        });
        let fed = async {
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let n = match dump.read(&mut buf).await {
                    Ok(0) => break Ok(()),
                    Ok(n) => n,
                    Err(e) => break Err(e),
                };
                if stdin.write_all(&buf[..n]).await.is_err() {
                    // pg_restore stopped reading: its status tells why.
                    break Ok(());
                }
            }
        }
        .await;
        drop(stdin);
        let status = child
            .wait()
            .await
            .map_err(|e| SandboxError::Failed(format!("waiting for pg_restore: {e}")))?;
        let err = errors.await.unwrap_or_default();
        if let Err(e) = fed {
            return Err(SandboxError::Failed(format!(
                "reading the dump for {database}: {e}"
            )));
        }
        if !status.success() {
            return Err(SandboxError::Failed(format!(
                "the dump of {database} does not load: {}",
                tool_error("pg_restore", status.code().unwrap_or(-1) as i64, &err)
            )));
        }
        self.admin(&[rename_sql(database)]).await
    }

    async fn query_json(&self, database: &str, sql: &str) -> Result<Vec<serde_json::Value>> {
        let o = self
            .client("psql")
            .env("PGOPTIONS", QUERY_OPTIONS)
            .args([
                "-X",
                "-q",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                database,
                "-c",
            ])
            .arg(json_query(sql))
            .output()
            .await
            .map_err(|e| SandboxError::Failed(format!("cannot run psql: {e}")))?;
        if !o.status.success() {
            return Err(SandboxError::Failed(format!(
                "query in {database}: {}",
                tool_error("psql", o.status.code().unwrap_or(-1) as i64, &o.stderr)
            )));
        }
        parse_rows(&o.stdout)
    }

    async fn teardown(mut self: Box<Self>) -> Result<()> {
        self.torn_down = true;
        if let Some((r, id)) = self.registration.take() {
            r.unregister(id);
        }
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || remove_dir_blocking(&dir))
            .await
            .map_err(|e| SandboxError::Teardown(e.to_string()))?
            .map_err(SandboxError::Teardown)
    }
}

impl Drop for LocalSandbox {
    fn drop(&mut self) {
        if self.torn_down || self.keep {
            return;
        }
        if let Some((r, id)) = self.registration.take() {
            r.unregister(id);
        }
        if let Err(e) = remove_dir_blocking(&self.dir) {
            tracing::warn!("{e}");
        }
    }
}

/// The postmaster of a sandbox directory, if it runs (its pid file names it
/// and its working directory is the data directory).
fn postmaster_of(dir: &Path) -> Option<i32> {
    let data = dir.join("data");
    let pidfile = std::fs::read_to_string(data.join("postmaster.pid")).ok()?;
    let pid: i32 = pidfile.lines().next()?.trim().parse().ok()?;
    if pid <= 1 {
        return None;
    }
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).ok()?;
    let data = std::fs::canonicalize(&data).unwrap_or(data);
    (cwd == data).then_some(pid)
}

fn gone(pid: i32) -> bool {
    // Reaps it when it is our child (ECHILD otherwise: harmless).
    // SAFETY: plain syscalls on a pid.
    unsafe {
        libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG);
        if libc::kill(pid, 0) != 0 {
            return true;
        }
    }
    // A zombie that is not ours counts as gone.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rfind(')')
                .and_then(|i| s[i + 1..].split_whitespace().next().map(|st| st == "Z"))
                .unwrap_or(false)
        })
        .unwrap_or(true)
}

/// Stops a sandbox's postmaster (immediate shutdown) and removes its
/// directory. The error names the directory.
pub(crate) fn remove_dir_blocking(dir: &Path) -> std::result::Result<(), String> {
    if let Some(pid) = postmaster_of(dir) {
        // SAFETY: SIGQUIT to the postmaster is PostgreSQL's immediate shutdown.
        unsafe {
            libc::kill(pid, libc::SIGQUIT);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while !gone(pid) {
            if Instant::now() > deadline {
                // SAFETY: as above; the last resort.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
                std::thread::sleep(Duration::from_millis(100));
                gone(pid);
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    // Server processes that outlived their postmaster (a postmaster killed
    // outright leaves its children running until they notice) still write
    // into the data directory: stop them too. Each runs in that directory.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = processes_in(&dir.join("data"));
        if left.is_empty() || Instant::now() > deadline {
            break;
        }
        for pid in left {
            // SAFETY: kill(2) of a process whose working directory is this
            // sandbox's data directory: one of its server's processes.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
            gone(pid);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // A file written by a process as it died can still appear while the
    // tree is removed (ENOTEMPTY): try again a few times.
    let mut attempt = 0;
    loop {
        match std::fs::remove_dir_all(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty && attempt < 10 => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => {
                return Err(format!(
                    "the sandbox directory {} could not be removed: {e} (remove it by hand)",
                    dir.display()
                ))
            }
        }
    }
}

/// The live processes whose working directory is `data` (a PostgreSQL
/// server's processes all run in its data directory).
fn processes_in(data: &Path) -> Vec<i32> {
    let Ok(data) = std::fs::canonicalize(data) else {
        return Vec::new();
    };
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| *pid > 1)
        .filter(|pid| std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd == data))
        // Only then `gone`, which reaps: never another child of ours.
        .filter(|pid| !gone(*pid))
        .collect()
}

/// Writes the marker crash-safely (temporary file, fsync, rename).
fn write_marker(dir: &Path, owner: &Owner) -> Result<()> {
    let tmp = dir.join(format!("{MARKER}.tmp"));
    let bytes = serde_json::to_vec(owner).expect("the marker serializes");
    let r = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut f, &bytes)?;
        f.sync_all()?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644))?;
        std::fs::rename(&tmp, dir.join(MARKER))
    })();
    r.map_err(|e| SandboxError::Failed(format!("writing {}: {e}", dir.join(MARKER).display())))
}

fn read_marker(dir: &Path) -> Option<Owner> {
    let bytes = std::fs::read(dir.join(MARKER)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Our sandbox directories with their marker (None: unreadable).
fn scan() -> Vec<(PathBuf, Option<Owner>)> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(base_dir()) else {
        return out;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if !name.starts_with(PREFIX) || !e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            continue;
        }
        let path = e.path();
        let m = read_marker(&path);
        out.push((path, m));
    }
    out
}

pub(crate) async fn remove_leftovers() -> Result<Vec<String>> {
    tokio::task::spawn_blocking(|| {
        let now = super::now_secs();
        let mut removed = Vec::new();
        for (dir, m) in scan() {
            let leftover = match &m {
                Some(o) => o.is_leftover(now),
                // No marker: a crash right after mkdir; give it a minute.
                None => std::fs::metadata(&dir)
                    .and_then(|md| md.modified())
                    .map(|t| t.elapsed().unwrap_or_default() > Duration::from_secs(60))
                    .unwrap_or(false),
            };
            if !leftover {
                continue;
            }
            match remove_dir_blocking(&dir) {
                Ok(()) => removed.push(format!("local:{}", dir.display())),
                Err(e) => tracing::warn!("{e}"),
            }
        }
        removed
    })
    .await
    .map_err(|e| SandboxError::Failed(e.to_string()))
}

/// A live browse sandbox of `key` and `major`, its expiry moved to `expires`.
pub(crate) async fn find_browse(
    key: &str,
    major: u32,
    expires: u64,
) -> Result<Option<LocalSandbox>> {
    let now = super::now_secs();
    for (dir, m) in scan() {
        let Some(mut o) = m else { continue };
        if o.purpose != Purpose::Browse.as_str()
            || o.key.as_deref() != Some(key)
            || o.is_leftover(now)
        {
            continue;
        }
        let pg_version = std::fs::read_to_string(dir.join("data/PG_VERSION")).unwrap_or_default();
        if pg_version.trim() != major.to_string() || postmaster_of(&dir).is_none() {
            continue;
        }
        let Ok(bin) = bin_dir(major) else { continue };
        o.expires = Some(expires.max(o.expires.unwrap_or(0)));
        write_marker(&dir, &o)?;
        let sb = LocalSandbox {
            dir,
            version: server_version(&bin),
            bin,
            registration: None,
            keep: true,
            torn_down: false,
        };
        // Usable? (A server that stopped answering is left to expire.)
        if sb.query_json("postgres", "SELECT 1 AS ok").await.is_ok() {
            return Ok(Some(sb));
        }
    }
    Ok(None)
}

/// Moves a browse sandbox's expiry (its marker).
pub(crate) fn touch(dir: &Path, expires: u64) -> Result<()> {
    let Some(mut o) = read_marker(dir) else {
        return Err(SandboxError::Failed(format!(
            "the sandbox {} is gone",
            dir.display()
        )));
    };
    o.expires = Some(expires);
    write_marker(dir, &o)
}

pub(crate) async fn browse_expiries() -> Result<Vec<u64>> {
    Ok(scan()
        .into_iter()
        .filter_map(|(_, m)| m)
        .filter(|o| o.purpose == Purpose::Browse.as_str())
        .filter_map(|o| o.expires)
        .collect())
}

pub(crate) async fn list() -> Result<Vec<SandboxInfo>> {
    Ok(scan()
        .into_iter()
        .map(|(dir, m)| {
            let m = m.unwrap_or(Owner {
                purpose: "?".into(),
                owner_pid: 0,
                owner_start: None,
                key: None,
                expires: None,
                lease: None,
            });
            SandboxInfo {
                kind: SandboxKind::Local,
                name: dir.display().to_string(),
                owner_alive: super::process_alive(m.owner_pid, m.owner_start),
                purpose: m.purpose,
                owner_pid: m.owner_pid,
                key: m.key,
                expires: m.expires,
            }
        })
        .collect())
}

/// An exclusive lock on `path` (created if needed), or None when another
/// process holds it. Released when the file is dropped.
pub(crate) fn try_lock(path: &Path) -> Result<Option<std::fs::File>> {
    use std::os::unix::io::AsRawFd;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| SandboxError::Failed(format!("{}: {e}", path.display())))?;
    // SAFETY: flock on a file descriptor we own.
    let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r == 0 {
        Ok(Some(f))
    } else {
        Ok(None)
    }
}
