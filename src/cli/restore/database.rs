//! `n8n-ark restore database BACKUP DB --target-url URL (--as NAME | --replace --yes)`:
//! one database of a backup restored with `pg_restore`, streamed from the
//! store, then its row counts compared with the backup's.
//!
//! The target's password comes from `ARK_TARGET_DB_PASSWORD` or the file named
//! by `ARK_TARGET_DB_PASSWORD_FILE`; when neither is set and the target is the
//! configured n8n database's server and user, from n8n's
//! (`ARK_N8N_DB_PASSWORD[_FILE]` or the config file's password file). Never
//! from the command line: a `--target-url` holding a password is refused.
use super::{open_store_and_catalog, restore_err};
use crate::backup::{BackupKind, Sources};
use crate::cancel::Cancel;
use crate::cli::catalog::TextTable;
use crate::cli::postgres_args::{no_password_on_the_command_line, ToolArgs};
use crate::cli::{human_bytes, print_json, Cli, CliError, CliResult};
use crate::restore::database::{
    self, DatabaseMode, DatabaseOptions, DatabaseRestored, GlobalsRestored, RestoreTool,
};
use crate::restore::{choose_backup, item, Outcome, Recorder, RestoreError, RestoreWhat};
use crate::settings::{secret, Settings};
use crate::source::postgres::{DumpRunner, PgTarget};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The backup: an id, a unique prefix of one, `latest` or `latest:KIND`.
    pub backup: String,
    /// The database of the backup to restore (as `n8n-ark show BACKUP` lists it).
    pub database: String,
    /// The PostgreSQL server to restore onto: postgres://user@host:port/db (the
    /// database part is only where to connect to create the new one; default:
    /// the configured n8n database, ARK_N8N_DB). Password: ARK_TARGET_DB_PASSWORD
    /// or the file named by ARK_TARGET_DB_PASSWORD_FILE, never on the command line.
    #[arg(long, env = "ARK_TARGET_DB", value_name = "URL")]
    pub target_url: Option<String>,
    /// Restore into a new database of this name (refused if it exists), beside
    /// the original.
    #[arg(long = "as", value_name = "NAME", conflicts_with = "replace")]
    pub as_name: Option<String>,
    /// Replace the database of the same name on the target (needs --yes). A
    /// pinned safety backup of it is taken first; the dump is restored and
    /// checked beside it, and only then swapped in.
    #[arg(long)]
    pub replace: bool,
    /// Confirms --replace.
    #[arg(long)]
    pub yes: bool,
    /// Objects belong to the connecting user and no grants are restored (for a
    /// server that lacks the dump's roles).
    #[arg(long)]
    pub no_owner: bool,
    /// First create the roles the target lacks from the backup's globals
    /// (postgres_full and full_system backups); existing roles are left untouched.
    #[arg(long)]
    pub with_roles: bool,
    /// The local pg_restore to run (no older than the server the dump came
    /// from; default: beside --pg-dump, else the newest installed).
    #[arg(long, env = "ARK_PG_RESTORE", value_name = "PATH")]
    pub pg_restore: Option<PathBuf>,
    #[command(flatten)]
    pub tools: ToolArgs,
}

/// The target server, its password from the environment or files.
fn resolve_target(a: &Args, s: &Settings) -> Result<PgTarget, String> {
    no_password_on_the_command_line("--target-url", "ARK_TARGET_DB", a.target_url.as_ref())?;
    let n8n_url = std::env::var("ARK_N8N_DB")
        .ok()
        .filter(|v| !v.is_empty())
        .or_else(|| s.n8n.database.clone());
    let url = a.target_url.clone().or_else(|| n8n_url.clone()).ok_or_else(|| {
        "no target server: pass --target-url postgres://user@host:port/postgres (or set ARK_TARGET_DB)"
            .to_string()
    })?;
    let pw = secret(
        "ARK_TARGET_DB_PASSWORD",
        "ARK_TARGET_DB_PASSWORD_FILE",
        None,
    )?;
    let mut t = PgTarget::parse(&url, pw).map_err(|e| format!("--target-url: {e}"))?;
    if t.password.is_none() {
        if let Some(n8n) = n8n_url.and_then(|u| PgTarget::parse(&u, None).ok()) {
            if n8n.host == t.host && n8n.port == t.port && n8n.user == t.user {
                t.password = match n8n.password {
                    Some(p) => Some(p),
                    None => secret(
                        "ARK_N8N_DB_PASSWORD",
                        "ARK_N8N_DB_PASSWORD_FILE",
                        s.n8n.database_password_file.as_deref(),
                    )?,
                };
            }
        }
    }
    Ok(t)
}

/// pg_restore for the restore, pg_dump for the safety backup.
fn tools(a: &Args, s: &Settings) -> (RestoreTool, DumpRunner) {
    (
        a.tools.restore_tool(a.pg_restore.as_ref(), s),
        a.tools.dump_runner(s),
    )
}

/// The command that restores the safety backup `safety` onto the same
/// target with the same tools (never with a password).
fn go_back(a: &Args, target: &PgTarget, tool: &RestoreTool, safety: &str) -> String {
    let mut v: Vec<String> = vec![
        "n8n-ark".into(),
        "restore".into(),
        "database".into(),
        safety.into(),
        a.database.clone(),
        "--target-url".into(),
        database::url_for_message(target),
        "--replace".into(),
        "--yes".into(),
    ];
    match tool {
        RestoreTool::Local { pg_restore } => {
            if a.pg_restore.is_some() || a.tools.pg_dump.is_some() {
                v.push("--pg-restore".into());
                v.push(pg_restore.display().to_string());
            }
        }
        RestoreTool::Docker {
            container,
            host,
            port,
        } => {
            v.extend([
                "--pg-container".into(),
                container.clone(),
                "--pg-container-host".into(),
                host.clone(),
                "--pg-container-port".into(),
                port.to_string(),
            ]);
        }
    }
    if a.no_owner {
        v.push("--no-owner".into());
    }
    v.iter()
        .map(|s| crate::restore::full::shell_quote(s))
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(serde::Serialize)]
struct Report<'a> {
    restore_id: &'a str,
    backup_id: &'a str,
    safety_backup: Option<&'a str>,
    roles: Option<&'a GlobalsRestored>,
    database: &'a DatabaseRestored,
}

pub async fn run(cli: &Cli, a: &Args, cancel: &Cancel) -> CliResult {
    let settings = cli.settings().map_err(CliError::Usage)?;
    if a.replace && !a.yes {
        return Err(CliError::Usage(format!(
            "--replace drops the database {:?} on the target and puts the backup's in its place: add --yes \
             to confirm (a pinned safety backup of it is taken first), or restore beside it with --as NAME",
            a.database
        )));
    }
    let target = resolve_target(a, settings).map_err(CliError::Usage)?;
    let (tool, dump) = tools(a, settings);
    let (store, catalog) = open_store_and_catalog(cli).await?;
    let backup = choose_backup(&catalog, &store, &a.backup)
        .await
        .map_err(restore_err)?;
    let mode = match (&a.as_name, a.replace) {
        (Some(name), _) => DatabaseMode::New { name: name.clone() },
        (None, true) => DatabaseMode::Replace,
        (None, false) => {
            catalog.close().await;
            return Err(CliError::Usage(format!(
                "say where to restore {db:?}: --as {suggested} (a new database beside the original) or \
                 --replace --yes (over {db:?} on {}:{}, after a pinned safety backup)",
                target.host,
                target.port,
                db = a.database,
                suggested = database::suggested_name(&a.database, backup.finished_ms),
            )));
        }
    };
    let final_name = match &mode {
        DatabaseMode::New { name } => name.clone(),
        DatabaseMode::Replace => a.database.clone(),
    };
    let recorder = Recorder::new(
        &backup.backup_id,
        RestoreWhat::Database,
        format!("postgres:{final_name}@{}:{}", target.host, target.port),
    );
    let opts = DatabaseOptions {
        no_owner: a.no_owner,
        target_flag: "--target-url",
    };
    let mut safety: Option<String> = None;
    let mut roles: Option<GlobalsRestored> = None;
    let result: Result<DatabaseRestored, (&str, RestoreError)> = async {
        if let Some(why) = cancel.interrupted() {
            return Err((
                "check",
                RestoreError::Interrupted(format!("{why} before the restore began")),
            ));
        }
        // Every check before anything changes (the roles --with-roles
        // creates count as there).
        let check_opts = DatabaseOptions {
            no_owner: a.no_owner || a.with_roles,
            ..opts.clone()
        };
        let pre = database::preflight(
            &store,
            &backup,
            &a.database,
            &target,
            &tool,
            &mode,
            &check_opts,
        )
        .await
        .map_err(|e| ("check", e))?;
        if a.with_roles {
            let r = database::restore_globals(&store, &backup, &target, &tool)
                .await
                .map_err(|e| ("roles", e))?;
            if !cli.json && !r.created.is_empty() {
                eprintln!("created role(s): {}", r.created.join(", "));
            }
            roles = Some(r);
        }
        if matches!(mode, DatabaseMode::Replace) && pre.existing_owner.is_some() {
            if !cli.json {
                eprintln!(
                    "taking a safety backup of {:?} on {}:{} before replacing it ...",
                    a.database, target.host, target.port
                );
            }
            let sources = Sources {
                n8n_db: Some(target.with_database(&a.database)),
                pg_server: None,
                dump: dump.clone(),
                config_paths: vec![],
                n8n_api: None,
            };
            let id = crate::restore::take_safety_backup(
                &store,
                BackupKind::PostgresN8n,
                &sources,
                &recorder.restore_id,
            )
            .await
            .map_err(|e| ("safety_backup", e))?;
            if !cli.json {
                eprintln!("safety backup {id} taken (pinned)");
            }
            safety = Some(id);
        }
        database::restore_database(
            &store,
            &backup,
            &a.database,
            &target,
            &tool,
            &mode,
            &opts,
            &recorder.restore_id,
            cancel,
        )
        .await
        .map_err(|e| {
            let stage = if database::is_count_mismatch(&e) {
                "verify"
            } else {
                "database"
            };
            (stage, e)
        })
    }
    .await;
    let outcome = match result {
        Ok(restored) => {
            let detail = format!(
                "into {} on {}: {} tables, row counts match the backup",
                restored.target_database,
                restored.server,
                restored.tables.len()
            );
            let items = vec![item(
                format!("database:{}", a.database),
                Outcome::Restored,
                detail,
            )];
            match recorder.performed(&store, items, safety.clone()).await {
                Ok(_) => Ok(restored),
                Err(e) => Err(CliError::Failed(format!(
                    "the database was restored and checked, but the RestorePerformed event could not be \
                     recorded: {e}"
                ))),
            }
        }
        // Bad input (a name PostgreSQL cannot take): nothing began.
        Err((_, RestoreError::Invalid(m))) => Err(CliError::Usage(m)),
        Err((stage, e)) => {
            // The target's password comes from its own variables.
            let mut message = e.to_string().replace(
                "ARK_N8N_DB_PASSWORD / ARK_N8N_DB_PASSWORD_FILE, or the password file in the config",
                "ARK_TARGET_DB_PASSWORD / ARK_TARGET_DB_PASSWORD_FILE",
            );
            if stage == "check" && !message.contains("nothing was changed") {
                message.push_str("; nothing was changed");
            }
            if let Some(r) = roles.as_ref().filter(|r| !r.created.is_empty()) {
                message.push_str(&format!(
                    ". The roles created before it stay: {}",
                    r.created.join(", ")
                ));
            }
            if let Some(id) = &safety {
                message.push_str(&format!(
                    ". The safety backup {id} (pinned) holds {db:?} as it was before; to go back: {}",
                    go_back(a, &target, &tool, id),
                    db = a.database,
                ));
            }
            let items = vec![item(
                format!("database:{}", a.database),
                Outcome::Failed,
                message.clone(),
            )];
            if let Some(unrecorded) = recorder
                .failed(&store, stage, &message, items, safety.clone())
                .await
            {
                message.push_str(&format!(" ({unrecorded})"));
            }
            Err(super::interrupted_or(cancel, CliError::Failed(message)))
        }
    };
    if let Err(e) = catalog.catch_up(&store).await {
        eprintln!("warning: the catalog was not updated ({e}); it catches up on the next command");
    }
    catalog.close().await;
    let restored = outcome?;
    if cli.json {
        print_json(&Report {
            restore_id: &recorder.restore_id,
            backup_id: &backup.backup_id,
            safety_backup: safety.as_deref(),
            roles: roles.as_ref(),
            database: &restored,
        });
        return Ok(());
    }
    println!(
        "restored database {:?} of backup {} {} {:?} on {} in {:.1} s ({} streamed through {})",
        restored.backup_database,
        backup.backup_id,
        if restored.replaced { "over" } else { "into" },
        restored.target_database,
        restored.server,
        restored.duration_ms as f64 / 1000.0,
        human_bytes(restored.dump_bytes),
        restored.pg_restore
    );
    if let Some(id) = &safety {
        println!("  safety backup of the replaced database: {id} (pinned)");
    }
    for line in &restored.cleaned_up {
        println!("  before it: {line}");
    }
    for n in &restored.notes {
        println!("  note: {n}");
    }
    let mut t = TextTable::new(&["TABLE", "EXPECTED", "FOUND", ""]).right_align(&[1, 2]);
    for c in &restored.tables {
        t.row(vec![
            c.table.clone(),
            c.expected.to_string(),
            c.found.to_string(),
            if c.matches() { "ok" } else { "MISMATCH" }.into(),
        ]);
    }
    t.print(2);
    println!(
        "  {} tables, every row count equals the backup's (restore {})",
        restored.tables.len(),
        recorder.restore_id
    );
    Ok(())
}
