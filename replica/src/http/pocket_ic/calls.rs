//! Ingress messages submitted through PocketIC's REST interface. As on PocketIC, a message
//! is checked when submitted and held until a round takes it in — the next `tick`, someone
//! awaiting it, or at once when the instance progresses by itself — and is then answered
//! under its message id, to its sender only.

use std::collections::HashMap;

use candid::Principal;
use ic_transport_types::EnvelopeContent;

use crate::{Reject, Replica};

#[derive(Default)]
pub struct Calls {
    /// Makes each message's id unique, as an agent's nonce does.
    nonce: u64,
    /// Message ids in the order submitted, not yet taken in.
    held: Vec<Vec<u8>>,
    known: HashMap<Vec<u8>, Known>,
}

/// An ingress message as submitted.
pub struct Message {
    pub sender: Principal,
    pub canister: Principal,
    pub method: String,
    pub arg: Vec<u8>,
}

struct Known {
    sender: Principal,
    state: State,
}

enum State {
    Held(Message),
    /// Taken in: the replica's number for it.
    Running(u64),
    Done(Result<Vec<u8>, Reject>),
}

/// What asking for a message's status found.
pub enum Status {
    /// No such message, or not answered yet.
    Unknown,
    Answered(Result<Vec<u8>, Reject>),
    /// Someone else's message.
    Forbidden,
}

/// How long awaiting a message runs rounds for it before giving up.
const AWAIT_ROUNDS: usize = 100_000;

impl Calls {
    /// Checks `message` as the ingress filter would and holds it; returns its id.
    pub fn submit(&mut self, replica: &mut Replica, message: Message) -> Result<Vec<u8>, Reject> {
        replica.check_ingress(
            message.sender,
            message.canister,
            &message.method,
            &message.arg,
        )?;
        self.nonce += 1;
        let id = EnvelopeContent::Call {
            nonce: Some(self.nonce.to_be_bytes().to_vec()),
            ingress_expiry: replica.time().saturating_add(300_000_000_000),
            sender: message.sender,
            canister_id: message.canister,
            method_name: message.method.clone(),
            arg: message.arg.clone(),
            sender_info: None,
        }
        .to_request_id()
        .as_slice()
        .to_vec();
        self.held.push(id.clone());
        let known = Known {
            sender: message.sender,
            state: State::Held(message),
        };
        self.known.insert(id.clone(), known);
        Ok(id)
    }

    /// One round's worth: the held messages are taken in, each in its round, then a round
    /// runs what is due and in flight.
    pub fn tick(&mut self, replica: &mut Replica) {
        self.take_in(replica);
        let _ = replica.tick();
        self.settle(replica);
    }

    /// Takes in every held message.
    pub fn take_in(&mut self, replica: &mut Replica) {
        for id in std::mem::take(&mut self.held) {
            let Some(known) = self.known.get_mut(&id) else {
                continue;
            };
            let State::Held(message) = &known.state else {
                continue;
            };
            let submitted = replica.submit(
                message.sender,
                message.canister,
                &message.method,
                &message.arg,
            );
            known.state = match submitted {
                Ok(number) => State::Running(number),
                Err(reject) => State::Done(Err(reject)),
            };
        }
        self.settle(replica);
    }

    /// Records the answers that have come.
    fn settle(&mut self, replica: &mut Replica) {
        for known in self.known.values_mut() {
            if let State::Running(number) = known.state
                && let Some(answer) = replica.answer_of(number)
            {
                known.state = State::Done(answer);
            }
        }
    }

    /// Runs rounds until message `id` is answered, and gives the answer.
    pub fn wait(
        &mut self,
        replica: &mut Replica,
        id: &[u8],
    ) -> Result<Result<Vec<u8>, Reject>, String> {
        for _ in 0..AWAIT_ROUNDS {
            self.take_in(replica);
            match self.known.get(id).map(|k| &k.state) {
                None => {
                    return Err(format!(
                        "no message {} was submitted to this instance",
                        crate::store::hex(id)
                    ));
                }
                Some(State::Done(answer)) => return Ok(answer.clone()),
                Some(_) if !replica.busy() => {
                    return Err(format!(
                        "message {} is still processing and no round can answer it now: it waits for time to pass (set_time) or for a call it made",
                        crate::store::hex(id)
                    ));
                }
                Some(_) => self.tick(replica),
            }
        }
        Err(format!(
            "message {} is still processing after {AWAIT_ROUNDS} rounds",
            crate::store::hex(id)
        ))
    }

    /// The answer to message `id`, for `caller` (anyone, if `None`).
    pub fn status(&self, id: &[u8], caller: Option<Principal>) -> Status {
        let Some(known) = self.known.get(id) else {
            return Status::Unknown;
        };
        if caller.is_some_and(|caller| caller != known.sender) {
            return Status::Forbidden;
        }
        match &known.state {
            State::Done(answer) => Status::Answered(answer.clone()),
            _ => Status::Unknown,
        }
    }
}
