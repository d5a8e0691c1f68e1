//! `restore database`: one database of a backup restored with `pg_restore`,
//! streamed from the store, into a new database beside the original or over
//! it (after a pinned safety backup of it), then its row counts compared
//! with the backup's. Records `RestorePerformed` or `RestoreFailed` (with
//! the safety backup and the command that goes back).
use super::{chosen, failure, Server};
use crate::backup::{BackupKind, Sources};
use crate::ops::{catalog, Context, ErrorKind, OpError, OpResult, Reporter};
use crate::restore::database::{
    self, DatabaseMode, DatabaseOptions, DatabaseRestored, GlobalsRestored, RestoreTool,
};
use crate::restore::{item, Outcome, Recorder, RestoreError, RestoreWhat};
use crate::source::postgres::{DumpRunner, PgTarget};
use serde::{Deserialize, Serialize};

/// Where the target server's password is set, for a refused login.
pub const PASSWORD_SETTING: &str = "ARK_TARGET_DB_PASSWORD / ARK_TARGET_DB_PASSWORD_FILE";

#[derive(Debug, Clone, Deserialize)]
pub struct Request {
    /// An id, a unique prefix of one, `latest` or `latest:KIND`.
    pub backup: String,
    /// The database of the backup to restore.
    pub database: String,
    /// The server to restore onto (its database part is only where to
    /// connect to create the new one).
    pub target: Server,
    /// Restore into a new database of this name, beside the original.
    #[serde(default)]
    pub as_name: Option<String>,
    /// Replace the database of the same name (needs `yes`).
    #[serde(default)]
    pub replace: bool,
    /// Confirms `replace`.
    #[serde(default)]
    pub yes: bool,
    /// Objects belong to the connecting user, no grants restored.
    #[serde(default)]
    pub no_owner: bool,
    /// First create the roles the target lacks from the backup's globals.
    #[serde(default)]
    pub with_roles: bool,
    /// pg_restore for the restore.
    pub tool: RestoreTool,
    /// pg_dump for the safety backup.
    pub dump: DumpRunner,
    /// The command that goes back names this pg_restore (it was chosen by
    /// the operator rather than found).
    #[serde(default)]
    pub name_pg_restore: bool,
}

impl Request {
    /// What the request gets wrong by itself (before the store is opened);
    /// the target it names.
    pub fn check(&self) -> OpResult<PgTarget> {
        if self.replace && !self.yes {
            return Err(OpError::invalid(format!(
                "--replace drops the database {:?} on the target and puts the backup's in its place: add --yes \
                 to confirm (a pinned safety backup of it is taken first), or restore beside it with --as NAME",
                self.database
            )));
        }
        if self.replace && self.as_name.is_some() {
            return Err(OpError::invalid(
                "give either --as NAME (a new database) or --replace, not both",
            ));
        }
        Ok(self
            .target
            .target("--target-url")?
            .with_password_setting(PASSWORD_SETTING))
    }
}

/// What `restore database` did.
#[derive(Debug, Clone, Serialize)]
pub struct Restored {
    pub restore_id: String,
    pub backup_id: String,
    /// The pinned backup of the replaced database, taken before it.
    pub safety_backup: Option<String>,
    /// The roles created first (`with_roles`).
    pub roles: Option<GlobalsRestored>,
    pub database: DatabaseRestored,
}

/// The command that restores the safety backup `safety` onto the same
/// target with the same tools (never with a password).
fn go_back(req: &Request, target: &PgTarget, safety: &str) -> String {
    let mut v: Vec<String> = vec![
        "n8n-ark".into(),
        "restore".into(),
        "database".into(),
        safety.into(),
        req.database.clone(),
        "--target-url".into(),
        database::url_for_message(target),
        "--replace".into(),
        "--yes".into(),
    ];
    match &req.tool {
        RestoreTool::Local { pg_restore } => {
            if req.name_pg_restore {
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
    if req.no_owner {
        v.push("--no-owner".into());
    }
    v.iter()
        .map(|s| crate::restore::full::shell_quote(s))
        .collect::<Vec<_>>()
        .join(" ")
}

pub async fn run(ctx: &Context, req: &Request, r: &dyn Reporter) -> OpResult<Restored> {
    let target = req.check()?;
    let backup = chosen(ctx, r, &req.backup).await?;
    let mode = match (&req.as_name, req.replace) {
        (Some(name), _) => DatabaseMode::New { name: name.clone() },
        (None, true) => DatabaseMode::Replace,
        (None, false) => {
            return Err(OpError::invalid(format!(
                "say where to restore {db:?}: --as {suggested} (a new database beside the original) or \
                 --replace --yes (over {db:?} on {}:{}, after a pinned safety backup)",
                target.host,
                target.port,
                db = req.database,
                suggested = database::suggested_name(&req.database, backup.finished_ms),
            )))
        }
    };
    let final_name = match &mode {
        DatabaseMode::New { name } => name.clone(),
        DatabaseMode::Replace => req.database.clone(),
    };
    let recorder = Recorder::new(
        &backup.backup_id,
        RestoreWhat::Database,
        format!("postgres:{final_name}@{}:{}", target.host, target.port),
    )
    .with_trigger(ctx.trigger);
    let opts = DatabaseOptions {
        no_owner: req.no_owner,
        target_flag: "--target-url",
    };
    let cancel = &ctx.cancel;
    let store = &ctx.store;
    let mut safety: Option<String> = None;
    let mut roles: Option<GlobalsRestored> = None;
    let result: Result<DatabaseRestored, (&str, RestoreError)> = async {
        if let Some(why) = cancel.interrupted() {
            return Err((
                "check",
                RestoreError::Interrupted(format!("{why} before the restore began")),
            ));
        }
        // Every check before anything changes (the roles `with_roles`
        // creates count as there).
        let check_opts = DatabaseOptions {
            no_owner: req.no_owner || req.with_roles,
            ..opts.clone()
        };
        let pre = database::preflight(
            store,
            &backup,
            &req.database,
            &target,
            &req.tool,
            &mode,
            &check_opts,
        )
        .await
        .map_err(|e| ("check", e))?;
        if req.with_roles {
            let g = database::restore_globals(store, &backup, &target, &req.tool)
                .await
                .map_err(|e| ("roles", e))?;
            if !g.created.is_empty() {
                r.stage(&format!("created role(s): {}", g.created.join(", ")));
            }
            roles = Some(g);
        }
        if matches!(mode, DatabaseMode::Replace) && pre.existing_owner.is_some() {
            r.stage(&format!(
                "taking a safety backup of {:?} on {}:{} before replacing it ...",
                req.database, target.host, target.port
            ));
            let sources = Sources {
                n8n_db: Some(target.with_database(&req.database)),
                pg_server: None,
                dump: req.dump.clone(),
                config_paths: vec![],
                n8n_api: None,
            };
            let id = crate::restore::take_safety_backup(
                store,
                BackupKind::PostgresN8n,
                &sources,
                &recorder.restore_id,
                ctx.trigger,
                ctx.env.get(crate::source::config_files::ENCRYPTION_KEY_VAR),
            )
            .await
            .map_err(|e| ("safety_backup", e))?;
            r.stage(&format!("safety backup {id} taken (pinned)"));
            safety = Some(id);
        }
        database::restore_database(
            store,
            &backup,
            &req.database,
            &target,
            &req.tool,
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
                format!("database:{}", req.database),
                Outcome::Restored,
                detail,
            )];
            match recorder.performed(store, items, safety.clone()).await {
                Ok(_) => Ok(restored),
                Err(e) => Err(OpError::new(
                    ErrorKind::Unavailable,
                    format!(
                        "the database was restored and checked, but the RestorePerformed event could not be \
                         recorded: {e}"
                    ),
                )),
            }
        }
        // Bad input (a name PostgreSQL cannot take): nothing began.
        Err((_, RestoreError::Invalid(m))) => Err(OpError::invalid(m)),
        Err((stage, e)) => {
            let mut message = e.to_string();
            if stage == "check" && !message.contains("nothing was changed") {
                message.push_str("; nothing was changed");
            }
            if let Some(g) = roles.as_ref().filter(|g| !g.created.is_empty()) {
                message.push_str(&format!(
                    ". The roles created before it stay: {}",
                    g.created.join(", ")
                ));
            }
            let mut back = None;
            if let Some(id) = &safety {
                let cmd = go_back(req, &target, id);
                message.push_str(&format!(
                    ". The safety backup {id} (pinned) holds {db:?} as it was before; to go back: {cmd}",
                    db = req.database,
                ));
                back = Some(cmd);
            }
            let items = vec![item(
                format!("database:{}", req.database),
                Outcome::Failed,
                message.clone(),
            )];
            if let Some(unrecorded) = recorder
                .failed(store, stage, &message, items, safety.clone())
                .await
            {
                message.push_str(&format!(" ({unrecorded})"));
            }
            let mut err = failure(ctx, e.into(), message);
            if let Some(cmd) = back {
                err = err.with_command(cmd);
            }
            Err(err)
        }
    };
    catalog::follow(ctx, r).await;
    let restored = outcome?;
    Ok(Restored {
        restore_id: recorder.restore_id.clone(),
        backup_id: backup.backup_id.clone(),
        safety_backup: safety,
        roles,
        database: restored,
    })
}
