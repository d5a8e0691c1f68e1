//! `n8n-ark restore config BACKUP [--root DIR] [--only PATH…] [--no-keep] [--dry-run]`:
//! the backup's config files, directories and symlinks written under a root
//! (`/` by default), with their modes, owners (as root) and mtimes; symlinks
//! as recorded, whatever they point at. The whole manifest is checked first:
//! a path no backup records (`..`, relative, twice) is refused and nothing is
//! written; an entry that would be written through a link is refused alone.
use super::{open_store_and_catalog, restore_err};
use crate::cli::catalog::TextTable;
use crate::cli::{print_json, Cli, CliError, CliResult};
use crate::restore::config::{self, ConfigOptions, PlannedFile};
use crate::restore::{choose_backup, Outcome, Recorder, RestoreError, RestoreWhat};
use std::path::PathBuf;
use store_format::event::RestoredItem;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The backup: an id, a unique prefix of one, `latest` or `latest:KIND`.
    pub backup: String,
    /// The directory the recorded absolute paths are written under
    /// (`/etc/nginx/nginx.conf` goes to DIR/etc/nginx/nginx.conf).
    #[arg(long, default_value = "/", value_name = "DIR")]
    pub root: PathBuf,
    /// Only this recorded path and what is below it (repeatable).
    #[arg(long, value_name = "PATH")]
    pub only: Vec<PathBuf>,
    /// Replace differing files without keeping them as `<file>.ark-before-restore`.
    #[arg(long)]
    pub no_keep: bool,
    /// Print what would be written, and write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(serde::Serialize)]
struct Report<'a> {
    restore_id: &'a str,
    backup_id: &'a str,
    root: String,
    result: &'a str,
    restored: usize,
    skipped: usize,
    failed: usize,
    items: &'a [RestoredItem],
}

#[derive(serde::Serialize)]
struct DryRun<'a> {
    backup_id: &'a str,
    root: String,
    dry_run: bool,
    plan: &'a [PlannedFile],
}

fn count(items: &[RestoredItem], o: Outcome) -> usize {
    items.iter().filter(|i| i.outcome == o.as_str()).count()
}

pub async fn run(cli: &Cli, a: &Args, cancel: &crate::cancel::Cancel) -> CliResult {
    if !a.root.is_absolute() {
        return Err(CliError::Usage(format!(
            "--root {} is not an absolute path",
            a.root.display()
        )));
    }
    let (store, catalog) = open_store_and_catalog(cli).await?;
    let backup = choose_backup(&catalog, &store, &a.backup)
        .await
        .map_err(restore_err)?;
    let opts = ConfigOptions {
        root: a.root.clone(),
        only: a.only.clone(),
        keep_before: !a.no_keep,
    };
    let root = a.root.display().to_string();

    if a.dry_run {
        catalog.close().await;
        let plan = config::plan_config(&backup, &opts).map_err(restore_err)?;
        if cli.json {
            print_json(&DryRun {
                backup_id: &backup.backup_id,
                root,
                dry_run: true,
                plan: &plan,
            });
            return Ok(());
        }
        println!(
            "restoring the config files of backup {} under {root} would (nothing is written now):",
            backup.backup_id
        );
        print_plan(&plan);
        let left = config::left_out(&backup, &plan);
        if left > 0 {
            println!("  ({left} other recorded path(s) left out by --only)");
        }
        return Ok(());
    }

    let recorder = Recorder::new(
        &backup.backup_id,
        RestoreWhat::Config,
        format!("root:{root}"),
    );
    let result = config::restore_config(&store, &backup, &opts, cancel).await;
    let outcome = match result {
        // Stopped between two entries by a signal: each entry is whole.
        Ok(items) if cancel.is_cancelled() => {
            let written = count(&items, Outcome::Restored);
            let mut message = format!(
                "{}: {written} config entr{} written (each whole: a file is written completely or not at all), \
                 the others were not changed; run the restore again to finish it",
                cancel.interrupted().unwrap_or_default(),
                if written == 1 { "y was" } else { "ies were" }
            );
            if let Some(unrecorded) = recorder.failed(&store, "config", &message, items, None).await {
                message.push_str(&format!(" ({unrecorded})"));
            }
            Err(super::interrupted_or(cancel, CliError::Failed(message)))
        }
        Ok(items) => match recorder.performed(&store, items.clone(), None).await {
            Ok(ev) => Ok((items, ev.result)),
            Err(e) => Err(CliError::Failed(format!(
                "the config files were restored, but the RestorePerformed event could not be recorded: {e}"
            ))),
        },
        // Bad input (an --only naming nothing recorded): nothing began.
        Err(RestoreError::Invalid(m)) => Err(CliError::Usage(m)),
        Err(e) => {
            let stage = match &e {
                RestoreError::Unsafe(_) | RestoreError::NotFound(_) => "check",
                _ => "config",
            };
            let mut message = e.to_string();
            if matches!(e, RestoreError::Unsafe(_)) {
                message.push_str("; nothing was written");
            }
            if let Some(unrecorded) = recorder.failed(&store, stage, &message, vec![], None).await {
                message.push_str(&format!(" ({unrecorded})"));
            }
            Err(CliError::Failed(message))
        }
    };
    if let Err(e) = catalog.catch_up(&store).await {
        eprintln!("warning: the catalog was not updated ({e}); it catches up on the next command");
    }
    catalog.close().await;
    let (items, result) = outcome?;
    let (restored, skipped, failed) = (
        count(&items, Outcome::Restored),
        count(&items, Outcome::Skipped),
        count(&items, Outcome::Failed),
    );
    if cli.json {
        print_json(&Report {
            restore_id: &recorder.restore_id,
            backup_id: &backup.backup_id,
            root,
            result: &result,
            restored,
            skipped,
            failed,
            items: &items,
        });
    } else {
        println!(
            "restored the config files of backup {} under {root}: {restored} restored, {skipped} skipped, \
             {failed} failed (restore {})",
            backup.backup_id, recorder.restore_id
        );
        let mut t = TextTable::new(&["PATH", "OUTCOME", "DETAIL"]);
        for i in &items {
            t.row(vec![
                i.name.trim_start_matches("file:").to_string(),
                i.outcome.clone(),
                i.detail.clone(),
            ]);
        }
        t.print(2);
    }
    if failed > 0 {
        let names: Vec<&str> = items
            .iter()
            .filter(|i| i.outcome == Outcome::Failed.as_str())
            .take(5)
            .map(|i| i.name.trim_start_matches("file:"))
            .collect();
        return Err(CliError::Failed(format!(
            "{failed} config file(s) could not be restored: {}{} (the others were restored)",
            names.join(", "),
            if failed > names.len() { ", ..." } else { "" }
        )));
    }
    Ok(())
}

fn print_plan(plan: &[PlannedFile]) {
    let mut t = TextTable::new(&["ACTION", "PATH", "TO", "MODE", "DETAIL"]);
    for p in plan {
        let detail = match (&p.reason, &p.link_target, p.file_type.as_str()) {
            (Some(why), _, _) => why.clone(),
            (None, Some(l), _) => format!("-> {l}"),
            (None, None, "file") => crate::cli::human_bytes(p.size),
            _ => String::new(),
        };
        t.row(vec![
            p.action.clone(),
            p.path.clone(),
            store_format::contents::readable_path(std::os::unix::ffi::OsStrExt::as_bytes(
                p.target.as_os_str(),
            )),
            if p.file_type == "missing" {
                String::new()
            } else {
                format!("{:o}", p.mode)
            },
            detail,
        ]);
    }
    t.print(2);
}
