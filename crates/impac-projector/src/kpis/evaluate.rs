//! A KPI's value, read from the live widget, and the crossing of its target:
//! the flag flips in one conditional update, so a crossing raises one alert.

use std::str::FromStr;
use std::time::Duration;

use chrono::Utc;
use mno_events::ApiError;
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::announce::{announce, RaisedAlert};
use super::store::{all_kpis, Kpi};
use crate::ImpacState;
use crate::{api, query};

/// Why a KPI's element names no number of the widget's content.
#[derive(Debug, thiserror::Error)]
pub enum ElementError {
    #[error("the widget's content has no {step:?} in {element:?} (there: {there})")]
    Missing {
        step: String,
        element: String,
        there: String,
    },
    #[error("{element} is {found}, not a number")]
    NotANumber { element: String, found: String },
}

/// The element at a dotted path of a widget's content (`totals.net`,
/// `periods.0.revenue`), as a decimal.
pub fn element_value(content: &Value, element: &str) -> Result<Decimal, ElementError> {
    let mut at = content;
    for step in element.split('.') {
        at = match at {
            Value::Object(map) => map.get(step),
            Value::Array(items) => step.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        }
        .ok_or_else(|| {
            let here: Vec<String> = match at {
                Value::Object(map) => map.keys().cloned().collect(),
                Value::Array(items) => vec![format!("0..{}", items.len())],
                _ => vec![],
            };
            ElementError::Missing {
                step: step.to_owned(),
                element: element.to_owned(),
                there: here.join(", "),
            }
        })?;
    }
    let not_a_number = |found: String| ElementError::NotANumber {
        element: element.to_owned(),
        found,
    };
    match at {
        Value::String(text) => {
            Decimal::from_str(text).map_err(|_| not_a_number(format!("{text:?}")))
        }
        Value::Number(n) => {
            Decimal::from_str(&n.to_string()).map_err(|_| not_a_number(n.to_string()))
        }
        other => Err(not_a_number(other.to_string())),
    }
}

/// The KPI's current value, from the live projection.
pub async fn current_value(state: &ImpacState, kpi: &Kpi) -> Result<Decimal, ApiError> {
    let params = query::widget_params(&kpi.params)?;
    let snapshot = api::live_snapshot(state, &kpi.org_ids).await?;
    let (content, _) = api::compute(state, &kpi.widget, &snapshot, &params, &kpi.currency).await?;
    element_value(&content, &kpi.element).map_err(|e| {
        ApiError::unprocessable("invalid_element", e.to_string()).at_pointer("/element")
    })
}

/// How often the evaluator looks again without being woken: a fold seen while
/// another process held the lease, or an evaluation that failed, is taken up then.
const LOOK_AGAIN: Duration = Duration::from_secs(1);

/// Evaluate the KPIs whenever the projection has folded more (at most every 250 ms).
///
/// Level-triggered, not edge-triggered: it remembers how far the KPIs were last
/// evaluated and catches up whenever this process folds and the projection is
/// further, so a wake-up that came while the lease was changing hands, or an
/// evaluation that failed (the database busy), is not lost until the next write.
pub async fn follow(state: ImpacState, mut stopped: tokio::sync::watch::Receiver<bool>) {
    let mut applied = state.applied.clone();
    let mut evaluated_through: Option<u64> = None;
    loop {
        tokio::select! {
            changed = applied.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep(LOOK_AGAIN) => {}
            _ = stopped.changed() => return,
        }
        // Let a burst of batches land before reading every KPI's widget.
        tokio::time::sleep(Duration::from_millis(250)).await;
        let through = *applied.borrow_and_update();
        // One process raises the alerts: the one that folds.
        if evaluated_through >= Some(through) || !state.folds_here() {
            continue;
        }
        if evaluate_all(&state).await {
            evaluated_through = Some(through);
        }
    }
}

/// Evaluate every KPI (after the projection folded new events); whether each
/// was evaluated or refused for good (a failure worth retrying returns false).
pub async fn evaluate_all(state: &ImpacState) -> bool {
    let _one_at_a_time = state.kpis.evaluating.lock().await;
    let kpis = match all_kpis(&state.db).await {
        Ok(kpis) => kpis,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read KPIs; evaluating later");
            return false;
        }
    };
    let mut all_done = true;
    for kpi in kpis {
        if let Err(e) = evaluate(state, kpi).await {
            // A 4xx stays a 4xx (the KPI's widget or element no longer fits); a 5xx may pass.
            let retry = e.status.is_server_error();
            all_done &= !retry;
            tracing::debug!(error = ?e.errors, retry, "a KPI could not be evaluated");
        }
    }
    all_done
}

/// Evaluate one KPI; raise an alert when it has just left its target.
pub async fn evaluate(state: &ImpacState, mut kpi: Kpi) -> Result<Kpi, ApiError> {
    let value = current_value(state, &kpi).await?;
    let outside = kpi.outside(value);
    // The flag flip and the alert it raises commit together: a reader never
    // sees the new value without its alert, and a crash between them loses neither.
    let mut tx = state.db.begin().await.map_err(ApiError::internal)?;
    // The flag flips in one conditional update: a crossing raises one alert.
    let flipped = sqlx::query(
        "UPDATE impac_kpis SET breached = $1, last_value = $2, evaluated_at = $3 WHERE id = $4 AND breached = $5",
    )
    .bind(i32::from(outside))
    .bind(value.to_string())
    .bind(Utc::now().to_rfc3339())
    .bind(&kpi.id)
    .bind(i32::from(!outside))
    .execute(&mut *tx)
    .await
    .map_err(ApiError::internal)?
    .rows_affected()
        == 1;
    if !flipped {
        sqlx::query("UPDATE impac_kpis SET last_value = $1, evaluated_at = $2 WHERE id = $3")
            .bind(value.to_string())
            .bind(Utc::now().to_rfc3339())
            .bind(&kpi.id)
            .execute(&mut *tx)
            .await
            .map_err(ApiError::internal)?;
    }
    kpi.breached = outside;
    kpi.last_value = Some(value.to_string());
    let alert = if flipped && outside {
        Some(store_alert(&mut tx, &kpi, value).await?)
    } else {
        None
    };
    tx.commit().await.map_err(ApiError::internal)?;
    if let Some(alert) = alert {
        announce(state, &kpi, alert).await;
    }
    Ok(kpi)
}

/// Store the alert of a KPI that has just left its target.
async fn store_alert(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    kpi: &Kpi,
    value: Decimal,
) -> Result<RaisedAlert, ApiError> {
    let id = uuid::Uuid::now_v7().to_string();
    let raised_at = Utc::now();
    let org = kpi.org_ids[0].clone();
    let alert = json!({
        "id": id,
        "kpi_id": kpi.id,
        "org_ids": kpi.org_ids,
        "widget": kpi.widget,
        "element": kpi.element,
        "value": value.to_string(),
        "target": kpi.target(),
        "currency": kpi.currency,
        "raised_at": raised_at.to_rfc3339(),
    });
    sqlx::query(
        "INSERT INTO impac_alerts (id, kpi_id, org, org_ids, widget, element, value, target, raised_at, webhook) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&id)
    .bind(&kpi.id)
    .bind(&org)
    .bind(json!(kpi.org_ids).to_string())
    .bind(&kpi.widget)
    .bind(&kpi.element)
    .bind(value.to_string())
    .bind(kpi.target().to_string())
    .bind(raised_at.to_rfc3339())
    .bind(kpi.webhook.as_ref().map(|_| "pending"))
    .execute(&mut **tx)
    .await
    .map_err(ApiError::internal)?;
    tracing::info!(kpi = %kpi.id, %org, %value, "KPI alert raised");
    Ok(RaisedAlert {
        id,
        org,
        raised_at,
        body: alert,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_are_found_by_dotted_paths() {
        let content = json!({"totals": {"net": "12.50"}, "periods": [{"revenue": "3"}], "n": 4});
        assert_eq!(
            element_value(&content, "totals.net").unwrap(),
            Decimal::new(1250, 2)
        );
        assert_eq!(
            element_value(&content, "periods.0.revenue").unwrap(),
            Decimal::from(3)
        );
        assert_eq!(element_value(&content, "n").unwrap(), Decimal::from(4));
        let missing = element_value(&content, "totals.gross").unwrap_err();
        assert!(missing.to_string().contains("net"), "{missing}");
        assert!(element_value(&content, "totals").is_err());
    }
}
