//! `benchmark`: in the spirit of `proxmox-backup-client benchmark`. Without a
//! store: chunking, hashing and compression throughput on this machine. With
//! `--store` and `--input`: the real ingest speed and dedup of that file.
use super::{demo, human_bytes, print_json, Cli, CliError, CliResult};
use crate::store::chunker::Chunker;
use crate::store::ingest::BackupSession;
use crate::store::{default_chunker, Store};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A file to measure with (e.g. an uncompressed pg_dump). With --store, it is
    /// ingested into the store as a backup of kind `benchmark`.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Size of generated data when no --input is given, in MiB.
    #[arg(long, default_value_t = 256)]
    pub size_mib: usize,
}

#[derive(Debug, Serialize)]
struct Rate {
    what: String,
    bytes: u64,
    seconds: f64,
    mb_per_s: f64,
}

fn rate(what: &str, bytes: u64, t: Instant) -> Rate {
    let seconds = t.elapsed().as_secs_f64();
    Rate {
        what: what.into(),
        bytes,
        seconds,
        mb_per_s: bytes as f64 / 1e6 / seconds.max(1e-9),
    }
}

pub fn peak_rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

pub async fn run(cli: &Cli, a: &Args) -> CliResult {
    if cli.store.is_some() {
        let input = a
            .input
            .as_ref()
            .ok_or_else(|| CliError::Usage("benchmark with --store needs --input FILE".into()))?;
        return ingest(cli, input).await;
    }
    let data = match &a.input {
        Some(p) => {
            let f = std::fs::File::open(p)
                .map_err(|e| CliError::Failed(format!("{}: {e}", p.display())))?;
            let mut v = Vec::new();
            use std::io::Read;
            f.take(1 << 30)
                .read_to_end(&mut v)
                .map_err(|e| CliError::Failed(format!("{}: {e}", p.display())))?;
            v
        }
        None => demo::generate_dump(1, a.size_mib * 1024 * 1024 / demo::AVG_ROW, 1),
    };
    let rates = tokio::task::spawn_blocking(move || micro(&data))
        .await
        .map_err(|e| CliError::Failed(e.to_string()))?;
    if cli.json {
        print_json(&rates);
    } else {
        println!("{:<44} {:>10}", "", "MB/s");
        for r in &rates {
            println!("{:<44} {:>10.0}", r.what, r.mb_per_s);
        }
    }
    Ok(())
}

fn micro(data: &[u8]) -> Vec<Rate> {
    let n = data.len() as u64;
    let params = default_chunker();
    let chunker = Chunker::new(&params);
    let mut out = Vec::new();
    let t = Instant::now();
    let cuts = chunker.cuts(data);
    out.push(rate(
        &format!(
            "chunk (FastCDC, avg {} KiB, 1 core)",
            params.avg_size / 1024
        ),
        n,
        t,
    ));
    let mut chunks = Vec::with_capacity(cuts.len());
    let mut off = 0;
    for c in &cuts {
        chunks.push(&data[off..off + c]);
        off += c;
    }
    let t = Instant::now();
    for c in &chunks {
        std::hint::black_box(blake3::hash(c));
    }
    out.push(rate("hash (BLAKE3, 1 core)", n, t));
    for level in [1, 3] {
        let t = Instant::now();
        let mut stored = 0u64;
        for c in &chunks {
            stored += zstd::bulk::compress(c, level)
                .map(|v| v.len() as u64)
                .unwrap_or(c.len() as u64);
        }
        let r = rate(
            &format!(
                "compress (zstd -{level}, 1 core; ratio {:.2})",
                n as f64 / stored as f64
            ),
            n,
            t,
        );
        out.push(r);
    }
    let keys = store_format::StoreKeys::derive(&[7u8; 32]);
    let nonce = [1u8; 24];
    let t = Instant::now();
    for c in &chunks {
        std::hint::black_box(keys.seal(&nonce, b"aad", c));
    }
    out.push(rate("encrypt (XChaCha20-Poly1305, 1 core)", n, t));
    let t = Instant::now();
    for c in &chunks {
        std::hint::black_box(keys.object_id(c));
    }
    out.push(rate("keyed hash (BLAKE3 keyed, 1 core)", n, t));
    let cores = std::thread::available_parallelism()
        .map(|x| x.get())
        .unwrap_or(2);
    let t = Instant::now();
    std::thread::scope(|s| {
        for k in 0..cores {
            let chunks = &chunks;
            s.spawn(move || {
                for c in chunks.iter().skip(k).step_by(cores) {
                    std::hint::black_box(blake3::hash(c));
                    std::hint::black_box(
                        zstd::bulk::compress(c, crate::store::DEFAULT_ZSTD_LEVEL).ok(),
                    );
                }
            });
        }
    });
    out.push(rate(
        &format!(
            "hash + zstd -{} ({cores} cores)",
            crate::store::DEFAULT_ZSTD_LEVEL
        ),
        n,
        t,
    ));
    let codec = store_format::object::ObjectCodec {
        codec: store_format::object::Codec::Zstd(crate::store::DEFAULT_ZSTD_LEVEL),
        keys: Some(std::sync::Arc::new(keys)),
    };
    let t = Instant::now();
    std::thread::scope(|s| {
        for k in 0..cores {
            let (chunks, codec) = (&chunks, &codec);
            s.spawn(move || {
                for c in chunks.iter().skip(k).step_by(cores) {
                    let id = codec.id_of(c);
                    std::hint::black_box(codec.encode(
                        store_format::ObjectKind::Chunk,
                        &id,
                        c,
                        &nonce,
                    ));
                }
            });
        }
    });
    out.push(rate(
        &format!(
            "keyed hash + zstd -{} + encrypt ({cores} cores)",
            crate::store::DEFAULT_ZSTD_LEVEL
        ),
        n,
        t,
    ));
    out
}

#[derive(Debug, Serialize)]
struct IngestReport {
    input: String,
    store: String,
    backup_id: String,
    bytes: u64,
    seconds: f64,
    mb_per_s: f64,
    new_bytes: u64,
    new_objects: u64,
    chunks: u64,
    reused_chunks_percent: f64,
    peak_rss_bytes: Option<u64>,
}

async fn ingest(cli: &Cli, input: &PathBuf) -> CliResult {
    let store: Store = cli.open_store().await?;
    let f = tokio::fs::File::open(input)
        .await
        .map_err(|e| CliError::Failed(format!("{}: {e}", input.display())))?;
    let t = Instant::now();
    let mut session = BackupSession::begin(&store, "benchmark").await?;
    let progress = super::progress_for(&session, std::fs::metadata(input).map(|m| m.len()).ok());
    let res = session
        .add_stream("input", tokio::io::BufReader::with_capacity(1 << 20, f))
        .await
        .map(|_| ());
    if let Err(e) = res {
        session.abort().await;
        return Err(e.into());
    }
    let mut labels = BTreeMap::new();
    labels.insert("input".to_string(), input.display().to_string());
    let s = session.commit(labels).await?;
    drop(progress);
    let secs = t.elapsed().as_secs_f64();
    let r = IngestReport {
        input: input.display().to_string(),
        store: store.location(),
        backup_id: s.backup_id.clone(),
        bytes: s.logical_bytes,
        seconds: secs,
        mb_per_s: s.logical_bytes as f64 / 1e6 / secs,
        new_bytes: s.new_bytes,
        new_objects: s.new_objects,
        chunks: s.chunks,
        reused_chunks_percent: if s.chunks == 0 {
            0.0
        } else {
            100.0 * (s.chunks - s.new_objects) as f64 / s.chunks as f64
        },
        peak_rss_bytes: peak_rss_bytes(),
    };
    if cli.json {
        print_json(&r);
    } else {
        println!(
            "ingested {} in {:.2} s ({:.0} MB/s): {} new in {} objects, {:.1}% of chunks reused; backup {}; peak memory {}",
            human_bytes(r.bytes),
            r.seconds,
            r.mb_per_s,
            human_bytes(r.new_bytes),
            r.new_objects,
            r.reused_chunks_percent,
            r.backup_id,
            r.peak_rss_bytes.map(human_bytes).unwrap_or_else(|| "unknown".into())
        );
    }
    Ok(())
}
