//! Restoring one workflow to a file from a store that holds 2,000 workflows
//! (issue: restore; target: under 100 ms of the command's own work).
//!
//! Setup: 2,000 n8n-shaped workflows of 3–60 KB (the fixtures' API bodies,
//! each under a new id and name, with a Code node padded to a size drawn
//! between 3 and 60 KB) are served by the fake n8n API
//! (tests/common/fake_n8n.rs) and backed up with the real binary
//! (`backup --type flows --n8n-url`) into an **unencrypted** store, so that no
//! passphrase key derivation (Argon2id, tuned to about half a second on
//! purpose) is in the figure. One restore runs first so that the catalog has
//! caught up with the backup.
//!
//! Measured, each iteration into a fresh directory:
//!
//! - `command`: the whole `n8n-ark restore workflow latest <ID> --out DIR`
//!   process (exec, runtime start, store and catalog open, catch-up, backup
//!   and workflow resolution, one object read, the file written crash-safely,
//!   the `RestorePerformed` event appended);
//! - `in-process`: the same code path without the process: the command's own
//!   work (open store and catalog, catch up, choose the backup, restore).
//!
//! After them, a breakdown of the in-process path by stage (medians of 20
//! runs; 3 when run as a test) is printed on stderr.
//!
//! `cargo bench --bench restore_workflow` for the run; `cargo test --benches`
//! runs it once as a test.
#[path = "../common/fake_n8n.rs"]
mod fake_n8n;

use clap::Parser;
use criterion::{criterion_group, criterion_main, Criterion};
use n8n_ark::restore::workflow::{Destination, Request, Selection};
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const WORKFLOWS: usize = 2000;

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_n8n-ark"))
}

fn fixture(name: &str) -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// `n` n8n-shaped workflows of 3–60 KB each (serialised), deterministic.
fn workflows(n: usize) -> Vec<Value> {
    let mut bases: Vec<Value> = fixture("api-workflows-list.json")["data"]
        .as_array()
        .unwrap()
        .clone();
    bases.push(fixture("api-workflow-get.json"));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2000);
    (0..n)
        .map(|i| {
            let mut w = bases[i % bases.len()].clone();
            w["id"] = json!(format!("bench{i:011}"));
            w["name"] = json!(format!(
                "Bench flow #{i:04} ({})",
                w["name"].as_str().unwrap()
            ));
            // Sizes spread evenly on a log scale between 3 and 60 KB.
            let target = (3000.0 * 20f64.powf(rng.gen::<f64>())) as usize;
            let have = w.to_string().len();
            if target > have + 300 {
                let mut code = String::from("// lookup table\nconst table = {\n");
                while code.len() < target - have - 300 {
                    code.push_str(&format!(
                        "  \"sku-{:05}\": {{ region: \"eu\", weight: {:.2} }},\n",
                        rng.gen_range(0..100000),
                        rng.gen::<f64>() * 100.0
                    ));
                }
                code.push_str("};\nreturn $input.all();");
                w["nodes"].as_array_mut().unwrap().push(json!({
                    "parameters": {"jsCode": code},
                    "id": format!("00000000-0000-4000-8000-{i:012}"),
                    "name": "Lookup",
                    "type": "n8n-nodes-base.code",
                    "typeVersion": 2,
                    "position": [0, 400],
                }));
            }
            w
        })
        .collect()
}

struct Setup {
    dir: tempfile::TempDir,
    id: String,
}

impl Setup {
    fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }
    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }
    fn cmd(&self) -> Command {
        let mut c = Command::new(bin());
        for v in [
            "ARK_CONFIG",
            "ARK_N8N_DB",
            "ARK_N8N_URL",
            "ARK_PASSWORD",
            "ARK_PASSWORD_FILE",
        ] {
            c.env_remove(v);
        }
        c.arg("--store")
            .arg(self.store())
            .arg("--data-dir")
            .arg(self.data());
        c
    }
    fn out(&self, n: u64) -> PathBuf {
        self.dir.path().join(format!("out/{n}"))
    }
    fn restore_args(&self, out: &Path) -> Vec<String> {
        vec![
            "restore".into(),
            "workflow".into(),
            "latest".into(),
            self.id.clone(),
            "--out".into(),
            out.display().to_string(),
        ]
    }
}

fn setup() -> Setup {
    let s = Setup {
        dir: tempfile::tempdir().unwrap(),
        id: format!("bench{:011}", WORKFLOWS / 2),
    };
    let o = s
        .cmd()
        .args(["init", "--insecure-no-encryption"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let n8n = fake_n8n::FakeN8n::start();
    let ws = workflows(WORKFLOWS);
    let total: usize = ws.iter().map(|w| w.to_string().len()).sum();
    for w in ws {
        n8n.add_workflow(w);
    }
    let o = s
        .cmd()
        .env("ARK_N8N_API_KEY", fake_n8n::API_KEY)
        .args([
            "backup",
            "--type",
            "flows",
            "--no-default-config-paths",
            "--n8n-url",
            &n8n.url,
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    drop(n8n);
    eprintln!(
        "setup: {WORKFLOWS} workflows, {:.1} MB of JSON, backed up; restoring {}",
        total as f64 / 1e6,
        s.id
    );
    // The catalog catches up with the backup once, as it would have by the
    // time an operator restores.
    let o = s.cmd().args(s.restore_args(&s.out(0))).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    s
}

/// The command's own work, in this process: what `restore workflow` runs.
async fn in_process(s: &Setup, out: &Path, stages: Option<&mut Vec<Duration>>) {
    let mut args = vec![
        "n8n-ark".to_string(),
        "--store".into(),
        s.store().display().to_string(),
        "--data-dir".into(),
        s.data().display().to_string(),
    ];
    args.extend(s.restore_args(out));
    let cli = n8n_ark::cli::Cli::parse_from(args);
    let t = Instant::now();
    // What `Cli::open_store` does, without its "NOT encrypted" warning on
    // every iteration.
    let location = cli.store_location().unwrap();
    let store = n8n_ark::store::Store::open(
        n8n_ark::store::backend_for(&location, &std::env::vars().collect()).unwrap(),
        &n8n_ark::cli::passphrase::passphrase,
    )
    .await
    .unwrap();
    let t_store = t.elapsed();
    let catalog = n8n_ark::catalog::Catalog::open(&cli.data_dir(), &store)
        .await
        .unwrap();
    let t_open = t.elapsed();
    catalog.catch_up(&store).await.unwrap();
    let t_catch = t.elapsed();
    let chosen = n8n_ark::restore::choose_backup(&catalog, &store, "latest")
        .await
        .unwrap();
    catalog.close().await;
    let t_chosen = t.elapsed();
    let report = n8n_ark::restore::workflow::restore(
        &store,
        &chosen,
        Request {
            selection: Selection {
                workflows: vec![s.id.clone()],
                ..Default::default()
            },
            destination: Destination::Files {
                dir: out.to_path_buf(),
            },
            credentials_db: None,
            trigger: Default::default(),
        },
        &|_| {},
    )
    .await
    .unwrap();
    let t_done = t.elapsed();
    assert_eq!(report.summary.restored, 1);
    if let Some(stages) = stages {
        stages.extend([
            t_store,
            t_open - t_store,
            t_catch - t_open,
            t_chosen - t_catch,
            t_done - t_chosen,
            t_done,
        ]);
    }
}

fn restore_one(c: &mut Criterion) {
    let s = setup();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut n = 1u64;
    let mut g = c.benchmark_group("restore_workflow");
    g.sample_size(20).measurement_time(Duration::from_secs(8));
    g.bench_function("command (one of 2,000 to a file)", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                n += 1;
                let out = s.out(n);
                let mut cmd = s.cmd();
                cmd.args(s.restore_args(&out));
                let t = Instant::now();
                let o = cmd.stderr(std::process::Stdio::piped()).output().unwrap();
                total += t.elapsed();
                assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            }
            total
        })
    });
    g.bench_function("in-process (one of 2,000 to a file)", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                n += 1;
                let out = s.out(n);
                let t = Instant::now();
                rt.block_on(in_process(&s, &out, None));
                total += t.elapsed();
            }
            total
        })
    });
    g.finish();

    // Where the time goes (medians). Run as a test (`cargo test --benches`,
    // no `--bench` argument), a few runs are enough.
    let runs = if std::env::args().any(|a| a == "--bench") {
        20
    } else {
        3
    };
    let mut all: Vec<Vec<Duration>> = vec![Vec::new(); 6];
    for _ in 0..runs {
        n += 1;
        let mut stages = Vec::new();
        rt.block_on(in_process(&s, &s.out(n), Some(&mut stages)));
        for (i, d) in stages.into_iter().enumerate() {
            all[i].push(d);
        }
    }
    let names = [
        "open store",
        "open catalog",
        "catch up",
        "choose backup (manifest read)",
        "restore (resolve, read, write, event)",
        "total",
    ];
    eprintln!("in-process stages, median of {runs}:");
    for (name, mut d) in names.iter().zip(all) {
        d.sort();
        eprintln!(
            "  {name:<40} {:>8.2} ms",
            d[d.len() / 2].as_secs_f64() * 1e3
        );
    }
}

criterion_group!(benches, restore_one);
criterion_main!(benches);
