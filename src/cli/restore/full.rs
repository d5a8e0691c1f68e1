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
use super::{open_store_and_catalog, restore_err};
use crate::cancel::Cancel;
use crate::cli::catalog::fmt_time;
use crate::cli::postgres_args::{ServerArgs, Servers, ToolArgs};
use crate::cli::{print_json, Cli, CliError, CliResult};
use crate::restore::database::RestoreTool;
use crate::restore::full::{self, shell_quote, Control, FullOptions, FullReport, Plan};
use crate::restore::{choose_backup, Recorder, RestoreWhat};
use crate::settings::Settings;
use crate::source::postgres::{DumpRunner, PgTarget};
use std::path::PathBuf;
use std::time::Duration;

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

/// The options, from flags, `ARK_*` variables and the config file.
fn options(a: &Args, s: &Settings) -> Result<FullOptions, String> {
    if !a.root.is_absolute() {
        return Err(format!(
            "--root {} is not an absolute path",
            a.root.display()
        ));
    }
    match std::fs::metadata(&a.root) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(format!("--root {} is not a directory", a.root.display())),
        // A plan writes nothing: it needs no root yet.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && (a.dry_run || !a.yes) => {}
        Err(e) => return Err(format!("--root {}: {e}", a.root.display())),
    }
    let Servers { n8n_db, pg_server } = a.servers.resolve(s)?;
    let dump = a.tools.dump_runner(s);
    let tool = a.tools.restore_tool(a.pg_restore.as_ref(), s);
    let r = &s.restore;
    let stop = a.stop_command.clone().or(r.stop_command.clone());
    let start = a.start_command.clone().or(r.start_command.clone());
    let control = if a.no_stop {
        Control::NoStop
    } else {
        match (stop, start) {
            (Some(stop), Some(start)) => Control::Commands { stop, start },
            (Some(_), None) | (None, Some(_)) => {
                return Err(
                    "--stop-command and --start-command go together (or ARK_STOP_COMMAND and \
                     ARK_START_COMMAND, or stop_command and start_command in [restore])"
                        .into(),
                )
            }
            (None, None) => Control::Compose {
                project: a.compose_project.clone().or(r.compose_project.clone()),
                keep_running: a
                    .keep_running
                    .iter()
                    .chain(r.keep_running.iter())
                    .filter(|s| !s.is_empty())
                    .cloned()
                    .collect(),
            },
        }
    };
    if let Control::Compose {
        project: Some(p), ..
    } = &control
    {
        if full::normalise_project(p).as_deref() != Some(p.as_str()) {
            return Err(format!(
                "--compose-project {p:?} is not a compose project name (lower case letters, digits, _ and -)"
            ));
        }
    }
    let health_url = match a.health_url.clone().or(r.health_url.clone()) {
        Some(u) => Some(u),
        None => match a.n8n_url.as_ref().or(s.n8n.api_url.as_ref()) {
            Some(base) => Some(health_of(base)?),
            None => None,
        },
    };
    if let Some(u) = &health_url {
        let p =
            url::Url::parse(u).map_err(|e| format!("the health URL {u:?} is not valid: {e}"))?;
        if !matches!(p.scheme(), "http" | "https") {
            return Err(format!(
                "the health URL {u:?} is not an http:// or https:// URL"
            ));
        }
        if !p.username().is_empty() || p.password().is_some() {
            return Err(
                "the health URL holds a user name or password, which the plan and the journal would show: \
                 give n8n's /healthz/readiness without them"
                    .into(),
            );
        }
    }
    let health_timeout = a.health_timeout.or(r.health_timeout_secs);
    if health_timeout == Some(0) {
        return Err("--health-timeout must be at least 1 second".into());
    }
    Ok(FullOptions {
        root: a.root.clone(),
        n8n_db,
        pg_server,
        dump,
        tool,
        control,
        health_url,
        health_timeout: health_timeout
            .map(Duration::from_secs)
            .unwrap_or(full::DEFAULT_HEALTH_TIMEOUT),
        all_databases: a.all_databases,
        keep_before: a.keep_before_restore,
        force: a.force,
        no_owner: a.no_owner,
        with_roles: a.with_roles,
    })
}

/// n8n's health endpoint from its base URL: `<base>/healthz/readiness`
/// (`/healthz` answers as soon as the process listens, before n8n's
/// database and API are up; the readiness endpoint only then).
fn health_of(base: &str) -> Result<String, String> {
    let mut u = url::Url::parse(base.trim()).map_err(|e| {
        format!("{base:?} is not a valid n8n URL: {e} (expected e.g. http://127.0.0.1:5678)")
    })?;
    let mut path = u.path().trim_end_matches('/').to_string();
    for suffix in ["/api/v1", "/api"] {
        if let Some(p) = path.strip_suffix(suffix) {
            path = p.to_string();
            break;
        }
    }
    u.set_path(&format!("{path}/healthz/readiness"));
    u.set_query(None);
    u.set_fragment(None);
    let _ = u.set_username("");
    let _ = u.set_password(None);
    Ok(u.to_string())
}

/// `postgres://user@host:port/db` without the password (a socket directory
/// percent-encoded), for the go-back command.
fn url_of(t: &PgTarget) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let host = if t.host.contains(':') && !t.host.starts_with('/') {
        format!("[{}]", t.host)
    } else {
        enc(&t.host)
    };
    let mut u = format!(
        "postgres://{}@{host}:{}/{}",
        enc(&t.user),
        t.port,
        enc(&t.database)
    );
    if let Some(m) = &t.sslmode {
        u.push_str(&format!("?sslmode={}", enc(m)));
    }
    u
}

/// The command that restores the safety backup `safety` onto the same
/// target: the same store and target settings, `--root /` (the safety
/// backup recorded the files at their real paths under the root).
fn go_back_command(cli: &Cli, opts: &FullOptions, plan: &Plan, safety: &str) -> String {
    let mut v: Vec<String> = vec!["n8n-ark".into()];
    let flag = |v: &mut Vec<String>, f: &str, val: String| {
        v.push(f.to_string());
        v.push(val);
    };
    if let Ok(loc) = cli.store_location() {
        flag(&mut v, "--store", loc);
    }
    if let Some(c) = &cli.config {
        flag(&mut v, "--config", c.display().to_string());
    }
    if let Some(d) = &cli.data_dir {
        flag(&mut v, "--data-dir", d.display().to_string());
    }
    v.extend(["restore", "full", safety, "--root", "/", "--yes"].map(String::from));
    if let Some(t) = &opts.n8n_db {
        flag(&mut v, "--n8n-db", url_of(t));
    }
    if let Some(t) = &opts.pg_server {
        flag(&mut v, "--pg-server", url_of(t));
    }
    match &opts.tool {
        RestoreTool::Docker {
            container,
            host,
            port,
        } => {
            flag(&mut v, "--pg-container", container.clone());
            flag(&mut v, "--pg-container-host", host.clone());
            flag(&mut v, "--pg-container-port", port.to_string());
        }
        RestoreTool::Local { pg_restore } => {
            flag(&mut v, "--pg-restore", pg_restore.display().to_string());
            if let DumpRunner::Local { pg_dump } = &opts.dump {
                flag(&mut v, "--pg-dump", pg_dump.display().to_string());
            }
        }
    }
    match &opts.control {
        Control::NoStop => v.push("--no-stop".into()),
        Control::Commands { stop, start } => {
            flag(&mut v, "--stop-command", stop.clone());
            flag(&mut v, "--start-command", start.clone());
        }
        Control::Compose { keep_running, .. } => {
            if let Some(p) = &plan.stop.project {
                flag(&mut v, "--compose-project", p.clone());
            }
            if !keep_running.is_empty() {
                flag(&mut v, "--keep-running", keep_running.join(","));
            }
        }
    }
    if let Some(u) = &plan.health.url {
        flag(&mut v, "--health-url", u.clone());
        flag(
            &mut v,
            "--health-timeout",
            plan.health.timeout_secs.to_string(),
        );
    }
    if opts.all_databases {
        v.push("--all-databases".into());
    }
    if opts.no_owner {
        v.push("--no-owner".into());
    }
    v.iter()
        .map(|s| shell_quote(s))
        .collect::<Vec<_>>()
        .join(" ")
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

fn planned(plan: Plan) -> FullReport {
    FullReport {
        restore_id: None,
        backup_id: plan.backup_id.clone(),
        result: if plan.refusals.is_empty() {
            "planned"
        } else {
            "refused"
        }
        .into(),
        plan,
        items: vec![],
        safety_backup: None,
        databases: vec![],
        health: None,
        failed_stage: None,
        message: None,
        go_back: None,
        unrecorded: None,
        changed: vec![],
        duration_ms: 0,
    }
}

pub async fn run(cli: &Cli, a: &Args, cancel: &Cancel) -> CliResult {
    let opts = cli
        .settings()
        .and_then(|s| options(a, s))
        .map_err(CliError::Usage)?;
    let (store, catalog) = open_store_and_catalog(cli).await?;
    let backup = choose_backup(&catalog, &store, &a.backup)
        .await
        .map_err(restore_err);
    catalog.close().await;
    let backup = backup?;
    let recorder = Recorder::new(
        &backup.backup_id,
        RestoreWhat::Full,
        full::target_description(&opts),
    );
    let prepared = match full::plan(&store, &backup, &opts).await {
        Ok(p) => p,
        Err(e) => {
            // Asked for (--yes): the refusal is recorded; a plan is not.
            let message = format!("restore full refused, nothing was changed: {e}");
            if a.yes && !a.dry_run {
                if let Some(u) = recorder
                    .failed(&store, "check", &message, vec![], None)
                    .await
                {
                    return Err(CliError::Failed(format!("{message} ({u})")));
                }
            }
            return Err(match e {
                crate::restore::RestoreError::Invalid(m) => CliError::Usage(m),
                _ => CliError::Failed(message),
            });
        }
    };
    if let (Some(why), false) = (cancel.interrupted(), a.yes && !a.dry_run) {
        return Err(super::interrupted_or(
            cancel,
            CliError::Failed(format!(
                "{why} while the plan was made: nothing was changed"
            )),
        ));
    }
    if cli.json && (a.dry_run || !a.yes) {
        print_json(&planned(prepared.plan.clone()));
    } else if !cli.json {
        print_plan(&prepared.plan);
    }
    if a.dry_run {
        if !prepared.plan.refusals.is_empty() {
            return Err(CliError::Failed(format!(
                "dry run: the restore would be refused: {}",
                prepared.plan.refusals.join("; ")
            )));
        }
        if !cli.json {
            println!("dry run: nothing was changed (run again with --yes instead of --dry-run to restore)");
        }
        return Ok(());
    }
    if !a.yes {
        return Err(CliError::Usage(
            "restore full replaces databases and files and stops n8n: read the plan above, then run the \
             same command with --yes (or --dry-run to only print the plan)"
                .into(),
        ));
    }
    let go_back = |safety: &str| go_back_command(cli, &opts, &prepared.plan, safety);
    let progress = |line: &str| eprintln!("restore: {line}");
    let report = full::execute(
        &store, &backup, &prepared, &opts, &recorder, &go_back, &progress, cancel,
    )
    .await;
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
    if let Some(u) = &report.unrecorded {
        eprintln!("warning: {u}");
    }
    match &report.message {
        Some(m) if report.failed_stage.is_some() => {
            Err(super::interrupted_or(cancel, CliError::Failed(m.clone())))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_urls() {
        assert_eq!(
            health_of("http://127.0.0.1:5678").unwrap(),
            "http://127.0.0.1:5678/healthz/readiness"
        );
        assert_eq!(
            health_of("https://u:p@n8n.example.org/api/v1/").unwrap(),
            "https://n8n.example.org/healthz/readiness"
        );
        assert!(health_of("not a url").is_err());
    }

    #[test]
    fn go_back_urls_carry_no_password() {
        let t = PgTarget::parse(
            "postgres://n8n:secret@%2Fvar%2Frun%2Fpostgresql:5432/n8n db?sslmode=disable",
            None,
        )
        .unwrap();
        let u = url_of(&t);
        assert!(!u.contains("secret"), "{u}");
        let back = PgTarget::parse(&u, None).unwrap();
        assert_eq!(
            (
                back.host.as_str(),
                back.port,
                back.user.as_str(),
                back.database.as_str()
            ),
            ("/var/run/postgresql", 5432, "n8n", "n8n db")
        );
        assert_eq!(back.sslmode.as_deref(), Some("disable"));
        assert!(back.password.is_none());
    }
}
