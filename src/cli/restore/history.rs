//! `restore history`: the restores made from this store (the catalog's
//! `restore_history`, projected from `RestorePerformed`/`RestoreFailed`).
use crate::cli::catalog::{catalog_err, fmt_time, open_catalog, TextTable};
use crate::cli::{print_json, Cli, CliResult};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only the restores from this backup (`latest`, an id or a prefix).
    #[arg(long)]
    pub backup: Option<String>,
}

pub async fn run(cli: &Cli, a: &Args) -> CliResult {
    let catalog = open_catalog(cli).await?;
    let backup = match &a.backup {
        Some(r) => Some(catalog.resolve(r).await.map_err(catalog_err)?),
        None => None,
    };
    let rows = catalog
        .list_restores(backup.as_deref())
        .await
        .map_err(catalog_err)?;
    catalog.close().await;
    if cli.json {
        print_json(&rows);
        return Ok(());
    }
    if rows.is_empty() {
        println!("no restores recorded");
        return Ok(());
    }
    let mut t = TextTable::new(&[
        "RESTORE",
        "FINISHED (UTC)",
        "WHAT",
        "FROM BACKUP",
        "TARGET",
        "RESULT",
        "RESTORED",
        "SKIPPED",
        "FAILED",
        "SAFETY BACKUP",
        "MESSAGE",
    ])
    .right_align(&[6, 7, 8]);
    for r in &rows {
        let message = match (&r.failed_stage, &r.message) {
            (Some(stage), Some(m)) => format!("at {stage}: {m}"),
            _ => String::new(),
        };
        t.row(vec![
            r.restore_id.clone(),
            fmt_time(Some(r.finished_ms)),
            r.what.clone(),
            r.backup_id.clone(),
            r.target.clone(),
            r.result.clone(),
            r.restored.to_string(),
            r.skipped.to_string(),
            r.failed.to_string(),
            r.safety_backup.clone().unwrap_or_else(|| "-".into()),
            message,
        ]);
    }
    t.print(0);
    Ok(())
}
