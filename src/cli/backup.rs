//! `n8n-ark backup --type KIND`: one backup, its sources from flags, `ARK_*`
//! variables and the config file (in that order of precedence).
use super::postgres_args::{ServerArgs, Servers, ToolArgs};
use super::{human_bytes, print_json, Cli, CliError, CliResult};
use crate::backup::{self, BackupKind, Sources};
use crate::settings::{secret, Settings};
use crate::source::config_files::{default_paths, ConfigPath};
use crate::source::n8n_api::N8nApi;
use crate::store::Store;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to back up.
    #[arg(long = "type", value_enum)]
    pub kind: BackupKind,
    #[command(flatten)]
    pub servers: ServerArgs,
    /// A config file or directory (or glob) to back up; required to exist.
    /// Repeatable; ARK_CONFIG_PATHS takes a colon-separated list.
    #[arg(long = "config-path", env = "ARK_CONFIG_PATHS", value_delimiter = ':')]
    pub config_paths: Vec<String>,
    /// Leave out the usual layout's paths (.env, compose file, nginx, Let's Encrypt).
    #[arg(long)]
    pub no_default_config_paths: bool,
    #[command(flatten)]
    pub tools: ToolArgs,
    /// n8n's base URL (for flows without a database). API key:
    /// ARK_N8N_API_KEY or the file named by ARK_N8N_API_KEY_FILE.
    #[arg(long, env = "ARK_N8N_URL")]
    pub n8n_url: Option<String>,
    /// Do not run the verifications the policy asks for after a backup
    /// (default policy: `data` after every backup; see `verify policy show`).
    #[arg(long)]
    pub no_verify: bool,
    /// The sandbox of a `restore`-level verification after the backup.
    #[command(flatten)]
    pub sandbox: super::sandbox_args::SandboxArgs,
}

/// Resolves the sources; an error is the operator's to fix (a usage error).
fn sources(a: &Args, s: &Settings) -> Result<Sources, String> {
    let Servers { n8n_db, pg_server } = a.servers.resolve(s)?;
    let dump = a.tools.dump_runner(s);
    let mut config_paths = Vec::new();
    let defaults = !a.no_default_config_paths && s.config_files.defaults.unwrap_or(true);
    if defaults {
        config_paths.extend(default_paths());
    }
    for p in s.config_files.optional.iter() {
        config_paths.push(ConfigPath {
            pattern: p.clone(),
            required: false,
        });
    }
    for p in s.config_files.paths.iter().chain(a.config_paths.iter()) {
        if p.is_empty() {
            continue;
        }
        if !p.starts_with('/') {
            return Err(format!("config path {p:?} is not absolute"));
        }
        // A path given explicitly is required, also when a default names it.
        config_paths.retain(|c| c.pattern != *p);
        config_paths.push(ConfigPath {
            pattern: p.clone(),
            required: true,
        });
    }
    let n8n_api = match a.n8n_url.as_ref().or(s.n8n.api_url.as_ref()) {
        Some(url) if a.kind == BackupKind::Flows && n8n_db.is_none() => {
            let key = secret(
                "ARK_N8N_API_KEY",
                "ARK_N8N_API_KEY_FILE",
                s.n8n.api_key_file.as_deref(),
            )?
            .ok_or_else(|| {
                "n8n's API needs a key: set ARK_N8N_API_KEY or ARK_N8N_API_KEY_FILE \
                     (create one in n8n: Settings → n8n API)"
                    .to_string()
            })?;
            Some(N8nApi::new(url, key.to_string()).map_err(|e| e.to_string())?)
        }
        _ => None,
    };
    Ok(Sources {
        n8n_db,
        pg_server,
        dump,
        config_paths,
        n8n_api,
    })
}

pub async fn run(cli: &Cli, a: &Args) -> CliResult {
    // SIGINT, SIGTERM and SIGHUP stop the backup cleanly: recorded as failed
    // (stage `interrupted`), its lock released, pg_dump stopped.
    let cancel = super::signals::install(super::signals::OnSignal::Cancel);
    let resolved = cli.settings().and_then(|s| sources(a, s));
    // The dump starts while the store opens (the passphrase's key derivation
    // takes a few tenths of a second of one core): see backup::HeadStart.
    // Not while a person types the passphrase: the snapshot would be held
    // open (and pg_dump blocked) for as long as that takes.
    let head_start = async {
        match &resolved {
            Ok(sources) if !super::passphrase::may_prompt() => {
                backup::HeadStart::start(a.kind, sources).await
            }
            _ => None,
        }
    };
    let (store, head_start) = tokio::join!(cli.open_store(), head_start);
    let store = store?;
    // The catalog opens and catches up with earlier events while the backup
    // runs; afterwards only this backup's events remain to apply.
    let early_catalog = async {
        match super::catalog::open_and_catch_up(cli, &store).await {
            Ok((catalog, Ok(_))) => Some(catalog),
            Ok((catalog, Err(_))) => {
                catalog.close().await;
                None
            }
            Err(_) => None,
        }
    };
    let work = async {
        match resolved {
            Ok(sources) => {
                let progress = |session: &crate::store::ingest::BackupSession| {
                    super::progress_for(session, None)
                        .map(|g| Box::new(g) as Box<dyn std::any::Any + Send>)
                };
                backup::run_labelled(
                    &store,
                    a.kind,
                    &sources,
                    &progress,
                    Default::default(),
                    head_start,
                    &cancel,
                    crate::ops::Trigger::Manual,
                )
                .await
            }
            Err(message) => {
                Err(
                    backup::record_rejected(&store, a.kind, &message, crate::ops::Trigger::Manual)
                        .await,
                )
            }
        }
    };
    let (result, catalog) = tokio::join!(work, early_catalog);
    // The catalog follows the journal (also after a failure, which it shows).
    catch_up_catalog(cli, &store, catalog).await;
    if let Some(reason) = cancel.reason() {
        let message = match &result {
            Err(e) => e.to_string(),
            Ok(s) => format!(
                "backup {} completed before the signal took effect",
                s.backup_id
            ),
        };
        if result.is_err() {
            return Err(CliError::Interrupted(
                format!("{message} (recorded in the store's journal)"),
                super::signals::exit_code(&reason),
            ));
        }
        // Completed all the same: no verification after it.
        return report(cli, &store, result);
    }
    // The verifications the policy asks for after a completed backup. A
    // failed one leaves the backup completed; the command then exits non-zero.
    let summary = match (&result, a.no_verify) {
        (Ok(s), false) => Some(s.clone()),
        _ => None,
    };
    let Some(summary) = summary else {
        return report(cli, &store, result);
    };
    // A sandbox without an image of its own takes that of the container the
    // dump ran in.
    let sandbox = a
        .sandbox
        .options(cli.settings().ok().and_then(|s| a.tools.container(s)));
    if cli.json {
        let (runs, err) =
            super::policy::after_backup(cli, &store, &summary.backup_id, &sandbox).await;
        let mut v = serde_json::to_value(&summary).expect("report types serialize");
        if let Some(o) = v.as_object_mut() {
            o.insert(
                "verifications".into(),
                serde_json::to_value(&runs).expect("report types serialize"),
            );
        }
        print_json(&v);
        return err.map_or(Ok(()), Err);
    }
    report(cli, &store, result)?;
    let (_, err) = super::policy::after_backup(cli, &store, &summary.backup_id, &sandbox).await;
    err.map_or(Ok(()), Err)
}

fn report(
    cli: &Cli,
    store: &Store,
    result: Result<crate::store::ingest::BackupSummary, backup::BackupError>,
) -> CliResult {
    match result {
        Ok(s) => {
            if cli.json {
                print_json(&s);
            } else {
                let c = &s.counts;
                println!(
                    "backup {} ({}) completed in {:.1} s",
                    s.backup_id,
                    s.kind,
                    s.duration_ms as f64 / 1000.0
                );
                println!(
                    "  read {}, stored {} ({} new in {} new objects, {} objects reused)",
                    human_bytes(s.logical_bytes),
                    human_bytes(s.stored_bytes),
                    human_bytes(s.new_bytes),
                    s.new_objects,
                    s.reused_objects
                );
                let mut parts = vec![];
                if c.databases > 0 {
                    parts.push(format!("{} database(s), {} tables", c.databases, c.tables));
                }
                if c.workflows > 0 || s.kind == "flows" {
                    parts.push(format!("{} workflows", c.workflows));
                }
                if c.credentials > 0 {
                    parts.push(format!("{} credentials (names only)", c.credentials));
                }
                if c.config_files > 0 {
                    parts.push(format!("{} config files", c.config_files));
                }
                if !parts.is_empty() {
                    println!("  {}", parts.join(", "));
                }
                println!("  in store {}", store.location());
            }
            Ok(())
        }
        Err(e) => {
            let mut msg = e.to_string();
            match &e.unrecorded {
                Some(why) => msg.push_str(&format!(
                    " (the failure could not be recorded in the store either: {why})"
                )),
                None => msg.push_str(" (recorded in the store's journal)"),
            }
            // Refused for its settings before anything was read: a usage error.
            Err(if e.stage == "configuration" {
                CliError::Usage(msg)
            } else {
                CliError::Failed(msg)
            })
        }
    }
}

/// Brings the catalog up to date after a backup (a damaged one is set aside
/// and made again); a catalog problem is a warning here (the backup itself
/// is in the store either way, and every command that reads the catalog
/// catches up first).
async fn catch_up_catalog(cli: &Cli, store: &Store, opened: Option<crate::catalog::Catalog>) {
    let caught_up = match opened {
        Some(catalog) => super::catalog::catch_up_replacing(cli, catalog, store, false).await,
        None => super::catalog::open_and_catch_up(cli, store).await,
    };
    let r = match caught_up {
        Ok((catalog, r)) => {
            catalog.close().await;
            if let Ok(report) = &r {
                super::catalog::print_journal_damage(report);
            }
            r.map(|_| ()).map_err(|e| e.to_string())
        }
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = r {
        eprintln!(
            "warning: the catalog in {} was not updated ({e}); the backup is in the store, \
             and the next command that reads the catalog catches up with it",
            cli.data_dir().display()
        );
    }
}
