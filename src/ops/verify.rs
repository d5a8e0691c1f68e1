//! `verify BACKUP|latest|all`: prove that backups restore and hold what their
//! manifests say, and record the proof (`VerificationCompleted`, or
//! `VerificationFailed` when one cannot run). Each backup's result is
//! reported as it ends; the stages of each (objects, config files, the
//! sandbox, each database's load and comparison) go to the reporter.
use super::policy::RunResult;
use super::{catalog, Context, ErrorKind, OpError, OpResult, Reporter};
use crate::catalog::{BackupFilter, BackupStatus, CatalogError};
use crate::restore::{ChosenBackup, RestoreError};
use crate::sandbox::SandboxOptions;
use crate::verify::{Level, VerificationReport, VerifyError, VerifyOptions};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize)]
pub struct Request {
    /// A backup id, a unique prefix of one, `latest`, `latest:KIND`, or
    /// `all` (every completed backup).
    pub backup: String,
    #[serde(default = "default_level")]
    pub level: Level,
    /// The sandbox of a `restore` verification (unset fields fall back to
    /// the `ARK_SANDBOX*` variables).
    #[serde(default)]
    pub sandbox: SandboxOptions,
}

fn default_level() -> Level {
    Level::Data
}

/// One backup's outcome.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackupOutcome {
    pub backup_id: String,
    pub result: RunResult,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<VerificationReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The name of the [`crate::ops::Progress::Partial`] report of each backup's
/// [`BackupOutcome`] as it ends.
pub const PARTIAL_BACKUP: &str = "verified";

/// Every backup's outcome, counted.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub level: Level,
    pub backups: usize,
    pub passed: usize,
    pub failed: usize,
    pub errors: usize,
    pub results: Vec<BackupOutcome>,
    /// How many results could not be recorded in the store's journal (a
    /// read-only store): the results stand.
    #[serde(skip)]
    pub unrecorded: usize,
    /// Why the verifications stopped early (`interrupted by SIGTERM`).
    #[serde(skip)]
    pub interrupted: Option<String>,
}

impl Outcome {
    /// The error a front end ends with: the verification was interrupted,
    /// or a backup did not pass (a check did not hold, or it could not run).
    pub fn failure(&self) -> Option<OpError> {
        if let Some(why) = &self.interrupted {
            let message = match self.results.iter().find(|o| o.result == RunResult::Error) {
                Some(BackupOutcome {
                    error: Some(e),
                    backup_id,
                    ..
                }) => format!("the verification of backup {backup_id} stopped: {e}"),
                _ => format!("verification {why}"),
            };
            return Some(OpError::interrupted(message));
        }
        if self.failed + self.errors == 0 {
            return None;
        }
        let first = self
            .results
            .iter()
            .find(|o| o.result != RunResult::Passed)?;
        let (kind, message) = match (&first.report, &first.error) {
            (Some(r), _) => {
                let f = &r.failures[0];
                (
                    ErrorKind::Damaged,
                    format!(
                        "verification failed: backup {} at level {}: {} {}: expected {}, found {}{}",
                        r.backup_id,
                        self.level,
                        f.check,
                        f.subject,
                        f.expected,
                        f.found,
                        others(self.failed + self.errors - 1, r.failures.len() - 1)
                    ),
                )
            }
            (None, Some(e)) => (
                ErrorKind::Unavailable,
                format!(
                    "verification could not run: backup {}: {e}{}",
                    first.backup_id,
                    others(self.failed + self.errors - 1, 0)
                ),
            ),
            (None, None) => (ErrorKind::Internal, "verification failed".into()),
        };
        Some(OpError::new(kind, message))
    }
}

fn others(backups: usize, checks: usize) -> String {
    let mut parts = Vec::new();
    if checks > 0 {
        parts.push(format!(
            "{checks} more failed check{}",
            if checks == 1 { "" } else { "s" }
        ));
    }
    if backups > 0 {
        parts.push(format!(
            "{backups} more backup{} not proven",
            if backups == 1 { "" } else { "s" }
        ));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    }
}

/// A reference that does not name one backup (as the command line has
/// always judged it: an ambiguous prefix is not a usage error).
fn resolve_err(e: CatalogError) -> OpError {
    match e {
        CatalogError::Ambiguous(m) => OpError::new(ErrorKind::Conflict, m),
        e => e.into(),
    }
}

/// A backup whose manifest cannot be chosen.
pub(crate) fn chosen_err(e: RestoreError) -> OpError {
    let retryable = e.is_retryable();
    match e {
        RestoreError::Invalid(m) => OpError::invalid(m),
        RestoreError::NotFound(m) => OpError::not_found(m),
        RestoreError::Store(s) => s.into(),
        RestoreError::Interrupted(m) => OpError::interrupted(m),
        e => OpError::new(ErrorKind::Unavailable, e.to_string()).retryable(retryable),
    }
}

/// One verification of a chosen backup, reported (its stages) to `r`; its
/// event is recorded (`VerificationCompleted`, or `VerificationFailed` when
/// it could not run).
pub async fn verify_chosen(
    ctx: &Context,
    chosen: &ChosenBackup,
    opts: &VerifyOptions,
    r: &dyn Reporter,
) -> Result<VerificationReport, VerifyError> {
    r.stage(&format!("verify {} {}", opts.level, chosen.backup_id));
    crate::verify::verify_backup_reporting(&ctx.store, chosen, opts, r).await
}

/// Verifies one backup, or every completed one.
pub async fn run(ctx: &Context, req: &Request, r: &dyn Reporter) -> OpResult<Outcome> {
    let sandbox = ctx
        .config()
        .sandbox(&req.sandbox, &Default::default())
        .map_err(|m| OpError::invalid(m).with_setting("ARK_SANDBOX"))?;
    let reference = req.backup.trim();
    let catalog = catalog::caught_up(ctx, r).await?;
    let ids: Vec<String> = if reference == "all" {
        let filter = BackupFilter {
            status: Some(BackupStatus::Completed),
            ..Default::default()
        };
        let list = match catalog.list_backups(&filter).await {
            Ok(l) => l,
            Err(e) => {
                catalog.close().await;
                return Err(e.into());
            }
        };
        if list.is_empty() {
            catalog.close().await;
            return Err(
                OpError::not_found("the store holds no completed backup to verify")
                    .with_command("n8n-ark backup"),
            );
        }
        list.into_iter().map(|b| b.backup_id).collect()
    } else {
        match catalog.resolve(reference).await {
            Ok(id) => vec![id],
            Err(e) => {
                catalog.close().await;
                return Err(resolve_err(e));
            }
        }
    };
    let opts = VerifyOptions {
        level: req.level,
        sandbox,
        cancel: ctx.cancel.clone(),
        sandboxes: ctx.sandbox.clone(),
        trigger: ctx.trigger,
    };
    let mut results = Vec::with_capacity(ids.len());
    let mut unrecorded = 0;
    for id in &ids {
        if ctx.cancel.is_cancelled() {
            break;
        }
        let outcome = match crate::restore::choose_backup(&catalog, &ctx.store, id).await {
            Ok(chosen) => match verify_chosen(ctx, &chosen, &opts, r).await {
                Ok(report) => {
                    if let Some(u) = &report.unrecorded {
                        unrecorded += 1;
                        r.warning(format!("backup {id}: the result stands, but {u}"));
                    }
                    BackupOutcome {
                        backup_id: id.clone(),
                        result: if report.passed {
                            RunResult::Passed
                        } else {
                            RunResult::Failed
                        },
                        report: Some(report),
                        error: None,
                    }
                }
                Err(e) => BackupOutcome {
                    backup_id: id.clone(),
                    result: RunResult::Error,
                    report: None,
                    error: Some(e.to_string()),
                },
            },
            Err(e) if ids.len() == 1 => {
                catalog.close().await;
                return Err(chosen_err(e));
            }
            Err(e) => BackupOutcome {
                backup_id: id.clone(),
                result: RunResult::Error,
                report: None,
                error: Some(e.to_string()),
            },
        };
        r.partial(
            PARTIAL_BACKUP,
            serde_json::to_value(&outcome).expect("outcome types serialize"),
        );
        results.push(outcome);
    }
    // Bring the catalog up to the events just recorded.
    if let Err(e) = catalog.catch_up(&ctx.store).await {
        r.warning(format!(
            "the catalog could not catch up with the store: {e}"
        ));
    }
    catalog.close().await;
    let count = |x: RunResult| results.iter().filter(|o| o.result == x).count();
    Ok(Outcome {
        level: req.level,
        backups: results.len(),
        passed: count(RunResult::Passed),
        failed: count(RunResult::Failed),
        errors: count(RunResult::Error),
        results,
        unrecorded,
        interrupted: ctx.cancel.interrupted(),
    })
}

/// `verify --history [BACKUP]`: the verifications recorded, newest last.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct HistoryRequest {
    /// One backup's (an id, a unique prefix, `latest`); none or `all`: every
    /// backup's.
    #[serde(default)]
    pub backup: Option<String>,
}

/// The verifications recorded, from the catalog (see [`super::read`]: it
/// answers without the store's key when it is caught up, and offline).
pub async fn history(
    rc: &super::read::ReadContext,
    req: &HistoryRequest,
    r: &dyn Reporter,
) -> OpResult<Vec<crate::catalog::VerificationRecord>> {
    let backup = req.backup.as_deref().map(str::trim).filter(|b| *b != "all");
    super::read::read_catalog(rc, r, async |c: &crate::catalog::Catalog| {
        let id = match backup {
            Some(b) => Some(c.resolve(b).await?),
            None => None,
        };
        c.list_verifications(id.as_deref()).await
    })
    .await
}
