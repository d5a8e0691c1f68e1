//! The catalog as operations use it: opened caught up with the store's
//! journal (a damaged file set aside and made again), and rebuilt on request.
//! What an operator should know about it (a rebuild and why, damage set
//! aside, the journal's unrepaired damage) goes to the reporter as warnings.
use super::{Context, OpResult, Reporter};
use crate::catalog::{Catalog, CatalogError, CatchUpReport};
use serde::Serialize;

/// The warnings a catch-up has for an operator.
pub fn report_catch_up(r: &dyn Reporter, c: &CatchUpReport) {
    if c.rebuilt {
        if let Some(why) = &c.rebuild_reason {
            if why != "a rebuild was asked for" {
                r.warning(format!(
                    "the catalog was rebuilt from the store's journal: {why}"
                ));
            }
        }
    }
    for w in &c.warnings {
        r.warning(w.clone());
    }
    report_journal_damage(r, &c.journal_damage, &c.recovered);
}

/// One warning while the store's journal has damage no repair acknowledged:
/// every operation that catches up says so, until `repair journal` is run.
pub fn report_journal_damage(r: &dyn Reporter, damage: &[String], recovered: &[String]) {
    if damage.is_empty() {
        return;
    }
    r.warning(format!(
        "the store's journal is damaged: {}. Backups whose manifests are intact stay restorable{}; \
         run `n8n-ark check` to see what it affects, then `n8n-ark repair journal`",
        damage.join("; "),
        if recovered.is_empty() {
            String::new()
        } else {
            format!(" (shown from their manifests: {})", recovered.join(", "))
        }
    ));
}

/// The one warning that says a damaged catalog was set aside and made again.
pub fn report_set_aside(
    r: &dyn Reporter,
    catalog: &Catalog,
    caught_up: &Result<CatchUpReport, CatalogError>,
) {
    if let Some(a) = catalog.set_aside() {
        r.warning(format!(
            "the catalog {} could not be read ({}): moved aside to {} and {}",
            a.path.display(),
            a.reason,
            a.moved_to.display(),
            match caught_up {
                Ok(c) => format!(
                    "made again from the store's journal ({} records)",
                    c.applied
                ),
                Err(_) => "a new one made (it could not catch up with the store yet)".into(),
            }
        ));
    }
}

/// Opens the store's catalog and catches up with its journal. A catalog
/// found damaged, opening it or catching up, is set aside and made again
/// from the store (said once). The catch-up's own result is returned beside
/// the catalog for the caller to judge; its warnings are not reported yet.
pub async fn open(
    ctx: &Context,
    r: &dyn Reporter,
) -> OpResult<(Catalog, Result<CatchUpReport, CatalogError>)> {
    let catalog = Catalog::open(&ctx.data_dir, &ctx.store).await?;
    let announce = catalog.set_aside().is_some();
    catch_up_replacing(ctx, catalog, announce, r).await
}

/// Catches an open catalog up with the store; when that finds it damaged,
/// sets it aside and makes it again. Says so (once: `announce` when the
/// catalog was set aside as it was opened and nobody said so yet).
pub async fn catch_up_replacing(
    ctx: &Context,
    mut catalog: Catalog,
    mut announce: bool,
    r: &dyn Reporter,
) -> OpResult<(Catalog, Result<CatchUpReport, CatalogError>)> {
    let mut caught_up = catalog.catch_up(&ctx.store).await;
    if let Err(e) = &caught_up {
        if e.is_damage() {
            catalog = catalog
                .replace_damaged(&ctx.data_dir, &ctx.store, e)
                .await?;
            announce = true;
            caught_up = catalog.catch_up(&ctx.store).await;
        }
    }
    if announce {
        report_set_aside(r, &catalog, &caught_up);
    }
    Ok((catalog, caught_up))
}

/// The catalog, caught up, for an operation that needs it current (to
/// resolve `latest`, to list what a repair recorded): a failed catch-up is
/// an error; its warnings are reported.
pub async fn caught_up(ctx: &Context, r: &dyn Reporter) -> OpResult<Catalog> {
    let (catalog, caught_up) = open(ctx, r).await?;
    match caught_up {
        Ok(c) => {
            report_catch_up(r, &c);
            Ok(catalog)
        }
        Err(e) => {
            catalog.close().await;
            Err(e.into())
        }
    }
}

/// Brings the catalog up to date after an operation recorded its events; a
/// problem is a warning (the events are in the store either way, and the
/// next operation that reads the catalog catches up first).
pub async fn follow(ctx: &Context, r: &dyn Reporter) {
    match open(ctx, r).await {
        Ok((catalog, Ok(c))) => {
            report_journal_damage(r, &c.journal_damage, &c.recovered);
            catalog.close().await;
        }
        Ok((catalog, Err(e))) => {
            catalog.close().await;
            r.warning(format!(
                "the catalog in {} was not updated ({e}); the store holds everything, and the next \
                 command that reads the catalog catches up with it",
                ctx.data_dir.display()
            ));
        }
        Err(e) => r.warning(format!(
            "the catalog in {} was not updated ({e}); the store holds everything, and the next \
             command that reads the catalog catches up with it",
            ctx.data_dir.display()
        )),
    }
}

/// What `catalog rebuild` did.
#[derive(Debug, Clone, Serialize)]
pub struct Rebuilt {
    /// The catalog file.
    pub path: String,
    #[serde(flatten)]
    pub report: CatchUpReport,
}

/// Drops the catalog's rows and replays the store's whole journal into it
/// (a catalog too damaged to empty is set aside and made again).
pub async fn rebuild(ctx: &Context, r: &dyn Reporter) -> OpResult<Rebuilt> {
    let mut catalog = Catalog::open(&ctx.data_dir, &ctx.store).await?;
    let mut rebuilt = catalog.rebuild(&ctx.store).await;
    if let Err(e) = &rebuilt {
        if e.is_damage() && catalog.set_aside().is_none() {
            catalog = catalog
                .replace_damaged(&ctx.data_dir, &ctx.store, e)
                .await?;
            rebuilt = catalog.rebuild(&ctx.store).await;
        }
    }
    report_set_aside(r, &catalog, &rebuilt);
    let report = rebuilt?;
    for w in &report.warnings {
        r.warning(w.clone());
    }
    report_journal_damage(r, &report.journal_damage, &report.recovered);
    let path = catalog.path().display().to_string();
    catalog.close().await;
    Ok(Rebuilt { path, report })
}

/// What `catalog status` says: where the catalog is, how far it has
/// followed the store's journal, and how many backups it knows of
/// (forgotten ones included).
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub backups: usize,
    /// The catalog file.
    pub path: String,
    /// `None` for a catalog that has not followed the journal yet.
    pub state: Option<crate::catalog::CatalogState>,
}

/// The catalog's state, read as the read operations read it (see
/// [`super::read`]: without the key when the catalog is current, from the
/// local catalog when the store is out of reach).
pub async fn status(rc: &super::read::ReadContext, r: &dyn Reporter) -> OpResult<Status> {
    super::read::read_catalog(rc, r, async |c: &Catalog| {
        let state = c.state().await?;
        let backups = c
            .list_backups(&crate::catalog::BackupFilter {
                include_forgotten: true,
                ..Default::default()
            })
            .await?;
        Ok(Status {
            backups: backups.len(),
            path: c.path().display().to_string(),
            state,
        })
    })
    .await
}
