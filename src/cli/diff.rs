//! `diff A B`: what changed from backup A to backup B (workflows down to their
//! nodes, credential names, config files, tables and row counts).
use super::catalog::{fmt_count, fmt_time, read_context};
use super::progress::Printer;
use super::{human_bytes, print_json, printable as p, Cli, CliResult};
use crate::catalog::{BackupDiff, Change};
use crate::ops::diff::{self, Request};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The older backup: an id, a unique prefix of one, `latest` or `latest:KIND`.
    pub from: String,
    /// The newer backup.
    pub to: String,
}

pub async fn run(cli: &Cli, a: &Args) -> CliResult {
    let req = Request {
        from: a.from.clone(),
        to: a.to.clone(),
    };
    let d = diff::run(&read_context(cli)?, &req, &Printer).await?;
    if cli.json {
        print_json(&d);
    } else {
        print_diff(&d);
    }
    Ok(())
}

fn flag(c: &Option<Change<bool>>, yes: &str, no: &str) -> Option<String> {
    c.as_ref().map(|c| if c.to { yes } else { no }.to_string())
}

fn print_diff(d: &BackupDiff) {
    println!(
        "from {} ({}, {} UTC)\nto   {} ({}, {} UTC)",
        p(&d.from.backup_id),
        p(&d.from.kind),
        fmt_time(d.from.started_ms),
        p(&d.to.backup_id),
        p(&d.to.kind),
        fmt_time(d.to.started_ms)
    );
    if d.identical {
        println!("\nno differences");
        return;
    }
    let w = &d.workflows;
    println!(
        "\nworkflows: {} added, {} removed, {} renamed, {} changed, {} (de)activated/(un)archived, {} unchanged",
        w.added.len(),
        w.removed.len(),
        w.renamed.len(),
        w.changed.len(),
        w.state_changed.len(),
        w.unchanged
    );
    for x in &w.added {
        println!(
            "  + {}  \"{}\" ({} node{})",
            p(&x.id),
            p(&x.name),
            x.node_count,
            if x.node_count == 1 { "" } else { "s" }
        );
    }
    for x in &w.removed {
        println!("  - {}  \"{}\"", p(&x.id), p(&x.name));
    }
    for x in &w.renamed {
        println!(
            "  ~ {}  renamed \"{}\" -> \"{}\"",
            p(&x.id),
            p(&x.from),
            p(&x.to)
        );
    }
    for x in &w.changed {
        let mut what = vec![format!(
            "nodes +{} -{} ~{}",
            x.nodes_added.len(),
            x.nodes_removed.len(),
            x.nodes_changed.len()
        )];
        what.extend(flag(&x.active, "activated", "deactivated"));
        what.extend(flag(&x.archived, "archived", "unarchived"));
        println!(
            "  ~ {}  \"{}\" changed: {}",
            p(&x.id),
            p(&x.name),
            what.join(", ")
        );
        for n in &x.nodes_added {
            println!("      + node \"{}\" ({})", p(&n.name), p(&n.node_type));
        }
        for n in &x.nodes_removed {
            println!("      - node \"{}\" ({})", p(&n.name), p(&n.node_type));
        }
        for n in &x.nodes_changed {
            match &n.previous_type {
                Some(t) => println!(
                    "      ~ node \"{}\" ({} -> {})",
                    p(&n.name),
                    p(t),
                    p(&n.node_type)
                ),
                None => println!("      ~ node \"{}\" ({})", p(&n.name), p(&n.node_type)),
            }
        }
        for t in &x.tags_added {
            println!("      + tag \"{}\"", p(t));
        }
        for t in &x.tags_removed {
            println!("      - tag \"{}\"", p(t));
        }
        for c in &x.credentials_added {
            println!(
                "      + uses credential {} {}",
                p(&c.credential_type),
                p(c.name.as_deref().or(c.id.as_deref()).unwrap_or(""))
            );
        }
        for c in &x.credentials_removed {
            println!(
                "      - uses credential {} {}",
                p(&c.credential_type),
                p(c.name.as_deref().or(c.id.as_deref()).unwrap_or(""))
            );
        }
        if x.nodes_added.is_empty()
            && x.nodes_removed.is_empty()
            && x.nodes_changed.is_empty()
            && x.tags_added.is_empty()
            && x.tags_removed.is_empty()
            && x.credentials_added.is_empty()
            && x.credentials_removed.is_empty()
        {
            println!("      (nodes unchanged: connections or settings changed)");
        }
    }
    for x in &w.state_changed {
        let what: Vec<String> = flag(&x.active, "activated", "deactivated")
            .into_iter()
            .chain(flag(&x.archived, "archived", "unarchived"))
            .collect();
        println!("  ~ {}  \"{}\" {}", p(&x.id), p(&x.name), what.join(", "));
    }

    let c = &d.credentials;
    if !(c.added.is_empty() && c.removed.is_empty() && c.renamed.is_empty()) {
        println!(
            "\ncredentials: {} added, {} removed, {} renamed",
            c.added.len(),
            c.removed.len(),
            c.renamed.len()
        );
        for x in &c.added {
            println!(
                "  + {}  \"{}\" ({})",
                p(&x.id),
                p(&x.name),
                p(&x.credential_type)
            );
        }
        for x in &c.removed {
            println!(
                "  - {}  \"{}\" ({})",
                p(&x.id),
                p(&x.name),
                p(&x.credential_type)
            );
        }
        for x in &c.renamed {
            println!(
                "  ~ {}  renamed \"{}\" -> \"{}\"",
                p(&x.id),
                p(&x.from),
                p(&x.to)
            );
        }
    }

    let f = &d.config_files;
    if !(f.added.is_empty() && f.removed.is_empty() && f.changed.is_empty()) {
        println!(
            "\nconfig files: {} added, {} removed, {} changed",
            f.added.len(),
            f.removed.len(),
            f.changed.len()
        );
        for x in &f.added {
            println!("  + {} ({})", p(&x.path), human_bytes(x.size));
        }
        for x in &f.removed {
            println!("  - {}", p(&x.path));
        }
        for x in &f.changed {
            let details: Vec<String> = x
                .changes
                .iter()
                .map(|c| match c.as_str() {
                    "content" => format!(
                        "content ({} -> {})",
                        human_bytes(x.from.size),
                        human_bytes(x.to.size)
                    ),
                    "mode" => format!("mode {:04o} -> {:04o}", x.from.mode, x.to.mode),
                    "owner" => format!(
                        "owner {}:{} -> {}:{}",
                        x.from.uid, x.from.gid, x.to.uid, x.to.gid
                    ),
                    "link_target" => format!(
                        "link {} -> {}",
                        p(x.from.link_target.as_deref().unwrap_or("-")),
                        p(x.to.link_target.as_deref().unwrap_or("-"))
                    ),
                    "type" => format!("type {} -> {}", x.from.file_type, x.to.file_type),
                    other => p(other).into_owned(),
                })
                .collect();
            println!("  ~ {}: {}", p(&x.path), details.join(", "));
        }
    }

    for db in &d.databases {
        println!("\ndatabase {} ({})", p(&db.database), db.status);
        if let Some(m) = &db.migration_head {
            println!(
                "  n8n migration {} -> {}",
                p(m.from.as_deref().unwrap_or("-")),
                p(m.to.as_deref().unwrap_or("-"))
            );
        }
        if let Some(v) = &db.server_version {
            println!("  PostgreSQL {} -> {}", p(&v.from), p(&v.to));
        }
        for t in &db.tables_added {
            println!(
                "  + table {}.{} ({} rows)",
                p(&t.schema),
                p(&t.name),
                fmt_count(t.rows)
            );
        }
        for t in &db.tables_removed {
            println!(
                "  - table {}.{} ({} rows)",
                p(&t.schema),
                p(&t.name),
                fmt_count(t.rows)
            );
        }
        for t in &db.columns_changed {
            let mut parts = Vec::new();
            if !t.added.is_empty() {
                parts.push(format!("+{}", t.added.join(", +")));
            }
            if !t.removed.is_empty() {
                parts.push(format!("-{}", t.removed.join(", -")));
            }
            if !t.altered.is_empty() {
                parts.push(format!("~{}", t.altered.join(", ~")));
            }
            println!(
                "  ~ columns of {}.{}: {}",
                p(&t.schema),
                p(&t.name),
                p(&parts.join(", "))
            );
        }
        for t in &db.rows_changed {
            println!(
                "  rows {}.{}: {} -> {} ({}{})",
                p(&t.schema),
                p(&t.name),
                fmt_count(t.from),
                fmt_count(t.to),
                if t.delta >= 0 { "+" } else { "-" },
                fmt_count(t.delta.unsigned_abs())
            );
        }
    }
}
