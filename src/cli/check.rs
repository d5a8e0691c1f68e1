use super::progress::Printer;
use super::{human_bytes, print_json, Cli, CliError, CliResult};
use crate::ops::check::{self, Request};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Also read every object and check it decodes and hashes to its id.
    #[arg(long)]
    pub read_data: bool,
}

pub async fn run(cli: &Cli, a: &Args) -> CliResult {
    let ctx = cli.context(Default::default()).await?;
    let o = check::run(
        &ctx,
        &Request {
            read_data: a.read_data,
        },
        &Printer,
    )
    .await?;
    let r = &o.report;
    if cli.json {
        print_json(&o);
    } else {
        println!(
            "store {}: {} journal records, {} backups, {} objects",
            r.store, r.journal_records, r.backups, r.objects
        );
        if r.read_data {
            println!(
                "read {} objects, {}",
                r.objects_read,
                human_bytes(r.bytes_read)
            );
        }
        for p in &r.repaired {
            println!("repaired: {}", p.message);
        }
        if let Some(n) = &o.catalog {
            println!("warning: {n}");
        }
        for w in &r.warnings {
            println!("warning: {}", w.message);
        }
        for e in &r.errors {
            println!("error: {}", e.message);
        }
        if r.ok() {
            println!("no errors found");
        }
    }
    if o.ok() {
        Ok(())
    } else {
        Err(CliError::Failed(format!(
            "check found {} error(s) in {}",
            r.errors.len(),
            r.store
        )))
    }
}
