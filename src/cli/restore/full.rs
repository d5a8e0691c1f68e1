//! `n8n-ark restore full BACKUP`: the whole system back from one backup
//! (see [`crate::restore::full`]): the plan first, then, with `--yes`, a
//! pinned safety backup of the current state, stop n8n, databases, config
//! files, start n8n, health and row counts.
//!
//! `--dry-run` prints the plan and changes nothing (nothing is recorded
//! either: a plan is not a restore); without `--yes` the plan is printed and
//! the command refuses. With `--yes`, every outcome is recorded: success
//! (`RestorePerformed`), a refusal by the checks (`RestoreFailed` at stage
//! `check`: an encryption key mismatch, no way to stop n8n) or a failure
//! midway (`RestoreFailed` with its stage, the safety backup and the command
//! that goes back).
use super::{op_err, Steps};
use crate::cancel::Cancel;
use crate::cli::catalog::fmt_time;
use crate::cli::postgres_args::{ServerArgs, Servers, ToolArgs};
use crate::cli::{print_json, Cli, CliError, CliResult};
use crate::ops::restore::full::{self, Request, Stop};
use crate::ops::restore::{Secret, Server};
use crate::restore::full::Plan;
use crate::settings::Settings;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The backup to restore: `latest`, `latest:KIND`, an id or a unique prefix.
    pub backup: String,
    /// Write config files under this directory instead of `/` (a recorded
    /// /opt/n8n/.env goes to ROOT/opt/n8n/.env).
    #[arg(long, default_value = "/")]
    pub root: PathBuf,
    /// Print the plan and stop: nothing is changed, nothing recorded.
    #[arg(long)]
    pub dry_run: bool,
    /// Do it (after reading the plan).
    #[arg(long)]
    pub yes: bool,
    /// Restore even when the n8n encryption keys do not match (n8n will not
    /// decrypt the credentials).
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub servers: ServerArgs,
    /// The local pg_restore (default: beside --pg-dump, else the newest
    /// /usr/lib/postgresql/*/bin/pg_restore, else pg_restore on the PATH).
    #[arg(long, env = "ARK_PG_RESTORE")]
    pub pg_restore: Option<PathBuf>,
    #[command(flatten)]
    pub tools: ToolArgs,
    /// Stop and start the containers of this docker compose project (label
    /// com.docker.compose.project). Default: the project of the backed-up
    /// compose file.
    #[arg(long, env = "ARK_COMPOSE_PROJECT")]
    pub compose_project: Option<String>,
    /// A compose service to leave running (besides db, database, postgres,
    /// postgresql). Repeatable, or comma-separated.
    #[arg(long = "keep-running", value_delimiter = ',')]
    pub keep_running: Vec<String>,
    /// Stop n8n with this shell command instead of through Docker (with
    /// --start-command).
    #[arg(long, env = "ARK_STOP_COMMAND")]
    pub stop_command: Option<String>,
    /// Start n8n again with this shell command.
    #[arg(long, env = "ARK_START_COMMAND")]
    pub start_command: Option<String>,
    /// Stop and start nothing: n8n is not running on the target.
    #[arg(long)]
    pub no_stop: bool,
    /// n8n's base URL; its /healthz/readiness is the health endpoint.
    #[arg(long, env = "ARK_N8N_URL")]
    pub n8n_url: Option<String>,
    /// The health endpoint to wait for after the start (answers 200).
    #[arg(long, env = "ARK_HEALTH_URL")]
    pub health_url: Option<String>,
    /// How long to wait for the health endpoint and the row counts (seconds,
    /// default 300).
    #[arg(long, env = "ARK_HEALTH_TIMEOUT")]
    pub health_timeout: Option<u64>,
    /// Restore every database of a full_system backup (default: n8n's only;
    /// a postgres_full backup always restores all of them).
    #[arg(long)]
    pub all_databases: bool,
    /// Keep each replaced file that differs as FILE.ark-before-restore (the
    /// safety backup holds them anyway).
    #[arg(long)]
    pub keep_before_restore: bool,
    /// Objects belong to the connecting user and no grants are restored (for
    /// a server that lacks the dump's roles).
    #[arg(long)]
    pub no_owner: bool,
    /// First create the roles the target lacks from the backup's globals
    /// (postgres_full and full_system backups); existing roles are untouched.
    #[arg(long)]
    pub with_roles: bool,
}

/// The request, from flags, `ARK_*` variables and the config file (the
/// engine checks it).
fn request(cli: &Cli, a: &Args, s: &Settings) -> Result<Request, String> {
    let Servers { n8n_db, pg_server } = a.servers.resolve(s)?;
    let server = |url: Option<&String>, t: Option<crate::source::postgres::PgTarget>| match (url, t)
    {
        (Some(url), Some(t)) => Some(Server::new(url.clone(), t.password.map(|p| p.to_string()))),
        _ => None,
    };
    let n8n_db = server(
        a.servers.n8n_db.as_ref().or(s.n8n.database.as_ref()),
        n8n_db,
    );
    let pg_server = server(
        a.servers.pg_server.as_ref().or(s.postgres.server.as_ref()),
        pg_server,
    );
    let r = &s.restore;
    // Where the store, the config and the data directory are, for the
    // command that goes back.
    let mut go_back_args = vec![];
    if let Ok(loc) = cli.store_location() {
        go_back_args.extend(["--store".to_string(), loc]);
    }
    if let Some(c) = &cli.config {
        go_back_args.extend(["--config".to_string(), c.display().to_string()]);
    }
    if let Some(d) = &cli.data_dir {
        go_back_args.extend(["--data-dir".to_string(), d.display().to_string()]);
    }
    Ok(Request {
        backup: a.backup.clone(),
        root: a.root.clone(),
        confirmed: a.yes && !a.dry_run,
        force: a.force,
        n8n_db,
        pg_server,
        tool: a.tools.restore_tool(a.pg_restore.as_ref(), s),
        dump: a.tools.dump_runner(s),
        stop: Stop {
            no_stop: a.no_stop,
            stop_command: a.stop_command.clone().or(r.stop_command.clone()),
            start_command: a.start_command.clone().or(r.start_command.clone()),
            compose_project: a.compose_project.clone().or(r.compose_project.clone()),
            keep_running: a
                .keep_running
                .iter()
                .chain(r.keep_running.iter())
                .cloned()
                .collect(),
        },
        n8n_url: a.n8n_url.clone().or(s.n8n.api_url.clone()),
        health_url: a.health_url.clone().or(r.health_url.clone()),
        health_timeout_secs: a.health_timeout.or(r.health_timeout_secs),
        all_databases: a.all_databases,
        keep_before: a.keep_before_restore,
        no_owner: a.no_owner,
        with_roles: a.with_roles,
        // The key n8n gets from elsewhere: this command's environment.
        encryption_key: std::env::var(crate::source::config_files::ENCRYPTION_KEY_VAR)
            .ok()
            .map(Secret::new),
        go_back_args,
    })
}

fn print_plan(p: &Plan) {
    println!(
        "Restore plan: backup {} ({}, finished {} UTC) onto root {}",
        p.backup_id,
        p.backup_kind,
        fmt_time(Some(p.backup_finished_ms)),
        p.root
    );
    println!(
        "\n1. Safety backup, before anything is stopped:\n   {}",
        p.safety_backup.summary
    );
    println!("\n2. Stop n8n:\n   {}", p.stop.summary);
    for c in &p.stop.containers {
        println!(
            "     {} ({}{}): {}",
            c.name,
            c.service
                .as_deref()
                .map(|s| format!("service {s}, "))
                .unwrap_or_default(),
            c.state,
            c.action
        );
    }
    if let Some(from) = &p.stop.project_from {
        println!("     (compose project from {from})");
    }
    println!("\n3. Databases (pg_restore over the target; row counts checked against the backup):");
    if p.databases.is_empty() {
        println!("   none");
    }
    for d in &p.databases {
        println!(
            "   {}{} -> {}: {} ({} tables, {} rows)",
            d.backup_database,
            if d.is_n8n { " (n8n)" } else { "" },
            d.target,
            d.action,
            d.tables,
            d.rows
        );
    }
    println!("\n4. Config files (written under {}):", p.root);
    if p.config_files.is_empty() {
        println!("   none");
    }
    for f in &p.config_files {
        println!(
            "   {} -> {}: {}",
            super::super::printable(&f.path),
            super::super::printable(&f.target),
            f.action
        );
    }
    println!("\n5. Start n8n again, then check:");
    match &p.health.url {
        Some(u) => println!(
            "   wait up to {} s for {u} to answer 200 and for the n8n database's row counts to equal the backup's",
            p.health.timeout_secs
        ),
        None => println!("   the n8n database's row counts against the backup's (no health endpoint)"),
    }
    let k = &p.encryption_key;
    println!("\nEncryption key ({}): {}", k.verdict, k.summary);
    if k.backup.is_some() || k.target_now.is_some() {
        println!(
            "   fingerprints: backup {} ({}), target now {} ({}), n8n after the restore {} ({})",
            k.backup.as_deref().unwrap_or("-"),
            k.backup_source.as_deref().unwrap_or("-"),
            k.target_now.as_deref().unwrap_or("-"),
            k.target_now_source.as_deref().unwrap_or("-"),
            k.n8n_after.as_deref().unwrap_or("-"),
            k.n8n_after_source.as_deref().unwrap_or("-"),
        );
    }
    if !p.notes.is_empty() {
        println!("\nNotes:");
        for n in &p.notes {
            println!("   - {n}");
        }
    }
    if !p.refusals.is_empty() {
        println!("\nREFUSED:");
        for r in &p.refusals {
            println!("   - {r}");
        }
    }
    println!();
}

pub async fn run(cli: &Cli, a: &Args, cancel: &Cancel) -> CliResult {
    let req = cli
        .settings()
        .and_then(|s| request(cli, a, s))
        .map_err(CliError::Usage)?;
    // What the request gets wrong is said before the store opens.
    req.options(&crate::ops::Environment::empty())?;
    let ctx = cli.context(cancel.clone()).await?;
    let steps = Steps {
        prefix: "restore: ",
        quiet: false,
    };
    let planned = full::plan(&ctx, &req, &steps)
        .await
        .map_err(|e| op_err(cancel, e))?;
    if cli.json && !req.confirmed {
        print_json(&planned.report);
    } else if !cli.json {
        print_plan(planned.plan());
    }
    if a.dry_run {
        if let Some(e) = planned.refusal() {
            return Err(e.into());
        }
        if !cli.json {
            println!("dry run: nothing was changed (run again with --yes instead of --dry-run to restore)");
        }
        return Ok(());
    }
    let report = full::execute(&ctx, planned, &steps)
        .await
        .map_err(|e| op_err(cancel, e))?;
    if cli.json {
        print_json(&report);
    } else if report.failed_stage.is_none() {
        let count = |o: &str| report.items.iter().filter(|i| i.outcome == o).count();
        println!(
            "restore {} of backup {} completed in {:.1} s: {} restored, {} skipped, {} failed",
            report.restore_id.as_deref().unwrap_or("-"),
            report.backup_id,
            report.duration_ms as f64 / 1000.0,
            count("restored"),
            count("skipped"),
            count("failed"),
        );
        for i in &report.items {
            println!("  {} {}: {}", i.outcome, i.name, i.detail);
        }
        if let Some(s) = &report.safety_backup {
            println!("safety backup {s} (pinned) holds the state from before the restore");
        }
    }
    match full::failure(&ctx, &report) {
        Some(e) => Err(op_err(cancel, e)),
        None => Ok(()),
    }
}
