//! `history WORKFLOW`: every version of one workflow across the backups.
use super::catalog::{fmt_time, read_context, TextTable};
use super::progress::Printer;
use super::{print_json, printable, Cli, CliResult};
use crate::ops::history::{self, Request};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The workflow: its id, its name, or a part of its name that only it has.
    pub workflow: String,
}

pub async fn run(cli: &Cli, a: &Args) -> CliResult {
    let req = Request {
        workflow: a.workflow.clone(),
    };
    let h = history::run(&read_context(cli)?, &req, &Printer).await?;
    if cli.json {
        print_json(&h);
        return Ok(());
    }
    println!(
        "workflow {} \"{}\": {} version{} in {} backup{}",
        printable(&h.workflow_id),
        printable(&h.name),
        h.versions.len(),
        if h.versions.len() == 1 { "" } else { "s" },
        h.backup_count,
        if h.backup_count == 1 { "" } else { "s" }
    );
    let mut t = TextTable::new(&[
        "VERSION",
        "FIRST SEEN (UTC)",
        "NAME",
        "ACTIVE",
        "NODES",
        "UPDATED AT",
        "VERSION ID",
        "BACKUPS",
    ])
    .right_align(&[4]);
    for v in &h.versions {
        let backups = match v.backups.len() {
            0 => "-".to_string(),
            1 => v.backups[0].clone(),
            n => format!("{n}: {} .. {}", v.backups[0], v.backups[n - 1]),
        };
        t.row(vec![
            v.object_id.chars().take(12).collect(),
            fmt_time(Some(v.first_seen_ms)),
            v.name.clone(),
            match (v.active, v.archived) {
                (_, true) => "archived".into(),
                (true, _) => "yes".into(),
                (false, _) => "no".into(),
            },
            v.node_count.to_string(),
            v.updated_at.clone().unwrap_or_else(|| "-".into()),
            v.version_id.clone().unwrap_or_else(|| "-".into()),
            backups,
        ]);
    }
    t.print(0);
    Ok(())
}
