//! Exact comparisons of a time column with a finer constant.
//!
//! DataFusion 55 compares a column of seconds with a nanosecond constant
//! (text compared with it is read as nanoseconds too) by casting the column
//! (`CAST(ts AS Timestamp(ns)) >= c`), and its simplifier then moves the
//! cast onto the constant, truncating it toward zero: `ts >= '…:17.5'` on a
//! seconds column becomes `ts >= …:17`, which keeps the row at 17 s; before
//! 1970 the truncation goes the other way. A row at the bound's whole unit
//! is kept or dropped wrongly, on any table, for the common `ts > now() -
//! INTERVAL '1 hour'` (nanoseconds) on a column of milliseconds too.
//!
//! [`ExactTimeComparisons`], an optimizer rule that [`crate::register`]
//! puts before DataFusion's simplifier, writes each comparison of a widened
//! column with a constant in the column's own unit: it folds the constant
//! (as the simplifier would, with the query's start time for `now()`) and
//! rounds it so that exactly the same rows pass: up for `>=` and `<`, down
//! for `>` and `<=`. An `=` with a constant between two of the column's
//! values holds for no row, a `<>` for every row (NULL where the column is
//! NULL, evaluating it once); `IS [NOT] DISTINCT FROM`, `BETWEEN` and `IN`
//! lists likewise. A cast the query writes itself (`CAST('…' AS
//! TIMESTAMP(0))`) is left as written. The column's own comparisons then
//! also reach pond's pruning as exact time filters.

use arrow::datatypes::DataType;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DFSchema, DFSchemaRef, Result, ScalarValue};
use datafusion::logical_expr::expr::InList;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::simplify::SimplifyContext;
use datafusion::logical_expr::utils::merge_schema;
use datafusion::logical_expr::{
    Between, BinaryExpr, Cast, Expr, ExprSchemable, LogicalPlan, Operator, lit,
};
use datafusion::optimizer::simplify_expressions::ExprSimplifier;
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};

use crate::time::{is_utc, nanos_per, scalar_timestamp, timestamp_scalar};

/// A logical optimizer rule that compares a time column with a finer
/// constant exactly: DataFusion 55 casts the column to the constant's unit
/// and its simplifier then truncates the constant to the column's unit
/// (`ts >= '…:17.5'` on seconds became `ts >= …:17`). This rule writes the
/// comparison in the column's unit with the constant rounded as the
/// operator needs (`=` with a constant between two of the column's values
/// holds for none), also for `BETWEEN`, `IN` lists and `IS [NOT] DISTINCT
/// FROM`; a cast the query writes itself is left as written. It must come
/// before DataFusion's `SimplifyExpressions`; [`crate::register`] puts it
/// first.
#[derive(Debug, Default)]
pub struct ExactTimeComparisons;

impl OptimizerRule for ExactTimeComparisons {
    fn name(&self) -> &str {
        "pond_exact_time_comparisons"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::BottomUp)
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        let Some(schema) = node_schema(&plan, |e| matches!(e, Expr::Cast(_))) else {
            return Ok(Transformed::no(plan));
        };
        let context = Context {
            schema: &schema,
            constants: ExprSimplifier::new(
                SimplifyContext::builder()
                    .with_schema(DFSchemaRef::clone(&schema))
                    .with_config_options(config.options())
                    .with_query_execution_start_time(config.query_execution_start_time())
                    .build(),
            ),
        };
        map_named(plan, |e| exact_comparison(e, &context))
    }
}

/// The schema `plan`'s expressions refer to, if one of them holds an
/// expression `wanted` picks: its inputs', or for a table scan (whose
/// filters the optimizer pushes into it, and simplifies there) its
/// source's.
fn node_schema(plan: &LogicalPlan, wanted: fn(&Expr) -> bool) -> Option<DFSchemaRef> {
    let inputs = plan.inputs();
    let scan = match plan {
        LogicalPlan::TableScan(scan) if !scan.filters.is_empty() => Some(scan),
        _ if inputs.is_empty() => return None,
        _ => None,
    };
    // Visited in place: `LogicalPlan::expressions` would clone them all,
    // for every node in every pass of every query.
    let mut found = false;
    plan.apply_expressions(|e| {
        found = e.exists(|e| Ok(wanted(e)))?;
        Ok(if found {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    })
    .ok()?;
    if !found {
        return None;
    }
    match scan {
        Some(scan) => {
            DFSchema::try_from_qualified_schema(scan.table_name.clone(), &scan.source.schema())
                .ok()
                .map(DFSchemaRef::new)
        }
        None => Some(DFSchemaRef::new(merge_schema(&inputs))),
    }
}

/// `plan`'s own expressions rewritten bottom-up by `rewrite`. A
/// projection's column is named after its expression, so each keeps the
/// name the unrewritten expression gave it; so does each expression of a
/// grouping set, which itself could not be wrapped in an alias (as
/// DataFusion's simplifier does).
fn map_named(
    plan: LogicalPlan,
    mut rewrite: impl FnMut(Expr) -> Transformed<Expr>,
) -> Result<Transformed<LogicalPlan>> {
    let names = NamePreserver::new(&plan);
    let mut named = |e: Expr| {
        let name = names.save(&e);
        e.transform_up(|e| Ok(rewrite(e)))?
            .map_data(|e| Ok(name.restore(e)))
    };
    plan.map_expressions(|e| {
        if matches!(e, Expr::GroupingSet(_)) {
            e.map_children(&mut named)
        } else {
            named(e)
        }
    })
}

/// Whether `op` compares two values (the operators DataFusion moves a cast
/// across).
pub(crate) fn is_comparison(op: Operator) -> bool {
    matches!(
        op,
        Operator::Eq
            | Operator::NotEq
            | Operator::Lt
            | Operator::LtEq
            | Operator::Gt
            | Operator::GtEq
            | Operator::IsDistinctFrom
            | Operator::IsNotDistinctFrom
    )
}

/// What a node's expressions are made exact with: the schema of its inputs,
/// and a simplifier to fold constants.
struct Context<'a> {
    schema: &'a DFSchema,
    constants: ExprSimplifier,
}

impl Context<'_> {
    /// `expr` folded to a constant, if it is one.
    fn constant(&self, expr: &Expr) -> Option<ScalarValue> {
        if !expr.column_refs().is_empty() {
            return None;
        }
        match self.constants.simplify(expr.clone()).ok()? {
            Expr::Literal(value, _) => Some(value),
            _ => None,
        }
    }

    /// The column under `CAST(column AS finer)`, its type, and how many of
    /// the finer unit make one of the column's, if `expr` is such a cast
    /// between the same instants.
    fn widened(&self, expr: &Expr) -> Option<(Expr, DataType, i64)> {
        let Expr::Cast(Cast { expr, field }) = expr else {
            return None;
        };
        let column_type = expr.get_type(self.schema).ok()?;
        let (DataType::Timestamp(coarse, from), DataType::Timestamp(fine, to)) =
            (&column_type, field.data_type())
        else {
            return None;
        };
        // A cast from no zone to one reads the values as wall-clock time
        // in it, the same instants only in UTC; the other way, unknown here.
        let same_instants = match (from, to) {
            (Some(_), Some(_)) | (None, None) => true,
            (None, Some(zone)) => is_utc(zone),
            (Some(_), None) => false,
        };
        if !same_instants || nanos_per(*coarse) <= nanos_per(*fine) {
            return None;
        }
        let per = nanos_per(*coarse) / nanos_per(*fine);
        Some((expr.as_ref().clone(), column_type, per))
    }

    /// `constant` in the finer unit of `CAST(column AS Timestamp(fine))`.
    fn in_unit(&self, constant: &Expr, fine: &DataType) -> Option<i64> {
        let DataType::Timestamp(fine, _) = fine else {
            return None;
        };
        let (value, unit) = scalar_timestamp(&self.constant(constant)?)?;
        (unit == *fine).then_some(value)
    }
}

/// A constant compared with a time column, exactly: the column (without
/// the cast around it), its type, and the constant as `(value, per)`, a
/// value in units `per` times finer than the column's.
struct Bound {
    column: Expr,
    column_type: DataType,
    value: i64,
    per: i64,
}

impl Bound {
    /// The constant rounded down to the column's unit, and whether it is a
    /// whole one.
    fn floor(&self) -> (i64, bool) {
        (
            self.value.div_euclid(self.per),
            self.value.rem_euclid(self.per) == 0,
        )
    }

    fn at(&self, value: i64) -> Expr {
        lit(timestamp_scalar(value, &self.column_type))
    }

    fn compare(&self, op: Operator, value: i64) -> Expr {
        binary(&self.column, op, &self.at(value))
    }

    /// False for every value of the column, NULL for NULL: the column is
    /// evaluated once.
    fn never(&self) -> Expr {
        self.compare(Operator::Lt, i64::MIN)
    }

    /// True for every value of the column, NULL for NULL.
    fn always(&self) -> Expr {
        self.compare(Operator::GtEq, i64::MIN)
    }
}

/// `CAST(column AS finer) op constant`, as `side` and `other` of a
/// comparison, as a [`Bound`].
fn bound(other: &Expr, side: &Expr, context: &Context<'_>) -> Option<Bound> {
    let Expr::Cast(Cast { field, .. }) = other else {
        return None;
    };
    let (column, column_type, per) = context.widened(other)?;
    let value = context.in_unit(side, field.data_type())?;
    Some(Bound {
        column,
        column_type,
        value,
        per,
    })
}

/// `column op value`, in the column's unit, for the same rows.
fn exact(b: Bound, op: Operator) -> Expr {
    let (floor, whole) = b.floor();
    let ceil = floor + i64::from(!whole);
    match op {
        Operator::GtEq => b.compare(Operator::GtEq, ceil),
        Operator::Gt => b.compare(Operator::Gt, floor),
        Operator::Lt => b.compare(Operator::Lt, ceil),
        Operator::LtEq => b.compare(Operator::LtEq, floor),
        Operator::Eq | Operator::NotEq | Operator::IsDistinctFrom | Operator::IsNotDistinctFrom
            if whole =>
        {
            b.compare(op, floor)
        }
        // Between two values of the column: equal to none of them.
        Operator::Eq => b.never(),
        Operator::NotEq => b.always(),
        // Never NULL: distinct from NULL too.
        Operator::IsNotDistinctFrom => lit(false),
        _ => lit(true),
    }
}

/// `left op right` made exact, if DataFusion would round it.
fn comparison(left: &Expr, op: Operator, right: &Expr, context: &Context<'_>) -> Option<Expr> {
    if !is_comparison(op) {
        return None;
    }
    if let Some(b) = bound(left, right, context) {
        return Some(exact(b, op));
    }
    let b = bound(right, left, context)?;
    Some(exact(b, op.swap()?))
}

fn binary(left: &Expr, op: Operator, right: &Expr) -> Expr {
    Expr::BinaryExpr(BinaryExpr::new(
        Box::new(left.clone()),
        op,
        Box::new(right.clone()),
    ))
}

fn exact_comparison(expr: Expr, context: &Context<'_>) -> Transformed<Expr> {
    let rewritten = match &expr {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => comparison(left, *op, right, context),
        // As DataFusion's simplifier writes them.
        Expr::Between(Between {
            expr: e,
            negated,
            low,
            high,
        }) => {
            let (low_op, high_op, join): (_, _, fn(Expr, Expr) -> Expr) = if *negated {
                (Operator::Lt, Operator::Gt, Expr::or)
            } else {
                (Operator::GtEq, Operator::LtEq, Expr::and)
            };
            let low_exact = comparison(e, low_op, low, context);
            let high_exact = comparison(e, high_op, high, context);
            (low_exact.is_some() || high_exact.is_some()).then(|| {
                join(
                    low_exact.unwrap_or_else(|| binary(e, low_op, low)),
                    high_exact.unwrap_or_else(|| binary(e, high_op, high)),
                )
            })
        }
        Expr::InList(InList {
            expr: e,
            list,
            negated,
        }) => exact_list(e, list, *negated, context),
        _ => None,
    };
    match rewritten {
        Some(e) => Transformed::yes(e),
        None => Transformed::no(expr),
    }
}

/// `CAST(column AS finer) [NOT] IN (constants)` as the column `[NOT] IN`
/// the constants that are whole values of it (no other can be equal to
/// it), if every item is a constant.
fn exact_list(e: &Expr, list: &[Expr], negated: bool, context: &Context<'_>) -> Option<Expr> {
    let Expr::Cast(Cast { field, .. }) = e else {
        return None;
    };
    let (column, column_type, per) = context.widened(e)?;
    let mut kept = Vec::with_capacity(list.len());
    for item in list {
        let constant = context.constant(item)?;
        if constant.is_null() {
            kept.push(lit(ScalarValue::try_from(&column_type).ok()?));
            continue;
        }
        let value = context.in_unit(&lit(constant), field.data_type())?;
        let b = Bound {
            column: column.clone(),
            column_type: column_type.clone(),
            value,
            per,
        };
        if let (floor, true) = b.floor() {
            kept.push(b.at(floor));
        }
    }
    if kept.is_empty() {
        let b = Bound {
            column,
            column_type,
            value: 0,
            per,
        };
        return Some(if negated { b.always() } else { b.never() });
    }
    Some(Expr::InList(InList {
        expr: Box::new(column),
        list: kept,
        negated,
    }))
}
