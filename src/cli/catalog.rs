//! `catalog rebuild` and `catalog status`, and what the read commands (`list`,
//! `show`, `diff`, `history`) share: opening the catalog caught up with the
//! store (or, when the store cannot be reached, as it was), and text layout.
use super::{print_json, Cli, CliError, CliResult};
use crate::catalog::{Catalog, CatalogError, CatchUpReport};
use crate::store::StoreError;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: CatalogCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum CatalogCommand {
    /// Drop the catalog's rows and replay the store's whole journal into it.
    Rebuild,
    /// Where the catalog is and how far it has followed the store's journal.
    Status,
}

/// A catalog error for the operator.
pub fn catalog_err(e: CatalogError) -> CliError {
    match e {
        CatalogError::Store(s) => CliError::Store(s),
        CatalogError::Invalid(m) => CliError::Usage(m),
        e => CliError::Failed(e.to_string()),
    }
}

fn print_warnings(r: &CatchUpReport) {
    if r.rebuilt {
        if let Some(why) = &r.rebuild_reason {
            if why != "a rebuild was asked for" {
                eprintln!("warning: the catalog was rebuilt from the store's journal: {why}");
            }
        }
    }
    for w in &r.warnings {
        eprintln!("warning: {w}");
    }
    print_journal_damage(r);
}

/// One warning while the store's journal has damage no repair acknowledged:
/// every command that catches up says so, until `repair journal` is run.
pub fn print_journal_damage(r: &CatchUpReport) {
    if r.journal_damage.is_empty() {
        return;
    }
    eprintln!(
        "warning: the store's journal is damaged: {}. Backups whose manifests are intact stay restorable{}; \
         run `n8n-ark check` to see what it affects, then `n8n-ark repair journal`",
        r.journal_damage.join("; "),
        if r.recovered.is_empty() {
            String::new()
        } else {
            format!(
                " (shown from their manifests: {})",
                r.recovered.join(", ")
            )
        }
    );
}

/// A store that cannot be reached (rather than one that refuses us): the
/// catalog may answer instead.
fn unreachable(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::Backend(_) | StoreError::NoSuchLocation(_) | StoreError::NotAStore(_)
    )
}

/// Opens the store, then its catalog, and catches up with the journal. When
/// the store cannot be reached, opens the catalog last made for that location
/// as it is, with a warning, so that browsing still works.
pub async fn open_catalog(cli: &Cli) -> CliResult<Catalog> {
    let data_dir = cli.data_dir();
    match cli.open_store().await {
        Ok(store) => {
            let catalog = Catalog::open(&data_dir, &store)
                .await
                .map_err(catalog_err)?;
            match catalog.catch_up(&store).await {
                Ok(r) => print_warnings(&r),
                Err(e) => eprintln!(
                    "warning: the catalog could not catch up with the store ({e}); \
                     answering from what it holds"
                ),
            }
            Ok(catalog)
        }
        Err(CliError::Store(e)) if unreachable(&e) => {
            let location = cli.store_location()?;
            // The location as the store would report it.
            let reported = crate::store::backend_for(&location)
                .map(|b| b.location())
                .unwrap_or(location.clone());
            let found = Catalog::find_offline(&data_dir, &reported)
                .await
                .map_err(catalog_err)?;
            let Some(catalog) = found else {
                return Err(CliError::Store(e));
            };
            let state = catalog.state().await.map_err(catalog_err)?;
            eprintln!(
                "warning: the store cannot be opened ({e}); answering from the local catalog{}",
                state
                    .map(|s| format!(
                        " as of {} UTC (journal record {})",
                        fmt_time(Some(s.updated_ms)),
                        s.last_seq
                    ))
                    .unwrap_or_default()
            );
            Ok(catalog)
        }
        Err(e) => Err(e),
    }
}

pub async fn run(cli: &Cli, a: &Args) -> CliResult {
    match a.command {
        CatalogCommand::Rebuild => {
            let store = cli.open_store().await?;
            let catalog = Catalog::open(&cli.data_dir(), &store)
                .await
                .map_err(catalog_err)?;
            let r = catalog.rebuild(&store).await.map_err(catalog_err)?;
            for w in &r.warnings {
                eprintln!("warning: {w}");
            }
            print_journal_damage(&r);
            if cli.json {
                print_json(&r);
            } else {
                println!(
                    "catalog {} rebuilt: {} journal records applied (up to record {})",
                    catalog.path().display(),
                    r.applied,
                    r.last_seq
                );
            }
            catalog.close().await;
            Ok(())
        }
        CatalogCommand::Status => {
            let catalog = open_catalog(cli).await?;
            let state = catalog.state().await.map_err(catalog_err)?;
            let backups = catalog
                .list_backups(&crate::catalog::BackupFilter {
                    include_forgotten: true,
                    ..Default::default()
                })
                .await
                .map_err(catalog_err)?;
            if cli.json {
                print_json(&serde_json::json!({
                    "path": catalog.path().display().to_string(),
                    "state": state,
                    "backups": backups.len(),
                }));
            } else {
                println!("catalog  {}", catalog.path().display());
                if let Some(s) = state {
                    println!("store    {} ({})", s.store_id, s.store_location);
                    println!(
                        "journal  up to record {} (updated {} UTC)",
                        s.last_seq,
                        fmt_time(Some(s.updated_ms))
                    );
                }
                println!("backups  {}", backups.len());
            }
            catalog.close().await;
            Ok(())
        }
    }
}

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM:SS` (UTC); `-` for none.
pub fn fmt_time(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| "-".into())
}

/// A duration for people: `850ms`, `12.3s`, `4m05s`, `2h03m`.
pub fn fmt_duration(ms: Option<u64>) -> String {
    let Some(ms) = ms else {
        return "-".into();
    };
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else if ms < 3_600_000 {
        format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60)
    } else {
        format!("{}h{:02}m", ms / 3_600_000, (ms / 60_000) % 60)
    }
}

/// A count with thousands separators: `1,234,567`.
pub fn fmt_count(n: u64) -> String {
    let digits: Vec<char> = n.to_string().chars().collect();
    let groups: Vec<String> = digits
        .rchunks(3)
        .rev()
        .map(|g| g.iter().collect())
        .collect();
    groups.join(",")
}

/// Columns aligned to their widest cell; columns listed in `right` are
/// right-aligned (numbers, sizes).
pub struct TextTable {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    right: Vec<usize>,
}

impl TextTable {
    pub fn new(header: &[&str]) -> Self {
        TextTable {
            header: header.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
            right: Vec::new(),
        }
    }

    pub fn right_align(mut self, columns: &[usize]) -> Self {
        self.right = columns.to_vec();
        self
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The lines, each indented by `indent` spaces, trailing spaces trimmed.
    pub fn render(&self, indent: usize) -> String {
        let n = self.header.len();
        let width = |s: &str| s.chars().count();
        let mut widths: Vec<usize> = self.header.iter().map(|h| width(h)).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate().take(n) {
                widths[i] = widths[i].max(width(c));
            }
        }
        let mut out = String::new();
        for r in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = " ".repeat(indent);
            for (i, c) in r.iter().enumerate().take(n) {
                let pad = " ".repeat(widths[i] - width(c));
                if self.right.contains(&i) {
                    line.push_str(&pad);
                    line.push_str(c);
                } else {
                    line.push_str(c);
                    line.push_str(&pad);
                }
                if i + 1 < n {
                    line.push_str("  ");
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    pub fn print(&self, indent: usize) {
        print!("{}", self.render(indent));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(fmt_count(0), "0");
        assert_eq!(fmt_count(999), "999");
        assert_eq!(fmt_count(1000), "1,000");
        assert_eq!(fmt_count(1234567), "1,234,567");
        assert_eq!(fmt_time(Some(0)), "1970-01-01 00:00:00");
        assert_eq!(fmt_time(None), "-");
        assert_eq!(fmt_duration(Some(850)), "850ms");
        assert_eq!(fmt_duration(Some(12_340)), "12.3s");
        assert_eq!(fmt_duration(Some(245_000)), "4m05s");
        let mut t = TextTable::new(&["A", "NUM"]).right_align(&[1]);
        t.row(vec!["long name".into(), "5".into()]);
        assert_eq!(t.render(0), "A          NUM\nlong name    5\n");
    }
}
