//! The body of `POST /impac/api/v2/kpis`, typed: an unknown or misspelled
//! field is refused where it stands (`ApiJson` names it), and each check below
//! names the field and what to send instead.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use mno_events::ApiError;
use rust_decimal::Decimal;
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use crate::widgets::WIDGETS;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKpi {
    pub widget: Option<String>,
    pub org_ids: Option<Vec<String>>,
    pub element: Option<String>,
    pub target: Option<Target>,
    pub alert: Option<Alert>,
    pub params: Option<Params>,
}

/// `{"min": "1000", "max": "5000"}`: either bound, or both.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub min: Option<Bound>,
    pub max: Option<Bound>,
}

/// `{"webhook": "https://..."}` or `{"inapp": true}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alert {
    pub webhook: Option<String>,
    pub inapp: Option<bool>,
}

/// The widget parameters a KPI may fix: the widget's own query parameters,
/// minus `as_of` (a KPI follows the live widget).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    period: Option<ParamText>,
    from: Option<ParamText>,
    to: Option<ParamText>,
    limit: Option<ParamText>,
    offset: Option<ParamText>,
    currency: Option<ParamText>,
}

impl Params {
    /// As the widget takes them from a query string.
    pub fn into_query(self) -> HashMap<String, Vec<String>> {
        [
            ("period", self.period),
            ("from", self.from),
            ("to", self.to),
            ("limit", self.limit),
            ("offset", self.offset),
            ("currency", self.currency),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name.to_owned(), vec![value?.0])))
        .collect()
    }
}

/// A decimal, written as a string (`"1000.50"`) or a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound(pub Decimal);

impl<'de> Deserialize<'de> for Bound {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Decimals;
        impl Visitor<'_> for Decimals {
            type Value = Bound;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a decimal, e.g. \"1000.50\"")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Bound, E> {
                Decimal::from_str(text)
                    .map(Bound)
                    .map_err(|_| E::custom(format!("must be a decimal, not {text:?}")))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Bound, E> {
                Ok(Bound(Decimal::from(n)))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Bound, E> {
                Ok(Bound(Decimal::from(n)))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Bound, E> {
                self.visit_str(&n.to_string())
            }
        }
        d.deserialize_any(Decimals)
    }
}

/// A parameter's value: a string, or a number written as one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamText(String);

impl<'de> Deserialize<'de> for ParamText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Given {
            Text(String),
            Number(serde_json::Number),
        }
        match Given::deserialize(d) {
            Ok(Given::Text(text)) => Ok(ParamText(text)),
            Ok(Given::Number(n)) => Ok(ParamText(n.to_string())),
            Err(_) => Err(de::Error::custom("must be a string")),
        }
    }
}

fn invalid(pointer: &str, detail: impl Into<String>) -> ApiError {
    ApiError::unprocessable("invalid_kpi", detail).at_pointer(pointer)
}

/// The widget, which must be one of the catalogue (404 otherwise).
pub fn widget(given: Option<String>) -> Result<String, ApiError> {
    let widget = given.ok_or_else(|| {
        invalid(
            "/widget",
            "widget is required, e.g. \"accounts/profit_and_loss\"",
        )
    })?;
    if !WIDGETS.contains(&widget.as_str()) {
        return Err(ApiError::not_found(format!(
            "no widget {widget}; the widgets are: {}",
            WIDGETS.join(", ")
        ))
        .at_pointer("/widget"));
    }
    Ok(widget)
}

/// The dotted path of the watched value in the widget's content.
pub fn element(given: Option<String>) -> Result<String, ApiError> {
    given.filter(|e| !e.is_empty()).ok_or_else(|| {
        invalid(
            "/element",
            "element is required: a dotted path into the widget's content, e.g. \"totals.net\"",
        )
    })
}

/// `(min, max)`: at least one, and min not above max.
pub fn bounds(target: Option<Target>) -> Result<(Option<Decimal>, Option<Decimal>), ApiError> {
    let target = target.unwrap_or_default();
    let (min, max) = (target.min.map(|b| b.0), target.max.map(|b| b.0));
    match (min, max) {
        (None, None) => Err(invalid(
            "/target",
            "target needs min, max or both: {\"min\": \"1000\"}",
        )),
        (Some(min), Some(max)) if min > max => Err(invalid(
            "/target",
            format!("target.min {min} is above target.max {max}"),
        )),
        bounds => Ok(bounds),
    }
}

/// Where alerts go: a webhook URL (checked by `check_url`), or `None` for in-app only.
pub fn alert_webhook(
    alert: Option<Alert>,
    check_url: impl FnOnce(&str) -> Result<(), String>,
) -> Result<Option<String>, ApiError> {
    match alert {
        Some(Alert {
            webhook: Some(url), ..
        }) => {
            check_url(&url)
                .map_err(|e| invalid("/alert/webhook", format!("alert.webhook: {e}")))?;
            Ok(Some(url))
        }
        Some(Alert {
            inapp: Some(true), ..
        }) => Ok(None),
        _ => Err(invalid(
            "/alert",
            "alert must be {\"webhook\": \"https://...\"} or {\"inapp\": true}",
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(body: serde_json::Value) -> Result<NewKpi, serde_json::Error> {
        serde_json::from_value(body)
    }

    fn pointer(error: &ApiError) -> &str {
        error.errors[0]
            .source
            .as_ref()
            .and_then(|s| s.pointer.as_deref())
            .unwrap_or_default()
    }

    #[test]
    fn a_whole_kpi_reads() {
        let kpi = parse(
            json!({"org_ids": ["o1"], "widget": "accounts/profit_and_loss",
            "element": "totals.net", "target": {"min": "10", "max": 20},
            "alert": {"inapp": true}, "params": {"currency": "USD", "limit": 5}}),
        )
        .unwrap();
        assert_eq!(
            bounds(kpi.target).unwrap(),
            (Some(Decimal::from(10)), Some(Decimal::from(20)))
        );
        let params = kpi.params.unwrap().into_query();
        assert_eq!(params["currency"], ["USD"]);
        assert_eq!(params["limit"], ["5"]);
        assert_eq!(params.len(), 2);
    }

    #[test]
    fn unknown_fields_and_params_are_refused() {
        assert!(parse(json!({"widgt": "x"})).is_err());
        for name in ["perod", "as_of"] {
            let error = parse(json!({"params": {name: "DAILY"}})).unwrap_err();
            assert!(error.to_string().contains(name), "{error}");
        }
        assert!(parse(json!({"target": {"maximum": "1"}})).is_err());
    }

    #[test]
    fn a_bound_that_is_no_decimal_is_named() {
        let error = parse(json!({"target": {"max": "lots"}})).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("must be a decimal, not \"lots\""),
            "{error}"
        );
        assert!(parse(json!({"target": {"max": true}})).is_err());
    }

    #[test]
    fn a_target_needs_a_bound_and_min_not_above_max() {
        let empty = bounds(Some(Target::default())).unwrap_err();
        assert_eq!(pointer(&empty), "/target");
        assert_eq!(pointer(&bounds(None).unwrap_err()), "/target");
        let crossed = bounds(Some(Target {
            min: Some(Bound(Decimal::from(5))),
            max: Some(Bound(Decimal::from(1))),
        }))
        .unwrap_err();
        assert!(crossed.errors[0].detail.contains("above"), "{crossed}");
    }

    #[test]
    fn an_alert_is_a_checked_webhook_or_in_app() {
        let hook = |url: &str| Alert {
            webhook: Some(url.into()),
            inapp: None,
        };
        assert_eq!(
            alert_webhook(Some(hook("https://a.example/h")), |_| Ok(())).unwrap(),
            Some("https://a.example/h".into())
        );
        let refused = alert_webhook(Some(hook("nope")), |_| Err("not a URL".into())).unwrap_err();
        assert_eq!(pointer(&refused), "/alert/webhook");
        let inapp = Alert {
            webhook: None,
            inapp: Some(true),
        };
        assert_eq!(alert_webhook(Some(inapp), |_| Ok(())).unwrap(), None);
        assert_eq!(
            pointer(&alert_webhook(None, |_| Ok(())).unwrap_err()),
            "/alert"
        );
    }

    #[test]
    fn the_widget_and_element_are_required() {
        assert_eq!(pointer(&widget(None).unwrap_err()), "/widget");
        let unknown = widget(Some("accounts/nope".into())).unwrap_err();
        assert_eq!(unknown.status, axum::http::StatusCode::NOT_FOUND);
        assert!(widget(Some(WIDGETS[0].into())).is_ok());
        assert_eq!(
            pointer(&element(Some(String::new())).unwrap_err()),
            "/element"
        );
    }
}
