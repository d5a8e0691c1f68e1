//! The databases of a full restore: their row counts against the manifest's.
use super::*;

/// Counts the rows of the manifest's tables in `target`; the tables whose
/// counts differ (`schema.table: expected N, found M`).
pub async fn count_mismatches(
    target: &PgTarget,
    tables: &[store_format::contents::Table],
) -> Result<Vec<String>> {
    use sqlx::Connection;
    let mut conn = target.connect().await?;
    let mut out = Vec::new();
    for t in tables {
        let sql = format!(
            "SELECT count(*) FROM {}.{}",
            quote_ident(&t.schema),
            quote_ident(&t.name)
        );
        match sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql))
            .fetch_one(&mut conn)
            .await
        {
            Ok(n) if n as u64 == t.rows => {}
            Ok(n) => out.push(format!(
                "{}.{}: expected {}, found {n}",
                t.schema, t.name, t.rows
            )),
            Err(sqlx::Error::Database(d)) if d.code().as_deref() == Some("42P01") => {
                out.push(format!(
                    "{}.{}: expected {}, the table is missing",
                    t.schema, t.name, t.rows
                ))
            }
            Err(e) => {
                let _ = conn.close().await;
                return Err(RestoreError::target(format!(
                    "counting the rows of {}.{} in {}: {e}",
                    t.schema,
                    t.name,
                    target.display()
                )));
            }
        }
    }
    let _ = conn.close().await;
    Ok(out)
}
