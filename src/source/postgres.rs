//! PostgreSQL: one consistent moment per database.
//!
//! A backup of a database opens a `REPEATABLE READ, READ ONLY` transaction,
//! exports its snapshot (`pg_export_snapshot()`), describes the database inside
//! it (tables, columns, exact row counts, the n8n migration head, workflows,
//! credential names), and runs `pg_dump --snapshot=…` on that snapshot while
//! the transaction stays open. Description and dump therefore show the same
//! instant, and a verification may demand exact equality.
//!
//! `pg_dump` runs either as a local binary (refused when its major version is
//! older than the server's) or inside the running PostgreSQL container through
//! `docker exec` (bollard), so that the dump tool always matches the server.
//! Its output is a pipe that the caller streams into the store: the dump is
//! never staged on disk or in memory.
//!
//! Secrets: the password never appears on a command line (it is passed to
//! `pg_dump` in its environment) and never in a message or a log line.
use super::{Result, SourceError};
use futures::{Stream, StreamExt, TryStreamExt};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection, Row};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::str::FromStr;
use store_format::contents::{Column, Credential, Database, Table};
use tokio::io::AsyncRead;
use zeroize::Zeroizing;

/// A PostgreSQL database to read: where, as whom, and the password (kept out of
/// the URL, of logs and of command lines).
#[derive(Clone)]
pub struct PgTarget {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub database: String,
    pub password: Option<Zeroizing<String>>,
    /// Query parameters of the URL that libpq understands (e.g. sslmode).
    pub sslmode: Option<String>,
    /// Where an operator sets this server's password, for a refused login
    /// (None: the n8n database's settings).
    pub password_setting: Option<&'static str>,
}

impl std::fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PgTarget({})", self.display())
    }
}

impl PgTarget {
    /// Parses `postgres://user[:password]@host[:port]/database[?sslmode=…]`.
    /// The host may be a unix socket directory, percent-encoded as libpq
    /// allows (`postgres://postgres@%2Fvar%2Frun%2Fpostgresql:5432/n8n`):
    /// for a server on this machine, cheaper than TCP for a large dump.
    /// A password in the URL is accepted (from a file or the environment) and
    /// overridden by `password` when that is given.
    pub fn parse(url: &str, password: Option<Zeroizing<String>>) -> Result<PgTarget> {
        let u = url::Url::parse(url).map_err(|e| {
            SourceError::Invalid(format!(
                "not a PostgreSQL URL ({e}): expected postgres://user@host:port/database"
            ))
        })?;
        if u.scheme() != "postgres" && u.scheme() != "postgresql" {
            return Err(SourceError::Invalid(format!(
                "not a PostgreSQL URL (scheme {:?}): expected postgres://user@host:port/database",
                u.scheme()
            )));
        }
        let host = percent_decode(u.host_str().unwrap_or("localhost"));
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .map(str::to_string)
            .unwrap_or(host);
        let user = match u.username() {
            "" => "postgres".to_string(),
            s => percent_decode(s),
        };
        let database = match u.path().trim_start_matches('/') {
            "" => user.clone(),
            s => percent_decode(s),
        };
        let in_url = u.password().map(|p| Zeroizing::new(percent_decode(p)));
        let sslmode = u
            .query_pairs()
            .find(|(k, _)| k == "sslmode")
            .map(|(_, v)| v.to_string());
        Ok(PgTarget {
            host,
            port: u.port().unwrap_or(5432),
            user,
            database,
            password: password.or(in_url),
            sslmode,
            password_setting: None,
        })
    }

    /// The same target, its password set where `setting` says (for the
    /// message of a refused login).
    pub fn with_password_setting(mut self, setting: &'static str) -> PgTarget {
        self.password_setting = Some(setting);
        self
    }

    /// The same server, another database.
    pub fn with_database(&self, database: &str) -> PgTarget {
        PgTarget {
            database: database.to_string(),
            ..self.clone()
        }
    }

    /// For messages: `user@host:port/database` (never the password).
    pub fn display(&self) -> String {
        format!(
            "{}@{}:{}/{}",
            self.user, self.host, self.port, self.database
        )
    }

    fn connect_options(&self) -> PgConnectOptions {
        let mut o = PgConnectOptions::new_without_pgpass();
        o = if self.host.starts_with('/') {
            o.socket(&self.host)
        } else {
            o.host(&self.host)
        };
        let mut o = o
            .port(self.port)
            .username(&self.user)
            .database(&self.database)
            .application_name("n8n-ark")
            .disable_statement_logging();
        if let Some(p) = &self.password {
            o = o.password(p);
        }
        if let Some(m) = &self.sslmode {
            if let Ok(mode) = sqlx::postgres::PgSslMode::from_str(m) {
                o = o.ssl_mode(mode);
            }
        }
        o
    }

    /// libpq environment for `pg_dump` (the password goes here, not in argv).
    pub fn libpq_env(&self, host_override: Option<(&str, u16)>) -> Vec<(String, String)> {
        let (host, port) = match host_override {
            Some((h, p)) => (h.to_string(), p),
            None => (self.host.clone(), self.port),
        };
        let mut env = vec![
            ("PGHOST".to_string(), host),
            ("PGPORT".to_string(), port.to_string()),
            ("PGUSER".to_string(), self.user.clone()),
            ("PGDATABASE".to_string(), self.database.clone()),
            ("PGAPPNAME".to_string(), "n8n-ark".to_string()),
            ("PGCONNECT_TIMEOUT".to_string(), "10".to_string()),
        ];
        if let Some(p) = &self.password {
            env.push(("PGPASSWORD".to_string(), p.to_string()));
        }
        if let Some(m) = &self.sslmode {
            env.push(("PGSSLMODE".to_string(), m.clone()));
        }
        env
    }

    /// Connects, with errors an operator can act on.
    pub async fn connect(&self) -> Result<PgConnection> {
        let conn = tokio::time::timeout(
            std::time::Duration::from_secs(20),
            self.connect_options().connect(),
        )
        .await
        .map_err(|_| {
            SourceError::Connect(format!(
                "PostgreSQL at {}:{} did not answer within 20 s",
                self.host, self.port
            ))
        })?
        .map_err(|e| self.connect_error(e))?;
        Ok(conn)
    }

    fn connect_error(&self, e: sqlx::Error) -> SourceError {
        let at = format!("PostgreSQL at {}:{}", self.host, self.port);
        match &e {
            sqlx::Error::Database(d) => match d.code().as_deref() {
                Some("28P01") | Some("28000") => SourceError::Connect(format!(
                    "{at} refused the login of user {:?} ({}): check the password ({})",
                    self.user,
                    d.message(),
                    self.password_setting.unwrap_or(
                        "ARK_N8N_DB_PASSWORD / ARK_N8N_DB_PASSWORD_FILE, or the password file in the config"
                    )
                )),
                Some("3D000") => SourceError::Connect(format!(
                    "{at} has no database {:?}",
                    self.database
                )),
                _ => SourceError::Connect(format!("{at}: {}", d.message())),
            },
            sqlx::Error::Io(io) => SourceError::Connect(format!(
                "cannot reach {at}: {io} (is the server running, and the host and port right?)"
            )),
            sqlx::Error::Tls(t) => SourceError::Connect(format!("{at}: TLS failed: {t}")),
            other => SourceError::Connect(format!("{at}: {other}")),
        }
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_string())
}

fn db_err(what: &str) -> impl Fn(sqlx::Error) -> SourceError + '_ {
    move |e| match e {
        sqlx::Error::Database(d) => SourceError::Database(format!("{what}: {}", d.message())),
        sqlx::Error::Io(io) => SourceError::Connect(format!("{what}: the connection broke: {io}")),
        other => SourceError::Database(format!("{what}: {other}")),
    }
}

/// The databases of a server that can be dumped (not templates, connections allowed).
pub async fn list_databases(server: &PgTarget) -> Result<Vec<String>> {
    let mut conn = server.connect().await?;
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT datname::text FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname",
    )
    .fetch_all(&mut conn)
    .await
    .map_err(db_err("listing the databases"))?;
    let _ = conn.close().await;
    Ok(names)
}

/// An open `REPEATABLE READ` transaction whose snapshot was exported: every
/// read through it, and a `pg_dump --snapshot` of it, see the same instant.
pub struct Snapshot {
    conn: PgConnection,
    pub id: String,
    pub server_version: String,
    pub server_version_num: u32,
    pub target: PgTarget,
}

impl Snapshot {
    pub async fn open(target: &PgTarget) -> Result<Snapshot> {
        let mut conn = target.connect().await?;
        let (server_version, num): (String, String) = sqlx::query_as(
            "SELECT current_setting('server_version'), current_setting('server_version_num')",
        )
        .fetch_one(&mut conn)
        .await
        .map_err(db_err("reading the server version"))?;
        sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut conn)
            .await
            .map_err(db_err("opening a REPEATABLE READ transaction"))?;
        sqlx::query("SET LOCAL TimeZone = 'UTC'")
            .execute(&mut conn)
            .await
            .map_err(db_err("setting the time zone"))?;
        let id: String = sqlx::query_scalar("SELECT pg_export_snapshot()")
            .fetch_one(&mut conn)
            .await
            .map_err(db_err("exporting the snapshot"))?;
        Ok(Snapshot {
            conn,
            id,
            server_version,
            server_version_num: num.parse().unwrap_or(0),
            target: target.clone(),
        })
    }

    pub fn server_major(&self) -> u32 {
        self.server_version_num / 10000
    }

    /// Tables (ordinary and partitioned, outside the system schemas) with
    /// their columns and exact row counts, and the n8n migration head.
    /// Without `count_rows`, row counts are left at 0 (for a flows backup,
    /// which only needs to know which tables exist).
    pub async fn describe(&mut self, count_rows: bool) -> Result<(Vec<Table>, Option<String>)> {
        let rels: Vec<(i64, String, String)> = sqlx::query_as(
            "SELECT c.oid::int8, n.nspname::text, c.relname::text
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE c.relkind IN ('r', 'p')
                AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
              ORDER BY n.nspname, c.relname",
        )
        .fetch_all(&mut self.conn)
        .await
        .map_err(db_err("listing the tables"))?;
        let mut tables = Vec::with_capacity(rels.len());
        for (oid, schema, name) in rels {
            let cols: Vec<(String, String, bool)> = sqlx::query_as(
                "SELECT attname::text, format_type(atttypid, atttypmod), NOT attnotnull
                   FROM pg_attribute WHERE attrelid = $1::int8::oid AND attnum > 0 AND NOT attisdropped
                  ORDER BY attnum",
            )
            .bind(oid)
            .fetch_all(&mut self.conn)
            .await
            .map_err(db_err("reading the columns"))?;
            let q = format!(
                "SELECT count(*) FROM ONLY {}.{}",
                quote_ident(&schema),
                quote_ident(&name)
            );
            // Identifiers are quoted by quote_ident.
            let rows: i64 = if count_rows {
                sqlx::query_scalar(sqlx::AssertSqlSafe(q))
                    .fetch_one(&mut self.conn)
                    .await
                    .map_err(db_err(&format!("counting the rows of {schema}.{name}")))?
            } else {
                0
            };
            tables.push(Table {
                schema,
                name,
                rows: rows as u64,
                columns: cols
                    .into_iter()
                    .map(|(name, data_type, nullable)| Column {
                        name,
                        data_type,
                        nullable,
                    })
                    .collect(),
            });
        }
        let has = |t: &str, cols: &[&str]| {
            tables.iter().any(|x| {
                x.schema == "public"
                    && x.name == t
                    && cols.iter().all(|c| x.columns.iter().any(|y| y.name == *c))
            })
        };
        let head = if has("migrations", &["timestamp", "name"]) {
            sqlx::query_scalar::<_, String>(
                "SELECT name::text FROM public.migrations ORDER BY \"timestamp\" DESC, id DESC LIMIT 1",
            )
            .fetch_optional(&mut self.conn)
            .await
            .map_err(db_err("reading the n8n migration head"))?
        } else {
            None
        };
        Ok((tables, head))
    }

    /// n8n's workflows, one row at a time: `row_to_json` of each
    /// `workflow_entity` row (timestamps in UTC) as text, its tags as (id,
    /// name), and its `id` and `name` read beside it (to name a row whose
    /// JSON cannot be read). Empty when the database has no
    /// `workflow_entity`. A row is never parsed here: a row no reader can
    /// take does not end the stream (see
    /// [`crate::source::workflow::canonical_from_row_text`]).
    pub fn workflow_rows<'a>(
        &'a mut self,
        tables: &[Table],
    ) -> Pin<Box<dyn Stream<Item = Result<WorkflowRow>> + Send + 'a>> {
        let has = |t: &str| tables.iter().any(|x| x.schema == "public" && x.name == t);
        if !has("workflow_entity") {
            return Box::pin(futures::stream::empty());
        }
        let tags = if has("workflows_tags") && has("tag_entity") {
            "coalesce((SELECT json_agg(json_build_array(t.id, t.name) ORDER BY t.name, t.id)
                          FROM public.workflows_tags wt JOIN public.tag_entity t ON t.id = wt.\"tagId\"
                         WHERE wt.\"workflowId\" = w.id), '[]'::json)::text"
        } else {
            "'[]'"
        };
        let q = format!(
            "SELECT row_to_json(w)::text, {tags}, w.id::text, w.name::text \
             FROM public.workflow_entity w ORDER BY w.id"
        );
        let timestamp_columns: Vec<String> = tables
            .iter()
            .find(|t| t.schema == "public" && t.name == "workflow_entity")
            .map(|t| {
                t.columns
                    .iter()
                    .filter(|c| c.data_type.starts_with("timestamp"))
                    .map(|c| c.name.clone())
                    .collect()
            })
            .unwrap_or_default();
        let stream = async_stream_rows(&mut self.conn, q).map(move |r| {
            let (row, tags, id, name) = r?;
            Ok(WorkflowRow {
                row,
                tags: parse_tags(&tags),
                id: id.unwrap_or_default(),
                name: name.unwrap_or_default(),
                timestamp_columns: timestamp_columns.clone(),
            })
        });
        Box::pin(stream)
    }

    /// Every credential's id, name and type (never `data`).
    pub async fn credentials(&mut self, tables: &[Table]) -> Result<Vec<Credential>> {
        if !tables
            .iter()
            .any(|t| t.schema == "public" && t.name == "credentials_entity")
        {
            return Ok(vec![]);
        }
        /// id, name, type, createdAt, updatedAt.
        type CredentialRow = (String, String, String, Option<String>, Option<String>);
        let rows: Vec<CredentialRow> = sqlx::query_as(
            "SELECT id::text, name::text, type::text,
                    to_char(\"createdAt\" AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),
                    to_char(\"updatedAt\" AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')
               FROM public.credentials_entity ORDER BY id",
        )
        .fetch_all(&mut self.conn)
        .await
        .map_err(db_err("reading the credentials' names"))?;
        Ok(rows
            .into_iter()
            .map(
                |(id, name, credential_type, created_at, updated_at)| Credential {
                    id,
                    name,
                    credential_type,
                    created_at,
                    updated_at,
                },
            )
            .collect())
    }

    /// Ends the transaction (after the dump is done with the snapshot).
    pub async fn close(mut self) {
        let _ = sqlx::query("COMMIT").execute(&mut self.conn).await;
        let _ = self.conn.close().await;
    }

    /// A description of this database for the manifest.
    pub fn database_entry(
        &self,
        dump: &DumpInfo,
        dump_item: &str,
        is_n8n: bool,
        tables: Vec<Table>,
        migration_head: Option<String>,
    ) -> Database {
        Database {
            name: self.target.database.clone(),
            server_version: self.server_version.clone(),
            server_version_num: self.server_version_num,
            pg_dump_version: dump.version_line.clone(),
            pg_dump_runner: dump.runner.clone(),
            dump_item: dump_item.to_string(),
            dump_format: "custom".into(),
            snapshot: self.id.clone(),
            is_n8n,
            migration_head,
            tables,
        }
    }
}

/// Rows of the workflow query as a stream, on a connection borrowed for the
/// stream's life.
fn async_stream_rows<'a>(
    conn: &'a mut PgConnection,
    q: String,
) -> impl Stream<Item = Result<RawWorkflowRow>> + Send + 'a {
    futures::stream::once(async move {
        let s = sqlx::raw_sql(sqlx::AssertSqlSafe(q))
            .fetch(conn)
            .map_err(db_err("reading the workflows"))
            .map(|r| {
                r.and_then(|row| {
                    let get = |i: usize| -> Result<Option<String>> {
                        row.try_get(i).map_err(db_err("reading a workflow"))
                    };
                    Ok((
                        get(0)?.unwrap_or_default(),
                        get(1)?.unwrap_or_default(),
                        get(2)?,
                        get(3)?,
                    ))
                })
            });
        s
    })
    .flatten()
}

/// `row_to_json` text, tags text, id, name.
type RawWorkflowRow = (String, String, Option<String>, Option<String>);

/// The tags of a workflow as `json_agg` gives them: `[[id, name], ...]`.
pub fn parse_tags(text: &str) -> std::result::Result<Vec<(String, String)>, String> {
    serde_json::from_str(text).map_err(|e| format!("{e}"))
}

/// One row of `workflow_entity` as a backup (and a verification) reads it.
pub struct WorkflowRow {
    /// `row_to_json` of the row, as PostgreSQL printed it.
    pub row: String,
    /// The workflow's tags as (id, name), or why they do not read.
    pub tags: std::result::Result<Vec<(String, String)>, String>,
    /// `id` and `name` as text (empty when NULL).
    pub id: String,
    pub name: String,
    pub timestamp_columns: Vec<String>,
}

impl WorkflowRow {
    /// Its canonical workflow, or what the manifest records instead.
    pub fn canonical(
        &self,
    ) -> std::result::Result<
        crate::source::workflow::CanonicalWorkflow,
        store_format::contents::WorkflowNotStored,
    > {
        crate::source::workflow::canonical_from_row_text(
            &self.row,
            self.tags.clone(),
            &self.id,
            &self.name,
            &self.timestamp_columns,
        )
    }
}

pub use crate::text::quote_ident;

/// How `pg_dump` and `pg_dumpall` run.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DumpRunner {
    /// Local binaries.
    Local { pg_dump: PathBuf },
    /// Inside the running PostgreSQL container, through `docker exec`;
    /// connecting to the server by its socket directory (or host) and port as
    /// seen inside the container.
    Docker {
        container: String,
        host: String,
        port: u16,
    },
}

/// A PostgreSQL client tool of the newest version Debian installed
/// (`/usr/lib/postgresql/<major>/bin/<tool>`), else `<tool>` on the PATH.
pub fn newest_pg_tool(tool: &str) -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let p = e.path().join("bin").join(tool);
            p.exists().then_some((v, p))
        })
        .collect();
    found.sort();
    found
        .pop()
        .map(|(_, p)| p)
        .unwrap_or_else(|| PathBuf::from(tool))
}

/// The program to run for `tool` when the operator configured `configured`
/// (named `configured_as`: pg_dump or pg_restore): that path itself, else the
/// tool of that name in the same directory (one installation's tools belong
/// together), else `tool` on the PATH.
pub fn tool_beside(configured: &Path, configured_as: &str, tool: &str) -> String {
    if tool == configured_as {
        return configured.display().to_string();
    }
    match configured.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(tool).display().to_string(),
        _ => tool.to_string(),
    }
}

impl DumpRunner {
    /// The local `pg_dump`: `ARK_PG_DUMP`/`--pg-dump`, else the newest
    /// `/usr/lib/postgresql/*/bin/pg_dump`, else `pg_dump` on the PATH.
    pub fn local_default() -> DumpRunner {
        DumpRunner::Local {
            pg_dump: newest_pg_tool("pg_dump"),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            DumpRunner::Local { pg_dump } => format!("local:{}", pg_dump.display()),
            DumpRunner::Docker { container, .. } => format!("docker:{container}"),
        }
    }

    /// The program to run for `tool`: the configured `pg_dump` itself, its
    /// siblings (`pg_dumpall`) from the same directory; in a container, by name.
    fn tool_path(&self, tool: &str) -> String {
        match self {
            DumpRunner::Local { pg_dump } => tool_beside(pg_dump, "pg_dump", tool),
            DumpRunner::Docker { .. } => tool.to_string(),
        }
    }

    /// Runs `pg_dump --version` (or a sibling tool) and checks its major
    /// version is not older than the server's.
    pub async fn check_version(&self, tool: &str, server_major: u32) -> Result<String> {
        let line = match self {
            DumpRunner::Local { .. } => {
                let path = self.tool_path(tool);
                let out = tokio::process::Command::new(&path)
                    .arg("--version")
                    .stdin(std::process::Stdio::null())
                    .output()
                    .await
                    .map_err(|e| {
                        SourceError::Dump(if e.kind() == std::io::ErrorKind::NotFound {
                            format!(
                                "{tool} not found at {path}: install the PostgreSQL client tools \
                                 (version {server_major} or newer), point --pg-dump/ARK_PG_DUMP at pg_dump, \
                                 or run it inside the database container with --pg-container"
                            )
                        } else {
                            format!("cannot run {path}: {e}")
                        })
                    })?;
                if !out.status.success() {
                    return Err(SourceError::Dump(format!(
                        "{path} --version failed: {}",
                        String::from_utf8_lossy(&out.stderr).trim()
                    )));
                }
                String::from_utf8_lossy(&out.stdout).trim().to_string()
            }
            DumpRunner::Docker { container, .. } => {
                let (out, code) =
                    docker_exec_collect(container, vec![tool.into(), "--version".into()], vec![])
                        .await?;
                if code != 0 {
                    return Err(SourceError::Dump(format!(
                        "{tool} --version in container {container} exited with {code}: {}",
                        String::from_utf8_lossy(&out).trim()
                    )));
                }
                String::from_utf8_lossy(&out).trim().to_string()
            }
        };
        let major = parse_major(&line).ok_or_else(|| {
            SourceError::Dump(format!(
                "cannot tell the version of {tool} from {line:?} ({})",
                self.describe()
            ))
        })?;
        if major < server_major {
            return Err(SourceError::Dump(format!(
                "{tool} ({}) is version {major}, older than the server (version {server_major}): it cannot \
                 dump this server. Install PostgreSQL {server_major} client tools and point \
                 --pg-dump/ARK_PG_DUMP at them, or run it inside the database container with --pg-container",
                self.describe()
            )));
        }
        Ok(line)
    }

    /// Starts `pg_dump -Fc -Z0 --snapshot=…` of `target`'s database.
    pub async fn start_dump(&self, target: &PgTarget, snapshot: &str) -> Result<DumpProcess> {
        let args = vec![
            "--format=custom".to_string(),
            "--compress=0".to_string(),
            format!("--snapshot={snapshot}"),
            "--no-password".to_string(),
        ];
        self.start("pg_dump", args, target).await
    }

    /// Runs `pg_dumpall --globals-only` (roles, their grants and memberships,
    /// tablespaces) and returns its output. Falls back to
    /// `--no-role-passwords` when the user may not read role passwords.
    pub async fn dump_globals(&self, target: &PgTarget) -> Result<(Vec<u8>, bool)> {
        let base = vec!["--globals-only".to_string(), "--no-password".to_string()];
        let first = self.collect("pg_dumpall", base.clone(), target).await;
        match first {
            Ok(out) => Ok((out, false)),
            Err(SourceError::Dump(m)) if m.contains("permission denied") => {
                tracing::warn!(
                    "pg_dumpall may not read role passwords as {}: dumping roles without passwords",
                    target.user
                );
                let mut args = base;
                args.push("--no-role-passwords".into());
                Ok((self.collect("pg_dumpall", args, target).await?, true))
            }
            Err(e) => Err(e),
        }
    }

    async fn collect(&self, tool: &str, args: Vec<String>, target: &PgTarget) -> Result<Vec<u8>> {
        let mut p = self.start(tool, args, target).await?;
        let mut out = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut p.stdout, &mut out)
            .await
            .map_err(|e| SourceError::Dump(format!("reading the output of {tool}: {e}")))?;
        p.wait().await?;
        Ok(out)
    }

    async fn start(
        &self,
        tool: &str,
        mut args: Vec<String>,
        target: &PgTarget,
    ) -> Result<DumpProcess> {
        match self {
            DumpRunner::Local { .. } => {
                let path = self.tool_path(tool);
                if tool == "pg_dumpall" {
                    args.push(format!("--database={}", target.database));
                } else {
                    args.push(target.database.clone());
                }
                let mut cmd = tokio::process::Command::new(&path);
                cmd.args(&args)
                    .env_clear()
                    .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                    .env("LC_ALL", "C")
                    .envs(target.libpq_env(None))
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .kill_on_drop(true);
                crate::child_process::die_with_parent(&mut cmd);
                let mut child = cmd.spawn().map_err(|e| {
                    SourceError::Dump(if e.kind() == std::io::ErrorKind::NotFound {
                        format!("{tool} not found at {path}")
                    } else {
                        format!("cannot start {path}: {e}")
                    })
                })?;
                let stdout = child.stdout.take().expect("piped");
                widen_pipe(&stdout);
                let mut stderr = child.stderr.take().expect("piped");
                let err_task = tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let _ = tokio::io::AsyncReadExt::read_to_end(&mut stderr, &mut buf).await;
                    buf
                });
                Ok(DumpProcess {
                    tool: tool.to_string(),
                    stdout: Box::pin(stdout),
                    done: Box::pin(async move {
                        let status = child.wait().await.map_err(|e| e.to_string())?;
                        let err = err_task.await.unwrap_or_default();
                        Ok((status.code().unwrap_or(-1), status_text(&status), err))
                    }),
                })
            }
            DumpRunner::Docker {
                container,
                host,
                port,
            } => {
                if tool == "pg_dumpall" {
                    args.push(format!("--database={}", target.database));
                } else {
                    args.push(target.database.clone());
                }
                let mut cmd = vec![tool.to_string()];
                cmd.extend(args);
                let env: Vec<String> = target
                    .libpq_env(Some((host, *port)))
                    .into_iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                let (stdout, done) = docker_exec_stream(container, cmd, env).await?;
                Ok(DumpProcess {
                    tool: tool.to_string(),
                    stdout,
                    done,
                })
            }
        }
    }
}

/// Asks for a 1 MiB pipe (Linux's default is 64 KiB): the dump then writes,
/// and the ingest reads, in pieces sixteen times larger, with as many fewer
/// wake-ups and copies through the scheduler. A refusal (a non-root user over
/// its pipe quota) only costs that speed.
fn widen_pipe(pipe: &impl std::os::fd::AsRawFd) {
    // SAFETY: fcntl on a file descriptor we own; F_SETPIPE_SZ takes an int.
    let r = unsafe { libc::fcntl(pipe.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20) };
    if r < 0 {
        tracing::debug!(
            "could not widen the dump pipe: {}",
            std::io::Error::last_os_error()
        );
    }
}

fn status_text(s: &std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exited with status {c}"),
        (None, Some(sig)) => format!("was killed by signal {sig}"),
        _ => "ended abnormally".into(),
    }
}

/// `pg_dump (PostgreSQL) 15.8 (Debian …)` → 15; `… 9.6.24` → 9.
pub fn parse_major(line: &str) -> Option<u32> {
    let after = line.rsplit_once(')').map(|(_, r)| r).unwrap_or(line);
    let after = if after.trim().is_empty() { line } else { after };
    let num = after
        .split(|c: char| !c.is_ascii_digit() && c != '.')
        .find(|s| !s.is_empty() && s.chars().next().is_some_and(|c| c.is_ascii_digit()))?;
    num.split('.').next()?.parse().ok()
}

type DoneFuture = Pin<
    Box<
        dyn std::future::Future<Output = std::result::Result<(i32, String, Vec<u8>), String>>
            + Send,
    >,
>;

/// A running dump: its output, then its exit.
pub struct DumpProcess {
    tool: String,
    pub stdout: Pin<Box<dyn AsyncRead + Send>>,
    done: DoneFuture,
}

/// The exit of a dump whose output was handed on (see [`DumpProcess::split`]).
pub struct DumpExit {
    tool: String,
    done: DoneFuture,
}

/// What ran the dump, for the manifest.
#[derive(Debug, Clone)]
pub struct DumpInfo {
    pub version_line: String,
    pub runner: String,
}

impl DumpProcess {
    /// The output, and the exit to wait for once the output reached its end.
    pub fn split(self) -> (Pin<Box<dyn AsyncRead + Send>>, DumpExit) {
        (
            self.stdout,
            DumpExit {
                tool: self.tool,
                done: self.done,
            },
        )
    }

    /// Stops a dump nobody will read: its output is closed (pg_dump ends on
    /// the broken pipe) and its exit awaited, at most `grace`; after that it
    /// is killed. Returns once it ended, so nothing of it outlives the caller.
    pub async fn stop(self, grace: std::time::Duration) {
        let (stdout, exit) = self.split();
        drop(stdout);
        // Dropped on the timeout, the exit's future kills the process.
        let _ = tokio::time::timeout(grace, exit.done).await;
    }

    /// Waits for the exit; an error (with the tool's own message) unless it
    /// exited 0. Call after its output reached end of file.
    pub async fn wait(self) -> Result<()> {
        self.split().1.wait().await
    }
}

impl DumpExit {
    /// As [`DumpProcess::wait`].
    pub async fn wait(self) -> Result<()> {
        let (code, how, err) = self
            .done
            .await
            .map_err(|e| SourceError::Dump(format!("{}: {e}", self.tool)))?;
        if code == 0 {
            return Ok(());
        }
        let msg = String::from_utf8_lossy(&err);
        let msg: Vec<&str> = msg
            .lines()
            .filter(|l| !l.trim().is_empty())
            .take(5)
            .collect();
        Err(SourceError::Dump(format!(
            "{} {how}{}",
            self.tool,
            if msg.is_empty() {
                " (it printed nothing; the dump is incomplete)".to_string()
            } else {
                format!(": {}", msg.join(" / "))
            }
        )))
    }
}

fn docker_error(container: &str, e: bollard::errors::Error) -> SourceError {
    SourceError::Docker(crate::docker_exec::exec_error(container, &e).message)
}

/// Starts `cmd` in `container` (standard input closed); the engine, the
/// exec's id and its output.
async fn docker_exec_start(
    container: &str,
    cmd: Vec<String>,
    env: Vec<String>,
) -> Result<(bollard::Docker, String, crate::docker_exec::ExecOutput)> {
    let d = crate::docker_exec::connect().map_err(SourceError::Docker)?;
    let exec = crate::docker_exec::start(&d, container, cmd, env, false)
        .await
        .map_err(|e| SourceError::Docker(e.message))?;
    Ok((d, exec.id, exec.output))
}

async fn exec_exit_code(d: &bollard::Docker, id: &str) -> std::result::Result<i32, String> {
    // The exit code is set a moment after the output ends.
    for _ in 0..100 {
        let info = d.inspect_exec(id).await.map_err(|e| e.to_string())?;
        if info.running != Some(true) {
            return Ok(info.exit_code.unwrap_or(-1) as i32);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Err("the exec did not finish".into())
}

async fn docker_exec_collect(
    container: &str,
    cmd: Vec<String>,
    env: Vec<String>,
) -> Result<(Vec<u8>, i32)> {
    let (d, id, mut output) = docker_exec_start(container, cmd, env).await?;
    let mut out = Vec::new();
    while let Some(item) = output.next().await {
        let item = item.map_err(|e| docker_error(container, e))?;
        out.extend_from_slice(&item.into_bytes());
    }
    let code = exec_exit_code(&d, &id)
        .await
        .map_err(|e| SourceError::Docker(format!("docker exec in {container:?}: {e}")))?;
    Ok((out, code))
}

async fn docker_exec_stream(
    container: &str,
    cmd: Vec<String>,
    env: Vec<String>,
) -> Result<(Pin<Box<dyn AsyncRead + Send>>, DoneFuture)> {
    use bollard::container::LogOutput;
    let (d, id, output) = docker_exec_start(container, cmd, env).await?;
    let stderr = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let err_sink = stderr.clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let tx = std::sync::Mutex::new(Some(tx));
    let name = container.to_string();
    let stdout = output
        .filter_map(move |item| {
            let r = match item {
                Ok(LogOutput::StdOut { message }) => Some(Ok(message)),
                Ok(LogOutput::StdErr { message }) => {
                    let mut e = err_sink.lock().unwrap();
                    if e.len() < 64 * 1024 {
                        e.extend_from_slice(&message);
                    }
                    None
                }
                Ok(_) => None,
                Err(e) => Some(Err(std::io::Error::other(format!(
                    "docker exec in {name:?}: {e}"
                )))),
            };
            futures::future::ready(r)
        })
        .chain(futures::stream::once(async move {
            if let Some(tx) = tx.lock().unwrap().take() {
                let _ = tx.send(());
            }
            Ok(bytes::Bytes::new())
        }));
    let reader = tokio_util::io::StreamReader::new(stdout);
    let done: DoneFuture = Box::pin(async move {
        let _ = rx.await;
        let code = exec_exit_code(&d, &id).await?;
        let err = stderr.lock().unwrap().clone();
        Ok((code, format!("exited with status {code}"), err))
    });
    Ok((Box::pin(reader), done))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tools_come_from_the_configured_installation() {
        let pg_dump = Path::new("/opt/pg16/bin/pg_dump");
        assert_eq!(
            tool_beside(pg_dump, "pg_dump", "pg_dump"),
            "/opt/pg16/bin/pg_dump"
        );
        assert_eq!(
            tool_beside(pg_dump, "pg_dump", "pg_dumpall"),
            "/opt/pg16/bin/pg_dumpall"
        );
        // A configured program under another name is itself, its siblings by theirs.
        let renamed = Path::new("/usr/local/bin/pg_restore16");
        assert_eq!(
            tool_beside(renamed, "pg_restore", "pg_restore"),
            "/usr/local/bin/pg_restore16"
        );
        assert_eq!(
            tool_beside(renamed, "pg_restore", "psql"),
            "/usr/local/bin/psql"
        );
        // A bare name: the PATH decides.
        assert_eq!(
            tool_beside(Path::new("pg_dump"), "pg_dump", "pg_dumpall"),
            "pg_dumpall"
        );
    }

    #[test]
    fn versions() {
        assert_eq!(
            parse_major("pg_dump (PostgreSQL) 15.8 (Debian 15.8-1.pgdg120+1)"),
            Some(15)
        );
        assert_eq!(parse_major("pg_dump (PostgreSQL) 9.6.24"), Some(9));
        assert_eq!(parse_major("pg_dumpall (PostgreSQL) 17.2"), Some(17));
        assert_eq!(parse_major("nonsense"), None);
    }

    #[test]
    fn urls_keep_passwords_out_of_display() {
        let t = PgTarget::parse(
            "postgres://n8n:s%40cret@db.example:6543/n8n?sslmode=require",
            None,
        )
        .unwrap();
        assert_eq!(
            (
                t.host.as_str(),
                t.port,
                t.user.as_str(),
                t.database.as_str()
            ),
            ("db.example", 6543, "n8n", "n8n")
        );
        assert_eq!(t.password.as_deref().map(|s| s.as_str()), Some("s@cret"));
        assert_eq!(t.sslmode.as_deref(), Some("require"));
        assert!(!t.display().contains("cret") && !format!("{t:?}").contains("cret"));
        let t2 =
            PgTarget::parse("postgres://127.0.0.1/x", Some(Zeroizing::new("p".into()))).unwrap();
        assert_eq!((t2.user.as_str(), t2.port), ("postgres", 5432));
        assert!(PgTarget::parse("mysql://x/y", None).is_err());
        assert!(PgTarget::parse("not a url", None).is_err());
    }
}
