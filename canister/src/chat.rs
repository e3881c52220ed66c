//! The chat log: messages kept in stable memory, and the rules for adding, reading and
//! filtering them. Generic over the memory so that it runs natively in unit tests.

use ic_stable_structures::{Memory, log::Log};

use crate::spam;

/// Largest message `append` accepts, in bytes of UTF-8.
pub const MAX_MESSAGE_BYTES: usize = 1024;

/// Largest reply the IC delivers for an update call (IC interface spec, "Resource limits");
/// queries may reply with up to 3 MiB, but `dump` and `page` also run as updates.
pub const MAX_REPLY_BYTES: u64 = 2 * 1024 * 1024;

/// Bytes of a Candid `(vec text)` reply besides the messages: magic, type table, argument
/// type and the vector length (LEB128, at most 10 bytes).
const REPLY_OVERHEAD_BYTES: u64 = 4 + 3 + 2 + 10;

/// The messages, in the order they were appended.
pub struct Chat<M: Memory + Clone> {
    log: Log<String, M, M>,
    index: M,
    data: M,
}

impl<M: Memory + Clone> Chat<M> {
    /// Opens the chat kept in these memories, creating an empty one if they are blank.
    pub fn init(index: M, data: M) -> Self {
        Self {
            log: Log::init(index.clone(), data.clone()),
            index,
            data,
        }
    }

    /// Adds one message. Refuses, storing nothing, an empty message or one over 1 KiB.
    pub fn append(&mut self, message: &str) -> Result<(), String> {
        if message.is_empty() {
            return Err("append: the message is empty; send 1 to 1024 bytes of text".into());
        }
        if message.len() > MAX_MESSAGE_BYTES {
            return Err(format!(
                "append: the message is {} bytes, over the limit of {MAX_MESSAGE_BYTES}; split it into shorter messages",
                message.len()
            ));
        }
        self.log.append(&message.to_owned()).map(drop).map_err(|e| {
            format!("append: stable memory is full ({e:?}); the message was not stored")
        })
    }

    pub fn len(&self) -> u64 {
        self.log.len()
    }

    /// Every message, or an error naming `page` when they would not fit in one reply.
    pub fn dump(&self) -> Result<Vec<String>, String> {
        let mut reply = Reply::default();
        for message in self.log.iter() {
            if !reply.push(message) {
                return Err(format!(
                    "dump: the chat holds {} messages, more than fit in one reply of {MAX_REPLY_BYTES} bytes; read it in pieces with page(start, limit)",
                    self.len()
                ));
            }
        }
        Ok(reply.messages)
    }

    /// Up to `limit` messages from index `start` on; fewer when the reply would pass the
    /// reply limit, so a client pages on from `start + returned`.
    pub fn page(&self, start: u64, limit: u32) -> Vec<String> {
        let end = start.saturating_add(limit.into()).min(self.len());
        let mut reply = Reply::default();
        for index in start..end {
            let message = self.log.get(index).expect("index below len");
            if !reply.push(message) {
                break;
            }
        }
        reply.messages
    }

    /// Replaces each message that contains spam with a placeholder and returns how many
    /// there were.
    ///
    /// DELIBERATE BUG, kept from the upstream example so that the demo has data to lose and a
    /// snapshot to recover it from: the messages are taken out of the log first, and when none
    /// is spam the filtered chat is never written back, so the chat is left empty.
    pub fn remove_spam(&mut self) -> u64 {
        let messages = self.take();
        let mut spam = 0;
        let filtered: Vec<String> = messages
            .into_iter()
            .map(|message| {
                if spam::is_spam(&message) {
                    spam += 1;
                    spam::REMOVED.to_owned()
                } else {
                    message
                }
            })
            .collect();
        if spam == 0 {
            ic_cdk::println!("No spam keywords found, the chat is unchanged.");
            return 0;
        }
        ic_cdk::println!("Removed {spam} messages, updating the chat...");
        for message in &filtered {
            self.log
                .append(message)
                .expect("rewriting no more than was there fits");
        }
        spam
    }

    /// Moves every message out, leaving the log empty.
    fn take(&mut self) -> Vec<String> {
        let messages = self.log.iter().collect();
        self.log = Log::new(self.index.clone(), self.data.clone());
        messages
    }
}

/// The messages of one `(vec text)` reply, kept within the reply limit.
struct Reply {
    messages: Vec<String>,
    bytes: u64,
}

impl Default for Reply {
    fn default() -> Self {
        Self {
            messages: Vec::new(),
            bytes: REPLY_OVERHEAD_BYTES,
        }
    }
}

impl Reply {
    /// Adds `message` unless the encoded reply would pass the limit; says whether it did.
    fn push(&mut self, message: String) -> bool {
        let len = message.len() as u64;
        let bytes = self.bytes + leb128_len(len) + len;
        if bytes > MAX_REPLY_BYTES {
            return false;
        }
        self.bytes = bytes;
        self.messages.push(message);
        true
    }
}

/// Bytes of `n` as unsigned LEB128, the length prefix Candid gives each text.
fn leb128_len(n: u64) -> u64 {
    u64::from(n.max(1).ilog2() / 7 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ic_stable_structures::VectorMemory;

    fn chat() -> Chat<VectorMemory> {
        Chat::init(VectorMemory::default(), VectorMemory::default())
    }

    fn chat_of(messages: &[&str]) -> Chat<VectorMemory> {
        let mut chat = chat();
        for message in messages {
            chat.append(message).unwrap();
        }
        chat
    }

    #[test]
    fn append_then_dump_keeps_order() {
        let chat = chat_of(&["Hi there!", "second", "third"]);
        assert_eq!(chat.len(), 3);
        assert_eq!(chat.dump().unwrap(), ["Hi there!", "second", "third"]);
    }

    #[test]
    fn append_refuses_empty_and_oversized_messages_and_stores_nothing() {
        let mut chat = chat_of(&["kept"]);
        assert!(chat.append("").unwrap_err().contains("empty"));
        let too_long = "é".repeat(MAX_MESSAGE_BYTES / 2 + 1);
        assert_eq!(
            too_long.chars().count(),
            513,
            "limit is in bytes, not characters"
        );
        let error = chat.append(&too_long).unwrap_err();
        assert!(
            error.contains("1026 bytes") && error.contains("1024"),
            "{error}"
        );
        assert_eq!(chat.dump().unwrap(), ["kept"]);
        chat.append(&"x".repeat(MAX_MESSAGE_BYTES)).unwrap();
        assert_eq!(chat.len(), 2);
    }

    #[test]
    fn remove_spam_replaces_spam_and_counts_it() {
        let mut chat = chat_of(&["Hi there!", "free coupon here", "casino night", "casino!"]);
        assert_eq!(chat.remove_spam(), 2);
        assert_eq!(
            chat.dump().unwrap(),
            ["Hi there!", spam::REMOVED, spam::REMOVED, "casino!"]
        );
    }

    #[test]
    fn remove_spam_without_spam_loses_the_chat_deliberately() {
        let mut chat = chat_of(&["Hi there!", "no spam here"]);
        assert_eq!(chat.remove_spam(), 0);
        assert_eq!(chat.len(), 0);
        assert!(chat.dump().unwrap().is_empty());
        chat.append("after the loss").unwrap();
        assert_eq!(chat.dump().unwrap(), ["after the loss"]);
    }

    #[test]
    fn messages_survive_reopening_the_memories() {
        let (index, data) = (VectorMemory::default(), VectorMemory::default());
        let mut chat = Chat::init(index.clone(), data.clone());
        chat.append("persisted").unwrap();
        drop(chat);
        assert_eq!(Chat::init(index, data).dump().unwrap(), ["persisted"]);
    }

    #[test]
    fn dump_of_a_chat_over_the_reply_limit_names_page() {
        let message = "m".repeat(MAX_MESSAGE_BYTES);
        let mut chat = chat();
        let fits = (MAX_REPLY_BYTES - REPLY_OVERHEAD_BYTES) / (MAX_MESSAGE_BYTES as u64 + 2);
        for _ in 0..fits {
            chat.append(&message).unwrap();
        }
        let all = chat.dump().unwrap();
        assert!(candid::encode_one(&all).unwrap().len() as u64 <= MAX_REPLY_BYTES);
        chat.append(&message).unwrap();
        let error = chat.dump().unwrap_err();
        assert!(error.contains("page(start, limit)"), "{error}");
    }

    #[test]
    fn page_walks_the_whole_chat_within_the_reply_limit() {
        let message = "p".repeat(MAX_MESSAGE_BYTES);
        let mut chat = chat();
        for _ in 0..3000 {
            chat.append(&message).unwrap();
        }
        let mut start = 0;
        let mut pages = 0;
        while start < chat.len() {
            let page = chat.page(start, u32::MAX);
            assert!(!page.is_empty());
            assert!(candid::encode_one(&page).unwrap().len() as u64 <= MAX_REPLY_BYTES);
            start += page.len() as u64;
            pages += 1;
        }
        assert_eq!((start, pages), (3000, 2));
    }

    #[test]
    fn page_bounds() {
        let chat = chat_of(&["a", "b", "c"]);
        assert_eq!(chat.page(1, 1), ["b"]);
        assert_eq!(chat.page(1, 10), ["b", "c"]);
        assert!(chat.page(3, 10).is_empty());
        assert!(chat.page(u64::MAX, u32::MAX).is_empty());
        assert!(chat.page(0, 0).is_empty());
    }

    #[test]
    fn leb128_lengths() {
        let cases = [
            (0, 1),
            (127, 1),
            (128, 2),
            (16_383, 2),
            (16_384, 3),
            (u64::MAX, 10),
        ];
        for (n, len) in cases {
            assert_eq!(leb128_len(n), len, "{n}");
        }
    }
}
