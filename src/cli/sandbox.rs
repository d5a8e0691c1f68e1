//! `n8n-ark sandbox list|remove|reap`: the temporary PostgreSQL sandboxes
//! n8n-ark made on this machine (verification, restore checks, browsing).
use super::progress::Printer;
use super::{print_json, Cli, CliError, CliResult};
use crate::ops;

#[derive(Debug, clap::Subcommand)]
pub enum SandboxCommand {
    /// List n8n-ark's sandboxes on this machine (containers and directories).
    List,
    /// Remove one sandbox by name (container name or directory).
    Remove {
        /// As `n8n-ark sandbox list` shows it.
        name: String,
    },
    /// Remove the sandboxes whose owner process is gone or whose browse idle
    /// time has passed.
    Reap {
        /// Stay until no browse sandbox is left, removing each when its idle
        /// time passes (what n8n-ark starts in the background after `show --table`).
        #[arg(long)]
        until_empty: bool,
    },
}

pub async fn run(cli: &Cli, c: &SandboxCommand) -> CliResult {
    match c {
        SandboxCommand::List => {
            let all = ops::sandbox::list(&Printer).await?;
            if cli.json {
                print_json(&all);
                return Ok(());
            }
            if all.is_empty() {
                println!("no sandboxes");
            }
            let now = crate::sandbox::now_secs();
            for s in all {
                let state = match (s.expires, s.owner_alive) {
                    (Some(e), _) if e > now => format!("idle, removed in {}s", e - now),
                    (Some(_), _) => "expired".to_string(),
                    (None, true) => format!("in use by pid {}", s.owner_pid),
                    (None, false) => format!("left over (pid {} is gone)", s.owner_pid),
                };
                println!("{}\t{}\t{}\t{state}", s.kind.as_str(), s.purpose, s.name);
            }
            Ok(())
        }
        SandboxCommand::Remove { name } => {
            let req = ops::sandbox::RemoveRequest { name: name.clone() };
            let r = ops::sandbox::remove(&req, &Printer).await?;
            println!("removed {}", r.removed);
            Ok(())
        }
        SandboxCommand::Reap { until_empty } => {
            let req = ops::sandbox::ReapRequest {
                until_empty: *until_empty,
            };
            let removed = ops::sandbox::reap(&super::sandboxes(), &req, &Printer)
                .await
                .map_err(|e| CliError::Failed(e.to_string()))?;
            if *until_empty {
                return Ok(());
            }
            if cli.json {
                print_json(&removed);
            } else if removed.is_empty() {
                println!("nothing to remove");
            }
            Ok(())
        }
    }
}
