//! The command line: one file per command; `main.rs` only wires.
// First: its print macros replace std's in every module below.
#[macro_use]
pub mod stdio;
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
pub mod passphrase;
pub mod policy;
pub mod postgres_args;
pub mod progress;
pub mod repair;
pub mod restore;
pub mod sandbox;
pub mod sandbox_args;
pub mod show;
pub mod signals;
pub mod terminal;
pub mod value_enums;
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
    /// Whether `--store` was given on the command line (not only ARK_STORE):
    /// `demo` takes only that. Set by [`Cli::from_args`].
    #[arg(skip)]
    pub store_on_command_line: bool,
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
    /// Repair the store's journal after damage: record again what the
    /// store still proves, and acknowledge what is lost (a dry run without --yes).
    #[command(subcommand)]
    Repair(repair::RepairCommand),
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
    /// A usage or configuration error, found before anything was done.
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Failed(String),
    /// Stopped by a signal (it ended cleanly): the message and the exit
    /// status, 128 + the signal's number.
    #[error("{0}")]
    Interrupted(String, i32),
    /// An operation's error (`crate::ops`): its kind decides the exit status,
    /// its hint is shown after the message.
    #[error("{}", render_op_error(.0))]
    Op(crate::ops::OpError),
}

impl From<crate::ops::OpError> for CliError {
    fn from(e: crate::ops::OpError) -> CliError {
        CliError::Op(e)
    }
}

/// An operation's error as one line: the message, then what to set or run.
fn render_op_error(e: &crate::ops::OpError) -> String {
    let mut s = e.message.clone();
    if let Some(h) = &e.hint {
        let mut what = vec![];
        if let Some(set) = &h.setting {
            what.push(format!("set {set}"));
        }
        if let Some(c) = &h.command {
            if !s.contains(c.as_str()) {
                what.push(format!("run `{c}`"));
            }
        }
        if !what.is_empty() {
            s.push_str(&format!(" ({})", what.join("; ")));
        }
    }
    s
}

/// The exit codes (README, "Output, errors and exit codes"). The one place
/// they are decided;
/// clap's own usage errors exit with [`exit::USAGE`] too.
pub mod exit {
    /// The command did what it was asked.
    pub const OK: i32 = 0;
    /// It ran and failed, or found a problem (a failed backup, restore or
    /// verification, damage found by `check`, a store that cannot be opened,
    /// a backup that does not exist).
    pub const FAILED: i32 = 1;
    /// A usage or configuration error, found before anything was done: an
    /// unknown command, flag or value, a missing setting (the store, its
    /// passphrase, a database, S3 credentials), a config file that is
    /// missing or invalid.
    pub const USAGE: i32 = 2;
    /// Interrupted by Ctrl-C and cleaned up (a command stopped by another
    /// signal exits with 128 + its number: [`CliError::Interrupted`]).
    pub const INTERRUPTED: i32 = 130;
}

impl CliError {
    pub fn exit_code(&self) -> i32 {
        use crate::crypto::CryptoError as C;
        match self {
            CliError::Usage(_) => exit::USAGE,
            CliError::Store(StoreError::Crypto(
                C::NoPassphrase
                | C::NoNewPassphrase
                | C::EmptyPassphrase
                | C::Mismatch
                | C::PassphraseFile { .. },
            )) => exit::USAGE,
            CliError::Store(StoreError::Interrupted) => exit::INTERRUPTED,
            CliError::Interrupted(_, code) => *code,
            CliError::Op(e) => match e.kind {
                crate::ops::ErrorKind::Invalid => exit::USAGE,
                crate::ops::ErrorKind::Interrupted => signals::exit_code(
                    e.message
                        .split_whitespace()
                        .find(|w| w.starts_with("SIG"))
                        .unwrap_or("SIGINT"),
                ),
                _ => exit::FAILED,
            },
            _ => exit::FAILED,
        }
    }
}

pub type CliResult<T = ()> = Result<T, CliError>;

impl Cli {
    /// The command line (and the `ARK_*` variables clap reads), parsed; a
    /// usage error ends the process with clap's message and exit code 2.
    pub fn from_args() -> Cli {
        use clap::{CommandFactory, FromArgMatches};
        let matches = Cli::command().get_matches();
        let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        cli.store_on_command_line =
            matches.value_source("store") == Some(clap::parser::ValueSource::CommandLine);
        cli
    }

    /// A command's sandbox options with the n8n postgres container it should
    /// take the image from when none is given: ARK_PG_CONTAINER, else the
    /// config file's [postgres] container.
    pub fn sandbox(&self, a: &sandbox_args::SandboxArgs) -> crate::sandbox::SandboxOptions {
        a.options(crate::sandbox::pg_container_from_env().or_else(|| {
            self.settings()
                .ok()
                .and_then(|s| s.postgres.container.clone())
        }))
    }

    pub fn store_location(&self) -> CliResult<String> {
        let (location, from) = match (&self.store, self.settings().map_err(CliError::Usage)?) {
            (Some(s), _) if self.store_on_command_line => (s.clone(), "--store"),
            (Some(s), _) => (s.clone(), "ARK_STORE"),
            (None, settings) => match &settings.store {
                Some(s) => (s.clone(), "the config file's `store`"),
                None => {
                    return Err(CliError::Usage(
                        "no store given: pass --store DIR|s3://bucket/prefix or set ARK_STORE"
                            .into(),
                    ))
                }
            },
        };
        if location.trim().is_empty() {
            return Err(CliError::Usage(format!(
                "the store location is empty ({from}): give a directory or s3://bucket/prefix"
            )));
        }
        Ok(location)
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
        if crate::sys::is_root() {
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
        let store = Store::open(backend(&loc)?, &passphrase::passphrase).await?;
        warn_if_unencrypted(&store);
        Ok(store)
    }

    /// The context an operation of this command runs in: the store (opened
    /// with its passphrase), the data directory, the environment as it is
    /// now, and `cancel` (the signals' cancellation, for commands that stop
    /// cleanly).
    pub async fn context(&self, cancel: crate::cancel::Cancel) -> CliResult<crate::ops::Context> {
        let store = self.open_store().await?;
        let settings = self.settings().map_err(CliError::Usage)?.clone();
        Ok(crate::ops::Context::new(store, self.data_dir())
            .with_env(std::sync::Arc::new(crate::ops::Environment::capture()))
            .with_sandbox(sandboxes())
            .with_settings(std::sync::Arc::new(settings))
            .with_cancel(cancel))
    }
}

/// The sandbox manager of this command (one per process: every operation's
/// Context gets it, and a second Ctrl-C removes its sandboxes before the
/// command exits). Its limits come from `ARK_SANDBOX_MAX` and
/// `ARK_SANDBOX_WAIT`; an invalid value is a warning and the default is used.
pub fn sandboxes() -> std::sync::Arc<crate::sandbox::SandboxManager> {
    use crate::sandbox::{SandboxConfig, SandboxManager};
    static MANAGER: std::sync::OnceLock<std::sync::Arc<SandboxManager>> =
        std::sync::OnceLock::new();
    MANAGER
        .get_or_init(|| {
            let env = crate::ops::Environment::capture();
            let config = SandboxConfig::from_vars(|k| env.get(k)).unwrap_or_else(|e| {
                eprintln!("warning: {e}; using the default");
                SandboxConfig::default()
            });
            std::sync::Arc::new(SandboxManager::new(config))
        })
        .clone()
}

/// The backend of a store location. What is wrong with a location itself (an
/// unsupported URL, S3 credentials missing) is a configuration error.
pub fn backend(location: &str) -> CliResult<std::sync::Arc<dyn crate::store::Backend>> {
    backend_for(location, crate::ops::Environment::capture().vars())
        .map_err(|e| CliError::Usage(e.to_string()))
}

pub async fn run(cli: Cli) -> CliResult {
    // A config file named (--config, ARK_CONFIG) that is missing or invalid
    // stops every command before it does anything.
    cli.settings().map_err(CliError::Usage)?;
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
        Command::Repair(r) => repair::run(&cli, r).await,
        Command::Benchmark(a) => benchmark::run(&cli, a).await,
        Command::Demo(a) => demo::run(&cli, a).await,
        Command::Key(k) => key::run(&cli, k).await,
        Command::Sandbox(c) => sandbox::run(&cli, c).await,
    }
}

/// `user@host`, for events that say who did something.
pub fn who() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| format!("uid {}", crate::sys::uid()));
    format!("{user}@{}", crate::store::host_name())
}

/// The end of a command: its error printed as one line, and the process's
/// exit status ([`exit`]). Output that could not be written (other than to a
/// reader that went away) makes a success a failure.
pub fn finish(result: CliResult) -> i32 {
    let code = match result {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    };
    match stdio::finish() {
        Err(m) if code == exit::OK => {
            eprintln!("error: {m}");
            exit::FAILED
        }
        _ => code,
    }
}

pub fn print_json<T: serde::Serialize>(v: &T) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).expect("report types serialize")
    );
}

/// Data from outside (names of workflows, credentials, tags, files,
/// tables; ids, labels, messages) made safe for a terminal: control
/// characters are escaped (`\n`, `\r`, `\t`, `\x1b`, `\u{9b}`), and so are
/// the invisible characters that reorder text (`\u{202e}`), so that no name
/// can move the cursor, colour the screen or pass for another line. Every
/// text output of such data goes through this; `--json` carries it as it is.
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    fn escaped(c: char) -> bool {
        c.is_control()
            || matches!(
                c,
                '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
            )
    }
    if !s.chars().any(escaped) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if escaped(c) && (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if escaped(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
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
    stdio::set_progress_bar(Some(bar.clone()));
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
        stdio::set_progress_bar(None);
        self.bar.finish_and_clear();
    }
}

/// Every command on an unencrypted store says so.
pub fn warn_if_unencrypted(store: &Store) {
    if !store.is_encrypted() {
        warn_unencrypted_at(&store.location());
    }
}

/// The warning of [`warn_if_unencrypted`], for a store read without opening it.
pub fn warn_unencrypted_at(location: &str) {
    eprintln!("warning: {}", crate::ops::read::unencrypted(location));
}
