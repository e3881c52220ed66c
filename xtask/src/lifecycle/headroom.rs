//! Whether a canister can afford a new snapshot, checked before it is taken. A snapshot
//! counts toward the canister's memory usage, and so toward its idle burn and its freezing
//! limit; the IC requires the balance to stay above that limit after the memory grows, and
//! the memory to stay within its allocation (IC interface spec, "Canister snapshots"; shared/
//! reference/ic-interface.md). The storage rate is a 13-node subnet's: 127,000 cycles per GiB
//! per second. Larger subnets charge more, so there the check is a floor.

use anyhow::{Result, bail};

use crate::backend::{Budget, CanisterRef};

const CYCLES_PER_GIB_SECOND: u128 = 127_000;
const GIB: u128 = 1 << 30;
const DAY: u128 = 86_400;

/// Refuses, with the numbers and what to do, a snapshot of `bytes` more memory that would
/// freeze `canister` or take it over its memory allocation.
pub fn check(canister: &CanisterRef, budget: &Budget, bytes: u64) -> Result<()> {
    let size = |b: u128| indicatif::HumanBytes(b.min(u64::MAX.into()) as u64).to_string();
    let after = u128::from(budget.memory_size) + u128::from(bytes);
    let allocation = u128::from(budget.memory_allocation);
    let remedies = "delete an old snapshot (`cargo xtask delete ID`) or replace one (`--replace ID`); `--force` takes it anyway";
    if allocation > 0 && after > allocation {
        bail!(
            "{canister} cannot hold this snapshot: its {} would take the canister's memory to {}, over its memory allocation of {}; raise the allocation, or {remedies}",
            size(bytes.into()),
            size(after),
            size(allocation)
        );
    }
    // Memory within an allocation is paid for by the allocation already.
    let extra_per_day = if allocation > 0 {
        0
    } else {
        u128::from(bytes) * CYCLES_PER_GIB_SECOND * DAY / GIB
    };
    let burn = budget.idle_cycles_burned_per_day + extra_per_day;
    let limit = burn * u128::from(budget.freezing_threshold) / DAY;
    if budget.cycles < limit {
        bail!(
            "{canister} cannot afford this snapshot: its {} would raise the canister's idle burn to {} cycles a day and its freezing limit ({} days of it) to {} cycles, above the {} cycles it holds, so it would freeze; top the canister up, or {remedies}",
            size(bytes.into()),
            group(burn),
            u128::from(budget.freezing_threshold) / DAY,
            group(limit),
            group(budget.cycles)
        );
    }
    Ok(())
}

/// `1_234_567`, as the SDKs print cycles.
fn group(n: u128) -> String {
    let digits = n.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push('_');
        }
        grouped.push(c);
    }
    grouped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(cycles: u128, allocation: u64, threshold_days: u64) -> Budget {
        Budget {
            cycles,
            memory_size: 10 << 20,
            memory_allocation: allocation,
            freezing_threshold: threshold_days * 86_400,
            idle_cycles_burned_per_day: 1_000_000,
        }
    }

    #[test]
    fn a_snapshot_that_would_freeze_the_canister_is_refused_with_the_numbers() {
        let chat = CanisterRef::chat();
        // 1 GiB for 30 days at 127,000 cycles per GiB-second is 329 billion cycles.
        assert!(check(&chat, &budget(400_000_000_000, 0, 30), 1 << 30).is_ok());
        let error = check(&chat, &budget(300_000_000_000, 0, 30), 1 << 30)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("freezing limit (30 days of it) to 329_214_000_000 cycles, above the 300_000_000_000 cycles it holds"),
            "{error}"
        );
    }

    #[test]
    fn a_snapshot_past_the_memory_allocation_is_refused_and_one_within_it_costs_nothing_more() {
        let chat = CanisterRef::chat();
        let error = check(&chat, &budget(u128::MAX, 20 << 20, 30), 11 << 20)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("over its memory allocation of 20.00 MiB"),
            "{error}"
        );
        assert!(check(&chat, &budget(30_000_000, 20 << 20, 30), 5 << 20).is_ok());
    }
}
