//! The command line's choices among the engine's enums (`--type`,
//! `--sandbox`, `--level`): clap's side of them, so that the engine's types
//! know nothing of clap. Each converts into the engine's type.
use crate::backup::BackupKind;
use crate::sandbox::SandboxKind;
use crate::verify::Level;

/// `backup --type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum KindArg {
    /// Every database of the PostgreSQL server, and its roles.
    PostgresFull,
    /// The n8n database.
    PostgresN8n,
    /// Config files: .env, compose file, nginx, certificates, extra paths.
    N8nConfig,
    /// Workflows only (from the database, or n8n's API), no dump.
    Flows,
    /// All of the above: enough to rebuild a dead server.
    FullSystem,
}

impl From<KindArg> for BackupKind {
    fn from(k: KindArg) -> BackupKind {
        match k {
            KindArg::PostgresFull => BackupKind::PostgresFull,
            KindArg::PostgresN8n => BackupKind::PostgresN8n,
            KindArg::N8nConfig => BackupKind::N8nConfig,
            KindArg::Flows => BackupKind::Flows,
            KindArg::FullSystem => BackupKind::FullSystem,
        }
    }
}

/// `--sandbox` / `ARK_SANDBOX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SandboxArg {
    Docker,
    Local,
}

impl From<SandboxArg> for SandboxKind {
    fn from(s: SandboxArg) -> SandboxKind {
        match s {
            SandboxArg::Docker => SandboxKind::Docker,
            SandboxArg::Local => SandboxKind::Local,
        }
    }
}

/// `verify --level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LevelArg {
    /// Every object the backup references is present.
    Exists,
    /// Every object is read, decoded and hashes to its id.
    Data,
    /// The databases are restored into a sandbox and compared with the manifest.
    Restore,
}

impl From<LevelArg> for Level {
    fn from(l: LevelArg) -> Level {
        match l {
            LevelArg::Exists => Level::Exists,
            LevelArg::Data => Level::Data,
            LevelArg::Restore => Level::Restore,
        }
    }
}
