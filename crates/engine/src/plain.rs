//! A rule's condition evaluated without the CEL interpreter, when every part of it is one this
//! module knows: features, literals, `!`, `&&`, `||`, `?:` over truth values, `==` and `!=` of
//! two values of one type, `<` `<=` `>` `>=` of two integers or two doubles, and `+` `-` of two
//! doubles. Anything else (a function, a list, integer arithmetic, a comparison across types)
//! leaves the rule to the interpreter. The interpreter builds a CEL value per feature it reads
//! and a context per evaluation (about a thousand instructions a rule); this reads the fields.
//!
//! The result is the interpreter's (`cel` 0.15), errors included, since a rule that fails acts
//! (fails closed): a comparison of doubles where one is NaN is an error (`==` is false and `!=`
//! true); `false && x` is false and `true || x` true whatever `x` is; an error on the left of
//! `&&` gives false when the right is false and an error otherwise (`||` likewise with true);
//! an error on the right is the result's; `!`, `?:`'s condition and arithmetic pass an error on.
//! The tests hold it to the interpreter on every rule of the default policy.

use crate::features::{Features, Reader, Scalar};
use crate::gate::Cmp;
use cel::IdedExpr;
use cel::common::ast::{Expr, LiteralValue, operators};

/// Any error: which one does not matter, a rule that fails only says that it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Failed;

type Out<T> = Result<T, Failed>;

/// A truth value.
#[derive(Debug)]
enum Truth {
    Feature(Reader),
    Literal(bool),
    Not(Box<Truth>),
    And(Box<Truth>, Box<Truth>),
    Or(Box<Truth>, Box<Truth>),
    Pick(Box<Truth>, Box<Truth>, Box<Truth>),
    /// `==` or `!=` of two truth values.
    Same(bool, Box<Truth>, Box<Truth>),
    Ints(Cmp, Box<Int>, Box<Int>),
    Doubles(Cmp, Box<Double>, Box<Double>),
    /// `==` or `!=` of two texts.
    Texts(bool, Box<Text>, Box<Text>),
}

#[derive(Debug)]
enum Int {
    Feature(Reader),
    Literal(i64),
}

#[derive(Debug)]
enum Double {
    Feature(Reader),
    Literal(f64),
    Add(Box<Double>, Box<Double>),
    Sub(Box<Double>, Box<Double>),
}

#[derive(Debug)]
enum Text {
    Feature(Reader),
    Literal(String),
}

/// A part of a condition, by its type.
enum Typed {
    Truth(Truth),
    Int(Int),
    Double(Double),
    Text(Text),
}

/// A condition this module evaluates (see the module documentation).
#[derive(Debug)]
pub(crate) struct Plain(Truth);

impl Plain {
    /// The plain form of a compiled condition, when every part of it has one.
    pub fn of(expression: &IdedExpr) -> Option<Self> {
        match typed(expression)? {
            Typed::Truth(truth) => Some(Plain(truth)),
            _ => None,
        }
    }

    /// The condition's value on `features`, as the interpreter would give it.
    pub fn holds(&self, features: &Features) -> Result<bool, Failed> {
        self.0.eval(features)
    }
}

fn typed(expression: &IdedExpr) -> Option<Typed> {
    match &expression.expr {
        Expr::Ident(name) => feature(name),
        Expr::Literal(literal) => Some(match literal {
            LiteralValue::Boolean(b) => Typed::Truth(Truth::Literal(*b.inner())),
            LiteralValue::Int(n) => Typed::Int(Int::Literal(*n.inner())),
            LiteralValue::Double(x) => Typed::Double(Double::Literal(*x.inner())),
            LiteralValue::String(s) => Typed::Text(Text::Literal(s.inner().to_owned())),
            _ => return None,
        }),
        Expr::Call(call) if call.target.is_none() => {
            let args: Vec<Typed> = call.args.iter().map(typed).collect::<Option<_>>()?;
            operation(&call.func_name, args)
        }
        _ => None,
    }
}

fn feature(name: &str) -> Option<Typed> {
    let read = Features::reader(name)?;
    // A feature's type is its field's: the default's value has it.
    Some(match read(&Features::default()) {
        Scalar::Bool(_) => Typed::Truth(Truth::Feature(read)),
        Scalar::Int(_) => Typed::Int(Int::Feature(read)),
        Scalar::Float(_) => Typed::Double(Double::Feature(read)),
        Scalar::Text(_) => Typed::Text(Text::Feature(read)),
    })
}

fn operation(name: &str, args: Vec<Typed>) -> Option<Typed> {
    use Typed as T;
    let cmp = match name {
        operators::EQUALS => Some(Cmp::Eq),
        operators::NOT_EQUALS => Some(Cmp::Ne),
        operators::LESS => Some(Cmp::Lt),
        operators::LESS_EQUALS => Some(Cmp::Le),
        operators::GREATER => Some(Cmp::Gt),
        operators::GREATER_EQUALS => Some(Cmp::Ge),
        _ => None,
    };
    let mut args = args.into_iter();
    let (a, b, c) = (args.next(), args.next(), args.next());
    Some(T::Truth(match (name, a, b, c) {
        (operators::LOGICAL_NOT, Some(T::Truth(a)), None, None) => Truth::Not(Box::new(a)),
        (operators::LOGICAL_AND, Some(T::Truth(a)), Some(T::Truth(b)), None) => {
            Truth::And(Box::new(a), Box::new(b))
        }
        (operators::LOGICAL_OR, Some(T::Truth(a)), Some(T::Truth(b)), None) => {
            Truth::Or(Box::new(a), Box::new(b))
        }
        (operators::CONDITIONAL, Some(T::Truth(a)), Some(T::Truth(b)), Some(T::Truth(c))) => {
            Truth::Pick(Box::new(a), Box::new(b), Box::new(c))
        }
        (operators::ADD, Some(T::Double(a)), Some(T::Double(b)), None) => {
            return Some(T::Double(Double::Add(Box::new(a), Box::new(b))));
        }
        (operators::SUBSTRACT, Some(T::Double(a)), Some(T::Double(b)), None) => {
            return Some(T::Double(Double::Sub(Box::new(a), Box::new(b))));
        }
        (_, Some(a), Some(b), None) => {
            let cmp = cmp?;
            let equality = matches!(cmp, Cmp::Eq | Cmp::Ne);
            match (a, b) {
                (T::Int(a), T::Int(b)) => Truth::Ints(cmp, Box::new(a), Box::new(b)),
                (T::Double(a), T::Double(b)) => Truth::Doubles(cmp, Box::new(a), Box::new(b)),
                (T::Truth(a), T::Truth(b)) if equality => {
                    Truth::Same(cmp == Cmp::Eq, Box::new(a), Box::new(b))
                }
                (T::Text(a), T::Text(b)) if equality => {
                    Truth::Texts(cmp == Cmp::Eq, Box::new(a), Box::new(b))
                }
                _ => return None,
            }
        }
        _ => return None,
    }))
}

impl Truth {
    fn eval(&self, f: &Features) -> Out<bool> {
        match self {
            Truth::Feature(read) => match read(f) {
                Scalar::Bool(b) => Ok(b),
                _ => Err(Failed),
            },
            Truth::Literal(b) => Ok(*b),
            Truth::Not(a) => a.eval(f).map(|a| !a),
            Truth::And(a, b) => match a.eval(f) {
                Ok(false) => Ok(false),
                left => match (left, b.eval(f)?) {
                    (Ok(_), right) => Ok(right),
                    (Err(_), false) => Ok(false),
                    (Err(_), true) => Err(Failed),
                },
            },
            Truth::Or(a, b) => match a.eval(f) {
                Ok(true) => Ok(true),
                left => match (left, b.eval(f)?) {
                    (Ok(_), right) => Ok(right),
                    (Err(_), true) => Ok(true),
                    (Err(_), false) => Err(Failed),
                },
            },
            Truth::Pick(cond, yes, no) => {
                if cond.eval(f)? {
                    yes.eval(f)
                } else {
                    no.eval(f)
                }
            }
            Truth::Same(eq, a, b) => Ok((a.eval(f)? == b.eval(f)?) == *eq),
            Truth::Ints(cmp, a, b) => Ok(cmp.holds(a.eval(f)?.cmp(&b.eval(f)?))),
            Truth::Doubles(cmp, a, b) => {
                let (a, b) = (a.eval(f)?, b.eval(f)?);
                match (cmp, a.partial_cmp(&b)) {
                    // Equality of doubles is never an error, NaN equals nothing.
                    (Cmp::Eq, order) => Ok(order.is_some_and(|o| o.is_eq())),
                    (Cmp::Ne, order) => Ok(order.is_none_or(|o| o.is_ne())),
                    (_, Some(order)) => Ok(cmp.holds(order)),
                    (_, None) => Err(Failed),
                }
            }
            Truth::Texts(eq, a, b) => Ok((a.eval(f)? == b.eval(f)?) == *eq),
        }
    }
}

impl Int {
    fn eval(&self, f: &Features) -> Out<i64> {
        match self {
            Int::Feature(read) => match read(f) {
                Scalar::Int(n) => Ok(n),
                _ => Err(Failed),
            },
            Int::Literal(n) => Ok(*n),
        }
    }
}

impl Double {
    fn eval(&self, f: &Features) -> Out<f64> {
        match self {
            Double::Feature(read) => match read(f) {
                Scalar::Float(x) => Ok(x),
                _ => Err(Failed),
            },
            Double::Literal(x) => Ok(*x),
            Double::Add(a, b) => Ok(a.eval(f)? + b.eval(f)?),
            Double::Sub(a, b) => Ok(a.eval(f)? - b.eval(f)?),
        }
    }
}

impl Text {
    fn eval<'f>(&'f self, f: &'f Features) -> Out<&'f str> {
        match self {
            Text::Feature(read) => match read(f) {
                Scalar::Text(t) => Ok(t),
                _ => Err(Failed),
            },
            Text::Literal(t) => Ok(t),
        }
    }
}
