//! The PostgreSQL flags that `backup`, `restore database` and `restore full`
//! share, declared once (flattened into each command) and resolved once:
//! flag, then its `ARK_*` variable, then the config file's `[n8n]` and
//! `[postgres]` sections.
use crate::config::{PostgresOverrides, Resolver};
use crate::ops::Environment;
use crate::restore::database::RestoreTool;
use crate::settings::Settings;
use crate::source::postgres::DumpRunner;
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

pub use crate::config::Servers;

/// The environment as the engine's configuration sees it.
fn resolver_env() -> Environment {
    Environment::capture()
}

impl ServerArgs {
    /// Resolves both URLs and their passwords ([`crate::config::Resolver::servers`]);
    /// an error is the operator's to fix (a usage error).
    pub fn resolve(&self, s: &Settings) -> Result<Servers, String> {
        let env = resolver_env();
        Resolver::new(s, &env).servers(&self.overrides())
    }

    fn overrides(&self) -> PostgresOverrides {
        PostgresOverrides {
            n8n_db: self.n8n_db.clone(),
            pg_server: self.pg_server.clone(),
            ..Default::default()
        }
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

impl ToolArgs {
    /// The engine's overrides of these flags.
    pub fn overrides(&self) -> PostgresOverrides {
        PostgresOverrides {
            pg_dump: self.pg_dump.clone(),
            pg_container: self.pg_container.clone(),
            pg_container_host: self.pg_container_host.clone(),
            pg_container_port: self.pg_container_port,
            ..Default::default()
        }
    }

    /// The PostgreSQL container, when the tools run in one: the flag,
    /// ARK_PG_CONTAINER, else the config file's.
    pub fn container(&self, s: &Settings) -> Option<String> {
        let env = resolver_env();
        Resolver::new(s, &env).container(&self.overrides())
    }

    /// The pg_dump a backup (or a restore's safety backup) runs.
    pub fn dump_runner(&self, s: &Settings) -> DumpRunner {
        let env = resolver_env();
        Resolver::new(s, &env).dump_runner(&self.overrides())
    }

    /// The pg_restore of a restore: in the container when there is one,
    /// else `pg_restore` if given, else the one beside pg_dump or the newest
    /// installed.
    pub fn restore_tool(&self, pg_restore: Option<&PathBuf>, s: &Settings) -> RestoreTool {
        let env = resolver_env();
        Resolver::new(s, &env).restore_tool(&self.overrides(), pg_restore)
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
    let vars = resolver_env();
    Resolver::new(&Settings::default(), &vars).no_password_on_the_command_line(flag, env, value)
}
