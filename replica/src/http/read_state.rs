//! Which state a read_state request may read (IC interface spec, "Request: Read state"): the
//! spec's limits on paths and labels, its allow-list of paths for each endpoint, the one
//! request id a request may ask about, and who may read a request's status or a private
//! metadata section. Answers follow the IC's: 400 for a malformed request, 403 for what the
//! sender may not see, 404 for a path outside the allow-list.

use axum::http::StatusCode;
use candid::Principal;
use ic_transport_types::RequestId;

use super::history::History;
use super::ingress::Ingress;
use crate::CanisterFacts;

/// At most this many paths in one request, of at most this many labels (IC interface spec,
/// "Request: Read state"); so a 4 MiB body cannot ask for more.
const MAX_PATHS: usize = 1000;
const MAX_LABELS: usize = 127;

/// A refusal: the HTTP status and the text the client gets.
pub type Refused = (StatusCode, String);

/// Where a read_state request was sent.
#[derive(Clone, Copy)]
pub enum Endpoint {
    /// `/api/v{2,3}/canister/<effective canister id>/read_state`.
    Canister(Principal),
    /// `/api/v{2,3}/subnet/<subnet id>/read_state`.
    Subnet(Principal),
}

/// Refuses more paths, or longer ones, than the spec allows, before any is looked at.
pub fn check_limits<Label>(paths: &[Vec<Label>]) -> Result<(), Refused> {
    if paths.len() > MAX_PATHS {
        return Err(bad_request(format!(
            "the read_state asks for {} paths; at most {MAX_PATHS} are allowed",
            paths.len()
        )));
    }
    match paths.iter().position(|p| p.len() > MAX_LABELS) {
        Some(i) => Err(bad_request(format!(
            "path {i} of the read_state has {} labels; at most {MAX_LABELS} are allowed",
            paths[i].len()
        ))),
        None => Ok(()),
    }
}

/// Checks every path against the allow-list and what `ingress`'s sender may read; returns
/// the one request whose status the paths ask for, if any.
pub fn check(
    paths: &[Vec<Vec<u8>>],
    endpoint: Endpoint,
    ingress: &Ingress,
    history: &History,
    canisters: &[CanisterFacts],
) -> Result<Option<RequestId>, Refused> {
    let mut asked: Option<RequestId> = None;
    for path in paths {
        let Some(id) = check_path(path, endpoint, ingress.sender(), canisters)? else {
            continue;
        };
        if let Some(first) = asked
            && first != id
        {
            return Err(bad_request(format!(
                "More than one request id in request_status paths: {} and {}; a read_state may ask about one request",
                hex(first.as_slice()),
                hex(id.as_slice())
            )));
        }
        asked = Some(id);
        may_read_status(&id, endpoint, ingress, history)?;
    }
    Ok(asked)
}

/// One path against the allow-list; the request id it names, for a `request_status` path.
fn check_path(
    path: &[Vec<u8>],
    endpoint: Endpoint,
    reader: Principal,
    canisters: &[CanisterFacts],
) -> Result<Option<RequestId>, Refused> {
    let labels: Vec<&[u8]> = path.iter().map(Vec::as_slice).collect();
    // `/subnet/<id>/canister_ranges` is served at every endpoint: this replica's subnet is
    // the root subnet, whose ranges the IC's v3 endpoints serve too.
    match (labels.as_slice(), endpoint) {
        ([b"time"], _)
        | (
            [b"api_boundary_nodes"]
            | [b"api_boundary_nodes", _]
            | [
                b"api_boundary_nodes",
                _,
                b"domain" | b"ipv4_address" | b"ipv6_address",
            ],
            _,
        )
        | (
            [b"subnet"]
            | [b"subnet", _]
            | [
                b"subnet",
                _,
                b"public_key" | b"type" | b"node" | b"canister_ranges",
            ]
            | [b"subnet", _, b"node", _]
            | [b"subnet", _, b"node", _, b"public_key"],
            _,
        )
        | ([b"canister_ranges", _], Endpoint::Subnet(_)) => Ok(None),
        ([b"subnet", subnet, b"metrics"], Endpoint::Subnet(effective)) => {
            same_principal(subnet, effective).map(|_| None)
        }
        (
            [b"canister", canister, b"module_hash" | b"controllers"],
            Endpoint::Canister(effective),
        ) => same_principal(canister, effective).map(|_| None),
        ([b"canister", canister, b"metadata", name], Endpoint::Canister(effective)) => {
            let name = std::str::from_utf8(name).map_err(|_| {
                bad_request("the custom section name in the metadata path is not UTF-8".into())
            })?;
            let canister = same_principal(canister, effective)?;
            may_read_metadata(canisters, canister, name, reader).map(|()| None)
        }
        (
            [b"request_status", id]
            | [
                b"request_status",
                id,
                b"status" | b"reply" | b"reject_code" | b"reject_message" | b"error_code",
            ],
            Endpoint::Canister(_),
        ) => request_id(id).map(Some),
        _ => Err((
            StatusCode::NOT_FOUND,
            format!(
                "Invalid path requested: {} is not a path read_state may read here",
                show(&labels)
            ),
        )),
    }
}

/// The principal `label` names, if it is the one the request was sent to.
fn same_principal(label: &[u8], effective: Principal) -> Result<Principal, Refused> {
    let named = Principal::try_from_slice(label).map_err(|_| {
        bad_request(format!(
            "the path names {} where a principal belongs",
            hex(label)
        ))
    })?;
    if named != effective {
        return Err(bad_request(format!(
            "the path is about {named} but the request went to {effective}; read_state of {named} must be sent to /api/v3/canister/{named}/read_state"
        )));
    }
    Ok(named)
}

fn request_id(label: &[u8]) -> Result<RequestId, Refused> {
    let id: [u8; 32] = label.try_into().map_err(|_| {
        bad_request(format!(
            "Invalid request id in paths: a request id has 32 bytes, this one {}",
            label.len()
        ))
    })?;
    Ok(RequestId::new(&id))
}

/// A request's status is its sender's, read through the effective canister id it was sent
/// to, within the sender's delegation targets; an unknown request may be asked about (the
/// certificate proves its absence).
fn may_read_status(
    id: &RequestId,
    endpoint: Endpoint,
    ingress: &Ingress,
    history: &History,
) -> Result<(), Refused> {
    let Some(entry) = history.get(id) else {
        return Ok(());
    };
    let forbidden = |message: String| Err((StatusCode::FORBIDDEN, message));
    if entry.sender != ingress.sender() {
        return forbidden("The user tries to access Request ID not signed by the caller.".into());
    }
    if !matches!(endpoint, Endpoint::Canister(effective) if effective == entry.effective) {
        return forbidden(format!(
            "request {} was sent to /api/v3/canister/{}; read its status there",
            hex(id.as_slice()),
            entry.effective
        ));
    }
    if !ingress.may_target(&entry.receiver) {
        return forbidden(
            "The user tries to access request IDs for canisters not belonging to sender delegation targets."
                .into(),
        );
    }
    Ok(())
}

/// A private (`icp:private`) section is its canister's controllers' only.
fn may_read_metadata(
    canisters: &[CanisterFacts],
    canister: Principal,
    name: &str,
    reader: Principal,
) -> Result<(), Refused> {
    let Some(facts) = canisters.iter().find(|c| c.id == canister) else {
        return Ok(());
    };
    let private = facts
        .metadata
        .iter()
        .any(|(public, section, _)| !public && section == name);
    if private && !facts.controllers.contains(&reader) {
        return Err((
            StatusCode::FORBIDDEN,
            format!(
                "Custom section {name:.100} can only be requested by the controllers of the canister."
            ),
        ));
    }
    Ok(())
}

fn bad_request(message: String) -> Refused {
    (StatusCode::BAD_REQUEST, message)
}

/// A path as a message shows it: text labels as text, others in hex, long ones cut.
fn show(labels: &[&[u8]]) -> String {
    const SHOWN_LABELS: usize = 4;
    const SHOWN_BYTES: usize = 32;
    let mut shown: String = labels
        .iter()
        .take(SHOWN_LABELS)
        .map(|label| {
            let cut = &label[..label.len().min(SHOWN_BYTES)];
            let text = match std::str::from_utf8(cut) {
                Ok(text) if text.chars().all(|c| c.is_ascii_graphic()) => text.to_owned(),
                _ => hex(cut),
            };
            let more = if cut.len() < label.len() { "…" } else { "" };
            format!("/{text}{more}")
        })
        .collect();
    if labels.len() > SHOWN_LABELS {
        shown.push_str("/…");
    }
    if shown.is_empty() {
        shown.push_str("the empty path");
    }
    shown
}

fn hex(bytes: &[u8]) -> String {
    let digits: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("0x{digits}")
}
