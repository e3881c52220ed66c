//! The certificates of synchronous calls' answers, signed in batches as the IC certifies
//! once per round: the answers that come while one batch is being signed are certified
//! together next, with one BLS signature for all of them. Each caller gets a witness of
//! the same tree revealing its own request status (the others pruned to hashes), so the one
//! signature over the tree's root serves every one.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex};

use ic_transport_types::RequestId;

use super::history::History;
use super::keys::Keys;
use super::server::{now, set_statuses};
use super::tree::{self, Node};

#[derive(Default)]
pub struct Batches {
    state: Mutex<State>,
    signed: Condvar,
}

#[derive(Default)]
struct State {
    /// Requests waiting for the next batch.
    waiting: Vec<RequestId>,
    /// Whether a batch is being signed now.
    signing: bool,
    /// Certificates made, until their callers take them.
    certified: HashMap<RequestId, Vec<u8>>,
}

impl Batches {
    /// The certificate of request `id`'s status: this thread signs the next batch when no
    /// other does, else waits for the batch that takes `id` in.
    pub fn certificate(
        &self,
        id: RequestId,
        certify: impl Fn(&[RequestId]) -> Vec<(RequestId, Vec<u8>)>,
    ) -> Vec<u8> {
        let mut state = self.state.lock().expect("not poisoned");
        state.waiting.push(id);
        loop {
            if let Some(certificate) = state.certified.remove(&id) {
                return certificate;
            }
            if state.signing {
                state = self.signed.wait(state).expect("not poisoned");
                continue;
            }
            state.signing = true;
            let batch = std::mem::take(&mut state.waiting);
            drop(state);
            let certificates = certify(&batch);
            state = self.state.lock().expect("not poisoned");
            state.signing = false;
            state.certified.extend(certificates);
            self.signed.notify_all();
        }
    }
}

/// Certificates for the statuses of `batch`, from one tree (the time and those statuses)
/// signed once.
pub fn certify(keys: &Keys, history: &History, batch: &[RequestId]) -> Vec<(RequestId, Vec<u8>)> {
    let mut root = Node::empty();
    root.set(&[b"time"], tree::leb128(now()));
    let entries = batch
        .iter()
        .filter_map(|id| history.get(id).map(|e| (id, e)));
    set_statuses(&mut root, entries);
    let witnesses: Vec<_> = batch
        .iter()
        .map(|id| {
            let paths = [
                vec![b"request_status".to_vec(), id.as_slice().to_vec()],
                vec![b"time".to_vec()],
            ];
            (*id, root.witness(&paths))
        })
        .collect();
    let Some((_, first)) = witnesses.first() else {
        return Vec::new();
    };
    let signature = keys.sign_state(&first.digest());
    witnesses
        .into_iter()
        .map(|(id, witness)| (id, tree::signed_certificate(&witness, signature.clone())))
        .collect()
}
