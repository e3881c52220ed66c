//! Checking a request as the IC does (IC interface spec, "Authentication" and "Request
//! ids"): the CBOR envelope, its request id, the expiry window, the sender against its key,
//! signatures (Ed25519, ECDSA secp256k1 and P-256) and delegation chains, and the effective
//! canister id.

use candid::Principal;
use ic_management_canister_types as ic;
use ic_transport_types::{
    DelegationPermissions, Envelope, EnvelopeContent, RequestId, SignedDelegation,
};

use crate::candid_args;

/// Ingress may expire at most this far ahead (5 minutes), plus clock skew.
const MAX_EXPIRY_AHEAD_NS: u64 = (5 * 60 + 30) * 1_000_000_000;
const MAX_DELEGATIONS: usize = 20;
/// The most canisters one delegation may name (IC interface spec, "Authentication").
const MAX_TARGETS: usize = 1000;
const ED25519_DER_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// Why a request is refused: answered with HTTP 400 and this text.
#[derive(Debug)]
pub struct BadRequest(pub String);

fn bad(message: impl Into<String>) -> BadRequest {
    BadRequest(message.into())
}

/// A request that passed every check.
pub struct Ingress {
    pub content: EnvelopeContent,
    pub request_id: RequestId,
    /// Canisters the delegations allow, if they restrict them.
    targets: Option<Vec<Principal>>,
}

impl Ingress {
    pub fn sender(&self) -> Principal {
        *self.content.sender()
    }

    /// Whether the delegations let this request reach `canister`.
    pub fn may_target(&self, canister: &Principal) -> bool {
        self.targets.as_ref().is_none_or(|t| t.contains(canister))
    }
}

/// Decodes and authenticates an envelope received at `now` (ns since the epoch).
pub fn authenticate(body: &[u8], now: u64) -> Result<Ingress, BadRequest> {
    let envelope: Envelope = serde_cbor::from_slice(body)
        .map_err(|e| bad(format!("the body is not a CBOR request envelope: {e}")))?;
    let content = envelope.content.into_owned();
    let request_id = content.to_request_id();
    let expiry = content.ingress_expiry();
    if expiry < now {
        return Err(bad(format!(
            "the request expired: ingress_expiry {expiry} is before the replica's time {now}; check the client's clock"
        )));
    }
    if expiry > now + MAX_EXPIRY_AHEAD_NS {
        return Err(bad(format!(
            "ingress_expiry {expiry} is more than 5 minutes after the replica's time {now}; check the client's clock"
        )));
    }
    let sender = *content.sender();
    let targets = if sender == Principal::anonymous() {
        if envelope.sender_pubkey.is_some()
            || envelope.sender_sig.is_some()
            || envelope.sender_delegation.is_some()
        {
            return Err(bad(
                "an anonymous request must carry no key, signature or delegation",
            ));
        }
        None
    } else {
        let (Some(pubkey), Some(signature)) = (envelope.sender_pubkey, envelope.sender_sig) else {
            return Err(bad(format!(
                "the request from {sender} is not signed: sender_pubkey and sender_sig are required"
            )));
        };
        if Principal::self_authenticating(&pubkey) != sender {
            return Err(bad(format!(
                "the sender {sender} does not match the public key that signed the request"
            )));
        }
        let delegations = envelope.sender_delegation.unwrap_or_default();
        let chain = follow_delegations(pubkey, &delegations, now)?;
        let message = [b"\x0Aic-request".as_slice(), request_id.as_slice()].concat();
        verify(&chain.signer, &message, &signature)
            .map_err(|e| bad(format!("the request signature is invalid: {e}")))?;
        // IC interface spec, "Authentication": a delegation with `permissions = queries`
        // admits only queries and read_state requests.
        if chain.queries_only && matches!(content, EnvelopeContent::Call { .. }) {
            return Err(bad(
                "a delegation in the chain permits only queries and read_state requests, not calls; sign calls with a delegation that permits all requests",
            ));
        }
        chain.targets
    };
    Ok(Ingress {
        content,
        request_id,
        targets,
    })
}

/// What a checked delegation chain allows.
struct Chain {
    /// The key that must sign the request.
    signer: Vec<u8>,
    /// The canisters the request may reach (the intersection of all targets); any if `None`.
    targets: Option<Vec<Principal>>,
    /// Whether a delegation limits the request to queries and read_state.
    queries_only: bool,
}

/// Checks a delegation chain from `pubkey`.
fn follow_delegations(
    pubkey: Vec<u8>,
    chain: &[SignedDelegation],
    now: u64,
) -> Result<Chain, BadRequest> {
    if chain.len() > MAX_DELEGATIONS {
        return Err(bad(format!(
            "at most {MAX_DELEGATIONS} delegations are allowed, not {}",
            chain.len()
        )));
    }
    let mut signer = pubkey;
    let mut targets: Option<Vec<Principal>> = None;
    let mut queries_only = false;
    for (i, link) in chain.iter().enumerate() {
        let delegation = &link.delegation;
        verify(&signer, &delegation.signable(), &link.signature)
            .map_err(|e| bad(format!("delegation {i} has an invalid signature: {e}")))?;
        if delegation.expiration < now {
            return Err(bad(format!(
                "delegation {i} expired at {}",
                delegation.expiration
            )));
        }
        if let Some(allowed) = &delegation.targets {
            if allowed.len() > MAX_TARGETS {
                return Err(bad(format!(
                    "delegation {i} names {} targets; at most {MAX_TARGETS} are allowed",
                    allowed.len()
                )));
            }
            targets = Some(match targets {
                None => allowed.clone(),
                Some(previous) => previous
                    .into_iter()
                    .filter(|t| allowed.contains(t))
                    .collect(),
            });
        }
        queries_only |= delegation.permissions == Some(DelegationPermissions::Queries);
        signer = delegation.pubkey.clone();
    }
    Ok(Chain {
        signer,
        targets,
        queries_only,
    })
}

/// Verifies `signature` over `message` with a DER public key of a supported kind.
fn verify(der: &[u8], message: &[u8], signature: &[u8]) -> Result<(), String> {
    if der.starts_with(&ED25519_DER_PREFIX) {
        let key = ic_ed25519::PublicKey::deserialize_rfc8410_der(der)
            .map_err(|e| format!("bad Ed25519 key: {e:?}"))?;
        return key
            .verify_signature(message, signature)
            .map_err(|e| format!("Ed25519: {e:?}"));
    }
    if let Ok(key) = ic_secp256k1::PublicKey::deserialize_der(der) {
        return if key.verify_ecdsa_signature_with_malleability(message, signature) {
            Ok(())
        } else {
            Err("ECDSA secp256k1 signature does not verify".into())
        };
    }
    if let Ok(key) =
        <p256::ecdsa::VerifyingKey as p256::pkcs8::DecodePublicKey>::from_public_key_der(der)
    {
        use p256::ecdsa::signature::Verifier;
        let signature = p256::ecdsa::Signature::from_slice(signature)
            .map_err(|e| format!("bad P-256 signature: {e}"))?;
        return key
            .verify(message, &signature)
            .map_err(|_| "ECDSA P-256 signature does not verify".into());
    }
    Err("the public key is of a kind this replica does not verify (supported: Ed25519, ECDSA secp256k1 and P-256)".into())
}

/// The canister a call is really for: the callee, or for management calls the canister named
/// in the argument (IC interface spec, "Effective canister id"); `None` when any will do.
pub fn effective_canister(canister: &Principal, method: &str, arg: &[u8]) -> Option<Principal> {
    if *canister != Principal::management_canister() {
        return Some(*canister);
    }
    match method {
        "create_canister" | "provisional_create_canister_with_cycles" => None,
        "install_chunked_code" => candid_args::decode_part::<ic::InstallChunkedCodeArgs>(arg)
            .ok()
            .map(|a| a.target_canister),
        _ => candid_args::decode_part::<ic::CanisterIdRecord>(arg)
            .ok()
            .map(|a| a.canister_id),
    }
}
