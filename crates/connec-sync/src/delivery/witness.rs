//! The local ids one app gave records whose whole history its worker read.
//!
//! Every mapping of an app's local id to a record is an event on that
//! record's subject (`source` = the app and its id: the create that claimed
//! it, or an `id_mapped` event), and an app's consumer reads a record's
//! events in order. So for a record the worker saw created, what it read so
//! far says which local id the app gave it as of the event being delivered,
//! and no id-map read is needed; with ten apps that is ten reads of the bus
//! saved per change. Any record not seen from its creation (created before
//! the worker started, forgotten past the bound, seen only on redelivery)
//! is unknown here and looked up in the id map as before.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use mno_events::proto::{Op, RecordEvent};

use super::view::{slash_joined, LocalIds};

/// What the app's worker read of the records it saw created: their key
/// (`org/entity/record`) and the app's local id of each, if it gave one.
/// Two generations bound the memory: when the young one is full it becomes
/// the old one and the previous old one is forgotten.
pub struct Witnessed {
    app: String,
    bound: usize,
    generations: Mutex<Generations>,
}

#[derive(Default)]
struct Generations {
    young: HashMap<String, Option<String>>,
    old: HashMap<String, Option<String>>,
}

impl Generations {
    fn get_mut(&mut self, key: &str) -> Option<&mut Option<String>> {
        match self.young.get_mut(key) {
            Some(local) => Some(local),
            None => self.old.get_mut(key),
        }
    }
}

impl Witnessed {
    /// For `app`, remembering at most about `2 * bound` records.
    pub fn new(app: &str, bound: usize) -> Witnessed {
        Witnessed {
            app: app.to_owned(),
            bound: bound.max(1),
            generations: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Generations> {
        // The maps hold plain data: a panic elsewhere leaves them consistent.
        self.generations
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Read one event the app's consumer delivered, in stream order.
    /// `first_delivery`: JetStream delivers it for the first time (a
    /// redelivered create may come after mappings already read).
    pub fn read(&self, event: &RecordEvent, first_delivery: bool) {
        let key = slash_joined(&[&event.org, &event.entity, &event.record_id]);
        let own_local = event
            .source
            .as_ref()
            .filter(|s| s.app_id == self.app && !s.local_id.is_empty())
            .map(|s| s.local_id.clone());
        let mut generations = self.lock();
        match event.op_kind() {
            Op::Created if event.version == 1 && first_delivery => {
                if generations.get_mut(&key).is_none() {
                    if generations.young.len() >= self.bound {
                        generations.old = std::mem::take(&mut generations.young);
                    }
                    generations.young.insert(key, own_local);
                }
            }
            // A merge may move mappings between records: ask the id map again.
            Op::Merged => {
                generations.young.remove(&key);
                generations.old.remove(&key);
                for merged in &event.merged_record_ids {
                    let key = slash_joined(&[&event.org, &event.entity, merged]);
                    generations.young.remove(&key);
                    generations.old.remove(&key);
                }
            }
            _ => {
                if let (Some(local), Some(known)) = (own_local, generations.get_mut(&key)) {
                    *known = Some(local);
                }
            }
        }
    }

    /// The app answered a delivery with its id for a record (recorded in the id map).
    pub fn mapped(&self, org: &str, entity: &str, global: &str, local: &str) {
        if let Some(known) = self.lock().get_mut(&slash_joined(&[org, entity, global])) {
            *known = Some(local.to_owned());
        }
    }

    /// `Some(the app's local id, if any)` for a witnessed record; `None`: ask the id map.
    pub fn local(&self, org: &str, entity: &str, global: &str) -> Option<Option<String>> {
        self.lock()
            .get_mut(&slash_joined(&[org, entity, global]))
            .map(|known| known.clone())
    }
}

/// One app's local ids: what its worker witnessed, else the shared source.
pub struct WitnessedIds {
    pub witnessed: Arc<Witnessed>,
    pub ids: Arc<dyn LocalIds>,
}

#[async_trait]
impl LocalIds for WitnessedIds {
    async fn local_for_global(
        &self,
        org: &str,
        app: &str,
        entity: &str,
        global: &str,
    ) -> Option<String> {
        if app == self.witnessed.app {
            if let Some(known) = self.witnessed.local(org, entity, global) {
                return known;
            }
        }
        self.ids.local_for_global(org, app, entity, global).await
    }

    async fn record_mapping(
        &self,
        org: &str,
        app: &str,
        entity: &str,
        global: &str,
        local: &str,
    ) -> Result<(), String> {
        self.ids
            .record_mapping(org, app, entity, global, local)
            .await?;
        if app == self.witnessed.app {
            self.witnessed.mapped(org, entity, global, local);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mno_events::proto::Source;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn event(op: Op, version: u64, record: &str, source: Option<(&str, &str)>) -> RecordEvent {
        RecordEvent {
            org: "o".into(),
            entity: "invoices".into(),
            record_id: record.into(),
            op: op as i32,
            version,
            source: source.map(|(app, local)| Source {
                app_id: app.into(),
                local_id: local.into(),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_record_seen_created_by_another_app_has_no_local_id_until_the_app_maps_it() {
        let seen = Witnessed::new("b", 100);
        assert_eq!(seen.local("o", "invoices", "g"), None, "never seen: ask");
        seen.read(&event(Op::Created, 1, "g", Some(("a", "A-1"))), true);
        assert_eq!(seen.local("o", "invoices", "g"), Some(None));
        // Another app's ids change nothing for this one.
        seen.read(&event(Op::Updated, 2, "g", Some(("a", "A-2"))), true);
        assert_eq!(seen.local("o", "invoices", "g"), Some(None));
        // The app maps it (an id_mapped event), then maps it anew.
        seen.read(&event(Op::IdMapped, 2, "g", Some(("b", "B-1"))), true);
        assert_eq!(seen.local("o", "invoices", "g"), Some(Some("B-1".into())));
        seen.read(&event(Op::IdMapped, 2, "g", Some(("b", "B-2"))), true);
        assert_eq!(seen.local("o", "invoices", "g"), Some(Some("B-2".into())));
        // An update by the app without its id (it wrote by the global id) keeps the mapping.
        seen.read(&event(Op::Updated, 3, "g", Some(("b", ""))), true);
        assert_eq!(seen.local("o", "invoices", "g"), Some(Some("B-2".into())));
        // The app's own create gives its id from the start.
        seen.read(&event(Op::Created, 1, "h", Some(("b", "B-9"))), true);
        assert_eq!(seen.local("o", "invoices", "h"), Some(Some("B-9".into())));
    }

    #[test]
    fn a_create_read_again_never_forgets_a_mapping() {
        let seen = Witnessed::new("b", 100);
        seen.read(&event(Op::Created, 1, "g", None), true);
        seen.mapped("o", "invoices", "g", "B-1");
        assert_eq!(seen.local("o", "invoices", "g"), Some(Some("B-1".into())));
        // Redelivered, or delivered anew to a consumer moved back: the mapping stays.
        seen.read(&event(Op::Created, 1, "g", None), false);
        seen.read(&event(Op::Created, 1, "g", None), true);
        assert_eq!(seen.local("o", "invoices", "g"), Some(Some("B-1".into())));
        // A create seen only on redelivery is not witnessed: mappings may predate it.
        seen.read(&event(Op::Created, 1, "late", None), false);
        assert_eq!(seen.local("o", "invoices", "late"), None);
        // Nor is a record first seen after its creation.
        seen.read(&event(Op::Updated, 4, "older", Some(("b", "B-4"))), true);
        assert_eq!(seen.local("o", "invoices", "older"), None);
    }

    #[test]
    fn an_answer_for_an_unwitnessed_record_is_left_to_the_id_map() {
        let seen = Witnessed::new("b", 100);
        seen.mapped("o", "invoices", "g", "B-1");
        assert_eq!(seen.local("o", "invoices", "g"), None);
    }

    #[test]
    fn a_merge_sends_the_records_back_to_the_id_map() {
        let seen = Witnessed::new("b", 100);
        seen.read(&event(Op::Created, 1, "g", None), true);
        seen.read(&event(Op::Created, 1, "h", None), true);
        let mut merge = event(Op::Merged, 2, "g", None);
        merge.merged_record_ids = vec!["h".into()];
        seen.read(&merge, true);
        assert_eq!(seen.local("o", "invoices", "g"), None);
        assert_eq!(seen.local("o", "invoices", "h"), None);
    }

    #[test]
    fn memory_is_bounded_and_the_newest_records_are_kept() {
        let seen = Witnessed::new("b", 10);
        for i in 0..100 {
            seen.read(&event(Op::Created, 1, &format!("r{i}"), None), true);
            let generations = seen.lock();
            assert!(generations.young.len() + generations.old.len() <= 20);
        }
        assert_eq!(seen.local("o", "invoices", "r99"), Some(None));
        assert_eq!(seen.local("o", "invoices", "r90"), Some(None));
        assert_eq!(seen.local("o", "invoices", "r0"), None, "forgotten: ask");
        // A mapping read for a record in the old generation still lands.
        seen.read(&event(Op::IdMapped, 1, "r85", Some(("b", "B-85"))), true);
        assert_eq!(
            seen.local("o", "invoices", "r85"),
            Some(Some("B-85".into()))
        );
    }

    /// The shared source, counting how often it is asked.
    #[derive(Default)]
    struct Counting {
        asked: AtomicUsize,
        recorded: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl LocalIds for Counting {
        async fn local_for_global(&self, _: &str, _: &str, _: &str, g: &str) -> Option<String> {
            self.asked.fetch_add(1, Ordering::Relaxed);
            Some(format!("map-{g}"))
        }
        async fn record_mapping(
            &self,
            _: &str,
            _: &str,
            _: &str,
            g: &str,
            l: &str,
        ) -> Result<(), String> {
            self.recorded.lock().unwrap().push(format!("{g}={l}"));
            Ok(())
        }
    }

    #[tokio::test]
    async fn witnessed_records_skip_the_id_map_and_others_ask_it() {
        let shared = Arc::new(Counting::default());
        let witnessed = Arc::new(Witnessed::new("b", 100));
        let ids = WitnessedIds {
            witnessed: witnessed.clone(),
            ids: shared.clone(),
        };
        witnessed.read(&event(Op::Created, 1, "g", Some(("a", "A-1"))), true);
        assert_eq!(ids.local_for_global("o", "b", "invoices", "g").await, None);
        assert_eq!(shared.asked.load(Ordering::Relaxed), 0);
        assert_eq!(
            ids.local_for_global("o", "b", "invoices", "other").await,
            Some("map-other".into())
        );
        // Another app's view is never answered from this app's witness.
        assert_eq!(
            ids.local_for_global("o", "c", "invoices", "g").await,
            Some("map-g".into())
        );
        assert_eq!(shared.asked.load(Ordering::Relaxed), 2);
        // An id_map answer goes to the id map and is seen at once.
        ids.record_mapping("o", "b", "invoices", "g", "B-1")
            .await
            .unwrap();
        assert_eq!(*shared.recorded.lock().unwrap(), vec!["g=B-1".to_owned()]);
        assert_eq!(
            ids.local_for_global("o", "b", "invoices", "g").await,
            Some("B-1".into())
        );
        assert_eq!(shared.asked.load(Ordering::Relaxed), 2);
    }
}
