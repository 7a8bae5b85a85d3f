//! The tokio runtime pond's calls from Python run on.
//!
//! A process forked from one whose runtime had started (multiprocessing's
//! `fork` start method, the default on Linux before Python 3.14; gunicorn's
//! workers) inherits the runtime without its threads, and whatever locks
//! they held: a call there waited forever with datafusion-python's shared
//! runtime, and with a runtime made anew in the child it sometimes crashed.
//! So pond refuses, with an error that says what to do, as delta-rs does.

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use pyo3::prelude::*;
use tokio::runtime::Runtime;

use crate::PondError;

/// How often a wait lets Python see a signal (Ctrl-C).
const SIGNALS_EVERY: Duration = Duration::from_millis(500);

/// The runtime, and the process that started it.
static RUNTIME: OnceLock<(u32, Runtime)> = OnceLock::new();

/// The runtime of this process; an error in a process forked after it
/// started.
pub(crate) fn runtime() -> PyResult<&'static Runtime> {
    let (owner, runtime) = match RUNTIME.get() {
        Some(started) => started,
        None => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("pond")
                .build()
                .map_err(|e| {
                    PondError::new_err(format!("cannot start pond's async runtime: {e}"))
                })?;
            // A thread that got there first keeps its own.
            let _ = RUNTIME.set((std::process::id(), runtime));
            RUNTIME.get().expect("set above")
        }
    };
    if *owner != std::process::id() {
        return Err(PondError::new_err(
            "pond cannot run in a process forked from one that used it (its threads do not \
             survive a fork): start processes with multiprocessing's 'spawn' or 'forkserver' \
             method, or use pond only after the fork",
        ));
    }
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
