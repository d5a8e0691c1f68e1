//! The PostgreSQL flags that `backup`, `restore database` and `restore full`
//! share, declared once (flattened into each command) and resolved once:
//! flag, then its `ARK_*` variable, then the config file's `[n8n]` and
//! `[postgres]` sections.
use crate::restore::database::RestoreTool;
use crate::settings::{secret, Settings};
use crate::source::postgres::{DumpRunner, PgTarget};
use std::path::PathBuf;

/// Where the PostgreSQL servers are (`backup`, `restore full`).
#[derive(Debug, clap::Args)]
pub struct ServerArgs {
    /// The n8n database: postgres://user@host:port/db (what a backup reads;
    /// what `restore full` replaces with the backup's). Its password comes
    /// from ARK_N8N_DB_PASSWORD or the file named by ARK_N8N_DB_PASSWORD_FILE,
    /// never from the command line.
    #[arg(long, env = "ARK_N8N_DB")]
    pub n8n_db: Option<String>,
    /// The PostgreSQL server of the other databases, for postgres_full and
    /// full_system (default: the n8n database's server). Password:
    /// ARK_PG_SERVER_PASSWORD(_FILE).
    #[arg(long, env = "ARK_PG_SERVER")]
    pub pg_server: Option<String>,
}

/// The servers as given, with their passwords.
pub struct Servers {
    pub n8n_db: Option<PgTarget>,
    pub pg_server: Option<PgTarget>,
}

impl ServerArgs {
    /// Resolves both URLs and their passwords; an error is the operator's to
    /// fix (a usage error). A server without a password of its own that is
    /// n8n's server with n8n's user gets the n8n database's password.
    pub fn resolve(&self, s: &Settings) -> Result<Servers, String> {
        no_password_on_the_command_line("--n8n-db", "ARK_N8N_DB", self.n8n_db.as_ref())?;
        no_password_on_the_command_line("--pg-server", "ARK_PG_SERVER", self.pg_server.as_ref())?;
        let n8n_db = match self.n8n_db.as_ref().or(s.n8n.database.as_ref()) {
            Some(url) => {
                let pw = secret(
                    "ARK_N8N_DB_PASSWORD",
                    "ARK_N8N_DB_PASSWORD_FILE",
                    s.n8n.database_password_file.as_deref(),
                )?;
                Some(PgTarget::parse(url, pw).map_err(|e| format!("--n8n-db: {e}"))?)
            }
            None => None,
        };
        let pg_server = match self.pg_server.as_ref().or(s.postgres.server.as_ref()) {
            Some(url) => {
                let pw = secret(
                    "ARK_PG_SERVER_PASSWORD",
                    "ARK_PG_SERVER_PASSWORD_FILE",
                    s.postgres.server_password_file.as_deref(),
                )?;
                let mut t = PgTarget::parse(url, pw).map_err(|e| format!("--pg-server: {e}"))?;
                if t.password.is_none() {
                    if let Some(db) = &n8n_db {
                        if db.host == t.host && db.port == t.port && db.user == t.user {
                            t.password = db.password.clone();
                        }
                    }
                }
                Some(t)
            }
            None => None,
        };
        Ok(Servers { n8n_db, pg_server })
    }
}

/// Which PostgreSQL client tools run, and where (`backup`, `restore database`,
/// `restore full`).
#[derive(Debug, clap::Args)]
pub struct ToolArgs {
    /// The local pg_dump, no older than the server (a restore runs it for
    /// its safety backup). Default: the newest /usr/lib/postgresql/*/bin/pg_dump,
    /// else pg_dump on the PATH.
    #[arg(long, env = "ARK_PG_DUMP", value_name = "PATH")]
    pub pg_dump: Option<PathBuf>,
    /// Run pg_dump (and a restore's pg_restore) inside this running
    /// PostgreSQL container through docker exec instead, so the tools always
    /// match the server.
    #[arg(long, env = "ARK_PG_CONTAINER")]
    pub pg_container: Option<String>,
    /// The socket directory or host the tools use inside the container
    /// (default /var/run/postgresql).
    #[arg(long, env = "ARK_PG_CONTAINER_HOST")]
    pub pg_container_host: Option<String>,
    /// The port the tools use inside the container (default 5432).
    #[arg(long, env = "ARK_PG_CONTAINER_PORT")]
    pub pg_container_port: Option<u16>,
}

/// A container the tools run in: its name, and the host and port they use.
struct InContainer {
    container: String,
    host: String,
    port: u16,
}

impl ToolArgs {
    /// The PostgreSQL container, when the tools run in one: the flag,
    /// ARK_PG_CONTAINER, else the config file's.
    pub fn container(&self, s: &Settings) -> Option<String> {
        self.pg_container.clone().or(s.postgres.container.clone())
    }

    fn in_container(&self, s: &Settings) -> Option<InContainer> {
        let container = self.container(s)?;
        Some(InContainer {
            container,
            host: self
                .pg_container_host
                .clone()
                .or(s.postgres.container_host.clone())
                .unwrap_or_else(|| "/var/run/postgresql".into()),
            port: self
                .pg_container_port
                .or(s.postgres.container_port)
                .unwrap_or(5432),
        })
    }

    fn local_pg_dump(&self, s: &Settings) -> Option<PathBuf> {
        self.pg_dump.clone().or(s.postgres.pg_dump.clone())
    }

    /// The pg_dump a backup (or a restore's safety backup) runs.
    pub fn dump_runner(&self, s: &Settings) -> DumpRunner {
        match self.in_container(s) {
            Some(c) => DumpRunner::Docker {
                container: c.container,
                host: c.host,
                port: c.port,
            },
            None => match self.local_pg_dump(s) {
                Some(p) => DumpRunner::Local { pg_dump: p },
                None => DumpRunner::local_default(),
            },
        }
    }

    /// The pg_restore of a restore: in the container when there is one,
    /// else `pg_restore` if given, else the one beside pg_dump or the newest
    /// installed.
    pub fn restore_tool(&self, pg_restore: Option<&PathBuf>, s: &Settings) -> RestoreTool {
        match self.in_container(s) {
            Some(c) => RestoreTool::Docker {
                container: c.container,
                host: c.host,
                port: c.port,
            },
            None => match pg_restore {
                Some(p) => RestoreTool::Local {
                    pg_restore: p.clone(),
                },
                None => RestoreTool::local_default(self.local_pg_dump(s).as_deref()),
            },
        }
    }
}

/// A URL with a password, given as a flag, would show in `ps` to every user
/// of the machine (and in shell history): refused. From the environment or
/// the config file it is accepted.
pub fn no_password_on_the_command_line(
    flag: &str,
    env: &str,
    value: Option<&String>,
) -> Result<(), String> {
    let Some(url) = value else { return Ok(()) };
    let from_env = std::env::var(env).ok().as_ref() == Some(url);
    let has_password = url::Url::parse(url)
        .map(|u| u.password().is_some())
        .unwrap_or(false);
    if has_password && !from_env {
        return Err(format!(
            "{flag} holds a password, which every user of this machine can read in the process list: \
             give the URL without it and the password in {env}_PASSWORD or {env}_PASSWORD_FILE"
        ));
    }
    Ok(())
}
