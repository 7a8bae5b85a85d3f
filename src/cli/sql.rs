//! `pond sql`: SQL against the pond, from the command line, a file, or the
//! interactive REPL of `datafusion-cli`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use crate::Pond;
use anyhow::{Context, Result};
use datafusion::prelude::SessionContext;
use datafusion_cli::exec::{exec_from_commands, exec_from_repl};
use datafusion_cli::object_storage::instrumented::InstrumentedObjectStoreRegistry;
use datafusion_cli::print_format::PrintFormat;
use datafusion_cli::print_options::{MaxRows, PrintOptions};

use super::output::OutputFormat;

/// What `pond sql` was asked to run.
#[derive(Debug)]
pub(crate) struct SqlRequest {
    pub(crate) sql: Option<String>,
    pub(crate) file: Option<PathBuf>,
    pub(crate) format: Option<OutputFormat>,
    pub(crate) maxrows: Option<usize>,
    /// The session's `pond.as_of`.
    pub(crate) as_of: Option<String>,
    /// The Ballista scheduler to run the queries on.
    pub(crate) cluster: Option<String>,
}

/// A session with the pond installed as DataFusion's default catalog.
pub(crate) fn session(pond: Pond) -> SessionContext {
    let ctx = SessionContext::new();
    crate::register(&ctx, Arc::new(pond));
    ctx
}

/// A session on the Ballista cluster whose scheduler is at `url`.
#[cfg(feature = "cluster")]
async fn cluster_session(pond: Pond, url: &str) -> Result<SessionContext> {
    crate::cluster::remote(url, Arc::new(pond))
        .await
        .with_context(|| format!("cannot reach the Ballista scheduler at {url}"))
}

#[cfg(not(feature = "cluster"))]
async fn cluster_session(_pond: Pond, _url: &str) -> Result<SessionContext> {
    anyhow::bail!(
        "this pond was built without Ballista: build it with `--features cluster` for --cluster"
    )
}

pub(crate) async fn run(pond: Pond, request: SqlRequest) -> Result<()> {
    let ctx = match &request.cluster {
        Some(url) => cluster_session(pond, url).await?,
        None => session(pond),
    };
    if let Some(time) = &request.as_of {
        let state = ctx.state_ref();
        let mut state = state.write();
        let options = state.config_mut().options_mut();
        options.set("pond.as_of", time)?;
    }
    let script = match (&request.sql, &request.file) {
        (Some(sql), _) => Some(sql.clone()),
        (None, Some(file)) => Some(
            std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?,
        ),
        (None, None) => None,
    };
    let mut options = PrintOptions {
        format: request
            .format
            .map_or(PrintFormat::Table, OutputFormat::print_format),
        quiet: true,
        maxrows: request.maxrows.map_or(MaxRows::Unlimited, MaxRows::Limited),
        color: false,
        instrumented_registry: Arc::new(InstrumentedObjectStoreRegistry::new()),
    };
    match script {
        // Every statement of the script, in order; the first error stops it.
        Some(script) => exec_from_commands(&ctx, vec![script], &options).await?,
        None => {
            options.quiet = false;
            options.maxrows = MaxRows::Limited(request.maxrows.unwrap_or(40));
            options.color = std::io::stdout().is_terminal();
            exec_from_repl(&ctx, &mut options)
                .await
                .context("the REPL failed")?;
        }
    }
    Ok(())
}
