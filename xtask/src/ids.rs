//! The identifiers a user types and the tool prints: canisters by name or id, and snapshot
//! ids, as dfx and icp-cli show them.

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

/// A canister as the user names it: a name, which the backend resolves (dfx through
/// dfx.json, icp-cli through icp.yaml, the embedded replica through the names it has
/// deployed), or a canister id, which means the same on every backend and network.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CanisterRef {
    Name(String),
    Id(candid::Principal),
}

impl CanisterRef {
    /// The canister the lifecycle drives when none is named.
    pub fn chat() -> Self {
        Self::Name("chat".into())
    }

    pub fn is_chat(&self) -> bool {
        *self == Self::chat()
    }
}

impl fmt::Display for CanisterRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(name) => f.write_str(name),
            Self::Id(id) => write!(f, "{id}"),
        }
    }
}

impl FromStr for CanisterRef {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> Result<Self> {
        if let Ok(id) = candid::Principal::from_text(text) {
            return Ok(Self::Id(id));
        }
        let name_like = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
        if !text.is_empty() && text.chars().all(name_like) {
            return Ok(Self::Name(text.to_owned()));
        }
        bail!(
            "`{text}` is neither a canister name (letters, digits, `-` and `_`, as in dfx.json or icp.yaml) nor a canister id (like bkyz2-fmaaa-aaaaa-qaaaq-cai)"
        )
    }
}

impl Serialize for CanisterRef {
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

    #[test]
    fn canisters_are_named_or_given_by_id() {
        let id: CanisterRef = "bkyz2-fmaaa-aaaaa-qaaaq-cai".parse().unwrap();
        assert!(matches!(id, CanisterRef::Id(_)));
        assert_eq!(id.to_string(), "bkyz2-fmaaa-aaaaa-qaaaq-cai");
        assert_eq!("chat".parse::<CanisterRef>().unwrap(), CanisterRef::chat());
        assert_eq!(
            "my_backend-2".parse::<CanisterRef>().unwrap(),
            CanisterRef::Name("my_backend-2".into())
        );
        for bad in ["", "a b", "chat;rm", "bkyz2-fmaaa-aaaaa-qaaaq-ca!"] {
            let error = bad.parse::<CanisterRef>().unwrap_err().to_string();
            assert!(error.contains("neither a canister name"), "{bad}: {error}");
        }
    }
}
