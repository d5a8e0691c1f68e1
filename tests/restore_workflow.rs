//! `restore workflow` through the binary: a `flows` backup of the n8n fixture
//! (loaded into an ephemeral PostgreSQL) restored into a local server that
//! behaves like n8n 1.123's public API (tests/common/fake_n8n.rs), and to
//! files in the format of `n8n export:workflow`.
mod common;

use common::fake_n8n::{FakeN8n, API_KEY};
use common::pg::{fixture_path, PgCluster};
use common::{snapshot, stderr, Ark};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Output;

/// A store and a data directory for its catalog.
struct Env(Ark);

impl std::ops::Deref for Env {
    type Target = Ark;
    fn deref(&self) -> &Ark {
        &self.0
    }
}

impl Env {
    fn new() -> Env {
        Env(Ark::new().init(&[]))
    }
    /// `restore workflow` with the fake's key in the environment.
    fn restore(&self, args: &[&str]) -> Output {
        self.cmd()
            .env("ARK_N8N_API_KEY", API_KEY)
            .args(["restore", "workflow"])
            .args(args)
            .output()
            .unwrap()
    }
    /// `--json restore workflow ...`: its report (whatever the exit code).
    fn restore_json(&self, args: &[&str]) -> (Output, Value) {
        let o = self
            .cmd()
            .env("ARK_N8N_API_KEY", API_KEY)
            .args(["--json", "restore", "workflow"])
            .args(args)
            .output()
            .unwrap();
        let v = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
            panic!(
                "restore gave no JSON ({e}): {}\n{}",
                String::from_utf8_lossy(&o.stdout),
                stderr(&o)
            )
        });
        (o, v)
    }
    fn backup_flows(&self, db_url: &str) -> Value {
        self.backup("flows", &["--n8n-db", db_url])
    }
    /// The day (UTC) the latest backup finished, as the catalog says.
    fn backup_date(&self) -> String {
        let o = self.ark(&["--json", "list"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let list: Value = serde_json::from_slice(&o.stdout).unwrap();
        let ms = list.as_array().unwrap().last().unwrap()["finished_ms"]
            .as_i64()
            .unwrap();
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .format("%Y-%m-%d")
            .to_string()
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The fixture's workflow rows (row_to_json, UTC), by id.
fn workflow_rows(pg: &PgCluster, db: &str) -> BTreeMap<String, Value> {
    pg.psql(
        db,
        "SET TimeZone = 'UTC'; SELECT row_to_json(w)::text FROM workflow_entity w ORDER BY id",
    )
    .lines()
    .map(|l| {
        let v: Value = serde_json::from_str(l).unwrap();
        (v["id"].as_str().unwrap().to_string(), v)
    })
    .collect()
}

/// Each workflow's tag names.
fn workflow_tags(pg: &PgCluster, db: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for l in pg
        .psql(
            db,
            "SELECT wt.\"workflowId\" || E'\\t' || t.name FROM workflows_tags wt \
             JOIN tag_entity t ON t.id = wt.\"tagId\"",
        )
        .lines()
    {
        let (w, t) = l.split_once('\t').unwrap();
        out.entry(w.to_string()).or_default().insert(t.to_string());
    }
    out
}

/// (id, name, type) of every credential.
fn credentials(pg: &PgCluster, db: &str) -> Vec<(String, String, String)> {
    pg.psql(
        db,
        "SELECT id || E'\\t' || name || E'\\t' || type FROM credentials_entity ORDER BY id",
    )
    .lines()
    .map(|l| {
        let f: Vec<&str> = l.split('\t').collect();
        (f[0].to_string(), f[1].to_string(), f[2].to_string())
    })
    .collect()
}

/// The credential references of a workflow row: (node name, type, id, name).
fn refs(row: &Value) -> Vec<(String, String, String, String)> {
    let mut out = Vec::new();
    for n in row["nodes"].as_array().unwrap() {
        if let Some(c) = n["credentials"].as_object() {
            for (t, r) in c {
                out.push((
                    n["name"].as_str().unwrap().to_string(),
                    t.clone(),
                    r["id"].as_str().unwrap_or("").to_string(),
                    r["name"].as_str().unwrap_or("").to_string(),
                ));
            }
        }
    }
    out
}

/// A fixture database and a `flows` backup of it (after `prepare` ran on it).
fn setup(prepare: &str) -> (PgCluster, Env) {
    let pg = PgCluster::start();
    pg.load_fixture("n8n");
    if !prepare.is_empty() {
        pg.psql("n8n", prepare);
    }
    let env = Env::new();
    env.backup_flows(&pg.url("n8n"));
    (pg, env)
}

fn by_id(report: &Value) -> BTreeMap<String, Value> {
    report["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| (w["id"].as_str().unwrap().to_string(), w.clone()))
        .collect()
}

/// Every workflow of the fixture, created in n8n through its API, arrives
/// whole (nodes, connections, settings, staticData equal to the database's
/// rows), inactive, under the template's name; the requests hold exactly
/// what n8n accepts and nothing else is ever requested.
#[test]
fn every_workflow_round_trips_into_n8n() {
    let (pg, env) = setup("");
    let rows = workflow_rows(&pg, "n8n");
    let creds = credentials(&pg, "n8n");
    let date = env.backup_date();
    let n8n = FakeN8n::start();
    n8n.set_credentials(creds.clone());

    let (o, report) = env.restore_json(&["latest", "--all", "--to-n8n", "--n8n-url", &n8n.url]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(report["summary"]["restored"], rows.len());
    assert_eq!(report["summary"]["failed"], 0);
    assert_eq!(report["summary"]["skipped"], 0);
    assert_eq!(report["target"], format!("n8n:{}", n8n.url));

    // What was sent: one check, then one POST per workflow, nothing else.
    let reqs = n8n.requests();
    assert_eq!(reqs[0].method, "GET");
    assert_eq!(reqs[0].path, "/api/v1/workflows");
    assert_eq!(reqs[0].query.as_deref(), Some("limit=1"));
    assert!(reqs.iter().all(|r| r.key_ok));
    assert!(reqs[1..]
        .iter()
        .all(|r| r.method == "POST" && r.path == "/api/v1/workflows"));
    let posted = n8n.posted();
    assert_eq!(posted.len(), rows.len());
    let secrets: Vec<String> = pg
        .psql("n8n", "SELECT data FROM credentials_entity")
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(secrets.len(), creds.len());
    for body in &posted {
        let keys: BTreeSet<&str> = body
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        for k in &keys {
            assert!(
                ["name", "nodes", "connections", "settings", "staticData"].contains(k),
                "sent {k}"
            );
        }
        for k in ["name", "nodes", "connections", "settings"] {
            assert!(keys.contains(k), "{k} missing");
        }
        let text = body.to_string();
        assert!(!text.contains(API_KEY));
        for s in &secrets {
            assert!(
                !text.contains(&s[..40.min(s.len())]),
                "a credential's data was sent"
            );
        }
    }

    // What arrived: every workflow whole, inactive, named by the template.
    let stored = n8n.workflows();
    assert_eq!(stored.len(), rows.len());
    let results = by_id(&report);
    for (id, row) in &rows {
        let name = format!("{} (restored {date})", row["name"].as_str().unwrap());
        let got = stored
            .iter()
            .find(|w| w["name"] == Value::String(name.clone()))
            .unwrap_or_else(|| panic!("no workflow named {name:?} in n8n"));
        assert_eq!(got["nodes"], row["nodes"], "{id} nodes");
        assert_eq!(got["connections"], row["connections"], "{id} connections");
        assert_eq!(got["settings"], row["settings"], "{id} settings");
        assert_eq!(got["staticData"], row["staticData"], "{id} staticData");
        assert_eq!(got["active"], false);
        assert_ne!(got["id"], row["id"], "a new workflow, not the original");
        let r = &results[id];
        assert_eq!(r["outcome"], "restored");
        assert_eq!(r["new_id"], got["id"]);
        assert_eq!(r["new_name"], Value::String(name));
        // Every reference exists on the target (same credentials): n8n kept
        // them, which the API alone cannot tell from dangling ones.
        assert_eq!(r["missing_credentials"].as_array().unwrap().len(), 0);
        assert_eq!(r["remapped_credentials"].as_array().unwrap().len(), 0);
        let unchecked: usize = r["unchecked_credentials"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["nodes"].as_array().unwrap().len())
            .sum();
        assert_eq!(unchecked, refs(row).len(), "{id}");
    }
    assert_eq!(report["credentials_checked"], "api");

    // A name template, one workflow by a part of its name, text output.
    let o = env.restore(&[
        "latest",
        "Café orders",
        "--to-n8n",
        "--n8n-url",
        &n8n.url,
        "--name-template",
        "{name} [{date} from {id}]",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (id, row) = rows
        .iter()
        .find(|(_, r)| r["name"].as_str().unwrap().starts_with("Café orders"))
        .unwrap();
    let name = format!("{} [{date} from {id}]", row["name"].as_str().unwrap());
    let out = stdout(&o);
    assert!(out.contains("restored") && out.contains(&name), "{out}");
    assert!(out.contains("1 restored, 0 skipped, 0 failed"), "{out}");
    let got = n8n.workflows();
    let w = got
        .iter()
        .find(|w| w["name"] == Value::String(name.clone()))
        .unwrap();
    assert_eq!(w["nodes"], row["nodes"]);
    assert!(n8n
        .requests()
        .iter()
        .all(|r| r.method == "GET" || r.method == "POST"));

    // The history holds both restores, each workflow with its new id.
    let h = env.restore_history();
    assert_eq!(h.len(), 2, "{h:?}");
    assert_eq!(h[0]["what"], "workflow");
    assert_eq!(h[0]["result"], "ok");
    assert_eq!(h[0]["restored"], rows.len());
    assert_eq!(h[0]["target"], format!("n8n:{}", n8n.url));
    assert_eq!(h[0]["restore_id"], report["restore_id"]);
    for item in h[0]["items"].as_array().unwrap() {
        let id = item["name"]
            .as_str()
            .unwrap()
            .strip_prefix("workflow:")
            .unwrap();
        assert!(rows.contains_key(id));
        assert_eq!(item["outcome"], "restored");
        assert!(
            item["detail"]
                .as_str()
                .unwrap()
                .contains(results[id]["new_id"].as_str().unwrap()),
            "{item}"
        );
    }
    assert_eq!(h[1]["restored"], 1);
}

/// Files in the format of `n8n export:workflow`, the selection flags, names
/// that cannot escape the directory, and files that are never overwritten.
#[test]
fn files_for_import_and_selections() {
    // A name that tries to leave the directory; an archived workflow.
    let (pg, env) = setup(
        "UPDATE workflow_entity SET name = '../../../escape/evil' WHERE name = 'GitHub sync #037';
         UPDATE workflow_entity SET \"isArchived\" = true WHERE name = 'Inventory data cleanup #005';",
    );
    let rows = workflow_rows(&pg, "n8n");
    let archived = rows
        .iter()
        .find(|(_, r)| r["isArchived"] == true)
        .unwrap()
        .0
        .clone();
    let tags = workflow_tags(&pg, "n8n");
    let export: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture_path("cli-export-workflow.json")).unwrap(),
    )
    .unwrap();
    let out = env.path("out/files");

    let (o, report) = env.restore_json(&["latest", "--all", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(report["summary"]["restored"], rows.len() - 1);
    assert_eq!(report["summary"]["skipped"], 1, "the archived one");
    assert_eq!(report["target"], format!("dir:{}", out.display()));
    assert_eq!(report["credentials_checked"], "none");
    let files: Vec<PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(
        files.len(),
        rows.len() - 1,
        "one file per workflow, nothing else"
    );
    assert_eq!(
        std::fs::read_dir(env.path("out")).unwrap().count(),
        1,
        "nothing written beside the directory"
    );
    assert!(!env.path("escape").exists());
    let results = by_id(&report);
    for (id, row) in &rows {
        if *id == archived {
            assert_eq!(results[id]["outcome"], "skipped");
            assert!(results[id]["message"]
                .as_str()
                .unwrap()
                .contains("archived"));
            continue;
        }
        let file = PathBuf::from(results[id]["file"].as_str().unwrap());
        assert_eq!(file.parent().unwrap(), out);
        let name = file.file_name().unwrap().to_str().unwrap();
        assert!(
            name.starts_with(&format!("{id}-")) && name.ends_with(".json"),
            "{name}"
        );
        let doc: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        // The export's members, where the source has them.
        for (k, _) in export.as_object().unwrap() {
            if k == "shared" {
                continue; // projects of the source instance: never in a restore file
            }
            if row.get(k).is_some() || k == "tags" {
                assert!(doc.get(k).is_some(), "{id}: {k} missing from the file");
            }
        }
        assert!(doc.get("parentFolderId").is_none());
        for k in [
            "id",
            "name",
            "nodes",
            "connections",
            "settings",
            "staticData",
            "active",
            "versionId",
        ] {
            assert_eq!(doc[k], row[k], "{id} {k}");
        }
        let doc_tags: BTreeSet<String> = doc["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            doc_tags,
            tags.get(id).cloned().unwrap_or_default(),
            "{id} tags"
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    // Again: every file is there with the same bytes: skipped.
    let (o, again) = env.restore_json(&["latest", "--all", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(again["summary"]["skipped"], rows.len());
    assert_eq!(again["summary"]["restored"], 0);
    // Named, an archived workflow is restored.
    let (o, r) = env.restore_json(&["latest", &archived, "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(r["summary"]["restored"], 1);
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), rows.len());

    // A file that differs is never overwritten: that workflow fails.
    let id0 = rows.keys().find(|id| **id != archived).unwrap();
    let f0 = PathBuf::from(results[id0]["file"].as_str().unwrap());
    std::fs::write(&f0, b"edited by hand").unwrap();
    let (o, r) = env.restore_json(&["latest", id0, "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("1 of 1 workflows failed"),
        "{}",
        stderr(&o)
    );
    assert_eq!(r["summary"]["failed"], 1);
    assert!(r["workflows"][0]["message"]
        .as_str()
        .unwrap()
        .contains("not overwritten"));
    assert_eq!(std::fs::read(&f0).unwrap(), b"edited by hand");
    let h = env.restore_history();
    assert_eq!(h.last().unwrap()["result"], "partial");
    assert_eq!(h.last().unwrap()["failed"], 1);

    // Selections: --match, --tag, both (AND), and names added to filters.
    let select = |dir: &str, args: &[&str]| -> BTreeSet<String> {
        let d = env.path(dir);
        let mut a = vec!["latest"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["--out", d.to_str().unwrap()]);
        let (o, r) = env.restore_json(&a);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        let mut ids = BTreeSet::new();
        for (id, w) in by_id(&r) {
            if w["outcome"] == "restored" {
                ids.insert(id);
            } else {
                assert_eq!(
                    (id.as_str(), &w["outcome"]),
                    (archived.as_str(), &Value::from("skipped"))
                );
            }
        }
        assert_eq!(r["summary"]["restored"], ids.len());
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), ids.len());
        ids
    };
    let named = |pred: &dyn Fn(&str, &BTreeSet<String>) -> bool| -> BTreeSet<String> {
        rows.iter()
            .filter(|(id, _)| **id != archived)
            .filter(|(id, r)| {
                pred(
                    r["name"].as_str().unwrap(),
                    &tags.get(*id).cloned().unwrap_or_default(),
                )
            })
            .map(|(id, _)| id.clone())
            .collect()
    };
    let cleanup = named(&|n, _| n.to_lowercase().contains("cleanup"));
    assert!(cleanup.len() >= 3);
    assert_eq!(select("m", &["--match", "CLEANUP"]), cleanup);
    let tag = tags.values().flatten().next().unwrap().clone();
    let tagged = named(&|_, t| t.contains(&tag));
    assert!(!tagged.is_empty() && tagged.len() < rows.len());
    assert_eq!(select("t", &["--tag", &tag]), tagged);
    let both = named(&|n, t| t.contains(&tag) && n.to_lowercase().contains("cleanup"));
    assert_eq!(select("mt", &["--tag", &tag, "--match", "cleanup"]), both);
    let mut plus = cleanup.clone();
    plus.insert(id0.clone());
    let mut by_name = cleanup.clone();
    by_name.insert(
        rows.iter()
            .find(|(_, r)| r["name"] == "O'Brien's \"quoted\" flow")
            .unwrap()
            .0
            .clone(),
    );
    assert_eq!(select("p", &["--match", "cleanup", id0]), plus);
    assert_eq!(
        select("q", &["--match", "cleanup", "O'Brien's \"quoted\" flow"]),
        by_name
    );
}

/// References to credentials the target lacks are reported: against the
/// target's database, and from n8n's answers alone.
#[test]
fn credential_references_are_checked() {
    let pg = PgCluster::start();
    pg.load_fixture("n8n");
    pg.clone_fixture("target");
    // The target lost the GitHub credential, and has the billing one under
    // another id (as after re-creating it by hand).
    pg.psql(
        "target",
        "DELETE FROM credentials_entity WHERE name = 'ACC GitHub bot';
         DELETE FROM credentials_entity WHERE name = 'ACC Billing API (basic)';
         INSERT INTO credentials_entity (name, data, type, id)
              VALUES ('ACC Billing API (basic)', 'U2FsdGVkX1+x', 'httpBasicAuth', 'NewBillingId0001');",
    );
    let env = Env::new();
    env.backup_flows(&pg.url("n8n"));
    let rows = workflow_rows(&pg, "n8n");
    let n8n = FakeN8n::start();
    n8n.set_credentials(credentials(&pg, "target"));
    let uses = |ty: &str| -> BTreeMap<String, BTreeSet<String>> {
        rows.iter()
            .filter_map(|(id, r)| {
                let nodes: BTreeSet<String> = refs(r)
                    .into_iter()
                    .filter(|x| x.1 == ty)
                    .map(|x| x.0)
                    .collect();
                (!nodes.is_empty()).then(|| (id.clone(), nodes))
            })
            .collect()
    };
    let github = uses("githubApi");
    let billing = uses("httpBasicAuth");
    assert!(!github.is_empty() && !billing.is_empty());
    let nodes_of = |list: &Value, ty: &str| -> BTreeSet<String> {
        list.as_array()
            .unwrap()
            .iter()
            .filter(|u| u["credential_type"] == ty)
            .flat_map(|u| {
                u["nodes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|n| n.as_str().unwrap().to_string())
            })
            .collect()
    };

    // With the target's database.
    let (o, report) = env.restore_json(&[
        "latest",
        "--all",
        "--to-n8n",
        "--n8n-url",
        &n8n.url,
        "--n8n-db",
        &pg.url("target"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(report["credentials_checked"], "database");
    for (id, r) in by_id(&report) {
        assert_eq!(
            nodes_of(&r["missing_credentials"], "githubApi"),
            github.get(&id).cloned().unwrap_or_default(),
            "{id}"
        );
        assert_eq!(
            r["missing_credentials"].as_array().unwrap().len(),
            github.contains_key(&id) as usize
        );
        let remapped = r["remapped_credentials"].as_array().unwrap();
        assert_eq!(remapped.len(), billing.contains_key(&id) as usize, "{id}");
        if let Some(m) = remapped.first() {
            assert_eq!(m["target_id"], "NewBillingId0001");
            assert_eq!(m["credential_type"], "httpBasicAuth");
        }
        assert!(r["unchecked_credentials"].as_array().unwrap().is_empty());
    }
    // n8n did what the check said: billing references now point at the new id.
    for w in n8n.workflows() {
        for n in w["nodes"].as_array().unwrap() {
            if let Some(c) = n["credentials"].get("httpBasicAuth") {
                assert_eq!(c["id"], "NewBillingId0001");
            }
        }
    }
    // The text says which.
    let (gid, _) = github.iter().next().unwrap();
    let o = env.restore(&[
        "latest",
        gid,
        "--to-n8n",
        "--n8n-url",
        &n8n.url,
        "--n8n-db",
        &pg.url("target"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("missing credential githubApi \"ACC GitHub bot\""),
        "{text}"
    );
    let h = env.restore_history();
    assert!(
        h.last().unwrap()["items"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("credentials missing on the target: githubApi \"ACC GitHub bot\""),
        "{h:?}"
    );

    // n8n's API alone: a changed id shows the remap, the rest is unchecked,
    // and the report says how to check it.
    let (o, report) = env.restore_json(&["latest", "--all", "--to-n8n", "--n8n-url", &n8n.url]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(report["credentials_checked"], "api");
    assert!(report["warnings"].to_string().contains("--n8n-db"));
    for (id, r) in by_id(&report) {
        assert!(r["missing_credentials"].as_array().unwrap().is_empty());
        assert_eq!(
            nodes_of(&r["remapped_credentials"], "httpBasicAuth"),
            billing.get(&id).cloned().unwrap_or_default()
        );
        assert_eq!(
            nodes_of(&r["unchecked_credentials"], "githubApi"),
            github.get(&id).cloned().unwrap_or_default()
        );
    }

    // A database that cannot be reached: said, and the API's answers used.
    let closed = common::pg::free_port();
    let (o, report) = env.restore_json(&[
        "latest",
        gid,
        "--to-n8n",
        "--n8n-url",
        &n8n.url,
        "--n8n-db",
        &format!("postgres://postgres@127.0.0.1:{closed}/n8n"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(report["credentials_checked"], "api");
    assert!(
        report["warnings"]
            .to_string()
            .contains("could not be checked"),
        "{report}"
    );
}

/// A member the target refuses: dropped and retried where that is safe (and
/// said), reported failed with n8n's message where it is not, while the
/// other workflows go on.
#[test]
fn refused_members_are_dropped_only_when_safe() {
    let (pg, env) = setup(
        "UPDATE workflow_entity SET settings = (settings::jsonb || '{\"binaryMode\": \"separate\"}')::json
           WHERE name = 'HR data cleanup #007';
         UPDATE workflow_entity SET settings = (settings::jsonb || '{\"saveDataSuccessExecution\": \"DEFAULT\"}')::json
           WHERE name = 'GitHub data cleanup #008';",
    );
    let rows = workflow_rows(&pg, "n8n");
    let id_of = |name: &str| -> String {
        rows.iter()
            .find(|(_, r)| r["name"] == name)
            .map(|(id, _)| id.clone())
            .unwrap()
    };
    let (a, b) = (
        id_of("HR data cleanup #007"),
        id_of("GitHub data cleanup #008"),
    );
    let without = |id: &str, key: &str| -> Value {
        let mut s = rows[id]["settings"].clone();
        s.as_object_mut().unwrap().remove(key);
        s
    };

    // n8n 1.123 does not know binaryMode, nor the value DEFAULT: both safe.
    let n8n = FakeN8n::start();
    let o = env.restore(&["latest", &a, &b, "--to-n8n", "--n8n-url", &n8n.url]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("dropped settings.binaryMode"), "{text}");
    assert!(
        text.contains("dropped settings.saveDataSuccessExecution"),
        "{text}"
    );
    assert!(
        text.contains("request/body/settings must NOT have additional properties"),
        "{text}"
    );
    let posted = n8n.posted();
    assert_eq!(posted.len(), 4, "one retry each");
    let settings_sent: Vec<&Value> = posted.iter().map(|p| &p["settings"]).collect();
    assert!(settings_sent.contains(&&rows[&a]["settings"]));
    assert!(settings_sent.contains(&&without(&a, "binaryMode")));
    assert!(settings_sent.contains(&&without(&b, "saveDataSuccessExecution")));
    let stored = n8n.workflows();
    assert_eq!(stored.len(), 2);
    for w in &stored {
        let id = if w["name"].as_str().unwrap().starts_with("HR") {
            &a
        } else {
            &b
        };
        let key = if id == &a {
            "binaryMode"
        } else {
            "saveDataSuccessExecution"
        };
        assert_eq!(w["settings"], without(id, key));
        assert_eq!(w["nodes"], rows[id]["nodes"]);
    }

    // An older n8n: no availableInMCP (safe to drop), no webhookId on nodes
    // (not safe: it is the webhook's address).
    let old = FakeN8n::start();
    old.reject_settings_key("availableInMCP");
    old.reject_node_key("webhookId");
    let with_webhooks: BTreeSet<String> = rows
        .iter()
        .filter(|(_, r)| {
            r["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n.get("webhookId").is_some())
        })
        .map(|(id, _)| id.clone())
        .collect();
    assert!(!with_webhooks.is_empty() && with_webhooks.len() < rows.len());
    let (o, report) = env.restore_json(&["latest", "--all", "--to-n8n", "--n8n-url", &old.url]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "{} of {} workflows failed",
            with_webhooks.len(),
            rows.len()
        )),
        "{}",
        stderr(&o)
    );
    assert_eq!(report["summary"]["failed"], with_webhooks.len());
    assert_eq!(
        report["summary"]["restored"],
        rows.len() - with_webhooks.len()
    );
    for (id, r) in by_id(&report) {
        if with_webhooks.contains(&id) {
            assert_eq!(r["outcome"], "failed");
            let m = r["message"].as_str().unwrap();
            assert!(
                m.contains("request/body/nodes/")
                    && m.contains("must NOT have additional properties"),
                "{m}"
            );
            assert!(m.contains("(node ") && m.contains("--out"), "{m}");
        } else {
            assert_eq!(r["outcome"], "restored", "{r}");
            let dropped: Vec<&str> = r["dropped"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["field"].as_str().unwrap())
                .collect();
            assert!(dropped.contains(&"settings.availableInMCP"), "{r}");
        }
    }
    assert_eq!(old.workflows().len(), rows.len() - with_webhooks.len());
    for w in old.workflows() {
        assert!(w["settings"].get("availableInMCP").is_none());
    }
    let h = env.restore_history();
    let last = h.last().unwrap();
    assert_eq!(last["result"], "partial");
    assert_eq!(last["failed"], with_webhooks.len());

    // A setting that changes how the workflow runs is never dropped.
    let strict = FakeN8n::start();
    strict.reject_settings_key("timezone");
    let with_tz = rows
        .iter()
        .find(|(_, r)| r["settings"].get("timezone").is_some())
        .unwrap()
        .0;
    let no_tz = rows
        .iter()
        .find(|(_, r)| r["settings"].get("timezone").is_none())
        .unwrap()
        .0;
    let (o, report) = env.restore_json(&[
        "latest",
        with_tz,
        no_tz,
        "--to-n8n",
        "--n8n-url",
        &strict.url,
    ]);
    assert_eq!(o.status.code(), Some(1));
    let r = by_id(&report);
    assert_eq!(r[no_tz.as_str()]["outcome"], "restored");
    let m = r[with_tz.as_str()]["message"].as_str().unwrap();
    assert!(m.contains("timezone") && m.contains("--out"), "{m}");
    assert_eq!(strict.workflows().len(), 1);
    assert!(strict.workflows()[0]["settings"].get("timezone").is_none());
}

/// An n8n that does not answer or refuses the key: said plainly with --out
/// suggested, nothing sent, RestoreFailed recorded. Bad input: a clear error
/// and nothing changed (no event, no file).
#[test]
fn unusable_targets_and_bad_input() {
    let (_pg, env) = setup("");

    // Nothing listens.
    let closed = format!("http://127.0.0.1:{}", common::pg::free_port());
    let o = env.restore(&["latest", "--all", "--to-n8n", "--n8n-url", &closed]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("does not answer") && e.contains("--out DIR"),
        "{e}"
    );
    let error: Vec<&str> = e.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(error.len(), 1, "{e}");
    assert!(
        error[0].contains("Nothing was sent") && error[0].contains("--out DIR"),
        "{e}"
    );

    // A wrong key: one check request, no workflow sent, the key never shown.
    let n8n = FakeN8n::start_with_key("the-right-key");
    let o = env.restore(&["latest", "--all", "--to-n8n", "--n8n-url", &n8n.url]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("refused the API key") && e.contains("--out"),
        "{e}"
    );
    assert!(!e.contains(API_KEY));
    let reqs = n8n.requests();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert_eq!((reqs[0].method.as_str(), reqs[0].key_ok), ("GET", false));
    assert!(n8n.workflows().is_empty());

    let h = env.restore_history();
    assert_eq!(h.len(), 2);
    for r in &h {
        assert_eq!(r["result"], "failed");
        assert_eq!(r["failed_stage"], "check");
        assert!(r["message"].as_str().unwrap().contains("--out"));
    }
    assert_eq!(h[1]["target"], format!("n8n:{}", n8n.url));

    // Bad input changes nothing: not the store, not the history, no files.
    let before = snapshot(&env.store());
    let out = env.path("never");
    let file = env.path("a-file");
    std::fs::write(&file, b"x").unwrap();
    let outs = out.to_str().unwrap();
    for (args, code, says) in [
        (vec!["latest", "--all"], 2, "--out DIR"),
        (
            vec!["latest", "--all", "--out", outs, "--to-n8n"],
            2,
            "not both",
        ),
        (vec!["latest", "--all", "x", "--out", outs], 2, "--all"),
        (vec!["latest", "--out", outs], 2, "which workflows"),
        (
            vec!["latest", "--all", "--out", file.to_str().unwrap()],
            2,
            "not a directory",
        ),
        (vec!["latest", "--all", "--to-n8n"], 2, "not configured"),
        (
            vec![
                "latest",
                "--all",
                "--to-n8n",
                "--n8n-url",
                &n8n.url,
                "--name-template",
                "{nme}",
            ],
            2,
            "unknown placeholder {nme}",
        ),
        (
            vec![
                "latest",
                "--all",
                "--out",
                outs,
                "--name-template",
                "{name}",
            ],
            2,
            "--to-n8n",
        ),
        (
            vec![
                "latest",
                "--all",
                "--out",
                outs,
                "--n8n-db",
                "postgres://u:secretpw@127.0.0.1/n8n",
            ],
            2,
            "process list",
        ),
        (
            vec!["nosuchbackup", "--all", "--out", outs],
            1,
            "nosuchbackup",
        ),
    ] {
        let o = env.restore(&args);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {e}");
        assert!(e.contains(says), "{args:?}: {e}");
        assert_eq!(e.trim().lines().count(), 1, "{args:?}: one line: {e}");
        assert!(!e.contains("secretpw"));
        assert_eq!(stdout(&o), "", "{args:?}");
    }
    assert_eq!(snapshot(&env.store()), before, "the store changed");
    assert_eq!(env.restore_history().len(), 2);
    assert!(!out.exists());
    assert_eq!(std::fs::read(&file).unwrap(), b"x");
    assert!(n8n.requests().len() == 1, "nothing more was sent");

    // A selection the backup has nothing for: a restore that began (the
    // store is open, the backup found), so it ends with RestoreFailed, and
    // it is refused before any header is printed.
    for (args, says) in [
        (
            vec!["latest", "no such workflow", "--out", outs],
            "has no workflow \"no such workflow\"",
        ),
        (
            vec!["latest", "cleanup", "--out", outs],
            "workflows of backup",
        ),
        (
            vec!["latest", "--match", "zzz-none", "--out", outs],
            "no workflow of backup",
        ),
    ] {
        let o = env.restore(&args);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {e}");
        assert!(e.contains(says), "{args:?}: {e}");
        assert_eq!(e.trim().lines().count(), 1, "{args:?}: one line: {e}");
        assert_eq!(stdout(&o), "", "{args:?}: nothing before the error");
        let h = env.restore_history();
        let last = h.last().unwrap();
        assert_eq!(last["result"], "failed", "{args:?}");
        assert_eq!(last["what"], "workflow");
        assert_eq!(last["failed_stage"], "check");
        assert!(last["message"].as_str().unwrap().contains(says), "{last}");
    }
    assert_eq!(env.restore_history().len(), 5);
    assert!(!out.exists());

    // The key from ARK_N8N_API_KEY_FILE, or URL and key file from the config.
    let key_file = env.path("n8n-key");
    std::fs::write(&key_file, "the-right-key\n").unwrap();
    let o = env
        .cmd()
        .env("ARK_N8N_API_KEY_FILE", &key_file)
        .args([
            "restore",
            "workflow",
            "latest",
            "Café",
            "--to-n8n",
            "--n8n-url",
            &n8n.url,
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let config = env.path("ark.toml");
    std::fs::write(
        &config,
        format!(
            "[n8n]\napi_url = \"{}\"\napi_key_file = \"{}\"\n",
            n8n.url,
            key_file.display()
        ),
    )
    .unwrap();
    let o = env
        .cmd()
        .arg("--config")
        .arg(&config)
        .args(["restore", "workflow", "latest", "Café", "--to-n8n"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(n8n.posted().len(), 2);
    assert!(n8n.requests()[1..].iter().all(|r| r.key_ok));
}

/// The fake answers `POST /api/v1/workflows` as the real n8n 1.123 did in
/// tests/fixtures/api-post-probe.tsv (every row of it), `GET
/// /api/v1/credentials` as in api-get-probe.txt, and refuses a wrong key.
#[test]
fn the_fake_answers_as_n8n_1_123_did() {
    let get: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture_path("api-workflow-get.json")).unwrap(),
    )
    .unwrap();
    let mut base = serde_json::Map::new();
    for k in ["name", "nodes", "connections", "settings"] {
        base.insert(k.into(), get[k].clone());
    }
    let with = |k: &str, v: Value| -> Value {
        let mut b = base.clone();
        b.insert(k.into(), v);
        Value::Object(b)
    };
    let n8n = FakeN8n::start();
    // The credentials of the recorded instance (ids as in the GET body).
    n8n.set_credentials(vec![
        (
            "3NBe9u3Kr3D4QXsV".into(),
            "ACC Billing API (basic)".into(),
            "httpBasicAuth".into(),
        ),
        (
            "HZ3jIjVvnGTs1gHS".into(),
            "ACC Analytics key (query)".into(),
            "httpQueryAuth".into(),
        ),
    ]);
    let variant = |name: &str| -> Value {
        match name {
            "base {name,nodes,connections,settings}" | "duplicate name (same as existing)" => {
                Value::Object(base.clone())
            }
            "missing settings" => {
                let mut b = base.clone();
                b.remove("settings");
                Value::Object(b)
            }
            "+ id" => with("id", get["id"].clone()),
            "+ active:false" => with("active", Value::Bool(false)),
            "+ active:true" => with("active", Value::Bool(true)),
            "+ tags [{id,name}]" => with("tags", serde_json::json!([{"id": "x", "name": "crm"}])),
            "+ tags [\"name\"]" => with("tags", serde_json::json!(["crm"])),
            "+ createdAt" => with("createdAt", get["createdAt"].clone()),
            "+ updatedAt" => with("updatedAt", get["updatedAt"].clone()),
            "+ versionId" => with("versionId", get["versionId"].clone()),
            "+ staticData object" => with(
                "staticData",
                serde_json::json!({"node:Schedule Trigger": {"recurrenceRules": []}, "global": {"lastId": 7}}),
            ),
            "+ staticData JSON string" => with(
                "staticData",
                Value::String("{\"global\":{\"lastId\":8}}".into()),
            ),
            "+ staticData null" => with("staticData", Value::Null),
            "+ meta" => with(
                "meta",
                serde_json::json!({"templateCredsSetupCompleted": true}),
            ),
            "+ pinData" => with("pinData", serde_json::json!({})),
            "+ isArchived" => with("isArchived", Value::Bool(false)),
            "+ description" => with("description", Value::String("d".into())),
            "+ triggerCount" => with("triggerCount", serde_json::json!(0)),
            "+ shared (as returned by GET)" => with("shared", get["shared"].clone()),
            "+ activeVersion (as returned by GET)" => {
                with("activeVersion", get["activeVersion"].clone())
            }
            "+ parentFolderId" => with("parentFolderId", Value::Null),
            "settings + unknown key (binaryMode)" => {
                let mut s = get["settings"].clone();
                s["binaryMode"] = Value::String("separate".into());
                with("settings", s)
            }
            "settings saveDataSuccessExecution=DEFAULT" => {
                let mut s = get["settings"].clone();
                s["saveDataSuccessExecution"] = Value::String("DEFAULT".into());
                with("settings", s)
            }
            "node + unknown key (color)" => {
                let mut n = get["nodes"].clone();
                n[0]["color"] = Value::String("#ff0000".into());
                with("nodes", n)
            }
            "node credential id unknown, name known (cred remap)" => {
                let mut n = get["nodes"].clone();
                for node in n.as_array_mut().unwrap() {
                    if let Some(c) = node.get_mut("credentials").and_then(Value::as_object_mut) {
                        for r in c.values_mut() {
                            r["id"] = Value::String("doesNotExist1".into());
                        }
                    }
                }
                with("nodes", n)
            }
            "node credential id+name unknown (cred remap)" => {
                // One node with a reference to nothing; the others without any.
                let mut n = get["nodes"].clone();
                let mut first = true;
                for node in n.as_array_mut().unwrap() {
                    let o = node.as_object_mut().unwrap();
                    if let Some(Value::Object(c)) = o.get_mut("credentials") {
                        if first {
                            for r in c.values_mut() {
                                *r = serde_json::json!({"id": "doesNotExist2", "name": "No such credential"});
                            }
                            first = false;
                        } else {
                            o.remove("credentials");
                        }
                    }
                }
                with("nodes", n)
            }
            "full GET body as-is" => get.clone(),
            "GET body stripped to {name,nodes,connections,settings,staticData}" => {
                with("staticData", get["staticData"].clone())
            }
            other => panic!("a probe row this test does not know: {other:?}"),
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let post = |body: &Value, key: &str| -> (u16, Value) {
        rt.block_on(async {
            let r = client
                .post(format!("{}/api/v1/workflows", n8n.url))
                .header("X-N8N-API-KEY", key)
                .json(body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        })
    };
    let probe = std::fs::read_to_string(fixture_path("api-post-probe.tsv")).unwrap();
    let mut rows = 0;
    for line in probe.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        if f[0] != "POST /workflows" {
            continue;
        }
        rows += 1;
        let (status, answer) = post(&variant(f[1]), API_KEY);
        assert_eq!(status.to_string(), f[2], "{}: {answer}", f[1]);
        if status == 400 {
            assert_eq!(answer["message"], f[3].trim(), "{}", f[1]);
            continue;
        }
        assert_eq!(answer["active"], false, "{}", f[1]);
        let creds: Vec<&Value> = answer["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|n| n["credentials"].as_object())
            .flat_map(|c| c.values())
            .collect();
        if let Some(now) = f[3].split("node credentials now: ").nth(1) {
            let want: Vec<Value> = serde_json::from_str(now).unwrap();
            assert_eq!(
                creds.into_iter().cloned().collect::<Vec<_>>(),
                want,
                "{}",
                f[1]
            );
        }
        if let Some(sd) = f[3].split("staticData=").nth(1) {
            assert_eq!(
                answer["staticData"],
                serde_json::from_str::<Value>(sd).unwrap()
            );
        }
    }
    assert_eq!(rows, 29, "every POST /workflows row of the probe");
    let (status, answer) = post(&Value::Object(base.clone()), "wrong key");
    assert_eq!(
        (status, &answer["message"]),
        (401, &Value::from("unauthorized"))
    );
    let (status, answer) = rt.block_on(async {
        let r = client
            .get(format!("{}/api/v1/credentials", n8n.url))
            .header("X-N8N-API-KEY", API_KEY)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    });
    assert_eq!(
        (status, answer),
        (
            405,
            serde_json::json!({"message": "GET method not allowed"})
        )
    );
}
