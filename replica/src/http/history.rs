//! The ingress history: each call's sender and outcome for the 6 minutes the IC answers
//! `request_status` (IC interface spec, "Request status"), ordered by request id so that a
//! certificate can show one entry — or, for an unknown id, the two around it, which prove
//! its absence — without the rest. Expiry walks a queue in time order, so each call costs
//! O(log n) whatever the load. Each change is also a record for the state's side log, from
//! which the history is restored when the replica is served again, so a call sent again
//! after a restart is answered from the history and not run twice.

use std::collections::{BTreeMap, VecDeque};

use candid::Principal;
use ic_transport_types::RequestId;

use crate::Reject;

/// How long request statuses stay readable (IC interface spec: at least the 5-minute
/// ingress expiry window).
const KEPT_NS: u64 = 6 * 60 * 1_000_000_000;

pub type Outcome = Result<Vec<u8>, Reject>;

/// One call as `request_status` readers are checked against (IC interface spec, "Request:
/// Read state"): who sent it, to which canister, through which effective canister id.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    pub sender: Principal,
    pub receiver: Principal,
    pub effective: Principal,
    /// `None` while the call is processing.
    pub outcome: Option<Outcome>,
    /// The replica's number for the call, under which its answer comes (`answer_of`).
    #[serde(default)]
    pub number: Option<u64>,
}

#[derive(Default)]
pub struct History {
    entries: BTreeMap<RequestId, Entry>,
    /// (time recorded, request id), oldest first.
    order: VecDeque<(u64, RequestId)>,
}

/// An entry as the side log keeps it.
#[derive(serde::Serialize, serde::Deserialize)]
struct Saved {
    #[serde(with = "serde_bytes")]
    id: Vec<u8>,
    time: u64,
    entry: Entry,
}

impl History {
    /// Records an outcome at `time` and forgets what has expired by then.
    pub fn record(&mut self, id: RequestId, entry: Entry, time: u64) {
        self.expire(time);
        self.entries.insert(id, entry);
        self.order.push_back((time, id));
    }

    /// Records the outcome of a call that was processing.
    pub fn settle(&mut self, id: &RequestId, outcome: Outcome) {
        if let Some(entry) = self.entries.get_mut(id) {
            entry.outcome = Some(outcome);
        }
    }

    pub fn get(&self, id: &RequestId) -> Option<&Entry> {
        self.entries.get(id)
    }

    /// The side-log record of entry `id` as it stands, recorded at `time` (for a settled
    /// call, any time: a later record of an id replaces its entry, not its place).
    pub fn saved(&self, id: &RequestId, time: u64) -> Option<Vec<u8>> {
        let saved = Saved {
            id: id.as_slice().to_vec(),
            time,
            entry: self.entries.get(id)?.clone(),
        };
        serde_cbor::to_vec(&saved).ok()
    }

    /// What the replica keeps with a call (`Replica::submit_tagged`): its request id and
    /// entry, from which `recover` records it if the process ended before this history did.
    pub fn tag(id: &RequestId, entry: &Entry, time: u64) -> Vec<u8> {
        let saved = Saved {
            id: id.as_slice().to_vec(),
            time,
            entry: entry.clone(),
        };
        serde_cbor::to_vec(&saved).expect("entries always encode")
    }

    /// Records the calls the replica recovered that this history lacks or holds as still
    /// processing; returns the ones still processing (number, request id), whose answers
    /// are to be waited for.
    pub fn recover(&mut self, recovered: Vec<crate::Recovered>) -> Vec<(u64, RequestId)> {
        for call in recovered {
            let Ok(saved) = serde_cbor::from_slice::<Saved>(&call.tag) else {
                continue;
            };
            let Ok(id) = <[u8; 32]>::try_from(saved.id.as_slice()) else {
                continue;
            };
            let id = RequestId::new(&id);
            match self.entries.get_mut(&id) {
                Some(entry) if entry.outcome.is_some() => {}
                Some(entry) => entry.outcome = call.answer,
                None => {
                    let entry = Entry {
                        outcome: call.answer,
                        number: Some(call.number),
                        ..saved.entry
                    };
                    self.record(id, entry, saved.time);
                }
            }
        }
        self.entries
            .iter()
            .filter(|(_, e)| e.outcome.is_none())
            .filter_map(|(id, e)| Some((e.number?, *id)))
            .collect()
    }

    /// Every live entry's record, oldest first: what the side log is rewritten to.
    pub fn records(&self) -> Vec<Vec<u8>> {
        self.order
            .iter()
            .filter_map(|(time, id)| self.saved(id, *time))
            .collect()
    }

    /// The history the side log's `records` leave at `now`: a later record of an id
    /// replaces an earlier one (a call settled), and what has expired is dropped.
    pub fn restore(records: &[Vec<u8>], now: u64) -> Self {
        let mut history = Self::default();
        for record in records {
            let Ok(saved) = serde_cbor::from_slice::<Saved>(record) else {
                continue;
            };
            let Ok(id) = <[u8; 32]>::try_from(saved.id.as_slice()) else {
                continue;
            };
            let id = RequestId::new(&id);
            match history.entries.get_mut(&id) {
                Some(entry) => *entry = saved.entry,
                None => history.record(id, saved.entry, saved.time),
            }
        }
        history.expire(now);
        history
    }

    /// Forgets what has expired by `time`.
    pub fn expire(&mut self, time: u64) {
        while let Some((at, old)) = self.order.front() {
            if at + KEPT_NS > time {
                break;
            }
            self.entries.remove(old);
            self.order.pop_front();
        }
    }

    /// The entries a certificate about `id` needs: its own, or the ones just before and
    /// after it when there is none.
    pub fn around(&self, id: &RequestId) -> Vec<(&RequestId, &Entry)> {
        if let Some((found, entry)) = self.entries.get_key_value(id) {
            return vec![(found, entry)];
        }
        let before = self.entries.range(..*id).next_back();
        let after = self.entries.range(*id..).next();
        before.into_iter().chain(after).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> RequestId {
        RequestId::new(&[n; 32])
    }

    fn entry() -> Entry {
        Entry {
            sender: Principal::anonymous(),
            receiver: Principal::anonymous(),
            effective: Principal::anonymous(),
            outcome: Some(Ok(Vec::new())),
            number: None,
        }
    }

    #[test]
    fn recovered_calls_fill_what_the_history_lacks_and_nothing_it_holds() {
        let mut history = History::default();
        history.record(id(1), entry(), 10);
        let recovered = |n: u8, number, answer| crate::Recovered {
            tag: History::tag(
                &id(n),
                &Entry {
                    outcome: None,
                    ..entry()
                },
                10 + n as u64,
            ),
            number,
            answer,
        };
        let processing = history.recover(vec![
            recovered(1, 0, Some(Ok(vec![9]))),
            recovered(2, 1, Some(Ok(vec![2]))),
            recovered(3, 2, None),
            crate::Recovered {
                tag: b"not a tag".to_vec(),
                number: 3,
                answer: None,
            },
        ]);
        assert_eq!(
            history.get(&id(1)).unwrap().outcome,
            Some(Ok(Vec::new())),
            "a recorded outcome stands"
        );
        assert_eq!(history.get(&id(2)).unwrap().outcome, Some(Ok(vec![2])));
        assert_eq!(processing, vec![(2, id(3))], "the one still processing");
    }

    #[test]
    fn entries_expire_in_time_order_and_absence_has_neighbours() {
        let mut history = History::default();
        history.record(id(10), entry(), 0);
        history.record(id(30), entry(), 1);
        history.record(id(20), entry(), KEPT_NS);
        assert!(history.get(&id(10)).is_none(), "expired");
        assert!(history.get(&id(30)).is_some());
        let around: Vec<_> = history
            .around(&id(25))
            .into_iter()
            .map(|(i, _)| *i)
            .collect();
        assert_eq!(around, [id(20), id(30)]);
        assert_eq!(history.around(&id(30)).len(), 1);
        assert_eq!(history.around(&id(40)).len(), 1);
    }

    #[test]
    fn a_restored_history_keeps_the_last_word_on_each_call_and_drops_the_expired() {
        let mut history = History::default();
        let processing = Entry {
            outcome: None,
            ..entry()
        };
        history.record(id(1), processing, 10);
        let mut log = vec![history.saved(&id(1), 10).unwrap()];
        history.settle(&id(1), Ok(vec![7]));
        log.push(history.saved(&id(1), 20).unwrap());
        history.record(id(2), entry(), 15);
        log.push(history.saved(&id(2), 15).unwrap());
        log.push(b"a record torn or of another format".to_vec());

        let restored = History::restore(&log, 30);
        let settled = restored.get(&id(1)).unwrap();
        assert_eq!(
            settled.outcome,
            Some(Ok(vec![7])),
            "the settled outcome wins"
        );
        assert!(restored.get(&id(2)).is_some());
        assert_eq!(restored.records().len(), 2);
        let later = History::restore(&log, 15 + KEPT_NS);
        assert!(
            later.get(&id(1)).is_none() && later.get(&id(2)).is_none(),
            "expired"
        );
    }
}
