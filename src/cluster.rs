//! pond on Apache Ballista: the codecs that send pond's tables and plans
//! to a scheduler and its executors, and the sessions that use them.
//!
//! Ballista sends a client's logical plan to its scheduler, and the
//! scheduler's physical plans, stage by stage, to executors, through
//! datafusion-proto. [`PondCodec`] encodes what a remote process needs to
//! rebuild pond's parts of those plans:
//!
//! - a series table (also as `series_range` and `series_union` read it):
//!   the pond's URL and storage options, the series, what restricts the
//!   read, and the **oplog version the client planned on** with the
//!   series' newest version then. The scheduler reads the series as of that
//!   version, so appends that land after the client planned are not read,
//!   and those that landed before are, whatever the scheduler's handle had
//!   seen (`SeriesTable::pinned_at`);
//! - a [`SeriesScanExec`]: the Parquet scan of exactly the versions the
//!   scheduler's oplog pruning kept (datafusion-proto's own encoding), and
//!   where to open the pond's store. Executors never read the oplog: each
//!   reads its share of the kept files;
//! - [`LastWriterWinsExec`] and the store scope over merged reads.
//!
//! Everything else goes to Ballista's own codecs. Storage options travel
//! in the plan in plain text, as Ballista's session settings do: use the
//! environment of the scheduler and executors for credentials, or TLS
//! between them.
//!
//! ```no_run
//! # async fn demo() -> datafusion::error::Result<()> {
//! use std::sync::Arc;
//! let pond = Arc::new(pond::Pond::open("/data/plant").await?);
//! let ctx = pond::cluster::remote("df://localhost:50050", pond).await?;
//! ctx.sql("SELECT count(*) FROM boiler.temp").await?.show().await?;
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use ballista::prelude::{SessionConfigExt, SessionContextExt};
use ballista_core::serde::{BallistaLogicalExtensionCodec, BallistaPhysicalExtensionCodec};
use datafusion::catalog::TableProvider;
use datafusion::common::Column;
use datafusion::common::TableReference;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::FileFormatFactory;
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::TaskContext;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion::logical_expr::{Expr, Extension, LogicalPlan, Projection, TableScanBuilder};
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::execution_plan::replace_children_if_necessary;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::{
    AsExecutionPlan, PhysicalExtensionCodec, PhysicalProtoConverterExtension,
};
use datafusion_proto::protobuf::PhysicalPlanNode;
use object_store::ObjectStore;
use object_store::path::Path as ObjectPath;
use prost::Message;
use serde::{Deserialize, Serialize};

use crate::catalog::PondSessionOptions;
use crate::pond::Pond;
use crate::pruning::TimeRanges;
use crate::pruning::versions::VersionPredicate;
use crate::runs::{CollapseRunsExec, Extreme};
use crate::scan::{ScanSource, SeriesScanExec};
use crate::scope::{ScopedExec, StoreOrigin, StoreScope};
use crate::union::SeriesUnion;
use crate::{LastWriterWinsExec, RunAggregateExec, SeriesTable, SeriesTimePruning};

/// The first bytes of everything pond encodes. A protobuf message cannot
/// start with a zero byte (field number 0 does not exist), so what starts
/// otherwise is Ballista's and goes to its codecs.
const TAG: &[u8] = b"\0pond/1\0";

/// How a series table is sent: what a scheduler needs to read it as the
/// client planned it.
#[derive(Debug, Serialize, Deserialize)]
struct SeriesNode {
    pond: StoreOrigin,
    /// The oplog version the client's handle had read.
    oplog_version: i64,
    path: String,
    /// The series' newest version then.
    last_version: i64,
    window: Option<(i64, i64)>,
    max_version: Option<i64>,
    as_of_time: Option<i64>,
}

/// The table providers pond sends.
#[derive(Debug, Serialize, Deserialize)]
enum TableNode {
    Series(SeriesNode),
    Union {
        pond: StoreOrigin,
        oplog_version: i64,
        pattern: String,
        members: Vec<SeriesNode>,
    },
    /// A table sent as its rows, in Arrow IPC after the header: the tables
    /// of `series_list` and `series_versions` (as they were when the client
    /// planned), and memory tables.
    Rows,
}

/// A store scope: the URL scans look the store up by, and its origin.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ScopeNode {
    url: String,
    origin: StoreOrigin,
}

/// The execution plans pond sends. A scan's Parquet scan follows the
/// header, in datafusion-proto's encoding.
#[derive(Debug, Serialize, Deserialize)]
enum ExecNode {
    Scan {
        /// Whether the Parquet scan follows the header; otherwise it is
        /// the node's child (see [`SeriesScanExec::with_visible_input`]).
        inline: bool,
        scope: ScopeNode,
        time_column: String,
        describe: String,
        ranges: Vec<(i64, i64)>,
        kept: usize,
        total: usize,
        /// Of a union's scan, each file's time column (path, column).
        #[serde(default)]
        time_columns: Vec<(String, String)>,
    },
    LastWriterWins {
        time: usize,
        key: Vec<usize>,
        rank: usize,
        keep: usize,
        versions: usize,
        runs: usize,
        scope: Option<ScopeNode>,
    },
    Scoped(ScopeNode),
    /// A [`CollapseRunsExec`] over its input.
    CollapseRuns {
        keys: Vec<usize>,
        min: Vec<usize>,
        max: Vec<usize>,
    },
    /// A [`RunAggregateExec`]: the body is the partial aggregation it
    /// stands for, over an empty input of its input's schema.
    RunAggregate,
}

/// `TAG`, the header's length, the header as JSON, then `body`.
fn frame<T: Serialize>(header: &T, body: &[u8], buf: &mut Vec<u8>) -> DfResult<()> {
    let json = serde_json::to_vec(header).map_err(|e| DataFusionError::External(Box::new(e)))?;
    buf.extend_from_slice(TAG);
    buf.extend_from_slice(&(json.len() as u64).to_le_bytes());
    buf.extend_from_slice(&json);
    buf.extend_from_slice(body);
    Ok(())
}

/// The header and body of what [`frame`] wrote, or `None` if `buf` is not
/// pond's.
fn unframe<T: for<'de> Deserialize<'de>>(buf: &[u8]) -> DfResult<Option<(T, &[u8])>> {
    let Some(rest) = buf.strip_prefix(TAG) else {
        return Ok(None);
    };
    let invalid = || DataFusionError::Internal("a truncated pond plan node".to_string());
    let (len, rest) = rest.split_first_chunk::<8>().ok_or_else(invalid)?;
    let len = usize::try_from(u64::from_le_bytes(*len)).map_err(|_| invalid())?;
    if rest.len() < len {
        return Err(invalid());
    }
    let (json, body) = rest.split_at(len);
    let header =
        serde_json::from_slice(json).map_err(|e| DataFusionError::External(Box::new(e)))?;
    Ok(Some((header, body)))
}

/// pond's logical and physical extension codec for Ballista (see the
/// [module](self)), in front of Ballista's own.
///
/// It opens each pond a plan names once per process and keeps it; a
/// process that has a pond open already (the client) hands it over with
/// [`Self::with_pond`].
pub struct PondCodec {
    ponds: Mutex<HashMap<StoreOrigin, Arc<Pond>>>,
    stores: Mutex<HashMap<StoreOrigin, Arc<dyn ObjectStore>>>,
    logical: BallistaLogicalExtensionCodec,
    physical: BallistaPhysicalExtensionCodec,
}

impl fmt::Debug for PondCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ponds = self.ponds.lock().map(|p| p.len()).unwrap_or(0);
        f.debug_struct("PondCodec").field("ponds", &ponds).finish()
    }
}

impl Default for PondCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl PondCodec {
    /// A codec that opens the ponds plans name when it first needs them.
    pub fn new() -> Self {
        Self {
            ponds: Mutex::default(),
            stores: Mutex::default(),
            logical: BallistaLogicalExtensionCodec::default(),
            physical: BallistaPhysicalExtensionCodec::default(),
        }
    }

    /// The codec with `pond` known already: plans naming it use this handle.
    pub fn with_pond(self, pond: Arc<Pond>) -> Self {
        let origin = pond.origin();
        self.stores
            .lock()
            .expect("store cache poisoned")
            .insert(origin.clone(), pond.object_store());
        self.ponds
            .lock()
            .expect("pond cache poisoned")
            .insert(origin, pond);
        self
    }

    /// The pond `origin` names, opened on first use, and refreshed if it
    /// has not read up to `oplog_version` yet.
    fn pond(&self, origin: &StoreOrigin, oplog_version: i64) -> DfResult<Arc<Pond>> {
        let known = self
            .ponds
            .lock()
            .expect("pond cache poisoned")
            .get(origin)
            .cloned();
        let pond = match known {
            Some(pond) => pond,
            None => {
                let options = crate::pond::PondOptions {
                    storage_options: origin.storage_options.clone().into_iter().collect(),
                    ..Default::default()
                };
                let location = origin.location.clone();
                let pond = crate::runtime::block_on(async move {
                    Pond::open_with_options(&location, options).await
                })??;
                let pond = Arc::new(pond);
                self.ponds
                    .lock()
                    .expect("pond cache poisoned")
                    .entry(origin.clone())
                    .or_insert(pond)
                    .clone()
            }
        };
        if pond.oplog_version() < oplog_version {
            let refreshing = Arc::clone(&pond);
            crate::runtime::block_on(async move { refreshing.refresh().await })??;
        }
        Ok(pond)
    }

    /// The store `origin` names, opened on first use (without its oplog).
    fn store(&self, origin: &StoreOrigin) -> DfResult<Arc<dyn ObjectStore>> {
        let mut stores = self.stores.lock().expect("store cache poisoned");
        if let Some(store) = stores.get(origin) {
            return Ok(Arc::clone(store));
        }
        let store = Pond::open_store(origin)?;
        stores.insert(origin.clone(), Arc::clone(&store));
        Ok(store)
    }

    /// Registers in `runtime` the stores of the ponds that `config`'s
    /// `pond.stores` names: a Ballista executor's runtime producer calls it
    /// (see `pond-executor`), since decoding a Parquet scan looks its store
    /// up before pond's part of the plan is decoded.
    pub fn register_stores(&self, runtime: &RuntimeEnv, config: &SessionConfig) -> DfResult<()> {
        let Some(options) = config.options().extensions.get::<PondSessionOptions>() else {
            return Ok(());
        };
        if options.stores.is_empty() {
            return Ok(());
        }
        let stores: Vec<ScopeNode> = serde_json::from_str(&options.stores)
            .map_err(|e| DataFusionError::Configuration(format!("pond.stores: {e}")))?;
        for node in stores {
            let url = ObjectStoreUrl::parse(&node.url)?;
            runtime.register_object_store(url.as_ref(), self.store(&node.origin)?);
        }
        Ok(())
    }

    fn scope(&self, node: &ScopeNode) -> DfResult<Arc<StoreScope>> {
        Ok(StoreScope::new(
            ObjectStoreUrl::parse(&node.url)?,
            self.store(&node.origin)?,
            Some(node.origin.clone()),
        ))
    }

    fn encode_series(table: &SeriesTable) -> DfResult<SeriesNode> {
        let pond = table.pond();
        let (window, max_version, as_of_time) = table.restrictions();
        // Both versions from one snapshot of the index: read apart, a
        // refresh between them could pair an old oplog version with a newer
        // series.
        let index = pond.index();
        let state = index
            .series(table.path())
            .ok_or_else(|| crate::Error::UnknownSeries {
                path: table.path().to_string(),
            })?;
        Ok(SeriesNode {
            pond: pond.origin(),
            oplog_version: index.delta_version(),
            path: table.path().to_string(),
            last_version: state.last_version(),
            window,
            max_version,
            as_of_time,
        })
    }

    fn decode_series(&self, node: &SeriesNode) -> DfResult<SeriesTable> {
        let pond = self.pond(&node.pond, node.oplog_version)?;
        let mut table = SeriesTable::try_new(pond, &node.path)?;
        if let Some((start, end)) = node.window {
            table = table.with_time_range(start, end);
        }
        if let Some(version) = node.max_version {
            table = table.with_max_version(version);
        }
        if let Some(time) = node.as_of_time {
            table = table.with_as_of_time(time);
        }
        Ok(table.pinned_at(node.last_version)?)
    }
}

/// Every row of a memory table, its partitions one after the other.
fn memory_rows(memory: &MemTable, table_ref: &TableReference) -> DfResult<Vec<RecordBatch>> {
    let mut rows = Vec::new();
    for partition in &memory.batches {
        let Ok(batches) = partition.try_read() else {
            return Err(DataFusionError::Execution(format!(
                "{table_ref}: the memory table is being written; run the query again"
            )));
        };
        rows.extend(batches.iter().cloned());
    }
    Ok(rows)
}

/// The schema a decoded table has must be the one the client planned
/// with: the plan's column indices refer to it.
fn same_schema(
    table: Arc<dyn TableProvider>,
    table_ref: &TableReference,
    planned: &SchemaRef,
) -> DfResult<Arc<dyn TableProvider>> {
    if table.schema().fields() != planned.fields() {
        return Err(DataFusionError::Plan(format!(
            "{table_ref}: the series' schema changed while the query was sent to the \
             cluster; run it again"
        )));
    }
    Ok(table)
}

impl LogicalExtensionCodec for PondCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[LogicalPlan],
        ctx: &TaskContext,
    ) -> DfResult<Extension> {
        self.logical.try_decode(buf, inputs, ctx)
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> DfResult<()> {
        self.logical.try_encode(node, buf)
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> DfResult<Arc<dyn TableProvider>> {
        let Some((node, body)) = unframe::<TableNode>(buf)? else {
            return self
                .logical
                .try_decode_table_provider(buf, table_ref, schema, ctx);
        };
        let table: Arc<dyn TableProvider> = match node {
            TableNode::Rows => {
                let reader = arrow::ipc::reader::StreamReader::try_new(body, None)?;
                let batches = reader.collect::<Result<Vec<_>, _>>()?;
                Arc::new(MemTable::try_new(Arc::clone(&schema), vec![batches])?)
            }
            TableNode::Series(node) => Arc::new(self.decode_series(&node)?),
            TableNode::Union {
                pond,
                oplog_version,
                pattern,
                members,
            } => {
                let pond = self.pond(&pond, oplog_version)?;
                let members = members
                    .iter()
                    .map(|m| self.decode_series(m))
                    .collect::<DfResult<Vec<_>>>()?;
                Arc::new(SeriesUnion::try_new(pond, pattern, members)?)
            }
        };
        same_schema(table, table_ref, &schema)
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> DfResult<()> {
        if let Some(table) = node.downcast_ref::<SeriesTable>() {
            return frame(&TableNode::Series(Self::encode_series(table)?), &[], buf);
        }
        if let Some(union) = node.downcast_ref::<SeriesUnion>() {
            let (pond, pattern, members) = union.parts();
            let members = members
                .iter()
                .map(Self::encode_series)
                .collect::<DfResult<Vec<_>>>()?;
            let node = TableNode::Union {
                pond: pond.origin(),
                oplog_version: pond.oplog_version(),
                pattern: pattern.to_string(),
                members,
            };
            return frame(&node, &[], buf);
        }
        let rows = match crate::udtf::listing_rows(node.as_ref()) {
            Some(batch) => Some(vec![batch?]),
            None => match node.downcast_ref::<MemTable>() {
                Some(memory) => Some(memory_rows(memory, table_ref)?),
                None => None,
            },
        };
        if let Some(batches) = rows {
            let mut body = Vec::new();
            let mut writer = arrow::ipc::writer::StreamWriter::try_new(&mut body, &node.schema())?;
            for batch in &batches {
                writer.write(batch)?;
            }
            writer.finish()?;
            drop(writer);
            return frame(&TableNode::Rows, &body, buf);
        }
        self.logical.try_encode_table_provider(table_ref, node, buf)
    }

    fn try_decode_file_format(
        &self,
        buf: &[u8],
        ctx: &TaskContext,
    ) -> DfResult<Arc<dyn FileFormatFactory>> {
        self.logical.try_decode_file_format(buf, ctx)
    }

    fn try_encode_file_format(
        &self,
        buf: &mut Vec<u8>,
        node: Arc<dyn FileFormatFactory>,
    ) -> DfResult<()> {
        self.logical.try_encode_file_format(buf, node)
    }
}

impl PhysicalExtensionCodec for PondCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let Some((node, body)) = unframe::<ExecNode>(buf)? else {
            return self.physical.try_decode(buf, inputs, ctx, proto_converter);
        };
        let input = || {
            inputs.first().cloned().ok_or_else(|| {
                DataFusionError::Internal("a pond plan node without its input".to_string())
            })
        };
        Ok(match node {
            ExecNode::Scan {
                inline,
                scope,
                time_column,
                describe,
                ranges,
                kept,
                total,
                time_columns,
            } => {
                let plan = if inline {
                    PhysicalPlanNode::decode(body)
                        .map_err(|e| DataFusionError::External(Box::new(e)))?
                        .try_into_physical_plan(ctx, self)?
                } else {
                    input()?
                };
                let Some(scan) = plan.downcast_ref::<DataSourceExec>() else {
                    return Err(DataFusionError::Internal(format!(
                        "a series scan reads a DataSourceExec, not {}",
                        plan.name()
                    )));
                };
                let mut input = Arc::new(scan.clone());
                if !time_columns.is_empty() {
                    let config = input
                        .data_source()
                        .downcast_ref::<FileScanConfig>()
                        .ok_or_else(|| {
                            DataFusionError::Internal("a series scan reads files".to_string())
                        })?;
                    let columns = time_columns.into_iter().collect();
                    let config = crate::union::with_file_time_columns(
                        config,
                        &columns,
                        self.store(&scope.origin)?,
                        ctx,
                    )?;
                    input = DataSourceExec::from_data_source(config);
                }
                // The time column need not be among the columns returned.
                let time_type = scan_table_schema(&input)?
                    .field_with_name(&time_column)?
                    .data_type()
                    .clone();
                let ranges = ranges.iter().fold(TimeRanges::none(), |all, &(a, b)| {
                    all.union(&TimeRanges::between(a, b))
                });
                let source = SentSource {
                    time_column,
                    time_type,
                    describe,
                    paths: scan_paths(&input),
                    store: self.store(&scope.origin)?,
                    origin: scope.origin,
                };
                Arc::new(SeriesScanExec::rebuilt(
                    input,
                    Arc::new(source),
                    ranges,
                    (kept, total),
                )?)
            }
            ExecNode::LastWriterWins {
                time,
                key,
                rank,
                keep,
                versions,
                runs,
                scope,
            } => {
                let mut exec = LastWriterWinsExec::try_new(
                    input()?,
                    (time, key, rank),
                    keep,
                    (versions, runs),
                )?;
                if let Some(scope) = scope {
                    exec = exec.with_scope(self.scope(&scope)?);
                }
                Arc::new(exec)
            }
            ExecNode::Scoped(scope) => Arc::new(ScopedExec::new(input()?, self.scope(&scope)?)),
            ExecNode::CollapseRuns { keys, min, max } => {
                let extremes = (min.into_iter().map(|i| (i, Extreme::Min)))
                    .chain(max.into_iter().map(|i| (i, Extreme::Max)))
                    .collect();
                Arc::new(CollapseRunsExec::new(input()?, keys, extremes)?)
            }
            ExecNode::RunAggregate => {
                let plan = PhysicalPlanNode::decode(body)
                    .map_err(|e| DataFusionError::External(Box::new(e)))?
                    .try_into_physical_plan(ctx, self)?;
                RunAggregateExec::over(replace_children_if_necessary(plan, vec![input()?])?)
            }
        })
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> DfResult<()> {
        let unsendable = |what: &str| {
            DataFusionError::Plan(format!(
                "{what} reads a store that another process cannot open; it cannot run on a \
                 cluster"
            ))
        };
        let scope_node = |scope: &StoreScope, what: &str| -> DfResult<ScopeNode> {
            Ok(ScopeNode {
                url: scope.url().as_str().to_string(),
                origin: scope.origin().cloned().ok_or_else(|| unsendable(what))?,
            })
        };
        if let Some(scan) = node.downcast_ref::<SeriesScanExec>() {
            let (source, ranges) = scan.source();
            let input: Arc<dyn ExecutionPlan> = Arc::clone(scan.input()) as _;
            let config = input_url(scan.input())?;
            let inline = !scan.input_is_visible();
            let header = ExecNode::Scan {
                inline,
                scope: ScopeNode {
                    url: config.as_str().to_string(),
                    origin: source.origin().ok_or_else(|| unsendable("a series scan"))?,
                },
                time_column: source.time_column().to_string(),
                describe: source.describe(),
                ranges: ranges.ranges().to_vec(),
                kept: scan.versions().0,
                total: scan.versions().1,
                time_columns: scan
                    .input()
                    .data_source()
                    .downcast_ref::<FileScanConfig>()
                    .map(crate::union::file_time_columns)
                    .unwrap_or_default(),
            };
            let body = match inline {
                true => PhysicalPlanNode::try_from_physical_plan(input, self)?.encode_to_vec(),
                false => Vec::new(),
            };
            return frame(&header, &body, buf);
        }
        if let Some(exec) = node.downcast_ref::<LastWriterWinsExec>() {
            let ((time, key, rank), keep, (versions, runs), scope) = exec.parts();
            let header = ExecNode::LastWriterWins {
                time,
                key,
                rank,
                keep,
                versions,
                runs,
                scope: scope
                    .map(|s| scope_node(s, "a merged read of a keyed series"))
                    .transpose()?,
            };
            return frame(&header, &[], buf);
        }
        if let Some(exec) = node.downcast_ref::<ScopedExec>() {
            let header = ExecNode::Scoped(scope_node(exec.scope(), "a merged read")?);
            return frame(&header, &[], buf);
        }
        if let Some(exec) = node.downcast_ref::<CollapseRunsExec>() {
            let (keys, extremes) = exec.parts();
            let ends = |wanted: Extreme| {
                (extremes.iter())
                    .filter(|(_, e)| *e == wanted)
                    .map(|&(i, _)| i)
                    .collect()
            };
            let header = ExecNode::CollapseRuns {
                keys: keys.to_vec(),
                min: ends(Extreme::Min),
                max: ends(Extreme::Max),
            };
            return frame(&header, &[], buf);
        }
        if let Some(exec) = node.downcast_ref::<RunAggregateExec>() {
            // The input goes as the node's own; the aggregation reads an
            // empty stand-in for it.
            let aggregate = exec.aggregate();
            let stand_in = Arc::new(EmptyExec::new(aggregate.input().schema()));
            let aggregate = replace_children_if_necessary(
                Arc::clone(aggregate) as Arc<dyn ExecutionPlan>,
                vec![stand_in],
            )?;
            let body = PhysicalPlanNode::try_from_physical_plan(aggregate, self)?.encode_to_vec();
            return frame(&ExecNode::RunAggregate, &body, buf);
        }
        self.physical.try_encode(node, buf, proto_converter)
    }
}

/// The object store URL a Parquet scan reads from.
fn input_url(scan: &DataSourceExec) -> DfResult<ObjectStoreUrl> {
    scan.data_source()
        .downcast_ref::<datafusion::datasource::physical_plan::FileScanConfig>()
        .map(|c| c.object_store_url.clone())
        .ok_or_else(|| DataFusionError::Internal("a series scan reads files".to_string()))
}

/// The schema of the table a Parquet scan reads (before its projection).
fn scan_table_schema(scan: &DataSourceExec) -> DfResult<SchemaRef> {
    scan.data_source()
        .downcast_ref::<datafusion::datasource::physical_plan::FileScanConfig>()
        .map(|c| Arc::clone(c.file_source().table_schema().table_schema()))
        .ok_or_else(|| DataFusionError::Internal("a series scan reads files".to_string()))
}

/// Every file a Parquet scan reads.
fn scan_paths(scan: &DataSourceExec) -> Vec<ObjectPath> {
    scan.data_source()
        .downcast_ref::<datafusion::datasource::physical_plan::FileScanConfig>()
        .map(|c| {
            c.file_groups
                .iter()
                .flat_map(|g| g.iter().map(|f| f.object_meta.location.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// What a scan sent to an executor reads: the files the scheduler kept,
/// with no oplog behind them to prune further (filters still prune row
/// groups and pages).
#[derive(Debug)]
struct SentSource {
    time_column: String,
    time_type: arrow::datatypes::DataType,
    describe: String,
    paths: Vec<ObjectPath>,
    store: Arc<dyn ObjectStore>,
    origin: StoreOrigin,
}

impl ScanSource for SentSource {
    fn time_column(&self) -> &str {
        &self.time_column
    }

    fn time_type(&self) -> &arrow::datatypes::DataType {
        &self.time_type
    }

    fn kept_paths(
        &self,
        _ranges: &TimeRanges,
        _predicate: &VersionPredicate,
    ) -> crate::Result<std::collections::HashSet<ObjectPath>> {
        Ok(self.paths.iter().cloned().collect())
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn store(&self) -> Arc<dyn ObjectStore> {
        Arc::clone(&self.store)
    }

    fn origin(&self) -> Option<StoreOrigin> {
        Some(self.origin.clone())
    }
}

/// The last physical rule of a scheduler's session: each series scan
/// shows its Parquet scan as its child.
/// Ballista's scheduler gives each task a share of a stage's partitions by
/// rewriting the file scans it finds among the plan's nodes; a scan it
/// cannot see would be read whole by every task.
#[derive(Debug, Default)]
pub struct DistributeSeriesScans;

impl PhysicalOptimizerRule for DistributeSeriesScans {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            Ok(match node.downcast_ref::<SeriesScanExec>() {
                Some(scan) if !scan.input_is_visible() => {
                    Transformed::yes(Arc::new(scan.clone().with_visible_input()) as _)
                }
                _ => Transformed::no(node),
            })
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "DistributeSeriesScans"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// A physical rule of a scheduler's session, after DataFusion's: a
/// sort-preserving repartition becomes a plain one followed by a sort of
/// each partition. Ballista runs a repartition as a shuffle whose output
/// partitions gather rows from many tasks in no order, so the order a
/// sort-preserving repartition promises (which a streaming aggregate or a
/// merge above it relies on) would not hold. pond's scans declare the
/// time order of their files, which makes DataFusion plan such repartitions.
#[derive(Debug, Default)]
pub struct SortAfterShuffles;

impl PhysicalOptimizerRule for SortAfterShuffles {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(repartition) = node.downcast_ref::<RepartitionExec>() else {
                return Ok(Transformed::no(node));
            };
            let Some(order) = repartition.properties().output_ordering().cloned() else {
                return Ok(Transformed::no(node));
            };
            if !repartition.preserve_order() {
                return Ok(Transformed::no(node));
            }
            let plain = RepartitionExec::try_new(
                Arc::clone(repartition.input()),
                repartition.partitioning().clone(),
            )?;
            let sorted = SortExec::new(order, Arc::new(plain)).with_preserve_partitioning(true);
            Ok(Transformed::yes(Arc::new(sorted) as _))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "SortAfterShuffles"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// A logical rule of a cluster session, last: every table qualifier that
/// would not survive datafusion-proto becomes one that does.
/// datafusion-proto writes a column's qualifier as its text without quotes
/// (`sites/site1.temperature` for `"sites/site1".temperature`) and reads it
/// back by parsing that text, which gives another name, so the scheduler
/// cannot resolve the plan's columns. The rule renames such a qualifier,
/// everywhere in the plan, to the single name its text parses back to.
#[derive(Debug, Default)]
pub struct ProtoSafeQualifiers;

/// The name `name`'s qualifier becomes, if it does not survive
/// datafusion-proto and its text as one name does.
fn proto_safe(name: &TableReference) -> Option<TableReference> {
    let text = name.to_string();
    if TableReference::from(text.as_str()) == *name {
        return None;
    }
    let bare = TableReference::bare(text.clone());
    (TableReference::from(text.as_str()) == bare).then_some(bare)
}

fn proto_safe_columns(expr: Expr) -> DfResult<Transformed<Expr>> {
    expr.transform(|e| {
        Ok(match e {
            Expr::Column(Column {
                relation: Some(relation),
                name,
                spans,
            }) => match proto_safe(&relation) {
                Some(safe) => Transformed::yes(Expr::Column(Column {
                    relation: Some(safe),
                    name,
                    spans,
                })),
                None => Transformed::no(Expr::Column(Column {
                    relation: Some(relation),
                    name,
                    spans,
                })),
            },
            other => Transformed::no(other),
        })
    })
}

impl OptimizerRule for ProtoSafeQualifiers {
    fn name(&self) -> &str {
        "ProtoSafeQualifiers"
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> DfResult<Transformed<LogicalPlan>> {
        let schema = Arc::clone(plan.schema());
        let renamed = plan.transform_up_with_subqueries(|node| {
            if let LogicalPlan::TableScan(scan) = &node
                && let Some(safe) = proto_safe(&scan.table_name)
            {
                let filters = scan
                    .filters
                    .iter()
                    .cloned()
                    .map(|f| proto_safe_columns(f).map(|t| t.data))
                    .collect::<DfResult<Vec<_>>>()?;
                let renamed = TableScanBuilder::new(safe, Arc::clone(&scan.source))
                    .with_projection(scan.projection.clone())
                    .with_filters(filters)
                    .with_fetch(scan.fetch)
                    .with_statistics_requests(scan.statistics_requests.clone())
                    .build()?;
                return Ok(Transformed::yes(LogicalPlan::TableScan(renamed)));
            }
            let rewritten = node.map_expressions(proto_safe_columns)?;
            if rewritten.transformed {
                Ok(Transformed::yes(rewritten.data.recompute_schema()?))
            } else {
                Ok(rewritten)
            }
        })?;
        if !renamed.transformed || renamed.data.schema() == &schema {
            return Ok(renamed);
        }
        // The plan's output keeps its names: a projection gives its columns
        // their qualifiers back (an alias's qualifier survives datafusion-proto).
        let plan = renamed.data;
        let exprs = plan
            .schema()
            .columns()
            .into_iter()
            .zip(schema.iter())
            .map(|(column, (qualifier, field))| {
                Expr::Column(column).alias_qualified(qualifier.cloned(), field.name())
            })
            .collect::<Vec<_>>();
        let projection = Projection::try_new(exprs, Arc::new(plan))?;
        Ok(Transformed::yes(LogicalPlan::Projection(projection)))
    }
}

/// A Ballista session configuration with `codec` as its logical and
/// physical extension codec, pond's session options (`pond.as_of`), and
/// Ballista's static planner: its adaptive planner (the default) plans
/// with a fixed list of physical rules instead of the session's, so
/// neither [`SeriesTimePruning`] nor [`DistributeSeriesScans`] would run,
/// and every task would read each series scan whole.
pub fn session_config(codec: Arc<PondCodec>) -> SessionConfig {
    SessionConfig::new_with_ballista()
        .with_ballista_logical_extension_codec(Arc::clone(&codec) as _)
        .with_ballista_physical_extension_codec(codec as _)
        .with_ballista_adaptive_query_planner(false)
        .with_option_extension(PondSessionOptions::default())
}

/// Ballista's session state for `config`, with pond's logical rules
/// [`ExactTimeComparisons`](crate::ExactTimeComparisons) (first) and
/// [`ProtoSafeQualifiers`] (last), and physical rules [`SeriesTimePruning`],
/// [`SortAfterShuffles`] and, last, [`DistributeSeriesScans`]: what a
/// client and a scheduler plan queries in.
pub fn session_state(config: SessionConfig) -> DfResult<SessionState> {
    let state = ballista_core::utils::default_session_builder(config)?;
    let mut rules = crate::catalog::exact_time_rules(&state);
    rules.push(Arc::new(ProtoSafeQualifiers));
    Ok(SessionStateBuilder::new_from_existing(state)
        .with_optimizer_rules(rules)
        .with_physical_optimizer_rule(Arc::new(SeriesTimePruning::new()))
        .with_physical_optimizer_rule(Arc::new(SortAfterShuffles))
        .with_physical_optimizer_rule(Arc::new(DistributeSeriesScans))
        .build())
}

/// A session whose queries run on the Ballista cluster whose scheduler is
/// at `url` (`df://host:port`), with `pond` installed as by
/// [`crate::register`]: its catalog, table functions and rule.
pub async fn remote(url: &str, pond: Arc<Pond>) -> DfResult<SessionContext> {
    let codec = Arc::new(PondCodec::new().with_pond(Arc::clone(&pond)));
    let state = session_state(session_config(codec))?;
    let ctx = SessionContext::remote_with_state(url, state).await?;
    install(&ctx, pond)?;
    Ok(ctx)
}

/// [`crate::register`], and the pond's store in `pond.stores`, which the
/// session's jobs carry to executors.
fn install(ctx: &SessionContext, pond: Arc<Pond>) -> DfResult<()> {
    let stores = vec![ScopeNode {
        url: crate::provider::store_url(&pond)?.as_str().to_string(),
        origin: pond.origin(),
    }];
    let stores =
        serde_json::to_string(&stores).map_err(|e| DataFusionError::External(Box::new(e)))?;
    crate::register(ctx, pond);
    ctx.state_ref()
        .write()
        .config_mut()
        .options_mut()
        .set("pond.stores", &stores)
}

/// A session on a Ballista cluster in this process (Ballista's standalone
/// mode: a scheduler and an executor on 127.0.0.1, on ports the system
/// picks), with `pond` installed as by [`crate::register`]. Plans still go
/// through the codecs and gRPC, as on a real cluster.
pub async fn standalone(pond: Arc<Pond>) -> DfResult<SessionContext> {
    let codec = Arc::new(PondCodec::new().with_pond(Arc::clone(&pond)));
    let state = session_state(session_config(codec))?;
    let ctx = SessionContext::standalone_with_state(state).await?;
    install(&ctx, pond)?;
    Ok(ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_leave_protobuf_alone() {
        let mut buf = Vec::new();
        frame(&vec![1, 2, 3], b"body", &mut buf).unwrap();
        let (header, body) = unframe::<Vec<i32>>(&buf).unwrap().unwrap();
        assert_eq!((header, body), (vec![1, 2, 3], &b"body"[..]));
        // A protobuf message (field 1, varint 150) is not pond's.
        assert!(unframe::<Vec<i32>>(&[0x08, 0x96, 0x01]).unwrap().is_none());
        // Cut short, pond's frame is an error, not someone else's message.
        assert!(unframe::<Vec<i32>>(&buf[..TAG.len() + 3]).is_err());
    }
}
