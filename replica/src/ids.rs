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

/// The range of canister ids the subnet's state tree says are its (`canister_ranges`): all
/// of them, as this replica is the only subnet.
pub fn canister_range() -> (Principal, Principal) {
    (
        Principal::from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 1, 1]),
        Principal::from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 1]),
    )
}

pub fn snapshot_id(local_id: u64, canister: &Principal) -> Vec<u8> {
    let mut id = local_id.to_be_bytes().to_vec();
    id.extend_from_slice(canister.as_slice());
    id
}

/// A snapshot id as a caller gave it, read once: its bytes, and the counter and canister
/// they name when well formed (`None` for bytes no snapshot could have).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotId {
    bytes: Vec<u8>,
    parts: Option<(u64, Principal)>,
}

impl SnapshotId {
    pub fn parse(bytes: &[u8]) -> Self {
        let parts = (9..=37).contains(&bytes.len()).then(|| {
            let (local, canister) = bytes.split_at(8);
            let canister = Principal::try_from_slice(canister).ok()?;
            Some((u64::from_be_bytes(local.try_into().ok()?), canister))
        });
        Self {
            bytes: bytes.to_vec(),
            parts: parts.flatten(),
        }
    }

    /// The canister whose snapshot this id would be.
    pub fn owner(&self) -> Option<Principal> {
        self.parts.map(|(_, canister)| canister)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// The replica's own rendering of a snapshot id in messages: `<canister>-<n>`.
impl std::fmt::Display for SnapshotId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.parts {
            Some((local, canister)) => write!(f, "{canister}-{local}"),
            None => write!(f, "0x{}", crate::store::hex(&self.bytes)),
        }
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
        assert_eq!(SnapshotId::parse(&id).owner(), Some(canister));
        assert_eq!(
            SnapshotId::parse(&snapshot_id(7, &canister)).to_string(),
            format!("{canister}-7")
        );
        assert_eq!(SnapshotId::parse(&[0; 8]).owner(), None);
        assert_eq!(SnapshotId::parse(&[0xab; 3]).to_string(), "0xababab");
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
