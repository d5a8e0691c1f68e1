//! `restore full`: the whole system back from one backup.
//!
//! The order is fixed, and every step is in the plan printed first:
//!
//! 1. **Plan** (changes nothing): which of the backup's databases replace
//!    which databases of the target server, which config files are written
//!    where (re-rooted under the root, checked for escapes before anything is
//!    written), what is stopped and started, the safety backup that will be
//!    taken, the encryption-key check, the health check.
//! 2. **Safety backup** of the current state, *before anything is stopped*:
//!    a normal backup of the target (its databases that the restore replaces,
//!    and the config paths it overwrites, re-rooted), pinned so that retention
//!    never removes it. Its kind is chosen so that `restore full <safety id>
//!    --root /` puts back exactly what this restore replaces.
//! 3. **Stop n8n**: the containers of its docker compose project (found
//!    through the Docker engine by the label `com.docker.compose.project`;
//!    the database's container keeps running), or a configured stop command.
//! 4. **Databases** (`pg_restore` streaming from the store over the existing
//!    database, row counts checked against the manifest), then **config
//!    files** (modes, owners, symlinks, atomically per file).
//! 5. **Start n8n** again, **wait** (bounded) until its health endpoint
//!    answers 200 and the n8n database's row counts equal the manifest's.
//!
//! A failure at any step after n8n was stopped starts it again (best effort;
//! the message says when that failed too), keeps the safety backup, and says
//! exactly how to go back: the `restore full <safety id> --root / --yes …`
//! command. Every restore that was asked for (`--yes`) ends with a
//! `RestorePerformed` or `RestoreFailed` event (stage, message, the safety
//! backup); a plan (`--dry-run`, or a command without `--yes`) records
//! nothing and changes nothing.
//!
//! ## The encryption key
//!
//! n8n encrypts credentials with `N8N_ENCRYPTION_KEY`. A backup records a
//! keyed fingerprint of that key (never the key) and where it found it: as
//! n8n gets it, through the backed-up compose file's n8n service (its
//! `environment`, `env_file`s, the project's `.env`, a key file), else a
//! backed-up `.env` ([`crate::source::n8n_key`]), else n8n-ark's environment.
//! After a restore, two keys must agree:
//!
//! - the key the **n8n database's credentials** are encrypted with: the
//!   backup's when its n8n database is restored, else the target's current
//!   one;
//! - the key **n8n will run with**: found the way a backup finds it, in the
//!   state after the restore: a file the restore writes is the backup's
//!   (read from the store), any other (recorded as missing, or not recorded,
//!   such as an `env_file` outside the backup) is as it is on the target
//!   now; then the environment (`N8N_ENCRYPTION_KEY` of this process,
//!   standing for the key the running n8n gets from elsewhere).
//!
//! The target's current key is found the same way over the target as it is
//! now. When both fingerprints are known and differ, n8n could not decrypt
//! the credentials after the restore: the restore is refused unless
//! `--force`. Cases: a database-only backup restored onto an n8n with
//! another key; a config-only backup whose `.env` carries another key than
//! the database on the target; a backup whose key came from the environment
//! restored where the environment holds another. When either is unknown
//! (old backups, backups without config files, a target without the key
//! anywhere), the plan says so and the restore goes on. The check cannot see
//! a key set outside the compose project and this environment (e.g. in a
//! systemd unit).
use super::config::{self, ConfigOptions, PlannedFile};
use super::database::{self, DatabaseMode, DatabaseOptions, RestoreTool};
use super::{item, ChosenBackup, Outcome, Recorder, RestoreError, Result};
use crate::backup::{BackupKind, Sources};
use crate::cancel::Cancel;
use crate::source::config_files::{self, ConfigPath};
use crate::source::n8n_key;
use crate::source::postgres::{self, quote_ident, DumpRunner, PgTarget};
use crate::store::Store;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};
use store_format::contents::{ConfigFile, FileType};
use store_format::event::RestoredItem;

mod databases;
mod files;
mod health;
mod key;
mod plan;
mod steps;
mod stop_start;
#[cfg(test)]
mod tests;

pub use databases::*;
pub use files::*;
use health::*;
pub use key::*;
pub use plan::*;
pub use steps::*;
pub use stop_start::*;

/// The label docker compose puts on every container of a project.
pub const COMPOSE_PROJECT_LABEL: &str = "com.docker.compose.project";
/// The label naming a container's compose service.
pub const COMPOSE_SERVICE_LABEL: &str = "com.docker.compose.service";
/// How long to wait for n8n's health endpoint and row counts by default.
pub const DEFAULT_HEALTH_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a stop or start command may run.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(600);
/// Compose files docker compose looks for, in its order.
pub const COMPOSE_FILE_NAMES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];
/// Compose services kept running by default: the database n8n-ark restores into.
pub const DEFAULT_KEEP_SERVICES: &[&str] = &["db", "database", "postgres", "postgresql"];
/// How n8n is stopped before the restore and started after it.
#[derive(Debug, Clone)]
pub enum Control {
    /// The containers of a docker compose project, through the Docker
    /// engine. `project: None`: derived from the backed-up compose file
    /// (`COMPOSE_PROJECT_NAME` in the `.env` beside it, else its top-level
    /// `name:`, else its directory's name, normalised as compose does).
    /// Services whose names are in `keep_running` (and the database services
    /// of [`DEFAULT_KEEP_SERVICES`], and the container pg_restore runs in)
    /// are not stopped.
    Compose {
        project: Option<String>,
        keep_running: Vec<String>,
    },
    /// Shell commands (`sh -c`), e.g. `systemctl stop n8n`.
    Commands { stop: String, start: String },
    /// Nothing is stopped or started (n8n is not running on the target).
    NoStop,
}

/// What `restore full` restores into, and how.
#[derive(Clone)]
pub struct FullOptions {
    /// Config files are written under this directory (`/` on the server).
    pub root: PathBuf,
    /// The target's n8n database: the backup's n8n database replaces it.
    pub n8n_db: Option<PgTarget>,
    /// The target server for the other databases (default: the n8n
    /// database's server).
    pub pg_server: Option<PgTarget>,
    /// pg_dump for the safety backup.
    pub dump: DumpRunner,
    /// pg_restore for the restore.
    pub tool: RestoreTool,
    pub control: Control,
    /// n8n's health endpoint (e.g. `http://127.0.0.1:5678/healthz/readiness`); None:
    /// not checked.
    pub health_url: Option<String>,
    pub health_timeout: Duration,
    /// Restore every database of a `full_system` backup, not only n8n's.
    pub all_databases: bool,
    /// Keep files that differ as `.ark-before-restore` copies (off by
    /// default: the safety backup holds them).
    pub keep_before: bool,
    /// Restore even when the encryption keys do not match.
    pub force: bool,
    /// `pg_restore --no-owner --no-privileges` (a target without the dump's roles).
    pub no_owner: bool,
    /// First create the roles of the backup's globals that the target lacks
    /// (backups of a whole server).
    pub with_roles: bool,
    /// `N8N_ENCRYPTION_KEY` as n8n gets it from outside its compose project
    /// (the front end's environment, standing for a key set elsewhere): the
    /// key check's last resort. Never read from the process here.
    pub encryption_key: Option<zeroize::Zeroizing<String>>,
    /// The PATH a stop or start command's program is looked up on (the
    /// front end's environment's; None: not found unless given by path).
    pub search_path: Option<String>,
}

/// The plan: everything `restore full` would do, for people (text) and
/// programs (JSON). Making it changes nothing.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub backup_id: String,
    pub backup_kind: String,
    pub backup_finished_ms: i64,
    pub root: String,
    pub stop: StopPlan,
    pub databases: Vec<DatabasePlan>,
    /// Databases of the backup that this restore leaves alone.
    pub databases_not_restored: Vec<String>,
    pub config_files: Vec<FilePlan>,
    pub safety_backup: SafetyPlan,
    pub encryption_key: KeyPlan,
    pub health: HealthPlan,
    /// Why the restore would be refused (empty: it may go ahead).
    pub refusals: Vec<String>,
    /// What an operator should know (nothing blocking).
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StopPlan {
    /// `compose`, `commands` or `none`.
    pub method: String,
    pub project: Option<String>,
    /// Where the project name came from.
    pub project_from: Option<String>,
    pub containers: Vec<ContainerPlan>,
    pub stop_command: Option<String>,
    pub start_command: Option<String>,
    /// One line for people.
    pub summary: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ContainerPlan {
    pub name: String,
    pub id: String,
    pub service: Option<String>,
    pub state: String,
    /// `stop and start`, `keep running` or `not running`.
    pub action: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct DatabasePlan {
    /// The database's name in the backup.
    pub backup_database: String,
    pub is_n8n: bool,
    /// `user@host:port/db` on the target (never a password).
    pub target: String,
    pub target_database: String,
    pub exists: bool,
    /// `replace` (it exists) or `create`.
    pub action: String,
    pub tables: usize,
    pub rows: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct FilePlan {
    /// As recorded in the backup.
    pub path: String,
    /// Where it is written.
    pub target: String,
    pub action: String,
}

impl From<PlannedFile> for FilePlan {
    fn from(p: PlannedFile) -> FilePlan {
        FilePlan {
            path: p.path,
            target: p.target.display().to_string(),
            action: p.action,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SafetyPlan {
    /// The backup kind taken; None: no safety backup (nothing to protect).
    pub kind: Option<String>,
    pub databases: Vec<String>,
    pub config_paths: Vec<String>,
    pub summary: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct KeyPlan {
    /// `match`, `mismatch`, `unknown` or `not_applicable`.
    pub verdict: String,
    /// Fingerprints are shown shortened (16 hex digits); they are keyed by
    /// the store and tell nothing about the key.
    pub backup: Option<String>,
    pub backup_source: Option<String>,
    pub target_now: Option<String>,
    pub target_now_source: Option<String>,
    pub database_after: Option<String>,
    pub n8n_after: Option<String>,
    pub n8n_after_source: Option<String>,
    pub summary: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct HealthPlan {
    pub url: Option<String>,
    pub timeout_secs: u64,
}

/// A plan with what executing it needs.
pub struct Prepared {
    pub plan: Plan,
    databases: Vec<DbTarget>,
    /// Top-level recorded config paths, re-rooted, for the safety backup.
    safety_config_paths: Vec<ConfigPath>,
    safety_kind: Option<BackupKind>,
    /// The target for the safety backup's database part.
    safety_n8n_db: Option<PgTarget>,
    safety_server: Option<PgTarget>,
    containers: Vec<Container>,
}

#[derive(Clone)]
struct DbTarget {
    backup_database: String,
    is_n8n: bool,
    target: PgTarget,
    expected: Vec<store_format::contents::Table>,
}

#[derive(Debug, Clone)]
struct Container {
    id: String,
    name: String,
    stop: bool,
}

/// How a `restore full` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FullResult {
    /// Everything restored and checked.
    Ok,
    /// It ran to its end, but some items failed.
    Partial,
    /// It stopped at a step (`failed_stage`).
    Failed,
    /// Refused by the plan's checks: nothing was changed.
    Refused,
    /// A plan only (nothing done, nothing recorded).
    Planned,
}

/// What a `restore full` did, for the operator and for `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct FullReport {
    pub restore_id: Option<String>,
    pub backup_id: String,
    pub result: FullResult,
    pub plan: Plan,
    pub items: Vec<RestoredItem>,
    pub safety_backup: Option<String>,
    pub databases: Vec<DatabaseReport>,
    pub health: Option<HealthReport>,
    pub failed_stage: Option<String>,
    pub message: Option<String>,
    /// The command that puts the safety backup back.
    pub go_back: Option<String>,
    /// A failure could not be recorded in the journal.
    pub unrecorded: Option<String>,
    /// What the restore changed on the target, in order (`n8n stopped`,
    /// `database n8n replaced`, ...): empty when it changed nothing.
    pub changed: Vec<String>,
    pub duration_ms: u64,
}

impl FullReport {
    /// A report of `plan` with nothing done yet: `result` so far, no items,
    /// no time spent.
    pub fn of_plan(restore_id: Option<String>, plan: Plan, result: FullResult) -> FullReport {
        FullReport {
            restore_id,
            backup_id: plan.backup_id.clone(),
            result,
            plan,
            items: vec![],
            safety_backup: None,
            databases: vec![],
            health: None,
            failed_stage: None,
            message: None,
            go_back: None,
            unrecorded: None,
            changed: vec![],
            duration_ms: 0,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct DatabaseReport {
    pub backup_database: String,
    pub target_database: String,
    pub tables: usize,
    pub mismatches: usize,
    pub duration_ms: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct HealthReport {
    pub url: Option<String>,
    /// When the endpoint first answered 200, from the start (ms).
    pub healthy_after_ms: Option<u64>,
    /// Tables of the n8n database whose rows were counted after the start.
    pub tables_checked: usize,
}

/// Single-quotes `s` for a POSIX shell when it needs it.
pub fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}
