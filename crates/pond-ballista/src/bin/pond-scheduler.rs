//! `pond-scheduler`: Apache Ballista's scheduler with pond installed. It
//! takes the flags of Ballista's `ballista-scheduler` (`--help` lists them).

use std::net::SocketAddr;
use std::sync::Arc;

use ballista_core::error::{BallistaError, Result};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::{Config, SchedulerConfig};
use ballista_scheduler::scheduler_process::start_server;
use clap::Parser;

fn main() -> Result<()> {
    // Ballista's own scheduler plans deep plans on big stacks.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(32 * 1024 * 1024)
        .build()?;
    runtime.block_on(run())
}

async fn run() -> Result<()> {
    let opt = Config::parse();
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_thread_names(opt.print_thread_info)
        .with_env_filter(pond_ballista::log_filter(&opt.log_level_setting))
        .init();
    let addr: SocketAddr = format!("{}:{}", opt.bind_host, opt.bind_port)
        .parse()
        .map_err(|e| BallistaError::Configuration(format!("invalid bind address: {e}")))?;
    let config: SchedulerConfig = opt.try_into()?;
    let config = pond_ballista::scheduler_config(config);
    let cluster = BallistaCluster::new_from_config(&config).await?;
    start_server(cluster, addr, Arc::new(config)).await
}
