//! `pond-executor`: Apache Ballista's executor with pond installed. It
//! takes the flags of Ballista's `ballista-executor` (`--help` lists them)
//! and, like it, answers health probes on `--bind-health-port`.

use std::net::SocketAddr;
use std::sync::Arc;

use ballista_core::error::{BallistaError, Result};
use ballista_executor::config::Config;
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_executor::health::spawn_health_server;
use clap::Parser;

#[tokio::main]
async fn main() -> Result<()> {
    let opt = Config::parse();
    let health_addr: SocketAddr = format!("{}:{}", opt.bind_host, opt.bind_health_port)
        .parse()
        .map_err(|e| BallistaError::Configuration(format!("invalid health address: {e}")))?;
    let config: ExecutorProcessConfig = opt.try_into()?;
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_thread_names(config.print_thread_info)
        .with_env_filter(pond_ballista::log_filter(&config.special_mod_log_level))
        .init();
    let (stop_health, stopped) = tokio::sync::oneshot::channel();
    let health = spawn_health_server(health_addr, config.health.clone(), stopped);
    let result = start_executor_process(Arc::new(pond_ballista::executor_config(config))).await;
    // The health server goes with the executor.
    let _ = stop_health.send(());
    let _ = health.await;
    result
}
