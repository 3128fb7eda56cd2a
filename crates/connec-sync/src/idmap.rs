//! The id map: each app's local id of a record <-> the record's global id.
//!
//! Kept in a JetStream KV bucket (`IDMAP`), so that it survives restarts and
//! is shared by every process. A local id is claimed with KV's atomic
//! `create`: of fifty concurrent creates of the same (org, app, entity, local
//! id), exactly one claim wins and the others read the winner's global id.
//!
//! Keys (KV keys allow `[-/_=.A-Za-z0-9]`; local ids can hold anything, so
//! they are base64url-encoded):
//! - `f.<org>.<app>.<entity>.<base64url(local id)>` → global id
//! - `r.<org>.<entity>.<global id>.<app>` → local id
//!
//! A key is a subject on the bus, and a subject too long for the server's
//! control line drops the platform's connection: every part of a key is
//! checked first (tokens as subject tokens, local ids at most
//! [`MAX_LOCAL_ID_LEN`] bytes), so no request reaches the bus with one.

use async_nats::jetstream::{self, kv};
use base64::Engine;
use bytes::Bytes;
use futures::StreamExt;
use mno_events::subject::{SubjectError, Token};

pub const BUCKET: &str = "IDMAP";
/// The longest local id (in bytes of UTF-8) an app may map.
pub const MAX_LOCAL_ID_LEN: usize = 255;

#[derive(Debug, thiserror::Error)]
pub enum IdMapError {
    #[error(
        "app {app} already maps {entity} local id {local:?} to record {existing}, not {wanted}"
    )]
    Taken {
        app: String,
        entity: String,
        local: String,
        existing: String,
        wanted: String,
    },
    #[error("the id map is unavailable: {0}; retry shortly")]
    Bus(String),
    #[error("the id is {len} bytes long; an app's own id is 1 to {MAX_LOCAL_ID_LEN} bytes")]
    BadLocalId { len: usize },
    #[error(transparent)]
    BadToken(#[from] SubjectError),
}

fn bus(e: impl std::fmt::Display) -> IdMapError {
    IdMapError::Bus(e.to_string())
}

/// The outcome of claiming a local id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub global: String,
    /// True when this call created the mapping; false when it already existed.
    pub created: bool,
}

#[derive(Clone)]
pub struct IdMap {
    kv: kv::Store,
    js: jetstream::Context,
}

fn encode_local(local: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(local.as_bytes())
}

/// What is wrong with an app's own id sent in a record or as a `local_id`, if
/// anything: empty, too long for a key, or holding U+0000, which no record holds.
pub fn local_id_problem(local: &str) -> Option<String> {
    if local.is_empty() || local.len() > MAX_LOCAL_ID_LEN {
        Some(format!("must be 1 to {MAX_LOCAL_ID_LEN} bytes"))
    } else if local.contains('\0') {
        Some("may not hold the character U+0000 (NUL): remove it".into())
    } else {
        None
    }
}

/// Refuse a local id that cannot be mapped (empty, or too long for a key).
pub fn check_local(local: &str) -> Result<(), IdMapError> {
    if local.is_empty() || local.len() > MAX_LOCAL_ID_LEN {
        return Err(IdMapError::BadLocalId { len: local.len() });
    }
    Ok(())
}

/// Whose ids a mapping holds: an app's, in one org's collection. Every key of
/// the map is this scope and one id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppIds<'a> {
    pub org: &'a str,
    pub app: &'a str,
    pub entity: &'a str,
}

fn forward_key(ids: AppIds, local: &str) -> Result<String, IdMapError> {
    check_local(local)?;
    let (org, app, entity) = (
        Token::parse("org", ids.org)?,
        Token::parse("app", ids.app)?,
        Token::parse("entity", ids.entity)?,
    );
    Ok(format!("f.{org}.{app}.{entity}.{}", encode_local(local)))
}

fn reverse_key(ids: AppIds, global: &str) -> Result<String, IdMapError> {
    let (org, entity, global, app) = (
        Token::parse("org", ids.org)?,
        Token::parse("entity", ids.entity)?,
        Token::parse("record id", global)?,
        Token::parse("app", ids.app)?,
    );
    Ok(format!("r.{org}.{entity}.{global}.{app}"))
}

fn text(bytes: Bytes) -> String {
    String::from_utf8_lossy(&bytes).into_owned()
}

impl IdMap {
    /// Open the bucket, creating it on first use.
    pub async fn open(js: &jetstream::Context, replicas: usize) -> Result<IdMap, IdMapError> {
        // Create, or bring an existing bucket to these settings: a bucket made
        // with one replica must follow MNO_STREAM_REPLICAS once it is raised.
        let kv = js
            .create_or_update_key_value(kv::Config {
                bucket: BUCKET.into(),
                description: "Each app's local ids <-> global record ids".into(),
                history: 1,
                storage: jetstream::stream::StorageType::File,
                num_replicas: replicas.max(1),
                ..Default::default()
            })
            .await
            .map_err(bus)?;
        Ok(IdMap { kv, js: js.clone() })
    }

    /// Map `local` to `candidate` unless the app already mapped it; either way
    /// answer the global id in force. Safe under concurrency (KV `create`).
    pub async fn claim(
        &self,
        ids: AppIds<'_>,
        local: &str,
        candidate: &str,
    ) -> Result<Claim, IdMapError> {
        let key = forward_key(ids, local)?;
        match self
            .kv
            .create(&key, Bytes::from(candidate.to_owned()))
            .await
        {
            Ok(_) => {
                self.put_reverse(ids, candidate, local).await?;
                Ok(Claim {
                    global: candidate.to_owned(),
                    created: true,
                })
            }
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(Claim {
                global: self.named_by(&key).await?,
                created: false,
            }),
            Err(e) => Err(bus(e)),
        }
    }

    /// Point `local` at `candidate` instead of `deleted`, the record it named
    /// until that was deleted: an app may reuse a local id for a new record.
    /// Atomic (compare and set on the entry's revision): of concurrent
    /// take-overs one wins; the others, like a caller that finds the local id
    /// moved already, get the id it names now with `created: false`.
    pub async fn take_over(
        &self,
        ids: AppIds<'_>,
        local: &str,
        deleted: &str,
        candidate: &str,
    ) -> Result<Claim, IdMapError> {
        let key = forward_key(ids, local)?;
        let Some(entry) = self.kv.entry(key.clone()).await.map_err(bus)? else {
            return self.claim(ids, local, candidate).await;
        };
        let named = text(entry.value.clone());
        if named != deleted {
            return Ok(Claim {
                global: named,
                created: false,
            });
        }
        match self
            .kv
            .update(&key, Bytes::from(candidate.to_owned()), entry.revision)
            .await
        {
            Ok(_) => {
                self.put_reverse(ids, candidate, local).await?;
                Ok(Claim {
                    global: candidate.to_owned(),
                    created: true,
                })
            }
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(Claim {
                global: self.named_by(&key).await?,
                created: false,
            }),
            Err(e) => Err(bus(e)),
        }
    }

    /// The global id a forward key names, just found taken (by another claim).
    async fn named_by(&self, key: &str) -> Result<String, IdMapError> {
        self.kv
            .get(key)
            .await
            .map_err(bus)?
            .map(text)
            .ok_or_else(|| IdMapError::Bus(format!("mapping {key} vanished")))
    }

    /// Record that `app` knows record `global` as `local`. Refuses to move a
    /// local id that already names another record.
    pub async fn record(
        &self,
        ids: AppIds<'_>,
        global: &str,
        local: &str,
    ) -> Result<(), IdMapError> {
        let claim = self.claim(ids, local, global).await?;
        if claim.global != global {
            return Err(IdMapError::Taken {
                app: ids.app.to_owned(),
                entity: ids.entity.to_owned(),
                local: local.to_owned(),
                existing: claim.global,
                wanted: global.to_owned(),
            });
        }
        // The reverse entry may be missing if an earlier claim crashed halfway.
        self.put_reverse(ids, global, local).await
    }

    async fn put_reverse(
        &self,
        ids: AppIds<'_>,
        global: &str,
        local: &str,
    ) -> Result<(), IdMapError> {
        self.kv
            .put(reverse_key(ids, global)?, Bytes::from(local.to_owned()))
            .await
            .map_err(bus)?;
        Ok(())
    }

    pub async fn global_for_local(
        &self,
        ids: AppIds<'_>,
        local: &str,
    ) -> Result<Option<String>, IdMapError> {
        Ok(self
            .kv
            .get(forward_key(ids, local)?)
            .await
            .map_err(bus)?
            .map(text))
    }

    pub async fn local_for_global(
        &self,
        ids: AppIds<'_>,
        global: &str,
    ) -> Result<Option<String>, IdMapError> {
        Ok(self
            .kv
            .get(reverse_key(ids, global)?)
            .await
            .map_err(bus)?
            .map(text))
    }

    /// Every app's local id of a record: `(app id, local id)`, sorted by app.
    pub async fn all_locals(
        &self,
        org: &str,
        entity: &str,
        global: &str,
    ) -> Result<Vec<(String, String)>, IdMapError> {
        // The reverse key of an app, without the app: checks the tokens.
        let any_app = AppIds {
            org,
            app: "_",
            entity,
        };
        let key = reverse_key(any_app, global)?;
        let prefix = format!("$KV.{BUCKET}.{}", key.strip_suffix('_').unwrap_or(&key));
        let stream = self
            .js
            .get_stream(format!("KV_{BUCKET}"))
            .await
            .map_err(bus)?;
        let mut subjects = stream
            .info_with_subjects(format!("{prefix}*"))
            .await
            .map_err(bus)?;
        let mut apps = Vec::new();
        while let Some(entry) = subjects.next().await {
            let (subject, _count) = entry.map_err(bus)?;
            if let Some(app) = subject.strip_prefix(&prefix) {
                apps.push(app.to_owned());
            }
        }
        apps.sort();
        let mut out = Vec::new();
        for app in apps {
            let ids = AppIds {
                org,
                app: &app,
                entity,
            };
            if let Some(local) = self.local_for_global(ids, global).await? {
                out.push((app, local));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids<'a>(org: &'a str, app: &'a str, entity: &'a str) -> AppIds<'a> {
        AppIds { org, app, entity }
    }

    #[test]
    fn an_own_id_is_one_to_255_bytes_without_nul() {
        assert_eq!(local_id_problem("INV-1"), None);
        assert_eq!(local_id_problem(&"é".repeat(127)), None, "254 bytes");
        assert!(local_id_problem("").unwrap().contains("1 to 255 bytes"));
        assert!(local_id_problem(&"a".repeat(256))
            .unwrap()
            .contains("1 to 255 bytes"));
        assert!(local_id_problem("a\u{0}b").unwrap().contains("U+0000"));
    }

    #[test]
    fn keys_are_valid_kv_keys_whatever_the_local_id() {
        let key = forward_key(ids("o", "a", "invoices"), "INV/2024 #47 ünïcode.x*>").unwrap();
        assert!(
            key.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-/_=.".contains(c)),
            "{key}"
        );
        assert_ne!(
            forward_key(ids("o", "a", "e"), "a.b").unwrap(),
            forward_key(ids("o", "a", "e"), "a_b").unwrap(),
            "distinct local ids never share a key"
        );
    }

    #[test]
    fn keys_refuse_what_would_not_fit_a_subject() {
        let long = "a".repeat(5000);
        assert!(matches!(
            forward_key(ids("o", "a", "invoices"), &long),
            Err(IdMapError::BadLocalId { len: 5000 })
        ));
        assert!(matches!(
            forward_key(ids("o", "a", "invoices"), ""),
            Err(IdMapError::BadLocalId { len: 0 })
        ));
        assert!(forward_key(ids("o", "a", "invoices"), &"a".repeat(MAX_LOCAL_ID_LEN)).is_ok());
        assert!(matches!(
            forward_key(ids(&long, "a", "invoices"), "1"),
            Err(IdMapError::BadToken(_))
        ));
        assert!(matches!(
            reverse_key(ids("o", "a", "invoices"), &long),
            Err(IdMapError::BadToken(_))
        ));
        assert!(matches!(
            reverse_key(ids("o", "a", "invoices"), "g.>"),
            Err(IdMapError::BadToken(_))
        ));
    }

    mod properties {
        use super::super::*;
        use super::ids;
        use proptest::prelude::*;

        fn is_key_character(c: char) -> bool {
            c.is_ascii_alphanumeric() || "-/_=.".contains(c)
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn a_forward_key_is_a_bounded_valid_key_and_round_trips(local in "\\PC{0,300}") {
                match forward_key(ids("org-1", "app_2", "invoices"), &local) {
                    Ok(key) => {
                        prop_assert!(key.chars().all(is_key_character), "{key}");
                        prop_assert!(key.len() <= 2 + 3 * 129 + 4 * MAX_LOCAL_ID_LEN.div_ceil(3));
                        let encoded = key.rsplit('.').next().unwrap();
                        let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
                            .decode(encoded)
                            .unwrap();
                        prop_assert_eq!(decoded, local.as_bytes());
                    }
                    Err(IdMapError::BadLocalId { len }) => {
                        prop_assert!(len == 0 || len > MAX_LOCAL_ID_LEN);
                    }
                    Err(other) => prop_assert!(false, "unexpected {other}"),
                }
            }

            #[test]
            fn any_token_text_gives_a_valid_reverse_key_or_an_error(global in "\\PC{0,200}") {
                if let Ok(key) = reverse_key(ids("o", "a", "invoices"), &global) {
                    prop_assert!(key.chars().all(is_key_character), "{key}");
                    prop_assert_eq!(key.split('.').count(), 5, "one level per part: {}", key);
                }
            }
        }
    }
}
