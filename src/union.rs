//! `series_union(pattern)`: every series whose path matches a pattern as one
//! table, read by one Parquet scan.
//!
//! The table's columns are `series` (the path, dictionary-encoded), `ts`
//! (each series' time column as `Timestamp(µs, UTC)`), then the other columns
//! of the series by name, in the order they first appear (series in path
//! order), NULL in the rows of a series that lacks one. A column with two
//! types in two series is a planning error that names both.
//!
//! A scan prunes at two levels. Filters on `series` alone remove whole
//! series before their versions are looked up; time filters then prune the
//! versions of each remaining series through its oplog index, as for one
//! series, including the filters that only exist in the physical plan
//! ([`crate::SeriesTimePruning`], dynamic filters).
//!
//! The kept files of all series are read by one DataFusion Parquet scan over
//! the union's schema, with `series` as a partition-style column whose value
//! each file carries. DataFusion's expression adapter fills the columns a
//! file lacks with NULL and casts; the time column, which has its own name
//! in every series, is mapped to `ts` by [`UnionExprAdapter`]. It learns the
//! name from the file's metadata, to which [`TimeColumnReaderFactory`] adds
//! it as each file is opened (an adapter sees schemas, not files).
//! Overlapping versions of keyed series and versions under deletes are read
//! by their series' merged scan (see [`crate::lww`]) beside the one scan.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, DictionaryArray, RecordBatch, StringArray};
use arrow::compute::SortOptions;
use arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef, TimeUnit, UInt16Type};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl};
use datafusion::common::metadata::FieldMetadata;
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::common::{DFSchema, ScalarValue, Statistics, internal_err, plan_err};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::FileScanConfigBuilder;
use datafusion::datasource::physical_plan::parquet::ParquetFileReaderFactory;
use datafusion::datasource::table_schema::TableSchema;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_expr::expressions::{BinaryExpr, CastExpr, Column, Literal};
use datafusion::physical_expr::{LexOrdering, PhysicalExpr, PhysicalSortExpr};
use datafusion::physical_expr_adapter::{
    DefaultPhysicalExprAdapterFactory, PhysicalExprAdapter, PhysicalExprAdapterFactory,
};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::union::UnionExec;
use futures::StreamExt;
use object_store::path::Path as ObjectPath;
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::file::metadata::{FileMetaData, KeyValue, ParquetMetaData, ParquetMetaDataBuilder};

use crate::error::Result;
use crate::index::FileInfo;
use crate::path::SeriesPattern;
use crate::pond::Pond;
use crate::provider::{
    SeriesTable, filtered, parquet_source, physical_expr, rows_of_no_column, store_url,
    time_filter_pushdown, unqualified,
};
use crate::pruning::versions::VersionPredicate;
use crate::pruning::{TimeRanges, exact_range, exact_time_range, time_ranges};
use crate::reader::{AdjustMetadata, CachedReaderFactory, Footers};
use crate::scan::{ScanSource, SeriesScanExec, chunks};
use crate::store::RequestCounter;
use crate::time::{native_lower_bound, native_upper_bound, timestamp_scalar};
use crate::udtf::path_argument;

/// The union's column of series paths.
pub const SERIES_COLUMN: &str = "series";
/// The union's time column.
pub const TIME_COLUMN: &str = "ts";

/// The file metadata key under which [`TimeColumnReaderFactory`] tells
/// [`UnionExprAdapter`] the name of a file's time column.
const TIME_COLUMN_KEY: &str = "pond.series_union.time_column";
/// The metadata key that marks where `ts` stands while DataFusion's adapter
/// rewrites the other columns of an expression.
const TIME_MARKER_KEY: &str = "pond.series_union.time";

/// How many members a count from statistics looks at at once (see
/// `SeriesTable::rows_within`).
const MEMBERS_AT_ONCE: usize = 8;

/// `series_union(pattern)`: the series whose paths match `pattern` (see
/// [`SeriesPattern`]) as one table, a [`SeriesUnion`]. Installed by
/// [`crate::register`].
#[derive(Debug)]
pub struct SeriesUnionFunction {
    pond: Arc<Pond>,
}

impl SeriesUnionFunction {
    /// The function over `pond`.
    pub fn new(pond: Arc<Pond>) -> Self {
        Self { pond }
    }
}

impl TableFunctionImpl for SeriesUnionFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> DfResult<Arc<dyn TableProvider>> {
        let [pattern] = args.exprs() else {
            return plan_err!(
                "series_union(pattern) takes 1 argument, got {}",
                args.exprs().len()
            );
        };
        let text = path_argument("series_union", pattern)?;
        let pattern = match SeriesPattern::parse(&text) {
            Ok(pattern) => pattern,
            Err(e) => return plan_err!("series_union: {e}"),
        };
        // Series another process created since the last refresh match too.
        let refreshing = Arc::clone(&self.pond);
        crate::runtime::block_on(async move { refreshing.refresh().await })??;
        let members = self
            .pond
            .series_paths()
            .into_iter()
            .filter(|path| pattern.matches(path))
            .map(|path| SeriesTable::try_new(Arc::clone(&self.pond), &path))
            .collect::<Result<Vec<_>>>()?;
        Ok(Arc::new(SeriesUnion::try_new(
            Arc::clone(&self.pond),
            text,
            members,
        )?))
    }
}

/// The series matching a pattern as one table: `series`, `ts`, then the
/// other columns of the series by name, read by one Parquet scan (see
/// [`SeriesUnionFunction`]).
#[derive(Debug, Clone)]
pub struct SeriesUnion {
    pond: Arc<Pond>,
    pattern: String,
    /// The matching series, in path order.
    members: Vec<SeriesTable>,
    /// `series`, `ts`, then the other columns.
    schema: SchemaRef,
}

impl SeriesUnion {
    /// The union of `members` (series in path order), which matched
    /// `pattern`; an error if two of them have a column of one name and two
    /// types.
    pub(crate) fn try_new(
        pond: Arc<Pond>,
        pattern: String,
        members: Vec<SeriesTable>,
    ) -> DfResult<Self> {
        let mut fields = vec![
            Field::new(SERIES_COLUMN, series_type(), false),
            Field::new(TIME_COLUMN, time_type(), false),
        ];
        let mut owner: HashMap<String, (usize, &str)> = HashMap::new();
        for member in &members {
            for field in member.table_schema().fields() {
                let name = field.name();
                if name == member.timestamp_column() {
                    continue;
                }
                if name == SERIES_COLUMN || name == TIME_COLUMN {
                    return plan_err!(
                        "series_union: series {} has a column named {name}, which the union \
                         uses for {}",
                        member.path(),
                        if name == SERIES_COLUMN {
                            "the series' paths"
                        } else {
                            "the time of each row"
                        }
                    );
                }
                match owner.get(name.as_str()) {
                    Some(&(i, first)) if fields[i].data_type() != field.data_type() => {
                        return plan_err!(
                            "series_union: column {name} is {} in series {first} but {} in \
                             series {}",
                            fields[i].data_type(),
                            field.data_type(),
                            member.path()
                        );
                    }
                    Some(_) => {}
                    None => {
                        owner.insert(name.clone(), (fields.len(), member.path()));
                        fields.push(Field::new(name, field.data_type().clone(), true));
                    }
                }
            }
        }
        Ok(Self {
            pond,
            pattern,
            members,
            schema: Arc::new(Schema::new(fields)),
        })
    }

    /// The pattern, and the series it matched.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    pub(crate) fn parts(&self) -> (&Arc<Pond>, &str, &[SeriesTable]) {
        (&self.pond, &self.pattern, &self.members)
    }

    /// The members that the filters on `series` alone keep.
    fn members_kept(&self, state: &dyn Session, filters: &[Expr]) -> DfResult<Vec<&SeriesTable>> {
        let on_series: Vec<&Expr> = filters
            .iter()
            .filter(|f| {
                let columns = f.column_refs();
                !columns.is_empty() && columns.iter().all(|c| c.name == SERIES_COLUMN)
            })
            .collect();
        if on_series.is_empty() || self.members.is_empty() {
            return Ok(self.members.iter().collect());
        }
        let schema = Arc::new(Schema::new(vec![self.schema.field(0).clone()]));
        let df_schema = DFSchema::try_from(Arc::clone(&schema))?;
        let exprs = (on_series.into_iter())
            .map(|filter| physical_expr(state, filter.clone(), &df_schema))
            .collect::<DfResult<Vec<_>>>()?;
        let mut keep = Vec::with_capacity(self.members.len());
        // The series column's dictionary keys are 16 bits: the paths go in
        // batches of as many as they can tell apart.
        for members in self.members.chunks(usize::from(u16::MAX) + 1) {
            let paths = StringArray::from_iter_values(members.iter().map(|m| m.path()));
            let keys: Vec<u16> = (0..=u16::MAX).take(members.len()).collect();
            let column: ArrayRef = Arc::new(DictionaryArray::<UInt16Type>::try_new(
                keys.into(),
                Arc::new(paths),
            )?);
            let batch = RecordBatch::try_new(Arc::clone(&schema), vec![column])?;
            let mut kept = vec![true; members.len()];
            for expr in &exprs {
                let result = expr.evaluate(&batch)?.into_array(batch.num_rows())?;
                let Some(result) = result.as_any().downcast_ref::<BooleanArray>() else {
                    return internal_err!("series_union: a filter on series is not a boolean");
                };
                for (i, keep) in kept.iter_mut().enumerate() {
                    *keep &= result.is_valid(i) && result.value(i);
                }
            }
            keep.extend(kept);
        }
        Ok(self
            .members
            .iter()
            .zip(keep)
            .filter_map(|(m, keep)| keep.then_some(m))
            .collect())
    }

    /// The filters as a [`VersionPredicate`] on the union's schema, whose
    /// time column all series' oplog bounds can be compared with.
    fn version_predicate(&self, state: &dyn Session, filters: &[Expr]) -> VersionPredicate {
        let Ok(df_schema) = DFSchema::try_from(Arc::clone(&self.schema)) else {
            return VersionPredicate::keep_all();
        };
        // A filter that cannot be planned here prunes nothing: leaving it
        // out keeps a superset.
        let physical: Vec<_> = filters
            .iter()
            .filter_map(|f| physical_expr(state, f.clone(), &df_schema).ok())
            .collect();
        VersionPredicate::new(&physical, &self.schema, TIME_COLUMN)
    }

    /// The files of the scan: each kept version of `member` with the
    /// union's statistics, its series as partition value and its time
    /// column's name for [`TimeColumnReaderFactory`].
    fn member_files(
        &self,
        scan_schema: &Schema,
        member: &SeriesTable,
        versions: &[FileInfo],
    ) -> Vec<PartitionedFile> {
        let series = series_value(member.path());
        let time_column = TimeColumn(Arc::from(member.timestamp_column()));
        // Whole microseconds are exact in every unit but the nanosecond,
        // where the oplog rounds outwards.
        let exact = !matches!(
            member.time_type(),
            DataType::Timestamp(TimeUnit::Nanosecond, _)
        );
        let file_columns = self.schema.fields().len() - 1;
        versions
            .iter()
            .map(|f| {
                // The table's columns as the scan orders them: the files'
                // columns (`ts` first), then `series`.
                let mut stats = Statistics::new_unknown(scan_schema);
                stats.num_rows = Precision::Exact(f.row_count as usize);
                stats.total_byte_size = Precision::Inexact(f.size as usize);
                for (name, n) in &f.distinct {
                    if name == member.timestamp_column() {
                        continue;
                    }
                    if let Ok(i) = self.schema.index_of(name) {
                        stats.column_statistics[i - 1].distinct_count =
                            Precision::Inexact(*n as usize);
                    }
                }
                let ts = &mut stats.column_statistics[0];
                ts.null_count = Precision::Exact(0);
                let bound = |us: i64| {
                    let value = ScalarValue::TimestampMicrosecond(Some(us), Some("UTC".into()));
                    if exact {
                        Precision::Exact(value)
                    } else {
                        Precision::Inexact(value)
                    }
                };
                ts.min_value = bound(f.min_event_time);
                ts.max_value = bound(f.max_event_time);
                let path = &mut stats.column_statistics[file_columns];
                path.null_count = Precision::Exact(0);
                path.min_value = Precision::Exact(series.clone());
                path.max_value = Precision::Exact(series.clone());
                path.distinct_count = Precision::Exact(1);
                let mut file = PartitionedFile::new(f.file_path.clone(), f.size as u64)
                    .with_statistics(Arc::new(stats));
                file.partition_values = vec![series.clone()];
                file.extensions.insert(time_column.clone());
                file
            })
            .collect()
    }

    /// The Parquet scan's table schema, in its order: the files' columns
    /// (`ts`, then the others), then `series`.
    fn scan_schema(&self) -> Schema {
        let fields: Vec<FieldRef> = self.schema.fields().iter().skip(1).cloned().collect();
        let mut all = fields;
        all.push(Arc::clone(&self.schema.fields()[0]));
        Schema::new(all)
    }

    /// The rows of `member`'s `runs` (see [`SeriesTable::merged_scan`]) in
    /// the union's columns `projection`.
    fn member_merged(
        &self,
        state: &dyn Session,
        member: &SeriesTable,
        reads: (&[Vec<FileInfo>], &[Arc<crate::index::Tombstone>]),
        projection: &[usize],
        requests: &RequestCounter,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let own = member.table_schema();
        let time = member.timestamp_column();
        // The name of the union's column `name` in the member: its time
        // column for `ts`; none for `series`, nor for another series'
        // column that has the name of this one's time column.
        let in_member = |name: &str| -> Option<String> {
            match name {
                TIME_COLUMN => Some(time.to_string()),
                SERIES_COLUMN => None,
                name if name == time => None,
                name => Some(name.to_string()),
            }
        };
        // The member's own columns the union's projection needs.
        let mut columns: Vec<usize> = Vec::new();
        for &i in projection {
            if let Some(j) =
                in_member(self.schema.field(i).name()).and_then(|name| own.index_of(&name).ok())
                && !columns.contains(&j)
            {
                columns.push(j);
            }
        }
        let url = store_url(&self.pond)?;
        let merged = member.merged_scan(state, &[], reads, url, &columns, requests)?;
        let input = merged.schema();
        let exprs = projection
            .iter()
            .map(|&i| {
                let field = self.schema.field(i);
                let name = field.name().as_str();
                let column = in_member(name)
                    .and_then(|own_name| Some((input.index_of(&own_name).ok()?, own_name)));
                let expr: Arc<dyn PhysicalExpr> = match column {
                    _ if name == SERIES_COLUMN => {
                        Arc::new(Literal::new(series_value(member.path())))
                    }
                    Some((j, own_name)) => {
                        let column: Arc<dyn PhysicalExpr> = Arc::new(Column::new(&own_name, j));
                        let own = input.field(j).data_type();
                        if own == field.data_type() {
                            column
                        } else if name == TIME_COLUMN {
                            micros_of(column, own)
                        } else {
                            Arc::new(CastExpr::new(column, field.data_type().clone(), None))
                        }
                    }
                    None => Arc::new(Literal::new(ScalarValue::try_from(field.data_type())?)),
                };
                Ok((expr, name.to_string()))
            })
            .collect::<DfResult<Vec<_>>>()?;
        Ok(Arc::new(ProjectionExec::try_new(exprs, merged)?))
    }
}

#[async_trait]
impl TableProvider for SeriesUnion {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        // As a series' table: the scan applies comparisons of `ts` with a
        // constant itself, where a version it reads has rows outside them;
        // DataFusion keeps filtering rows by the other filters.
        Ok((filters.iter())
            .map(|f| time_filter_pushdown(f, TIME_COLUMN, &time_type()))
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        self.pond.refresh().await?;
        let filters: Vec<Expr> = filters.iter().cloned().map(unqualified).collect();
        let members = self
            .members_kept(state, &filters)?
            .into_iter()
            .map(|m| m.pinned(state))
            .collect::<DfResult<Vec<_>>>()?;

        // The versions each series keeps, as for one series; of keyed
        // series, only the time filters (on a key column) choose the runs.
        let ranges = time_ranges(&filters, TIME_COLUMN, &time_type());
        let predicate = self.version_predicate(state, &filters);
        let on_time: Vec<Expr> = filters
            .iter()
            .filter(|f| {
                let columns = f.column_refs();
                !columns.is_empty() && columns.iter().all(|c| c.name == TIME_COLUMN)
            })
            .cloned()
            .collect();
        let key_ranges = time_ranges(&on_time, TIME_COLUMN, &time_type());
        let scan_schema = Arc::new(self.scan_schema());
        let mut files = Vec::new();
        let mut merged = Vec::new();
        let (mut kept, mut total) = (0, 0);
        // Each file is sorted by time and holds one series: if each series'
        // versions do not overlap, files in (series, time) order are sorted
        // by (series, ts) as a whole.
        let mut ordered = true;
        // The versions each member reads as they are.
        let mut plain: Vec<(&SeriesTable, Vec<FileInfo>)> = Vec::new();
        for member in &members {
            let (versions, n) = member.kept_versions(&ranges, &predicate)?;
            total += n;
            let (singles, runs, deletes) = member.split_reads_within(&key_ranges, versions)?;
            kept += singles.len();
            ordered &= singles.iter().all(FileInfo::is_time_sorted)
                && singles
                    .windows(2)
                    .all(|w| w[0].max_event_time < w[1].min_event_time);
            files.extend(self.member_files(&scan_schema, member, &singles));
            plain.push((member, singles));
            if !runs.is_empty() {
                merged.push((member, runs, deletes));
            }
        }

        let url = store_url(&self.pond)?;
        state
            .runtime_env()
            .register_object_store(url.as_ref(), self.pond.object_store());
        let file_columns = scan_schema.fields().len() - 1;
        let table_schema = TableSchema::builder(Arc::new(Schema::new(
            scan_schema.fields()[..file_columns].to_vec(),
        )))
        .with_table_partition_cols(vec![Arc::clone(&scan_schema.fields()[file_columns])])
        .build();
        let requests = RequestCounter::default();
        let reader = TimeColumnReaderFactory {
            inner: CachedReaderFactory::new(
                requests.wrap(self.pond.object_store()),
                state.runtime_env(),
            ),
        };
        let source = parquet_source(state, table_schema, Arc::new(reader));
        let all: Vec<usize> = (0..self.schema.fields().len()).collect();
        let asked = projection.cloned().unwrap_or(all);
        // The filters DataFusion left to the scan that a version read has
        // rows outside of (see `SeriesTable::plan_scan`). The oplog bounds
        // of a nanosecond series are rounded outwards, and its `ts` here is
        // its time in whole µs, which lies within them too.
        let within = |range: (i64, i64)| {
            let singles = plain.iter().flat_map(|(_, singles)| singles);
            let runs = merged.iter().flat_map(|(_, runs, _)| runs.iter().flatten());
            singles.chain(runs).all(|f| f.lies_within(range))
        };
        let residual = conjunction(
            (filters.iter())
                .filter(|f| {
                    exact_time_range(f, TIME_COLUMN, &time_type()).is_some_and(|r| !within(r))
                })
                .cloned(),
        );
        // A scan of no column, its rows counted from statistics, as a
        // series' (see `SeriesTable::rows_within`).
        if (residual.is_some() || files.is_empty())
            && asked.is_empty()
            && merged.is_empty()
            && let Some(range) = exact_range(&filters, (TIME_COLUMN, &time_type()), None)
        {
            // The members a few at a time, as their footers are requests.
            let counts: Vec<_> = (plain.iter())
                .map(|(member, singles)| member.rows_within(state, range, singles))
                .collect();
            let mut counts = futures::stream::iter(counts).buffered(MEMBERS_AT_ONCE);
            let mut rows = Some(0_u64);
            while let Some(counted) = counts.next().await {
                rows = rows.zip(counted?).map(|(a, b)| a + b);
                if rows.is_none() {
                    break;
                }
            }
            if let Some(rows) = rows {
                let batch_size = state.config().batch_size();
                return rows_of_no_column(&self.schema, rows, limit, batch_size);
            }
        }
        let mut wanted = asked.clone();
        let ts = self.schema.index_of(TIME_COLUMN)?;
        if residual.is_some() && !wanted.contains(&ts) {
            wanted.push(ts);
        }
        // The union's column i is the scan's i - 1; `series` is its last.
        let scanned: Vec<usize> = wanted
            .iter()
            .map(|&i| if i == 0 { file_columns } else { i - 1 })
            .collect();
        let mut config = FileScanConfigBuilder::new(url, Arc::new(source))
            .with_projection_indices(Some(scanned))?
            .with_limit(if residual.is_some() { None } else { limit })
            .with_expr_adapter(Some(Arc::new(UnionExprAdapterFactory)));
        if ordered {
            let sort = |name: &str| -> DfResult<PhysicalSortExpr> {
                Ok(PhysicalSortExpr::new(
                    Arc::new(Column::new(name, scan_schema.index_of(name)?)),
                    SortOptions::new(false, false),
                ))
            };
            let ordering = LexOrdering::new([sort(SERIES_COLUMN)?, sort(TIME_COLUMN)?]);
            config = config.with_output_ordering(ordering.into_iter().collect());
        }
        let partitions = state.config().target_partitions().max(1);
        let groups = partitions.min(files.len()).max(1);
        let source = UnionSource {
            pattern: self.pattern.clone(),
            matched: self.members.len(),
            members: members.clone(),
            store: self.pond.object_store(),
            origin: self.pond.origin(),
        };
        let scan = SeriesScanExec::try_new(
            Arc::new(source),
            requests.clone(),
            ranges,
            kept,
            total,
            config.build(),
            chunks(files, groups),
        )?
        .pruned_by(predicate.filters())
        .with_footers(Footers::of(state.runtime_env()));
        let mut plan: Arc<dyn ExecutionPlan> = Arc::new(scan);
        if !merged.is_empty() {
            let mut inputs = vec![plan];
            for (member, runs, deletes) in merged {
                inputs.push(self.member_merged(
                    state,
                    member,
                    (&runs, &deletes),
                    &wanted,
                    &requests,
                )?);
            }
            plan = UnionExec::try_new(inputs)?;
        }
        filtered(state, plan, residual, (&self.schema, &asked), limit)
    }
}

/// The series a union's scan reads, for [`SeriesScanExec`].
#[derive(Debug)]
struct UnionSource {
    pattern: String,
    /// How many series the pattern matched.
    matched: usize,
    /// Those the filters on `series` kept, pinned to the state the scan
    /// planned on.
    members: Vec<SeriesTable>,
    /// The pond's store.
    store: Arc<dyn object_store::ObjectStore>,
    origin: crate::scope::StoreOrigin,
}

impl ScanSource for UnionSource {
    fn time_column(&self) -> &str {
        TIME_COLUMN
    }

    fn time_type(&self) -> &DataType {
        static TIME: std::sync::LazyLock<DataType> = std::sync::LazyLock::new(time_type);
        &TIME
    }

    fn kept_paths(
        &self,
        ranges: &TimeRanges,
        predicate: &VersionPredicate,
    ) -> Result<HashSet<ObjectPath>> {
        let mut paths = HashSet::new();
        for member in &self.members {
            paths.extend(member.kept_paths(ranges, predicate)?);
        }
        Ok(paths)
    }

    fn describe(&self) -> String {
        format!(
            "series_union={}, series={}/{}",
            self.pattern,
            self.members.len(),
            self.matched
        )
    }

    fn store(&self) -> Arc<dyn object_store::ObjectStore> {
        Arc::clone(&self.store)
    }

    fn origin(&self) -> Option<crate::scope::StoreOrigin> {
        Some(self.origin.clone())
    }
}

/// The type of the union's `series` column, as DataFusion types
/// partition-style columns.
fn series_type() -> DataType {
    DataType::Dictionary(Box::new(DataType::UInt16), Box::new(DataType::Utf8))
}

/// The type of the union's `ts` column.
fn time_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// `path` as a value of the `series` column.
fn series_value(path: &str) -> ScalarValue {
    ScalarValue::Dictionary(
        Box::new(DataType::UInt16),
        Box::new(ScalarValue::Utf8(Some(path.to_string()))),
    )
}

/// The name of the time column of a file's series, carried by the file
/// through the scan to [`TimeColumnReaderFactory`].
#[derive(Debug, Clone)]
struct TimeColumn(Arc<str>);

/// Opens the union's files with pond's cached reader and adds to each
/// file's metadata the name of its time column (see [`TimeColumn`]), which
/// [`UnionExprAdapter`] reads from the file's schema.
#[derive(Debug)]
struct TimeColumnReaderFactory {
    inner: CachedReaderFactory,
}

impl ParquetFileReaderFactory for TimeColumnReaderFactory {
    fn create_reader(
        &self,
        partition_index: usize,
        partitioned_file: PartitionedFile,
        metadata_size_hint: Option<usize>,
        metrics: &ExecutionPlanMetricsSet,
    ) -> DfResult<Box<dyn AsyncFileReader + Send>> {
        let adjust = partitioned_file
            .extensions
            .get::<TimeColumn>()
            .cloned()
            .map(|TimeColumn(column)| -> AdjustMetadata {
                Box::new(move |metadata| with_time_column(metadata, &column))
            });
        self.inner.create_adjusted_reader(
            partition_index,
            partitioned_file,
            metadata_size_hint,
            metrics,
            adjust,
        )
    }
}

/// `metadata` with [`TIME_COLUMN_KEY`] set to `column`.
fn with_time_column(metadata: &ParquetMetaData, column: &str) -> Arc<ParquetMetaData> {
    let file = metadata.file_metadata();
    let mut pairs: Vec<KeyValue> = file
        .key_value_metadata()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|kv| kv.key != TIME_COLUMN_KEY)
        .collect();
    pairs.push(KeyValue::new(
        TIME_COLUMN_KEY.to_string(),
        column.to_string(),
    ));
    let file = FileMetaData::new(
        file.version(),
        file.num_rows(),
        file.created_by().map(str::to_string),
        Some(pairs),
        file.schema_descr_ptr(),
        file.column_orders().cloned(),
    );
    Arc::new(
        ParquetMetaDataBuilder::new(file)
            .set_row_groups(metadata.row_groups().to_vec())
            .set_column_index(metadata.column_index().cloned())
            .set_offset_index(metadata.offset_index().cloned())
            .build(),
    )
}

/// `column`, a time column of type `data_type`, as the union's `ts` (µs in
/// UTC). Seconds and milliseconds are scaled as integers rather than cast:
/// DataFusion 55's simplifiers turn `CAST(t AS µs) < c` into
/// `t < CAST(c AS s)`, truncating `c` toward zero, and pruning by that
/// drops the row groups and pages of rows that match (wherever a filter
/// on `ts` reaches a member's Parquet scan unrewritten: a TopK's dynamic
/// filter, or a filter pushed through a merged member's projection; see
/// `UnionExprAdapter::in_file_unit` for the others). Against an integer
/// they are exact, and prune nothing. A cast of µs (in another zone) or
/// ns (which they leave alone) is exact as it is.
fn micros_of(column: Arc<dyn PhysicalExpr>, data_type: &DataType) -> Arc<dyn PhysicalExpr> {
    let per_unit = match data_type {
        DataType::Timestamp(TimeUnit::Second, _) => 1_000_000,
        DataType::Timestamp(TimeUnit::Millisecond, _) => 1_000,
        _ => return Arc::new(CastExpr::new(column, time_type(), None)),
    };
    let raw = Arc::new(CastExpr::new(column, DataType::Int64, None));
    let scaled = Arc::new(BinaryExpr::new(
        raw,
        Operator::Multiply,
        Arc::new(Literal::new(ScalarValue::Int64(Some(per_unit)))),
    ));
    Arc::new(CastExpr::new(scaled, time_type(), None))
}

/// Creates a [`UnionExprAdapter`] for each file the union's scan opens.
#[derive(Debug)]
struct UnionExprAdapterFactory;

impl PhysicalExprAdapterFactory for UnionExprAdapterFactory {
    fn create(
        &self,
        logical_file_schema: SchemaRef,
        physical_file_schema: SchemaRef,
    ) -> DfResult<Arc<dyn PhysicalExprAdapter>> {
        let Some(name) = physical_file_schema
            .metadata()
            .get(TIME_COLUMN_KEY)
            .cloned()
        else {
            return internal_err!("series_union: a file was opened without its time column's name");
        };
        let Some((index, field)) = physical_file_schema.column_with_name(&name) else {
            return internal_err!("series_union: a file has no time column {name}");
        };
        let target = logical_file_schema.field_with_name(TIME_COLUMN)?;
        let column: Arc<dyn PhysicalExpr> = Arc::new(Column::new(&name, index));
        let time = if field.data_type() == target.data_type() {
            Arc::clone(&column)
        } else {
            micros_of(Arc::clone(&column), field.data_type())
        };
        // A file in seconds or milliseconds: its time compared with a µs
        // constant is compared in its own unit here (see `in_file_unit`).
        let native = match field.data_type() {
            DataType::Timestamp(unit @ (TimeUnit::Second | TimeUnit::Millisecond), _) => {
                Some((field.data_type().clone(), *unit))
            }
            _ => None,
        };
        let default = DefaultPhysicalExprAdapterFactory
            .create(Arc::clone(&logical_file_schema), physical_file_schema)?;
        Ok(Arc::new(UnionExprAdapter {
            logical_file_schema,
            time_column: name,
            column,
            time,
            native,
            default,
        }))
    }
}

/// Rewrites the union's expressions for one file: `ts` reads the file's own
/// time column (cast to microseconds in UTC), a union column that has the
/// name of this file's time column is another series' column and NULL here,
/// and DataFusion's default adapter does the rest (missing columns, casts).
#[derive(Debug)]
struct UnionExprAdapter {
    logical_file_schema: SchemaRef,
    time_column: String,
    /// The file's time column.
    column: Arc<dyn PhysicalExpr>,
    /// The expression of `ts` in this file.
    time: Arc<dyn PhysicalExpr>,
    /// The file's time type and unit, where it is seconds or milliseconds.
    native: Option<(DataType, TimeUnit)>,
    default: Arc<dyn PhysicalExprAdapter>,
}

impl UnionExprAdapter {
    /// `expr` with a comparison of `ts` (the file's time in µs) with a µs
    /// constant made a comparison of the file's own column with constants
    /// in its unit, which select the same rows and which DataFusion prunes
    /// row groups and pages by (`ts` of such a file is its value scaled,
    /// which prunes nothing; see [`micros_of`]).
    ///
    /// `x` in µs is within a bound exactly when the file's value is within
    /// the bound rounded up (`>=`, `<`) or down (`<=`, `>`) to its unit;
    /// `=` is both, so no value where the constant is not a whole one.
    /// (DataFusion 55 would round toward zero: a cast `ts < '02:00:00.000001'`
    /// pruned the page of the rows at 02:00:00 of a series in seconds.)
    fn in_file_unit(&self, expr: Arc<dyn PhysicalExpr>) -> Transformed<Arc<dyn PhysicalExpr>> {
        let Some((data_type, unit)) = &self.native else {
            return Transformed::no(expr);
        };
        let Some(binary) = expr.downcast_ref::<BinaryExpr>() else {
            return Transformed::no(expr);
        };
        let is_time = |e: &Arc<dyn PhysicalExpr>| **e == *self.time;
        let micros = |e: &Arc<dyn PhysicalExpr>| match e.downcast_ref::<Literal>()?.value() {
            ScalarValue::TimestampMicrosecond(Some(us), _) => Some(*us),
            _ => None,
        };
        let op = *binary.op();
        let (op, us) = match (micros(binary.left()), micros(binary.right())) {
            (None, Some(us)) if is_time(binary.left()) => (op, us),
            (Some(us), None) if is_time(binary.right()) => match op.swap() {
                Some(op) => (op, us),
                None => return Transformed::no(expr),
            },
            _ => return Transformed::no(expr),
        };
        let (Some(up), Some(down)) = (native_lower_bound(us, *unit), native_upper_bound(us, *unit))
        else {
            return Transformed::no(expr);
        };
        let compare = |op: Operator, value: i64| -> Arc<dyn PhysicalExpr> {
            let literal = Arc::new(Literal::new(timestamp_scalar(value, data_type)));
            Arc::new(BinaryExpr::new(Arc::clone(&self.column), op, literal))
        };
        let both = |a, join, b| -> Arc<dyn PhysicalExpr> { Arc::new(BinaryExpr::new(a, join, b)) };
        Transformed::yes(match op {
            Operator::Lt | Operator::GtEq => compare(op, up),
            Operator::LtEq | Operator::Gt => compare(op, down),
            Operator::Eq => both(
                compare(Operator::GtEq, up),
                Operator::And,
                compare(Operator::LtEq, down),
            ),
            Operator::NotEq => both(
                compare(Operator::Lt, up),
                Operator::Or,
                compare(Operator::Gt, down),
            ),
            _ => return Transformed::no(expr),
        })
    }
}

impl PhysicalExprAdapter for UnionExprAdapter {
    fn rewrite(&self, expr: Arc<dyn PhysicalExpr>) -> DfResult<Arc<dyn PhysicalExpr>> {
        let marker = || {
            let metadata = BTreeMap::from([(TIME_MARKER_KEY.to_string(), String::new())]);
            Arc::new(Literal::new_with_metadata(
                ScalarValue::try_from(time_type()).expect("a timestamp has a null"),
                Some(FieldMetadata::new(metadata)),
            )) as Arc<dyn PhysicalExpr>
        };
        let marked = expr
            .transform(|e| {
                let Some(column) = e.downcast_ref::<Column>() else {
                    return Ok(Transformed::no(e));
                };
                if column.name() == TIME_COLUMN {
                    return Ok(Transformed::yes(marker()));
                }
                if column.name() == self.time_column {
                    let field = self.logical_file_schema.field_with_name(column.name())?;
                    let null = ScalarValue::try_from(field.data_type())?;
                    return Ok(Transformed::yes(Arc::new(Literal::new(null))));
                }
                Ok(Transformed::no(e))
            })
            .data()?;
        self.default
            .rewrite(marked)?
            .transform(|e| {
                let is_marker = e.downcast_ref::<Literal>().is_some_and(|l| {
                    l.return_field(&self.logical_file_schema)
                        .is_ok_and(|f| f.metadata().contains_key(TIME_MARKER_KEY))
                });
                Ok(if is_marker {
                    Transformed::yes(Arc::clone(&self.time))
                } else {
                    Transformed::no(e)
                })
            })
            .data()?
            .transform_up(|e| Ok(self.in_file_unit(e)))
            .data()
    }
}

/// The time column of each file of a union's scan (path, column), which a
/// plan sent to another process loses with the files' extensions; empty
/// for a scan of one series.
#[cfg(feature = "cluster")]
pub(crate) fn file_time_columns(
    config: &datafusion::datasource::physical_plan::FileScanConfig,
) -> Vec<(String, String)> {
    config
        .file_groups
        .iter()
        .flat_map(|g| g.iter())
        .filter_map(|f| {
            let TimeColumn(column) = f.extensions.get::<TimeColumn>()?;
            Some((f.object_meta.location.to_string(), column.to_string()))
        })
        .collect()
}

/// A union's Parquet scan as another process decoded it, made to read as
/// the union's scan does again: each file knows its time column, read
/// through [`TimeColumnReaderFactory`] and [`UnionExprAdapterFactory`].
#[cfg(feature = "cluster")]
pub(crate) fn with_file_time_columns(
    config: &datafusion::datasource::physical_plan::FileScanConfig,
    columns: &HashMap<String, String>,
    store: Arc<dyn object_store::ObjectStore>,
    context: &datafusion::execution::TaskContext,
) -> DfResult<datafusion::datasource::physical_plan::FileScanConfig> {
    use datafusion::datasource::physical_plan::{FileGroup, ParquetSource};
    let Some(parquet) = config.file_source().downcast_ref::<ParquetSource>() else {
        return plan_err!("a series_union scan reads Parquet");
    };
    let reader = TimeColumnReaderFactory {
        inner: CachedReaderFactory::new(store, &context.runtime_env()),
    };
    let source = parquet
        .clone()
        .with_parquet_file_reader_factory(Arc::new(reader));
    let groups = config
        .file_groups
        .iter()
        .map(|group| {
            let files = group
                .iter()
                .cloned()
                .map(|mut file| {
                    if let Some(column) = columns.get(file.object_meta.location.as_ref()) {
                        file.extensions
                            .insert(TimeColumn(Arc::from(column.as_str())));
                    }
                    file
                })
                .collect::<Vec<_>>();
            FileGroup::new(files)
        })
        .collect();
    Ok(FileScanConfigBuilder::from(config.clone())
        .with_source(Arc::new(source))
        .with_file_groups(groups)
        .with_expr_adapter(Some(Arc::new(UnionExprAdapterFactory)))
        .build())
}
