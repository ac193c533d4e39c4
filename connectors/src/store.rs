//! Where a dataset's bytes live: local paths and `file://`, `http(s)://` (range requests),
//! `s3://`, `gs://` and `az://`, all behind zarrs' storage traits. Object stores go through
//! `object_store`; their async calls run on a small tokio runtime owned by the opened store, so
//! readers stay synchronous (dataflow workers are plain threads).

use std::path::PathBuf;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::http::HttpBuilder;
use object_store::prefix::PrefixStore;
use zarrs::filesystem::FilesystemStore;
use zarrs::storage::storage_adapter::async_to_sync::{
    AsyncToSyncBlockOn, AsyncToSyncStorageAdapter,
};
use zarrs::storage::{ReadableListableStorageTraits, ReadableStorageTraits};
use zarrs_object_store::AsyncObjectStore;

use crate::{ConnectorError, Result};

/// Settings for object stores, layered over the environment: a field left `None` keeps what the
/// standard variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
/// `AWS_REGION`, `AWS_ENDPOINT_URL`, `AWS_PROFILE` with `~/.aws/credentials`, `GOOGLE_*`,
/// `AZURE_*`) say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreOptions {
    /// S3-compatible endpoint, for example `http://127.0.0.1:9000`.
    pub endpoint: Option<String>,
    /// S3 region (default `us-east-1`).
    pub region: Option<String>,
    /// Access key id.
    pub access_key_id: Option<String>,
    /// Secret access key.
    pub secret_access_key: Option<String>,
    /// Read public buckets without signing requests (`AWS_NO_SIGN_REQUEST=true` does the same).
    pub anonymous: bool,
}

/// A store location parsed from a URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// A directory or file on this machine.
    Local(PathBuf),
    /// A base URL served over HTTP(S) with range requests.
    Http(String),
    /// `s3://bucket/prefix`.
    S3 {
        /// Bucket name.
        bucket: String,
        /// Key prefix of the dataset inside the bucket.
        prefix: String,
    },
    /// `gs://bucket/prefix`.
    Gcs {
        /// Bucket name.
        bucket: String,
        /// Key prefix.
        prefix: String,
    },
    /// `az://container/prefix` (account from `AZURE_STORAGE_ACCOUNT_NAME`).
    Azure {
        /// Container name.
        container: String,
        /// Key prefix.
        prefix: String,
    },
}

impl StoreLocation {
    /// Parses `uri`; an unknown scheme is refused by name, listing the known ones.
    ///
    /// ```
    /// use isotach_connectors::StoreLocation;
    /// assert_eq!(
    ///     StoreLocation::parse("s3://era5/single-levels.zarr").unwrap(),
    ///     StoreLocation::S3 { bucket: "era5".into(), prefix: "single-levels.zarr".into() }
    /// );
    /// assert!(StoreLocation::parse("ftp://host/x").unwrap_err().to_string().contains("ftp://"));
    /// ```
    pub fn parse(uri: &str) -> Result<Self> {
        let Some((scheme, rest)) = uri.split_once("://") else {
            return Ok(Self::Local(uri.into()));
        };
        let bucket_and_prefix = |kind: &str| -> Result<(String, String)> {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(ConnectorError::UnsupportedUri {
                    uri: uri.to_owned(),
                    why: format!("no {kind} name after {scheme}://"),
                });
            }
            Ok((bucket.to_owned(), prefix.trim_matches('/').to_owned()))
        };
        match scheme.to_ascii_lowercase().as_str() {
            "file" => Ok(Self::Local(rest.into())),
            "http" | "https" => Ok(Self::Http(uri.trim_end_matches('/').to_owned())),
            "s3" | "s3a" => {
                let (bucket, prefix) = bucket_and_prefix("bucket")?;
                Ok(Self::S3 { bucket, prefix })
            }
            "gs" | "gcs" => {
                let (bucket, prefix) = bucket_and_prefix("bucket")?;
                Ok(Self::Gcs { bucket, prefix })
            }
            "az" | "azure" | "abfs" => {
                let (container, prefix) = bucket_and_prefix("container")?;
                Ok(Self::Azure { container, prefix })
            }
            other => Err(ConnectorError::UnsupportedUri {
                uri: uri.to_owned(),
                why: format!(
                    "scheme {other}:// is not supported (have: paths, file://, http://, https://, \
                     s3://, gs://, az://)"
                ),
            }),
        }
    }
}

/// Runs object-store futures to completion from synchronous readers.
#[derive(Clone)]
struct BlockOn(Arc<tokio::runtime::Runtime>);

impl AsyncToSyncBlockOn for BlockOn {
    fn block_on<F: core::future::Future>(&self, future: F) -> F::Output {
        self.0.block_on(future)
    }
}

/// An opened store: the readable storage, its listable face when the protocol can list, and a
/// runtime for object stores.
#[derive(Clone)]
pub struct OpenedStore {
    /// The store as given.
    pub uri: String,
    /// Reads keys and byte ranges.
    pub readable: Arc<dyn ReadableStorageTraits>,
    /// Lists keys (not over HTTP, which cannot).
    pub listable: Option<Arc<dyn ReadableListableStorageTraits>>,
    /// The object store itself (not for local paths), for non-Zarr readers.
    pub object_store: Option<(Arc<dyn ObjectStore>, Arc<tokio::runtime::Runtime>)>,
}

impl std::fmt::Debug for OpenedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedStore")
            .field("uri", &self.uri)
            .finish_non_exhaustive()
    }
}

impl OpenedStore {
    /// Opens the store at `uri` with `options` layered over the environment. Nothing is read yet
    /// (object stores connect lazily), except that a local path must exist.
    pub fn open(uri: &str, options: &StoreOptions) -> Result<Self> {
        let object_store: Arc<dyn ObjectStore> = match StoreLocation::parse(uri)? {
            StoreLocation::Local(path) => {
                if !path.exists() {
                    return Err(ConnectorError::Open {
                        uri: uri.to_owned(),
                        node: "/".into(),
                        message: format!("{} does not exist", path.display()),
                    });
                }
                let store =
                    Arc::new(
                        FilesystemStore::new(&path).map_err(|e| ConnectorError::Open {
                            uri: uri.to_owned(),
                            node: "/".into(),
                            message: e.to_string(),
                        })?,
                    );
                return Ok(Self {
                    uri: uri.to_owned(),
                    readable: store.clone(),
                    listable: Some(store),
                    object_store: None,
                });
            }
            StoreLocation::Http(url) => {
                let store = HttpBuilder::new()
                    .with_url(url)
                    .with_client_options(
                        object_store::ClientOptions::new()
                            .with_allow_http(uri.starts_with("http:")),
                    )
                    .build();
                Arc::new(store.map_err(|e| build_error(uri, e))?)
            }
            StoreLocation::S3 { bucket, prefix } => {
                let store = s3_builder(options)?.with_bucket_name(bucket).build();
                prefixed(store.map_err(|e| build_error(uri, e))?, &prefix)
            }
            StoreLocation::Gcs { bucket, prefix } => {
                let store = GoogleCloudStorageBuilder::from_env()
                    .with_bucket_name(bucket)
                    .build();
                prefixed(store.map_err(|e| build_error(uri, e))?, &prefix)
            }
            StoreLocation::Azure { container, prefix } => {
                let store = MicrosoftAzureBuilder::from_env()
                    .with_container_name(container)
                    .build();
                prefixed(store.map_err(|e| build_error(uri, e))?, &prefix)
            }
        };
        let runtime = Arc::new(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("isotach-object-store")
                .enable_all()
                .build()
                .map_err(|e| ConnectorError::Open {
                    uri: uri.to_owned(),
                    node: "/".into(),
                    message: format!("cannot start the I/O runtime: {e}"),
                })?,
        );
        let adapter = Arc::new(AsyncToSyncStorageAdapter::new(
            Arc::new(AsyncObjectStore::new(object_store.clone())),
            BlockOn(runtime.clone()),
        ));
        let listable: Option<Arc<dyn ReadableListableStorageTraits>> = if uri.starts_with("http") {
            None
        } else {
            Some(adapter.clone())
        };
        Ok(Self {
            uri: uri.to_owned(),
            readable: adapter,
            listable,
            object_store: Some((object_store, runtime)),
        })
    }
}

/// Adds what to do to a storage error whose cause is the caller's credentials.
pub(crate) fn explain(message: String) -> String {
    let refused = [
        "403",
        "401",
        "SignatureDoesNotMatch",
        "InvalidAccessKeyId",
        "privileges",
    ]
    .iter()
    .any(|needle| message.contains(needle));
    if refused {
        format!(
            "{message} (the server refused the credentials: check AWS_ACCESS_KEY_ID and \
             AWS_SECRET_ACCESS_KEY or the AWS_PROFILE in use, or set AWS_NO_SIGN_REQUEST=true for \
             a public bucket)"
        )
    } else {
        message
    }
}

/// One object (a NetCDF file, say) read with range requests through an object store.
pub struct ObjectRanges {
    store: Arc<dyn ObjectStore>,
    runtime: Arc<tokio::runtime::Runtime>,
    path: object_store::path::Path,
    len: std::sync::OnceLock<u64>,
}

impl crate::netcdf::ByteRanges for ObjectRanges {
    fn len(&self) -> std::io::Result<u64> {
        if let Some(len) = self.len.get() {
            return Ok(*len);
        }
        let meta = self
            .runtime
            .block_on(object_store::ObjectStoreExt::head(
                self.store.as_ref(),
                &self.path,
            ))
            .map_err(|e| std::io::Error::other(explain(e.to_string())))?;
        Ok(*self.len.get_or_init(|| meta.size))
    }

    fn read_at(&self, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
        let end = offset
            .checked_add(len as u64)
            .ok_or_else(|| std::io::Error::other(format!("range {offset}+{len} overflows")))?;
        let bytes = self
            .runtime
            .block_on(object_store::ObjectStoreExt::get_range(
                self.store.as_ref(),
                &self.path,
                offset..end,
            ))
            .map_err(|e| std::io::Error::other(explain(e.to_string())))?;
        if bytes.len() != len {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("asked for {len} bytes at {offset}, got {}", bytes.len()),
            ));
        }
        Ok(bytes.to_vec())
    }
}

/// Random access to the single file at `uri`: a local file, or an object behind any supported
/// scheme, read with range requests.
pub fn byte_ranges(
    uri: &str,
    options: &StoreOptions,
) -> Result<Arc<dyn crate::netcdf::ByteRanges>> {
    let open_err = |message: String| ConnectorError::Open {
        uri: uri.to_owned(),
        node: "/".into(),
        message,
    };
    if let StoreLocation::Local(path) = StoreLocation::parse(uri)? {
        let file = crate::netcdf::LocalFile::open(&path)
            .map_err(|e| open_err(format!("{}: {e}", path.display())))?;
        return Ok(Arc::new(file));
    }
    let (folder, name) = uri
        .trim_end_matches('/')
        .rsplit_once('/')
        .filter(|(folder, name)| {
            !name.is_empty()
                && folder.contains("://")
                && !folder.ends_with(':')
                && !folder.ends_with(":/")
        })
        .ok_or_else(|| open_err("names no file (expected …/name.nc)".into()))?;
    let opened = OpenedStore::open(folder, options)?;
    let Some((store, runtime)) = opened.object_store else {
        return Err(open_err("is not an object store".into()));
    };
    Ok(Arc::new(ObjectRanges {
        store,
        runtime,
        path: object_store::path::Path::from(name),
        len: std::sync::OnceLock::new(),
    }))
}

fn prefixed<T: ObjectStore>(store: T, prefix: &str) -> Arc<dyn ObjectStore> {
    if prefix.is_empty() {
        Arc::new(store)
    } else {
        Arc::new(PrefixStore::new(store, prefix))
    }
}

fn build_error(uri: &str, e: object_store::Error) -> ConnectorError {
    ConnectorError::Open {
        uri: uri.to_owned(),
        node: "/".into(),
        message: e.to_string(),
    }
}

/// The S3 builder: environment, then the shared credentials file of `AWS_PROFILE` when the
/// environment has no keys, then `options`.
fn s3_builder(options: &StoreOptions) -> Result<AmazonS3Builder> {
    let env = |key: &str| std::env::var(key).ok().filter(|v| !v.is_empty());
    let mut builder = AmazonS3Builder::from_env();
    if env("AWS_REGION").is_none() && env("AWS_DEFAULT_REGION").is_none() {
        builder = builder.with_region("us-east-1");
    }
    if env("AWS_ACCESS_KEY_ID").is_none()
        && let Some(profile) = shared_profile()
    {
        if let Some(key) = profile.get("aws_access_key_id") {
            builder = builder.with_access_key_id(key);
        }
        if let Some(secret) = profile.get("aws_secret_access_key") {
            builder = builder.with_secret_access_key(secret);
        }
        if let Some(token) = profile.get("aws_session_token") {
            builder = builder.with_token(token);
        }
    }
    let endpoint = options.endpoint.clone().or_else(|| env("AWS_ENDPOINT_URL"));
    if let Some(endpoint) = &endpoint {
        builder = builder
            .with_endpoint(endpoint)
            .with_allow_http(endpoint.starts_with("http://"));
    }
    if let Some(region) = &options.region {
        builder = builder.with_region(region);
    }
    if let Some(key) = &options.access_key_id {
        builder = builder.with_access_key_id(key);
    }
    if let Some(secret) = &options.secret_access_key {
        builder = builder.with_secret_access_key(secret);
    }
    let no_sign = env("AWS_NO_SIGN_REQUEST").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if options.anonymous || no_sign {
        builder = builder.with_skip_signature(true);
    }
    Ok(builder)
}

/// The `[profile]` section of the AWS shared credentials file (`AWS_SHARED_CREDENTIALS_FILE` or
/// `~/.aws/credentials`; profile from `AWS_PROFILE`, else `default`).
fn shared_profile() -> Option<std::collections::HashMap<String, String>> {
    let path = std::env::var_os("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".aws/credentials")))?;
    let text = std::fs::read_to_string(path).ok()?;
    let wanted = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".into());
    parse_ini_section(&text, &wanted)
}

fn parse_ini_section(
    text: &str,
    section: &str,
) -> Option<std::collections::HashMap<String, String>> {
    let mut current = None;
    let mut values = std::collections::HashMap::new();
    let mut found = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim().trim_start_matches("profile ").trim();
            current = Some(name.to_owned());
            found |= name == section;
            continue;
        }
        if current.as_deref() == Some(section)
            && let Some((key, value)) = line.split_once('=')
        {
            values.insert(key.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    found.then_some(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_with_prefixes() {
        assert_eq!(
            StoreLocation::parse("gs://b/a/b.zarr/").unwrap(),
            StoreLocation::Gcs {
                bucket: "b".into(),
                prefix: "a/b.zarr".into()
            }
        );
        assert_eq!(
            StoreLocation::parse("az://c").unwrap(),
            StoreLocation::Azure {
                container: "c".into(),
                prefix: String::new()
            }
        );
        assert_eq!(
            StoreLocation::parse("file:///data/x.zarr").unwrap(),
            StoreLocation::Local("/data/x.zarr".into())
        );
        assert!(StoreLocation::parse("s3:///x").is_err());
    }

    #[test]
    fn credentials_file_sections_are_read() {
        let text = "[default]\naws_access_key_id = A\n\n[profile lab]\naws_access_key_id=B\n\
                    aws_secret_access_key = S\n";
        assert_eq!(
            parse_ini_section(text, "default").unwrap()["aws_access_key_id"],
            "A"
        );
        let lab = parse_ini_section(text, "lab").unwrap();
        assert_eq!(
            (
                lab["aws_access_key_id"].as_str(),
                lab["aws_secret_access_key"].as_str()
            ),
            ("B", "S")
        );
        assert!(parse_ini_section(text, "other").is_none());
    }
}
