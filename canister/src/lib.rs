//! The `chat` canister: a chat log in stable memory with a deliberately buggy spam filter,
//! the subject of the canister-snapshots demo. Endpoints only; the rules live in `chat`.

mod chat;
mod spam;

use std::cell::RefCell;

use ic_cdk::{query, update};
use ic_stable_structures::{
    DefaultMemoryImpl, Memory,
    memory_manager::{MemoryId, MemoryManager, VirtualMemory},
};

use chat::Chat;

type StableMemory = VirtualMemory<DefaultMemoryImpl>;

const LOG_INDEX: MemoryId = MemoryId::new(0);
const LOG_DATA: MemoryId = MemoryId::new(1);

/// Pages in each of the memory manager's buckets, for a chat created by this version.
///
/// The manager gives each virtual memory whole buckets, so with its default of 128 pages (8 MiB)
/// the log's two memories held 16 MiB from the first message on, and every snapshot carried
/// them: 17.57 MiB for one message, where the upstream example's is 1.61 MiB. With one page a
/// chat starts at three (the manager's header, the index, the data). The price: the manager has
/// at most 32,768 buckets, so a chat holds at most 2 GiB of stable memory.
///
/// This only shapes a blank memory: on one that already holds a manager, `init_with_bucket_size`
/// ignores its argument and loads the bucket size from the manager's header
/// (ic-stable-structures 0.7.2, `MemoryManagerInner::init` and `load`). So an upgrade of a chat
/// created with 128-page buckets keeps them and its messages; stable memory never shrinks, so its
/// snapshots stay ~17.6 MiB until the chat is reinstalled.
const BUCKET_PAGES: u16 = 1;

/// The chat kept in `memory`, an empty one if the memory is blank.
fn open<M: Memory + Clone>(memory: M) -> Chat<VirtualMemory<M>> {
    let memories = MemoryManager::init_with_bucket_size(memory, BUCKET_PAGES);
    Chat::init(memories.get(LOG_INDEX), memories.get(LOG_DATA))
}

thread_local! {
    // Everything lives in stable memory, so upgrades keep it without pre/post-upgrade hooks
    // and a snapshot of any size restores it.
    static CHAT: RefCell<Chat<StableMemory>> = RefCell::new(open(DefaultMemoryImpl::default()));
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
    use super::*;
    use ic_stable_structures::VectorMemory;

    /// 1 KiB messages appended until stable memory grows; how many it took.
    fn append_until_growth(
        chat: &mut Chat<VirtualMemory<VectorMemory>>,
        memory: &VectorMemory,
    ) -> usize {
        let message = "k".repeat(1024);
        let size = memory.size();
        let mut appended = 0;
        while memory.size() == size {
            chat.append(&message).unwrap();
            appended += 1;
        }
        appended
    }

    #[test]
    fn a_new_chat_takes_three_pages_and_grows_a_page_at_a_time() {
        let memory = VectorMemory::default();
        let mut chat = open(memory.clone());
        chat.append("Hi there!").unwrap();
        assert_eq!(
            memory.size(),
            3,
            "the manager's header, the index and the data"
        );
        let appended = append_until_growth(&mut chat, &memory);
        assert_eq!(memory.size(), 4);
        assert!(
            appended <= 64,
            "{appended} messages of 1 KiB before the data's second page"
        );
    }

    /// Stable memory as the versions before `BUCKET_PAGES` left it (`MemoryManager::init`,
    /// 128-page buckets), opened by this version as an upgrade opens it.
    #[test]
    fn an_upgrade_keeps_the_messages_and_the_buckets_of_the_old_layout() {
        let memory = VectorMemory::default();
        let old = MemoryManager::init(memory.clone());
        let mut chat = Chat::init(old.get(LOG_INDEX), old.get(LOG_DATA));
        for message in ["Hi there!", "before the upgrade"] {
            chat.append(message).unwrap();
        }
        drop((chat, old));
        assert_eq!(memory.size(), 1 + 2 * 128);

        let mut chat = open(memory.clone());
        assert_eq!(chat.dump().unwrap(), ["Hi there!", "before the upgrade"]);
        let appended = append_until_growth(&mut chat, &memory);
        assert_eq!(
            memory.size(),
            1 + 3 * 128,
            "the data grew by one of its old 128-page buckets"
        );
        assert!(appended > 8000, "{appended}");
        assert_eq!(chat.len(), 2 + appended as u64);
        assert_eq!(chat.page(0, 2), ["Hi there!", "before the upgrade"]);
        assert_eq!(chat.page(1 + appended as u64, 1), ["k".repeat(1024)]);
    }

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
