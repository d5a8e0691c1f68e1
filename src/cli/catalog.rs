//! `catalog rebuild` and `catalog status`, and what the read commands (`list`,
//! `show`, `diff`, `history`) share: their [`ReadContext`] (the operations in
//! `crate::ops` open the catalog: caught up with the store, without its key
//! when the catalog is current, or as it was when the store cannot be
//! reached), and text layout.
use super::progress::Printer;
use super::{print_json, printable, Cli, CliError, CliResult};
use crate::catalog::{Catalog, CatalogError, CatchUpReport};
use crate::ops::read::ReadContext;
use crate::store::Store;

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

/// The context of an operation on `store` from this command.
fn context_of(cli: &Cli, store: &Store) -> crate::ops::Context {
    crate::ops::Context::new(store.clone(), cli.data_dir()).with_sandbox(super::sandboxes())
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

/// What the read commands (`list`, `show`, `diff`, `history`, `catalog
/// status`) run in: the store's location, opened (with its passphrase)
/// only when the catalog cannot answer alone (see [`crate::ops::read`]).
pub fn read_context(cli: &Cli) -> CliResult<ReadContext> {
    let location = cli.store_location()?;
    let backend = super::backend(&location)?;
    Ok(ReadContext::at(
        location,
        backend,
        std::sync::Arc::new(super::passphrase::passphrase),
        cli.data_dir(),
    )
    .with_env(std::sync::Arc::new(crate::ops::Environment::capture()))
    .with_sandbox(super::sandboxes()))
}

/// The catalog for a command that reads it, opened as the read operations
/// open it (see [`crate::ops::read::open_catalog`]).
pub async fn open_catalog(cli: &Cli) -> CliResult<Catalog> {
    Ok(crate::ops::read::open_catalog(&read_context(cli)?, &Printer).await?)
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
            let st = crate::ops::catalog::status(&read_context(cli)?, &Printer).await?;
            let (path, state, backups) = (&st.path, &st.state, st.backups);
            if cli.json {
                print_json(&st);
            } else {
                println!("catalog  {}", printable(path));
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
                println!("backups  {backups}");
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
