//! The catalogue of bad input (docs/robustness.md): one test per kind, at the HTTP
//! interface, the management canister and the System API. Each checks the answer the user
//! gets, that the state — the chat, its snapshots, a misbehaving canister's counters — is
//! as it was, and that the replica still serves a good call afterwards.

use std::net::SocketAddr;

use crate::common::{Local, Served, chat_wasm, user, wat};
use crate::http_client::{self, call_content, envelope, now, principal_of};
use candid::{CandidType, Decode, Encode, Principal};
use ic_management_canister_types as ic;
use ic_transport_types::{
    Delegation, DelegationPermissions, Envelope, EnvelopeContent, QueryResponse, SignedDelegation,
    TransportCallResponse,
};

/// A canister that misbehaves on request: each method counts itself (heap and global) before
/// it fails, so a rollback is visible in `count`.
const MISBEHAVING: &str = r#"(module
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "trap" (func $trap (param i32 i32)))
  (import "ic0" "stable64_grow" (func $stable_grow (param i64) (result i64)))
  (import "ic0" "stable64_write" (func $stable_write (param i64 i64 i64)))
  (import "ic0" "certified_data_set" (func $certify (param i32 i32)))
  (import "ic0" "call_new" (func $call_new (param i32 i32 i32 i32 i32 i32 i32 i32)))
  (memory 1)
  (global $count (mut i32) (i32.const 0))
  (data (i32.const 100) "boom")
  (func $bump
    (global.set $count (i32.add (global.get $count) (i32.const 1)))
    (i32.store (i32.const 0) (i32.add (i32.load (i32.const 0)) (i32.const 1))))
  (func $respond
    (i32.store (i32.const 4) (global.get $count))
    (call $append (i32.const 0) (i32.const 8))
    (call $reply))
  (func (export "canister_query count") (call $respond))
  (func (export "canister_update trap") (call $bump) (call $trap (i32.const 100) (i32.const 4)))
  (func (export "canister_update spin") (call $bump) (loop $l (; a turn of 1,000 instructions ;) (br $l)))
  (func (export "canister_update grow_forever") (call $bump)
    (loop $l (br_if $l (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
    (call $respond))
  (func (export "canister_update stable_past_end") (call $bump)
    (drop (call $stable_grow (i64.const 1)))
    (call $stable_write (i64.const 65530) (i64.const 0) (i64.const 100))
    (call $respond))
  (func (export "canister_update reply_twice") (call $bump) (call $respond) (call $reply))
  (func (export "canister_update reply_too_large") (call $bump)
    (drop (memory.grow (i32.const 40)))
    (call $append (i32.const 0) (i32.const 2621440))
    (call $reply))
  (func (export "canister_query reply_query_limit") (call $reply_of (i32.const 3145728)))
  (func (export "canister_query reply_past_query_limit") (call $reply_of (i32.const 3145729)))
  (func $reply_of (param $size i32)
    (drop (memory.grow (i32.const 48)))
    (call $append (i32.const 0) (local.get $size))
    (call $reply))
  (func (export "canister_query certify_in_query")
    (call $certify (i32.const 0) (i32.const 4)) (call $respond))
  (func (export "canister_update call_another") (call $bump)
    (call $call_new (i32.const 0) (i32.const 30) (i32.const 0) (i32.const 0)
      (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))
    (call $respond))
)"#;

/// What a request got back.
#[derive(Debug)]
enum Answer {
    /// Refused by the HTTP layer: status and body.
    Http(u16, String),
    Reply(Vec<u8>),
    Reject {
        code: u64,
        error: String,
        message: String,
        /// In a certificate (the call ran), or answered at once (refused before it ran, or
        /// a query).
        certified: bool,
    },
}

impl Answer {
    /// Asserts a reject whose text contains `words`; an HTTP refusal is asserted with its
    /// exact status by `refused_with`.
    fn refused(&self, words: &str) {
        assert!(
            !matches!(self, Answer::Http(..)),
            "refused over HTTP: assert its status with refused_with: {self:?}"
        );
        self.says(words);
    }

    /// Asserts an answer whose text contains `words`.
    fn says(&self, words: &str) {
        let text = match self {
            Answer::Http(_, body) => body.clone(),
            Answer::Reject {
                code,
                error,
                message,
                certified,
            } => {
                let how = if *certified { "certified" } else { "at once" };
                format!("reject code {code}, {error} ({how}): {message}")
            }
            Answer::Reply(bytes) => panic!(
                "expected a refusal naming {words:?}, got a reply of {} bytes",
                bytes.len()
            ),
        };
        assert!(text.contains(words), "{words:?} not in {text:?}");
        // The answer, for docs/robustness.md (`-- --nocapture`).
        println!("answer: {}", text.chars().take(160).collect::<String>());
    }

    /// Asserts a call refused before it ran, as the IC's ingress filter refuses one: a reject
    /// answered at once, with no certificate, whose text contains `words`.
    fn refused_at_ingress(&self, words: &str) {
        assert!(
            matches!(
                self,
                Answer::Reject {
                    certified: false,
                    ..
                }
            ),
            "not a non-replicated rejection: {self:?}"
        );
        self.refused(words);
    }

    /// Asserts a refusal by the HTTP layer with `status`, whose text contains `words`.
    fn refused_with(&self, status: u16, words: &str) {
        assert!(
            matches!(self, Answer::Http(s, _) if *s == status),
            "expected HTTP {status}: {self:?}"
        );
        self.says(words);
    }
}

type Key = ic_ed25519::PrivateKey;

/// A served replica with the chat (two messages and a snapshot) and a misbehaving canister,
/// both controlled by `admin`.
struct World {
    served: Served,
    chat: Principal,
    bad: Principal,
    admin: Key,
    snapshot: Vec<u8>,
}

/// The state no bad input may change, as the answers that show it (a stopped chat's
/// answer is its reject).
#[derive(Debug, PartialEq)]
struct Observed {
    chat: String,
    snapshots: String,
    bad: String,
    bad_snapshots: String,
    /// Both canisters' status, version, settings, controllers, module hash and memory sizes
    /// (wasm, stable, globals, chunk store, snapshots), less the query statistics that
    /// observing changes and the log's size: a trap is logged, as on the IC.
    statuses: Vec<String>,
    chat_chunks: String,
}

impl World {
    fn new() -> Self {
        let admin = Key::generate();
        let mut local = Local::new();
        let chat = local.deploy(chat_wasm());
        let bad = local.deploy(wat(MISBEHAVING));
        for canister in [chat, bad] {
            let settings = ic::CanisterSettings {
                controllers: Some(vec![user(), principal_of(&admin)]),
                wasm_memory_limit: Some(candid::Nat::from(64u64 << 20)),
                ..Default::default()
            };
            local.update_settings(canister, settings);
        }
        for message in ["Hi there!", "second"] {
            local.update::<()>(chat, "append", (message,)).unwrap();
        }
        let snapshot = local.take_snapshot(chat, None).unwrap().id;
        local.take_snapshot(bad, None).unwrap();
        Self {
            served: Served::new(local),
            chat,
            bad,
            admin,
            snapshot,
        }
    }

    fn address(&self) -> SocketAddr {
        self.served.address()
    }

    fn observe(&self) -> Observed {
        let list = |canister| {
            self.manage(
                self.chat,
                "list_canister_snapshots",
                ic::CanisterIdRecord {
                    canister_id: canister,
                },
            )
        };
        let reply = |answer: Answer| format!("{answer:?}");
        let status = |canister| {
            let answer = self.manage(
                canister,
                "canister_status",
                ic::CanisterIdRecord {
                    canister_id: canister,
                },
            );
            let Answer::Reply(bytes) = answer else {
                return reply(answer);
            };
            let mut status = Decode!(&bytes, ic::CanisterStatusResult).unwrap();
            let zero = candid::Nat::from(0u8);
            status.memory_metrics.log_memory_store_size = zero.clone();
            status.query_stats = ic::QueryStats {
                num_calls_total: zero.clone(),
                num_instructions_total: zero.clone(),
                request_payload_bytes_total: zero.clone(),
                response_payload_bytes_total: zero,
            };
            format!("{status:?}")
        };
        Observed {
            statuses: vec![status(self.chat), status(self.bad)],
            chat_chunks: reply(self.manage(
                self.chat,
                "stored_chunks",
                ic::CanisterIdRecord {
                    canister_id: self.chat,
                },
            )),
            chat: reply(self.query(self.chat, "dump", Encode!().unwrap())),
            snapshots: reply(list(self.chat)),
            bad: reply(self.query(self.bad, "count", Vec::new())),
            bad_snapshots: reply(self.manage(
                self.bad,
                "list_canister_snapshots",
                ic::CanisterIdRecord {
                    canister_id: self.bad,
                },
            )),
        }
    }

    /// A good call after the bad input: the replica still serves.
    fn still_serves(&self) {
        let answer = self.call(Some(&self.admin), self.bad, self.bad, "count", Vec::new());
        assert!(matches!(answer, Answer::Reply(_)), "{answer:?}");
    }

    fn post(&self, path: &str, body: &[u8]) -> Answer {
        let (status, body) = http_client::post(self.address(), path, body);
        Answer::Http(status, String::from_utf8_lossy(&body).into_owned())
    }

    /// A synchronous call by `key` (anonymous without one), sent to `effective`.
    fn call(
        &self,
        key: Option<&Key>,
        canister: Principal,
        effective: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Answer {
        let sender = key.map_or(Principal::anonymous(), principal_of);
        let content = call_content(sender, canister, method, arg, now() + 60_000_000_000);
        self.send_call(content, key, effective)
    }

    fn send_call(
        &self,
        content: EnvelopeContent,
        key: Option<&Key>,
        effective: Principal,
    ) -> Answer {
        let request_id = content.to_request_id();
        let (status, body) = http_client::post(
            self.address(),
            &format!("/api/v4/canister/{effective}/call"),
            &envelope(content, key),
        );
        if status != 200 {
            return Answer::Http(status, String::from_utf8_lossy(&body).into_owned());
        }
        if let TransportCallResponse::NonReplicatedRejection(reject) =
            serde_cbor::from_slice(&body).unwrap()
        {
            return Answer::Reject {
                code: reject.reject_code as u64,
                error: reject.error_code.unwrap_or_default(),
                message: reject.reject_message,
                certified: false,
            };
        }
        let at = http_client::certified_status(&body, &request_id);
        match at(b"reply") {
            Some(reply) => Answer::Reply(reply),
            None => Answer::Reject {
                code: at(b"reject_code").map_or(0, |c| c[0] as u64),
                error: String::from_utf8(at(b"error_code").unwrap_or_default()).unwrap(),
                message: String::from_utf8(at(b"reject_message").unwrap_or_default()).unwrap(),
                certified: true,
            },
        }
    }

    /// A read_state of `paths` by `key`, sent to `effective`'s endpoint.
    fn read_state(
        &self,
        key: &Key,
        effective: Principal,
        paths: Vec<Vec<ic_certification::Label>>,
    ) -> Answer {
        let read = EnvelopeContent::ReadState {
            ingress_expiry: in_a_minute(),
            sender: principal_of(key),
            paths,
        };
        self.post(
            &format!("/api/v3/canister/{effective}/read_state"),
            &envelope(read, Some(key)),
        )
    }

    fn query(&self, canister: Principal, method: &str, arg: Vec<u8>) -> Answer {
        let content = EnvelopeContent::Query {
            ingress_expiry: now() + 60_000_000_000,
            sender: principal_of(&self.admin),
            canister_id: canister,
            method_name: method.into(),
            arg,
            nonce: None,
            sender_info: None,
        };
        let (status, body) = http_client::post(
            self.address(),
            &format!("/api/v3/canister/{canister}/query"),
            &envelope(content, Some(&self.admin)),
        );
        if status != 200 {
            return Answer::Http(status, String::from_utf8_lossy(&body).into_owned());
        }
        match serde_cbor::from_slice(&body).unwrap() {
            QueryResponse::Replied { reply, .. } => Answer::Reply(reply.arg),
            QueryResponse::Rejected { reject, .. } => Answer::Reject {
                code: reject.reject_code as u64,
                error: reject.error_code.unwrap_or_default(),
                message: reject.reject_message,
                certified: false,
            },
        }
    }

    /// A management call by the admin about `canister`.
    fn manage(&self, canister: Principal, method: &str, arg: impl CandidType) -> Answer {
        let arg = Encode!(&arg).unwrap();
        self.call(
            Some(&self.admin),
            Principal::management_canister(),
            canister,
            method,
            arg,
        )
    }

    fn append(&self, key: Option<&Key>, message: &str) -> Answer {
        self.call(
            key,
            self.chat,
            self.chat,
            "append",
            Encode!(&message).unwrap(),
        )
    }

    fn misbehave(&self, method: &str) -> Answer {
        self.call(Some(&self.admin), self.bad, self.bad, method, Vec::new())
    }
}

/// One catalogue entry: a test that sends the bad input, checks the answer, then checks
/// that nothing changed and the replica still serves. `setup` runs before the state is
/// observed, for inputs that need a prepared state.
macro_rules! bad_input {
    ($name:ident, |$w:ident| $body:block) => {
        bad_input!($name, |_setup| {}, |$w, _prepared| $body);
    };
    ($name:ident, |$s:ident| $setup:block, |$w:ident, $p:ident| $body:block) => {
        #[test]
        fn $name() {
            let world = World::new();
            let $p = {
                let $s = &world;
                $setup
            };
            let before = world.observe();
            {
                let $w = &world;
                $body
            }
            assert_eq!(world.observe(), before, "the bad input changed the state");
            world.still_serves();
        }
    };
}

fn label(bytes: &[u8]) -> ic_certification::Label {
    bytes.to_vec().into()
}

fn in_a_minute() -> u64 {
    now() + 60_000_000_000
}

fn signed_append(w: &World, key: &Key, expiry: u64) -> EnvelopeContent {
    call_content(
        principal_of(key),
        w.chat,
        "append",
        Encode!(&"x").unwrap(),
        expiry,
    )
}

// ---- The HTTP interface --------------------------------------------------------------

bad_input!(http_malformed_cbor, |w| {
    w.post(
        &format!("/api/v4/canister/{}/call", w.chat),
        b"\xffnot cbor",
    )
    .refused_with(400, "not a CBOR request envelope");
});

bad_input!(http_wrong_content_type, |w| {
    let body = envelope(signed_append(w, &w.admin, in_a_minute()), Some(&w.admin));
    let mut stream = std::net::TcpStream::connect(w.address()).unwrap();
    use std::io::{Read, Write};
    let head = format!(
        "POST /api/v4/canister/{}/call HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        w.chat,
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&body).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
    assert!(response.contains("must be application/cbor"), "{response}");
});

bad_input!(http_oversized_body, |w| {
    let answer = w.post(
        &format!("/api/v4/canister/{}/call", w.chat),
        &vec![0; 5 << 20],
    );
    assert!(matches!(answer, Answer::Http(413, _)), "{answer:?}");
});

bad_input!(http_unknown_endpoint, |w| {
    w.post("/api/v9/nothing", b"")
        .refused_with(404, "no such endpoint");
    w.post(
        &format!("/api/v4/canister/{}/dance", w.chat),
        &envelope(signed_append(w, &w.admin, in_a_minute()), Some(&w.admin)),
    )
    .refused_with(404, "no endpoint /api/v4/canister/<id>/dance");
});

bad_input!(http_malformed_canister_id_in_path, |w| {
    w.post("/api/v4/canister/not-a-principal/call", b"")
        .refused_with(400, "is not a canister id");
});

bad_input!(http_expired_ingress, |w| {
    let content = signed_append(w, &w.admin, now() - 1);
    w.send_call(content, Some(&w.admin), w.chat)
        .refused_with(400, "expired");
});

bad_input!(http_far_future_ingress, |w| {
    let content = signed_append(w, &w.admin, now() + 3_600_000_000_000);
    w.send_call(content, Some(&w.admin), w.chat)
        .refused_with(400, "expiry");
});

bad_input!(http_forged_signature, |w| {
    let content = signed_append(w, &w.admin, in_a_minute());
    let mut forged: Envelope =
        serde_cbor::from_slice(&envelope(content.clone(), Some(&w.admin))).unwrap();
    let message = [
        b"\x0Aic-request".as_slice(),
        content.to_request_id().as_slice(),
    ]
    .concat();
    forged.sender_sig = Some(Key::generate().sign_message(&message).to_vec());
    w.post(
        &format!("/api/v4/canister/{}/call", w.chat),
        &forged.encode_bytes(),
    )
    .refused_with(400, "signature is invalid");
});

bad_input!(http_sender_not_the_key, |w| {
    let stranger = Key::generate();
    let content = signed_append(w, &stranger, in_a_minute());
    w.send_call(content, Some(&w.admin), w.chat)
        .refused_with(400, "does not match the public key");
});

bad_input!(http_anonymous_with_a_signature, |w| {
    let content = call_content(
        Principal::anonymous(),
        w.chat,
        "append",
        Encode!(&"x").unwrap(),
        in_a_minute(),
    );
    w.send_call(content, Some(&w.admin), w.chat)
        .refused_with(400, "an anonymous request must carry no key");
});

bad_input!(http_wrong_effective_canister_id, |w| {
    let content = signed_append(w, &w.admin, in_a_minute());
    w.send_call(content, Some(&w.admin), w.bad)
        .refused_with(400, "effective canister id");
});

bad_input!(http_wrong_effective_canister_id_for_a_1_mib_chunk, |w| {
    // The effective canister id is read out of an argument whose other fields (here a 1 MiB
    // chunk) must be skipped; it is checked whatever their size.
    let chunk = ic::UploadChunkArgs {
        canister_id: w.chat,
        chunk: vec![1; 1 << 20],
    };
    w.call(
        Some(&w.admin),
        Principal::management_canister(),
        w.bad,
        "upload_chunk",
        Encode!(&chunk).unwrap(),
    )
    .refused_with(400, "effective canister id");
});

bad_input!(http_bogus_delegation, |w| {
    w.post(
        &format!("/api/v4/canister/{}/call", w.chat),
        &chained_append(
            w,
            Links {
                forged: true,
                ..Links::one()
            },
        ),
    )
    .refused_with(400, "delegation 0 has an invalid signature");
});

bad_input!(http_call_under_a_queries_only_delegation, |w| {
    w.post(
        &format!("/api/v4/canister/{}/call", w.chat),
        &chained_append(
            w,
            Links {
                permissions: Some(DelegationPermissions::Queries),
                ..Links::one()
            },
        ),
    )
    .refused_with(400, "permits only queries");
});

bad_input!(http_expired_delegation, |w| {
    let expired = http_client::now() - 60_000_000_000;
    w.post(
        &format!("/api/v4/canister/{}/call", w.chat),
        &chained_append(
            w,
            Links {
                expiration: expired,
                ..Links::one()
            },
        ),
    )
    .refused_with(400, "delegation 0 expired at ");
});

bad_input!(http_21_delegations, |w| {
    w.post(
        &format!("/api/v4/canister/{}/call", w.chat),
        &chained_append(
            w,
            Links {
                count: 21,
                ..Links::one()
            },
        ),
    )
    .refused_with(400, "at most 20 delegations are allowed, not 21");
});

bad_input!(http_a_delegation_naming_1001_targets, |w| {
    let targets = (0..1001u64)
        .map(|n| Principal::from_slice(&n.to_be_bytes()))
        .collect();
    w.post(
        &format!("/api/v4/canister/{}/call", w.chat),
        &chained_append(
            w,
            Links {
                targets: Some(targets),
                ..Links::one()
            },
        ),
    )
    .refused_with(
        400,
        "delegation 0 names 1001 targets; at most 1000 are allowed",
    );
});

bad_input!(http_a_call_outside_the_delegations_targets, |w| {
    w.post(
        &format!("/api/v4/canister/{}/call", w.chat),
        &chained_append(
            w,
            Links {
                count: 2,
                targets: Some(vec![w.bad]),
                ..Links::one()
            },
        ),
    )
    .refused_with(
        403,
        &format!("the sender's delegations do not allow calls to {}", w.chat),
    );
});

/// A delegation chain for a test: how many links (admin → key 1 → … → key n, which signs
/// the request), and what each says.
struct Links {
    count: usize,
    expiration: u64,
    targets: Option<Vec<Principal>>,
    permissions: Option<DelegationPermissions>,
    /// Each link's signature is zeros.
    forged: bool,
}

impl Links {
    /// One link, lasting a minute, allowing everything.
    fn one() -> Self {
        Self {
            count: 1,
            expiration: in_a_minute(),
            targets: None,
            permissions: None,
            forged: false,
        }
    }
}

/// An append from the admin, signed at the end of the chain `links` describes.
fn chained_append(w: &World, links: Links) -> Vec<u8> {
    chained(w, links, signed_append(w, &w.admin, in_a_minute()))
}

/// The admin's `content`, signed at the end of the chain `links` describes.
fn chained(w: &World, links: Links, content: EnvelopeContent) -> Vec<u8> {
    let keys: Vec<Key> = (0..links.count).map(|_| Key::generate()).collect();
    let mut chain = Vec::new();
    let mut signer = &w.admin;
    for key in &keys {
        let delegation = Delegation {
            pubkey: key.public_key().serialize_rfc8410_der(),
            expiration: links.expiration,
            targets: links.targets.clone(),
            permissions: links.permissions,
        };
        let signature = match links.forged {
            true => vec![0; 64],
            false => signer.sign_message(&delegation.signable()).to_vec(),
        };
        chain.push(SignedDelegation {
            delegation,
            signature,
        });
        signer = key;
    }
    let message = [
        b"\x0Aic-request".as_slice(),
        content.to_request_id().as_slice(),
    ]
    .concat();
    Envelope {
        content: std::borrow::Cow::Owned(content),
        sender_pubkey: Some(w.admin.public_key().serialize_rfc8410_der()),
        sender_sig: Some(signer.sign_message(&message).to_vec()),
        sender_delegation: Some(chain),
    }
    .encode_bytes()
}

/// The admin's call to the chat, made before the state is observed: its request id.
fn an_admin_call(w: &World) -> ic_transport_types::RequestId {
    let content = signed_append(w, &w.admin, in_a_minute());
    let request_id = content.to_request_id();
    let answer = w.send_call(content, Some(&w.admin), w.chat);
    assert!(matches!(answer, Answer::Reply(_)), "{answer:?}");
    request_id
}

fn status_path(id: &[u8]) -> Vec<ic_certification::Label> {
    vec![label(b"request_status"), label(id)]
}

bad_input!(
    http_someone_elses_request_status,
    |s| { an_admin_call(s) },
    |w, request_id| {
        let stranger = Key::generate();
        w.read_state(&stranger, w.chat, vec![status_path(request_id.as_slice())])
            .refused_with(
                403,
                "The user tries to access Request ID not signed by the caller.",
            );
    }
);

/// A read_state by the admin through a delegation to `targets`.
fn read_state_within(
    w: &World,
    targets: Vec<Principal>,
    paths: Vec<Vec<ic_certification::Label>>,
) -> Answer {
    let read = EnvelopeContent::ReadState {
        ingress_expiry: in_a_minute(),
        sender: principal_of(&w.admin),
        paths,
    };
    let links = Links {
        targets: Some(targets),
        ..Links::one()
    };
    w.post(
        &format!("/api/v3/canister/{}/read_state", w.chat),
        &chained(w, links, read),
    )
}

// As on the IC, targets bound whose request statuses a delegation reads (403 with the IC's
// words), not a canister's module hash or controllers, which anyone may read.
bad_input!(
    http_request_status_outside_the_delegations_targets,
    |s| { an_admin_call(s) },
    |w, request_id| {
        read_state_within(w, vec![w.bad], vec![status_path(request_id.as_slice())])
            .refused_with(
                403,
                "The user tries to access request IDs for canisters not belonging to sender delegation targets.",
            );
        let module_hash = vec![
            label(b"canister"),
            label(w.chat.as_slice()),
            label(b"module_hash"),
        ];
        let Answer::Http(status, _) = read_state_within(w, vec![w.bad], vec![module_hash]) else {
            unreachable!("read_state answers over HTTP");
        };
        assert_eq!(status, 200, "a module hash is readable outside the targets");
        let Answer::Http(status, _) =
            read_state_within(w, vec![w.chat], vec![status_path(request_id.as_slice())])
        else {
            unreachable!("read_state answers over HTTP");
        };
        assert_eq!(status, 200, "a status is readable within the targets");
    }
);

bad_input!(
    http_request_status_at_another_effective_id,
    |s| { an_admin_call(s) },
    |w, request_id| {
        w.read_state(&w.admin, w.bad, vec![status_path(request_id.as_slice())])
            .refused_with(403, "read its status there");
    }
);

// Before the allow-list, a bare `/request_status` put every sender's replies in the
// certificate.
bad_input!(
    http_request_status_without_a_request_id,
    |s| { an_admin_call(s) },
    |w, _request_id| {
        let stranger = Key::generate();
        w.read_state(&stranger, w.chat, vec![vec![label(b"request_status")]])
            .refused_with(404, "Invalid path requested");
        w.read_state(&stranger, w.chat, vec![vec![]])
            .refused_with(404, "Invalid path requested");
    }
);

bad_input!(http_malformed_request_id, |w| {
    w.read_state(&w.admin, w.chat, vec![status_path(b"foo")])
        .refused_with(400, "Invalid request id");
});

bad_input!(
    http_two_request_ids_in_one_read_state,
    |s| { an_admin_call(s) },
    |w, request_id| {
        let paths = vec![status_path(request_id.as_slice()), status_path(&[7; 32])];
        w.read_state(&w.admin, w.chat, paths)
            .refused_with(400, "More than one request id");
    }
);

bad_input!(http_unreadable_state_path, |w| {
    w.read_state(&w.admin, w.chat, vec![vec![label(b"secrets")]])
        .refused_with(404, "Invalid path requested: /secrets");
});

bad_input!(http_canister_path_at_another_effective_id, |w| {
    let path = vec![
        label(b"canister"),
        label(w.chat.as_slice()),
        label(b"controllers"),
    ];
    w.read_state(&w.admin, w.bad, vec![path])
        .refused_with(400, "must be sent to /api/v3/canister/");
});

bad_input!(http_too_many_read_state_paths, |w| {
    let paths = vec![vec![label(b"time")]; 1001];
    w.read_state(&w.admin, w.chat, paths)
        .refused_with(400, "at most 1000");
    let long = vec![label(b"subnet"); 128];
    w.read_state(&w.admin, w.chat, vec![long])
        .refused_with(400, "at most 127");
});

// ---- Calls to the chat ------------------------------------------------------------

bad_input!(chat_unknown_method, |w| {
    w.call(
        Some(&w.admin),
        w.chat,
        w.chat,
        "drop_all",
        Encode!().unwrap(),
    )
    .refused_at_ingress("IC0536");
});

bad_input!(chat_update_method_as_a_query, |w| {
    w.query(w.chat, "append", Encode!(&"x").unwrap())
        .refused("IC0536");
});

bad_input!(chat_malformed_candid_argument, |w| {
    w.call(
        Some(&w.admin),
        w.chat,
        w.chat,
        "append",
        b"DIDL garbage".to_vec(),
    )
    .refused("IC0503");
});

bad_input!(chat_empty_message, |w| {
    w.append(Some(&w.admin), "").refused("empty");
});

bad_input!(chat_message_over_1024_bytes, |w| {
    w.append(Some(&w.admin), &"x".repeat(1025)).refused("1024");
});

bad_input!(chat_argument_over_2_mib, |w| {
    let arg = Encode!(&"x".repeat(2 << 20)).unwrap();
    w.call(Some(&w.admin), w.chat, w.chat, "append", arg)
        .refused_at_ingress("2097152");
});

bad_input!(
    chat_call_to_a_stopped_canister,
    |s| {
        s.manage(
            s.chat,
            "stop_canister",
            ic::CanisterIdRecord {
                canister_id: s.chat,
            },
        );
    },
    |w, _stopped| {
        w.append(Some(&w.admin), "while stopped").refused("IC0508");
    }
);

// ---- The management canister -------------------------------------------------------

bad_input!(management_malformed_candid, |w| {
    w.call(
        Some(&w.admin),
        Principal::management_canister(),
        w.chat,
        "take_canister_snapshot",
        b"not candid".to_vec(),
    )
    .refused_at_ingress("Error decoding candid");
});

bad_input!(management_candid_that_declares_a_vast_skipped_field, |w| {
    w.call(
        Some(&w.admin),
        Principal::management_canister(),
        w.chat,
        "stop_canister",
        vast_extra_field(w.chat),
    )
    .refused_at_ingress("Error decoding candid");
});

/// `record { canister_id; <another field> : vec null }` whose `vec null` claims 2^40
/// elements: 40-odd bytes that a decoder without a skipping quota works through for hours.
fn vast_extra_field(canister: Principal) -> Vec<u8> {
    fn leb128(out: &mut Vec<u8>, mut n: u64) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let field = u64::from(candid::idl_hash("canister_id"));
    let mut bytes = b"DIDL".to_vec();
    bytes.extend([2, 0x6d, 0x7f, 0x6c, 2]); // two types: vec null; a record of two fields
    leb128(&mut bytes, field);
    bytes.push(0x68); // principal
    leb128(&mut bytes, field + 1);
    bytes.extend([0, 1, 1]); // the vec null (type 0); one argument, of type 1
    bytes.push(1);
    leb128(&mut bytes, canister.as_slice().len() as u64);
    bytes.extend(canister.as_slice());
    leb128(&mut bytes, 1 << 40);
    bytes
}

bad_input!(management_unknown_method, |w| {
    w.manage(
        w.chat,
        "format_disk",
        ic::CanisterIdRecord {
            canister_id: w.chat,
        },
    )
    .refused_at_ingress("has no method 'format_disk'");
});

bad_input!(management_unknown_canister, |w| {
    let nowhere = replica::ids::canister_id(99);
    w.manage(
        nowhere,
        "canister_status",
        ic::CanisterIdRecord {
            canister_id: nowhere,
        },
    )
    .refused_at_ingress("not found");
});

bad_input!(management_non_controller, |w| {
    let stranger = Key::generate();
    let arg = Encode!(&ic::TakeCanisterSnapshotArgs {
        canister_id: w.chat,
        replace_snapshot: None,
        uninstall_code: None,
        sender_canister_version: None,
    })
    .unwrap();
    w.call(
        Some(&stranger),
        Principal::management_canister(),
        w.chat,
        "take_canister_snapshot",
        arg,
    )
    .refused_at_ingress("IC0512");
});

bad_input!(management_unknown_snapshot_id, |w| {
    let args = ic::LoadCanisterSnapshotArgs {
        canister_id: w.chat,
        snapshot_id: replica::ids::snapshot_id(42, &w.chat),
        sender_canister_version: None,
    };
    w.manage(w.chat, "load_canister_snapshot", args)
        .refused("IC0305");
});

bad_input!(management_snapshot_id_of_another_canister, |w| {
    let args = ic::DeleteCanisterSnapshotArgs {
        canister_id: w.bad,
        snapshot_id: w.snapshot.clone(),
    };
    let answer = w.manage(w.bad, "delete_canister_snapshot", args);
    answer.refused("reject code 4, IC0406 (certified): The snapshot ");
    answer.refused(&format!(" does not belong to canister {}.", w.bad));
});

bad_input!(
    management_eleventh_snapshot,
    |s| {
        for _ in 0..9 {
            let args = ic::TakeCanisterSnapshotArgs {
                canister_id: s.chat,
                replace_snapshot: None,
                uninstall_code: None,
                sender_canister_version: None,
            };
            assert!(matches!(
                s.manage(s.chat, "take_canister_snapshot", args),
                Answer::Reply(_)
            ));
        }
    },
    |w, _full| {
        let args = ic::TakeCanisterSnapshotArgs {
            canister_id: w.chat,
            replace_snapshot: None,
            uninstall_code: None,
            sender_canister_version: None,
        };
        w.manage(w.chat, "take_canister_snapshot", args)
            .refused("maximum number of snapshots allowed: 10");
    }
);

bad_input!(management_load_onto_a_deleted_canister, |w| {
    let doomed = replica::ids::canister_id(99);
    let args = ic::LoadCanisterSnapshotArgs {
        canister_id: doomed,
        snapshot_id: w.snapshot.clone(),
        sender_canister_version: None,
    };
    w.manage(doomed, "load_canister_snapshot", args)
        .refused_at_ingress("not found");
});

bad_input!(management_chunked_install_with_a_wrong_hash, |w| {
    let args = ic::InstallChunkedCodeArgs {
        mode: ic::CanisterInstallMode::Upgrade(None),
        target_canister: w.chat,
        store_canister: None,
        chunk_hashes_list: vec![ic::ChunkHash { hash: vec![7; 32] }],
        wasm_module_hash: vec![8; 32],
        arg: Vec::new(),
        sender_canister_version: None,
    };
    w.manage(w.chat, "install_chunked_code", args)
        .refused("chunk");
});

bad_input!(management_install_of_something_that_is_not_wasm, |w| {
    let args = ic::InstallCodeArgs {
        mode: ic::CanisterInstallMode::Upgrade(None),
        canister_id: w.chat,
        wasm_module: b"#!/bin/sh\necho hello".to_vec(),
        arg: Vec::new(),
        sender_canister_version: None,
    };
    w.manage(w.chat, "install_code", args).refused("IC0505");
});

// An install runs `canister_init` under the IC's 300 billion instructions, not a message's
// 40 billion; past them the install fails whole and the canister keeps its module and state.
bad_input!(
    management_an_install_whose_init_runs_past_its_instruction_limit,
    |w| {
        let spinning = wat(r#"(module
      (func (export "canister_init") (loop $l (; a turn of 1,000 instructions ;) (br $l))))"#);
        let args = ic::InstallCodeArgs {
            mode: ic::CanisterInstallMode::Reinstall,
            canister_id: w.bad,
            wasm_module: spinning,
            arg: Vec::new(),
            sender_canister_version: None,
        };
        let refused = w.manage(w.bad, "install_code", args);
        refused.refused("reject code 5, IC0522");
        refused.refused("exceeded the limit of 300000000000 instructions");
    }
);

bad_input!(management_delete_a_running_canister, |w| {
    w.manage(
        w.chat,
        "delete_canister",
        ic::CanisterIdRecord {
            canister_id: w.chat,
        },
    )
    .refused("must be stopped");
});

bad_input!(management_read_past_the_end_of_a_snapshot, |w| {
    let args = ic::ReadCanisterSnapshotDataArgs {
        canister_id: w.chat,
        snapshot_id: w.snapshot.clone(),
        kind: ic::SnapshotDataKind::StableMemory {
            offset: u64::MAX - 10,
            size: 100,
        },
    };
    w.manage(w.chat, "read_canister_snapshot_data", args).refused(
        "reject code 4, IC0408 (certified): Invalid slice of the snapshot's stable memory: offset 18446744073709551605 + size 100 is past its end.",
    );
});

bad_input!(management_upload_into_a_taken_snapshot, |w| {
    let args = ic::UploadCanisterSnapshotDataArgs {
        canister_id: w.chat,
        snapshot_id: w.snapshot.clone(),
        kind: ic::SnapshotDataOffset::StableMemory { offset: 0 },
        chunk: vec![1; 10],
    };
    w.manage(w.chat, "upload_canister_snapshot_data", args).refused(
        "reject code 4, IC0409 (certified): Only canister snapshots created by metadata upload can be mutated.",
    );
});

// ---- The System API: canisters that misbehave -----------------------------------------

bad_input!(system_api_a_canister_that_traps, |w| {
    w.misbehave("trap")
        .refused("Canister called `ic0.trap` with message: 'boom'");
});

bad_input!(system_api_a_canister_that_loops_forever, |w| {
    w.misbehave("spin").refused("IC0522");
});

bad_input!(
    system_api_a_canister_that_grows_its_heap_without_bound,
    |w| {
        w.misbehave("grow_forever").refused("Wasm memory limit");
    }
);

bad_input!(system_api_a_write_past_the_end_of_stable_memory, |w| {
    w.misbehave("stable_past_end").refused("stable memory");
});

bad_input!(system_api_a_canister_that_replies_twice, |w| {
    w.misbehave("reply_twice").refused("IC0504");
});

bad_input!(system_api_a_reply_over_2_mib, |w| {
    w.misbehave("reply_too_large").refused("IC0504");
});

// A query may answer up to 3 MiB (the IC's limit for non-replicated replies), not a byte more.
bad_input!(system_api_a_query_reply_past_3_mib, |w| {
    let Answer::Reply(reply) = w.query(w.bad, "reply_query_limit", Vec::new()) else {
        panic!("a reply of exactly 3 MiB is allowed");
    };
    assert_eq!(reply.len(), 3 << 20);
    let refused = w.query(w.bad, "reply_past_query_limit", Vec::new());
    refused.refused("reject code 5, IC0504");
    refused.refused("ic0.msg_reply_data_append: the reply exceeds the limit of 3145728 bytes");
});

bad_input!(system_api_a_function_outside_its_context, |w| {
    w.query(w.bad, "certify_in_query", Vec::new())
        .refused("IC0504");
});

// 30 bytes are no principal (at most 29).
bad_input!(system_api_a_call_to_a_callee_that_is_no_principal, |w| {
    w.misbehave("call_another")
        .refused("ic0.call_new: the callee is not a valid principal");
});
