//! `repair journal`: after journal damage, record again what the store still
//! proves (backups completed, from their intact manifests; backups that never
//! ended, as failed) and acknowledge the damage, by appending records. A dry
//! run (the plan) without `--yes`.
use super::catalog::fmt_time;
use super::progress::Printer;
use super::{print_json, who, Cli, CliResult};
use crate::ops::repair::{self, Outcome, Request};
use crate::store::journal_repair::Assessment;

#[derive(Debug, clap::Subcommand)]
pub enum RepairCommand {
    /// Show what the journal's damage affects and what a repair would record;
    /// with --yes, append those records. Never rewrites or deletes a record.
    Journal(JournalArgs),
}

#[derive(Debug, clap::Args)]
pub struct JournalArgs {
    /// Append the records (without it: only show the plan).
    #[arg(long)]
    pub yes: bool,
}

pub async fn run(cli: &Cli, c: &RepairCommand) -> CliResult {
    match c {
        RepairCommand::Journal(a) => journal(cli, a).await,
    }
}

fn print_plan(a: &Assessment) {
    for p in &a.problems {
        println!("problem: {}", p.message);
    }
    for p in &a.repaired {
        println!(
            "already repaired (journal record {}): {}",
            p.repaired_by.unwrap_or_default(),
            p.message
        );
    }
    for c in &a.completions {
        println!(
            "record: backup {} ({}, finished {}) completed, from its intact manifest {}",
            c.backup_id,
            c.kind,
            fmt_time(Some(c.finished_ms)),
            &c.manifest[..16]
        );
    }
    for u in &a.unfinished {
        if u.running {
            println!(
                "leave: backup {} ({}) is running now (its lock is live)",
                u.backup_id, u.kind
            );
        } else {
            println!(
                "record: backup {} ({}, started {}) failed: it never ended and wrote no manifest",
                u.backup_id,
                u.kind,
                fmt_time(Some(u.started_ms))
            );
        }
    }
    if !a.problems.is_empty() {
        println!(
            "record: the {} problem(s) above, acknowledged (they are then reported as repaired)",
            a.problems.len()
        );
    }
    for (b, m) in &a.manifests_missing {
        println!(
            "lost: backup {b}: its manifest {} is missing, it cannot be restored",
            &m[..16]
        );
    }
    for l in &a.lost {
        println!("lost: {l}");
    }
}

async fn journal(cli: &Cli, a: &JournalArgs) -> CliResult {
    let ctx = cli.context(Default::default()).await?;
    let req = Request {
        apply: a.yes,
        repaired_by: who(),
    };
    match repair::run(&ctx, &req, &Printer).await? {
        Outcome::Plan { plan } => {
            if cli.json {
                print_json(&serde_json::json!({ "dry_run": true, "plan": plan }));
            } else if !plan.needs_repair() {
                print_plan(&plan);
                println!("the journal needs no repair");
            } else {
                print_plan(&plan);
                println!("nothing was changed (a dry run): run `n8n-ark repair journal --yes` to append these records");
            }
        }
        Outcome::Repaired { repair: report } => {
            if cli.json {
                print_json(&serde_json::json!({ "dry_run": false, "repair": report }));
            } else if report.appended.is_empty() {
                println!("the journal needs no repair; nothing was appended");
            } else {
                for r in &report.recovered {
                    println!("recorded: {r}");
                }
                for p in &report.acknowledged {
                    println!("acknowledged: {}", p.message);
                }
                for l in &report.lost {
                    println!("lost: {l}");
                }
                println!(
                    "journal repaired ({}): {} record(s) appended ({}); nothing was rewritten or deleted",
                    report.repair_id.as_deref().unwrap_or(""),
                    report.appended.len(),
                    report
                        .appended
                        .iter()
                        .map(|s| s.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
    }
    Ok(())
}
