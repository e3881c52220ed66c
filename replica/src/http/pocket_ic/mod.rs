//! The PocketIC server's REST interface (`pocket-ic` crate 16, `@dfinity/pic`, the Python
//! `pocket-ic`, and `dfx start`): instances made and deleted over JSON, each one replica
//! behind the IC HTTP interface at `/instances/<id>/api/…` and, when asked, on a gateway
//! port of its own; the `read/` and `update/` operations the clients call; a blob store.
//! Every operation is answered before its reply, so the 202/409 polling of PocketIC's
//! long-running operations is never needed.

mod calls;
mod hosted;
mod operations;
mod snapshot_dir;
mod wire;

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use axum::{
    Json, Router,
    body::{Body, Bytes},
    extract::{DefaultBodyLimit, Path, Request, State},
    http::{HeaderMap, StatusCode, Uri, header},
    response::{IntoResponse, Response},
    routing::{any, get, post},
};
use tower::ServiceExt;

use super::{LastRequest, Listener};
use hosted::Hosted;
use wire::{CreateGatewayResponse, CreateInstanceResponse, GatewayBackend, GatewayInfo};

/// Blobs up to the largest module an install takes, gzip-compressed or not.
const MAX_BODY_BYTES: usize = 256 * 1024 * 1024;

/// The server: its instances (`None` once deleted: ids are not reused), HTTP gateways and
/// blobs.
#[derive(Default)]
struct Registry {
    instances: Mutex<Vec<Option<Arc<Hosted>>>>,
    gateways: Mutex<Vec<Option<Gateway>>>,
    blobs: Mutex<HashMap<Vec<u8>, Vec<u8>>>,
}

struct Gateway {
    instance: usize,
    listener: Listener,
}

/// A running PocketIC server.
pub struct Server {
    pub address: SocketAddr,
    last_request: LastRequest,
    registry: Arc<Registry>,
    listener: Listener,
}

impl Server {
    /// How long no request has come.
    pub fn idle_for(&self) -> std::time::Duration {
        self.last_request.idle_for()
    }

    /// Stops serving, then closes every instance and gateway.
    pub async fn stop(self) {
        self.listener.stop().await;
        let count = self.registry.instances.lock().expect("not poisoned").len();
        for id in 0..count {
            let _ = delete(&self.registry, id).await;
        }
    }
}

/// Serves the PocketIC REST interface on `address`.
pub async fn serve(address: SocketAddr) -> std::io::Result<Server> {
    let registry = Arc::new(Registry::default());
    let last_request = LastRequest::default();
    let app = Router::new()
        .route("/status", get(|| async { StatusCode::OK }))
        .route("/instances", get(list_instances).post(create_instance))
        // The pocket-ic crate deletes `/instances/<id>/`, with the slash.
        .route("/instances/{id}", axum::routing::delete(delete_instance))
        .route("/instances/{id}/", axum::routing::delete(delete_instance))
        .route(
            "/instances/{id}/{kind}/{operation}",
            post(operation).get(get_operation),
        )
        .route(
            "/instances/{id}/auto_progress",
            post(start_progress).get(progress),
        )
        .route("/instances/{id}/stop_progress", post(stop_progress))
        .route("/instances/{id}/_/topology", get(topology))
        .route("/instances/{id}/api/{*rest}", any(instance_api))
        .route("/blobstore", post(put_blob))
        .route("/blobstore/", post(put_blob))
        .route("/blobstore/{id}", get(get_blob))
        .route("/http_gateway", get(list_gateways).post(create_gateway))
        .route("/http_gateway/{id}/stop", post(stop_gateway))
        .fallback(|uri: Uri| async move {
            failure(
                StatusCode::NOT_FOUND,
                format!("this PocketIC server (the embedded replica) has no endpoint {uri}"),
            )
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(json_only))
        .with_state(registry.clone());
    let listener = Listener::bind(last_request.noted(app), address).await?;
    Ok(Server {
        address: listener.address,
        last_request,
        registry,
        listener,
    })
}

/// Refuses a POST whose body is not declared JSON (blobs aside). No CORS header is ever
/// sent here, so a web page cannot send JSON cross-origin (the browser's preflight fails);
/// and, with this, not a "simple" text/plain POST either, which needs no preflight: the
/// REST interface calls as anyone, and no page may drive it.
async fn json_only(request: Request, next: axum::middleware::Next) -> Response {
    let headers = request.headers();
    let has_body = headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|length| length.as_bytes() != b"0");
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
        });
    let blob = request.uri().path().starts_with("/blobstore");
    if request.method() == axum::http::Method::POST && has_body && !json && !blob {
        return failure(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the request body must be JSON, sent with Content-Type: application/json",
        );
    }
    next.run(request).await
}

/// A creation refused, in the shape of its `Created` answer's `Error` variant.
fn refusal(error: impl serde::Serialize) -> Response {
    (StatusCode::BAD_REQUEST, Json(error)).into_response()
}

/// PocketIC's error shape: any status but 200, 202 and 409, with `{"message": …}`.
fn failure(status: StatusCode, message: impl Into<String>) -> Response {
    #[derive(serde::Serialize)]
    struct ApiError {
        message: String,
    }
    (
        status,
        Json(ApiError {
            message: message.into(),
        }),
    )
        .into_response()
}

/// Why an instance cannot be found: answered 404.
struct Missing(String);

impl IntoResponse for Missing {
    fn into_response(self) -> Response {
        failure(StatusCode::NOT_FOUND, self.0)
    }
}

fn hosted(registry: &Registry, id: usize) -> Result<Arc<Hosted>, Missing> {
    let instances = registry.instances.lock().expect("not poisoned");
    match instances.get(id) {
        Some(Some(hosted)) => Ok(hosted.clone()),
        Some(None) => Err(Missing(format!("instance {id} was deleted"))),
        None => Err(Missing(format!("there is no instance {id}"))),
    }
}

async fn list_instances(State(registry): State<Arc<Registry>>) -> Response {
    let instances = registry.instances.lock().expect("not poisoned");
    let states: Vec<&str> = instances
        .iter()
        .map(|slot| {
            if slot.is_some() {
                "Available"
            } else {
                "Deleted"
            }
        })
        .collect();
    Json(states).into_response()
}

async fn create_instance(State(registry): State<Arc<Registry>>, body: Bytes) -> Response {
    let refused = |message| refusal(CreateInstanceResponse::Error { message });
    let mut config: wire::InstanceConfig = match serde_json::from_slice(&body) {
        Ok(config) => config,
        Err(e) => return refused(format!("the instance config does not parse: {e}")),
    };
    let gateway = config.http_gateway_config.take();
    let created = tokio::task::spawn_blocking(move || Hosted::create(config)).await;
    let hosted = match created {
        Ok(Ok(hosted)) => Arc::new(hosted),
        Ok(Err(message)) => return refused(message),
        Err(e) => return refused(e.to_string()),
    };
    let topology = hosted.topology.clone();
    let instance_id = {
        let mut instances = registry.instances.lock().expect("not poisoned");
        instances.push(Some(hosted));
        instances.len() - 1
    };
    let http_gateway_info = match gateway {
        None => None,
        Some(config) => match open_gateway(
            &registry,
            instance_id,
            config.ip_addr,
            config.port,
            config.https_config,
        )
        .await
        {
            Ok(info) => Some(info),
            Err(message) => {
                let _ = delete(&registry, instance_id).await;
                return refused(message);
            }
        },
    };
    Json(CreateInstanceResponse::Created {
        instance_id,
        topology,
        http_gateway_info,
    })
    .into_response()
}

async fn delete_instance(State(registry): State<Arc<Registry>>, Path(id): Path<usize>) -> Response {
    match delete(&registry, id).await {
        Ok(()) => Json(()).into_response(),
        Err(missing) => missing.into_response(),
    }
}

/// Deletes instance `id`: its gateways stop, then its replica closes, checkpointing, and
/// a scratch state directory is removed.
async fn delete(registry: &Registry, id: usize) -> Result<(), Response> {
    let taken = {
        let mut instances = registry.instances.lock().expect("not poisoned");
        instances.get_mut(id).and_then(Option::take)
    };
    let Some(mut hosted) = taken else {
        return Err(hosted_missing(registry, id));
    };
    let gateways: Vec<Gateway> = {
        let mut gateways = registry.gateways.lock().expect("not poisoned");
        gateways
            .iter_mut()
            .filter(|g| g.as_ref().is_some_and(|g| g.instance == id))
            .filter_map(Option::take)
            .collect()
    };
    for gateway in gateways {
        gateway.listener.stop().await;
    }
    // Requests still running for it hold it: it closes after the last of them.
    loop {
        match Arc::try_unwrap(hosted) {
            Ok(alone) => {
                alone.instance.stop().await;
                return Ok(());
            }
            Err(shared) => {
                hosted = shared;
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}

fn hosted_missing(registry: &Registry, id: usize) -> Response {
    match hosted(registry, id) {
        Err(missing) => missing.into_response(),
        Ok(_) => failure(StatusCode::CONFLICT, format!("instance {id} is in use")),
    }
}

/// An operation under `/instances/<id>/read/…` or `/update/…`, with its JSON body.
async fn operation(
    State(registry): State<Arc<Registry>>,
    Path((id, kind, name)): Path<(usize, String, String)>,
    body: Bytes,
) -> Response {
    let hosted = match hosted(&registry, id) {
        Ok(hosted) => hosted,
        Err(missing) => return missing.into_response(),
    };
    let ran = tokio::task::spawn_blocking(move || {
        let blobs = |id: &[u8]| {
            registry
                .blobs
                .lock()
                .expect("not poisoned")
                .get(id)
                .cloned()
        };
        operations::run(&hosted, &kind, &name, &body, &blobs)
    })
    .await;
    match ran {
        Ok(Ok(reply)) => Json(reply).into_response(),
        Ok(Err((status, message))) => failure(status, message),
        Err(e) => failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// An operation without a body (`read/topology`, `read/get_time`).
async fn get_operation(
    registry: State<Arc<Registry>>,
    path: Path<(usize, String, String)>,
) -> Response {
    operation(registry, path, Bytes::new()).await
}

async fn start_progress(State(registry): State<Arc<Registry>>, Path(id): Path<usize>) -> Response {
    set_progress(&registry, id, true)
}

async fn stop_progress(State(registry): State<Arc<Registry>>, Path(id): Path<usize>) -> Response {
    set_progress(&registry, id, false)
}

fn set_progress(registry: &Registry, id: usize, on: bool) -> Response {
    match hosted(registry, id) {
        Ok(hosted) => {
            if on {
                // What was held is taken in now, as rounds run by themselves from here.
                let mut replica = hosted.instance.replica();
                hosted
                    .calls
                    .lock()
                    .expect("not poisoned")
                    .take_in(&mut replica);
            }
            hosted.instance.set_auto_progress(on);
            Json(()).into_response()
        }
        Err(missing) => missing.into_response(),
    }
}

async fn progress(State(registry): State<Arc<Registry>>, Path(id): Path<usize>) -> Response {
    match hosted(&registry, id) {
        Ok(hosted) => Json(hosted.instance.auto_progress()).into_response(),
        Err(missing) => missing.into_response(),
    }
}

async fn topology(State(registry): State<Arc<Registry>>, Path(id): Path<usize>) -> Response {
    match hosted(&registry, id) {
        Ok(hosted) => Json(&hosted.topology).into_response(),
        Err(missing) => missing.into_response(),
    }
}

/// The IC HTTP interface of instance `id`, at `/instances/<id>/api/…`.
async fn instance_api(
    State(registry): State<Arc<Registry>>,
    Path((id, rest)): Path<(usize, String)>,
    request: Request,
) -> Response {
    let hosted = match hosted(&registry, id) {
        Ok(hosted) => hosted,
        Err(missing) => return missing.into_response(),
    };
    let (mut parts, body) = request.into_parts();
    let query = parts
        .uri
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    parts.uri = match format!("/api/{rest}{query}").parse() {
        Ok(uri) => uri,
        Err(e) => return failure(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let request = Request::from_parts(parts, body);
    match gateway_router(&hosted).oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// What a gateway port serves: the instance's IC HTTP interface, and its topology at
/// `/_/topology` (where agents look for the default effective canister id).
fn gateway_router(hosted: &Arc<Hosted>) -> Router {
    let topology = hosted.topology.clone();
    hosted
        .instance
        .router()
        .route("/_/topology", get(move || async move { Json(topology) }))
}

/// Opens a gateway port for instance `instance`.
async fn open_gateway(
    registry: &Registry,
    instance: usize,
    ip_addr: Option<String>,
    port: Option<u16>,
    https_config: Option<serde_json::Value>,
) -> Result<GatewayInfo, String> {
    if https_config.is_some_and(|c| !c.is_null()) {
        return Err("this replica's gateway serves HTTP only: leave https_config out".into());
    }
    let hosted =
        hosted(registry, instance).map_err(|_| format!("there is no instance {instance}"))?;
    let ip: std::net::IpAddr = match ip_addr.as_deref() {
        None => std::net::Ipv4Addr::LOCALHOST.into(),
        Some(text) => text
            .parse()
            .map_err(|e| format!("the gateway's ip_addr `{text}` is not an IP address: {e}"))?,
    };
    let address = SocketAddr::new(ip, port.unwrap_or(0));
    let listener = Listener::bind(gateway_router(&hosted), address)
        .await
        .map_err(|e| format!("the gateway cannot listen on {address}: {e}"))?;
    let port = listener.address.port();
    let mut gateways = registry.gateways.lock().expect("not poisoned");
    gateways.push(Some(Gateway { instance, listener }));
    Ok(GatewayInfo {
        instance_id: gateways.len() - 1,
        port,
    })
}

async fn list_gateways(State(registry): State<Arc<Registry>>) -> Response {
    #[derive(serde::Serialize)]
    struct Details {
        instance_id: usize,
        port: u16,
        forward_to: serde_json::Value,
    }
    let gateways = registry.gateways.lock().expect("not poisoned");
    let details: Vec<Details> = gateways
        .iter()
        .enumerate()
        .filter_map(|(id, g)| {
            g.as_ref().map(|g| Details {
                instance_id: id,
                port: g.listener.address.port(),
                forward_to: serde_json::json!({ "PocketIcInstance": g.instance }),
            })
        })
        .collect();
    Json(details).into_response()
}

async fn create_gateway(State(registry): State<Arc<Registry>>, body: Bytes) -> Response {
    let refused = |message| refusal(CreateGatewayResponse::Error { message });
    let config: wire::GatewayConfig = match serde_json::from_slice(&body) {
        Ok(config) => config,
        Err(e) => return refused(format!("the gateway config does not parse: {e}")),
    };
    let instance = match config.forward_to {
        GatewayBackend::PocketIcInstance(instance) => instance,
        GatewayBackend::Replica(url) => {
            return refused(format!(
                "this replica's gateway forwards only to its own instances, not to {url}"
            ));
        }
    };
    match open_gateway(
        &registry,
        instance,
        config.ip_addr,
        config.port,
        config.https_config,
    )
    .await
    {
        Ok(info) => Json(CreateGatewayResponse::Created(info)).into_response(),
        Err(message) => refused(message),
    }
}

async fn stop_gateway(State(registry): State<Arc<Registry>>, Path(id): Path<usize>) -> Response {
    let taken = {
        let mut gateways = registry.gateways.lock().expect("not poisoned");
        gateways.get_mut(id).and_then(Option::take)
    };
    match taken {
        Some(gateway) => {
            gateway.listener.stop().await;
            Json(()).into_response()
        }
        None => failure(StatusCode::NOT_FOUND, format!("there is no gateway {id}")),
    }
}

/// Stores a blob (gunzipped when sent with `Content-Encoding: gzip`); answers its id, the
/// SHA-256 of the bytes as sent, in hex.
async fn put_blob(
    State(registry): State<Arc<Registry>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    let blob = if gzip {
        let mut out = Vec::new();
        let mut decoder = flate2::read::GzDecoder::new(&body[..]);
        if let Err(e) = std::io::Read::read_to_end(&mut decoder, &mut out) {
            return failure(
                StatusCode::BAD_REQUEST,
                format!("the blob is not gzip: {e}"),
            );
        }
        out
    } else {
        body.to_vec()
    };
    let id =
        sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(&body)).to_vec();
    let hex = crate::store::hex(&id);
    registry
        .blobs
        .lock()
        .expect("not poisoned")
        .insert(id, blob);
    hex.into_response()
}

async fn get_blob(State(registry): State<Arc<Registry>>, Path(id): Path<String>) -> Response {
    let blobs = registry.blobs.lock().expect("not poisoned");
    let blob = hex_bytes(&id).and_then(|key| blobs.get(&key).cloned());
    match blob {
        Some(blob) => Body::from(blob).into_response(),
        None => failure(StatusCode::NOT_FOUND, format!("there is no blob {id}")),
    }
}

fn hex_bytes(text: &str) -> Option<Vec<u8>> {
    text.len()
        .is_multiple_of(2)
        .then(|| {
            (0..text.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
                .collect()
        })
        .flatten()
}
