//! Verification: proving that a backup restores and holds exactly what its
//! manifest says, at one of three levels:
//!
//! - [`Level::Exists`]: every object the manifest references is present in
//!   the store (one listing of `objects/` and `trash/`);
//! - [`Level::Data`]: every object is read, decoded and hashes to its id (and
//!   has the length the manifest gives);
//! - [`Level::Restore`]: every database dump is streamed from the store into
//!   one temporary PostgreSQL ([`crate::sandbox`]) and compared with the
//!   manifest (tables, columns and types, exact row counts, the migration
//!   head; every workflow rebuilt from the restored rows into its canonical
//!   JSON and hashed to the manifest's object id); config files are
//!   re-hashed; when the backed-up files give `N8N_ENCRYPTION_KEY` (the
//!   compose file's n8n service, its env files, a `.env`: found as a backup
//!   finds it, `crate::source::n8n_key`), one credential is test-decrypted
//!   with it (never printed).
//!
//! Each run appends one journal event: `VerificationCompleted` when it ran to
//! its end (passed or not, with every failed check) or `VerificationFailed`
//! when it could not (no sandbox, the store unreadable, interrupted, ...).
//! A verification that ran keeps its result when its event cannot be written
//! (a read-only copy of a store): the report says the event is missing
//! ([`VerificationReport::unrecorded`]).
pub mod cryptojs;
pub mod policy;
mod restore;

use crate::restore::ChosenBackup;
use crate::sandbox::{SandboxError, SandboxOptions};
use crate::store::{journal, Store, StoreError};
use futures::StreamExt;
use std::collections::{BTreeMap, HashSet};
use std::time::Instant;
use store_format::event::{VerificationCheck, VerificationCompleted, VerificationFailed};
use store_format::{Event, ObjectId};

/// How deep a verification goes (each level includes what it needs of the
/// ones before it: `restore` reads every object of the dumps and config
/// files it uses).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Every object the backup references is present.
    Exists,
    /// Every object is read, decoded and hashes to its id.
    Data,
    /// The databases are restored into a sandbox and compared with the manifest.
    Restore,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Exists => "exists",
            Level::Data => "data",
            Level::Restore => "restore",
        }
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Level {
    type Err = String;
    fn from_str(s: &str) -> Result<Level, String> {
        match s {
            "exists" => Ok(Level::Exists),
            "data" => Ok(Level::Data),
            "restore" => Ok(Level::Restore),
            _ => Err(format!("unknown level {s:?} (exists, data or restore)")),
        }
    }
}

/// What to verify and how.
#[derive(Clone)]
pub struct VerifyOptions {
    pub level: Level,
    /// The sandbox of `restore`: which implementation (None: docker when an
    /// engine answers and an image is known, else local), its image and limits.
    pub sandbox: SandboxOptions,
    /// Stops a verification at its next safe point (the sandbox is torn
    /// down; `VerificationFailed` at stage `interrupted` is recorded).
    pub cancel: crate::cancel::Cancel,
    /// Makes the sandbox (the Context's: one per process).
    pub sandboxes: std::sync::Arc<crate::sandbox::SandboxManager>,
    /// Who asked for it (recorded in `VerificationFailed`).
    pub trigger: crate::ops::Trigger,
}

impl std::fmt::Debug for VerifyOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyOptions")
            .field("level", &self.level)
            .field("sandbox", &self.sandbox)
            .field("cancel", &self.cancel)
            .field("sandboxes", &self.sandboxes)
            .field("trigger", &self.trigger)
            .finish()
    }
}

impl VerifyOptions {
    pub fn new(level: Level) -> VerifyOptions {
        VerifyOptions {
            level,
            sandbox: SandboxOptions::default(),
            cancel: Default::default(),
            sandboxes: Default::default(),
            trigger: crate::ops::Trigger::Manual,
        }
    }
}

/// One check: what it was about, what was expected and what was found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CheckOutcome {
    pub check: String,
    pub subject: String,
    pub expected: String,
    pub found: String,
    pub ok: bool,
}

impl CheckOutcome {
    pub fn into_failure(self) -> Option<VerificationCheck> {
        (!self.ok).then_some(VerificationCheck {
            check: self.check,
            subject: self.subject,
            expected: self.expected,
            found: self.found,
        })
    }
}

/// The result of one verification that ran to its end.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VerificationReport {
    pub verification_id: String,
    pub backup_id: String,
    pub level: Level,
    pub passed: bool,
    pub checks_run: u64,
    /// Every check that did not hold, in the order they ran.
    pub failures: Vec<VerificationCheck>,
    /// The sandbox a `restore` verification used (`docker:…`, `local:…`).
    pub sandbox: Option<String>,
    pub duration_ms: u64,
    /// What an operator may want to know that is not a failure (e.g.
    /// `credential "X" decrypts with the backed-up key`, or why a check was
    /// not possible).
    pub notes: Vec<String>,
    /// Why its `VerificationCompleted` event could not be recorded (e.g. a
    /// read-only copy of the store): the result stands, the journal does
    /// not show it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unrecorded: Option<String>,
}

/// Why a verification could not run to its end (it proves nothing either way).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The request is wrong (an unusable manifest, a bad option).
    #[error("{0}")]
    Invalid(String),
    /// The store could not be read (not a damaged object: that is a failed check).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No sandbox could be made, or it failed to answer.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// It could not run, and its `VerificationFailed` event could not be
    /// recorded either.
    #[error("the verification {0}, and its event could not be recorded: {1}")]
    Record(String, StoreError),
    /// Stopped on the front end's request (a signal); the sandbox is gone.
    #[error("{0}")]
    Interrupted(String),
}

impl VerifyError {
    pub fn is_retryable(&self) -> bool {
        match self {
            VerifyError::Invalid(_) | VerifyError::Interrupted(_) => false,
            VerifyError::Store(e) | VerifyError::Record(_, e) => e.is_retryable(),
            VerifyError::Sandbox(e) => e.is_retryable(),
        }
    }

    /// The `stage` of the `VerificationFailed` event.
    fn stage(&self) -> &'static str {
        match self {
            VerifyError::Invalid(_) => "configuration",
            VerifyError::Store(_) => "store",
            VerifyError::Sandbox(SandboxError::Unavailable(_) | SandboxError::Busy(_)) => "sandbox",
            VerifyError::Sandbox(SandboxError::Teardown(_)) => "teardown",
            VerifyError::Sandbox(SandboxError::Store(_)) => "store",
            VerifyError::Sandbox(SandboxError::Failed(_)) => "query",
            VerifyError::Record(..) => "record",
            VerifyError::Interrupted(_) => "interrupted",
        }
    }
}

pub type Result<T, E = VerifyError> = std::result::Result<T, E>;

/// The checks of one run: how many ran, and the ones that did not hold.
#[derive(Debug, Default)]
pub(crate) struct Checks {
    pub run: u64,
    pub failures: Vec<VerificationCheck>,
    pub notes: Vec<String>,
    pub sandbox: Option<String>,
}

impl Checks {
    pub fn record(&mut self, c: CheckOutcome) {
        self.run += 1;
        if let Some(f) = c.into_failure() {
            tracing::debug!(check = %f.check, subject = %f.subject, "check failed: expected {}, found {}", f.expected, f.found);
            self.failures.push(f);
        }
    }

    pub fn ok(&mut self, check: &str, subject: impl Into<String>, what: impl Into<String>) {
        let what = what.into();
        self.record(CheckOutcome {
            check: check.into(),
            subject: subject.into(),
            expected: what.clone(),
            found: what,
            ok: true,
        });
    }

    pub fn fail(
        &mut self,
        check: &str,
        subject: impl Into<String>,
        expected: impl Into<String>,
        found: impl Into<String>,
    ) {
        self.record(CheckOutcome {
            check: check.into(),
            subject: subject.into(),
            expected: expected.into(),
            found: found.into(),
            ok: false,
        });
    }

    /// Compares and records.
    pub fn compare(
        &mut self,
        check: &str,
        subject: impl Into<String>,
        expected: String,
        found: String,
    ) {
        let ok = expected == found;
        self.record(CheckOutcome {
            check: check.into(),
            subject: subject.into(),
            expected,
            found,
            ok,
        });
    }
}

/// For each object the manifest references, the items that hold it (in order).
pub(crate) fn object_users(m: &store_format::Manifest) -> BTreeMap<ObjectId, Vec<String>> {
    let mut users: BTreeMap<ObjectId, Vec<String>> = BTreeMap::new();
    for it in &m.items {
        for c in &it.chunks {
            let v = users.entry(c.id).or_default();
            if v.last() != Some(&it.name) {
                v.push(it.name.clone());
            }
        }
    }
    users
}

pub(crate) fn needed_by(items: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut s = items
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > SHOWN {
        s.push_str(&format!(" and {} more", items.len() - SHOWN));
    }
    s
}

/// Records the failure of an object read as a check when the object itself
/// is missing or bad (the backup is disproven); returns the error otherwise
/// (the store could not be read: nothing is proven).
pub(crate) fn object_failure(
    checks: &mut Checks,
    id: &ObjectId,
    items: &[String],
    e: StoreError,
) -> Result<()> {
    match e {
        StoreError::MissingObject { .. } => {
            checks.fail(
                "object_present",
                id.to_hex(),
                format!("present (needed by {})", needed_by(items)),
                "missing",
            );
            Ok(())
        }
        StoreError::DamagedObject { source, .. } => {
            checks.fail(
                "object_hash",
                id.to_hex(),
                format!(
                    "decodes and hashes to its id (needed by {})",
                    needed_by(items)
                ),
                format!("damaged: {source}"),
            );
            Ok(())
        }
        StoreError::TamperedObject { .. } => {
            checks.fail(
                "object_hash",
                id.to_hex(),
                format!(
                    "decodes and hashes to its id (needed by {})",
                    needed_by(items)
                ),
                "fails authentication: tampered with, swapped or planted",
            );
            Ok(())
        }
        e => Err(e.into()),
    }
}

/// `exists`: one listing of the store's objects (and of `trash/`, where the
/// collector sets objects aside before deleting them), then every object
/// the manifest references looked up in it.
async fn verify_exists(
    store: &Store,
    m: &store_format::Manifest,
    checks: &mut Checks,
) -> Result<()> {
    let listed = crate::store::index::list_object_ids(store).await?;
    let mut present: HashSet<ObjectId> = listed.into_iter().map(|(id, _)| id).collect();
    for e in store
        .backend()
        .list(crate::store::TRASH)
        .await
        .map_err(StoreError::from)?
    {
        if let Some(id) = e
            .path
            .rsplit('/')
            .next()
            .and_then(|n| ObjectId::from_hex(n).ok())
        {
            present.insert(id);
        }
    }
    for (id, items) in object_users(m) {
        if present.contains(&id) {
            checks.ok("object_present", id.to_hex(), "present");
        } else {
            checks.fail(
                "object_present",
                id.to_hex(),
                format!("present (needed by {})", needed_by(&items)),
                "missing",
            );
        }
    }
    Ok(())
}

/// `data`: every object read, decoded (decrypted and authenticated when the
/// store is encrypted) and hashed to its id, a few at a time; each chunk's
/// length checked against the manifest.
async fn verify_data(store: &Store, m: &store_format::Manifest, checks: &mut Checks) -> Result<()> {
    let mut lens: BTreeMap<ObjectId, u32> = BTreeMap::new();
    for it in &m.items {
        for c in &it.chunks {
            lens.entry(c.id).or_insert(c.len);
        }
    }
    let users = object_users(m);
    let mut results = futures::stream::iter(users.into_iter().map(|(id, items)| {
        let store = store.clone();
        let want = lens.get(&id).copied().unwrap_or(0);
        async move {
            let r = store.read_object(&id).await.map(|(_, plain)| plain.len());
            (id, items, want, r)
        }
    }))
    .buffer_unordered(8);
    while let Some((id, items, want, r)) = results.next().await {
        match r {
            Ok(n) if n == want as usize => {
                checks.ok("object_hash", id.to_hex(), "hashes to its id")
            }
            Ok(n) => checks.fail(
                "object_length",
                id.to_hex(),
                format!("{want} bytes (needed by {})", needed_by(&items)),
                format!("{n} bytes"),
            ),
            Err(e) => object_failure(checks, &id, &items, e)?,
        }
    }
    Ok(())
}

/// Runs one verification of one backup and appends `VerificationCompleted`
/// (it ran: passed or not) or `VerificationFailed` (it could not run; the
/// error is returned after recording).
pub async fn verify_backup(
    store: &Store,
    backup: &ChosenBackup,
    opts: &VerifyOptions,
) -> Result<VerificationReport> {
    verify_backup_reporting(store, backup, opts, &crate::ops::NoReport).await
}

/// [`verify_backup`], its stages reported to `r` (objects, config files,
/// sandbox, each database's load and comparison, teardown).
pub async fn verify_backup_reporting(
    store: &Store,
    backup: &ChosenBackup,
    opts: &VerifyOptions,
    r: &dyn crate::ops::Reporter,
) -> Result<VerificationReport> {
    let started = Instant::now();
    let verification_id = crate::store::ingest::new_backup_id();
    let m = &backup.manifest;
    let mut checks = Checks::default();
    let ran = match opts.level {
        Level::Exists => {
            r.stage("objects present");
            verify_exists(store, m, &mut checks).await
        }
        Level::Data => {
            r.stage("objects read");
            verify_data(store, m, &mut checks).await
        }
        Level::Restore => restore::verify_restore(store, m, opts, &mut checks, r).await,
    };
    let duration_ms = started.elapsed().as_millis() as u64;
    if let Err(e) = ran {
        let message = e.to_string();
        // The caller says it to the operator (the CLI's error line, the
        // policy's notification): a log line here would say it twice.
        tracing::info!(
            verification = %verification_id,
            backup = %backup.backup_id,
            level = opts.level.as_str(),
            "verification could not run: {message}"
        );
        let ev = VerificationFailed {
            verification_id: verification_id.clone(),
            backup_id: backup.backup_id.clone(),
            level: opts.level.as_str().into(),
            stage: e.stage().into(),
            message: message.clone(),
            duration_ms,
            retryable: Some(e.is_retryable()),
            trigger: Some(opts.trigger.as_str().into()),
        };
        if let Err(re) = journal::append(store, Event::VerificationFailed(ev)).await {
            return Err(VerifyError::Record(format!("could not run: {message}"), re));
        }
        return Err(e);
    }
    let report = VerificationReport {
        verification_id: verification_id.clone(),
        backup_id: backup.backup_id.clone(),
        level: opts.level,
        passed: checks.failures.is_empty(),
        checks_run: checks.run,
        failures: checks.failures,
        sandbox: checks.sandbox,
        duration_ms,
        notes: checks.notes,
        unrecorded: None,
    };
    if !report.passed {
        let f = &report.failures[0];
        tracing::info!(
            verification = %verification_id,
            backup = %backup.backup_id,
            level = opts.level.as_str(),
            "verification failed: {} of {} checks did not hold; first: {} {}: expected {}, found {}",
            report.failures.len(),
            report.checks_run,
            f.check,
            f.subject,
            f.expected,
            f.found
        );
    }
    let ev = VerificationCompleted {
        verification_id,
        backup_id: report.backup_id.clone(),
        level: opts.level.as_str().into(),
        passed: report.passed,
        checks_run: report.checks_run,
        failures: report.failures.clone(),
        sandbox: report.sandbox.clone(),
        duration_ms: report.duration_ms,
    };
    // A verification that ran has its result whether or not the journal
    // takes its event (a read-only copy of a store): the caller says so.
    let mut report = report;
    if let Err(e) = journal::append(store, Event::VerificationCompleted(ev)).await {
        tracing::info!(verification = %report.verification_id, "the event could not be recorded: {e}");
        report.unrecorded = Some(format!(
            "its VerificationCompleted event could not be recorded: {e}"
        ));
    }
    Ok(report)
}
