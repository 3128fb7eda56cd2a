//! The CRM's records as Connec! shares them, and the rows they become in the
//! CRM's store (whether written here or by another app).

use mno_sdk::connec::Ids;
use serde::{Deserialize, Serialize};

use crate::store::{Opportunity, Organization, Person};

/// A person's fields as Connec! shares them.
#[derive(Debug, Serialize, Deserialize)]
pub struct PersonFields {
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
}

/// An organization's fields the CRM uses.
#[derive(Debug, Serialize, Deserialize)]
pub struct OrganizationFields {
    #[serde(default)]
    pub name: String,
}

/// An opportunity's fields the CRM uses: `amount` and `sales_stage` are what
/// Impac!'s sales pipeline (`sales/opportunities_funnel`) adds up.
#[derive(Debug, Serialize, Deserialize)]
pub struct OpportunityFields {
    #[serde(default)]
    pub name: String,
    /// A decimal (Connec! answers it as an exact string).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sales_stage: Option<String>,
    /// Written as the CRM's id of the organization, read as every id known of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<Ids>,
}

/// Where a record stands: the CRM's id of it, its org and its Connec! version.
pub struct Stored<'a> {
    pub id: &'a str,
    pub org: &'a str,
    pub version: u64,
}

impl Stored<'_> {
    pub fn person(&self, fields: PersonFields) -> Person {
        Person {
            id: self.id.to_owned(),
            org: self.org.to_owned(),
            first_name: fields.first_name,
            last_name: fields.last_name,
            version: self.version as i64,
        }
    }

    pub fn organization(&self, fields: OrganizationFields) -> Organization {
        Organization {
            id: self.id.to_owned(),
            org: self.org.to_owned(),
            name: fields.name,
            version: self.version as i64,
        }
    }

    /// The opportunity, its organization named by the CRM's id (`app_id`'s)
    /// when the platform knows it.
    pub fn opportunity(&self, fields: OpportunityFields, app_id: &str) -> Opportunity {
        Opportunity {
            id: self.id.to_owned(),
            org: self.org.to_owned(),
            name: fields.name,
            amount: fields.amount.unwrap_or_default(),
            currency: fields.currency.unwrap_or_default(),
            sales_stage: fields.sales_stage.unwrap_or_default(),
            organization_id: fields
                .organization_id
                .and_then(|ids| ids.local_id(app_id).map(str::to_owned)),
            version: self.version as i64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_opportunity_names_its_organization_by_the_crms_id() -> serde_json::Result<()> {
        let fields: OpportunityFields = serde_json::from_value(serde_json::json!({
            "name": "Globex renewal", "amount": "900.00", "currency": "USD",
            "sales_stage": "Proposal",
            "organization_id": [{"realm": "o", "provider": "connec", "id": "0193"},
                                {"realm": "o", "provider": "crm-app", "id": "crm-org-1"}]
        }))?;
        let stored = Stored {
            id: "crm-opp-1",
            org: "o",
            version: 2,
        };
        let deal = stored.opportunity(fields, "crm-app");
        assert_eq!(deal.organization_id.as_deref(), Some("crm-org-1"));
        assert_eq!(
            (deal.amount.as_str(), deal.sales_stage.as_str()),
            ("900.00", "Proposal")
        );
        Ok(())
    }

    #[test]
    fn a_new_opportunity_is_sent_with_the_crms_id_of_its_organization() -> serde_json::Result<()> {
        let fields = OpportunityFields {
            name: "Deal".into(),
            amount: Some("10".into()),
            currency: None,
            sales_stage: None,
            organization_id: Some(Ids::local("crm-org-4")),
        };
        assert_eq!(
            serde_json::to_value(&fields)?,
            serde_json::json!({"name": "Deal", "amount": "10", "organization_id": "crm-org-4"})
        );
        Ok(())
    }
}
