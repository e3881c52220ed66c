//! Composite queries (IC interface spec, "Composite query" and "Query call"): a composite
//! query method may call query methods of canisters on this subnet, and the management
//! canister's query methods, depth first, one call at a time; each answer runs the caller's
//! callback on the state its previous execution left. Every canister involved runs on a
//! scratch copy, so nothing of the query stays.

use std::collections::BTreeMap;

use candid::Principal;

use crate::canister::{
    Canister, Executed, Message,
    calls::{Incoming, Origin, OutgoingCall},
    engine::Entry,
    env::{Context, Response},
};
use crate::error::{ErrorCode, Reject};
use crate::management;
use crate::subnet::Subnet;

/// How deep composite query calls may go (the replica's `MAX_CALL_DEPTH_COMPOSITE_QUERY`);
/// calls to the management canister do not count.
const MAX_DEPTH: usize = 6;

/// One composite query: the scratch copies of the canisters it reached.
pub struct Composite<'r> {
    subnet: &'r mut Subnet,
    copies: BTreeMap<Principal, Canister>,
    time: u64,
}

impl<'r> Composite<'r> {
    pub fn new(subnet: &'r mut Subnet, time: u64) -> Self {
        Self {
            subnet,
            copies: BTreeMap::new(),
            time,
        }
    }

    /// Calls query method `method` of `callee` for `caller`, at `depth` calls deep.
    pub fn call(
        &mut self,
        caller: Principal,
        callee: Principal,
        method: &str,
        arg: &[u8],
        depth: usize,
    ) -> Result<Vec<u8>, Reject> {
        if callee == Principal::management_canister() {
            return self.management(caller, method, arg);
        }
        if depth > MAX_DEPTH {
            return Err(Reject::new(
                ErrorCode::QueryCallGraphTooDeep,
                "Composite query calls exceeded the maximum call depth.",
            ));
        }
        self.subnet.check_running(&callee)?;
        let (entry, context) = self.subnet.entry_point(&callee, method, Context::Query)?;
        let incoming = Incoming::default();
        let message = Message {
            context,
            caller,
            method,
            arg,
            time: self.time,
            subnet_id: self.subnet.id,
            incoming: &incoming,
        };
        self.copy(callee)?;
        let (engine, store) = (self.subnet.engine, &self.subnet.store);
        let copy = self.copies.get_mut(&callee).expect("made above");
        let executed = copy.execute(engine, store, &message, Entry::Export(&entry))?;
        self.follow(caller, callee, executed, depth)
    }

    /// The calls of an execution, one at a time, each answer run through its callback, until
    /// one of them answers the query.
    fn follow(
        &mut self,
        caller: Principal,
        id: Principal,
        executed: Executed,
        depth: usize,
    ) -> Result<Vec<u8>, Reject> {
        let mut pending: std::collections::VecDeque<OutgoingCall> = executed.calls.into();
        let mut response = executed.response;
        while response.is_none() {
            let Some(call) = pending.pop_front() else {
                break;
            };
            let answer = self.call(id, call.callee, &call.method, &call.arg, depth + 1);
            let callback = self.callback(caller, id, &call, answer)?;
            pending.extend(callback.calls);
            response = callback.response;
        }
        Response::answer(response, &id)
    }

    /// Runs the callback of `call` on canister `id`'s copy with `answer`.
    fn callback(
        &mut self,
        caller: Principal,
        id: Principal,
        call: &OutgoingCall,
        answer: Result<Vec<u8>, Reject>,
    ) -> Result<Executed, Reject> {
        let (context, closure, arg, reject) = match answer {
            Ok(bytes) => (Context::CompositeReplyCallback, call.reply, bytes, None),
            Err(reject) => (
                Context::CompositeRejectCallback,
                call.reject,
                Vec::new(),
                Some((reject.code as u32, reject.message)),
            ),
        };
        let incoming = Incoming {
            reject,
            ..Incoming::default()
        };
        let message = Message {
            context,
            caller,
            method: "",
            arg: &arg,
            time: self.time,
            subnet_id: self.subnet.id,
            incoming: &incoming,
        };
        let (engine, store) = (self.subnet.engine, &self.subnet.store);
        let copy = self.copies.get_mut(&id).expect("it executed before");
        let executed = copy.execute(engine, store, &message, Entry::Callback(closure));
        if executed.is_err()
            && let Some(cleanup) = call.cleanup
        {
            let message = Message {
                context: Context::CompositeCleanup,
                ..message
            };
            // What the cleanup changes lasts only as long as the query, like all else here.
            let _ = copy.execute(engine, store, &message, Entry::Callback(cleanup));
        }
        executed
    }

    /// The management canister's query methods, with the calling canister as the caller.
    fn management(
        &mut self,
        caller: Principal,
        method: &str,
        arg: &[u8],
    ) -> Result<Vec<u8>, Reject> {
        let request = management::Request {
            sender: caller,
            method,
            arg,
            query: true,
            origin: Origin::System,
            cycles: 0,
        };
        let handled = management::call(self.subnet, self.time, request);
        handled.reply.expect("query methods answer at once")
    }

    /// Makes the scratch copy of canister `id` on first use.
    fn copy(&mut self, id: Principal) -> Result<(), Reject> {
        if !self.copies.contains_key(&id) {
            let (engine, store) = (self.subnet.engine, &self.subnet.store);
            let canister = self
                .subnet
                .canisters
                .get_mut(&id)
                .expect("checked by caller");
            let copy = canister.scratch(engine, store)?;
            self.copies.insert(id, copy);
        }
        Ok(())
    }
}
