//! The command line: one file per command; `main.rs` only wires.
pub mod backup;
pub mod benchmark;
pub mod catalog;
pub mod check;
pub mod demo;
pub mod diff;
pub mod gc;
pub mod history;
pub mod init;
pub mod key;
pub mod list;
pub mod policy;
pub mod postgres_args;
pub mod restore;
pub mod sandbox;
pub mod show;
pub mod signals;
pub mod verify;

use crate::store::{backend_for, Store, StoreError};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "n8n-ark",
    version,
    about = "Backups for self-hosted n8n: deduplicated, verifiable, browsable"
)]
pub struct Cli {
    /// Where the store lives: a directory (local disk or NFS mount) or s3://bucket/prefix.
    #[arg(long, global = true, env = "ARK_STORE")]
    pub store: Option<String>,
    /// Where n8n-ark keeps its local state (the catalog). Default: /var/lib/n8n-ark
    /// as root, else $XDG_DATA_HOME/n8n-ark (~/.local/share/n8n-ark).
    #[arg(long, global = true, env = "ARK_DATA_DIR")]
    pub data_dir: Option<std::path::PathBuf>,
    /// A configuration file (TOML; see n8n-ark.example.toml). Flags and ARK_*
    /// variables override it.
    #[arg(long, global = true, env = "ARK_CONFIG")]
    pub config: Option<std::path::PathBuf>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[arg(skip)]
    settings_read: std::sync::OnceLock<Result<crate::settings::Settings, String>>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new, empty store.
    Init(init::Args),
    /// Take a backup: postgres_full, postgres_n8n, n8n_config, flows or full_system.
    Backup(backup::Args),
    /// List the backups (failed ones too), oldest first.
    List(list::Args),
    /// Show what a backup holds: workflows, credential names, config files, tables.
    Show(show::Args),
    /// Show what changed between two backups.
    Diff(diff::Args),
    /// Show every version of one workflow across the backups.
    History(history::Args),
    /// Restore workflows, a database, config files or the whole system from a backup.
    #[command(subcommand)]
    Restore(restore::RestoreCommand),
    /// The local catalog of the store's backups: rebuild it, or see its state.
    Catalog(catalog::Args),
    /// Check the store's structure, and with --read-data every object's content.
    Check(check::Args),
    /// Prove that backups restore: every object present (exists), read and
    /// hashed (data), or restored into a sandbox and compared (restore).
    Verify(verify::Args),
    /// Delete objects that no backup references (safe while backups run).
    Gc(gc::Args),
    /// Measure chunking, hashing and compression speed, or a real ingest.
    Benchmark(benchmark::Args),
    /// A tour on generated data: create a store, back up twice, check, report.
    Demo(demo::Args),
    /// Manage the passphrases (key files) that open an encrypted store.
    #[command(subcommand)]
    Key(key::KeyCommand),
    /// The temporary PostgreSQL sandboxes on this machine: list, remove, reap.
    #[command(subcommand)]
    Sandbox(sandbox::SandboxCommand),
}

/// An error for the operator: one clear line, non-zero exit.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Failed(String),
    /// Stopped by a signal (it ended cleanly): the message and the exit
    /// status, 128 + the signal's number.
    #[error("{0}")]
    Interrupted(String, i32),
}

impl CliError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Interrupted(_, code) => *code,
            _ => 1,
        }
    }
}

pub type CliResult<T = ()> = Result<T, CliError>;

impl Cli {
    /// A command's sandbox options with the n8n postgres container it should
    /// take the image from when none is given: ARK_PG_CONTAINER, else the
    /// config file's [postgres] container.
    pub fn sandbox(&self, a: &crate::sandbox::SandboxArgs) -> crate::sandbox::SandboxArgs {
        a.with_pg_container(crate::sandbox::pg_container_from_env().or_else(|| {
            self.settings()
                .ok()
                .and_then(|s| s.postgres.container.clone())
        }))
    }

    pub fn store_location(&self) -> CliResult<String> {
        if let Some(s) = &self.store {
            return Ok(s.clone());
        }
        if let Ok(Some(s)) = self.settings().map(|s| s.store.clone()) {
            return Ok(s);
        }
        self.store.clone().ok_or_else(|| {
            CliError::Usage(
                "no store given: pass --store DIR|s3://bucket/prefix or set ARK_STORE".into(),
            )
        })
    }

    /// The configuration file's settings (empty without --config/ARK_CONFIG).
    /// Read once per command (the store location, the data directory and
    /// a backup's sources all ask).
    pub fn settings(&self) -> Result<&crate::settings::Settings, String> {
        self.settings_read
            .get_or_init(|| match &self.config {
                Some(p) => crate::settings::Settings::load(p),
                None => Ok(Default::default()),
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The data directory: --data-dir, ARK_DATA_DIR, else the default.
    pub fn data_dir(&self) -> std::path::PathBuf {
        if let Some(d) = &self.data_dir {
            return d.clone();
        }
        if let Ok(Some(d)) = self.settings().map(|s| s.data_dir.clone()) {
            return d;
        }
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            return "/var/lib/n8n-ark".into();
        }
        if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|x| !x.is_empty()) {
            return std::path::PathBuf::from(x).join("n8n-ark");
        }
        match std::env::var_os("HOME") {
            Some(h) => std::path::PathBuf::from(h).join(".local/share/n8n-ark"),
            None => "/var/lib/n8n-ark".into(),
        }
    }

    pub async fn open_store(&self) -> CliResult<Store> {
        let loc = self.store_location()?;
        let store = Store::open(backend_for(&loc)?, &crate::crypto::passphrase).await?;
        warn_if_unencrypted(&store);
        Ok(store)
    }
}

pub async fn run(cli: Cli) -> CliResult {
    match &cli.command {
        Command::Init(a) => init::run(&cli, a).await,
        Command::Backup(a) => backup::run(&cli, a).await,
        Command::List(a) => list::run(&cli, a).await,
        Command::Show(a) => show::run(&cli, a).await,
        Command::Diff(a) => diff::run(&cli, a).await,
        Command::History(a) => history::run(&cli, a).await,
        Command::Restore(r) => restore::run(&cli, r).await,
        Command::Catalog(a) => catalog::run(&cli, a).await,
        Command::Check(a) => check::run(&cli, a).await,
        Command::Verify(a) => verify::run(&cli, a).await,
        Command::Gc(a) => gc::run(&cli, a).await,
        Command::Benchmark(a) => benchmark::run(&cli, a).await,
        Command::Demo(a) => demo::run(&cli, a).await,
        Command::Key(k) => key::run(&cli, k).await,
        Command::Sandbox(c) => sandbox::run(&cli, c).await,
    }
}

pub fn print_json<T: serde::Serialize>(v: &T) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).expect("report types serialize")
    );
}

pub fn human_bytes(n: u64) -> String {
    humansize::format_size(n, humansize::BINARY)
}

/// A progress bar on a terminal, fed from a session's counters; nothing otherwise.
pub fn progress_for(
    session: &crate::store::ingest::BackupSession,
    total: Option<u64>,
) -> Option<ProgressGuard> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = match total {
        Some(n) => indicatif::ProgressBar::new(n),
        None => indicatif::ProgressBar::no_length(),
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {bytes}/{total_bytes} {binary_bytes_per_sec} {wide_bar} {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let counters = session.counters();
    let b = bar.clone();
    let task = tokio::spawn(async move {
        loop {
            b.set_position(
                counters
                    .logical_bytes
                    .load(std::sync::atomic::Ordering::Relaxed),
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    });
    Some(ProgressGuard { bar, task })
}

pub struct ProgressGuard {
    bar: indicatif::ProgressBar,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ProgressGuard {
    fn drop(&mut self) {
        self.task.abort();
        self.bar.finish_and_clear();
    }
}

/// Every command on an unencrypted store says so.
pub fn warn_if_unencrypted(store: &Store) {
    if !store.is_encrypted() {
        eprintln!(
            "warning: the store {} is NOT encrypted: anyone who can read it can read every backup in it",
            store.location()
        );
    }
}
