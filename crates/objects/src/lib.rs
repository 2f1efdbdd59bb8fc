//! Object storage for everything that is bytes rather than rows: product images now, thumbnails
//! and recordings later. The engine is picked from a URL (`file:///dir` by default, `memory://` for
//! tests; `s3://bucket/prefix` is the scale-out seam) and hidden behind [`Objects`], so callers
//! deal in keys like `products/12/3.png` and never in paths. This crate knows nothing of what the
//! objects mean.

use bytes::Bytes;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, PutPayload};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    #[error("object {0} not found")]
    NotFound(String),
    #[error("invalid object key {key:?}: {reason}")]
    InvalidKey { key: String, reason: String },
    #[error("unsupported object store URL {0:?}: expected file:///path or memory://")]
    UnsupportedUrl(String),
    #[error("object store error: {0}")]
    Backend(String),
}

pub type Result<T, E = ObjectError> = std::result::Result<T, E>;

/// A stored object's bytes.
#[derive(Debug, Clone)]
pub struct Object {
    pub bytes: Bytes,
}

#[derive(Clone)]
pub struct Objects {
    inner: Arc<dyn ObjectStore>,
    engine: &'static str,
}

impl Objects {
    /// Opens the store a URL names, creating a local directory if needed.
    pub fn from_url(url: &str) -> Result<Self> {
        let parsed = url::Url::parse(url).map_err(|_| ObjectError::UnsupportedUrl(url.to_owned()))?;
        match parsed.scheme() {
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
        let path = parse_key(key)?;
        self.inner.put(&path, PutPayload::from_bytes(bytes)).await.map_err(backend)?;
        Ok(())
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

fn backend(e: impl std::fmt::Display) -> ObjectError {
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
        for objects in [Objects::from_url(&url).unwrap(), Objects::from_url("memory://").unwrap()] {
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
    async fn refuses_keys_that_escape() {
        let objects = Objects::in_memory();
        for key in ["", "../etc/passwd", "a//b", "a/./b", "/abs", "a/"] {
            assert!(matches!(objects.put(key, Bytes::new()).await, Err(ObjectError::InvalidKey { .. })), "{key:?}");
        }
    }

    #[test]
    fn refuses_unknown_schemes() {
        for url in ["s3://bucket/prefix", "ftp://x", "not a url"] {
            assert!(matches!(Objects::from_url(url), Err(ObjectError::UnsupportedUrl(_))), "{url}");
        }
    }
}
