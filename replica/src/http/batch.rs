//! The certificates of synchronous calls' answers, signed in batches as the IC certifies
//! once per round: the answers that come while one batch is being signed are certified
//! together next, with one BLS signature for all of them, and a batch waits a moment for
//! the calls still running when it starts (and for as many as the last batch held). Waking
//! only whom an event concerns (the lingering signer, or the callers of a signed batch)
//! keeps 8 clients from waking each other thousands of times a second. Each caller gets a witness of the same tree
//! revealing its own request status (the others pruned to hashes), so the one signature
//! over the tree's root serves every one.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use ic_transport_types::RequestId;

use super::history::History;
use super::server::{now, set_statuses};
use super::tree::{self, Node};
use crate::keys::Keys;

/// How long a batch waits for calls still running, or for as many calls as the last batch
/// held, to join it. A signature costs about a millisecond of CPU, so under load waiting
/// that long makes each batch several calls larger; a lone client's batches hold one call
/// and wait for nothing. The IC's rounds take far longer.
const LINGER: Duration = Duration::from_millis(2);

#[derive(Default)]
pub struct Batches {
    state: Mutex<State>,
    /// Wakes the signer lingering for calls: one arrived, or one will not come.
    arrived: Condvar,
    /// Wakes the callers waiting for a batch: it is signed.
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
    /// Synchronous calls running that will ask for a certificate.
    coming: usize,
    /// How many calls the last batch certified: as many callers are likely to call again
    /// at once, as concurrent clients do when their answers come together.
    last_batch: usize,
}

/// A synchronous call on its way to its certificate, from when it is received: batches
/// wait a little for it (`LINGER`). Dropped without asking (a call refused, or answered
/// 202), it is waited for no longer.
pub struct Coming<'b> {
    batches: &'b Batches,
    arrived: bool,
}

impl Drop for Coming<'_> {
    fn drop(&mut self) {
        if !self.arrived {
            let mut state = self.batches.state.lock().expect("not poisoned");
            state.coming -= 1;
            self.batches.arrived.notify_one();
        }
    }
}

impl Batches {
    /// Counts a synchronous call just received as coming to ask for a certificate.
    pub fn coming(&self) -> Coming<'_> {
        self.state.lock().expect("not poisoned").coming += 1;
        Coming {
            batches: self,
            arrived: false,
        }
    }

    /// The certificate of request `id`'s status: this thread signs the next batch when no
    /// other does, else waits for the batch that takes `id` in.
    pub fn certificate(
        &self,
        mut coming: Coming,
        id: RequestId,
        certify: impl Fn(&[RequestId]) -> Vec<(RequestId, Vec<u8>)>,
    ) -> Vec<u8> {
        let mut state = self.state.lock().expect("not poisoned");
        state.waiting.push(id);
        state.coming -= 1;
        coming.arrived = true;
        self.arrived.notify_one();
        loop {
            if let Some(certificate) = state.certified.remove(&id) {
                return certificate;
            }
            if state.signing {
                state = self.signed.wait(state).expect("not poisoned");
                continue;
            }
            state.signing = true;
            let until = Instant::now() + LINGER;
            while state.coming > 0 || state.waiting.len() < state.last_batch {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                state = self
                    .arrived
                    .wait_timeout(state, left)
                    .expect("not poisoned")
                    .0;
            }
            let batch = std::mem::take(&mut state.waiting);
            state.last_batch = batch.len();
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
