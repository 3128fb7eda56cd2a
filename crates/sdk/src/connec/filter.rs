//! A `$filter` builder: field names are checked and values quoted, so no
//! value can change the meaning of the expression.

use std::fmt;

/// A `$filter` expression.
///
/// ```
/// use mno_sdk::connec::Filter;
/// let f = Filter::field("name").eq("O'Brien")
///     .and(Filter::field("total_amount").gt(1000).or(Filter::field("is_lead").eq(true)));
/// assert_eq!(f.to_string(), "name eq 'O''Brien' and (total_amount gt 1000 or is_lead eq true)");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Filter(Node);

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Compare(String, &'static str, FilterValue),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Not(Box<Node>),
}

/// A value compared in a filter.
#[derive(Debug, Clone, PartialEq)]
pub enum FilterValue {
    /// Text (also dates: `'2026-01-01T00:00:00Z'`), quoted with quotes doubled.
    Text(String),
    /// A number as written (`1000`, `12.50`): decimals stay exact.
    Number(String),
    /// `true` or `false`.
    Bool(bool),
    /// `null`.
    Null,
}

macro_rules! number_values {
    ($($t:ty),*) => {$(
        impl From<$t> for FilterValue {
            fn from(n: $t) -> FilterValue { FilterValue::Number(n.to_string()) }
        }
    )*};
}
number_values!(i32, i64, u32, u64, usize, f64);

impl From<&str> for FilterValue {
    fn from(s: &str) -> FilterValue {
        FilterValue::Text(s.to_owned())
    }
}
impl From<String> for FilterValue {
    fn from(s: String) -> FilterValue {
        FilterValue::Text(s)
    }
}
impl From<bool> for FilterValue {
    fn from(b: bool) -> FilterValue {
        FilterValue::Bool(b)
    }
}
impl<T: Into<FilterValue>> From<Option<T>> for FilterValue {
    fn from(v: Option<T>) -> FilterValue {
        v.map_or(FilterValue::Null, Into::into)
    }
}

/// A field on its way to a comparison: `Filter::field("name").eq("Acme")`.
#[derive(Debug, Clone)]
pub struct Field(String);

impl Field {
    fn compare(self, op: &'static str, value: impl Into<FilterValue>) -> Filter {
        Filter(Node::Compare(self.0, op, value.into()))
    }
    /// `field eq value`.
    pub fn eq(self, value: impl Into<FilterValue>) -> Filter {
        self.compare("eq", value)
    }
    /// `field ne value`.
    pub fn ne(self, value: impl Into<FilterValue>) -> Filter {
        self.compare("ne", value)
    }
    /// `field gt value`.
    pub fn gt(self, value: impl Into<FilterValue>) -> Filter {
        self.compare("gt", value)
    }
    /// `field ge value`.
    pub fn ge(self, value: impl Into<FilterValue>) -> Filter {
        self.compare("ge", value)
    }
    /// `field lt value`.
    pub fn lt(self, value: impl Into<FilterValue>) -> Filter {
        self.compare("lt", value)
    }
    /// `field le value`.
    pub fn le(self, value: impl Into<FilterValue>) -> Filter {
        self.compare("le", value)
    }
}

impl Filter {
    /// Starts a comparison on a top-level record field (or `id`, `version`,
    /// `created_at`, `updated_at`).
    pub fn field(name: &str) -> Field {
        Field(name.to_owned())
    }

    /// Both must hold.
    pub fn and(self, other: Filter) -> Filter {
        Filter(Node::And(Box::new(self.0), Box::new(other.0)))
    }

    /// Either holds.
    pub fn or(self, other: Filter) -> Filter {
        Filter(Node::Or(Box::new(self.0), Box::new(other.0)))
    }

    /// Negates this filter (`not` is a method, not `!`, to read as the query does).
    #[allow(clippy::should_implement_trait)]
    pub fn not(self) -> Filter {
        Filter(Node::Not(Box::new(self.0)))
    }

    /// The first field name that is not an identifier (letters, digits, `_`):
    /// such a filter is refused before it is sent.
    pub fn invalid_field(&self) -> Option<&str> {
        fn walk(node: &Node) -> Option<&str> {
            match node {
                Node::Compare(field, _, _) => {
                    let ok = !field.is_empty()
                        && field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                    (!ok).then_some(field.as_str())
                }
                Node::And(a, b) | Node::Or(a, b) => walk(a).or_else(|| walk(b)),
                Node::Not(a) => walk(a),
            }
        }
        walk(&self.0)
    }
}

impl fmt::Display for FilterValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FilterValue::Text(s) => write!(f, "'{}'", s.replace('\'', "''")),
            FilterValue::Number(n) => f.write_str(n),
            FilterValue::Bool(b) => write!(f, "{b}"),
            FilterValue::Null => f.write_str("null"),
        }
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_node(f, &self.0, None)
    }
}

/// Writes `node`, in parentheses when it is a different operator than its parent's.
fn write_node(f: &mut fmt::Formatter<'_>, node: &Node, parent: Option<&str>) -> fmt::Result {
    let (op, a, b) = match node {
        Node::Compare(field, op, value) => return write!(f, "{field} {op} {value}"),
        Node::Not(inner) => {
            f.write_str("not (")?;
            write_node(f, inner, None)?;
            return f.write_str(")");
        }
        Node::And(a, b) => ("and", a, b),
        Node::Or(a, b) => ("or", a, b),
    };
    let wrap = parent.is_some_and(|p| p != op);
    if wrap {
        f.write_str("(")?;
    }
    write_node(f, a, Some(op))?;
    write!(f, " {op} ")?;
    write_node(f, b, Some(op))?;
    if wrap {
        f.write_str(")")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_are_doubled_and_injection_stays_a_value() {
        let f = Filter::field("name").eq("x' or name ne 'y");
        assert_eq!(f.to_string(), "name eq 'x'' or name ne ''y'");
    }

    #[test]
    fn operators_nest_with_parentheses() {
        let f = Filter::field("a")
            .eq(1)
            .or(Filter::field("b").eq(2))
            .and(Filter::field("c").ne(None::<&str>).not());
        assert_eq!(f.to_string(), "(a eq 1 or b eq 2) and not (c ne null)");
    }

    #[test]
    fn field_names_are_checked() {
        assert_eq!(Filter::field("ok_1").eq(1).invalid_field(), None);
        let f = Filter::field("a")
            .eq(1)
            .and(Filter::field("x eq 1 or y").eq(2));
        assert_eq!(f.invalid_field(), Some("x eq 1 or y"));
    }
}
