//! `show BACKUP`: what one backup holds (workflows, credential names, config
//! files, database tables), from the catalog, without loading the backup.
use super::catalog::{catalog_err, fmt_count, fmt_duration, fmt_time, open_catalog, TextTable};
use super::{human_bytes, print_json, Cli, CliResult};
use crate::catalog::{BackupView, WorkflowFilter};

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
}

pub async fn run(cli: &Cli, a: &Args) -> CliResult {
    let catalog = open_catalog(cli).await?;
    let id = catalog.resolve(&a.backup).await.map_err(catalog_err)?;
    let filter = WorkflowFilter {
        name_contains: a.workflow.clone(),
        active: match (a.active, a.inactive) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        },
        tag: a.tag.clone(),
    };
    let view = catalog.show(&id, &filter).await.map_err(catalog_err)?;
    catalog.close().await;
    if cli.json {
        print_json(&view);
    } else {
        print_view(&view);
    }
    Ok(())
}

fn print_view(v: &BackupView) {
    let b = &v.backup;
    println!("backup    {}", b.backup_id);
    println!("kind      {} ({})", b.kind, b.status);
    if let Some(h) = &b.host {
        println!("host      {h}");
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
        println!("sources   {}", b.sources.join(", "));
    }
    if let Some(f) = &v.encryption_key_fingerprint {
        println!(
            "n8n key   fingerprint {f}{}",
            v.encryption_key_source
                .as_deref()
                .map(|s| format!(" (from {s})"))
                .unwrap_or_default()
        );
    }
    for (k, val) in &v.labels {
        println!("label     {k}={val}");
    }
    if let Some(n) = &b.note {
        println!("note      {n}");
    }
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
                .map(|s| format!(" (read from {s})"))
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
            d.name,
            d.server_version,
            d.migration_head
                .as_deref()
                .map(|m| format!(", n8n migration {m}"))
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
