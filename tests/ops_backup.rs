//! Backup, verify and the verification policy driven through the library, as
//! the service and its scheduler will drive them: a real PostgreSQL, the
//! configuration from the request, the context's environment snapshot and
//! settings (never the process's), outcomes as JSON snapshots, errors by kind.
mod common;

use common::ctx::Fixture;
use common::pg::{bin_dir, PgCluster};
use n8n_ark::backup::BackupKind;
use n8n_ark::config::{PostgresOverrides, SourceOverrides};
use n8n_ark::ops::{self, Collect, Context, Environment, ErrorKind, NoReport, Progress};
use n8n_ark::settings::Settings;
use n8n_ark::verify::Level;
use std::sync::Arc;

/// Ids, times, sizes and counts that depend on chunking differ from run to
/// run: the snapshots keep the shape and what is decided.
fn redact(mut v: serde_json::Value) -> serde_json::Value {
    const VOLATILE: [&str; 12] = [
        "manifest",
        "chunks",
        "journal_seq",
        "seq",
        "checks_run",
        "reason",
        "next",
        "set_by",
        "store",
        "path",
        "message",
        "objects",
    ];
    fn walk(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m.iter_mut() {
                    let volatile = k.ends_with("_ms")
                        || k.ends_with("_id")
                        || k.ends_with("bytes")
                        || k.ends_with("_objects")
                        || VOLATILE.contains(&k.as_str());
                    if volatile && !x.is_null() && !x.is_object() && !x.is_array() {
                        *x = serde_json::Value::String("[redacted]".into());
                    } else {
                        walk(x);
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut v);
    v
}

fn json<T: serde::Serialize>(v: &T) -> serde_json::Value {
    redact(serde_json::to_value(v).unwrap())
}

fn pg_dump() -> std::path::PathBuf {
    bin_dir().join("pg_dump")
}

/// A `postgres_n8n` backup of `url`, no config files.
fn n8n_backup(url: &str) -> ops::backup::Request {
    ops::backup::Request {
        kind: BackupKind::PostgresN8n,
        sources: SourceOverrides {
            postgres: PostgresOverrides {
                n8n_db: Some(url.into()),
                pg_dump: Some(pg_dump()),
                ..Default::default()
            },
            no_default_config_paths: true,
            ..Default::default()
        },
        no_verify: false,
        sandbox: Default::default(),
    }
}

fn stages(c: &Collect) -> Vec<String> {
    c.events()
        .into_iter()
        .filter_map(|p| match p {
            Progress::Stage { name } => Some(name),
            _ => None,
        })
        .collect()
}

fn partials(c: &Collect) -> Vec<String> {
    c.events()
        .into_iter()
        .filter_map(|p| match p {
            Progress::Partial { name, .. } => Some(name),
            _ => None,
        })
        .collect()
}

/// The types of the journal's events after the store's creation, in order.
async fn events(ctx: &Context) -> Vec<String> {
    let replay = n8n_ark::store::journal::replay(&ctx.store).await.unwrap();
    replay
        .records
        .iter()
        .map(|r| r.event.kind_version().0.to_string())
        .filter(|k| k != "StoreInitialized")
        .collect()
}

#[tokio::test]
async fn a_backup_runs_the_policy_and_verify_and_the_policy_answer_with_outcomes() {
    let pg = PgCluster::start();
    pg.load_fixture("n8n");
    let f = Fixture::new().await;
    let ctx = f.with_env(Environment::empty().with("ARK_VERIFY_SEED", "fixed"));

    // The backup, then the default policy's data verification after it.
    let r = Collect::new();
    let backup = ops::backup::run(&ctx, &n8n_backup(&pg.url("n8n")), &r)
        .await
        .unwrap();
    let runs = backup.verifications.as_ref().unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert!(!runs[0].failed(), "{runs:?}");
    assert!(backup.verification_failure().is_none());
    insta::assert_json_snapshot!("backup", json(&backup));
    // Its summary is reported before the verification begins and ends; the
    // stages say where it was.
    assert_eq!(
        partials(&r),
        ["backup", "verification_due", "verification"],
        "{:?}",
        r.events()
    );
    let st = stages(&r);
    assert!(st.contains(&"backup".to_string()), "{st:?}");
    assert!(st.contains(&"objects read".to_string()), "{st:?}");
    assert!(r.warnings().is_empty(), "{:?}", r.warnings());

    // verify: one backup.
    let req = ops::verify::Request {
        backup: "latest".into(),
        level: Level::Data,
        sandbox: Default::default(),
    };
    let r = Collect::new();
    let verified = ops::verify::run(&ctx, &req, &r).await.unwrap();
    assert_eq!((verified.backups, verified.passed), (1, 1));
    assert!(verified.failure().is_none());
    insta::assert_json_snapshot!("verify_one", json(&verified));
    assert_eq!(partials(&r), ["verified"]);
    assert!(stages(&r).contains(&"objects read".to_string()));

    // The policy: set, shown, and what is due by time.
    let set = ops::policy::set(
        &ctx,
        &ops::policy::SetRequest {
            rules: vec!["data:after_backup".into(), "exists:daily".into()],
            defaults: false,
            set_by: "test@here".into(),
        },
        &NoReport,
    )
    .await
    .unwrap();
    insta::assert_json_snapshot!("policy_set", json(&set));
    let shown = ops::policy::show(&ctx, &NoReport).await.unwrap();
    assert_eq!(shown.completed_backups, 1);
    insta::assert_json_snapshot!("policy_show", json(&shown));
    let due = ops::policy::run_due(&ctx, &Default::default(), &NoReport)
        .await
        .unwrap();
    assert_eq!(due.due.len(), 1, "{due:?}");
    assert!(due.failure().is_none(), "{due:?}");
    insta::assert_json_snapshot!("policy_due", json(&due));
    // Nothing is due once it ran.
    let again = ops::policy::run_due(&ctx, &Default::default(), &NoReport)
        .await
        .unwrap();
    assert!(again.due.is_empty() && !again.no_backup, "{again:?}");

    // Every event was recorded by the operations themselves.
    assert_eq!(
        events(&ctx).await,
        [
            "BackupStarted",
            "BackupCompleted",
            "VerificationCompleted",
            "VerificationCompleted",
            "VerificationPolicySet",
            "VerificationCompleted",
        ]
    );

    // verify all, and a backup with `no_verify`.
    let mut req = n8n_backup(&pg.url("n8n"));
    req.no_verify = true;
    let second = ops::backup::run(&ctx, &req, &NoReport).await.unwrap();
    assert!(second.verifications.is_none());
    assert!(json(&second).get("verifications").is_none());
    let all = ops::verify::run(
        &ctx,
        &ops::verify::Request {
            backup: "all".into(),
            level: Level::Data,
            sandbox: Default::default(),
        },
        &NoReport,
    )
    .await
    .unwrap();
    assert_eq!(
        (all.backups, all.passed, all.failed, all.errors),
        (2, 2, 0, 0)
    );
    insta::assert_json_snapshot!("verify_all", json(&all));

    // The verifications recorded: the five above, and one backup's alone.
    let rc = ops::read::ReadContext::from(&ctx);
    let every = ops::verify::history(&rc, &Default::default(), &NoReport)
        .await
        .unwrap();
    assert_eq!(every.len(), 5, "{every:?}");
    let of_second = ops::verify::history(
        &rc,
        &ops::verify::HistoryRequest {
            backup: Some(second.summary.backup_id.clone()),
        },
        &NoReport,
    )
    .await
    .unwrap();
    assert_eq!(of_second.len(), 1, "{of_second:?}");
    assert!(of_second
        .iter()
        .all(|v| v.backup_id == second.summary.backup_id && v.level == "data"));
    let e = ops::verify::history(
        &rc,
        &ops::verify::HistoryRequest {
            backup: Some("no-such-backup".into()),
        },
        &NoReport,
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e:?}");
}

#[tokio::test]
async fn sources_come_from_the_context_s_environment_and_settings() {
    let pg = PgCluster::start();
    pg.load_fixture("n8n");
    let f = Fixture::new().await;
    let no_verify = |kind| ops::backup::Request {
        kind,
        sources: SourceOverrides {
            no_default_config_paths: true,
            ..Default::default()
        },
        no_verify: true,
        sandbox: Default::default(),
    };
    // The environment snapshot names the database and pg_dump.
    let env = Environment::empty()
        .with("ARK_N8N_DB", &pg.url("n8n"))
        .with("ARK_PG_DUMP", pg_dump().to_str().unwrap());
    let o = ops::backup::run(
        &f.with_env(env),
        &no_verify(BackupKind::PostgresN8n),
        &NoReport,
    )
    .await
    .unwrap();
    assert_eq!(o.summary.counts.databases, 1);

    // The settings name them, and a required config path.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("compose.yml"), "services: {}\n").unwrap();
    let settings = Settings::parse(&format!(
        "[n8n]\ndatabase = '{}'\n[postgres]\npg_dump = '{}'\n[config_files]\ndefaults = false\npaths = ['{}']\n",
        pg.url("n8n"),
        pg_dump().display(),
        dir.path().join("compose.yml").display()
    ))
    .unwrap();
    let ctx = f.ctx.clone().with_settings(Arc::new(settings));
    let o = ops::backup::run(&ctx, &no_verify(BackupKind::FullSystem), &NoReport)
        .await
        .unwrap();
    assert_eq!(o.summary.counts.config_files, 1, "{:?}", o.summary.counts);
    assert!(o.summary.counts.databases >= 1, "{:?}", o.summary.counts);

    // The process's environment is not read: without the snapshot's
    // variables a postgres_n8n backup has no database.
    std::env::set_var("ARK_N8N_DB", pg.url("n8n"));
    let e = ops::backup::run(&f.ctx, &no_verify(BackupKind::PostgresN8n), &NoReport)
        .await
        .unwrap_err();
    std::env::remove_var("ARK_N8N_DB");
    assert_ne!(e.kind, ErrorKind::Internal, "{e:?}");
    assert!(e.message.contains("n8n"), "{e}");
}

#[tokio::test]
async fn every_stage_fails_with_a_kind_and_records_what_it_should() {
    let f = Fixture::new().await;

    // A request the configuration refuses: invalid, and recorded as a
    // backup that failed at stage `configuration`.
    let mut req = n8n_backup("postgres://postgres@127.0.0.1:1/n8n");
    req.sources.config_paths = vec!["relative/path".into()];
    let e = ops::backup::run(&f.ctx, &req, &NoReport).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid, "{e:?}");
    assert!(e.message.contains("is not absolute"), "{e}");
    assert!(e.message.contains("recorded in the store's journal"), "{e}");
    assert_eq!(
        events(&f.ctx).await,
        ["BackupStarted", "BackupFailed"],
        "refused for its settings, recorded"
    );

    // A password in a request's URL that the environment does not hold.
    let req = n8n_backup("postgres://postgres:secret@127.0.0.1:1/n8n");
    let e = ops::backup::run(&f.ctx, &req, &NoReport).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid, "{e:?}");
    assert!(e.message.contains("process list"), "{e}");

    // A server that does not answer: unavailable, retryable; run as a
    // schedule runs it, its start and failure say so.
    let port = common::pg::free_port();
    let req = n8n_backup(&format!("postgres://postgres@127.0.0.1:{port}/n8n"));
    let scheduled = f.ctx.clone().with_trigger(ops::Trigger::Schedule);
    let e = ops::backup::run(&scheduled, &req, &NoReport)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unavailable, "{e:?}");
    assert!(e.message.contains("at connect"), "{e}");
    let replay = n8n_ark::store::journal::replay(&f.ctx.store).await.unwrap();
    let (started, failed) = match &replay.records[replay.records.len() - 2..] {
        [a, b] => match (&a.event, &b.event) {
            (store_format::Event::BackupStarted(s), store_format::Event::BackupFailed(x)) => {
                (s.clone(), x.clone())
            }
            other => panic!("{other:?}"),
        },
        _ => unreachable!(),
    };
    assert_eq!(started.trigger.as_deref(), Some("schedule"));
    assert_eq!(failed.trigger.as_deref(), Some("schedule"));
    assert_eq!(failed.retryable, Some(e.retryable), "{failed:?}");
    assert_eq!(failed.stage, "connect");

    // Cancelled: interrupted, recorded, no lock left.
    let cancel = n8n_ark::cancel::Cancel::new();
    cancel.cancel("SIGTERM");
    let ctx = f.ctx.clone().with_cancel(cancel);
    let e = ops::backup::run(&ctx, &req, &NoReport).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Interrupted, "{e:?}");
    assert!(e.message.contains("SIGTERM"), "{e}");
    let locks = f.store_dir().join("locks");
    let left: Vec<_> = std::fs::read_dir(&locks)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");

    // Nothing to verify; a backup that does not exist.
    let verify = |backup: &str| ops::verify::Request {
        backup: backup.into(),
        level: Level::Data,
        sandbox: Default::default(),
    };
    let e = ops::verify::run(&f.ctx, &verify("all"), &NoReport)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e:?}");
    assert_eq!(
        e.hint.as_ref().and_then(|h| h.command.as_deref()),
        Some("n8n-ark backup")
    );
    let e = ops::verify::run(&f.ctx, &verify("0123456789abcdef"), &NoReport)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e:?}");

    // A sandbox setting that is wrong, from the environment snapshot.
    let ctx = f.with_env(Environment::empty().with("ARK_SANDBOX", "vm"));
    let e = ops::verify::run(&ctx, &verify("latest"), &NoReport)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid, "{e:?}");
    assert_eq!(
        e.hint.as_ref().and_then(|h| h.setting.as_deref()),
        Some("ARK_SANDBOX")
    );

    // A policy rule that is wrong: nothing is written.
    let before = events(&f.ctx).await;
    let e = ops::policy::set(
        &f.ctx,
        &ops::policy::SetRequest {
            rules: vec!["data:hourly".into()],
            ..Default::default()
        },
        &NoReport,
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid, "{e:?}");
    assert_eq!(events(&f.ctx).await, before);

    // Nothing is due on a store without a completed backup.
    let due = ops::policy::run_due(&f.ctx, &Default::default(), &NoReport)
        .await
        .unwrap();
    assert!(due.due.is_empty() && due.no_backup, "{due:?}");
}

/// Cancels its operation once the backup began (its first stage).
struct CancelAtBackup(n8n_ark::cancel::Cancel);

impl ops::Reporter for CancelAtBackup {
    fn report(&self, p: Progress) {
        if matches!(&p, Progress::Stage { name } if name == "backup") {
            self.0.cancel("SIGTERM");
        }
    }
}

#[tokio::test]
async fn a_backup_cancelled_midway_beside_a_restore_verification_and_a_workflow_restore_in_one_process(
) {
    let pg = PgCluster::start();
    pg.load_fixture("n8n");
    let f = Fixture::new().await;
    let mut first = n8n_backup(&pg.url("n8n"));
    first.no_verify = true;
    ops::backup::run(&f.ctx, &first, &NoReport).await.unwrap();

    // Both at once in this process: a backup (cancelled once it began) and
    // a restore-level verification of the first backup in a local sandbox.
    let cancel = n8n_ark::cancel::Cancel::new();
    let backup_ctx = f.ctx.clone().with_cancel(cancel.clone());
    let cancelling = CancelAtBackup(cancel);
    let verify = ops::verify::Request {
        backup: "latest".into(),
        level: Level::Restore,
        sandbox: n8n_ark::sandbox::SandboxOptions {
            sandbox: Some(n8n_ark::sandbox::SandboxKind::Local),
            ..Default::default()
        },
    };
    let verifying = Collect::new();
    // And a restore of every workflow of the first backup to files.
    let out = f.dir.path().join("restored-workflows");
    let restore = ops::restore::workflow::Request {
        backup: "latest".into(),
        selection: ops::restore::workflow::Selection {
            all: true,
            ..Default::default()
        },
        to: ops::restore::workflow::To::Files { dir: out.clone() },
        name_template: None,
        credentials_db: None,
    };
    let (backed_up, verified, restored) = tokio::join!(
        ops::backup::run(&backup_ctx, &first, &cancelling),
        ops::verify::run(&f.ctx, &verify, &verifying),
        ops::restore::workflow::run(&f.ctx, &restore, &NoReport),
    );
    let restored = restored.unwrap();
    assert_eq!(restored.summary.failed, 0, "{restored:?}");
    assert!(restored.summary.restored > 0, "{restored:?}");
    assert_eq!(
        std::fs::read_dir(&out).unwrap().count(),
        restored.summary.restored
    );
    let e = backed_up.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Interrupted, "{e:?}");
    assert!(e.message.contains("interrupted by SIGTERM"), "{e}");
    let verified = verified.unwrap();
    assert_eq!(verified.passed, 1, "{verified:?}");
    assert!(verified.failure().is_none());
    let st = stages(&verifying);
    for s in ["sandbox", "load n8n", "compare n8n", "teardown"] {
        assert!(st.contains(&s.to_string()), "{s} not in {st:?}");
    }

    // The cancelled backup ends with its failure, saying so; the other's
    // events are whole; no lock and no sandbox of this process is left; the
    // store reads back whole.
    let replay = n8n_ark::store::journal::replay(&f.ctx.store).await.unwrap();
    let failed = replay
        .records
        .iter()
        .find_map(|r| match &r.event {
            store_format::Event::BackupFailed(b) => Some(b.clone()),
            _ => None,
        })
        .expect("the cancelled backup is recorded");
    assert_eq!(failed.stage, "interrupted");
    assert!(failed.message.contains("SIGTERM"), "{}", failed.message);
    let ev = events(&f.ctx).await;
    assert_eq!(
        ev.iter().filter(|e| *e == "VerificationCompleted").count(),
        1,
        "{ev:?}"
    );
    assert_eq!(
        ev.iter().filter(|e| *e == "RestorePerformed").count(),
        1,
        "{ev:?}"
    );
    let locks: Vec<_> = std::fs::read_dir(f.store_dir().join("locks"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(locks.is_empty(), "{locks:?}");
    let mine: Vec<_> = n8n_ark::sandbox::list()
        .await
        .unwrap()
        .into_iter()
        .filter(|s| s.owner_pid == std::process::id())
        .collect();
    assert!(mine.is_empty(), "{mine:?}");
    let check = ops::check::run(&f.ctx, &ops::check::Request { read_data: true }, &NoReport)
        .await
        .unwrap();
    assert!(check.ok(), "{check:?}");
}
