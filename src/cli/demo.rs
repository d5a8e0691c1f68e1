//! `demo`: what n8n-ark does so far, on generated n8n-shaped data, with nothing
//! to configure: create a store, back up a day's "dump", back up the next day's,
//! check everything, report what was stored and what deduplication saved.
use super::{human_bytes, print_json, Cli, CliError, CliResult};
use crate::store::check;
use crate::store::ingest::{BackupSession, BackupSummary};
use crate::store::{Encryption, InitOptions, Store, StoreError};
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;

pub const AVG_ROW: usize = 2048;
/// The passphrase of demo stores when `ARK_PASSWORD` is not set.
pub const DEMO_PASSPHRASE: &str = "n8n-ark demo";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Size of the generated first-day dump, in MiB.
    #[arg(long, default_value_t = 64)]
    pub size_mib: usize,
}

const NODE_TYPES: &[&str] = &[
    "n8n-nodes-base.httpRequest",
    "n8n-nodes-base.set",
    "n8n-nodes-base.if",
    "n8n-nodes-base.code",
    "n8n-nodes-base.webhook",
    "n8n-nodes-base.postgres",
    "n8n-nodes-base.slack",
    "n8n-nodes-base.merge",
];

fn row_version(seed: u64, i: usize, day: u32) -> u32 {
    (2..=day)
        .filter(|d| (splitmix(seed ^ (i as u64) ^ ((*d as u64) << 40)) % 1000) < 2)
        .count() as u32
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e3779b97f4a7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d049bb133111eb);
    x ^ (x >> 31)
}

/// One execution-like row: the text a `COPY` section of a dump would hold.
fn row(seed: u64, i: usize, version: u32, out: &mut Vec<u8>) {
    use std::io::Write;
    let mut rng = rand::rngs::StdRng::seed_from_u64(splitmix(
        seed ^ (i as u64).wrapping_mul(31) ^ ((version as u64) << 48),
    ));
    let nodes = rng.gen_range(2..8);
    let _ = write!(out, "{i}\t{{\"workflowId\":\"wf{:04}\",\"mode\":\"trigger\",\"status\":\"success\",\"startedAt\":\"2024-06-{:02}T{:02}:{:02}:{:02}.{:03}Z\",\"runData\":{{",
        rng.gen_range(0..2000), 1 + (i / 900) % 28, rng.gen_range(0..24), rng.gen_range(0..60), rng.gen_range(0..60), rng.gen_range(0..1000));
    for n in 0..nodes {
        let t = NODE_TYPES[rng.gen_range(0..NODE_TYPES.len())];
        let _ = write!(
            out,
            "\"Node {n}\":[{{\"type\":\"{t}\",\"executionTime\":{},\"data\":{{\"main\":[[",
            rng.gen_range(1..5000)
        );
        for k in 0..rng.gen_range(1..4) {
            let _ = write!(
                out,
                "{{\"json\":{{\"id\":{},\"email\":\"user{}@example.com\",\"amount\":{}.{:02},\"status\":\"{}\",\"token\":\"{:016x}\"}}}}{}",
                rng.gen_range(1..1_000_000),
                rng.gen_range(1..50_000),
                rng.gen_range(0..10_000),
                rng.gen_range(0..100),
                ["open", "paid", "failed", "pending"][rng.gen_range(0..4)],
                rng.gen::<u64>(),
                if k < 3 { "," } else { "" }
            );
        }
        let _ = write!(out, "]]}}}}],");
    }
    out.extend_from_slice(b"\"end\":true}}\n");
}

/// A deterministic n8n-shaped dump of about `rows` × [`AVG_ROW`] bytes as of
/// `day` (1, 2, ...): each later day deletes the oldest 2% of rows, edits 0.2%
/// and appends 3%, like a day of a real instance (executions come and go, a few
/// workflows change).
pub fn generate_dump(seed: u64, rows: usize, day: u32) -> Vec<u8> {
    let d = day.saturating_sub(1) as usize;
    let start = rows * 2 * d / 100;
    let end = rows + rows * 3 * d / 100;
    let mut out = Vec::with_capacity((end - start) * AVG_ROW);
    out.extend_from_slice(
        b"PGDMP-n8n-ark-demo\nCOPY public.execution_data (\"executionId\", data) FROM stdin;\n",
    );
    for i in start..end {
        row(seed, i, row_version(seed, i, day), &mut out);
    }
    out.extend_from_slice(b"\\.\n");
    out
}

#[derive(serde::Serialize)]
struct DemoReport {
    store: String,
    day1: BackupSummary,
    day2: BackupSummary,
    check_errors: usize,
    logical_bytes: u64,
    stored_bytes: u64,
}

/// The demo's store: a directory of its own, removed at the end, or the one
/// `--store` names, which the demo creates (never one that exists already).
struct DemoStore {
    location: String,
    /// A temporary directory to remove at the end (also after a failure).
    temporary: Option<std::path::PathBuf>,
}

impl DemoStore {
    fn choose(cli: &Cli) -> CliResult<DemoStore> {
        // Only --store on the command line: ARK_STORE and the config file name
        // the operator's real store, which a demo never writes into.
        if let (Some(s), true) = (&cli.store, cli.store_on_command_line) {
            if s.trim().is_empty() {
                return Err(CliError::Usage(
                    "the store location is empty (--store): give a new directory for the demo's store"
                        .into(),
                ));
            }
            return Ok(DemoStore {
                location: s.clone(),
                temporary: None,
            });
        }
        let dir = std::env::temp_dir().join(format!(
            "n8n-ark-demo-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir(&dir)
            .map_err(|e| CliError::Failed(format!("cannot create {}: {e}", dir.display())))?;
        Ok(DemoStore {
            location: dir.display().to_string(),
            temporary: Some(dir),
        })
    }
}

impl Drop for DemoStore {
    fn drop(&mut self) {
        if let Some(d) = &self.temporary {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

pub async fn run(cli: &Cli, a: &Args) -> CliResult {
    let demo_store = DemoStore::choose(cli)?;
    let loc = demo_store.location.clone();
    if !loc.contains("://") && demo_store.temporary.is_none() {
        let p = std::path::Path::new(&loc);
        if p.join("config").exists() {
            return Err(CliError::Usage(format!(
                "{loc} is already an n8n-ark store: the demo only writes into a store it creates; \
                 give a new directory (or none: the demo then uses a temporary one)"
            )));
        }
        std::fs::create_dir_all(p).map_err(|e| CliError::Failed(format!("{loc}: {e}")))?;
    }
    // The demo encrypts like any store; its passphrase is ARK_PASSWORD or a fixed demo one.
    let pass = std::env::var("ARK_PASSWORD").unwrap_or_else(|_| DEMO_PASSPHRASE.to_string());
    let store = match Store::init(
        super::backend(&loc)?,
        InitOptions::new(Encryption::Passphrase(pass.clone().into())),
    )
    .await
    {
        Ok(s) => s,
        Err(e @ (StoreError::AlreadyAStore(_) | StoreError::NotEmpty(_))) => {
            return Err(CliError::Usage(format!(
                "{e}: the demo only writes into a store it creates; give a new directory \
                 (or none: the demo then uses a temporary one)"
            )))
        }
        Err(e) => return Err(e.into()),
    };
    let say = |s: String| {
        if !cli.json {
            println!("{s}");
        }
    };
    if std::env::var_os("ARK_STORE").is_some_and(|v| !v.is_empty()) && !cli.store_on_command_line {
        say("(ARK_STORE is left alone: the demo uses a store of its own)".to_string());
    }
    say(format!(
        "store: {}{} (encrypted; passphrase {})",
        store.location(),
        if demo_store.temporary.is_some() {
            ", temporary"
        } else {
            ""
        },
        if std::env::var("ARK_PASSWORD").is_ok() {
            "from ARK_PASSWORD".to_string()
        } else {
            format!("{DEMO_PASSPHRASE:?}")
        }
    ));
    let rows = (a.size_mib * 1024 * 1024 / AVG_ROW).max(1);
    let mut summaries = Vec::new();
    for day in 1..=2u32 {
        let dump = generate_dump(42, rows, day);
        say(format!(
            "day {day}: backing up a generated dump of {}",
            human_bytes(dump.len() as u64)
        ));
        let mut s = BackupSession::begin(&store, "demo").await?;
        if let Err(e) = s
            .add_stream("db/n8n.dump", std::io::Cursor::new(dump))
            .await
        {
            s.abort().await;
            return Err(e.into());
        }
        let mut labels = BTreeMap::new();
        labels.insert("day".into(), day.to_string());
        let sum = s.commit(labels).await?;
        say(format!(
            "  backup {}: {} chunks, {} new objects ({} written), {} chunks reused from earlier backups",
            sum.backup_id,
            sum.chunks,
            sum.new_objects,
            human_bytes(sum.new_bytes),
            sum.chunks - sum.new_objects.min(sum.chunks)
        ));
        summaries.push(sum);
    }
    let report = check::run(&store, true).await?;
    say(format!(
        "check --read-data: {} objects read, {} errors",
        report.objects_read,
        report.errors.len()
    ));
    for e in &report.errors {
        say(format!("  error: {}", e.message));
    }
    let logical: u64 = summaries.iter().map(|s| s.logical_bytes).sum();
    let stored: u64 = crate::store::index::list_object_ids(&store)
        .await?
        .iter()
        .map(|x| x.1)
        .sum();
    say(format!(
        "two backups of {} in all are stored in {} ({:.1}x smaller: zstd per chunk, each repeated chunk once)",
        human_bytes(logical),
        human_bytes(stored),
        logical as f64 / stored.max(1) as f64
    ));
    let day2 = summaries.pop().unwrap();
    let day1 = summaries.pop().unwrap();
    say(format!(
        "the second day added {} for {} of input",
        human_bytes(day2.new_bytes),
        human_bytes(day2.logical_bytes)
    ));
    let errors = report.errors.len();
    match &demo_store.temporary {
        Some(_) => say(format!(
            "removed the temporary store {} (n8n-ark --store NEW_DIR demo keeps one)",
            store.location()
        )),
        None => say(format!(
            "the demo's store is kept in {loc}: `n8n-ark --store {loc} list` shows its backups \
             (with the passphrase above in ARK_PASSWORD)",
            loc = store.location()
        )),
    }
    if cli.json {
        print_json(&DemoReport {
            store: store.location(),
            day1,
            day2,
            check_errors: errors,
            logical_bytes: logical,
            stored_bytes: stored,
        });
    }
    if errors > 0 {
        return Err(CliError::Failed(format!("check found {errors} error(s)")));
    }
    Ok(())
}
