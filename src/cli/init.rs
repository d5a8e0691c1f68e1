use super::{print_json, Cli, CliError, CliResult};
use crate::store::{Encryption, InitOptions, Store};
use store_format::{ChunkerParams, CompressionParams};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Average chunk size in KiB (min is a quarter, max four times).
    #[arg(long)]
    pub chunk_avg_kib: Option<u32>,
    /// zstd compression level (0 disables compression).
    #[arg(long)]
    pub zstd_level: Option<i32>,
    /// Create the store WITHOUT encryption: anyone who can read it then reads
    /// every backup, including n8n's credentials and keys. Not recommended.
    #[arg(long)]
    pub insecure_no_encryption: bool,
}

pub async fn run(cli: &Cli, a: &Args) -> CliResult {
    let loc = cli.store_location()?;
    let encryption = if a.insecure_no_encryption {
        Encryption::None
    } else {
        Encryption::Passphrase(
            super::passphrase::new_passphrase("ARK_PASSWORD", "ARK_PASSWORD_FILE")
                .map_err(crate::store::StoreError::from)?,
        )
    };
    let mut opts = InitOptions::new(encryption);
    if let Some(avg) = a.chunk_avg_kib {
        let avg = avg
            .checked_mul(1024)
            .ok_or_else(|| CliError::Usage("--chunk-avg-kib is too large".into()))?;
        opts.chunker = ChunkerParams::new(avg / 4, avg, avg.saturating_mul(4));
    }
    if let Some(level) = a.zstd_level {
        opts.compression = if level == 0 {
            CompressionParams {
                codec: "none".into(),
                level: 0,
            }
        } else {
            CompressionParams {
                codec: "zstd".into(),
                level,
            }
        };
    }
    if !loc.contains("://") {
        let p = std::path::Path::new(&loc);
        if !p.exists() {
            let parent = p
                .parent()
                .filter(|x| !x.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            if !parent.is_dir() {
                return Err(CliError::Failed(format!(
                    "{}: parent directory does not exist",
                    loc
                )));
            }
            match std::fs::create_dir(p) {
                Ok(()) => {}
                // Another `init` made it a moment ago: the store's own checks decide.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && p.is_dir() => {}
                Err(e) => return Err(CliError::Failed(format!("cannot create {loc}: {e}"))),
            }
        } else if !p.is_dir() {
            return Err(CliError::Failed(format!(
                "{loc} exists and is not a directory"
            )));
        }
    }
    let store = Store::init(super::backend(&loc)?, opts).await?;
    let c = store.config();
    if cli.json {
        print_json(&serde_json::json!({
            "store": store.location(), "id": c.id, "format_version": c.format_version,
            "chunker": {"min": c.chunker.min_size, "avg": c.chunker.avg_size, "max": c.chunker.max_size},
            "compression": {"codec": c.compression.codec, "level": c.compression.level},
            "encryption": c.encryption,
            "key": store.key_id(),
        }));
    } else {
        println!("created store {} at {}", c.id, store.location());
        println!(
            "  chunks {}–{} KiB (avg {} KiB), compression {} {}, format v{}",
            c.chunker.min_size / 1024,
            c.chunker.max_size / 1024,
            c.chunker.avg_size / 1024,
            c.compression.codec,
            c.compression.level,
            c.format_version
        );
        match store.key_id() {
            Some(k) => println!(
                "  encrypted ({}); key {k} opens it. Keep the passphrase safe: without it the backups cannot be read.",
                c.encryption
            ),
            None => eprintln!("warning: this store is NOT encrypted: anyone who can read it can read every backup in it"),
        }
    }
    Ok(())
}
