//! Executing a plan: the safety backup, stop, roles and databases, config
//! files, start, health and row counts, each a step with its stage; its
//! event, and how to go back after a failure.
use super::*;

/// A step that failed: where, and the error.
pub(super) struct StepError {
    stage: &'static str,
    message: String,
}

pub(super) fn step(stage: &'static str) -> impl Fn(RestoreError) -> StepError {
    move |e| StepError {
        stage,
        message: e.to_string(),
    }
}

/// The target, for the event (`root:/ postgres:user@host:port`).
pub fn target_description(opts: &FullOptions) -> String {
    let mut s = format!("root:{}", opts.root.display());
    if let Some(t) = opts.pg_server.as_ref().or(opts.n8n_db.as_ref()) {
        s.push_str(&format!(" postgres:{}@{}:{}", t.user, t.host, t.port));
    }
    s
}

/// Runs the restore the plan describes (the caller checked `--yes`), records
/// its event and returns the report. `go_back` renders the command that
/// restores a safety backup; `progress` receives one line per step.
#[allow(clippy::too_many_arguments)]
pub async fn execute(
    store: &Store,
    backup: &ChosenBackup,
    prepared: &Prepared,
    opts: &FullOptions,
    recorder: &Recorder,
    go_back: &(dyn Fn(&str) -> String + Sync),
    progress: &(dyn Fn(&str) + Sync),
    cancel: &Cancel,
) -> FullReport {
    let mut report = FullReport::of_plan(
        Some(recorder.restore_id.clone()),
        prepared.plan.clone(),
        FullResult::Ok,
    );
    if !prepared.plan.refusals.is_empty() {
        let message = format!(
            "restore full refused, nothing was changed: {}",
            prepared.plan.refusals.join("; ")
        );
        report.result = FullResult::Refused;
        report.failed_stage = Some("check".into());
        report.unrecorded = recorder
            .failed(store, "check", &message, vec![], None)
            .await;
        report.message = Some(message);
        report.duration_ms = recorder.elapsed_ms();
        return report;
    }
    let mut stopped: Option<Vec<Container>> = None;
    let r = run_steps(
        store,
        backup,
        prepared,
        opts,
        recorder,
        progress,
        cancel,
        &mut report,
        &mut stopped,
    )
    .await;
    match r {
        Ok(()) => {
            match recorder
                .performed(store, report.items.clone(), report.safety_backup.clone())
                .await
            {
                Ok(ev) => {
                    report.result = if ev.result == "partial" {
                        FullResult::Partial
                    } else {
                        FullResult::Ok
                    }
                }
                Err(e) => {
                    report.unrecorded = Some(format!(
                        "the restore succeeded, but its RestorePerformed event could not be recorded: {e}"
                    ))
                }
            }
        }
        Err(StepError { stage, message }) => {
            let mut text = format!("restore full failed at {stage}: {message}.");
            // n8n again, if it was stopped and not started yet.
            if let Some(containers) = stopped.take() {
                progress("starting n8n again after the failure");
                match start_n8n(opts, &containers).await {
                    Ok(d) => {
                        report.items.push(item("n8n:start", Outcome::Restored, d));
                        text.push_str(" n8n was started again.");
                    }
                    Err(e) => {
                        report
                            .items
                            .push(item("n8n:start", Outcome::Failed, e.to_string()));
                        text.push_str(&format!(
                            " n8n could NOT be started again ({e}): start it by hand."
                        ));
                    }
                }
            }
            // What changed on the target, exactly (a database whose restore
            // failed before its swap was not changed; n8n stopped and started
            // again is not a change of its data).
            let data_changes: Vec<&String> = report
                .changed
                .iter()
                .filter(|c| !c.starts_with("n8n "))
                .collect();
            if data_changes.is_empty() {
                text.push_str(if report.changed.is_empty() {
                    " Nothing was changed."
                } else {
                    " No database and no config file was changed."
                });
            } else {
                text.push_str(&format!(
                    " Changed before it stopped: {}.",
                    data_changes
                        .iter()
                        .map(|c| c.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                ));
            }
            if let Some(s) = &report.safety_backup {
                let cmd = go_back(s);
                text.push_str(&format!(
                    " The safety backup {s} (pinned) holds the state from before this restore; to go back, run: {cmd}"
                ));
                report.go_back = Some(cmd);
            } else if !data_changes.is_empty() {
                text.push_str(
                    " There is no safety backup: nothing that the restore replaces existed before it.",
                );
            }
            report.result = FullResult::Failed;
            report.failed_stage = Some(stage.into());
            report.unrecorded = recorder
                .failed(
                    store,
                    stage,
                    &text,
                    report.items.clone(),
                    report.safety_backup.clone(),
                )
                .await;
            report.message = Some(text);
        }
    }
    report.duration_ms = recorder.elapsed_ms();
    report
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn run_steps(
    store: &Store,
    backup: &ChosenBackup,
    prepared: &Prepared,
    opts: &FullOptions,
    recorder: &Recorder,
    progress: &(dyn Fn(&str) + Sync),
    cancel: &Cancel,
    report: &mut FullReport,
    stopped: &mut Option<Vec<Container>>,
) -> std::result::Result<(), StepError> {
    let started = Instant::now();
    // Where an interruption is honoured: between steps.
    let stop_point = |stage: &'static str, when: &str| match cancel.interrupted() {
        Some(why) => Err(StepError {
            stage,
            message: format!("{why} {when}"),
        }),
        None => Ok(()),
    };
    // 1. The safety backup, before anything is stopped.
    stop_point("safety_backup", "before the safety backup")?;
    if let Some(kind) = prepared.safety_kind {
        progress(&format!(
            "taking the safety backup ({kind}) of the current state"
        ));
        let sources = Sources {
            n8n_db: prepared.safety_n8n_db.clone(),
            pg_server: prepared.safety_server.clone(),
            dump: opts.dump.clone(),
            config_paths: prepared.safety_config_paths.clone(),
            n8n_api: None,
        };
        let id = crate::restore::take_safety_backup(
            store,
            kind,
            &sources,
            &recorder.restore_id,
            recorder.trigger,
            opts.encryption_key.as_deref().map(|k| k.as_str()),
        )
        .await
        .map_err(step("safety_backup"))?;
        progress(&format!("safety backup {id} taken (pinned)"));
        report.safety_backup = Some(id);
    }
    // 2. Stop n8n.
    stop_point("stop", "before n8n was stopped")?;
    progress(&format!("stopping n8n: {}", prepared.plan.stop.summary));
    if matches!(opts.control, Control::Commands { .. }) {
        // A stop command that fails may have stopped part of n8n: the start
        // command runs after any failure from here on.
        *stopped = Some(vec![]);
    }
    let (containers, detail) = stop_n8n(prepared, opts).await.map_err(step("stop"))?;
    *stopped = Some(containers);
    if !matches!(opts.control, Control::NoStop) {
        report.changed.push("n8n stopped".into());
    }
    report
        .items
        .push(item("n8n:stop", Outcome::Restored, detail));
    stop_point("database", "after n8n was stopped, before the databases")?;
    // 3. Roles the target lacks, then the databases.
    if opts.with_roles && !prepared.databases.is_empty() {
        let server = prepared.databases[0].target.clone();
        progress(&format!(
            "creating the roles {}:{} lacks",
            server.host, server.port
        ));
        let g = database::restore_globals(store, backup, &server, &opts.tool)
            .await
            .map_err(|e| {
                report
                    .items
                    .push(item("roles", Outcome::Failed, e.to_string()));
                StepError {
                    stage: "roles",
                    message: e.to_string(),
                }
            })?;
        if !g.created.is_empty() {
            report
                .changed
                .push(format!("role(s) {} created", g.created.join(", ")));
        }
        report.items.push(item(
            "roles",
            Outcome::Restored,
            format!(
                "created: {}; already there (left as they are): {}",
                if g.created.is_empty() {
                    "none".to_string()
                } else {
                    g.created.join(", ")
                },
                g.existing.len()
            ),
        ));
    }
    for d in &prepared.databases {
        let db_opts = DatabaseOptions {
            no_owner: opts.no_owner,
            target_flag: if d.is_n8n { "--n8n-db" } else { "--pg-server" },
        };
        progress(&format!(
            "restoring database {} into {}",
            d.backup_database,
            d.target.display()
        ));
        let mode = DatabaseMode::Replace;
        let r = database::restore_database(
            store,
            backup,
            &d.backup_database,
            &d.target,
            &opts.tool,
            &mode,
            &db_opts,
            &recorder.restore_id,
            cancel,
        )
        .await
        .map_err(|e| {
            report.items.push(item(
                format!("database:{}", d.backup_database),
                Outcome::Failed,
                e.to_string(),
            ));
            StepError {
                stage: if database::is_count_mismatch(&e) {
                    "verify"
                } else {
                    "database"
                },
                message: format!(
                    "database {} into {}: {e}",
                    d.backup_database,
                    d.target.display()
                ),
            }
        })?;
        report.changed.push(format!(
            "database {} {} with the backup's",
            d.target.display(),
            if r.replaced { "replaced" } else { "created" }
        ));
        for line in &r.cleaned_up {
            progress(&format!("before it: {line}"));
        }
        for n in &r.notes {
            progress(&format!("note: {n}"));
        }
        report.databases.push(DatabaseReport {
            backup_database: r.backup_database.clone(),
            target_database: r.target_database.clone(),
            tables: r.tables.len(),
            mismatches: r.mismatches,
            duration_ms: r.duration_ms,
        });
        if r.mismatches > 0 {
            let detail = format!(
                "{} of {} tables have other row counts than the manifest",
                r.mismatches,
                r.tables.len()
            );
            report.items.push(item(
                format!("database:{}", d.backup_database),
                Outcome::Failed,
                detail.clone(),
            ));
            return Err(StepError {
                stage: "verify",
                message: format!(
                    "database {} restored into {}, but {detail}",
                    d.backup_database,
                    d.target.display()
                ),
            });
        }
        report.items.push(item(
            format!("database:{}", d.backup_database),
            Outcome::Restored,
            format!(
                "into {}: {} tables, row counts equal the manifest",
                d.target.display(),
                r.tables.len()
            ),
        ));
    }
    // 4. Config files.
    if !prepared.plan.config_files.is_empty() {
        stop_point("config", "before the config files were written")?;
        progress(&format!(
            "writing {} config entries under {}",
            prepared.plan.config_files.len(),
            opts.root.display()
        ));
        let items = config::restore_config(
            store,
            backup,
            &ConfigOptions {
                root: opts.root.clone(),
                only: vec![],
                keep_before: opts.keep_before,
            },
            cancel,
        )
        .await
        .map_err(|e| {
            report
                .changed
                .push("config files: some may have been written before the error".into());
            step("config")(e)
        })?;
        let written = items
            .iter()
            .filter(|i| i.outcome == Outcome::Restored.as_str())
            .count();
        if written > 0 {
            report
                .changed
                .push(format!("{written} config entries written"));
        }
        let failed: Vec<String> = items
            .iter()
            .filter(|i| i.outcome == Outcome::Failed.as_str())
            .map(|i| format!("{} ({})", i.name, i.detail))
            .collect();
        report.items.extend(items);
        stop_point("config", "while the config files were written")?;
        if !failed.is_empty() {
            return Err(StepError {
                stage: "config",
                message: format!(
                    "{} config entries were not written: {}",
                    failed.len(),
                    failed.join("; ")
                ),
            });
        }
    }
    // 5. Start n8n.
    let containers = stopped.take().unwrap_or_default();
    progress("starting n8n");
    match start_n8n(opts, &containers).await {
        Ok(d) => {
            if !matches!(opts.control, Control::NoStop) {
                report.changed.push("n8n started again".into());
            }
            report.items.push(item("n8n:start", Outcome::Restored, d))
        }
        Err(e) => {
            report
                .items
                .push(item("n8n:start", Outcome::Failed, e.to_string()));
            return Err(StepError {
                stage: "start",
                message: format!("{e}; start n8n by hand"),
            });
        }
    }
    // 6. Health, then the n8n database's row counts.
    let deadline = Instant::now() + opts.health_timeout;
    let mut health = HealthReport {
        url: prepared.plan.health.url.clone(),
        healthy_after_ms: None,
        tables_checked: 0,
    };
    match &prepared.plan.health.url {
        Some(url) => {
            progress(&format!("waiting for n8n's health endpoint {url}"));
            let waited = tokio::select! {
                r = wait_healthy(url, started, deadline) => r,
                _ = cancel.cancelled() => Err(RestoreError::Interrupted(format!(
                    "{} while waiting for n8n's health endpoint",
                    cancel.interrupted().unwrap_or_default()
                ))),
            };
            let ms = waited.map_err(|e| {
                report
                    .items
                    .push(item("n8n:health", Outcome::Failed, e.to_string()));
                StepError {
                    stage: "health",
                    message: format!(
                        "{e}; the databases and config files were restored: look at n8n's logs"
                    ),
                }
            })?;
            health.healthy_after_ms = Some(ms);
            report.items.push(item(
                "n8n:health",
                Outcome::Restored,
                format!("{url} answered 200"),
            ));
        }
        None => report.items.push(item(
            "n8n:health",
            Outcome::Skipped,
            "no health URL (--health-url, or --n8n-url)",
        )),
    }
    if let Some(d) = prepared.databases.iter().find(|d| d.is_n8n) {
        progress(&format!(
            "checking the row counts of {}",
            d.target.display()
        ));
        loop {
            stop_point(
                "verify",
                "while the row counts were checked with n8n running",
            )?;
            let diff = count_mismatches(&d.target, &d.expected)
                .await
                .map_err(step("verify"))?;
            if diff.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                let detail = format!(
                    "after the start, {} tables of {} differ from the manifest: {}",
                    diff.len(),
                    d.target.display(),
                    diff.iter().take(10).cloned().collect::<Vec<_>>().join(", ")
                );
                report
                    .items
                    .push(item("verify:n8n", Outcome::Failed, detail.clone()));
                return Err(StepError {
                    stage: "verify",
                    message: format!(
                        "{detail} (they were equal right after pg_restore: n8n changed them since it started)"
                    ),
                });
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = cancel.cancelled() => {}
            }
        }
        health.tables_checked = d.expected.len();
        report.items.push(item(
            "verify:n8n",
            Outcome::Restored,
            format!(
                "{} tables of {} hold the manifest's row counts with n8n running",
                d.expected.len(),
                d.target.display()
            ),
        ));
    }
    report.health = Some(health);
    Ok(())
}
