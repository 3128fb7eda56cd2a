//! KPIs as stored in `impac_kpis`.

use std::collections::HashMap;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::{json, Value};
use sqlx::Row;

/// A stored KPI.
#[derive(Debug, Clone)]
pub struct Kpi {
    pub id: String,
    pub org_ids: Vec<String>,
    pub widget: String,
    pub element: String,
    pub params: HashMap<String, Vec<String>>,
    pub currency: String,
    pub min: Option<Decimal>,
    pub max: Option<Decimal>,
    pub webhook: Option<String>,
    pub secret: Option<String>,
    pub breached: bool,
    pub last_value: Option<String>,
    /// `user_id:<id>` or `app_id:<id>` ([`super::creator::recorded`]).
    pub created_by: String,
}

impl Kpi {
    pub fn target(&self) -> Value {
        let mut target = serde_json::Map::new();
        if let Some(min) = self.min {
            target.insert("min".into(), json!(min.to_string()));
        }
        if let Some(max) = self.max {
            target.insert("max".into(), json!(max.to_string()));
        }
        Value::Object(target)
    }

    pub fn to_json(&self) -> Value {
        let params: HashMap<&String, &String> = self
            .params
            .iter()
            .filter_map(|(k, v)| Some((k, v.first()?)))
            .collect();
        json!({
            "id": self.id,
            "org_ids": self.org_ids,
            "widget": self.widget,
            "element": self.element,
            "params": params,
            "currency": self.currency,
            "target": self.target(),
            "alert": match &self.webhook { Some(url) => json!({"webhook": url}), None => json!({"inapp": true}) },
            "value": self.last_value,
            "breached": self.breached,
        })
    }

    pub fn outside(&self, value: Decimal) -> bool {
        self.min.is_some_and(|min| value < min) || self.max.is_some_and(|max| value > max)
    }
}

pub fn decode(row: &sqlx::any::AnyRow) -> Kpi {
    let decimal = |text: Option<String>| text.and_then(|t| Decimal::from_str(&t).ok());
    Kpi {
        id: row.get("id"),
        org_ids: serde_json::from_str(&row.get::<String, _>("org_ids")).unwrap_or_default(),
        widget: row.get("widget"),
        element: row.get("element"),
        params: serde_json::from_str(&row.get::<String, _>("params")).unwrap_or_default(),
        currency: row.get("currency"),
        min: decimal(row.get("target_min")),
        max: decimal(row.get("target_max")),
        webhook: row.get("alert_webhook"),
        secret: row.get("webhook_secret"),
        breached: row.get::<i32, _>("breached") != 0,
        last_value: row.get("last_value"),
        created_by: row
            .get::<Option<String>, _>("created_by")
            .unwrap_or_default(),
    }
}

pub async fn all_kpis(db: &sqlx::AnyPool) -> Result<Vec<Kpi>, sqlx::Error> {
    let rows = sqlx::query("SELECT * FROM impac_kpis ORDER BY created_at, id")
        .fetch_all(db)
        .await?;
    Ok(rows.iter().map(decode).collect())
}
