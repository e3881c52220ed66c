//! The ingress history: each call's sender and outcome for the 6 minutes the IC answers
//! `request_status` (IC interface spec, "Request status"), ordered by request id so that a
//! certificate can show one entry — or, for an unknown id, the two around it, which prove
//! its absence — without the rest. Expiry walks a queue in time order, so each call costs
//! O(log n) whatever the load.

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
pub struct Entry {
    pub sender: Principal,
    pub receiver: Principal,
    pub effective: Principal,
    /// `None` while the call is processing.
    pub outcome: Option<Outcome>,
}

#[derive(Default)]
pub struct History {
    entries: BTreeMap<RequestId, Entry>,
    /// (time recorded, request id), oldest first.
    order: VecDeque<(u64, RequestId)>,
}

impl History {
    /// Records an outcome at `time` and forgets what has expired by then.
    pub fn record(&mut self, id: RequestId, entry: Entry, time: u64) {
        while let Some((at, old)) = self.order.front() {
            if at + KEPT_NS > time {
                break;
            }
            self.entries.remove(old);
            self.order.pop_front();
        }
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
        }
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
}
