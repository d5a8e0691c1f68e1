//! `restore workflow`: workflows of a backup written as files for n8n's
//! import, or created in a running n8n as new, inactive workflows (the
//! originals are never touched). See [`crate::restore::workflow`]: the
//! restore records its own `RestorePerformed` or `RestoreFailed` (a
//! selection that picks nothing, an n8n that does not answer, an
//! interruption that left workflows out).
use super::{chosen, Server};
use crate::ops::{catalog, Context, ErrorKind, OpError, OpResult, Progress, Reporter};
use crate::restore::workflow::{
    self, Destination, NameTemplate, WorkflowResult, DEFAULT_NAME_TEMPLATE,
};
/// The request's selection and the outcome, reachable where the request is.
pub use crate::restore::workflow::{RestoreReport, Selection};
use crate::restore::{ChosenBackup, Outcome, RestoreError};
use crate::source::n8n_api::N8nApi;
use crate::source::postgres::PgTarget;
use serde::Deserialize;
use std::path::PathBuf;

/// Where the workflows go.
#[derive(Clone, Deserialize)]
#[serde(tag = "to", rename_all = "snake_case")]
pub enum To {
    /// One file per workflow in this directory (created when missing),
    /// never overwriting one.
    Files { dir: PathBuf },
    /// New inactive workflows in the n8n at `url`, through its public API.
    N8n {
        #[serde(default)]
        url: Option<String>,
        #[serde(default)]
        api_key: Option<String>,
    },
}

impl std::fmt::Debug for To {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            To::Files { dir } => f.debug_struct("Files").field("dir", dir).finish(),
            To::N8n { url, api_key } => f
                .debug_struct("N8n")
                .field("url", url)
                .field("api_key", &api_key.as_ref().map(|_| "…"))
                .finish(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Request {
    /// `latest`, `latest:KIND`, an id or a unique prefix of one.
    pub backup: String,
    #[serde(default)]
    pub selection: Selection,
    pub to: To,
    /// The name of each workflow created in n8n (placeholders {name}, {id},
    /// {date}, {time}, {backup}); default [`DEFAULT_NAME_TEMPLATE`].
    #[serde(default)]
    pub name_template: Option<String>,
    /// The target n8n's database, read to check credential references.
    #[serde(default)]
    pub credentials_db: Option<Server>,
}

impl Request {
    /// What the request gets wrong by itself (before the store is opened):
    /// the destination it names.
    pub fn check(&self) -> OpResult<Destination> {
        let destination = match &self.to {
            To::Files { dir } => {
                if self.name_template.is_some() {
                    return Err(OpError::invalid(
                        "--name-template names workflows created with --to-n8n; files keep the \
                         backed-up name",
                    ));
                }
                if dir.as_os_str().is_empty() {
                    return Err(OpError::invalid("--out needs a directory"));
                }
                if dir.exists() && !dir.is_dir() {
                    return Err(OpError::invalid(format!(
                        "--out {} is not a directory",
                        dir.display()
                    )));
                }
                // Absolute, so that the restore history says where.
                let dir = std::path::absolute(dir)
                    .map_err(|e| OpError::invalid(format!("--out {}: {e}", dir.display())))?;
                Destination::Files { dir }
            }
            To::N8n { url, api_key } => {
                let template = NameTemplate::parse(
                    self.name_template
                        .as_deref()
                        .unwrap_or(DEFAULT_NAME_TEMPLATE),
                )
                .map_err(OpError::invalid)?;
                let url = url.as_deref().ok_or_else(|| {
                    OpError::invalid(
                        "n8n's API is not configured: give --n8n-url URL (or ARK_N8N_URL, or [n8n] \
                         api_url in the config file) with a key in ARK_N8N_API_KEY or \
                         ARK_N8N_API_KEY_FILE; or restore to files with --out DIR",
                    )
                })?;
                let key = api_key.clone().ok_or_else(|| {
                    OpError::invalid(
                        "n8n's API needs a key: set ARK_N8N_API_KEY or ARK_N8N_API_KEY_FILE (create one \
                         in n8n: Settings → n8n API); or restore to files with --out DIR",
                    )
                })?;
                let api = N8nApi::new(url, key).map_err(|e| OpError::invalid(e.to_string()))?;
                Destination::N8n { api, template }
            }
        };
        self.credentials_db()?;
        self.selection
            .check()
            .map_err(|e| OpError::invalid(e.to_string()))?;
        Ok(destination)
    }

    fn credentials_db(&self) -> OpResult<Option<PgTarget>> {
        self.credentials_db
            .as_ref()
            .map(|s| s.target("--n8n-db"))
            .transpose()
    }
}

/// Sees a restore of workflows as it goes, with its typed results (the
/// command line prints each as it is known); a [`Reporter`] sees the same
/// as progress items.
pub trait Watch: Send + Sync {
    /// The restore began: the selection picked `count` workflows of `backup`,
    /// which go to `target` (`dir:<path>` or `n8n:<url>`).
    fn begun(&self, _count: usize, _backup: &ChosenBackup, _target: &str) {}
    /// One workflow's result, in the backup's order.
    fn result(&self, _r: &WorkflowResult) {}
}

impl Watch for () {}

pub async fn run(ctx: &Context, req: &Request, r: &dyn Reporter) -> OpResult<RestoreReport> {
    run_watched(ctx, req, r, &()).await
}

/// [`run`], with `watch` told of the restore's start and each result.
pub async fn run_watched(
    ctx: &Context,
    req: &Request,
    r: &dyn Reporter,
    watch: &dyn Watch,
) -> OpResult<RestoreReport> {
    let destination = req.check()?;
    let credentials_db = req.credentials_db()?;
    let backup = chosen(ctx, r, &req.backup).await?;
    let request = workflow::Request {
        selection: req.selection.clone(),
        destination,
        credentials_db,
        trigger: ctx.trigger,
    };
    let target = request.destination.target();
    let result = async {
        // The selection is checked (and a refusal recorded) before it begins.
        let begun = workflow::begin(&ctx.store, &backup, request)
            .await
            .map_err(|e| ended(ctx, e))?;
        watch.begun(begun.count(), &backup, &target);
        r.stage(&format!(
            "restoring {} workflow(s) of backup {} to {target}",
            begun.count(),
            backup.backup_id
        ));
        let on_result = |w: &WorkflowResult| {
            watch.result(w);
            r.report(Progress::Item {
                name: format!("workflow:{}", w.id),
                outcome: w.outcome.as_str().into(),
                detail: match w.outcome {
                    Outcome::Restored => w
                        .file
                        .clone()
                        .or_else(|| w.new_id.as_ref().map(|id| format!("new workflow {id}")))
                        .unwrap_or_default(),
                    _ => w.message.clone().unwrap_or_default(),
                },
            });
        };
        begun
            .run(&on_result, &ctx.cancel)
            .await
            .map_err(|e| ended(ctx, e))
    }
    .await;
    catalog::follow(ctx, r).await;
    result
}

/// The error of a restore that began (its event is recorded): interrupted
/// when the operation was asked to stop.
fn ended(ctx: &Context, e: RestoreError) -> OpError {
    let e: OpError = e.into();
    if ctx.cancel.is_cancelled() && e.kind != ErrorKind::Invalid {
        OpError {
            kind: ErrorKind::Interrupted,
            retryable: false,
            ..e
        }
    } else {
        e
    }
}
