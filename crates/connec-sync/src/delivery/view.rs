//! A record as one receiving app sees it: its own local id when it told us
//! one, reference fields translated to its local ids where known, in the
//! external-ids array form (`[{"realm","provider","id"}]`), plus the change's
//! `op`, `version` and `group_id`.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use dashmap::DashMap;
use mno_events::proto::{Op, RecordEvent};
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use crate::raw_json::{top_level_fields, write_object};

/// The provider name of the platform's own ids.
pub const CONNEC_PROVIDER: &str = "connec";

/// Where delivery finds and records apps' local ids.
#[async_trait]
pub trait LocalIds: Send + Sync + 'static {
    /// The app's local id of a record, if the app told us one.
    async fn local_for_global(
        &self,
        org: &str,
        app: &str,
        entity: &str,
        global: &str,
    ) -> Option<String>;
    /// Record that `app` knows record `global` as `local` (an id_map answer).
    async fn record_mapping(
        &self,
        org: &str,
        app: &str,
        entity: &str,
        global: &str,
        local: &str,
    ) -> Result<(), String>;
}

/// Which fields of an entity reference other records, and of which entity.
pub trait ReferenceFields: Send + Sync + 'static {
    /// `(field path, referenced entity)`; a path is `field` or `array[].field`.
    fn references(&self, entity: &str) -> Vec<(String, String)>;
}

/// Ids learned from the record stream itself: every event an app makes
/// carries that app's local id (`source.local_id`), and `id_mapped` events
/// carry the ids apps sent back. Kept in memory, rebuilt as events pass.
#[derive(Default)]
pub struct LearnedIds {
    /// `org/app/entity/global` -> local id.
    map: DashMap<String, String>,
    /// When set, the map is a cache in front of the id map: emptied when it
    /// reaches this many entries, so memory stays flat however many records pass.
    bound: Option<usize>,
}

pub(crate) fn learned_key(org: &str, app: &str, entity: &str, global: &str) -> String {
    slash_joined(&[org, app, entity, global])
}

/// `a/b/c`: keys built per event, so without the formatting machinery.
pub(crate) fn slash_joined(parts: &[&str]) -> String {
    let mut key = String::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            key.push('/');
        }
        key.push_str(part);
    }
    key
}

impl LearnedIds {
    /// A cache of at most `bound` entries (the id map stays the source of truth).
    pub fn bounded(bound: usize) -> Self {
        Self {
            map: DashMap::new(),
            bound: Some(bound.max(1)),
        }
    }

    /// Note the local id an event reveals, if any.
    pub fn learn(&self, event: &RecordEvent) {
        if let Some(source) = &event.source {
            if !source.app_id.is_empty() && !source.local_id.is_empty() {
                self.remember(
                    learned_key(&event.org, &source.app_id, &event.entity, &event.record_id),
                    source.local_id.clone(),
                );
            }
        }
    }

    fn remember(&self, key: String, local: String) {
        if self.bound.is_some_and(|bound| self.map.len() >= bound) {
            self.map.clear();
        }
        self.map.insert(key, local);
    }

    pub fn get(&self, org: &str, app: &str, entity: &str, global: &str) -> Option<String> {
        if self.map.is_empty() {
            return None;
        }
        self.map
            .get(&learned_key(org, app, entity, global))
            .map(|v| v.clone())
    }

    pub fn insert(&self, org: &str, app: &str, entity: &str, global: &str, local: &str) {
        self.remember(learned_key(org, app, entity, global), local.into());
    }
}

/// References guessed from field names (`person_id` -> `people`), for
/// entities the catalogue does not describe.
pub struct GuessedReferences;

impl ReferenceFields for GuessedReferences {
    fn references(&self, _entity: &str) -> Vec<(String, String)> {
        Vec::new()
    }
}

/// The entity a `<name>_id` field most likely points at.
pub fn guess_entity(field: &str) -> Option<String> {
    let stem = field.strip_suffix("_id")?;
    if stem.is_empty()
        || matches!(
            stem,
            "group" | "channel" | "external" | "event" | "correlation"
        )
    {
        return None;
    }
    Some(match stem {
        "person" | "contact" | "lead" => "people".into(),
        "company" => "company".into(),
        "customer" | "supplier" | "organization" => "organizations".into(),
        s if s.ends_with('y') && !s.ends_with("ay") => format!("{}ies", &s[..s.len() - 1]),
        s => format!("{s}s"),
    })
}

/// Every (path, entity, global id) reference in a state: declared fields,
/// plus `*_id` string fields at the top level and in arrays of objects.
fn references_in(
    state: &Map<String, Value>,
    declared: &[(String, String)],
) -> Vec<(Vec<String>, String)> {
    let declared: HashMap<&str, &str> = declared
        .iter()
        .map(|(p, e)| (p.as_str(), e.as_str()))
        .collect();
    let entity_for = |path: &str, field: &str| -> Option<String> {
        declared
            .get(path)
            .map(|e| (*e).to_owned())
            .or_else(|| guess_entity(field))
    };
    let mut out = Vec::new();
    for (field, value) in state {
        match value {
            Value::String(_) if field != "id" => {
                if let Some(entity) = entity_for(field, field) {
                    out.push((vec![field.clone()], entity));
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let Value::Object(inner) = item else { continue };
                    for (sub, value) in inner {
                        if !value.is_string() || sub == "id" {
                            continue;
                        }
                        let path = format!("{field}[].{sub}");
                        if let Some(entity) = entity_for(&path, sub) {
                            out.push((vec![field.clone(), i.to_string(), sub.clone()], entity));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    out
}

fn external_ids(org: &str, app: &str, global: &str, local: Option<String>) -> Value {
    let mut ids = vec![json!({"realm": org, "provider": CONNEC_PROVIDER, "id": global})];
    if let Some(local) = local {
        ids.push(json!({"realm": org, "provider": app, "id": local}));
    }
    Value::Array(ids)
}

fn slot<'a>(state: &'a mut Map<String, Value>, path: &[String]) -> Option<&'a mut Value> {
    let (first, rest) = path.split_first()?;
    let mut value = state.get_mut(first)?;
    for part in rest {
        value = match value {
            Value::Array(items) => items.get_mut(part.parse::<usize>().ok()?)?,
            Value::Object(map) => map.get_mut(part)?,
            _ => return None,
        };
    }
    Some(value)
}

/// The record of `event` as `app` sees it (its local id, references in its
/// ids, `op`, `version`, `group_id`), written as JSON to `out`.
///
/// This runs once per event for every subscribing app, so only the fields
/// that may hold a reference are parsed; every other field is copied as the
/// event stored it (canonical JSON: compact, keys sorted). `declared` is the
/// entity's reference fields ([`ReferenceFields::references`]), read once
/// per batch by the caller: the catalogue builds them anew on every call.
pub async fn write_record_for_app(
    event: &RecordEvent,
    app: &str,
    ids: &dyn LocalIds,
    declared: &[(String, String)],
    out: &mut Vec<u8>,
) {
    let org = event.org.as_str();
    let op = event.op_kind();
    let fields = top_level_fields(&event.state);
    // The fields this view sets itself replace any the state has.
    let own = |key: &str| {
        matches!(key, "id" | "group_id" | "resource_type" | "op" | "version")
            || (key == "deleted" && op == Op::Deleted)
    };
    let mut copied: Vec<(&str, &RawValue)> = Vec::with_capacity(fields.len());
    let mut translated = Map::new();
    for (key, raw) in &fields {
        if own(key) {
            continue;
        }
        if may_hold_reference(key, raw.get(), declared) {
            if let Ok(value) = serde_json::from_str::<Value>(raw.get()) {
                translated.insert(key.to_string(), value);
                continue;
            }
        }
        copied.push((key, raw));
    }
    translate_references(&mut translated, declared, org, app, ids).await;
    let local = ids
        .local_for_global(org, app, &event.entity, &event.record_id)
        .await;
    translated.insert("id".into(), external_ids(org, app, &event.record_id, local));
    translated.insert("group_id".into(), json!(org));
    translated.insert("resource_type".into(), json!(event.entity));
    translated.insert("op".into(), json!(op.api_name()));
    translated.insert("version".into(), json!(event.version));
    if op == Op::Deleted {
        translated.insert("deleted".into(), json!(true));
    }

    write_object(out, copied, &translated);
}

/// Whether a top-level field may be (a string) or contain (an array of
/// objects with `*_id` or declared fields) a reference to translate.
fn may_hold_reference(key: &str, text: &str, declared: &[(String, String)]) -> bool {
    match text.as_bytes().first() {
        Some(b'"') => {
            key != "id"
                && (declared.iter().any(|(path, _)| path == key) || guess_entity(key).is_some())
        }
        Some(b'[') => {
            text.contains("_id\":")
                || declared.iter().any(|(path, _)| {
                    path.strip_prefix(key)
                        .is_some_and(|rest| rest.starts_with("[]."))
                })
        }
        _ => false,
    }
}

/// Replace each reference in `state` by its external-ids array in the app's view.
async fn translate_references(
    state: &mut Map<String, Value>,
    declared: &[(String, String)],
    org: &str,
    app: &str,
    ids: &dyn LocalIds,
) {
    let mut seen: HashSet<(String, String)> = HashSet::new();
    let mut translated: HashMap<(String, String), Option<String>> = HashMap::new();
    for (path, entity) in references_in(state, declared) {
        let Some(Value::String(global)) = slot(state, &path).map(|v| v.clone()) else {
            continue;
        };
        if seen.insert((entity.clone(), global.clone())) {
            let local = ids.local_for_global(org, app, &entity, &global).await;
            translated.insert((entity.clone(), global.clone()), local);
        }
        let local = translated.get(&(entity, global.clone())).cloned().flatten();
        if let Some(value) = slot(state, &path) {
            *value = external_ids(org, app, &global, local);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mno_events::envelope::canonical_json;
    use mno_events::proto::Source;

    /// The rendered record, parsed back.
    async fn record_for_app(
        event: &RecordEvent,
        app: &str,
        ids: &dyn LocalIds,
        refs: &dyn ReferenceFields,
    ) -> Value {
        let mut out = Vec::new();
        write_record_for_app(event, app, ids, &refs.references(&event.entity), &mut out).await;
        serde_json::from_slice(&out).unwrap_or_else(|_| Value::Object(Map::new()))
    }

    /// The straightforward view (parse the whole state, edit, serialise): the
    /// oracle the renderer must match byte for byte.
    async fn record_for_app_parsed(
        event: &RecordEvent,
        app: &str,
        ids: &dyn LocalIds,
        refs: &dyn ReferenceFields,
    ) -> Value {
        let mut state = match event.state_json() {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        };
        let org = event.org.as_str();
        translate_references(&mut state, &refs.references(&event.entity), org, app, ids).await;
        let local = ids
            .local_for_global(org, app, &event.entity, &event.record_id)
            .await;
        state.insert("id".into(), external_ids(org, app, &event.record_id, local));
        state.insert("group_id".into(), json!(org));
        state.insert("resource_type".into(), json!(event.entity));
        state.insert("op".into(), json!(event.op_kind().api_name()));
        state.insert("version".into(), json!(event.version));
        if event.op_kind() == Op::Deleted {
            state.insert("deleted".into(), json!(true));
        }
        Value::Object(state)
    }

    struct Declared;

    impl ReferenceFields for Declared {
        fn references(&self, entity: &str) -> Vec<(String, String)> {
            match entity {
                "invoices" => vec![
                    ("customer".into(), "organizations".into()),
                    ("lines[].product".into(), "items".into()),
                ],
                _ => Vec::new(),
            }
        }
    }

    #[tokio::test]
    async fn the_renderer_matches_the_parsed_view_byte_for_byte() {
        let ids = Learned(LearnedIds::default());
        ids.0.insert("o", "b", "organizations", "g-org", "ORG-1");
        ids.0.insert("o", "b", "items", "g-item", "IT-7");
        ids.0.insert("o", "b", "people", "g-p", "P-\"quoted\"");
        ids.0.insert("o", "b", "invoices", "g-inv", "INV-1");
        let states = [
            json!({}),
            json!({"title": "plain", "amount": 12.5, "n": -3, "big": 12345678901234567u64, "ok": true, "none": null}),
            json!({"customer": "g-org", "person_id": "g-p", "other_id": "unknown", "group_id": "spoofed", "id": "spoofed"}),
            json!({"lines": [{"product": "g-item", "item_id": "g-item", "qty": "2"}, {"note": "no refs"}, "scalar"]}),
            json!({"lines": [{"description": "no references here"}], "tags": ["a", "b"], "nested": {"person_id": "g-p"}}),
            json!({"op": "x", "version": 99, "resource_type": "y", "deleted": false, "zeta": "last", "Alpha": "caps first"}),
            json!({"unicode é": "ünïcødé \u{1F600}", "esc\"aped": "line\nbreak\ttab \\ slash", "ctrl": "\u{0001}"}),
            json!({"lines": [{"item_id": "g-item"}, {"item_id": "g-item"}], "customer": 42}),
        ];
        for (i, state) in states.iter().enumerate() {
            let refs: [&dyn ReferenceFields; 2] = [&Declared, &GuessedReferences];
            for (op, refs) in [Op::Created, Op::Updated, Op::Deleted]
                .into_iter()
                .flat_map(|op| refs.map(|r| (op, r)))
            {
                let event = RecordEvent {
                    org: "o".into(),
                    entity: "invoices".into(),
                    record_id: if i % 2 == 0 {
                        "g-inv".into()
                    } else {
                        format!("g-{i}")
                    },
                    op: op as i32,
                    version: i as u64 + 1,
                    state: canonical_json(state),
                    ..Default::default()
                };
                let mut rendered = Vec::new();
                let declared = refs.references(&event.entity);
                write_record_for_app(&event, "b", &ids, &declared, &mut rendered).await;
                let expected = record_for_app_parsed(&event, "b", &ids, refs).await;
                assert_eq!(
                    String::from_utf8(rendered).unwrap(),
                    serde_json::to_string(&expected).unwrap(),
                    "state {state} op {op:?}"
                );
            }
        }
    }

    #[tokio::test]
    async fn a_state_that_is_not_an_object_renders_as_the_platform_fields_only() {
        let ids = Learned(LearnedIds::default());
        let event = RecordEvent {
            org: "o".into(),
            entity: "invoices".into(),
            record_id: "g".into(),
            op: Op::Updated as i32,
            version: 2,
            state: b"[1,2]".to_vec(),
            ..Default::default()
        };
        let record = record_for_app(&event, "b", &ids, &GuessedReferences).await;
        assert_eq!(
            record,
            record_for_app_parsed(&event, "b", &ids, &GuessedReferences).await
        );
        assert_eq!(record["version"], 2);
        assert_eq!(record.as_object().unwrap().len(), 5);
    }

    #[test]
    fn a_bounded_cache_of_learned_ids_never_grows_past_its_bound() {
        let learned = LearnedIds::bounded(3);
        for i in 0..10 {
            learned.insert("o", "a", "people", &format!("g{i}"), &format!("l{i}"));
            assert!(learned.map.len() <= 3);
        }
        assert_eq!(learned.get("o", "a", "people", "g9").as_deref(), Some("l9"));
        let unbounded = LearnedIds::default();
        for i in 0..10 {
            unbounded.insert("o", "a", "people", &format!("g{i}"), "l");
        }
        assert_eq!(unbounded.map.len(), 10);
    }

    struct Learned(LearnedIds);

    #[async_trait]
    impl LocalIds for Learned {
        async fn local_for_global(&self, o: &str, a: &str, e: &str, g: &str) -> Option<String> {
            self.0.get(o, a, e, g)
        }
        async fn record_mapping(
            &self,
            o: &str,
            a: &str,
            e: &str,
            g: &str,
            l: &str,
        ) -> Result<(), String> {
            self.0.insert(o, a, e, g, l);
            Ok(())
        }
    }

    #[test]
    fn guesses_referenced_entities() {
        assert_eq!(guess_entity("person_id").as_deref(), Some("people"));
        assert_eq!(guess_entity("item_id").as_deref(), Some("items"));
        assert_eq!(guess_entity("tax_code_id").as_deref(), Some("tax_codes"));
        assert_eq!(
            guess_entity("opportunity_id").as_deref(),
            Some("opportunities")
        );
        assert_eq!(guess_entity("group_id"), None);
        assert_eq!(guess_entity("name"), None);
    }

    #[tokio::test]
    async fn translates_the_id_and_references_into_the_apps_ids() {
        let ids = Learned(LearnedIds::default());
        ids.0.learn(&RecordEvent {
            org: "org1".into(),
            entity: "invoices".into(),
            record_id: "g-inv".into(),
            source: Some(Source {
                app_id: "b".into(),
                local_id: "INV-9".into(),
            }),
            ..Default::default()
        });
        ids.0.insert("org1", "b", "people", "g-person", "P-1");
        let event = RecordEvent {
            org: "org1".into(),
            entity: "invoices".into(),
            record_id: "g-inv".into(),
            op: Op::Updated as i32,
            version: 3,
            state: canonical_json(&json!({
                "title": "x",
                "person_id": "g-person",
                "lines": [{"item_id": "g-item", "amount": "1.00"}]
            })),
            ..Default::default()
        };
        let record = record_for_app(&event, "b", &ids, &GuessedReferences).await;
        assert_eq!(
            record["id"],
            json!([{"realm":"org1","provider":"connec","id":"g-inv"},{"realm":"org1","provider":"b","id":"INV-9"}])
        );
        assert_eq!(record["person_id"][1]["id"], "P-1");
        assert_eq!(
            record["lines"][0]["item_id"],
            json!([{"realm":"org1","provider":"connec","id":"g-item"}])
        );
        assert_eq!(record["op"], "updated");
        assert_eq!(record["version"], 3);
        assert_eq!(record["group_id"], "org1");
        assert_eq!(record["title"], "x");
    }
}
