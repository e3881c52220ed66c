//! The identifiers a user types and the tool prints: snapshot ids, as dfx and icp-cli show
//! them.

use std::{fmt, str::FromStr};

use anyhow::{Result, bail};
use serde::Serialize;

use crate::project;

/// A snapshot id: raw bytes, shown and parsed as lowercase hex as dfx and icp-cli do.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SnapshotId(pub Vec<u8>);

impl fmt::Display for SnapshotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&project::hex(&self.0))
    }
}

impl FromStr for SnapshotId {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> Result<Self> {
        match project::unhex(text).filter(|bytes| bytes.len() >= 9) {
            Some(bytes) => Ok(Self(bytes)),
            None => bail!(
                "malformed snapshot id `{text}`: expected an even number of hex digits (at least 18), like 000000000000000080000000001000010101; `cargo xtask list` shows the ids"
            ),
        }
    }
}

impl SnapshotId {
    /// The canister the snapshot belongs to: the IC's ids are an 8-byte counter followed by
    /// the canister id (IC interface spec, "Canister snapshots").
    pub fn canister(&self) -> Option<candid::Principal> {
        candid::Principal::try_from_slice(self.0.get(8..)?).ok()
    }
}

impl Serialize for SnapshotId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_ids_parse_as_hex_and_refuse_anything_else() {
        let id: SnapshotId = "000000000000000080000000001000010101".parse().unwrap();
        assert_eq!(id.0.len(), 18);
        assert_eq!(id.to_string(), "000000000000000080000000001000010101");
        for bad in [
            "xyz",
            "0000",
            "00000000000000008000000000100001010",
            "g00000000000000080000000001000010101",
        ] {
            assert!(bad.parse::<SnapshotId>().is_err(), "{bad}");
        }
    }
}
