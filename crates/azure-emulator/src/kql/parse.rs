//! Tokenizer and recursive-descent parser for the KQL subset.
use serde_json::Value;

use super::{Agg, CmpOp, Expr, Func, KqlError, Query, Seg, SortKey, Stage, Table};

const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(f64),
    Sym(&'static str),
    Eof,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: usize,
    col: usize,
    text: String,
}

const SYMBOLS: [&str; 16] = [
    "==", "!=", "=~", "!~", "<=", ">=", "|", "(", ")", ",", ".", "[", "]", "=", "<", ">",
];

fn tokenize(src: &str) -> Result<Vec<Token>, KqlError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line, mut line_start) = (0usize, 1usize, 0usize);
    let at = |i: usize| chars.get(i).copied();
    while i < chars.len() {
        let c = chars[i];
        let col = i - line_start;
        if c == '\n' {
            i += 1;
            line += 1;
            line_start = i;
            continue;
        }
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '/' && at(i + 1) == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        let start = i;
        let tok = if c.is_ascii_alphabetic()
            || c == '_'
            || (c == '!' && at(i + 1).is_some_and(|n| n.is_ascii_alphabetic()))
        {
            i += 1;
            while at(i).is_some_and(|n| n.is_ascii_alphanumeric() || n == '_') {
                i += 1;
            }
            let mut word: String = chars[start..i].iter().collect();
            let base = word.trim_start_matches('!');
            if base == "in" && at(i) == Some('~') {
                i += 1;
                word.push('~');
            } else if matches!(base, "project" | "mv" | "make")
                && at(i) == Some('-')
                && at(i + 1).is_some_and(|n| n.is_ascii_alphabetic())
            {
                i += 1;
                while at(i).is_some_and(|n| n.is_ascii_alphanumeric() || n == '_') {
                    i += 1;
                }
                word = chars[start..i].iter().collect();
            }
            Tok::Ident(word)
        } else if c == '@' && matches!(at(i + 1), Some('\'') | Some('"')) {
            let q = chars[i + 1];
            i += 2;
            let mut s = String::new();
            loop {
                match at(i) {
                    None => return Err(err_at(line, col, "@", "unterminated string literal")),
                    Some(ch) if ch == q && at(i + 1) == Some(q) => {
                        s.push(q);
                        i += 2;
                    }
                    Some(ch) if ch == q => {
                        i += 1;
                        break;
                    }
                    Some(ch) => {
                        s.push(ch);
                        i += 1;
                    }
                }
            }
            Tok::Str(s)
        } else if c == '\'' || c == '"' {
            i += 1;
            let mut s = String::new();
            loop {
                match at(i) {
                    None | Some('\n') => {
                        return Err(err_at(
                            line,
                            col,
                            &c.to_string(),
                            "unterminated string literal",
                        ))
                    }
                    Some('\\') => {
                        let esc = at(i + 1).ok_or_else(|| {
                            err_at(line, col, &c.to_string(), "unterminated string literal")
                        })?;
                        s.push(match esc {
                            'n' => '\n',
                            't' => '\t',
                            'r' => '\r',
                            other => other,
                        });
                        i += 2;
                    }
                    Some(ch) if ch == c => {
                        i += 1;
                        break;
                    }
                    Some(ch) => {
                        s.push(ch);
                        i += 1;
                    }
                }
            }
            Tok::Str(s)
        } else if c.is_ascii_digit() {
            while at(i).is_some_and(|n| n.is_ascii_digit() || n == '.') {
                i += 1;
            }
            if at(i).is_some_and(|n| n.is_ascii_alphabetic() || n == '_') {
                let text: String = chars[start..=i].iter().collect();
                return Err(err_at(
                    line,
                    col,
                    &text,
                    "timespans and typed literals are not supported",
                ));
            }
            let text: String = chars[start..i].iter().collect();
            let n: f64 = text
                .parse()
                .map_err(|_| err_at(line, col, &text, "invalid number"))?;
            Tok::Num(n)
        } else {
            let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
            match SYMBOLS.iter().find(|s| rest.starts_with(**s)) {
                Some(s) => {
                    i += s.chars().count();
                    Tok::Sym(s)
                }
                None => {
                    return Err(err_at(line, col, &c.to_string(), "token recognition error"));
                }
            }
        };
        out.push(Token {
            tok,
            line,
            col,
            text: chars[start..i].iter().collect(),
        });
    }
    out.push(Token {
        tok: Tok::Eof,
        line,
        col: chars.len() - line_start,
        text: "<EOF>".into(),
    });
    Ok(out)
}

fn err_at(line: usize, col: usize, token: &str, message: &str) -> KqlError {
    KqlError {
        message: message.to_string(),
        line,
        col,
        token: token.to_string(),
    }
}

const OPERATORS: [&str; 7] = [
    "where", "filter", "project", "extend", "order", "sort", "take",
];
const RESERVED: [&str; 12] = [
    "where",
    "filter",
    "project",
    "extend",
    "order",
    "sort",
    "take",
    "limit",
    "and",
    "or",
    "by",
    "summarize",
];

struct Parser {
    toks: Vec<Token>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        &self.toks[self.pos.min(self.toks.len() - 1)]
    }
    fn peek_at(&self, n: usize) -> &Token {
        &self.toks[(self.pos + n).min(self.toks.len() - 1)]
    }
    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }
    fn error(&self, message: impl Into<String>) -> KqlError {
        let t = self.peek();
        KqlError {
            message: message.into(),
            line: t.line,
            col: t.col,
            token: t.text.clone(),
        }
    }
    fn is_sym(&self, s: &str) -> bool {
        matches!(&self.peek().tok, Tok::Sym(x) if *x == s)
    }
    fn is_ident(&self, s: &str) -> bool {
        matches!(&self.peek().tok, Tok::Ident(x) if x == s)
    }
    fn expect_sym(&mut self, s: &str) -> Result<(), KqlError> {
        if self.is_sym(s) {
            self.next();
            Ok(())
        } else {
            Err(self.error(format!("expected '{s}'")))
        }
    }
    fn ident(&mut self, what: &str) -> Result<String, KqlError> {
        match &self.peek().tok {
            Tok::Ident(s) if !s.starts_with('!') => {
                let s = s.clone();
                self.next();
                Ok(s)
            }
            _ => Err(self.error(format!("expected {what}"))),
        }
    }

    fn query(&mut self) -> Result<Query, KqlError> {
        let mut stages = Vec::new();
        let table = match &self.peek().tok {
            Tok::Ident(name) if Table::from_name(name).is_some() => {
                let t = Table::from_name(name);
                self.next();
                t
            }
            Tok::Ident(name) if OPERATORS.contains(&name.as_str()) || name == "limit" => {
                stages.push(self.operator()?);
                Some(Table::Resources)
            }
            Tok::Ident(name) => {
                return Err(self.error(format!(
                    "table '{name}' is not supported by the emulator (resources, resourcecontainers, authorizationresources, computeresources, resourcechanges)"
                )))
            }
            _ => return Err(self.error("expected a table name")),
        };
        let table = table.unwrap_or(Table::Resources);
        let mut take = None;
        while !matches!(self.peek().tok, Tok::Eof) {
            if take.is_some() {
                return Err(self.error("take/limit is only supported as the last operator"));
            }
            self.expect_sym("|")?;
            if self.is_ident("take") || self.is_ident("limit") {
                self.next();
                take = Some(self.count()?);
            } else {
                stages.push(self.operator()?);
            }
        }
        if let Some(Stage::Take(n)) = stages.last() {
            take = Some(*n);
            stages.pop();
        }
        if stages.iter().any(|s| matches!(s, Stage::Take(_))) {
            return Err(self.error("take/limit is only supported as the last operator"));
        }
        if stages
            .iter()
            .filter(|s| matches!(s, Stage::Summarize { .. }))
            .count()
            > 1
        {
            return Err(self.error("the emulator supports one summarize per query"));
        }
        Ok(Query {
            table,
            stages,
            take,
        })
    }

    fn count(&mut self) -> Result<u64, KqlError> {
        match self.peek().tok {
            Tok::Num(n) if n >= 0.0 && n.fract() == 0.0 && n < 1e15 => {
                self.next();
                Ok(n as u64)
            }
            _ => Err(self.error("expected a row count")),
        }
    }

    fn operator(&mut self) -> Result<Stage, KqlError> {
        let name = self.ident("a query operator")?;
        match name.as_str() {
            "where" | "filter" => Ok(Stage::Where(self.expr()?)),
            "project" => Ok(Stage::Project(self.columns()?)),
            "extend" => Ok(Stage::Extend(self.columns()?)),
            "project-away" => {
                let mut names = vec![self.ident("a column name")?];
                while self.is_sym(",") {
                    self.next();
                    names.push(self.ident("a column name")?);
                }
                Ok(Stage::ProjectAway(names))
            }
            "order" | "sort" => {
                if !self.is_ident("by") {
                    return Err(self.error("expected 'by'"));
                }
                self.next();
                let mut keys = Vec::new();
                loop {
                    let expr = self.expr()?;
                    let mut desc = true;
                    if self.is_ident("asc") || self.is_ident("desc") {
                        desc = self.ident("asc or desc")? == "desc";
                    }
                    let mut nulls_first = !desc;
                    if self.is_ident("nulls") {
                        self.next();
                        let which = self.ident("first or last")?;
                        nulls_first = match which.as_str() {
                            "first" => true,
                            "last" => false,
                            _ => return Err(self.error("expected 'first' or 'last'")),
                        };
                    }
                    keys.push(SortKey {
                        expr,
                        desc,
                        nulls_first,
                    });
                    if !self.is_sym(",") {
                        break;
                    }
                    self.next();
                }
                Ok(Stage::Order(keys))
            }
            "take" | "limit" => Ok(Stage::Take(self.count()?)),
            "summarize" => self.summarize(),
            other => {
                self.pos -= 1;
                Err(self.error(format!(
                    "operator '{other}' is not supported by the emulator (where, project, extend, project-away, order by, summarize, take)"
                )))
            }
        }
    }

    /// `summarize [name =] agg(...), ... [by [name =] expr, ...]` with the
    /// aggregations `count()`, `make_list(x)`, `make_set(x)`, `take_any(x)`.
    fn summarize(&mut self) -> Result<Stage, KqlError> {
        let mut aggs = Vec::new();
        loop {
            let named = matches!(&self.peek().tok, Tok::Ident(_))
                && matches!(self.peek_at(1).tok, Tok::Sym("="));
            let name = if named {
                let n = self.ident("a column name")?;
                self.next();
                Some(n)
            } else {
                None
            };
            let func = self.ident("an aggregation (count, make_list, make_set, take_any)")?;
            self.expect_sym("(")?;
            let agg = match func.as_str() {
                "count" => Agg::Count,
                "make_list" | "make_set" | "take_any" | "any" => {
                    let e = self.expr()?;
                    match func.as_str() {
                        "make_list" => Agg::MakeList(e),
                        "make_set" => Agg::MakeSet(e),
                        _ => Agg::TakeAny(e),
                    }
                }
                other => {
                    return Err(self.error(format!(
                        "aggregation '{other}' is not supported by the emulator (count, make_list, make_set, take_any)"
                    )))
                }
            };
            self.expect_sym(")")?;
            let name = name.unwrap_or_else(|| agg.default_name());
            aggs.push((name, agg));
            if !self.is_sym(",") {
                break;
            }
            self.next();
        }
        let by = if self.is_ident("by") {
            self.next();
            self.columns()?
        } else {
            Vec::new()
        };
        Ok(Stage::Summarize { aggs, by })
    }

    fn columns(&mut self) -> Result<Vec<(String, Expr)>, KqlError> {
        let mut cols = Vec::new();
        let mut unnamed = 0;
        loop {
            let named = matches!(&self.peek().tok, Tok::Ident(_))
                && matches!(self.peek_at(1).tok, Tok::Sym("="));
            if named {
                let name = self.ident("a column name")?;
                self.next();
                cols.push((name, self.expr()?));
            } else {
                let expr = self.expr()?;
                let name = expr.inferred_name().unwrap_or_else(|| {
                    unnamed += 1;
                    format!("Column{unnamed}")
                });
                cols.push((name, expr));
            }
            if !self.is_sym(",") {
                return Ok(cols);
            }
            self.next();
        }
    }

    fn expr(&mut self) -> Result<Expr, KqlError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error("expression nested too deeply"));
        }
        let r = self.or_expr();
        self.depth -= 1;
        r
    }

    fn or_expr(&mut self) -> Result<Expr, KqlError> {
        let mut lhs = self.and_expr()?;
        while self.is_ident("or") {
            self.next();
            let rhs = self.and_expr()?;
            lhs = Expr::Or(Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn and_expr(&mut self) -> Result<Expr, KqlError> {
        let mut lhs = self.cmp_expr()?;
        while self.is_ident("and") {
            self.next();
            let rhs = self.cmp_expr()?;
            lhs = Expr::And(Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn cmp_expr(&mut self) -> Result<Expr, KqlError> {
        let lhs = self.primary()?;
        let op = match &self.peek().tok {
            Tok::Sym(s) => match *s {
                "==" => Some(CmpOp::Eq),
                "!=" => Some(CmpOp::Ne),
                "=~" => Some(CmpOp::EqCi),
                "!~" => Some(CmpOp::NeCi),
                "<" => Some(CmpOp::Lt),
                "<=" => Some(CmpOp::Le),
                ">" => Some(CmpOp::Gt),
                ">=" => Some(CmpOp::Ge),
                _ => None,
            },
            Tok::Ident(w) => match w.as_str() {
                "contains" => Some(CmpOp::Contains(false)),
                "!contains" => Some(CmpOp::Contains(true)),
                "has" => Some(CmpOp::Has(false)),
                "!has" => Some(CmpOp::Has(true)),
                "startswith" => Some(CmpOp::StartsWith(false)),
                "!startswith" => Some(CmpOp::StartsWith(true)),
                "endswith" => Some(CmpOp::EndsWith(false)),
                "!endswith" => Some(CmpOp::EndsWith(true)),
                "in" | "in~" | "!in" | "!in~" => {
                    let negated = w.starts_with('!');
                    let ci = w.ends_with('~');
                    self.next();
                    self.expect_sym("(")?;
                    let mut list = vec![self.expr()?];
                    while self.is_sym(",") {
                        self.next();
                        list.push(self.expr()?);
                    }
                    self.expect_sym(")")?;
                    return Ok(Expr::In {
                        negated,
                        ci,
                        lhs: Box::new(lhs),
                        list,
                    });
                }
                _ => None,
            },
            _ => None,
        };
        match op {
            Some(op) => {
                self.next();
                let rhs = self.primary()?;
                Ok(Expr::Cmp(op, Box::new(lhs), Box::new(rhs)))
            }
            None => Ok(lhs),
        }
    }

    fn primary(&mut self) -> Result<Expr, KqlError> {
        let t = self.peek().clone();
        match t.tok {
            Tok::Str(s) => {
                self.next();
                Ok(Expr::Lit(Value::String(s)))
            }
            Tok::Num(n) => {
                self.next();
                Ok(Expr::Lit(number(n)))
            }
            Tok::Sym("(") => {
                self.next();
                let e = self.expr()?;
                self.expect_sym(")")?;
                Ok(e)
            }
            Tok::Sym("[") => {
                let seg = self.bracket()?;
                self.path_rest(vec![seg])
            }
            Tok::Ident(ref w) if w == "true" || w == "false" => {
                self.next();
                Ok(Expr::Lit(Value::Bool(w == "true")))
            }
            Tok::Ident(ref w) if matches!(self.peek_at(1).tok, Tok::Sym("(")) => {
                let func = Func::from_name(w).ok_or_else(|| {
                    self.error(format!("function '{w}' is not supported by the emulator"))
                })?;
                self.next();
                self.next();
                let mut args = Vec::new();
                if !self.is_sym(")") {
                    args.push(self.expr()?);
                    while self.is_sym(",") {
                        self.next();
                        args.push(self.expr()?);
                    }
                }
                if !func.arity_ok(args.len()) {
                    return Err(self.error(format!("wrong number of arguments to '{w}'")));
                }
                self.expect_sym(")")?;
                Ok(Expr::Call(func, args))
            }
            Tok::Ident(ref w) if !w.starts_with('!') && !RESERVED.contains(&w.as_str()) => {
                self.next();
                self.path_rest(vec![Seg::Key(w.clone())])
            }
            _ => Err(self.error("expected an expression")),
        }
    }

    fn bracket(&mut self) -> Result<Seg, KqlError> {
        self.expect_sym("[")?;
        let seg = match self.peek().tok.clone() {
            Tok::Str(s) => Seg::Key(s),
            Tok::Num(n) if n.fract() == 0.0 && n.abs() < 1e9 => Seg::Index(n as i64),
            _ => return Err(self.error("expected a string or an index")),
        };
        self.next();
        self.expect_sym("]")?;
        Ok(seg)
    }

    fn path_rest(&mut self, mut segs: Vec<Seg>) -> Result<Expr, KqlError> {
        loop {
            if self.is_sym(".") {
                self.next();
                segs.push(Seg::Key(self.ident("a property name")?));
            } else if self.is_sym("[") {
                segs.push(self.bracket()?);
            } else {
                return Ok(Expr::Path(segs));
            }
        }
    }
}

fn number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n)
            .map(Value::Number)
            .unwrap_or(Value::Null)
    }
}

pub(super) fn parse(text: &str) -> Result<Query, KqlError> {
    let toks = tokenize(text)?;
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
    };
    p.query()
}
