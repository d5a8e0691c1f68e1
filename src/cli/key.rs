//! `key list|add|remove`: the passphrases that open an encrypted store.
use super::progress::Printer;
use super::{print_json, Cli, CliResult};
use crate::ops::key::{self, Outcome, Request};
use crate::store::check::fmt_time;

#[derive(Debug, clap::Subcommand)]
pub enum KeyCommand {
    /// List the key files (one per passphrase).
    List,
    /// Add a passphrase: from ARK_NEW_PASSWORD_FILE / ARK_NEW_PASSWORD, or asked on a terminal.
    Add,
    /// Remove a key file (not the last one, nor the one used to open the store).
    Remove {
        /// The key's id, as `key list` shows it.
        id: String,
    },
}

pub async fn run(cli: &Cli, cmd: &KeyCommand) -> CliResult {
    let ctx = cli.context(Default::default()).await?;
    let req = match cmd {
        KeyCommand::List => Request::List,
        KeyCommand::Add => {
            // An unencrypted store is refused before a new passphrase is asked for.
            key::require_encrypted(&ctx)?;
            let pass =
                super::passphrase::new_passphrase("ARK_NEW_PASSWORD", "ARK_NEW_PASSWORD_FILE")
                    .map_err(crate::store::StoreError::from)?;
            Request::Add {
                passphrase: pass.into(),
            }
        }
        KeyCommand::Remove { id } => Request::Remove { id: id.clone() },
    };
    let outcome = key::run(&ctx, &req, &Printer).await?;
    if cli.json {
        print_json(&outcome);
        return Ok(());
    }
    match outcome {
        Outcome::Listed(ks) => {
            for k in ks {
                println!(
                    "{} {}  created {} on {}  {}",
                    if k.current { "*" } else { " " },
                    k.id,
                    fmt_time(k.created_ms),
                    k.host,
                    k.kdf
                );
            }
        }
        Outcome::Added { added } => println!("added key {added}"),
        Outcome::Removed { removed } => println!("removed key {removed}"),
    }
    Ok(())
}
