//! Subject names on the bus.
//!
//! - `rec.<org>.<entity>.<record_id>`: one subject per record (stream RECORDS).
//! - `hub.<org>.<kind>`: Hub domain events (stream HUB).
//! - `dlq.<app>.<org>`: dead letters of delivery (stream DLQ).
//!
//! Every token is checked against `[A-Za-z0-9_-]{1,128}` so that nothing an app
//! sends can add a subject level or a wildcard.

use std::fmt;
use std::str::FromStr;

pub const RECORDS_PREFIX: &str = "rec";
pub const HUB_PREFIX: &str = "hub";
pub const DLQ_PREFIX: &str = "dlq";
/// The org token of Hub events that belong to no organisation.
pub const PLATFORM_ORG: &str = "_platform";
/// Longest token we accept; ids are UUIDs, names are short.
pub const MAX_TOKEN_LEN: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubjectError {
    #[error(
        "{what} is empty; it must be 1 to {MAX_TOKEN_LEN} characters of A-Z, a-z, 0-9, '_' or '-'"
    )]
    Empty { what: &'static str },
    #[error("{what} is {len} characters long; the limit is {MAX_TOKEN_LEN}")]
    TooLong { what: &'static str, len: usize },
    #[error("{what} {value:?} has the character {bad:?} at position {position}; only A-Z, a-z, 0-9, '_' and '-' are allowed")]
    BadCharacter {
        what: &'static str,
        value: String,
        bad: char,
        position: usize,
    },
    #[error("subject {subject:?} is not of the form {expected}")]
    Shape {
        subject: String,
        expected: &'static str,
    },
}

/// One validated subject token.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Token(String);

impl Token {
    /// Validate `value` as a token; `what` names it in the error ("org", "entity", ...).
    pub fn parse(what: &'static str, value: &str) -> Result<Self, SubjectError> {
        if value.is_empty() {
            return Err(SubjectError::Empty { what });
        }
        if value.len() > MAX_TOKEN_LEN {
            return Err(SubjectError::TooLong {
                what,
                len: value.len(),
            });
        }
        if let Some((position, bad)) = value
            .chars()
            .enumerate()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
        {
            return Err(SubjectError::BadCharacter {
                what,
                value: value.to_owned(),
                bad,
                position,
            });
        }
        Ok(Token(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Token {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// `rec.<org>.<entity>.<record_id>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RecordSubject {
    pub org: Token,
    pub entity: Token,
    pub record_id: Token,
}

impl RecordSubject {
    pub fn new(org: &str, entity: &str, record_id: &str) -> Result<Self, SubjectError> {
        Ok(Self {
            org: Token::parse("org", org)?,
            entity: Token::parse("entity", entity)?,
            record_id: Token::parse("record id", record_id)?,
        })
    }

    /// Filter for every record of an org: `rec.<org>.>`.
    pub fn org_filter(org: &Token) -> String {
        format!("{RECORDS_PREFIX}.{org}.>")
    }

    /// Filter for every record of one entity in one org: `rec.<org>.<entity>.*`.
    pub fn entity_filter(org: &Token, entity: &Token) -> String {
        format!("{RECORDS_PREFIX}.{org}.{entity}.*")
    }

    /// Filter for one entity across all orgs: `rec.*.<entity>.*`.
    pub fn entity_all_orgs_filter(entity: &Token) -> String {
        format!("{RECORDS_PREFIX}.*.{entity}.*")
    }
}

impl fmt::Display for RecordSubject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{RECORDS_PREFIX}.{}.{}.{}",
            self.org, self.entity, self.record_id
        )
    }
}

impl FromStr for RecordSubject {
    type Err = SubjectError;

    fn from_str(subject: &str) -> Result<Self, Self::Err> {
        let shape = || SubjectError::Shape {
            subject: subject.to_owned(),
            expected: "rec.<org>.<entity>.<record_id>",
        };
        let parts: Vec<&str> = subject.split('.').collect();
        match parts.as_slice() {
            [RECORDS_PREFIX, org, entity, id] => Self::new(org, entity, id),
            _ => Err(shape()),
        }
    }
}

/// `hub.<org>.<kind>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HubSubject {
    pub org: Token,
    pub kind: Token,
}

impl HubSubject {
    pub fn new(org: &str, kind: &str) -> Result<Self, SubjectError> {
        Ok(Self {
            org: Token::parse("org", org)?,
            kind: Token::parse("hub event kind", kind)?,
        })
    }

    /// A Hub event that belongs to no organisation (users, apps).
    pub fn platform(kind: &str) -> Result<Self, SubjectError> {
        Self::new(PLATFORM_ORG, kind)
    }

    /// Every Hub event: `hub.>`.
    pub fn all() -> String {
        format!("{HUB_PREFIX}.>")
    }
}

impl fmt::Display for HubSubject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{HUB_PREFIX}.{}.{}", self.org, self.kind)
    }
}

impl FromStr for HubSubject {
    type Err = SubjectError;

    fn from_str(subject: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = subject.split('.').collect();
        match parts.as_slice() {
            [HUB_PREFIX, org, kind] => Self::new(org, kind),
            _ => Err(SubjectError::Shape {
                subject: subject.to_owned(),
                expected: "hub.<org>.<kind>",
            }),
        }
    }
}

/// `dlq.<app>.<org>`: where delivery parks an event it gave up on.
pub fn dlq_subject(app: &Token, org: &Token) -> String {
    format!("{DLQ_PREFIX}.{app}.{org}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_and_parses_record_subjects() {
        let s = RecordSubject::new("org-1", "invoices", "0193a1b2-aaaa").unwrap();
        assert_eq!(s.to_string(), "rec.org-1.invoices.0193a1b2-aaaa");
        assert_eq!(s.to_string().parse::<RecordSubject>().unwrap(), s);
    }

    #[test]
    fn rejects_tokens_that_could_change_the_subject() {
        for bad in ["a.b", "*", ">", "a b", "x\n", "é", "a/b", "$SYS"] {
            let err = RecordSubject::new("org", "invoices", bad).unwrap_err();
            assert!(
                matches!(err, SubjectError::BadCharacter { .. }),
                "{bad:?}: {err}"
            );
        }
        assert_eq!(
            Token::parse("org", "").unwrap_err(),
            SubjectError::Empty { what: "org" }
        );
        assert!(matches!(
            Token::parse("org", &"a".repeat(129)).unwrap_err(),
            SubjectError::TooLong { len: 129, .. }
        ));
    }

    #[test]
    fn error_names_the_bad_character_and_position() {
        let err = Token::parse("entity", "inv.oices").unwrap_err().to_string();
        assert!(err.contains("entity"), "{err}");
        assert!(err.contains("'.'"), "{err}");
        assert!(err.contains("position 3"), "{err}");
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn a_token_is_bounded_and_never_changes_a_subject(value in "\\PC{0,200}") {
                if let Ok(token) = Token::parse("record id", &value) {
                    prop_assert!(token.as_str().len() <= MAX_TOKEN_LEN);
                    prop_assert!(!token.as_str().is_empty());
                    prop_assert!(token
                        .as_str()
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'));
                    let subject = RecordSubject::new("org-1", "invoices", &value).unwrap();
                    let text = subject.to_string();
                    prop_assert_eq!(text.split('.').count(), 4);
                    prop_assert_eq!(text.parse::<RecordSubject>().unwrap(), subject);
                }
            }

            #[test]
            fn valid_tokens_always_parse(value in "[A-Za-z0-9_-]{1,128}") {
                prop_assert!(Token::parse("org", &value).is_ok());
                let subject = HubSubject::new(&value, "org_updated").unwrap();
                prop_assert_eq!(subject.to_string().parse::<HubSubject>().unwrap(), subject);
            }
        }
    }

    #[test]
    fn rejects_wrong_shapes() {
        assert!("rec.a.b".parse::<RecordSubject>().is_err());
        assert!("hub.a.b.c".parse::<HubSubject>().is_err());
        assert!("foo.a.b.c".parse::<RecordSubject>().is_err());
        let hub: HubSubject = "hub._platform.app_created".parse().unwrap();
        assert_eq!(hub, HubSubject::platform("app_created").unwrap());
    }
}

/// The kinds of Hub events (the `<kind>` token of `hub.<org>.<kind>`).
pub mod hub_kind {
    pub const USER_CREATED: &str = "user_created";
    pub const USER_UPDATED: &str = "user_updated";
    pub const SESSION_REVOKED: &str = "session_revoked";
    pub const ORG_CREATED: &str = "org_created";
    pub const ORG_UPDATED: &str = "org_updated";
    pub const MEMBER_ADDED: &str = "member_added";
    pub const MEMBER_UPDATED: &str = "member_updated";
    pub const MEMBER_REMOVED: &str = "member_removed";
    pub const APP_CREATED: &str = "app_created";
    pub const APP_UPDATED: &str = "app_updated";
    pub const CREDENTIALS_ROTATED: &str = "credentials_rotated";
    pub const WEBHOOK_DISABLED: &str = "webhook_disabled";
    pub const INSTALL_CREATED: &str = "install_created";
    pub const INSTALL_UPDATED: &str = "install_updated";
    pub const INSTALL_REMOVED: &str = "install_removed";
    pub const KPI_ALERT: &str = "kpi_alert";
    // Single billing (docs/api/billing.md).
    pub const BILL_CREATED: &str = "bill_created";
    pub const BILL_CANCELLED: &str = "bill_cancelled";
    pub const RECURRING_BILL_CREATED: &str = "recurring_bill_created";
    pub const RECURRING_BILL_UPDATED: &str = "recurring_bill_updated";
    pub const INVOICE_ISSUED: &str = "invoice_issued";
}
