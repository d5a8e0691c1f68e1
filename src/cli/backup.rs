//! `n8n-ark backup --type KIND`: one backup, its sources from flags, `ARK_*`
//! variables and the config file (in that order of precedence).
use super::policy::RunPrinter;
use super::postgres_args::{ServerArgs, ToolArgs};
use super::progress::{ByteBar, Printer};
use super::value_enums::KindArg;
use super::{human_bytes, print_json, Cli, CliError, CliResult};
use crate::backup::BackupKind;
use crate::config::{PostgresOverrides, SourceOverrides};
use crate::ops::backup::{self, Request};
use crate::ops::{Environment, ErrorKind, Progress, Reporter};
use crate::store::ingest::BackupSummary;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to back up.
    #[arg(long = "type", value_enum)]
    pub kind: KindArg,
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

impl Args {
    /// The engine's request.
    pub fn request(&self) -> Request {
        Request {
            kind: BackupKind::from(self.kind),
            sources: SourceOverrides {
                postgres: postgres_overrides(&self.servers, &self.tools),
                config_paths: self.config_paths.clone(),
                no_default_config_paths: self.no_default_config_paths,
                n8n_url: self.n8n_url.clone(),
            },
            no_verify: self.no_verify,
            sandbox: self.sandbox.options(None),
        }
    }
}

/// The PostgreSQL flags as the engine's overrides.
pub fn postgres_overrides(servers: &ServerArgs, tools: &ToolArgs) -> PostgresOverrides {
    PostgresOverrides {
        n8n_db: servers.n8n_db.clone(),
        pg_server: servers.pg_server.clone(),
        pg_dump: tools.pg_dump.clone(),
        pg_container: tools.pg_container.clone(),
        pg_container_host: tools.pg_container_host.clone(),
        pg_container_port: tools.pg_container_port,
    }
}

pub async fn run(cli: &Cli, a: &Args) -> CliResult {
    // SIGINT, SIGTERM and SIGHUP stop the backup cleanly: recorded as failed
    // (stage `interrupted`), its lock released, pg_dump stopped.
    let cancel = super::signals::install(super::signals::OnSignal::Cancel);
    let settings = cli.settings().map_err(CliError::Usage)?;
    let env = Environment::capture();
    let req = a.request();
    // The dump starts while the store opens (see ops::backup::prepare), not
    // while a person types the passphrase.
    let prepare = backup::prepare(settings, &env, &req, !super::passphrase::may_prompt());
    let (ctx, prepared) = tokio::join!(cli.context(cancel.clone()), prepare);
    let ctx = match ctx {
        Ok(ctx) => ctx,
        Err(e) => {
            // Nothing of the dump started meanwhile outlives the command.
            prepared.abandon().await;
            return Err(e);
        }
    };
    let printer = BackupPrinter {
        text: !cli.json,
        store: ctx.store.location(),
        bar: ByteBar::default(),
    };
    let result = backup::run_prepared(&ctx, &req, prepared, &printer).await;
    printer.bar.clear();
    let outcome = match result {
        Ok(o) => o,
        Err(e) if e.kind == ErrorKind::Interrupted => {
            return Err(CliError::Interrupted(
                e.message,
                super::signals::exit_code(&cancel.reason().unwrap_or_default()),
            ))
        }
        Err(e) => return Err(e.into()),
    };
    if cli.json {
        print_json(&outcome);
    }
    match outcome.verification_failure() {
        Some(e) => Err(CliError::Failed(e.message)),
        None => Ok(()),
    }
}

/// What a backup reports, drawn: a bar while it reads, its summary when it
/// completed, each verification after it as it begins and ends (text only;
/// `--json` prints the outcome at the end), warnings.
struct BackupPrinter {
    text: bool,
    store: String,
    bar: ByteBar,
}

impl Reporter for BackupPrinter {
    fn report(&self, p: Progress) {
        if let Progress::Bytes { done, total } = p {
            self.bar.update(done, total);
            return;
        }
        self.bar.clear();
        match p {
            Progress::Partial { name, value } if name == backup::PARTIAL_SUMMARY => {
                if let (true, Ok(s)) = (self.text, serde_json::from_value::<BackupSummary>(value)) {
                    print_summary(&s, &self.store);
                }
            }
            Progress::Partial { name, value } => {
                RunPrinter { text: self.text }.partial(&name, &value);
            }
            p => Printer.report(p),
        }
    }
}

fn print_summary(s: &BackupSummary, store: &str) {
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
    println!("  in store {store}");
}
