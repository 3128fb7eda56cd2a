//! An invoice as a printable HTML page. Every text an app or a user chose
//! (names, descriptions) is escaped: an app cannot put markup on it.

use std::fmt::Write;

use super::ledger::Invoice;

/// `text` safe inside HTML elements and quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Minor units as a decimal amount in the currency's own decimals:
/// 123456 USD -> "1234.56 USD", 1500 JPY -> "1500 JPY", 1500 KWD -> "1.500 KWD".
pub fn amount(minor: i64, currency: &str) -> String {
    escape(&mno_events::money::amount(minor, currency))
}

/// A bill's period bound as a person reads it: "2026-12-01" at midnight UTC,
/// else "2026-12-03 06:27 UTC"; text that is not a timestamp is shown escaped.
fn moment(text: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(text) {
        Ok(at) => {
            let at = at.with_timezone(&chrono::Utc);
            if at.time() == chrono::NaiveTime::MIN {
                at.format("%Y-%m-%d").to_string()
            } else {
                at.format("%Y-%m-%d %H:%M UTC").to_string()
            }
        }
        Err(_) => escape(text),
    }
}

/// The page of `invoice` for the org named `org_name`.
pub fn page(invoice: &Invoice, org_name: &str) -> String {
    let mut rows = String::new();
    for line in &invoice.lines {
        let _ = writeln!(
            rows,
            "<tr class=\"app\"><th colspan=\"3\">{}</th><td class=\"money\">{}</td></tr>",
            escape(&line.app_name),
            amount(line.total_cents, &invoice.currency)
        );
        for bill in &line.bills {
            let period = match (&bill.period_started_at, &bill.period_ended_at) {
                (Some(start), Some(end)) => format!("{} – {}", moment(start), moment(end)),
                (Some(start), None) => moment(start),
                (None, Some(end)) => format!("until {}", moment(end)),
                (None, None) => String::new(),
            };
            let _ = writeln!(
                rows,
                "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"money\">{}</td></tr>",
                escape(&bill.description),
                period,
                bill.units,
                amount(bill.price_cents, &invoice.currency)
            );
        }
    }
    format!(
        "<!DOCTYPE html>
<html lang=\"en\">
<head>
<meta charset=\"utf-8\">
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">
<title>Invoice {id}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ padding: 0.3em 0.6em; border-bottom: 1px solid #ccc; text-align: left; }}
.money, .num {{ text-align: right; white-space: nowrap; }}
tr.app th {{ background: #f3f3f3; }}
tfoot td {{ font-weight: bold; }}
p {{ overflow-wrap: anywhere; }}
@media (max-width: 600px) {{ body {{ margin: 1em; }} table {{ display: block; overflow-x: auto; }} }}
</style>
</head>
<body>
<h1>Invoice</h1>
<p>Number: {id}<br>Organisation: {org}<br>Period: {period}<br>Currency: {currency}</p>
<table>
<thead><tr><th>Description</th><th>Service period</th><th class=\"num\">Units</th><th class=\"money\">Amount</th></tr></thead>
<tbody>
{rows}</tbody>
<tfoot><tr><td colspan=\"3\">Total</td><td class=\"money\">{total}</td></tr></tfoot>
</table>
</body>
</html>
",
        id = escape(&invoice.id),
        org = escape(org_name),
        period = escape(&invoice.period),
        currency = escape(&invoice.currency),
        total = amount(invoice.total_cents, &invoice.currency),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_formats() {
        assert_eq!(
            escape("<b a=\"x\">&'"),
            "&lt;b a=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(amount(123456, "USD"), "1234.56 USD");
        assert_eq!(amount(5, "EUR"), "0.05 EUR");
        assert_eq!(amount(1500, "JPY"), "1500 JPY");
        assert_eq!(amount(1500, "KWD"), "1.500 KWD");
    }

    #[test]
    fn periods_read_as_dates() {
        assert_eq!(moment("2026-12-01T00:00:00.000Z"), "2026-12-01");
        assert_eq!(moment("2026-12-03T06:27:35.123Z"), "2026-12-03 06:27 UTC");
        assert_eq!(moment("2026-12-03T08:27:35+02:00"), "2026-12-03 06:27 UTC");
        assert_eq!(moment("<soon>"), "&lt;soon&gt;");
    }
}
