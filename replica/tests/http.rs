//! The HTTP interface as the IC answers it, with requests built and signed here: certified
//! replies whose signature verifies against the root key (and not once tampered with),
//! non-controllers, and 8 clients appending at once losing nothing. Refused requests are in
//! `bad_input.rs`.

mod common;
#[path = "common/http_client.rs"]
mod http_client;

use candid::{Decode, Encode, Principal};
use common::{Local, Served, chat_wasm};
use http_client::{call_content, envelope, now, post, principal_of};
use ic_certification::{Certificate, LookupResult};
use ic_transport_types::EnvelopeContent;

/// The chat canister, deployed and served.
fn start() -> (Served, Principal) {
    let mut local = Local::new();
    let chat = local.deploy(chat_wasm());
    (Served::new(local), chat)
}

/// The certificate of a synchronous call's reply, checked against the root key.
fn certificate(served: &Served, body: &[u8]) -> Certificate {
    #[derive(serde::Deserialize)]
    struct Replied {
        status: String,
        #[serde(with = "serde_bytes")]
        certificate: Vec<u8>,
    }
    let replied: Replied = serde_cbor::from_slice(body).unwrap();
    assert_eq!(replied.status, "replied");
    let certificate: Certificate = serde_cbor::from_slice(&replied.certificate).unwrap();
    let message = [b"\x0Dic-state-root".as_slice(), &certificate.tree.digest()].concat();
    let key = &served.root_key()[37..];
    ic_verify_bls_signature::verify_bls_signature(&certificate.signature, &message, key)
        .expect("the root key signed it");
    certificate
}

fn lookup<'a>(certificate: &'a Certificate, path: &[&[u8]]) -> Option<&'a [u8]> {
    match certificate.tree.lookup_path(path) {
        LookupResult::Found(value) => Some(value),
        _ => None,
    }
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
    assert_eq!(status, 200);
    let certificate = certificate(&served, &body);
    let at = |leaf: &'static [u8]| {
        lookup(
            &certificate,
            &[b"request_status", request_id.as_slice(), leaf],
        )
        .map(<[u8]>::to_vec)
    };
    assert_eq!(at(b"status"), Some(b"rejected".to_vec()));
    assert_eq!(at(b"reject_code"), Some(vec![5]));
    assert_eq!(at(b"error_code"), Some(b"IC0512".to_vec()));
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
    let query = EnvelopeContent::Query {
        ingress_expiry: now() + 60_000_000_000,
        sender: Principal::anonymous(),
        canister_id: chat,
        method_name: "dump".into(),
        arg: Encode!().unwrap(),
        nonce: None,
        sender_info: None,
    };
    let (status, body) = post(
        address,
        &format!("/api/v3/canister/{chat}/query"),
        &envelope(query, None),
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
        replica::http::Keys::load_or_create(&replica)
            .unwrap()
            .root_der
    };
    let replica = replica::Replica::open(dir.path()).unwrap();
    let again = replica::http::Keys::load_or_create(&replica).unwrap();
    assert_eq!(
        again.root_der, first,
        "a client's pinned root key stays valid"
    );
    assert_eq!(again.root_der.len(), 133);
}
