//! `pond sql`: SQL against the pond, from the command line, a file or
//! stdin as a script, or typed into the interactive REPL of
//! `datafusion-cli`; on a Ballista cluster, with writes run here.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use crate::Pond;
use anyhow::{Context, Result};
use datafusion::common::tree_node::TreeNode;
use datafusion::dataframe::DataFrame;
use datafusion::error::Result as DfResult;
use datafusion::execution::TaskContext;
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::{LogicalPlan, Statement};
use datafusion::prelude::SessionContext;
use datafusion_cli::cli_context::CliSessionContext;
use datafusion_cli::exec::{exec_from_commands, exec_from_repl};
use datafusion_cli::object_storage::instrumented::InstrumentedObjectStoreRegistry;
use datafusion_cli::print_format::PrintFormat;
use datafusion_cli::print_options::{MaxRows, PrintOptions};
use object_store::ObjectStore;

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

/// The SQL script on stdin, up to a line `\q` if it has one (as a session
/// typed into the REPL would end).
fn stdin_script() -> Result<String> {
    let text = std::io::read_to_string(std::io::stdin()).context("cannot read SQL from stdin")?;
    script_of(&text)
}

fn script_of(text: &str) -> Result<String> {
    let mut script = String::with_capacity(text.len());
    for line in text.lines() {
        match line.trim() {
            "\\q" | "\\quit" => break,
            command if command.starts_with('\\') => anyhow::bail!(
                "`{command}` is a command of the interactive REPL; SQL read from stdin \
                 runs as a script (run `pond sql` in a terminal for the REPL)"
            ),
            _ => {
                script.push_str(line);
                script.push('\n');
            }
        }
    }
    Ok(script)
}

/// A session with the pond installed as DataFusion's default catalog.
pub(crate) fn session(pond: Arc<Pond>) -> SessionContext {
    let ctx = SessionContext::new();
    crate::register(&ctx, pond);
    ctx
}

/// A session on the Ballista cluster whose scheduler is at `url`.
#[cfg(feature = "cluster")]
async fn cluster_session(pond: Arc<Pond>, url: &str) -> Result<SessionContext> {
    crate::cluster::remote(url, pond)
        .await
        .with_context(|| format!("cannot reach the Ballista scheduler at {url}"))
}

#[cfg(not(feature = "cluster"))]
async fn cluster_session(_pond: Arc<Pond>, _url: &str) -> Result<SessionContext> {
    anyhow::bail!(
        "this pond was built without Ballista: build it with `--features cluster` for --cluster"
    )
}

/// A cluster's session for datafusion-cli, whose writes run here: Ballista
/// would send an `INSERT` or a `DELETE` to its scheduler, which cannot
/// encode the one and would commit the other with its own handle and
/// credentials. Queries go to the cluster; a plan holding a write (also
/// under `EXPLAIN ANALYZE`, or prepared and then executed) runs in the
/// local session; `SET` and `RESET` go to both (`ballista.*` settings to
/// the cluster alone: the local session does not know them).
struct ClusterCli {
    cluster: SessionContext,
    local: SessionContext,
    /// The prepared statements that write, which the local session holds.
    prepared_writes: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl ClusterCli {
    fn new(cluster: SessionContext, local: SessionContext) -> Self {
        Self {
            cluster,
            local,
            prepared_writes: Default::default(),
        }
    }

    /// Whether `plan` runs in the local session.
    fn runs_here(&self, plan: &LogicalPlan) -> bool {
        let writes = |plan: &LogicalPlan| {
            plan.exists(|p| Ok(matches!(p, LogicalPlan::Dml(_))))
                .unwrap_or(false)
        };
        let prepared = self.prepared_writes.lock().expect("not poisoned");
        match plan {
            LogicalPlan::Statement(Statement::Execute(e)) => prepared.contains(&e.name),
            LogicalPlan::Statement(Statement::Deallocate(d)) => prepared.contains(&d.name),
            plan => writes(plan),
        }
    }

    /// Keeps track of the prepared statements the local session holds.
    fn note(&self, plan: &LogicalPlan) {
        let mut prepared = self.prepared_writes.lock().expect("not poisoned");
        match plan {
            LogicalPlan::Statement(Statement::Prepare(p)) => {
                prepared.insert(p.name.clone());
            }
            LogicalPlan::Statement(Statement::Deallocate(d)) => {
                prepared.remove(&d.name);
            }
            _ => {}
        }
    }
}

/// The variable a `SET` or `RESET` changes in the local session too.
fn local_setting(plan: &LogicalPlan) -> bool {
    let variable = match plan {
        LogicalPlan::Statement(Statement::SetVariable(s)) => &s.variable,
        LogicalPlan::Statement(Statement::ResetVariable(r)) => &r.variable,
        _ => return false,
    };
    !variable.to_ascii_lowercase().starts_with("ballista.")
}

#[async_trait::async_trait]
impl CliSessionContext for ClusterCli {
    fn task_ctx(&self) -> Arc<TaskContext> {
        self.cluster.task_ctx()
    }

    fn session_state(&self) -> SessionState {
        self.cluster.state()
    }

    fn register_object_store(
        &self,
        url: &url::Url,
        object_store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore + 'static>> {
        self.local
            .register_object_store(url, Arc::clone(&object_store));
        self.cluster.register_object_store(url, object_store)
    }

    fn register_table_options_extension_from_scheme(&self, scheme: &str) {
        CliSessionContext::register_table_options_extension_from_scheme(&self.local, scheme);
        CliSessionContext::register_table_options_extension_from_scheme(&self.cluster, scheme);
    }

    async fn execute_logical_plan(&self, plan: LogicalPlan) -> DfResult<DataFrame> {
        if self.runs_here(&plan) {
            self.note(&plan);
            return self.local.execute_logical_plan(plan).await;
        }
        if local_setting(&plan) {
            let done = self.cluster.execute_logical_plan(plan.clone()).await?;
            self.local.execute_logical_plan(plan).await?;
            return Ok(done);
        }
        self.cluster.execute_logical_plan(plan).await
    }
}

pub(crate) async fn run(pond: Pond, request: SqlRequest) -> Result<()> {
    // datafusion-cli limits the rows of its table format alone.
    anyhow::ensure!(
        request.maxrows.is_none() || matches!(request.format, None | Some(OutputFormat::Table)),
        "--maxrows limits the table format only: for csv, json or ndjson, add LIMIT to the query"
    );
    let pond = Arc::new(pond);
    let (ctx, local) = match &request.cluster {
        Some(url) => (
            cluster_session(Arc::clone(&pond), url).await?,
            Some(session(pond)),
        ),
        None => (session(pond), None),
    };
    if let Some(time) = &request.as_of {
        for ctx in std::iter::once(&ctx).chain(&local) {
            let state = ctx.state_ref();
            let mut state = state.write();
            let options = state.config_mut().options_mut();
            options.set("pond.as_of", time)?;
        }
    }
    let ctx: Box<dyn CliSessionContext> = match local {
        Some(local) => Box::new(ClusterCli::new(ctx, local)),
        None => Box::new(ctx),
    };
    let script = match (&request.sql, &request.file) {
        (Some(sql), _) => Some(sql.clone()),
        (None, Some(file)) if file.as_os_str() == "-" => Some(stdin_script()?),
        (None, Some(file)) => Some(
            std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?,
        ),
        // SQL piped in is a script, not keystrokes for the REPL (which
        // would wait for a `;`, print its prompts' output to stdout and
        // exit 0 whatever failed).
        (None, None) if !std::io::stdin().is_terminal() => Some(stdin_script()?),
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
        Some(script) => exec_from_commands(ctx.as_ref(), vec![script], &options).await?,
        None => {
            options.quiet = false;
            options.maxrows = MaxRows::Limited(request.maxrows.unwrap_or(40));
            options.color = std::io::stdout().is_terminal();
            exec_from_repl(ctx.as_ref(), &mut options)
                .await
                .context("the REPL failed")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::script_of;

    #[test]
    fn a_script_on_stdin_ends_at_quit_and_refuses_other_commands() {
        let script = script_of("SELECT 1;\nSELECT 2;\n\\q\nSELECT 3;\n").unwrap();
        assert_eq!(script, "SELECT 1;\nSELECT 2;\n");
        let err = script_of("SELECT 1;\n\\d\n").unwrap_err().to_string();
        assert!(
            err.starts_with("`\\d` is a command of the interactive REPL"),
            "{err}"
        );
    }
}
