//! The IC HTTP interface over the replica, so real clients (icp-cli, dfx, ic-agent) can use
//! it: status, calls (synchronous v3/v4 with a certificate, asynchronous v2), queries signed
//! by the node key, and read_state over the certified state tree.

mod batch;
mod history;
mod ingress;
pub mod pocket_ic;
mod read_state;
mod server;
mod tree;

pub use crate::keys::Keys;
pub use server::{Instance, LastRequest, Listener, Server, serve};

/// Decodes and authenticates a request body as the server does on receiving it at `now`
/// (ns since the epoch): the sender, or why the request is refused. For tools and fuzzing.
pub fn authenticate(body: &[u8], now: u64) -> Result<candid::Principal, String> {
    ingress::authenticate(body, now)
        .map(|ingress| ingress.sender())
        .map_err(|refused| refused.0)
}

use std::{net::SocketAddr, path::Path, time::Duration};

use crate::Replica;

/// When a server ends by itself.
pub struct Limits {
    /// After this long without a request.
    pub ttl: Duration,
    /// After this long, requests or not.
    pub hard_ttl: Option<Duration>,
}

impl Limits {
    /// No limit: until a signal.
    pub fn forever() -> Self {
        Self {
            ttl: Duration::MAX,
            hard_ttl: None,
        }
    }
}

/// Opens the replica in `dir`, serves it on `address` until SIGINT or SIGTERM (or a
/// limit), and calls `ready` once it listens. Every change is committed as it happens, so
/// stopping loses nothing.
pub fn run_until_signal(
    dir: &Path,
    address: SocketAddr,
    limits: Limits,
    ready: impl FnOnce(&Server),
) -> Result<(), String> {
    let replica = Replica::open(dir).map_err(|e| e.to_string())?;
    let keys = replica.keys().map_err(|e| e.to_string())?;
    block_on(async {
        let server = serve(replica, keys, address)
            .await
            .map_err(|e| format!("cannot listen on {address}: {e}"))?;
        ready(&server);
        until_signal_or(limits, || server.idle_for()).await?;
        server.stop().await;
        Ok(())
    })
}

/// Serves the PocketIC REST interface on `address` until SIGINT or SIGTERM (or a limit),
/// calling `ready` once it listens; its instances are closed on the way out.
pub fn run_pocket_ic_until_signal(
    address: SocketAddr,
    limits: Limits,
    ready: impl FnOnce(&pocket_ic::Server),
) -> Result<(), String> {
    block_on(async {
        let server = pocket_ic::serve(address)
            .await
            .map_err(|e| format!("cannot listen on {address}: {e}"))?;
        ready(&server);
        until_signal_or(limits, || server.idle_for()).await?;
        server.stop().await;
        Ok(())
    })
}

fn block_on<T>(work: impl Future<Output = Result<T, String>>) -> Result<T, String> {
    tokio::runtime::Runtime::new()
        .map_err(|e| format!("cannot start the runtime: {e}"))?
        .block_on(work)
}

/// Waits for SIGINT, SIGTERM, `limits.ttl` of `idle_for`, or `limits.hard_ttl`.
async fn until_signal_or(limits: Limits, idle_for: impl Fn() -> Duration) -> Result<(), String> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| e.to_string())?;
    let idle = async {
        while idle_for() < limits.ttl {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let hard = async {
        match limits.hard_ttl {
            Some(after) => tokio::time::sleep(after).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
        () = idle => {}
        () = hard => {}
    }
    Ok(())
}
