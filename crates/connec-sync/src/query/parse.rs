//! Parsing `$filter` and `$orderby` (OData-like, as Connec! accepted them).
//!
//! `$filter`: comparisons `field op literal` with `eq ne gt ge lt le`, joined
//! by `and`, `or`, `not` and parentheses. Literals: 'strings' (a quote is
//! doubled: 'O''Brien'), numbers, `true`, `false`, `null`. Dates are strings:
//! `updated_at gt '2016-01-01T00:00:00Z'`. Fields are identifiers
//! (`[A-Za-z_][A-Za-z0-9_]*`); nothing else reaches SQL but bound values.
//! Errors name the position (0-based character offset) where parsing failed.
//!
//! Both are bounded ([`MAX_FILTER_DEPTH`], [`MAX_FILTER_TERMS`],
//! [`MAX_ORDER_TERMS`]): the parser and the SQL compiler recurse, and a
//! request must never exhaust a worker's stack or the database's expression
//! limit; past a bound the answer is a 400 that names it.

/// How deeply parentheses and `not` may nest in one `$filter`.
pub const MAX_FILTER_DEPTH: usize = 32;
/// How many comparisons one `$filter` may hold.
pub const MAX_FILTER_TERMS: usize = 100;
/// How many fields one `$orderby` may name.
pub const MAX_ORDER_TERMS: usize = 16;

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Text(String),
    /// The number's text, kept exact.
    Number(String),
    Bool(bool),
    Null,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Compare {
        field: String,
        op: CompareOp,
        value: Literal,
    },
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderBy {
    pub field: String,
    pub descending: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} at position {position}")]
pub struct SyntaxError {
    pub what: String,
    pub position: usize,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Text(String),
    Number(String),
    Open,
    Close,
}

fn tokenize(input: &str) -> Result<Vec<(Token, usize)>, SyntaxError> {
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '(' {
            tokens.push((Token::Open, i));
            i += 1;
        } else if c == ')' {
            tokens.push((Token::Close, i));
            i += 1;
        } else if c == '\'' {
            let start = i;
            let mut text = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => {
                        return Err(SyntaxError {
                            what: "unterminated string (a quote inside a string is written '')"
                                .into(),
                            position: start,
                        })
                    }
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                        text.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(&other) => {
                        text.push(other);
                        i += 1;
                    }
                }
            }
            tokens.push((Token::Text(text), start));
        } else if c.is_ascii_digit()
            || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            let start = i;
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            if text.matches('.').count() > 1 || text.ends_with('.') {
                return Err(SyntaxError {
                    what: format!("malformed number {text:?}"),
                    position: start,
                });
            }
            tokens.push((Token::Number(text), start));
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push((Token::Ident(chars[start..i].iter().collect()), start));
        } else {
            return Err(SyntaxError {
                what: format!("unexpected character {c:?}"),
                position: i,
            });
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<(Token, usize)>,
    at: usize,
    end: usize,
    /// Open parentheses and `not`s around the current token.
    depth: usize,
    /// Comparisons read so far.
    terms: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at).map(|(t, _)| t)
    }

    fn position(&self) -> usize {
        self.tokens.get(self.at).map_or(self.end, |(_, p)| *p)
    }

    fn error(&self, what: impl Into<String>) -> SyntaxError {
        SyntaxError {
            what: what.into(),
            position: self.position(),
        }
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Ident(w)) if w.eq_ignore_ascii_case(word))
    }

    fn or(&mut self) -> Result<Filter, SyntaxError> {
        let mut left = self.and()?;
        while self.keyword("or") {
            self.at += 1;
            left = Filter::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Filter, SyntaxError> {
        let mut left = self.not()?;
        while self.keyword("and") {
            self.at += 1;
            left = Filter::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    /// Go one level deeper (a `(` or a `not`), refusing past [`MAX_FILTER_DEPTH`].
    fn descend(&mut self) -> Result<(), SyntaxError> {
        if self.depth >= MAX_FILTER_DEPTH {
            return Err(self.error(format!(
                "the filter nests parentheses and `not` more than {MAX_FILTER_DEPTH} deep (the limit); write it with fewer levels"
            )));
        }
        self.depth += 1;
        Ok(())
    }

    fn not(&mut self) -> Result<Filter, SyntaxError> {
        if self.keyword("not") {
            self.descend()?;
            self.at += 1;
            let inner = self.not()?;
            self.depth -= 1;
            return Ok(Filter::Not(Box::new(inner)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Filter, SyntaxError> {
        match self.peek().cloned() {
            Some(Token::Open) => {
                self.descend()?;
                self.at += 1;
                let inner = self.or()?;
                if self.peek() != Some(&Token::Close) {
                    return Err(self.error("expected ')'"));
                }
                self.at += 1;
                self.depth -= 1;
                Ok(inner)
            }
            Some(Token::Ident(field)) => {
                if self.terms >= MAX_FILTER_TERMS {
                    return Err(self.error(format!(
                        "the filter has more than {MAX_FILTER_TERMS} comparisons (the limit); split the query or narrow it"
                    )));
                }
                self.terms += 1;
                self.at += 1;
                let op = match self.peek() {
                    Some(Token::Ident(op)) => match op.to_ascii_lowercase().as_str() {
                        "eq" => CompareOp::Eq,
                        "ne" => CompareOp::Ne,
                        "gt" => CompareOp::Gt,
                        "ge" => CompareOp::Ge,
                        "lt" => CompareOp::Lt,
                        "le" => CompareOp::Le,
                        other => {
                            return Err(self.error(format!(
                                "unknown operator {other:?}; use eq, ne, gt, ge, lt or le"
                            )))
                        }
                    },
                    _ => return Err(self.error(format!("expected an operator after {field:?}"))),
                };
                self.at += 1;
                let value = match self.peek().cloned() {
                    Some(Token::Text(t)) => Literal::Text(t),
                    Some(Token::Number(n)) => Literal::Number(n),
                    Some(Token::Ident(w)) if w.eq_ignore_ascii_case("true") => Literal::Bool(true),
                    Some(Token::Ident(w)) if w.eq_ignore_ascii_case("false") => {
                        Literal::Bool(false)
                    }
                    Some(Token::Ident(w)) if w.eq_ignore_ascii_case("null") => Literal::Null,
                    _ => {
                        return Err(
                            self.error("expected a value: 'text', a number, true, false or null")
                        )
                    }
                };
                self.at += 1;
                Ok(Filter::Compare { field, op, value })
            }
            _ => Err(self.error("expected a comparison such as code eq 'CT3', or '('")),
        }
    }
}

/// Parse a `$filter` expression.
pub fn filter(input: &str) -> Result<Filter, SyntaxError> {
    let tokens = tokenize(input)?;
    let mut parser = Parser {
        tokens,
        at: 0,
        end: input.chars().count(),
        depth: 0,
        terms: 0,
    };
    let filter = parser.or()?;
    if parser.at < parser.tokens.len() {
        return Err(parser.error("unexpected text after the expression"));
    }
    Ok(filter)
}

/// Parse a `$orderby`: `field [asc|desc]`, several separated by commas.
pub fn order_by(input: &str) -> Result<Vec<OrderBy>, SyntaxError> {
    let mut out = Vec::new();
    let mut offset = 0;
    for (index, part) in input.split(',').enumerate() {
        if index == MAX_ORDER_TERMS {
            return Err(SyntaxError {
                what: format!(
                    "$orderby names more than {MAX_ORDER_TERMS} fields (the limit); sort by fewer"
                ),
                position: offset,
            });
        }
        // Each word with where it starts in `input`, so an error points at the word at fault.
        let words: Vec<(usize, &str)> = words_at(part)
            .map(|(at, word)| (offset + at, word))
            .collect();
        let bad = |what: String, position: usize| SyntaxError { what, position };
        match words.as_slice() {
            [(at, field), ..] if !is_identifier(field) => {
                let wrong = field
                    .char_indices()
                    .find(|(i, c)| {
                        !(c.is_ascii_alphanumeric() || *c == '_') || (*i == 0 && c.is_ascii_digit())
                    })
                    .map_or(0, |(i, _)| i);
                return Err(bad(format!("{field:?} is not a field name"), at + wrong));
            }
            [(_, field)] => out.push(OrderBy {
                field: field.to_string(),
                descending: false,
            }),
            [(_, field), (at, direction)] => {
                let descending = match direction.to_ascii_lowercase().as_str() {
                    "asc" => false,
                    "desc" => true,
                    other => return Err(bad(format!("{other:?} is not asc or desc"), *at)),
                };
                out.push(OrderBy {
                    field: field.to_string(),
                    descending,
                });
            }
            [] => return Err(bad("expected `field asc` or `field desc`".into(), offset)),
            [_, _, (at, extra), ..] => {
                return Err(bad(
                    format!(
                        "expected `field asc` or `field desc`, then `,` or the end, not {extra:?}"
                    ),
                    *at,
                ))
            }
        }
        offset += part.len() + 1;
    }
    Ok(out)
}

/// The whitespace-separated words of `text`, each with its byte offset.
fn words_at(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split_whitespace()
        .map(move |word| (word.as_ptr() as usize - text.as_ptr() as usize, word))
}

pub fn is_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && text.len() <= 64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_precedence_and_literals() {
        let f = filter("code eq 'CT3' and (total gt 10.5 or not paid eq true) or name eq null")
            .unwrap();
        let Filter::Or(left, right) = f else { panic!() };
        assert!(
            matches!(*right, Filter::Compare { ref field, value: Literal::Null, .. } if field == "name")
        );
        let Filter::And(_, inner) = *left else {
            panic!()
        };
        assert!(matches!(*inner, Filter::Or(_, _)));
        assert_eq!(
            filter("name eq 'O''Brien'").unwrap(),
            Filter::Compare {
                field: "name".into(),
                op: CompareOp::Eq,
                value: Literal::Text("O'Brien".into())
            }
        );
    }

    #[test]
    fn errors_name_the_position() {
        assert_eq!(filter("code eq").unwrap_err().position, 7);
        assert_eq!(filter("code like 'x'").unwrap_err().position, 5);
        assert_eq!(filter("(a eq 1").unwrap_err().position, 7);
        assert_eq!(filter("a eq 'x").unwrap_err().position, 5);
        assert_eq!(filter("a eq 1 b").unwrap_err().position, 7);
        assert_eq!(filter("a; DROP TABLE x").unwrap_err().position, 1);
        // Each points at the word (or character) at fault, not the start of its term.
        assert_eq!(
            order_by("name asc, total sideways").unwrap_err().position,
            16
        );
        assert_eq!(order_by("name; drop").unwrap_err().position, 4);
        assert_eq!(
            order_by("total_amount; DROP TABLE x").unwrap_err().position,
            12
        );
        assert_eq!(order_by("name asc desc").unwrap_err().position, 9);
        assert_eq!(order_by("name,, code").unwrap_err().position, 5);
        assert_eq!(order_by("9lives").unwrap_err().position, 0);
    }

    #[test]
    fn order_by_takes_several_fields() {
        assert_eq!(
            order_by("name ASC, updated_at desc").unwrap(),
            vec![
                OrderBy {
                    field: "name".into(),
                    descending: false
                },
                OrderBy {
                    field: "updated_at".into(),
                    descending: true
                }
            ]
        );
    }

    #[test]
    fn deep_nesting_is_refused_with_the_limit_named() {
        let deep = format!("{}title eq 'x'{}", "(".repeat(2500), ")".repeat(2500));
        let err = filter(&deep).unwrap_err();
        assert!(err.what.contains(&MAX_FILTER_DEPTH.to_string()), "{err}");
        assert_eq!(err.position, MAX_FILTER_DEPTH);
        let nots = format!("{}a eq 1", "not ".repeat(5000));
        assert!(filter(&nots).unwrap_err().what.contains("deep"));
        // At the limit itself, it parses.
        let at_limit = format!(
            "{}a eq 1{}",
            "(".repeat(MAX_FILTER_DEPTH),
            ")".repeat(MAX_FILTER_DEPTH)
        );
        assert!(filter(&at_limit).is_ok());
    }

    #[test]
    fn too_many_terms_are_refused() {
        let terms = |n: usize| vec!["a eq 1"; n].join(" and ");
        assert!(filter(&terms(MAX_FILTER_TERMS)).is_ok());
        let err = filter(&terms(MAX_FILTER_TERMS + 1)).unwrap_err();
        assert!(err.what.contains("comparisons"), "{err}");
        let fields = |n: usize| vec!["name desc"; n].join(",");
        assert!(order_by(&fields(MAX_ORDER_TERMS)).is_ok());
        let err = order_by(&fields(MAX_ORDER_TERMS + 1)).unwrap_err();
        assert!(err.what.contains(&MAX_ORDER_TERMS.to_string()), "{err}");
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        /// A generated filter: comparisons joined by and/or, wrapped in
        /// parentheses and `not`, as deep as the generator goes.
        fn expression() -> impl Strategy<Value = String> {
            let leaf = (
                "[a-z_]{1,8}",
                "eq|ne|gt|ge|lt|le",
                "'[^']{0,6}'|-?[0-9]{1,4}|true|null",
            )
                .prop_map(|(field, op, value)| format!("{field} {op} {value}"));
            leaf.prop_recursive(64, 400, 4, |inner| {
                prop_oneof![
                    inner.clone().prop_map(|e| format!("({e})")),
                    inner.clone().prop_map(|e| format!("not {e}")),
                    (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} and {b}")),
                    (inner.clone(), inner).prop_map(|(a, b)| format!("{a} or {b}")),
                ]
            })
        }

        fn depth(filter: &Filter) -> usize {
            match filter {
                Filter::Compare { .. } => 0,
                Filter::Not(a) => 1 + depth(a),
                Filter::And(a, b) | Filter::Or(a, b) => depth(a).max(depth(b)),
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn any_text_parses_or_is_a_positioned_error(input in "\\PC{0,300}") {
                if let Err(e) = filter(&input) {
                    prop_assert!(e.position <= input.chars().count());
                }
                let _ = order_by(&input);
            }

            #[test]
            fn generated_expressions_stay_within_the_bounds(input in expression()) {
                match filter(&input) {
                    Ok(parsed) => prop_assert!(depth(&parsed) <= MAX_FILTER_DEPTH),
                    Err(e) => prop_assert!(
                        e.what.contains("deep") || e.what.contains("comparisons"),
                        "a generated expression is well formed, so only a bound refuses it: {e}"
                    ),
                }
            }

            #[test]
            fn nesting_of_any_depth_never_overflows(open in 0usize..20_000, nots in 0usize..20_000) {
                let input = format!("{}{}a eq 1{}", "not ".repeat(nots), "(".repeat(open), ")".repeat(open));
                let outcome = filter(&input);
                prop_assert_eq!(outcome.is_ok(), open + nots <= MAX_FILTER_DEPTH);
            }
        }
    }
}
