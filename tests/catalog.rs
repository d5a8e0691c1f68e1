//! The catalog: a projection of the store's journal that answers `list`,
//! `show`, `diff` and `history` without loading backups, catches up
//! incrementally, rebuilds to the same answers, and keeps answering when the
//! store's objects cannot be read.
mod common;

use common::*;
use n8n_ark::catalog::{BackupFilter, BackupStatus, Catalog, CatalogError, WorkflowFilter};
use n8n_ark::store::ingest::{BackupSession, BackupSummary};
use n8n_ark::store::{journal, Store};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use store_format::contents::{
    Column, ConfigFile, Contents, Credential, CredentialRef, Database, FileType, Node, Table,
    Workflow,
};
use store_format::event::{BackupFailed, BackupStarted};
use store_format::{Event, ObjectId};

// ---------------------------------------------------------------------------
// n8n-shaped backups

#[derive(Clone)]
struct Wf {
    id: &'static str,
    name: String,
    active: bool,
    archived: bool,
    tags: Vec<&'static str>,
    /// (name, type, parameters)
    nodes: Vec<(&'static str, &'static str, Value)>,
    creds: Vec<(&'static str, &'static str, &'static str)>,
    /// Day of the month of its last save.
    day: u32,
}

fn wf(
    id: &'static str,
    name: &str,
    active: bool,
    nodes: Vec<(&'static str, &'static str, Value)>,
) -> Wf {
    Wf {
        id,
        name: name.to_string(),
        active,
        archived: false,
        tags: vec![],
        nodes,
        creds: vec![],
        day: 1,
    }
}

fn node_json(name: &str, node_type: &str, params: &Value) -> Value {
    serde_json::json!({
        "name": name,
        "type": node_type,
        "typeVersion": 1,
        "position": [240, 300],
        "parameters": params,
    })
}

fn node_hash(v: &Value) -> String {
    let h = blake3::hash(serde_json::to_string(v).unwrap().as_bytes());
    hex::encode(&h.as_bytes()[..16])
}

/// The workflow's JSON as n8n exports it (keys sorted by serde_json's map).
fn workflow_json(w: &Wf) -> Vec<u8> {
    let nodes: Vec<Value> = w.nodes.iter().map(|(n, t, p)| node_json(n, t, p)).collect();
    let mut connections = serde_json::Map::new();
    for pair in w.nodes.windows(2) {
        connections.insert(
            pair[0].0.to_string(),
            serde_json::json!({"main": [[{"node": pair[1].0, "type": "main", "index": 0}]]}),
        );
    }
    serde_json::to_vec(&serde_json::json!({
        "id": w.id,
        "name": w.name,
        "active": w.active,
        "isArchived": w.archived,
        "nodes": nodes,
        "connections": connections,
        "settings": {"executionOrder": "v1"},
        "tags": w.tags,
        "versionId": format!("{}-v{}", w.id, w.day),
        "createdAt": "2026-10-01T08:00:00.000Z",
        "updatedAt": format!("2026-11-{:02}T10:00:00.000Z", w.day),
    }))
    .unwrap()
}

struct Cfg {
    path: &'static str,
    file_type: FileType,
    content: &'static [u8],
    mode: u32,
    uid: u32,
    link_target: Option<&'static str>,
}

fn file(path: &'static str, content: &'static [u8], mode: u32) -> Cfg {
    Cfg {
        path,
        file_type: FileType::File,
        content,
        mode,
        uid: 0,
        link_target: None,
    }
}

fn link(path: &'static str, target: &'static str) -> Cfg {
    Cfg {
        path,
        file_type: FileType::Symlink,
        content: b"",
        mode: 0o777,
        uid: 0,
        link_target: Some(target),
    }
}

fn missing(path: &'static str) -> Cfg {
    Cfg {
        path,
        file_type: FileType::Missing,
        content: b"",
        mode: 0,
        uid: 0,
        link_target: None,
    }
}

struct Spec {
    kind: &'static str,
    workflows: Vec<Wf>,
    /// (id, name, type)
    credentials: Vec<(&'static str, &'static str, &'static str)>,
    /// (schema, table, rows)
    tables: Vec<(&'static str, &'static str, u64)>,
    migration_head: &'static str,
    configs: Vec<Cfg>,
}

fn columns(table: &str) -> Vec<Column> {
    let mut cols = vec![Column {
        name: "id".into(),
        data_type: "character varying(36)".into(),
        nullable: false,
    }];
    if table == "execution_entity" {
        cols.push(Column {
            name: "workflowId".into(),
            data_type: "character varying(36)".into(),
            nullable: true,
        });
        cols.push(Column {
            name: "status".into(),
            data_type: "character varying".into(),
            nullable: false,
        });
    } else {
        cols.push(Column {
            name: "name".into(),
            data_type: "character varying(128)".into(),
            nullable: false,
        });
    }
    cols
}

async fn take_backup(store: &Store, spec: &Spec) -> BackupSummary {
    take_labelled_backup(store, spec, &[]).await
}

/// [`take_backup`] with labels in its manifest.
async fn take_labelled_backup(
    store: &Store,
    spec: &Spec,
    labels: &[(&str, &str)],
) -> BackupSummary {
    // Backups ordered by start time: keep them apart by a few milliseconds.
    tokio::time::sleep(std::time::Duration::from_millis(15)).await;
    let mut s = BackupSession::begin(store, spec.kind).await.unwrap();
    let mut dump = b"PGDMP custom-format n8n dump\n".to_vec();
    for (schema, table, rows) in &spec.tables {
        dump.extend_from_slice(format!("COPY {schema}.{table} {rows}\n").as_bytes());
    }
    s.add_stream("db/n8n.dump", &dump[..]).await.unwrap();
    let mut workflows = Vec::new();
    for w in &spec.workflows {
        let item = format!("workflows/{}.json", w.id);
        let it = s.add_blob(&item, workflow_json(w)).await.unwrap().clone();
        workflows.push(Workflow {
            id: w.id.into(),
            name: w.name.clone(),
            active: w.active,
            archived: w.archived,
            tags: w.tags.iter().map(|t| t.to_string()).collect(),
            nodes: w
                .nodes
                .iter()
                .map(|(n, t, p)| Node {
                    name: n.to_string(),
                    node_type: t.to_string(),
                    hash: node_hash(&node_json(n, t, p)),
                })
                .collect(),
            credentials: w
                .creds
                .iter()
                .map(|(t, id, name)| CredentialRef {
                    credential_type: t.to_string(),
                    id: Some(id.to_string()),
                    name: Some(name.to_string()),
                })
                .collect(),
            created_at: Some("2026-10-01T08:00:00.000Z".into()),
            updated_at: Some(format!("2026-11-{:02}T10:00:00.000Z", w.day)),
            version_id: Some(format!("{}-v{}", w.id, w.day)),
            item,
            object: it.chunks[0].id,
            size: it.size,
        });
    }
    let mut config_files = Vec::new();
    for c in &spec.configs {
        let item = if c.file_type == FileType::File {
            let name = format!("config{}", c.path);
            s.add_blob(&name, c.content.to_vec()).await.unwrap();
            Some(name)
        } else {
            None
        };
        config_files.push(ConfigFile {
            path: c.path.into(),
            file_type: c.file_type,
            required: c.file_type != FileType::Missing,
            mode: c.mode,
            uid: c.uid,
            gid: c.uid,
            mtime_ms: 1_790_000_000_000,
            size: c.content.len() as u64,
            checksum: (c.file_type == FileType::File)
                .then(|| blake3::hash(c.content).to_hex().to_string()),
            link_target: c.link_target.map(String::from),
            item,
            ..Default::default()
        });
    }
    let contents = Contents {
        databases: vec![Database {
            name: "n8n".into(),
            server_version: "15.8 (Debian 15.8-1.pgdg120+1)".into(),
            server_version_num: 150008,
            pg_dump_version: "pg_dump (PostgreSQL) 15.8".into(),
            pg_dump_runner: "local:/usr/lib/postgresql/15/bin/pg_dump".into(),
            dump_item: "db/n8n.dump".into(),
            dump_format: "custom".into(),
            snapshot: "00000003-0000001B-1".into(),
            is_n8n: true,
            migration_head: Some(spec.migration_head.into()),
            tables: spec
                .tables
                .iter()
                .map(|(schema, name, rows)| Table {
                    schema: schema.to_string(),
                    name: name.to_string(),
                    rows: *rows,
                    columns: columns(name),
                })
                .collect(),
        }],
        globals_item: None,
        workflows,
        workflow_source: Some("postgres:n8n".into()),
        credentials: spec
            .credentials
            .iter()
            .map(|(id, name, t)| Credential {
                id: id.to_string(),
                name: name.to_string(),
                credential_type: t.to_string(),
                created_at: Some("2026-10-01T08:00:00.000Z".into()),
                updated_at: Some("2026-10-01T08:00:00.000Z".into()),
            })
            .collect(),
        config_files,
        encryption_key_fingerprint: Some("5f1c0ffee0ddba11".into()),
        encryption_key_source: Some("/opt/n8n/.env".into()),
        ..Default::default()
    };
    let labels = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    s.commit_with(labels, Some(contents)).await.unwrap()
}

fn http(url: &str) -> (&'static str, &'static str, Value) {
    (
        "Fetch orders",
        "n8n-nodes-base.httpRequest",
        serde_json::json!({"url": url, "method": "GET"}),
    )
}

fn day1() -> Spec {
    let mut orders = wf(
        "wfOrderSync0001",
        "Order sync",
        true,
        vec![
            (
                "Webhook",
                "n8n-nodes-base.webhook",
                serde_json::json!({"path": "orders"}),
            ),
            (
                "Set fields",
                "n8n-nodes-base.set",
                serde_json::json!({"values": {"string": []}}),
            ),
            http("https://shop.example.com/api/orders"),
        ],
    );
    orders.tags = vec!["prod", "shop"];
    orders.creds = vec![("httpHeaderAuth", "cred0000000001", "Shop API")];
    let mut slack = wf(
        "wfSlackAlert002",
        "Slack alerts",
        false,
        vec![
            (
                "Schedule",
                "n8n-nodes-base.scheduleTrigger",
                serde_json::json!({"rule": {"interval": [{"field": "hours"}]}}),
            ),
            (
                "Slack",
                "n8n-nodes-base.slack",
                serde_json::json!({"channel": "#ops"}),
            ),
        ],
    );
    slack.tags = vec!["ops"];
    Spec {
        kind: "postgres_n8n",
        workflows: vec![
            orders,
            slack,
            wf(
                "wfOldCleanup003",
                "Old cleanup",
                false,
                vec![("Cron", "n8n-nodes-base.cron", serde_json::json!({}))],
            ),
            wf(
                "wfNightlyRep004",
                "Nightly report",
                false,
                vec![(
                    "Cron",
                    "n8n-nodes-base.cron",
                    serde_json::json!({"hour": 2}),
                )],
            ),
            wf(
                "wfErrorHandl005",
                "Error handler",
                true,
                vec![(
                    "Error Trigger",
                    "n8n-nodes-base.errorTrigger",
                    serde_json::json!({}),
                )],
            ),
        ],
        credentials: vec![
            ("cred0000000001", "Shop API", "httpHeaderAuth"),
            ("cred0000000002", "Old SMTP", "smtp"),
        ],
        tables: vec![
            ("public", "credentials_entity", 2),
            ("public", "execution_entity", 1200),
            ("public", "workflow_entity", 5),
        ],
        migration_head: "AddWorkflowArchivedColumn1745934666076",
        configs: vec![
            file(
                "/opt/n8n/.env",
                b"N8N_HOST=n8n.example.com\nN8N_ENCRYPTION_KEY=secret1\n",
                0o600,
            ),
            file(
                "/opt/n8n/docker-compose.yaml",
                b"services:\n  n8n:\n    image: n8nio/n8n:1.90.0\n",
                0o644,
            ),
            file(
                "/etc/nginx/nginx.conf",
                b"server { listen 443 ssl; }\n",
                0o644,
            ),
            link(
                "/etc/letsencrypt/live/n8n.example.com/fullchain.pem",
                "../../archive/n8n.example.com/fullchain1.pem",
            ),
            missing("/opt/n8n/extra.conf"),
        ],
    }
}

fn day2() -> Spec {
    let mut s = day1();
    // Order sync: the HTTP node now calls v2, "Set fields" is gone, a Slack node is new.
    let orders = &mut s.workflows[0];
    orders.nodes = vec![
        (
            "Webhook",
            "n8n-nodes-base.webhook",
            serde_json::json!({"path": "orders"}),
        ),
        http("https://shop.example.com/api/v2/orders"),
        (
            "Notify",
            "n8n-nodes-base.slack",
            serde_json::json!({"channel": "#orders"}),
        ),
    ];
    orders.day = 2;
    // Slack alerts: renamed only.
    s.workflows[1].name = "Slack notifications".into();
    s.workflows[1].day = 2;
    // Nightly report: activated only.
    s.workflows[3].active = true;
    s.workflows[3].day = 2;
    // Old cleanup: deleted; Invoice import: new.
    s.workflows.remove(2);
    s.workflows.push(wf(
        "wfInvoiceImp006",
        "Invoice import",
        true,
        vec![(
            "IMAP",
            "n8n-nodes-base.emailReadImap",
            serde_json::json!({"mailbox": "INBOX"}),
        )],
    ));
    s.credentials = vec![
        ("cred0000000001", "Shop API", "httpHeaderAuth"),
        ("cred0000000003", "Mailbox", "imap"),
    ];
    s.tables = vec![
        ("public", "credentials_entity", 2),
        ("public", "execution_entity", 1350),
        ("public", "test_run", 4),
        ("public", "workflow_entity", 5),
    ];
    s.migration_head = "CreateTestRun1746000000000";
    s.configs = vec![
        file(
            "/opt/n8n/.env",
            b"N8N_HOST=n8n.example.com\nN8N_ENCRYPTION_KEY=secret1\nN8N_METRICS=true\n",
            0o600,
        ),
        file(
            "/opt/n8n/docker-compose.yaml",
            b"services:\n  n8n:\n    image: n8nio/n8n:1.90.0\n",
            0o644,
        ),
        file(
            "/etc/nginx/nginx.conf",
            b"server { listen 443 ssl; }\n",
            0o640,
        ),
        link(
            "/etc/letsencrypt/live/n8n.example.com/fullchain.pem",
            "../../archive/n8n.example.com/fullchain2.pem",
        ),
        missing("/opt/n8n/extra.conf"),
    ];
    s
}

/// A third backup: only the error handler changes (a new node).
fn day3() -> Spec {
    let mut s = day2();
    let eh = s
        .workflows
        .iter_mut()
        .find(|w| w.id == "wfErrorHandl005")
        .unwrap();
    eh.nodes.push((
        "Mail",
        "n8n-nodes-base.emailSend",
        serde_json::json!({"to": "ops@example.com"}),
    ));
    eh.day = 3;
    s
}

async fn fail_backup(store: &Store, backup_id: &str, with_start: bool) {
    if with_start {
        journal::append(
            store,
            Event::BackupStarted(BackupStarted {
                backup_id: backup_id.into(),
                kind: "postgres_n8n".into(),
                host: "n8n-prod".into(),
                sources: vec!["postgres:n8n@127.0.0.1:5432".into()],
                ..Default::default()
            }),
        )
        .await
        .unwrap();
    }
    journal::append(
        store,
        Event::BackupFailed(BackupFailed {
            backup_id: backup_id.into(),
            kind: "postgres_n8n".into(),
            stage: "dump".into(),
            message: "pg_dump exited with status 1: connection refused".into(),
            duration_ms: 1234,
            ..Default::default()
        }),
    )
    .await
    .unwrap();
}

/// Every answer the catalog gives about the store, as JSON: to compare a
/// catalog with a rebuilt one.
async fn answers(cat: &Catalog) -> Value {
    let all = cat
        .list_backups(&BackupFilter {
            include_forgotten: true,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut shows = Vec::new();
    let mut completed = Vec::new();
    for b in &all {
        if b.status == BackupStatus::Completed {
            shows.push(
                serde_json::to_value(
                    cat.show(&b.backup_id, &WorkflowFilter::default())
                        .await
                        .unwrap(),
                )
                .unwrap(),
            );
            completed.push(b.backup_id.clone());
        }
    }
    let mut diffs = Vec::new();
    for pair in completed.windows(2) {
        diffs.push(serde_json::to_value(cat.diff(&pair[0], &pair[1]).await.unwrap()).unwrap());
    }
    let mut histories = Vec::new();
    for id in [
        "wfOrderSync0001",
        "wfSlackAlert002",
        "wfOldCleanup003",
        "wfNightlyRep004",
        "wfErrorHandl005",
        "wfInvoiceImp006",
    ] {
        histories.push(match cat.history(id).await {
            Ok(h) => serde_json::to_value(h).unwrap(),
            Err(e) => Value::String(format!("error: {e}")),
        });
    }
    serde_json::json!({
        "list": all,
        "latest": cat.resolve("latest").await.ok(),
        "shows": shows,
        "diffs": diffs,
        "histories": histories,
    })
}

fn remove_catalog_files(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let p = format!("{}{suffix}", path.display());
        let _ = std::fs::remove_file(p);
    }
}

// ---------------------------------------------------------------------------
// The library

#[tokio::test]
async fn list_show_diff_history() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let store = new_store(&dir.path().join("store")).await;
    let a = take_backup(&store, &day1()).await;
    let b = take_backup(&store, &day2()).await;
    let cat = Catalog::open(&data, &store).await.unwrap();
    let r = cat.catch_up(&store).await.unwrap();
    assert!(!r.rebuilt);
    assert_eq!(r.applied, 3, "StoreInitialized and two BackupCompleted");
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);

    // The catalog file is private.
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data.join("catalogs")), 0o700);
    assert_eq!(mode(cat.path()), 0o600);
    assert_eq!(cat.path(), Catalog::path_for(&data, &store.config().id));

    // list
    let list = cat.list_backups(&BackupFilter::default()).await.unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].backup_id, a.backup_id);
    assert_eq!(list[1].backup_id, b.backup_id);
    assert!(list.iter().all(|x| x.status == BackupStatus::Completed));
    assert_eq!(list[0].workflow_count, Some(5));
    assert_eq!(list[0].manifest.as_deref(), Some(a.manifest.as_str()));
    assert_eq!(list[0].logical_bytes, Some(a.logical_bytes));
    assert_eq!(list[0].new_bytes, Some(a.new_bytes));
    assert!(list[0].host.is_some());
    let by_kind = cat
        .list_backups(&BackupFilter {
            kind: Some("flows".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(by_kind.is_empty());

    // resolve
    assert_eq!(cat.resolve("latest").await.unwrap(), b.backup_id);
    assert_eq!(
        cat.resolve("latest:postgres_n8n").await.unwrap(),
        b.backup_id
    );
    assert!(matches!(
        cat.resolve("latest:flows").await,
        Err(CatalogError::NotFound(_))
    ));
    assert_eq!(cat.resolve(&a.backup_id).await.unwrap(), a.backup_id);
    let prefix = &b.backup_id[..b.backup_id.len() - 3];
    if !a.backup_id.starts_with(prefix) {
        assert_eq!(cat.resolve(prefix).await.unwrap(), b.backup_id);
    }
    assert!(matches!(
        cat.resolve("2").await,
        Err(CatalogError::Ambiguous(_))
    ));
    assert!(matches!(
        cat.resolve("19990101").await,
        Err(CatalogError::NotFound(_))
    ));

    // show
    let v = cat
        .show(&b.backup_id, &WorkflowFilter::default())
        .await
        .unwrap();
    assert!(v.contents_available);
    assert_eq!(v.workflow_count, 5);
    let names: Vec<&str> = v.workflows.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Error handler",
            "Invoice import",
            "Nightly report",
            "Order sync",
            "Slack notifications"
        ]
    );
    let orders = v
        .workflows
        .iter()
        .find(|w| w.id == "wfOrderSync0001")
        .unwrap();
    assert_eq!(orders.node_count, 3);
    assert_eq!(orders.tags, ["prod", "shop"]);
    assert_eq!(orders.version_id.as_deref(), Some("wfOrderSync0001-v2"));
    assert_eq!(orders.credentials[0].name.as_deref(), Some("Shop API"));
    assert!(orders
        .node_types
        .contains(&"n8n-nodes-base.httpRequest".to_string()));
    assert_eq!(v.credentials.len(), 2);
    assert_eq!(v.credentials[0].name, "Mailbox");
    assert_eq!(
        v.config_file_count, 4,
        "the missing optional path is not counted"
    );
    assert_eq!(v.config_files.len(), 5);
    let env = v
        .config_files
        .iter()
        .find(|f| f.path == "/opt/n8n/.env")
        .unwrap();
    assert_eq!(env.mode, 0o600);
    assert_eq!(env.file_type, "file");
    let cert = v
        .config_files
        .iter()
        .find(|f| f.file_type == "symlink")
        .unwrap();
    assert_eq!(
        cert.link_target.as_deref(),
        Some("../../archive/n8n.example.com/fullchain2.pem")
    );
    assert_eq!(v.databases.len(), 1);
    let db = &v.databases[0];
    assert_eq!(
        db.migration_head.as_deref(),
        Some("CreateTestRun1746000000000")
    );
    assert_eq!(db.tables.len(), 4);
    assert_eq!(db.total_rows, 2 + 1350 + 4 + 5);
    let ex = db
        .tables
        .iter()
        .find(|t| t.name == "execution_entity")
        .unwrap();
    assert_eq!(
        (ex.schema.as_str(), ex.rows, ex.columns.len()),
        ("public", 1350, 3)
    );
    assert_eq!(
        v.encryption_key_fingerprint.as_deref(),
        Some("5f1c0ffee0ddba11")
    );
    // Nothing secret: the .env's content is nowhere in the answer.
    assert!(!serde_json::to_string(&v).unwrap().contains("secret1"));

    // show's filters
    let f = |name: Option<&str>, active: Option<bool>, tag: Option<&str>| WorkflowFilter {
        name_contains: name.map(String::from),
        active,
        tag: tag.map(String::from),
    };
    let ids = |v: &n8n_ark::catalog::BackupView| -> Vec<String> {
        v.workflows.iter().map(|w| w.id.clone()).collect()
    };
    let v = cat
        .show(&b.backup_id, &f(Some("SLACK"), None, None))
        .await
        .unwrap();
    assert_eq!(ids(&v), ["wfSlackAlert002"]);
    assert_eq!(v.workflow_count, 5, "the total stays the backup's");
    let v = cat
        .show(&b.backup_id, &f(None, Some(false), None))
        .await
        .unwrap();
    assert_eq!(ids(&v), ["wfSlackAlert002"]);
    let v = cat
        .show(&b.backup_id, &f(None, Some(true), None))
        .await
        .unwrap();
    assert_eq!(v.workflows.len(), 4);
    let v = cat
        .show(&b.backup_id, &f(None, None, Some("Prod")))
        .await
        .unwrap();
    assert_eq!(ids(&v), ["wfOrderSync0001"]);
    let v = cat
        .show(&b.backup_id, &f(Some("order"), Some(false), None))
        .await
        .unwrap();
    assert!(v.workflows.is_empty());

    // diff
    let d = cat.diff(&a.backup_id, &b.backup_id).await.unwrap();
    assert!(!d.identical);
    let w = &d.workflows;
    assert_eq!(
        w.added.iter().map(|x| x.id.as_str()).collect::<Vec<_>>(),
        ["wfInvoiceImp006"]
    );
    assert_eq!(
        w.removed
            .iter()
            .map(|x| x.name.as_str())
            .collect::<Vec<_>>(),
        ["Old cleanup"]
    );
    assert_eq!(w.renamed.len(), 1);
    assert_eq!(
        (
            w.renamed[0].id.as_str(),
            w.renamed[0].from.as_str(),
            w.renamed[0].to.as_str()
        ),
        ("wfSlackAlert002", "Slack alerts", "Slack notifications")
    );
    assert_eq!(w.changed.len(), 1, "{:#?}", w.changed);
    let c = &w.changed[0];
    assert_eq!(c.id, "wfOrderSync0001");
    assert_eq!(
        c.nodes_added
            .iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>(),
        ["Notify"]
    );
    assert_eq!(c.nodes_added[0].node_type, "n8n-nodes-base.slack");
    assert_eq!(
        c.nodes_removed
            .iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>(),
        ["Set fields"]
    );
    assert_eq!(
        c.nodes_changed
            .iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>(),
        ["Fetch orders"]
    );
    assert!(c.previous_name.is_none() && c.active.is_none());
    assert_ne!(c.object.from, c.object.to);
    assert_eq!(w.state_changed.len(), 1);
    assert_eq!(w.state_changed[0].id, "wfNightlyRep004");
    let act = w.state_changed[0].active.as_ref().unwrap();
    assert!(!act.from && act.to);
    assert_eq!(w.unchanged, 1, "the error handler");
    assert_eq!(d.credentials.added.len(), 1);
    assert_eq!(d.credentials.added[0].name, "Mailbox");
    assert_eq!(d.credentials.removed[0].name, "Old SMTP");
    let cf = &d.config_files;
    assert!(cf.added.is_empty() && cf.removed.is_empty());
    let changed: BTreeMap<&str, Vec<&str>> = cf
        .changed
        .iter()
        .map(|x| {
            (
                x.path.as_str(),
                x.changes.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        changed,
        BTreeMap::from([
            (
                "/etc/letsencrypt/live/n8n.example.com/fullchain.pem",
                vec!["link_target"]
            ),
            ("/etc/nginx/nginx.conf", vec!["mode"]),
            ("/opt/n8n/.env", vec!["content"]),
        ])
    );
    assert_eq!(d.databases.len(), 1);
    let dd = &d.databases[0];
    assert_eq!(dd.database, "n8n");
    assert_eq!(dd.tables_added.len(), 1);
    assert_eq!(
        (dd.tables_added[0].name.as_str(), dd.tables_added[0].rows),
        ("test_run", 4)
    );
    assert!(dd.tables_removed.is_empty());
    assert_eq!(dd.rows_changed.len(), 1);
    let rc = &dd.rows_changed[0];
    assert_eq!(
        (rc.name.as_str(), rc.from, rc.to, rc.delta),
        ("execution_entity", 1200, 1350, 150)
    );
    let mh = dd.migration_head.as_ref().unwrap();
    assert_eq!(mh.to.as_deref(), Some("CreateTestRun1746000000000"));
    // The other way round, and with itself.
    let back = cat.diff(&b.backup_id, &a.backup_id).await.unwrap();
    assert_eq!(back.workflows.added[0].id, "wfOldCleanup003");
    assert_eq!(back.databases[0].rows_changed[0].delta, -150);
    assert!(
        cat.diff(&a.backup_id, &a.backup_id)
            .await
            .unwrap()
            .identical
    );

    // history
    let h = cat.history("wfOrderSync0001").await.unwrap();
    assert_eq!(h.versions.len(), 2);
    assert_eq!(h.backup_count, 2);
    assert_eq!(h.versions[0].backups, [a.backup_id.as_str()]);
    assert_eq!(h.versions[1].backups, [b.backup_id.as_str()]);
    assert_eq!(h.versions[0].first_backup_id, a.backup_id);
    assert_eq!(
        h.versions[1].version_id.as_deref(),
        Some("wfOrderSync0001-v2")
    );
    assert_eq!(h.versions[0].node_count, 3);
    assert!(h.versions[0].first_seen_ms <= h.versions[1].first_seen_ms);
    assert_eq!(cat.history("Order sync").await.unwrap(), h, "by exact name");
    assert_eq!(
        cat.history("ORDER").await.unwrap(),
        h,
        "by a part of the name"
    );
    let eh = cat.history("Error handler").await.unwrap();
    assert_eq!(eh.versions.len(), 1);
    assert_eq!(
        eh.versions[0].backups,
        [a.backup_id.clone(), b.backup_id.clone()]
    );
    let sl = cat.history("Slack alerts").await.unwrap();
    assert_eq!(sl.name, "Slack notifications", "the newest name");
    assert_eq!(sl.versions.len(), 2);
    assert!(matches!(
        cat.history("o").await,
        Err(CatalogError::Ambiguous(_))
    ));
    assert!(matches!(
        cat.history("no such workflow").await,
        Err(CatalogError::NotFound(_))
    ));
}

#[tokio::test]
async fn failed_and_running_backups_are_listed_and_latest_skips_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = new_store(&dir.path().join("store")).await;
    let a = take_backup(&store, &day1()).await;
    fail_backup(&store, "20991231T235959Z-0000fa11", true).await;
    fail_backup(&store, "20991231T235959Z-0000fa12", false).await;
    journal::append(
        &store,
        Event::BackupStarted(BackupStarted {
            backup_id: "20991231T235959Z-00000run".into(),
            kind: "flows".into(),
            host: "n8n-prod".into(),
            sources: vec!["n8n-api:http://127.0.0.1:5678".into()],
            ..Default::default()
        }),
    )
    .await
    .unwrap();
    let cat = Catalog::open(&dir.path().join("data"), &store)
        .await
        .unwrap();
    cat.catch_up(&store).await.unwrap();
    let list = cat.list_backups(&BackupFilter::default()).await.unwrap();
    assert_eq!(list.len(), 4);
    let get = |id: &str| list.iter().find(|b| b.backup_id == id).unwrap().clone();
    let f1 = get("20991231T235959Z-0000fa11");
    assert_eq!(f1.status, BackupStatus::Failed);
    assert_eq!(f1.failed_stage.as_deref(), Some("dump"));
    assert!(f1
        .failed_message
        .as_deref()
        .unwrap()
        .contains("connection refused"));
    assert_eq!(f1.host.as_deref(), Some("n8n-prod"));
    assert_eq!(f1.sources, ["postgres:n8n@127.0.0.1:5432"]);
    assert_eq!(f1.duration_ms, Some(1234));
    let f2 = get("20991231T235959Z-0000fa12");
    assert_eq!(
        f2.status,
        BackupStatus::Failed,
        "a failure without a start still makes a row"
    );
    assert!(f2.host.is_some());
    assert_eq!(
        get("20991231T235959Z-00000run").status,
        BackupStatus::Running
    );

    // `latest` is the newest *completed* backup, though the failed ones are newer.
    assert_eq!(cat.resolve("latest").await.unwrap(), a.backup_id);
    assert!(matches!(
        cat.resolve("latest:flows").await,
        Err(CatalogError::NotFound(_))
    ));
    let e = cat.resolve("20991231T235959Z-0000fa11").await.unwrap_err();
    assert!(matches!(e, CatalogError::NotCompleted(_)), "{e}");
    assert!(e.to_string().contains("failed at stage dump"), "{e}");
    let e = cat.resolve("20991231T235959Z-00000r").await.unwrap_err();
    assert!(e.to_string().contains("not completed"), "{e}");
    let failed = cat
        .list_backups(&BackupFilter {
            status: Some(BackupStatus::Failed),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(failed.len(), 2);
    // The running one finishes: the same row moves on.
    fail_backup(&store, "20991231T235959Z-00000run", false).await;
    let r = cat.catch_up(&store).await.unwrap();
    assert_eq!(r.applied, 1);
    let run = cat
        .backup("20991231T235959Z-00000run")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.status, BackupStatus::Failed);
    assert_eq!(run.kind, "flows");
    assert_eq!(run.sources, ["n8n-api:http://127.0.0.1:5678"]);
}

#[tokio::test]
async fn forgetting_a_backup_drops_its_contents_and_versions() {
    let dir = tempfile::tempdir().unwrap();
    let store = new_store(&dir.path().join("store")).await;
    let a = take_backup(&store, &day1()).await;
    let b = take_backup(&store, &day2()).await;
    let cat = Catalog::open(&dir.path().join("data"), &store)
        .await
        .unwrap();
    cat.catch_up(&store).await.unwrap();
    assert_eq!(
        cat.history("wfOldCleanup003").await.unwrap().versions.len(),
        1
    );

    store
        .forget_backup(
            &ObjectId::from_hex(&a.manifest).unwrap(),
            "retention: keep-daily",
        )
        .await
        .unwrap();
    let r = cat.catch_up(&store).await.unwrap();
    assert_eq!(r.applied, 1);
    let list = cat.list_backups(&BackupFilter::default()).await.unwrap();
    assert_eq!(
        list.iter()
            .map(|b| b.backup_id.as_str())
            .collect::<Vec<_>>(),
        [b.backup_id.as_str()]
    );
    let all = cat
        .list_backups(&BackupFilter {
            include_forgotten: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].status, BackupStatus::Forgotten);
    assert_eq!(
        all[0].forgotten_reason.as_deref(),
        Some("retention: keep-daily")
    );
    let e = cat.resolve(&a.backup_id).await.unwrap_err();
    assert!(e.to_string().contains("forgotten"), "{e}");
    let v = cat
        .show(&a.backup_id, &WorkflowFilter::default())
        .await
        .unwrap();
    assert!(!v.contents_available && v.workflows.is_empty());
    assert!(matches!(
        cat.diff(&a.backup_id, &b.backup_id).await,
        Err(CatalogError::ContentsUnavailable(_))
    ));
    // Versions held only by the forgotten backup are gone; shared ones lose it.
    assert!(matches!(
        cat.history("wfOldCleanup003").await,
        Err(CatalogError::NotFound(_))
    ));
    let h = cat.history("wfOrderSync0001").await.unwrap();
    assert_eq!(h.versions.len(), 1);
    assert_eq!(h.versions[0].backups, [b.backup_id.as_str()]);
    let eh = cat.history("wfErrorHandl005").await.unwrap();
    assert_eq!(eh.versions.len(), 1);
    assert_eq!(
        eh.versions[0].first_backup_id, b.backup_id,
        "first seen moves to the remaining backup"
    );
    assert_eq!(eh.versions[0].backups, [b.backup_id.as_str()]);

    // A rebuild (the manifest is gone from the store now) answers the same.
    let before = answers(&cat).await;
    let r = cat.rebuild(&store).await.unwrap();
    assert!(r.rebuilt);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert_eq!(answers(&cat).await, before);
}

#[tokio::test]
async fn rebuild_and_a_new_catalog_give_the_same_answers() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let store = new_store(&dir.path().join("store")).await;
    let a = take_backup(&store, &day1()).await;
    fail_backup(&store, "20261126T000000Z-0000fa11", true).await;
    take_backup(&store, &day2()).await;
    take_backup(&store, &day3()).await;
    store
        .forget_backup(&ObjectId::from_hex(&a.manifest).unwrap(), "by hand")
        .await
        .unwrap();
    // Caught up step by step as things happened ...
    let cat = Catalog::open(&data, &store).await.unwrap();
    cat.catch_up(&store).await.unwrap();
    let first = answers(&cat).await;
    assert_eq!(first["list"].as_array().unwrap().len(), 4);
    assert_eq!(first["diffs"].as_array().unwrap().len(), 1);
    // ... then rebuilt in place ...
    let r = cat.rebuild(&store).await.unwrap();
    assert!(r.rebuilt);
    let jr = journal::replay(&store).await.unwrap();
    assert_eq!(r.applied, jr.records.len() as u64);
    assert_eq!(r.last_seq, jr.records.last().unwrap().seq);
    assert_eq!(answers(&cat).await, first);
    let path = cat.path().to_path_buf();
    cat.close().await;
    // ... and made anew after the file was deleted.
    remove_catalog_files(&path);
    assert!(!path.exists());
    let cat = Catalog::open(&data, &store).await.unwrap();
    let r = cat.catch_up(&store).await.unwrap();
    assert!(!r.rebuilt);
    assert_eq!(r.applied, jr.records.len() as u64);
    assert_eq!(answers(&cat).await, first);
    let st = cat.state().await.unwrap().unwrap();
    assert_eq!(st.last_seq, jr.records.last().unwrap().seq);
    assert_eq!(st.last_hash, hex::encode(jr.tail_hash));
    assert_eq!(st.store_id, store.config().id);
}

#[tokio::test]
async fn catch_up_applies_only_new_records() {
    let dir = tempfile::tempdir().unwrap();
    let store = new_store(&dir.path().join("store")).await;
    take_backup(&store, &day1()).await;
    let cat = Catalog::open(&dir.path().join("data"), &store)
        .await
        .unwrap();
    let r = cat.catch_up(&store).await.unwrap();
    assert_eq!((r.applied, r.rebuilt), (2, false));
    let r = cat.catch_up(&store).await.unwrap();
    assert_eq!((r.applied, r.rebuilt), (0, false));
    let b = take_backup(&store, &day2()).await;
    fail_backup(&store, "20991231T235959Z-0000fa11", true).await;
    let r = cat.catch_up(&store).await.unwrap();
    assert_eq!((r.applied, r.rebuilt), (3, false));
    assert_eq!(r.last_seq, 5);
    assert_eq!(cat.resolve("latest").await.unwrap(), b.backup_id);
    // A second catalog handle (another process) and this one share the file.
    let other = Catalog::open(&dir.path().join("data"), &store)
        .await
        .unwrap();
    let c = take_backup(&store, &day3()).await;
    let (r1, r2) = tokio::join!(cat.catch_up(&store), other.catch_up(&store));
    let (r1, r2) = (r1.unwrap(), r2.unwrap());
    assert_eq!(r1.applied + r2.applied, 1, "each record is applied once");
    assert_eq!(cat.resolve("latest").await.unwrap(), c.backup_id);
    assert_eq!(cat.state().await.unwrap().unwrap().last_seq, 6);
}

#[tokio::test]
async fn concurrent_catch_ups_share_the_work() {
    let dir = tempfile::tempdir().unwrap();
    let store = new_store(&dir.path().join("store")).await;
    take_backup(&store, &day1()).await;
    fail_backup(&store, "20261126T000000Z-0000fa11", true).await;
    take_backup(&store, &day2()).await;
    take_backup(&store, &day3()).await;
    let total = journal::replay(&store).await.unwrap().records.len() as u64;
    // Two processes (the service and a command) open a new catalog at once.
    let data = dir.path().join("data");
    let (one, two) = tokio::join!(Catalog::open(&data, &store), Catalog::open(&data, &store));
    let (one, two) = (one.unwrap(), two.unwrap());
    let (r1, r2) = tokio::join!(one.catch_up(&store), two.catch_up(&store));
    let (r1, r2) = (r1.unwrap(), r2.unwrap());
    assert_eq!(r1.applied + r2.applied, total, "{r1:?} {r2:?}");
    assert_eq!((r1.last_seq, r2.last_seq), (total, total));
    // The same answers as a catalog made alone.
    let alone = Catalog::open(&dir.path().join("alone"), &store)
        .await
        .unwrap();
    alone.catch_up(&store).await.unwrap();
    let expected = answers(&alone).await;
    assert_eq!(answers(&one).await, expected);
    // A rebuild racing a catch-up ends in the same place too.
    let (r1, r2) = tokio::join!(one.rebuild(&store), two.catch_up(&store));
    r1.unwrap();
    r2.unwrap();
    two.catch_up(&store).await.unwrap();
    assert_eq!(answers(&two).await, expected);
}

#[tokio::test]
async fn a_catalog_of_another_store_or_journal_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let one = new_store(&dir.path().join("one")).await;
    let two = new_store(&dir.path().join("two")).await;
    take_backup(&one, &day1()).await;
    take_backup(&one, &day2()).await;
    let b2 = take_backup(&two, &day1()).await;
    let cat = Catalog::open(&data, &one).await.unwrap();
    cat.catch_up(&one).await.unwrap();
    let path_one = cat.path().to_path_buf();
    cat.close().await;
    // Store two's catalog file is a copy of store one's.
    let path_two = Catalog::path_for(&data, &two.config().id);
    std::fs::copy(&path_one, &path_two).unwrap();
    let cat = Catalog::open(&data, &two).await.unwrap();
    let r = cat.catch_up(&two).await.unwrap();
    assert!(r.rebuilt);
    assert!(
        r.rebuild_reason
            .as_deref()
            .unwrap()
            .contains("describes store"),
        "{:?}",
        r.rebuild_reason
    );
    let list = cat.list_backups(&BackupFilter::default()).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].backup_id, b2.backup_id);
    assert_eq!(
        cat.state().await.unwrap().unwrap().store_id,
        two.config().id
    );
    cat.close().await;

    // Store one's journal loses its last record (restored from an older copy):
    // the catalog, which applied it, starts over.
    let cat = Catalog::open(&data, &one).await.unwrap();
    let last = journal::replay(&one).await.unwrap().last_seq;
    std::fs::remove_file(dir.path().join("one/journal").join(format!("{last:020}"))).unwrap();
    let r = cat.catch_up(&one).await.unwrap();
    assert!(r.rebuilt, "{r:?}");
    assert!(
        r.rebuild_reason.as_deref().unwrap().contains("no record"),
        "{:?}",
        r.rebuild_reason
    );
    assert_eq!(
        cat.list_backups(&BackupFilter::default())
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(r.last_seq, last - 1);
}

#[tokio::test]
async fn damage_after_the_intact_prefix_is_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let store = new_store(&dir.path().join("store")).await;
    let a = take_backup(&store, &day1()).await;
    let last = journal::replay(&store).await.unwrap().last_seq;
    let torn = dir
        .path()
        .join("store/journal")
        .join(format!("{:020}", last + 1));
    std::fs::write(&torn, b"ARKJ\x01garbage").unwrap();
    let cat = Catalog::open(&dir.path().join("data"), &store)
        .await
        .unwrap();
    let r = cat.catch_up(&store).await.unwrap();
    assert!(!r.rebuilt);
    // Every record, and the damaged one as a lost event.
    assert_eq!(r.applied, last + 1);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert_eq!(r.journal_damage.len(), 1, "{:?}", r.journal_damage);
    assert!(
        r.journal_damage[0].contains("cut short"),
        "{:?}",
        r.journal_damage
    );
    assert_eq!(cat.resolve("latest").await.unwrap(), a.backup_id);
    // The damage stays known (every command warns) until it is repaired.
    let again = cat.catch_up(&store).await.unwrap();
    assert_eq!(again.applied, 0);
    assert_eq!(again.journal_damage, r.journal_damage);
    // A record appended after the damage is applied too.
    let b = take_backup(&store, &day2()).await;
    let r = cat.catch_up(&store).await.unwrap();
    assert_eq!(r.applied, 1, "{r:?}");
    assert_eq!(cat.resolve("latest").await.unwrap(), b.backup_id);
    assert_eq!(r.journal_damage.len(), 1, "{:?}", r.journal_damage);
}

#[tokio::test]
async fn an_unreadable_manifest_is_noted_and_the_catch_up_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let store = new_store(&dir.path().join("store")).await;
    let a = take_backup(&store, &day1()).await;
    let b = take_backup(&store, &day2()).await;
    // A's manifest vanished without a BackupForgotten (damage, a bad copy).
    std::fs::remove_file(dir.path().join("store/manifests").join(&a.manifest)).unwrap();
    let cat = Catalog::open(&dir.path().join("data"), &store)
        .await
        .unwrap();
    let r = cat.catch_up(&store).await.unwrap();
    assert_eq!(r.applied, 3);
    assert_eq!(r.warnings.len(), 1);
    assert!(r.warnings[0].contains(&a.backup_id), "{:?}", r.warnings);
    let rec = cat.backup(&a.backup_id).await.unwrap().unwrap();
    assert_eq!(rec.status, BackupStatus::Completed);
    assert!(
        rec.note
            .as_deref()
            .unwrap()
            .starts_with("contents unavailable: "),
        "{:?}",
        rec.note
    );
    let v = cat
        .show(&a.backup_id, &WorkflowFilter::default())
        .await
        .unwrap();
    assert!(!v.contents_available);
    assert!(matches!(
        cat.diff(&a.backup_id, &b.backup_id).await,
        Err(CatalogError::ContentsUnavailable(_))
    ));
    assert!(
        cat.show(&b.backup_id, &WorkflowFilter::default())
            .await
            .unwrap()
            .contents_available
    );
    assert_eq!(
        cat.history("wfOrderSync0001").await.unwrap().versions.len(),
        1
    );
}

#[tokio::test]
async fn a_store_read_error_fails_the_catch_up_without_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let store = new_store(&dir.path().join("store")).await;
    let a = take_backup(&store, &day1()).await;
    let b = take_backup(&store, &day2()).await;
    // B's manifest cannot be read for a reason that is not its absence (an
    // I/O error): the catch-up stops before it and says why.
    let mpath = dir.path().join("store/manifests").join(&b.manifest);
    let aside = dir.path().join("manifest-aside");
    std::fs::rename(&mpath, &aside).unwrap();
    std::os::unix::fs::symlink(&mpath, &mpath).unwrap(); // ELOOP on every read
    let cat = Catalog::open(&dir.path().join("data"), &store)
        .await
        .unwrap();
    let e = cat.catch_up(&store).await.unwrap_err();
    assert!(matches!(e, CatalogError::Store(_)), "{e}");
    assert_eq!(
        cat.state().await.unwrap().unwrap().last_seq,
        2,
        "the records before it are applied"
    );
    assert_eq!(cat.resolve("latest").await.unwrap(), a.backup_id);
    // Once it reads again, the next catch-up applies it, with its contents.
    std::fs::remove_file(&mpath).unwrap();
    std::fs::rename(&aside, &mpath).unwrap();
    let r = cat.catch_up(&store).await.unwrap();
    assert_eq!((r.applied, r.rebuilt), (1, false));
    let v = cat
        .show(&b.backup_id, &WorkflowFilter::default())
        .await
        .unwrap();
    assert!(v.contents_available && v.backup.note.is_none());
}

#[tokio::test]
async fn show_answers_from_the_catalog_alone() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let sdir = dir.path().join("store");
    let store = new_store(&sdir).await;
    let a = take_backup(&store, &day1()).await;
    let b = take_backup(&store, &day2()).await;
    let cat = Catalog::open(&data, &store).await.unwrap();
    cat.catch_up(&store).await.unwrap();
    let before = answers(&cat).await;
    cat.close().await;
    // No object and no manifest can be read any more.
    std::fs::rename(sdir.join("objects"), dir.path().join("objects-away")).unwrap();
    std::fs::rename(sdir.join("manifests"), dir.path().join("manifests-away")).unwrap();
    let cat = Catalog::open(&data, &store).await.unwrap();
    let r = cat.catch_up(&store).await.unwrap();
    assert_eq!((r.applied, r.rebuilt), (0, false));
    assert_eq!(answers(&cat).await, before);
    assert_eq!(cat.resolve("latest").await.unwrap(), b.backup_id);
    cat.close().await;
    // And with no store at all, through the catalog found offline.
    let id = store.config().id.clone();
    let location = store.location();
    drop(store);
    std::fs::rename(&sdir, dir.path().join("store-away")).unwrap();
    let cat = Catalog::find_offline(&data, &location)
        .await
        .unwrap()
        .expect("found by location");
    assert_eq!(cat.store_id(), id);
    assert_eq!(answers(&cat).await, before);
    let v = cat
        .show(&a.backup_id, &WorkflowFilter::default())
        .await
        .unwrap();
    assert_eq!(v.workflow_count, 5);
    assert!(Catalog::find_offline(&data, "/nowhere")
        .await
        .unwrap()
        .is_none());
    assert!(matches!(
        Catalog::open_offline(&data, "0123456789abcdef").await,
        Err(CatalogError::NoCatalog(_))
    ));
}

// ---------------------------------------------------------------------------
// The binary

fn ark_cmd(data: &Path, store: &Path) -> Command {
    let mut c = Command::new(bin());
    c.env_remove("ARK_STORE")
        .env_remove("ARK_CONFIG")
        .env("ARK_PASSWORD", PASSPHRASE)
        .env("ARK_KDF_TARGET_MS", "20")
        .arg("--data-dir")
        .arg(data)
        .arg("--store")
        .arg(store);
    c
}

fn ark(data: &Path, store: &Path, args: &[&str]) -> Output {
    let o = ark_cmd(data, store).args(args).output().unwrap();
    assert!(
        o.status.success(),
        "n8n-ark {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn ark_json(data: &Path, store: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let o = ark(data, store, &all);
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: not JSON ({e}): {}",
            String::from_utf8_lossy(&o.stdout)
        )
    })
}

#[tokio::test]
async fn the_read_commands() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let sdir = dir.path().join("store");
    let store = new_store(&sdir).await;
    let a = take_backup(&store, &day1()).await;
    fail_backup(&store, "20991231T235959Z-0000fa11", true).await;
    let b = take_backup(&store, &day2()).await;
    drop(store);

    let list = ark_json(&data, &sdir, &["list"]);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 3);
    assert_eq!(list[0]["backup_id"], a.backup_id.as_str());
    assert_eq!(list[0]["status"], "completed");
    assert_eq!(list[1]["status"], "failed");
    assert_eq!(list[1]["failed_stage"], "dump");
    assert_eq!(list[2]["backup_id"], b.backup_id.as_str());
    let text = String::from_utf8(ark(&data, &sdir, &["list"]).stdout).unwrap();
    assert!(text.starts_with("BACKUP ID"), "{text}");
    assert!(
        text.contains("failed") && text.contains("dump: pg_dump exited"),
        "{text}"
    );
    assert!(text.contains("3 backups: 2 completed, 1 failed"), "{text}");
    let kinds = ark_json(&data, &sdir, &["list", "--kind", "flows"]);
    assert_eq!(kinds.as_array().unwrap().len(), 0);

    let shown = ark_json(&data, &sdir, &["show", "latest"]);
    assert_eq!(shown["backup"]["backup_id"], b.backup_id.as_str());
    assert_eq!(shown["workflows"].as_array().unwrap().len(), 5);
    assert_eq!(shown["databases"][0]["tables"].as_array().unwrap().len(), 4);
    let slack = ark_json(
        &data,
        &sdir,
        &["show", "latest", "--workflow", "slack", "--inactive"],
    );
    assert_eq!(slack["workflows"].as_array().unwrap().len(), 1);
    assert_eq!(slack["workflows"][0]["name"], "Slack notifications");
    let tagged = ark_json(
        &data,
        &sdir,
        &["show", &a.backup_id, "--tag", "ops", "--active"],
    );
    assert_eq!(tagged["workflows"].as_array().unwrap().len(), 0);
    let text = String::from_utf8(ark(&data, &sdir, &["show", "latest"]).stdout).unwrap();
    for needle in [
        "Order sync",
        "Mailbox",
        "/opt/n8n/.env",
        "public.execution_entity",
        "1,350",
        "CreateTestRun",
    ] {
        assert!(text.contains(needle), "{needle}: {text}");
    }

    let d = ark_json(&data, &sdir, &["diff", &a.backup_id, "latest"]);
    assert_eq!(
        d["workflows"]["changed"][0]["nodes_added"][0]["name"],
        "Notify"
    );
    assert_eq!(d["databases"][0]["rows_changed"][0]["delta"], 150);
    let text =
        String::from_utf8(ark(&data, &sdir, &["diff", &a.backup_id, "latest"]).stdout).unwrap();
    assert!(
        text.contains("renamed \"Slack alerts\" -> \"Slack notifications\""),
        "{text}"
    );
    assert!(text.contains("+ node \"Notify\""), "{text}");
    assert!(
        text.contains("/etc/nginx/nginx.conf: mode 0644 -> 0640"),
        "{text}"
    );

    let h = ark_json(&data, &sdir, &["history", "order sync"]);
    assert_eq!(h["workflow_id"], "wfOrderSync0001");
    assert_eq!(h["versions"].as_array().unwrap().len(), 2);
    ark(&data, &sdir, &["history", "wfErrorHandl005"]);

    // Errors are one line.
    let o = ark_cmd(&data, &sdir)
        .args(["show", "20991231T235959Z-0000fa11"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("failed at stage dump") && e.trim().lines().count() == 1,
        "{e}"
    );

    // Rebuilt, or deleted and made again: the same answers.
    let o = ark(&data, &sdir, &["catalog", "rebuild"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("rebuilt"));
    assert_eq!(ark_json(&data, &sdir, &["show", "latest"]), shown);
    let cat_file = std::fs::read_dir(data.join("catalogs"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "sqlite"))
        .unwrap();
    remove_catalog_files(&cat_file);
    assert_eq!(ark_json(&data, &sdir, &["show", "latest"]), shown);
    assert_eq!(
        ark_json(&data, &sdir, &["list"]).as_array().unwrap().len(),
        3
    );
    let status = ark_json(&data, &sdir, &["catalog", "status"]);
    assert_eq!(status["backups"], 3);

    // The store out of reach: the catalog answers, with a warning.
    std::fs::rename(&sdir, dir.path().join("store-away")).unwrap();
    let o = ark(&data, &sdir, &["--json", "show", "latest"]);
    assert_eq!(serde_json::from_slice::<Value>(&o.stdout).unwrap(), shown);
    assert!(String::from_utf8_lossy(&o.stderr).contains("answering from the local catalog"));
    // But a rebuild needs the store.
    let o = ark_cmd(&data, &sdir)
        .args(["catalog", "rebuild"])
        .output()
        .unwrap();
    assert!(!o.status.success());
}

// ---------------------------------------------------------------------------
// A damaged catalog: moved aside and rebuilt from the store

/// The one catalog file in `data`.
fn catalog_file(data: &Path) -> std::path::PathBuf {
    let files: Vec<_> = std::fs::read_dir(data.join("catalogs"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|x| x == "sqlite")
                && !p.file_name().unwrap().to_string_lossy().contains("damaged")
        })
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

/// The catalog files set aside as damaged, with their -wal and -shm.
fn set_aside(data: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(data.join("catalogs"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().contains("damaged"))
        .collect();
    v.sort();
    v
}

/// The leaf pages of a table's b-tree in a SQLite file (read from the bytes,
/// walking down from its root page).
fn leaf_pages(bytes: &[u8], root: u32) -> Vec<u32> {
    let page_size = match u16::from_be_bytes([bytes[16], bytes[17]]) {
        1 => 65536,
        n => n as usize,
    };
    let be32 = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    let mut leaves = Vec::new();
    let mut stack = vec![root];
    while let Some(p) = stack.pop() {
        let start = (p as usize - 1) * page_size;
        let header = if p == 1 { start + 100 } else { start };
        match bytes[header] {
            0x0d => leaves.push(p),
            0x05 => {
                let cells = u16::from_be_bytes([bytes[header + 3], bytes[header + 4]]) as usize;
                stack.push(be32(header + 8));
                for i in 0..cells {
                    let at = header + 12 + 2 * i;
                    let cell = u16::from_be_bytes([bytes[at], bytes[at + 1]]) as usize;
                    stack.push(be32(start + cell));
                }
            }
            t => panic!("page {p} of a table b-tree has type {t:#x}"),
        }
    }
    leaves
}

#[derive(Debug, Clone, Copy)]
enum Damage {
    /// The whole file overwritten with random bytes.
    Garbage,
    /// Cut after half its pages.
    Truncated,
    /// One page in the middle of the file (a leaf of `backup_workflows`)
    /// overwritten with random bytes.
    MiddlePage,
    /// The leaf page of `backup_history` that holds the newest backup.
    HistoryPage,
}

/// Damages a (closed) catalog file; returns its damaged bytes, and where
/// the damaged page is when one page was damaged.
async fn damage(file: &Path, how: Damage) -> (Vec<u8>, Option<std::ops::Range<usize>>) {
    // Everything in the main file first (no -wal left behind).
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(sqlx::sqlite::SqliteConnectOptions::new().filename(file))
        .await
        .unwrap();
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&pool)
        .await
        .unwrap();
    let root = |table: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT rootpage FROM sqlite_schema WHERE name = ?")
                .bind(table)
                .fetch_one(&pool)
                .await
                .unwrap() as u32
        }
    };
    let workflows_root = root("backup_workflows").await;
    let history_root = root("backup_history").await;
    pool.close().await;
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
    }
    let mut bytes = std::fs::read(file).unwrap();
    let page_size = u16::from_be_bytes([bytes[16], bytes[17]]) as usize;
    let pages = bytes.len() / page_size;
    assert!(pages >= 20, "a catalog of {pages} pages");
    let overwrite_page = |bytes: &mut Vec<u8>, p: u32, seed: u64| {
        let start = (p as usize - 1) * page_size;
        bytes[start..start + page_size].copy_from_slice(&random_bytes(seed, page_size));
        Some(start..start + page_size)
    };
    let page = match how {
        Damage::Garbage => {
            bytes = random_bytes(7, bytes.len());
            None
        }
        Damage::Truncated => {
            // At a page boundary: only the header's page count tells.
            bytes.truncate(pages / 2 * page_size);
            None
        }
        Damage::MiddlePage => {
            let leaves = leaf_pages(&bytes, workflows_root);
            let middle = (pages / 2) as i64;
            let p = *leaves
                .iter()
                .min_by_key(|p| (**p as i64 - middle).abs())
                .unwrap();
            overwrite_page(&mut bytes, p, 8)
        }
        Damage::HistoryPage => {
            let leaves = leaf_pages(&bytes, history_root);
            overwrite_page(&mut bytes, *leaves.iter().max().unwrap(), 9)
        }
    };
    std::fs::write(file, &bytes).unwrap();
    (bytes, page)
}

/// What a backup holds and which backups there are, without what later
/// commands add (verifications): to compare answers across commands.
fn contents(v: &Value) -> Value {
    match v.as_array() {
        Some(list) => list
            .iter()
            .map(|b| serde_json::json!([b["backup_id"], b["status"]]))
            .collect(),
        None => serde_json::json!([
            v["backup"]["backup_id"],
            v["workflows"],
            v["credentials"],
            v["config_files"],
            v["databases"]
        ]),
    }
}

/// The lines of stderr that speak of the catalog being set aside.
fn set_aside_warnings(o: &Output) -> Vec<String> {
    String::from_utf8_lossy(&o.stderr)
        .lines()
        .filter(|l| l.contains("moved aside"))
        .map(String::from)
        .collect()
}

#[tokio::test]
async fn a_damaged_catalog_is_moved_aside_and_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let sdir = dir.path().join("store");
    let store = new_store(&sdir).await;
    let a = take_backup(&store, &day1()).await;
    fail_backup(&store, "20991231T235959Z-0000fa11", true).await;
    take_backup(&store, &day2()).await;
    let c = take_backup(&store, &day3()).await;
    drop(store);
    // The answers of a healthy catalog.
    let list = ark_json(&data, &sdir, &["list"]);
    let shows: Vec<Value> = [&a.backup_id, &c.backup_id]
        .iter()
        .map(|id| ark_json(&data, &sdir, &["show", id]))
        .collect();
    let history = ark_json(&data, &sdir, &["history", "wfErrorHandl005"]);
    let file = catalog_file(&data);
    let healthy = std::fs::read(&file).unwrap();

    for how in [
        Damage::Garbage,
        Damage::Truncated,
        Damage::MiddlePage,
        Damage::HistoryPage,
    ] {
        for command in ["read", "restore workflow", "verify", "catalog rebuild"] {
            let what = format!("{how:?}, {command}");
            let _ = std::fs::remove_dir_all(data.join("catalogs"));
            std::fs::create_dir_all(data.join("catalogs")).unwrap();
            std::fs::write(&file, &healthy).unwrap();
            let (damaged, damaged_page) = damage(&file, how).await;
            let mut warnings = Vec::new();
            match command {
                "read" => {
                    // Every backup shown (one of them holds the damaged
                    // page), the list, a history: the same answers.
                    for (id, shown) in [&a.backup_id, &c.backup_id].iter().zip(&shows) {
                        let o = ark(&data, &sdir, &["--json", "show", id]);
                        warnings.extend(set_aside_warnings(&o));
                        assert_eq!(
                            contents(&serde_json::from_slice::<Value>(&o.stdout).unwrap()),
                            contents(shown),
                            "{what}"
                        );
                    }
                    let o = ark(&data, &sdir, &["--json", "list"]);
                    warnings.extend(set_aside_warnings(&o));
                    assert_eq!(
                        contents(&serde_json::from_slice::<Value>(&o.stdout).unwrap()),
                        contents(&list),
                        "{what}"
                    );
                    let o = ark(&data, &sdir, &["--json", "history", "wfErrorHandl005"]);
                    warnings.extend(set_aside_warnings(&o));
                    assert_eq!(serde_json::from_slice::<Value>(&o.stdout).unwrap(), history);
                }
                "restore workflow" => {
                    let out = dir.path().join(format!("restored-{how:?}"));
                    let o = ark(
                        &data,
                        &sdir,
                        &[
                            "restore",
                            "workflow",
                            "latest",
                            "wfOrderSync0001",
                            "--out",
                            out.to_str().unwrap(),
                        ],
                    );
                    warnings.extend(set_aside_warnings(&o));
                    let files: Vec<_> = std::fs::read_dir(&out).unwrap().flatten().collect();
                    assert_eq!(files.len(), 1, "{what}");
                }
                "verify" => {
                    let o = ark(
                        &data,
                        &sdir,
                        &["--json", "verify", "latest", "--level", "data"],
                    );
                    warnings.extend(set_aside_warnings(&o));
                    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
                    assert_eq!(v["passed"], 1, "{what}: {v}");
                }
                _ => {
                    let o = ark(&data, &sdir, &["catalog", "rebuild"]);
                    warnings.extend(set_aside_warnings(&o));
                }
            }
            // Found (always, but by the commands that never read the
            // damaged page of a backup's workflows): said once, on one line,
            // naming where the damaged file went.
            let found = !matches!(
                (how, command),
                (Damage::MiddlePage, "restore workflow" | "verify")
            );
            let aside = set_aside(&data);
            if found {
                assert_eq!(warnings.len(), 1, "{what}: {warnings:?}");
            }
            assert!(warnings.len() <= 1, "{what}: {warnings:?}");
            if warnings.is_empty() {
                assert!(aside.is_empty(), "{what}: {aside:?}");
                continue;
            }
            let kept = aside
                .iter()
                .find(|p| p.extension().is_some_and(|x| x == "sqlite"))
                .unwrap_or_else(|| panic!("{what}: {aside:?}"));
            assert!(
                warnings[0].contains(&kept.display().to_string()),
                "{what}: {warnings:?}"
            );
            // Kept as it was (a catch-up may have written to its other
            // pages before the damaged one was read).
            let kept_bytes = std::fs::read(kept).unwrap();
            match &damaged_page {
                None => assert!(
                    kept_bytes == damaged,
                    "{what}: the file kept is not the damaged one"
                ),
                Some(page) => assert!(
                    kept_bytes.get(page.clone()) == damaged.get(page.clone()),
                    "{what}: the damaged page is not in the file kept"
                ),
            }
            // The new catalog answers, without a word about damage.
            let o = ark(&data, &sdir, &["--json", "list"]);
            assert_eq!(
                contents(&serde_json::from_slice::<Value>(&o.stdout).unwrap()),
                contents(&list),
                "{what}"
            );
            assert!(
                !String::from_utf8_lossy(&o.stderr).contains("warning"),
                "{what}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
}

#[tokio::test]
async fn a_damaged_catalog_with_the_store_out_of_reach_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let sdir = dir.path().join("store");
    let store = new_store(&sdir).await;
    take_backup(&store, &day1()).await;
    take_backup(&store, &day2()).await;
    drop(store);
    ark(&data, &sdir, &["list"]);
    let file = catalog_file(&data);
    damage(&file, Damage::Garbage).await;
    std::fs::rename(&sdir, dir.path().join("store-away")).unwrap();
    let o = ark_cmd(&data, &sdir).args(["list"]).output().unwrap();
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    // What happened (the store cannot be reached, the catalog that could
    // answer is damaged: named), and what to do.
    assert!(e.contains(&file.display().to_string()), "{e}");
    assert!(e.contains("damaged"), "{e}");
    assert!(
        e.contains("cannot be reached") || e.contains("cannot be opened"),
        "{e}"
    );
    assert!(e.contains("n8n-ark catalog rebuild"), "{e}");
    // Nothing was moved: it is all there is to read offline.
    assert!(set_aside(&data).is_empty());
    // Back in reach: the next command rebuilds it.
    std::fs::rename(dir.path().join("store-away"), &sdir).unwrap();
    let o = ark(&data, &sdir, &["--json", "list"]);
    assert_eq!(set_aside_warnings(&o).len(), 1);
    let list: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
}

#[test]
fn a_backup_with_a_damaged_catalog_rebuilds_it() {
    let ark = Ark::new().init(&[]);
    let etc = ark.path("etc");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(etc.join("n8n.env"), "N8N_HOST=n8n.example.com\n").unwrap();
    let path = etc.join("n8n.env");
    let path = path.to_str().unwrap();
    let first = ark.backup("n8n_config", &["--config-path", path, "--no-verify"]);
    let file = catalog_file(&ark.data());
    rt().block_on(damage(&file, Damage::Garbage));
    let o = ark.backup_output("n8n_config", &["--config-path", path, "--no-verify"]);
    let second = ok_json(&o);
    let e = stderr(&o);
    assert_eq!(set_aside_warnings(&o).len(), 1, "{e}");
    assert!(!e.contains("next command"), "{e}");
    // The catalog holds both backups: nothing is left to catch up.
    let o = ark.cmd().args(["--json", "list"]).output().unwrap();
    let list = ok_json(&o);
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["backup_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            first["backup_id"].as_str().unwrap(),
            second["backup_id"].as_str().unwrap()
        ]
    );
}

// ---------------------------------------------------------------------------
// Reading a current catalog needs no key

/// `ark_cmd` without the store's passphrase (and nobody to ask for it), or
/// with `pass` as the passphrase.
fn ark_pass(data: &Path, store: &Path, pass: Option<&str>, args: &[&str]) -> Output {
    let mut c = ark_cmd(data, store);
    c.env_remove("ARK_PASSWORD")
        .env_remove("ARK_PASSWORD_FILE")
        .stdin(std::process::Stdio::null());
    if let Some(p) = pass {
        c.env("ARK_PASSWORD", p);
    }
    c.args(args).output().unwrap()
}

/// The backup ids of a successful `--json list`.
fn backup_ids(o: &Output) -> Vec<String> {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice::<Value>(&o.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["backup_id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_current_catalog_answers_without_the_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let sdir = dir.path().join("store");
    let store = new_store(&sdir).await;
    let a = take_backup(&store, &day1()).await;
    let b = take_backup(&store, &day2()).await;
    // The catalog catches up (with the passphrase): it holds the whole journal.
    ark(&data, &sdir, &["list"]);
    let older_copy = dir.path().join("store-older");
    copy_dir(&sdir, &older_copy);

    // Without the passphrase, every read command answers from it, as it does
    // with the passphrase.
    for args in [
        vec!["list"],
        vec!["show", "latest"],
        vec!["show", &a.backup_id, "--workflow", "slack"],
        vec!["diff", &a.backup_id, "latest"],
        vec!["history", "wfOrderSync0001"],
        vec!["catalog", "status"],
        vec!["restore", "history"],
    ] {
        for json in [false, true] {
            let args: Vec<&str> = if json {
                [&["--json"], &args[..]].concat()
            } else {
                args.clone()
            };
            let with = ark(&data, &sdir, &args);
            let without = ark_pass(&data, &sdir, None, &args);
            assert!(
                without.status.success(),
                "{args:?} without the passphrase: {}",
                String::from_utf8_lossy(&without.stderr)
            );
            assert_eq!(without.stdout, with.stdout, "{args:?}");
            // A wrong passphrase is not checked by what does not need the key.
            let wrong = ark_pass(&data, &sdir, Some("not the passphrase"), &args);
            assert!(
                wrong.status.success(),
                "{args:?} with a wrong passphrase: {}",
                String::from_utf8_lossy(&wrong.stderr)
            );
            assert_eq!(wrong.stdout, with.stdout, "{args:?}");
        }
    }
    // What reads the store's objects needs the key.
    let out = dir.path().join("restored");
    let o = ark_pass(
        &data,
        &sdir,
        None,
        &[
            "restore",
            "workflow",
            "latest",
            "wfOrderSync0001",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("ARK_PASSWORD"));

    // A new record in the journal: catching up decrypts it, so the key is
    // needed, and a wrong passphrase is refused.
    let c = take_backup(&store, &day3()).await;
    let o = ark_pass(&data, &sdir, None, &["--json", "list"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("ARK_PASSWORD"));
    let o = ark_pass(
        &data,
        &sdir,
        Some("not the passphrase"),
        &["--json", "list"],
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("passphrase"));
    let o = ark_pass(&data, &sdir, Some(PASSPHRASE), &["--json", "list"]);
    assert_eq!(backup_ids(&o), [&*a.backup_id, &b.backup_id, &c.backup_id]);
    // Caught up: no key needed again.
    let o = ark_pass(&data, &sdir, None, &["--json", "list"]);
    assert_eq!(backup_ids(&o), [&*a.backup_id, &b.backup_id, &c.backup_id]);

    // The store put back from an older copy (the same store, a shorter
    // journal): the catalog does not hold that journal, so it is not current.
    drop(store);
    std::fs::remove_dir_all(&sdir).unwrap();
    std::fs::rename(&older_copy, &sdir).unwrap();
    let o = ark_pass(&data, &sdir, None, &["--json", "list"]);
    assert!(
        !o.status.success(),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let o = ark_pass(&data, &sdir, Some(PASSPHRASE), &["--json", "list"]);
    assert_eq!(backup_ids(&o), [&*a.backup_id, &b.backup_id]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("rebuilt"));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        let t = to.join(e.file_name());
        if p.is_dir() {
            copy_dir(&p, &t);
        } else {
            std::fs::copy(&p, &t).unwrap();
        }
    }
}

// ---------------------------------------------------------------------------
// Safety backups: marked, and never `latest`

/// A `RestorePerformed` event naming `safety` as the safety backup it took.
async fn restore_event(store: &Store, restore_id: &str, backup_id: &str, safety: Option<&str>) {
    journal::append(
        store,
        Event::RestorePerformed(store_format::event::RestorePerformed {
            restore_id: restore_id.into(),
            backup_id: backup_id.into(),
            what: "database".into(),
            target: "postgres:n8n@127.0.0.1:5432".into(),
            result: "ok".into(),
            items: vec![],
            safety_backup: safety.map(String::from),
            duration_ms: 2500,
        }),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn safety_backups_are_marked_and_latest_is_the_newest_other_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let sdir = dir.path().join("store");
    let store = new_store(&sdir).await;
    let cat = Catalog::open(&data, &store).await.unwrap();
    // Only a safety backup (labelled as restores have long labelled them):
    // no `latest`, and the error says where the safety backups are.
    let r1 = "20261201T100000Z-00000r01";
    let old_form = take_labelled_backup(
        &store,
        &day1(),
        &[("pinned", &format!("safety backup before restore {r1}"))],
    )
    .await;
    cat.catch_up(&store).await.unwrap();
    let e = cat.resolve("latest").await.unwrap_err();
    assert!(matches!(e, CatalogError::NotFound(_)), "{e}");
    assert!(e.to_string().contains("latest:safety"), "{e}");
    assert_eq!(
        cat.resolve("latest:safety").await.unwrap(),
        old_form.backup_id
    );

    let taken = take_backup(&store, &day1()).await;
    restore_event(&store, r1, &taken.backup_id, Some(&old_form.backup_id)).await;
    // The newer form: a `safety` label naming the restore.
    let r2 = "20261201T110000Z-00000r02";
    let new_form = take_labelled_backup(
        &store,
        &day2(),
        &[
            ("pinned", &format!("safety backup before restore {r2}")),
            ("safety", r2),
        ],
    )
    .await;
    // Known as a safety backup from the journal alone (its restore names
    // it), though its manifest has no label.
    let r3 = "20261201T120000Z-00000r03";
    let by_event = take_backup(&store, &day3()).await;
    restore_event(&store, r3, &taken.backup_id, Some(&by_event.backup_id)).await;
    // A pinned backup that is not a safety backup counts as any other.
    let pinned = take_labelled_backup(&store, &day3(), &[("pinned", "kept for the audit")]).await;
    let newest_safety = take_labelled_backup(
        &store,
        &day3(),
        &[(
            "pinned",
            "safety backup before restore 20261201T130000Z-00000r04",
        )],
    )
    .await;
    cat.catch_up(&store).await.unwrap();

    // `latest` and `latest:KIND`: the newest backup taken as such.
    assert_eq!(cat.resolve("latest").await.unwrap(), pinned.backup_id);
    assert_eq!(
        cat.resolve("latest:postgres_n8n").await.unwrap(),
        pinned.backup_id
    );
    assert_eq!(
        cat.resolve("latest:safety").await.unwrap(),
        newest_safety.backup_id
    );
    // A safety backup named by its id is still one to restore from.
    assert_eq!(
        cat.resolve(&new_form.backup_id).await.unwrap(),
        new_form.backup_id
    );

    let list = cat.list_backups(&BackupFilter::default()).await.unwrap();
    let marks: Vec<(&str, bool, Option<&str>)> = list
        .iter()
        .map(|b| (b.backup_id.as_str(), b.safety, b.safety_restore.as_deref()))
        .collect();
    assert_eq!(
        marks,
        [
            (old_form.backup_id.as_str(), true, Some(r1)),
            (taken.backup_id.as_str(), false, None),
            (new_form.backup_id.as_str(), true, Some(r2)),
            (by_event.backup_id.as_str(), true, Some(r3)),
            (pinned.backup_id.as_str(), false, None),
            (
                newest_safety.backup_id.as_str(),
                true,
                Some("20261201T130000Z-00000r04")
            ),
        ]
    );
    cat.close().await;
    drop(store);

    // Through the binary: marked in list (text and JSON), reachable as latest:safety.
    let json = ark_json(&data, &sdir, &["list"]);
    let flags: Vec<bool> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["safety"].as_bool().unwrap())
        .collect();
    assert_eq!(flags, [true, false, true, true, false, true]);
    let text = String::from_utf8(ark(&data, &sdir, &["list"]).stdout).unwrap();
    let line = |id: &str| {
        text.lines()
            .find(|l| l.starts_with(id))
            .unwrap()
            .to_string()
    };
    assert!(
        line(&new_form.backup_id).contains(&format!("safety backup before restore {r2}")),
        "{text}"
    );
    assert!(!line(&pinned.backup_id).contains("safety"), "{text}");
    let shown = ark_json(&data, &sdir, &["show", "latest:safety"]);
    assert_eq!(
        shown["backup"]["backup_id"],
        newest_safety.backup_id.as_str()
    );
    assert_eq!(shown["backup"]["safety"], true);
    let shown = ark_json(&data, &sdir, &["show", "latest"]);
    assert_eq!(shown["backup"]["backup_id"], pinned.backup_id.as_str());
    let text = String::from_utf8(ark(&data, &sdir, &["show", "latest:safety"]).stdout).unwrap();
    assert!(text.contains("safety backup before restore"), "{text}");
}

#[test]
fn repeating_a_restore_from_latest_restores_the_same_backup() {
    let pg = common::pg::PgCluster::start();
    pg.load_fixture("n8n");
    let at_backup = pg.table_checksums("n8n");
    let env = Ark::new().init(&[]);
    let backup = env.backup("postgres_n8n", &["--n8n-db", &pg.url("n8n"), "--no-verify"]);
    let backup = backup["backup_id"].as_str().unwrap().to_string();
    let restore_latest = || {
        ok_json(
            &env.cmd()
                .args(["--json", "restore", "database", "latest", "n8n"])
                .args(["--target-url", &pg.url("postgres"), "--replace", "--yes"])
                .output()
                .unwrap(),
        )
    };
    // n8n moves on; the operator restores latest.
    pg.psql(
        "n8n",
        "INSERT INTO tag_entity (id, name) VALUES ('tagAfterBackup1', 'after')",
    );
    let first = restore_latest();
    assert_eq!(first["backup_id"], backup.as_str());
    assert_eq!(pg.table_checksums("n8n"), at_backup);
    // And again after another change: latest is still the backup the
    // operator took, not the safety backup the first restore took.
    pg.psql(
        "n8n",
        "INSERT INTO tag_entity (id, name) VALUES ('tagAfterBackup2', 'again')",
    );
    let second = restore_latest();
    assert_eq!(second["backup_id"], backup.as_str());
    assert_eq!(pg.table_checksums("n8n"), at_backup);

    // The safety backups: labelled with the restore that took them, marked
    // in list, the newest reachable as latest:safety.
    let safety = second["safety_backup"].as_str().unwrap();
    let m = env.manifest_of(safety);
    assert_eq!(
        m.labels.get("safety").map(String::as_str),
        second["restore_id"].as_str()
    );
    let list = env.json(&["list"]);
    let marks: Vec<(&str, bool)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["backup_id"].as_str().unwrap(),
                b["safety"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        marks,
        [
            (backup.as_str(), false),
            (first["safety_backup"].as_str().unwrap(), true),
            (safety, true)
        ]
    );
    let shown = env.json(&["show", "latest:safety"]);
    assert_eq!(shown["backup"]["backup_id"], safety);
    assert_eq!(shown["backup"]["safety_restore"], second["restore_id"]);
}

// ---------------------------------------------------------------------------
// Names are data: control characters never reach the terminal

#[tokio::test]
async fn control_characters_in_names_are_escaped_in_text_output() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let sdir = dir.path().join("store");
    let store = new_store(&sdir).await;
    let evil = "Order \u{1b}[31msync\nINJECTED LINE\r\u{7}";
    let mut spec = day1();
    let orders = spec
        .workflows
        .iter_mut()
        .find(|w| w.id == "wfOrderSync0001")
        .unwrap();
    orders.name = evil.to_string();
    orders.tags = vec!["prod\u{1b}]0;title\u{7}", "shop"];
    spec.credentials[0].1 = "Shop\u{1b}[2J API";
    spec.tables.push(("public", "evil\ntable", 3));
    spec.configs
        .push(file("/opt/n8n/\u{1b}[1mbold.env", b"X=1\n", 0o600));
    let a = take_labelled_backup(&store, &spec, &[("note", "a\u{1b}[5mblink")]).await;
    journal::append(
        &store,
        Event::BackupFailed(BackupFailed {
            backup_id: "20991231T235959Z-0000fa11".into(),
            kind: "postgres_n8n".into(),
            stage: "dump".into(),
            message: "pg_dump: \u{1b}[31mdatabase \"n8n\u{1b}[0m\" does not exist".into(),
            duration_ms: 10,
            ..Default::default()
        }),
    )
    .await
    .unwrap();
    let b = take_backup(&store, &day2()).await;
    drop(store);

    let texts = [
        vec!["list"],
        vec!["show", &a.backup_id],
        vec!["diff", &a.backup_id, &b.backup_id],
        vec!["history", "wfOrderSync0001"],
    ]
    .map(|args| {
        let o = ark(&data, &sdir, &args);
        (args, String::from_utf8(o.stdout).unwrap())
    });
    for (args, text) in &texts {
        let bad: Vec<char> = text
            .chars()
            .filter(|c| (c.is_control() && *c != '\n') || *c == '\u{7f}')
            .collect();
        assert!(bad.is_empty(), "{args:?}: {bad:?} in\n{text}");
        assert!(
            !text.lines().any(|l| l.starts_with("INJECTED")),
            "{args:?}: {text}"
        );
    }
    let escaped_name = r"Order \x1b[31msync\nINJECTED LINE\r\x07";
    let (_, show) = &texts[1];
    for needle in [
        escaped_name,
        r"prod\x1b]0;title\x07",
        r"Shop\x1b[2J API",
        r"public.evil\ntable",
        r"/opt/n8n/\x1b[1mbold.env",
        r"note=a\x1b[5mblink",
    ] {
        assert!(show.contains(needle), "{needle}: {show}");
    }
    assert!(
        texts[0].1.contains(r"pg_dump: \x1b[31mdatabase"),
        "{}",
        texts[0].1
    );
    assert!(texts[2].1.contains(escaped_name), "{}", texts[2].1);
    assert!(texts[3].1.contains(escaped_name), "{}", texts[3].1);

    // JSON is unchanged: the names as they are.
    let shown = ark_json(&data, &sdir, &["show", &a.backup_id]);
    let names: Vec<&str> = shown["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&evil), "{names:?}");
}
