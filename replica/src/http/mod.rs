//! The IC HTTP interface over the replica, so real clients (icp-cli, dfx, ic-agent) can use
//! it: status, calls (synchronous v3/v4 with a certificate, asynchronous v2), queries signed
//! by the node key, and read_state over the certified state tree.

mod batch;
mod history;
mod ingress;
mod read_state;
mod server;
mod tree;

pub use crate::keys::Keys;
pub use server::{Server, serve};

/// Decodes and authenticates a request body as the server does on receiving it at `now`
/// (ns since the epoch): the sender, or why the request is refused. For tools and fuzzing.
pub fn authenticate(body: &[u8], now: u64) -> Result<candid::Principal, String> {
    ingress::authenticate(body, now)
        .map(|ingress| ingress.sender())
        .map_err(|refused| refused.0)
}

use std::{net::SocketAddr, path::Path};

use crate::Replica;

/// Opens the replica in `dir`, serves it on `address` until SIGINT or SIGTERM (or, given a
/// `ttl`, until no request has come for that long), and calls `ready` once it listens.
/// Every change is committed as it happens, so stopping loses nothing.
pub fn run_until_signal(
    dir: &Path,
    address: SocketAddr,
    ttl: Option<std::time::Duration>,
    ready: impl FnOnce(&Server),
) -> Result<(), String> {
    let replica = Replica::open(dir).map_err(|e| e.to_string())?;
    let keys = replica.keys().map_err(|e| e.to_string())?;
    let runtime =
        tokio::runtime::Runtime::new().map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async {
        let server = serve(replica, keys, address)
            .await
            .map_err(|e| format!("cannot listen on {address}: {e}"))?;
        ready(&server);
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .map_err(|e| e.to_string())?;
        let idle = async {
            let Some(ttl) = ttl else {
                return std::future::pending().await;
            };
            while server.idle_for() < ttl {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
            () = idle => {}
        }
        server.stop().await;
        Ok(())
    })
}
