//! Object storage for everything that is bytes rather than rows: product images, thumbnails and
//! recordings. The engine is picked from a URL (`file:///dir` by default, `memory://` for
//! tests; `s3://bucket/prefix` is the scale-out seam) and hidden behind [`Objects`], so callers
//! deal in keys like `products/12/3.png` and never in paths. This crate knows nothing of what the
//! objects mean.

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{GetOptions, GetRange, ObjectStore, PutPayload};
use secrecy::{ExposeSecret, SecretString};
use std::ops::Range;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    #[error("object {0} not found")]
    NotFound(String),
    #[error("invalid object key {key:?}: {reason}")]
    InvalidKey { key: String, reason: String },
    #[error("unsupported object store URL {0:?}: expected file:///path, s3://bucket/prefix or memory://")]
    UnsupportedUrl(String),
    #[error("object store error: {0}")]
    Backend(String),
}

pub type Result<T, E = ObjectError> = std::result::Result<T, E>;

/// An object's bytes as they arrive from the backend.
pub type ByteStream = futures::stream::BoxStream<'static, std::io::Result<Bytes>>;

/// A stored object's bytes.
#[derive(Debug, Clone)]
pub struct Object {
    pub bytes: Bytes,
}

/// What [`Objects::delete_prefix`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Removed {
    pub objects: usize,
    pub bytes: u64,
}

#[derive(Clone)]
pub struct Objects {
    inner: Arc<dyn ObjectStore>,
    engine: &'static str,
}

/// Where and how to reach an S3-compatible server, for `s3://` URLs.
#[derive(Clone, Default)]
pub struct S3Settings {
    /// e.g. `http://127.0.0.1:9000` for a local server; AWS itself when unset.
    pub endpoint: Option<String>,
    /// `us-east-1` when unset.
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<SecretString>,
}

impl std::fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Settings")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// An S3 bucket, with path-style requests (what self-hosted S3-compatible servers expect) and
/// plain HTTP allowed only when the endpoint says `http://`.
fn s3(parsed: &url::Url, settings: &S3Settings) -> Result<Arc<dyn ObjectStore>> {
    let bucket =
        parsed.host_str().filter(|b| !b.is_empty()).ok_or_else(|| ObjectError::UnsupportedUrl(parsed.to_string()))?;
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_region(settings.region.as_deref().unwrap_or("us-east-1"))
        .with_virtual_hosted_style_request(false);
    if let Some(endpoint) = &settings.endpoint {
        builder = builder.with_endpoint(endpoint).with_allow_http(endpoint.starts_with("http://"));
    }
    if let Some(key) = &settings.access_key_id {
        builder = builder.with_access_key_id(key);
    }
    if let Some(secret) = &settings.secret_access_key {
        builder = builder.with_secret_access_key(secret.expose_secret());
    }
    let store: Arc<dyn ObjectStore> = Arc::new(builder.build().map_err(backend)?);
    let prefix = parsed.path().trim_matches('/');
    if prefix.is_empty() {
        return Ok(store);
    }
    let prefix = parse_key(prefix)?;
    Ok(Arc::new(PrefixStore::new(store, prefix)))
}

impl Objects {
    /// Opens the store a URL names, creating a local directory if needed.
    pub fn from_url(url: &str, s3_settings: &S3Settings) -> Result<Self> {
        let parsed = url::Url::parse(url).map_err(|_| ObjectError::UnsupportedUrl(url.to_owned()))?;
        match parsed.scheme() {
            "s3" => Ok(Objects { inner: s3(&parsed, s3_settings)?, engine: "s3" }),
            "file" => {
                let dir = parsed.to_file_path().map_err(|_| ObjectError::UnsupportedUrl(url.to_owned()))?;
                std::fs::create_dir_all(&dir)
                    .map_err(|e| ObjectError::Backend(format!("cannot create {}: {e}", dir.display())))?;
                let fs = LocalFileSystem::new_with_prefix(&dir).map_err(backend)?;
                Ok(Objects { inner: Arc::new(fs), engine: "file" })
            }
            "memory" => Ok(Objects::in_memory()),
            _ => Err(ObjectError::UnsupportedUrl(url.to_owned())),
        }
    }

    pub fn in_memory() -> Self {
        Objects { inner: Arc::new(InMemory::new()), engine: "memory" }
    }

    pub fn engine(&self) -> &'static str {
        self.engine
    }

    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<()> {
        self.put_chunks(key, vec![bytes]).await
    }

    /// Stores the concatenation of `chunks` without copying them together first.
    pub async fn put_chunks(&self, key: &str, chunks: Vec<Bytes>) -> Result<()> {
        let path = parse_key(key)?;
        self.inner.put(&path, chunks.into_iter().collect::<PutPayload>()).await.map_err(backend)?;
        Ok(())
    }

    /// The object's size in bytes.
    pub async fn size(&self, key: &str) -> Result<u64> {
        let path = parse_key(key)?;
        let meta = self.inner.head(&path).await.map_err(|e| not_found_or(e, key))?;
        Ok(meta.size)
    }

    /// Streams `range` of the object (all of it when `None`), reading from the backend as the
    /// caller consumes it.
    pub async fn stream(&self, key: &str, range: Option<Range<u64>>) -> Result<ByteStream> {
        let path = parse_key(key)?;
        let options = GetOptions { range: range.map(GetRange::Bounded), ..Default::default() };
        let got = self.inner.get_opts(&path, options).await.map_err(|e| not_found_or(e, key))?;
        Ok(got.into_stream().map_err(|e| std::io::Error::other(e.to_string())).boxed())
    }

    /// The keys of every object under `prefix/`.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let path = parse_key(prefix)?;
        self.inner.list(Some(&path)).map_ok(|meta| meta.location.to_string()).try_collect().await.map_err(backend)
    }

    /// Every object in the store, with its size, in key order.
    pub async fn inventory(&self) -> Result<Vec<(String, u64)>> {
        let mut all: Vec<(String, u64)> = self
            .inner
            .list(None)
            .map_ok(|meta| (meta.location.to_string(), meta.size))
            .try_collect()
            .await
            .map_err(backend)?;
        all.sort();
        Ok(all)
    }

    /// Deletes every object under `prefix/` (a key prefix ending at a `/` boundary); returns how
    /// many were removed and their bytes.
    pub async fn delete_prefix(&self, prefix: &str) -> Result<Removed> {
        let path = parse_key(prefix)?;
        let listed: Vec<_> = self.inner.list(Some(&path)).try_collect().await.map_err(backend)?;
        let removed = Removed { objects: listed.len(), bytes: listed.iter().map(|meta| meta.size).sum() };
        let listed = listed.into_iter().map(|meta| meta.location);
        let mut deleted = self.inner.delete_stream(futures::stream::iter(listed.map(Ok)).boxed());
        while let Some(done) = deleted.next().await {
            match done {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(backend(e)),
            }
        }
        Ok(removed)
    }

    pub async fn get(&self, key: &str) -> Result<Object> {
        let path = parse_key(key)?;
        let got = self.inner.get(&path).await.map_err(|e| not_found_or(e, key))?;
        let bytes = got.bytes().await.map_err(|e| not_found_or(e, key))?;
        Ok(Object { bytes })
    }

    pub async fn delete(&self, key: &str) -> Result<()> {
        let path = parse_key(key)?;
        match self.inner.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(backend(e)),
        }
    }

    /// Answers when the store does: a missing probe object is an answer too.
    pub async fn ping(&self) -> Result<()> {
        match self.inner.head(&Path::from("olive-readiness-probe")).await {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(backend(e)),
        }
    }
}

/// Keys are relative, `/`-separated, with no empty, `.` or `..` segments.
fn parse_key(key: &str) -> Result<Path> {
    let invalid = |reason: &str| ObjectError::InvalidKey { key: key.to_owned(), reason: reason.to_owned() };
    if key.is_empty() || key.len() > 512 {
        return Err(invalid("length must be 1 to 512 bytes"));
    }
    if key.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
        return Err(invalid("empty, '.' or '..' segment"));
    }
    Path::parse(key).map_err(|e| invalid(&e.to_string()))
}

/// Every error of the store itself (not a missing object or a bad key) passes here, and is counted.
fn backend(e: impl std::fmt::Display) -> ObjectError {
    metrics::counter!("olive_object_store_errors_total").increment(1);
    ObjectError::Backend(e.to_string())
}

fn not_found_or(e: object_store::Error, key: &str) -> ObjectError {
    match e {
        object_store::Error::NotFound { .. } => ObjectError::NotFound(key.to_owned()),
        other => backend(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn round_trips_on_disk_and_in_memory() {
        let dir = std::env::temp_dir().join(format!("olive-objects-{}", std::process::id()));
        let url = format!("file://{}", dir.display());
        for objects in [Objects::from_url(&url, &S3Settings::default()).unwrap(), Objects::in_memory()] {
            objects.ping().await.unwrap();
            objects.put("products/1/0.png", Bytes::from_static(b"png")).await.unwrap();
            assert_eq!(&objects.get("products/1/0.png").await.unwrap().bytes[..], b"png");
            objects.delete("products/1/0.png").await.unwrap();
            assert!(matches!(objects.get("products/1/0.png").await, Err(ObjectError::NotFound(_))));
            objects.delete("products/1/0.png").await.unwrap();
        }
        assert!(dir.exists());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn chunks_ranges_and_prefixes() {
        let objects = Objects::in_memory();
        let chunks = vec![Bytes::from_static(b"moof"), Bytes::from_static(b"mdat"), Bytes::from_static(b"!")];
        objects.put_chunks("recordings/7/seg-1.m4s", chunks).await.unwrap();
        objects.put("recordings/7/init-1.mp4", Bytes::from_static(b"init")).await.unwrap();
        objects.put("recordings/70/seg-1.m4s", Bytes::from_static(b"other")).await.unwrap();
        assert_eq!(objects.size("recordings/7/seg-1.m4s").await.unwrap(), 9);
        let mut keys = objects.list("recordings/7").await.unwrap();
        keys.sort();
        assert_eq!(keys, ["recordings/7/init-1.mp4", "recordings/7/seg-1.m4s"]);
        for (range, want) in [(None, &b"moofmdat!"[..]), (Some(2..6), b"ofmd")] {
            let stream = objects.stream("recordings/7/seg-1.m4s", range).await.unwrap();
            assert_eq!(stream.try_collect::<Vec<Bytes>>().await.unwrap().concat(), want);
        }
        assert!(matches!(objects.size("recordings/7/nope").await, Err(ObjectError::NotFound(_))));
        assert!(matches!(objects.stream("recordings/7/nope", None).await, Err(ObjectError::NotFound(_))));

        // A prefix stops at a segment boundary: recordings/70 survives recordings/7.
        assert_eq!(objects.delete_prefix("recordings/7").await.unwrap().objects, 2);
        assert!(matches!(objects.size("recordings/7/init-1.mp4").await, Err(ObjectError::NotFound(_))));
        assert_eq!(objects.size("recordings/70/seg-1.m4s").await.unwrap(), 5);
        assert_eq!(objects.delete_prefix("recordings/7").await.unwrap(), Removed { objects: 0, bytes: 0 });
    }

    #[tokio::test]
    async fn refuses_keys_that_escape() {
        let objects = Objects::in_memory();
        for key in ["", "../etc/passwd", "a//b", "a/./b", "/abs", "a/"] {
            assert!(matches!(objects.put(key, Bytes::new()).await, Err(ObjectError::InvalidKey { .. })), "{key:?}");
        }
    }

    #[test]
    fn refuses_unknown_schemes() {
        for url in ["s3:///prefix", "ftp://x", "not a url"] {
            assert!(
                matches!(Objects::from_url(url, &S3Settings::default()), Err(ObjectError::UnsupportedUrl(_))),
                "{url}"
            );
        }
        let s3 = Objects::from_url("s3://bucket/some/prefix", &S3Settings::default()).unwrap();
        assert_eq!(s3.engine(), "s3");
        let secret = S3Settings { secret_access_key: Some("hunter2".into()), ..Default::default() };
        assert!(!format!("{secret:?}").contains("hunter2"));
    }
}
