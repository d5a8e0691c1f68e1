//! One damaged journal record loses one event, never the store: through the
//! binary, as an operator meets it. Four completed backups, one bit flipped
//! in an old record (the completion of the first backup): a catalog rebuilt
//! on a new machine still shows, restores and verifies every backup; on the
//! original host `check` names the record and the backup it affects, backups
//! go on and warn on every run, and `repair journal` (a dry run first)
//! records what the manifests prove and acknowledges the damage, after
//! which `check` passes and a rebuilt catalog shows everything, warning-free.
mod common;

use common::{ok_json, stderr, Ark};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn record(ark: &Ark, seq: u64) -> PathBuf {
    ark.store().join("journal").join(format!("{seq:020}"))
}

fn flip_bit(path: &Path) {
    let mut b = std::fs::read(path).unwrap();
    let k = b.len() / 2;
    b[k] ^= 0x10;
    std::fs::write(path, b).unwrap();
}

/// A server-like config tree whose `.env` changes with `day`.
fn config_tree(ark: &Ark, day: u32) -> PathBuf {
    let dir = ark.path("server");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(".env"),
        format!("N8N_HOST=n8n.example.com\nGENERIC_TIMEZONE=Europe/Berlin\n# day {day}\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("docker-compose.yaml"),
        "services:\n  n8n:\n    image: n8nio/n8n\n    env_file: .env\n",
    )
    .unwrap();
    dir
}

fn back_up(ark: &Ark, day: u32) -> (String, std::process::Output) {
    let dir = config_tree(ark, day);
    let o = ark.backup_output(
        "n8n_config",
        &["--no-verify", "--config-path", dir.to_str().unwrap()],
    );
    let v = ok_json(&o);
    (v["backup_id"].as_str().unwrap().to_string(), o)
}

fn list(ark: &Ark, data: &Path) -> (Vec<Value>, String) {
    let o = ark.cmd_in(data).args(["--json", "list"]).output().unwrap();
    let v = ok_json(&o);
    (v.as_array().unwrap().clone(), stderr(&o))
}

fn status_of<'a>(list: &'a [Value], id: &str) -> &'a Value {
    list.iter()
        .find(|b| b["backup_id"] == id)
        .unwrap_or_else(|| panic!("backup {id} is not listed: {list:?}"))
}

#[test]
fn one_damaged_record_loses_one_event_not_the_store() {
    let ark = Ark::new().init(&[]);
    let mut ids = Vec::new();
    for day in 1..=4 {
        ids.push(back_up(&ark, day).0);
    }
    // Record 1 initialised the store; each backup wrote a start and a
    // completion: record 3 is the first backup's completion.
    assert_eq!(ark.journal_len(), 9);
    flip_bit(&record(&ark, 3));

    // A new machine: a catalog rebuilt from the store alone still shows every
    // backup completed, the first one from its intact manifest.
    let fresh = ark.path("fresh-data");
    let (l, err) = list(&ark, &fresh);
    assert_eq!(l.len(), 4, "{l:?}");
    for id in &ids {
        assert_eq!(status_of(&l, id)["status"], "completed", "{l:?}");
    }
    let note = status_of(&l, &ids[0])["note"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(note.contains("recovered from its manifest"), "{note}");
    assert!(
        err.contains("journal is damaged") && err.contains("record 3"),
        "{err}"
    );
    assert!(err.contains("repair journal"), "{err}");
    // ...and it restores and verifies like the others.
    let root = ark.path("restored");
    std::fs::create_dir_all(&root).unwrap();
    let o = ark
        .cmd_in(&fresh)
        .args([
            "--json",
            "restore",
            "config",
            &ids[0],
            "--root",
            root.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let r = ok_json(&o);
    assert_eq!(r["result"], "ok", "{r}");
    let server = ark.path("server");
    let restored = root.join(server.strip_prefix("/").unwrap()).join(".env");
    assert!(
        std::fs::read_to_string(&restored)
            .unwrap()
            .contains("# day 1"),
        "the first backup's .env comes back"
    );
    let o = ark
        .cmd_in(&fresh)
        .args(["--json", "verify", &ids[0], "--level", "data"])
        .output()
        .unwrap();
    let v = ok_json(&o);
    assert_eq!(
        (v["passed"].as_u64(), v["failed"].as_u64()),
        (Some(1), Some(0)),
        "{v}"
    );

    // The original host: check names the record and the backup it held.
    let o = ark.ark(&["--json", "check"]);
    assert!(!o.status.success());
    let c: Value = serde_json::from_slice(&o.stdout).unwrap();
    let e = c["errors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "journal")
        .unwrap_or_else(|| panic!("{c}"))
        .clone();
    let msg = e["message"].as_str().unwrap();
    assert!(msg.contains("record 3 is damaged"), "{msg}");
    assert!(msg.contains(&ids[0]) && msg.contains("restorable"), "{msg}");
    assert!(msg.contains("repair journal"), "{msg}");
    assert_eq!(e["backups"], serde_json::json!([ids[0]]));

    // Backups go on, and warn on every run until the journal is repaired.
    for day in 5..=6 {
        let (_, o) = back_up(&ark, day);
        let err = stderr(&o);
        assert!(err.contains("journal is damaged"), "day {day}: {err}");
    }

    // The repair: a dry run first, which changes nothing.
    let before = common::snapshot(&ark.store());
    let o = ark.ark(&["repair", "journal"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        out.contains(&ids[0]) && out.contains("from its intact manifest"),
        "{out}"
    );
    assert!(out.contains("nothing was changed"), "{out}");
    assert_eq!(
        common::snapshot(&ark.store()),
        before,
        "a dry run changes nothing"
    );
    let o = ark.ark(&["--json", "repair", "journal", "--yes"]);
    let rep = ok_json(&o);
    let appended = rep["repair"]["appended"].as_array().unwrap();
    assert_eq!(
        appended.len(),
        2,
        "one recovered completion and the acknowledgement: {rep}"
    );
    // The damaged record is still there, unchanged: nothing is rewritten.
    assert!(record(&ark, 3).exists());
    let o = ark.ark(&["check"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(out.contains("repaired: record 3 is damaged"), "{out}");

    // A catalog rebuilt after the repair: every backup, no warning; the
    // first one's completion is the repair's record.
    let again = ark.path("after-repair");
    let (l, err) = list(&ark, &again);
    assert_eq!(l.len(), 6);
    assert!(l.iter().all(|b| b["status"] == "completed"), "{l:?}");
    assert!(!err.contains("journal is damaged"), "{err}");
    let note = status_of(&l, &ids[0])["note"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(note.contains("recovered by journal repair"), "{note}");
    let (_, o) = back_up(&ark, 7);
    assert!(!stderr(&o).contains("journal is damaged"), "{}", stderr(&o));
}

#[test]
fn a_damaged_last_record_does_not_stop_backups_and_repair_recovers_it() {
    let ark = Ark::new().init(&[]);
    let (a, _) = back_up(&ark, 1);
    let (b, _) = back_up(&ark, 2);
    // Record 5: the second backup's completion, the last record.
    flip_bit(&record(&ark, 5));
    let (c, o) = back_up(&ark, 3);
    assert!(stderr(&o).contains("journal is damaged"), "{}", stderr(&o));
    let (l, _) = list(&ark, &ark.data());
    for id in [&a, &b, &c] {
        assert_eq!(status_of(&l, id)["status"], "completed", "{l:?}");
    }
    let o = ark.ark(&["--json", "repair", "journal", "--yes"]);
    let rep = ok_json(&o);
    assert!(rep["repair"]["recovered"].to_string().contains(&b), "{rep}");
    assert!(ark.ark(&["check"]).status.success());
    // Nothing more to do.
    let o = ark.ark(&["repair", "journal"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("needs no repair"));
}

#[test]
fn a_missing_record_and_an_unfinished_claim_lose_only_their_events() {
    let ark = Ark::new().init(&[]);
    let (a, _) = back_up(&ark, 1);
    let (b, _) = back_up(&ark, 2);
    let (c, _) = back_up(&ark, 3);
    // Record 4 (the second backup's start) is deleted; record 6 (the third's
    // start) is replaced by an empty claim, as a writer that stopped between
    // claim and publish before this version would leave it.
    std::fs::remove_file(record(&ark, 4)).unwrap();
    std::fs::write(record(&ark, 6), b"").unwrap();
    let o = ark.ark(&["--json", "check"]);
    assert!(!o.status.success());
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let text = v["errors"].to_string();
    assert!(text.contains("record 4 is missing"), "{text}");
    assert!(
        text.contains("record 6 was claimed but never written"),
        "{text}"
    );
    assert!(text.contains(&format!("start of backup {b}")), "{text}");
    assert!(text.contains("no effect"), "{text}");
    let (l, _) = list(&ark, &ark.path("fresh"));
    for id in [&a, &b, &c] {
        assert_eq!(status_of(&l, id)["status"], "completed", "{l:?}");
    }
    let o = ark.ark(&["--json", "repair", "journal", "--yes"]);
    let rep = ok_json(&o);
    assert_eq!(
        rep["repair"]["appended"].as_array().unwrap().len(),
        1,
        "only the acknowledgement: nothing needed recording again: {rep}"
    );
    assert!(ark.ark(&["check"]).status.success());
}
