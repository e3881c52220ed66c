//! PocketIC's JSON shapes (the pocket-ic crate's `common::rest`), as this server reads and
//! writes them: bytes as base64 strings, principals as base64 of their bytes, results as
//! `{"Ok": …}` / `{"Err": …}`. Requests are read leniently — unknown fields ignored, missing
//! optional ones defaulted — since dfx and the three clients each send their own version's.

use std::path::PathBuf;

use candid::Principal;
use serde::{Deserialize, Serialize};

use crate::Reject;

/// Bytes as a base64 string.
pub mod b64 {
    use base64::{Engine, engine::general_purpose::STANDARD};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD
            .decode(text.as_bytes())
            .map_err(|e| serde::de::Error::custom(format!("not base64: {e}")))
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct InstanceConfig {
    pub subnet_config_set: SubnetConfigSet,
    pub http_gateway_config: Option<InstanceGatewayConfig>,
    pub state_dir: Option<PathBuf>,
    /// Feature name → its configuration (`null` when off).
    pub icp_features: Option<serde_json::Map<String, serde_json::Value>>,
    pub initial_time: Option<InitialTime>,
    pub bitcoind_addr: Option<Vec<String>>,
    pub dogecoind_addr: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SubnetConfigSet {
    pub nns: Option<SubnetSpec>,
    pub sns: Option<SubnetSpec>,
    pub ii: Option<SubnetSpec>,
    pub fiduciary: Option<SubnetSpec>,
    pub bitcoin: Option<SubnetSpec>,
    pub test_threshold_keys: Option<SubnetSpec>,
    pub system: Vec<SubnetSpec>,
    pub application: Vec<SubnetSpec>,
    pub cloud_engine: Vec<SubnetSpec>,
    pub verified_application: Vec<SubnetSpec>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SubnetSpec {
    /// `"New"` or `{"FromPath": …}`.
    pub state_config: serde_json::Value,
}

#[derive(Deserialize)]
pub enum InitialTime {
    Timestamp(RawTime),
    /// Its `artificial_delay_ms` is not read: rounds run every second, and whenever a
    /// request needs one.
    AutoProgress(serde::de::IgnoredAny),
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct InstanceGatewayConfig {
    pub ip_addr: Option<String>,
    pub port: Option<u16>,
    pub https_config: Option<serde_json::Value>,
}

#[derive(Deserialize)]
pub struct GatewayConfig {
    #[serde(default)]
    pub ip_addr: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
    pub forward_to: GatewayBackend,
    #[serde(default)]
    pub https_config: Option<serde_json::Value>,
}

#[derive(Deserialize)]
pub enum GatewayBackend {
    Replica(String),
    PocketIcInstance(usize),
}

#[derive(Serialize)]
pub struct GatewayInfo {
    pub instance_id: usize,
    pub port: u16,
}

#[derive(Serialize)]
pub enum CreateInstanceResponse {
    Created {
        instance_id: usize,
        topology: Topology,
        http_gateway_info: Option<GatewayInfo>,
    },
    Error {
        message: String,
    },
}

#[derive(Serialize)]
pub enum CreateGatewayResponse {
    Created(GatewayInfo),
    Error { message: String },
}

#[derive(Serialize, Clone)]
pub struct Topology {
    /// Subnet id (text) → its configuration.
    pub subnet_configs: std::collections::BTreeMap<String, SubnetConfig>,
    pub default_effective_canister_id: RawCanisterId,
}

#[derive(Serialize, Clone)]
pub struct SubnetConfig {
    pub subnet_kind: &'static str,
    pub subnet_admins: Option<Vec<RawPrincipalId>>,
    pub cost_schedule: &'static str,
    pub subnet_seed: [u8; 32],
    pub instruction_config: &'static str,
    pub canister_ranges: Vec<CanisterIdRange>,
    /// Older clients' fields (pic-js reads `size`): one node.
    pub size: u64,
    pub node_ids: Vec<RawNodeId>,
}

#[derive(Serialize, Clone)]
pub struct RawNodeId {
    #[serde(with = "b64")]
    pub node_id: Vec<u8>,
}

#[derive(Serialize, Clone)]
pub struct CanisterIdRange {
    pub start: RawCanisterId,
    pub end: RawCanisterId,
}

#[derive(Serialize, Deserialize, Clone, Copy)]
pub struct RawTime {
    pub nanos_since_epoch: u64,
}

#[derive(Serialize, Deserialize, Clone, PartialEq, Eq, Hash)]
pub enum RawEffectivePrincipal {
    None,
    SubnetId(#[serde(with = "b64")] Vec<u8>),
    CanisterId(#[serde(with = "b64")] Vec<u8>),
}

#[derive(Deserialize)]
pub struct RawCanisterCall {
    #[serde(with = "b64")]
    pub sender: Vec<u8>,
    #[serde(with = "b64")]
    pub canister_id: Vec<u8>,
    pub effective_principal: RawEffectivePrincipal,
    pub method: String,
    #[serde(with = "b64")]
    pub payload: Vec<u8>,
}

#[derive(Serialize, Deserialize, Clone)]
pub struct RawMessageId {
    pub effective_principal: RawEffectivePrincipal,
    #[serde(with = "b64")]
    pub message_id: Vec<u8>,
}

#[derive(Deserialize)]
pub struct RawIngressStatusArgs {
    pub raw_message_id: RawMessageId,
    #[serde(default)]
    pub raw_caller: Option<RawPrincipalId>,
}

#[derive(Serialize)]
pub enum RawCanisterResult {
    Ok(#[serde(with = "b64")] Vec<u8>),
    Err(RejectResponse),
}

impl RawCanisterResult {
    /// `certified`: whether the answer went through consensus (updates), as PocketIC says.
    pub fn of(outcome: Result<Vec<u8>, Reject>, certified: bool) -> Self {
        match outcome {
            Ok(reply) => Self::Ok(reply),
            Err(reject) => Self::Err(RejectResponse::of(reject, certified)),
        }
    }
}

#[derive(Serialize)]
pub struct RejectResponse {
    pub reject_code: crate::RejectCode,
    pub reject_message: String,
    pub error_code: crate::ErrorCode,
    pub certified: bool,
}

impl RejectResponse {
    pub fn of(reject: Reject, certified: bool) -> Self {
        Self {
            reject_code: reject.code,
            // A canister's own reject carries no error code of its own; the IC gives it
            // IC0406.
            error_code: reject
                .error_code
                .unwrap_or(crate::ErrorCode::CanisterRejectedMessage),
            reject_message: reject.message,
            certified,
        }
    }
}

#[derive(Serialize, Deserialize, Clone)]
pub struct RawPrincipalId {
    #[serde(with = "b64")]
    pub principal_id: Vec<u8>,
}

#[derive(Serialize, Deserialize, Clone)]
pub struct RawCanisterId {
    #[serde(with = "b64")]
    pub canister_id: Vec<u8>,
}

impl From<Principal> for RawCanisterId {
    fn from(id: Principal) -> Self {
        Self {
            canister_id: id.as_slice().to_vec(),
        }
    }
}

#[derive(Serialize, Deserialize)]
pub struct RawSubnetId {
    #[serde(with = "b64")]
    pub subnet_id: Vec<u8>,
}

#[derive(Serialize)]
pub struct RawCycles {
    pub cycles: u128,
}

#[derive(Deserialize)]
pub struct RawAddCycles {
    #[serde(with = "b64")]
    pub canister_id: Vec<u8>,
    pub amount: u128,
}

#[derive(Serialize)]
pub struct RawStableMemory {
    #[serde(with = "b64")]
    pub blob: Vec<u8>,
}

#[derive(Deserialize)]
pub struct RawSetStableMemory {
    #[serde(with = "b64")]
    pub canister_id: Vec<u8>,
    pub blob_id: BlobId,
}

#[derive(Deserialize)]
pub struct BlobId(#[serde(with = "b64")] pub Vec<u8>);

#[derive(Deserialize)]
pub struct RawCanisterSnapshotDownload {
    pub sender: RawPrincipalId,
    pub canister_id: RawCanisterId,
    #[serde(with = "b64")]
    pub snapshot_id: Vec<u8>,
    pub snapshot_dir: PathBuf,
}

#[derive(Deserialize)]
pub struct RawCanisterSnapshotUpload {
    pub sender: RawPrincipalId,
    pub canister_id: RawCanisterId,
    #[serde(default)]
    pub replace_snapshot: Option<RawCanisterSnapshotId>,
    pub snapshot_dir: PathBuf,
}

#[derive(Serialize, Deserialize)]
pub struct RawCanisterSnapshotId {
    #[serde(with = "b64")]
    pub snapshot_id: Vec<u8>,
}

/// A principal from its bytes, or what was wrong with them.
pub fn principal(bytes: &[u8], what: &str) -> Result<Principal, String> {
    Principal::try_from_slice(bytes).map_err(|e| format!("the {what} is not a principal: {e}"))
}
