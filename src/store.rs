//! Where a pond lives: the object store behind a location.
//!
//! - a local path or `file://` URL: the local file system;
//! - `s3://bucket/prefix`: S3 or any S3-compatible server, through
//!   object_store's `AmazonS3Builder`, configured as the AWS tools are (the
//!   `AWS_*` environment variables: `AWS_ACCESS_KEY_ID`,
//!   `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`,
//!   `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`, …), by storage options
//!   ([`crate::PondOptions::with_storage_option`], `--storage-option` on the
//!   command line) with the same names, which win, and by the profile of
//!   the AWS shared files that `AWS_PROFILE` (or the option `aws_profile`)
//!   names, `default` otherwise, for what neither sets;
//! - `memory://name/prefix`: an in-memory store shared by every pond
//!   handle of this process that names it, for tests.
//!
//! The oplog's Delta table and the data files use the same store. Delta
//! commits are put-if-absent writes (object_store's `PutMode::Create`,
//! which S3 performs with `If-None-Match: *`); a store that ignores the
//! condition would let two writers overwrite each other's commit, so
//! before its first commit a handle checks that the store refuses a second
//! create of one object ([`check_conditional_put`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;

use deltalake::DeltaResult;
use deltalake::logstore::{
    LogStore, LogStoreFactory, ObjectStoreRef, StorageConfig, default_logstore, logstore_factories,
};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, ObjectStoreExt, PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use url::Url;

use crate::error::{Error, Result};

/// The store at the root of `url`'s file system or bucket, and the path of
/// `url` in it.
pub(crate) fn root_store(
    url: &Url,
    options: &HashMap<String, String>,
) -> Result<(Arc<dyn ObjectStore>, Path)> {
    let invalid = |reason: String| Error::InvalidLocation {
        location: url.to_string(),
        reason,
    };
    match url.scheme() {
        "file" => {
            let (store, prefix) = object_store::parse_url(url)?;
            Ok((Arc::from(store), prefix))
        }
        "memory" => {
            let name = url.host_str().unwrap_or_default().to_string();
            let store = memory_store(&name);
            Ok((store, prefix_of(url)?))
        }
        "s3" | "s3a" => {
            if url.host_str().is_none_or(str::is_empty) {
                return Err(invalid(
                    "an S3 location names a bucket: s3://bucket/prefix".into(),
                ));
            }
            let mut builder = AmazonS3Builder::from_env().with_url(url.as_str());
            let mut profile = None;
            for (key, value) in options {
                if matches!(key.to_ascii_lowercase().as_str(), "aws_profile" | "profile") {
                    profile = Some(value.as_str());
                    continue;
                }
                let parsed: AmazonS3ConfigKey = key
                    .to_ascii_lowercase()
                    .parse()
                    .map_err(|_| invalid(format!("{key} is not an S3 storage option")))?;
                builder = builder.with_config(parsed, value);
            }
            // A named profile's settings fill what neither the environment
            // nor the options set, as the AWS tools do; its key, secret and
            // token only together (a token is of its own key).
            let own_key = builder
                .get_config_value(&AmazonS3ConfigKey::AccessKeyId)
                .is_some();
            for (key, value) in crate::aws_profile::settings(profile).map_err(invalid)? {
                let credential = matches!(
                    key,
                    AmazonS3ConfigKey::AccessKeyId
                        | AmazonS3ConfigKey::SecretAccessKey
                        | AmazonS3ConfigKey::Token
                );
                if !(credential && own_key) && builder.get_config_value(&key).is_none() {
                    builder = builder.with_config(key, value);
                }
            }
            let has_credentials = builder
                .get_config_value(&AmazonS3ConfigKey::AccessKeyId)
                .is_some()
                || builder
                    .get_config_value(&AmazonS3ConfigKey::SkipSignature)
                    .is_some_and(|v| {
                        matches!(
                            v.trim().to_ascii_lowercase().as_str(),
                            "true" | "1" | "yes" | "on"
                        )
                    })
                || std::env::var_os("AWS_WEB_IDENTITY_TOKEN_FILE").is_some()
                || std::env::var_os("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").is_some()
                || std::env::var_os("AWS_CONTAINER_CREDENTIALS_FULL_URI").is_some()
                || builder
                    .get_config_value(&AmazonS3ConfigKey::MetadataEndpoint)
                    .is_some();
            if !has_credentials {
                return Err(invalid(
                    "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or \
                     --storage-option aws_access_key_id=… and aws_secret_access_key=…, or a \
                     profile in ~/.aws/credentials named by AWS_PROFILE; for an EC2 instance \
                     role, AWS_METADATA_ENDPOINT=http://169.254.169.254)"
                        .into(),
                ));
            }
            let store = builder.build().map_err(|e| invalid(e.to_string()))?;
            Ok((Arc::new(store), prefix_of(url)?))
        }
        other => Err(invalid(format!(
            "unsupported scheme {other}://; a pond lives at a local path, file://, s3:// or \
             memory://"
        ))),
    }
}

/// The prefix of an S3 or memory location in the store, decoded as
/// deltalake decodes the oplog's (`s3://b/my%20pond` is `my pond/`): read
/// apart, data and oplog went to different keys.
fn prefix_of(url: &Url) -> Result<Path> {
    Path::from_url_path(url.path()).map_err(|e| Error::InvalidLocation {
        location: url.to_string(),
        reason: e.to_string(),
    })
}

/// The process's in-memory store called `name`.
fn memory_store(name: &str) -> Arc<dyn ObjectStore> {
    static STORES: OnceLock<Mutex<HashMap<String, Arc<InMemory>>>> = OnceLock::new();
    let mut stores = STORES
        .get_or_init(Default::default)
        .lock()
        .expect("memory stores lock poisoned");
    let store = stores
        .entry(name.to_string())
        .or_insert_with(|| Arc::new(InMemory::new()));
    Arc::clone(store) as Arc<dyn ObjectStore>
}

/// Whether commits to `url`'s store need [`check_conditional_put`]: the
/// local file system and the in-memory store create atomically.
pub(crate) fn needs_put_check(url: &Url) -> bool {
    !matches!(url.scheme(), "file" | "memory")
}

/// Refuses a store that does not refuse a second create of one object: on
/// it, a Delta commit could overwrite another writer's.
pub(crate) async fn check_conditional_put(
    store: &dyn ObjectStore,
    dir: &Path,
    location: &str,
) -> Result<()> {
    let probe = dir
        .clone()
        .join("_pond_probe")
        .join(uuid::Uuid::new_v4().to_string().as_str());
    let create = || PutOptions::from(PutMode::Create);
    store
        .put_opts(&probe, PutPayload::from_static(b"1"), create())
        .await?;
    let second = store
        .put_opts(&probe, PutPayload::from_static(b"2"), create())
        .await;
    let _ = store.delete(&probe).await;
    match second {
        Err(object_store::Error::AlreadyExists { .. })
        | Err(object_store::Error::Precondition { .. }) => Ok(()),
        Ok(_) => Err(Error::UnsafeStore {
            location: location.to_string(),
        }),
        Err(e) => Err(e.into()),
    }
}

/// Delta's default log store (commits by put-if-absent) for a store pond
/// builds itself.
struct PutIfAbsentLogStores;

impl LogStoreFactory for PutIfAbsentLogStores {
    fn with_options(
        &self,
        prefixed_store: ObjectStoreRef,
        root_store: ObjectStoreRef,
        location: &Url,
        options: &StorageConfig,
    ) -> DeltaResult<Arc<dyn LogStore>> {
        Ok(default_logstore(
            prefixed_store,
            root_store,
            location,
            options,
        ))
    }
}

/// Makes deltalake build the log store of a table at `url`'s scheme on a
/// store pond gives it (deltalake knows only `file` and `memory` without
/// its cloud crates, which pond does without).
pub(crate) fn register_log_store(url: &Url) {
    let scheme = Url::parse(&format!("{}://", url.scheme())).expect("a scheme makes a URL");
    let factories = logstore_factories();
    if !factories.contains_key(&scheme) {
        factories.insert(scheme, Arc::new(PutIfAbsentLogStores));
    }
}

/// `error` from the store at `url` as one plain sentence where it is a
/// common mistake (a missing bucket, refused credentials, an endpoint that
/// does not answer), instead of the HTTP exchange behind it.
pub(crate) fn explain(url: &Url, error: Error) -> Error {
    if !matches!(url.scheme(), "s3" | "s3a") {
        return error;
    }
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(&error);
    while let Some(e) = cause {
        text.push_str(&e.to_string());
        cause = e.source();
    }
    let refused = [
        "SignatureDoesNotMatch",
        "InvalidAccessKeyId",
        "AccessDenied",
        "ExpiredToken",
    ]
    .into_iter()
    .find(|code| text.contains(&format!("<Code>{code}</Code>")));
    let reason = if text.contains("<Code>NoSuchBucket</Code>") {
        format!(
            "the bucket {} does not exist",
            url.host_str().unwrap_or_default()
        )
    } else if let Some(code) = refused {
        format!("the S3 server refused the credentials ({code})")
    } else if text.contains("Connect") || text.contains("dns error") {
        "the S3 endpoint does not answer (check AWS_ENDPOINT_URL and the network)".to_string()
    } else {
        return error;
    };
    Error::Store {
        location: url.to_string(),
        reason,
    }
}

/// Requests of one kind to one part of a pond's store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Requests {
    /// GET requests (whole objects and ranges; a multi-range read counts
    /// each range).
    pub gets: u64,
    /// HEAD requests.
    pub heads: u64,
    /// PUT requests (and parts of multipart uploads).
    pub puts: u64,
    /// LIST requests.
    pub lists: u64,
    /// Objects the LIST requests returned.
    pub listed: u64,
    /// DELETE requests (one per object).
    pub deletes: u64,
}

/// The requests a [`crate::Pond`] handle made to its store since it was
/// opened, by part of the pond (see [`crate::Pond::store_requests`]).
/// Counted on object stores pond builds (S3, memory); a local pond's
/// oplog goes through deltalake's own file store and is not counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreRequests {
    /// The data files, under `data/`.
    pub data: Requests,
    /// The oplog's Delta log, under `oplog/_delta_log/`.
    pub delta_log: Requests,
    /// The oplog's own Parquet files, under `oplog/`.
    pub oplog: Requests,
    /// Anything else (pond's probe of conditional writes).
    pub other: Requests,
}

#[derive(Debug, Default)]
struct Counters {
    /// The pond's path in the store the counted one wraps; empty if that
    /// store is the pond's own (paths start at `data/`, `oplog/`).
    prefix: String,
    counts: [[AtomicU64; 6]; 4],
}

#[derive(Clone, Copy)]
enum Op {
    Get = 0,
    Head = 1,
    Put = 2,
    List = 3,
    Listed = 4,
    Delete = 5,
}

impl Counters {
    fn add(&self, path: &str, op: Op, n: u64) {
        // Classified by the path within the pond, so that a pond whose own
        // prefix holds "data" or "oplog" is counted right.
        let within = path
            .strip_prefix(self.prefix.as_str())
            .map_or(path, |rest| rest.trim_start_matches('/'));
        let area = if within.starts_with("oplog/_delta_log") {
            1
        } else if within.starts_with("oplog") {
            2
        } else if within.starts_with("data") {
            0
        } else {
            3
        };
        self.counts[area][op as usize].fetch_add(n, Ordering::Relaxed);
    }

    fn snapshot(&self) -> StoreRequests {
        let area = |i: usize| {
            let c = |op: Op| self.counts[i][op as usize].load(Ordering::Relaxed);
            Requests {
                gets: c(Op::Get),
                heads: c(Op::Head),
                puts: c(Op::Put),
                lists: c(Op::List),
                listed: c(Op::Listed),
                deletes: c(Op::Delete),
            }
        };
        StoreRequests {
            data: area(0),
            delta_log: area(1),
            oplog: area(2),
            other: area(3),
        }
    }
}

/// A store that counts the requests made through it, by part of the pond.
#[derive(Debug)]
pub(crate) struct CountingStore {
    inner: Arc<dyn ObjectStore>,
    counters: Arc<Counters>,
}

/// What [`CountingStore`] counted, shared with the pond that reads it.
#[derive(Debug, Clone, Default)]
pub(crate) struct RequestCounter(Arc<Counters>);

impl RequestCounter {
    /// A counter for a store in which the pond's files are under `prefix`.
    pub(crate) fn new(prefix: &Path) -> Self {
        Self(Arc::new(Counters {
            prefix: prefix.to_string(),
            counts: Default::default(),
        }))
    }

    pub(crate) fn snapshot(&self) -> StoreRequests {
        self.0.snapshot()
    }

    /// `store` with its requests counted here.
    pub(crate) fn wrap(&self, store: Arc<dyn ObjectStore>) -> Arc<dyn ObjectStore> {
        Arc::new(CountingStore {
            inner: store,
            counters: Arc::clone(&self.0),
        })
    }
}

impl CountingStore {
    /// `listing` of `prefix`, counted as one LIST and the objects it returns.
    fn counted_list(
        &self,
        prefix: Option<&Path>,
        listing: BoxStream<'static, object_store::Result<ObjectMeta>>,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let area = prefix.map(|p| p.to_string()).unwrap_or_default();
        self.counters.add(&area, Op::List, 1);
        let counters = Arc::clone(&self.counters);
        listing
            .inspect(move |_| counters.add(&area, Op::Listed, 1))
            .boxed()
    }
}

impl std::fmt::Display for CountingStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Counting({})", self.inner)
    }
}

#[async_trait::async_trait]
impl ObjectStore for CountingStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.counters.add(location.as_ref(), Op::Put, 1);
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.counters.add(location.as_ref(), Op::Put, 1);
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        let op = if options.head { Op::Head } else { Op::Get };
        self.counters.add(location.as_ref(), op, 1);
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[std::ops::Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        self.counters
            .add(location.as_ref(), Op::Get, ranges.len() as u64);
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        let counters = Arc::clone(&self.counters);
        let counted = locations.inspect(move |p| {
            if let Ok(p) = p {
                counters.add(p.as_ref(), Op::Delete, 1);
            }
        });
        self.inner.delete_stream(counted.boxed())
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.counted_list(prefix, self.inner.list(prefix))
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.counted_list(prefix, self.inner.list_with_offset(prefix, offset))
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        let area = prefix.map(|p| p.to_string()).unwrap_or_default();
        self.counters.add(&area, Op::List, 1);
        let result = self.inner.list_with_delimiter(prefix).await?;
        self.counters.add(
            &area,
            Op::Listed,
            (result.objects.len() + result.common_prefixes.len()) as u64,
        );
        Ok(result)
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.counters.add(to.as_ref(), Op::Put, 1);
        self.inner.copy_opts(from, to, options).await
    }
}

/// How many checkpoints [`WholeCheckpoints`] keeps.
const CHECKPOINTS_KEPT: usize = 2;

/// A store that reads the Delta log's checkpoints whole, once: deltalake
/// reads a checkpoint's Parquet a column chunk at a time, a request each,
/// which on object storage costs tens of milliseconds apiece (about 40
/// GETs to open a pond). A checkpoint file never changes once written, and
/// pond's stay small (one row per live version and series), so one GET of
/// the whole file serves every read of it. Everything else passes through.
#[derive(Debug)]
pub(crate) struct WholeCheckpoints {
    inner: Arc<dyn ObjectStore>,
    kept: Mutex<Vec<(Path, ObjectMeta, Bytes)>>,
}

impl WholeCheckpoints {
    pub(crate) fn new(inner: Arc<dyn ObjectStore>) -> Self {
        Self {
            inner,
            kept: Mutex::new(Vec::new()),
        }
    }

    fn is_checkpoint(location: &Path) -> bool {
        let path = location.as_ref();
        path.contains("_delta_log/") && path.contains(".checkpoint") && path.ends_with(".parquet")
    }

    /// The checkpoint at `location`, from memory or with one GET.
    async fn whole(&self, location: &Path) -> object_store::Result<(ObjectMeta, Bytes)> {
        let kept = |kept: &Vec<(Path, ObjectMeta, Bytes)>| {
            kept.iter()
                .find(|(p, _, _)| p == location)
                .map(|(_, meta, bytes)| (meta.clone(), bytes.clone()))
        };
        if let Some(hit) = kept(&self.kept.lock().expect("checkpoint cache lock poisoned")) {
            return Ok(hit);
        }
        let got = self.inner.get_opts(location, GetOptions::default()).await?;
        let meta = got.meta.clone();
        let bytes = got.bytes().await?;
        let mut cached = self.kept.lock().expect("checkpoint cache lock poisoned");
        if cached.len() >= CHECKPOINTS_KEPT {
            cached.remove(0);
        }
        cached.push((location.clone(), meta.clone(), bytes.clone()));
        Ok((meta, bytes))
    }
}

impl std::fmt::Display for WholeCheckpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WholeCheckpoints({})", self.inner)
    }
}

#[async_trait::async_trait]
impl ObjectStore for WholeCheckpoints {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        let conditional = options.if_match.is_some()
            || options.if_none_match.is_some()
            || options.if_modified_since.is_some()
            || options.if_unmodified_since.is_some()
            || options.version.is_some();
        if conditional || !Self::is_checkpoint(location) {
            return self.inner.get_opts(location, options).await;
        }
        let (meta, bytes) = self.whole(location).await?;
        let range = match &options.range {
            Some(range) => range
                .as_range(meta.size)
                .map_err(|e| object_store::Error::Generic {
                    store: "pond",
                    source: Box::new(e),
                })?,
            None => 0..meta.size,
        };
        let payload = if options.head {
            Bytes::new()
        } else {
            bytes.slice(range.start as usize..range.end as usize)
        };
        Ok(GetResult {
            payload: GetResultPayload::Stream(
                futures::stream::once(futures::future::ready(Ok(payload))).boxed(),
            ),
            meta,
            range,
            attributes: Default::default(),
        })
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[std::ops::Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        if !Self::is_checkpoint(location) {
            return self.inner.get_ranges(location, ranges).await;
        }
        let (meta, bytes) = self.whole(location).await?;
        ranges
            .iter()
            .map(|r| {
                if r.start > r.end || r.end > meta.size {
                    return Err(object_store::Error::Generic {
                        store: "pond",
                        source: format!("range {r:?} is outside {location} ({} bytes)", meta.size)
                            .into(),
                    });
                }
                Ok(bytes.slice(r.start as usize..r.end as usize))
            })
            .collect()
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

/// Stores that misbehave as real ones do, for tests.
#[cfg(test)]
pub(crate) mod testing {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    /// An in-memory store whose puts misbehave as its flags say.
    #[derive(Debug, Default)]
    pub(crate) struct Misbehaving {
        pub(crate) inner: InMemory,
        /// Overwrites where it was asked to create only: as an S3 server
        /// that ignores `If-None-Match`.
        pub(crate) ignores_conditions: bool,
        /// Once set, the next create of a Delta commit file takes effect
        /// and then answers that the file exists: as an S3 request that
        /// landed, timed out and was retried.
        pub(crate) retried_commit: AtomicBool,
        /// Once set, the next create of a Delta commit file takes effect
        /// and then fails: as a request that timed out after the write.
        pub(crate) failed_commit: AtomicBool,
        /// Once set, the next create of a Delta commit file fails without
        /// taking effect.
        pub(crate) refused_commit: AtomicBool,
    }

    impl std::fmt::Display for Misbehaving {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "Misbehaving")
        }
    }

    #[async_trait::async_trait]
    impl ObjectStore for Misbehaving {
        async fn put_opts(
            &self,
            location: &Path,
            payload: PutPayload,
            opts: PutOptions,
        ) -> object_store::Result<PutResult> {
            let opts = if self.ignores_conditions {
                PutOptions::default()
            } else {
                opts
            };
            let commit = location.as_ref().contains("_delta_log/")
                && location.as_ref().ends_with(".json")
                && matches!(opts.mode, object_store::PutMode::Create);
            let timed_out = |path: &Path| object_store::Error::Generic {
                store: "Misbehaving",
                source: format!("the request timed out writing {path}").into(),
            };
            if commit && self.refused_commit.swap(false, Ordering::SeqCst) {
                return Err(timed_out(location));
            }
            let put = self.inner.put_opts(location, payload, opts).await?;
            if commit && self.failed_commit.swap(false, Ordering::SeqCst) {
                return Err(timed_out(location));
            }
            if commit && self.retried_commit.swap(false, Ordering::SeqCst) {
                return Err(object_store::Error::AlreadyExists {
                    path: location.to_string(),
                    source: "the retried request found its own file".into(),
                });
            }
            Ok(put)
        }

        async fn put_multipart_opts(
            &self,
            location: &Path,
            opts: PutMultipartOptions,
        ) -> object_store::Result<Box<dyn MultipartUpload>> {
            self.inner.put_multipart_opts(location, opts).await
        }

        async fn get_opts(
            &self,
            location: &Path,
            options: GetOptions,
        ) -> object_store::Result<GetResult> {
            self.inner.get_opts(location, options).await
        }

        fn delete_stream(
            &self,
            locations: BoxStream<'static, object_store::Result<Path>>,
        ) -> BoxStream<'static, object_store::Result<Path>> {
            self.inner.delete_stream(locations)
        }

        fn list(
            &self,
            prefix: Option<&Path>,
        ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
            self.inner.list(prefix)
        }

        async fn list_with_delimiter(
            &self,
            prefix: Option<&Path>,
        ) -> object_store::Result<ListResult> {
            self.inner.list_with_delimiter(prefix).await
        }

        async fn copy_opts(
            &self,
            from: &Path,
            to: &Path,
            options: CopyOptions,
        ) -> object_store::Result<()> {
            self.inner.copy_opts(from, to, options).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The data prefix decodes as deltalake's oplog prefix does.
    #[test]
    fn a_location_with_escaped_characters_keeps_data_beside_its_oplog() {
        let url = Url::parse("memory://prefix-test/my%20pond/a~b/").unwrap();
        let (_, prefix) = root_store(&url, &HashMap::new()).unwrap();
        assert_eq!(prefix.as_ref(), "my pond/a~b");
        let oplog = Path::from_url_path(url.join("oplog/").unwrap().path()).unwrap();
        assert_eq!(oplog.as_ref(), "my pond/a~b/oplog");
    }

    #[test]
    fn requests_are_counted_by_their_place_within_the_pond() {
        // A pond whose own prefix holds the words "oplog" and "data".
        let counter = RequestCounter::new(&Path::from("oplogs/metadata/p"));
        counter
            .0
            .add("oplogs/metadata/p/data/x/1.parquet", Op::Get, 1);
        counter
            .0
            .add("oplogs/metadata/p/oplog/_delta_log/0.json", Op::Get, 1);
        counter
            .0
            .add("oplogs/metadata/p/oplog/part-0.parquet", Op::Get, 1);
        counter.0.add("oplogs/metadata/p/_pond_probe/u", Op::Put, 1);
        let counted = counter.snapshot();
        assert_eq!(
            (
                counted.data.gets,
                counted.delta_log.gets,
                counted.oplog.gets,
                counted.other.puts
            ),
            (1, 1, 1, 1),
            "{counted:?}"
        );
        assert_eq!(counted.other.gets + counted.data.puts, 0, "{counted:?}");
    }

    #[tokio::test]
    async fn a_store_that_ignores_conditional_writes_is_refused() {
        let unsafe_store = testing::Misbehaving {
            ignores_conditions: true,
            ..Default::default()
        };
        let refused = check_conditional_put(&unsafe_store, &Path::from("p"), "s3://b/p").await;
        assert!(
            matches!(refused, Err(Error::UnsafeStore { .. })),
            "{refused:?}"
        );
        let safe = InMemory::new();
        check_conditional_put(&safe, &Path::from("p"), "memory://b/p")
            .await
            .unwrap();
        // The probe leaves nothing behind.
        use futures::TryStreamExt;
        let left: Vec<_> = safe.list(None).try_collect().await.unwrap();
        assert!(left.is_empty(), "{left:?}");
    }
}
