//! Element-wise expressions over variables, for example `sqrt(u**2 + v**2)` or
//! `where(t > 273.15, t - 273.15, 0)`.
//!
//! An [`Expr`] is parsed (and so checked) when a pipeline spec is validated, long before any data
//! flows; [`Expr::eval`] then evaluates it column by column: every node yields a whole column (or a
//! scalar that is broadcast), never a per-cell walk of the tree.
//!
//! # Grammar
//!
//! Python's precedence, lowest first:
//!
//! | level | syntax | notes |
//! |---|---|---|
//! | comparison | `a < b`, `<=`, `>`, `>=`, `==`, `!=` | 1.0 when true, 0.0 when false; not chainable |
//! | additive | `a + b`, `a - b` | left-associative |
//! | multiplicative | `a * b`, `a / b` | left-associative |
//! | unary | `-a` | |
//! | power | `a ** b` | right-associative, binds tighter than unary minus: `-2**2` is -4 |
//! | atoms | `1.5`, `1e-3`, `name`, `f(x, …)`, `( … )` | |
//!
//! Functions: `sqrt(x)`, `abs(x)`, `exp(x)`, `log(x)` (natural), `pow(x, y)`, `min(x, y)`,
//! `max(x, y)`, `hypot(x, y)`, `where(cond, a, b)`. A name not followed by `(` is a variable.
//!
//! # Semantics
//!
//! Literals are rounded to float32 (as numpy rounds a Python float mixed with a float32 array) and
//! all arithmetic is float32, matching numpy's float32 ufuncs: NaN propagates through arithmetic
//! and through `min`/`max` (like `np.minimum`/`np.maximum`); comparisons with NaN are false except
//! `!=`, which is true (IEEE 754, as in numpy); `where` picks its second argument where the
//! condition is non-zero, NaN counting as true (numpy's `bool(nan)`); `log` and `sqrt` of negative
//! numbers are NaN. `x ** s` and `pow(x, s)` with a scalar exponent `s` of 2, 0.5, 1, 0 or -1
//! take numpy's fast paths (square, square root, copy, one, reciprocal).
//!
//! ```
//! use isotach_core::expr::Expr;
//!
//! let expr = Expr::parse("where(t > 273.15, t - 273.15, 0) * scale").unwrap();
//! assert_eq!(expr.variables(), ["scale", "t"]);
//! let t = [300.0_f32, 250.0, f32::NAN];
//! let scale = [2.0_f32; 3];
//! let lookup = |name: &str| match name {
//!     "t" => Some(&t[..]),
//!     "scale" => Some(&scale[..]),
//!     _ => None,
//! };
//! let out = expr.eval(&lookup, 3).unwrap();
//! assert!((out[0] - 53.7).abs() < 1e-4);
//! assert_eq!(out[1], 0.0);
//! assert_eq!(out[2], 0.0); // NaN > 273.15 is false, so `where` picks 0
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// The longest expression text accepted, in characters.
pub const MAX_EXPR_CHARS: usize = 4096;

/// The deepest nesting of parentheses, function calls, unary minus and powers accepted.
pub const MAX_NESTING: usize = 64;

/// The deepest expression tree accepted (long chains such as `a + b + c + …` deepen the tree
/// without nesting).
pub const MAX_TREE_DEPTH: usize = 256;

/// How much of an expression error messages quote.
const QUOTE_CHARS: usize = 80;

/// An expression that cannot be parsed or evaluated, with the expression, the position and the
/// offending token or variable named, for example
/// `expression "a + * b": unexpected '*' at column 5`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("expression {expr:?}: {message}")]
pub struct ExprError {
    /// The expression text (shortened with `…` past 80 characters).
    pub expr: String,
    /// The 1-based character column the error points at, when it points at one.
    pub column: Option<usize>,
    /// What is wrong, with the token or value (the column is part of the message).
    pub message: String,
}

impl ExprError {
    fn new(text: &str, column: Option<usize>, message: impl Into<String>) -> Self {
        let expr = if text.chars().count() > QUOTE_CHARS {
            let mut short: String = text.chars().take(QUOTE_CHARS - 1).collect();
            short.push('…');
            short
        } else {
            text.to_owned()
        };
        Self {
            expr,
            column,
            message: message.into(),
        }
    }
}

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    /// `a + b`.
    Add,
    /// `a - b`.
    Sub,
    /// `a * b`.
    Mul,
    /// `a / b`.
    Div,
    /// `a ** b`.
    Pow,
    /// `a < b`.
    Lt,
    /// `a <= b`.
    Le,
    /// `a > b`.
    Gt,
    /// `a >= b`.
    Ge,
    /// `a == b`.
    Eq,
    /// `a != b`.
    Ne,
}

impl BinaryOp {
    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            Self::Add => "+",
            Self::Sub => "-",
            Self::Mul => "*",
            Self::Div => "/",
            Self::Pow => "**",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::Eq => "==",
            Self::Ne => "!=",
        }
    }

    fn precedence(self) -> u8 {
        match self {
            Self::Lt | Self::Le | Self::Gt | Self::Ge | Self::Eq | Self::Ne => PREC_CMP,
            Self::Add | Self::Sub => PREC_ADD,
            Self::Mul | Self::Div => PREC_MUL,
            Self::Pow => PREC_POW,
        }
    }

    fn from_symbol(symbol: &str) -> Option<Self> {
        Some(match symbol {
            "+" => Self::Add,
            "-" => Self::Sub,
            "*" => Self::Mul,
            "/" => Self::Div,
            "**" => Self::Pow,
            "<" => Self::Lt,
            "<=" => Self::Le,
            ">" => Self::Gt,
            ">=" => Self::Ge,
            "==" => Self::Eq,
            "!=" => Self::Ne,
            _ => return None,
        })
    }
}

const PREC_CMP: u8 = 1;
const PREC_ADD: u8 = 2;
const PREC_MUL: u8 = 3;
const PREC_NEG: u8 = 4;
const PREC_POW: u8 = 5;
const PREC_ATOM: u8 = 6;

/// A built-in function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Function {
    /// `sqrt(x)`: square root, NaN for negative `x`.
    Sqrt,
    /// `abs(x)`: absolute value.
    Abs,
    /// `exp(x)`: e to the power `x`.
    Exp,
    /// `log(x)`: natural logarithm, NaN for negative `x`, -inf at 0.
    Log,
    /// `pow(x, y)`: `x ** y`.
    Pow,
    /// `min(x, y)`: the smaller, NaN if either is NaN (`np.minimum`).
    Min,
    /// `max(x, y)`: the larger, NaN if either is NaN (`np.maximum`).
    Max,
    /// `hypot(x, y)`: sqrt(x² + y²) without overflow (`np.hypot`).
    Hypot,
    /// `where(cond, a, b)`: `a` where `cond` is non-zero (NaN counts as true), else `b`.
    Where,
}

impl Function {
    /// Every function, in alphabetical order.
    pub const ALL: [Function; 9] = [
        Self::Abs,
        Self::Exp,
        Self::Hypot,
        Self::Log,
        Self::Max,
        Self::Min,
        Self::Pow,
        Self::Sqrt,
        Self::Where,
    ];

    /// The name as written.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqrt => "sqrt",
            Self::Abs => "abs",
            Self::Exp => "exp",
            Self::Log => "log",
            Self::Pow => "pow",
            Self::Min => "min",
            Self::Max => "max",
            Self::Hypot => "hypot",
            Self::Where => "where",
        }
    }

    /// The number of arguments it takes.
    pub fn arity(self) -> usize {
        match self {
            Self::Sqrt | Self::Abs | Self::Exp | Self::Log => 1,
            Self::Pow | Self::Min | Self::Max | Self::Hypot => 2,
            Self::Where => 3,
        }
    }

    /// The function called `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }
}

fn known_functions() -> String {
    Function::ALL
        .iter()
        .map(|f| {
            format!(
                "{}({})",
                f.name(),
                ["x", "x, y", "cond, a, b"][f.arity() - 1]
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A node of a parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// A literal, already rounded to float32 (never negative when parsed: `-2` is `Neg(2)`).
    Number(f32),
    /// A variable, by name.
    Variable(String),
    /// `-x`.
    Neg(Box<Node>),
    /// `lhs op rhs`.
    Binary(BinaryOp, Box<Node>, Box<Node>),
    /// `f(args…)`, with as many arguments as the function's arity.
    Call(Function, Vec<Node>),
}

impl Node {
    fn precedence(&self) -> u8 {
        match self {
            Self::Number(v) if v.is_sign_negative() => PREC_NEG,
            Self::Number(_) | Self::Variable(_) | Self::Call(..) => PREC_ATOM,
            Self::Neg(_) => PREC_NEG,
            Self::Binary(op, ..) => op.precedence(),
        }
    }

    fn collect_variables<'a>(&'a self, names: &mut BTreeSet<&'a str>) {
        match self {
            Self::Number(_) => {}
            Self::Variable(name) => {
                names.insert(name);
            }
            Self::Neg(x) => x.collect_variables(names),
            Self::Binary(_, a, b) => {
                a.collect_variables(names);
                b.collect_variables(names);
            }
            Self::Call(_, args) => args.iter().for_each(|a| a.collect_variables(names)),
        }
    }
}

/// Writes `node`, in parentheses when its precedence is below `min`.
fn write_operand(f: &mut fmt::Formatter<'_>, node: &Node, min: u8) -> fmt::Result {
    if node.precedence() < min {
        write!(f, "({node})")
    } else {
        write!(f, "{node}")
    }
}

impl fmt::Display for Node {
    /// The expression with the fewest parentheses that parse back to the same tree.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Number(v) => {
                let a = v.abs();
                if a != 0.0 && !(1e-5..1e16).contains(&a) {
                    write!(f, "{v:e}")
                } else {
                    write!(f, "{v}")
                }
            }
            Self::Variable(name) => f.write_str(name),
            Self::Neg(x) => {
                f.write_str("-")?;
                write_operand(f, x, PREC_NEG)
            }
            Self::Binary(op, a, b) => {
                let p = op.precedence();
                let (left_min, right_min) = match op {
                    // Right-associative, and its right operand may be a unary minus.
                    BinaryOp::Pow => (PREC_POW + 1, PREC_NEG),
                    // Not chainable: both sides above comparison.
                    _ if p == PREC_CMP => (p + 1, p + 1),
                    // Left-associative.
                    _ => (p, p + 1),
                };
                write_operand(f, a, left_min)?;
                write!(f, " {} ", op.symbol())?;
                write_operand(f, b, right_min)
            }
            Self::Call(func, args) => {
                write!(f, "{}(", func.name())?;
                for (i, arg) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{arg}")?;
                }
                f.write_str(")")
            }
        }
    }
}

/// A parsed, checked expression: its source text and its tree.
///
/// Two expressions are equal when their trees are, whatever the spacing of their sources.
/// [`Display`](fmt::Display) writes the tree in a canonical form that parses back to an equal
/// expression.
#[derive(Debug, Clone)]
pub struct Expr {
    source: String,
    root: Node,
}

impl PartialEq for Expr {
    fn eq(&self, other: &Self) -> bool {
        self.root == other.root
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.root.fmt(f)
    }
}

impl std::str::FromStr for Expr {
    type Err = ExprError;
    fn from_str(text: &str) -> Result<Self, ExprError> {
        Self::parse(text)
    }
}

impl serde::Serialize for Expr {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

impl<'de> serde::Deserialize<'de> for Expr {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl Expr {
    /// Parses and checks `text`. Never panics: empty, over-long (more than [`MAX_EXPR_CHARS`]
    /// characters) or too deeply nested (more than [`MAX_NESTING`] levels, or a tree deeper than
    /// [`MAX_TREE_DEPTH`]) input is an error like any syntax error.
    ///
    /// ```
    /// use isotach_core::expr::Expr;
    /// let err = Expr::parse("a + * b").unwrap_err();
    /// assert_eq!(err.to_string(), "expression \"a + * b\": unexpected '*' at column 5");
    /// assert_eq!(Expr::parse("-2**2").unwrap().to_string(), "-2 ** 2");
    /// ```
    pub fn parse(text: &str) -> Result<Self, ExprError> {
        let chars = text.chars().count();
        if chars > MAX_EXPR_CHARS {
            return Err(ExprError::new(
                text,
                None,
                format!("is {chars} characters long, more than the limit of {MAX_EXPR_CHARS}"),
            ));
        }
        if text.trim().is_empty() {
            return Err(ExprError::new(text, None, "the expression is empty"));
        }
        let tokens = lex(text)?;
        let mut parser = Parser {
            text,
            tokens,
            pos: 0,
            nesting: 0,
        };
        let (root, _depth) = parser.comparison()?;
        let next = parser.peek();
        if next.kind != Kind::End {
            return Err(parser.unexpected(next));
        }
        Ok(Self {
            source: text.to_owned(),
            root,
        })
    }

    /// The text the expression was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The expression tree.
    pub fn root(&self) -> &Node {
        &self.root
    }

    /// The variables the expression reads, sorted and unique.
    pub fn variables(&self) -> Vec<String> {
        let mut names = BTreeSet::new();
        self.root.collect_variables(&mut names);
        names.into_iter().map(str::to_owned).collect()
    }

    /// Evaluates the expression over columns of `len` values; `inputs` gives each variable's
    /// column. A result that depends on no variable is broadcast to `len` values.
    ///
    /// Fails, naming the variable, when a variable is missing or its column does not hold `len`
    /// values.
    pub fn eval<'a>(
        &self,
        inputs: &dyn Fn(&str) -> Option<&'a [f32]>,
        len: usize,
    ) -> Result<Vec<f32>, ExprError> {
        let names = self.variables();
        let mut columns: BTreeMap<&str, &'a [f32]> = BTreeMap::new();
        for name in &names {
            let column = inputs(name).ok_or_else(|| {
                ExprError::new(
                    &self.source,
                    None,
                    format!(
                        "variable {name:?} is missing (the expression reads: {})",
                        names.join(", ")
                    ),
                )
            })?;
            if column.len() != len {
                return Err(ExprError::new(
                    &self.source,
                    None,
                    format!(
                        "variable {name:?} has {} values, expected {len}",
                        column.len()
                    ),
                ));
            }
            columns.insert(name, column);
        }
        Ok(match eval_node(&self.root, &columns) {
            Value::Scalar(v) => vec![v; len],
            Value::Slice(s) => s.to_vec(),
            Value::Column(c) => c,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Evaluation.

/// The value of a node: a scalar to broadcast, a borrowed input column, or an owned column that
/// later nodes overwrite in place.
enum Value<'a> {
    Scalar(f32),
    Slice(&'a [f32]),
    Column(Vec<f32>),
}

impl Value<'_> {
    fn at(&self, i: usize) -> f32 {
        match self {
            Self::Scalar(v) => *v,
            Self::Slice(s) => s[i],
            Self::Column(c) => c[i],
        }
    }
}

fn map1<'a>(x: Value<'a>, f: impl Fn(f32) -> f32) -> Value<'a> {
    match x {
        Value::Scalar(v) => Value::Scalar(f(v)),
        Value::Slice(s) => Value::Column(s.iter().map(|v| f(*v)).collect()),
        Value::Column(mut c) => {
            c.iter_mut().for_each(|v| *v = f(*v));
            Value::Column(c)
        }
    }
}

fn map2<'a>(a: Value<'a>, b: Value<'a>, f: impl Fn(f32, f32) -> f32) -> Value<'a> {
    match (a, b) {
        (Value::Scalar(x), Value::Scalar(y)) => Value::Scalar(f(x, y)),
        (Value::Column(mut c), Value::Scalar(y)) => {
            c.iter_mut().for_each(|x| *x = f(*x, y));
            Value::Column(c)
        }
        (Value::Column(mut c), Value::Slice(s)) => {
            c.iter_mut().zip(s).for_each(|(x, y)| *x = f(*x, *y));
            Value::Column(c)
        }
        (Value::Column(mut c), Value::Column(d)) => {
            c.iter_mut().zip(&d).for_each(|(x, y)| *x = f(*x, *y));
            Value::Column(c)
        }
        (Value::Scalar(x), Value::Column(mut c)) => {
            c.iter_mut().for_each(|y| *y = f(x, *y));
            Value::Column(c)
        }
        (Value::Slice(s), Value::Column(mut c)) => {
            c.iter_mut().zip(s).for_each(|(y, x)| *y = f(*x, *y));
            Value::Column(c)
        }
        (Value::Slice(s), Value::Scalar(y)) => Value::Column(s.iter().map(|x| f(*x, y)).collect()),
        (Value::Scalar(x), Value::Slice(s)) => Value::Column(s.iter().map(|y| f(x, *y)).collect()),
        (Value::Slice(s), Value::Slice(t)) => {
            Value::Column(s.iter().zip(t).map(|(x, y)| f(*x, *y)).collect())
        }
    }
}

fn select<'a>(cond: Value<'a>, a: Value<'a>, b: Value<'a>) -> Value<'a> {
    let mut out = match cond {
        // NaN != 0 is true: NaN picks `a`, as numpy's bool(nan) is True.
        Value::Scalar(c) => return if c != 0.0 { a } else { b },
        Value::Slice(s) => s.to_vec(),
        Value::Column(c) => c,
    };
    for (i, c) in out.iter_mut().enumerate() {
        *c = if *c != 0.0 { a.at(i) } else { b.at(i) };
    }
    Value::Column(out)
}

fn bool32(b: bool) -> f32 {
    if b { 1.0 } else { 0.0 }
}

/// `np.minimum`: NaN if either side is NaN.
fn minimum(a: f32, b: f32) -> f32 {
    if a.is_nan() || a <= b { a } else { b }
}

/// `np.maximum`: NaN if either side is NaN.
fn maximum(a: f32, b: f32) -> f32 {
    if a.is_nan() || a >= b { a } else { b }
}

/// `x ** y` as numpy computes it for float32: fast paths for the scalar exponents numpy
/// special-cases, `powf` otherwise.
fn power<'a>(x: Value<'a>, y: Value<'a>) -> Value<'a> {
    match y {
        Value::Scalar(2.0) => map1(x, |v| v * v),
        Value::Scalar(0.5) => map1(x, f32::sqrt),
        Value::Scalar(1.0) => map1(x, |v| v),
        // Matches -0.0 too (patterns compare with ==), as numpy's test does.
        Value::Scalar(0.0) => map1(x, |_| 1.0),
        Value::Scalar(-1.0) => map1(x, |v| 1.0 / v),
        y => map2(x, y, f32::powf),
    }
}

fn eval_node<'a>(node: &Node, columns: &BTreeMap<&str, &'a [f32]>) -> Value<'a> {
    match node {
        Node::Number(v) => Value::Scalar(*v),
        // Every variable was resolved before evaluation; NaN is unreachable.
        Node::Variable(name) => columns
            .get(name.as_str())
            .map_or(Value::Scalar(f32::NAN), |s| Value::Slice(s)),
        Node::Neg(x) => map1(eval_node(x, columns), |v| -v),
        Node::Binary(op, a, b) => {
            let a = eval_node(a, columns);
            let b = eval_node(b, columns);
            match op {
                BinaryOp::Add => map2(a, b, |x, y| x + y),
                BinaryOp::Sub => map2(a, b, |x, y| x - y),
                BinaryOp::Mul => map2(a, b, |x, y| x * y),
                BinaryOp::Div => map2(a, b, |x, y| x / y),
                BinaryOp::Pow => power(a, b),
                BinaryOp::Lt => map2(a, b, |x, y| bool32(x < y)),
                BinaryOp::Le => map2(a, b, |x, y| bool32(x <= y)),
                BinaryOp::Gt => map2(a, b, |x, y| bool32(x > y)),
                BinaryOp::Ge => map2(a, b, |x, y| bool32(x >= y)),
                BinaryOp::Eq => map2(a, b, |x, y| bool32(x == y)),
                BinaryOp::Ne => map2(a, b, |x, y| bool32(x != y)),
            }
        }
        Node::Call(func, args) => {
            let mut values = args.iter().map(|a| eval_node(a, columns));
            let mut next = || values.next().unwrap_or(Value::Scalar(f32::NAN));
            match func {
                Function::Sqrt => map1(next(), f32::sqrt),
                Function::Abs => map1(next(), f32::abs),
                Function::Exp => map1(next(), f32::exp),
                Function::Log => map1(next(), f32::ln),
                Function::Pow => {
                    let x = next();
                    power(x, next())
                }
                Function::Min => {
                    let x = next();
                    map2(x, next(), minimum)
                }
                Function::Max => {
                    let x = next();
                    map2(x, next(), maximum)
                }
                Function::Hypot => {
                    let x = next();
                    map2(x, next(), f32::hypot)
                }
                Function::Where => {
                    let c = next();
                    let a = next();
                    select(c, a, next())
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Lexing.

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Number(f32),
    Ident,
    Op,
    LParen,
    RParen,
    Comma,
    End,
}

#[derive(Debug, Clone)]
struct Token {
    kind: Kind,
    /// Byte range in the source.
    start: usize,
    end: usize,
    /// 1-based character column.
    column: usize,
}

fn lex(text: &str) -> Result<Vec<Token>, ExprError> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let byte_at = |i: usize| chars.get(i).map_or(text.len(), |(b, _)| *b);
    let char_at = |i: usize| chars.get(i).map(|(_, c)| *c);
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(c) = char_at(i) {
        let start = i;
        let column = i + 1;
        let kind = if c.is_whitespace() {
            i += 1;
            continue;
        } else if c.is_ascii_digit()
            || (c == '.' && char_at(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            while char_at(i).is_some_and(|d| d.is_ascii_digit()) {
                i += 1;
            }
            if char_at(i) == Some('.') {
                i += 1;
                while char_at(i).is_some_and(|d| d.is_ascii_digit()) {
                    i += 1;
                }
            }
            if matches!(char_at(i), Some('e' | 'E')) {
                let mut j = i + 1;
                if matches!(char_at(j), Some('+' | '-')) {
                    j += 1;
                }
                if char_at(j).is_some_and(|d| d.is_ascii_digit()) {
                    i = j;
                    while char_at(i).is_some_and(|d| d.is_ascii_digit()) {
                        i += 1;
                    }
                }
            }
            // A number runs into a name or another dot: `2a`, `1e`, `1.2.3`.
            if char_at(i).is_some_and(|d| d.is_ascii_alphanumeric() || d == '_' || d == '.') {
                while char_at(i).is_some_and(|d| d.is_ascii_alphanumeric() || d == '_' || d == '.')
                {
                    i += 1;
                }
                let literal = &text[byte_at(start)..byte_at(i)];
                return Err(ExprError::new(
                    text,
                    Some(column),
                    format!("malformed number '{literal}' at column {column}"),
                ));
            }
            let literal = &text[byte_at(start)..byte_at(i)];
            // Parse as a double and round, as Python parses a float and numpy casts it.
            let value = literal.parse::<f64>().map(|v| v as f32).unwrap_or(f32::NAN);
            if !value.is_finite() {
                return Err(ExprError::new(
                    text,
                    Some(column),
                    format!("number {literal} at column {column} is outside the float32 range"),
                ));
            }
            Kind::Number(value)
        } else if c.is_ascii_alphabetic() || c == '_' {
            while char_at(i).is_some_and(|d| d.is_ascii_alphanumeric() || d == '_') {
                i += 1;
            }
            Kind::Ident
        } else {
            let next = char_at(i + 1);
            let (kind, width) = match (c, next) {
                ('*', Some('*')) | ('<' | '>' | '=' | '!', Some('=')) => (Kind::Op, 2),
                ('+' | '-' | '*' | '/' | '<' | '>', _) => (Kind::Op, 1),
                ('(', _) => (Kind::LParen, 1),
                (')', _) => (Kind::RParen, 1),
                (',', _) => (Kind::Comma, 1),
                _ => {
                    let hint = match c {
                        '=' => " (use '==' to compare)",
                        '^' => " (use '**' for powers)",
                        _ => "",
                    };
                    return Err(ExprError::new(
                        text,
                        Some(column),
                        format!("unexpected '{}' at column {column}{hint}", c.escape_debug()),
                    ));
                }
            };
            i += width;
            kind
        };
        tokens.push(Token {
            kind,
            start: byte_at(start),
            end: byte_at(i),
            column,
        });
    }
    tokens.push(Token {
        kind: Kind::End,
        start: text.len(),
        end: text.len(),
        column: chars.len() + 1,
    });
    Ok(tokens)
}

// ---------------------------------------------------------------------------------------------
// Parsing: recursive descent, each rule returning its node and the depth of its tree.

type Parsed = Result<(Node, usize), ExprError>;

struct Parser<'t> {
    text: &'t str,
    tokens: Vec<Token>,
    pos: usize,
    nesting: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Token {
        // The token list always ends with `End`, and `advance` never moves past it.
        self.tokens.get(self.pos).cloned().unwrap_or(Token {
            kind: Kind::End,
            start: self.text.len(),
            end: self.text.len(),
            column: self.text.chars().count() + 1,
        })
    }

    fn advance(&mut self) -> Token {
        let token = self.peek();
        if token.kind != Kind::End {
            self.pos += 1;
        }
        token
    }

    fn op(&self, token: &Token) -> Option<BinaryOp> {
        if token.kind == Kind::Op {
            BinaryOp::from_symbol(&self.text[token.start..token.end])
        } else {
            None
        }
    }

    fn is_op(&self, symbol: &str) -> bool {
        let token = self.peek();
        token.kind == Kind::Op && &self.text[token.start..token.end] == symbol
    }

    fn error(&self, column: usize, message: String) -> ExprError {
        ExprError::new(self.text, Some(column), message)
    }

    fn unexpected(&self, token: Token) -> ExprError {
        let message = if token.kind == Kind::End {
            format!("unexpected end of expression at column {}", token.column)
        } else {
            format!(
                "unexpected '{}' at column {}",
                &self.text[token.start..token.end],
                token.column
            )
        };
        self.error(token.column, message)
    }

    fn enter(&mut self, token: &Token) -> Result<(), ExprError> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return Err(self.error(
                token.column,
                format!(
                    "nested more than {MAX_NESTING} levels deep at column {}",
                    token.column
                ),
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.nesting -= 1;
    }

    fn binary(&self, op: BinaryOp, at: &Token, lhs: (Node, usize), rhs: (Node, usize)) -> Parsed {
        let depth = lhs.1.max(rhs.1) + 1;
        if depth > MAX_TREE_DEPTH {
            return Err(self.error(
                at.column,
                format!(
                    "more than {MAX_TREE_DEPTH} chained operations at column {} (split the \
                     expression into several steps)",
                    at.column
                ),
            ));
        }
        Ok((Node::Binary(op, Box::new(lhs.0), Box::new(rhs.0)), depth))
    }

    /// comparison := additive [cmp additive]
    fn comparison(&mut self) -> Parsed {
        let lhs = self.additive()?;
        let token = self.peek();
        match self.op(&token) {
            Some(op) if op.precedence() == PREC_CMP => {
                self.advance();
                let rhs = self.additive()?;
                let after = self.peek();
                if self.op(&after).is_some_and(|o| o.precedence() == PREC_CMP) {
                    let symbol = &self.text[after.start..after.end];
                    return Err(self.error(
                        after.column,
                        format!(
                            "unexpected '{symbol}' at column {}: comparisons cannot be chained \
                             (use parentheses)",
                            after.column
                        ),
                    ));
                }
                self.binary(op, &token, lhs, rhs)
            }
            _ => Ok(lhs),
        }
    }

    /// additive := multiplicative (('+' | '-') multiplicative)*
    fn additive(&mut self) -> Parsed {
        let mut lhs = self.multiplicative()?;
        loop {
            let token = self.peek();
            match self.op(&token) {
                Some(op @ (BinaryOp::Add | BinaryOp::Sub)) => {
                    self.advance();
                    let rhs = self.multiplicative()?;
                    lhs = self.binary(op, &token, lhs, rhs)?;
                }
                _ => return Ok(lhs),
            }
        }
    }

    /// multiplicative := unary (('*' | '/') unary)*
    fn multiplicative(&mut self) -> Parsed {
        let mut lhs = self.unary()?;
        loop {
            let token = self.peek();
            match self.op(&token) {
                Some(op @ (BinaryOp::Mul | BinaryOp::Div)) => {
                    self.advance();
                    let rhs = self.unary()?;
                    lhs = self.binary(op, &token, lhs, rhs)?;
                }
                _ => return Ok(lhs),
            }
        }
    }

    /// unary := '-' unary | power
    fn unary(&mut self) -> Parsed {
        if self.is_op("-") {
            let token = self.advance();
            self.enter(&token)?;
            let (x, depth) = self.unary()?;
            self.leave();
            return Ok((Node::Neg(Box::new(x)), depth + 1));
        }
        self.power()
    }

    /// power := primary ['**' unary]
    fn power(&mut self) -> Parsed {
        let base = self.primary()?;
        if self.is_op("**") {
            let token = self.advance();
            self.enter(&token)?;
            let exponent = self.unary()?;
            self.leave();
            return self.binary(BinaryOp::Pow, &token, base, exponent);
        }
        Ok(base)
    }

    /// primary := number | name | name '(' args ')' | '(' comparison ')'
    fn primary(&mut self) -> Parsed {
        let token = self.advance();
        match token.kind {
            Kind::Number(v) => Ok((Node::Number(v), 1)),
            Kind::Ident => {
                let name = &self.text[token.start..token.end];
                if self.peek().kind == Kind::LParen {
                    self.call(name, &token)
                } else {
                    Ok((Node::Variable(name.to_owned()), 1))
                }
            }
            Kind::LParen => {
                self.enter(&token)?;
                let inner = self.comparison()?;
                self.leave();
                self.close(&token)?;
                Ok(inner)
            }
            _ => Err(self.unexpected(token)),
        }
    }

    /// Consumes the `)` matching `open`.
    fn close(&mut self, open: &Token) -> Result<(), ExprError> {
        let next = self.peek();
        if next.kind == Kind::RParen {
            self.advance();
            return Ok(());
        }
        let found = if next.kind == Kind::End {
            "the end".to_owned()
        } else {
            format!("'{}'", &self.text[next.start..next.end])
        };
        Err(self.error(
            next.column,
            format!(
                "expected ')' to close '(' at column {}, found {found} at column {}",
                open.column, next.column
            ),
        ))
    }

    fn call(&mut self, name: &str, token: &Token) -> Parsed {
        let Some(func) = Function::from_name(name) else {
            return Err(self.error(
                token.column,
                format!(
                    "unknown function '{name}' at column {} (known functions: {})",
                    token.column,
                    known_functions()
                ),
            ));
        };
        let open = self.advance();
        self.enter(&open)?;
        let mut args = Vec::new();
        let mut depth = 0;
        if self.peek().kind != Kind::RParen {
            loop {
                let (arg, d) = self.comparison()?;
                args.push(arg);
                depth = depth.max(d);
                if self.peek().kind == Kind::Comma {
                    self.advance();
                } else {
                    break;
                }
            }
        }
        self.leave();
        self.close(&open)?;
        if args.len() != func.arity() {
            return Err(self.error(
                token.column,
                format!(
                    "function '{name}' at column {} takes {} argument{}, got {} (known \
                     functions: {})",
                    token.column,
                    func.arity(),
                    if func.arity() == 1 { "" } else { "s" },
                    args.len(),
                    known_functions()
                ),
            ));
        }
        Ok((Node::Call(func, args), depth + 1))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn eval(text: &str, vars: &[(&str, &[f32])]) -> Vec<f32> {
        let len = vars.first().map_or(1, |(_, v)| v.len());
        let lookup = |name: &str| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
        Expr::parse(text).unwrap().eval(&lookup, len).unwrap()
    }

    fn err(text: &str) -> String {
        Expr::parse(text).unwrap_err().to_string()
    }

    /// SplitMix64, for reproducible random inputs without a dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// A random well-formed tree over `names`, at most `depth` deep.
    fn tree(rng: &mut Rng, depth: usize, names: &[&str]) -> Node {
        if depth == 0 || rng.below(4) == 0 {
            return match rng.below(3) {
                0 => Node::Number([0.0, 1.0, 2.5, 1e-3, 3e20, 1e-7][rng.below(6)]),
                _ => Node::Variable(names[rng.below(names.len())].to_owned()),
            };
        }
        match rng.below(4) {
            0 => Node::Neg(Box::new(tree(rng, depth - 1, names))),
            1 => {
                let func = Function::ALL[rng.below(Function::ALL.len())];
                Node::Call(
                    func,
                    (0..func.arity())
                        .map(|_| tree(rng, depth - 1, names))
                        .collect(),
                )
            }
            _ => {
                const OPS: [BinaryOp; 11] = [
                    BinaryOp::Add,
                    BinaryOp::Sub,
                    BinaryOp::Mul,
                    BinaryOp::Div,
                    BinaryOp::Pow,
                    BinaryOp::Lt,
                    BinaryOp::Le,
                    BinaryOp::Gt,
                    BinaryOp::Ge,
                    BinaryOp::Eq,
                    BinaryOp::Ne,
                ];
                Node::Binary(
                    OPS[rng.below(OPS.len())],
                    Box::new(tree(rng, depth - 1, names)),
                    Box::new(tree(rng, depth - 1, names)),
                )
            }
        }
    }

    #[test]
    fn precedence_and_associativity_follow_python() {
        let one = [0.0_f32];
        let x = |t: &str| eval(t, &[("z", &one)])[0];
        assert_eq!(x("-2**2"), -4.0);
        assert_eq!(x("(-2)**2"), 4.0);
        assert_eq!(x("2**3**2"), 512.0);
        assert_eq!(x("2**-1"), 0.5);
        assert_eq!(x("-2**-2"), -0.25);
        assert_eq!(x("1 - 2 - 3"), -4.0);
        assert_eq!(x("8 / 4 / 2"), 1.0);
        assert_eq!(x("1 + 2 * 3"), 7.0);
        assert_eq!(x("(1 + 2) * 3"), 9.0);
        assert_eq!(x("1 + 2 < 4"), 1.0);
        assert_eq!(x("2 * 3 == 6"), 1.0);
        assert_eq!(x("--3"), 3.0);
        assert_eq!(x("1e-3 * 1000"), 1.0);
        assert_eq!(x(".5 + 1.5e1 + 2."), 17.5);
        assert_eq!(x("z + 1"), 1.0);
    }

    #[test]
    fn nan_semantics_match_numpy() {
        let nan = f32::NAN;
        let a = [1.0_f32, nan, 3.0, nan];
        let b = [2.0_f32, 2.0, nan, nan];
        let v = |t: &str| eval(t, &[("a", &a), ("b", &b)]);
        let bits = |v: Vec<f32>| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let nan_bits = nan.to_bits();
        assert_eq!(
            bits(v("min(a, b)")),
            [1f32.to_bits(), nan_bits, nan_bits, nan_bits]
        );
        assert_eq!(
            bits(v("max(a, b)")),
            [2f32.to_bits(), nan_bits, nan_bits, nan_bits]
        );
        assert_eq!(v("a < b"), [1.0, 0.0, 0.0, 0.0]);
        assert_eq!(v("a >= b"), [0.0, 0.0, 0.0, 0.0]);
        assert_eq!(v("a == a"), [1.0, 0.0, 1.0, 0.0]);
        assert_eq!(v("a != a"), [0.0, 1.0, 0.0, 1.0]);
        // where: NaN conditions count as true.
        assert_eq!(v("where(a, 10, 20)"), [10.0, 10.0, 10.0, 10.0]);
        assert_eq!(v("where(a - 1, 10, 20)"), [20.0, 10.0, 10.0, 10.0]);
        assert_eq!(v("where(a > 1, a, b)")[..3], [2.0, 2.0, 3.0]);
        let r = v("a + b");
        assert!(r[1].is_nan() && r[2].is_nan() && r[0] == 3.0);
        let neg = [-1.0_f32, 0.0, 4.0];
        let w = eval("log(x)", &[("x", &neg)]);
        assert!(w[0].is_nan() && w[1] == f32::NEG_INFINITY && w[2] == 4f32.ln());
        let s = eval("sqrt(x)", &[("x", &neg)]);
        assert!(s[0].is_nan() && s[1] == 0.0 && s[2] == 2.0);
        // numpy's scalar-exponent fast path: (-inf) ** 0.5 is sqrt(-inf) = NaN, but pow() with an
        // array exponent is powf: +inf.
        let inf = [f32::NEG_INFINITY];
        let half = [0.5_f32];
        assert!(eval("x ** 0.5", &[("x", &inf)])[0].is_nan());
        assert!(eval("pow(x, 0.5)", &[("x", &inf)])[0].is_nan());
        let v = eval("pow(x, h)", &[("x", &inf), ("h", &half)]);
        assert_eq!(v[0], f32::INFINITY);
    }

    #[test]
    fn columns_and_scalars_broadcast_and_inputs_are_checked() {
        let a = [1.0_f32, 2.0, 3.0];
        let expr = Expr::parse("2 * 3").unwrap();
        assert_eq!(expr.eval(&|_| None, 3).unwrap(), [6.0; 3]);
        let expr = Expr::parse("a + b * a").unwrap();
        assert_eq!(expr.variables(), ["a", "b"]);
        let missing = expr
            .eval(&|n| (n == "a").then_some(&a[..]), 3)
            .unwrap_err()
            .to_string();
        assert_eq!(
            missing,
            "expression \"a + b * a\": variable \"b\" is missing (the expression reads: a, b)"
        );
        let short = [1.0_f32];
        let lookup = |n: &str| {
            if n == "a" {
                Some(&a[..])
            } else {
                Some(&short[..])
            }
        };
        let wrong = expr.eval(&lookup, 3).unwrap_err().to_string();
        assert!(
            wrong.contains("variable \"b\" has 1 values, expected 3"),
            "{wrong}"
        );
        let same = |_: &str| Some(&a[..]);
        assert_eq!(expr.eval(&same, 3).unwrap(), [2.0, 6.0, 12.0]);
    }

    #[test]
    fn errors_name_expression_position_and_token() {
        assert_eq!(
            err("a + * b"),
            "expression \"a + * b\": unexpected '*' at column 5"
        );
        assert_eq!(
            err("a +"),
            "expression \"a +\": unexpected end of expression at column 4"
        );
        assert_eq!(err(""), "expression \"\": the expression is empty");
        assert_eq!(err("  "), "expression \"  \": the expression is empty");
        assert_eq!(err("a b"), "expression \"a b\": unexpected 'b' at column 3");
        assert!(err("foo(a)").contains("unknown function 'foo' at column 1 (known functions: abs(x), exp(x), hypot(x, y), log(x), max(x, y), min(x, y), pow(x, y), sqrt(x), where(cond, a, b))"), "{}", err("foo(a)"));
        assert!(
            err("hypot(a)").contains("function 'hypot' at column 1 takes 2 arguments, got 1"),
            "{}",
            err("hypot(a)")
        );
        assert!(err("sqrt()").contains("takes 1 argument, got 0"));
        assert!(err("where(a, b, c, d)").contains("takes 3 arguments, got 4"));
        assert!(
            err("(a + b")
                .contains("expected ')' to close '(' at column 1, found the end at column 7")
        );
        assert!(
            err("a < b < c").contains("unexpected '<' at column 7: comparisons cannot be chained")
        );
        assert!(err("a = b").contains("unexpected '=' at column 3 (use '==' to compare)"));
        assert!(err("a ^ 2").contains("(use '**' for powers)"));
        assert!(err("2a").contains("malformed number '2a' at column 1"));
        assert!(err("1e").contains("malformed number '1e'"));
        assert!(err("1.2.3").contains("malformed number '1.2.3'"));
        assert!(err("1e39 * a").contains("number 1e39 at column 1 is outside the float32 range"));
        assert!(err("a $ b").contains("unexpected '$' at column 3"));
        assert!(err("°C").contains("unexpected '°' at column 1"));
        assert!(err("a ,b").contains("unexpected ','"));
        assert!(err("()").contains("unexpected ')' at column 2"));
        let long = "a+".repeat(3000) + "a";
        assert!(err(&long).contains("is 6001 characters long, more than the limit of 4096"));
        assert!(err(&long).starts_with("expression \"a+a+"));
        assert!(err(&long).contains('…'));
        let deep = "(".repeat(65) + "a" + &")".repeat(65);
        assert!(err(&deep).contains("nested more than 64 levels deep at column 65"));
        let ok = "(".repeat(64) + "a" + &")".repeat(64);
        assert!(Expr::parse(&ok).is_ok());
        let chain = "a+".repeat(300) + "a";
        assert!(err(&chain).contains("more than 256 chained operations"));
        let negs = "-".repeat(100) + "a";
        assert!(err(&negs).contains("nested more than 64 levels"));
        let powers = "a**".repeat(100) + "a";
        assert!(err(&powers).contains("nested more than 64 levels"));
        let calls = "sqrt(".repeat(100) + "a" + &")".repeat(100);
        assert!(err(&calls).contains("nested more than 64 levels"));
        let e = Expr::parse("a + * b").unwrap_err();
        assert_eq!(e.column, Some(5));
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "-2**2",
            "(-2)**2",
            "2**3**2",
            "(2**3)**2",
            "2**-x",
            "a - (b - c)",
            "(a - b) - c",
            "a / (b * c)",
            "-(a + b)",
            "--a",
            "-a**-b**c",
            "(a < b) == (c > d)",
            "where(a >= 0, sqrt(a), -sqrt(-a))",
            "hypot(u, v) * 1e-3 + 1e20 - 3.25e-7",
            "min(a, max(b, 0.1)) != pow(a, 2)",
            "(a + b) ** 2",
            "-(2) ** 2",
        ] {
            let e = Expr::parse(text).unwrap();
            let shown = e.to_string();
            let back = Expr::parse(&shown).unwrap();
            assert_eq!(back, e, "{text:?} -> {shown:?}");
            assert_eq!(back.to_string(), shown, "{text:?}");
        }
        assert_eq!(Expr::parse("(a+b)*c").unwrap().to_string(), "(a + b) * c");
        assert_eq!(Expr::parse("a-(b-c)").unwrap().to_string(), "a - (b - c)");
        assert_eq!(Expr::parse("(-2)**2").unwrap().to_string(), "(-2) ** 2");
        assert_eq!(Expr::parse("1e-3").unwrap().to_string(), "0.001");
        assert_eq!(Expr::parse(" a ").unwrap().source(), " a ");
    }

    #[test]
    fn serde_uses_the_source_text() {
        let e: Expr = "a*2".parse().unwrap();
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(json, "\"a*2\"");
        let back: Expr = serde_json::from_str(&json).unwrap();
        assert_eq!(back, e);
        let bad = serde_json::from_str::<Expr>("\"a +\"")
            .unwrap_err()
            .to_string();
        assert!(bad.contains("unexpected end of expression"), "{bad}");
    }

    /// Random byte strings and random token soups: parsing never panics, and whatever parses
    /// prints to text that parses back to the same tree and evaluates without panicking.
    #[test]
    fn fuzz_random_input_never_panics() {
        let mut rng = Rng(7);
        for _ in 0..3000 {
            let len = rng.below(40);
            let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            let text = String::from_utf8_lossy(&bytes);
            let _ = Expr::parse(&text);
        }
        const VOCAB: [&str; 34] = [
            "a", "b", "_c1", "2", "0.5", "1e-3", "1e", ".", "+", "-", "*", "/", "**", "<", "<=",
            ">", ">=", "==", "!=", "=", "(", ")", ",", "sqrt(", "abs(", "exp(", "log(", "pow(",
            "min(", "max(", "hypot(", "where(", "foo(", " ",
        ];
        let a = [1.5_f32, -2.0, 0.0, f32::NAN];
        let b = [0.25_f32, 3.0, -0.0, f32::INFINITY];
        let c = [f32::NEG_INFINITY, 1e30, -1e-30, 7.0];
        let lookup = |name: &str| match name {
            "a" => Some(&a[..]),
            "b" => Some(&b[..]),
            // Concatenated tokens make new names (`a_c1`, `b2`): give them a column too.
            _ => Some(&c[..]),
        };
        let mut parsed = 0;
        let mut check = |text: &str| {
            let Ok(expr) = Expr::parse(text) else {
                return;
            };
            parsed += 1;
            let shown = expr.to_string();
            let back = Expr::parse(&shown)
                .unwrap_or_else(|e| panic!("{text:?} printed as {shown:?}, which fails: {e}"));
            assert_eq!(back, expr, "{text:?} -> {shown:?}");
            let out = expr.eval(&lookup, 4).unwrap();
            assert_eq!(out.len(), 4);
        };
        // Token soup, mostly invalid.
        for round in 0..10_000 {
            let n = 1 + rng.below(if round % 100 == 0 { 400 } else { 16 });
            let text: String = (0..n).map(|_| VOCAB[rng.below(VOCAB.len())]).collect();
            check(&text);
        }
        // Valid expressions with a few random edits (deletions, insertions of tokens, swaps):
        // near-misses exercise every error path, untouched ones the evaluator.
        for _ in 0..10_000 {
            let mut text: Vec<char> = tree(&mut rng, 5, &["a", "b", "_c1"])
                .to_string()
                .chars()
                .collect();
            for _ in 0..rng.below(3) {
                let at = rng.below(text.len() + 1);
                match rng.below(3) {
                    0 if at < text.len() => {
                        text.remove(at);
                    }
                    1 if at + 1 < text.len() => text.swap(at, at + 1),
                    _ => {
                        let token = VOCAB[rng.below(VOCAB.len())];
                        text.splice(at..at, token.chars());
                    }
                }
            }
            check(&text.into_iter().collect::<String>());
        }
        assert!(parsed > 4000, "only {parsed} random strings parsed");
        // Pathological shapes fail cleanly instead of overflowing the stack.
        for text in [
            "(".repeat(100_000),
            ")".repeat(10_000),
            "-".repeat(4096),
            "sqrt(".repeat(1000),
            "a**".repeat(1000) + "a",
            "a+".repeat(2047) + "a",
            "(a".repeat(2000),
        ] {
            assert!(Expr::parse(&text).is_err());
        }
    }

    /// Random well-formed trees print to text that parses back to the same tree.
    #[test]
    fn random_trees_round_trip_through_text() {
        let mut rng = Rng(11);
        for _ in 0..2000 {
            let root = tree(&mut rng, 6, &["x", "y", "z_2"]);
            let text = root.to_string();
            let back = Expr::parse(&text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert_eq!(back.root(), &root, "{text:?}");
        }
    }
}
