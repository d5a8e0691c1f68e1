use super::progress::Printer;
use super::{human_bytes, print_json, Cli, CliResult};
use crate::ops::gc::{self, Request};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Report what would be freed; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Longest wait, in seconds, for running backups before leaving the set-aside
    /// objects for the next gc.
    #[arg(long, default_value_t = 3600)]
    pub max_wait_secs: u64,
}

pub async fn run(cli: &Cli, a: &Args) -> CliResult {
    let ctx = cli.context(Default::default()).await?;
    let req = Request {
        dry_run: a.dry_run,
        max_wait_secs: a.max_wait_secs,
    };
    let r = gc::run(&ctx, &req, &Printer).await?;
    if cli.json {
        print_json(&r);
    } else {
        let verb = if r.dry_run { "would free" } else { "freed" };
        println!(
            "{verb} {} objects ({}); {} of {} objects are referenced",
            r.objects_freed,
            human_bytes(r.bytes_freed),
            r.objects_referenced,
            r.objects_total
        );
        if r.pending_trash_batches > 0 {
            println!(
                "backups were still running: {} batch(es) left for the next gc",
                r.pending_trash_batches
            );
        }
        if r.leftovers_removed > 0 {
            println!(
                "removed {} file(s) and folder(s) that interrupted writes and runs left",
                r.leftovers_removed
            );
        }
        if r.used_space_reserve {
            println!("the store's disk was full: gc used the space it keeps in reserve for this");
        }
        if r.objects_left_for_next_run > 0 {
            println!(
                "the disk was too full to set aside {} more unreferenced object(s): run `n8n-ark gc` again \
                 to collect them in the room this run freed",
                r.objects_left_for_next_run
            );
        }
        if r.space_reserve_missing {
            eprintln!(
                "warning: no room on the store's disk to keep space in reserve for the next gc; free some \
                 space on that disk"
            );
        }
    }
    Ok(())
}
