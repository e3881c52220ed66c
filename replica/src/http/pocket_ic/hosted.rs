//! One PocketIC instance: a replica made from an `InstanceConfig` — in the config's
//! `state_dir`, kept across instances, or in a scratch directory removed with it — served
//! by an `Instance`, with its topology and the ingress messages submitted through the REST
//! interface.

use candid::Principal;

use super::calls::Calls;
use super::wire::{
    CanisterIdRange, InitialTime, InstanceConfig, RawCanisterId, RawNodeId, SubnetConfig,
    SubnetSpec, Topology,
};
use crate::Replica;
use crate::http::Instance;

pub struct Hosted {
    pub instance: Instance,
    pub topology: Topology,
    pub calls: std::sync::Mutex<Calls>,
    /// The scratch state directory of an instance without `state_dir`.
    _scratch: Option<tempfile::TempDir>,
}

/// The `icp_features` this replica has: its ICP and cycles ledgers are always there.
const FEATURES_SERVED: [&str; 2] = ["icp_token", "cycles_token"];

impl Hosted {
    /// The instance `config` asks for, or why this replica cannot be it. Named subnets
    /// (NNS, II, …) asked for alongside an application subnet are left absent, so that
    /// dfx's default config (all five named subnets and one application subnet) works.
    pub fn create(config: InstanceConfig) -> Result<Self, String> {
        let kind = subnet_kind(&config)?;
        refuse_features(&config)?;
        let (dir, scratch) = match &config.state_dir {
            Some(dir) => (dir.clone(), None),
            None => {
                let scratch = tempfile::Builder::new()
                    .prefix("pocket-ic-instance-")
                    .tempdir()
                    .map_err(|e| format!("cannot make a state directory: {e}"))?;
                (scratch.path().to_path_buf(), Some(scratch))
            }
        };
        let mut replica = Replica::open(&dir).map_err(|e| e.to_string())?;
        let auto = match config.initial_time {
            Some(InitialTime::AutoProgress(_)) => true,
            Some(InitialTime::Timestamp(time)) => {
                replica.set_time(time.nanos_since_epoch)?;
                false
            }
            None => false,
        };
        let keys = replica.keys().map_err(|e| e.to_string())?;
        let topology = topology(keys.subnet_id, keys.node_id, kind);
        let instance = Instance::start(replica, keys).map_err(|e| e.to_string())?;
        instance.set_auto_progress(auto);
        Ok(Self {
            instance,
            topology,
            calls: Default::default(),
            _scratch: scratch,
        })
    }
}

/// The kind of the one subnet this replica is, from the config's subnets.
fn subnet_kind(config: &InstanceConfig) -> Result<&'static str, String> {
    let set = &config.subnet_config_set;
    let unnamed = [
        ("Application", &set.application),
        ("System", &set.system),
        ("VerifiedApplication", &set.verified_application),
        ("CloudEngine", &set.cloud_engine),
    ];
    let asked: Vec<(&str, &SubnetSpec)> = unnamed
        .iter()
        .flat_map(|(kind, specs)| specs.iter().map(move |spec| (*kind, spec)))
        .collect();
    let named = [
        ("an NNS", &set.nns),
        ("an SNS", &set.sns),
        ("an II", &set.ii),
        ("a fiduciary", &set.fiduciary),
        ("a bitcoin", &set.bitcoin),
        ("a test threshold keys", &set.test_threshold_keys),
    ];
    let (kind, spec) = match asked.as_slice() {
        [one] => *one,
        [] => match named.iter().find(|(_, spec)| spec.is_some()) {
            Some((name, _)) => {
                return Err(format!(
                    "this replica is one application subnet and cannot be {name} subnet; ask for an application subnet (PocketIcBuilder::with_application_subnet)"
                ));
            }
            None => return Ok("Application"),
        },
        _ => {
            return Err(format!(
                "this replica is one subnet, and {} were asked for; ask for one application subnet",
                asked.len()
            ));
        }
    };
    if spec.state_config != serde_json::Value::Null && spec.state_config != "New" {
        return Err(
            "this replica cannot start a subnet from an IC state directory (state_config FromPath); use the instance's state_dir to keep its own state".into(),
        );
    }
    Ok(kind)
}

/// Refuses the system canisters this replica does not have.
fn refuse_features(config: &InstanceConfig) -> Result<(), String> {
    let features = config.icp_features.iter().flatten();
    let missing: Vec<&str> = features
        .filter(|(name, value)| !value.is_null() && !FEATURES_SERVED.contains(&name.as_str()))
        .map(|(name, _)| name.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "this replica has no {}: of the ICP features it has only the ICP and cycles ledgers (icp_token, cycles_token)",
            missing.join(", ")
        ));
    }
    if config
        .bitcoind_addr
        .iter()
        .chain(&config.dogecoind_addr)
        .any(|a| !a.is_empty())
    {
        return Err("this replica has no bitcoin or dogecoin integration".into());
    }
    Ok(())
}

/// The topology of a replica with subnet `subnet`: every canister id is its.
fn topology(subnet: Principal, node: Principal, kind: &'static str) -> Topology {
    let (start, end) = crate::ids::canister_range();
    let config = SubnetConfig {
        subnet_kind: kind,
        subnet_admins: None,
        cost_schedule: "Normal",
        subnet_seed: sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(
            subnet.as_slice(),
        ))
        .into(),
        instruction_config: "Production",
        canister_ranges: vec![CanisterIdRange {
            start: start.into(),
            end: end.into(),
        }],
        size: 1,
        node_ids: vec![RawNodeId {
            node_id: node.as_slice().to_vec(),
        }],
    };
    Topology {
        subnet_configs: [(subnet.to_text(), config)].into(),
        default_effective_canister_id: RawCanisterId::from(crate::ids::canister_id(0)),
    }
}
