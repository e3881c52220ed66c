//! The notes canister: a canister of the user's own for the xtask's tests, unlike the chat in
//! every way that matters to a backup tool — a different interface, and state kept on the
//! heap, written to stable memory only by `pre_upgrade` and read back by `post_upgrade` (as
//! the upstream snapshots example keeps its chat). A snapshot holds it in the heap memory.

use std::cell::RefCell;

use ic_cdk::{post_upgrade, pre_upgrade, query, update};

thread_local! {
    static NOTES: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

#[update]
fn add(note: String) -> u64 {
    NOTES.with_borrow_mut(|notes| {
        notes.push(note);
        notes.len() as u64
    })
}

#[query]
fn notes() -> Vec<String> {
    NOTES.with_borrow(Clone::clone)
}

#[query]
fn count() -> u64 {
    NOTES.with_borrow(|notes| notes.len() as u64)
}

#[query]
fn get(index: u64) -> Option<String> {
    NOTES.with_borrow(|notes| {
        usize::try_from(index)
            .ok()
            .and_then(|i| notes.get(i).cloned())
    })
}

#[update]
fn clear() {
    NOTES.with_borrow_mut(Vec::clear);
}

#[pre_upgrade]
fn save() {
    let notes = NOTES.take();
    ic_cdk::storage::stable_save((notes,)).expect("the notes fit in stable memory");
}

#[post_upgrade]
fn restore() {
    let (notes,): (Vec<String>,) =
        ic_cdk::storage::stable_restore().expect("stable memory holds the notes saved before");
    NOTES.set(notes);
}
