//! A minimal client of the IC HTTP interface for tests and benchmarks: HTTP/1.1 exchanges and
//! envelopes signed with Ed25519 (or anonymous).
#![allow(dead_code)]

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    time::{SystemTime, UNIX_EPOCH},
};

use candid::Principal;
use ic_transport_types::{Envelope, EnvelopeContent};

/// A minimal HTTP/1.1 POST; returns the status code and the body.
pub fn post(address: SocketAddr, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/cbor\r\nContent-Length: {}",
        body.len()
    );
    let (answer_head, body) = exchange(address, &head, body);
    let status = answer_head[9..12].parse().unwrap();
    (status, body)
}

/// A kept-alive HTTP/1.1 connection, as clients such as ic-agent keep one to a replica:
/// POSTs one after another on it.
pub struct Connection {
    stream: std::io::BufReader<TcpStream>,
    address: SocketAddr,
}

impl Connection {
    pub fn open(address: SocketAddr) -> Self {
        let stream = TcpStream::connect(address).unwrap();
        stream.set_nodelay(true).unwrap();
        Self {
            stream: std::io::BufReader::new(stream),
            address,
        }
    }

    /// A POST on this connection; returns the status code and the body.
    pub fn post(&mut self, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
        use std::io::BufRead;
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/cbor\r\nContent-Length: {}\r\n\r\n",
            self.address,
            body.len()
        );
        let request = [head.as_bytes(), body].concat();
        self.stream.get_mut().write_all(&request).unwrap();
        let mut status = 0;
        let mut length = 0;
        loop {
            let mut line = String::new();
            self.stream.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some(code) = line.strip_prefix("HTTP/1.1 ") {
                status = code[..3].parse().unwrap();
            }
            let lower = line.to_ascii_lowercase();
            if let Some(value) = lower.strip_prefix("content-length:") {
                length = value.trim().parse().unwrap();
            }
        }
        let mut answer = vec![0; length];
        self.stream.read_exact(&mut answer).unwrap();
        (status, answer)
    }
}

/// One HTTP/1.1 exchange on its own connection: `head` is the request line and headers
/// (without the blank line that ends them; `Connection: close` is added). Returns the
/// answer's status line and headers, as text, and its body.
///
/// The server may answer before it has read the whole body (a 413) and close the
/// connection, so the request is written while the answer is read, and a write cut off
/// after the answer came is no failure.
pub fn exchange(address: SocketAddr, head: &str, body: &[u8]) -> (String, Vec<u8>) {
    let mut stream = TcpStream::connect(address).unwrap();
    let request = [head.as_bytes(), b"\r\nConnection: close\r\n\r\n", body].concat();
    let mut writer = stream.try_clone().unwrap();
    let sending = std::thread::spawn(move || writer.write_all(&request));
    let mut response = Vec::new();
    let read = stream.read_to_end(&mut response);
    let sent = sending.join().unwrap();
    let Some(split) = response.windows(4).position(|w| w == b"\r\n\r\n") else {
        panic!("no HTTP answer to {head:?}: reading gave {read:?}, writing {sent:?}");
    };
    let answer_head = String::from_utf8_lossy(&response[..split]).into_owned();
    (answer_head, response[split + 4..].to_vec())
}

/// A JSON request (PocketIC's REST interface) on its own connection: the status and the
/// body as JSON (`null` when empty or not JSON).
pub fn json(
    address: SocketAddr,
    method: &str,
    path: &str,
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    let body = serde_json::to_vec(body).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}",
        body.len()
    );
    let (head, answer) = exchange(address, &head, &body);
    let status = head[9..12].parse().unwrap();
    (
        status,
        serde_json::from_slice(&answer).unwrap_or(serde_json::Value::Null),
    )
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

pub fn call_content(
    sender: Principal,
    canister: Principal,
    method: &str,
    arg: Vec<u8>,
    expiry: u64,
) -> EnvelopeContent {
    EnvelopeContent::Call {
        nonce: Some(now().to_be_bytes().to_vec()),
        ingress_expiry: expiry,
        sender,
        canister_id: canister,
        method_name: method.into(),
        arg,
        sender_info: None,
    }
}

/// An envelope signed by `key` (or unsigned, for the anonymous sender).
pub fn envelope(content: EnvelopeContent, key: Option<&ic_ed25519::PrivateKey>) -> Vec<u8> {
    let (pubkey, sig) = match key {
        Some(key) => {
            let message = [
                b"\x0Aic-request".as_slice(),
                content.to_request_id().as_slice(),
            ]
            .concat();
            (
                Some(key.public_key().serialize_rfc8410_der()),
                Some(key.sign_message(&message).to_vec()),
            )
        }
        None => (None, None),
    };
    Envelope {
        content: std::borrow::Cow::Owned(content),
        sender_pubkey: pubkey,
        sender_sig: sig,
        sender_delegation: None,
    }
    .encode_bytes()
}

pub fn principal_of(key: &ic_ed25519::PrivateKey) -> Principal {
    Principal::self_authenticating(key.public_key().serialize_rfc8410_der())
}

/// A synchronous call (`/api/v4/canister/<effective>/call`) signed by `key` (anonymous
/// without one), expiring in a minute: the HTTP status, the body and the request id.
pub fn call_v4(
    address: SocketAddr,
    key: Option<&ic_ed25519::PrivateKey>,
    canister: Principal,
    effective: Principal,
    method: &str,
    arg: Vec<u8>,
) -> (u16, Vec<u8>, ic_transport_types::RequestId) {
    let sender = key.map_or(Principal::anonymous(), principal_of);
    let content = call_content(sender, canister, method, arg, now() + 60_000_000_000);
    let request_id = content.to_request_id();
    let path = format!("/api/v4/canister/{effective}/call");
    let (status, body) = post(address, &path, &envelope(content, key));
    (status, body, request_id)
}

/// A leaf of `request_status/<request_id>` in the certificate of a synchronous call's
/// answer (`/api/v4/…/call`): `reply`, `reject_code`, `reject_message`, `error_code`.
pub fn certified_status(
    body: &[u8],
    request_id: &ic_transport_types::RequestId,
) -> impl Fn(&[u8]) -> Option<Vec<u8>> {
    #[derive(serde::Deserialize)]
    struct Replied {
        #[serde(with = "serde_bytes")]
        certificate: Vec<u8>,
    }
    let replied: Replied = serde_cbor::from_slice(body).unwrap();
    let certificate: ic_certification::Certificate =
        serde_cbor::from_slice(&replied.certificate).unwrap();
    let request_id = *request_id;
    move |leaf| {
        let path: [&[u8]; 3] = [b"request_status", request_id.as_slice(), leaf];
        match certificate.tree.lookup_path(path) {
            ic_certification::LookupResult::Found(value) => Some(value.to_vec()),
            _ => None,
        }
    }
}
