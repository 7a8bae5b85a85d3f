//! The tokio runtime pond's calls from Python run on, one per process.
//!
//! A process forked from one that had used pond (multiprocessing's `fork`
//! start method, gunicorn's workers) inherits the runtime without its
//! threads: a call would wait forever. datafusion-python's shared runtime
//! has that fault, so pond keeps its own, made anew in each process that
//! uses it; the parent's is left untouched (dropping it would wait for
//! threads that do not exist in the child).

use std::future::Future;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use pyo3::prelude::*;
use tokio::runtime::Runtime;

use crate::PondError;

/// How often a wait lets Python see a signal (Ctrl-C).
const SIGNALS_EVERY: Duration = Duration::from_millis(500);

/// This process's runtime.
pub(crate) fn runtime() -> PyResult<&'static Runtime> {
    static RUNTIME: Mutex<Option<(u32, &'static Runtime)>> = Mutex::new(None);
    let pid = std::process::id();
    let mut slot = RUNTIME.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((owner, runtime)) = *slot
        && owner == pid
    {
        return Ok(runtime);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("pond")
        .build()
        .map_err(|e| PondError::new_err(format!("cannot start pond's async runtime: {e}")))?;
    let runtime: &'static Runtime = Box::leak(Box::new(runtime));
    *slot = Some((pid, runtime));
    Ok(runtime)
}

/// Runs `future` to its end on [`runtime`], without the interpreter's
/// lock; a signal (Ctrl-C) raised meanwhile drops the future and raises.
pub(crate) fn wait<F>(py: Python<'_>, future: F) -> PyResult<F::Output>
where
    F: Future + Send,
    F::Output: Send,
{
    let runtime = runtime()?;
    py.check_signals()?;
    py.detach(|| {
        runtime.block_on(async {
            tokio::pin!(future);
            loop {
                tokio::select! {
                    out = &mut future => break Ok(out),
                    () = tokio::time::sleep(SIGNALS_EVERY) => {
                        // Running Python code makes the interpreter handle
                        // the signals that came meanwhile.
                        Python::attach(|py| {
                            py.run(c"pass", None, None)?;
                            py.check_signals()
                        })?;
                    }
                }
            }
        })
    })
}
