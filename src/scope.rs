//! Plans that bring their pond's store along.
//!
//! DataFusion's file scans look their object store up by URL in the
//! runtime environment of the task that runs them. A pond's scans register
//! the pond's store in the session's environment when they are planned, but
//! a plan may run in another: datafusion-ffi (pond in datafusion-python)
//! rebuilds each task context on its side of the boundary with a new, empty
//! environment, and a distributed engine runs plans on executors that never
//! saw the session. [`StoreScope::context`] gives such a task the pond's
//! store: [`crate::SeriesScanExec`] applies it to its own scan, and
//! [`ScopedExec`] to the merged reads of keyed series and deletes.

use std::fmt;
use std::sync::{Arc, OnceLock};

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Result as DfResult, Statistics};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::filter_pushdown::{
    ChildPushdownResult, FilterDescription, FilterPushdownPhase, FilterPushdownPropagation,
};
use datafusion::physical_plan::statistics::StatisticsArgs;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use object_store::ObjectStore;

/// Where a pond's store comes from: what another process (a Ballista
/// executor) needs to open it again.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub(crate) struct StoreOrigin {
    /// The pond's root URL.
    pub(crate) location: String,
    /// Its storage options (credentials among them, if they were given as
    /// options rather than by the environment).
    pub(crate) storage_options: std::collections::BTreeMap<String, String>,
}

/// A pond's store, and the URL its scans look it up by.
#[derive(Debug)]
pub(crate) struct StoreScope {
    url: ObjectStoreUrl,
    store: Arc<dyn ObjectStore>,
    /// Where the store comes from, if another process can open it too.
    origin: Option<StoreOrigin>,
    /// An environment with only the store, made when first needed.
    runtime: OnceLock<Arc<RuntimeEnv>>,
}

impl StoreScope {
    pub(crate) fn new(
        url: ObjectStoreUrl,
        store: Arc<dyn ObjectStore>,
        origin: Option<StoreOrigin>,
    ) -> Arc<Self> {
        Arc::new(Self {
            url,
            store,
            origin,
            runtime: OnceLock::new(),
        })
    }

    /// The URL the scans under this scope look the store up by.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    pub(crate) fn url(&self) -> &ObjectStoreUrl {
        &self.url
    }

    /// Where the store comes from (see [`StoreOrigin`]).
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    pub(crate) fn origin(&self) -> Option<&StoreOrigin> {
        self.origin.as_ref()
    }

    /// `context` itself if its environment has the store; otherwise the
    /// same context in an environment that has it.
    pub(crate) fn context(&self, context: Arc<TaskContext>) -> Arc<TaskContext> {
        if context.runtime_env().object_store(&self.url).is_ok() {
            return context;
        }
        let runtime = self.runtime.get_or_init(|| {
            let runtime = RuntimeEnv::default();
            runtime.register_object_store(self.url.as_ref(), Arc::clone(&self.store));
            Arc::new(runtime)
        });
        Arc::new(TaskContext::new(
            context.task_id(),
            context.session_id(),
            context.session_config().clone(),
            context.scalar_functions().clone(),
            context.higher_order_functions().clone(),
            context.aggregate_functions().clone(),
            context.window_functions().clone(),
            Arc::clone(runtime),
        ))
    }
}

/// Runs its input in a task context that has the pond's store (see
/// [`StoreScope::context`]); otherwise transparent: same schema, order,
/// partitioning, statistics, and filters pass through to the input.
pub(crate) struct ScopedExec {
    input: Arc<dyn ExecutionPlan>,
    scope: Arc<StoreScope>,
}

impl ScopedExec {
    pub(crate) fn new(input: Arc<dyn ExecutionPlan>, scope: Arc<StoreScope>) -> Self {
        Self { input, scope }
    }

    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    pub(crate) fn scope(&self) -> &Arc<StoreScope> {
        &self.scope
    }
}

impl fmt::Debug for ScopedExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedExec")
            .field("input", &self.input)
            .finish()
    }
}

impl DisplayAs for ScopedExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PondStoreScope")
    }
}

impl ExecutionPlan for ScopedExec {
    fn name(&self) -> &str {
        "PondStoreScope"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(Self::new(
            children.swap_remove(0),
            Arc::clone(&self.scope),
        )))
    }

    fn gather_filters_for_pushdown(
        &self,
        _phase: FilterPushdownPhase,
        parent_filters: Vec<Arc<dyn PhysicalExpr>>,
        _config: &ConfigOptions,
    ) -> DfResult<FilterDescription> {
        FilterDescription::from_children(parent_filters, &self.children())
    }

    fn handle_child_pushdown_result(
        &self,
        _phase: FilterPushdownPhase,
        child_pushdown_result: ChildPushdownResult,
        _config: &ConfigOptions,
    ) -> DfResult<FilterPushdownPropagation<Arc<dyn ExecutionPlan>>> {
        Ok(FilterPushdownPropagation::if_all(child_pushdown_result))
    }

    /// Its input's: the scope changes no row.
    fn statistics_from_inputs(
        &self,
        input_stats: &[Arc<Statistics>],
        _args: &StatisticsArgs,
    ) -> DfResult<Arc<Statistics>> {
        Ok(input_stats
            .first()
            .cloned()
            .unwrap_or_else(|| Arc::new(Statistics::new_unknown(self.input.schema().as_ref()))))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        self.input.execute(partition, self.scope.context(context))
    }
}
