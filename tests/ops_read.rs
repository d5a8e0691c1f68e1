//! The read operations (`list`, `show`, `diff`, `history`, `catalog
//! status`) and the small writers (`init`, `key`, `sandbox list|remove`)
//! driven through the library: their outcomes' JSON (snapshots in
//! tests/snapshots/: the API's contract), reading without the store's key
//! and without the store, and errors with a kind and a hint.
mod common;

use common::ctx::Fixture;
use n8n_ark::ops::read::{PassphraseSource, ReadContext};
use n8n_ark::ops::{self, Collect, ErrorKind, NoReport};
use n8n_ark::store::ingest::BackupSession;
use n8n_ark::store::Store;
use std::sync::Arc;
use store_format::contents::{
    Contents, Credential, CredentialRef, Database, Node, Table, Workflow,
};

/// Ids, times, sizes and the machine differ from run to run: the snapshots
/// keep the shape and what the backups hold.
fn redact(mut v: serde_json::Value) -> serde_json::Value {
    fn walk(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m.iter_mut() {
                    let volatile = k.ends_with("_ms")
                        || k.ends_with("_id")
                        || [
                            "store",
                            "path",
                            "manifest",
                            "host",
                            "id",
                            "key",
                            "added",
                            "removed",
                            "size",
                            "message",
                            "store_location",
                            "last_hash",
                            "kdf",
                        ]
                        .contains(&k.as_str())
                        || k.ends_with("bytes")
                        || k.ends_with("objects")
                        || k == "objects"
                        || k == "last_seq";
                    if k == "backups" && x.is_array() {
                        for b in x.as_array_mut().unwrap() {
                            *b = serde_json::Value::String("[redacted]".into());
                        }
                    } else if volatile && !x.is_null() && !x.is_object() && !x.is_array() {
                        *x = serde_json::Value::String("[redacted]".into());
                    } else {
                        walk(x);
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(walk),
            // Object ids are keyed by the store's key.
            serde_json::Value::String(s)
                if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) =>
            {
                *s = "[object id]".into()
            }
            _ => {}
        }
    }
    walk(&mut v);
    v
}

fn json<T: serde::Serialize>(v: &T) -> serde_json::Value {
    redact(serde_json::to_value(v).unwrap())
}

/// A workflow of `nodes` (name, type), saved on `day`.
fn workflow(
    id: &str,
    name: &str,
    active: bool,
    nodes: &[(&str, &str)],
    day: u32,
) -> (Vec<u8>, Workflow) {
    let json = serde_json::json!({
        "id": id, "name": name, "active": active,
        "nodes": nodes.iter().map(|(n, t)| serde_json::json!({"name": n, "type": t})).collect::<Vec<_>>(),
        "connections": {},
    });
    let w = Workflow {
        id: id.into(),
        name: name.into(),
        active,
        archived: false,
        tags: vec!["sales".into()],
        nodes: nodes
            .iter()
            .map(|(n, t)| Node {
                name: n.to_string(),
                node_type: t.to_string(),
                hash: blake3::hash(format!("{n}{t}{day}").as_bytes()).to_hex()[..32].to_string(),
            })
            .collect(),
        credentials: vec![CredentialRef {
            credential_type: "httpBasicAuth".into(),
            id: Some("cred0001".into()),
            name: Some("Shop API".into()),
        }],
        created_at: Some("2026-10-01T08:00:00.000Z".into()),
        updated_at: Some(format!("2026-11-{day:02}T10:00:00.000Z")),
        version_id: Some(format!("{id}-v{day}")),
        item: format!("workflows/{id}.json"),
        object: store_format::ObjectId::default(),
        size: 0,
    };
    (serde_json::to_vec(&json).unwrap(), w)
}

/// A `flows` backup holding `workflows` and a small n8n database.
async fn take_backup(store: &Store, workflows: Vec<(Vec<u8>, Workflow)>, rows: u64) -> String {
    tokio::time::sleep(std::time::Duration::from_millis(15)).await;
    let mut s = BackupSession::begin(store, "flows").await.unwrap();
    s.add_stream("db/n8n.dump", &b"PGDMP n8n\n"[..])
        .await
        .unwrap();
    let mut ws = Vec::new();
    for (bytes, mut w) in workflows {
        let it = s.add_blob(&w.item.clone(), bytes).await.unwrap().clone();
        w.object = it.chunks[0].id;
        w.size = it.size;
        ws.push(w);
    }
    let contents = Contents {
        databases: vec![Database {
            name: "n8n".into(),
            server_version: "15.8".into(),
            server_version_num: 150008,
            pg_dump_version: "pg_dump (PostgreSQL) 15.8".into(),
            pg_dump_runner: "local:/usr/lib/postgresql/15/bin/pg_dump".into(),
            dump_item: "db/n8n.dump".into(),
            dump_format: "custom".into(),
            snapshot: "00000003-0000001B-1".into(),
            is_n8n: true,
            migration_head: Some("1740445074052".into()),
            tables: vec![Table {
                schema: "public".into(),
                name: "execution_entity".into(),
                rows,
                columns: vec![],
            }],
        }],
        workflows: ws,
        workflow_source: Some("postgres:n8n".into()),
        credentials: vec![Credential {
            id: "cred0001".into(),
            name: "Shop API".into(),
            credential_type: "httpBasicAuth".into(),
            created_at: None,
            updated_at: None,
        }],
        ..Default::default()
    };
    s.commit_with(Default::default(), Some(contents))
        .await
        .unwrap()
        .backup_id
}

fn day1() -> Vec<(Vec<u8>, Workflow)> {
    vec![
        workflow(
            "wfOrders",
            "Order sync",
            true,
            &[
                ("Webhook", "n8n-nodes-base.webhook"),
                ("Fetch", "n8n-nodes-base.httpRequest"),
            ],
            1,
        ),
        workflow(
            "wfReport",
            "Weekly report",
            false,
            &[("Cron", "n8n-nodes-base.cron")],
            1,
        ),
    ]
}

fn day2() -> Vec<(Vec<u8>, Workflow)> {
    vec![
        workflow(
            "wfOrders",
            "Order sync",
            true,
            &[
                ("Webhook", "n8n-nodes-base.webhook"),
                ("Fetch", "n8n-nodes-base.httpRequest"),
                ("Slack", "n8n-nodes-base.slack"),
            ],
            2,
        ),
        workflow(
            "wfInvoice",
            "Invoices",
            true,
            &[("Cron", "n8n-nodes-base.cron")],
            2,
        ),
    ]
}

/// A passphrase source that must not be asked.
fn no_passphrase() -> PassphraseSource {
    Arc::new(|| Err(n8n_ark::crypto::CryptoError::NoPassphrase))
}

/// Reading the fixture's store by its location, without its key.
fn keyless(f: &Fixture, store_dir: &std::path::Path) -> ReadContext {
    let backend =
        n8n_ark::store::backend_for(store_dir.to_str().unwrap(), &Default::default()).unwrap();
    ReadContext::at(
        store_dir.display().to_string(),
        backend,
        no_passphrase(),
        f.dir.path().join("data"),
    )
}

#[tokio::test]
async fn read_outcomes() {
    let f = Fixture::new().await;
    let first = take_backup(&f.ctx.store, day1(), 10).await;
    let second = take_backup(&f.ctx.store, day2(), 25).await;
    let rc = ReadContext::from(&f.ctx);

    let list = ops::list::run(&rc, &Default::default(), &NoReport)
        .await
        .unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].backup_id, first);
    insta::assert_json_snapshot!("list", json(&list));

    let req = ops::show::Request {
        backup: "latest".into(),
        workflow: None,
        active: None,
        tag: None,
    };
    let show = ops::show::run(&rc, &req, &NoReport).await.unwrap();
    assert_eq!(show.backup.backup_id, second);
    insta::assert_json_snapshot!("show", json(&show));
    let only_active = ops::show::Request {
        backup: first.clone(),
        active: Some(false),
        ..req.clone()
    };
    let show = ops::show::run(&rc, &only_active, &NoReport).await.unwrap();
    assert_eq!(show.workflows.len(), 1);
    assert_eq!(show.workflows[0].name, "Weekly report");

    let diff = ops::diff::run(
        &rc,
        &ops::diff::Request {
            from: first.clone(),
            to: "latest".into(),
        },
        &NoReport,
    )
    .await
    .unwrap();
    insta::assert_json_snapshot!("diff", json(&diff));

    let history = ops::history::run(
        &rc,
        &ops::history::Request {
            workflow: "Order".into(),
        },
        &NoReport,
    )
    .await
    .unwrap();
    assert_eq!(history.versions.len(), 2);
    insta::assert_json_snapshot!("history", json(&history));

    let status = ops::catalog::status(&rc, &NoReport).await.unwrap();
    assert_eq!(status.backups, 2);
    insta::assert_json_snapshot!("catalog_status", json(&status));
}

#[tokio::test]
async fn reading_without_the_key_and_without_the_store() {
    let f = Fixture::new().await;
    take_backup(&f.ctx.store, day1(), 10).await;
    let rc = ReadContext::from(&f.ctx);
    let with_key = ops::list::run(&rc, &Default::default(), &NoReport)
        .await
        .unwrap();

    // The catalog holds the whole journal: it answers without the key.
    let r = Collect::new();
    let without = ops::list::run(&keyless(&f, &f.store_dir()), &Default::default(), &r)
        .await
        .unwrap();
    assert_eq!(without, with_key);
    assert_eq!(r.warnings(), Vec::<String>::new());

    // A new record in the journal: the store must be opened, and its
    // passphrase is missing (a setting to set).
    take_backup(&f.ctx.store, day2(), 25).await;
    let e = ops::list::run(&keyless(&f, &f.store_dir()), &Default::default(), &NoReport)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid, "{e:?}");
    assert_eq!(
        e.hint.as_ref().and_then(|h| h.setting.as_deref()),
        Some("ARK_PASSWORD_FILE"),
        "{e:?}"
    );

    // The store out of reach: the local catalog answers as it was, and says so.
    let away = f.dir.path().join("away");
    std::fs::rename(f.store_dir(), &away).unwrap();
    let r = Collect::new();
    let offline = ops::list::run(&keyless(&f, &f.store_dir()), &Default::default(), &r)
        .await
        .unwrap();
    assert_eq!(offline, with_key);
    let w = r.warnings();
    assert!(
        w.len() == 1 && w[0].contains("answering from the local catalog"),
        "{w:?}"
    );
    std::fs::rename(&away, f.store_dir()).unwrap();
}

#[tokio::test]
async fn read_errors_have_kinds() {
    let f = Fixture::new().await;
    take_backup(&f.ctx.store, day1(), 10).await;
    let rc = ReadContext::from(&f.ctx);
    let e = ops::show::run(
        &rc,
        &ops::show::Request {
            backup: "20200101-nothing".into(),
            workflow: None,
            active: None,
            tag: None,
        },
        &NoReport,
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e:?}");
    let e = ops::list::run(
        &rc,
        &ops::list::Request {
            kind: Some("nonsense".into()),
            ..Default::default()
        },
        &NoReport,
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid, "{e:?}");
    assert!(e.message.contains("postgres_full"), "{e}");
    let e = ops::history::run(
        &rc,
        &ops::history::Request {
            workflow: "no such workflow".into(),
        },
        &NoReport,
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e:?}");

    // A cancelled read reads nothing.
    let cancel = n8n_ark::cancel::Cancel::new();
    cancel.cancel("SIGINT");
    let e = ops::list::run(
        &rc.clone().with_cancel(cancel),
        &Default::default(),
        &NoReport,
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Interrupted, "{e:?}");
}

#[tokio::test]
async fn init_and_key_outcomes() {
    common::fast_kdf();
    let dir = tempfile::tempdir().unwrap();
    let location = dir.path().join("store").display().to_string();
    let req = ops::init::Request {
        location: location.clone(),
        chunk_avg_kib: Some(64),
        zstd_level: Some(5),
        passphrase: Some(zeroize::Zeroizing::new(common::PASSPHRASE.to_string()).into()),
        insecure_no_encryption: false,
    };
    let init = ops::init::run(&req, &ops::Environment::empty(), &NoReport)
        .await
        .unwrap();
    assert!(init.key.is_some());
    insta::assert_json_snapshot!("init", json(&init));
    // Twice: the location is a store already.
    let e = ops::init::run(&req, &ops::Environment::empty(), &NoReport)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict, "{e:?}");
    // Without a passphrase, and not asked to go unencrypted.
    let e = ops::init::run(
        &ops::init::Request {
            location: dir.path().join("other").display().to_string(),
            passphrase: None,
            ..req.clone()
        },
        &ops::Environment::empty(),
        &NoReport,
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid, "{e:?}");
    assert!(!dir.path().join("other").exists());

    let store = common::open_store(&dir.path().join("store")).await;
    let ctx = ops::Context::new(store, dir.path().join("data"));
    use ops::key::{Outcome, Request};
    let added = ops::key::run(
        &ctx,
        &Request::Add {
            passphrase: zeroize::Zeroizing::new("another one".to_string()).into(),
        },
        &NoReport,
    )
    .await
    .unwrap();
    insta::assert_json_snapshot!("key_added", json(&added));
    let Outcome::Added { added: id } = added else {
        panic!("{added:?}")
    };
    let mut listed = ops::key::run(&ctx, &Request::List, &NoReport)
        .await
        .unwrap();
    if let Outcome::Listed(keys) = &mut listed {
        // Ids are random: the one in use first.
        keys.sort_by_key(|k| !k.current);
    }
    insta::assert_json_snapshot!("key_list", json(&listed));
    // The key that opened the store is refused; an unknown one is not found.
    let current = init.key.clone().unwrap();
    let e = ops::key::run(&ctx, &Request::Remove { id: current }, &NoReport)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Refused, "{e:?}");
    let e = ops::key::run(&ctx, &Request::Remove { id: "nokey".into() }, &NoReport)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e:?}");
    let removed = ops::key::run(&ctx, &Request::Remove { id }, &NoReport)
        .await
        .unwrap();
    insta::assert_json_snapshot!("key_removed", json(&removed));

    // An unencrypted store has no keys.
    let plain = ops::init::run(
        &ops::init::Request {
            location: dir.path().join("plain").display().to_string(),
            passphrase: None,
            insecure_no_encryption: true,
            ..req.clone()
        },
        &ops::Environment::empty(),
        &NoReport,
    )
    .await
    .unwrap();
    assert_eq!(plain.encryption, "none");
    let store = common::open_store(&dir.path().join("plain")).await;
    let ctx = ops::Context::new(store, dir.path().join("data"));
    let e = ops::key::run(&ctx, &Request::List, &NoReport)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e:?}");
}

#[tokio::test]
async fn removing_a_sandbox_that_is_not_there_is_invalid() {
    let e = ops::sandbox::remove(
        &ops::sandbox::RemoveRequest {
            name: "/nonexistent".into(),
        },
        &NoReport,
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid, "{e:?}");
    assert_eq!(
        e.hint.and_then(|h| h.command).as_deref(),
        Some("n8n-ark sandbox list")
    );
}

#[tokio::test]
async fn a_value_that_does_not_decode_is_damage_and_the_catalog_is_made_again() {
    let f = Fixture::new().await;
    let id = take_backup(&f.ctx.store, day1(), 10).await;
    let rc = ReadContext::from(&f.ctx);
    let req = ops::show::Request {
        backup: id.clone(),
        workflow: None,
        active: None,
        tag: None,
    };
    let before = ops::show::run(&rc, &req, &NoReport).await.unwrap();
    let path = ops::catalog::status(&rc, &NoReport).await.unwrap().path;
    {
        use sqlx::ConnectOptions;
        let mut c = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .connect()
            .await
            .unwrap();
        sqlx::query("UPDATE backup_workflows SET tags = 'not json' WHERE backup_id = ?")
            .bind(&id)
            .execute(&mut c)
            .await
            .unwrap();
        sqlx::query("UPDATE backup_history SET duration_ms = -5 WHERE backup_id = ?")
            .bind(&id)
            .execute(&mut c)
            .await
            .unwrap();
    }
    let r = Collect::new();
    let after = ops::show::run(&rc, &req, &r).await.unwrap();
    assert_eq!(after, before);
    let w = r.warnings();
    assert!(
        w.iter()
            .any(|w| w.contains("moved aside") && w.contains("backup_")),
        "{w:?}"
    );
}
