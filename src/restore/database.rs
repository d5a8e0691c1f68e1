//! Restore of one database of a backup onto a PostgreSQL server.
//!
//! The dump (`pg_dump -Fc -Z0`, one stream item of the manifest) is streamed
//! chunk by chunk from the store into `pg_restore`'s standard input: it is
//! never staged whole, on disk or in memory. `pg_restore` runs either as a
//! local binary (refused when its major version is older than the server the
//! dump came from) or inside the PostgreSQL container through `docker exec`
//! (bollard, standard input attached), so that its version matches the server.
//!
//! Two modes:
//! - [`DatabaseMode::New`]: `CREATE DATABASE name` (refused when it exists),
//!   then `pg_restore` into it. A failed `pg_restore` drops it again.
//! - [`DatabaseMode::Replace`]: the database of the backup's name is replaced.
//!   The dump is first restored into a fresh database beside it
//!   (`<name>_ark_<8 hex>`) and its row counts checked; only then is the
//!   existing database dropped (its connections terminated) and the restored
//!   one renamed into its place. A failure before that swap leaves the
//!   existing database exactly as it was.
//!
//! Before anything is created, the archive's table of contents is read
//! (`pg_restore --list`, which stops after the header) to find the roles
//! that own its objects: a target that lacks one is refused with the names
//! (restore the roles first with [`restore_globals`], create them, or restore
//! with [`DatabaseOptions::no_owner`]). The new database is owned by the role
//! owning the replaced database, else by the role owning most of the dump's
//! objects when the target has it, else by the connecting user.
//!
//! After `pg_restore`, every table of the manifest is counted exactly
//! (`count(*)`) in the restored database and compared with the count the
//! backup recorded in the same snapshot as the dump: a difference is an error
//! naming the tables.
//!
//! The password of the target never appears on a command line (libpq reads
//! it from the environment of `pg_restore`) nor in a message.
use super::{ChosenBackup, RestoreError, Result};
use crate::cancel::Cancel;
use crate::source::postgres::{parse_major, quote_ident, PgTarget};
use crate::source::SourceError;
use crate::store::{reader, Store, StoreError};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use sqlx::postgres::PgConnection;
use sqlx::Connection;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use store_format::contents::Database;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// How `pg_restore` (and its sibling `psql`, for roles) runs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RestoreTool {
    /// A local binary; `psql` is taken from the same directory.
    Local { pg_restore: PathBuf },
    /// Inside the running PostgreSQL container through `docker exec`,
    /// connecting to the server by its socket directory (or host) and port as
    /// seen inside the container.
    Docker {
        container: String,
        host: String,
        port: u16,
    },
}

impl RestoreTool {
    /// The local `pg_restore` when none is configured: beside the configured
    /// `pg_dump` (`--pg-dump`/`ARK_PG_DUMP`) when there is one, else the
    /// newest `/usr/lib/postgresql/*/bin/pg_restore`, else `pg_restore` on the
    /// PATH.
    pub fn local_default(pg_dump: Option<&Path>) -> RestoreTool {
        if let Some(dir) = pg_dump
            .and_then(Path::parent)
            .filter(|d| !d.as_os_str().is_empty())
        {
            return RestoreTool::Local {
                pg_restore: dir.join("pg_restore"),
            };
        }
        RestoreTool::Local {
            pg_restore: crate::source::postgres::newest_pg_tool("pg_restore"),
        }
    }

    /// `local:<path>` or `docker:<container>`.
    pub fn describe(&self) -> String {
        match self {
            RestoreTool::Local { pg_restore } => format!("local:{}", pg_restore.display()),
            RestoreTool::Docker { container, .. } => format!("docker:{container}"),
        }
    }

    /// The program for `tool`: the configured `pg_restore`, its siblings from
    /// the same directory; in a container, by name.
    fn tool_path(&self, tool: &str) -> String {
        match self {
            RestoreTool::Local { pg_restore } => {
                crate::source::postgres::tool_beside(pg_restore, "pg_restore", tool)
            }
            RestoreTool::Docker { .. } => tool.to_string(),
        }
    }

    /// Runs `<tool> --version` and refuses a major version older than
    /// `needed_major` (the server the dump came from). Returns the version line.
    pub async fn check_version(&self, tool: &str, needed_major: u32) -> Result<String> {
        let run = self
            .run(tool, vec!["--version".into()], None, Input::None)
            .await
            .map_err(|e| match e {
                RestoreError::Target { message, .. } if message.contains("not found") => {
                    RestoreError::target(format!(
                        "{message}: install the PostgreSQL client tools (version {needed_major} or newer), \
                         point --pg-restore/ARK_PG_RESTORE at pg_restore, or run it inside the database \
                         container with --pg-container"
                    ))
                }
                e => e,
            })?;
        let line = String::from_utf8_lossy(&run.stdout).trim().to_string();
        if run.code != 0 {
            return Err(RestoreError::target(format!(
                "{tool} --version ({}) failed: {}",
                self.describe(),
                run.error_text()
            )));
        }
        let major = parse_major(&line).ok_or_else(|| {
            RestoreError::target(format!(
                "cannot tell the version of {tool} from {line:?} ({})",
                self.describe()
            ))
        })?;
        if major < needed_major {
            return Err(RestoreError::Refused(format!(
                "{tool} ({}) is version {major}, older than the server the dump came from (version \
                 {needed_major}): it cannot read this dump. Install PostgreSQL {needed_major} client tools \
                 and point --pg-restore/ARK_PG_RESTORE at their pg_restore, or run it inside the database \
                 container with --pg-container",
                self.describe()
            )));
        }
        Ok(line)
    }

    /// Runs `tool` with `args`, connected (libpq environment) to `target`,
    /// feeding it `input`; collects its output.
    async fn run(
        &self,
        tool: &str,
        args: Vec<String>,
        target: Option<&PgTarget>,
        input: Input,
    ) -> Result<ToolRun> {
        self.run_as(tool, args, target, input, None).await
    }

    /// [`RestoreTool::run`] with the sessions named `session`
    /// (`application_name`). A local tool dies with this process
    /// (`PR_SET_PDEATHSIG`), and is killed when the future is dropped; in a
    /// container, the exec'd process is killed then too (it also ends when
    /// its standard input closes, as it does when this process dies).
    async fn run_as(
        &self,
        tool: &str,
        args: Vec<String>,
        target: Option<&PgTarget>,
        input: Input,
        session: Option<&str>,
    ) -> Result<ToolRun> {
        let libpq = |host: Option<(&str, u16)>| -> Vec<(String, String)> {
            let mut env = target.map(|t| t.libpq_env(host)).unwrap_or_default();
            if let Some(s) = session {
                env.retain(|(k, _)| k != "PGAPPNAME");
                env.push(("PGAPPNAME".into(), s.to_string()));
            }
            env
        };
        match self {
            RestoreTool::Local { .. } => {
                let path = self.tool_path(tool);
                let mut cmd = tokio::process::Command::new(&path);
                cmd.args(&args)
                    .env_clear()
                    .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                    .env("LC_ALL", "C")
                    .envs(libpq(None))
                    .stdin(if matches!(input, Input::None) {
                        std::process::Stdio::null()
                    } else {
                        std::process::Stdio::piped()
                    })
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .kill_on_drop(true);
                crate::child_process::die_with_parent(&mut cmd);
                let mut child = cmd.spawn().map_err(|e| {
                    RestoreError::target(if e.kind() == std::io::ErrorKind::NotFound {
                        format!("{tool} not found at {path}")
                    } else {
                        format!("cannot start {path}: {e}")
                    })
                })?;
                let stdout = collect(child.stdout.take().expect("piped"), OUTPUT_LIMIT);
                let stderr = collect(child.stderr.take().expect("piped"), ERROR_LIMIT);
                let bytes = std::sync::atomic::AtomicU64::new(0);
                let cut_short = match child.stdin.take() {
                    Some(stdin) => feed(stdin, input, &bytes).await,
                    None => Ok(false),
                };
                let fed = match cut_short {
                    Ok(cut_short) => Fed {
                        bytes: bytes.into_inner(),
                        cut_short,
                    },
                    Err(e) => {
                        let _ = child.kill().await;
                        return Err(e);
                    }
                };
                let status = child
                    .wait()
                    .await
                    .map_err(|e| RestoreError::target(format!("waiting for {tool}: {e}")))?;
                Ok(ToolRun {
                    tool: tool.to_string(),
                    code: status.code().unwrap_or(-1),
                    stdout: stdout.await.unwrap_or_default(),
                    stderr: stderr.await.unwrap_or_default(),
                    fed,
                })
            }
            RestoreTool::Docker {
                container,
                host,
                port,
            } => {
                let mut cmd = vec![tool.to_string()];
                cmd.extend(args);
                let env: Vec<String> = libpq(Some((host, *port)))
                    .into_iter()
                    .chain([("LC_ALL".to_string(), "C".to_string())])
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                docker_run(container, tool, cmd, env, input).await
            }
        }
    }
}

/// How a database is restored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseMode {
    /// Into a new database of this name (refused when it exists).
    New { name: String },
    /// Over the database of the backup's name on the target (created when
    /// absent). The caller takes the safety backup first.
    Replace,
}

/// Choices of a database restore besides where to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatabaseOptions {
    /// `pg_restore --no-owner --no-privileges`: the objects belong to the
    /// connecting user and no grants are restored (for a target that lacks
    /// the dump's roles).
    pub no_owner: bool,
    /// The flag that sets the connection to the target (`--target-url`,
    /// `--n8n-db`, `--pg-server`), for refusals that say how to connect
    /// otherwise. Empty: `--target-url`.
    pub target_flag: &'static str,
}

/// One table's exact row count: recorded in the backup and found after the
/// restore.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TableCheck {
    /// `schema.name`.
    pub table: String,
    pub expected: u64,
    pub found: u64,
    /// False when the restored database lacks the table (`found` is then 0).
    pub exists: bool,
}

impl TableCheck {
    pub fn matches(&self) -> bool {
        self.exists && self.expected == self.found
    }
}

/// A database restored and checked.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DatabaseRestored {
    /// The database's name in the backup.
    pub backup_database: String,
    /// Its name on the target.
    pub target_database: String,
    /// `user@host:port` of the target server.
    pub server: String,
    /// True when an existing database was replaced.
    pub replaced: bool,
    /// The role owning the restored database.
    pub owner: Option<String>,
    /// The `pg_restore` that ran (its version line and where).
    pub pg_restore: String,
    /// Bytes of the dump streamed into `pg_restore`.
    pub dump_bytes: u64,
    pub tables: Vec<TableCheck>,
    pub mismatches: usize,
    /// What interrupted restores had left on the server, finished or undone
    /// before this one began (one line each).
    pub cleaned_up: Vec<String>,
    /// What the operator should know (e.g. free space was short).
    pub notes: Vec<String>,
    pub duration_ms: u64,
}

/// How the error of a restore whose row counts differ from the backup's begins.
const MISMATCH: &str = "the restored database does not hold what";

/// Whether `e` is the error of a restore whose row counts differ from the
/// backup's (the dump restored, but not to what the manifest recorded).
pub fn is_count_mismatch(e: &RestoreError) -> bool {
    matches!(e, RestoreError::Target { message, .. } if message.starts_with(MISMATCH))
}

/// The database entry of `db_name` in the backup, or an error naming the ones it has.
pub fn backup_database<'a>(backup: &'a ChosenBackup, db_name: &str) -> Result<&'a Database> {
    let databases = backup
        .manifest
        .contents
        .as_ref()
        .map(|c| c.databases.as_slice())
        .unwrap_or_default();
    databases.iter().find(|d| d.name == db_name).ok_or_else(|| {
        let names: Vec<&str> = databases.iter().map(|d| d.name.as_str()).collect();
        RestoreError::NotFound(if names.is_empty() {
            format!(
                "backup {} ({}) holds no database dump",
                backup.backup_id, backup.manifest.kind
            )
        } else {
            format!(
                "backup {} has no database {db_name:?}; it has: {}",
                backup.backup_id,
                names.join(", ")
            )
        })
    })
}

/// The oldest `pg_restore` major version that reads the dump of `db`: the
/// version of the server it came from, and of the `pg_dump` that wrote it.
pub fn needed_major(db: &Database) -> u32 {
    (db.server_version_num / 10000).max(parse_major(&db.pg_dump_version).unwrap_or(0))
}

/// Checks a database name given for the target.
pub fn check_database_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 63 || name.contains('\0') {
        return Err(RestoreError::Invalid(format!(
            "{name:?} is not a usable database name (1 to 63 bytes, no NUL)"
        )));
    }
    Ok(())
}

/// The name suggested for a restore beside the original:
/// `<db>_restored_<YYYYMMDD>` of the backup's date.
pub fn suggested_name(db_name: &str, backup_finished_ms: i64) -> String {
    let date = chrono::DateTime::from_timestamp_millis(backup_finished_ms)
        .unwrap_or_default()
        .format("%Y%m%d");
    format!("{}_restored_{date}", truncate(db_name, 63 - 18))
}

use crate::text::truncate;

/// Where to connect for CREATE/DROP/ALTER DATABASE: the target's database,
/// unless it is one of those we create, drop or rename (`postgres` then).
fn admin_target(target: &PgTarget, avoid: &[&str]) -> PgTarget {
    if avoid.contains(&target.database.as_str()) {
        target.with_database(if avoid.contains(&"postgres") {
            "template1"
        } else {
            "postgres"
        })
    } else {
        target.clone()
    }
}

fn server_of(target: &PgTarget) -> String {
    format!("{}@{}:{}", target.user, target.host, target.port)
}

fn source_err(e: SourceError) -> RestoreError {
    let retryable = e.is_retryable();
    RestoreError::Target {
        message: e.to_string(),
        retryable,
    }
}

fn sql_err(what: &str) -> impl Fn(sqlx::Error) -> RestoreError + '_ {
    move |e| match e {
        sqlx::Error::Database(d) => RestoreError::target(format!("{what}: {}", d.message())),
        sqlx::Error::Io(io) => RestoreError::Target {
            message: format!("{what}: the connection broke: {io}"),
            retryable: true,
        },
        other => RestoreError::target(format!("{what}: {other}")),
    }
}

/// A statement with identifiers quoted by [`quote_ident`] only.
async fn exec(conn: &mut PgConnection, sql: String, what: &str) -> Result<()> {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(conn)
        .await
        .map_err(sql_err(what))?;
    Ok(())
}

async fn database_exists(conn: &mut PgConnection, name: &str) -> Result<Option<String>> {
    sqlx::query_scalar::<_, String>(
        "SELECT pg_get_userbyid(datdba)::text FROM pg_database WHERE datname = $1",
    )
    .bind(name)
    .fetch_optional(conn)
    .await
    .map_err(sql_err("looking for the database"))
}

async fn existing_roles(conn: &mut PgConnection, names: &[String]) -> Result<BTreeSet<String>> {
    let found: Vec<String> =
        sqlx::query_scalar("SELECT rolname::text FROM pg_roles WHERE rolname = ANY($1)")
            .bind(names)
            .fetch_all(conn)
            .await
            .map_err(sql_err("reading the roles"))?;
    Ok(found.into_iter().collect())
}

async fn server_major(conn: &mut PgConnection) -> Result<u32> {
    let v: String = sqlx::query_scalar("SELECT current_setting('server_version_num')")
        .fetch_one(conn)
        .await
        .map_err(sql_err("reading the server version"))?;
    Ok(v.parse::<u32>().unwrap_or(0) / 10000)
}

/// Drops `name`, terminating its connections first.
async fn drop_database(conn: &mut PgConnection, name: &str, major: u32) -> Result<()> {
    let what = format!("dropping the database {name:?}");
    if major >= 13 {
        return exec(
            conn,
            format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(name)),
            &what,
        )
        .await;
    }
    exec(
        conn,
        format!(
            "ALTER DATABASE {} WITH ALLOW_CONNECTIONS false",
            quote_ident(name)
        ),
        &what,
    )
    .await?;
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(name)
    .execute(&mut *conn)
    .await
    .map_err(sql_err(&what))?;
    exec(
        conn,
        format!("DROP DATABASE IF EXISTS {}", quote_ident(name)),
        &what,
    )
    .await
}

/// What [`preflight`] found: everything a restore checks before it changes
/// anything.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Preflight {
    /// The `pg_restore` version line and where it runs.
    pub pg_restore: String,
    /// The database the restore ends up as on the target.
    pub target_database: String,
    /// The owner of that database when it already exists (Replace).
    pub existing_owner: Option<String>,
    /// The roles owning the dump's objects (with how many each owns).
    pub dump_owners: BTreeMap<String, usize>,
    /// Which of them the target has.
    pub roles_present: BTreeSet<String>,
    /// Which of them the connecting role may give objects to (it is a
    /// member of them, or a superuser).
    pub roles_grantable: BTreeSet<String>,
    /// The server's major version.
    pub server_major: u32,
    /// Free bytes on the file system of the server's data directory, when
    /// that can be known (a server on this machine whose data directory the
    /// connecting role may see).
    pub free_bytes: Option<u64>,
    /// What the operator should know that does not stop the restore.
    pub notes: Vec<String>,
}

/// The privileges of the connecting role.
struct Privileges {
    superuser: bool,
    createdb: bool,
}

async fn privileges(conn: &mut PgConnection) -> Result<Privileges> {
    let (superuser, createdb): (bool, bool) =
        sqlx::query_as("SELECT rolsuper, rolcreatedb FROM pg_roles WHERE rolname = current_user")
            .fetch_one(conn)
            .await
            .map_err(sql_err("reading the connecting role's privileges"))?;
    Ok(Privileges {
        superuser,
        createdb,
    })
}

/// Whether the connecting role owns `database` (directly or through a role
/// it has the privileges of; a superuser owns everything).
async fn owns(conn: &mut PgConnection, database: &str) -> Result<bool> {
    sqlx::query_scalar::<_, bool>(
        "SELECT pg_has_role(current_user, datdba, 'USAGE') FROM pg_database WHERE datname = $1",
    )
    .bind(database)
    .fetch_optional(conn)
    .await
    .map_err(sql_err("reading the owner of the database"))
    .map(|o| o.unwrap_or(false))
}

/// Of `names`, the roles the connecting role is a member of (it may create
/// a database owned by them, and restore objects owned by them).
async fn member_of(conn: &mut PgConnection, names: &[String]) -> Result<BTreeSet<String>> {
    let found: Vec<String> = sqlx::query_scalar(
        "SELECT rolname::text FROM pg_roles WHERE rolname = ANY($1) \
         AND pg_has_role(current_user, oid, 'MEMBER')",
    )
    .bind(names)
    .fetch_all(conn)
    .await
    .map_err(sql_err("reading the connecting role's memberships"))?;
    Ok(found.into_iter().collect())
}

/// Free bytes on the file system of the server's data directory, when the
/// server runs on this machine and the connecting role may read
/// `data_directory` (superusers and `pg_read_all_settings`).
async fn server_free_bytes(conn: &mut PgConnection, target: &PgTarget) -> Option<u64> {
    let local = target.host.starts_with('/')
        || matches!(target.host.as_str(), "localhost" | "127.0.0.1" | "::1");
    if !local {
        return None;
    }
    let dir: String = sqlx::query_scalar("SELECT current_setting('data_directory')")
        .fetch_one(conn)
        .await
        .ok()?;
    let path = Path::new(&dir);
    if !path.is_absolute() || !path.exists() {
        return None;
    }
    crate::restore::free_bytes(path)
}

/// The password variables that go with a connection flag, for messages.
fn password_vars(flag: &str) -> &'static str {
    match flag {
        "--n8n-db" => "ARK_N8N_DB_PASSWORD or ARK_N8N_DB_PASSWORD_FILE",
        "--pg-server" => "ARK_PG_SERVER_PASSWORD or ARK_PG_SERVER_PASSWORD_FILE",
        _ => "ARK_TARGET_DB_PASSWORD or ARK_TARGET_DB_PASSWORD_FILE",
    }
}

/// `postgres://user@host:port/db` for a message (never a password).
pub fn url_for_message(t: &PgTarget) -> String {
    let host = if t.host.starts_with('/') {
        t.host.replace('%', "%25").replace('/', "%2F")
    } else if t.host.contains(':') {
        format!("[{}]", t.host)
    } else {
        t.host.clone()
    };
    format!("postgres://{}@{host}:{}/{}", t.user, t.port, t.database)
}

/// How to connect as the server's superuser instead, for a refusal.
fn connect_as_superuser(target: &PgTarget, opts: &DatabaseOptions) -> String {
    let flag = if opts.target_flag.is_empty() {
        "--target-url"
    } else {
        opts.target_flag
    };
    let mut su = target.clone();
    su.user = "postgres".into();
    format!(
        "{flag} {} (the server's superuser, or any role with CREATEDB that owns the database; its \
         password in {})",
        url_for_message(&su),
        password_vars(flag)
    )
}

/// The checks of a database restore, changing nothing: the backup holds the
/// database and its dump; `pg_restore` runs and is new enough; the target
/// server answers; for [`DatabaseMode::New`] the name is free; the
/// connecting role may create the work database (CREATEDB) and, for
/// [`DatabaseMode::Replace`], set the existing database aside and drop it
/// (its owner, or a superuser); the roles owning the dump's objects exist
/// there (unless [`DatabaseOptions::no_owner`]); when the server's free
/// space can be known, the restored copy could fit. Run it before taking a
/// safety backup; [`restore_database`] runs it again.
pub async fn preflight(
    store: &Store,
    backup: &ChosenBackup,
    db_name: &str,
    target: &PgTarget,
    tool: &RestoreTool,
    mode: &DatabaseMode,
    opts: &DatabaseOptions,
) -> Result<Preflight> {
    let db = backup_database(backup, db_name)?;
    let item = dump_item(backup, db)?;
    if !db.dump_format.is_empty() && db.dump_format != "custom" {
        return Err(RestoreError::Invalid(format!(
            "the dump of {db_name:?} is in format {:?}; only pg_dump's custom format is restored",
            db.dump_format
        )));
    }
    let final_name = match mode {
        DatabaseMode::New { name } => name.as_str(),
        DatabaseMode::Replace => db_name,
    };
    check_database_name(final_name)?;
    let version_line = tool.check_version("pg_restore", needed_major(db)).await?;
    let admin = admin_target(target, &[final_name]);
    let mut conn = admin.connect().await.map_err(source_err)?;
    let checked = async {
        let server_major = server_major(&mut conn).await?;
        let existing_owner = database_exists(&mut conn, final_name).await?;
        if let (DatabaseMode::New { name }, Some(_)) = (mode, &existing_owner) {
            return Err(RestoreError::Refused(format!(
                "the database {name:?} already exists on {}: choose another name with --as, or replace it \
                 with --replace --yes (after a safety backup)",
                server_of(target)
            )));
        }
        // The connecting role must be able to make the work database and,
        // when one is replaced, rename it aside and drop it.
        let privs = privileges(&mut conn).await?;
        if !privs.superuser && !privs.createdb {
            let how = match (mode, &existing_owner) {
                (DatabaseMode::Replace, Some(_)) => format!(
                    "the backup is restored into a new database beside {final_name:?}, which is swapped in \
                     once it is checked"
                ),
                _ => format!(
                    "the backup is restored into a new database, named {final_name:?} once it is checked"
                ),
            };
            return Err(RestoreError::Refused(format!(
                "the role {:?} may not create databases (it lacks CREATEDB), and {how}. Connect as a role \
                 with CREATEDB, e.g. {}",
                target.user,
                connect_as_superuser(target, opts)
            )));
        }
        if let (DatabaseMode::Replace, Some(owner)) = (mode, &existing_owner) {
            if !owns(&mut conn, final_name).await? {
                return Err(RestoreError::Refused(format!(
                    "the role {:?} neither owns the database {final_name:?} (its owner is {owner:?}) nor is a \
                     superuser, so it cannot set it aside and drop it once the restored copy replaced it. \
                     Connect as its owner (with CREATEDB) or as a superuser, e.g. {}",
                    target.user,
                    connect_as_superuser(target, opts)
                )));
            }
            if !privs.superuser && member_of(&mut conn, std::slice::from_ref(owner)).await?.is_empty() {
                return Err(RestoreError::Refused(format!(
                    "the role {:?} is not a member of {owner:?}, which owns {final_name:?}, so it cannot give \
                     the restored database the same owner. Connect as {owner:?} (with CREATEDB) or as a \
                     superuser, e.g. {}",
                    target.user,
                    connect_as_superuser(target, opts)
                )));
            }
        }
        // The roles owning the dump's objects must exist on the target.
        let toc = list_toc(store, item, tool, &admin).await?;
        let dump_owners = toc_owners(&toc);
        let owner_names = dump_owners.keys().cloned().collect::<Vec<String>>();
        let roles_present = existing_roles(&mut conn, &owner_names).await?;
        let roles_grantable = if privs.superuser {
            roles_present.clone()
        } else {
            member_of(&mut conn, &owner_names).await?
        };
        if !opts.no_owner {
            let missing: Vec<&str> = dump_owners
                .keys()
                .filter(|r| !roles_present.contains(*r))
                .map(String::as_str)
                .collect();
            if !missing.is_empty() {
                return Err(RestoreError::Refused(format!(
                    "the dump's objects belong to role(s) {} that {} lacks: create them, restore the roles of \
                     a postgres_full backup first (--with-roles), or restore with --no-owner (everything then \
                     belongs to {:?})",
                    missing.join(", "),
                    server_of(target),
                    target.user
                )));
            }
            let foreign: Vec<&str> = dump_owners
                .keys()
                .filter(|r| !r.starts_with("pg_") && !roles_grantable.contains(*r))
                .map(String::as_str)
                .collect();
            if !foreign.is_empty() {
                return Err(RestoreError::Refused(format!(
                    "the dump's objects belong to role(s) {} that the role {:?} may not give objects to (it is \
                     neither a member of them nor a superuser): connect as a superuser, e.g. {}, or restore \
                     with --no-owner (everything then belongs to {:?})",
                    foreign.join(", "),
                    target.user,
                    connect_as_superuser(target, opts),
                    target.user
                )));
            }
        }
        // Space, where it can be known. The restored copy takes about what
        // the dump holds (less where PostgreSQL compresses values, more for
        // the indexes), beside the database it replaces until the swap; a
        // server that runs out of space may stop altogether. Refused when
        // it could not fit even compressed fourfold; below the dump's size,
        // a note.
        let mut notes = Vec::new();
        let free_bytes = server_free_bytes(&mut conn, target).await;
        if let Some(free) = free_bytes {
            if free < item.size / 4 {
                return Err(RestoreError::Refused(format!(
                    "the server's data directory has {} free; the restored copy of {db_name:?} takes about \
                     the dump's {} beside {final_name:?} and could not fit even if PostgreSQL compressed it \
                     fourfold: free space on the server first",
                    crate::restore::human_bytes(free),
                    crate::restore::human_bytes(item.size)
                )));
            }
            if free < item.size {
                notes.push(format!(
                    "the server's data directory has {} free; the restored copy takes about the dump's {} \
                     unless PostgreSQL compresses it: it may not fit",
                    crate::restore::human_bytes(free),
                    crate::restore::human_bytes(item.size)
                ));
            }
        }
        Ok(Preflight {
            pg_restore: format!("{version_line} ({})", tool.describe()),
            target_database: final_name.to_string(),
            existing_owner,
            dump_owners,
            roles_present,
            roles_grantable,
            server_major,
            free_bytes,
            notes,
        })
    }
    .await;
    let _ = conn.close().await;
    checked
}

fn dump_item<'a>(backup: &'a ChosenBackup, db: &Database) -> Result<&'a store_format::Item> {
    backup
        .manifest
        .items
        .iter()
        .find(|i| i.name == db.dump_item)
        .ok_or_else(|| {
            RestoreError::NotFound(format!(
                "backup {}: the dump item {:?} of database {:?} is missing from the manifest",
                backup.backup_id, db.dump_item, db.name
            ))
        })
}

// ---- work databases: names, records, cleanup ----

/// What a restore's work database is: `new` (the dump is restored into it;
/// it takes the target name at the end) or `old` (the database it replaced,
/// set aside by the swap until it is dropped).
const NEW: &str = "new";
const OLD: &str = "old";

/// `<name>_ark_<kind>_<token>`, at most 63 bytes.
pub fn work_name(final_name: &str, kind: &str, token: &str) -> String {
    let suffix = format!("_ark_{kind}_{token}");
    format!("{}{suffix}", truncate(final_name, 63 - suffix.len()))
}

/// The kind and token of a work database's name.
fn parse_work_name(name: &str) -> Option<(&'static str, String)> {
    let (rest, token) = name.rsplit_once('_')?;
    if token.len() != 8 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let kind = if rest.ends_with("_ark_new") {
        NEW
    } else if rest.ends_with("_ark_old") {
        OLD
    } else {
        return None;
    };
    Some((kind, token.to_string()))
}

/// The `application_name` of a restore's sessions: how another run tells
/// that the restore owning a work database still runs.
fn session_tag(token: &str) -> String {
    format!("n8n-ark restore {token}")
}

/// What the comment of a work database records (after [`RECORD_MARK`]).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct WorkRecord {
    /// The restore (its event's id).
    restore: String,
    /// `new` or `old`.
    kind: String,
    /// The database it becomes (`new`) or was (`old`).
    #[serde(rename = "final")]
    final_name: String,
    /// Where the restore runs: host name, process id and start time.
    host: String,
    pid: u32,
    pid_start: Option<u64>,
    /// `old`: the comment the database had, put back if it is ever renamed back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    comment: Option<String>,
}

/// How a work database's comment begins.
const RECORD_MARK: &str =
    "n8n-ark restore work database (removed by the next restore onto this server): ";

impl WorkRecord {
    fn new(restore: &str, kind: &str, final_name: &str, comment: Option<String>) -> WorkRecord {
        let pid = std::process::id();
        WorkRecord {
            restore: restore.to_string(),
            kind: kind.to_string(),
            final_name: final_name.to_string(),
            host: host_name(),
            pid,
            pid_start: crate::sandbox::process_start(pid),
            comment,
        }
    }

    fn comment(&self) -> String {
        format!(
            "{RECORD_MARK}{}",
            serde_json::to_string(self).unwrap_or_default()
        )
    }

    fn parse(comment: &str) -> Option<WorkRecord> {
        serde_json::from_str(comment.strip_prefix(RECORD_MARK)?).ok()
    }
}

fn host_name() -> String {
    crate::sys::host_name().unwrap_or_default()
}

/// An SQL string literal (utility statements such as COMMENT take no
/// parameters): quotes doubled, and an `E''` literal when it holds a
/// backslash, so that it reads the same whatever `standard_conforming_strings` is.
fn sql_literal(s: &str) -> String {
    if s.contains('\\') {
        format!("E'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
    } else {
        format!("'{}'", s.replace('\'', "''"))
    }
}

fn comment_sql(database: &str, comment: Option<&str>) -> String {
    format!(
        "COMMENT ON DATABASE {} IS {}",
        quote_ident(database),
        comment.map(sql_literal).unwrap_or_else(|| "NULL".into())
    )
}

/// A database of another restore: its name, oid and record.
struct Leftover {
    name: String,
    kind: &'static str,
    token: String,
    record: Option<WorkRecord>,
}

/// Whether the restore that made `l` still runs: on this host, its process;
/// elsewhere, a session of it on the server.
async fn still_running(conn: &mut PgConnection, l: &Leftover) -> Result<bool> {
    if let Some(r) = &l.record {
        if !r.host.is_empty() && r.host == host_name() {
            return Ok(crate::sandbox::process_alive(r.pid, r.pid_start));
        }
    }
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()",
    )
    .bind(session_tag(&l.token))
    .fetch_one(conn)
    .await
    .map_err(sql_err("looking for the sessions of other restores"))?;
    Ok(n > 0)
}

/// Finishes or undoes what interrupted restores left on the server (a
/// killed process cleans nothing): a `new` work database never replaced
/// anything and is dropped; an `old` one is a database that a completed
/// swap replaced, dropped when its replacement exists (renamed back when it
/// does not). Work databases of restores that still run are left alone.
/// Returns one line per thing done; a leftover that cannot be removed is
/// said, not an error.
pub async fn clean_up_interrupted(
    conn: &mut PgConnection,
    major: u32,
    own_token: &str,
) -> Result<Vec<String>> {
    let rows: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT datname::text, shobj_description(oid, 'pg_database') FROM pg_database \
         WHERE datname ~ '_ark_(new|old)_[0-9a-f]{8}$' ORDER BY datname",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(sql_err(
        "looking for the work databases of interrupted restores",
    ))?;
    let mut done = Vec::new();
    for (name, comment) in rows {
        let Some((kind, token)) = parse_work_name(&name) else {
            continue;
        };
        if token == own_token {
            continue;
        }
        let record = comment.as_deref().and_then(WorkRecord::parse);
        // An `old` database without our record is someone else's name.
        if kind == OLD && record.is_none() {
            continue;
        }
        let l = Leftover {
            name,
            kind,
            token,
            record,
        };
        if still_running(conn, &l).await? {
            continue;
        }
        let of = match &l.record {
            Some(r) => format!(
                "interrupted restore {} (into {:?})",
                r.restore, r.final_name
            ),
            None => "an interrupted restore".to_string(),
        };
        let outcome = if l.kind == NEW {
            drop_database(conn, &l.name, major).await.map(|()| {
                format!(
                    "removed the work database {:?} of {of}: it never replaced anything",
                    l.name
                )
            })
        } else {
            let r = l.record.as_ref().expect("checked above");
            match database_exists(conn, &r.final_name).await? {
                Some(_) => drop_database(conn, &l.name, major).await.map(|()| {
                    format!(
                        "removed {:?}, the database {:?} as it was before {of} replaced it (the swap had \
                         completed; the restore's safety backup holds it)",
                        l.name, r.final_name
                    )
                }),
                None => {
                    let sql = format!(
                        "BEGIN; ALTER DATABASE {} RENAME TO {}; {}; COMMIT",
                        quote_ident(&l.name),
                        quote_ident(&r.final_name),
                        comment_sql(&r.final_name, r.comment.as_deref())
                    );
                    let renamed = exec(conn, sql, "renaming a set-aside database back").await;
                    if renamed.is_err() {
                        let _ = exec(conn, "ROLLBACK".into(), "rolling back").await;
                    }
                    renamed.map(|()| {
                        format!(
                            "renamed {:?} back to {:?}: {of} had replaced it, and no database {:?} exists any more",
                            l.name, r.final_name, r.final_name
                        )
                    })
                }
            }
        };
        done.push(match outcome {
            Ok(line) => line,
            Err(e) => format!(
                "could not remove {:?}, left by {of}: {e} (drop it as its owner or a superuser)",
                l.name
            ),
        });
    }
    Ok(done)
}

/// Renames `work` to `final_name` and, when `aside` is given (the existing
/// `final_name` and the name to set it aside as, with its record), first
/// `final_name` to that name: one transaction, so that at every moment (a
/// kill included) the server has either the old or the new database under
/// `final_name`. Other sessions in either database are ended while it
/// waits for them (a second connection terminates them; new ones wait for
/// the swap to commit). The restored database keeps the replaced one's
/// comment. Returns the oid now named `final_name`.
async fn swap_in(
    conn: &mut PgConnection,
    admin: &PgTarget,
    token: &str,
    work: &str,
    final_name: &str,
    aside: Option<(&str, &WorkRecord)>,
    keep_comment: Option<&str>,
) -> Result<()> {
    let mut sql = String::from("BEGIN; ");
    if let Some((old, _)) = aside {
        sql.push_str(&format!(
            "ALTER DATABASE {} RENAME TO {}; ",
            quote_ident(final_name),
            quote_ident(old)
        ));
    }
    sql.push_str(&format!(
        "ALTER DATABASE {} RENAME TO {}; {}; ",
        quote_ident(work),
        quote_ident(final_name),
        comment_sql(final_name, keep_comment)
    ));
    if let Some((old, record)) = aside {
        sql.push_str(&comment_sql(old, Some(&record.comment())));
        sql.push_str("; ");
    }
    sql.push_str("COMMIT");

    // Ends the other sessions of both databases while the swap waits for
    // them to go (a swap holds the databases' locks: new sessions wait).
    let own_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut *conn)
        .await
        .map_err(sql_err("reading the session's pid"))?;
    let stop = tokio_util::sync::CancellationToken::new();
    let terminator = {
        let stop = stop.clone();
        let admin = admin.clone();
        let names = vec![final_name.to_string(), work.to_string()];
        let tag = session_tag(token);
        tokio::spawn(async move {
            let Ok(mut c) = admin.connect().await else {
                return;
            };
            let _ = exec(
                &mut c,
                format!("SET application_name = {}", sql_literal(&tag)),
                "naming the session",
            )
            .await;
            while !stop.is_cancelled() {
                let pids: Vec<i32> = sqlx::query_scalar(
                    "SELECT pid FROM pg_stat_activity WHERE datname = ANY($1) \
                     AND pid <> pg_backend_pid() AND pid <> $2",
                )
                .bind(&names)
                .bind(own_pid)
                .fetch_all(&mut c)
                .await
                .unwrap_or_default();
                for pid in pids {
                    // Sessions of roles this one may not signal stay; the
                    // swap then fails, changing nothing.
                    let _ = sqlx::query("SELECT pg_terminate_backend($1)")
                        .bind(pid)
                        .execute(&mut c)
                        .await;
                }
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = tokio::time::sleep(std::time::Duration::from_millis(100)) => {}
                }
            }
            let _ = c.close().await;
        })
    };
    let mut attempt = 0;
    let result = loop {
        attempt += 1;
        match sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone()))
            .execute(&mut *conn)
            .await
        {
            Ok(_) => break Ok(()),
            Err(e) => {
                let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
                let in_use =
                    matches!(&e, sqlx::Error::Database(d) if d.code().as_deref() == Some("55006"));
                if in_use && attempt < 6 {
                    continue;
                }
                break Err(sql_err("swapping the restored database in")(e));
            }
        }
    };
    stop.cancel();
    let _ = terminator.await;
    result
}

/// The oid of `name`, if it exists.
async fn database_oid(conn: &mut PgConnection, name: &str) -> Result<Option<u32>> {
    let oid: Option<i64> =
        sqlx::query_scalar("SELECT oid::bigint FROM pg_database WHERE datname = $1")
            .bind(name)
            .fetch_optional(conn)
            .await
            .map_err(sql_err("looking for the database"))?;
    Ok(oid.map(|o| o as u32))
}

/// The comment of `name` (None when it has none or does not exist).
async fn database_comment(conn: &mut PgConnection, name: &str) -> Result<Option<String>> {
    let c: Option<Option<String>> = sqlx::query_scalar(
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
    )
    .bind(name)
    .fetch_optional(conn)
    .await
    .map_err(sql_err("reading the database's comment"))?;
    Ok(c.flatten())
}

/// Restores database `db_name` of the backup onto the server `target` (see
/// the module documentation). Does not take the safety backup (the caller
/// does, with [`crate::restore::take_safety_backup`]) and does not append
/// events (the caller does, with [`crate::restore::Recorder`]);
/// `restore_id` names the restore in the work databases' records. First
/// finishes or undoes what interrupted restores left on the server
/// ([`clean_up_interrupted`]). `cancel` stops it at the next safe point:
/// before the swap, its work database is dropped and nothing was changed;
/// a swap that began completes.
#[allow(clippy::too_many_arguments)]
pub async fn restore_database(
    store: &Store,
    backup: &ChosenBackup,
    db_name: &str,
    target: &PgTarget,
    tool: &RestoreTool,
    mode: &DatabaseMode,
    opts: &DatabaseOptions,
    restore_id: &str,
    cancel: &Cancel,
) -> Result<DatabaseRestored> {
    let started = std::time::Instant::now();
    let pre = preflight(store, backup, db_name, target, tool, mode, opts).await?;
    let db = backup_database(backup, db_name)?;
    let item = dump_item(backup, db)?;
    let final_name = pre.target_database.as_str();
    let untouched = match mode {
        DatabaseMode::Replace if pre.existing_owner.is_some() => {
            format!("the database {final_name:?} was not touched")
        }
        _ => format!("nothing was changed (no database {final_name:?} was created)"),
    };
    if let Some(why) = cancel.interrupted() {
        return Err(RestoreError::Interrupted(format!(
            "{why} before the restore began: {untouched}"
        )));
    }
    let token = format!("{:08x}", rand::random::<u32>());
    let work = work_name(final_name, NEW, &token);
    let admin = admin_target(target, &[final_name, &work]);
    let mut conn = admin.connect().await.map_err(source_err)?;
    let major = pre.server_major;
    // Our sessions carry the token: another run sees that this one runs.
    exec(
        &mut conn,
        format!(
            "SET application_name = {}; SET synchronous_commit = on",
            sql_literal(&session_tag(&token))
        ),
        "setting up the session",
    )
    .await?;
    let cleaned_up = clean_up_interrupted(&mut conn, major, &token).await?;
    for line in &cleaned_up {
        tracing::info!("{line}");
    }
    // Checked again on this connection: it may have appeared since.
    let existing_owner = database_exists(&mut conn, final_name).await?;
    match (mode, &existing_owner) {
        (DatabaseMode::New { name }, Some(_)) => {
            let _ = conn.close().await;
            return Err(RestoreError::Refused(format!(
                "the database {name:?} already exists on {}: choose another name with --as",
                server_of(target)
            )));
        }
        (DatabaseMode::Replace, Some(_)) if pre.existing_owner.is_none() => {
            let _ = conn.close().await;
            return Err(RestoreError::Refused(format!(
                "the database {final_name:?} appeared on {} since the restore's checks (no safety backup of \
                 it was taken): run the restore again",
                server_of(target)
            )));
        }
        _ => {}
    }
    // The new database's owner: the replaced one's, else the role owning most
    // of the dump's objects (when the target has it and this role may give
    // it a database), else the connecting user.
    let owner = match (&existing_owner, opts.no_owner) {
        (Some(o), _) => Some(o.clone()),
        (None, true) => None,
        (None, false) => pre
            .dump_owners
            .iter()
            .filter(|(r, _)| pre.roles_grantable.contains(*r) && !r.starts_with("pg_"))
            .max_by_key(|(r, n)| (**n, std::cmp::Reverse((*r).clone())))
            .map(|(r, _)| r.clone()),
    };
    let version_line = pre.pg_restore.clone();

    let mut create = format!("CREATE DATABASE {} TEMPLATE template0", quote_ident(&work));
    if let Some(o) = &owner {
        create.push_str(&format!(" OWNER {}", quote_ident(o)));
    }
    exec(
        &mut conn,
        create,
        &format!("creating the database {work:?}"),
    )
    .await?;
    let record = WorkRecord::new(restore_id, NEW, final_name, None);
    if let Err(e) = exec(
        &mut conn,
        comment_sql(&work, Some(&record.comment())),
        "recording the restore on its work database",
    )
    .await
    {
        let _ = drop_database(&mut conn, &work, major).await;
        let _ = conn.close().await;
        return Err(e);
    }
    tracing::info!(database = %work, server = %server_of(target), "restoring {db_name} ({} bytes)", item.size);

    // From here on, a failure or an interruption drops what was created.
    let restored = tokio::select! {
        r = async {
            let into = target.with_database(&work);
            let dump_bytes =
                run_pg_restore(store, item, tool, &into, opts, &session_tag(&token)).await?;
            let tables = count_tables(&into, db).await?;
            Ok::<_, RestoreError>((dump_bytes, tables))
        } => r,
        _ = cancel.cancelled() => Err(RestoreError::Interrupted(format!(
            "{} while pg_restore ran",
            cancel.interrupted().unwrap_or_default()
        ))),
    };
    let (dump_bytes, tables) = match restored {
        Ok(r) => r,
        Err(e) => {
            let dropped = drop_database(&mut conn, &work, major).await;
            let _ = conn.close().await;
            return Err(match (e, dropped) {
                (RestoreError::Interrupted(m), Ok(())) => RestoreError::Interrupted(format!(
                    "{m}: the work database {work:?} was dropped; {untouched}"
                )),
                (RestoreError::Target { message, retryable }, Ok(())) => RestoreError::Target {
                    message: format!(
                        "{message} (the partly restored database {work:?} was dropped; {untouched})"
                    ),
                    retryable,
                },
                (e, Ok(())) => e,
                (e, Err(d)) => RestoreError::target(format!(
                    "{e}; the partly restored database {work:?} could not be dropped either ({d}): the next \
                     restore onto this server removes it, or drop it by hand; {untouched}"
                )),
            });
        }
    };
    let mismatches = tables.iter().filter(|t| !t.matches()).count();
    if mismatches > 0 {
        let list: Vec<String> = tables
            .iter()
            .filter(|t| !t.matches())
            .take(10)
            .map(|t| {
                if t.exists {
                    format!("{} (expected {}, found {})", t.table, t.expected, t.found)
                } else {
                    format!(
                        "{} (expected {} rows, the table is missing)",
                        t.table, t.expected
                    )
                }
            })
            .collect();
        let more = if mismatches > list.len() {
            format!(" and {} more", mismatches - list.len())
        } else {
            String::new()
        };
        let after = match mode {
            DatabaseMode::New { .. } => {
                match swap_in(&mut conn, &admin, &token, &work, final_name, None, None).await {
                    Ok(()) => format!(
                        "the restored database {final_name:?} is left in place for inspection: drop it when done"
                    ),
                    Err(e) => {
                        let _ = drop_database(&mut conn, &work, major).await;
                        format!("it could not be named {final_name:?} ({e}) and was dropped")
                    }
                }
            }
            DatabaseMode::Replace => match drop_database(&mut conn, &work, major).await {
                Ok(()) => format!("it was dropped and {untouched}"),
                Err(d) => format!(
                    "{untouched}; the restored copy {work:?} could not be dropped ({d}): the next restore onto \
                     this server removes it"
                ),
            },
        };
        let _ = conn.close().await;
        return Err(RestoreError::Target {
            message: format!(
                "{MISMATCH} backup {} recorded: {mismatches} table(s) differ: {}{more}; {after}",
                backup.backup_id,
                list.join(", ")
            ),
            retryable: false,
        });
    }
    if let Some(why) = cancel.interrupted() {
        let dropped = drop_database(&mut conn, &work, major).await;
        let _ = conn.close().await;
        return Err(RestoreError::Interrupted(match dropped {
            Ok(()) => format!(
                "{why} after the restored copy was checked, before it was swapped in: the work database \
                 {work:?} was dropped; {untouched}"
            ),
            Err(d) => format!(
                "{why} before the swap: {untouched}; the work database {work:?} could not be dropped ({d}): \
                 the next restore onto this server removes it"
            ),
        }));
    }

    // The swap: from here on it completes, whatever is asked.
    let replaced = existing_owner.is_some();
    let work_oid = database_oid(&mut conn, &work).await?;
    let old = work_name(final_name, OLD, &token);
    let mut notes = pre.notes.clone();
    let swapped = async {
        let keep_comment = if replaced {
            database_comment(&mut conn, final_name).await?
        } else {
            None
        };
        let old_record = WorkRecord::new(restore_id, OLD, final_name, keep_comment.clone());
        let aside = replaced.then_some((old.as_str(), &old_record));
        swap_in(
            &mut conn,
            &admin,
            &token,
            &work,
            final_name,
            aside,
            keep_comment.as_deref(),
        )
        .await
    }
    .await;
    if let Err(e) = swapped {
        let dropped = drop_database(&mut conn, &work, major).await;
        let _ = conn.close().await;
        return Err(RestoreError::target(format!(
            "{e}: the restored, checked copy could not take the name {final_name:?}; {}{untouched}",
            match dropped {
                Ok(()) => "it was dropped and ".to_string(),
                Err(d) => format!(
                    "it could not be dropped either ({d}: the next restore onto this server removes it) and "
                ),
            }
        )));
    }
    // Durable (synchronous commit) and checked: the restored copy has the
    // name; only now is the replaced database dropped.
    let now_named = database_oid(&mut conn, final_name).await?;
    if now_named.is_none() || now_named != work_oid {
        let _ = conn.close().await;
        return Err(RestoreError::target(format!(
            "after the swap, {final_name:?} on {} is not the restored copy: nothing was dropped; the replaced \
             database is {old:?} (the next restore onto this server puts it back if {final_name:?} is missing)",
            server_of(target)
        )));
    }
    if replaced {
        if let Err(e) = drop_database(&mut conn, &old, major).await {
            notes.push(format!(
                "the replaced database, set aside as {old:?}, could not be dropped ({e}): the next restore onto \
                 this server removes it, or drop it by hand"
            ));
        }
    }
    let _ = conn.close().await;
    Ok(DatabaseRestored {
        backup_database: db_name.to_string(),
        target_database: final_name.to_string(),
        server: server_of(target),
        replaced,
        owner: owner.or_else(|| Some(target.user.clone())),
        pg_restore: version_line,
        dump_bytes,
        tables,
        mismatches: 0,
        cleaned_up,
        notes,
        duration_ms: started.elapsed().as_millis() as u64,
    })
}

/// `pg_restore --list` of the dump: reads the archive's header and table of
/// contents from the start of the stream, then stops reading.
async fn list_toc(
    store: &Store,
    item: &store_format::Item,
    tool: &RestoreTool,
    target: &PgTarget,
) -> Result<String> {
    let run = tool
        .run(
            "pg_restore",
            vec!["--list".into()],
            Some(target),
            Input::Item(Box::pin(reader::item_stream(store, item))),
        )
        .await?;
    if run.code != 0 {
        return Err(RestoreError::target(format!(
            "pg_restore --list could not read the dump: {}",
            run.error_text()
        )));
    }
    Ok(String::from_utf8_lossy(&run.stdout).into_owned())
}

/// The owners of a table of contents' entries, with how many each owns.
/// A TOC line reads `id; catalog oid DESC schema name owner` (the owner last,
/// `-` when none).
pub fn toc_owners(toc: &str) -> BTreeMap<String, usize> {
    let mut owners = BTreeMap::new();
    for line in toc.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.trim_start().starts_with(';') {
            continue;
        }
        let Some((_, rest)) = line.split_once(';') else {
            continue;
        };
        if rest.split_whitespace().count() < 4 {
            continue;
        }
        // pg_restore prints `… tag owner`; an entry without owner ends with
        // the separating space.
        let owner = rest.rsplit_once(' ').map(|(_, o)| o).unwrap_or("");
        if owner != "-" && !owner.is_empty() {
            *owners.entry(owner.to_string()).or_default() += 1;
        }
    }
    owners
}

/// Streams the dump into `pg_restore` connected to `target`'s database.
async fn run_pg_restore(
    store: &Store,
    item: &store_format::Item,
    tool: &RestoreTool,
    target: &PgTarget,
    opts: &DatabaseOptions,
    session: &str,
) -> Result<u64> {
    let mut args = vec![
        "--exit-on-error".to_string(),
        "--no-password".to_string(),
        format!("--dbname={}", target.database),
    ];
    if opts.no_owner {
        args.push("--no-owner".into());
        args.push("--no-privileges".into());
    }
    let run = tool
        .run_as(
            "pg_restore",
            args,
            Some(target),
            Input::Item(Box::pin(reader::item_stream(store, item))),
            Some(session),
        )
        .await?;
    if run.code != 0 {
        return Err(RestoreError::target(format!(
            "pg_restore ({}) failed: {}",
            tool.describe(),
            run.error_text()
        )));
    }
    if run.fed.bytes != item.size {
        return Err(RestoreError::target(format!(
            "pg_restore ({}) stopped reading the dump after {} of its {} bytes{}",
            tool.describe(),
            run.fed.bytes,
            item.size,
            if run.fed.cut_short {
                " without an error: the restored database may be incomplete"
            } else {
                ""
            }
        )));
    }
    Ok(run.fed.bytes)
}

/// Exact row counts of the manifest's tables in the restored database.
async fn count_tables(target: &PgTarget, db: &Database) -> Result<Vec<TableCheck>> {
    let mut conn = target.connect().await.map_err(source_err)?;
    let mut out = Vec::with_capacity(db.tables.len());
    for t in &db.tables {
        let exists: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p'))",
        )
        .bind(&t.schema)
        .bind(&t.name)
        .fetch_one(&mut conn)
        .await
        .map_err(sql_err("looking for a restored table"))?;
        let found: i64 = if exists {
            // Identifiers are quoted by quote_ident.
            let q = format!(
                "SELECT count(*) FROM ONLY {}.{}",
                quote_ident(&t.schema),
                quote_ident(&t.name)
            );
            sqlx::query_scalar(sqlx::AssertSqlSafe(q))
                .fetch_one(&mut conn)
                .await
                .map_err(sql_err(&format!(
                    "counting the rows of {}.{}",
                    t.schema, t.name
                )))?
        } else {
            0
        };
        out.push(TableCheck {
            table: format!("{}.{}", t.schema, t.name),
            expected: t.rows,
            found: found as u64,
            exists,
        });
    }
    let _ = conn.close().await;
    Ok(out)
}

/// Roles restored from a backup's globals.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct GlobalsRestored {
    /// Roles created (with their attributes, password hashes and memberships).
    pub created: Vec<String>,
    /// Roles the target already had: left exactly as they are.
    pub existing: Vec<String>,
    /// Statements left out (tablespaces: their directories belong to the old machine).
    pub left_out: usize,
}

/// Creates the roles of a `postgres_full` backup (its `pg_dumpall
/// --globals-only` item) that the target server lacks, with their attributes,
/// password hashes and memberships, through `psql`. Roles that exist are left
/// untouched (their passwords are never changed); tablespaces are left out.
/// For a fresh server, before [`restore_database`] with owners.
pub async fn restore_globals(
    store: &Store,
    backup: &ChosenBackup,
    target: &PgTarget,
    tool: &RestoreTool,
) -> Result<GlobalsRestored> {
    let contents = backup.manifest.contents.as_ref();
    let name = contents
        .and_then(|c| c.globals_item.as_ref())
        .ok_or_else(|| {
            RestoreError::NotFound(format!(
                "backup {} ({}) holds no roles (only postgres_full and full_system backups do)",
                backup.backup_id, backup.manifest.kind
            ))
        })?;
    let item = backup
        .manifest
        .items
        .iter()
        .find(|i| &i.name == name)
        .ok_or_else(|| {
            RestoreError::NotFound(format!(
                "backup {}: the roles item {name:?} is missing from the manifest",
                backup.backup_id
            ))
        })?;
    if item.size > 64 << 20 {
        return Err(RestoreError::Invalid(format!(
            "the roles item {name:?} has {} bytes: too large for a globals dump",
            item.size
        )));
    }
    let mut sql = Vec::with_capacity(item.size as usize);
    reader::write_item(store, item, &mut sql).await?;
    let sql = String::from_utf8(sql).map_err(|_| {
        RestoreError::Store(StoreError::Invalid(format!(
            "the roles item {name:?} is not UTF-8 text"
        )))
    })?;
    let admin = target.clone();
    let mut conn = admin.connect().await.map_err(source_err)?;
    let declared = globals_roles(&sql);
    let present = existing_roles(&mut conn, &declared).await?;
    let _ = conn.close().await;
    let (filtered, left_out) = filter_globals(&sql, &present);
    let created: Vec<String> = declared
        .iter()
        .filter(|r| !present.contains(*r))
        .cloned()
        .collect();
    if created.is_empty() {
        return Ok(GlobalsRestored {
            created,
            existing: present.into_iter().collect(),
            left_out,
        });
    }
    let run = tool
        .run(
            "psql",
            vec![
                "-X".into(),
                "-q".into(),
                "-v".into(),
                "ON_ERROR_STOP=1".into(),
                "--no-password".into(),
                "-d".into(),
                admin.database.clone(),
            ],
            Some(&admin),
            Input::Bytes(Bytes::from(filtered)),
        )
        .await?;
    if run.code != 0 {
        return Err(RestoreError::target(format!(
            "restoring the roles with psql ({}) failed: {}",
            tool.describe(),
            run.error_text()
        )));
    }
    Ok(GlobalsRestored {
        created,
        existing: present.into_iter().collect(),
        left_out,
    })
}

/// The role named by a `CREATE ROLE`/`ALTER ROLE` statement's start.
fn role_of(stmt: &str) -> Option<(String, &str)> {
    let s = stmt.trim_start();
    let rest = s
        .strip_prefix("CREATE ROLE ")
        .or_else(|| s.strip_prefix("ALTER ROLE "))?;
    parse_ident(rest)
}

/// An identifier at the start of `s` (quoted or not), and what follows.
fn parse_ident(s: &str) -> Option<(String, &str)> {
    if let Some(q) = s.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = q.char_indices();
        while let Some((i, c)) = chars.next() {
            if c == '"' {
                if q[i + 1..].starts_with('"') {
                    out.push('"');
                    chars.next();
                } else {
                    return Some((out, &q[i + 1..]));
                }
            } else {
                out.push(c);
            }
        }
        None
    } else {
        let end = s
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
            .unwrap_or(s.len());
        (end > 0).then(|| (s[..end].to_string(), &s[end..]))
    }
}

/// Every role a globals dump creates, in order.
fn globals_roles(sql: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in sql.lines() {
        if line.starts_with("CREATE ROLE ") {
            if let Some((r, _)) = role_of(line) {
                if !out.contains(&r) {
                    out.push(r);
                }
            }
        }
    }
    out
}

/// The globals dump without what concerns roles the target has (so an
/// existing role, e.g. the superuser, keeps its password and attributes) and
/// without tablespaces. Returns it and how many statements were left out.
fn filter_globals(sql: &str, present: &BTreeSet<String>) -> (String, usize) {
    let mut out = String::with_capacity(sql.len());
    let mut left_out = 0;
    for line in sql.lines() {
        let t = line.trim_start();
        let keep = if let Some((role, _)) = role_of(t) {
            !present.contains(&role)
        } else if t.starts_with("COMMENT ON ROLE ") || t.starts_with("SECURITY LABEL ") {
            t.strip_prefix("COMMENT ON ROLE ")
                .and_then(parse_ident)
                .map(|(r, _)| !present.contains(&r))
                .unwrap_or(false)
        } else if t.starts_with("GRANT ") {
            // `GRANT role TO member [WITH ADMIN OPTION] [GRANTED BY x];`:
            // memberships of new roles only.
            match t
                .split_once(" TO ")
                .and_then(|(_, m)| parse_ident(m.trim_start()))
            {
                Some((member, _)) => !present.contains(&member),
                None => false,
            }
        } else if t.starts_with("CREATE TABLESPACE ")
            || t.starts_with("ALTER TABLESPACE ")
            || t.starts_with("COMMENT ON TABLESPACE ")
        {
            false
        } else {
            // SET lines, comments, blank lines.
            t.is_empty() || t.starts_with("--") || t.starts_with("SET ") || t.starts_with("\\")
        };
        if keep {
            out.push_str(line);
            out.push('\n');
        } else if !t.is_empty() && !t.starts_with("--") {
            left_out += 1;
        }
    }
    (out, left_out)
}

// ---- running the tools ----

const OUTPUT_LIMIT: usize = 16 << 20;
const ERROR_LIMIT: usize = 64 << 10;

/// What a tool reads on its standard input.
enum Input {
    None,
    Bytes(Bytes),
    /// A store item, chunk by chunk (each chunk verified as it is read).
    Item(Pin<Box<dyn Stream<Item = std::result::Result<Bytes, StoreError>> + Send>>),
}

/// How much of the input went in.
#[derive(Debug, Default, Clone, Copy)]
struct Fed {
    bytes: u64,
    /// The tool closed its input before the end (it exited, or needed no more).
    cut_short: bool,
}

struct ToolRun {
    tool: String,
    code: i32,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    fed: Fed,
}

impl ToolRun {
    /// The tool's own message (first lines of stderr), or its exit status.
    fn error_text(&self) -> String {
        let msg = String::from_utf8_lossy(&self.stderr);
        let lines: Vec<&str> = msg
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .take(6)
            .collect();
        if lines.is_empty() {
            format!(
                "{} exited with status {} and printed nothing",
                self.tool, self.code
            )
        } else {
            format!("{} (exit status {})", lines.join(" / "), self.code)
        }
    }
}

fn collect(
    mut r: impl AsyncRead + Unpin + Send + 'static,
    limit: usize,
) -> tokio::task::JoinHandle<Vec<u8>> {
    tokio::spawn(async move {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if out.len() < limit {
                        let take = n.min(limit - out.len());
                        out.extend_from_slice(&buf[..take]);
                    }
                }
            }
        }
        out
    })
}

fn is_closed_pipe(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::BrokenPipe
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::NotConnected
    )
}

/// Writes `input` to `w` as it comes (one chunk in memory at a time), then
/// closes it; counts what went in into `bytes`. A tool that stops reading
/// ends the feeding (not an error here: its exit status tells; the result is
/// then true, "cut short"); a store error is an error.
async fn feed(
    mut w: impl AsyncWrite + Unpin,
    input: Input,
    bytes: &std::sync::atomic::AtomicU64,
) -> Result<bool> {
    use std::sync::atomic::Ordering;
    let mut cut_short = false;
    match input {
        Input::None => {}
        Input::Bytes(b) => match w.write_all(&b).await {
            Ok(()) => {
                bytes.fetch_add(b.len() as u64, Ordering::Relaxed);
            }
            Err(e) if is_closed_pipe(&e) => cut_short = true,
            Err(e) => return Err(RestoreError::target(format!("writing to the tool: {e}"))),
        },
        Input::Item(mut s) => {
            while let Some(chunk) = s.next().await {
                let chunk = chunk?;
                match w.write_all(&chunk).await {
                    Ok(()) => {
                        bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                    }
                    Err(e) if is_closed_pipe(&e) => {
                        cut_short = true;
                        break;
                    }
                    Err(e) => {
                        return Err(RestoreError::target(format!("writing to the tool: {e}")))
                    }
                }
            }
        }
    }
    let _ = w.shutdown().await;
    drop(w);
    Ok(cut_short)
}

fn docker_error(container: &str, e: bollard::errors::Error) -> RestoreError {
    exec_failure(crate::docker_exec::exec_error(container, &e))
}

fn exec_failure(e: crate::docker_exec::ExecError) -> RestoreError {
    RestoreError::Target {
        message: e.message,
        retryable: e.retryable,
    }
}

/// Kills a `docker exec`'d tool that is still running when its run is given
/// up (dropped: an interruption): by its process id on this host, after
/// checking that the process there is that tool. Where that cannot be done
/// (another PID namespace, no permission), the tool still ends when its
/// standard input closes, and its sessions when its work database is dropped.
struct ExecGuard {
    docker: bollard::Docker,
    id: String,
    tool: String,
    armed: bool,
}

impl Drop for ExecGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (d, id, tool) = (self.docker.clone(), self.id.clone(), self.tool.clone());
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        rt.spawn(async move {
            let Ok(info) = d.inspect_exec(&id).await else {
                return;
            };
            let Some(pid) = info.pid.filter(|p| *p > 0 && *p <= i32::MAX as i64) else {
                return;
            };
            if info.running != Some(true) {
                return;
            }
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let program = cmdline.split(|b| *b == 0).next().unwrap_or_default();
            let base = program.rsplit(|b| *b == b'/').next().unwrap_or_default();
            if base == tool.as_bytes() {
                // SAFETY: kill(2) on the process just checked to be our tool.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
        });
    }
}

/// Runs `cmd` in `container` through `docker exec`, standard input attached.
async fn docker_run(
    container: &str,
    tool: &str,
    cmd: Vec<String>,
    env: Vec<String>,
    input: Input,
) -> Result<ToolRun> {
    use bollard::container::LogOutput;
    let d = crate::docker_exec::connect().map_err(RestoreError::target)?;
    let with_input = !matches!(input, Input::None);
    let crate::docker_exec::Attached {
        id,
        mut output,
        input: stdin,
    } = crate::docker_exec::start(&d, container, cmd, env, with_input)
        .await
        .map_err(exec_failure)?;
    let mut guard = ExecGuard {
        docker: d.clone(),
        id: id.clone(),
        tool: tool.to_string(),
        armed: true,
    };
    let name = container.to_string();
    let reading = tokio::spawn(async move {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        while let Some(item) = output.next().await {
            match item {
                Ok(LogOutput::StdOut { message }) => {
                    if out.len() < OUTPUT_LIMIT {
                        out.extend_from_slice(&message);
                    }
                }
                Ok(LogOutput::StdErr { message }) => {
                    if err.len() < ERROR_LIMIT {
                        err.extend_from_slice(&message);
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    err.extend_from_slice(format!("docker exec in {name:?}: {e}").as_bytes());
                    break;
                }
            }
        }
        (out, err)
    });
    // The exec's standard input stays open after the tool exits (Docker
    // keeps reading it), so a tool that stops reading early (pg_restore
    // --list) shows as its output ending: then the feeding stops.
    let bytes = std::sync::atomic::AtomicU64::new(0);
    let feeding = feed(stdin, input, &bytes);
    futures::pin_mut!(feeding);
    let mut reading = reading;
    let (cut_short, outputs) = tokio::select! {
        fed = &mut feeding => (fed?, reading.await),
        outputs = &mut reading => (true, outputs),
    };
    let (stdout, stderr) = outputs.unwrap_or_default();
    let fed = Fed {
        bytes: bytes.load(std::sync::atomic::Ordering::Relaxed),
        cut_short,
    };
    let mut code = -1;
    for _ in 0..200 {
        let info = d
            .inspect_exec(&id)
            .await
            .map_err(|e| docker_error(container, e))?;
        if info.running != Some(true) {
            code = info.exit_code.unwrap_or(-1) as i32;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    guard.armed = code == -1;
    Ok(ToolRun {
        tool: tool.to_string(),
        code,
        stdout,
        stderr,
        fed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toc_owners_are_the_last_field() {
        let toc = "; Archive created at 2026-01-01\n;     dbname: n8n\n\
            2; 3079 16385 EXTENSION - uuid-ossp \n\
            3947; 0 0 COMMENT - EXTENSION \"uuid-ossp\" \n\
            215; 1259 16390 TABLE public workflow_entity n8n\n\
            216; 1259 16391 TABLE public user n8n\n\
            3400; 0 16390 TABLE DATA public workflow_entity n8n\n\
            3500; 2606 16400 CONSTRAINT public user PK_user admin\n\
            4000; 0 0 ACL - SCHEMA public pg_database_owner\n";
        let o = toc_owners(toc);
        assert_eq!(o.get("n8n"), Some(&3));
        assert_eq!(o.get("admin"), Some(&1));
        assert_eq!(o.get("pg_database_owner"), Some(&1));
        assert_eq!(o.len(), 3, "{o:?}");
    }

    #[test]
    fn globals_keep_existing_roles_untouched() {
        let sql = "--\n-- Roles\n--\n\nSET default_transaction_read_only = off;\n\
            CREATE ROLE n8n;\nALTER ROLE n8n WITH NOSUPERUSER LOGIN PASSWORD 'SCRAM-SHA-256$x';\n\
            CREATE ROLE postgres;\nALTER ROLE postgres WITH SUPERUSER LOGIN;\n\
            CREATE ROLE \"odd \"\"name\";\nCOMMENT ON ROLE \"odd \"\"name\" IS 'x';\n\
            GRANT n8n TO \"odd \"\"name\" GRANTED BY postgres;\nGRANT n8n TO postgres;\n\
            CREATE TABLESPACE fast OWNER postgres LOCATION '/ssd';\n";
        assert_eq!(
            globals_roles(sql),
            vec!["n8n".to_string(), "postgres".into(), "odd \"name".into()]
        );
        let present: BTreeSet<String> = ["postgres".to_string()].into();
        let (out, left_out) = filter_globals(sql, &present);
        assert!(out.contains("CREATE ROLE n8n;") && out.contains("PASSWORD 'SCRAM"));
        assert!(out.contains("CREATE ROLE \"odd \"\"name\";"));
        assert!(out.contains("GRANT n8n TO \"odd \"\"name\""));
        assert!(!out.contains("ROLE postgres") && !out.contains("TO postgres"));
        assert!(!out.contains("TABLESPACE"));
        assert_eq!(left_out, 4);
    }

    #[test]
    fn names() {
        assert_eq!(
            suggested_name("n8n", 1_767_225_600_000),
            "n8n_restored_20260101"
        );
        assert!(suggested_name(&"x".repeat(80), 0).len() <= 63);
        assert!(check_database_name("").is_err());
        assert!(check_database_name(&"é".repeat(40)).is_err());
        assert!(check_database_name("n8n_restored").is_ok());
        let t = PgTarget::parse("postgres://u@h/n8n", None).unwrap();
        assert_eq!(admin_target(&t, &["n8n"]).database, "postgres");
        assert_eq!(admin_target(&t, &["other"]).database, "n8n");
        let p = PgTarget::parse("postgres://u@h/postgres", None).unwrap();
        assert_eq!(admin_target(&p, &["postgres"]).database, "template1");
    }

    #[test]
    fn work_databases_are_named_and_recorded_recognisably() {
        let w = work_name("n8n", NEW, "0a1b2c3d");
        assert_eq!(w, "n8n_ark_new_0a1b2c3d");
        assert_eq!(parse_work_name(&w), Some((NEW, "0a1b2c3d".to_string())));
        let long = work_name(&"é".repeat(40), OLD, "ffffffff");
        assert!(
            long.len() <= 63 && long.ends_with("_ark_old_ffffffff"),
            "{long}"
        );
        assert_eq!(parse_work_name(&long).map(|p| p.0), Some(OLD));
        assert_eq!(parse_work_name("n8n_ark_0a1b2c3d"), None, "an older naming");
        assert_eq!(parse_work_name("n8n_ark_new_xyz12345"), None);
        assert_eq!(parse_work_name("n8n"), None);
        let r = WorkRecord::new("R1", NEW, "it's \\ n8n", Some("a 'comment'".into()));
        let back = WorkRecord::parse(&r.comment()).unwrap();
        assert_eq!(
            (back.restore.as_str(), back.final_name.as_str(), back.pid),
            ("R1", "it's \\ n8n", std::process::id())
        );
        assert_eq!(back.comment.as_deref(), Some("a 'comment'"));
        assert!(WorkRecord::parse("someone's own comment").is_none());
        assert_eq!(sql_literal("it's"), "'it''s'");
        assert_eq!(sql_literal("a\\b'"), "E'a\\\\b'''");
    }
}
