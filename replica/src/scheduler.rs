//! Rounds, as the IC runs messages (IC interface spec, "Abstract behaviour": message
//! execution, call contexts, callback invocation): a round takes in one ingress message or
//! runs the system tasks that are due, then executes messages from the subnet's queue in
//! order, each execution atomic. What an execution leaves — calls made, an answer — is
//! applied here: calls become requests with callbacks, answers go to whoever waits (a user,
//! a calling canister's callback), and a stopping canister whose calls are over stops.
//! Everything a round does depends only on the state before it and its time, so the
//! journal replays it exactly.

use candid::{Encode, Principal};

use crate::canister::{
    Executed, Message,
    calls::{CallContext, Incoming, Origin},
    engine::Entry,
    env::{Context, Response as Answered},
    state::Status,
};
use crate::error::{Reject, RejectCode};
use crate::management::{self, Handled};
use crate::queue::{Payload, Queued, Request, Response};
use crate::subnet::Subnet;

/// Executions a round runs at most, so that canisters calling each other without end
/// cannot hold the subnet: what is left waits for the next round.
const MAX_EXECUTIONS_PER_ROUND: usize = 10_000;

/// An ingress message taken into a round.
pub struct Ingress<'a> {
    pub sender: Principal,
    pub canister: Principal,
    pub method: &'a str,
    pub arg: &'a [u8],
}

impl Subnet {
    /// Runs one round at `time`: `ingress` (or, with none, the system tasks due), then
    /// queued messages. Returns the number the ingress message is known by.
    pub(crate) fn round(&mut self, time: u64, ingress: Option<Ingress>) -> Option<u64> {
        self.expire_deadlines(time);
        let number = ingress.map(|ingress| {
            let number = self.next_ingress();
            self.deliver_request(
                Request {
                    origin: Origin::Ingress(number),
                    sender: ingress.sender,
                    receiver: ingress.canister,
                    method: ingress.method.to_owned(),
                    arg: ingress.arg.to_vec(),
                    cycles: 0,
                    deadline: 0,
                },
                time,
            );
            number
        });
        if number.is_none() {
            self.run_tasks(time);
        }
        for _ in 0..MAX_EXECUTIONS_PER_ROUND {
            match self.queue.pop_front() {
                Some(Queued::Request(request)) => self.deliver_request(request, time),
                Some(Queued::Response(response)) => self.deliver_response(response, time),
                None => break,
            }
        }
        number
    }

    /// Whether a round has anything to do besides system tasks.
    pub(crate) fn has_messages(&self, time: u64) -> bool {
        !self.queue.is_empty() || self.expiring(time).next().is_some()
    }

    /// Answers a call: a user's through the ingress history, a canister's through its
    /// callback, with `refund` cycles going back.
    pub(crate) fn answer(&mut self, origin: Origin, result: Result<Vec<u8>, Reject>, refund: u128) {
        match origin {
            Origin::Ingress(number) => {
                self.burned += refund;
                self.answered.insert(number, result);
            }
            Origin::Canister { caller, callback } => {
                self.queue.push_back(Queued::Response(Response {
                    receiver: caller,
                    callback,
                    refund,
                    payload: Payload::of(result),
                }));
            }
            Origin::System => self.burned += refund,
        }
    }

    /// Applies what a call to the management canister did.
    pub(crate) fn apply(&mut self, handled: Handled, origin: Origin, cycles: u128) {
        for answer in handled.answers {
            self.answer(answer.origin, answer.result, answer.refund);
        }
        match handled.reply {
            Some(reply) => self.answer(origin, reply, cycles - handled.accepted),
            // The answer comes when the canister stops; the cycles stay with the system.
            None => self.burned += cycles,
        }
    }

    fn deliver_request(&mut self, request: Request, time: u64) {
        if request.receiver == Principal::management_canister() {
            return self.deliver_to_management(request, time);
        }
        let (entry, context) = match self.callee(&request) {
            Ok(found) => found,
            Err(reject) => return self.answer(request.origin, Err(reject), request.cycles),
        };
        let subnet_id = self.id;
        let canister = self.canisters.get_mut(&request.receiver).expect("found");
        let context_id = canister.state.calls.open(CallContext {
            origin: request.origin,
            caller: request.sender,
            available: request.cycles,
            deadline: request.deadline,
            responded: false,
            outstanding: 0,
        });
        // Queries, even run as updates, see no deadline (IC interface spec, "Deadline").
        let deadline = match context {
            Context::Update => request.deadline,
            _ => 0,
        };
        let incoming = Incoming {
            available: request.cycles,
            deadline,
            ..Incoming::default()
        };
        let message = Message {
            context,
            caller: request.sender,
            method: &request.method,
            arg: &request.arg,
            time,
            subnet_id,
            incoming: &incoming,
        };
        let executed = canister.execute(self.engine, &self.store, &message, Entry::Export(&entry));
        crate::fault::point("execute:done");
        self.settle(request.receiver, context_id, executed, time);
    }

    /// The export that serves a request and the kind of execution, if the callee can take it.
    fn callee(&mut self, request: &Request) -> Result<(String, Context), Reject> {
        let id = request.receiver;
        self.check_running(&id)?;
        self.entry_point(&id, &request.method, Context::Update)
    }

    /// A call to the management canister from a canister: the canister is the caller. The
    /// methods read memories from `state.code`, so executions so far are written there first.
    fn deliver_to_management(&mut self, request: Request, time: u64) {
        self.save_memories();
        let handled = management::call(
            self,
            time,
            management::Request {
                sender: request.sender,
                method: &request.method,
                arg: &request.arg,
                query: false,
                origin: request.origin.clone(),
                cycles: request.cycles,
            },
        );
        self.apply(handled, request.origin, request.cycles);
    }

    /// Runs the callback of `response`, after crediting its refund; a trapping callback runs
    /// the call's cleanup on the state before it (IC interface spec, "Callback invocation").
    fn deliver_response(&mut self, response: Response, time: u64) {
        let subnet_id = self.id;
        let id = response.receiver;
        let Some(canister) = self.canisters.get_mut(&id) else {
            self.burned += response.refund;
            return;
        };
        let calls = &mut canister.state.calls;
        // Gone when the answer came already (a bounded-wait call past its deadline).
        let Some(callback) = calls.callbacks.remove(&response.callback) else {
            self.burned += response.refund;
            return;
        };
        canister.state.cycles += response.refund;
        // An uninstalled canister's callbacks take their refund and run nothing.
        let Some(context_id) = callback.context else {
            return;
        };
        let Some(context) = calls.contexts.get_mut(&context_id) else {
            return;
        };
        context.outstanding -= 1;
        let (kind, closure, arg, reject) = match response.payload {
            Payload::Reply(bytes) => (Context::ReplyCallback, callback.reply, bytes, None),
            Payload::Reject { code, message } => (
                Context::RejectCallback,
                callback.reject,
                Vec::new(),
                Some((code, message)),
            ),
        };
        let incoming = Incoming {
            available: context.available,
            refunded: response.refund,
            reject,
            deadline: context.deadline,
            responded: context.responded,
        };
        let message = Message {
            context: kind,
            caller: context.caller,
            method: "",
            arg: &arg,
            time,
            subnet_id,
            incoming: &incoming,
        };
        let mut executed =
            canister.execute(self.engine, &self.store, &message, Entry::Callback(closure));
        if let (Err(reject), Some(cleanup)) = (&executed, callback.cleanup) {
            let cleanup_message = Message {
                context: Context::Cleanup,
                ..message
            };
            let cleaned = canister.execute(
                self.engine,
                &self.store,
                &cleanup_message,
                Entry::Callback(cleanup),
            );
            if let Err(also) = cleaned {
                executed = Err(Reject {
                    message: format!(
                        "{}; call_on_cleanup also failed: {}",
                        reject.message, also.message
                    ),
                    ..reject.clone()
                });
            }
        }
        self.settle(id, context_id, executed, time);
    }

    /// What follows an execution in call context `context_id` of canister `id` (IC interface
    /// spec, "Message execution"; the replica's call context manager): its calls are sent,
    /// its answer given, or — once nothing can answer any more — the error or "did not reply"
    /// given for it; a context answered with nothing outstanding closes.
    fn settle(
        &mut self,
        id: Principal,
        context_id: u64,
        executed: Result<Executed, Reject>,
        time: u64,
    ) {
        let Some(canister) = self.canisters.get_mut(&id) else {
            return;
        };
        let calls = &mut canister.state.calls;
        let (response, failure) = match executed {
            Ok(executed) => {
                self.last_instructions = executed.instructions;
                self.burned += executed.fees;
                if let Some(context) = calls.contexts.get_mut(&context_id) {
                    context.available = executed.available;
                }
                for call in executed.calls {
                    let deadline = call
                        .timeout_seconds
                        .map_or(0, |t| time.saturating_add(u64::from(t) * 1_000_000_000));
                    let callback = calls.register(context_id, &call, deadline);
                    self.queue.push_back(Queued::Request(Request {
                        origin: Origin::Canister {
                            caller: id,
                            callback,
                        },
                        sender: id,
                        receiver: call.callee,
                        method: call.method,
                        arg: call.arg,
                        cycles: call.cycles,
                        deadline,
                    }));
                }
                (executed.response, None)
            }
            Err(reject) => (None, Some(reject)),
        };
        let Some(context) = calls.contexts.get_mut(&context_id) else {
            return;
        };
        let answer = match (response, context.responded, context.outstanding) {
            (_, true, _) => None,
            (Some(Answered::Reply(bytes)), false, _) => Some(Ok(bytes)),
            (Some(Answered::Reject(message)), false, _) => Some(Err(Reject::by_canister(message))),
            (None, false, 0) => Some(Err(failure.unwrap_or_else(|| Reject::did_not_reply(&id)))),
            (None, false, _) => None,
        };
        let owed = answer.map(|answer| {
            context.responded = true;
            let refund = std::mem::take(&mut context.available);
            (context.origin.clone(), answer, refund)
        });
        if context.responded && context.outstanding == 0 {
            calls.contexts.remove(&context_id);
        }
        if let Some((origin, answer, refund)) = owed {
            self.answer(origin, answer, refund);
        }
        self.stop_if_done(id);
    }

    /// A stopping canister with no call context left is stopped, and its stops answered.
    fn stop_if_done(&mut self, id: Principal) {
        let Some(canister) = self.canisters.get_mut(&id) else {
            return;
        };
        let state = &mut canister.state;
        if state.status != Status::Stopping || !state.calls.contexts.is_empty() {
            return;
        }
        state.status = Status::Stopped;
        state.version += 1;
        for origin in std::mem::take(&mut state.calls.stop_waiters) {
            self.answer(origin, Ok(Encode!().expect("encodes")), 0);
        }
    }

    /// Runs what is due, as a round of the IC would: each running canister's global timer
    /// once its time has come (deactivating it), and its heartbeat. Each runs in a call
    /// context of its own, which nobody waits on.
    pub(crate) fn run_tasks(&mut self, time: u64) {
        let subnet_id = self.id;
        for (id, entry) in self.due_tasks(time) {
            let canister = self.canisters.get_mut(&id).expect("listed above");
            if entry == "canister_global_timer" {
                canister.state.global_timer = 0;
            }
            let context_id = canister.state.calls.open(CallContext {
                origin: Origin::System,
                caller: Principal::management_canister(),
                available: 0,
                deadline: 0,
                responded: false,
                outstanding: 0,
            });
            let task = Message {
                context: Context::SystemTask,
                caller: Principal::management_canister(),
                method: "",
                arg: &[],
                time,
                subnet_id,
                incoming: &crate::canister::NO_CALL,
            };
            let executed = canister.execute(self.engine, &self.store, &task, Entry::Export(entry));
            self.settle(id, context_id, executed, time);
        }
    }

    /// The system tasks due at `time`: (canister, export).
    pub(crate) fn due_tasks(&mut self, time: u64) -> Vec<(Principal, &'static str)> {
        let running: Vec<(Principal, bool)> = self
            .canisters
            .values()
            .filter(|c| c.state.status == Status::Running)
            .map(|c| {
                let timer = c.state.global_timer;
                (c.id(), timer != 0 && timer <= time)
            })
            .collect();
        let mut due = Vec::new();
        for (id, timer_due) in running {
            for (entry, is_due) in [
                ("canister_global_timer", timer_due),
                ("canister_heartbeat", true),
            ] {
                if is_due && self.exports(&id, entry) {
                    due.push((id, entry));
                }
            }
        }
        due
    }

    /// Bounded-wait calls whose deadline passed unanswered: (canister, callback).
    fn expiring(&self, time: u64) -> impl Iterator<Item = (Principal, u64)> + '_ {
        self.canisters.values().flat_map(move |canister| {
            let callbacks = canister.state.calls.callbacks.iter();
            callbacks
                .filter(move |(_, c)| c.deadline != 0 && c.deadline <= time)
                .map(|(number, _)| (canister.id(), *number))
        })
    }

    /// Answers bounded-wait calls past their deadline with SYS_UNKNOWN and no refund (IC
    /// interface spec, "Call expiry"); an answer coming later finds no callback.
    fn expire_deadlines(&mut self, time: u64) {
        let expired: Vec<_> = self.expiring(time).collect();
        for (id, number) in expired {
            let canister = self.canisters.get_mut(&id).expect("listed");
            if let Some(callback) = canister.state.calls.callbacks.get_mut(&number) {
                callback.deadline = 0;
            }
            self.queue.push_back(Queued::Response(Response {
                receiver: id,
                callback: number,
                refund: 0,
                payload: Payload::Reject {
                    code: RejectCode::SysUnknown as u32,
                    message: "Call deadline has expired.".into(),
                },
            }));
        }
    }
}
