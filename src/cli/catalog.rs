//! `catalog rebuild` and `catalog status`, and what the read commands (`list`,
//! `show`, `diff`, `history`) share: opening the catalog caught up with the
//! store (or, when the store cannot be reached, as it was), and text layout.
use super::progress::Printer;
use super::{print_json, printable, Cli, CliError, CliResult};
use crate::catalog::{Catalog, CatalogError, CatchUpReport};
use crate::store::{Store, StoreError};

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
    crate::ops::catalog::report_catch_up(&Printer, r);
}

/// One warning while the store's journal has damage no repair acknowledged:
/// every command that catches up says so, until `repair journal` is run.
pub fn print_journal_damage(r: &CatchUpReport) {
    print_known_damage(&r.journal_damage, &r.recovered);
}

fn print_known_damage(damage: &[String], recovered: &[String]) {
    crate::ops::catalog::report_journal_damage(&Printer, damage, recovered);
}

/// A store that cannot be reached (rather than one that refuses us): the
/// catalog may answer instead.
fn unreachable(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::Backend(_) | StoreError::NoSuchLocation(_) | StoreError::NotAStore(_)
    )
}

/// The one line that says a damaged catalog was set aside and made again.
fn say_set_aside(catalog: &Catalog, report: &Result<CatchUpReport, CatalogError>) {
    crate::ops::catalog::report_set_aside(&Printer, catalog, report);
}

/// The context of an operation on `store` from this command.
fn context_of(cli: &Cli, store: &Store) -> crate::ops::Context {
    crate::ops::Context::new(store.clone(), cli.data_dir())
}

/// Opens the catalog of `store` and catches up with its journal (see
/// [`crate::ops::catalog::open`]).
pub async fn open_and_catch_up(
    cli: &Cli,
    store: &Store,
) -> CliResult<(Catalog, Result<CatchUpReport, CatalogError>)> {
    Ok(crate::ops::catalog::open(&context_of(cli, store), &Printer).await?)
}

/// Catches an open catalog up with the store (see
/// [`crate::ops::catalog::catch_up_replacing`]).
pub async fn catch_up_replacing(
    cli: &Cli,
    catalog: Catalog,
    store: &Store,
    announce: bool,
) -> CliResult<(Catalog, Result<CatchUpReport, CatalogError>)> {
    Ok(crate::ops::catalog::catch_up_replacing(
        &context_of(cli, store),
        catalog,
        announce,
        &Printer,
    )
    .await?)
}

/// [`open_and_catch_up`] for a command that needs the catalog current
/// (a restore or verification resolving `latest`): a failed catch-up is
/// an error; its warnings are printed.
pub async fn open_caught_up(cli: &Cli, store: &Store) -> CliResult<Catalog> {
    let (catalog, report) = open_and_catch_up(cli, store).await?;
    match report {
        Ok(r) => {
            print_warnings(&r);
            Ok(catalog)
        }
        Err(e) => {
            catalog.close().await;
            Err(catalog_err(e))
        }
    }
}

/// A catalog open for reading, and the store when it was opened for it.
struct Reading {
    catalog: Catalog,
    /// `None` when the catalog answers without the store's key (it holds the
    /// whole journal) or without the store (out of reach).
    store: Option<Store>,
}

/// The catalog, without the store's key, when it holds every record of the
/// store's journal (nothing to decrypt: see [`Catalog::open_if_current`]).
async fn current_without_key(cli: &Cli) -> Option<Catalog> {
    let location = cli.store_location().ok()?;
    let backend = crate::store::backend_for(&location).ok()?;
    let look = Catalog::open_if_current(&cli.data_dir(), &backend)
        .await
        .ok()?;
    let catalog = look.catalog?;
    if look.config.encryption == "none" {
        super::warn_unencrypted_at(&backend.location());
    }
    // Journal damage the catalog knows of is said here too: nothing new in
    // the journal does not mean nothing is wrong with it.
    if let Ok(damage) = catalog.journal_damage().await {
        print_known_damage(
            &damage.iter().map(|d| d.message.clone()).collect::<Vec<_>>(),
            &[],
        );
    }
    Some(catalog)
}

/// The error when the store is out of reach and the catalog that would
/// answer instead is damaged.
fn damaged_offline(
    location: &str,
    store_err: &dyn std::fmt::Display,
    path: &str,
    reason: &str,
) -> CliError {
    CliError::Failed(format!(
        "the store {location} cannot be opened ({store_err}), and no local catalog can answer instead: \
         {path} is damaged ({reason}); nothing was changed: once the store can be reached, \
         `n8n-ark catalog rebuild` (or any command that reads the catalog) moves the damaged file aside \
         and makes the catalog again from the store"
    ))
}

/// Opens the store, then its catalog, and catches up with the journal; or,
/// when the catalog already holds the whole journal, the catalog alone,
/// without the store's key. When the store cannot be reached, opens the
/// catalog last made for that location as it is, with a warning, so that
/// browsing still works.
async fn open_reading(cli: &Cli) -> CliResult<Reading> {
    if let Some(catalog) = current_without_key(cli).await {
        return Ok(Reading {
            catalog,
            store: None,
        });
    }
    let data_dir = cli.data_dir();
    match cli.open_store().await {
        Ok(store) => {
            let (catalog, report) = open_and_catch_up(cli, &store).await?;
            match report {
                Ok(r) => print_warnings(&r),
                Err(e) => eprintln!(
                    "warning: the catalog could not catch up with the store ({e}); \
                     answering from what it holds"
                ),
            }
            Ok(Reading {
                catalog,
                store: Some(store),
            })
        }
        Err(CliError::Store(e)) if unreachable(&e) => {
            let location = cli.store_location()?;
            // The location as the store would report it.
            let reported = crate::store::backend_for(&location)
                .map(|b| b.location())
                .unwrap_or(location.clone());
            let found = match Catalog::find_offline(&data_dir, &reported).await {
                Ok(f) => f,
                Err(CatalogError::Unreadable { path, reason }) => {
                    return Err(damaged_offline(&reported, &e, &path, &reason))
                }
                Err(e) => return Err(catalog_err(e)),
            };
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
            Ok(Reading {
                catalog,
                store: None,
            })
        }
        Err(e) => Err(e),
    }
}

/// The catalog for a read command (see [`read_catalog`], which also
/// recovers from damage found by the queries themselves).
pub async fn open_catalog(cli: &Cli) -> CliResult<Catalog> {
    Ok(open_reading(cli).await?.catalog)
}

/// Runs a read command's `query` on the catalog (opened as
/// [`open_catalog`] does). When the query finds the catalog damaged (a
/// page only it reads), the catalog is moved aside, made again from the
/// store, and the query runs again.
pub async fn read_catalog<T>(
    cli: &Cli,
    query: impl AsyncFn(&Catalog) -> Result<T, CatalogError>,
) -> CliResult<T> {
    let Reading { catalog, store } = open_reading(cli).await?;
    let err = match query(&catalog).await {
        Ok(v) => {
            catalog.close().await;
            return Ok(v);
        }
        Err(e) if e.is_damage() => e,
        Err(e) => {
            catalog.close().await;
            return Err(catalog_err(e));
        }
    };
    let store = match store {
        Some(s) => s,
        None => match cli.open_store().await {
            Ok(s) => s,
            Err(CliError::Store(e)) if unreachable(&e) => {
                let path = catalog.path().display().to_string();
                catalog.close().await;
                return Err(damaged_offline(
                    &cli.store_location()?,
                    &e,
                    &path,
                    &err.to_string(),
                ));
            }
            Err(e) => {
                catalog.close().await;
                return Err(e);
            }
        },
    };
    let catalog = catalog
        .replace_damaged(&cli.data_dir(), &store, &err)
        .await
        .map_err(catalog_err)?;
    let report = catalog.catch_up(&store).await;
    say_set_aside(&catalog, &report);
    if let Err(e) = report {
        catalog.close().await;
        return Err(catalog_err(e));
    }
    let v = query(&catalog).await;
    catalog.close().await;
    v.map_err(catalog_err)
}

pub async fn run(cli: &Cli, a: &Args) -> CliResult {
    match a.command {
        CatalogCommand::Rebuild => {
            let ctx = cli.context(Default::default()).await?;
            let r = crate::ops::catalog::rebuild(&ctx, &Printer).await?;
            if cli.json {
                print_json(&r.report);
            } else {
                println!(
                    "catalog {} rebuilt: {} journal records applied (up to record {})",
                    r.path, r.report.applied, r.report.last_seq
                );
            }
            Ok(())
        }
        CatalogCommand::Status => {
            let (path, state, backups) = read_catalog(cli, async |c: &Catalog| {
                let state = c.state().await?;
                let backups = c
                    .list_backups(&crate::catalog::BackupFilter {
                        include_forgotten: true,
                        ..Default::default()
                    })
                    .await?;
                Ok((c.path().to_path_buf(), state, backups))
            })
            .await?;
            if cli.json {
                print_json(&serde_json::json!({
                    "path": path.display().to_string(),
                    "state": state,
                    "backups": backups.len(),
                }));
            } else {
                println!("catalog  {}", printable(&path.display().to_string()));
                if let Some(s) = state {
                    println!(
                        "store    {} ({})",
                        printable(&s.store_id),
                        printable(&s.store_location)
                    );
                    println!(
                        "journal  up to record {} (updated {} UTC)",
                        s.last_seq,
                        fmt_time(Some(s.updated_ms))
                    );
                }
                println!("backups  {}", backups.len());
            }
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
            header: header
                .iter()
                .map(|s| super::printable(s).into_owned())
                .collect(),
            rows: Vec::new(),
            right: Vec::new(),
        }
    }

    pub fn right_align(mut self, columns: &[usize]) -> Self {
        self.right = columns.to_vec();
        self
    }

    /// A row of cells; each is made [`printable`](super::printable) (cells
    /// hold names and messages from outside).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(
            cells
                .into_iter()
                .map(|c| super::printable(&c).into_owned())
                .collect(),
        );
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

    #[test]
    fn names_are_printable() {
        use crate::cli::printable;
        assert_eq!(printable("Order sync"), "Order sync");
        assert!(matches!(
            printable("plain ünïcödé ✓"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(
            printable("a\u{1b}[31mb\nc\rd\te\u{7}f\u{7f}g"),
            r"a\x1b[31mb\nc\rd\te\x07f\x7fg"
        );
        assert_eq!(printable("x\u{9b}2Jy\u{202e}z"), r"x\u{9b}2Jy\u{202e}z");
        // Escaped cells keep their width in a table.
        let mut t = TextTable::new(&["NAME"]);
        t.row(vec!["a\nb".into()]);
        assert_eq!(t.render(0), "NAME\na\\nb\n");
    }
}
