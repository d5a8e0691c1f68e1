//! `init`: a new, empty store (see [`crate::ops::init`]); the passphrase of
//! its first key is asked for here.
use super::progress::Printer;
use super::{print_json, Cli, CliResult};
use crate::ops::init::{self, Request};

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
    let location = cli.store_location()?;
    let passphrase = if a.insecure_no_encryption {
        None
    } else {
        Some(
            super::passphrase::new_passphrase("ARK_PASSWORD", "ARK_PASSWORD_FILE")
                .map_err(crate::store::StoreError::from)?
                .into(),
        )
    };
    let req = Request {
        location,
        chunk_avg_kib: a.chunk_avg_kib,
        zstd_level: a.zstd_level,
        passphrase,
        insecure_no_encryption: a.insecure_no_encryption,
    };
    let c = init::run(&req, &crate::ops::Environment::capture(), &Printer).await?;
    if cli.json {
        print_json(&c);
    } else {
        println!("created store {} at {}", c.id, c.store);
        println!(
            "  chunks {}–{} KiB (avg {} KiB), compression {} {}, format v{}",
            c.chunker.min / 1024,
            c.chunker.max / 1024,
            c.chunker.avg / 1024,
            c.compression.codec,
            c.compression.level,
            c.format_version
        );
        match &c.key {
            Some(k) => println!(
                "  encrypted ({}); key {k} opens it. Keep the passphrase safe: without it the backups cannot be read.",
                c.encryption
            ),
            None => eprintln!("warning: this store is NOT encrypted: anyone who can read it can read every backup in it"),
        }
    }
    Ok(())
}
