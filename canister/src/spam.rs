//! What counts as spam, exactly as the upstream example decides it.

/// The words that mark a message as spam.
pub const SPAM_WORDS: [&str; 3] = ["coupon", "giveaway", "casino"];

/// What a spam message is replaced with.
pub const REMOVED: &str = "(removed spam message)";

/// Whether `message` contains a spam word: whole words split on single spaces, case-sensitive,
/// so `casino!` and `Casino` slip through, as they do upstream.
pub fn is_spam(message: &str) -> bool {
    message.split(' ').any(|word| SPAM_WORDS.contains(&word))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_words_are_spam() {
        assert!(is_spam("get a coupon now"));
        assert!(is_spam("giveaway"));
        assert!(is_spam("visit the casino"));
    }

    #[test]
    fn matching_is_case_sensitive_and_on_single_spaces() {
        assert!(!is_spam("Coupon inside"));
        assert!(!is_spam("casino!"));
        assert!(!is_spam("couponing is fun"));
        assert!(!is_spam("tab\tcasino"));
        assert!(is_spam("two  spaces  casino"));
        assert!(!is_spam("Hi there!"));
        assert!(!is_spam(""));
    }
}
