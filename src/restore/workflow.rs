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
// Names of created workflows.

/// The name of a workflow created in n8n, from a template with placeholders:
/// `{name}` (the workflow's name in the backup), `{id}` (its id there),
/// `{date}` (the day the backup finished, `YYYY-MM-DD`, UTC), `{time}`
/// (`HH:MM`, UTC), `{backup}` (the backup's id); `{{` and `}}` stand for
/// braces. Names are cut to n8n's 128 characters by shortening `{name}`
/// (ending it with `…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameTemplate {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Name,
    Id,
    Date,
    Time,
    Backup,
}

impl Default for NameTemplate {
    fn default() -> Self {
        NameTemplate::parse(DEFAULT_NAME_TEMPLATE).expect("the default template parses")
    }
}

impl NameTemplate {
    pub fn parse(template: &str) -> std::result::Result<NameTemplate, String> {
        if template.trim().is_empty() {
            return Err("the name template is empty (e.g. \"{name} (restored {date})\")".into());
        }
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut chars = template.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    text.push('}');
                }
                '{' => {
                    let mut key = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) => key.push(c),
                            None => {
                                return Err(format!(
                                    "the name template {template:?} has a `{{` without its `}}` \
                                     (write `{{{{` for a brace)"
                                ))
                            }
                        }
                    }
                    let part = match key.as_str() {
                        "name" => Part::Name,
                        "id" => Part::Id,
                        "date" => Part::Date,
                        "time" => Part::Time,
                        "backup" => Part::Backup,
                        other => {
                            return Err(format!(
                                "the name template {template:?} has an unknown placeholder \
                                 {{{other}}}: use {{name}}, {{id}}, {{date}}, {{time}} or {{backup}}"
                            ))
                        }
                    };
                    if !text.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut text)));
                    }
                    parts.push(part);
                }
                '}' => {
                    return Err(format!(
                        "the name template {template:?} has a `}}` without its `{{` \
                         (write `}}}}` for a brace)"
                    ))
                }
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(NameTemplate { parts })
    }

    /// The name for workflow `name` (`id`) of backup `backup_id`, which
    /// finished at `finished_ms`; at most [`MAX_NAME_CHARS`] characters.
    pub fn render(&self, name: &str, id: &str, backup_id: &str, finished_ms: i64) -> String {
        let (date, time) = date_time(finished_ms);
        let fixed = |name: &str| -> String {
            let mut out = String::new();
            for p in &self.parts {
                match p {
                    Part::Text(t) => out.push_str(t),
                    Part::Name => out.push_str(name),
                    Part::Id => out.push_str(id),
                    Part::Date => out.push_str(&date),
                    Part::Time => out.push_str(&time),
                    Part::Backup => out.push_str(backup_id),
                }
            }
            out
        };
        let full = fixed(name);
        if full.chars().count() <= MAX_NAME_CHARS {
            return full;
        }
        let names = self.parts.iter().filter(|p| **p == Part::Name).count();
        let rest = fixed("").chars().count();
        if names > 0 && rest < MAX_NAME_CHARS {
            // Each {name} gets an equal share, ending in an ellipsis.
            let share = (MAX_NAME_CHARS - rest) / names;
            if share >= 2 {
                let short: String = name.chars().take(share - 1).collect::<String>() + "…";
                return fixed(&short);
            }
        }
        full.chars().take(MAX_NAME_CHARS).collect()
    }
}

/// `YYYY-MM-DD` and `HH:MM` (UTC) of a time in ms since the epoch.
fn date_time(ms: i64) -> (String, String) {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => (
            t.format("%Y-%m-%d").to_string(),
            t.format("%H:%M").to_string(),
        ),
        None => ("unknown-date".into(), "00:00".into()),
    }
}

fn iso_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------
// Choosing the workflows.

/// A workflow to restore, and whether it was named (an archived workflow is
/// restored only when named).
#[derive(Debug, Clone, Copy)]
pub struct Picked<'a> {
    pub workflow: &'a WorkflowEntry,
    pub named: bool,
}

/// Resolves one reference against a backup's workflows: an id, else an exact
/// name, else a unique part of a name (case-insensitive).
pub fn resolve<'a>(
    workflows: &'a [WorkflowEntry],
    reference: &str,
    backup_id: &str,
) -> Result<&'a WorkflowEntry> {
    let r = reference.trim();
    if r.is_empty() {
        return Err(RestoreError::Invalid(
            "an empty workflow name: give an id, a name or a part of a name".into(),
        ));
    }
    if let Some(w) = workflows.iter().find(|w| w.id == r) {
        return Ok(w);
    }
    let pick = |hits: Vec<&'a WorkflowEntry>, how: &str| -> Option<Result<&'a WorkflowEntry>> {
        match hits.len() {
            0 => None,
            1 => Some(Ok(hits[0])),
            n => {
                let list: Vec<String> = hits
                    .iter()
                    .take(10)
                    .map(|w| format!("{} ({:?})", w.id, w.name))
                    .collect();
                Some(Err(RestoreError::Invalid(format!(
                    "{n} workflows of backup {backup_id} {how} {r:?}: {}{}; name one by its id",
                    list.join(", "),
                    if n > 10 { ", ..." } else { "" }
                ))))
            }
        }
    };
    if let Some(res) = pick(
        workflows.iter().filter(|w| w.name == r).collect(),
        "are named",
    ) {
        return res;
    }
    let needle = r.to_lowercase();
    if let Some(res) = pick(
        workflows
            .iter()
            .filter(|w| w.name.to_lowercase().contains(&needle))
            .collect(),
        "have names containing",
    ) {
        return res;
    }
    Err(RestoreError::Invalid(format!(
        "backup {backup_id} has no workflow {r:?} (give its id, its exact name or a unique part \
         of it; `n8n-ark show {backup_id}` lists them)"
    )))
}

/// The workflows a selection picks, in the backup's order, each once.
pub fn select<'a>(
    workflows: &'a [WorkflowEntry],
    selection: &Selection,
    backup_id: &str,
) -> Result<Vec<Picked<'a>>> {
    selection.check()?;
    let mut named = HashSet::new();
    for r in &selection.workflows {
        named.insert(resolve(workflows, r, backup_id)?.id.as_str());
    }
    let needles: Vec<String> = selection
        .name_contains
        .iter()
        .map(|m| m.to_lowercase())
        .collect();
    let tags: Vec<String> = selection.tags.iter().map(|t| t.to_lowercase()).collect();
    let matches = |w: &WorkflowEntry| -> bool {
        if selection.all {
            return true;
        }
        if !selection.filters() {
            return false;
        }
        let name = w.name.to_lowercase();
        (needles.is_empty() || needles.iter().any(|n| name.contains(n)))
            && (tags.is_empty()
                || w.tags
                    .iter()
                    .any(|t| tags.iter().any(|x| *x == t.to_lowercase())))
    };
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for w in workflows {
        let is_named = named.contains(w.id.as_str());
        if (is_named || matches(w)) && seen.insert(w.id.as_str()) {
            out.push(Picked {
                workflow: w,
                named: is_named,
            });
        }
    }
    if out.is_empty() {
        let mut what = Vec::new();
        for m in &selection.name_contains {
            what.push(format!("--match {m:?}"));
        }
        for t in &selection.tags {
            what.push(format!("--tag {t:?}"));
        }
        return Err(RestoreError::Invalid(format!(
            "no workflow of backup {backup_id} matches {} (`n8n-ark show {backup_id}` lists them)",
            what.join(" and ")
        )));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Files.

/// The file name for a workflow: `<id>-<name>.json`, reduced to
/// `A-Z a-z 0-9 - _` (never `.`, `/` or an empty name).
pub fn file_name(id: &str, name: &str) -> String {
    let id = reduce(id, 64);
    let slug = reduce(name, 60);
    let base = match (id.is_empty(), slug.is_empty()) {
        (true, true) => "workflow".to_string(),
        (true, false) => slug,
        (false, true) => id,
        (false, false) => format!("{id}-{slug}"),
    };
    format!("{base}.json")
}

fn reduce(s: &str, max: usize) -> String {
    let mut out = String::new();
    for c in s.chars() {
        let c = if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            c
        } else {
            '_'
        };
        if c == '_' && out.ends_with('_') {
            continue;
        }
        out.push(c);
    }
    let t: String = out
        .trim_matches(|c| c == '_' || c == '-')
        .chars()
        .take(max)
        .collect();
    t.trim_end_matches(['_', '-']).to_string()
}

/// File names for the picked workflows, unique within the run.
fn file_names(picked: &[Picked<'_>]) -> Vec<String> {
    let mut used = HashSet::new();
    picked
        .iter()
        .map(|p| {
            let base = file_name(&p.workflow.id, &p.workflow.name);
            let stem = base.trim_end_matches(".json").to_string();
            let mut name = base;
            let mut n = 2;
            while !used.insert(name.clone()) {
                name = format!("{stem}-{n}.json");
                n += 1;
            }
            name
        })
        .collect()
}

/// The file `n8n import:workflow` reads for a canonical workflow: its
/// members in n8n's export order (others after, sorted), without
/// [`NOT_EXPORTED`], pretty-printed, with a final newline.
pub fn export_document(w: &Object) -> Vec<u8> {
    let mut members: Vec<(&str, &Json)> = EXPORT_ORDER
        .iter()
        .filter_map(|k| w.get(k).map(|v| (*k, v)))
        .collect();
    let mut rest: Vec<(&str, &Json)> = w
        .iter()
        .filter(|(k, _)| !EXPORT_ORDER.contains(&k.as_str()) && !NOT_EXPORTED.contains(&k.as_str()))
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    rest.sort_by(|a, b| a.0.cmp(b.0));
    members.extend(rest);
    let mut out = Vec::new();
    crate::source::json::write_pretty_members(Some(&members), &Json::Null, &mut out);
    out.push(b'\n');
    out
}

/// What writing one file did.
#[derive(Debug, PartialEq, Eq)]
enum Written {
    New,
    /// The file was there already with the same bytes.
    Identical,
    /// The file was there with other content (or is not a regular file).
    Differs,
}

/// Writes `bytes` as `dir/name` unless that name is taken: a temporary file
/// in `dir` (0600), fsynced, hard-linked to the name (which fails if it
/// exists) or, where the file system has no hard links, renamed after a
/// check; then the directory is fsynced.
fn write_new_file(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<Written> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dest = dir.join(name);
    let existing = |dest: &Path| -> std::io::Result<Option<Written>> {
        match std::fs::symlink_metadata(dest) {
            Ok(m) if m.file_type().is_file() => {
                let have = std::fs::read(dest)?;
                Ok(Some(if have == bytes {
                    Written::Identical
                } else {
                    Written::Differs
                }))
            }
            Ok(_) => Ok(Some(Written::Differs)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    };
    if let Some(w) = existing(&dest)? {
        return Ok(w);
    }
    let tmp = dir.join(super::temporary_file_name(name));
    let result = (|| -> std::io::Result<Written> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        match std::fs::hard_link(&tmp, &dest) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Ok(existing(&dest)?.unwrap_or(Written::Differs));
            }
            Err(_) => {
                // No hard links here (some network and FAT file systems).
                if let Some(w) = existing(&dest)? {
                    return Ok(w);
                }
                std::fs::rename(&tmp, &dest)?;
            }
        }
        Ok(Written::New)
    })();
    let _ = std::fs::remove_file(&tmp);
    let written = result?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(written)
}

/// Creates the output directory (0700) when it is missing; fsyncs its parent.
fn make_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The request to n8n.

/// The body of `POST /api/v1/workflows` for a canonical workflow: only
/// [`POST_FIELDS`].
pub fn post_body(w: &Object, new_name: &str) -> std::result::Result<Object, String> {
    let mut body = Object::new();
    body.insert("name", Json::String(new_name.to_string()));
    match w.get("nodes") {
        Some(n @ Json::Array(_)) => body.insert("nodes", n.clone()),
        _ => return Err("its object in the backup has no nodes array".into()),
    };
    let or_empty = |v: Option<&Json>| match v {
        None | Some(Json::Null) => Json::Object(Object::new()),
        Some(v) => v.clone(),
    };
    body.insert("connections", or_empty(w.get("connections")));
    body.insert("settings", or_empty(w.get("settings")));
    match w.get("staticData") {
        None | Some(Json::Null) => {}
        Some(s) => {
            body.insert("staticData", s.clone());
        }
    }
    Ok(body)
}

/// What a 400 message of n8n's schema validation is about.
#[derive(Debug, PartialEq, Eq)]
enum Rejection {
    /// `request/body/settings must NOT have additional properties`.
    SettingsKey,
    /// `request/body/settings/KEY must be equal to one of the allowed values...`.
    SettingsValue(String),
    Other,
}

fn classify(message: &str) -> Rejection {
    let m = message.trim();
    if m.starts_with("request/body/settings must NOT have additional properties") {
        return Rejection::SettingsKey;
    }
    if let Some(rest) = m.strip_prefix("request/body/settings/") {
        if let Some((key, tail)) = rest.split_once(' ') {
            if !key.contains('/') && tail.starts_with("must be equal to one of the allowed values")
            {
                return Rejection::SettingsValue(key.to_string());
            }
        }
    }
    Rejection::Other
}

/// The settings keys to try without, in order, for a target that refuses
/// some settings key (see the module documentation).
fn settings_candidates(settings: &Object) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = settings
        .keys()
        .filter(|k| !N8N_SETTINGS_KEYS.contains(&k.as_str()))
        .map(|k| {
            (
                k.clone(),
                "n8n 1.123 does not know this setting (a newer n8n wrote it), and the target \
                 refuses it: a setting n8n does not know cannot take effect there"
                    .to_string(),
            )
        })
        .collect();
    for k in RECORDING_SETTINGS {
        if settings.contains_key(k) {
            out.push((
                k.to_string(),
                "the target n8n refuses this setting (an older n8n); it only governs what n8n \
                 records or exposes about runs, not what the workflow does"
                    .to_string(),
            ));
        }
    }
    out
}

/// Trials of the settings-key search: each candidate alone, then growing
/// prefixes of the list.
fn trials(n: usize) -> Vec<Vec<usize>> {
    let mut t: Vec<Vec<usize>> = (0..n).map(|i| vec![i]).collect();
    for len in 2..=n {
        t.push((0..len).collect());
    }
    t
}

/// The search for the settings keys a target refuses (its message does not
/// name them): candidates with why each is safe to drop, the trials left,
/// and the trial being sent (indexes into the candidates).
struct SettingsSearch {
    candidates: Vec<(String, String)>,
    left: std::vec::IntoIter<Vec<usize>>,
    current: Vec<usize>,
    /// n8n's message that started it.
    message: String,
}

impl SettingsSearch {
    fn new(settings: &Object, message: String) -> SettingsSearch {
        let candidates = settings_candidates(settings);
        let left = trials(candidates.len()).into_iter();
        SettingsSearch {
            candidates,
            left,
            current: Vec::new(),
            message,
        }
    }

    /// The current trial's keys, as dropped members.
    fn dropped(&self) -> impl Iterator<Item = (&str, Dropped)> + '_ {
        self.current.iter().map(|&i| {
            let (key, reason) = &self.candidates[i];
            (
                key.as_str(),
                Dropped {
                    field: format!("settings.{key}"),
                    reason: reason.clone(),
                    n8n_message: self.message.clone(),
                },
            )
        })
    }
}

/// Creates the workflow, dropping refused members where that is safe.
/// Returns the created workflow and what was dropped, or why it failed.
async fn create(
    api: &N8nApi,
    body: Object,
    new_name: &str,
) -> std::result::Result<(Json, Vec<Dropped>), String> {
    let base = api.base_url();
    let mut settings = match body.get("settings") {
        Some(Json::Object(s)) => s.clone(),
        _ => Object::new(),
    };
    let mut dropped: Vec<Dropped> = Vec::new();
    let mut search: Option<SettingsSearch> = None;
    for _ in 0..MAX_ATTEMPTS {
        let mut b = body.clone();
        if body.get("settings").is_some_and(Json::is_object) {
            let mut trial = settings.clone();
            if let Some(s) = &search {
                for (key, _) in s.dropped() {
                    trial.remove(key);
                }
            }
            b.insert("settings", Json::Object(trial));
        }
        let message = match api.create_workflow(&Json::Object(b)).await {
            Ok(created) => {
                if let Some(s) = &search {
                    dropped.extend(s.dropped().map(|(_, d)| d));
                }
                return Ok((created, dropped));
            }
            Err(CreateFailure::Refused {
                status: 400,
                message,
            }) => message,
            Err(CreateFailure::Refused { status, message }) => {
                return Err(format!("n8n at {base} refused it ({status}): {message}"))
            }
            Err(CreateFailure::Failed(e)) => return Err(e.to_string()),
            Err(CreateFailure::NoAnswer(e)) => {
                return Err(format!(
                    "{e}; the workflow may or may not have been created: look in n8n for a \
                     workflow named {new_name:?} before trying again"
                ))
            }
        };
        let rejection = classify(&message);
        if rejection != Rejection::SettingsKey {
            // A trial that got past the settings check fixed it: keep it.
            if let Some(s) = search.take() {
                for (key, d) in s.dropped() {
                    settings.remove(key);
                    dropped.push(d);
                }
            }
        }
        match rejection {
            Rejection::SettingsValue(key)
                if settings.get(&key).and_then(Json::as_str) == Some("DEFAULT") =>
            {
                settings.remove(&key);
                dropped.push(Dropped {
                    field: format!("settings.{key}"),
                    reason: "its value \"DEFAULT\" (written by an older n8n) means the instance's \
                             default, which is what an absent setting means"
                        .into(),
                    n8n_message: message,
                });
            }
            Rejection::SettingsKey => {
                let s =
                    search.get_or_insert_with(|| SettingsSearch::new(&settings, message.clone()));
                match s.left.next() {
                    Some(next) => s.current = next,
                    None => {
                        let tried: Vec<&str> = s.candidates.iter().map(|c| c.0.as_str()).collect();
                        let kept: Vec<&str> = settings
                            .keys()
                            .map(String::as_str)
                            .filter(|k| !tried.contains(k))
                            .collect();
                        return Err(format!(
                            "n8n at {base} refused it: {message}. n8n-ark tried without the \
                             settings that are safe to drop ({}) and n8n still refuses; the \
                             others ({}) change how or when the workflow runs, so it was not \
                             restored: restore it with --out, remove the setting the target does \
                             not know, and import it",
                            if tried.is_empty() {
                                "none here".to_string()
                            } else {
                                tried.join(", ")
                            },
                            kept.join(", ")
                        ));
                    }
                }
            }
            _ => {
                return Err(format!(
                    "n8n at {base} refused it: {message}{} (not retried: dropping that would \
                     change what the workflow does; restore it with --out and import it after \
                     checking)",
                    node_named(&body, &message)
                ))
            }
        }
    }
    Err(format!(
        "n8n at {base} kept refusing it after {MAX_ATTEMPTS} attempts"
    ))
}

/// For a message about `request/body/nodes/N...`: ` (node N is "Name", type T)`.
fn node_named(body: &Object, message: &str) -> String {
    let Some(rest) = message.trim().strip_prefix("request/body/nodes/") else {
        return String::new();
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let Ok(i) = digits.parse::<usize>() else {
        return String::new();
    };
    match body.get("nodes").and_then(|n| n.get_index(i)) {
        Some(n) => format!(
            " (node {i} is {:?}, type {})",
            n.get("name").and_then(Json::as_str).unwrap_or(""),
            n.get("type").and_then(Json::as_str).unwrap_or("?")
        ),
        None => String::new(),
    }
}

// ---------------------------------------------------------------------------
// Credential references.

/// One node's reference to a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NodeRef {
    node_index: usize,
    node: String,
    credential_type: String,
    id: Option<String>,
    name: Option<String>,
    /// Old style: `{type: "name"}`, or `id: null`.
    by_name_only: bool,
}

fn id_text(v: &Json) -> Option<String> {
    match v {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn node_refs(nodes: &[Json]) -> Vec<NodeRef> {
    let mut out = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        let node = n
            .get("name")
            .and_then(Json::as_str)
            .unwrap_or("")
            .to_string();
        let Some(Json::Object(creds)) = n.get("credentials") else {
            continue;
        };
        for (t, r) in creds.iter() {
            let (id, name, by_name_only) = match r {
                Json::String(s) => (None, Some(s.clone()), true),
                Json::Object(o) => {
                    let id = o.get("id").and_then(id_text);
                    (
                        id.clone(),
                        o.get("name").and_then(Json::as_str).map(String::from),
                        id.is_none(),
                    )
                }
                _ => continue,
            };
            out.push(NodeRef {
                node_index: i,
                node: node.clone(),
                credential_type: t.clone(),
                id,
                name,
                by_name_only,
            });
        }
    }
    out
}

/// The target n8n's credentials: ids, names and types (never their data).
#[derive(Debug, Clone, Default)]
pub struct TargetCredentials {
    by_id: HashMap<String, String>,
    by_name_type: HashMap<(String, String), Vec<String>>,
}

impl TargetCredentials {
    /// From (id, name, type) rows.
    pub fn new(rows: impl IntoIterator<Item = (String, String, String)>) -> TargetCredentials {
        let mut t = TargetCredentials::default();
        for (id, name, ty) in rows {
            t.by_name_type
                .entry((name, ty.clone()))
                .or_default()
                .push(id.clone());
            t.by_id.insert(id, ty);
        }
        for ids in t.by_name_type.values_mut() {
            ids.sort();
        }
        t
    }

    /// Reads `credentials_entity` (id, name, type) of the target n8n's database.
    pub async fn load(db: &PgTarget) -> std::result::Result<TargetCredentials, SourceError> {
        use sqlx::Connection;
        let mut conn = db.connect().await?;
        let rows: std::result::Result<Vec<(String, String, String)>, sqlx::Error> =
            sqlx::query_as("SELECT id::text, name::text, type::text FROM credentials_entity")
                .fetch_all(&mut conn)
                .await;
        let _ = conn.close().await;
        let rows = rows.map_err(|e| match &e {
            sqlx::Error::Database(d) if d.code().as_deref() == Some("42P01") => {
                SourceError::Database(format!(
                    "{} has no table credentials_entity: is it n8n's database?",
                    db.display()
                ))
            }
            _ => SourceError::Database(format!(
                "reading the credentials' names in {}: {e}",
                db.display()
            )),
        })?;
        Ok(TargetCredentials::new(rows))
    }

    /// What n8n does with a reference: `Ok(None)` it keeps it, `Ok(Some(id))`
    /// it rewrites it to that credential, `Err(why)` it stays dangling.
    fn resolve(&self, r: &NodeRef) -> std::result::Result<Option<String>, String> {
        if !r.by_name_only {
            if let Some(id) = &r.id {
                if self.by_id.get(id) == Some(&r.credential_type) {
                    return Ok(None);
                }
            }
        }
        let Some(name) = &r.name else {
            return Err(
                "the target has no credential with this id, and the reference has no name".into(),
            );
        };
        let ids = self
            .by_name_type
            .get(&(name.clone(), r.credential_type.clone()))
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        match ids {
            [] => Err(format!(
                "the target has no {} credential with this id or named {name:?}",
                r.credential_type
            )),
            [one] => Ok(Some(one.clone())),
            // n8n takes the first match for old-style references by name.
            [first, ..] if r.by_name_only => Ok(Some(first.clone())),
            many => Err(format!(
                "the target has no credential with this id, and {} {} credentials named {name:?}: \
                 n8n cannot choose",
                many.len(),
                r.credential_type
            )),
        }
    }
}

/// Groups references by credential, listing the nodes using each.
fn group_uses(refs: Vec<(NodeRef, String)>) -> Vec<CredentialUse> {
    let mut out: Vec<CredentialUse> = Vec::new();
    for (r, reason) in refs {
        match out
            .iter_mut()
            .find(|u| u.credential_type == r.credential_type && u.id == r.id && u.name == r.name)
        {
            Some(u) => {
                if !u.nodes.contains(&r.node) {
                    u.nodes.push(r.node);
                }
            }
            None => out.push(CredentialUse {
                credential_type: r.credential_type,
                id: r.id,
                name: r.name,
                nodes: vec![r.node],
                reason,
            }),
        }
    }
    out
}

fn group_remaps(refs: Vec<(NodeRef, String)>) -> Vec<Remapped> {
    let mut out: Vec<Remapped> = Vec::new();
    for (r, target_id) in refs {
        match out.iter_mut().find(|m| {
            m.credential_type == r.credential_type && m.id == r.id && m.target_id == target_id
        }) {
            Some(m) => {
                if !m.nodes.contains(&r.node) {
                    m.nodes.push(r.node);
                }
            }
            None => out.push(Remapped {
                credential_type: r.credential_type,
                name: r.name,
                id: r.id,
                target_id,
                nodes: vec![r.node],
            }),
        }
    }
    out
}

/// Checks references against the target's credentials.
fn check_with_db(nodes: &[Json], creds: &TargetCredentials, result: &mut WorkflowResult) {
    let mut missing = Vec::new();
    let mut remapped = Vec::new();
    for r in node_refs(nodes) {
        match creds.resolve(&r) {
            Ok(None) => {}
            Ok(Some(id)) if Some(&id) == r.id.as_ref() => {}
            Ok(Some(id)) => remapped.push((r, id)),
            Err(why) => missing.push((r, why)),
        }
    }
    result.missing_credentials = group_uses(missing);
    result.remapped_credentials = group_remaps(remapped);
}

/// Reads what n8n did with each reference from the created workflow.
fn check_with_answer(sent: &[Json], created: &[Json], result: &mut WorkflowResult) {
    let mut missing = Vec::new();
    let mut remapped = Vec::new();
    let mut unchecked = Vec::new();
    for r in node_refs(sent) {
        // n8n keeps the nodes' order; match by name to be sure.
        let node = created
            .get(r.node_index)
            .filter(|n| n.get("name").and_then(Json::as_str) == Some(r.node.as_str()))
            .or_else(|| {
                created
                    .iter()
                    .find(|n| n.get("name").and_then(Json::as_str) == Some(r.node.as_str()))
            });
        let now = node
            .and_then(|n| n.get("credentials"))
            .and_then(|c| c.get(&r.credential_type));
        let now_id = now.and_then(|c| c.get("id"));
        match now_id {
            Some(Json::Null) => missing.push((
                r,
                "n8n found no credential of this type with this name".to_string(),
            )),
            Some(v) => match id_text(v) {
                Some(id) if Some(&id) != r.id.as_ref() => remapped.push((r, id)),
                _ => unchecked.push((
                    r,
                    "n8n kept the id, which it does whether the credential exists or not \
                     (its public API cannot list credentials); configure the target n8n's \
                     database (--n8n-db / ARK_N8N_DB) to check"
                        .to_string(),
                )),
            },
            None => unchecked.push((r, "n8n's answer does not show this reference".to_string())),
        }
    }
    result.missing_credentials = group_uses(missing);
    result.remapped_credentials = group_remaps(remapped);
    result.unchecked_credentials = group_uses(unchecked);
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
    );
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_files_of_a_killed_restore_are_known_by_name() {
        assert_eq!(
            super::super::temporary_file_pid(".a1-Flow.json.ark-tmp-4242-0a1b2c3d"),
            Some(4242)
        );
        assert_eq!(super::super::temporary_file_pid("a1-Flow.json"), None);
        assert_eq!(
            super::super::temporary_file_pid(".a1-Flow.json.ark-tmp-x-0a1b2c3d"),
            None
        );
        assert_eq!(super::super::temporary_file_pid(".a.ark-tmp-12-zz"), None);
        let d = tempfile::tempdir().unwrap();
        // A process id that cannot run (above the kernel's limit).
        let dead = d.path().join(".w.json.ark-tmp-2147483646-0a1b2c3d");
        let mine = d
            .path()
            .join(format!(".w.json.ark-tmp-{}-0a1b2c3d", std::process::id()));
        let other = d.path().join("w.json");
        for p in [&dead, &mine, &other] {
            std::fs::write(p, b"x").unwrap();
        }
        assert_eq!(super::super::sweep_temporary_files(d.path()), 1);
        assert!(!dead.exists() && mine.exists() && other.exists());
    }
    use serde_json::{json, Value};

    fn obj(v: Value) -> Object {
        Json::from(v).into_object().unwrap()
    }

    fn list(v: Vec<Value>) -> Vec<Json> {
        v.into_iter().map(Json::from).collect()
    }

    fn entry(id: &str, name: &str, tags: &[&str], archived: bool) -> WorkflowEntry {
        WorkflowEntry {
            id: id.into(),
            name: name.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            archived,
            item: format!("workflows/{id}.json"),
            ..Default::default()
        }
    }

    #[test]
    fn templates_render_and_cut_to_n8n_length() {
        let ms = 1_795_000_000_000; // 2026-11-18T...
        let t = NameTemplate::default();
        assert_eq!(
            t.render("Flow", "id1", "B", ms),
            "Flow (restored 2026-11-18)"
        );
        let t = NameTemplate::parse("{{x}} {name}/{id}/{backup}/{date} {time}").unwrap();
        assert_eq!(
            t.render("Flow", "id1", "B1", ms),
            format!("{{x}} Flow/id1/B1/2026-11-18 {}", date_time(ms).1)
        );
        let long = "é".repeat(300);
        let r = NameTemplate::default().render(&long, "i", "b", ms);
        assert_eq!(r.chars().count(), MAX_NAME_CHARS);
        assert!(r.ends_with("… (restored 2026-11-18)"), "{r}");
        let r = NameTemplate::parse("{id}")
            .unwrap()
            .render("n", &"x".repeat(200), "b", ms);
        assert_eq!(r.chars().count(), MAX_NAME_CHARS);
        for bad in ["", "  ", "{nam}", "{name", "name}", "{date}{"] {
            assert!(NameTemplate::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn file_names_never_escape() {
        assert_eq!(file_name("abc", "Flow #1"), "abc-Flow_1.json");
        assert_eq!(file_name("../../etc", "passwd"), "etc-passwd.json");
        assert_eq!(file_name("..", ".."), "workflow.json");
        assert_eq!(file_name("", "日本語"), "workflow.json");
        assert_eq!(file_name("id", "/"), "id.json");
        for (id, name) in [
            ("a/b", "../x"),
            ("..", "/etc/passwd"),
            ("\0", "\n"),
            (".hidden", "."),
        ] {
            let f = file_name(id, name);
            assert!(
                !f.contains('/') && !f.starts_with('.') && f.ends_with(".json"),
                "{f}"
            );
            assert_eq!(f.matches('.').count(), 1, "{f}");
        }
        let ws = [
            entry("a", "x y", &[], false),
            entry("a", "x/y", &[], false),
            entry("a", "x_y", &[], false),
        ];
        let picked: Vec<Picked> = ws
            .iter()
            .map(|w| Picked {
                workflow: w,
                named: true,
            })
            .collect();
        assert_eq!(
            file_names(&picked),
            vec!["a-x_y.json", "a-x_y-2.json", "a-x_y-3.json"]
        );
    }

    #[test]
    fn selection() {
        let ws = vec![
            entry("w1", "CRM data cleanup", &["crm"], false),
            entry("w2", "HR data cleanup", &["hr"], false),
            entry("w3", "CRM invoice", &["crm", "billing"], false),
            entry("w4", "Old CRM flow", &["crm"], true),
        ];
        let ids = |s: &Selection| -> Vec<String> {
            select(&ws, s, "B")
                .unwrap()
                .iter()
                .map(|p| p.workflow.id.clone())
                .collect()
        };
        let s = |f: fn(&mut Selection)| {
            let mut s = Selection::default();
            f(&mut s);
            s
        };
        assert_eq!(ids(&s(|s| s.all = true)), ["w1", "w2", "w3", "w4"]);
        assert_eq!(
            ids(&s(|s| s.name_contains = vec!["CLEANUP".into()])),
            ["w1", "w2"]
        );
        assert_eq!(ids(&s(|s| s.tags = vec!["crm".into()])), ["w1", "w3", "w4"]);
        assert_eq!(
            ids(&s(|s| {
                s.tags = vec!["crm".into()];
                s.name_contains = vec!["cleanup".into()];
            })),
            ["w1"]
        );
        assert_eq!(
            ids(&s(|s| {
                s.tags = vec!["billing".into()];
                s.workflows = vec!["HR data cleanup".into()];
            })),
            ["w2", "w3"]
        );
        assert_eq!(
            ids(&s(|s| s.workflows = vec!["w4".into(), "invoice".into()])),
            ["w3", "w4"]
        );
        // Ambiguous, unknown, empty, contradictory.
        for bad in [
            s(|s| s.workflows = vec!["cleanup".into()]),
            s(|s| s.workflows = vec!["nope".into()]),
            s(|_| {}),
            s(|s| {
                s.all = true;
                s.tags = vec!["crm".into()];
            }),
            s(|s| s.tags = vec!["none".into()]),
        ] {
            assert!(
                matches!(select(&ws, &bad, "B"), Err(RestoreError::Invalid(_))),
                "{bad:?}"
            );
        }
        let e = select(&ws, &s(|s| s.workflows = vec!["cleanup".into()]), "B").unwrap_err();
        assert!(
            e.to_string().contains("w1") && e.to_string().contains("w2"),
            "{e}"
        );
    }

    #[test]
    fn post_bodies_hold_only_what_n8n_accepts() {
        let w = json!({
            "id": "w1", "name": "n", "active": true, "nodes": [{"name": "a"}], "connections": {},
            "settings": null, "staticData": null, "tags": [], "pinData": {}, "meta": null,
            "versionId": "v", "createdAt": "x", "updatedAt": "y", "isArchived": false,
        });
        let b = post_body(&obj(w), "new").unwrap();
        assert_eq!(
            Json::Object(b),
            Json::from(
                json!({"name": "new", "nodes": [{"name": "a"}], "connections": {}, "settings": {}})
            )
        );
        let w = json!({"id": "w", "nodes": [], "connections": {"a": 1}, "settings": {"x": 1}, "staticData": {"global": {}}});
        let b = post_body(&obj(w), "n").unwrap();
        assert_eq!(
            b.get("staticData").unwrap(),
            &Json::from(json!({"global": {}}))
        );
        assert!(b.keys().all(|k| POST_FIELDS.contains(&k.as_str())));
        assert!(post_body(&obj(json!({"id": "w"})), "n").is_err());
    }

    #[test]
    fn rejections_are_classified() {
        assert_eq!(
            classify("request/body/settings must NOT have additional properties"),
            Rejection::SettingsKey
        );
        assert_eq!(
            classify("request/body/settings/saveDataSuccessExecution must be equal to one of the allowed values: all, none"),
            Rejection::SettingsValue("saveDataSuccessExecution".into())
        );
        for other in [
            "request/body/nodes/0 must NOT have additional properties",
            "request/body must NOT have additional properties",
            "request/body/id is read-only",
            "",
        ] {
            assert_eq!(classify(other), Rejection::Other, "{other}");
        }
        assert_eq!(
            trials(3),
            vec![vec![0], vec![1], vec![2], vec![0, 1], vec![0, 1, 2]]
        );
        assert!(trials(0).is_empty());
        let s = json!({"executionOrder": "v1", "binaryMode": "x", "availableInMCP": true, "timezone": "UTC"});
        let c: Vec<String> = settings_candidates(&obj(s))
            .into_iter()
            .map(|c| c.0)
            .collect();
        assert_eq!(c, ["binaryMode", "availableInMCP"]);
    }

    #[test]
    fn credentials_resolve_as_n8n_does() {
        let t = TargetCredentials::new([
            (
                "c1".to_string(),
                "Billing".to_string(),
                "httpBasicAuth".to_string(),
            ),
            ("c2".to_string(), "Dup".to_string(), "githubApi".to_string()),
            ("c3".to_string(), "Dup".to_string(), "githubApi".to_string()),
        ]);
        let nodes = list(vec![
            json!({"name": "A", "credentials": {"httpBasicAuth": {"id": "c1", "name": "Old name"}}}),
            json!({"name": "B", "credentials": {"httpBasicAuth": {"id": "gone", "name": "Billing"}}}),
            json!({"name": "C", "credentials": {"githubApi": {"id": "gone2", "name": "Dup"}}}),
            json!({"name": "D", "credentials": {"githubApi": "Dup"}}),
            json!({"name": "E", "credentials": {"postgres": {"id": "c1", "name": "Billing"}}}),
        ]);
        let mut r = WorkflowResult::new(&entry("w", "n", &[], false), Outcome::Restored);
        check_with_db(&nodes, &t, &mut r);
        let missing: Vec<(&str, Vec<String>)> = r
            .missing_credentials
            .iter()
            .map(|m| (m.credential_type.as_str(), m.nodes.clone()))
            .collect();
        assert_eq!(
            missing,
            vec![
                ("githubApi", vec!["C".to_string()]),
                ("postgres", vec!["E".to_string()])
            ]
        );
        assert!(r.missing_credentials[0].reason.contains("cannot choose"));
        let remapped: Vec<(&str, &str)> = r
            .remapped_credentials
            .iter()
            .map(|m| (m.nodes[0].as_str(), m.target_id.as_str()))
            .collect();
        assert_eq!(remapped, vec![("B", "c1"), ("D", "c2")]);
    }

    #[test]
    fn answers_tell_what_n8n_did() {
        let sent = list(vec![
            json!({"name": "A", "credentials": {"t": {"id": "x", "name": "X"}}}),
            json!({"name": "B", "credentials": {"t": {"id": "y", "name": "Y"}}}),
            json!({"name": "C", "credentials": {"t": "Z"}}),
        ]);
        let created = list(vec![
            json!({"name": "A", "credentials": {"t": {"id": "x", "name": "X"}}}),
            json!({"name": "B", "credentials": {"t": {"id": "y2", "name": "Y"}}}),
            json!({"name": "C", "credentials": {"t": {"id": null, "name": "Z"}}}),
        ]);
        let mut r = WorkflowResult::new(&entry("w", "n", &[], false), Outcome::Restored);
        check_with_answer(&sent, &created, &mut r);
        assert_eq!(r.unchecked_credentials.len(), 1);
        assert_eq!(r.unchecked_credentials[0].nodes, ["A"]);
        assert_eq!(r.remapped_credentials[0].target_id, "y2");
        assert_eq!(r.missing_credentials[0].name.as_deref(), Some("Z"));
    }

    #[test]
    fn export_documents_follow_n8n_order() {
        let w = json!({"tags": [], "name": "n", "id": "i", "zeta": 1, "parentFolderId": null, "updatedAt": "u", "nodes": []});
        let doc = String::from_utf8(export_document(&obj(w.clone()))).unwrap();
        // The members in n8n's order, each printed as serde_json prints it.
        let v: Value = serde_json::from_str(&doc).unwrap();
        assert_eq!(v["nodes"], w["nodes"]);
        let keys: Vec<usize> = [
            "\"updatedAt\"",
            "\"id\"",
            "\"name\"",
            "\"nodes\"",
            "\"tags\"",
            "\"zeta\"",
        ]
        .iter()
        .map(|k| doc.find(k).unwrap())
        .collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{doc}");
        assert!(!doc.contains("parentFolderId") && doc.ends_with("}\n"));
    }

    #[test]
    fn files_are_never_overwritten() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(
            write_new_file(d.path(), "a.json", b"one").unwrap(),
            Written::New
        );
        assert_eq!(
            write_new_file(d.path(), "a.json", b"one").unwrap(),
            Written::Identical
        );
        assert_eq!(
            write_new_file(d.path(), "a.json", b"two").unwrap(),
            Written::Differs
        );
        assert_eq!(std::fs::read(d.path().join("a.json")).unwrap(), b"one");
        std::os::unix::fs::symlink("/etc/hostname", d.path().join("l.json")).unwrap();
        assert_eq!(
            write_new_file(d.path(), "l.json", b"x").unwrap(),
            Written::Differs
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.path().join("a.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let names: Vec<String> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "no temporary file left: {names:?}");
    }
}
