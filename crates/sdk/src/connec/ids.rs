//! Record ids in the external-ids form: one entry per system that knows the
//! record (`connec`, the platform's global id, and each app's own id).

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One system's id of a record: `{"realm": "<org>", "provider": "connec" | "<app id>", "id": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalId {
    /// The org the id lives in.
    #[serde(default)]
    pub realm: String,
    /// `connec` for the platform's global id, else the app id.
    pub provider: String,
    /// The id itself.
    pub id: String,
}

/// The ids of a record, or of the record a reference field points to.
///
/// Answers read with `CONNEC-EXTERNAL-IDS: true` carry every known id; a
/// value the app writes is usually just its own id ([`Ids::local`]), sent as
/// a plain string, which the platform resolves through its id map.
///
/// ```
/// use mno_sdk::connec::Ids;
/// let ids: Ids = serde_json::from_str(r#"[{"realm":"o","provider":"connec","id":"0193"},
///                                          {"realm":"o","provider":"app-1","id":"47"}]"#).unwrap();
/// assert_eq!(ids.connec_id(), Some("0193"));
/// assert_eq!(ids.local_id("app-1"), Some("47"));
/// assert_eq!(serde_json::to_string(&Ids::local("47")).unwrap(), r#""47""#);
/// // Read as a plain global id, written back as one.
/// let global: Ids = serde_json::from_str(r#""0193""#).unwrap();
/// assert_eq!((global.connec_id(), serde_json::to_string(&global).unwrap().as_str()), (Some("0193"), r#""0193""#));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ids {
    /// Every id known, as the platform listed them.
    pub entries: Vec<ExternalId>,
    /// The id to write when this value is sent (a plain string).
    plain: Option<String>,
}

impl Ids {
    /// The app's own id, to write in a reference field or as a record's id.
    pub fn local(id: &str) -> Ids {
        Ids {
            entries: Vec::new(),
            plain: Some(id.to_owned()),
        }
    }

    /// The platform's global id, if known.
    pub fn connec_id(&self) -> Option<&str> {
        self.provider_id("connec")
    }

    /// The id `app_id` told for this record, if it did.
    pub fn local_id(&self, app_id: &str) -> Option<&str> {
        self.provider_id(app_id)
    }

    /// The id to use in a URL: the global id when known, else the plain id.
    pub fn any(&self) -> Option<&str> {
        self.connec_id()
            .or(self.plain.as_deref())
            .or_else(|| self.entries.first().map(|e| e.id.as_str()))
    }

    fn provider_id(&self, provider: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|e| e.provider == provider)
            .map(|e| e.id.as_str())
    }
}

impl Serialize for Ids {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // A plain id (the app's own, or a global id read without external
        // ids) goes back as it came; the platform resolves either.
        match &self.plain {
            Some(id) => serializer.serialize_str(id),
            None => self.entries.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Ids {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Ids, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Shape {
            /// Without `CONNEC-EXTERNAL-IDS` the platform answers its global id.
            Global(String),
            Entries(Vec<ExternalId>),
        }
        Ok(match Shape::deserialize(deserializer)? {
            Shape::Global(id) => Ids {
                entries: vec![ExternalId {
                    realm: String::new(),
                    provider: "connec".into(),
                    id: id.clone(),
                }],
                plain: Some(id),
            },
            Shape::Entries(entries) => Ids {
                entries,
                plain: None,
            },
        })
    }
}
