//! The KQL subset Resource Graph queries use here, evaluated over `serde_json::Value`
//! rows: a table name (`resources`, `resourcecontainers`, `authorizationresources`,
//! `computeresources`, `resourcechanges`; none means `resources`), then `where`, `project`,
//! `extend`, `project-away`, `order by` / `sort by`, one `summarize` (aggregations
//! `count()`, `make_list(x)`, `make_set(x)`, `take_any(x)`, grouped `by` columns) and a
//! trailing `take` / `limit`.
//!
//! Semantics follow Kusto where they matter for the audit: `order by` defaults to
//! descending; `==` on strings is case-sensitive and `=~` is not; a dotted path
//! projected without a name is named with `_` (`properties.x.y` → `properties_x_y`);
//! comparisons involving null are false. Evaluation never fails: anything the parser
//! accepts evaluates to a value.
mod parse;

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::{Map, Value};

/// The Resource Graph tables the emulator serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    Resources,
    ResourceContainers,
    AuthorizationResources,
    /// Scale-set VMs (`microsoft.compute/virtualmachinescalesets/virtualmachines`).
    ComputeResources,
    /// Change history (`microsoft.resources/changes`, 14 days).
    ResourceChanges,
}

impl Table {
    pub const ALL: [Table; 5] = [
        Table::Resources,
        Table::ResourceContainers,
        Table::AuthorizationResources,
        Table::ComputeResources,
        Table::ResourceChanges,
    ];

    /// Case-insensitive table name.
    pub fn from_name(name: &str) -> Option<Table> {
        match name.to_ascii_lowercase().as_str() {
            "resources" => Some(Table::Resources),
            "resourcecontainers" => Some(Table::ResourceContainers),
            "authorizationresources" => Some(Table::AuthorizationResources),
            "computeresources" => Some(Table::ComputeResources),
            "resourcechanges" => Some(Table::ResourceChanges),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Table::Resources => "resources",
            Table::ResourceContainers => "resourcecontainers",
            Table::AuthorizationResources => "authorizationresources",
            Table::ComputeResources => "computeresources",
            Table::ResourceChanges => "resourcechanges",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// A parse error with the position ARG reports (1-based line, 0-based column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KqlError {
    pub message: String,
    pub line: usize,
    pub col: usize,
    pub token: String,
}

impl std::fmt::Display for KqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (line {}, position {}, token '{}')",
            self.message, self.line, self.col, self.token
        )
    }
}

impl std::error::Error for KqlError {}

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    Index(i64),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum CmpOp {
    Eq,
    Ne,
    EqCi,
    NeCi,
    Lt,
    Le,
    Gt,
    Ge,
    /// The bool is "negated".
    Contains(bool),
    Has(bool),
    StartsWith(bool),
    EndsWith(bool),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Func {
    ToString,
    ToLower,
    ToUpper,
    IsNotEmpty,
    IsEmpty,
    IsNull,
    IsNotNull,
    Not,
    Strcat,
    Coalesce,
    Iff,
    ToLong,
    ArrayLength,
    /// `pack(k1, v1, ...)` / `bag_pack`: a property bag of key-value pairs.
    Pack,
}

impl Func {
    fn from_name(name: &str) -> Option<Func> {
        Some(match name {
            "tostring" => Func::ToString,
            "tolower" => Func::ToLower,
            "toupper" => Func::ToUpper,
            "isnotempty" => Func::IsNotEmpty,
            "isempty" => Func::IsEmpty,
            "isnull" => Func::IsNull,
            "isnotnull" => Func::IsNotNull,
            "not" => Func::Not,
            "strcat" => Func::Strcat,
            "coalesce" => Func::Coalesce,
            "iff" | "iif" => Func::Iff,
            "tolong" | "toint" => Func::ToLong,
            "array_length" => Func::ArrayLength,
            "pack" | "bag_pack" => Func::Pack,
            _ => return None,
        })
    }

    fn arity_ok(self, n: usize) -> bool {
        match self {
            Func::Strcat | Func::Coalesce => n >= 1,
            Func::Iff => n == 3,
            Func::Pack => n >= 2 && n.is_multiple_of(2),
            _ => n == 1,
        }
    }

    /// Functions whose unnamed result keeps the name of their single argument.
    fn keeps_name(self) -> bool {
        matches!(
            self,
            Func::ToString | Func::ToLower | Func::ToUpper | Func::ToLong
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Lit(Value),
    Path(Vec<Seg>),
    Call(Func, Vec<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
    In {
        negated: bool,
        ci: bool,
        lhs: Box<Expr>,
        list: Vec<Expr>,
    },
}

#[derive(Debug, Clone, PartialEq)]
struct SortKey {
    expr: Expr,
    desc: bool,
    nulls_first: bool,
}

/// An aggregation of `summarize`.
#[derive(Debug, Clone, PartialEq)]
enum Agg {
    Count,
    MakeList(Expr),
    MakeSet(Expr),
    TakeAny(Expr),
}

impl Agg {
    /// Kusto's name for an unnamed aggregation: `count_`, `list_x`, `set_x`, `any_x`.
    fn default_name(&self) -> String {
        let (prefix, e) = match self {
            Agg::Count => return "count_".into(),
            Agg::MakeList(e) => ("list_", e),
            Agg::MakeSet(e) => ("set_", e),
            Agg::TakeAny(e) => ("any_", e),
        };
        format!("{prefix}{}", e.inferred_name().unwrap_or_default())
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Stage {
    Where(Expr),
    Project(Vec<(String, Expr)>),
    Extend(Vec<(String, Expr)>),
    ProjectAway(Vec<String>),
    Order(Vec<SortKey>),
    Take(u64),
    /// `summarize aggs by keys`: the rows before it are grouped, the stages after it
    /// run on one row per group.
    Summarize {
        aggs: Vec<(String, Agg)>,
        by: Vec<(String, Expr)>,
    },
}

/// A parsed query.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub table: Table,
    stages: Vec<Stage>,
    /// Trailing `take` / `limit`.
    pub take: Option<u64>,
}

/// One row's result: the output row and, when the query orders, its sort key.
#[derive(Debug, Clone)]
pub struct RowResult {
    pub row: Value,
    pub key: Option<Vec<Value>>,
}

impl Query {
    pub fn parse(text: &str) -> Result<Query, KqlError> {
        parse::parse(text)
    }

    /// Whether the output carries an `id` column (ARG pages only such queries).
    pub fn projects_id(&self) -> bool {
        let mut has_id = true;
        for stage in &self.stages {
            match stage {
                Stage::Project(cols) => has_id = cols.iter().any(|(n, _)| n == "id"),
                Stage::Extend(cols) => has_id |= cols.iter().any(|(n, _)| n == "id"),
                Stage::ProjectAway(names) => has_id &= !names.iter().any(|n| n == "id"),
                Stage::Summarize { aggs, by } => {
                    has_id =
                        by.iter().any(|(n, _)| n == "id") || aggs.iter().any(|(n, _)| n == "id")
                }
                _ => {}
            }
        }
        has_id
    }

    /// Whether the query has an `order by`.
    pub fn orders(&self) -> bool {
        self.stages.iter().any(|s| matches!(s, Stage::Order(_)))
    }

    /// Whether the query groups rows (`summarize`): its output rows are made, not
    /// input rows passed through, so they are evaluated with [`Query::aggregate`].
    pub fn summarizes(&self) -> bool {
        self.stages
            .iter()
            .any(|s| matches!(s, Stage::Summarize { .. }))
    }

    /// Runs the row-wise pipeline on one input row. `None` = filtered out. A query
    /// that summarizes is run with [`Query::aggregate`] instead.
    pub fn run_row(&self, row: Value) -> Option<RowResult> {
        run_stages(&self.stages, row)
    }

    /// Runs a query that summarizes over all its input rows: the stages before
    /// `summarize` on each row, one row per group (ordered by the group's keys), the
    /// stages after it on those, then `order by` and `take`.
    pub fn aggregate(&self, rows: impl Iterator<Item = Value>) -> Vec<Value> {
        let at = self
            .stages
            .iter()
            .position(|s| matches!(s, Stage::Summarize { .. }));
        let Some(at) = at else {
            return rows
                .filter_map(|r| self.run_row(r))
                .map(|r| r.row)
                .collect();
        };
        let Stage::Summarize { aggs, by } = &self.stages[at] else {
            unreachable!("position found a summarize")
        };
        let (pre, post) = (&self.stages[..at], &self.stages[at + 1..]);
        // Group key (compact JSON of the key values) -> (key values, one state per agg).
        let mut groups: std::collections::BTreeMap<String, (Vec<Value>, Vec<AggState>)> =
            Default::default();
        for row in rows {
            let Some(r) = run_stages(pre, row) else {
                continue;
            };
            let Value::Object(m) = r.row else { continue };
            let keys: Vec<Value> = by.iter().map(|(_, e)| eval(e, &m).into_owned()).collect();
            let id = Value::Array(keys.clone()).to_string();
            let entry = groups
                .entry(id)
                .or_insert_with(|| (keys, aggs.iter().map(|_| AggState::default()).collect()));
            for ((_, agg), st) in aggs.iter().zip(entry.1.iter_mut()) {
                st.add(agg, &m);
            }
        }
        if by.is_empty() && groups.is_empty() {
            // Without `by`, Kusto returns one row even over no input (count() = 0).
            groups.insert(
                String::new(),
                (vec![], aggs.iter().map(|_| AggState::default()).collect()),
            );
        }
        let mut out: Vec<(Value, Option<Vec<Value>>)> = Vec::new();
        for (_, (keys, states)) in groups {
            let mut m = Map::new();
            for ((name, _), v) in by.iter().zip(keys) {
                m.insert(name.clone(), v);
            }
            for ((name, agg), st) in aggs.iter().zip(states) {
                m.insert(name.clone(), st.finish(agg));
            }
            if let Some(r) = run_stages(post, Value::Object(m)) {
                out.push((r.row, r.key));
            }
        }
        if post.iter().any(|s| matches!(s, Stage::Order(_))) {
            out.sort_by(|a, b| {
                self.compare_keys(a.1.as_deref().unwrap_or(&[]), b.1.as_deref().unwrap_or(&[]))
            });
        }
        if let Some(n) = self.take {
            out.truncate(n as usize);
        }
        out.into_iter().map(|(v, _)| v).collect()
    }

    /// Compares two sort keys produced by [`Query::run_row`].
    pub fn compare_keys(&self, a: &[Value], b: &[Value]) -> Ordering {
        let Some(Stage::Order(keys)) = self
            .stages
            .iter()
            .rev()
            .find(|s| matches!(s, Stage::Order(_)))
        else {
            return Ordering::Equal;
        };
        for (i, k) in keys.iter().enumerate() {
            let (x, y) = (
                a.get(i).unwrap_or(&Value::Null),
                b.get(i).unwrap_or(&Value::Null),
            );
            let o = match (x.is_null(), y.is_null()) {
                (true, true) => Ordering::Equal,
                (true, false) if k.nulls_first => Ordering::Less,
                (true, false) => Ordering::Greater,
                (false, true) if k.nulls_first => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => {
                    let o = order_values(x, y);
                    if k.desc {
                        o.reverse()
                    } else {
                        o
                    }
                }
            };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    }
}

/// The row-wise stages on one row. `None` = filtered out. A `summarize` among them
/// is skipped here: [`Query::aggregate`] splits the stages around it.
fn run_stages(stages: &[Stage], row: Value) -> Option<RowResult> {
    let mut row = match row {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let mut key = None;
    for stage in stages {
        match stage {
            Stage::Where(e) => {
                if !matches!(eval(e, &row).as_ref(), Value::Bool(true)) {
                    return None;
                }
            }
            Stage::Project(cols) => {
                let mut out = Map::new();
                for (name, e) in cols {
                    let v = eval(e, &row).into_owned();
                    out.insert(name.clone(), v);
                }
                row = out;
            }
            Stage::Extend(cols) => {
                for (name, e) in cols {
                    let v = eval(e, &row).into_owned();
                    row.insert(name.clone(), v);
                }
            }
            Stage::ProjectAway(names) => {
                for n in names {
                    row.remove(n);
                }
            }
            Stage::Order(keys) => {
                key = Some(
                    keys.iter()
                        .map(|k| eval(&k.expr, &row).into_owned())
                        .collect(),
                );
            }
            Stage::Take(_) | Stage::Summarize { .. } => {}
        }
    }
    Some(RowResult {
        row: Value::Object(row),
        key,
    })
}

/// One group's running value of one aggregation.
#[derive(Default)]
struct AggState {
    count: u64,
    items: Vec<Value>,
    seen: std::collections::BTreeSet<String>,
    any: Option<Value>,
}

impl AggState {
    fn add(&mut self, agg: &Agg, row: &Map<String, Value>) {
        self.count += 1;
        match agg {
            Agg::Count => {}
            Agg::MakeList(e) => {
                let v = eval(e, row).into_owned();
                if !v.is_null() {
                    self.items.push(v);
                }
            }
            Agg::MakeSet(e) => {
                let v = eval(e, row).into_owned();
                if !v.is_null() && self.seen.insert(v.to_string()) {
                    self.items.push(v);
                }
            }
            Agg::TakeAny(e) => {
                if self.any.is_none() {
                    self.any = Some(eval(e, row).into_owned());
                }
            }
        }
    }

    fn finish(self, agg: &Agg) -> Value {
        match agg {
            Agg::Count => Value::from(self.count),
            Agg::MakeList(_) | Agg::MakeSet(_) => Value::Array(self.items),
            Agg::TakeAny(_) => self.any.unwrap_or(Value::Null),
        }
    }
}

impl Expr {
    fn inferred_name(&self) -> Option<String> {
        match self {
            Expr::Path(segs) => Some(
                segs.iter()
                    .map(|s| match s {
                        Seg::Key(k) => k.clone(),
                        Seg::Index(i) => i.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join("_"),
            ),
            Expr::Call(f, args) if f.keeps_name() && args.len() == 1 => args[0].inferred_name(),
            _ => None,
        }
    }
}

fn type_rank(v: &Value) -> u8 {
    match v {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Number(_) => 2,
        Value::String(_) => 3,
        Value::Array(_) => 4,
        Value::Object(_) => 5,
    }
}

fn order_values(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            x.partial_cmp(&y).unwrap_or(Ordering::Equal)
        }
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ if type_rank(a) == type_rank(b) => to_str(a).cmp(&to_str(b)),
        _ => type_rank(a).cmp(&type_rank(b)),
    }
}

/// Kusto's `tostring()`: null → "", strings as is, anything else as compact JSON.
fn to_str(v: &Value) -> Cow<'_, str> {
    match v {
        Value::Null => Cow::Borrowed(""),
        Value::String(s) => Cow::Borrowed(s.as_str()),
        other => Cow::Owned(other.to_string()),
    }
}

fn lookup<'a>(row: &'a Map<String, Value>, segs: &[Seg]) -> Option<&'a Value> {
    let (first, rest) = segs.split_first()?;
    let mut v = match first {
        Seg::Key(k) => row.get(k)?,
        Seg::Index(_) => return None,
    };
    for seg in rest {
        v = match (seg, v) {
            (Seg::Key(k), Value::Object(m)) => m.get(k)?,
            (Seg::Index(i), Value::Array(a)) => {
                let idx = if *i < 0 {
                    a.len().checked_sub(i.unsigned_abs() as usize)?
                } else {
                    *i as usize
                };
                a.get(idx)?
            }
            _ => return None,
        };
    }
    Some(v)
}

const NULL: Value = Value::Null;

fn truthy(v: &Value) -> bool {
    matches!(v, Value::Bool(true))
}

fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        _ => to_str(a) == to_str(b),
    }
}

fn eq_ci(a: &Value, b: &Value) -> bool {
    let (x, y) = (to_str(a), to_str(b));
    x == y || x.to_lowercase() == y.to_lowercase()
}

fn has_term(hay: &str, term: &str) -> bool {
    if term.is_empty() {
        return true;
    }
    let hay = hay.to_lowercase();
    let term = term.to_lowercase();
    hay.match_indices(&term).any(|(i, _)| {
        let before = hay[..i].chars().next_back();
        let after = hay[i + term.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

fn compare(op: CmpOp, a: &Value, b: &Value) -> bool {
    use CmpOp::*;
    let string_op = |negated: bool, f: &dyn Fn(&str, &str) -> bool| {
        let (x, y) = (to_str(a).to_lowercase(), to_str(b).to_lowercase());
        f(&x, &y) != negated
    };
    match op {
        Contains(n) => string_op(n, &|x, y| x.contains(y)),
        StartsWith(n) => string_op(n, &|x, y| x.starts_with(y)),
        EndsWith(n) => string_op(n, &|x, y| x.ends_with(y)),
        Has(n) => has_term(&to_str(a), &to_str(b)) != n,
        _ if a.is_null() || b.is_null() => false,
        Eq => values_equal(a, b),
        Ne => !values_equal(a, b),
        EqCi => eq_ci(a, b),
        NeCi => !eq_ci(a, b),
        Lt | Le | Gt | Ge => {
            let comparable = matches!(
                (a, b),
                (Value::Number(_), Value::Number(_)) | (Value::String(_), Value::String(_))
            );
            if !comparable {
                return false;
            }
            let o = order_values(a, b);
            match op {
                Lt => o == Ordering::Less,
                Le => o != Ordering::Greater,
                Gt => o == Ordering::Greater,
                _ => o != Ordering::Less,
            }
        }
    }
}

fn eval<'a>(e: &'a Expr, row: &'a Map<String, Value>) -> Cow<'a, Value> {
    match e {
        Expr::Lit(v) => Cow::Borrowed(v),
        Expr::Path(segs) => Cow::Borrowed(lookup(row, segs).unwrap_or(&NULL)),
        Expr::And(a, b) => Cow::Owned(Value::Bool(truthy(&eval(a, row)) && truthy(&eval(b, row)))),
        Expr::Or(a, b) => Cow::Owned(Value::Bool(truthy(&eval(a, row)) || truthy(&eval(b, row)))),
        Expr::Cmp(op, a, b) => Cow::Owned(Value::Bool(compare(*op, &eval(a, row), &eval(b, row)))),
        Expr::In {
            negated,
            ci,
            lhs,
            list,
        } => {
            let v = eval(lhs, row);
            if v.is_null() {
                return Cow::Owned(Value::Bool(false));
            }
            let found = list.iter().any(|item| {
                let item = eval(item, row);
                let candidates: Vec<&Value> = match item.as_ref() {
                    Value::Array(a) => a.iter().collect(),
                    other => vec![other],
                };
                candidates.into_iter().any(|c| {
                    if *ci {
                        eq_ci(&v, c)
                    } else {
                        values_equal(&v, c)
                    }
                })
            });
            Cow::Owned(Value::Bool(found != *negated))
        }
        Expr::Call(f, args) => Cow::Owned(call(*f, args, row)),
    }
}

fn call(f: Func, args: &[Expr], row: &Map<String, Value>) -> Value {
    let arg = |i: usize| -> Cow<'_, Value> {
        args.get(i)
            .map(|a| eval(a, row))
            .unwrap_or(Cow::Borrowed(&NULL))
    };
    match f {
        Func::ToString => Value::String(to_str(&arg(0)).into_owned()),
        Func::ToLower => Value::String(to_str(&arg(0)).to_lowercase()),
        Func::ToUpper => Value::String(to_str(&arg(0)).to_uppercase()),
        Func::IsNotEmpty => Value::Bool(!to_str(&arg(0)).is_empty()),
        Func::IsEmpty => Value::Bool(to_str(&arg(0)).is_empty()),
        Func::IsNull => Value::Bool(arg(0).is_null()),
        Func::IsNotNull => Value::Bool(!arg(0).is_null()),
        Func::Not => match arg(0).as_ref() {
            Value::Bool(b) => Value::Bool(!b),
            _ => Value::Null,
        },
        Func::Strcat => Value::String(
            (0..args.len())
                .map(|i| to_str(&arg(i)).into_owned())
                .collect(),
        ),
        Func::Coalesce => (0..args.len())
            .map(|i| arg(i).into_owned())
            .find(|v| !v.is_null() && v.as_str() != Some(""))
            .unwrap_or(Value::Null),
        Func::Iff => {
            if truthy(&arg(0)) {
                arg(1).into_owned()
            } else {
                arg(2).into_owned()
            }
        }
        Func::ToLong => match arg(0).as_ref() {
            Value::Number(n) => n
                .as_i64()
                .or_else(|| n.as_f64().map(|f| f as i64))
                .map(Value::from)
                .unwrap_or(Value::Null),
            Value::String(s) => s
                .trim()
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or(Value::Null),
            Value::Bool(b) => Value::from(*b as i64),
            _ => Value::Null,
        },
        Func::ArrayLength => match arg(0).as_ref() {
            Value::Array(a) => Value::from(a.len() as u64),
            _ => Value::Null,
        },
        Func::Pack => {
            let mut bag = Map::new();
            for i in (0..args.len()).step_by(2) {
                bag.insert(to_str(&arg(i)).into_owned(), arg(i + 1).into_owned());
            }
            Value::Object(bag)
        }
    }
}

#[cfg(test)]
mod tests;
