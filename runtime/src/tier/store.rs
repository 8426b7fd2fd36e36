//! Builds the object store from its URL: `file://`, `memory://`, `s3://`, `gs://`, `az://`.
//!
//! Cloud credentials, endpoints and regions come from the standard environment variables of each
//! cloud (`AWS_*`, `GOOGLE_*`, `AZURE_*`), read by the builders' `from_env`. The client's own retries are
//! kept short: the uploader has its own backoff, and a fetch should fail in seconds, not minutes,
//! when the store is down.

use std::sync::Arc;
use std::time::Duration;

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreScheme, RetryConfig};

use super::TierError;

/// Retries of one request inside the object store client before the error reaches us.
const CLIENT_RETRIES_MAX: usize = 2;
/// Upper bound on one request's retrying inside the client.
const CLIENT_RETRY_TIMEOUT_MS: u64 = 5_000;

/// A store and the key prefix every Sluice object goes under.
#[derive(Debug, Clone)]
pub struct StoreHandle {
    /// The store.
    pub store: Arc<dyn ObjectStore>,
    /// The path part of the URL (bucket prefix or directory).
    pub prefix: Path,
}

/// Parses `url` and builds its store.
pub fn open(url: &str) -> Result<StoreHandle, TierError> {
    let bad = |reason: String| TierError::BadUrl { url: url.to_string(), reason };
    let parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
    let (scheme, prefix) = ObjectStoreScheme::parse(&parsed).map_err(|e| bad(e.to_string()))?;
    let retry = RetryConfig {
        max_retries: CLIENT_RETRIES_MAX,
        retry_timeout: Duration::from_millis(CLIENT_RETRY_TIMEOUT_MS),
        ..RetryConfig::default()
    };
    let store: Arc<dyn ObjectStore> = match scheme {
        ObjectStoreScheme::Local => {
            // `file://` paths are absolute; the directory is created so a fresh broker just works.
            let root = std::path::PathBuf::from(format!("/{prefix}"));
            std::fs::create_dir_all(&root).map_err(|e| bad(format!("cannot create {}: {e}", root.display())))?;
            Arc::new(object_store::local::LocalFileSystem::new())
        }
        ObjectStoreScheme::Memory => Arc::new(object_store::memory::InMemory::new()),
        ObjectStoreScheme::AmazonS3 => Arc::new(
            object_store::aws::AmazonS3Builder::from_env().with_url(url).with_retry(retry).build().map_err(|e| bad(e.to_string()))?,
        ),
        ObjectStoreScheme::GoogleCloudStorage => Arc::new(
            object_store::gcp::GoogleCloudStorageBuilder::from_env()
                .with_url(url)
                .with_retry(retry)
                .build()
                .map_err(|e| bad(e.to_string()))?,
        ),
        ObjectStoreScheme::MicrosoftAzure => Arc::new(
            object_store::azure::MicrosoftAzureBuilder::from_env()
                .with_url(url)
                .with_retry(retry)
                .build()
                .map_err(|e| bad(e.to_string()))?,
        ),
        other => return Err(bad(format!("{other:?} stores are not supported; use file://, memory://, s3://, gs:// or az://"))),
    };
    Ok(StoreHandle { store, prefix })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_and_memory_urls_open_and_bad_ones_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("file://{}/tier", dir.path().display());
        let handle = open(&url).expect("file store");
        assert!(dir.path().join("tier").is_dir());
        assert!(handle.prefix.as_ref().ends_with("tier"));
        assert!(open("memory://").is_ok());
        let err = open("ftp://host/x").expect_err("unsupported");
        assert!(err.to_string().contains("ftp://host/x"), "{err}");
    }
}
