//! pond's own runtime, for I/O that DataFusion asks for synchronously:
//! catalog listings, table functions, `CREATE TABLE`. Their callers may run
//! on any runtime (or none), single- or multi-threaded, so the work runs on
//! a small runtime of pond's and the caller's thread waits for its answer.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::Runtime;

use crate::error::{Error, Result};

fn runtime() -> Result<&'static Runtime> {
    static RUNTIME: OnceLock<std::result::Result<Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("pond-io")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| Error::Io {
            source: std::io::Error::other(format!("cannot start pond's I/O runtime: {e}")),
        })
}

/// Runs `future` to completion on pond's runtime and returns its output,
/// blocking the calling thread (which may be inside another runtime).
pub(crate) fn block_on<F>(future: F) -> Result<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    runtime()?.spawn(async move {
        // The receiver only goes away if the caller's thread died.
        let _ = tx.send(future.await);
    });
    rx.recv().map_err(|_| Error::Io {
        source: std::io::Error::other("a task on pond's I/O runtime panicked"),
    })
}
