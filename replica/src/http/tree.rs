//! The certified state tree (IC interface spec, "The system state tree"): built as nested
//! labels, then turned into a hash tree in which every label stays visible and only the
//! contents off the requested paths are pruned — so a client can prove both presence and
//! absence — and signed into a certificate.

use std::collections::BTreeMap;

use ic_certification::hash_tree::{HashTree, fork, label, leaf, pruned};
use serde::Serialize;

use crate::keys::Keys;

/// A node of the state tree.
pub enum Node {
    Leaf(Vec<u8>),
    Labeled(BTreeMap<Vec<u8>, Node>),
}

impl Node {
    pub fn empty() -> Self {
        Self::Labeled(BTreeMap::new())
    }

    /// The subtree at `path`, created (as labeled nodes) where missing.
    pub fn at(&mut self, path: &[&[u8]]) -> &mut Node {
        path.iter().fold(self, |node, part| match node {
            Node::Labeled(children) => children.entry(part.to_vec()).or_insert_with(Node::empty),
            Node::Leaf(_) => panic!("the state tree puts leaves only at the ends of paths"),
        })
    }

    pub fn set(&mut self, path: &[&[u8]], value: Vec<u8>) {
        let (last, parents) = path.split_last().expect("a non-empty path");
        match self.at(parents) {
            Node::Labeled(children) => {
                children.insert(last.to_vec(), Node::Leaf(value));
            }
            Node::Leaf(_) => panic!("the state tree puts leaves only at the ends of paths"),
        }
    }

    /// The hash tree revealing the requested `paths` (and every label), the rest pruned.
    pub fn witness(&self, paths: &[Vec<Vec<u8>>]) -> HashTree<Vec<u8>> {
        self.reveal(paths, 0)
    }

    fn to_tree(&self) -> HashTree<Vec<u8>> {
        match self {
            Node::Leaf(value) => leaf(value.clone()),
            Node::Labeled(children) => balanced(
                children
                    .iter()
                    .map(|(name, child)| label(name.clone(), child.to_tree()))
                    .collect(),
            ),
        }
    }

    fn reveal(&self, paths: &[Vec<Vec<u8>>], depth: usize) -> HashTree<Vec<u8>> {
        // A requested path that ends here reveals everything below.
        if paths.iter().any(|p| p.len() == depth) {
            return self.to_tree();
        }
        match self {
            Node::Leaf(value) => leaf(value.clone()),
            Node::Labeled(children) => balanced(
                children
                    .iter()
                    .map(|(name, child)| {
                        let below: Vec<_> = paths
                            .iter()
                            .filter(|p| p.get(depth) == Some(name))
                            .cloned()
                            .collect();
                        let content = if below.is_empty() {
                            pruned(child.to_tree().digest())
                        } else {
                            child.reveal(&below, depth + 1)
                        };
                        label(name.clone(), content)
                    })
                    .collect(),
            ),
        }
    }
}

/// Labeled subtrees joined by forks into a balanced tree, keeping their order.
fn balanced(mut nodes: Vec<HashTree<Vec<u8>>>) -> HashTree<Vec<u8>> {
    match nodes.len() {
        0 => ic_certification::hash_tree::empty(),
        1 => nodes.pop().expect("one"),
        n => {
            let right = nodes.split_off(n / 2);
            fork(balanced(nodes), balanced(right))
        }
    }
}

#[derive(Serialize)]
struct Certificate<'a> {
    tree: &'a HashTree<Vec<u8>>,
    #[serde(with = "serde_bytes")]
    signature: Vec<u8>,
}

/// A CBOR certificate (with the self-describe tag) of `tree`, signed with the root key.
pub fn certificate(keys: &Keys, tree: &HashTree<Vec<u8>>) -> Vec<u8> {
    signed_certificate(tree, keys.sign_state(&tree.digest()))
}

/// A CBOR certificate of `tree` with `signature`, made for the root of a tree `tree` is a
/// witness of.
pub fn signed_certificate(tree: &HashTree<Vec<u8>>, signature: Vec<u8>) -> Vec<u8> {
    cbor(&Certificate { tree, signature })
}

/// CBOR with the self-describe tag 55799, as the IC sends it.
pub fn cbor(value: &impl Serialize) -> Vec<u8> {
    let mut serializer = serde_cbor::Serializer::new(Vec::new());
    serializer.self_describe().expect("writing to memory");
    value
        .serialize(&mut serializer)
        .expect("values always encode");
    serializer.into_inner()
}

/// Unsigned LEB128, the encoding of numbers in the state tree.
pub fn leb128(mut n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}
