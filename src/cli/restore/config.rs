//! `n8n-ark restore config BACKUP [--root DIR] [--only PATH…] [--no-keep] [--dry-run]`:
//! the backup's config files, directories and symlinks written under a root
//! (`/` by default), with their modes, owners (as root) and mtimes; symlinks
//! as recorded, whatever they point at. The whole manifest is checked first:
//! a path no backup records (`..`, relative, twice) is refused and nothing is
//! written; an entry that would be written through a link is refused alone.
use super::{op_err, Steps};
use crate::cli::catalog::TextTable;
use crate::cli::{print_json, Cli, CliResult};
use crate::ops::restore::config::{self, Request};
use crate::restore::config::PlannedFile;
use std::path::PathBuf;

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

pub async fn run(cli: &Cli, a: &Args, cancel: &crate::cancel::Cancel) -> CliResult {
    let req = Request {
        backup: a.backup.clone(),
        root: a.root.clone(),
        only: a.only.clone(),
        keep_before: !a.no_keep,
    };
    req.check()?;
    let ctx = cli.context(cancel.clone()).await?;
    let steps = Steps {
        prefix: "",
        quiet: cli.json,
    };
    if a.dry_run {
        let planned = config::plan(&ctx, &req, &steps)
            .await
            .map_err(|e| op_err(cancel, e))?;
        if cli.json {
            print_json(&planned);
            return Ok(());
        }
        println!(
            "restoring the config files of backup {} under {} would (nothing is written now):",
            planned.backup_id, planned.root
        );
        print_plan(&planned.plan);
        if planned.left_out > 0 {
            println!(
                "  ({} other recorded path(s) left out by --only)",
                planned.left_out
            );
        }
        return Ok(());
    }
    let done = config::run(&ctx, &req, &steps)
        .await
        .map_err(|e| op_err(cancel, e))?;
    if cli.json {
        print_json(&done);
    } else {
        println!(
            "restored the config files of backup {} under {}: {} restored, {} skipped, \
             {} failed (restore {})",
            done.backup_id, done.root, done.restored, done.skipped, done.failed, done.restore_id
        );
        let mut t = TextTable::new(&["PATH", "OUTCOME", "DETAIL"]);
        for i in &done.items {
            t.row(vec![
                i.name.trim_start_matches("file:").to_string(),
                i.outcome.clone(),
                i.detail.clone(),
            ]);
        }
        t.print(2);
    }
    match done.failures() {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
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
