//! The configuration file (TOML). Every setting also has a flag and an `ARK_*`
//! variable; those override the file. Secrets (database passwords, the n8n API
//! key) are never written in it: it names files that hold them, or they come
//! from the environment. `n8n-ark.example.toml` at the top of the repository
//! documents every key.
use serde::Deserialize;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The store: a directory or s3://bucket/prefix.
    pub store: Option<String>,
    /// Where the catalog lives.
    pub data_dir: Option<PathBuf>,
    #[serde(default)]
    pub n8n: N8nSettings,
    #[serde(default)]
    pub postgres: PostgresSettings,
    #[serde(default)]
    pub config_files: ConfigFileSettings,
    #[serde(default)]
    pub restore: RestoreSettings,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct N8nSettings {
    /// The n8n database, `postgres://user@host:port/db` (no password here).
    pub database: Option<String>,
    /// A file holding the n8n database user's password.
    pub database_password_file: Option<PathBuf>,
    /// n8n's base URL for its public API, e.g. `http://127.0.0.1:5678`.
    pub api_url: Option<String>,
    /// A file holding an n8n API key.
    pub api_key_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresSettings {
    /// The server for `postgres_full` (any database on it); defaults to the n8n
    /// database's server.
    pub server: Option<String>,
    pub server_password_file: Option<PathBuf>,
    /// A local `pg_dump` (its `pg_dumpall` is taken from the same directory).
    pub pg_dump: Option<PathBuf>,
    /// Run `pg_dump` inside this container (`docker exec`) instead.
    pub container: Option<String>,
    /// How `pg_dump` in the container reaches the server: a socket directory
    /// or host (default `/var/run/postgresql`) ...
    pub container_host: Option<String>,
    /// ... and port (default 5432).
    pub container_port: Option<u16>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFileSettings {
    /// Include the usual layout's paths (all optional). Default true.
    pub defaults: Option<bool>,
    /// Paths and globs that must exist (a missing one fails the backup).
    #[serde(default)]
    pub paths: Vec<String>,
    /// Paths and globs recorded as missing when absent.
    #[serde(default)]
    pub optional: Vec<String>,
}

/// How `restore full` stops and starts n8n and checks it afterwards.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreSettings {
    /// The docker compose project whose containers are stopped and started
    /// (default: derived from the backed-up compose file).
    pub compose_project: Option<String>,
    /// Compose services left running besides the database ones.
    #[serde(default)]
    pub keep_running: Vec<String>,
    /// A shell command that stops n8n (instead of Docker), with `start_command`.
    pub stop_command: Option<String>,
    /// A shell command that starts n8n again.
    pub start_command: Option<String>,
    /// n8n's health endpoint (default: `/healthz/readiness` of `[n8n] api_url`).
    pub health_url: Option<String>,
    /// How long to wait for it and for the row counts, in seconds (default 300).
    pub health_timeout_secs: Option<u64>,
}

impl Settings {
    /// Reads a configuration file; errors name the file and say what is wrong.
    pub fn load(path: &Path) -> Result<Settings, String> {
        let meta = std::fs::metadata(path)
            .map_err(|e| format!("cannot read the config file {}: {e}", path.display()))?;
        if meta.is_dir() {
            return Err(format!(
                "the config file {} is a directory; --config/ARK_CONFIG must name a TOML file \
                 (see n8n-ark.example.toml)",
                path.display()
            ));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the config file {}: {e}", path.display()))?;
        Settings::parse(&text).map_err(|e| {
            format!(
                "the config file {} is not valid: {e} (n8n-ark.example.toml documents every key)",
                path.display()
            )
        })
    }

    /// Parses a configuration file's text. The error is one line: where
    /// (`line N`), what, and for an unknown key the valid keys of its table.
    pub fn parse(text: &str) -> Result<Settings, String> {
        toml::from_str(text).map_err(|e| describe_toml_error(text, &e))
    }
}

/// One line for a TOML error: `line N: …`. serde names an unknown key and the
/// valid ones ("unknown field `databse`, expected one of `database`, …"); the
/// table it is in is the last `[header]` before it.
fn describe_toml_error(text: &str, e: &toml::de::Error) -> String {
    let at = e.span().map(|s| s.start.min(text.len()));
    let line = at.map(|a| text[..a].matches('\n').count() + 1);
    let table = at.and_then(|a| {
        text[..a].lines().rev().find_map(|l| {
            let l = l.trim();
            let inner = l.strip_prefix('[')?.strip_suffix(']')?;
            Some(
                inner
                    .trim_matches(|c| c == '[' || c == ']')
                    .trim()
                    .to_string(),
            )
        })
    });
    let message = e.message().trim();
    let what = match message.strip_prefix("unknown field `") {
        Some(rest) => {
            let (key, valid) = rest.split_once('`').unwrap_or((rest, ""));
            let valid: Vec<&str> = valid
                .split('`')
                .skip(1)
                .step_by(2)
                .filter(|k| !k.is_empty())
                .collect();
            let (place, keys_of) = match &table {
                Some(t) => (format!(" in [{t}]"), format!("the keys of [{t}] are")),
                None => (String::new(), "the top-level keys are".to_string()),
            };
            if valid.is_empty() {
                format!("unknown key `{key}`{place}")
            } else {
                format!("unknown key `{key}`{place}; {keys_of} {}", valid.join(", "))
            }
        }
        None => message
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; "),
    };
    match line {
        Some(n) => format!("line {n}: {what}"),
        None => what,
    }
}

/// A secret from the first of: an environment variable, a file named by an
/// environment variable, a file named in the config. Trailing newlines are
/// cut. For front ends (it takes the process's environment as it is now);
/// operations resolve secrets through [`crate::config::Resolver::secret`]
/// from their Context's snapshot.
pub fn secret(
    env_var: &str,
    file_env_var: &str,
    config_file: Option<&Path>,
) -> Result<Option<Zeroizing<String>>, String> {
    let env = crate::ops::Environment::capture();
    crate::config::Resolver::new(&Settings::default(), &env).secret(
        env_var,
        file_env_var,
        config_file,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_parses() {
        let text = include_str!("../n8n-ark.example.toml");
        let s: Settings = toml::from_str(text).unwrap();
        assert_eq!(
            s.n8n.database.as_deref(),
            Some("postgres://n8n@127.0.0.1:5432/n8n")
        );
        assert!(s.config_files.defaults.unwrap_or(true));
    }

    #[test]
    fn unknown_keys_are_named_with_the_valid_ones_of_their_table() {
        let e = Settings::parse("store = '/srv'\n\n[n8n]\ndatabse = 'x'\n").unwrap_err();
        assert_eq!(
            e,
            "line 4: unknown key `databse` in [n8n]; the keys of [n8n] are database, \
             database_password_file, api_url, api_key_file"
        );
        let e = Settings::parse("stroe = '/srv'\n").unwrap_err();
        assert!(
            e.starts_with("line 1: unknown key `stroe`; the top-level keys are store, data_dir,"),
            "{e}"
        );
        let e = Settings::parse("[restore]\nkeep_runing = []\n").unwrap_err();
        assert!(e.contains("unknown key `keep_runing` in [restore]"), "{e}");
        assert!(e.contains("keep_running"), "{e}");
        let e = Settings::parse("a = \n").unwrap_err();
        assert!(e.starts_with("line 1: "), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }

    #[test]
    fn unknown_keys_and_directories_are_refused() {
        assert!(toml::from_str::<Settings>("[n8n]\ndatabse = 'x'").is_err());
        let d = std::env::temp_dir();
        let e = Settings::load(&d).unwrap_err();
        assert!(e.contains("is a directory"), "{e}");
    }
}
