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
/// Environment variables a stop or start command does not inherit (secrets
/// of n8n-ark, not of the command).
const SECRET_ENV: &[&str] = &[
    "ARK_PASSWORD",
    "ARK_N8N_DB_PASSWORD",
    "ARK_PG_SERVER_PASSWORD",
    "ARK_N8N_API_KEY",
    "PGPASSWORD",
];

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

fn short(fp: &str) -> String {
    fp.chars().take(16).collect()
}

/// `recorded` (an absolute path of the backed-up machine) under `root`.
/// Refuses `..`, relative paths and non-normal components (a manifest is
/// data; a crafted one must not write outside the root).
pub fn reroot(root: &Path, recorded: &str) -> Result<PathBuf> {
    let p = Path::new(recorded);
    if !p.is_absolute() {
        return Err(RestoreError::Unsafe(format!(
            "the backup records the config path {recorded:?}, which is not absolute: refused"
        )));
    }
    let mut out = root.to_path_buf();
    for c in p.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => out.push(n),
            Component::ParentDir | Component::Prefix(_) => {
                return Err(RestoreError::Unsafe(format!(
                    "the backup records the config path {recorded:?}, which climbs out with `..`: refused"
                )))
            }
        }
    }
    Ok(out)
}

/// The entries of `files` that no recorded directory contains: the paths a
/// backup of the same layout is given.
pub fn top_level(files: &[ConfigFile]) -> Vec<&ConfigFile> {
    let dirs: BTreeSet<&str> = files
        .iter()
        .filter(|f| f.file_type == FileType::Directory)
        .map(|f| f.path.as_str())
        .collect();
    files
        .iter()
        .filter(|f| {
            let mut p = Path::new(&f.path);
            while let Some(parent) = p.parent() {
                if parent.to_str().is_some_and(|s| dirs.contains(s)) {
                    return false;
                }
                p = parent;
            }
            true
        })
        .collect()
}

/// A compose project name as docker compose normalises it: lower case,
/// only `a-z 0-9 _ -`, starting with a letter or digit.
pub fn normalise_project(name: &str) -> Option<String> {
    let s: String = name
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect();
    let s = s.trim_start_matches(['_', '-']).to_string();
    (!s.is_empty()).then_some(s)
}

/// The top-level `name:` of a compose file (a line without indentation).
pub fn compose_file_name(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let v = l.strip_prefix("name:")?;
        let v = v.split(" #").next().unwrap_or("").trim();
        let v = v.trim_matches(['"', '\'']);
        (!v.is_empty() && !v.contains("${")).then(|| v.to_string())
    })
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

/// The key fingerprints of the check (full values; shortened for display).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeyState {
    pub backup: Option<(String, String)>,
    pub target_now: Option<(String, String)>,
    pub n8n_after: Option<(String, String)>,
}

/// The verdict of the key check: the key of the database after the restore
/// against the key n8n runs with after it.
pub fn key_verdict(
    state: &KeyState,
    restores_n8n_db: bool,
    restores_config: bool,
) -> (&'static str, Option<String>, Option<String>) {
    if !restores_n8n_db && !restores_config {
        return ("not_applicable", None, None);
    }
    let db = if restores_n8n_db {
        state.backup.as_ref().map(|b| b.0.clone())
    } else {
        state.target_now.as_ref().map(|t| t.0.clone())
    };
    let n8n = state.n8n_after.as_ref().map(|t| t.0.clone());
    let verdict = match (&db, &n8n) {
        (Some(a), Some(b)) if a == b => "match",
        (Some(_), Some(_)) => "mismatch",
        _ => "unknown",
    };
    (verdict, db, n8n)
}

/// Where a key was found, for a message: a file, or the environment.
fn found_in(key: Option<&(String, String)>, when: &str) -> String {
    match key.map(|k| k.1.as_str()) {
        Some("environment") => format!("N8N_ENCRYPTION_KEY in n8n-ark's environment {when}"),
        Some(path) => format!("found in {path}"),
        None => "not found".into(),
    }
}

/// A regular file under the root (never through a symlink), up to 1 MiB.
fn read_small(path: &Path) -> Option<Vec<u8>> {
    crate::source::config_files::read_small(path)
}

/// The key n8n gets from outside its compose project, as the front end
/// gave it ([`FullOptions::encryption_key`]: `N8N_ENCRYPTION_KEY` of its
/// environment).
fn env_key(fp_key: &[u8; 32], key: Option<&str>) -> Option<(String, String)> {
    match key {
        Some(k) if !k.is_empty() => Some((
            config_files::fingerprint(fp_key, k),
            "environment".to_string(),
        )),
        _ => None,
    }
}

/// Whether the restore writes the backup's file at `path`.
fn restores_file(backup: &ChosenBackup, path: &str) -> bool {
    backup.manifest.contents.as_ref().is_some_and(|c| {
        c.config_files
            .iter()
            .any(|f| f.path == path && f.path_bytes.is_none() && f.file_type == FileType::File)
    })
}

/// The backup's files that the key finder reads in the state after the
/// restore (its compose file, the env files and key file it names), read
/// from the store: the finder is run until it asks for no file it lacks.
async fn key_files_of_backup(
    store: &Store,
    backup: &ChosenBackup,
    root: &Path,
) -> HashMap<String, Vec<u8>> {
    let mut loaded: HashMap<String, Vec<u8>> = HashMap::new();
    let Some(contents) = backup.manifest.contents.as_ref() else {
        return loaded;
    };
    for _ in 0..4 {
        let mut wanted: Vec<String> = Vec::new();
        let _ = n8n_key::find(&contents.config_files, &mut |p: &str| {
            if let Some(b) = loaded.get(p) {
                return Some(b.clone());
            }
            if restores_file(backup, p) {
                wanted.push(p.to_string());
                return None;
            }
            reroot(root, p).ok().and_then(|t| read_small(&t))
        });
        if wanted.is_empty() {
            break;
        }
        for p in wanted {
            let item = contents
                .config_files
                .iter()
                .find(|f| f.path == p)
                .and_then(|f| f.item.as_deref())
                .and_then(|name| backup.manifest.items.iter().find(|i| i.name == name));
            let mut buf = Vec::new();
            if let Some(item) = item.filter(|i| i.size <= 1 << 20) {
                if crate::store::reader::write_item(store, item, &mut buf)
                    .await
                    .is_err()
                {
                    buf.clear();
                }
            }
            loaded.insert(p, buf);
        }
    }
    loaded
}

/// The key fingerprints before and after the restore (see the module
/// documentation). `backup_files`: [`key_files_of_backup`].
fn key_state(
    store: &Store,
    backup: &ChosenBackup,
    root: &Path,
    restores_config: bool,
    backup_files: &HashMap<String, Vec<u8>>,
    env: Option<&str>,
) -> Result<KeyState> {
    let fp_key = config_files::fingerprint_key(store);
    let contents = backup.manifest.contents.clone().unwrap_or_default();
    let shown = |p: &str| {
        reroot(root, p)
            .map(|t| t.display().to_string())
            .unwrap_or_else(|_| p.to_string())
    };
    // Now: the target's files at the recorded paths, else the environment.
    let target_now = n8n_key::find(&contents.config_files, &mut |p: &str| {
        reroot(root, p).ok().and_then(|t| read_small(&t))
    })
    .map(|k| (config_files::fingerprint(&fp_key, &k.key), shown(&k.source)))
    .or_else(|| env_key(&fp_key, env));
    let backup_key = contents.encryption_key_fingerprint.clone().map(|fp| {
        (
            fp,
            contents
                .encryption_key_source
                .clone()
                .unwrap_or_else(|| "unknown".into()),
        )
    });
    // After: the files the restore writes are the backup's; the others stay
    // as they are on the target.
    let n8n_after = if restores_config {
        n8n_key::find(&contents.config_files, &mut |p: &str| {
            if restores_file(backup, p) {
                backup_files.get(p).cloned()
            } else {
                reroot(root, p).ok().and_then(|t| read_small(&t))
            }
        })
        .map(|k| (config_files::fingerprint(&fp_key, &k.key), shown(&k.source)))
        .or_else(|| env_key(&fp_key, env))
    } else {
        target_now.clone()
    };
    Ok(KeyState {
        backup: backup_key,
        target_now,
        n8n_after,
    })
}

/// Reads a recorded file: as it is under the root now, else from the backup.
async fn recorded_text(
    store: &Store,
    backup: &ChosenBackup,
    root: &Path,
    f: &ConfigFile,
) -> Option<String> {
    if let Some(b) = reroot(root, &f.path).ok().and_then(|p| read_small(&p)) {
        return Some(String::from_utf8_lossy(&b).into_owned());
    }
    let name = f.item.as_deref()?;
    let item = backup.manifest.items.iter().find(|i| i.name == name)?;
    if item.size > 1 << 20 {
        return None;
    }
    let mut buf = Vec::new();
    crate::store::reader::write_item(store, item, &mut buf)
        .await
        .ok()?;
    Some(String::from_utf8_lossy(&buf).into_owned())
}

/// The compose project of the backed-up compose file, and where it came from.
async fn derive_project(
    store: &Store,
    backup: &ChosenBackup,
    root: &Path,
) -> Option<(String, String)> {
    let contents = backup.manifest.contents.as_ref()?;
    let compose = contents.config_files.iter().find(|f| {
        f.file_type == FileType::File
            && Path::new(&f.path)
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| COMPOSE_FILE_NAMES.contains(&n))
    })?;
    let dir = Path::new(&compose.path).parent()?;
    // COMPOSE_PROJECT_NAME in the .env beside it wins, then `name:`, then the directory.
    let env_path = dir.join(".env");
    if let Some(env) = contents
        .config_files
        .iter()
        .find(|f| Path::new(&f.path) == env_path && f.file_type == FileType::File)
    {
        if let Some(text) = recorded_text(store, backup, root, env).await {
            if let Some(n) = config_files::env_value(&text, "COMPOSE_PROJECT_NAME")
                .and_then(|v| normalise_project(&v))
            {
                return Some((n, format!("COMPOSE_PROJECT_NAME in {}", env.path)));
            }
        }
    }
    if let Some(text) = recorded_text(store, backup, root, compose).await {
        if let Some(n) = compose_file_name(&text).and_then(|v| normalise_project(&v)) {
            return Some((n, format!("the name: of {}", compose.path)));
        }
    }
    let n = normalise_project(dir.file_name()?.to_str()?)?;
    Some((n, format!("the directory of {}", compose.path)))
}

fn docker() -> Result<bollard::Docker> {
    crate::docker_exec::connect().map_err(RestoreError::target)
}

/// Every container of a compose project (running or not).
async fn compose_containers(project: &str) -> Result<Vec<bollard::models::ContainerSummary>> {
    let d = docker()?;
    let filters = HashMap::from([(
        "label".to_string(),
        vec![format!("{COMPOSE_PROJECT_LABEL}={project}")],
    )]);
    let mut list = d
        .list_containers(Some(bollard::query_parameters::ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        }))
        .await
        .map_err(|e| {
            RestoreError::target(format!(
                "cannot list the containers of compose project {project:?} through the Docker engine: {e}"
            ))
        })?;
    list.sort_by_key(container_name);
    Ok(list)
}

fn container_name(c: &bollard::models::ContainerSummary) -> String {
    c.names
        .as_ref()
        .and_then(|n| n.first())
        .map(|n| n.trim_start_matches('/').to_string())
        .or_else(|| c.id.clone())
        .unwrap_or_default()
}

/// Makes the plan. Reads the backup's manifest, the target's files under the
/// root, the target server's list of databases and (for compose) the Docker
/// engine's containers; changes nothing.
pub async fn plan(store: &Store, backup: &ChosenBackup, opts: &FullOptions) -> Result<Prepared> {
    let m = &backup.manifest;
    let contents = m.contents.clone().unwrap_or_default();
    let mut refusals = Vec::new();
    let mut notes = Vec::new();
    let kind = m.kind.as_str();
    let has_files = contents
        .config_files
        .iter()
        .any(|f| f.file_type != FileType::Missing);
    if kind == BackupKind::Flows.as_str() || (contents.databases.is_empty() && !has_files) {
        return Err(RestoreError::Invalid(format!(
            "backup {} ({kind}) holds no database and no config files: nothing for restore full \
             (workflows: n8n-ark restore workflow)",
            backup.backup_id
        )));
    }

    let restores_config = has_files;

    // Databases.
    let all = kind == BackupKind::PostgresFull.as_str() || opts.all_databases;
    let any_n8n = contents.databases.iter().any(|d| d.is_n8n);
    let chosen: Vec<&store_format::contents::Database> = contents
        .databases
        .iter()
        .filter(|d| all || !any_n8n || d.is_n8n)
        .collect();
    let databases_not_restored: Vec<String> = contents
        .databases
        .iter()
        .filter(|d| !chosen.iter().any(|c| c.name == d.name))
        .map(|d| d.name.clone())
        .collect();
    if !databases_not_restored.is_empty() {
        notes.push(format!(
            "databases of the backup not restored: {} (add --all-databases to restore them too)",
            databases_not_restored.join(", ")
        ));
    }
    if contents.globals_item.is_some() && !opts.with_roles && !chosen.is_empty() {
        notes.push(
            "roles (pg_dumpall --globals-only) are not restored: the target server keeps its own \
             (--with-roles creates the ones it lacks)"
                .into(),
        );
    }
    let server = opts.pg_server.clone().or_else(|| opts.n8n_db.clone());
    let mut db_targets = Vec::new();
    let mut db_plans = Vec::new();
    let mut existing = BTreeSet::new();
    if !chosen.is_empty() {
        let Some(server) = server.clone() else {
            return Err(RestoreError::Invalid(
                "restoring databases needs the target server: pass --n8n-db postgres://user@host:port/db \
                 (or set ARK_N8N_DB, or [n8n] database in the config file), or --pg-server"
                    .into(),
            ));
        };
        // The list of databases, from the server's maintenance database
        // (the n8n database may not exist yet).
        let listing = match &opts.pg_server {
            Some(s) => s.clone(),
            None => server.with_database("postgres"),
        };
        let names = match postgres::list_databases(&listing).await {
            Ok(n) => n,
            Err(first) => match &opts.n8n_db {
                Some(db) if opts.pg_server.is_none() => postgres::list_databases(db)
                    .await
                    .map_err(|_| RestoreError::Source(first))?,
                _ => return Err(RestoreError::Source(first)),
            },
        };
        existing.extend(names);
        for d in &chosen {
            // A database replaces the one of its own name (the restored .env
            // names it); the n8n database with n8n's credentials.
            let target = match (&opts.n8n_db, d.is_n8n) {
                (Some(t), true) => {
                    if t.database != d.name {
                        let msg = format!(
                            "the backup's n8n database is {:?}, the target's (--n8n-db) is {:?}: restore full \
                             replaces {:?} on the target",
                            d.name, t.database, d.name
                        );
                        if restores_config {
                            notes.push(format!("{msg}, which the restored config names"));
                        } else {
                            refusals.push(format!(
                                "{msg}, but n8n's config (not in this backup) names {:?}. Point --n8n-db at \
                                 .../{}, or use `n8n-ark restore database` with --as or --replace",
                                t.database, d.name
                            ));
                        }
                    }
                    t.with_database(&d.name)
                }
                _ => server.with_database(&d.name),
            };
            let exists = existing.contains(&target.database);
            db_plans.push(DatabasePlan {
                backup_database: d.name.clone(),
                is_n8n: d.is_n8n,
                target: target.display(),
                target_database: target.database.clone(),
                exists,
                action: if exists { "replace" } else { "create" }.into(),
                tables: d.tables.len(),
                rows: d.tables.iter().map(|t| t.rows).sum(),
            });
            db_targets.push(DbTarget {
                backup_database: d.name.clone(),
                is_n8n: d.is_n8n,
                target,
                expected: d.tables.clone(),
            });
        }
        // pg_restore, the server, the connecting roles' privileges, the
        // dump's roles, the space: checked now, before the safety backup
        // (the roles are created first with --with-roles).
        let check_opts = |t: &DbTarget| DatabaseOptions {
            no_owner: opts.no_owner || opts.with_roles,
            target_flag: if t.is_n8n && opts.n8n_db.is_some() {
                "--n8n-db"
            } else if opts.pg_server.is_some() {
                "--pg-server"
            } else {
                "--n8n-db"
            },
        };
        if opts.with_roles && contents.globals_item.is_none() {
            refusals.push(format!(
                "--with-roles: backup {} ({kind}) holds no roles (only postgres_full and full_system backups do)",
                backup.backup_id
            ));
        }
        for t in &db_targets {
            match database::preflight(
                store,
                backup,
                &t.backup_database,
                &t.target,
                &opts.tool,
                &DatabaseMode::Replace,
                &check_opts(t),
            )
            .await
            {
                Ok(p) => notes.extend(
                    p.notes
                        .into_iter()
                        .map(|n| format!("database {}: {n}", t.backup_database)),
                ),
                Err(e) => refusals.push(format!("database {}: {e}", t.backup_database)),
            }
        }
        let mut seen = BTreeSet::new();
        for t in &db_targets {
            if !seen.insert((
                t.target.host.clone(),
                t.target.port,
                t.target.database.clone(),
            )) {
                return Err(RestoreError::Invalid(format!(
                    "two databases of the backup would both replace {}: pass --n8n-db naming another database",
                    t.target.display()
                )));
            }
        }
    }

    // Config files (refuses unsafe paths before anything is written).
    let config_opts = ConfigOptions {
        root: opts.root.clone(),
        only: vec![],
        keep_before: opts.keep_before,
    };
    let config_files: Vec<FilePlan> = if contents.config_files.is_empty() {
        vec![]
    } else {
        config::plan_config(backup, &config_opts)?
            .into_iter()
            .map(FilePlan::from)
            .collect()
    };
    let mut safety_config_paths = Vec::new();
    for f in top_level(&contents.config_files) {
        let target = reroot(&opts.root, &f.path)?;
        let mut pattern = target
            .to_str()
            .map(str::to_string)
            .ok_or_else(|| RestoreError::Invalid(format!("{} is not UTF-8", target.display())))?;
        if f.file_type != FileType::Missing {
            pattern = glob::Pattern::escape(&pattern);
        } else {
            // A missing entry may be a glob: escape only the root.
            let root = opts.root.to_str().unwrap_or("/").trim_end_matches('/');
            pattern = format!("{}{}", glob::Pattern::escape(root), f.path);
        }
        safety_config_paths.push(ConfigPath::optional(pattern));
    }

    // Stop and start.
    let mut containers = Vec::new();
    let stop = match &opts.control {
        Control::NoStop => StopPlan {
            method: "none".into(),
            project: None,
            project_from: None,
            containers: vec![],
            stop_command: None,
            start_command: None,
            summary: "nothing is stopped or started (--no-stop: n8n is not running on the target)"
                .into(),
        },
        Control::Commands { stop, start } => {
            for (what, cmd) in [("stop", stop), ("start", start)] {
                if let Err(why) = check_command(cmd) {
                    refusals.push(format!(
                        "the {what} command `{cmd}` cannot run: {why}. Fix it (it runs with `sh -c`), or pass \
                         --no-stop if n8n is not running on the target"
                    ));
                }
            }
            StopPlan {
                method: "commands".into(),
                project: None,
                project_from: None,
                containers: vec![],
                stop_command: Some(stop.clone()),
                start_command: Some(start.clone()),
                summary: format!("n8n is stopped with `{stop}` and started with `{start}`"),
            }
        }
        Control::Compose {
            project,
            keep_running,
        } => {
            let (project, from) = match project {
                Some(p) => (Some(p.clone()), Some("--compose-project".to_string())),
                None => match derive_project(store, backup, &opts.root).await {
                    Some((p, from)) => (Some(p), Some(from)),
                    None => (None, None),
                },
            };
            match project {
                None => {
                    refusals.push(
                        "cannot tell how to stop n8n: the backup holds no compose file to name its compose \
                         project. Pass --compose-project NAME, or --stop-command and --start-command, or \
                         --no-stop if n8n is not running on the target"
                            .into(),
                    );
                    StopPlan {
                        method: "compose".into(),
                        project: None,
                        project_from: None,
                        containers: vec![],
                        stop_command: None,
                        start_command: None,
                        summary: "no compose project known".into(),
                    }
                }
                Some(project) => {
                    let pg_container = match &opts.tool {
                        RestoreTool::Docker { container, .. } => Some(container.clone()),
                        _ => None,
                    };
                    let listed = match compose_containers(&project).await {
                        Ok(l) => l,
                        Err(e) => {
                            refusals.push(format!(
                                "{e}: n8n (compose project {project}) cannot be stopped. Start the Docker \
                                 engine, or pass --stop-command and --start-command, or --no-stop if n8n is \
                                 not running on the target"
                            ));
                            vec![]
                        }
                    };
                    let mut plans = Vec::new();
                    for c in &listed {
                        let name = container_name(c);
                        let id = c.id.clone().unwrap_or_default();
                        let service = c
                            .labels
                            .as_ref()
                            .and_then(|l| l.get(COMPOSE_SERVICE_LABEL))
                            .cloned();
                        let state = c
                            .state
                            .map(|s| s.to_string())
                            .unwrap_or_else(|| "unknown".into());
                        let keep = service.as_deref().is_some_and(|s| {
                            DEFAULT_KEEP_SERVICES.contains(&s)
                                || keep_running.iter().any(|k| k == s)
                        }) || pg_container
                            .as_deref()
                            .is_some_and(|p| p == name || id.starts_with(p));
                        let running = matches!(state.as_str(), "running" | "restarting");
                        let action = if keep {
                            "keep running"
                        } else if running {
                            "stop and start"
                        } else {
                            "not running"
                        };
                        if running && !keep {
                            containers.push(Container {
                                id: id.clone(),
                                name: name.clone(),
                                stop: true,
                            });
                        }
                        plans.push(ContainerPlan {
                            name,
                            id: id.chars().take(12).collect(),
                            service,
                            state,
                            action: action.into(),
                        });
                    }
                    let summary = if containers.is_empty() {
                        format!(
                            "no running container of compose project {project} to stop{}",
                            if listed.is_empty() {
                                " (it has no containers)"
                            } else {
                                ""
                            }
                        )
                    } else {
                        format!(
                            "the containers of compose project {project} are stopped and started again: {}",
                            containers
                                .iter()
                                .map(|c| c.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    };
                    StopPlan {
                        method: "compose".into(),
                        project: Some(project),
                        project_from: from,
                        containers: plans,
                        stop_command: None,
                        start_command: None,
                        summary,
                    }
                }
            }
        }
    };
    if stop.method == "compose" && restores_config && !containers.is_empty() {
        notes.push(
            "containers are started again as they were created: if the restored compose file or .env \
             differ from the current ones, run `docker compose up -d` in the project's directory afterwards"
                .into(),
        );
    }

    // The encryption key.
    let restores_n8n_db = db_targets.iter().any(|d| d.is_n8n);
    let backup_files = if restores_config {
        key_files_of_backup(store, backup, &opts.root).await
    } else {
        HashMap::new()
    };
    let ks = key_state(
        store,
        backup,
        &opts.root,
        restores_config,
        &backup_files,
        opts.encryption_key.as_ref().map(|k| k.as_str()),
    )?;
    let (verdict, db_fp, n8n_fp) = key_verdict(&ks, restores_n8n_db, restores_config);
    let summary = match verdict {
        "match" => {
            "the n8n database's credentials and the key n8n runs with after the restore match"
                .to_string()
        }
        "mismatch" => {
            let db_from = if restores_n8n_db {
                format!(
                    "the restored n8n database's credentials were encrypted with the backup's key ({})",
                    found_in(ks.backup.as_ref(), "when the backup ran")
                )
            } else {
                format!(
                    "the target's n8n database's credentials are encrypted with the target's current key ({})",
                    found_in(ks.target_now.as_ref(), "now")
                )
            };
            format!(
                "{db_from}, but after the restore n8n runs with another key ({}): n8n could not \
                 decrypt any credential. Restore with the matching .env, set N8N_ENCRYPTION_KEY to the \
                 backup's key, or pass --force to restore anyway",
                found_in(ks.n8n_after.as_ref(), "now")
            )
        }
        "unknown" => {
            let mut why = vec![];
            if db_fp.is_none() {
                why.push(if restores_n8n_db {
                    "the backup records no fingerprint of N8N_ENCRYPTION_KEY (only n8n_config and full_system backups do, when they find the key)"
                } else {
                    "the target's current N8N_ENCRYPTION_KEY was found neither in a .env file at the recorded paths nor in the environment"
                });
            }
            if n8n_fp.is_none() {
                why.push("the key n8n runs with after the restore was found neither in a .env file nor in the environment");
            }
            format!("cannot check the encryption key: {}", why.join("; "))
        }
        _ => "no n8n database or config file is restored".to_string(),
    };
    let key_mismatch = verdict == "mismatch";
    if key_mismatch && !opts.force {
        refusals.push(format!("encryption key mismatch: {summary}"));
    } else if key_mismatch {
        notes.push(format!(
            "--force: restoring despite an encryption key mismatch: {summary}"
        ));
    } else if verdict == "unknown" && restores_n8n_db {
        notes.push(summary.clone());
    }
    let encryption_key = KeyPlan {
        verdict: verdict.into(),
        backup: ks.backup.as_ref().map(|b| short(&b.0)),
        backup_source: ks.backup.as_ref().map(|b| b.1.clone()),
        target_now: ks.target_now.as_ref().map(|b| short(&b.0)),
        target_now_source: ks.target_now.as_ref().map(|b| b.1.clone()),
        database_after: db_fp.as_deref().map(short),
        n8n_after: ks.n8n_after.as_ref().map(|b| short(&b.0)),
        n8n_after_source: ks.n8n_after.as_ref().map(|b| b.1.clone()),
        summary,
    };

    // The safety backup: what the restore replaces that exists now.
    let replaced: Vec<&DbTarget> = db_targets
        .iter()
        .filter(|d| existing.contains(&d.target.database))
        .collect();
    let n8n_existing = replaced.iter().find(|d| d.is_n8n).map(|d| d.target.clone());
    let safety_kind = match (replaced.is_empty(), restores_config) {
        (false, true) => Some(BackupKind::FullSystem),
        (false, false) if replaced.len() == 1 && replaced[0].is_n8n => {
            Some(BackupKind::PostgresN8n)
        }
        (false, false) => Some(BackupKind::PostgresFull),
        (true, true) => Some(BackupKind::N8nConfig),
        (true, false) => None,
    };
    let (safety_n8n_db, safety_server) = match safety_kind {
        Some(BackupKind::PostgresN8n) => (n8n_existing.clone(), None),
        Some(BackupKind::FullSystem) | Some(BackupKind::PostgresFull) => {
            // The server to list and dump: --pg-server, else the n8n
            // database's, else any database that exists on it.
            let srv = match (&opts.pg_server, &n8n_existing) {
                (Some(s), _) => Some(s.clone()),
                (None, Some(_)) => None,
                (None, None) => Some(replaced[0].target.clone()),
            };
            (n8n_existing.clone(), srv)
        }
        _ => (None, None),
    };
    let safety_dbs: Vec<String> = match safety_kind {
        Some(BackupKind::PostgresN8n) => {
            replaced.iter().map(|d| d.target.database.clone()).collect()
        }
        Some(BackupKind::FullSystem) | Some(BackupKind::PostgresFull) => {
            existing.iter().cloned().collect()
        }
        _ => vec![],
    };
    let safety_summary = match safety_kind {
        None => {
            "no safety backup: nothing the restore replaces exists on the target yet".to_string()
        }
        Some(k) => {
            let mut parts = vec![];
            if !safety_dbs.is_empty() {
                parts.push(format!("databases {}", safety_dbs.join(", ")));
            }
            if matches!(k, BackupKind::FullSystem | BackupKind::N8nConfig) {
                parts.push(format!(
                    "{} config paths under {}",
                    safety_config_paths.len(),
                    opts.root.display()
                ));
            }
            format!(
                "a {k} backup of the current {} is taken first, pinned (label `{}`) so that retention never removes it",
                parts.join(" and "),
                crate::backup::PINNED_LABEL
            )
        }
    };
    let safety_backup = SafetyPlan {
        kind: safety_kind.map(|k| k.as_str().to_string()),
        databases: safety_dbs,
        config_paths: if matches!(
            safety_kind,
            Some(BackupKind::FullSystem) | Some(BackupKind::N8nConfig)
        ) {
            safety_config_paths
                .iter()
                .map(|p| p.pattern.clone())
                .collect()
        } else {
            vec![]
        },
        summary: safety_summary,
    };
    if !matches!(
        safety_kind,
        Some(BackupKind::FullSystem) | Some(BackupKind::N8nConfig)
    ) {
        safety_config_paths.clear();
    }

    let health = HealthPlan {
        url: match opts.control {
            Control::NoStop => None,
            _ => opts.health_url.clone(),
        },
        timeout_secs: opts.health_timeout.as_secs(),
    };
    if health.url.is_none() && !matches!(opts.control, Control::NoStop) {
        notes.push(
            "n8n's health is not checked after the start: no n8n URL (--n8n-url, ARK_N8N_URL) or --health-url".into(),
        );
    }

    Ok(Prepared {
        plan: Plan {
            backup_id: backup.backup_id.clone(),
            backup_kind: m.kind.clone(),
            backup_finished_ms: backup.finished_ms,
            root: opts.root.display().to_string(),
            stop,
            databases: db_plans,
            databases_not_restored,
            config_files,
            safety_backup,
            encryption_key,
            health,
            refusals,
            notes,
        },
        databases: db_targets,
        safety_config_paths,
        safety_kind,
        safety_n8n_db,
        safety_server,
        containers,
    })
}

/// A step that failed: where, and the error.
struct StepError {
    stage: &'static str,
    message: String,
}

fn step(stage: &'static str) -> impl Fn(RestoreError) -> StepError {
    move |e| StepError {
        stage,
        message: e.to_string(),
    }
}

/// Whether a stop or start command can run, as far as can be told without
/// running it: its program (the first word, after variable assignments) is
/// found on the PATH or is an executable file; for `sh FILE` (or bash, dash),
/// the script exists. A command that starts with shell syntax is not judged.
pub fn check_command(cmd: &str) -> std::result::Result<(), String> {
    let words: Vec<&str> = cmd.split_whitespace().collect();
    let mut i = 0;
    while i < words.len()
        && words[i].contains('=')
        && !words[i].starts_with('=')
        && !words[i].contains('/')
    {
        i += 1;
    }
    let Some(&program) = words.get(i) else {
        return Err("it is empty".into());
    };
    const SHELL: &[&str] = &[
        "if", "for", "while", "case", "{", "(", "!", "exec", "cd", ".", ":", "true", "false",
        "test", "[", "command", "eval", "set", "export", "echo", "printf", "kill", "trap", "wait",
    ];
    let plain = program
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./+@".contains(c));
    if !plain || SHELL.contains(&program) {
        return Ok(());
    }
    let executable = |p: &Path| -> bool {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    let found = if program.contains('/') {
        if !executable(Path::new(program)) {
            return Err(format!("{program} is not an executable file"));
        }
        true
    } else {
        std::env::var_os("PATH")
            .map(|path| std::env::split_paths(&path).any(|d| executable(&d.join(program))))
            .unwrap_or(false)
    };
    if !found {
        return Err(format!("{program} is not found on the PATH"));
    }
    if matches!(program.rsplit('/').next(), Some("sh" | "bash" | "dash")) {
        if let Some(script) = words.get(i + 1).filter(|w| !w.starts_with('-')) {
            let p = Path::new(script);
            if (p.is_absolute() || script.starts_with("./")) && !p.is_file() {
                return Err(format!("the script {script} does not exist"));
            }
        }
    }
    Ok(())
}

/// Runs a stop or start command with `sh -c`, bounded by [`COMMAND_TIMEOUT`].
async fn run_command(what: &str, cmd: &str) -> Result<String> {
    let mut c = tokio::process::Command::new("sh");
    c.arg("-c")
        .arg(cmd)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    for v in SECRET_ENV {
        c.env_remove(v);
    }
    let out = tokio::time::timeout(COMMAND_TIMEOUT, c.output())
        .await
        .map_err(|_| {
            RestoreError::target(format!(
                "the {what} command `{cmd}` did not finish within {} s",
                COMMAND_TIMEOUT.as_secs()
            ))
        })?
        .map_err(|e| RestoreError::target(format!("cannot run the {what} command `{cmd}`: {e}")))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let err: Vec<&str> = err
            .lines()
            .filter(|l| !l.trim().is_empty())
            .take(5)
            .collect();
        return Err(RestoreError::target(format!(
            "the {what} command `{cmd}` failed ({}){}",
            out.status,
            if err.is_empty() {
                String::new()
            } else {
                format!(": {}", err.join(" / "))
            }
        )));
    }
    Ok(format!("`{cmd}` ran ({})", out.status))
}

/// Stops what the plan says; returns the containers stopped (to start them
/// again). On an error, the ones already stopped are started again.
async fn stop_n8n(prepared: &Prepared, opts: &FullOptions) -> Result<(Vec<Container>, String)> {
    match &opts.control {
        Control::NoStop => Ok((vec![], "nothing stopped (--no-stop)".into())),
        Control::Commands { stop, .. } => Ok((vec![], run_command("stop", stop).await?)),
        Control::Compose { .. } => {
            let to_stop: Vec<Container> = prepared
                .containers
                .iter()
                .filter(|c| c.stop)
                .cloned()
                .collect();
            if to_stop.is_empty() {
                return Ok((vec![], "no running container to stop".into()));
            }
            let d = docker()?;
            let mut stopped = Vec::new();
            for c in to_stop {
                // t: None keeps the container's own stop timeout (compose's stop_grace_period).
                match d
                    .stop_container(
                        &c.id,
                        None::<bollard::query_parameters::StopContainerOptions>,
                    )
                    .await
                {
                    Ok(())
                    | Err(bollard::errors::Error::DockerResponseServerError {
                        status_code: 304,
                        ..
                    }) => stopped.push(c),
                    Err(e) => {
                        let again = start_containers(&stopped).await;
                        return Err(RestoreError::target(format!(
                            "cannot stop container {}: {e}{}",
                            c.name,
                            match again {
                                Ok(_) if stopped.is_empty() => String::new(),
                                Ok(_) => " (the containers already stopped were started again)"
                                    .to_string(),
                                Err(e2) =>
                                    format!(" (and starting the ones already stopped failed: {e2})"),
                            }
                        )));
                    }
                }
            }
            let names: Vec<&str> = stopped.iter().map(|c| c.name.as_str()).collect();
            let detail = format!("stopped {}", names.join(", "));
            Ok((stopped, detail))
        }
    }
}

async fn start_containers(containers: &[Container]) -> Result<String> {
    if containers.is_empty() {
        return Ok("no container to start".into());
    }
    let d = docker()?;
    let mut errors = Vec::new();
    let mut started = Vec::new();
    for c in containers.iter().rev() {
        match d
            .start_container(
                &c.id,
                None::<bollard::query_parameters::StartContainerOptions>,
            )
            .await
        {
            Ok(())
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            }) => started.push(c.name.as_str()),
            Err(e) => errors.push(format!("{}: {e}", c.name)),
        }
    }
    if !errors.is_empty() {
        return Err(RestoreError::target(format!(
            "cannot start container(s) {}",
            errors.join("; ")
        )));
    }
    started.reverse();
    Ok(format!("started {}", started.join(", ")))
}

async fn start_n8n(opts: &FullOptions, stopped: &[Container]) -> Result<String> {
    match &opts.control {
        Control::NoStop => Ok("nothing started (--no-stop)".into()),
        Control::Commands { start, .. } => run_command("start", start).await,
        Control::Compose { .. } => start_containers(stopped).await,
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    }
}

/// Waits until `url` answers 200, until `deadline`; the time it took.
async fn wait_healthy(url: &str, started: Instant, deadline: Instant) -> Result<u64> {
    let parsed = url::Url::parse(url)
        .map_err(|e| RestoreError::Invalid(format!("the health URL {url:?} is not valid: {e}")))?;
    let mut b = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none());
    if is_loopback(&parsed) {
        b = b.no_proxy();
    }
    let client = b
        .build()
        .map_err(|e| RestoreError::target(format!("cannot set up an HTTP client: {e}")))?;
    loop {
        let last = match client.get(parsed.clone()).send().await {
            Ok(r) if r.status() == reqwest::StatusCode::OK => {
                return Ok(started.elapsed().as_millis() as u64)
            }
            Ok(r) => format!("it answered {}", r.status()),
            Err(e) => {
                let mut m = e.to_string();
                let mut src = std::error::Error::source(&e);
                while let Some(s) = src {
                    m = format!("{m}: {s}");
                    src = s.source();
                }
                m
            }
        };
        if Instant::now() >= deadline {
            return Err(RestoreError::Target {
                message: format!(
                    "n8n's health endpoint {url} did not answer 200 within {} s (last: {last})",
                    deadline.saturating_duration_since(started).as_secs()
                ),
                retryable: true,
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Counts the rows of the manifest's tables in `target`; the tables whose
/// counts differ (`schema.table: expected N, found M`).
pub async fn count_mismatches(
    target: &PgTarget,
    tables: &[store_format::contents::Table],
) -> Result<Vec<String>> {
    use sqlx::Connection;
    let mut conn = target.connect().await?;
    let mut out = Vec::new();
    for t in tables {
        let sql = format!(
            "SELECT count(*) FROM {}.{}",
            quote_ident(&t.schema),
            quote_ident(&t.name)
        );
        match sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql))
            .fetch_one(&mut conn)
            .await
        {
            Ok(n) if n as u64 == t.rows => {}
            Ok(n) => out.push(format!(
                "{}.{}: expected {}, found {n}",
                t.schema, t.name, t.rows
            )),
            Err(sqlx::Error::Database(d)) if d.code().as_deref() == Some("42P01") => {
                out.push(format!(
                    "{}.{}: expected {}, the table is missing",
                    t.schema, t.name, t.rows
                ))
            }
            Err(e) => {
                let _ = conn.close().await;
                return Err(RestoreError::target(format!(
                    "counting the rows of {}.{} in {}: {e}",
                    t.schema,
                    t.name,
                    target.display()
                )));
            }
        }
    }
    let _ = conn.close().await;
    Ok(out)
}

/// The target, for the event (`root:/ postgres:user@host:port`).
pub fn target_description(opts: &FullOptions) -> String {
    let mut s = format!("root:{}", opts.root.display());
    if let Some(t) = opts.pg_server.as_ref().or(opts.n8n_db.as_ref()) {
        s.push_str(&format!(" postgres:{}@{}:{}", t.user, t.host, t.port));
    }
    s
}

/// Runs the restore the plan describes (the caller checked `--yes`), records
/// its event and returns the report. `go_back` renders the command that
/// restores a safety backup; `progress` receives one line per step.
#[allow(clippy::too_many_arguments)]
pub async fn execute(
    store: &Store,
    backup: &ChosenBackup,
    prepared: &Prepared,
    opts: &FullOptions,
    recorder: &Recorder,
    go_back: &(dyn Fn(&str) -> String + Sync),
    progress: &(dyn Fn(&str) + Sync),
    cancel: &Cancel,
) -> FullReport {
    let mut report = FullReport {
        restore_id: Some(recorder.restore_id.clone()),
        backup_id: backup.backup_id.clone(),
        result: FullResult::Ok,
        plan: prepared.plan.clone(),
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
    };
    if !prepared.plan.refusals.is_empty() {
        let message = format!(
            "restore full refused, nothing was changed: {}",
            prepared.plan.refusals.join("; ")
        );
        report.result = FullResult::Refused;
        report.failed_stage = Some("check".into());
        report.unrecorded = recorder
            .failed(store, "check", &message, vec![], None)
            .await;
        report.message = Some(message);
        report.duration_ms = recorder.elapsed_ms();
        return report;
    }
    let mut stopped: Option<Vec<Container>> = None;
    let r = run_steps(
        store,
        backup,
        prepared,
        opts,
        recorder,
        progress,
        cancel,
        &mut report,
        &mut stopped,
    )
    .await;
    match r {
        Ok(()) => {
            match recorder
                .performed(store, report.items.clone(), report.safety_backup.clone())
                .await
            {
                Ok(ev) => {
                    report.result = if ev.result == "partial" {
                        FullResult::Partial
                    } else {
                        FullResult::Ok
                    }
                }
                Err(e) => {
                    report.unrecorded = Some(format!(
                        "the restore succeeded, but its RestorePerformed event could not be recorded: {e}"
                    ))
                }
            }
        }
        Err(StepError { stage, message }) => {
            let mut text = format!("restore full failed at {stage}: {message}.");
            // n8n again, if it was stopped and not started yet.
            if let Some(containers) = stopped.take() {
                progress("starting n8n again after the failure");
                match start_n8n(opts, &containers).await {
                    Ok(d) => {
                        report.items.push(item("n8n:start", Outcome::Restored, d));
                        text.push_str(" n8n was started again.");
                    }
                    Err(e) => {
                        report
                            .items
                            .push(item("n8n:start", Outcome::Failed, e.to_string()));
                        text.push_str(&format!(
                            " n8n could NOT be started again ({e}): start it by hand."
                        ));
                    }
                }
            }
            // What changed on the target, exactly (a database whose restore
            // failed before its swap was not changed; n8n stopped and started
            // again is not a change of its data).
            let data_changes: Vec<&String> = report
                .changed
                .iter()
                .filter(|c| !c.starts_with("n8n "))
                .collect();
            if data_changes.is_empty() {
                text.push_str(if report.changed.is_empty() {
                    " Nothing was changed."
                } else {
                    " No database and no config file was changed."
                });
            } else {
                text.push_str(&format!(
                    " Changed before it stopped: {}.",
                    data_changes
                        .iter()
                        .map(|c| c.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                ));
            }
            if let Some(s) = &report.safety_backup {
                let cmd = go_back(s);
                text.push_str(&format!(
                    " The safety backup {s} (pinned) holds the state from before this restore; to go back, run: {cmd}"
                ));
                report.go_back = Some(cmd);
            } else if !data_changes.is_empty() {
                text.push_str(
                    " There is no safety backup: nothing that the restore replaces existed before it.",
                );
            }
            report.result = FullResult::Failed;
            report.failed_stage = Some(stage.into());
            report.unrecorded = recorder
                .failed(
                    store,
                    stage,
                    &text,
                    report.items.clone(),
                    report.safety_backup.clone(),
                )
                .await;
            report.message = Some(text);
        }
    }
    report.duration_ms = recorder.elapsed_ms();
    report
}

#[allow(clippy::too_many_arguments)]
async fn run_steps(
    store: &Store,
    backup: &ChosenBackup,
    prepared: &Prepared,
    opts: &FullOptions,
    recorder: &Recorder,
    progress: &(dyn Fn(&str) + Sync),
    cancel: &Cancel,
    report: &mut FullReport,
    stopped: &mut Option<Vec<Container>>,
) -> std::result::Result<(), StepError> {
    let started = Instant::now();
    // Where an interruption is honoured: between steps.
    let stop_point = |stage: &'static str, when: &str| match cancel.interrupted() {
        Some(why) => Err(StepError {
            stage,
            message: format!("{why} {when}"),
        }),
        None => Ok(()),
    };
    // 1. The safety backup, before anything is stopped.
    stop_point("safety_backup", "before the safety backup")?;
    if let Some(kind) = prepared.safety_kind {
        progress(&format!(
            "taking the safety backup ({kind}) of the current state"
        ));
        let sources = Sources {
            n8n_db: prepared.safety_n8n_db.clone(),
            pg_server: prepared.safety_server.clone(),
            dump: opts.dump.clone(),
            config_paths: prepared.safety_config_paths.clone(),
            n8n_api: None,
        };
        let id = super::take_safety_backup(store, kind, &sources, &recorder.restore_id)
            .await
            .map_err(step("safety_backup"))?;
        progress(&format!("safety backup {id} taken (pinned)"));
        report.safety_backup = Some(id);
    }
    // 2. Stop n8n.
    stop_point("stop", "before n8n was stopped")?;
    progress(&format!("stopping n8n: {}", prepared.plan.stop.summary));
    if matches!(opts.control, Control::Commands { .. }) {
        // A stop command that fails may have stopped part of n8n: the start
        // command runs after any failure from here on.
        *stopped = Some(vec![]);
    }
    let (containers, detail) = stop_n8n(prepared, opts).await.map_err(step("stop"))?;
    *stopped = Some(containers);
    if !matches!(opts.control, Control::NoStop) {
        report.changed.push("n8n stopped".into());
    }
    report
        .items
        .push(item("n8n:stop", Outcome::Restored, detail));
    stop_point("database", "after n8n was stopped, before the databases")?;
    // 3. Roles the target lacks, then the databases.
    if opts.with_roles && !prepared.databases.is_empty() {
        let server = prepared.databases[0].target.clone();
        progress(&format!(
            "creating the roles {}:{} lacks",
            server.host, server.port
        ));
        let g = database::restore_globals(store, backup, &server, &opts.tool)
            .await
            .map_err(|e| {
                report
                    .items
                    .push(item("roles", Outcome::Failed, e.to_string()));
                StepError {
                    stage: "roles",
                    message: e.to_string(),
                }
            })?;
        if !g.created.is_empty() {
            report
                .changed
                .push(format!("role(s) {} created", g.created.join(", ")));
        }
        report.items.push(item(
            "roles",
            Outcome::Restored,
            format!(
                "created: {}; already there (left as they are): {}",
                if g.created.is_empty() {
                    "none".to_string()
                } else {
                    g.created.join(", ")
                },
                g.existing.len()
            ),
        ));
    }
    for d in &prepared.databases {
        let db_opts = DatabaseOptions {
            no_owner: opts.no_owner,
            target_flag: if d.is_n8n { "--n8n-db" } else { "--pg-server" },
        };
        progress(&format!(
            "restoring database {} into {}",
            d.backup_database,
            d.target.display()
        ));
        let mode = DatabaseMode::Replace;
        let r = database::restore_database(
            store,
            backup,
            &d.backup_database,
            &d.target,
            &opts.tool,
            &mode,
            &db_opts,
            &recorder.restore_id,
            cancel,
        )
        .await
        .map_err(|e| {
            report.items.push(item(
                format!("database:{}", d.backup_database),
                Outcome::Failed,
                e.to_string(),
            ));
            StepError {
                stage: if database::is_count_mismatch(&e) {
                    "verify"
                } else {
                    "database"
                },
                message: format!(
                    "database {} into {}: {e}",
                    d.backup_database,
                    d.target.display()
                ),
            }
        })?;
        report.changed.push(format!(
            "database {} {} with the backup's",
            d.target.display(),
            if r.replaced { "replaced" } else { "created" }
        ));
        for line in &r.cleaned_up {
            progress(&format!("before it: {line}"));
        }
        for n in &r.notes {
            progress(&format!("note: {n}"));
        }
        report.databases.push(DatabaseReport {
            backup_database: r.backup_database.clone(),
            target_database: r.target_database.clone(),
            tables: r.tables.len(),
            mismatches: r.mismatches,
            duration_ms: r.duration_ms,
        });
        if r.mismatches > 0 {
            let detail = format!(
                "{} of {} tables have other row counts than the manifest",
                r.mismatches,
                r.tables.len()
            );
            report.items.push(item(
                format!("database:{}", d.backup_database),
                Outcome::Failed,
                detail.clone(),
            ));
            return Err(StepError {
                stage: "verify",
                message: format!(
                    "database {} restored into {}, but {detail}",
                    d.backup_database,
                    d.target.display()
                ),
            });
        }
        report.items.push(item(
            format!("database:{}", d.backup_database),
            Outcome::Restored,
            format!(
                "into {}: {} tables, row counts equal the manifest",
                d.target.display(),
                r.tables.len()
            ),
        ));
    }
    // 4. Config files.
    if !prepared.plan.config_files.is_empty() {
        stop_point("config", "before the config files were written")?;
        progress(&format!(
            "writing {} config entries under {}",
            prepared.plan.config_files.len(),
            opts.root.display()
        ));
        let items = config::restore_config(
            store,
            backup,
            &ConfigOptions {
                root: opts.root.clone(),
                only: vec![],
                keep_before: opts.keep_before,
            },
            cancel,
        )
        .await
        .map_err(|e| {
            report
                .changed
                .push("config files: some may have been written before the error".into());
            step("config")(e)
        })?;
        let written = items
            .iter()
            .filter(|i| i.outcome == Outcome::Restored.as_str())
            .count();
        if written > 0 {
            report
                .changed
                .push(format!("{written} config entries written"));
        }
        let failed: Vec<String> = items
            .iter()
            .filter(|i| i.outcome == Outcome::Failed.as_str())
            .map(|i| format!("{} ({})", i.name, i.detail))
            .collect();
        report.items.extend(items);
        stop_point("config", "while the config files were written")?;
        if !failed.is_empty() {
            return Err(StepError {
                stage: "config",
                message: format!(
                    "{} config entries were not written: {}",
                    failed.len(),
                    failed.join("; ")
                ),
            });
        }
    }
    // 5. Start n8n.
    let containers = stopped.take().unwrap_or_default();
    progress("starting n8n");
    match start_n8n(opts, &containers).await {
        Ok(d) => {
            if !matches!(opts.control, Control::NoStop) {
                report.changed.push("n8n started again".into());
            }
            report.items.push(item("n8n:start", Outcome::Restored, d))
        }
        Err(e) => {
            report
                .items
                .push(item("n8n:start", Outcome::Failed, e.to_string()));
            return Err(StepError {
                stage: "start",
                message: format!("{e}; start n8n by hand"),
            });
        }
    }
    // 6. Health, then the n8n database's row counts.
    let deadline = Instant::now() + opts.health_timeout;
    let mut health = HealthReport {
        url: prepared.plan.health.url.clone(),
        healthy_after_ms: None,
        tables_checked: 0,
    };
    match &prepared.plan.health.url {
        Some(url) => {
            progress(&format!("waiting for n8n's health endpoint {url}"));
            let waited = tokio::select! {
                r = wait_healthy(url, started, deadline) => r,
                _ = cancel.cancelled() => Err(RestoreError::Interrupted(format!(
                    "{} while waiting for n8n's health endpoint",
                    cancel.interrupted().unwrap_or_default()
                ))),
            };
            let ms = waited.map_err(|e| {
                report
                    .items
                    .push(item("n8n:health", Outcome::Failed, e.to_string()));
                StepError {
                    stage: "health",
                    message: format!(
                        "{e}; the databases and config files were restored: look at n8n's logs"
                    ),
                }
            })?;
            health.healthy_after_ms = Some(ms);
            report.items.push(item(
                "n8n:health",
                Outcome::Restored,
                format!("{url} answered 200"),
            ));
        }
        None => report.items.push(item(
            "n8n:health",
            Outcome::Skipped,
            "no health URL (--health-url, or --n8n-url)",
        )),
    }
    if let Some(d) = prepared.databases.iter().find(|d| d.is_n8n) {
        progress(&format!(
            "checking the row counts of {}",
            d.target.display()
        ));
        loop {
            stop_point(
                "verify",
                "while the row counts were checked with n8n running",
            )?;
            let diff = count_mismatches(&d.target, &d.expected)
                .await
                .map_err(step("verify"))?;
            if diff.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                let detail = format!(
                    "after the start, {} tables of {} differ from the manifest: {}",
                    diff.len(),
                    d.target.display(),
                    diff.iter().take(10).cloned().collect::<Vec<_>>().join(", ")
                );
                report
                    .items
                    .push(item("verify:n8n", Outcome::Failed, detail.clone()));
                return Err(StepError {
                    stage: "verify",
                    message: format!(
                        "{detail} (they were equal right after pg_restore: n8n changed them since it started)"
                    ),
                });
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = cancel.cancelled() => {}
            }
        }
        health.tables_checked = d.expected.len();
        report.items.push(item(
            "verify:n8n",
            Outcome::Restored,
            format!(
                "{} tables of {} hold the manifest's row counts with n8n running",
                d.expected.len(),
                d.target.display()
            ),
        ));
    }
    report.health = Some(health);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(path: &str, t: FileType) -> ConfigFile {
        ConfigFile {
            path: path.into(),
            file_type: t,
            ..Default::default()
        }
    }

    #[test]
    fn reroot_refuses_escapes() {
        let r = Path::new("/srv/scratch");
        assert_eq!(
            reroot(r, "/opt/n8n/.env").unwrap(),
            PathBuf::from("/srv/scratch/opt/n8n/.env")
        );
        assert_eq!(
            reroot(Path::new("/"), "/etc/nginx").unwrap(),
            PathBuf::from("/etc/nginx")
        );
        assert!(matches!(
            reroot(r, "/opt/../../etc/passwd"),
            Err(RestoreError::Unsafe(_))
        ));
        assert!(matches!(reroot(r, "opt/n8n"), Err(RestoreError::Unsafe(_))));
    }

    #[test]
    fn top_level_entries() {
        let files = vec![
            f("/opt/n8n/.env", FileType::File),
            f("/etc/letsencrypt", FileType::Directory),
            f("/etc/letsencrypt/live", FileType::Directory),
            f("/etc/letsencrypt/live/x/cert.pem", FileType::Symlink),
            f("/etc/nginx/conf.d/*.conf", FileType::Missing),
        ];
        let top: Vec<&str> = top_level(&files).iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            top,
            [
                "/opt/n8n/.env",
                "/etc/letsencrypt",
                "/etc/nginx/conf.d/*.conf"
            ]
        );
    }

    #[test]
    fn compose_project_names() {
        assert_eq!(normalise_project("n8n").as_deref(), Some("n8n"));
        assert_eq!(
            normalise_project("My N8N.Stack").as_deref(),
            Some("myn8nstack")
        );
        assert_eq!(normalise_project("_-x").as_deref(), Some("x"));
        assert_eq!(normalise_project("..."), None);
        assert_eq!(
            compose_file_name("# c\nname: \"prod-n8n\"  # here\nservices:\n  name: no\n")
                .as_deref(),
            Some("prod-n8n")
        );
        assert_eq!(compose_file_name("services:\n  n8n:\n    name: x\n"), None);
        assert_eq!(compose_file_name("name: ${PROJECT}\n"), None);
    }

    #[test]
    fn commands_that_cannot_run_are_found_before_they_are_needed() {
        assert!(check_command("sh -c 'true'").is_ok());
        assert!(check_command("systemctl stop n8n").is_ok() || which("systemctl").is_none());
        assert!(check_command("FOO=1 sh /nonexistent/x.sh").is_err());
        assert!(check_command("FOO=1 sh /bin/true").is_ok());
        assert!(check_command("no-such-program-of-n8n-ark --stop")
            .unwrap_err()
            .contains("not found on the PATH"));
        assert!(check_command("/nonexistent/stop.sh")
            .unwrap_err()
            .contains("not an executable file"));
        assert!(check_command("sh /nonexistent/stop.sh")
            .unwrap_err()
            .contains("does not exist"));
        assert!(check_command("   ").is_err());
        // Shell syntax is not judged.
        assert!(check_command("cd /opt/n8n && docker compose stop").is_ok());
        assert!(check_command("if true; then :; fi").is_ok());
    }

    fn which(program: &str) -> Option<PathBuf> {
        std::env::split_paths(&std::env::var_os("PATH")?)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_quote("restore"), "restore");
        assert_eq!(shell_quote("/tmp/a b"), "'/tmp/a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[tokio::test]
    async fn the_health_wait_is_bounded() {
        // A port nobody listens on: the wait ends at the deadline, saying why.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/healthz");
        let t0 = Instant::now();
        let e = wait_healthy(&url, t0, t0 + Duration::from_millis(1200))
            .await
            .unwrap_err()
            .to_string();
        assert!(t0.elapsed() < Duration::from_secs(10));
        assert!(
            e.contains(&url) && e.contains("did not answer 200 within 1 s"),
            "{e}"
        );
        assert!(wait_healthy("not a url", t0, t0).await.is_err());
    }

    #[test]
    fn key_verdicts() {
        let k = |s: &str| Some((s.to_string(), "x".to_string()));
        let s = KeyState {
            backup: k("a"),
            target_now: k("b"),
            n8n_after: k("a"),
        };
        // Full restore with the .env: the database and n8n both use the backup's key.
        assert_eq!(key_verdict(&s, true, true).0, "match");
        // Config only: the target's database (b) under the backup's key (a).
        assert_eq!(key_verdict(&s, false, true).0, "mismatch");
        // Database only, n8n keeps the target's key.
        let s2 = KeyState {
            n8n_after: k("b"),
            ..s.clone()
        };
        assert_eq!(key_verdict(&s2, true, false).0, "mismatch");
        let s3 = KeyState {
            backup: None,
            ..s2.clone()
        };
        assert_eq!(key_verdict(&s3, true, false).0, "unknown");
        assert_eq!(key_verdict(&s3, false, false).0, "not_applicable");
    }
}
