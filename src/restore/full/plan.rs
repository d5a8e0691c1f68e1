//! The plan: everything a full restore would do, checked before anything
//! changes (refusals and notes).
use super::*;

/// Makes the plan. Reads the backup's manifest, the target's files under the
/// root, the target server's list of databases and (for compose) the Docker
/// engine's containers; changes nothing.
pub async fn plan(store: &Store, backup: &ChosenBackup, opts: &FullOptions) -> Result<Prepared> {
    let m = &backup.manifest;
    let contents = m.contents.clone().unwrap_or_default();
    let mut refusals = Vec::new();
    let mut notes = Vec::new();
    let kind = m.kind.as_str();
    let has_files = contents
        .config_files
        .iter()
        .any(|f| f.file_type != FileType::Missing);
    if kind == BackupKind::Flows.as_str() || (contents.databases.is_empty() && !has_files) {
        return Err(RestoreError::Invalid(format!(
            "backup {} ({kind}) holds no database and no config files: nothing for restore full \
             (workflows: n8n-ark restore workflow)",
            backup.backup_id
        )));
    }

    let restores_config = has_files;

    // Databases.
    let all = kind == BackupKind::PostgresFull.as_str() || opts.all_databases;
    let any_n8n = contents.databases.iter().any(|d| d.is_n8n);
    let chosen: Vec<&store_format::contents::Database> = contents
        .databases
        .iter()
        .filter(|d| all || !any_n8n || d.is_n8n)
        .collect();
    let databases_not_restored: Vec<String> = contents
        .databases
        .iter()
        .filter(|d| !chosen.iter().any(|c| c.name == d.name))
        .map(|d| d.name.clone())
        .collect();
    if !databases_not_restored.is_empty() {
        notes.push(format!(
            "databases of the backup not restored: {} (add --all-databases to restore them too)",
            databases_not_restored.join(", ")
        ));
    }
    if contents.globals_item.is_some() && !opts.with_roles && !chosen.is_empty() {
        notes.push(
            "roles (pg_dumpall --globals-only) are not restored: the target server keeps its own \
             (--with-roles creates the ones it lacks)"
                .into(),
        );
    }
    let server = opts.pg_server.clone().or_else(|| opts.n8n_db.clone());
    let mut db_targets = Vec::new();
    let mut db_plans = Vec::new();
    let mut existing = BTreeSet::new();
    if !chosen.is_empty() {
        let Some(server) = server.clone() else {
            return Err(RestoreError::Invalid(
                "restoring databases needs the target server: pass --n8n-db postgres://user@host:port/db \
                 (or set ARK_N8N_DB, or [n8n] database in the config file), or --pg-server"
                    .into(),
            ));
        };
        // The list of databases, from the server's maintenance database
        // (the n8n database may not exist yet).
        let listing = match &opts.pg_server {
            Some(s) => s.clone(),
            None => server.with_database("postgres"),
        };
        let names = match postgres::list_databases(&listing).await {
            Ok(n) => n,
            Err(first) => match &opts.n8n_db {
                Some(db) if opts.pg_server.is_none() => postgres::list_databases(db)
                    .await
                    .map_err(|_| RestoreError::Source(first))?,
                _ => return Err(RestoreError::Source(first)),
            },
        };
        existing.extend(names);
        for d in &chosen {
            // A database replaces the one of its own name (the restored .env
            // names it); the n8n database with n8n's credentials.
            let target = match (&opts.n8n_db, d.is_n8n) {
                (Some(t), true) => {
                    if t.database != d.name {
                        let msg = format!(
                            "the backup's n8n database is {:?}, the target's (--n8n-db) is {:?}: restore full \
                             replaces {:?} on the target",
                            d.name, t.database, d.name
                        );
                        if restores_config {
                            notes.push(format!("{msg}, which the restored config names"));
                        } else {
                            refusals.push(format!(
                                "{msg}, but n8n's config (not in this backup) names {:?}. Point --n8n-db at \
                                 .../{}, or use `n8n-ark restore database` with --as or --replace",
                                t.database, d.name
                            ));
                        }
                    }
                    t.with_database(&d.name)
                }
                _ => server.with_database(&d.name),
            };
            let exists = existing.contains(&target.database);
            db_plans.push(DatabasePlan {
                backup_database: d.name.clone(),
                is_n8n: d.is_n8n,
                target: target.display(),
                target_database: target.database.clone(),
                exists,
                action: if exists { "replace" } else { "create" }.into(),
                tables: d.tables.len(),
                rows: d.tables.iter().map(|t| t.rows).sum(),
            });
            db_targets.push(DbTarget {
                backup_database: d.name.clone(),
                is_n8n: d.is_n8n,
                target,
                expected: d.tables.clone(),
            });
        }
        // pg_restore, the server, the connecting roles' privileges, the
        // dump's roles, the space: checked now, before the safety backup
        // (the roles are created first with --with-roles).
        let check_opts = |t: &DbTarget| DatabaseOptions {
            no_owner: opts.no_owner || opts.with_roles,
            target_flag: if t.is_n8n && opts.n8n_db.is_some() {
                "--n8n-db"
            } else if opts.pg_server.is_some() {
                "--pg-server"
            } else {
                "--n8n-db"
            },
        };
        if opts.with_roles && contents.globals_item.is_none() {
            refusals.push(format!(
                "--with-roles: backup {} ({kind}) holds no roles (only postgres_full and full_system backups do)",
                backup.backup_id
            ));
        }
        for t in &db_targets {
            match database::preflight(
                store,
                backup,
                &t.backup_database,
                &t.target,
                &opts.tool,
                &DatabaseMode::Replace,
                &check_opts(t),
            )
            .await
            {
                Ok(p) => notes.extend(
                    p.notes
                        .into_iter()
                        .map(|n| format!("database {}: {n}", t.backup_database)),
                ),
                Err(e) => refusals.push(format!("database {}: {e}", t.backup_database)),
            }
        }
        let mut seen = BTreeSet::new();
        for t in &db_targets {
            if !seen.insert((
                t.target.host.clone(),
                t.target.port,
                t.target.database.clone(),
            )) {
                return Err(RestoreError::Invalid(format!(
                    "two databases of the backup would both replace {}: pass --n8n-db naming another database",
                    t.target.display()
                )));
            }
        }
    }

    // Config files (refuses unsafe paths before anything is written).
    let config_opts = ConfigOptions {
        root: opts.root.clone(),
        only: vec![],
        keep_before: opts.keep_before,
    };
    let config_files: Vec<FilePlan> = if contents.config_files.is_empty() {
        vec![]
    } else {
        config::plan_config(backup, &config_opts)?
            .into_iter()
            .map(FilePlan::from)
            .collect()
    };
    let mut safety_config_paths = Vec::new();
    for f in top_level(&contents.config_files) {
        let target = reroot(&opts.root, &f.path)?;
        let mut pattern = target
            .to_str()
            .map(str::to_string)
            .ok_or_else(|| RestoreError::Invalid(format!("{} is not UTF-8", target.display())))?;
        if f.file_type != FileType::Missing {
            pattern = glob::Pattern::escape(&pattern);
        } else {
            // A missing entry may be a glob: escape only the root.
            let root = opts.root.to_str().unwrap_or("/").trim_end_matches('/');
            pattern = format!("{}{}", glob::Pattern::escape(root), f.path);
        }
        safety_config_paths.push(ConfigPath::optional(pattern));
    }

    // Stop and start.
    let mut containers = Vec::new();
    let stop = match &opts.control {
        Control::NoStop => StopPlan {
            method: "none".into(),
            project: None,
            project_from: None,
            containers: vec![],
            stop_command: None,
            start_command: None,
            summary: "nothing is stopped or started (--no-stop: n8n is not running on the target)"
                .into(),
        },
        Control::Commands { stop, start } => {
            for (what, cmd) in [("stop", stop), ("start", start)] {
                if let Err(why) = check_command(cmd, opts.search_path.as_deref()) {
                    refusals.push(format!(
                        "the {what} command `{cmd}` cannot run: {why}. Fix it (it runs with `sh -c`), or pass \
                         --no-stop if n8n is not running on the target"
                    ));
                }
            }
            StopPlan {
                method: "commands".into(),
                project: None,
                project_from: None,
                containers: vec![],
                stop_command: Some(stop.clone()),
                start_command: Some(start.clone()),
                summary: format!("n8n is stopped with `{stop}` and started with `{start}`"),
            }
        }
        Control::Compose {
            project,
            keep_running,
        } => {
            let (project, from) = match project {
                Some(p) => (Some(p.clone()), Some("--compose-project".to_string())),
                None => match derive_project(store, backup, &opts.root).await {
                    Some((p, from)) => (Some(p), Some(from)),
                    None => (None, None),
                },
            };
            match project {
                None => {
                    refusals.push(
                        "cannot tell how to stop n8n: the backup holds no compose file to name its compose \
                         project. Pass --compose-project NAME, or --stop-command and --start-command, or \
                         --no-stop if n8n is not running on the target"
                            .into(),
                    );
                    StopPlan {
                        method: "compose".into(),
                        project: None,
                        project_from: None,
                        containers: vec![],
                        stop_command: None,
                        start_command: None,
                        summary: "no compose project known".into(),
                    }
                }
                Some(project) => {
                    let pg_container = match &opts.tool {
                        RestoreTool::Docker { container, .. } => Some(container.clone()),
                        _ => None,
                    };
                    let listed = match compose_containers(&project).await {
                        Ok(l) => l,
                        Err(e) => {
                            refusals.push(format!(
                                "{e}: n8n (compose project {project}) cannot be stopped. Start the Docker \
                                 engine, or pass --stop-command and --start-command, or --no-stop if n8n is \
                                 not running on the target"
                            ));
                            vec![]
                        }
                    };
                    let mut plans = Vec::new();
                    for c in &listed {
                        let name = container_name(c);
                        let id = c.id.clone().unwrap_or_default();
                        let service = c
                            .labels
                            .as_ref()
                            .and_then(|l| l.get(COMPOSE_SERVICE_LABEL))
                            .cloned();
                        let state = c
                            .state
                            .map(|s| s.to_string())
                            .unwrap_or_else(|| "unknown".into());
                        let keep = service.as_deref().is_some_and(|s| {
                            DEFAULT_KEEP_SERVICES.contains(&s)
                                || keep_running.iter().any(|k| k == s)
                        }) || pg_container
                            .as_deref()
                            .is_some_and(|p| p == name || id.starts_with(p));
                        let running = matches!(state.as_str(), "running" | "restarting");
                        let action = if keep {
                            "keep running"
                        } else if running {
                            "stop and start"
                        } else {
                            "not running"
                        };
                        if running && !keep {
                            containers.push(Container {
                                id: id.clone(),
                                name: name.clone(),
                                stop: true,
                            });
                        }
                        plans.push(ContainerPlan {
                            name,
                            id: id.chars().take(12).collect(),
                            service,
                            state,
                            action: action.into(),
                        });
                    }
                    let summary = if containers.is_empty() {
                        format!(
                            "no running container of compose project {project} to stop{}",
                            if listed.is_empty() {
                                " (it has no containers)"
                            } else {
                                ""
                            }
                        )
                    } else {
                        format!(
                            "the containers of compose project {project} are stopped and started again: {}",
                            containers
                                .iter()
                                .map(|c| c.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    };
                    StopPlan {
                        method: "compose".into(),
                        project: Some(project),
                        project_from: from,
                        containers: plans,
                        stop_command: None,
                        start_command: None,
                        summary,
                    }
                }
            }
        }
    };
    if stop.method == "compose" && restores_config && !containers.is_empty() {
        notes.push(
            "containers are started again as they were created: if the restored compose file or .env \
             differ from the current ones, run `docker compose up -d` in the project's directory afterwards"
                .into(),
        );
    }

    // The encryption key.
    let restores_n8n_db = db_targets.iter().any(|d| d.is_n8n);
    let backup_files = if restores_config {
        key_files_of_backup(store, backup, &opts.root).await
    } else {
        HashMap::new()
    };
    let ks = key_state(
        store,
        backup,
        &opts.root,
        restores_config,
        &backup_files,
        opts.encryption_key.as_ref().map(|k| k.as_str()),
    )?;
    let (verdict, db_fp, n8n_fp) = key_verdict(&ks, restores_n8n_db, restores_config);
    let summary = match verdict {
        "match" => {
            "the n8n database's credentials and the key n8n runs with after the restore match"
                .to_string()
        }
        "mismatch" => {
            let db_from = if restores_n8n_db {
                format!(
                    "the restored n8n database's credentials were encrypted with the backup's key ({})",
                    found_in(ks.backup.as_ref(), "when the backup ran")
                )
            } else {
                format!(
                    "the target's n8n database's credentials are encrypted with the target's current key ({})",
                    found_in(ks.target_now.as_ref(), "now")
                )
            };
            format!(
                "{db_from}, but after the restore n8n runs with another key ({}): n8n could not \
                 decrypt any credential. Restore with the matching .env, set N8N_ENCRYPTION_KEY to the \
                 backup's key, or pass --force to restore anyway",
                found_in(ks.n8n_after.as_ref(), "now")
            )
        }
        "unknown" => {
            let mut why = vec![];
            if db_fp.is_none() {
                why.push(if restores_n8n_db {
                    "the backup records no fingerprint of N8N_ENCRYPTION_KEY (only n8n_config and full_system backups do, when they find the key)"
                } else {
                    "the target's current N8N_ENCRYPTION_KEY was found neither in a .env file at the recorded paths nor in the environment"
                });
            }
            if n8n_fp.is_none() {
                why.push("the key n8n runs with after the restore was found neither in a .env file nor in the environment");
            }
            format!("cannot check the encryption key: {}", why.join("; "))
        }
        _ => "no n8n database or config file is restored".to_string(),
    };
    let key_mismatch = verdict == "mismatch";
    if key_mismatch && !opts.force {
        refusals.push(format!("encryption key mismatch: {summary}"));
    } else if key_mismatch {
        notes.push(format!(
            "--force: restoring despite an encryption key mismatch: {summary}"
        ));
    } else if verdict == "unknown" && restores_n8n_db {
        notes.push(summary.clone());
    }
    let encryption_key = KeyPlan {
        verdict: verdict.into(),
        backup: ks.backup.as_ref().map(|b| short(&b.0)),
        backup_source: ks.backup.as_ref().map(|b| b.1.clone()),
        target_now: ks.target_now.as_ref().map(|b| short(&b.0)),
        target_now_source: ks.target_now.as_ref().map(|b| b.1.clone()),
        database_after: db_fp.as_deref().map(short),
        n8n_after: ks.n8n_after.as_ref().map(|b| short(&b.0)),
        n8n_after_source: ks.n8n_after.as_ref().map(|b| b.1.clone()),
        summary,
    };

    // The safety backup: what the restore replaces that exists now.
    let replaced: Vec<&DbTarget> = db_targets
        .iter()
        .filter(|d| existing.contains(&d.target.database))
        .collect();
    let n8n_existing = replaced.iter().find(|d| d.is_n8n).map(|d| d.target.clone());
    let safety_kind = match (replaced.is_empty(), restores_config) {
        (false, true) => Some(BackupKind::FullSystem),
        (false, false) if replaced.len() == 1 && replaced[0].is_n8n => {
            Some(BackupKind::PostgresN8n)
        }
        (false, false) => Some(BackupKind::PostgresFull),
        (true, true) => Some(BackupKind::N8nConfig),
        (true, false) => None,
    };
    let (safety_n8n_db, safety_server) = match safety_kind {
        Some(BackupKind::PostgresN8n) => (n8n_existing.clone(), None),
        Some(BackupKind::FullSystem) | Some(BackupKind::PostgresFull) => {
            // The server to list and dump: --pg-server, else the n8n
            // database's, else any database that exists on it.
            let srv = match (&opts.pg_server, &n8n_existing) {
                (Some(s), _) => Some(s.clone()),
                (None, Some(_)) => None,
                (None, None) => Some(replaced[0].target.clone()),
            };
            (n8n_existing.clone(), srv)
        }
        _ => (None, None),
    };
    let safety_dbs: Vec<String> = match safety_kind {
        Some(BackupKind::PostgresN8n) => {
            replaced.iter().map(|d| d.target.database.clone()).collect()
        }
        Some(BackupKind::FullSystem) | Some(BackupKind::PostgresFull) => {
            existing.iter().cloned().collect()
        }
        _ => vec![],
    };
    let safety_summary = match safety_kind {
        None => {
            "no safety backup: nothing the restore replaces exists on the target yet".to_string()
        }
        Some(k) => {
            let mut parts = vec![];
            if !safety_dbs.is_empty() {
                parts.push(format!("databases {}", safety_dbs.join(", ")));
            }
            if matches!(k, BackupKind::FullSystem | BackupKind::N8nConfig) {
                parts.push(format!(
                    "{} config paths under {}",
                    safety_config_paths.len(),
                    opts.root.display()
                ));
            }
            format!(
                "a {k} backup of the current {} is taken first, pinned (label `{}`) so that retention never removes it",
                parts.join(" and "),
                crate::backup::PINNED_LABEL
            )
        }
    };
    let safety_backup = SafetyPlan {
        kind: safety_kind.map(|k| k.as_str().to_string()),
        databases: safety_dbs,
        config_paths: if matches!(
            safety_kind,
            Some(BackupKind::FullSystem) | Some(BackupKind::N8nConfig)
        ) {
            safety_config_paths
                .iter()
                .map(|p| p.pattern.clone())
                .collect()
        } else {
            vec![]
        },
        summary: safety_summary,
    };
    if !matches!(
        safety_kind,
        Some(BackupKind::FullSystem) | Some(BackupKind::N8nConfig)
    ) {
        safety_config_paths.clear();
    }

    let health = HealthPlan {
        url: match opts.control {
            Control::NoStop => None,
            _ => opts.health_url.clone(),
        },
        timeout_secs: opts.health_timeout.as_secs(),
    };
    if health.url.is_none() && !matches!(opts.control, Control::NoStop) {
        notes.push(
            "n8n's health is not checked after the start: no n8n URL (--n8n-url, ARK_N8N_URL) or --health-url".into(),
        );
    }

    Ok(Prepared {
        plan: Plan {
            backup_id: backup.backup_id.clone(),
            backup_kind: m.kind.clone(),
            backup_finished_ms: backup.finished_ms,
            root: opts.root.display().to_string(),
            stop,
            databases: db_plans,
            databases_not_restored,
            config_files,
            safety_backup,
            encryption_key,
            health,
            refusals,
            notes,
        },
        databases: db_targets,
        safety_config_paths,
        safety_kind,
        safety_n8n_db,
        safety_server,
        containers,
    })
}
