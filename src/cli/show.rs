//! `show BACKUP`: what one backup holds (workflows, credential names, config
//! files, database tables), from the catalog, without loading the backup.
use super::catalog::{fmt_count, fmt_duration, fmt_time, read_catalog, TextTable};
use super::{human_bytes, print_json, printable, Cli, CliResult};
use crate::catalog::{BackupView, Catalog, WorkflowFilter};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A backup id, a unique prefix of one, `latest` or `latest:KIND`.
    pub backup: String,
    /// Only workflows whose name contains this (any case).
    #[arg(long, value_name = "NAME")]
    pub workflow: Option<String>,
    /// Only active workflows.
    #[arg(long, conflicts_with = "inactive")]
    pub active: bool,
    /// Only inactive workflows.
    #[arg(long)]
    pub inactive: bool,
    /// Only workflows with this tag.
    #[arg(long)]
    pub tag: Option<String>,
    /// Rows of this table (`name` or `schema.name`) of a database of the
    /// backup, read from a sandbox the dump is loaded into (kept up for
    /// --sandbox-idle, so the next request is fast). Secret columns are masked.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["workflow", "active", "inactive", "tag"])]
    pub table: Option<String>,
    /// With --table: the database (default: the n8n database).
    #[arg(long, value_name = "DB", requires = "table")]
    pub database: Option<String>,
    /// With --table: how many rows (1 to 10000).
    #[arg(long, default_value_t = 20, requires = "table", value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub limit: u32,
    /// With --table: skip this many rows first.
    #[arg(long, default_value_t = 0, requires = "table")]
    pub offset: u64,
    /// With --table: highest primary key first (e.g. the newest executions).
    #[arg(long, requires = "table")]
    pub desc: bool,
    /// With --table: show secret columns (credential data, API keys, password
    /// hashes, tokens) instead of masking them.
    #[arg(long, requires = "table")]
    pub show_secrets: bool,
    /// With --table: how long the browse sandbox stays up after its last use,
    /// in seconds (default 600).
    #[arg(long, env = "ARK_SANDBOX_IDLE", value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub sandbox_idle: Option<u64>,
    #[command(flatten)]
    pub sandbox: super::sandbox_args::SandboxArgs,
}

pub async fn run(cli: &Cli, a: &Args) -> CliResult {
    if let Some(table) = &a.table {
        return show_table(cli, a, table).await;
    }
    let filter = WorkflowFilter {
        name_contains: a.workflow.clone(),
        active: match (a.active, a.inactive) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        },
        tag: a.tag.clone(),
    };
    let view = read_catalog(cli, async |c: &Catalog| {
        let id = c.resolve(&a.backup).await?;
        c.show(&id, &filter).await
    })
    .await?;
    if cli.json {
        print_json(&view);
    } else {
        print_view(&view);
    }
    Ok(())
}

fn print_view(v: &BackupView) {
    let b = &v.backup;
    println!("backup    {}", printable(&b.backup_id));
    match super::list::safety_of(b) {
        Some(safety) => println!(
            "kind      {} ({}, {})",
            printable(&b.kind),
            b.status,
            printable(&safety)
        ),
        None => println!("kind      {} ({})", printable(&b.kind), b.status),
    }
    if let Some(h) = &b.host {
        println!("host      {}", printable(h));
    }
    println!(
        "started   {} UTC, took {}",
        fmt_time(b.started_ms),
        fmt_duration(b.duration_ms)
    );
    if let Some(l) = b.logical_bytes {
        println!(
            "size      {} (stored alone {}, added {}; {} objects, {} new)",
            human_bytes(l),
            human_bytes(b.stored_bytes.unwrap_or(0)),
            human_bytes(b.new_bytes.unwrap_or(0)),
            fmt_count(b.objects.unwrap_or(0)),
            fmt_count(b.new_objects.unwrap_or(0)),
        );
    }
    if let Some(m) = &b.manifest {
        println!("manifest  {m}");
    }
    if !b.sources.is_empty() {
        println!("sources   {}", printable(&b.sources.join(", ")));
    }
    if let Some(f) = &v.encryption_key_fingerprint {
        println!(
            "n8n key   fingerprint {}{}",
            printable(f),
            v.encryption_key_source
                .as_deref()
                .map(|s| format!(" (from {})", printable(s)))
                .unwrap_or_default()
        );
    }
    for (k, val) in &v.labels {
        println!("label     {}={}", printable(k), printable(val));
    }
    if let Some(n) = &b.note {
        println!("note      {}", printable(n));
    }
    print_verification(b);
    if !v.contents_available {
        println!("\nthe catalog holds no contents for this backup");
        return;
    }

    println!();
    let filtered = !v.workflow_filter.is_empty();
    if filtered {
        println!(
            "workflows: {} of {} match",
            v.workflows.len(),
            fmt_count(v.workflow_count)
        );
    } else {
        println!(
            "workflows: {}{}",
            fmt_count(v.workflow_count),
            v.workflow_source
                .as_deref()
                .map(|s| format!(" (read from {})", printable(s)))
                .unwrap_or_default()
        );
    }
    if !v.workflows.is_empty() {
        let mut t = TextTable::new(&["ID", "NAME", "ACTIVE", "NODES", "UPDATED AT", "TAGS"])
            .right_align(&[3]);
        for w in &v.workflows {
            t.row(vec![
                w.id.clone(),
                w.name.clone(),
                match (w.active, w.archived) {
                    (_, true) => "archived".into(),
                    (true, _) => "yes".into(),
                    (false, _) => "no".into(),
                },
                w.node_count.to_string(),
                w.updated_at.clone().unwrap_or_else(|| "-".into()),
                w.tags.join(", "),
            ]);
        }
        t.print(2);
    }
    if !v.workflows_not_stored.is_empty() {
        println!(
            "workflows NOT stored: {} (read, but not in canonical form: not restorable from this \
             backup's workflow objects{})",
            v.workflows_not_stored.len(),
            if v.databases.iter().any(|d| d.is_n8n) {
                "; their rows are in its database dump"
            } else {
                ""
            }
        );
        let mut t = TextTable::new(&["ID", "NAME", "WHY"]);
        for w in &v.workflows_not_stored {
            t.row(vec![w.id.clone(), w.name.clone(), w.reason.clone()]);
        }
        t.print(2);
    }
    if filtered {
        return;
    }

    println!(
        "\ncredentials: {} (names and types only)",
        v.credential_count
    );
    if !v.credentials.is_empty() {
        let mut t = TextTable::new(&["ID", "NAME", "TYPE"]);
        for c in &v.credentials {
            t.row(vec![
                c.id.clone(),
                c.name.clone(),
                c.credential_type.clone(),
            ]);
        }
        t.print(2);
    }

    println!("\nconfig files: {}", v.config_file_count);
    if !v.config_files.is_empty() {
        let mut t = TextTable::new(&[
            "PATH", "TYPE", "SIZE", "MODE", "OWNER", "CHECKSUM", "TARGET",
        ])
        .right_align(&[2]);
        for f in &v.config_files {
            t.row(vec![
                f.path.clone(),
                f.file_type.clone(),
                if f.file_type == "file" {
                    human_bytes(f.size)
                } else {
                    "-".into()
                },
                if f.file_type == "missing" {
                    "-".into()
                } else {
                    format!("{:04o}", f.mode)
                },
                if f.file_type == "missing" {
                    "-".into()
                } else {
                    format!("{}:{}", f.uid, f.gid)
                },
                f.checksum
                    .as_deref()
                    .map(|c| c.chars().take(16).collect())
                    .unwrap_or_else(|| "-".into()),
                f.link_target
                    .as_deref()
                    .map(|l| format!("-> {l}"))
                    .unwrap_or_default(),
            ]);
        }
        t.print(2);
    }

    for d in &v.databases {
        println!(
            "\ndatabase {} (PostgreSQL {}{}): {} tables, {} rows",
            printable(&d.name),
            printable(&d.server_version),
            d.migration_head
                .as_deref()
                .map(|m| format!(", n8n migration {}", printable(m)))
                .unwrap_or_default(),
            d.tables.len(),
            fmt_count(d.total_rows)
        );
        if !d.tables.is_empty() {
            let mut t = TextTable::new(&["TABLE", "ROWS", "COLUMNS"]).right_align(&[1]);
            for tb in &d.tables {
                t.row(vec![
                    format!("{}.{}", tb.schema, tb.name),
                    fmt_count(tb.rows),
                    tb.columns.len().to_string(),
                ]);
            }
            t.print(2);
        }
    }
}

/// The backup's newest verification and when it was last proven restorable.
fn print_verification(b: &crate::catalog::BackupRecord) {
    match &b.last_verification {
        None => println!("verified  never"),
        Some(v) => {
            let what = match v.result.as_str() {
                "passed" => format!("passed ({} checks)", v.checks_run),
                "failed" => format!(
                    "FAILED ({} of {} checks did not hold)",
                    v.failure_count, v.checks_run
                ),
                _ => format!(
                    "could not run{}",
                    v.message
                        .as_deref()
                        .map(|m| format!(": {}", printable(m)))
                        .unwrap_or_default()
                ),
            };
            println!(
                "verified  {} {what}, {} UTC ({})",
                v.level,
                fmt_time(Some(v.finished_ms)),
                v.verification_id
            );
            if let Some(f) = &v.first_failure {
                println!(
                    "          first: {} {}: expected {}, found {}",
                    printable(&f.check),
                    printable(&f.subject),
                    printable(&f.expected),
                    printable(&f.found)
                );
            }
        }
    }
    match b.last_proven_restorable_ms {
        Some(ms) => println!(
            "proven    restorable {} UTC (last passed restore verification)",
            fmt_time(Some(ms))
        ),
        None => {
            println!("proven    never proven restorable (no passed restore-level verification)")
        }
    }
}

/// `show BACKUP --table NAME`: rows read from a browse sandbox.
async fn show_table(cli: &Cli, a: &Args, table: &str) -> CliResult {
    use crate::restore::table::{read_table, TableRequest};
    let (store, catalog) = super::restore::open_store_and_catalog(cli).await?;
    let chosen = crate::restore::choose_backup(&catalog, &store, &a.backup).await;
    catalog.close().await;
    let chosen = chosen.map_err(super::restore::restore_err)?;
    let req = TableRequest {
        database: a.database.clone(),
        table: table.to_string(),
        limit: a.limit,
        offset: a.offset,
        descending: a.desc,
        show_secrets: a.show_secrets,
    };
    // The table is checked against the manifest before any sandbox is made.
    let db = crate::restore::table::find_database(&chosen, req.database.as_deref())
        .map_err(super::restore::restore_err)?;
    crate::restore::table::find_table(db, &req.table).map_err(super::restore::restore_err)?;
    let idle = a
        .sandbox_idle
        .map(std::time::Duration::from_secs)
        .unwrap_or(crate::sandbox::BROWSE_IDLE);
    let rows = read_table(
        &store,
        &chosen,
        &req,
        &cli.sandbox(&a.sandbox),
        idle,
        &super::sandboxes(),
        &super::progress::Printer,
    )
    .await
    .map_err(super::restore::restore_err)?;
    let secret: Vec<&str> = rows
        .columns
        .iter()
        .filter(|c| c.secret)
        .map(|c| c.name.as_str())
        .collect();
    if a.show_secrets && !secret.is_empty() {
        eprintln!(
            "warning: --show-secrets: the secret column(s) {} of {}.{} are shown unmasked",
            printable(&secret.join(", ")),
            printable(&rows.schema),
            printable(&rows.table)
        );
    }
    if cli.json {
        print_json(&rows);
        return Ok(());
    }
    let first = rows.offset + if rows.rows.is_empty() { 0 } else { 1 };
    println!(
        "{}.{}.{} of backup {}: rows {}-{} of {} (by {}{}); {} in {}",
        printable(&rows.database),
        printable(&rows.schema),
        printable(&rows.table),
        printable(&rows.backup_id),
        first,
        rows.offset + rows.rows.len() as u64,
        fmt_count(rows.total_rows),
        printable(&rows.order_by.join(", ")),
        if rows.descending { ", descending" } else { "" },
        if rows.loaded {
            format!("dump loaded in {}", fmt_duration(Some(rows.load_ms)))
        } else {
            "dump already loaded".to_string()
        },
        printable(&rows.sandbox)
    );
    let masked: Vec<&str> = rows
        .columns
        .iter()
        .filter(|c| c.masked)
        .map(|c| c.name.as_str())
        .collect();
    if !masked.is_empty() {
        println!(
            "masked: {} (--show-secrets to see them)",
            printable(&masked.join(", "))
        );
    }
    let names: Vec<&str> = rows.columns.iter().map(|c| c.name.as_str()).collect();
    let mut t = TextTable::new(&names);
    for r in &rows.rows {
        t.row(rows.columns.iter().map(|c| cell(r.get(&c.name))).collect());
    }
    t.print(0);
    Ok(())
}

/// A value in one line of at most 60 characters (control characters
/// escaped, as everywhere: see [`printable`]).
fn cell(v: Option<&serde_json::Value>) -> String {
    let s = match v {
        None | Some(serde_json::Value::Null) => "NULL".to_string(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    };
    let s = printable(&s).into_owned();
    if s.chars().count() > 60 {
        let cut: String = s.chars().take(59).collect();
        format!("{cut}…")
    } else {
        s
    }
}
