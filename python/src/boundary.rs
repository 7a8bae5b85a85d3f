//! pond's plans as datafusion-python gets them: whole, and described.
//!
//! The catalog, its schemas and tables, and the table functions are wrapped
//! here so that each plan they make reaches datafusion-python as one
//! [`PondScanExec`], a leaf, for two reasons:
//!
//! - **Whole.** Across datafusion-ffi a node's required input distribution
//!   and ordering do not cross: datafusion-python's optimizer, seeing pond's
//!   nodes as foreign ones, would put a round-robin repartition between
//!   [`pond::LastWriterWinsExec`] and the merge of a run's files, and each
//!   partition would keep the newest row of half the rows: wrong answers. A
//!   leaf keeps the plan pond made (itself optimized as a native session
//!   would: see [`PondScanExec::over`]).
//! - **Described.** datafusion-python shows a foreign node as
//!   `FFI_ExecutionPlan: <name>, number_of_children=…`: only the name
//!   crosses. The leaf's name is the description of pond's own nodes in the
//!   plan, so `EXPLAIN` says `SeriesScanExec: series=/plant/boiler,
//!   time=[…], versions=1/6`.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{
    CatalogProvider, SchemaProvider, Session, TableFunctionArgs, TableFunctionImpl, TableProvider,
};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{Constraints, Statistics};
use datafusion::datasource::TableType;
use datafusion::error::Result;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_optimizer::optimizer::PhysicalOptimizer;
use datafusion::physical_plan::metrics::{MetricValue, MetricsSet};
use datafusion::physical_plan::statistics::{StatisticsArgs, StatisticsContext};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, displayable,
};

/// `catalog`, whose schemas' tables make shown plans.
pub(crate) fn catalog(catalog: Arc<dyn CatalogProvider>) -> Arc<dyn CatalogProvider> {
    Arc::new(ShownCatalog(catalog))
}

/// `function`, whose tables make shown plans.
pub(crate) fn function(function: Arc<dyn TableFunctionImpl>) -> Arc<dyn TableFunctionImpl> {
    Arc::new(ShownFunction(function))
}

fn table(table: Arc<dyn TableProvider>) -> Arc<dyn TableProvider> {
    Arc::new(ShownTable(table))
}

#[derive(Debug)]
struct ShownCatalog(Arc<dyn CatalogProvider>);

impl CatalogProvider for ShownCatalog {
    fn schema_names(&self) -> Vec<String> {
        self.0.schema_names()
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        self.0
            .schema(name)
            .map(|schema| Arc::new(ShownSchema(schema)) as Arc<dyn SchemaProvider>)
    }

    fn register_schema(
        &self,
        name: &str,
        schema: Arc<dyn SchemaProvider>,
    ) -> Result<Option<Arc<dyn SchemaProvider>>> {
        self.0.register_schema(name, schema)
    }
}

#[derive(Debug)]
struct ShownSchema(Arc<dyn SchemaProvider>);

#[async_trait]
impl SchemaProvider for ShownSchema {
    fn table_names(&self) -> Vec<String> {
        self.0.table_names()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        Ok(self.0.table(name).await?.map(table))
    }

    fn register_table(
        &self,
        name: String,
        table: Arc<dyn TableProvider>,
    ) -> Result<Option<Arc<dyn TableProvider>>> {
        self.0.register_table(name, table)
    }

    fn table_exist(&self, name: &str) -> bool {
        self.0.table_exist(name)
    }
}

#[derive(Debug)]
struct ShownFunction(Arc<dyn TableFunctionImpl>);

impl TableFunctionImpl for ShownFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        Ok(table(self.0.call_with_args(args)?))
    }
}

#[derive(Debug)]
struct ShownTable(Arc<dyn TableProvider>);

#[async_trait]
impl TableProvider for ShownTable {
    fn schema(&self) -> SchemaRef {
        self.0.schema()
    }

    fn constraints(&self) -> Option<&Constraints> {
        self.0.constraints()
    }

    fn table_type(&self) -> TableType {
        self.0.table_type()
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        self.0.supports_filters_pushdown(filters)
    }

    fn statistics(&self) -> Option<Statistics> {
        self.0.statistics()
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let plan = self.0.scan(state, projection, filters, limit).await?;
        PondScanExec::over(plan, state.config_options())
    }

    async fn insert_into(
        &self,
        state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.0.insert_into(state, input, insert_op).await
    }

    async fn delete_from(
        &self,
        state: &dyn Session,
        filters: Vec<Expr>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.0.delete_from(state, filters).await
    }
}

/// A leaf that runs a plan of pond's, named after what pond's own nodes in
/// it say of themselves.
struct PondScanExec {
    input: Arc<dyn ExecutionPlan>,
    name: String,
}

impl PondScanExec {
    /// `input`, first optimized with DataFusion's physical rules and pond's
    /// (as a native session would: filters pushed into the Parquet scans,
    /// partitions arranged), then wrapped.
    fn over(
        input: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let mut input = input;
        for rule in PhysicalOptimizer::new().rules {
            input = rule.optimize(input, config)?;
        }
        input = pond::SeriesTimePruning::new().optimize(input, config)?;
        let mut lines = Vec::new();
        input.apply(|node| {
            if matches!(node.name(), "SeriesScanExec" | "LastWriterWinsExec") {
                lines.push(displayable(node.as_ref()).one_line().to_string());
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        if lines.is_empty() {
            lines.push(displayable(input.as_ref()).one_line().to_string());
        }
        let name = lines
            .iter()
            .map(|l| l.trim())
            .collect::<Vec<_>>()
            .join("; ");
        Ok(Arc::new(Self { input, name }))
    }
}

impl fmt::Debug for PondScanExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PondScanExec")
            .field("name", &self.name)
            .finish()
    }
}

impl DisplayAs for PondScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name)
    }
}

impl ExecutionPlan for PondScanExec {
    fn name(&self) -> &str {
        &self.name
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    /// None that another optimizer could rearrange.
    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    /// Those of the plan inside: the kept versions' row counts and bounds,
    /// for datafusion-python's join planning.
    fn statistics_from_inputs(
        &self,
        _input_stats: &[Arc<Statistics>],
        args: &StatisticsArgs,
    ) -> Result<Arc<Statistics>> {
        StatisticsContext::new().compute(self.input.as_ref(), args)
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        self.input.execute(partition, context)
    }

    /// The metrics of every node of the plan (versions kept and pruned,
    /// files, row groups and bytes read), but rows, bytes and batches out
    /// and the time spent only of its top node: summed over the nodes they
    /// would count a row once for each.
    fn metrics(&self) -> Option<MetricsSet> {
        let mut all = MetricsSet::new();
        let _ = self.input.apply(|node| {
            let top = Arc::ptr_eq(node, &self.input);
            for metric in node.metrics().iter().flat_map(|m| m.iter()) {
                let per_node = matches!(
                    metric.value(),
                    MetricValue::OutputRows(_)
                        | MetricValue::OutputBytes(_)
                        | MetricValue::OutputBatches(_)
                        | MetricValue::ElapsedCompute(_)
                        | MetricValue::StartTimestamp(_)
                        | MetricValue::EndTimestamp(_)
                );
                if top || !per_node {
                    all.push(Arc::clone(metric));
                }
            }
            Ok(TreeNodeRecursion::Continue)
        });
        Some(all.aggregate_by_name())
    }
}
