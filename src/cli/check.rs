use super::{human_bytes, print_json, Cli, CliError, CliResult};
use crate::store::check;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Also read every object and check it decodes and hashes to its id.
    #[arg(long)]
    pub read_data: bool,
}

pub async fn run(cli: &Cli, a: &Args) -> CliResult {
    let store = cli.open_store().await?;
    let r = check::run(&store, a.read_data).await?;
    // The catalog remembers the journal's problems, so that every later
    // command warns of them until they are repaired.
    if !r.journal_problems.is_empty() {
        let noted = async {
            let catalog = crate::catalog::Catalog::open(&cli.data_dir(), &store).await?;
            catalog.note_journal_problems(&r.journal_problems).await?;
            catalog.close().await;
            Ok::<_, crate::catalog::CatalogError>(())
        }
        .await;
        if let Err(e) = noted {
            eprintln!("warning: the catalog could not record the journal's problems ({e})");
        }
    }
    if cli.json {
        print_json(&r);
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
    if r.ok() {
        Ok(())
    } else {
        Err(CliError::Failed(format!(
            "check found {} error(s) in {}",
            r.errors.len(),
            r.store
        )))
    }
}
