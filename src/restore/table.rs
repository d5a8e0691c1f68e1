//! Rows of any table of a backed-up database (execution history, credential
//! metadata, settings, ...): what only the dump holds, read from a browse
//! sandbox the dump is loaded into once. A second request for the same
//! backup reuses the sandbox while it is up (its idle time starts again).
//!
//! Secrets stay in the sandbox unless asked for: columns that hold them
//! (see [`secret_column`]) are replaced by `[masked]` in the query itself,
//! so their values never reach n8n-ark. Table names must be tables of the
//! manifest; every identifier is quoted.
use super::{ChosenBackup, RestoreError, Result};
use crate::sandbox::{quote_ident, quote_literal, Sandbox, SandboxError, SandboxOptions};
use crate::store::{reader, Store};
use futures::TryStreamExt;
use serde::Serialize;
use std::time::{Duration, Instant};
use store_format::contents::{Database, Table};

/// What a masked value reads as.
pub const MASK: &str = "[masked]";

/// What to read.
#[derive(Debug, Clone)]
pub struct TableRequest {
    /// The database of the backup (None: the n8n database, else the only one).
    pub database: Option<String>,
    /// `name` (schema `public`, else the only table of that name) or `schema.name`.
    pub table: String,
    pub limit: u32,
    pub offset: u64,
    /// Newest (highest key) first.
    pub descending: bool,
    /// Show the values of secret columns.
    pub show_secrets: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ColumnInfo {
    pub name: String,
    pub data_type: String,
    /// Replaced by `[masked]` (a secret, and --show-secrets was not given).
    pub masked: bool,
    /// Holds a secret (masked or shown on request).
    pub secret: bool,
}

/// Rows of one table.
#[derive(Debug, Clone, Serialize)]
pub struct TableRows {
    pub backup_id: String,
    pub database: String,
    pub schema: String,
    pub table: String,
    pub columns: Vec<ColumnInfo>,
    /// The table's exact row count in the backup (from the manifest).
    pub total_rows: u64,
    /// The columns the rows are ordered by (the primary key, else the
    /// physical order of the restored table, `ctid`).
    pub order_by: Vec<String>,
    pub descending: bool,
    pub limit: u32,
    pub offset: u64,
    /// One JSON object per row (`row_to_json`, timestamps in UTC).
    pub rows: Vec<serde_json::Value>,
    /// The sandbox, for people.
    pub sandbox: String,
    /// Whether the dump was loaded by this request (false: a sandbox that
    /// already held it was reused).
    pub loaded: bool,
    pub load_ms: u64,
    pub query_ms: u64,
}

/// Whether a column holds a secret: n8n's credential data
/// (`credentials_entity.data`), API keys (`user_api_keys.apiKey`), password
/// hashes (`user.password`), MFA secrets and recovery codes, OAuth tokens,
/// codes and client secrets, and any column whose name says password,
/// secret, token, API key or private key.
pub fn secret_column(table: &str, column: &str) -> bool {
    let t = table.to_ascii_lowercase();
    let c: String = column
        .chars()
        .filter(|ch| *ch != '_' && *ch != '-')
        .flat_map(char::to_lowercase)
        .collect();
    if c.contains("password")
        || c.contains("passwd")
        || c.contains("apikey")
        || c.contains("privatekey")
        || c.contains("recoverycode")
    {
        return true;
    }
    // `clientSecretExpiresAt` is a time, `tokenEndpointAuthMethod` a method name.
    if c.contains("secret") && !c.ends_with("expiresat") {
        return true;
    }
    if c == "token" || c.ends_with("token") || c.ends_with("tokens") {
        return true;
    }
    if t.contains("credential") && c == "data" {
        return true;
    }
    t.starts_with("oauth") && c == "code"
}

/// The database of the request in the backup.
pub fn find_database<'a>(backup: &'a ChosenBackup, name: Option<&str>) -> Result<&'a Database> {
    let dbs = backup
        .manifest
        .contents
        .as_ref()
        .map(|c| c.databases.as_slice())
        .unwrap_or_default();
    match name {
        Some(n) => super::database::backup_database(backup, n),
        None => dbs
            .iter()
            .find(|d| d.is_n8n)
            .or(if dbs.len() == 1 { dbs.first() } else { None })
            .ok_or_else(|| {
                if dbs.is_empty() {
                    RestoreError::NotFound(format!(
                        "backup {} ({}) holds no database dump: it has no tables to show",
                        backup.backup_id, backup.manifest.kind
                    ))
                } else {
                    let names: Vec<&str> = dbs.iter().map(|d| d.name.as_str()).collect();
                    RestoreError::Invalid(format!(
                        "backup {} has several databases and none is n8n's: name one with --database ({})",
                        backup.backup_id,
                        names.join(", ")
                    ))
                }
            }),
    }
}

/// The table of the request in the database's description.
pub fn find_table<'a>(db: &'a Database, name: &str) -> Result<&'a Table> {
    let (schema, table) = match name.split_once('.') {
        Some((s, t)) if db.tables.iter().any(|x| x.schema == s && x.name == t) => (Some(s), t),
        _ => (None, name),
    };
    let matches: Vec<&Table> = db
        .tables
        .iter()
        .filter(|t| t.name == table && schema.is_none_or(|s| t.schema == s))
        .collect();
    let found = match matches.as_slice() {
        [one] => Some(*one),
        [] => None,
        many => many.iter().find(|t| t.schema == "public").copied(),
    };
    found.ok_or_else(|| {
        let mut names: Vec<String> = db
            .tables
            .iter()
            .map(|t| {
                if t.schema == "public" {
                    t.name.clone()
                } else {
                    format!("{}.{}", t.schema, t.name)
                }
            })
            .collect();
        names.sort();
        let shown: Vec<&str> = names.iter().take(60).map(String::as_str).collect();
        RestoreError::NotFound(format!(
            "database {} of the backup has no table {name:?}; it has: {}{}",
            db.name,
            shown.join(", "),
            if names.len() > shown.len() {
                ", ..."
            } else {
                ""
            }
        ))
    })
}

fn sandbox_err(e: SandboxError) -> RestoreError {
    match e {
        SandboxError::Store(s) => RestoreError::Store(s),
        e => RestoreError::Target {
            retryable: e.is_retryable(),
            message: format!("sandbox: {e}"),
        },
    }
}

/// The sandbox key of a backup's browse sandbox.
pub fn browse_key(backup_id: &str) -> String {
    format!("backup:{backup_id}")
}

/// Reads rows of one table of the backup from a browse sandbox (made, or
/// reused while it is up; kept `idle` after this use).
pub async fn read_table(
    store: &Store,
    backup: &ChosenBackup,
    req: &TableRequest,
    sandbox: &SandboxOptions,
    idle: Duration,
    sandboxes: &crate::sandbox::SandboxManager,
    reporter: &dyn crate::ops::Reporter,
) -> Result<TableRows> {
    let db = find_database(backup, req.database.as_deref())?;
    let table = find_table(db, &req.table)?;
    let item = backup
        .manifest
        .items
        .iter()
        .find(|i| i.name == db.dump_item)
        .ok_or_else(|| {
            RestoreError::NotFound(format!(
                "backup {}: the dump item {:?} of database {} is not in the manifest",
                backup.backup_id, db.dump_item, db.name
            ))
        })?;
    let spec = sandbox.spec(
        crate::sandbox::Purpose::Browse,
        super::database::needed_major(db),
    );
    let sb = sandboxes
        .browse(
            sandbox.sandbox,
            &browse_key(&backup.backup_id),
            &spec,
            idle,
            reporter,
        )
        .await
        .map_err(sandbox_err)?;
    // The handle is dropped, never torn down: the sandbox stays up for `idle`.
    read_from(store, backup, db, table, item, req, sb.as_ref()).await
}

async fn read_from(
    store: &Store,
    backup: &ChosenBackup,
    db: &Database,
    table: &Table,
    item: &store_format::Item,
    req: &TableRequest,
    sb: &dyn Sandbox,
) -> Result<TableRows> {
    let started = Instant::now();
    let loaded = if sb.has_database(&db.name).await.map_err(sandbox_err)? {
        false
    } else {
        let stream = reader::item_stream(store, item).map_err(std::io::Error::other);
        let dump = tokio_util::io::StreamReader::new(stream);
        sb.restore_dump(&db.name, Box::pin(dump))
            .await
            .map_err(sandbox_err)?;
        true
    };
    let load_ms = started.elapsed().as_millis() as u64;
    let started = Instant::now();
    let qualified = format!(
        "{}.{}",
        quote_ident(&table.schema),
        quote_ident(&table.name)
    );
    let pk = sb
        .query_json(
            &db.name,
            &format!(
                "SELECT a.attname AS name FROM pg_index i \
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey) \
                 WHERE i.indrelid = to_regclass({}) AND i.indisprimary \
                 ORDER BY array_position(i.indkey::int2[], a.attnum)",
                quote_literal(&qualified)
            ),
        )
        .await
        .map_err(sandbox_err)?;
    let pk: Vec<String> = pk
        .iter()
        .filter_map(|r| r.get("name").and_then(|n| n.as_str()).map(str::to_string))
        .collect();
    let columns: Vec<ColumnInfo> = table
        .columns
        .iter()
        .map(|c| {
            let secret = secret_column(&table.name, &c.name);
            ColumnInfo {
                name: c.name.clone(),
                data_type: c.data_type.clone(),
                masked: secret && !req.show_secrets,
                secret,
            }
        })
        .collect();
    let select: Vec<String> = columns
        .iter()
        .map(|c| {
            let q = quote_ident(&c.name);
            if c.masked {
                format!(
                    "CASE WHEN {q} IS NULL THEN NULL ELSE {} END AS {q}",
                    quote_literal(MASK)
                )
            } else {
                q
            }
        })
        .collect();
    let dir = if req.descending { " DESC" } else { "" };
    let (order_by, order_sql) = if pk.is_empty() {
        (vec!["ctid".to_string()], format!("ctid{dir}"))
    } else {
        (
            pk.clone(),
            pk.iter()
                .map(|c| format!("{}{dir}", quote_ident(c)))
                .collect::<Vec<_>>()
                .join(", "),
        )
    };
    let sql = format!(
        "SELECT {} FROM {qualified} ORDER BY {order_sql} LIMIT {} OFFSET {}",
        if select.is_empty() {
            "*".to_string()
        } else {
            select.join(", ")
        },
        req.limit,
        req.offset
    );
    let rows = sb.query_json(&db.name, &sql).await.map_err(sandbox_err)?;
    Ok(TableRows {
        backup_id: backup.backup_id.clone(),
        database: db.name.clone(),
        schema: table.schema.clone(),
        table: table.name.clone(),
        columns,
        total_rows: table.rows,
        order_by,
        descending: req.descending,
        limit: req.limit,
        offset: req.offset,
        rows,
        sandbox: sb.describe(),
        loaded,
        load_ms,
        query_ms: started.elapsed().as_millis() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::secret_column;

    #[test]
    fn secret_columns() {
        for (t, c) in [
            ("credentials_entity", "data"),
            ("user_api_keys", "apiKey"),
            ("user", "password"),
            ("user", "mfaSecret"),
            ("user", "mfaRecoveryCodes"),
            ("oauth_access_tokens", "token"),
            ("oauth_refresh_tokens", "token"),
            ("oauth_authorization_codes", "code"),
            ("oauth_clients", "clientSecret"),
            ("invalid_auth_token", "token"),
            ("anything", "api_key"),
            ("anything", "refresh_token"),
        ] {
            assert!(secret_column(t, c), "{t}.{c} not secret");
        }
        for (t, c) in [
            ("credentials_entity", "name"),
            ("credentials_entity", "type"),
            ("execution_data", "data"),
            ("settings", "value"),
            ("oauth_clients", "clientSecretExpiresAt"),
            ("oauth_clients", "tokenEndpointAuthMethod"),
            ("user", "email"),
            ("oauth_authorization_codes", "codeChallenge"),
        ] {
            assert!(!secret_column(t, c), "{t}.{c} secret");
        }
    }
}
