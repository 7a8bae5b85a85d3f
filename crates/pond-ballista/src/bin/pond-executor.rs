//! `pond-executor`: Apache Ballista's executor with pond installed. It
//! takes the flags of Ballista's `ballista-executor` (`--help` lists them).

use std::sync::Arc;

use ballista_core::error::Result;
use ballista_executor::config::Config;
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use clap::Parser;

#[tokio::main]
async fn main() -> Result<()> {
    let opt = Config::parse();
    let config: ExecutorProcessConfig = opt.try_into()?;
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_thread_names(config.print_thread_info)
        .with_env_filter(pond_ballista::log_filter(&config.special_mod_log_level))
        .init();
    start_executor_process(Arc::new(pond_ballista::executor_config(config))).await
}
