//! The HTTP interface as the IC answers it, with requests built and signed here: certified
//! replies whose signature verifies against the root key (and not once tampered with),
//! non-controllers, a request sent twice running once, the state paths read_state serves and
//! to whom, browsers on other origins, and 8 clients appending at once losing nothing.
//! Refused requests are in `bad_input.rs`.

use crate::common::{Local, Served, chat_wasm, user, wat};
use crate::http_client::{self, call_content, envelope, exchange, now, post, principal_of};
use candid::{Decode, Encode, Principal};
use ic_certification::{Certificate, Label, LookupResult};
use ic_transport_types::{EnvelopeContent, TransportCallResponse};

const COUNTER: &str = include_str!("common/counter.wat");

type Key = ic_ed25519::PrivateKey;

/// The chat canister, deployed and served.
fn start() -> (Served, Principal) {
    let mut local = Local::new();
    let chat = local.deploy(chat_wasm());
    (Served::new(local), chat)
}

/// The certificate of a synchronous call's reply, checked against the root key.
fn certificate(served: &Served, body: &[u8]) -> Certificate {
    crate::common::replied_certificate(&served.root_key(), body)
}

/// The certificate of a read_state answer, checked against the root key.
fn read_certificate(served: &Served, body: &[u8]) -> Certificate {
    #[derive(serde::Deserialize)]
    struct Certified {
        #[serde(with = "serde_bytes")]
        certificate: Vec<u8>,
    }
    let certified: Certified = serde_cbor::from_slice(body).unwrap();
    verified(served, &certified.certificate)
}

fn verified(served: &Served, bytes: &[u8]) -> Certificate {
    crate::common::verified_certificate(&served.root_key(), bytes)
}

fn lookup<'a>(certificate: &'a Certificate, path: &[&[u8]]) -> Option<&'a [u8]> {
    match certificate.tree.lookup_path(path) {
        LookupResult::Found(value) => Some(value),
        _ => None,
    }
}

fn label(bytes: &[u8]) -> Label {
    bytes.to_vec().into()
}

/// An anonymous query of the chat's `dump`, as an envelope.
fn anonymous_dump(chat: Principal) -> Vec<u8> {
    let query = EnvelopeContent::Query {
        ingress_expiry: now() + 60_000_000_000,
        sender: Principal::anonymous(),
        canister_id: chat,
        method_name: "dump".into(),
        arg: Encode!().unwrap(),
        nonce: None,
        sender_info: None,
    };
    envelope(query, None)
}

/// A read_state of `paths` signed by `key`, sent to `endpoint` (`canister/<id>` or
/// `subnet/<id>`): the HTTP status and body.
fn read_state(
    served: &Served,
    key: &Key,
    endpoint: &str,
    paths: Vec<Vec<Label>>,
) -> (u16, Vec<u8>) {
    let read = EnvelopeContent::ReadState {
        ingress_expiry: now() + 60_000_000_000,
        sender: principal_of(key),
        paths,
    };
    post(
        served.address(),
        &format!("/api/v3/{endpoint}/read_state"),
        &envelope(read, Some(key)),
    )
}

#[test]
fn a_signed_call_gets_a_certified_reply_that_a_tampered_copy_fails() {
    let (served, chat) = start();
    let key = ic_ed25519::PrivateKey::generate();
    let (status, body, request_id) = http_client::call_v4(
        served.address(),
        Some(&key),
        chat,
        chat,
        "append",
        Encode!(&"Hi there!").unwrap(),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let mut certificate = certificate(&served, &body);
    let status_path: &[&[u8]] = &[b"request_status", request_id.as_slice(), b"status"];
    assert_eq!(
        lookup(&certificate, status_path),
        Some(b"replied".as_slice())
    );
    assert!(lookup(&certificate, &[b"time"]).is_some());

    // A certificate whose tree was changed no longer matches its signature.
    certificate.tree = ic_certification::hash_tree::leaf(b"forged".to_vec());
    let message = [b"\x0Dic-state-root".as_slice(), &certificate.tree.digest()].concat();
    assert!(
        ic_verify_bls_signature::verify_bls_signature(
            &certificate.signature,
            &message,
            &served.root_key()[37..]
        )
        .is_err()
    );
}

#[test]
fn a_non_controller_gets_the_ic_answer_for_management_calls() {
    let (served, chat) = start();
    let key = ic_ed25519::PrivateKey::generate();
    let arg =
        Encode!(&ic_management_canister_types::CanisterIdRecord { canister_id: chat }).unwrap();
    let (status, body, request_id) = http_client::call_v4(
        served.address(),
        Some(&key),
        Principal::management_canister(),
        chat,
        "stop_canister",
        arg,
    );
    // Refused before it runs, as the IC's ingress filter refuses it: answered at once, with
    // no certificate and no status to read later.
    assert_eq!(status, 200);
    let TransportCallResponse::NonReplicatedRejection(reject) =
        serde_cbor::from_slice(&body).unwrap()
    else {
        panic!("not a non-replicated rejection");
    };
    assert_eq!(reject.reject_code as u64, 5);
    assert_eq!(reject.error_code.as_deref(), Some("IC0512"));
    let paths = vec![vec![label(b"request_status"), label(request_id.as_slice())]];
    let (status, body) = read_state(&served, &key, &format!("canister/{chat}"), paths);
    assert_eq!(status, 200);
    let status_path: [&[u8]; 3] = [b"request_status", request_id.as_slice(), b"status"];
    assert!(
        matches!(
            read_certificate(&served, &body)
                .tree
                .lookup_path(status_path),
            LookupResult::Absent
        ),
        "no status was recorded"
    );
}

#[test]
fn eight_concurrent_clients_lose_no_append() {
    let (served, chat) = start();
    let address = served.address();
    let clients: Vec<_> = (0..8)
        .map(|client| {
            std::thread::spawn(move || {
                let key = ic_ed25519::PrivateKey::generate();
                for n in 0..25 {
                    let message = format!("client {client} message {n}");
                    let content = call_content(
                        principal_of(&key),
                        chat,
                        "append",
                        Encode!(&message).unwrap(),
                        now() + 60_000_000_000,
                    );
                    let (status, _) = post(
                        address,
                        &format!("/api/v4/canister/{chat}/call"),
                        &envelope(content, Some(&key)),
                    );
                    assert_eq!(status, 200);
                }
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    let (status, body) = post(
        address,
        &format!("/api/v3/canister/{chat}/query"),
        &anonymous_dump(chat),
    );
    assert_eq!(status, 200);
    let response: ic_transport_types::QueryResponse = serde_cbor::from_slice(&body).unwrap();
    let ic_transport_types::QueryResponse::Replied { reply, signatures } = response else {
        panic!("rejected")
    };
    assert_eq!(signatures.len(), 1, "queries are signed by the node");
    let mut messages = Decode!(&reply.arg, Vec<String>).unwrap();
    assert_eq!(messages.len(), 200);
    messages.sort();
    messages.dedup();
    assert_eq!(messages.len(), 200, "no message lost or duplicated");
}

#[test]
fn the_root_key_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let first = {
        let replica = replica::Replica::open(dir.path()).unwrap();
        replica.keys().unwrap().root_der
    };
    let replica = replica::Replica::open(dir.path()).unwrap();
    let again = replica.keys().unwrap();
    assert_eq!(
        again.root_der, first,
        "a client's pinned root key stays valid"
    );
    assert_eq!(again.root_der.len(), 133);
}

#[test]
fn the_secret_keys_are_the_owners_alone_and_refused_when_others_can_read_them() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let replica = replica::Replica::open(dir.path()).unwrap();
    replica.keys().unwrap();
    let keys = dir.path().join("keys");
    let mode = std::fs::metadata(&keys).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "written {mode:o}");

    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o644)).unwrap();
    let Err(refused) = replica.keys() else {
        panic!("keys readable by others were used");
    };
    assert_eq!(
        refused.to_string(),
        format!(
            "{} holds the replica's secret keys but others can read it (mode 644); make it the owner's alone with `chmod 600 {}`",
            keys.display(),
            keys.display()
        )
    );
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o600)).unwrap();
    replica.keys().unwrap();
}

/// A call of the counter's `inc` signed by `key`, expiring in a minute: its request id and
/// envelope.
fn signed_inc(key: &Key, counter: Principal) -> (ic_transport_types::RequestId, Vec<u8>) {
    let content = call_content(
        principal_of(key),
        counter,
        "inc",
        Vec::new(),
        now() + 60_000_000_000,
    );
    (content.to_request_id(), envelope(content, Some(key)))
}

#[test]
fn a_request_sent_again_after_a_restart_is_answered_from_the_kept_history() {
    let mut local = Local::new();
    let counter = local.deploy(wat(COUNTER));
    let served = Served::new(local);
    let key = Key::generate();
    let (request_id, signed) = signed_inc(&key, counter);
    let path = format!("/api/v4/canister/{counter}/call");
    let count = |n: u8| Some([n, 0, 0, 0].repeat(3));
    let (status, first) = post(served.address(), &path, &signed);
    assert_eq!(status, 200);
    let reply = |served: &Served, body: &[u8]| {
        lookup(
            &certificate(served, body),
            &[b"request_status", request_id.as_slice(), b"reply"],
        )
        .map(<[u8]>::to_vec)
    };
    assert_eq!(reply(&served, &first), count(1));

    let served = served.restart();
    let (status, again) = post(served.address(), &path, &signed);
    assert_eq!(status, 200);
    assert_eq!(
        reply(&served, &again),
        count(1),
        "answered from the history: the counter did not run again"
    );
    // A new call proves the counter stands at 1: it answers 2.
    let (fresh_id, fresh) = signed_inc(&key, counter);
    let (_, body) = post(served.address(), &path, &fresh);
    let answered = lookup(
        &certificate(&served, &body),
        &[b"request_status", fresh_id.as_slice(), b"reply"],
    )
    .map(<[u8]>::to_vec);
    assert_eq!(answered, count(2));
    let log = std::fs::metadata(served.dir().join("ingress-history")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        log.permissions().mode() & 0o777,
        0o600,
        "replies are the owner's"
    );
}

#[test]
fn a_request_sent_again_is_answered_without_running_again() {
    let mut local = Local::new();
    let counter = local.deploy(wat(COUNTER));
    let served = Served::new(local);
    let key = Key::generate();
    let (request_id, signed) = signed_inc(&key, counter);
    let send = |version: &str| {
        post(
            served.address(),
            &format!("/api/{version}/canister/{counter}/call"),
            &signed,
        )
    };
    let reply = |body: &[u8]| {
        let certificate = certificate(&served, body);
        lookup(
            &certificate,
            &[b"request_status", request_id.as_slice(), b"reply"],
        )
        .map(<[u8]>::to_vec)
    };
    // The counter's reply: its count in the heap, a global and stable memory.
    let count = |n: u8| Some([n, 0, 0, 0].repeat(3));

    let (status, first) = send("v4");
    assert_eq!(status, 200);
    assert_eq!(reply(&first), count(1));
    assert_eq!(
        send("v2").0,
        202,
        "accepted, as the IC answers a known request"
    );
    let (status, again) = send("v3");
    assert_eq!(status, 200);
    assert_eq!(reply(&again), count(1), "the first run's reply");

    let (status, body, next_id) = http_client::call_v4(
        served.address(),
        Some(&key),
        counter,
        counter,
        "inc",
        Vec::new(),
    );
    assert_eq!(status, 200);
    let next = http_client::certified_status(&body, &next_id);
    assert_eq!(
        next(b"reply"),
        count(2),
        "the counter went up once for the three copies"
    );
}

#[test]
fn read_state_serves_the_paths_the_spec_allows_to_whom_it_allows_them() {
    let (served, chat) = start();
    let key = Key::generate();
    let (status, _, request_id) = http_client::call_v4(
        served.address(),
        Some(&key),
        chat,
        chat,
        "append",
        Encode!(&"Hi there!").unwrap(),
    );
    assert_eq!(status, 200);
    let at_chat = format!("canister/{chat}");
    let status_of = |id: &[u8], leaf: &[u8]| vec![label(b"request_status"), label(id), label(leaf)];

    // Its sender reads a request's status, any of its leaves in one read_state.
    let paths = vec![
        status_of(request_id.as_slice(), b"status"),
        status_of(request_id.as_slice(), b"reply"),
    ];
    let (status, body) = read_state(&served, &key, &at_chat, paths);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let certificate = read_certificate(&served, &body);
    let at = |id: &[u8], leaf: &[u8]| lookup(&certificate, &[b"request_status", id, leaf]);
    assert_eq!(
        at(request_id.as_slice(), b"status"),
        Some(b"replied".as_slice())
    );
    assert!(at(request_id.as_slice(), b"reply").is_some());

    // Anyone may ask about a request that is not there: the certificate proves it absent.
    let unknown = [7; 32];
    let (status, body) = read_state(
        &served,
        &Key::generate(),
        &at_chat,
        vec![status_of(&unknown, b"status")],
    );
    assert_eq!(status, 200);
    let certificate = read_certificate(&served, &body);
    assert!(matches!(
        certificate
            .tree
            .lookup_path([b"request_status".as_slice(), &unknown, b"status"]),
        LookupResult::Absent
    ));

    // No paths at all: the time; the subnet at a canister's endpoint and its ranges at the
    // subnet's, as ic-agent reads them.
    let subnet = Principal::self_authenticating(served.root_key());
    let at_subnet = format!("subnet/{subnet}");
    for (endpoint, paths) in [
        (&at_chat, vec![]),
        (&at_chat, vec![vec![label(b"subnet")]]),
        (
            &at_subnet,
            vec![vec![label(b"canister_ranges"), label(subnet.as_slice())]],
        ),
    ] {
        let (status, body) = read_state(&served, &key, endpoint, paths);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        assert!(lookup(&read_certificate(&served, &body), &[b"time"]).is_some());
    }
}

#[test]
fn private_metadata_is_for_the_controllers_and_public_metadata_for_all() {
    const WITH_METADATA: &str =
        r#"(module (@custom "icp:private secret" "hush") (@custom "icp:public motto" "hello"))"#;
    let admin = Key::generate();
    let stranger = Key::generate();
    let mut local = Local::new();
    let canister = local.deploy(wat(WITH_METADATA));
    let settings = ic_management_canister_types::CanisterSettings {
        controllers: Some(vec![user(), principal_of(&admin)]),
        ..Default::default()
    };
    local.update_settings(canister, settings);
    let served = Served::new(local);
    let endpoint = format!("canister/{canister}");
    let read = |key: &Key, name: &[u8]| {
        let path = vec![
            label(b"canister"),
            label(canister.as_slice()),
            label(b"metadata"),
            label(name),
        ];
        let (status, body) = read_state(&served, key, &endpoint, vec![path]);
        let value = (status == 200).then(|| {
            let certificate = read_certificate(&served, &body);
            lookup(
                &certificate,
                &[b"canister", canister.as_slice(), b"metadata", name],
            )
            .map(<[u8]>::to_vec)
        });
        (status, value, String::from_utf8_lossy(&body).into_owned())
    };

    let (status, _, text) = read(&stranger, b"secret");
    assert_eq!(status, 403);
    assert_eq!(
        text,
        "Custom section secret can only be requested by the controllers of the canister."
    );
    assert_eq!(read(&admin, b"secret").1, Some(Some(b"hush".to_vec())));
    assert_eq!(read(&stranger, b"motto").1, Some(Some(b"hello".to_vec())));
    assert_eq!(read(&stranger, b"none").1, Some(None), "proven absent");
}

#[test]
fn browsers_on_any_origin_may_call() {
    let (served, chat) = start();
    let path = format!("/api/v3/canister/{chat}/query");
    let origin = "Origin: http://localhost:5173";
    let (preflight, _) = exchange(
        served.address(),
        &format!(
            "OPTIONS {path} HTTP/1.1\r\nHost: x\r\n{origin}\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type"
        ),
        b"",
    );
    let preflight = preflight.to_ascii_lowercase();
    assert!(preflight.starts_with("http/1.1 200"), "{preflight}");
    for allowed in [
        "access-control-allow-origin: *",
        "access-control-allow-methods: get, post",
        "access-control-allow-headers: content-type",
    ] {
        assert!(
            preflight.contains(allowed),
            "{allowed:?} not in {preflight}"
        );
    }

    let body = anonymous_dump(chat);
    let (answer, _) = exchange(
        served.address(),
        &format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\n{origin}\r\nContent-Type: application/cbor\r\nContent-Length: {}",
            body.len()
        ),
        &body,
    );
    let answer = answer.to_ascii_lowercase();
    assert!(answer.starts_with("http/1.1 200"), "{answer}");
    assert!(
        answer.contains("access-control-allow-origin: *"),
        "{answer}"
    );
}
