//! Motoko canisters, compiled here by npm `motoko` (moc as JavaScript, installed into
//! `.tools/motoko/` by `cargo xtask test`): an actor awaiting another actor, and upgrades of
//! an actor with enhanced orthogonal persistence (moc's default), which keep its heap only
//! with `wasm_memory_persistence = keep`, as on the IC.

use std::path::Path;
use std::process::Command;

use candid::{Decode, Encode, Nat, Principal};
use ic_management_canister_types as ic;

use crate::common::{Local, user};

pub const CALLEE: &str = r#"
persistent actor Callee {
  var count : Nat = 0;
  public func bump() : async Nat { count += 1; count };
  public query func current() : async Nat { count };
}
"#;

const CALLER: &str = r#"
persistent actor Caller {
  var seen : Nat = 0;
  public func ask(callee : Text) : async Nat {
    let other = actor (callee) : actor { bump : () -> async Nat };
    seen := await other.bump();
    seen
  };
  public query func last() : async Nat { seen };
}
"#;

/// Compiles `source` with moc.
pub fn moc(source: &str) -> Vec<u8> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let motoko = project_tools::install_motoko(root).unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("main.mo"), dir.path().join("main.wasm"));
    std::fs::write(&input, source).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/suite/common/moc.js");
    let run = Command::new("node")
        .arg(script)
        .args([motoko.as_os_str(), input.as_os_str(), output.as_os_str()])
        .output()
        .expect("node runs");
    assert!(
        run.status.success(),
        "moc failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    std::fs::read(output).unwrap()
}

fn nat(local: &mut Local, canister: Principal, method: &str, arg: Vec<u8>, update: bool) -> u64 {
    let reply = if update {
        local.replica.update(user(), canister, method, &arg)
    } else {
        local.replica.query(user(), canister, method, &arg)
    };
    let reply = reply.unwrap_or_else(|e| panic!("{method}: {e}"));
    u64::try_from(Decode!(&reply, Nat).unwrap().0).unwrap()
}

fn upgrade(
    local: &mut Local,
    canister: Principal,
    wasm: Vec<u8>,
    keep: bool,
) -> Result<(), replica::Reject> {
    let mode = ic::CanisterInstallMode::Upgrade(Some(ic::UpgradeFlags {
        skip_pre_upgrade: None,
        wasm_memory_persistence: keep.then_some(ic::WasmMemoryPersistence::Keep),
    }));
    local.install(canister, wasm, mode)
}

#[test]
fn a_motoko_actor_awaits_another_and_upgrades_keep_its_state_only_with_keep() {
    let (callee_wasm, caller_wasm) = (moc(CALLEE), moc(CALLER));
    let mut local = Local::new();
    let callee = local.deploy(callee_wasm);
    let caller = local.deploy(caller_wasm.clone());
    let ask = Encode!(&callee.to_text()).unwrap();
    assert_eq!(nat(&mut local, caller, "ask", ask.clone(), true), 1);
    assert_eq!(nat(&mut local, caller, "ask", ask.clone(), true), 2);
    assert_eq!(
        nat(&mut local, callee, "current", Encode!().unwrap(), false),
        2
    );

    // moc's default is enhanced orthogonal persistence: an upgrade without `keep` is refused,
    // with the IC's message, and changes nothing.
    let refused = upgrade(&mut local, caller, caller_wasm.clone(), false).unwrap_err();
    assert_eq!(
        refused.message,
        "Missing upgrade option: Enhanced orthogonal persistence requires the `wasm_memory_persistence` upgrade option."
    );
    assert_eq!(
        nat(&mut local, caller, "last", Encode!().unwrap(), false),
        2
    );

    // With `keep`, the actor's variables live on and it goes on awaiting.
    upgrade(&mut local, caller, caller_wasm, true).unwrap();
    assert_eq!(
        nat(&mut local, caller, "last", Encode!().unwrap(), false),
        2
    );
    assert_eq!(nat(&mut local, caller, "ask", ask, true), 3);
}
