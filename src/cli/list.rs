//! `list`: the backups in the store, oldest first, failed ones included.
use super::catalog::{fmt_count, fmt_duration, fmt_time, read_context, TextTable};
use super::progress::Printer;
use super::{human_bytes, print_json, Cli, CliError, CliResult};
use crate::catalog::{BackupRecord, BackupStatus};
use crate::ops::list::{self, Request};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only backups of this kind.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(crate::backup::ALL_KINDS))]
    pub kind: Option<String>,
    /// Only backups in this state.
    #[arg(long, value_parser = ["running", "completed", "failed", "forgotten"])]
    pub status: Option<String>,
    /// Include forgotten backups (removed by retention or by hand).
    #[arg(long)]
    pub all: bool,
}

/// What the NOTE column says about a backup.
pub fn note_of(b: &BackupRecord) -> String {
    match b.status {
        BackupStatus::Failed => format!(
            "{}: {}",
            b.failed_stage.as_deref().unwrap_or("?"),
            b.failed_message.as_deref().unwrap_or("")
        ),
        BackupStatus::Running => "not finished (running, or its process stopped)".into(),
        BackupStatus::Forgotten => format!(
            "forgotten {}{}",
            fmt_time(b.forgotten_ms),
            b.forgotten_reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        ),
        BackupStatus::Completed => {
            let mut parts: Vec<String> = safety_of(b).into_iter().collect();
            parts.extend(b.note.clone());
            parts.join("; ")
        }
    }
}

/// What marks a safety backup: `safety backup before restore R` (see
/// `latest:safety`); `None` for any other.
pub fn safety_of(b: &BackupRecord) -> Option<String> {
    b.safety.then(|| match &b.safety_restore {
        Some(r) => format!("safety backup before restore {r}"),
        None => "safety backup taken by a restore".to_string(),
    })
}

/// What the VERIFIED column says: the newest verification's level and
/// result (`data passed`, `restore FAILED`, `exists error`), or `-`.
pub fn verified_of(b: &BackupRecord) -> String {
    match &b.last_verification {
        None => "-".into(),
        Some(v) => format!(
            "{} {}",
            v.level,
            match v.result.as_str() {
                "passed" => "passed",
                "failed" => "FAILED",
                _ => "error",
            }
        ),
    }
}

pub async fn run(cli: &Cli, a: &Args) -> CliResult {
    let status = a
        .status
        .as_deref()
        .map(|s| s.parse::<BackupStatus>().map_err(CliError::Usage))
        .transpose()?;
    let req = Request {
        kind: a.kind.clone(),
        status,
        all: a.all,
    };
    let backups = list::run(&read_context(cli)?, &req, &Printer).await?;
    if cli.json {
        print_json(&backups);
        return Ok(());
    }
    if backups.is_empty() {
        println!(
            "no backups{}",
            match &a.kind {
                Some(k) => format!(" of kind {k}"),
                None => String::new(),
            }
        );
        return Ok(());
    }
    let mut t = TextTable::new(&[
        "BACKUP ID",
        "KIND",
        "STATUS",
        "STARTED (UTC)",
        "DURATION",
        "SIZE",
        "ADDED",
        "WORKFLOWS",
        "VERIFIED",
        "PROVEN RESTORABLE",
        "NOTE",
    ])
    .right_align(&[4, 5, 6, 7]);
    let size = |v: Option<u64>| v.map(human_bytes).unwrap_or_else(|| "-".into());
    for b in &backups {
        let completed = b.status == BackupStatus::Completed;
        t.row(vec![
            b.backup_id.clone(),
            b.kind.clone(),
            b.status.to_string(),
            fmt_time(b.started_ms),
            fmt_duration(b.duration_ms),
            if completed {
                size(b.logical_bytes)
            } else {
                "-".into()
            },
            if completed {
                size(b.new_bytes)
            } else {
                "-".into()
            },
            match (completed, b.workflow_count) {
                (true, Some(n)) => fmt_count(n),
                _ => "-".into(),
            },
            verified_of(b),
            match (completed, b.last_proven_restorable_ms) {
                (_, Some(ms)) => fmt_time(Some(ms)),
                (true, None) => "never".into(),
                (false, None) => "-".into(),
            },
            note_of(b),
        ]);
    }
    t.print(0);
    let count = |s: BackupStatus| backups.iter().filter(|b| b.status == s).count();
    let mut parts = vec![format!("{} completed", count(BackupStatus::Completed))];
    for s in [
        BackupStatus::Failed,
        BackupStatus::Running,
        BackupStatus::Forgotten,
    ] {
        if count(s) > 0 {
            parts.push(format!("{} {s}", count(s)));
        }
    }
    println!(
        "{} backup{}: {}",
        backups.len(),
        if backups.len() == 1 { "" } else { "s" },
        parts.join(", ")
    );
    Ok(())
}
