//! Helpers for the replica's tests: a replica in a temporary directory, typed management
//! calls, and the chat canister built by `cargo xtask test`.
#![allow(dead_code)]

pub mod relay;
pub mod transfer;

use candid::{CandidType, Decode, Encode, Principal, utils::ArgumentEncoder};
use ic_management_canister_types as ic;
use replica::{Reject, Replica};
use serde::de::DeserializeOwned;

pub fn user() -> Principal {
    Principal::self_authenticating(b"test user")
}

pub fn stranger() -> Principal {
    Principal::self_authenticating(b"someone else")
}

/// The chat canister that `cargo xtask build` wrote (or `$CHAT_WASM`).
pub fn chat_wasm() -> Vec<u8> {
    let target = project_tools::target_dir_of_tests(env!("CARGO_TARGET_TMPDIR"));
    let path = project_tools::chat_wasm(&target).unwrap_or_else(|e| panic!("{e}"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {path:?}: {e}"))
}

/// The relay canister (ic-cdk calls, timers, the backup agent) that `cargo xtask build` wrote.
pub fn relay_wasm() -> Vec<u8> {
    let target = project_tools::target_dir_of_tests(env!("CARGO_TARGET_TMPDIR"));
    let path = project_tools::canister_wasm(&target, "relay").unwrap_or_else(|e| panic!("{e}"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {path:?}: {e}"))
}

/// icp-cli: `$ICP_BIN`, else the project's install (made now when missing).
pub fn icp_binary() -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    project_tools::icp(root).unwrap_or_else(|e| panic!("{e}"))
}

/// A module from WAT, with each `(; a turn of 1,000 instructions ;)` written out: an endless
/// loop with that body reaches the IC's instruction limits (5 billion for a query, 40 for an
/// update) in milliseconds rather than in a minute of one-instruction turns.
/// A certificate, checked against `root_key` (DER): its tree signed by the root key.
pub fn verified_certificate(root_key: &[u8], bytes: &[u8]) -> ic_certification::Certificate {
    let certificate: ic_certification::Certificate = serde_cbor::from_slice(bytes).unwrap();
    let message = [b"\x0Dic-state-root".as_slice(), &certificate.tree.digest()].concat();
    ic_verify_bls_signature::verify_bls_signature(
        &certificate.signature,
        &message,
        &root_key[37..],
    )
    .expect("the root key signed it");
    certificate
}

/// The certificate of a synchronous call's reply (`{status: "replied", certificate}`),
/// checked against `root_key`.
pub fn replied_certificate(root_key: &[u8], body: &[u8]) -> ic_certification::Certificate {
    #[derive(serde::Deserialize)]
    struct Replied {
        status: String,
        #[serde(with = "serde_bytes")]
        certificate: Vec<u8>,
    }
    let replied: Replied = serde_cbor::from_slice(body).unwrap();
    assert_eq!(replied.status, "replied");
    verified_certificate(root_key, &replied.certificate)
}

/// A small xorshift generator: what tests draw at random needs no more, and they print
/// the seed.
pub struct Random(pub u64);

impl Random {
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Says, where the test runner shows it (not in the output it captures), that `test` ran
/// nothing of what it is for here, and why.
pub fn skipped(test: &str, why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
}

pub fn wat(text: &str) -> Vec<u8> {
    let turn = "(drop (i32.const 0)) ".repeat(1000);
    let text = text.replace("(; a turn of 1,000 instructions ;)", &turn);
    wat::parse_str(text).expect("valid WAT")
}

/// `Replica::update` or `Replica::query`.
type CallKind = fn(&mut Replica, Principal, Principal, &str, &[u8]) -> Result<Vec<u8>, Reject>;

/// A replica and its temporary state directory.
pub struct Local {
    pub dir: tempfile::TempDir,
    pub replica: Replica,
}

impl Local {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let replica = Replica::open(dir.path()).unwrap();
        Self { dir, replica }
    }

    /// Closes the replica and opens the same directory again.
    pub fn reopen(self) -> Self {
        let Self { dir, replica } = self;
        drop(replica);
        let replica = Replica::open(dir.path()).unwrap();
        Self { dir, replica }
    }

    pub fn management<R: CandidType + DeserializeOwned>(
        &mut self,
        sender: Principal,
        method: &str,
        arg: impl CandidType,
    ) -> Result<R, Reject> {
        let reply = self.replica.update(
            sender,
            Principal::management_canister(),
            method,
            &Encode!(&arg).unwrap(),
        )?;
        Ok(Decode!(&reply, R).unwrap())
    }

    pub fn create(&mut self) -> Principal {
        let args = ic::ProvisionalCreateCanisterWithCyclesArgs {
            amount: None,
            settings: None,
            specified_id: None,
            sender_canister_version: None,
        };
        self.management::<ic::CanisterIdRecord>(
            user(),
            "provisional_create_canister_with_cycles",
            args,
        )
        .unwrap()
        .canister_id
    }

    pub fn install(
        &mut self,
        canister: Principal,
        wasm: Vec<u8>,
        mode: ic::CanisterInstallMode,
    ) -> Result<(), Reject> {
        let args = ic::InstallCodeArgs {
            mode,
            canister_id: canister,
            wasm_module: wasm,
            arg: Encode!().unwrap(),
            sender_canister_version: None,
        };
        self.management(user(), "install_code", args)
    }

    pub fn deploy(&mut self, wasm: Vec<u8>) -> Principal {
        let canister = self.create();
        self.install(canister, wasm, ic::CanisterInstallMode::Install)
            .unwrap();
        canister
    }

    pub fn update<R: CandidType + DeserializeOwned>(
        &mut self,
        canister: Principal,
        method: &str,
        args: impl ArgumentEncoder,
    ) -> Result<R, Reject> {
        self.call(Replica::update, canister, method, args)
    }

    pub fn query<R: CandidType + DeserializeOwned>(
        &mut self,
        canister: Principal,
        method: &str,
        args: impl ArgumentEncoder,
    ) -> Result<R, Reject> {
        self.call(Replica::query, canister, method, args)
    }

    fn call<R: CandidType + DeserializeOwned>(
        &mut self,
        kind: CallKind,
        canister: Principal,
        method: &str,
        args: impl ArgumentEncoder,
    ) -> Result<R, Reject> {
        let arg = candid::encode_args(args).unwrap();
        let reply = kind(&mut self.replica, user(), canister, method, &arg)?;
        Ok(Decode!(&reply, R).unwrap())
    }

    pub fn stop(&mut self, canister: Principal) {
        self.management::<()>(
            user(),
            "stop_canister",
            ic::CanisterIdRecord {
                canister_id: canister,
            },
        )
        .unwrap();
    }

    pub fn start(&mut self, canister: Principal) {
        self.management::<()>(
            user(),
            "start_canister",
            ic::CanisterIdRecord {
                canister_id: canister,
            },
        )
        .unwrap();
    }

    pub fn take_snapshot(
        &mut self,
        canister: Principal,
        replace: Option<Vec<u8>>,
    ) -> Result<ic::Snapshot, Reject> {
        let args = ic::TakeCanisterSnapshotArgs {
            canister_id: canister,
            replace_snapshot: replace,
            uninstall_code: None,
            sender_canister_version: None,
        };
        self.management(user(), "take_canister_snapshot", args)
    }

    pub fn load_snapshot(&mut self, canister: Principal, id: Vec<u8>) -> Result<(), Reject> {
        let args = ic::LoadCanisterSnapshotArgs {
            canister_id: canister,
            snapshot_id: id,
            sender_canister_version: None,
        };
        self.management(user(), "load_canister_snapshot", args)
    }

    pub fn list_snapshots(&mut self, canister: Principal) -> Vec<ic::Snapshot> {
        self.management(
            user(),
            "list_canister_snapshots",
            ic::CanisterIdRecord {
                canister_id: canister,
            },
        )
        .unwrap()
    }

    pub fn update_settings(&mut self, canister: Principal, settings: ic::CanisterSettings) {
        let args = ic::UpdateSettingsArgs {
            canister_id: canister,
            settings,
            sender_canister_version: None,
        };
        self.management::<()>(user(), "update_settings", args)
            .unwrap();
    }

    pub fn status(&mut self, canister: Principal) -> ic::CanisterStatusResult {
        self.management(
            user(),
            "canister_status",
            ic::CanisterIdRecord {
                canister_id: canister,
            },
        )
        .unwrap()
    }
}

/// A replica served over HTTP on a free port of 127.0.0.1, stopped when dropped.
pub struct Served {
    runtime: tokio::runtime::Runtime,
    server: Option<replica::http::Server>,
    _dir: tempfile::TempDir,
}

impl Served {
    pub fn new(local: Local) -> Self {
        let Local { dir, replica } = local;
        let keys = replica.keys().unwrap();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let address = "127.0.0.1:0".parse().unwrap();
        let server = runtime
            .block_on(replica::http::serve(replica, keys, address))
            .unwrap();
        Self {
            runtime,
            server: Some(server),
            _dir: dir,
        }
    }

    pub fn address(&self) -> std::net::SocketAddr {
        self.server.as_ref().unwrap().address
    }

    pub fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address())
    }

    pub fn root_key(&self) -> Vec<u8> {
        self.server.as_ref().unwrap().root_key.clone()
    }

    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// Stops serving, then opens the state again and serves it anew, as a restarted
    /// `cargo xtask serve` does.
    pub fn restart(mut self) -> Self {
        let server = self.server.take().unwrap();
        self.runtime.block_on(server.stop());
        // The stopped server lets go of the replica (and its lock) as its tasks end.
        let replica = (0..200)
            .find_map(|_| {
                std::thread::sleep(std::time::Duration::from_millis(10));
                Replica::open(self._dir.path()).ok()
            })
            .expect("the stopped server's replica is closed");
        let keys = replica.keys().unwrap();
        let address = "127.0.0.1:0".parse().unwrap();
        self.server = Some(
            self.runtime
                .block_on(replica::http::serve(replica, keys, address))
                .unwrap(),
        );
        self
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let server = self.server.take().unwrap();
        self.runtime.block_on(server.stop());
    }
}
