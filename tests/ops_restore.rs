//! Restores driven through the library (`ops::restore::…`), as the service
//! and the scheduler will drive them: outcomes are serde values whose JSON
//! is the API's contract (snapshots in tests/snapshots/), each restore
//! appends its own event, and errors come back with a kind (and a hint
//! where an operator has something to run), never printed.
mod common;

use common::ctx::Fixture;
use common::pg::PgCluster;
use n8n_ark::backup::{BackupKind, Sources};
use n8n_ark::ops::restore::{config, database, Server};
use n8n_ark::ops::{Collect, ErrorKind, NoReport};
use n8n_ark::restore::database::RestoreTool;
use n8n_ark::source::config_files::ConfigPath;
use n8n_ark::source::postgres::{DumpRunner, PgTarget};
use std::path::Path;
use store_format::Event;

/// Ids, times, sizes, versions and this run's directories differ from run
/// to run: the snapshots keep the shape.
fn redact(v: serde_json::Value, dirs: &[&Path]) -> serde_json::Value {
    fn walk(v: &mut serde_json::Value, dirs: &[String]) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m.iter_mut() {
                    let volatile = k.ends_with("_ms")
                        || k.ends_with("_id")
                        || k == "safety_backup"
                        || k.ends_with("bytes")
                        || k == "pg_restore"
                        || k == "server"
                        || k == "mtime"
                        || k == "backup_finished"
                        // Key fingerprints are keyed by the store.
                        || k == "backup"
                        || k == "target_now"
                        || k == "n8n_after"
                        || k == "database_after";
                    if volatile && !x.is_null() && !x.is_object() && !x.is_array() {
                        *x = serde_json::Value::String("[redacted]".into());
                    } else {
                        walk(x, dirs);
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(|x| walk(x, dirs)),
            serde_json::Value::String(s) => {
                for d in dirs {
                    *s = s.replace(d.as_str(), "[dir]");
                }
            }
            _ => {}
        }
    }
    let dirs: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    let mut v = v;
    walk(&mut v, &dirs);
    v
}

fn json(v: &impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(v).unwrap()
}

async fn events(f: &Fixture) -> Vec<Event> {
    let r = n8n_ark::store::journal::replay(&f.ctx.store).await.unwrap();
    r.records.into_iter().map(|r| r.event).collect()
}

/// The n8n_config backup of a small tree (a `.env`, a compose file and a
/// link), taken through the library.
async fn config_backup(f: &Fixture) -> std::path::PathBuf {
    let src = f.dir.path().join("server");
    let n8n = src.join("opt/n8n");
    std::fs::create_dir_all(&n8n).unwrap();
    std::fs::write(n8n.join(".env"), "N8N_ENCRYPTION_KEY=abc\n").unwrap();
    std::fs::write(
        n8n.join("docker-compose.yaml"),
        "services:\n  n8n:\n    image: n8nio/n8n\n",
    )
    .unwrap();
    std::os::unix::fs::symlink("docker-compose.yaml", n8n.join("compose.link")).unwrap();
    // Modes of their own, whatever the umask.
    use std::os::unix::fs::PermissionsExt;
    for (p, mode) in [
        (n8n.clone(), 0o755),
        (n8n.join(".env"), 0o600),
        (n8n.join("docker-compose.yaml"), 0o644),
    ] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let sources = Sources {
        n8n_db: None,
        pg_server: None,
        dump: DumpRunner::local_default(),
        config_paths: vec![ConfigPath::optional(n8n.display().to_string())],
        n8n_api: None,
    };
    n8n_ark::backup::run(&f.ctx.store, BackupKind::N8nConfig, &sources, &|_| None)
        .await
        .unwrap();
    src
}

#[tokio::test]
async fn config_restore_outcomes_and_events() {
    let f = Fixture::new().await;
    let src = config_backup(&f).await;
    let root = f.dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let req = config::Request {
        backup: "latest".into(),
        root: root.clone(),
        only: vec![],
        keep_before: true,
    };
    let dirs = [root.as_path(), src.as_path()];

    let planned = config::plan(&f.ctx, &req, &NoReport).await.unwrap();
    assert!(!planned.plan.is_empty());
    insta::assert_json_snapshot!("restore_config_plan", redact(json(&planned), &dirs));
    // A plan records nothing.
    assert!(!events(&f)
        .await
        .iter()
        .any(|e| matches!(e, Event::RestorePerformed(_) | Event::RestoreFailed(_))));

    let done = config::run(&f.ctx, &req, &NoReport).await.unwrap();
    assert_eq!(done.failed, 0);
    assert!(done.failures().is_none());
    let env = std::fs::read_to_string(
        root.join(src.strip_prefix("/").unwrap())
            .join("opt/n8n/.env"),
    )
    .unwrap();
    assert_eq!(env, "N8N_ENCRYPTION_KEY=abc\n");
    insta::assert_json_snapshot!("restore_config", redact(json(&done), &dirs));
    let ev = events(&f).await;
    assert!(
        ev.iter().any(|e| matches!(e, Event::RestorePerformed(p)
            if p.restore_id == done.restore_id && p.what == "config" && p.result == "ok")),
        "{ev:?}"
    );
}

#[tokio::test]
async fn config_restore_errors_have_kinds() {
    let f = Fixture::new().await;
    config_backup(&f).await;
    let root = f.dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let req = |backup: &str, root: &Path, only: Vec<std::path::PathBuf>| config::Request {
        backup: backup.into(),
        root: root.to_path_buf(),
        only,
        keep_before: true,
    };
    // A relative root: refused before the store is read.
    let e = config::run(&f.ctx, &req("latest", Path::new("rel"), vec![]), &NoReport)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid, "{e:?}");
    // No such backup.
    let e = config::run(&f.ctx, &req("0123456789abcdef", &root, vec![]), &NoReport)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e:?}");
    // An --only that names nothing the backup recorded.
    let e = config::plan(
        &f.ctx,
        &req("latest", &root, vec!["/nowhere/at/all".into()]),
        &NoReport,
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid, "{e:?}");
    // Cancelled: nothing written, a RestoreFailed event saying why.
    let cancel = n8n_ark::cancel::Cancel::new();
    cancel.cancel("SIGTERM");
    // (as a schedule would run it: the trigger is recorded with the failure)
    let ctx = f
        .ctx
        .clone()
        .with_cancel(cancel)
        .with_trigger(n8n_ark::ops::Trigger::Schedule);
    let r = Collect::new();
    let e = config::run(&ctx, &req("latest", &root, vec![]), &r)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Interrupted, "{e:?}");
    assert!(e.message.contains("interrupted by SIGTERM"), "{e}");
    assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0);
    assert!(events(&f)
        .await
        .iter()
        .any(|e| matches!(e, Event::RestoreFailed(x)
        if x.what == "config" && x.message.contains("interrupted by SIGTERM")
            && x.trigger.as_deref() == Some("schedule"))));
}

fn pg_restore() -> RestoreTool {
    RestoreTool::Local {
        pg_restore: common::pg::bin_dir().join("pg_restore"),
    }
}

fn pg_dump() -> DumpRunner {
    DumpRunner::Local {
        pg_dump: common::pg::bin_dir().join("pg_dump"),
    }
}

fn db_request(to: &PgCluster, password: Option<&str>) -> database::Request {
    database::Request {
        backup: "latest".into(),
        database: "n8n".into(),
        target: Server::new(to.url("postgres"), password.map(String::from)),
        as_name: None,
        replace: false,
        yes: false,
        no_owner: false,
        with_roles: false,
        tool: pg_restore(),
        dump: pg_dump(),
        name_pg_restore: false,
    }
}

#[tokio::test]
async fn database_restore_outcomes_events_and_error_kinds() {
    let f = Fixture::new().await;
    let pg = PgCluster::start();
    pg.load_fixture("n8n");
    let sources = Sources {
        n8n_db: Some(PgTarget::parse(&pg.url("n8n"), None).unwrap()),
        pg_server: None,
        dump: pg_dump(),
        config_paths: vec![],
        n8n_api: None,
    };
    n8n_ark::backup::run(&f.ctx.store, BackupKind::PostgresN8n, &sources, &|_| None)
        .await
        .unwrap();

    // Where to restore must be said; --replace needs --yes (found before
    // the store is read).
    let e = database::run(&f.ctx, &db_request(&pg, None), &NoReport)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid, "{e:?}");
    assert!(e.message.contains("--as n8n_restored_"), "{e}");
    let e = database::Request {
        replace: true,
        ..db_request(&pg, None)
    }
    .check()
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid, "{e:?}");
    // A database the backup does not hold.
    let e = database::run(
        &f.ctx,
        &database::Request {
            database: "nope".into(),
            as_name: Some("x".into()),
            ..db_request(&pg, None)
        },
        &NoReport,
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e:?}");

    // Cancelled before it began: nothing changed, and its failure event
    // says why.
    let cancel = n8n_ark::cancel::Cancel::new();
    cancel.cancel("SIGTERM");
    let e = database::run(
        &f.ctx.clone().with_cancel(cancel),
        &database::Request {
            as_name: Some("n8n_never".into()),
            ..db_request(&pg, None)
        },
        &NoReport,
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Interrupted, "{e:?}");
    assert!(!pg
        .psql("postgres", "SELECT datname FROM pg_database")
        .contains("n8n_never"));
    assert!(events(&f)
        .await
        .iter()
        .any(|e| matches!(e, Event::RestoreFailed(x)
        if x.what == "database" && x.message.contains("interrupted by SIGTERM"))));

    // Beside the original: the outcome, and its event.
    let done = database::run(
        &f.ctx,
        &database::Request {
            as_name: Some("n8n_copy".into()),
            ..db_request(&pg, None)
        },
        &NoReport,
    )
    .await
    .unwrap();
    assert_eq!(done.database.mismatches, 0);
    assert_eq!(pg.table_counts("n8n_copy"), pg.table_counts("n8n"));
    insta::assert_json_snapshot!("restore_database", redact(json(&done), &[]));
    assert!(events(&f)
        .await
        .iter()
        .any(|e| matches!(e, Event::RestorePerformed(p)
        if p.restore_id == done.restore_id && p.what == "database")));

    // Over it: a pinned safety backup first, named in the outcome.
    let done = database::run(
        &f.ctx,
        &database::Request {
            replace: true,
            yes: true,
            ..db_request(&pg, None)
        },
        &NoReport,
    )
    .await
    .unwrap();
    assert!(done.safety_backup.is_some());
    assert!(done.database.replaced);
}

#[tokio::test]
async fn a_refused_login_names_the_target_password_settings() {
    let f = Fixture::new().await;
    let pg = PgCluster::start_with_password("right");
    pg.load_fixture("n8n");
    let sources = Sources {
        n8n_db: Some(PgTarget::parse(&pg.url("n8n"), Some(String::from("right").into())).unwrap()),
        pg_server: None,
        dump: pg_dump(),
        config_paths: vec![],
        n8n_api: None,
    };
    n8n_ark::backup::run(&f.ctx.store, BackupKind::PostgresN8n, &sources, &|_| None)
        .await
        .unwrap();
    let e = database::run(
        &f.ctx,
        &database::Request {
            as_name: Some("n8n_copy".into()),
            ..db_request(&pg, Some("wrong"))
        },
        &NoReport,
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unavailable, "{e:?}");
    assert!(e.message.contains("ARK_TARGET_DB_PASSWORD"), "{e}");
    assert!(!e.message.contains("ARK_N8N_DB_PASSWORD"), "{e}");
    assert!(events(&f)
        .await
        .iter()
        .any(|e| matches!(e, Event::RestoreFailed(x)
        if x.what == "database" && x.stage == "check")));
}

#[tokio::test]
async fn workflow_restore_to_files_outcome_events_and_error_kinds() {
    use n8n_ark::ops::restore::workflow::{self, To};
    use n8n_ark::restore::workflow::Selection;
    let f = Fixture::new().await;
    let pg = PgCluster::start();
    pg.load_fixture("n8n");
    let sources = Sources {
        n8n_db: Some(PgTarget::parse(&pg.url("n8n"), None).unwrap()),
        pg_server: None,
        dump: pg_dump(),
        config_paths: vec![],
        n8n_api: None,
    };
    n8n_ark::backup::run(&f.ctx.store, BackupKind::Flows, &sources, &|_| None)
        .await
        .unwrap();
    let out = f.dir.path().join("out");
    let req = |selection: Selection, to: To| workflow::Request {
        backup: "latest:flows".into(),
        selection,
        to,
        name_template: None,
        credentials_db: None,
    };
    let files = || To::Files { dir: out.clone() };

    // Found before the store is read: nothing selected, no n8n configured.
    let e = req(Selection::default(), files()).check().err().unwrap();
    assert_eq!(e.kind, ErrorKind::Invalid, "{e:?}");
    let all = Selection {
        all: true,
        ..Default::default()
    };
    let e = req(
        all.clone(),
        To::N8n {
            url: None,
            api_key: None,
        },
    )
    .check()
    .err()
    .unwrap();
    assert_eq!(e.kind, ErrorKind::Invalid, "{e:?}");
    assert!(e.message.contains("not configured"), "{e}");

    // A selection the backup has nothing for: refused, and recorded.
    let none = Selection {
        workflows: vec!["no such workflow".into()],
        ..Default::default()
    };
    // (asked through the API: the trigger is recorded with the refusal)
    let api = f.ctx.clone().with_trigger(n8n_ark::ops::Trigger::Api);
    let e = workflow::run(&api, &req(none, files()), &NoReport)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid, "{e:?}");
    assert!(events(&f)
        .await
        .iter()
        .any(|e| matches!(e, Event::RestoreFailed(x)
        if x.what == "workflow" && x.stage == "check" && x.trigger.as_deref() == Some("api"))));

    // Every workflow to files: each one reported as it is written.
    let r = Collect::new();
    let report = workflow::run(&f.ctx, &req(all, files()), &r).await.unwrap();
    assert_eq!(report.summary.failed, 0);
    assert!(report.summary.restored > 0);
    let items = r
        .events()
        .into_iter()
        .filter(|p| matches!(p, n8n_ark::ops::Progress::Item { .. }))
        .count();
    assert_eq!(items, report.workflows.len());
    assert_eq!(
        std::fs::read_dir(&out).unwrap().count(),
        report.summary.restored
    );
    insta::assert_json_snapshot!(
        "restore_workflow_files",
        redact(json(&report), &[out.as_path()])
    );
    assert!(events(&f)
        .await
        .iter()
        .any(|e| matches!(e, Event::RestorePerformed(p)
        if p.restore_id == report.restore_id && p.what == "workflow")));
}

fn full_request(root: &Path) -> n8n_ark::ops::restore::full::Request {
    n8n_ark::ops::restore::full::Request {
        backup: "latest".into(),
        root: root.to_path_buf(),
        confirmed: false,
        force: false,
        n8n_db: None,
        pg_server: None,
        tool: pg_restore(),
        dump: pg_dump(),
        stop: Default::default(),
        n8n_url: None,
        health_url: None,
        health_timeout_secs: None,
        all_databases: false,
        keep_before: false,
        no_owner: false,
        with_roles: false,
        encryption_key: None,
        go_back_args: vec!["--store".into(), "/the/store".into()],
    }
}

/// Cancels its operation when a stage begins with `at`.
struct CancelAt {
    at: &'static str,
    cancel: n8n_ark::cancel::Cancel,
    seen: Collect,
}

impl n8n_ark::ops::Reporter for CancelAt {
    fn report(&self, p: n8n_ark::ops::Progress) {
        if let n8n_ark::ops::Progress::Stage { name } = &p {
            if name.starts_with(self.at) {
                self.cancel.cancel("SIGTERM");
            }
        }
        self.seen.report(p);
    }
}

#[tokio::test]
async fn full_restore_plan_refusals_and_a_cancel_between_stop_and_start() {
    use n8n_ark::ops::restore::full::{self, Stop};
    use n8n_ark::restore::full::FullResult;
    let f = Fixture::new().await;
    let src = config_backup(&f).await;
    let root = f.dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let dirs = [root.as_path(), src.as_path()];

    // The request's own mistakes, before the store is read.
    let e = full::plan(&f.ctx, &full_request(Path::new("rel")), &NoReport)
        .await
        .err()
        .unwrap();
    assert_eq!(e.kind, ErrorKind::Invalid, "{e:?}");
    let mut req = full_request(&root);
    req.stop = Stop {
        stop_command: Some("true".into()),
        ..Default::default()
    };
    let e = full::plan(&f.ctx, &req, &NoReport).await.err().unwrap();
    assert_eq!(e.kind, ErrorKind::Invalid, "{e:?}");
    assert!(e.message.contains("go together"), "{e}");
    req.stop = Default::default();
    req.health_timeout_secs = Some(0);
    let e = full::plan(&f.ctx, &req, &NoReport).await.err().unwrap();
    assert_eq!(e.kind, ErrorKind::Invalid, "{e:?}");

    // A plan: nothing changed, nothing recorded, and not executable
    // unconfirmed.
    let mut req = full_request(&root);
    req.stop.no_stop = true;
    let planned = full::plan(&f.ctx, &req, &NoReport).await.unwrap();
    assert_eq!(planned.report.result, FullResult::Planned);
    assert!(planned.refusal().is_none());
    insta::assert_json_snapshot!("restore_full_plan", redact(json(&planned.report), &dirs));
    let e = full::execute(&f.ctx, planned, &NoReport)
        .await
        .err()
        .unwrap();
    assert_eq!(e.kind, ErrorKind::Invalid, "{e:?}");

    // The key n8n gets from outside its project: the request's, else the
    // context's environment (never the process's).
    req.encryption_key = Some(n8n_ark::ops::restore::Secret::new("abc"));
    let planned = full::plan(&f.ctx, &req, &NoReport).await.unwrap();
    assert_eq!(planned.plan().encryption_key.verdict, "match");
    req.encryption_key = None;
    let ctx = f.with_env(n8n_ark::ops::Environment::empty().with("N8N_ENCRYPTION_KEY", "other"));
    let planned = full::plan(&ctx, &req, &NoReport).await.unwrap();
    assert_eq!(planned.plan().encryption_key.verdict, "mismatch");
    assert_eq!(planned.report.result, FullResult::Refused);
    let e = planned.refusal().unwrap();
    assert_eq!(e.kind, ErrorKind::Refused, "{e:?}");
    assert!(e.message.contains("encryption key mismatch"), "{e}");
    assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0);
    assert!(!events(&f)
        .await
        .iter()
        .any(|e| matches!(e, Event::RestorePerformed(_) | Event::RestoreFailed(_))));

    // Confirmed, and cancelled once n8n is being stopped: n8n is started
    // again, nothing else changes, and the restore fails as interrupted.
    let marks = f.dir.path().join("marks");
    std::fs::create_dir_all(&marks).unwrap();
    let mut req = full_request(&root);
    req.confirmed = true;
    req.stop = Stop {
        stop_command: Some(format!("touch {}/stopped", marks.display())),
        start_command: Some(format!("touch {}/started", marks.display())),
        ..Default::default()
    };
    // Their programs are looked up on the context's PATH, not the process's.
    let planned = full::plan(&f.ctx, &req, &NoReport).await.unwrap();
    assert!(
        planned
            .plan()
            .refusals
            .iter()
            .any(|r| r.contains("not found on the PATH")),
        "{:?}",
        planned.plan().refusals
    );
    let cancel = n8n_ark::cancel::Cancel::new();
    let ctx = f
        .with_env(n8n_ark::ops::Environment::empty().with("PATH", &std::env::var("PATH").unwrap()))
        .with_cancel(cancel.clone());
    let r = CancelAt {
        at: "stopping n8n",
        cancel,
        seen: Collect::new(),
    };
    let planned = full::plan(&ctx, &req, &r).await.unwrap();
    let report = full::execute(&ctx, planned, &r).await.unwrap();
    assert_eq!(report.result, FullResult::Failed);
    assert!(marks.join("stopped").exists() && marks.join("started").exists());
    let e = full::failure(&ctx, &report).unwrap();
    assert_eq!(e.kind, ErrorKind::Interrupted, "{e:?}");
    assert!(e.message.contains("interrupted by SIGTERM"), "{e}");
    assert!(e.message.contains("n8n was started again"), "{e}");
    assert!(e.hint.and_then(|h| h.command).is_some(), "the way back");
    assert!(events(&f)
        .await
        .iter()
        .any(|e| matches!(e, Event::RestoreFailed(x)
        if x.what == "full" && x.stage == "database")));
}
