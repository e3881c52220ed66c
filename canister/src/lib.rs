//! The `chat` canister: a chat log in stable memory with a deliberately buggy spam filter,
//! the subject of the canister-snapshots demo. Endpoints only; the rules live in `chat`.

mod chat;
mod spam;

use std::cell::RefCell;

use ic_cdk::{query, update};
use ic_stable_structures::{
    DefaultMemoryImpl,
    memory_manager::{MemoryId, MemoryManager, VirtualMemory},
};

use chat::Chat;

type StableMemory = VirtualMemory<DefaultMemoryImpl>;

const LOG_INDEX: MemoryId = MemoryId::new(0);
const LOG_DATA: MemoryId = MemoryId::new(1);

thread_local! {
    // Everything lives in stable memory, so upgrades keep it without pre/post-upgrade hooks
    // and a snapshot of any size restores it.
    static CHAT: RefCell<Chat<StableMemory>> = RefCell::new({
        let memories = MemoryManager::init(DefaultMemoryImpl::default());
        Chat::init(memories.get(LOG_INDEX), memories.get(LOG_DATA))
    });
}

/// Adds a message (1 to 1024 bytes); an invalid one is rejected and nothing is stored.
#[update]
fn append(message: String) {
    CHAT.with_borrow_mut(|chat| chat.append(&message))
        .unwrap_or_else(|error| ic_cdk::trap(error));
}

/// Every message, in order; rejected with a pointer to `page` when too many for one reply.
#[query]
fn dump() -> Vec<String> {
    CHAT.with_borrow(Chat::dump)
        .unwrap_or_else(|error| ic_cdk::trap(error))
}

/// Replaces spam messages with a placeholder and returns how many there were.
/// Deliberately buggy, as upstream: with no spam at all it empties the chat and returns 0.
#[update]
fn remove_spam() -> u64 {
    CHAT.with_borrow_mut(Chat::remove_spam)
}

/// How many messages the chat holds.
#[query]
fn len() -> u64 {
    CHAT.with_borrow(Chat::len)
}

/// Up to `limit` messages from index `start` on, fewer when they would not fit in one reply.
#[query]
fn page(start: u64, limit: u32) -> Vec<String> {
    CHAT.with_borrow(|chat| chat.page(start, limit))
}

ic_cdk::export_candid!();

#[cfg(test)]
mod tests {
    /// The checked-in interface is what dfx, icp-cli and the build's metadata use, so it must
    /// be exactly what the code exports. `UPDATE_DID=1 cargo test -p chat` rewrites it.
    #[test]
    fn chat_did_matches_the_exported_interface() {
        let exported = super::__export_service();
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/chat.did");
        if std::env::var_os("UPDATE_DID").is_some() {
            std::fs::write(path, &exported).unwrap();
        }
        let checked_in = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            checked_in == exported,
            "canister/chat.did differs from what the code exports; run `UPDATE_DID=1 cargo test -p chat` and commit it.\nExported:\n{exported}"
        );
    }
}
