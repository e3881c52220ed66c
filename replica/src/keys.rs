//! The subnet's keys: the BLS root key that signs certificates and the Ed25519 node key
//! that signs query responses. Kept in the state directory, so a client that has pinned the
//! root key keeps trusting the replica across restarts. Made with the state, before anything
//! runs: the subnet's id is derived from the root key, and a canister asking `subnet_self`
//! gets the same answer in-process, served, and while the journal replays.

use std::io::Read;

use candid::Principal;
use ic_verify_bls_signature::PrivateKey as BlsKey;

use crate::{error::StoreError, store::Store};

/// DER prefix of a BLS12-381 G2 public key as the IC publishes it (IC interface spec,
/// "Certificate"); the 96-byte key follows.
const BLS_DER_PREFIX: [u8; 37] = [
    0x30, 0x81, 0x82, 0x30, 0x1d, 0x06, 0x0d, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0xdc, 0x7c, 0x05,
    0x03, 0x01, 0x02, 0x01, 0x06, 0x0c, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0xdc, 0x7c, 0x05, 0x03,
    0x02, 0x01, 0x03, 0x61, 0x00,
];

pub struct Keys {
    root: BlsKey,
    node: ic_ed25519::PrivateKey,
    /// The root public key, DER encoded (133 bytes).
    pub root_der: Vec<u8>,
    /// The node public key, DER encoded (44 bytes).
    pub node_der: Vec<u8>,
    pub subnet_id: Principal,
    pub node_id: Principal,
}

impl Keys {
    /// The keys kept with `replica`'s state, created on first use.
    pub fn load_or_create(store: &Store) -> Result<Self, StoreError> {
        let (path, bytes) =
            store.keep_file("keys", || Ok([bls_secret()?, random::<32>()?].concat()))?;
        let corrupt = || StoreError::Corrupt {
            path: path.clone(),
            what: "it does not hold a root key and a node key".into(),
        };
        if bytes.len() != 64 {
            return Err(corrupt());
        }
        let root = BlsKey::deserialize(&bytes[..32]).map_err(|_| corrupt())?;
        let node = ic_ed25519::PrivateKey::deserialize_raw_32(bytes[32..].try_into().expect("32"));
        let root_der = [&BLS_DER_PREFIX[..], &root.public_key().serialize()].concat();
        let node_der = node.public_key().serialize_rfc8410_der();
        Ok(Self {
            subnet_id: Principal::self_authenticating(&root_der),
            node_id: Principal::self_authenticating(&node_der),
            root,
            node,
            root_der,
            node_der,
        })
    }

    /// BLS signature of a certificate over `root_hash` (domain `ic-state-root`).
    pub fn sign_state(&self, root_hash: &[u8; 32]) -> Vec<u8> {
        let message = [b"\x0Dic-state-root".as_slice(), root_hash].concat();
        self.root.sign(&message).serialize().to_vec()
    }

    /// Ed25519 node signature of a query response's signable bytes.
    pub fn sign_response(&self, signable: &[u8]) -> Vec<u8> {
        self.node.sign_message(signable).to_vec()
    }
}

/// A random BLS secret: 32 random bytes that are a valid scalar.
fn bls_secret() -> Result<[u8; 32], StoreError> {
    loop {
        let bytes = random::<32>()?;
        if BlsKey::deserialize(&bytes).is_ok() {
            return Ok(bytes);
        }
    }
}

fn random<const N: usize>() -> Result<[u8; N], StoreError> {
    let mut bytes = [0; N];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(StoreError::io("/dev/urandom"))?;
    Ok(bytes)
}
