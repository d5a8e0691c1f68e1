use super::*;

#[test]
fn temporary_files_of_a_killed_restore_are_known_by_name() {
    assert_eq!(
        super::super::temporary_file_pid(".a1-Flow.json.ark-tmp-4242-0a1b2c3d"),
        Some(4242)
    );
    assert_eq!(super::super::temporary_file_pid("a1-Flow.json"), None);
    assert_eq!(
        super::super::temporary_file_pid(".a1-Flow.json.ark-tmp-x-0a1b2c3d"),
        None
    );
    assert_eq!(super::super::temporary_file_pid(".a.ark-tmp-12-zz"), None);
    let d = tempfile::tempdir().unwrap();
    // A process id that cannot run (above the kernel's limit).
    let dead = d.path().join(".w.json.ark-tmp-2147483646-0a1b2c3d");
    let mine = d
        .path()
        .join(format!(".w.json.ark-tmp-{}-0a1b2c3d", std::process::id()));
    let other = d.path().join("w.json");
    for p in [&dead, &mine, &other] {
        std::fs::write(p, b"x").unwrap();
    }
    assert_eq!(super::super::sweep_temporary_files(d.path()), 1);
    assert!(!dead.exists() && mine.exists() && other.exists());
}
use serde_json::{json, Value};

fn obj(v: Value) -> Object {
    Json::from(v).into_object().unwrap()
}

fn list(v: Vec<Value>) -> Vec<Json> {
    v.into_iter().map(Json::from).collect()
}

fn entry(id: &str, name: &str, tags: &[&str], archived: bool) -> WorkflowEntry {
    WorkflowEntry {
        id: id.into(),
        name: name.into(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        archived,
        item: format!("workflows/{id}.json"),
        ..Default::default()
    }
}

#[test]
fn templates_render_and_cut_to_n8n_length() {
    let ms = 1_795_000_000_000; // 2026-11-18T...
    let t = NameTemplate::default();
    assert_eq!(
        t.render("Flow", "id1", "B", ms),
        "Flow (restored 2026-11-18)"
    );
    let t = NameTemplate::parse("{{x}} {name}/{id}/{backup}/{date} {time}").unwrap();
    assert_eq!(
        t.render("Flow", "id1", "B1", ms),
        format!("{{x}} Flow/id1/B1/2026-11-18 {}", date_time(ms).1)
    );
    let long = "é".repeat(300);
    let r = NameTemplate::default().render(&long, "i", "b", ms);
    assert_eq!(r.chars().count(), MAX_NAME_CHARS);
    assert!(r.ends_with("… (restored 2026-11-18)"), "{r}");
    let r = NameTemplate::parse("{id}")
        .unwrap()
        .render("n", &"x".repeat(200), "b", ms);
    assert_eq!(r.chars().count(), MAX_NAME_CHARS);
    for bad in ["", "  ", "{nam}", "{name", "name}", "{date}{"] {
        assert!(NameTemplate::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn file_names_never_escape() {
    assert_eq!(file_name("abc", "Flow #1"), "abc-Flow_1.json");
    assert_eq!(file_name("../../etc", "passwd"), "etc-passwd.json");
    assert_eq!(file_name("..", ".."), "workflow.json");
    assert_eq!(file_name("", "日本語"), "workflow.json");
    assert_eq!(file_name("id", "/"), "id.json");
    for (id, name) in [
        ("a/b", "../x"),
        ("..", "/etc/passwd"),
        ("\0", "\n"),
        (".hidden", "."),
    ] {
        let f = file_name(id, name);
        assert!(
            !f.contains('/') && !f.starts_with('.') && f.ends_with(".json"),
            "{f}"
        );
        assert_eq!(f.matches('.').count(), 1, "{f}");
    }
    let ws = [
        entry("a", "x y", &[], false),
        entry("a", "x/y", &[], false),
        entry("a", "x_y", &[], false),
    ];
    let picked: Vec<Picked> = ws
        .iter()
        .map(|w| Picked {
            workflow: w,
            named: true,
        })
        .collect();
    assert_eq!(
        file_names(&picked),
        vec!["a-x_y.json", "a-x_y-2.json", "a-x_y-3.json"]
    );
}

#[test]
fn selection() {
    let ws = vec![
        entry("w1", "CRM data cleanup", &["crm"], false),
        entry("w2", "HR data cleanup", &["hr"], false),
        entry("w3", "CRM invoice", &["crm", "billing"], false),
        entry("w4", "Old CRM flow", &["crm"], true),
    ];
    let ids = |s: &Selection| -> Vec<String> {
        select(&ws, s, "B")
            .unwrap()
            .iter()
            .map(|p| p.workflow.id.clone())
            .collect()
    };
    let s = |f: fn(&mut Selection)| {
        let mut s = Selection::default();
        f(&mut s);
        s
    };
    assert_eq!(ids(&s(|s| s.all = true)), ["w1", "w2", "w3", "w4"]);
    assert_eq!(
        ids(&s(|s| s.name_contains = vec!["CLEANUP".into()])),
        ["w1", "w2"]
    );
    assert_eq!(ids(&s(|s| s.tags = vec!["crm".into()])), ["w1", "w3", "w4"]);
    assert_eq!(
        ids(&s(|s| {
            s.tags = vec!["crm".into()];
            s.name_contains = vec!["cleanup".into()];
        })),
        ["w1"]
    );
    assert_eq!(
        ids(&s(|s| {
            s.tags = vec!["billing".into()];
            s.workflows = vec!["HR data cleanup".into()];
        })),
        ["w2", "w3"]
    );
    assert_eq!(
        ids(&s(|s| s.workflows = vec!["w4".into(), "invoice".into()])),
        ["w3", "w4"]
    );
    // Ambiguous, unknown, empty, contradictory.
    for bad in [
        s(|s| s.workflows = vec!["cleanup".into()]),
        s(|s| s.workflows = vec!["nope".into()]),
        s(|_| {}),
        s(|s| {
            s.all = true;
            s.tags = vec!["crm".into()];
        }),
        s(|s| s.tags = vec!["none".into()]),
    ] {
        assert!(
            matches!(select(&ws, &bad, "B"), Err(RestoreError::Invalid(_))),
            "{bad:?}"
        );
    }
    let e = select(&ws, &s(|s| s.workflows = vec!["cleanup".into()]), "B").unwrap_err();
    assert!(
        e.to_string().contains("w1") && e.to_string().contains("w2"),
        "{e}"
    );
}

#[test]
fn post_bodies_hold_only_what_n8n_accepts() {
    let w = json!({
        "id": "w1", "name": "n", "active": true, "nodes": [{"name": "a"}], "connections": {},
        "settings": null, "staticData": null, "tags": [], "pinData": {}, "meta": null,
        "versionId": "v", "createdAt": "x", "updatedAt": "y", "isArchived": false,
    });
    let b = post_body(&obj(w), "new").unwrap();
    assert_eq!(
        Json::Object(b),
        Json::from(
            json!({"name": "new", "nodes": [{"name": "a"}], "connections": {}, "settings": {}})
        )
    );
    let w = json!({"id": "w", "nodes": [], "connections": {"a": 1}, "settings": {"x": 1}, "staticData": {"global": {}}});
    let b = post_body(&obj(w), "n").unwrap();
    assert_eq!(
        b.get("staticData").unwrap(),
        &Json::from(json!({"global": {}}))
    );
    assert!(b.keys().all(|k| POST_FIELDS.contains(&k.as_str())));
    assert!(post_body(&obj(json!({"id": "w"})), "n").is_err());
}

#[test]
fn rejections_are_classified() {
    assert_eq!(
        classify("request/body/settings must NOT have additional properties"),
        Rejection::SettingsKey
    );
    assert_eq!(
        classify("request/body/settings/saveDataSuccessExecution must be equal to one of the allowed values: all, none"),
        Rejection::SettingsValue("saveDataSuccessExecution".into())
    );
    for other in [
        "request/body/nodes/0 must NOT have additional properties",
        "request/body must NOT have additional properties",
        "request/body/id is read-only",
        "",
    ] {
        assert_eq!(classify(other), Rejection::Other, "{other}");
    }
    assert_eq!(
        trials(3),
        vec![vec![0], vec![1], vec![2], vec![0, 1], vec![0, 1, 2]]
    );
    assert!(trials(0).is_empty());
    let s = json!({"executionOrder": "v1", "binaryMode": "x", "availableInMCP": true, "timezone": "UTC"});
    let c: Vec<String> = settings_candidates(&obj(s))
        .into_iter()
        .map(|c| c.0)
        .collect();
    assert_eq!(c, ["binaryMode", "availableInMCP"]);
}

#[test]
fn credentials_resolve_as_n8n_does() {
    let t = TargetCredentials::new([
        (
            "c1".to_string(),
            "Billing".to_string(),
            "httpBasicAuth".to_string(),
        ),
        ("c2".to_string(), "Dup".to_string(), "githubApi".to_string()),
        ("c3".to_string(), "Dup".to_string(), "githubApi".to_string()),
    ]);
    let nodes = list(vec![
        json!({"name": "A", "credentials": {"httpBasicAuth": {"id": "c1", "name": "Old name"}}}),
        json!({"name": "B", "credentials": {"httpBasicAuth": {"id": "gone", "name": "Billing"}}}),
        json!({"name": "C", "credentials": {"githubApi": {"id": "gone2", "name": "Dup"}}}),
        json!({"name": "D", "credentials": {"githubApi": "Dup"}}),
        json!({"name": "E", "credentials": {"postgres": {"id": "c1", "name": "Billing"}}}),
    ]);
    let mut r = WorkflowResult::new(&entry("w", "n", &[], false), Outcome::Restored);
    check_with_db(&nodes, &t, &mut r);
    let missing: Vec<(&str, Vec<String>)> = r
        .missing_credentials
        .iter()
        .map(|m| (m.credential_type.as_str(), m.nodes.clone()))
        .collect();
    assert_eq!(
        missing,
        vec![
            ("githubApi", vec!["C".to_string()]),
            ("postgres", vec!["E".to_string()])
        ]
    );
    assert!(r.missing_credentials[0].reason.contains("cannot choose"));
    let remapped: Vec<(&str, &str)> = r
        .remapped_credentials
        .iter()
        .map(|m| (m.nodes[0].as_str(), m.target_id.as_str()))
        .collect();
    assert_eq!(remapped, vec![("B", "c1"), ("D", "c2")]);
}

#[test]
fn answers_tell_what_n8n_did() {
    let sent = list(vec![
        json!({"name": "A", "credentials": {"t": {"id": "x", "name": "X"}}}),
        json!({"name": "B", "credentials": {"t": {"id": "y", "name": "Y"}}}),
        json!({"name": "C", "credentials": {"t": "Z"}}),
    ]);
    let created = list(vec![
        json!({"name": "A", "credentials": {"t": {"id": "x", "name": "X"}}}),
        json!({"name": "B", "credentials": {"t": {"id": "y2", "name": "Y"}}}),
        json!({"name": "C", "credentials": {"t": {"id": null, "name": "Z"}}}),
    ]);
    let mut r = WorkflowResult::new(&entry("w", "n", &[], false), Outcome::Restored);
    check_with_answer(&sent, &created, &mut r);
    assert_eq!(r.unchecked_credentials.len(), 1);
    assert_eq!(r.unchecked_credentials[0].nodes, ["A"]);
    assert_eq!(r.remapped_credentials[0].target_id, "y2");
    assert_eq!(r.missing_credentials[0].name.as_deref(), Some("Z"));
}

#[test]
fn export_documents_follow_n8n_order() {
    let w = json!({"tags": [], "name": "n", "id": "i", "zeta": 1, "parentFolderId": null, "updatedAt": "u", "nodes": []});
    let doc = String::from_utf8(export_document(&obj(w.clone()))).unwrap();
    // The members in n8n's order, each printed as serde_json prints it.
    let v: Value = serde_json::from_str(&doc).unwrap();
    assert_eq!(v["nodes"], w["nodes"]);
    let keys: Vec<usize> = [
        "\"updatedAt\"",
        "\"id\"",
        "\"name\"",
        "\"nodes\"",
        "\"tags\"",
        "\"zeta\"",
    ]
    .iter()
    .map(|k| doc.find(k).unwrap())
    .collect();
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "{doc}");
    assert!(!doc.contains("parentFolderId") && doc.ends_with("}\n"));
}

#[test]
fn files_are_never_overwritten() {
    let d = tempfile::tempdir().unwrap();
    assert_eq!(
        write_new_file(d.path(), "a.json", b"one").unwrap(),
        Written::New
    );
    assert_eq!(
        write_new_file(d.path(), "a.json", b"one").unwrap(),
        Written::Identical
    );
    assert_eq!(
        write_new_file(d.path(), "a.json", b"two").unwrap(),
        Written::Differs
    );
    assert_eq!(std::fs::read(d.path().join("a.json")).unwrap(), b"one");
    std::os::unix::fs::symlink("/etc/hostname", d.path().join("l.json")).unwrap();
    assert_eq!(
        write_new_file(d.path(), "l.json", b"x").unwrap(),
        Written::Differs
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(d.path().join("a.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let names: Vec<String> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "no temporary file left: {names:?}");
}
