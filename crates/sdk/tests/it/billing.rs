//! Bills and recurring bills through the SDK: idempotent submission, typed
//! refusals with their pointer, cancellation.

use anyhow::Result;
use mno_sdk::billing::{NewBill, NewRecurringBill, Period};

use crate::support::World;

#[tokio::test]
async fn bills_are_submitted_once_per_key_and_refusals_are_typed() -> Result<()> {
    let world = World::new("billing@example.com").await?;
    let billing = world.sdk(&world.app).billing();

    let bill = NewBill::new(&world.org, 1050, "usd", "3 seats")
        .units(3)
        .period("2026-11-01T00:00:00Z", "2026-11-30T23:59:59Z");
    let first = billing.create_bill(&bill, "seats-2026-11").await?;
    assert_eq!(
        (first.price_cents, first.currency.as_str(), first.units),
        (1050, "USD", 3)
    );
    assert_eq!(
        (first.status.as_str(), first.due_period.as_str()),
        ("submitted", "2026-11")
    );
    let again = billing.create_bill(&bill, "seats-2026-11").await?;
    assert_eq!(again.id, first.id, "the same key makes no second bill");
    assert_eq!(billing.bills(Some(&world.org)).await?, vec![first.clone()]);

    // The same key with another body is refused, typed.
    let reused = billing
        .create_bill(
            &NewBill::new(&world.org, 99, "USD", "other"),
            "seats-2026-11",
        )
        .await
        .unwrap_err();
    assert_eq!(
        reused.api().map(|a| (a.status, a.code())),
        Some((422, "idempotency_key_reused"))
    );

    // A bad field names itself; nothing is made.
    let bad = billing
        .create_bill(&NewBill::new(&world.org, 10, "EURO", "x"), "bad-currency")
        .await
        .unwrap_err();
    let api = bad.api().expect("typed");
    assert_eq!(
        (api.status, api.code(), api.pointer()),
        (422, "invalid_field", Some("/currency"))
    );
    assert_eq!(billing.bills(None).await?.len(), 1);

    let cancelled = billing.cancel_bill(&first.id).await?;
    assert_eq!(cancelled.status, "cancelled");
    assert_eq!(billing.bill(&first.id).await?.status, "cancelled");

    let plan = NewRecurringBill::new(&world.org, 2000, "USD", "Plan", Period::Month)
        .cycles(12)
        .start_date("2026-10-01");
    let recurring = billing.create_recurring_bill(&plan, "plan-1").await?;
    assert_eq!(
        (recurring.period, recurring.status.as_str()),
        (Period::Month, "submitted")
    );
    assert_eq!(billing.recurring_bills().await?, vec![recurring.clone()]);
    let stopped = billing.cancel_recurring_bill(&recurring.id).await?;
    assert_eq!(stopped.status, "cancelled");
    Ok(())
}
