//! A real S3 server on 127.0.0.1 inside the test binary: `s3s-fs`, which
//! serves a directory over S3's HTTP protocol, with one change: its
//! conditional write (`If-None-Match: *`) is an exists check then a
//! rename, so two racing writers could both succeed; here puts and copies
//! run one at a time, which makes that check atomic as S3's is. Every
//! other request is s3s-fs's own.
//!
//! It runs on a runtime of its own (tests run on many), started by the
//! first test that needs it, and lives as long as the test binary. It
//! counts the requests it answers and can wait before each, as object
//! storage does (`benches/s3.rs` uses both).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::dto::*;
use s3s::service::S3ServiceBuilder;
use s3s::{S3, S3Request, S3Response, S3Result};
use s3s_fs::FileSystem;
use tempfile::TempDir;
use tokio::sync::Mutex;

pub(crate) const ACCESS_KEY: &str = "pondtest";
pub(crate) const SECRET_KEY: &str = "pondtestsecret";

/// Milliseconds the server waits before it answers each request: the
/// latency of object storage, for benchmarks (0 in the tests).
pub(crate) static DELAY_MS: AtomicU64 = AtomicU64::new(0);
/// Requests the server answered: GET object (whole or ranged), LIST, HEAD,
/// and all others.
pub(crate) static GETS: AtomicU64 = AtomicU64::new(0);
pub(crate) static LISTS: AtomicU64 = AtomicU64::new(0);
pub(crate) static HEADS: AtomicU64 = AtomicU64::new(0);
pub(crate) static OTHERS: AtomicU64 = AtomicU64::new(0);

/// Counts a request in `counter` and waits [`DELAY_MS`].
async fn arrive(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
    let delay = DELAY_MS.load(Ordering::Relaxed);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
}

/// The server: its port and the directory whose folders are its buckets.
pub(crate) struct S3Server {
    pub(crate) port: u16,
    root: TempDir,
}

impl S3Server {
    /// The folder of `bucket`.
    pub(crate) fn bucket_dir(&self, bucket: &str) -> PathBuf {
        self.root.path().join(bucket)
    }

    /// Creates `bucket`.
    pub(crate) fn create_bucket(&self, bucket: &str) {
        std::fs::create_dir(self.bucket_dir(bucket)).unwrap();
    }
}

/// The test binary's S3 server, started on first use.
pub(crate) fn server() -> &'static S3Server {
    static SERVER: OnceLock<S3Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let root = tempfile::tempdir().unwrap();
        let port = start(root.path().to_path_buf());
        S3Server { port, root }
    })
}

/// Starts the server on a thread and runtime of its own; returns its port.
fn start(root: PathBuf) -> u16 {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(serve(&root, tx));
    });
    rx.recv().expect("the S3 server did not start")
}

async fn serve(root: &Path, port: std::sync::mpsc::Sender<u16>) {
    let fs = FileSystem::new(root).unwrap();
    let mut builder = S3ServiceBuilder::new(AtomicPuts {
        inner: fs,
        puts: Mutex::new(()),
    });
    builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
    let service = builder.build();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    port.send(listener.local_addr().unwrap().port()).unwrap();
    let http = ConnBuilder::new(TokioExecutor::new());
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            continue;
        };
        let connection = http
            .serve_connection(TokioIo::new(socket), service.clone())
            .into_owned();
        tokio::spawn(connection);
    }
}

/// s3s-fs with its writes one at a time.
struct AtomicPuts {
    inner: FileSystem,
    puts: Mutex<()>,
}

#[async_trait::async_trait]
impl S3 for AtomicPuts {
    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let _one_at_a_time = self.puts.lock().await;
        arrive(&OTHERS).await;
        self.inner.put_object(req).await
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        let _one_at_a_time = self.puts.lock().await;
        arrive(&OTHERS).await;
        self.inner.copy_object(req).await
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let _one_at_a_time = self.puts.lock().await;
        arrive(&OTHERS).await;
        self.inner.complete_multipart_upload(req).await
    }

    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        arrive(&OTHERS).await;
        self.inner.create_bucket(req).await
    }

    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        arrive(&OTHERS).await;
        self.inner.delete_bucket(req).await
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        arrive(&OTHERS).await;
        self.inner.delete_object(req).await
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        arrive(&OTHERS).await;
        self.inner.delete_objects(req).await
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        arrive(&OTHERS).await;
        self.inner.get_bucket_location(req).await
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        arrive(&GETS).await;
        self.inner.get_object(req).await
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        arrive(&HEADS).await;
        self.inner.head_bucket(req).await
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        arrive(&HEADS).await;
        self.inner.head_object(req).await
    }

    async fn list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        arrive(&OTHERS).await;
        self.inner.list_buckets(req).await
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        arrive(&LISTS).await;
        self.inner.list_objects(req).await
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        arrive(&LISTS).await;
        self.inner.list_objects_v2(req).await
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        arrive(&OTHERS).await;
        self.inner.create_multipart_upload(req).await
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        arrive(&OTHERS).await;
        self.inner.upload_part(req).await
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        arrive(&OTHERS).await;
        self.inner.upload_part_copy(req).await
    }

    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        arrive(&OTHERS).await;
        self.inner.list_parts(req).await
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        arrive(&OTHERS).await;
        self.inner.abort_multipart_upload(req).await
    }
}
