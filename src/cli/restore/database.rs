//! `n8n-ark restore database BACKUP DB --target-url URL (--as NAME | --replace --yes)`:
//! one database of a backup restored with `pg_restore`, streamed from the
//! store, then its row counts compared with the backup's.
//!
//! The target's password comes from `ARK_TARGET_DB_PASSWORD` or the file named
//! by `ARK_TARGET_DB_PASSWORD_FILE`; when neither is set and the target is the
//! configured n8n database's server and user, from n8n's
//! (`ARK_N8N_DB_PASSWORD[_FILE]` or the config file's password file). Never
//! from the command line: a `--target-url` holding a password is refused.
use super::{op_err, Steps};
use crate::cancel::Cancel;
use crate::cli::catalog::TextTable;
use crate::cli::postgres_args::{no_password_on_the_command_line, ToolArgs};
use crate::cli::{human_bytes, print_json, Cli, CliError, CliResult};
use crate::ops::restore::database::{self, Request};
use crate::ops::restore::Server;
use crate::settings::{secret, Settings};
use crate::source::postgres::PgTarget;
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
fn resolve_target(a: &Args, s: &Settings) -> Result<Server, String> {
    no_password_on_the_command_line("--target-url", "ARK_TARGET_DB", a.target_url.as_ref())?;
    let n8n_url = std::env::var("ARK_N8N_DB")
        .ok()
        .filter(|v| !v.is_empty())
        .or_else(|| s.n8n.database.clone());
    let url = a.target_url.clone().or_else(|| n8n_url.clone()).ok_or_else(|| {
        "no target server: pass --target-url postgres://user@host:port/postgres (or set ARK_TARGET_DB)"
            .to_string()
    })?;
    let mut pw = secret(
        "ARK_TARGET_DB_PASSWORD",
        "ARK_TARGET_DB_PASSWORD_FILE",
        None,
    )?;
    // Without a password of its own, a target that is the configured n8n
    // database's server and user gets n8n's.
    if pw.is_none() {
        if let (Ok(t), Some(n8n)) = (
            PgTarget::parse(&url, None),
            n8n_url.and_then(|u| PgTarget::parse(&u, None).ok()),
        ) {
            if t.password.is_none()
                && n8n.host == t.host
                && n8n.port == t.port
                && n8n.user == t.user
            {
                pw = match n8n.password {
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
    Ok(Server::new(url, pw.map(|p| p.to_string())))
}

pub async fn run(cli: &Cli, a: &Args, cancel: &Cancel) -> CliResult {
    let settings = cli.settings().map_err(CliError::Usage)?;
    let target = resolve_target(a, settings).map_err(CliError::Usage)?;
    let req = Request {
        backup: a.backup.clone(),
        database: a.database.clone(),
        target,
        as_name: a.as_name.clone(),
        replace: a.replace,
        yes: a.yes,
        no_owner: a.no_owner,
        with_roles: a.with_roles,
        tool: a.tools.restore_tool(a.pg_restore.as_ref(), settings),
        dump: a.tools.dump_runner(settings),
        name_pg_restore: a.pg_restore.is_some() || a.tools.pg_dump.is_some(),
    };
    // What the request gets wrong is said before the store opens.
    req.check()?;
    let ctx = cli.context(cancel.clone()).await?;
    let steps = Steps {
        prefix: "",
        quiet: cli.json,
    };
    let done = database::run(&ctx, &req, &steps)
        .await
        .map_err(|e| op_err(cancel, e))?;
    if cli.json {
        print_json(&done);
        return Ok(());
    }
    let restored = &done.database;
    println!(
        "restored database {:?} of backup {} {} {:?} on {} in {:.1} s ({} streamed through {})",
        restored.backup_database,
        done.backup_id,
        if restored.replaced { "over" } else { "into" },
        restored.target_database,
        restored.server,
        restored.duration_ms as f64 / 1000.0,
        human_bytes(restored.dump_bytes),
        restored.pg_restore
    );
    if let Some(id) = &done.safety_backup {
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
        done.restore_id
    );
    Ok(())
}
