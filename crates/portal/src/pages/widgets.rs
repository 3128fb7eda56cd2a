//! How one Impac! widget's answer is drawn: the `periods` as a chart (uPlot
//! reads the series from `data-chart`) and a table, everything else as tables
//! of figures. Each figure carries its exact value and its path in the answer
//! (`data-path="totals.revenue"`, `data-value="1250.50"`), as the CSV names it.

use maud::{html, Markup};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde_json::{json, Map, Value};

/// The widgets a new dashboard starts with.
pub const DEFAULT_WIDGETS: &[&str] = &[
    "accounts/profit_and_loss",
    "accounts/balance_sheet",
    "invoices/aged_payables_receivables",
    "sales/opportunities_funnel",
    "hr/workforce_summary",
    "accounts/cash_summary",
];

/// "accounts/profit_and_loss" → "Profit and loss".
pub fn title(widget: &str) -> String {
    let name = widget.rsplit('/').next().unwrap_or(widget);
    let title = match name {
        "profit_and_loss" => "Profit and loss".to_owned(),
        "aged_payables_receivables" => "Aged receivables and payables".to_owned(),
        _ => name.replace('_', " "),
    };
    let mut chars = title.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// A decimal as people read money: two places, thousands separated.
pub fn money(value: &str) -> Option<String> {
    let d: Decimal = value.parse().ok()?;
    let rounded = d.round_dp(2);
    let text = format!("{:.2}", rounded.abs());
    let (whole, cents) = text.split_once('.').unwrap_or((&text, "00"));
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let sign = if rounded.is_sign_negative() && !rounded.is_zero() {
        "−"
    } else {
        ""
    };
    Some(format!("{sign}{grouped}.{cents}"))
}

fn cell(path: &str, value: &Value) -> Markup {
    match value {
        Value::String(s) if s.parse::<Decimal>().is_ok() && !looks_like_date(s) => html! {
            td.num data-path=(path) data-value=(s) { (money(s).unwrap_or_else(|| s.clone())) }
        },
        Value::Number(n) => {
            html! { td.num data-path=(path) data-value=(n.to_string()) { (n.to_string()) } }
        }
        Value::Null => html! { td data-path=(path) { "—" } },
        Value::String(s) => html! { td data-path=(path) { (s) } },
        // A list inside a row (the balance's types of each class): a small table of its own.
        Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_object) => {
            html! { td data-path=(path) { (rows_table(path, items, None)) } }
        }
        Value::Array(items) if items.is_empty() => html! { td data-path=(path) { "—" } },
        other => html! { td data-path=(path) { (other.to_string()) } },
    }
}

fn looks_like_date(s: &str) -> bool {
    s.len() == 10 && s.as_bytes().get(4) == Some(&b'-')
}

/// The chart's data: x as unix seconds of each `period_start`, one series per numeric column.
fn chart_spec(periods: &[Value], columns: &[String]) -> Value {
    let x: Vec<i64> = periods
        .iter()
        .filter_map(|p| p["period_start"].as_str())
        .filter_map(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .filter_map(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc().timestamp())
        .collect();
    let series: Vec<Value> = columns
        .iter()
        .map(|c| {
            let values: Vec<f64> = periods
                .iter()
                .map(|p| {
                    p[c].as_str()
                        .and_then(|s| s.parse::<Decimal>().ok())
                        .and_then(|d| d.to_f64())
                        .unwrap_or(0.0)
                })
                .collect();
            json!({"label": c.replace('_', " "), "values": values})
        })
        .collect();
    json!({"x": x, "series": series})
}

/// What a row is about, shown in the first columns.
const LABELS: &[&str] = &[
    "period_start",
    "name",
    "sales_stage",
    "status",
    "type",
    "job_title",
    "id",
];

/// Columns of a list of objects: the labels first, then the figures as first seen.
fn columns_of(rows: &[Value]) -> Vec<String> {
    let mut columns: Vec<String> = Vec::new();
    for row in rows {
        if let Some(o) = row.as_object() {
            for k in o.keys() {
                if !columns.contains(k) {
                    columns.push(k.clone());
                }
            }
        }
    }
    columns.sort_by_key(|c| LABELS.iter().position(|l| l == c).unwrap_or(LABELS.len()));
    columns
}

fn list_table(path: &str, rows: &[Value]) -> Markup {
    rows_table(path, rows, Some(&path.replace(['_', '.'], " ")))
}

/// A list of objects as a table, a column per key; without a caption it is
/// one nested in another table's cell, drawn smaller.
fn rows_table(path: &str, rows: &[Value], caption: Option<&str>) -> Markup {
    let columns = columns_of(rows);
    html! {
        table.nested[caption.is_none()] {
            @if let Some(caption) = caption { caption { (caption) } }
            thead { tr { @for c in &columns { th scope="col" { (c.replace('_', " ")) } } } }
            tbody {
                @for (i, row) in rows.iter().enumerate() {
                    tr { @for c in &columns { (cell(&format!("{path}.{i}.{c}"), &row[c])) } }
                }
            }
        }
    }
}

/// Scalars under an object as `path value` rows, nested objects flattened;
/// lists of objects collected for their own tables.
fn flatten<'a>(
    prefix: &str,
    object: &'a Map<String, Value>,
    rows: &mut Vec<(String, &'a Value)>,
    lists: &mut Vec<(String, &'a [Value])>,
) {
    for (key, value) in object {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            Value::Object(inner) => flatten(&path, inner, rows, lists),
            Value::Array(items) if items.iter().all(Value::is_object) => lists.push((path, items)),
            _ => rows.push((path, value)),
        }
    }
}

/// The widget's `content`, drawn.
pub fn render(content: &Value) -> Markup {
    let Some(object) = content.as_object() else {
        return html! { p { (content.to_string()) } };
    };
    let periods = object.get("periods").and_then(Value::as_array);
    let mut rest = object.clone();
    rest.remove("periods");
    let mut rows = Vec::new();
    let mut lists = Vec::new();
    flatten("", &rest, &mut rows, &mut lists);
    html! {
        @if let Some(periods) = periods {
            @let columns: Vec<String> = columns_of(periods).into_iter().filter(|c| c != "period_start").collect();
            @if periods.is_empty() {
                p.hint { "No figures in this period yet." }
            } @else {
                div.chart role="img" aria-label="Chart of the periods below" data-chart=(chart_spec(periods, &columns).to_string()) {}
                (list_table("periods", periods))
            }
        }
        @if !rows.is_empty() {
            table {
                tbody {
                    @for (path, value) in &rows {
                        tr { th scope="row" { (path.replace(['_', '.'], " ")) } (cell(path, value)) }
                    }
                }
            }
        }
        @for (path, items) in &lists {
            @if items.is_empty() { p.hint { "No " (path.replace(['_', '.'], " ")) " yet." } }
            @else { (list_table(path, items)) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_groups_thousands_and_rounds_to_cents() {
        assert_eq!(money("1234567.891").as_deref(), Some("1,234,567.89"));
        assert_eq!(money("-1250.5").as_deref(), Some("−1,250.50"));
        assert_eq!(money("0").as_deref(), Some("0.00"));
        assert_eq!(money("abc"), None);
    }

    #[test]
    fn figures_carry_their_path_and_exact_value() {
        let html = render(&json!({"totals": {"revenue": "1250.505"}, "periods": []})).into_string();
        assert!(
            html.contains(r#"data-path="totals.revenue" data-value="1250.505""#),
            "{html}"
        );
    }

    #[test]
    fn a_list_in_a_row_is_a_table_not_json() {
        let content = json!({"classes": [{"class": "ASSET", "balance": "287800.00", "count": 3,
            "types": [{"balance": "184500.00", "count": 1, "type": "BANK"}]}]});
        let html = render(&content).into_string();
        assert!(!html.contains("[{"), "{html}");
        assert!(html.contains(r#"<table class="nested">"#), "{html}");
        // The type first, then its figures, each with its path and exact value.
        assert!(
            html.contains(r#"<td data-path="classes.0.types.0.type">BANK</td>"#),
            "{html}"
        );
        assert!(
            html.contains(
                r#"data-path="classes.0.types.0.balance" data-value="184500.00">184,500.00<"#
            ),
            "{html}"
        );
        let empty = render(&json!({"classes": [{"class": "EQUITY", "types": []}]})).into_string();
        assert!(
            empty.contains(r#"<td data-path="classes.0.types">—</td>"#),
            "{empty}"
        );
    }

    #[test]
    fn text_in_content_is_escaped() {
        let html =
            render(&json!({"stages": [{"sales_stage": "<script>alert(1)</script>", "count": 1}]}))
                .into_string();
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
    }
}
