//! A store in S3-compatible object storage, through the `object_store` crate.
//! Object storage writes whole objects atomically; exclusive creation uses a
//! conditional put (`If-None-Match: *`).
use super::backend::{BResult, Backend, Entry};
use super::error::BackendError;
use async_trait::async_trait;
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as OsPath;
use object_store::{ObjectStore, PutMode, PutOptions, PutPayload};
use std::ops::Range;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct S3Backend {
    store: Arc<AmazonS3>,
    bucket: String,
    prefix: String,
}

impl S3Backend {
    /// `url` is `s3://bucket/prefix`. Credentials and region come from the usual
    /// AWS environment variables; `AWS_ENDPOINT_URL` (or `ARK_S3_ENDPOINT`)
    /// points at an S3-compatible server.
    pub fn from_url(
        url: &str,
        vars: &std::collections::BTreeMap<String, String>,
    ) -> Result<Self, String> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| format!("{url}: not an s3:// URL"))?;
        let (bucket, prefix) = match rest.split_once('/') {
            Some((b, p)) => (b, p.trim_matches('/')),
            None => (rest, ""),
        };
        if bucket.is_empty() {
            return Err(format!("{url}: no bucket name"));
        }
        // As AmazonS3Builder::from_env reads the process's, from the
        // variables given.
        let mut b = AmazonS3Builder::new();
        for (key, value) in vars.range("AWS_".to_string()..) {
            if !key.starts_with("AWS_") {
                break;
            }
            if let Ok(k) = key
                .to_ascii_lowercase()
                .parse::<object_store::aws::AmazonS3ConfigKey>()
            {
                b = b.with_config(k, value);
            }
        }
        let mut b = b.with_bucket_name(bucket);
        let endpoint = vars
            .get("ARK_S3_ENDPOINT")
            .or_else(|| vars.get("AWS_ENDPOINT_URL"))
            .cloned();
        if let Some(ep) = endpoint {
            if ep.starts_with("http://") {
                b = b.with_allow_http(true);
            }
            b = b.with_endpoint(ep).with_virtual_hosted_style_request(false);
        }
        if !vars.contains_key("AWS_REGION") && !vars.contains_key("AWS_DEFAULT_REGION") {
            b = b.with_region("us-east-1");
        }
        check_credentials(&b).map_err(|e| format!("{url}: {e}"))?;
        let store = b.build().map_err(|e| format!("{url}: {e}"))?;
        Ok(S3Backend {
            store: Arc::new(store),
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        })
    }

    fn key(&self, path: &str) -> OsPath {
        if self.prefix.is_empty() {
            OsPath::from(path)
        } else {
            OsPath::from(format!("{}/{}", self.prefix, path))
        }
    }

    fn rel(&self, key: &OsPath) -> String {
        let k = key.as_ref();
        if self.prefix.is_empty() {
            k.to_string()
        } else {
            k.strip_prefix(&format!("{}/", self.prefix))
                .unwrap_or(k)
                .to_string()
        }
    }
}

/// Where the credentials come from, decided before any request: static keys,
/// anonymous access, a web identity or container credentials the environment
/// names, or the cloud's instance metadata service (169.254.169.254) only when
/// it is asked for with `AWS_METADATA_ENDPOINT`. Without any of them
/// object_store would ask that service by itself: a request leaving the
/// machine that nobody configured, and a raw 403 for an answer.
fn check_credentials(b: &AmazonS3Builder) -> Result<(), String> {
    use object_store::aws::AmazonS3ConfigKey as K;
    let set = |k: K| b.get_config_value(&k).is_some_and(|v| !v.is_empty());
    let on = |k: K| b.get_config_value(&k).is_some_and(|v| v == "true");
    match (set(K::AccessKeyId), set(K::SecretAccessKey)) {
        (true, true) => return Ok(()),
        (true, false) => {
            return Err("AWS_SECRET_ACCESS_KEY is not set (AWS_ACCESS_KEY_ID is)".into())
        }
        (false, true) => {
            return Err("AWS_ACCESS_KEY_ID is not set (AWS_SECRET_ACCESS_KEY is)".into())
        }
        (false, false) => {}
    }
    let web_identity = set(K::WebIdentityTokenFile) && set(K::RoleArn);
    let container = set(K::ContainerCredentialsRelativeUri)
        || (set(K::ContainerCredentialsFullUri) && set(K::ContainerAuthorizationTokenFile));
    if on(K::SkipSignature) || web_identity || container || set(K::MetadataEndpoint) {
        return Ok(());
    }
    Err(
        "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (neither is set), \
         or AWS_SKIP_SIGNATURE=true for a public bucket; on a cloud machine whose role gives \
         the access, AWS_METADATA_ENDPOINT=http://169.254.169.254 lets n8n-ark ask its instance \
         metadata service (never asked otherwise)"
            .into(),
    )
}

fn map_err(op: &'static str, path: &str, e: object_store::Error) -> BackendError {
    use object_store::Error as E;
    match e {
        E::NotFound { .. } => BackendError::NotFound {
            path: path.to_string(),
        },
        E::AlreadyExists { .. } | E::Precondition { .. } => BackendError::AlreadyExists {
            path: path.to_string(),
        },
        E::PermissionDenied { .. } | E::Unauthenticated { .. } => BackendError::PermissionDenied {
            path: path.to_string(),
        },
        other => {
            let message = other.to_string();
            let retryable = !matches!(
                other,
                E::NotSupported { .. } | E::NotImplemented | E::InvalidPath { .. }
            );
            BackendError::Remote {
                op,
                path: path.to_string(),
                message,
                retryable,
            }
        }
    }
}

#[async_trait]
impl Backend for S3Backend {
    fn location(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }

    async fn create_exclusive(&self, path: &str, data: Bytes) -> BResult<()> {
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        self.store
            .put_opts(&self.key(path), PutPayload::from(data), opts)
            .await
            .map(|_| ())
            .map_err(|e| map_err("create", path, e))
    }

    async fn put(&self, path: &str, data: Bytes) -> BResult<()> {
        self.store
            .put(&self.key(path), PutPayload::from(data))
            .await
            .map(|_| ())
            .map_err(|e| map_err("put", path, e))
    }

    async fn get(&self, path: &str) -> BResult<Bytes> {
        let r = self
            .store
            .get(&self.key(path))
            .await
            .map_err(|e| map_err("get", path, e))?;
        r.bytes().await.map_err(|e| map_err("get", path, e))
    }

    async fn get_range(&self, path: &str, range: Range<u64>) -> BResult<Bytes> {
        if range.start >= range.end {
            return Ok(Bytes::new());
        }
        // Clamp to the object's size, as a file read would.
        let size = self.stat(path).await?.size;
        let end = range.end.min(size);
        if range.start >= end {
            return Ok(Bytes::new());
        }
        self.store
            .get_range(&self.key(path), range.start..end)
            .await
            .map_err(|e| map_err("get", path, e))
    }

    async fn list(&self, prefix: &str) -> BResult<Vec<Entry>> {
        // object_store lists by path segments; list the deepest directory the
        // prefix names and filter the rest.
        let dir = match prefix.rfind('/') {
            Some(i) => &prefix[..i],
            None => "",
        };
        let base = if dir.is_empty() {
            if self.prefix.is_empty() {
                None
            } else {
                Some(OsPath::from(self.prefix.as_str()))
            }
        } else {
            Some(self.key(dir))
        };
        let items: Vec<_> = self
            .store
            .list(base.as_ref())
            .try_collect()
            .await
            .map_err(|e| map_err("list", prefix, e))?;
        Ok(items
            .into_iter()
            .map(|m| Entry {
                path: self.rel(&m.location),
                size: m.size,
                modified_ms: m.last_modified.timestamp_millis(),
            })
            .filter(|e| e.path.starts_with(prefix))
            .collect())
    }

    async fn stat(&self, path: &str) -> BResult<Entry> {
        let m = self
            .store
            .head(&self.key(path))
            .await
            .map_err(|e| map_err("head", path, e))?;
        Ok(Entry {
            path: path.to_string(),
            size: m.size,
            modified_ms: m.last_modified.timestamp_millis(),
        })
    }

    async fn delete(&self, path: &str) -> BResult<()> {
        match self.store.delete(&self.key(path)).await {
            Ok(()) => Ok(()),
            Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(map_err("delete", path, e)),
        }
    }

    async fn rename(&self, from: &str, to: &str) -> BResult<()> {
        self.store
            .rename(&self.key(from), &self.key(to))
            .await
            .map_err(|e| map_err("rename", from, e))
    }

    async fn sync(&self) -> BResult<()> {
        Ok(())
    }
}
