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
    // The local catalog is checked whole (a damaged one is set aside and made
    // again from the store), and remembers the journal's problems, so that
    // every later command warns of them until they are repaired.
    let catalog_note = check_catalog(cli, &store, &r.journal_problems).await;
    if cli.json {
        let mut v = serde_json::to_value(&r).expect("report types serialize");
        if let Some(o) = v.as_object_mut() {
            o.insert("catalog".into(), serde_json::json!(catalog_note));
        }
        print_json(&v);
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
        if let Some(n) = &catalog_note {
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

/// Checks the local catalog's every page; a damaged one is moved aside and
/// rebuilt from the store. Then records the journal's problems in it.
/// Returns what an operator should read about it, if anything.
async fn check_catalog(
    cli: &Cli,
    store: &crate::store::Store,
    problems: &[crate::store::journal::JournalProblem],
) -> Option<String> {
    let (mut catalog, caught_up) = match super::catalog::open_and_catch_up(cli, store).await {
        Ok(c) => c,
        Err(e) => return Some(format!("the catalog could not be opened ({e})")),
    };
    let mut note = None;
    if let Err(e) = &caught_up {
        note = Some(format!(
            "the catalog could not catch up with the store ({e})"
        ));
    }
    if let Err(e) = catalog.check_whole().await {
        if e.is_damage() {
            let damaged = e.to_string();
            catalog = match catalog.replace_damaged(&cli.data_dir(), store, &e).await {
                Ok(c) => c,
                Err(e2) => {
                    return Some(format!(
                        "the catalog is damaged ({damaged}) and could not be replaced ({e2})"
                    ))
                }
            };
            let rebuilt = catalog.catch_up(store).await;
            note = Some(format!(
                "the catalog was damaged ({damaged}): {}{}",
                catalog
                    .set_aside()
                    .map(|a| format!("moved aside to {} and ", a.moved_to.display()))
                    .unwrap_or_default(),
                match rebuilt {
                    Ok(_) => "made again from the store".to_string(),
                    Err(e) => format!("its rebuild from the store failed ({e})"),
                }
            ));
        } else {
            note = Some(format!("the catalog could not be checked ({e})"));
        }
    }
    if !problems.is_empty() {
        if let Err(e) = catalog.note_journal_problems(problems).await {
            eprintln!("warning: the catalog could not record the journal's problems ({e})");
        }
    }
    catalog.close().await;
    note
}
