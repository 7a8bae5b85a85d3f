//! Exact comparisons of a time column with a finer constant.
//!
//! DataFusion 55 compares a column of seconds with a nanosecond constant by
//! casting the column (`CAST(ts AS Timestamp(ns)) >= c`), and its simplifier
//! then moves the cast onto the constant, truncating it toward zero:
//! `ts >= TIMESTAMP '…:17.5'` on a seconds column becomes `ts >= …:17`,
//! which keeps the row at 17 s. A text constant is cast straight to the
//! column's unit, which rounds it down just the same. Either way a row at
//! the bound's whole unit is kept or dropped wrongly, on any table, for the
//! common `ts > now() - INTERVAL '1 hour'` (nanoseconds) on a column of
//! milliseconds too.
//!
//! [`ExactTimeComparisons`], an optimizer rule that runs before
//! DataFusion's simplifier, writes each such comparison in the column's own
//! unit: it folds the constant side (as the simplifier would, with the
//! query's start time for `now()`), and rounds it so that exactly the same
//! rows pass: up for `>=` and `<`, down for `>` and `<=`; an `=` with a
//! constant between two of the column's values holds for no row (and is
//! NULL where the column is), a `<>` for every row. `BETWEEN` and `IN`
//! lists are rewritten through the same comparisons, and so are `IS [NOT]
//! DISTINCT FROM`. The column's own comparisons then also reach pond's
//! pruning as exact time filters.

use arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::tree_node::{Transformed, TreeNode};
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

use crate::time::{scalar_timestamp, timestamp_scalar};

/// The optimizer rule: see the [module documentation](self). It must come
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
        let inputs = plan.inputs();
        if inputs.is_empty() {
            return Ok(Transformed::no(plan));
        }
        let schema = DFSchemaRef::new(merge_schema(&inputs));
        let constants = ExprSimplifier::new(
            SimplifyContext::builder()
                .with_schema(DFSchemaRef::clone(&schema))
                .with_config_options(config.options())
                .with_query_execution_start_time(config.query_execution_start_time())
                .build(),
        );
        let context = Context {
            schema: &schema,
            constants: &constants,
        };
        // A projection's column is named after its expression: keep the
        // name the unrewritten expression gave it.
        let names = NamePreserver::new(&plan);
        plan.map_expressions(|e| {
            // A grouping set wrapped in an alias would be one no longer.
            if matches!(e, Expr::GroupingSet(_)) {
                return Ok(Transformed::no(e));
            }
            let name = names.save(&e);
            e.transform_up(|e| Ok(rewrite(e, &context)))?
                .map_data(|e| Ok(name.restore(e)))
        })
    }
}

/// What a node's expressions are rewritten with: the schema of its inputs,
/// and a simplifier to fold constants.
struct Context<'a> {
    schema: &'a DFSchema,
    constants: &'a ExprSimplifier,
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
}

/// Whether `zone` is UTC by name or offset.
fn is_utc(zone: &str) -> bool {
    matches!(
        zone.to_ascii_uppercase().as_str(),
        "UTC" | "Z" | "+00:00" | "+00" | "+0000" | "ETC/UTC"
    )
}

fn nanos_per(unit: TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => 1_000_000_000,
        TimeUnit::Millisecond => 1_000_000,
        TimeUnit::Microsecond => 1_000,
        TimeUnit::Nanosecond => 1,
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

/// `side` as a constant compared with the time column `other`, if the
/// comparison is one DataFusion would round: a cast of the column to a
/// finer unit against a constant, or the column against a constant cast to
/// the column's unit.
fn bound(other: &Expr, side: &Expr, context: &Context<'_>) -> Option<Bound> {
    widened_column(other, side, context).or_else(|| narrowed_constant(other, side, context))
}

/// `CAST(column AS finer) op constant`.
fn widened_column(other: &Expr, side: &Expr, context: &Context<'_>) -> Option<Bound> {
    let Expr::Cast(Cast { expr, field }) = other else {
        return None;
    };
    let column_type = expr.get_type(context.schema).ok()?;
    let (DataType::Timestamp(coarse, from), DataType::Timestamp(fine, to)) =
        (&column_type, field.data_type())
    else {
        return None;
    };
    // A cast from no zone to one reads the values as wall-clock time in
    // it, the same instants only in UTC; the other way, unknown here.
    let same_instants = match (from, to) {
        (Some(_), Some(_)) | (None, None) => true,
        (None, Some(zone)) => is_utc(zone),
        (Some(_), None) => false,
    };
    if !same_instants || nanos_per(*coarse) <= nanos_per(*fine) {
        return None;
    }
    let (value, unit) = scalar_timestamp(&context.constant(side)?)?;
    if unit != *fine {
        return None;
    }
    let per = nanos_per(*coarse) / nanos_per(*fine);
    Some(Bound {
        column: expr.as_ref().clone(),
        column_type,
        value,
        per,
    })
}

/// `column op CAST(constant AS the column's type)`.
fn narrowed_constant(column: &Expr, side: &Expr, context: &Context<'_>) -> Option<Bound> {
    let Expr::Cast(Cast { expr, field }) = side else {
        return None;
    };
    let column_type = column.get_type(context.schema).ok()?;
    let DataType::Timestamp(unit, zone) = &column_type else {
        return None;
    };
    // Text is what type coercion casts to the column's unit (an integer
    // so cast counts the unit, and casts nothing away).
    let text = matches!(
        expr.get_type(context.schema).ok()?,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    );
    if !text || field.data_type() != &column_type || *unit == TimeUnit::Nanosecond {
        return None;
    }
    // The constant's instant to the nanosecond, as DataFusion casts it
    // (text without an offset in the column's zone).
    let nanos = Expr::Cast(Cast::new(
        expr.clone(),
        DataType::Timestamp(TimeUnit::Nanosecond, zone.clone()),
    ));
    let (value, _) = scalar_timestamp(&context.constant(&nanos)?)?;
    let per = nanos_per(*unit);
    Some(Bound {
        column: column.clone(),
        column_type,
        value,
        per,
    })
}

/// `column op value`, in the column's unit, for the same rows.
fn exact(b: Bound, op: Operator) -> Expr {
    let floor = b.value.div_euclid(b.per);
    let whole = b.value.rem_euclid(b.per) == 0;
    let ceil = floor + i64::from(!whole);
    let compare =
        |op: Operator, v: i64| binary(&b.column, op, &lit(timestamp_scalar(v, &b.column_type)));
    match op {
        Operator::GtEq => compare(Operator::GtEq, ceil),
        Operator::Gt => compare(Operator::Gt, floor),
        Operator::Lt => compare(Operator::Lt, ceil),
        Operator::LtEq => compare(Operator::LtEq, floor),
        Operator::Eq | Operator::NotEq | Operator::IsDistinctFrom | Operator::IsNotDistinctFrom
            if whole =>
        {
            compare(op, floor)
        }
        // Between two values of the column: false, or true, for every row,
        // and NULL where the column is NULL, as the comparison would be.
        Operator::Eq => compare(Operator::Gt, floor).and(compare(Operator::Lt, ceil)),
        Operator::NotEq => compare(Operator::LtEq, floor).or(compare(Operator::GtEq, ceil)),
        // Never NULL: equal to no value, NULL included.
        Operator::IsNotDistinctFrom => lit(false),
        _ => lit(true),
    }
}

/// `e op₁ b₁`, `e op₂ b₂`, … joined by `join`, each comparison made exact
/// where DataFusion would round it; `None` if it would round none.
fn joined(
    e: &Expr,
    terms: &[(Operator, &Expr)],
    join: fn(Expr, Expr) -> Expr,
    context: &Context<'_>,
) -> Option<Expr> {
    let exact: Vec<Option<Expr>> = (terms.iter())
        .map(|(op, bound)| comparison(e, *op, bound, context))
        .collect();
    if exact.iter().all(Option::is_none) {
        return None;
    }
    (exact.into_iter().zip(terms))
        .map(|(exact, (op, bound))| exact.unwrap_or_else(|| binary(e, *op, bound)))
        .reduce(join)
}

fn binary(left: &Expr, op: Operator, right: &Expr) -> Expr {
    Expr::BinaryExpr(BinaryExpr::new(
        Box::new(left.clone()),
        op,
        Box::new(right.clone()),
    ))
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

fn rewrite(expr: Expr, context: &Context<'_>) -> Transformed<Expr> {
    let and: fn(Expr, Expr) -> Expr = Expr::and;
    let or: fn(Expr, Expr) -> Expr = Expr::or;
    let rewritten = match &expr {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => comparison(left, *op, right, context),
        Expr::Between(Between {
            expr: e,
            negated: false,
            low,
            high,
        }) => joined(
            e,
            &[(Operator::GtEq, low), (Operator::LtEq, high)],
            and,
            context,
        ),
        Expr::Between(Between {
            expr: e,
            negated: true,
            low,
            high,
        }) => joined(e, &[(Operator::Lt, low), (Operator::Gt, high)], or, context),
        Expr::InList(InList {
            expr: e,
            list,
            negated,
        }) => {
            let (op, join) = if *negated {
                (Operator::NotEq, and)
            } else {
                (Operator::Eq, or)
            };
            let terms: Vec<(Operator, &Expr)> = list.iter().map(|item| (op, item)).collect();
            joined(e, &terms, join, context)
        }
        _ => None,
    };
    match rewritten {
        Some(e) => Transformed::yes(e),
        None => Transformed::no(expr),
    }
}
