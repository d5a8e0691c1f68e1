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
    s.commit_with(BTreeMap::new(), Some(contents))
        .await
        .unwrap()
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
    assert_eq!(r.applied, last);
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    assert!(r.warnings[0].contains("torn tail"), "{:?}", r.warnings);
    assert_eq!(cat.resolve("latest").await.unwrap(), a.backup_id);
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
