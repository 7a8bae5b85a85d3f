//! Apache Ballista's scheduler and executor with pond installed: the
//! binaries `pond-scheduler` and `pond-executor` take the same flags as
//! Ballista's `ballista-scheduler` and `ballista-executor`, and add pond's
//! codecs ([`pond::cluster::PondCodec`]), so that they can plan and run
//! queries on series, and pond's physical optimizer rule, so that the
//! scheduler prunes versions by the filters of the physical plan.

use std::sync::Arc;

mod local;
pub use local::LocalCluster;

use ballista_executor::executor_process::ExecutorProcessConfig;
use ballista_scheduler::config::SchedulerConfig;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::SessionConfig;
use pond::cluster::{PondCodec, session_config, session_state};

/// The log filter: `RUST_LOG` if set, else the level the flags give.
pub fn log_filter(default: &str) -> tracing_subscriber::EnvFilter {
    let level = std::env::var(tracing_subscriber::EnvFilter::DEFAULT_ENV)
        .unwrap_or_else(|_| default.to_string());
    tracing_subscriber::EnvFilter::new(level)
}

/// `config` with pond's codecs, and sessions that know pond's settings and
/// prune versions with [`pond::SeriesTimePruning`].
pub fn scheduler_config(mut config: SchedulerConfig) -> SchedulerConfig {
    let codec = Arc::new(PondCodec::new());
    config.override_logical_codec = Some(Arc::clone(&codec) as _);
    config.override_physical_codec = Some(Arc::clone(&codec) as _);
    config
        .with_override_config_producer(Arc::new(move || session_config(Arc::clone(&codec))))
        .with_override_session_builder(Arc::new(session_state))
}

/// `config` with pond's codecs, and task sessions that know pond's
/// settings.
pub fn executor_config(mut config: ExecutorProcessConfig) -> ExecutorProcessConfig {
    let codec = Arc::new(PondCodec::new());
    config.override_logical_codec = Some(Arc::clone(&codec) as _);
    config.override_physical_codec = Some(Arc::clone(&codec) as _);
    let producing = Arc::clone(&codec);
    config.override_config_producer =
        Some(Arc::new(move || session_config(Arc::clone(&producing))));
    // Ballista's own runtime (spills under the work directory), with the
    // stores of the ponds a task's session reads: decoding its plan needs
    // them.
    let work_dir = config.work_dir.clone();
    config.override_runtime_producer = Some(Arc::new(move |session: &SessionConfig| {
        let mut builder = RuntimeEnvBuilder::new();
        if let Some(dir) = &work_dir {
            builder = builder.with_temp_file_path(dir.clone());
        }
        let runtime = builder.build()?;
        codec.register_stores(&runtime, session)?;
        Ok(Arc::new(runtime))
    }));
    config
}
