//! The HTTP endpoints (IC interface spec, "HTTPS Interface"): routing, CORS, one handler per
//! kind of request, the ingress history that `request_status` certifies, and a clock that
//! runs the replica's rounds (timers, heartbeats).

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    body::Bytes,
    extract::{DefaultBodyLimit, Path, Request, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use candid::Principal;
use ic_transport_types::{
    EnvelopeContent, NodeSignature, QueryResponse, RejectResponse, ReplyResponse, RequestId,
    TransportCallResponse,
};
use serde::Serialize;

use super::batch;
use super::history::{Entry, History};
use super::ingress::{self, BadRequest, Ingress};
use super::read_state::{self, Endpoint};
use super::tree::{self, Node};
use crate::keys::Keys;
use crate::store::{JournalSyncer, SideLog};
use crate::{CanisterFacts, Reject, Replica};

/// Bodies up to a little over the 2 MiB ingress limit (icp-cli sends install_code up to it).
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Calls still processing: the replica's number for each, and its request id.
type Processing = Vec<(u64, RequestId)>;

struct Shared {
    replica: Mutex<Replica>,
    keys: Keys,
    history: Mutex<History>,
    /// The history's records, kept with the state (`HISTORY_LOG`); locked after `history`.
    history_log: Mutex<SideLog>,
    /// Makes the journal durable without the replica's lock.
    journal: JournalSyncer,
    processing: Mutex<Processing>,
    /// Certifies the answers of synchronous calls, many under one signature.
    answers: batch::Batches,
    /// Whether the clock runs rounds by itself (`Instance::auto_progress`).
    auto_progress: AtomicBool,
}

/// One replica served over the IC HTTP interface: the endpoints' shared state, and the
/// clock that runs its rounds. A server holds one (`serve`), or many (the PocketIC
/// interface), each behind its own routes.
pub struct Instance {
    shared: Arc<Shared>,
    /// Stopped when the instance is.
    clock: Option<tokio::task::JoinHandle<()>>,
}

impl Instance {
    /// Serves `replica`, signing with `keys`; its clock runs rounds on the current tokio
    /// runtime.
    pub fn start(mut replica: Replica, keys: Keys) -> Result<Self, crate::StoreError> {
        let (history, history_log, processing) = restore_history(&mut replica)?;
        let journal = replica.journal_syncer()?;
        let shared = Arc::new(Shared {
            journal,
            replica: Mutex::new(replica),
            keys,
            history: Mutex::new(history),
            history_log: Mutex::new(history_log),
            processing: Mutex::new(processing),
            answers: batch::Batches::default(),
            auto_progress: AtomicBool::new(true),
        });
        let clock = Some(tokio::spawn(rounds(shared.clone())));
        Ok(Self { shared, clock })
    }

    /// The IC HTTP interface of this replica: `/api/v2/status`, and the canister and subnet
    /// endpoints under `/api/v2|v3|v4`, for browsers on any origin too.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/api/v2/status", get(status))
            .route(
                "/api/{version}/canister/{id}/{kind}",
                post(canister_endpoint),
            )
            .route(
                "/api/{version}/subnet/{id}/read_state",
                post(subnet_read_state),
            )
            .fallback(|| async { (StatusCode::NOT_FOUND, "no such endpoint on this replica") })
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .layer(middleware::from_fn(allow_any_origin))
            .with_state(self.shared.clone())
    }

    pub fn keys(&self) -> &Keys {
        &self.shared.keys
    }

    /// The replica, locked: for what the IC HTTP interface has no endpoint for.
    pub fn replica(&self) -> MutexGuard<'_, Replica> {
        self.shared.replica.lock().expect("not poisoned")
    }

    /// Whether rounds run by themselves, every second, with time following the wall
    /// clock; without, time stands still and rounds run only when asked (`Replica::tick`).
    pub fn auto_progress(&self) -> bool {
        self.shared.auto_progress.load(Ordering::SeqCst)
    }

    pub fn set_auto_progress(&self, on: bool) {
        self.replica().set_manual_clock(!on);
        self.shared.auto_progress.store(on, Ordering::SeqCst);
    }

    /// Stops the clock and closes the replica (a checkpoint), once the requests that hold
    /// it have ended: its state directory is free for another when this returns.
    pub async fn stop(mut self) {
        if let Some(clock) = self.clock.take() {
            clock.abort();
            let _ = clock.await;
        }
        let mut shared = self.shared.clone();
        drop(self);
        loop {
            match Arc::try_unwrap(shared) {
                Ok(alone) => {
                    let _ = tokio::task::spawn_blocking(move || drop(alone)).await;
                    return;
                }
                Err(held) => {
                    shared = held;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(clock) = &self.clock {
            clock.abort();
        }
    }
}

/// A listening socket serving a router, until stopped.
pub struct Listener {
    pub address: SocketAddr,
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Listener {
    /// Serves `app` on `address` (port 0: any free port).
    pub async fn bind(app: Router, address: SocketAddr) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(address).await?;
        let address = listener.local_addr()?;
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Self {
            address,
            shutdown,
            task,
        })
    }

    /// Stops accepting requests and waits for the ones in flight.
    pub async fn stop(self) {
        let _ = self.shutdown.send(());
        let _ = self.task.await;
    }
}

/// A running server of one replica.
pub struct Server {
    pub address: SocketAddr,
    pub root_key: Vec<u8>,
    /// When the last request came (or the server started).
    last_request: LastRequest,
    listener: Listener,
    instance: Instance,
}

impl Server {
    /// How long no request has come.
    pub fn idle_for(&self) -> Duration {
        self.last_request.idle_for()
    }

    /// Stops accepting requests and waits for the ones in flight; the state is committed
    /// after every change, so nothing is lost.
    pub async fn stop(self) {
        self.listener.stop().await;
        self.instance.stop().await;
    }
}

/// Serves `replica` on `address` (use port 0 for any free port).
pub async fn serve(replica: Replica, keys: Keys, address: SocketAddr) -> std::io::Result<Server> {
    let root_key = keys.root_der.clone();
    let instance = Instance::start(replica, keys).map_err(std::io::Error::other)?;
    let last_request = LastRequest::default();
    let app = last_request.noted(instance.router());
    let listener = Listener::bind(app, address).await?;
    Ok(Server {
        address: listener.address,
        root_key,
        last_request,
        listener,
        instance,
    })
}

/// When the last request came, for a server that ends when idle (`--ttl`).
#[derive(Clone)]
pub struct LastRequest(Arc<Mutex<std::time::Instant>>);

impl Default for LastRequest {
    fn default() -> Self {
        Self(Arc::new(Mutex::new(std::time::Instant::now())))
    }
}

impl LastRequest {
    pub fn idle_for(&self) -> Duration {
        self.0.lock().expect("not poisoned").elapsed()
    }

    /// `app`, noting each request's arrival here.
    pub fn noted(&self, app: Router) -> Router {
        app.layer(middleware::from_fn_with_state(self.clone(), note_request))
    }
}

/// The side log the ingress history is kept in.
const HISTORY_LOG: &str = "ingress-history";

/// The ingress history as the last serving of this state left it, less what has expired
/// since, plus the calls the state holds that it had no time to record; the log is
/// rewritten to just that. A call sent again after a restart (a client's retry, or someone
/// replaying its envelope within its expiry) is then answered from it, and the calls still
/// processing (returned with their numbers) are settled when their answers come.
fn restore_history(
    replica: &mut Replica,
) -> Result<(History, SideLog, Processing), crate::StoreError> {
    let mut log = replica.side_log(HISTORY_LOG)?;
    let mut history = History::restore(&log.records()?, now());
    let processing = history.recover(replica.take_recovered());
    log.rewrite(&history.records())?;
    Ok((history, log, processing))
}

/// Runs a round every second, so timers fire without a message to wake them, and makes the
/// second's journal durable against power loss.
async fn rounds(shared: Arc<Shared>) {
    let mut clock = tokio::time::interval(Duration::from_secs(1));
    for second in 1u64.. {
        clock.tick().await;
        let shared = shared.clone();
        let _ = tokio::task::spawn_blocking(move || {
            if shared.auto_progress.load(Ordering::SeqCst) {
                let mut replica = shared.replica.lock().expect("not poisoned");
                let _ = replica.tick();
                shared.settle(&mut replica);
            }
            shared.make_all_durable();
            if second % COMPACT_EVERY_S == 0 {
                shared.compact_history();
            }
        })
        .await;
    }
}

/// How often the ingress history's log is rewritten to its live entries, so that a server
/// running for days keeps minutes of calls on disk, not days.
const COMPACT_EVERY_S: u64 = 60;

async fn note_request(State(last): State<LastRequest>, request: Request, next: Next) -> Response {
    *last.0.lock().expect("not poisoned") = std::time::Instant::now();
    next.run(request).await
}

/// Lets browsers on any origin (agent-js on a dev server) use the replica, as the IC's
/// endpoints do: any origin, GET and POST, with a Content-Type header. A preflight (OPTIONS)
/// is answered here; it carries no request for a handler.
async fn allow_any_origin(request: Request, next: Next) -> Response {
    let mut response = if request.method() == Method::OPTIONS {
        let mut preflight = StatusCode::OK.into_response();
        let headers = preflight.headers_mut();
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("content-type"),
        );
        preflight
    } else {
        next.run(request).await
    };
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

fn cbor_response(status: StatusCode, value: &impl Serialize) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/cbor")],
        tree::cbor(value),
    )
        .into_response()
}

fn bad_request(BadRequest(message): BadRequest) -> Response {
    (StatusCode::BAD_REQUEST, message).into_response()
}

#[derive(Serialize)]
struct StatusReply<'a> {
    #[serde(with = "serde_bytes")]
    root_key: &'a [u8],
    impl_version: &'static str,
    replica_health_status: &'static str,
    ic_api_version: &'static str,
}

async fn status(State(shared): State<Arc<Shared>>) -> Response {
    let reply = StatusReply {
        root_key: &shared.keys.root_der,
        impl_version: concat!(
            "canister-snapshots embedded replica ",
            env!("CARGO_PKG_VERSION")
        ),
        replica_health_status: "healthy",
        ic_api_version: "0.18.0",
    };
    cbor_response(StatusCode::OK, &reply)
}

async fn canister_endpoint(
    State(shared): State<Arc<Shared>>,
    Path((version, id, kind)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = refuse_content_type(&headers) {
        return refused;
    }
    let Ok(effective) = Principal::from_text(&id) else {
        return (
            StatusCode::BAD_REQUEST,
            format!("`{id}` is not a canister id"),
        )
            .into_response();
    };
    let blocking = tokio::task::spawn_blocking(move || {
        let synchronous = kind == "call" && matches!(version.as_str(), "v3" | "v4");
        let coming = synchronous.then(|| shared.answers.coming());
        let ingress = match ingress::authenticate(&body, now()) {
            Ok(ingress) => ingress,
            Err(error) => return bad_request(error),
        };
        match (kind.as_str(), version.as_str(), coming) {
            ("call", "v2", _) => call(&shared, ingress, effective, None),
            ("call", _, Some(coming)) => call(&shared, ingress, effective, Some(coming)),
            ("query", "v2" | "v3", _) => query(&shared, ingress, effective),
            ("read_state", "v2" | "v3", _) => {
                read_state(&shared, ingress, Endpoint::Canister(effective))
            }
            _ => (
                StatusCode::NOT_FOUND,
                format!("no endpoint /api/{version}/canister/<id>/{kind} on this replica"),
            )
                .into_response(),
        }
    });
    blocking
        .await
        .unwrap_or_else(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response())
}

async fn subnet_read_state(
    State(shared): State<Arc<Shared>>,
    Path((version, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = refuse_content_type(&headers) {
        return refused;
    }
    if !matches!(version.as_str(), "v2" | "v3")
        || Principal::from_text(&id).ok() != Some(shared.keys.subnet_id)
    {
        return (
            StatusCode::NOT_FOUND,
            format!("no subnet {id} on this replica"),
        )
            .into_response();
    }
    let blocking = tokio::task::spawn_blocking(move || match ingress::authenticate(&body, now()) {
        Ok(ingress) => {
            let subnet = Endpoint::Subnet(shared.keys.subnet_id);
            read_state(&shared, ingress, subnet)
        }
        Err(error) => bad_request(error),
    });
    blocking
        .await
        .unwrap_or_else(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response())
}

/// Requests carry CBOR (IC interface spec, "HTTP interface": `Content-Type:
/// application/cbor`); anything else is refused before it is read.
fn refuse_content_type(headers: &HeaderMap) -> Option<Response> {
    let given = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("none");
    let media = given.split(';').next().unwrap_or_default().trim();
    (!media.eq_ignore_ascii_case("application/cbor")).then(|| {
        (
            StatusCode::BAD_REQUEST,
            format!("the request's Content-Type is {given}; it must be application/cbor"),
        )
            .into_response()
    })
}

/// Checks that a call or query is addressed where it claims to be.
fn check_target(
    ingress: &Ingress,
    canister: &Principal,
    method: &str,
    arg: &[u8],
    effective: Principal,
) -> Result<(), (StatusCode, String)> {
    if let Some(expected) = ingress::effective_canister(canister, method, arg)
        && expected != effective
    {
        return Err((
            StatusCode::BAD_REQUEST,
            format!(
                "the effective canister id in the URL ({effective}) is not the call's target ({expected})"
            ),
        ));
    }
    if !ingress.may_target(canister) {
        return Err((
            StatusCode::FORBIDDEN,
            format!("the sender's delegations do not allow calls to {canister}"),
        ));
    }
    Ok(())
}

/// A call; `coming` for a synchronous one (v3, v4), which is answered with its certificate.
fn call(
    shared: &Shared,
    ingress: Ingress,
    effective: Principal,
    coming: Option<batch::Coming>,
) -> Response {
    let synchronous = coming.is_some();
    let EnvelopeContent::Call {
        canister_id,
        method_name,
        arg,
        ..
    } = &ingress.content
    else {
        return (
            StatusCode::BAD_REQUEST,
            "the call endpoint takes requests of type `call`",
        )
            .into_response();
    };
    if let Err(refused) = check_target(&ingress, canister_id, method_name, arg, effective) {
        return refused.into_response();
    }
    let refused = execute_once(shared, &ingress, *canister_id, method_name, arg, effective);
    if refused.is_none() && synchronous {
        wait_for(shared, &ingress.request_id);
    }
    // IC interface spec, "Request: Call": a call the ingress filter refuses is answered at
    // once with a non-replicated rejection (v2: the reject alone) and has no status to read;
    // one not done in time is answered 202, and its status is read with read_state.
    match (refused, coming) {
        (Some(reject), Some(_)) => cbor_response(
            StatusCode::OK,
            &TransportCallResponse::NonReplicatedRejection(reject_response(&reject)),
        ),
        (Some(reject), None) => cbor_response(StatusCode::OK, &reject_response(&reject)),
        (None, None) => StatusCode::ACCEPTED.into_response(),
        (None, Some(_)) if shared.processing(&ingress.request_id) => {
            StatusCode::ACCEPTED.into_response()
        }
        (None, Some(coming)) => {
            let certificate = shared
                .answers
                .certificate(coming, ingress.request_id, |batch| {
                    shared.make_durable();
                    let history = shared.history.lock().expect("not poisoned");
                    batch::certify(&shared.keys, &history, batch)
                });
            cbor_response(
                StatusCode::OK,
                &TransportCallResponse::Replied { certificate },
            )
        }
    }
}

/// How long a synchronous call waits for its answer before it is answered 202, as the IC's
/// v3 and v4 call endpoints wait.
const SYNCHRONOUS_WAIT: Duration = Duration::from_secs(10);

/// Runs rounds until the call `id` is answered or the wait is over, letting go of the
/// replica between rounds so that other requests are served meanwhile.
fn wait_for(shared: &Shared, id: &RequestId) {
    let started = std::time::Instant::now();
    loop {
        if !shared.processing(id) || started.elapsed() > SYNCHRONOUS_WAIT {
            return;
        }
        let mut replica = shared.replica.lock().expect("not poisoned");
        if !replica.busy() {
            // Nothing left to run: it will not be answered by waiting.
            return;
        }
        let _ = replica.tick();
        shared.settle(&mut replica);
    }
}

impl Shared {
    /// Makes the journal durable against power loss before an answer is certified to its
    /// caller, so that what was acknowledged survives: the journal holds each call with its
    /// history entry (`submit_tagged`), and every checkpoint syncs the history's log first,
    /// so a history entry lost with the power is recovered at the next start. Said each
    /// time it fails.
    fn make_durable(&self) {
        if let Err(error) = self.journal.sync() {
            eprintln!(
                "the journal is not durable: {error}; the calls answered meanwhile would not survive a power loss"
            );
        }
    }

    /// Every second: the journal and the ingress history's log, so that a replay after a
    /// power loss finds few calls to recover.
    fn make_all_durable(&self) {
        self.make_durable();
        if let Err(error) = self.history_log.lock().expect("not poisoned").sync() {
            eprintln!("the ingress history is not durable: {error}");
        }
    }

    /// Rewrites the history's log to the entries not yet expired.
    fn compact_history(&self) {
        let mut history = self.history.lock().expect("not poisoned");
        history.expire(now());
        let rewritten = self
            .history_log
            .lock()
            .expect("not poisoned")
            .rewrite(&history.records());
        if let Err(error) = rewritten {
            eprintln!("the ingress history could not be compacted: {error}");
        }
    }

    /// Appends entry `id` of `history` to the side log; made durable with the journal.
    fn keep(&self, history: &History, id: &RequestId) {
        if let Some(saved) = history.saved(id, now()) {
            let kept = self
                .history_log
                .lock()
                .expect("not poisoned")
                .append(&saved);
            if let Err(error) = kept {
                eprintln!("the ingress history could not be kept: {error}");
            }
        }
    }

    /// Whether call `id` is recorded as still processing.
    fn processing(&self, id: &RequestId) -> bool {
        let history = self.history.lock().expect("not poisoned");
        history.get(id).is_some_and(|e| e.outcome.is_none())
    }

    /// Records the answers of calls that were processing.
    fn settle(&self, replica: &mut Replica) {
        let mut processing = self.processing.lock().expect("not poisoned");
        let mut history = self.history.lock().expect("not poisoned");
        processing.retain(|(number, id)| match replica.answer_of(*number) {
            Some(outcome) => {
                history.settle(id, outcome);
                self.keep(&history, id);
                false
            }
            None => true,
        });
    }
}

/// Runs a call unless its request id is already in the ingress history: a request sent again
/// (a client's retry, or someone replaying its envelope) is not executed again. The IC's call
/// endpoints (IC interface spec, "Request: Call") do the same: v3/v4 answer a known request
/// with the certificate of its recorded status, v2 with 202. Returns the reject of a call
/// the ingress filter refused, which is not recorded.
fn execute_once(
    shared: &Shared,
    ingress: &Ingress,
    canister: Principal,
    method: &str,
    arg: &[u8],
    effective: Principal,
) -> Option<Reject> {
    // The replica stays locked until the outcome is recorded, so two copies sent at once
    // run once.
    let mut replica = shared.replica.lock().expect("not poisoned");
    let id = ingress.request_id;
    if shared
        .history
        .lock()
        .expect("not poisoned")
        .get(&id)
        .is_some()
    {
        return None;
    }
    let sender = ingress.sender();
    let _ = replica.tick();
    let mut entry = Entry {
        sender,
        receiver: canister,
        effective,
        outcome: None,
        number: None,
    };
    let time = now();
    // Kept with the call in the replica's state: a process that ends before the history
    // records it finds it there again (`restore_history`), so a retry does not run it twice.
    let tag = History::tag(&id, &entry, time);
    match replica.submit_tagged(sender, canister, method, arg, &tag) {
        Err(reject) if reject.at_ingress => return Some(reject),
        Err(reject) => entry.outcome = Some(Err(reject)),
        Ok(number) => {
            entry.number = Some(number);
            entry.outcome = replica.answer_of(number);
            if entry.outcome.is_none() {
                let mut processing = shared.processing.lock().expect("not poisoned");
                processing.push((number, id));
            }
        }
    }
    let mut history = shared.history.lock().expect("not poisoned");
    history.record(id, entry, time);
    shared.keep(&history, &id);
    None
}

fn query(shared: &Shared, ingress: Ingress, effective: Principal) -> Response {
    let EnvelopeContent::Query {
        canister_id,
        method_name,
        arg,
        sender,
        ..
    } = &ingress.content
    else {
        return (
            StatusCode::BAD_REQUEST,
            "the query endpoint takes requests of type `query`",
        )
            .into_response();
    };
    if let Err(refused) = check_target(&ingress, canister_id, method_name, arg, effective) {
        return refused.into_response();
    }
    let outcome =
        shared
            .replica
            .lock()
            .expect("not poisoned")
            .query(*sender, *canister_id, method_name, arg);
    let mut response = match outcome {
        Ok(arg) => QueryResponse::Replied {
            reply: ReplyResponse { arg },
            signatures: Vec::new(),
        },
        Err(reject) => QueryResponse::Rejected {
            reject: reject_response(&reject),
            signatures: Vec::new(),
        },
    };
    let timestamp = now();
    let signature = NodeSignature {
        timestamp,
        signature: shared
            .keys
            .sign_response(&response.signable(ingress.request_id, timestamp)),
        identity: shared.keys.node_id,
    };
    match &mut response {
        QueryResponse::Replied { signatures, .. } | QueryResponse::Rejected { signatures, .. } => {
            signatures.push(signature)
        }
    }
    cbor_response(StatusCode::OK, &response)
}

fn reject_response(reject: &Reject) -> RejectResponse {
    RejectResponse {
        reject_code: ic_transport_types::RejectCode::try_from(reject.code as u64)
            .expect("IC reject codes"),
        reject_message: reject.message.clone(),
        error_code: reject.error_code.map(|c| c.to_string()),
    }
}

/// Answers a read_state sent to `endpoint`: its paths are checked (`read_state.rs`), then
/// certified against the same snapshot of the state.
fn read_state(shared: &Shared, ingress: Ingress, endpoint: Endpoint) -> Response {
    let EnvelopeContent::ReadState { paths, .. } = &ingress.content else {
        return (
            StatusCode::BAD_REQUEST,
            "the read_state endpoint takes requests of type `read_state`",
        )
            .into_response();
    };
    if let Err(refused) = read_state::check_limits(paths) {
        return refused.into_response();
    }
    let mut paths: Vec<Vec<Vec<u8>>> = paths
        .iter()
        .map(|p| p.iter().map(|l| l.as_bytes().to_vec()).collect())
        .collect();
    let snapshot = shared.snapshot();
    let checked = read_state::check(
        &paths,
        endpoint,
        &ingress,
        &snapshot.history,
        &snapshot.canisters,
    );
    let request = match checked {
        Ok(request) => request,
        Err(refused) => return refused.into_response(),
    };
    if request.is_some() {
        // A status read is how a v2 caller learns its answer: what it is told survives.
        shared.make_durable();
    }
    paths.push(vec![b"time".to_vec()]);
    let certificate = certify(
        &shared.keys,
        &snapshot,
        &paths,
        request.as_ref(),
        ingress.sender(),
    );
    #[derive(Serialize)]
    struct Certified {
        #[serde(with = "serde_bytes")]
        certificate: Vec<u8>,
    }
    cbor_response(StatusCode::OK, &Certified { certificate })
}

/// What certificates are made from: the canisters and the ingress history, read once so that
/// a request's checks and its certificate see the same state.
struct Snapshot<'a> {
    canisters: Vec<CanisterFacts>,
    history: MutexGuard<'a, History>,
}

impl Shared {
    fn snapshot(&self) -> Snapshot<'_> {
        // The replica first, then the history, as `execute_once` takes them, so the two
        // cannot deadlock; the replica is free again before a certificate is built.
        let canisters = self.replica.lock().expect("not poisoned").facts();
        Snapshot {
            canisters,
            history: self.history.lock().expect("not poisoned"),
        }
    }
}

/// A certificate revealing `paths`, which ask about the status of `request` at most.
fn certify(
    keys: &Keys,
    snapshot: &Snapshot,
    paths: &[Vec<Vec<u8>>],
    request: Option<&RequestId>,
    reader: Principal,
) -> Vec<u8> {
    let tree = state_tree(keys, snapshot, request, reader);
    tree::certificate(keys, &tree.witness(paths))
}

/// The state tree, with of the ingress history only the entries about `request`: a witness
/// prunes the others to hashes anyway, and leaving them out keeps a certificate O(log n)
/// in the history's size. Each certificate is signed on its own, so no client can tell.
fn state_tree(
    keys: &Keys,
    snapshot: &Snapshot,
    request: Option<&RequestId>,
    reader: Principal,
) -> Node {
    let mut root = Node::empty();
    root.set(&[b"time"], tree::leb128(now()));
    let subnet = keys.subnet_id.as_slice();
    let ranges = vec![crate::ids::canister_range()];
    let ranges_cbor = tree::cbor(&ranges);
    root.set(&[b"subnet", subnet, b"public_key"], keys.root_der.clone());
    root.set(
        &[b"subnet", subnet, b"canister_ranges"],
        ranges_cbor.clone(),
    );
    root.set(&[b"subnet", subnet, b"type"], b"application".to_vec());
    root.set(
        &[
            b"subnet",
            subnet,
            b"node",
            keys.node_id.as_slice(),
            b"public_key",
        ],
        keys.node_der.clone(),
    );
    root.set(
        &[b"canister_ranges", subnet, ranges[0].0.as_slice()],
        ranges_cbor,
    );
    for facts in &snapshot.canisters {
        let id = facts.id.as_slice();
        root.set(
            &[b"canister", id, b"controllers"],
            tree::cbor(&facts.controllers),
        );
        if let Some(hash) = facts.module_hash {
            root.set(&[b"canister", id, b"module_hash"], hash.to_vec());
        }
        // A witness shows every label on the way to what it reveals, so a private section's
        // name is left out of the trees of those who may not read it.
        let may_see_private = facts.controllers.contains(&reader);
        for (public, name, data) in &facts.metadata {
            if *public || may_see_private {
                root.set(
                    &[b"canister", id, b"metadata", name.as_bytes()],
                    data.clone(),
                );
            }
        }
    }
    let entries = request.map_or_else(Vec::new, |id| snapshot.history.around(id));
    set_statuses(&mut root, entries);
    root
}

/// Puts the request statuses of `entries` into the tree.
pub(super) fn set_statuses<'e>(
    root: &mut Node,
    entries: impl IntoIterator<Item = (&'e RequestId, &'e Entry)>,
) {
    for (id, entry) in entries {
        let id = id.as_slice();
        match &entry.outcome {
            None => {
                root.set(&[b"request_status", id, b"status"], b"processing".to_vec());
            }
            Some(Ok(reply)) => {
                root.set(&[b"request_status", id, b"status"], b"replied".to_vec());
                root.set(&[b"request_status", id, b"reply"], reply.clone());
            }
            Some(Err(reject)) => {
                root.set(&[b"request_status", id, b"status"], b"rejected".to_vec());
                root.set(
                    &[b"request_status", id, b"reject_code"],
                    tree::leb128(reject.code as u64),
                );
                root.set(
                    &[b"request_status", id, b"reject_message"],
                    reject.message.clone().into_bytes(),
                );
                if let Some(code) = reject.error_code {
                    root.set(
                        &[b"request_status", id, b"error_code"],
                        code.to_string().into_bytes(),
                    );
                }
            }
        }
    }
}

pub(super) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
