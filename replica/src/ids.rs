//! Identifiers: canister ids handed out by this replica and snapshot ids (IC interface spec,
//! "Canister snapshots": 8-byte big-endian local counter followed by the canister id).

use candid::Principal;

/// First canister index: the first canister gets the id dfx's local network gives its first
/// canister (`bkyz2-fmaaa-aaaaa-qaaaq-cai`), so ids look familiar.
const FIRST_CANISTER: u64 = 0x8000_0000_0010_0001;

/// The `n`-th canister this replica creates.
pub fn canister_id(n: u64) -> Principal {
    let mut bytes = (FIRST_CANISTER + n).to_be_bytes().to_vec();
    bytes.extend_from_slice(&[1, 1]);
    Principal::from_slice(&bytes)
}

pub fn snapshot_id(local_id: u64, canister: &Principal) -> Vec<u8> {
    let mut id = local_id.to_be_bytes().to_vec();
    id.extend_from_slice(canister.as_slice());
    id
}

/// Splits a snapshot id into its local counter and canister, if it is well formed.
pub fn parse_snapshot_id(id: &[u8]) -> Option<(u64, Principal)> {
    if !(9..=37).contains(&id.len()) {
        return None;
    }
    let (local, canister) = id.split_at(8);
    let canister = Principal::try_from_slice(canister).ok()?;
    Some((u64::from_be_bytes(local.try_into().ok()?), canister))
}

/// The replica's own rendering of a snapshot id in messages: `<canister>-<n>`.
pub fn display_snapshot_id(id: &[u8]) -> String {
    match parse_snapshot_id(id) {
        Some((local, canister)) => format!("{canister}-{local}"),
        None => format!("0x{}", crate::store::hex(id)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_ids_are_counter_then_canister() {
        let canister = Principal::from_text("bkyz2-fmaaa-aaaaa-qaaaq-cai").unwrap();
        let id = snapshot_id(0, &canister);
        assert_eq!(
            crate::store::hex(&id),
            "000000000000000080000000001000010101"
        );
        assert_eq!(parse_snapshot_id(&id), Some((0, canister)));
        assert_eq!(
            display_snapshot_id(&snapshot_id(7, &canister)),
            format!("{canister}-7")
        );
        assert_eq!(parse_snapshot_id(&[0; 8]), None);
    }

    #[test]
    fn canister_ids_count_up_from_the_first_application_range() {
        assert_eq!(canister_id(0).to_text(), "bkyz2-fmaaa-aaaaa-qaaaq-cai");
        assert_eq!(
            crate::store::hex(canister_id(1).as_slice()),
            "80000000001000020101"
        );
    }
}
