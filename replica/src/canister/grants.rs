//! What the machine granted: the one outcome of a replicated execution that depends on the
//! machine rather than on the state — whether the allocator gave a stable-memory grow its
//! bytes (a canister sees -1 when it did not, as on a subnet out of memory). A round run
//! live counts its grows and notes which were refused, for the journal to record after
//! it; the same round replayed refuses exactly those and grants the rest, so the replay
//! makes the state the live round made, on any machine. Kept per thread: a round runs on
//! one thread from start to end, and outside a round (queries, the management canister's
//! ingress calls, which a checkpoint makes durable at once) nothing is counted.

use std::cell::RefCell;

/// The round under way: grows counted so far and the ones refused, or (replaying) the ones
/// the journal says were.
struct Round {
    grows: u64,
    refused: Vec<u64>,
    replayed: Option<Vec<u64>>,
}

thread_local! {
    static ROUND: RefCell<Option<Round>> = const { RefCell::new(None) };
}

/// Starts counting a round's grows: live (`None`) or replaying the refusals recorded.
pub fn begin_round(replayed: Option<Vec<u64>>) {
    ROUND.with_borrow_mut(|round| {
        *round = Some(Round {
            grows: 0,
            refused: Vec::new(),
            replayed,
        });
    });
}

/// Ends the round; returns the grows the allocator refused (live), in order.
pub fn end_round() -> Vec<u64> {
    ROUND.with_borrow_mut(|round| round.take().map(|r| r.refused).unwrap_or_default())
}

/// Whether a replicated grow gets its bytes: `allocate` asks the allocator, unless a replay
/// says this grow was refused. A replay whose grow the allocator now refuses though the
/// live round had it is said: this machine has less memory than the one that ran it.
pub fn grant(allocate: impl FnOnce() -> bool) -> bool {
    ROUND.with_borrow_mut(|round| {
        let Some(round) = round else {
            return allocate();
        };
        let index = round.grows;
        round.grows += 1;
        match &round.replayed {
            Some(refused) if refused.contains(&index) => false,
            Some(_) => {
                let granted = allocate();
                if !granted {
                    eprintln!(
                        "replaying the journal: stable-memory grow {index} of a round was granted when it ran, but this machine's allocator refuses it; the replayed state differs from the one the calls were answered from"
                    );
                }
                granted
            }
            None => {
                let granted = allocate();
                if !granted {
                    round.refused.push(index);
                }
                granted
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replay_refuses_what_the_live_round_was_refused_and_grants_the_rest() {
        begin_round(None);
        assert!(grant(|| true));
        assert!(!grant(|| false));
        assert!(grant(|| true));
        let refused = end_round();
        assert_eq!(refused, [1]);

        begin_round(Some(refused));
        let asked = std::cell::Cell::new(0);
        let ask = || {
            asked.set(asked.get() + 1);
            true
        };
        assert!(grant(ask));
        assert!(
            !grant(ask),
            "refused as when it ran, though this machine would grant it"
        );
        assert!(grant(ask));
        assert_eq!(asked.get(), 2, "the refused one never asks the allocator");
        assert!(end_round().is_empty());
        assert!(grant(|| true), "outside a round nothing is counted");
    }
}
