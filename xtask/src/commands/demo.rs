//! `cargo xtask demo`: the upstream example's lifecycle end to end — clean start, deploy,
//! populate, stop, snapshot, break, restore — ending in a verified restore.

use anyhow::Result;
use clap::Args;

use super::restore::restore;
use super::start::Start;
use super::verify::{Verified, verify};
use super::{Context, Run};
use crate::lifecycle::GREETING;
use crate::project;
use crate::query::Check;
use crate::records::Recorded;

#[derive(Args)]
pub struct Demo;

impl Run for Demo {
    type Output = Verified;

    fn run(self, cx: &mut Context) -> Result<Verified> {
        let wasm = super::canister_wasm()?;
        let session = cx.session()?;
        session.say(format!(
            "[1/8] clean start ({})",
            session.backend.describe()
        ));
        Start.run(cx)?;
        let session = cx.session()?;
        session.say("[2/8] deploy the chat canister");
        let canister = session.backend.deploy(&session.canister, &wasm)?;
        session.came_back(format!("{} is {canister}", session.canister));
        session.say("[3/8] populate");
        session.append(GREETING)?;
        let check = Check::chat();
        let before = session.ask(&check)?;
        session.say("[4/8] stop");
        let id = session.while_stopped(|s| {
            s.say("[5/8] snapshot, then start");
            let id = s.backend.snapshot_create(&s.canister, None);
            s.show();
            id
        })?;
        // The seed's commands, unchanged: the module hash is compared by `verify` after
        // `snapshot`, not in the demo.
        let recorded = Recorded {
            module_hash: None,
            check: Some((check, project::hex(&before))),
        };
        session.remember(&id, None, recorded)?;
        session.say("[6/8] break: remove_spam loses the chat (the deliberate bug)");
        session.remove_spam()?;
        session.dump()?;
        session.say("[7/8] restore");
        restore(session, Some(&id))?;
        session.say("[8/8] verify");
        verify(session, Some(&id))
    }
}
