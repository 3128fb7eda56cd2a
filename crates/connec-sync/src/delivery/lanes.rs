//! Per-record order for one app: each record has a lane of events waiting to
//! be delivered; only the head of a lane is ever in flight, so a later event
//! of a record waits behind a failing one while other lanes keep flowing.
//!
//! Pure bookkeeping (no I/O), driven by the app's worker.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::Message;
// Lanes are looked up several times per event: a fast hasher (seeded per process).
use foldhash::HashMap;
use mno_events::proto::RecordEvent;
use tokio::time::Instant;

/// One event waiting for delivery to one app.
pub struct Pending {
    /// Stream sequence in RECORDS.
    pub seq: u64,
    pub event: Arc<RecordEvent>,
    /// The ack handle; `None` for an event redriven from the DLQ.
    pub message: Option<Message>,
    /// Set when the event was redriven from this DLQ sequence.
    pub dlq_seq: Option<u64>,
    /// Failed attempts so far.
    pub attempts: u32,
    /// The bus delivered it before, to a worker that stopped or died (the app
    /// was disabled, the process restarted): it may have been sent already.
    pub delivered_before: bool,
    /// When the platform received it from the bus (for latency figures).
    pub received: Instant,
}

impl Pending {
    /// The lane of the record: `org/entity/record_id`.
    pub fn lane_key(&self) -> LaneKey {
        lane_key(&self.event)
    }

    /// A retry, or what may have been sent before, goes alone in its POST,
    /// under its own event id (docs/api/delivery.md).
    pub fn goes_alone(&self) -> bool {
        self.attempts > 0 || self.delivered_before
    }
}

/// A lane's name; shared (not copied) by the maps and sets that index lanes.
pub type LaneKey = Arc<str>;

pub fn lane_key(event: &RecordEvent) -> LaneKey {
    super::view::slash_joined(&[&event.org, &event.entity, &event.record_id]).into()
}

/// A lane's events, oldest first. Most lanes hold one event at a time, so the
/// first is kept inline: a new lane allocates nothing. Invariant: `rest` is
/// empty whenever `head` is.
#[derive(Default)]
struct LaneQueue {
    head: Option<Pending>,
    rest: VecDeque<Pending>,
}

impl LaneQueue {
    fn is_empty(&self) -> bool {
        self.head.is_none()
    }

    fn front(&self) -> Option<&Pending> {
        self.head.as_ref()
    }

    fn push_back(&mut self, pending: Pending) {
        match self.head {
            None => self.head = Some(pending),
            Some(_) => self.rest.push_back(pending),
        }
    }

    fn push_front(&mut self, pending: Pending) {
        if let Some(old) = self.head.replace(pending) {
            self.rest.push_front(old);
        }
    }

    fn pop_front(&mut self) -> Option<Pending> {
        let head = self.head.take();
        self.head = self.rest.pop_front();
        head
    }

    fn iter(&self) -> impl Iterator<Item = &Pending> {
        self.head.iter().chain(self.rest.iter())
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = &mut Pending> {
        self.head.iter_mut().chain(self.rest.iter_mut())
    }

    fn into_events(self) -> impl Iterator<Item = Pending> {
        self.head.into_iter().chain(self.rest)
    }
}

#[derive(Default)]
struct Lane {
    queue: LaneQueue,
    /// Order stamp of the head; ready lanes go out oldest head first.
    head_order: u64,
    in_flight: bool,
    /// When the head may be retried.
    due: Option<Instant>,
}

/// Events taken out of their lanes to go in one POST.
pub struct Batch {
    pub org: String,
    /// Each lane's events, in lane order.
    pub lanes: Vec<(LaneKey, Vec<Pending>)>,
    /// A retry: the batch is one event on its own, so its webhook-id is the event id.
    pub is_retry: bool,
}

impl Batch {
    pub fn events(&self) -> impl Iterator<Item = &Pending> {
        self.lanes.iter().flat_map(|(_, events)| events.iter())
    }

    pub fn len(&self) -> usize {
        self.lanes.iter().map(|(_, e)| e.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Default)]
pub struct Lanes {
    /// Boxed: a lane is a few hundred bytes, and the map grows by rehashing.
    lanes: HashMap<LaneKey, Box<Lane>>,
    /// Lanes whose head can go now: (head order, key).
    ready: BTreeSet<(u64, LaneKey)>,
    /// Lanes in backoff: (due, key).
    waiting: BTreeSet<(Instant, LaneKey)>,
    /// Stream sequences held (queued or in flight), to recognise redeliveries.
    held: HashMap<u64, LaneKey>,
    next_order: u64,
}

impl Lanes {
    /// Events held, queued or in flight.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    pub fn is_held(&self, seq: u64) -> bool {
        self.held.contains_key(&seq)
    }

    /// Queue an event behind the others of its record. A redelivery of a held
    /// sequence swaps in the fresh ack handle and returns false.
    pub fn push(&mut self, pending: Pending) -> bool {
        if pending.seq > 0 {
            if let Some(key) = self.held.get(&pending.seq) {
                if let (Some(lane), Some(fresh)) = (self.lanes.get_mut(key), pending.message) {
                    if let Some(queued) = lane.queue.iter_mut().find(|p| p.seq == pending.seq) {
                        queued.message = Some(fresh);
                    }
                }
                return false;
            }
        }
        let key = pending.lane_key();
        if pending.seq > 0 {
            self.held.insert(pending.seq, key.clone());
        }
        self.next_order += 1;
        let order = self.next_order;
        let lane = self.lanes.entry(key.clone()).or_default();
        let was_empty = lane.queue.is_empty();
        lane.queue.push_back(pending);
        if was_empty && !lane.in_flight && lane.due.is_none() {
            lane.head_order = order;
            self.ready.insert((order, key));
        }
        true
    }

    /// The earliest retry time of a lane in backoff.
    pub fn next_due(&self) -> Option<Instant> {
        self.waiting.first().map(|(due, _)| *due)
    }

    /// Move lanes whose backoff ended to the ready set.
    pub fn wake(&mut self, now: Instant) {
        while let Some((due, key)) = self.waiting.first().cloned() {
            if due > now {
                break;
            }
            self.waiting.pop_first();
            if let Some(lane) = self.lanes.get_mut(&key) {
                lane.due = None;
                if !lane.in_flight && !lane.queue.is_empty() {
                    self.ready.insert((lane.head_order, key));
                }
            }
        }
    }

    /// Lanes ready to go now.
    pub fn ready_lanes(&self) -> usize {
        self.ready.len()
    }

    /// Forget events that left for good (dead-lettered) while their lane stays in flight.
    pub fn forget(&mut self, done: &[Pending]) {
        for pending in done {
            if pending.seq > 0 {
                self.held.remove(&pending.seq);
            }
        }
    }

    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// Take up to `max` events for one POST: the oldest ready lane decides the
    /// org; a lane whose head failed before goes alone, as one event.
    pub fn take_batch(&mut self, max: usize) -> Option<Batch> {
        let (_, first_key) = self.ready.first().cloned()?;
        let first = self.lanes.get(&first_key)?;
        let org = first.queue.front()?.event.org.clone();
        if first.queue.front()?.goes_alone() {
            self.ready.pop_first();
            let lane = self.lanes.get_mut(&first_key).expect("ready lane exists");
            lane.in_flight = true;
            let head = lane.queue.pop_front().expect("ready lane has a head");
            return Some(Batch {
                org,
                lanes: vec![(first_key, vec![head])],
                is_retry: true,
            });
        }
        let mut taken = 0;
        let mut lanes = Vec::with_capacity(max.min(self.ready.len()));
        // Look a little past `max` (lanes of other orgs are skipped), never at
        // the whole set; each lane gives at least one event, so `max` lanes do.
        let candidates: Vec<(u64, LaneKey)> = self
            .ready
            .iter()
            .take(max * 4 + 16)
            .filter(|(_, key)| {
                self.lanes[key]
                    .queue
                    .front()
                    .is_some_and(|head| head.event.org == org && !head.goes_alone())
            })
            .take(max)
            .cloned()
            .collect();
        for (order, key) in candidates {
            if taken >= max {
                break;
            }
            let lane = self.lanes.get_mut(&key).expect("ready lane exists");
            self.ready.remove(&(order, key.clone()));
            lane.in_flight = true;
            let mut events = Vec::with_capacity(1);
            while taken < max {
                match lane.queue.front() {
                    Some(next) if !next.goes_alone() => {
                        events.push(lane.queue.pop_front().expect("front exists"));
                        taken += 1;
                    }
                    _ => break,
                }
            }
            lanes.push((key, events));
        }
        Some(Batch {
            org,
            lanes,
            is_retry: false,
        })
    }

    /// The lane's events were delivered (or dead-lettered): forget them and free the lane.
    pub fn finish(&mut self, key: &str, done: &[Pending]) {
        for pending in done {
            if pending.seq > 0 {
                self.held.remove(&pending.seq);
            }
        }
        self.release(key, None);
    }

    /// The lane's events failed: put them back at the head, to be retried after `delay`.
    pub fn retry_later(
        &mut self,
        key: &str,
        mut events: Vec<Pending>,
        now: Instant,
        delay: Duration,
    ) {
        let Some(lane) = self.lanes.get_mut(key) else {
            return;
        };
        while let Some(last) = events.pop() {
            lane.queue.push_front(last);
        }
        self.release(key, Some(now + delay));
    }

    fn release(&mut self, key: &str, due: Option<Instant>) {
        let Some(key) = self.lanes.get_key_value(key).map(|(k, _)| k.clone()) else {
            return;
        };
        let lane = self.lanes.get_mut(&key).expect("the lane was just found");
        lane.in_flight = false;
        if lane.queue.is_empty() {
            self.lanes.remove(&key);
            return;
        }
        self.next_order += 1;
        if lane.head_order == 0 || due.is_none() {
            lane.head_order = self.next_order;
        }
        match due {
            Some(due) => {
                lane.due = Some(due);
                self.waiting.insert((due, key));
            }
            None => {
                self.ready.insert((lane.head_order, key));
            }
        }
    }

    /// Drop every queued (not in-flight) event of `entity` in `org`, returning them so their messages can be acked.
    pub fn drop_entity(&mut self, org: &str, entity: &str) -> Vec<Pending> {
        let keys: Vec<LaneKey> = self
            .lanes
            .iter()
            .filter(|(_, lane)| {
                !lane.in_flight
                    && lane
                        .queue
                        .front()
                        .is_some_and(|p| p.event.org == org && p.event.entity == entity)
            })
            .map(|(k, _)| k.clone())
            .collect();
        let mut dropped = Vec::new();
        for key in keys {
            if let Some(lane) = self.lanes.remove(&key) {
                self.ready.remove(&(lane.head_order, key.clone()));
                if let Some(due) = lane.due {
                    self.waiting.remove(&(due, key.clone()));
                }
                dropped.extend(lane.queue.into_events());
            }
        }
        for pending in &dropped {
            self.held.remove(&pending.seq);
        }
        dropped
    }

    /// Ack handles of every queued event (in-flight ones are the senders').
    pub fn queued_messages(&self) -> impl Iterator<Item = &Message> {
        self.lanes
            .values()
            .flat_map(|lane| lane.queue.iter())
            .filter_map(|p| p.message.as_ref())
    }

    /// Orgs that have queued events.
    pub fn orgs(&self) -> Vec<String> {
        let mut orgs: Vec<String> = self
            .lanes
            .values()
            .filter_map(|lane| lane.queue.front().map(|p| p.event.org.clone()))
            .collect();
        orgs.sort();
        orgs.dedup();
        orgs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(seq: u64, org: &str, record: &str) -> Pending {
        Pending {
            seq,
            event: Arc::new(RecordEvent {
                event_id: format!("e{seq}"),
                org: org.into(),
                entity: "invoices".into(),
                record_id: record.into(),
                version: seq,
                ..Default::default()
            }),
            message: None,
            dlq_seq: None,
            attempts: 0,
            delivered_before: false,
            received: Instant::now(),
        }
    }

    fn seqs(batch: &Batch) -> Vec<u64> {
        batch.events().map(|p| p.seq).collect()
    }

    #[test]
    fn a_batch_keeps_per_record_order_and_one_org() {
        let mut lanes = Lanes::default();
        for (seq, org, rec) in [
            (1, "o1", "a"),
            (2, "o1", "b"),
            (3, "o2", "c"),
            (4, "o1", "a"),
        ] {
            assert!(lanes.push(pending(seq, org, rec)));
        }
        let batch = lanes.take_batch(10).unwrap();
        assert_eq!(batch.org, "o1");
        assert_eq!(seqs(&batch), vec![1, 4, 2]);
        let next = lanes.take_batch(10).unwrap();
        assert_eq!(seqs(&next), vec![3]);
        assert!(lanes.take_batch(10).is_none());
    }

    #[test]
    fn what_the_bus_delivered_before_goes_alone_like_a_retry() {
        let mut lanes = Lanes::default();
        let mut again = pending(1, "o", "r1");
        again.delivered_before = true;
        lanes.push(again);
        lanes.push(pending(2, "o", "r2"));
        lanes.push(pending(3, "o", "r3"));
        let first = lanes.take_batch(10).unwrap();
        assert_eq!(seqs(&first), [1]);
        assert!(first.is_retry);
        assert_eq!(seqs(&lanes.take_batch(10).unwrap()), [2, 3]);
    }

    #[test]
    fn later_events_of_a_failing_record_wait_while_others_flow() {
        let mut lanes = Lanes::default();
        lanes.push(pending(1, "o", "a"));
        let mut batch = lanes.take_batch(1).unwrap();
        let (key, mut events) = batch.lanes.pop().unwrap();
        events[0].attempts = 1;
        let now = Instant::now();
        lanes.retry_later(&key, events, now, Duration::from_secs(60));
        lanes.push(pending(2, "o", "a"));
        lanes.push(pending(3, "o", "b"));
        let flowing = lanes.take_batch(10).unwrap();
        assert_eq!(seqs(&flowing), vec![3], "record b flows, a's v2 waits");
        lanes.wake(now + Duration::from_secs(61));
        let retry = lanes.take_batch(10).unwrap();
        assert!(retry.is_retry);
        assert_eq!(seqs(&retry), vec![1], "the failed head goes alone");
        let (key, done) = &retry.lanes[0];
        lanes.finish(key, done);
        assert_eq!(seqs(&lanes.take_batch(10).unwrap()), vec![2]);
    }

    #[test]
    fn a_redelivery_of_a_held_sequence_is_not_queued_twice() {
        let mut lanes = Lanes::default();
        assert!(lanes.push(pending(7, "o", "a")));
        assert!(!lanes.push(pending(7, "o", "a")));
        assert_eq!(lanes.held(), 1);
        let batch = lanes.take_batch(10).unwrap();
        assert_eq!(seqs(&batch), vec![7]);
    }

    #[test]
    fn dropping_an_entity_of_an_org_returns_its_queued_events_only() {
        let mut lanes = Lanes::default();
        lanes.push(pending(1, "o1", "a"));
        lanes.push(pending(2, "o2", "b"));
        let mut person = pending(3, "o1", "c");
        person.event = Arc::new(RecordEvent {
            entity: "people".into(),
            ..(*person.event).clone()
        });
        lanes.push(person);
        let dropped = lanes.drop_entity("o1", "invoices");
        assert_eq!(dropped.iter().map(|p| p.seq).collect::<Vec<_>>(), vec![1]);
        assert_eq!(lanes.orgs(), vec!["o1".to_owned(), "o2".to_owned()]);
        let mut left = seqs(&lanes.take_batch(10).unwrap());
        left.extend(seqs(&lanes.take_batch(10).unwrap()));
        left.sort();
        assert_eq!(left, vec![2, 3]);
    }

    #[test]
    fn a_lane_queue_keeps_order_through_takes_and_put_backs() {
        let mut queue = LaneQueue::default();
        assert!(queue.is_empty() && queue.pop_front().is_none());
        for seq in 1..=3 {
            queue.push_back(pending(seq, "o", "a"));
        }
        let first = queue.pop_front().unwrap();
        let second = queue.pop_front().unwrap();
        assert_eq!(queue.front().map(|p| p.seq), Some(3));
        // A failed batch goes back in front, in its order.
        queue.push_front(second);
        queue.push_front(first);
        let order: Vec<u64> = queue.iter().map(|p| p.seq).collect();
        assert_eq!(order, vec![1, 2, 3]);
        let drained: Vec<u64> = queue.into_events().map(|p| p.seq).collect();
        assert_eq!(drained, vec![1, 2, 3]);
    }
}
