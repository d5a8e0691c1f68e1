//! `restore config`: the backup's config files, directories and symlinks
//! written under a root (`/` by default), with their modes, owners (as root)
//! and mtimes. The whole manifest is checked first: a path no backup records
//! (`..`, relative, twice) is refused and nothing is written; an entry that
//! would be written through a link is refused alone. A plan (`plan`) writes
//! and records nothing; a restore (`run`) records its event.
use super::{chosen, RestoreResult};
use crate::ops::{catalog, Context, ErrorKind, OpError, OpResult, Reporter};
use crate::restore::config::{self, ConfigOptions, PlannedFile};
use crate::restore::{Outcome, Recorder, RestoreError, RestoreWhat};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use store_format::event::RestoredItem;

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
pub struct Request {
    /// An id, a unique prefix of one, `latest` or `latest:KIND`.
    pub backup: String,
    /// The directory the recorded absolute paths are written under.
    pub root: PathBuf,
    /// Only these recorded paths and what is below them (all when empty).
    #[serde(default)]
    pub only: Vec<PathBuf>,
    /// Keep a differing existing file as `<file>.ark-before-restore`.
    #[serde(default = "yes")]
    pub keep_before: bool,
}

impl Request {
    /// What the request gets wrong by itself (before the store is opened).
    pub fn check(&self) -> OpResult<()> {
        if !self.root.is_absolute() {
            return Err(OpError::invalid(format!(
                "--root {} is not an absolute path",
                self.root.display()
            )));
        }
        Ok(())
    }

    fn options(&self) -> ConfigOptions {
        ConfigOptions {
            root: self.root.clone(),
            only: self.only.clone(),
            keep_before: self.keep_before,
        }
    }
}

/// What a restore would write (a dry run: nothing written, nothing recorded).
#[derive(Debug, Clone, Serialize)]
pub struct Planned {
    pub backup_id: String,
    pub root: String,
    /// Always true: a plan.
    pub dry_run: bool,
    pub plan: Vec<PlannedFile>,
    /// Recorded paths left out by `only`.
    #[serde(skip)]
    pub left_out: usize,
}

/// What `restore config` did.
#[derive(Debug, Clone, Serialize)]
pub struct Restored {
    pub restore_id: String,
    pub backup_id: String,
    pub root: String,
    pub result: RestoreResult,
    pub restored: usize,
    pub skipped: usize,
    pub failed: usize,
    pub items: Vec<RestoredItem>,
}

impl Restored {
    /// The error to end with when entries failed (the others were restored).
    pub fn failures(&self) -> Option<OpError> {
        if self.failed == 0 {
            return None;
        }
        let names: Vec<&str> = self
            .items
            .iter()
            .filter(|i| i.outcome == Outcome::Failed.as_str())
            .take(5)
            .map(|i| i.name.trim_start_matches("file:"))
            .collect();
        Some(OpError::new(
            ErrorKind::Unavailable,
            format!(
                "{} config file(s) could not be restored: {}{} (the others were restored)",
                self.failed,
                names.join(", "),
                if self.failed > names.len() {
                    ", ..."
                } else {
                    ""
                }
            ),
        ))
    }
}

fn count(items: &[RestoredItem], o: Outcome) -> usize {
    items.iter().filter(|i| i.outcome == o.as_str()).count()
}

/// The plan of a restore: what each entry would become.
pub async fn plan(ctx: &Context, req: &Request, r: &dyn Reporter) -> OpResult<Planned> {
    req.check()?;
    let backup = chosen(ctx, r, &req.backup).await?;
    let plan = config::plan_config(&backup, &req.options())?;
    let left_out = config::left_out(&backup, &plan);
    Ok(Planned {
        backup_id: backup.backup_id,
        root: req.root.display().to_string(),
        dry_run: true,
        plan,
        left_out,
    })
}

pub async fn run(ctx: &Context, req: &Request, r: &dyn Reporter) -> OpResult<Restored> {
    req.check()?;
    let backup = chosen(ctx, r, &req.backup).await?;
    let root = req.root.display().to_string();
    let recorder = Recorder::new(
        &backup.backup_id,
        RestoreWhat::Config,
        format!("root:{root}"),
    )
    .with_trigger(ctx.trigger);
    let store = &ctx.store;
    let cancel = &ctx.cancel;
    let result = config::restore_config(store, &backup, &req.options(), cancel).await;
    let outcome = match result {
        // Stopped between two entries: each entry is whole.
        Ok(items) if cancel.is_cancelled() => {
            let written = count(&items, Outcome::Restored);
            let mut message = format!(
                "{}: {written} config entr{} written (each whole: a file is written completely or not at all), \
                 the others were not changed; run the restore again to finish it",
                cancel.interrupted().unwrap_or_default(),
                if written == 1 { "y was" } else { "ies were" }
            );
            if let Some(unrecorded) = recorder.failed(store, "config", &message, items, None).await {
                message.push_str(&format!(" ({unrecorded})"));
            }
            Err(OpError::interrupted(message))
        }
        Ok(items) => match recorder.performed(store, items.clone(), None).await {
            Ok(ev) => Ok((items, RestoreResult::of_event(&ev.result))),
            Err(e) => Err(OpError::new(
                ErrorKind::Unavailable,
                format!(
                    "the config files were restored, but the RestorePerformed event could not be recorded: {e}"
                ),
            )),
        },
        // Bad input (an `only` naming nothing recorded): nothing began.
        Err(RestoreError::Invalid(m)) => Err(OpError::invalid(m)),
        Err(e) => {
            let stage = match &e {
                RestoreError::Unsafe(_) | RestoreError::NotFound(_) => "check",
                _ => "config",
            };
            let mut message = e.to_string();
            if matches!(e, RestoreError::Unsafe(_)) {
                message.push_str("; nothing was written");
            }
            if let Some(unrecorded) = recorder.failed(store, stage, &message, vec![], None).await {
                message.push_str(&format!(" ({unrecorded})"));
            }
            let e: OpError = e.into();
            Err(OpError { message, ..e })
        }
    };
    catalog::follow(ctx, r).await;
    let (items, result) = outcome?;
    Ok(Restored {
        restore_id: recorder.restore_id.clone(),
        backup_id: backup.backup_id.clone(),
        root,
        result,
        restored: count(&items, Outcome::Restored),
        skipped: count(&items, Outcome::Skipped),
        failed: count(&items, Outcome::Failed),
        items,
    })
}
