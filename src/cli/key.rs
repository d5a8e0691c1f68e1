//! `key list|add|remove`: the passphrases that open an encrypted store.
use super::{print_json, Cli, CliError, CliResult};
use crate::store::check::fmt_time;
use crate::store::keys;

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
    let store = cli.open_store().await?;
    if !store.is_encrypted() {
        return Err(CliError::Failed(format!(
            "{} is not encrypted: it has no keys",
            store.location()
        )));
    }
    match cmd {
        KeyCommand::List => {
            let ks = keys::list_keys(&store).await?;
            if cli.json {
                print_json(&ks);
            } else {
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
        }
        KeyCommand::Add => {
            let pass =
                super::passphrase::new_passphrase("ARK_NEW_PASSWORD", "ARK_NEW_PASSWORD_FILE")
                    .map_err(crate::store::StoreError::from)?;
            let id = keys::add_key(&store, &pass).await?;
            if cli.json {
                print_json(&serde_json::json!({ "added": id }));
            } else {
                println!("added key {id}");
            }
        }
        KeyCommand::Remove { id } => {
            keys::remove_key(&store, id).await?;
            if cli.json {
                print_json(&serde_json::json!({ "removed": id }));
            } else {
                println!("removed key {id}");
            }
        }
    }
    Ok(())
}
