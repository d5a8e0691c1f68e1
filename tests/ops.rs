//! Operations driven through the library, as the service and the scheduler
//! will drive them (no binary, no terminal): outcomes are serde values whose
//! JSON is the API's contract (snapshots in tests/snapshots/), errors come
//! back with a kind and a hint, and nothing is printed or exits.
mod common;

use common::ctx::Fixture;
use n8n_ark::ops::{self, Collect, ErrorKind, NoReport};

/// Ids, times and sizes differ from run to run: the snapshots keep the shape.
fn redact(mut v: serde_json::Value) -> serde_json::Value {
    fn walk(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m.iter_mut() {
                    let volatile = k.ends_with("_ms")
                        || k.ends_with("_id")
                        || k == "store"
                        || k == "path"
                        || k.ends_with("bytes")
                        || k.starts_with("objects")
                        || k == "message";
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

#[tokio::test]
async fn check_gc_and_repair_outcomes() {
    let f = Fixture::new().await;
    let check = ops::check::run(&f.ctx, &ops::check::Request { read_data: true }, &NoReport)
        .await
        .unwrap();
    assert!(check.ok());
    insta::assert_json_snapshot!("check", redact(serde_json::to_value(&check).unwrap()));

    let gc = ops::gc::run(&f.ctx, &Default::default(), &NoReport)
        .await
        .unwrap();
    insta::assert_json_snapshot!("gc", redact(serde_json::to_value(&gc).unwrap()));

    let plan = ops::repair::run(&f.ctx, &Default::default(), &NoReport)
        .await
        .unwrap();
    insta::assert_json_snapshot!("repair_plan", redact(serde_json::to_value(&plan).unwrap()));
}

#[tokio::test]
async fn a_cancelled_operation_changes_nothing_and_says_so() {
    let f = Fixture::new().await;
    let cancel = n8n_ark::cancel::Cancel::new();
    cancel.cancel("SIGTERM");
    let ctx = f.ctx.clone().with_cancel(cancel);
    let before = common::snapshot(&f.store_dir());
    let e = ops::gc::run(&ctx, &Default::default(), &NoReport)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Interrupted, "{e:?}");
    assert!(e.message.contains("interrupted by SIGTERM"), "{e}");
    assert_eq!(common::snapshot(&f.store_dir()), before);
}

#[tokio::test]
async fn a_damaged_journal_is_an_error_with_a_kind_and_a_hint() {
    let f = Fixture::new().await;
    // A record after the first one, damaged: the repair plan names it.
    n8n_ark::store::journal::append(
        &f.ctx.store,
        store_format::Event::GcCompleted(store_format::event::GcCompleted {
            objects_freed: 0,
            bytes_freed: 0,
            objects_kept: 0,
            duration_ms: 0,
        }),
    )
    .await
    .unwrap();
    let rec = f.store_dir().join("journal").join(format!("{:020}", 2));
    let mut b = std::fs::read(&rec).unwrap();
    b[20] ^= 1;
    std::fs::write(&rec, b).unwrap();
    let r = Collect::new();
    let check = ops::check::run(&f.ctx, &Default::default(), &r)
        .await
        .unwrap();
    assert!(!check.ok());
    let repaired = ops::repair::run(
        &f.ctx,
        &ops::repair::Request {
            apply: true,
            repaired_by: "test@here".into(),
        },
        &r,
    )
    .await
    .unwrap();
    assert!(matches!(repaired, ops::repair::Outcome::Repaired { .. }));
    assert!(ops::check::run(&f.ctx, &Default::default(), &NoReport)
        .await
        .unwrap()
        .ok());
}
