//! Criterion benchmarks of the store engine's ingest path, on ~64 MiB of
//! generated n8n-shaped dump data (`n8n_ark::cli::demo::generate_dump`):
//!
//! - `chunk`: FastCDC cut points (the store's chunker), for three average sizes;
//! - `hash`: BLAKE3 of every chunk;
//! - `compress`: zstd -1 and -3 of every chunk (one context per call, as the
//!   format's encoder does);
//! - `ingest`: a whole `BackupSession` into a fresh local store in a temporary
//!   directory (chunk, hash, dedup, compress, fsynced writes, manifest,
//!   journal), for a first day and for the next day into a store that holds
//!   the first. (The generator scatters a day's edits over the rows, so about
//!   half of day 2's chunks are new: far more than in a real n8n dump, where
//!   changed rows cluster; see RESULTS.md for the real-dump figures.)
//!
//! `cargo bench --bench ingest` for the full run, `cargo bench --bench ingest -- --quick`
//! for a quick one, `cargo bench --bench ingest -- ingest` for one group. Throughput
//! is reported in bytes of input per second. The real-file comparison with
//! restic is `tests/bench/compare-restic.sh`.
use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use n8n_ark::cli::demo::generate_dump;
use n8n_ark::store::chunker::Chunker;
use n8n_ark::store::ingest::BackupSession;
use n8n_ark::store::local::LocalBackend;
use n8n_ark::store::{default_chunker, Encryption, InitOptions, Store};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use store_format::ChunkerParams;

const SIZE: usize = 64 << 20;

/// The generated dump as of `day` (1 or 2), about [`SIZE`] bytes, made once.
fn dump(day: u32) -> &'static [u8] {
    static DAYS: [OnceLock<Vec<u8>>; 2] = [OnceLock::new(), OnceLock::new()];
    DAYS[day as usize - 1].get_or_init(|| {
        // Rows are `demo::AVG_ROW` bytes only roughly: scale by a sample.
        let sample = 4096;
        let row = generate_dump(1, sample, 1).len() / sample;
        generate_dump(1, SIZE / row.max(1), day)
    })
}

/// `data` cut with the store's default chunker.
fn default_chunks(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    for n in Chunker::new(&default_chunker()).cuts(data) {
        let (c, r) = rest.split_at(n);
        out.push(c);
        rest = r;
    }
    out
}

/// Slow benchmarks: few samples of a few iterations each, short warm-up.
fn group<'a>(
    c: &'a mut Criterion,
    name: &str,
    bytes: usize,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Bytes(bytes as u64))
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    g
}

fn chunk(c: &mut Criterion) {
    let data = dump(1);
    let mut g = group(c, "chunk", data.len());
    for avg_kib in [256u32, 512, 1024] {
        let avg = avg_kib * 1024;
        let chunker = Chunker::new(&ChunkerParams::new(avg / 4, avg, avg * 4));
        g.bench_function(
            BenchmarkId::new("fastcdc", format!("avg {avg_kib} KiB")),
            |b| b.iter(|| chunker.cuts(black_box(data)).len()),
        );
    }
    g.finish();
}

fn hash(c: &mut Criterion) {
    let data = dump(1);
    let chunks = default_chunks(data);
    let mut g = group(c, "hash", data.len());
    g.bench_function("blake3", |b| {
        b.iter(|| {
            for ch in &chunks {
                black_box(blake3::hash(black_box(ch)));
            }
        })
    });
    g.finish();
}

fn compress(c: &mut Criterion) {
    let data = dump(1);
    let chunks = default_chunks(data);
    let mut g = group(c, "compress", data.len());
    for level in [1, 3] {
        let stored: usize = chunks
            .iter()
            .map(|ch| zstd::bulk::compress(ch, level).unwrap().len())
            .sum();
        eprintln!(
            "compress/zstd/{level}: ratio {:.2} on {} chunks",
            data.len() as f64 / stored as f64,
            chunks.len()
        );
        g.bench_function(BenchmarkId::new("zstd", level), |b| {
            b.iter(|| {
                for ch in &chunks {
                    black_box(zstd::bulk::compress(black_box(ch), level).unwrap());
                }
            })
        });
    }
    g.finish();
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// An encrypted store, as `init` makes by default (key derivation shortened:
/// it is not what is measured).
async fn new_store(dir: &std::path::Path) -> Store {
    std::env::set_var("ARK_KDF_TARGET_MS", "20");
    let opts = InitOptions::new(Encryption::Passphrase("benchmark".to_string().into()));
    Store::init(Arc::new(LocalBackend::new(dir.join("store"))), opts)
        .await
        .expect("init")
}

async fn backup(store: &Store, data: &[u8]) {
    let mut s = BackupSession::begin(store, "benchmark")
        .await
        .expect("begin");
    s.add_stream("dump", data).await.expect("add_stream");
    s.commit(BTreeMap::new()).await.expect("commit");
}

fn ingest(c: &mut Criterion) {
    let (day1, day2) = (dump(1), dump(2));
    let rt = runtime();
    let mut g = group(c, "ingest", day1.len());
    g.measurement_time(Duration::from_secs(10));
    // Store creation is outside the measured time; the whole session is inside.
    g.bench_function("day1 (new store)", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().expect("tempdir");
                let store = rt.block_on(new_store(dir.path()));
                let t = Instant::now();
                rt.block_on(backup(&store, day1));
                total += t.elapsed();
            }
            total
        })
    });
    g.throughput(Throughput::Bytes(day2.len() as u64));
    g.bench_function("day2 (store holds day1)", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().expect("tempdir");
                let store = rt.block_on(new_store(dir.path()));
                rt.block_on(backup(&store, day1));
                let t = Instant::now();
                rt.block_on(backup(&store, day2));
                total += t.elapsed();
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, chunk, hash, compress, ingest);
criterion_main!(benches);
