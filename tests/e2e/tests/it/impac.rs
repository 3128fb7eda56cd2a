//! Impac! end to end: random events written through the Connec! write API;
//! the test computes the expected reports on its own and compares them
//! exactly with the widgets, live, replayed as of a past sequence, and after
//! a restart.

use std::collections::BTreeMap;
use std::str::FromStr;

use mno_e2e::hub_client::HubClient;
use mno_e2e::impac_client::{money, ImpacWorld as World, Lcg};
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::{json, Value};

fn dec(value: &Value) -> Decimal {
    Decimal::from_str(value.as_str().unwrap_or("0")).unwrap()
}

/// The expected P&L and aged balances, computed from the invoices the test wrote.
fn expected(
    invoices: &BTreeMap<String, Value>,
    eur_to_usd: Decimal,
    as_of: chrono::NaiveDate,
) -> (Decimal, Decimal, [Decimal; 5], [Decimal; 5]) {
    let (mut revenue, mut expenses) = (Decimal::ZERO, Decimal::ZERO);
    let (mut receivable, mut payable) = ([Decimal::ZERO; 5], [Decimal::ZERO; 5]);
    for invoice in invoices.values() {
        let status = invoice["status"].as_str().unwrap();
        if status == "DRAFT" || status == "VOIDED" {
            continue;
        }
        let rate = if invoice["currency"] == "EUR" {
            eur_to_usd
        } else {
            Decimal::ONE
        };
        let total = dec(&invoice["total_amount"]) * rate;
        let supplier = invoice["type"] == "SUPPLIER";
        if supplier {
            expenses += total;
        } else {
            revenue += total;
        }
        if status == "PAID" {
            continue;
        }
        let open = dec(&invoice["balance"]) * rate;
        if open.is_zero() {
            continue;
        }
        let due =
            chrono::NaiveDate::parse_from_str(invoice["due_date"].as_str().unwrap(), "%Y-%m-%d")
                .unwrap();
        let days = (as_of - due).num_days();
        let bucket = if days <= 0 {
            0
        } else if days <= 30 {
            1
        } else if days <= 60 {
            2
        } else if days <= 90 {
            3
        } else {
            4
        };
        if supplier {
            payable[bucket] += open;
        } else {
            receivable[bucket] += open;
        }
    }
    (revenue, expenses, receivable, payable)
}

fn buckets(side: &Value) -> [Decimal; 5] {
    ["current", "1-30", "31-60", "61-90", "90+"].map(|b| dec(&side[b]))
}

#[tokio::test]
async fn widgets_equal_an_independent_computation_live_replayed_and_after_a_restart() {
    let mut w = World::start("analyst@example.com", &["invoices", "employees"]).await;
    // The operator's exchange rate, loaded straight into its table (impac_rates.rs covers the rates API).
    let eur_to_usd = Decimal::from_str("1.0850").unwrap();
    sqlx::query("INSERT INTO impac_rates (base, quote, rate, as_of, source) VALUES ('EUR', 'USD', '1.0850', '2026-11-01', 'test')")
        .execute(&w.platform.running().db)
        .await
        .unwrap();

    let mut rng = Lcg(42);
    let mut invoices: BTreeMap<String, Value> = BTreeMap::new();
    let statuses = [
        "DRAFT",
        "AUTHORISED",
        "AUTHORISED",
        "SUBMITTED",
        "PAID",
        "VOIDED",
    ];
    let mut last = 0;
    let mut checkpoint = None;
    for i in 0..1200u64 {
        let existing: Vec<String> = invoices.keys().cloned().collect();
        let roll = rng.below(10);
        if roll < 7 || existing.is_empty() {
            let total = 100 + rng.below(500_000);
            let day = 1 + rng.below(300);
            let issued = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()
                + chrono::Duration::days(day as i64);
            let due = issued + chrono::Duration::days(rng.below(60) as i64);
            let record = json!({
                "type": if rng.below(3) == 0 { "SUPPLIER" } else { "CUSTOMER" },
                "status": statuses[rng.below(statuses.len() as u64) as usize],
                "transaction_date": issued.to_string(),
                "due_date": due.to_string(),
                "currency": if rng.below(4) == 0 { "EUR" } else { "USD" },
                "total_amount": money(total),
                "balance": money(total - rng.below(total)),
            });
            let (body, seq) = w
                .write(
                    reqwest::Method::POST,
                    "/invoices",
                    Some(json!({"invoices": record})),
                )
                .await;
            let id = body["invoices"]["id"].as_str().unwrap().to_owned();
            invoices.insert(id, record);
            last = seq;
        } else if roll < 9 {
            let id = &existing[rng.below(existing.len() as u64) as usize];
            let patch = json!({"status": statuses[rng.below(statuses.len() as u64) as usize], "balance": money(rng.below(100_000))});
            let (_, seq) = w
                .write(
                    reqwest::Method::PUT,
                    &format!("/invoices/{id}"),
                    Some(json!({"invoices": patch.clone()})),
                )
                .await;
            let stored = invoices.get_mut(id).unwrap();
            stored["status"] = patch["status"].clone();
            stored["balance"] = patch["balance"].clone();
            last = seq;
        } else {
            let id = existing[rng.below(existing.len() as u64) as usize].clone();
            let (_, seq) = w
                .write(reqwest::Method::DELETE, &format!("/invoices/{id}"), None)
                .await;
            invoices.remove(&id);
            last = seq;
        }
        if i == 600 {
            // Capture the live reports at this point, to replay as of it later.
            let (_, pnl) = w
                .widget(
                    "accounts/profit_and_loss",
                    &format!("currency=USD&to=2026-12-31&min_seq={last}"),
                )
                .await;
            let (_, aged) = w
                .widget(
                    "invoices/aged_payables_receivables",
                    &format!("currency=USD&to=2026-12-31&min_seq={last}"),
                )
                .await;
            checkpoint = Some((last, pnl, aged, invoices.clone()));
        }
    }

    let as_of = chrono::NaiveDate::from_ymd_opt(2026, 12, 31).unwrap();
    let check = |what: &str, pnl: &Value, aged: &Value, model: &BTreeMap<String, Value>| {
        let (revenue, expenses, receivable, payable) = expected(model, eur_to_usd, as_of);
        assert_eq!(
            dec(&pnl["content"]["totals"]["revenue"]),
            revenue,
            "{what}: {pnl}"
        );
        assert_eq!(dec(&pnl["content"]["totals"]["expenses"]), expenses);
        assert_eq!(dec(&pnl["content"]["totals"]["net"]), revenue - expenses);
        assert_eq!(
            buckets(&aged["content"]["receivables"]),
            receivable,
            "{aged}"
        );
        assert_eq!(buckets(&aged["content"]["payables"]), payable);
    };

    // Live, once the projection has folded the last write.
    let query = format!("currency=USD&to=2026-12-31&min_seq={last}");
    let (status, pnl) = w.widget("accounts/profit_and_loss", &query).await;
    assert_eq!(status, StatusCode::OK, "{pnl}");
    let (_, aged) = w.widget("invoices/aged_payables_receivables", &query).await;
    check("live", &pnl, &aged, &invoices);
    assert_eq!(
        pnl["rates"][0]["from"], "EUR",
        "the rate used is named: {pnl}"
    );

    // Replayed as of the captured sequence: equal to the live answer captured then, and to the model then.
    let (seq, live_pnl, live_aged, model_then) = checkpoint.unwrap();
    let (_, replay_pnl) = w
        .widget(
            "accounts/profit_and_loss",
            &format!("currency=USD&to=2026-12-31&as_of={seq}"),
        )
        .await;
    let (_, replay_aged) = w
        .widget(
            "invoices/aged_payables_receivables",
            &format!("currency=USD&to=2026-12-31&as_of={seq}"),
        )
        .await;
    assert_eq!(replay_pnl["content"], live_pnl["content"]);
    assert_eq!(replay_aged["content"], live_aged["content"]);
    check("captured", &live_pnl, &live_aged, &model_then);

    // An org named twice counts once, live and replayed (its figures were added twice,
    // and a replay failed on the overlapping filters).
    let org = w.org.clone();
    for query in [
        format!("currency=USD&to=2026-12-31&min_seq={last}"),
        format!("currency=USD&to=2026-12-31&as_of={seq}"),
    ] {
        let (once_status, once) = w.widget("accounts/profit_and_loss", &query).await;
        let (twice_status, twice) = w
            .widget_of(&[&org, &org], "accounts/profit_and_loss", &query)
            .await;
        assert_eq!(
            (once_status, twice_status),
            (StatusCode::OK, StatusCode::OK),
            "{twice}"
        );
        assert_eq!(twice["content"], once["content"], "{query}");
    }

    // As of before the first event: an empty report, not an error.
    let (status, empty) = w
        .widget("accounts/profit_and_loss", "currency=USD&as_of=2000-01-01")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(empty["content"]["totals"]["revenue"], "0");

    // Restarted: the same numbers (the projection resumes from its checkpoint, counting nothing twice).
    w.platform.restart().await;
    let (_, pnl_after) = w.widget("accounts/profit_and_loss", &query).await;
    let (_, aged_after) = w.widget("invoices/aged_payables_receivables", &query).await;
    check("after restart", &pnl_after, &aged_after, &invoices);
}

#[tokio::test]
async fn bad_widget_requests_name_what_is_wrong() {
    let w = World::start("a@example.com", &["invoices"]).await;
    w.write(
        reqwest::Method::POST,
        "/invoices",
        Some(json!({"invoices": {"type": "CUSTOMER", "status": "AUTHORISED", "currency": "GBP", "total_amount": "10", "transaction_date": "2026-01-01"}})),
    )
    .await;

    let (status, body) = w.widget("accounts/horoscope", "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("accounts/profit_and_loss"),
        "{body}"
    );
    for (query, parameter) in [
        ("period=FORTNIGHTLY", "period"),
        ("currency=dollars", "currency"),
        ("from=yesterday", "from"),
        // A two-digit year is not the year 26; from after to is no period.
        ("to=26-11-29", "to"),
        ("from=2026-02-30", "from"),
        ("from=2026-12-01&to=2026-07-01", "from"),
        ("as_of=soon", "as_of"),
        // A min_seq that is no sequence, or one past the stream's end, could only time out.
        ("min_seq=soon", "min_seq"),
        ("min_seq=999999999", "min_seq"),
    ] {
        let (status, body) = w.widget("accounts/profit_and_loss", query).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {body}");
        assert_eq!(body["errors"][0]["source"]["parameter"], parameter);
    }
    // A currency with no rate names the pair.
    let (status, body) = w
        .widget(
            "accounts/profit_and_loss",
            "currency=USD&to=2026-12-31&min_seq=1",
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("GBP->USD"),
        "{body}"
    );
    // Another org's report is refused.
    let (_, other_org, _) = HubClient::new(&w.platform.base_url)
        .org_with_app("b@example.com", None, &[("invoices", true, true)])
        .await
        .unwrap();
    let response = w
        .platform
        .http
        .get(w.platform.url(&format!(
            "/impac/api/v2/widgets/accounts/profit_and_loss?org_ids[]={other_org}"
        )))
        .header("Authorization", &w.auth)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    // Each amount fits a decimal, their sum does not: the report says so, and
    // the process answers on (it once dropped the connection).
    let mut last = 0;
    for _ in 0..2 {
        let (_, seq) = w
            .write(
                reqwest::Method::POST,
                "/invoices",
                Some(json!({"invoices": {"type": "CUSTOMER", "status": "AUTHORISED", "currency": "GBP",
                    "total_amount": "50000000000000000000000000000", "transaction_date": "2026-03-01"}})),
            )
            .await;
        last = seq;
    }
    for widget in [
        "accounts/profit_and_loss",
        "invoices/summary",
        "sales/summary",
    ] {
        let (status, body) = w
            .widget(
                widget,
                &format!("currency=GBP&to=2026-12-31&min_seq={last}"),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{widget}: {body}");
        assert_eq!(body["errors"][0]["code"], "amount_out_of_range", "{body}");
        assert!(
            body["errors"][0]["detail"]
                .as_str()
                .unwrap()
                .contains(widget),
            "{body}"
        );
    }
    // Dates without those records still answer.
    let (status, body) = w
        .widget(
            "accounts/profit_and_loss",
            "currency=GBP&from=2026-06-01&to=2026-12-31",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
