//! Configuration resolved once: the TOML file ([`Settings`]), the `ARK_*`
//! variables of the operation's [`Environment`] snapshot and the request's
//! overrides (a command's flags, an API request's fields), in that order of
//! increasing precedence, turned into what the engine runs with: a backup's
//! [`Sources`], the PostgreSQL tools, the sandbox's options. The CLI, the
//! service and its scheduler resolve through this one module; nothing here
//! reads the process environment.
use crate::backup::{BackupKind, Sources};
use crate::ops::Environment;
use crate::restore::database::RestoreTool;
use crate::sandbox::{parse_cpus, parse_memory, SandboxKind, SandboxOptions};
use crate::settings::Settings;
use crate::source::config_files::{default_paths, ConfigPath};
use crate::source::n8n_api::N8nApi;
use crate::source::postgres::{DumpRunner, PgTarget};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Where the PostgreSQL servers are and which client tools run, as a request
/// gives them (each `None` falls back to its `ARK_*` variable, then the
/// config file).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PostgresOverrides {
    /// The n8n database, `postgres://user@host:port/db` (`ARK_N8N_DB`).
    pub n8n_db: Option<String>,
    /// The server of the other databases (`ARK_PG_SERVER`).
    pub pg_server: Option<String>,
    /// A local `pg_dump` (`ARK_PG_DUMP`).
    pub pg_dump: Option<PathBuf>,
    /// Run the tools in this PostgreSQL container (`ARK_PG_CONTAINER`).
    pub pg_container: Option<String>,
    /// The socket directory or host inside it (`ARK_PG_CONTAINER_HOST`).
    pub pg_container_host: Option<String>,
    /// The port inside it (`ARK_PG_CONTAINER_PORT`).
    pub pg_container_port: Option<u16>,
}

/// What a backup reads, as a request gives it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SourceOverrides {
    #[serde(flatten)]
    pub postgres: PostgresOverrides,
    /// Config files, directories or globs that must exist
    /// (`ARK_CONFIG_PATHS`, colon-separated).
    pub config_paths: Vec<String>,
    /// Leave out the usual layout's paths.
    pub no_default_config_paths: bool,
    /// n8n's base URL, for flows without a database (`ARK_N8N_URL`).
    pub n8n_url: Option<String>,
}

/// The servers as resolved, with their passwords.
pub struct Servers {
    pub n8n_db: Option<PgTarget>,
    pub pg_server: Option<PgTarget>,
}

/// The settings and the environment an operation resolves its configuration
/// from. Errors are the operator's to fix (configuration errors).
#[derive(Clone, Copy)]
pub struct Resolver<'a> {
    pub settings: &'a Settings,
    pub env: &'a Environment,
}

impl<'a> Resolver<'a> {
    pub fn new(settings: &'a Settings, env: &'a Environment) -> Resolver<'a> {
        Resolver { settings, env }
    }

    /// The request's value, else the variable's (when set and not blank).
    fn or_env(&self, value: Option<&String>, var: &str) -> Option<String> {
        value
            .cloned()
            .or_else(|| self.env.nonempty(var).map(str::to_string))
    }

    /// A secret from the first of: a variable, a file named by a variable, a
    /// file named in the config. Trailing newlines are cut.
    pub fn secret(
        &self,
        var: &str,
        file_var: &str,
        config_file: Option<&Path>,
    ) -> Result<Option<Zeroizing<String>>, String> {
        if let Some(v) = self.env.get(var).filter(|v| !v.is_empty()) {
            return Ok(Some(Zeroizing::new(v.to_string())));
        }
        let file = self
            .env
            .get(file_var)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| config_file.map(Path::to_path_buf));
        match file {
            None => Ok(None),
            Some(f) => {
                let s = std::fs::read_to_string(&f).map_err(|e| {
                    format!(
                        "cannot read the secret file {} ({file_var}): {e}",
                        f.display()
                    )
                })?;
                Ok(Some(Zeroizing::new(
                    s.trim_end_matches(['\n', '\r']).to_string(),
                )))
            }
        }
    }

    /// A URL with a password, given as a flag, would show in `ps` to every
    /// user of the machine (and in shell history): refused. From the
    /// environment (its variable holds the same value) or the config file it
    /// is accepted.
    pub fn no_password_on_the_command_line(
        &self,
        flag: &str,
        var: &str,
        value: Option<&String>,
    ) -> Result<(), String> {
        let Some(url) = value else { return Ok(()) };
        let from_env = self.env.get(var) == Some(url.as_str());
        let has_password = url::Url::parse(url)
            .map(|u| u.password().is_some())
            .unwrap_or(false);
        if has_password && !from_env {
            return Err(format!(
                "{flag} holds a password, which every user of this machine can read in the process list: \
                 give the URL without it and the password in {var}_PASSWORD or {var}_PASSWORD_FILE"
            ));
        }
        Ok(())
    }

    /// Both servers and their passwords. A server without a password of its
    /// own that is n8n's server with n8n's user gets the n8n database's.
    pub fn servers(&self, o: &PostgresOverrides) -> Result<Servers, String> {
        let s = self.settings;
        self.no_password_on_the_command_line("--n8n-db", "ARK_N8N_DB", o.n8n_db.as_ref())?;
        self.no_password_on_the_command_line("--pg-server", "ARK_PG_SERVER", o.pg_server.as_ref())?;
        let n8n_db = match self
            .or_env(o.n8n_db.as_ref(), "ARK_N8N_DB")
            .or(s.n8n.database.clone())
        {
            Some(url) => {
                let pw = self.secret(
                    "ARK_N8N_DB_PASSWORD",
                    "ARK_N8N_DB_PASSWORD_FILE",
                    s.n8n.database_password_file.as_deref(),
                )?;
                Some(PgTarget::parse(&url, pw).map_err(|e| format!("--n8n-db: {e}"))?)
            }
            None => None,
        };
        let pg_server = match self
            .or_env(o.pg_server.as_ref(), "ARK_PG_SERVER")
            .or(s.postgres.server.clone())
        {
            Some(url) => {
                let pw = self.secret(
                    "ARK_PG_SERVER_PASSWORD",
                    "ARK_PG_SERVER_PASSWORD_FILE",
                    s.postgres.server_password_file.as_deref(),
                )?;
                let mut t = PgTarget::parse(&url, pw).map_err(|e| format!("--pg-server: {e}"))?;
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

    /// The PostgreSQL container the tools run in, if any.
    pub fn container(&self, o: &PostgresOverrides) -> Option<String> {
        self.or_env(o.pg_container.as_ref(), "ARK_PG_CONTAINER")
            .or(self.settings.postgres.container.clone())
    }

    fn in_container(&self, o: &PostgresOverrides) -> Option<(String, String, u16)> {
        let container = self.container(o)?;
        let host = self
            .or_env(o.pg_container_host.as_ref(), "ARK_PG_CONTAINER_HOST")
            .or(self.settings.postgres.container_host.clone())
            .unwrap_or_else(|| "/var/run/postgresql".into());
        let port = o
            .pg_container_port
            .or_else(|| {
                self.env
                    .nonempty("ARK_PG_CONTAINER_PORT")
                    .and_then(|p| p.trim().parse().ok())
            })
            .or(self.settings.postgres.container_port)
            .unwrap_or(5432);
        Some((container, host, port))
    }

    fn local_pg_dump(&self, o: &PostgresOverrides) -> Option<PathBuf> {
        o.pg_dump
            .clone()
            .or_else(|| self.env.nonempty("ARK_PG_DUMP").map(PathBuf::from))
            .or(self.settings.postgres.pg_dump.clone())
    }

    /// The pg_dump a backup (or a restore's safety backup) runs.
    pub fn dump_runner(&self, o: &PostgresOverrides) -> DumpRunner {
        match self.in_container(o) {
            Some((container, host, port)) => DumpRunner::Docker {
                container,
                host,
                port,
            },
            None => match self.local_pg_dump(o) {
                Some(p) => DumpRunner::Local { pg_dump: p },
                None => DumpRunner::local_default(),
            },
        }
    }

    /// The pg_restore of a restore: in the container when there is one,
    /// else `pg_restore` if given, else the one beside pg_dump or the newest
    /// installed.
    pub fn restore_tool(&self, o: &PostgresOverrides, pg_restore: Option<&PathBuf>) -> RestoreTool {
        match self.in_container(o) {
            Some((container, host, port)) => RestoreTool::Docker {
                container,
                host,
                port,
            },
            None => match pg_restore {
                Some(p) => RestoreTool::Local {
                    pg_restore: p.clone(),
                },
                None => RestoreTool::local_default(self.local_pg_dump(o).as_deref()),
            },
        }
    }

    /// The config paths a backup reads: the usual layout's (unless left
    /// out), the config file's optional and required ones, the request's.
    pub fn config_paths(&self, o: &SourceOverrides) -> Result<Vec<ConfigPath>, String> {
        let s = self.settings;
        let mut config_paths = Vec::new();
        if !o.no_default_config_paths && s.config_files.defaults.unwrap_or(true) {
            config_paths.extend(default_paths());
        }
        for p in s.config_files.optional.iter() {
            config_paths.push(ConfigPath {
                pattern: p.clone(),
                required: false,
            });
        }
        let from_env: Vec<String> = if o.config_paths.is_empty() {
            self.env
                .nonempty("ARK_CONFIG_PATHS")
                .map(|v| v.split(':').map(str::to_string).collect())
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let requested = o.config_paths.iter().chain(from_env.iter());
        for p in s.config_files.paths.iter().chain(requested) {
            if p.is_empty() {
                continue;
            }
            if !p.starts_with('/') {
                return Err(format!("config path {p:?} is not absolute"));
            }
            // A path given explicitly is required, also when a default names it.
            config_paths.retain(|c| c.pattern != *p);
            config_paths.push(ConfigPath {
                pattern: p.clone(),
                required: true,
            });
        }
        Ok(config_paths)
    }

    /// A backup's sources.
    pub fn backup_sources(&self, kind: BackupKind, o: &SourceOverrides) -> Result<Sources, String> {
        let s = self.settings;
        let Servers { n8n_db, pg_server } = self.servers(&o.postgres)?;
        let dump = self.dump_runner(&o.postgres);
        let config_paths = self.config_paths(o)?;
        let n8n_api = match self
            .or_env(o.n8n_url.as_ref(), "ARK_N8N_URL")
            .or(s.n8n.api_url.clone())
        {
            Some(url) if kind == BackupKind::Flows && n8n_db.is_none() => {
                let key = self
                    .secret(
                        "ARK_N8N_API_KEY",
                        "ARK_N8N_API_KEY_FILE",
                        s.n8n.api_key_file.as_deref(),
                    )?
                    .ok_or_else(|| {
                        "n8n's API needs a key: set ARK_N8N_API_KEY or ARK_N8N_API_KEY_FILE \
                         (create one in n8n: Settings → n8n API)"
                            .to_string()
                    })?;
                Some(N8nApi::new(&url, key.to_string()).map_err(|e| e.to_string())?)
            }
            _ => None,
        };
        Ok(Sources {
            n8n_db,
            pg_server,
            dump,
            config_paths,
            n8n_api,
        })
    }

    /// The sandbox's options: the request's, else the `ARK_SANDBOX*`
    /// variables; without an image of its own it takes that of the n8n
    /// postgres container (`pg_container`: the request's tools', else
    /// `ARK_PG_CONTAINER`, else the config file's).
    pub fn sandbox(
        &self,
        o: &SandboxOptions,
        pg: &PostgresOverrides,
    ) -> Result<SandboxOptions, String> {
        let sandbox = match o.sandbox {
            Some(k) => Some(k),
            None => match self.env.nonempty("ARK_SANDBOX").map(str::trim) {
                None => None,
                Some("docker") => Some(SandboxKind::Docker),
                Some("local") => Some(SandboxKind::Local),
                Some(other) => {
                    return Err(format!(
                        "ARK_SANDBOX is {other:?}: it takes docker or local"
                    ))
                }
            },
        };
        let sandbox_memory = match o.sandbox_memory {
            Some(m) => Some(m),
            None => self
                .env
                .nonempty("ARK_SANDBOX_MEMORY")
                .map(|v| parse_memory(v).map_err(|e| format!("ARK_SANDBOX_MEMORY: {e}")))
                .transpose()?,
        };
        let sandbox_cpus = match o.sandbox_cpus {
            Some(c) => Some(c),
            None => self
                .env
                .nonempty("ARK_SANDBOX_CPUS")
                .map(|v| parse_cpus(v).map_err(|e| format!("ARK_SANDBOX_CPUS: {e}")))
                .transpose()?,
        };
        Ok(SandboxOptions {
            sandbox,
            sandbox_image: self.or_env(o.sandbox_image.as_ref(), "ARK_SANDBOX_IMAGE"),
            sandbox_memory,
            sandbox_cpus,
            pg_container: o.pg_container.clone().or_else(|| self.container(pg)),
        })
    }
}
