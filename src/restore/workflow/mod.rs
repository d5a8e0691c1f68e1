//! Restoring workflows: each one's canonical JSON object is read from the
//! store (one object read per workflow, no temporary database) and either
//! written as a file that n8n imports, or created in a running n8n through
//! its public API as a new, inactive workflow. The original is never touched:
//! n8n-ark sends `POST /api/v1/workflows` and reads, nothing else (no `PUT`,
//! no `DELETE`, no activation).
//!
//! # Files (`Destination::Files`)
//!
//! One file per workflow, `<id>-<name>.json`, in the format that
//! `n8n export:workflow --separate` writes and that `n8n import:workflow`
//! and the editor's *Import from File* read: the workflow's members
//! (`id`, `name`, `nodes`, `connections`, `settings`, `staticData`, `tags`
//! as `[{id, name}]`, ...) in n8n's order, pretty-printed (down to 64 levels;
//! deeper members on one line, so a workflow nested 100,000 levels deep is
//! written in linear size). `parentFolderId` is
//! left out (n8n's export does not carry it; a folder of the backed-up
//! instance need not exist on the target). Note that `n8n import:workflow`
//! replaces a workflow with the same `id` on the target (a restore in place);
//! the editor's import adds the nodes to the open workflow.
//!
//! File names come from the id and the name, reduced to `A-Z a-z 0-9 - _`
//! (anything else, `.` and `/` included, becomes `_`), so no name can leave
//! the directory or hide a file; two workflows whose names reduce to the same
//! get `-2`, `-3`, ... Each file is written to a temporary file in the same
//! directory (mode 0600: a workflow can hold secrets in its parameters),
//! fsynced, linked into place only if the name is still free, and the
//! directory fsynced. An existing file is never overwritten: if it holds the
//! same bytes the workflow is *skipped*; if it differs, the workflow *fails*
//! with a message naming the file.
//!
//! # Into n8n (`Destination::N8n`)
//!
//! First one `GET /api/v1/workflows?limit=1` proves that n8n answers and
//! accepts the key; when it does not, nothing is sent and the restore fails
//! (stage `check`) with a message suggesting files (`--out`).
//!
//! Each workflow is then created with a body holding exactly what n8n 1.123's
//! `POST /api/v1/workflows` accepts ([`POST_FIELDS`]): `name` (from the
//! [`NameTemplate`], by default `{name} (restored {date})`), `nodes` and
//! `connections` as backed up, `settings` as backed up (`{}` when the backup
//! has none: n8n requires the member and applies its defaults), and
//! `staticData` when the backup has one. n8n rejects read-only members (`id`,
//! `active`, `tags`, ...) and unknown ones with 400, so none is sent; new
//! workflows are inactive. Credential secrets are not in a workflow and
//! nothing else is sent.
//!
//! ## When n8n refuses a member
//!
//! A workflow written by a newer (or older) n8n may hold members the target
//! n8n's schema refuses. n8n-ark reads n8n's 400 message and retries without
//! a member only where that cannot change what the workflow does on the
//! target, and always says which member it dropped:
//!
//! - `request/body/settings/KEY must be equal to one of the allowed values`
//!   when the backed-up value is `"DEFAULT"`: older n8n versions stored
//!   `"DEFAULT"` for "use the instance's default", which is exactly what an
//!   absent key means. Any other refused value: not retried.
//! - `request/body/settings must NOT have additional properties`: the target
//!   does not know some settings key. A setting an n8n does not know cannot
//!   take effect there, stored or not. n8n's message does not say which key,
//!   so candidates are dropped and the request repeated (a refused request
//!   creates nothing): first each candidate alone, then cumulatively. The
//!   candidates are the keys n8n 1.123's schema does not have
//!   ([`N8N_SETTINGS_KEYS`]: written by a newer n8n), then the known keys that
//!   only govern what n8n records or exposes about runs
//!   ([`RECORDING_SETTINGS`]). Keys that change how or when the workflow runs
//!   or who may call it (`executionOrder`, `timezone`, `errorWorkflow`,
//!   `callerPolicy`, `callerIds`, `executionTimeout`) are never dropped.
//! - Anything else (a node member such as `webhookId` or `onError`, which say
//!   what a node does; a top-level member such as `staticData`, a trigger's
//!   memory): the workflow is reported *failed* with n8n's message, and the
//!   other workflows go on.
//!
//! ## Credentials
//!
//! Each node credential reference (`nodes[].credentials.{type}: {id, name}`)
//! is checked the way n8n resolves it: by id and type, else by a unique name
//! and type (n8n then rewrites the id), else it stays dangling. n8n 1.123's
//! public API cannot list credentials (`GET /api/v1/credentials` answers 405),
//! so:
//!
//! - with the target n8n's database configured, its `credentials_entity`
//!   (`id`, `name`, `type`; never `data`) is read once, and each reference is
//!   reported as present, *remapped* (found by name) or *missing*;
//! - without it, the created workflow's answer tells what n8n did: an id that
//!   changed was remapped by name, an id that became null is missing, and an
//!   unchanged id could not be checked (it exists, or it dangles): those are
//!   reported as *unchecked*, with how to enable the check.
use super::{item, ChosenBackup, Outcome, Recorder, RestoreError, RestoreWhat, Result};
use crate::cancel::Cancel;
use crate::source::json::{Json, Object};
use crate::source::n8n_api::{CreateFailure, N8nApi};
use crate::source::postgres::PgTarget;
use crate::source::SourceError;
use crate::store::Store;
use futures::StreamExt;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use store_format::contents::Workflow as WorkflowEntry;

mod credentials;
mod files;
mod n8n;
mod names;
mod selection;
#[cfg(test)]
mod tests;

pub use credentials::*;
pub use files::*;
pub use n8n::*;
pub use names::*;
pub use selection::*;

/// The members `POST /api/v1/workflows` of n8n 1.123 accepts (the first four
/// are required).
pub const POST_FIELDS: &[&str] = &["name", "nodes", "connections", "settings", "staticData"];

/// The keys of `settings` in n8n 1.123's public API schema.
pub const N8N_SETTINGS_KEYS: &[&str] = &[
    "saveExecutionProgress",
    "saveManualExecutions",
    "saveDataErrorExecution",
    "saveDataSuccessExecution",
    "executionTimeout",
    "errorWorkflow",
    "timezone",
    "executionOrder",
    "callerPolicy",
    "callerIds",
    "timeSavedPerExecution",
    "availableInMCP",
];

/// Known settings that only govern what n8n records or exposes about a
/// workflow's runs (MCP exposure, the insights estimate, which executions
/// are saved), not what its nodes do, when it runs or who may call it:
/// dropped when a target n8n refuses them.
pub const RECORDING_SETTINGS: &[&str] = &[
    "availableInMCP",
    "timeSavedPerExecution",
    "saveExecutionProgress",
    "saveManualExecutions",
    "saveDataErrorExecution",
    "saveDataSuccessExecution",
];

/// The default name of a workflow created in n8n.
pub const DEFAULT_NAME_TEMPLATE: &str = "{name} (restored {date})";

/// n8n's `workflow_entity.name` is `varchar(128)`.
pub const MAX_NAME_CHARS: usize = 128;

/// Most requests one workflow may take (its refused members dropped one by one).
const MAX_ATTEMPTS: usize = 16;

/// Workflows handled at once.
const CONCURRENCY: usize = 4;

/// How the message of a workflow an interruption left out begins.
const NOT_RESTORED: &str = "not restored: ";

/// The members of `n8n export:workflow`'s files, in its order. Members the
/// backup has beyond these follow, sorted.
const EXPORT_ORDER: &[&str] = &[
    "updatedAt",
    "createdAt",
    "id",
    "name",
    "description",
    "active",
    "isArchived",
    "nodes",
    "connections",
    "settings",
    "staticData",
    "meta",
    "pinData",
    "versionId",
    "activeVersionId",
    "versionCounter",
    "triggerCount",
    "tags",
];

/// Members of the canonical workflow that a file for import leaves out.
const NOT_EXPORTED: &[&str] = &["parentFolderId"];

// ---------------------------------------------------------------------------
// What to restore, and where.

/// Which workflows of the backup to restore. Named workflows are always
/// restored; `all`, or the filters, add more. Within `name_contains` or
/// `tags` any value matches; when both are given a workflow must match both.
/// Workflows that were archived in n8n are restored only when named.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct Selection {
    /// Ids, exact names, or unique parts of names (case-insensitive).
    pub workflows: Vec<String>,
    pub all: bool,
    /// Parts of names (case-insensitive).
    pub name_contains: Vec<String>,
    /// Tag names (case-insensitive).
    pub tags: Vec<String>,
}

impl Selection {
    fn filters(&self) -> bool {
        !self.name_contains.is_empty() || !self.tags.is_empty()
    }

    /// The request's own mistakes, found without the backup (`--all` with
    /// names or filters, nothing named).
    pub fn check(&self) -> Result<()> {
        if self.all && (self.filters() || !self.workflows.is_empty()) {
            return Err(RestoreError::Invalid(
                "--all restores every workflow: give it alone, or name workflows / use --match \
                 and --tag instead"
                    .into(),
            ));
        }
        if !self.all && !self.filters() && self.workflows.is_empty() {
            return Err(RestoreError::Invalid(
                "which workflows? Name them (an id, a name or a part of one), or use --all, \
                 --match NAME or --tag TAG"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// Where the workflows go.
pub enum Destination {
    /// Files in this directory (created when missing).
    Files { dir: PathBuf },
    /// New, inactive workflows in a running n8n.
    N8n { api: N8nApi, template: NameTemplate },
}

impl Destination {
    /// For the event: `dir:<path>` or `n8n:<url>`.
    pub fn target(&self) -> String {
        match self {
            Destination::Files { dir } => format!("dir:{}", dir.display()),
            Destination::N8n { api, .. } => format!("n8n:{}", api.base_url()),
        }
    }
}

/// A restore of workflows.
pub struct Request {
    pub selection: Selection,
    pub destination: Destination,
    /// The target n8n's database: its credentials' ids, names and types are
    /// read to check the workflows' credential references.
    pub credentials_db: Option<PgTarget>,
    /// Who asked for it (recorded with its failure).
    pub trigger: crate::ops::Trigger,
}

// ---------------------------------------------------------------------------
// The answer.

/// How credential references were checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialCheck {
    /// Against the target n8n's database (`credentials_entity`).
    Database,
    /// From what n8n did with each created workflow's references.
    Api,
    /// Not at all (files, without the target's database).
    None,
}

/// The restore's result, for the operator (text or JSON).
#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    pub restore_id: String,
    pub backup_id: String,
    /// When the backup finished, UTC (`YYYY-MM-DDTHH:MM:SSZ`).
    pub backup_finished: String,
    /// `dir:<path>` or `n8n:<url>`.
    pub target: String,
    pub credentials_checked: CredentialCheck,
    pub workflows: Vec<WorkflowResult>,
    pub summary: Summary,
    /// Things the operator should know that concern no single workflow.
    pub warnings: Vec<String>,
    pub duration_ms: u64,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Summary {
    pub restored: usize,
    pub skipped: usize,
    pub failed: usize,
}

/// One workflow's result.
#[derive(Debug, Clone, Serialize)]
pub struct WorkflowResult {
    /// The workflow's id in the backup.
    pub id: String,
    pub name: String,
    pub outcome: Outcome,
    /// The file written (files).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The new workflow's id and name (n8n).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_name: Option<String>,
    /// Members dropped because the target n8n refused them.
    pub dropped: Vec<Dropped>,
    /// Credential references the target lacks.
    pub missing_credentials: Vec<CredentialUse>,
    /// References the target has under another id (n8n matched them by name
    /// and type, and rewrote the id).
    pub remapped_credentials: Vec<Remapped>,
    /// References that could not be checked (n8n's API alone cannot tell an
    /// existing credential from a dangling reference).
    pub unchecked_credentials: Vec<CredentialUse>,
    /// Why it failed or was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl WorkflowResult {
    fn new(w: &WorkflowEntry, outcome: Outcome) -> WorkflowResult {
        WorkflowResult {
            id: w.id.clone(),
            name: w.name.clone(),
            outcome,
            file: None,
            new_id: None,
            new_name: None,
            dropped: vec![],
            missing_credentials: vec![],
            remapped_credentials: vec![],
            unchecked_credentials: vec![],
            message: None,
        }
    }

    fn failed(w: &WorkflowEntry, message: impl Into<String>) -> WorkflowResult {
        let mut r = WorkflowResult::new(w, Outcome::Failed);
        r.message = Some(message.into());
        r
    }

    /// The event's item: `workflow:<id>`, its outcome, and where it went or
    /// why not.
    fn event_item(&self) -> store_format::event::RestoredItem {
        let mut parts = Vec::new();
        match self.outcome {
            Outcome::Restored => {
                if let Some(f) = &self.file {
                    parts.push(f.clone());
                }
                if let (Some(id), Some(name)) = (&self.new_id, &self.new_name) {
                    parts.push(format!("new workflow {id} {name:?}"));
                }
            }
            _ => parts.extend(self.message.clone()),
        }
        if !self.dropped.is_empty() {
            let f: Vec<&str> = self.dropped.iter().map(|d| d.field.as_str()).collect();
            parts.push(format!("dropped {}", f.join(", ")));
        }
        if !self.missing_credentials.is_empty() {
            let c: Vec<String> = self
                .missing_credentials
                .iter()
                .map(CredentialUse::describe)
                .collect();
            parts.push(format!(
                "credentials missing on the target: {}",
                c.join(", ")
            ));
        }
        if !self.unchecked_credentials.is_empty() {
            parts.push(format!(
                "{} credential reference(s) not checked",
                self.unchecked_credentials.len()
            ));
        }
        item(
            format!("workflow:{}", self.id),
            self.outcome,
            parts.join("; "),
        )
    }
}

/// A member left out of the request because the target n8n refused it.
#[derive(Debug, Clone, Serialize)]
pub struct Dropped {
    /// E.g. `settings.availableInMCP`.
    pub field: String,
    /// Why dropping it is safe.
    pub reason: String,
    /// n8n's message that refused it.
    pub n8n_message: String,
}

/// A credential reference and the nodes that use it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CredentialUse {
    pub credential_type: String,
    pub id: Option<String>,
    pub name: Option<String>,
    pub nodes: Vec<String>,
    /// Why it is missing or unchecked.
    pub reason: String,
}

impl CredentialUse {
    fn describe(&self) -> String {
        let mut s = format!(
            "{} {:?}",
            self.credential_type,
            self.name.as_deref().unwrap_or("")
        );
        if let Some(id) = &self.id {
            s.push_str(&format!(" (id {id})"));
        }
        s
    }
}

/// A reference n8n resolves to another credential of the same name and type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Remapped {
    pub credential_type: String,
    pub name: Option<String>,
    /// The id in the backup.
    pub id: Option<String>,
    /// The id on the target.
    pub target_id: String,
    pub nodes: Vec<String>,
}

// ---------------------------------------------------------------------------
// The restore.

struct Ctx<'a> {
    store: &'a Store,
    chosen: &'a ChosenBackup,
    destination: &'a Destination,
    credentials: Option<&'a TargetCredentials>,
    cancel: &'a Cancel,
}

/// A restore of workflows that began: the backup holds workflows, the
/// selection names some, the destination can be one. Made by [`begin`],
/// carried out by [`Begun::run`].
pub struct Begun<'a> {
    store: &'a Store,
    chosen: &'a ChosenBackup,
    request: Request,
    picked: Vec<Picked<'a>>,
    recorder: Recorder,
}

impl Begun<'_> {
    /// How many workflows the selection picked.
    pub fn count(&self) -> usize {
        self.picked.len()
    }

    /// The restore's id (of its event).
    pub fn restore_id(&self) -> &str {
        &self.recorder.restore_id
    }
}

/// Begins a restore of workflows: checks that the backup holds workflows,
/// that the selection picks at least one (an unknown name, an empty
/// selection) and that the destination can be one. A restore that begins
/// ends with an event: a check that fails records `RestoreFailed` (stage
/// `check`) and returns the error; see [`Begun::run`] for the rest.
pub async fn begin<'a>(
    store: &'a Store,
    chosen: &'a ChosenBackup,
    request: Request,
) -> Result<Begun<'a>> {
    let recorder = Recorder::new(
        &chosen.backup_id,
        RestoreWhat::Workflow,
        request.destination.target(),
    )
    .with_trigger(request.trigger);
    let checked = (|| {
        let contents = chosen.manifest.contents.as_ref();
        let workflows: &'a [WorkflowEntry] =
            contents.map(|c| c.workflows.as_slice()).unwrap_or(&[]);
        if workflows.is_empty() {
            return Err(RestoreError::NotFound(format!(
                "backup {} ({}) holds no workflows: choose a flows, postgres_n8n, postgres_full or \
                 full_system backup (e.g. latest:flows)",
                chosen.backup_id, chosen.manifest.kind
            )));
        }
        let picked = select(workflows, &request.selection, &chosen.backup_id)
            .map_err(|e| not_stored_instead(e, chosen, &request.selection))?;
        if let Destination::Files { dir } = &request.destination {
            if dir.exists() && !dir.is_dir() {
                return Err(RestoreError::Invalid(format!(
                    "--out {} is not a directory",
                    dir.display()
                )));
            }
        }
        Ok(picked)
    })();
    match checked {
        Ok(picked) => Ok(Begun {
            store,
            chosen,
            request,
            picked,
            recorder,
        }),
        Err(e) => {
            let message = e.to_string();
            let unrecorded = recorder
                .failed(store, "check", &message, vec![], None)
                .await;
            Err(match (e, unrecorded) {
                (e, None) => e,
                (RestoreError::Invalid(m), Some(u)) => RestoreError::Invalid(format!("{m} ({u})")),
                (RestoreError::NotFound(m), Some(u)) => {
                    RestoreError::NotFound(format!("{m} ({u})"))
                }
                (e, Some(u)) => RestoreError::target(format!("{e} ({u})")),
            })
        }
    }
}

/// Restores the selected workflows of a backup ([`begin`], then
/// [`Begun::run`] without cancellation).
pub async fn restore(
    store: &Store,
    chosen: &ChosenBackup,
    request: Request,
    on_result: &(dyn Fn(&WorkflowResult) + Send + Sync),
) -> Result<RestoreReport> {
    begin(store, chosen, request)
        .await?
        .run(on_result, &Cancel::default())
        .await
}

impl Begun<'_> {
    /// Carries the restore out; it ends with one event: `RestoreFailed`
    /// when it cannot start (n8n does not answer or refuses the key: stage
    /// `check`; the directory cannot be created: stage `write`) or is
    /// interrupted (`cancel`: the workflows under way finish, no new one
    /// starts; stage `write` or `create`), otherwise `RestorePerformed` with
    /// one item per workflow (also when some failed: one failing workflow
    /// does not stop the others). `on_result` sees each workflow's result
    /// as it is known, in the backup's order. Temporary files that an
    /// interrupted restore left in the output directory are removed first.
    pub async fn run(
        self,
        on_result: &(dyn Fn(&WorkflowResult) + Send + Sync),
        cancel: &Cancel,
    ) -> Result<RestoreReport> {
        let Begun {
            store,
            chosen,
            request,
            picked,
            recorder,
        } = self;
        let target = request.destination.target();
        let mut warnings = Vec::new();

        // Can the target take them?
        match &request.destination {
            Destination::N8n { api, .. } => {
                if let Err(e) = api.check().await {
                    let message = format!(
                        "{e}. Nothing was sent. To get the workflows anyway, restore them to files \
                         with --out DIR and import them in n8n (editor: Import from File; or \
                         `n8n import:workflow --separate --input=DIR`)"
                    );
                    return Err(fail(store, &recorder, "check", message, e.is_retryable()).await);
                }
            }
            Destination::Files { dir } => {
                if let Err(e) = make_dir(dir) {
                    let message = format!("cannot create the directory {}: {e}", dir.display());
                    return Err(fail(store, &recorder, "write", message, false).await);
                }
                let swept = super::sweep_temporary_files(dir);
                if swept > 0 {
                    warnings.push(format!(
                        "removed {swept} temporary file(s) that an interrupted restore left in {}",
                        dir.display()
                    ));
                }
            }
        }
        let credentials = match &request.credentials_db {
            Some(db) => match TargetCredentials::load(db).await {
                Ok(c) => Some(c),
                Err(e) => {
                    warnings.push(format!(
                        "the credential references could not be checked against the target's \
                         database: {e}"
                    ));
                    None
                }
            },
            None => None,
        };
        let check = match (&credentials, &request.destination) {
            (Some(_), _) => CredentialCheck::Database,
            (None, Destination::N8n { .. }) => CredentialCheck::Api,
            (None, Destination::Files { .. }) => CredentialCheck::None,
        };
        let names = file_names(&picked);
        let ctx = Ctx {
            store,
            chosen,
            destination: &request.destination,
            credentials: credentials.as_ref(),
            cancel,
        };
        let ctx = &ctx;
        let mut results = Vec::with_capacity(picked.len());
        // An interruption lets the workflows under way finish (a file is
        // written whole, a workflow created in n8n is known) and starts no
        // new one: the stream is drained, not dropped.
        let mut stream = futures::stream::iter(picked.iter().zip(names))
            .map(|(p, file)| async move { restore_one(ctx, p, file).await })
            .buffered(CONCURRENCY);
        while let Some(r) = stream.next().await {
            on_result(&r);
            results.push(r);
        }
        drop(stream);
        if check == CredentialCheck::Api
            && results.iter().any(|r| !r.unchecked_credentials.is_empty())
        {
            warnings.push(
                "n8n's public API cannot list credentials, so references n8n kept as they were \
                 could not be checked: configure the target n8n's database (--n8n-db / ARK_N8N_DB, \
                 password in ARK_N8N_DB_PASSWORD or ARK_N8N_DB_PASSWORD_FILE) to check them"
                    .into(),
            );
        }
        let mut summary = Summary::default();
        for r in &results {
            match r.outcome {
                Outcome::Restored => summary.restored += 1,
                Outcome::Skipped => summary.skipped += 1,
                Outcome::Failed => summary.failed += 1,
            }
        }
        let items: Vec<_> = results.iter().map(WorkflowResult::event_item).collect();
        // Interrupted when the interruption left a workflow out (a signal
        // after the last one changes nothing: the restore is whole).
        let left_out = results
            .iter()
            .filter(|r| {
                r.outcome == Outcome::Skipped
                    && r.message
                        .as_deref()
                        .is_some_and(|m| m.starts_with(NOT_RESTORED))
            })
            .count();
        if let Some(why) = cancel.interrupted().filter(|_| left_out > 0) {
            let (stage, kept) = match &request.destination {
                Destination::Files { dir } => (
                    "write",
                    format!(
                        "the files written to {} are complete (each is written whole or not at all); \
                         running the same restore again skips them",
                        dir.display()
                    ),
                ),
                Destination::N8n { .. } => (
                    "create",
                    "the workflows created in n8n stay (each is complete and inactive; `n8n-ark restore \
                     history` lists them)"
                        .to_string(),
                ),
            };
            let message = format!(
                "{why}: {} of {} workflows were restored ({} failed, {} skipped before it), {left_out} \
                 were not: {kept}",
                summary.restored,
                results.len(),
                summary.failed,
                summary.skipped - left_out
            );
            let message = match recorder.failed(store, stage, &message, items, None).await {
                None => message,
                Some(u) => format!("{message} ({u})"),
            };
            return Err(RestoreError::Interrupted(message));
        }
        recorder
            .performed(store, items, None)
            .await
            .map_err(|e| RestoreError::Target {
                message: format!(
                    "{} restored, {} skipped, {} failed, but the RestorePerformed event could not be \
                     recorded: {e}",
                    summary.restored, summary.skipped, summary.failed
                ),
                retryable: e.is_retryable(),
            })?;
        Ok(RestoreReport {
            restore_id: recorder.restore_id.clone(),
            backup_id: chosen.backup_id.clone(),
            backup_finished: iso_time(chosen.finished_ms),
            target,
            credentials_checked: check,
            workflows: results,
            summary,
            warnings,
            duration_ms: recorder.elapsed_ms(),
        })
    }
}

/// A selection naming a workflow the backup read but could not store: says
/// so (and why) instead of "no such workflow".
fn not_stored_instead(
    e: RestoreError,
    chosen: &ChosenBackup,
    selection: &Selection,
) -> RestoreError {
    let Some(c) = chosen.manifest.contents.as_ref() else {
        return e;
    };
    let stored = |r: &str| c.workflows.iter().any(|w| w.id == r || w.name == r);
    for r in selection.workflows.iter().map(|r| r.trim()) {
        if stored(r) {
            continue;
        }
        if let Some(n) = c
            .workflows_not_stored
            .iter()
            .find(|n| n.id == r || n.name == r)
        {
            let dump = if c.databases.iter().any(|d| d.is_n8n) {
                format!(
                    "; its row is in the backup's dump of the n8n database (`n8n-ark restore database {} --as NAME` restores that dump under another name)",
                    chosen.backup_id
                )
            } else {
                String::new()
            };
            return RestoreError::NotFound(format!(
                "workflow {} ({:?}) was read by backup {} but not stored: {}{dump}",
                n.id, n.name, chosen.backup_id, n.reason
            ));
        }
    }
    e
}

/// Records `RestoreFailed` and makes the error for the operator.
async fn fail(
    store: &Store,
    recorder: &Recorder,
    stage: &str,
    message: String,
    retryable: bool,
) -> RestoreError {
    let message = match recorder.failed(store, stage, &message, vec![], None).await {
        None => format!(
            "{message} (restore {} recorded as failed)",
            recorder.restore_id
        ),
        Some(why) => format!("{message} ({why})"),
    };
    RestoreError::Target { message, retryable }
}

/// Reads a workflow's canonical JSON from the store.
async fn read_workflow(
    store: &Store,
    chosen: &ChosenBackup,
    w: &WorkflowEntry,
) -> std::result::Result<Object, String> {
    let item = chosen
        .manifest
        .items
        .iter()
        .find(|i| i.name == w.item)
        .ok_or_else(|| format!("the backup's manifest lacks its item {:?}", w.item))?;
    // The size is the manifest's word: no more than 16 MiB ahead of the bytes.
    let mut bytes = Vec::with_capacity(item.size.min(16 << 20) as usize);
    crate::store::reader::write_item(store, item, &mut bytes)
        .await
        .map_err(|e| format!("cannot read it from the store: {e}"))?;
    let v = Json::parse(&bytes).map_err(|e| {
        format!("its object in the store is not JSON ({e}); run `n8n-ark check --read-data`")
    })?;
    let Ok(m) = v.into_object() else {
        return Err("its object in the store is not a JSON object".into());
    };
    let id = m.get("id").and_then(id_text);
    if id.as_deref() != Some(w.id.as_str()) {
        return Err(format!(
            "its object in the store holds workflow {:?}, not {:?}: run `n8n-ark check`",
            id.unwrap_or_default(),
            w.id
        ));
    }
    Ok(m)
}

async fn restore_one(ctx: &Ctx<'_>, p: &Picked<'_>, file: String) -> WorkflowResult {
    let w = p.workflow;
    if let Some(why) = ctx.cancel.interrupted() {
        let mut r = WorkflowResult::new(w, Outcome::Skipped);
        r.message = Some(format!("{NOT_RESTORED}{why}"));
        return r;
    }
    if w.archived && !p.named {
        let mut r = WorkflowResult::new(w, Outcome::Skipped);
        r.message = Some(format!(
            "archived in n8n when backed up; name it ({}) to restore it",
            w.id
        ));
        return r;
    }
    let canonical = match read_workflow(ctx.store, ctx.chosen, w).await {
        Ok(c) => c,
        Err(m) => return WorkflowResult::failed(w, m),
    };
    let nodes: Vec<Json> = canonical
        .get("nodes")
        .and_then(Json::as_array)
        .cloned()
        .unwrap_or_default();
    match ctx.destination {
        Destination::Files { dir } => {
            let doc = export_document(&canonical);
            let d = dir.clone();
            let f = file.clone();
            let written = tokio::task::spawn_blocking(move || write_new_file(&d, &f, &doc)).await;
            let path = dir.join(&file).display().to_string();
            let mut r = match written {
                Ok(Ok(Written::New)) => WorkflowResult::new(w, Outcome::Restored),
                Ok(Ok(Written::Identical)) => {
                    let mut r = WorkflowResult::new(w, Outcome::Skipped);
                    r.message = Some(format!("{path} is already there with the same content"));
                    r
                }
                Ok(Ok(Written::Differs)) => WorkflowResult::failed(
                    w,
                    format!(
                        "{path} exists with other content and was not overwritten: move it away \
                         or choose another --out directory"
                    ),
                ),
                Ok(Err(e)) => WorkflowResult::failed(w, format!("cannot write {path}: {e}")),
                Err(e) => WorkflowResult::failed(w, format!("cannot write {path}: {e}")),
            };
            r.file = Some(path);
            if let Some(creds) = ctx.credentials {
                if r.outcome != Outcome::Failed {
                    check_with_db(&nodes, creds, &mut r);
                }
            }
            r
        }
        Destination::N8n { api, template } => {
            let new_name = template.render(
                &w.name,
                &w.id,
                &ctx.chosen.backup_id,
                ctx.chosen.finished_ms,
            );
            let body = match post_body(&canonical, &new_name) {
                Ok(b) => b,
                Err(m) => return WorkflowResult::failed(w, m),
            };
            match create(api, body, &new_name).await {
                Ok((created, dropped)) => {
                    let mut r = WorkflowResult::new(w, Outcome::Restored);
                    r.dropped = dropped;
                    r.new_id = created.get("id").and_then(id_text);
                    r.new_name = Some(
                        created
                            .get("name")
                            .and_then(Json::as_str)
                            .unwrap_or(&new_name)
                            .to_string(),
                    );
                    match ctx.credentials {
                        Some(creds) => check_with_db(&nodes, creds, &mut r),
                        None => {
                            let mut created_nodes =
                                created.get("nodes").and_then(Json::as_array).cloned();
                            if created_nodes.is_none() && !node_refs(&nodes).is_empty() {
                                if let Some(id) = &r.new_id {
                                    created_nodes = api.get_workflow(id).await.ok().and_then(|v| {
                                        v.get("nodes").and_then(Json::as_array).cloned()
                                    });
                                }
                            }
                            check_with_answer(
                                &nodes,
                                created_nodes.as_deref().unwrap_or(&[]),
                                &mut r,
                            );
                        }
                    }
                    r
                }
                Err(m) => WorkflowResult::failed(w, m),
            }
        }
    }
}
