//! [`PondCatalogProvider`]: every series of a pond as a table, and
//! [`register`], which installs pond into a DataFusion session.
//!
//! A series `/a/b/c` is table `c` in schema `a/b`; `/c` is table `c` in schema
//! `public`. Listings and lookups first read any new oplog commits (one
//! probe of the log when nothing changed), so series created by another
//! process appear without registering again.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::{CatalogProvider, SchemaProvider, Session};
use datafusion::common::{Constraint, plan_err};
use datafusion::config::ConfigExtension;
use datafusion::datasource::{MemTable, TableProvider, TableType};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::SessionStateBuilder;
use datafusion::optimizer::OptimizerRule;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::prelude::SessionContext;

use crate::comparisons::ExactTimeComparisons;
use crate::optimizer::SeriesTimePruning;
use crate::path::schema_and_table;
use crate::pond::AppendOptions;
use crate::pond::Pond;
use crate::provider::SeriesTable;
use crate::series::default_timestamp_column;
use crate::time::parse_time;
use crate::udtf::{SeriesListFunction, SeriesRangeFunction, SeriesVersionsFunction};
use crate::union::SeriesUnionFunction;

/// pond's settings of a DataFusion session, under the prefix `pond`:
/// `SET pond.as_of = '2026-11-01T00:00:00Z'`. [`register`] installs them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PondSessionOptions {
    /// Read every series as it was at this time: the versions committed at
    /// or before it (an RFC 3339 timestamp; no zone means UTC). Empty: as
    /// it is now. A version given to `series_range` wins.
    pub as_of: String,
    /// Set by `pond::cluster`, not by hand: the stores of the ponds a
    /// session's plans read, as JSON, so that a Ballista executor has them
    /// in its runtime before it decodes a plan.
    pub stores: String,
}

/// Written by hand rather than with DataFusion's `extensions_options!`,
/// whose entries leave out the prefix: Ballista sends a session's settings
/// to its scheduler and executors as `entries()`, and `as_of` alone would
/// not find its way back to `pond.as_of` there.
impl datafusion::config::ExtensionOptions for PondSessionOptions {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }

    fn cloned(&self) -> Box<dyn datafusion::config::ExtensionOptions> {
        Box::new(self.clone())
    }

    fn set(&mut self, key: &str, value: &str) -> DfResult<()> {
        match key {
            "as_of" => self.as_of = value.to_string(),
            "stores" => self.stores = value.to_string(),
            _ => {
                return Err(datafusion::error::DataFusionError::Configuration(format!(
                    "pond has no setting {key}: its settings are pond.as_of and pond.stores"
                )));
            }
        }
        Ok(())
    }

    fn entries(&self) -> Vec<datafusion::config::ConfigEntry> {
        vec![
            datafusion::config::ConfigEntry {
                key: "pond.as_of".to_string(),
                value: Some(self.as_of.clone()),
                description: "Read every series as it was at this time (RFC 3339); empty: now",
            },
            datafusion::config::ConfigEntry {
                key: "pond.stores".to_string(),
                value: Some(self.stores.clone()),
                description: "The stores a cluster's executors register (set by pond)",
            },
        ]
    }
}

impl ConfigExtension for PondSessionOptions {
    const PREFIX: &'static str = "pond";
}

/// The session's `pond.as_of`, if set, in µs.
pub(crate) fn session_as_of(state: &dyn Session) -> DfResult<Option<i64>> {
    let Some(options) = state
        .config_options()
        .extensions
        .get::<PondSessionOptions>()
    else {
        return Ok(None);
    };
    let text = options.as_of.trim();
    if text.is_empty() {
        return Ok(None);
    }
    match parse_time(text) {
        Some(us) => Ok(Some(us)),
        None => plan_err!("pond.as_of: {text:?} is not an RFC 3339 timestamp"),
    }
}

/// The name of the catalog [`register`] installs.
pub const CATALOG: &str = "pond";

/// The pond's series, grouped into schemas by their parent path.
#[derive(Debug)]
pub struct PondCatalogProvider {
    pond: Arc<Pond>,
}

impl PondCatalogProvider {
    /// A catalog over `pond`.
    pub fn new(pond: Arc<Pond>) -> Self {
        Self { pond }
    }
}

/// Reads new oplog commits for a listing, which DataFusion asks for
/// synchronously; a failure leaves the listing as of the last refresh.
fn refresh_for_listing(pond: &Arc<Pond>) {
    let pond = Arc::clone(pond);
    let refreshed = crate::runtime::block_on(async move { pond.refresh().await });
    if let Err(e) | Ok(Err(e)) = refreshed {
        tracing::warn!(error = %e, "cannot read new oplog commits; listing the series known so far");
    }
}

impl CatalogProvider for PondCatalogProvider {
    fn schema_names(&self) -> Vec<String> {
        refresh_for_listing(&self.pond);
        let mut names: BTreeSet<String> = self
            .pond
            .series_paths()
            .iter()
            .map(|path| schema_and_table(path).0.to_string())
            .collect();
        names.insert("public".to_string());
        names.into_iter().collect()
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        // Any name: a series may appear in it after the next refresh.
        Some(Arc::new(PondSchemaProvider {
            pond: Arc::clone(&self.pond),
            schema: name.to_string(),
        }))
    }
}

/// The series directly under one parent path.
#[derive(Debug)]
pub struct PondSchemaProvider {
    pond: Arc<Pond>,
    schema: String,
}

impl PondSchemaProvider {
    fn series_path(&self, table: &str) -> String {
        match self.schema.as_str() {
            "public" => format!("/{table}"),
            schema => format!("/{schema}/{table}"),
        }
    }
}

#[async_trait]
impl SchemaProvider for PondSchemaProvider {
    fn table_names(&self) -> Vec<String> {
        refresh_for_listing(&self.pond);
        self.pond
            .series_paths()
            .iter()
            .filter_map(|path| {
                let (schema, table) = schema_and_table(path);
                (schema == self.schema).then(|| table.to_string())
            })
            .collect()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        let path = self.series_path(name);
        if crate::path::validate_series_path(&path).is_err() {
            return Ok(None);
        }
        let refreshed = std::time::Instant::now();
        self.pond.refresh().await.map_err(DataFusionError::from)?;
        // The state, not `series_info`, which sums over every version.
        if self.pond.state(&path).is_err() {
            return Ok(None);
        }
        let table = SeriesTable::try_new(Arc::clone(&self.pond), &path)?.resolved_at(refreshed);
        Ok(Some(Arc::new(table)))
    }

    /// Without building the table: `information_schema` asks this of every
    /// table right after listing them.
    async fn table_type(&self, name: &str) -> DfResult<Option<TableType>> {
        Ok(self.table_exist(name).then_some(TableType::Base))
    }

    /// `CREATE TABLE` in the pond catalog: creates the series, with the
    /// table's rows (from `CREATE TABLE … AS SELECT` or `VALUES`) as its first
    /// version. The timestamp column is the first of `timestamp`, `ts`,
    /// `time`, `event_time`, else the first timestamp column.
    ///
    /// Only in-memory tables (what `CREATE TABLE` makes) become series; an
    /// existing series is never written to, and external tables and views
    /// belong in another catalog, since copying them into the pond would
    /// surprise whoever registered them.
    fn register_table(
        &self,
        name: String,
        table: Arc<dyn TableProvider>,
    ) -> DfResult<Option<Arc<dyn TableProvider>>> {
        let path = self.series_path(&name);
        if let Err(e) = crate::path::validate_series_path(&path) {
            return plan_err!("{e}");
        }
        if !table.is::<MemTable>() {
            return plan_err!(
                "the pond catalog holds only series; register this {} in another \
                 catalog, for example as datafusion.public.{name}",
                match table.table_type() {
                    TableType::View => "view",
                    TableType::Temporary => "temporary table",
                    TableType::Base => "external table",
                }
            );
        }
        if self.table_exist(&name) {
            return plan_err!("series {path} already exists");
        }
        let schema = table.schema();
        let Some(ts) = default_timestamp_column(&schema) else {
            return plan_err!(
                "cannot create series {path}: it needs a timestamp column (named timestamp, ts, time or event_time, or of a timestamp type)"
            );
        };
        // `PRIMARY KEY (hostname, ts)` declares a keyed series.
        let mut options = AppendOptions::default();
        for constraint in table.constraints().into_iter().flat_map(|c| c.iter()) {
            if let Constraint::PrimaryKey(columns) = constraint {
                let names = columns.iter().map(|&i| schema.field(i).name().clone());
                options = options.with_key(names);
            }
        }
        let pond = Arc::clone(&self.pond);
        // DataFusion calls this synchronously.
        let created = crate::runtime::block_on(async move {
            let batches = SessionContext::new().read_table(table)?.collect().await?;
            if batches.iter().all(|b| b.num_rows() == 0) {
                return pond
                    .create_series_with_options(&path, schema, &ts, &options)
                    .await;
            }
            let input = futures::stream::iter(batches.into_iter().map(Ok));
            pond.append_stream_with_options(&path, schema, input, &ts, &options)
                .await
                .map(|_| ())
        });
        match created {
            Ok(Ok(())) => Ok(None),
            Ok(Err(e)) | Err(e) => Err(DataFusionError::from(e)),
        }
    }

    fn table_exist(&self, name: &str) -> bool {
        self.pond.state(&self.series_path(name)).is_ok()
    }
}

/// A session's logical optimizer rules with [`ExactTimeComparisons`]
/// first, before the simplifier whose rounding it forestalls.
pub(crate) fn exact_time_rules(
    state: &datafusion::execution::SessionState,
) -> Vec<Arc<dyn OptimizerRule + Send + Sync>> {
    let mut rules: Vec<Arc<dyn OptimizerRule + Send + Sync>> = vec![Arc::new(ExactTimeComparisons)];
    rules.extend(state.optimizers().iter().cloned());
    rules
}

/// Installs pond into a session: the `pond` catalog (made the default
/// catalog) with every series as a table, `information_schema`, the
/// table functions `series_range`, `series_versions`, `series_list` and `series_union`, the physical
/// optimizer rule [`SeriesTimePruning`], the logical optimizer rule
/// [`ExactTimeComparisons`], first (a time column compared with a finer
/// constant, without DataFusion's rounding), and a
/// `date_trunc` that truncates
/// UTC timestamps to the hour or the day as fast as DataFusion 55 truncates
/// timestamps without a zone (same answers; see `src/functions.rs`).
pub fn register(ctx: &SessionContext, pond: Arc<Pond>) {
    ctx.register_udf(crate::functions::UtcDateTrunc::udf());
    ctx.register_udtf(
        "series_range",
        Arc::new(SeriesRangeFunction::new(Arc::clone(&pond))),
    );
    ctx.register_udtf(
        "series_versions",
        Arc::new(SeriesVersionsFunction::new(Arc::clone(&pond))),
    );
    ctx.register_udtf(
        "series_list",
        Arc::new(SeriesListFunction::new(Arc::clone(&pond))),
    );
    ctx.register_udtf(
        "series_union",
        Arc::new(SeriesUnionFunction::new(Arc::clone(&pond))),
    );
    ctx.register_catalog(CATALOG, Arc::new(PondCatalogProvider::new(pond)));
    let state = ctx.state_ref();
    let mut state = state.write();
    let exact = ExactTimeComparisons;
    let rule = SeriesTimePruning::new();
    let has_exact = (state.optimizers().iter()).any(|r| r.name() == OptimizerRule::name(&exact));
    let has_rule = (state.physical_optimizers().iter())
        .any(|r| r.name() == PhysicalOptimizerRule::name(&rule));
    if !has_exact || !has_rule {
        // A session's rules are fixed once built; rebuild it once, with
        // ExactTimeComparisons first among the logical rules and
        // SeriesTimePruning appended, after DataFusion's filter pushdown.
        let mut builder = SessionStateBuilder::new_from_existing(state.clone());
        if !has_exact {
            builder = builder.with_optimizer_rules(exact_time_rules(&state));
        }
        if !has_rule {
            builder = builder.with_physical_optimizer_rule(Arc::new(rule));
        }
        *state = builder.build();
    }
    let options = state.config_mut().options_mut();
    if options.extensions.get::<PondSessionOptions>().is_none() {
        options.extensions.insert(PondSessionOptions::default());
    }
    options.catalog.default_catalog = CATALOG.to_string();
    options.catalog.information_schema = true;
}
