//! A Merkle tree over the log, built as Certificate Transparency builds one (RFC 9162 §2.1):
//! its leaves are the events' hashes in position order, so leaf `i` is the event at position
//! `i + 1`. Beside the hash chain, which needs the whole log to check, the tree gives proofs a
//! third party checks with a few hashes: that one event is in the log under a tree head
//! (an inclusion proof), and that a later tree head extends an earlier one, the log only
//! appended to (a consistency proof).
//!
//! Hashing, as RFC 9162 §2.1.1: the hash of the empty tree is `SHA-256()`; a leaf's is
//! `SHA-256(0x00 ‖ leaf)` (here `leaf` is the event's 32-byte hash, raw); an interior node's is
//! `SHA-256(0x01 ‖ left ‖ right)`; a tree of `n > 1` leaves splits at `k`, the largest power of
//! two smaller than `n`. The prefixes keep a leaf from passing for a node.
//!
//! [`MerkleTree`] keeps every level of the tree's perfect subtrees, so a root, an inclusion
//! proof or a consistency proof reads O(log n) stored nodes, and recomputes at most the
//! O(log n) nodes of the tree's incomplete right edge. [`verify_inclusion`] and
//! [`verify_consistency`] are RFC 9162's verification algorithms (§2.1.3.2, §2.1.4.2).

use crate::audit::Hash;
use sha2::{Digest, Sha256};

/// The root of the empty tree: `SHA-256` of nothing.
pub fn empty_root() -> Hash {
    Hash(Sha256::digest([]).into())
}

/// A leaf's hash: `SHA-256(0x00 ‖ data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x00]);
    hasher.update(data);
    Hash(hasher.finalize().into())
}

/// An interior node's hash: `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x01]);
    hasher.update(left.0);
    hasher.update(right.0);
    Hash(hasher.finalize().into())
}

/// The largest power of two smaller than `n` (`n > 1`): where a tree of `n` leaves splits.
fn split(n: u64) -> u64 {
    debug_assert!(n > 1);
    1 << (63 - (n - 1).leading_zeros())
}

/// The tree, level by level: `levels[h][i]` is the hash of the perfect subtree of `2^h`
/// leaves from leaf `i · 2^h`. Appending a leaf completes at most one subtree per level.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MerkleTree {
    levels: Vec<Vec<Hash>>,
}

/// Why a proof cannot be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProofError {
    /// The tree size asked for is larger than the tree.
    TreeTooSmall {
        /// The size asked for.
        asked: u64,
        /// The tree's size.
        size: u64,
    },
    /// The leaf is not in a tree of that size (its index is not below it).
    LeafOutOfRange {
        /// The leaf's index.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// A consistency proof from a larger tree to a smaller one.
    Backwards {
        /// The first (earlier) size.
        first: u64,
        /// The second (later) size.
        second: u64,
    },
}

impl std::fmt::Display for ProofError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProofError::TreeTooSmall { asked, size } => write!(f, "the tree has {size} leaves, not {asked}"),
            ProofError::LeafOutOfRange { index, size } => write!(f, "leaf {index} is not in a tree of {size} leaves"),
            ProofError::Backwards { first, second } => {
                write!(f, "a tree of {first} leaves cannot be extended by one of {second}")
            }
        }
    }
}

impl std::error::Error for ProofError {}

impl MerkleTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// The tree over these event hashes, in position order.
    pub fn of_events<'a>(hashes: impl IntoIterator<Item = &'a Hash>) -> Self {
        let mut tree = Self::new();
        for hash in hashes {
            tree.push_event(hash);
        }
        tree
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |leaves| leaves.len() as u64)
    }

    /// Appends the next event's hash as a leaf.
    pub fn push_event(&mut self, event_hash: &Hash) {
        self.push_leaf_hash(leaf_hash(&event_hash.0));
    }

    /// Appends a leaf given by its leaf hash.
    pub fn push_leaf_hash(&mut self, leaf: Hash) {
        let mut node = leaf;
        let mut height = 0;
        loop {
            if self.levels.len() == height {
                self.levels.push(Vec::new());
            }
            let level = &mut self.levels[height];
            level.push(node);
            if level.len() % 2 == 1 {
                return;
            }
            node = node_hash(&level[level.len() - 2], &level[level.len() - 1]);
            height += 1;
        }
    }

    /// The leaf hash of leaf `index`.
    pub fn leaf(&self, index: u64) -> Option<Hash> {
        self.levels.first().and_then(|leaves| leaves.get(usize::try_from(index).ok()?)).copied()
    }

    /// The root of the tree of its first `size` leaves (the tree head at that size).
    pub fn root(&self, size: u64) -> Result<Hash, ProofError> {
        self.check_size(size)?;
        Ok(if size == 0 { empty_root() } else { self.subtree(0, size) })
    }

    /// The audit path of leaf `index` in the tree of the first `size` leaves (RFC 9162
    /// §2.1.3.1), nearest the leaf first.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, ProofError> {
        self.check_size(size)?;
        if index >= size {
            return Err(ProofError::LeafOutOfRange { index, size });
        }
        let mut proof = Vec::new();
        self.path(index, 0, size, &mut proof);
        Ok(proof)
    }

    /// The proof that the tree of the first `second` leaves extends the tree of the first
    /// `first` (RFC 9162 §2.1.4.1); empty when `first` is 0 or equals `second`.
    pub fn consistency_proof(&self, first: u64, second: u64) -> Result<Vec<Hash>, ProofError> {
        self.check_size(second)?;
        if first > second {
            return Err(ProofError::Backwards { first, second });
        }
        let mut proof = Vec::new();
        if first > 0 && first < second {
            self.subproof(first, 0, second, true, &mut proof);
        }
        Ok(proof)
    }

    fn check_size(&self, size: u64) -> Result<(), ProofError> {
        if size > self.size() {
            return Err(ProofError::TreeTooSmall { asked: size, size: self.size() });
        }
        Ok(())
    }

    /// The hash of the leaves `start .. start + size` (`size > 0`), where `start` is a
    /// multiple of the largest power of two not above `size`, as every subtree the recursion
    /// of RFC 9162 reaches is: a perfect subtree is read from its level; otherwise its left
    /// part is perfect and only its right part is recomputed.
    fn subtree(&self, start: u64, size: u64) -> Hash {
        if size.is_power_of_two() {
            let height = size.trailing_zeros() as usize;
            return self.levels[height][(start >> height) as usize];
        }
        let k = split(size);
        node_hash(&self.subtree(start, k), &self.subtree(start + k, size - k))
    }

    /// RFC 9162's `PATH(m, D[start : start + size])`, appended to `proof`.
    fn path(&self, m: u64, start: u64, size: u64, proof: &mut Vec<Hash>) {
        if size == 1 {
            return;
        }
        let k = split(size);
        if m < k {
            self.path(m, start, k, proof);
            proof.push(self.subtree(start + k, size - k));
        } else {
            self.path(m - k, start + k, size - k, proof);
            proof.push(self.subtree(start, k));
        }
    }

    /// RFC 9162's `SUBPROOF(m, D[start : start + size], complete)`, appended to `proof`.
    fn subproof(&self, m: u64, start: u64, size: u64, complete: bool, proof: &mut Vec<Hash>) {
        if m == size {
            if !complete {
                proof.push(self.subtree(start, size));
            }
            return;
        }
        let k = split(size);
        if m <= k {
            self.subproof(m, start, k, complete, proof);
            proof.push(self.subtree(start + k, size - k));
        } else {
            self.subproof(m - k, start + k, size - k, false, proof);
            proof.push(self.subtree(start, k));
        }
    }
}

/// True when `proof` shows the leaf of hash `leaf` at `index` under `root`, the head of a
/// tree of `size` leaves (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && r == *root
}

/// True when `proof` shows the tree of `second` leaves with head `second_root` extends the
/// tree of `first` leaves with head `first_root`: the later log holds the earlier one as its
/// prefix (RFC 9162 §2.1.4.2; an empty tree is a prefix of every tree).
pub fn verify_consistency(first: u64, second: u64, first_root: &Hash, second_root: &Hash, proof: &[Hash]) -> bool {
    if first > second {
        return false;
    }
    if first == second {
        return proof.is_empty() && first_root == second_root;
    }
    if first == 0 {
        return proof.is_empty();
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if first.is_power_of_two() {
        path.push(*first_root);
    }
    path.extend_from_slice(proof);
    let Some((&seed, rest)) = path.split_first() else { return false };
    let (mut f, mut s) = (first - 1, second - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (seed, seed);
    for c in rest {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && fr == *first_root && sr == *second_root
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(text: &str) -> Hash {
        Hash::from_hex(text).expect("64 hex digits")
    }

    fn bytes(text: &str) -> Vec<u8> {
        (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex")).collect()
    }

    /// Certificate Transparency's reference leaves (RFC 6962's test data, as published with
    /// its implementations), and the tree heads of their first 0..=8.
    const LEAVES: [&str; 8] =
        ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"];
    const ROOTS: [&str; 9] = [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    fn reference_tree() -> MerkleTree {
        let mut tree = MerkleTree::new();
        for leaf in LEAVES {
            tree.push_leaf_hash(leaf_hash(&bytes(leaf)));
        }
        tree
    }

    /// MTH as RFC 9162 defines it, straight from the leaves, to check the stored levels.
    fn reference_root(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split(n as u64) as usize;
                node_hash(&reference_root(&leaves[..k]), &reference_root(&leaves[k..]))
            }
        }
    }

    #[test]
    fn the_reference_tree_heads() {
        let tree = reference_tree();
        for (size, root) in ROOTS.iter().enumerate() {
            assert_eq!(tree.root(size as u64), Ok(hex(root)), "size {size}");
        }
        assert_eq!(tree.root(9), Err(ProofError::TreeTooSmall { asked: 9, size: 8 }));
    }

    #[test]
    fn the_reference_proofs() {
        let tree = reference_tree();
        let inclusion = [
            (
                0,
                8,
                [
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                5,
                8,
                [
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
        ];
        for (index, size, expected) in inclusion {
            let proof = tree.inclusion_proof(index, size).expect("a proof");
            assert_eq!(proof, expected.map(hex).to_vec(), "leaf {index} of {size}");
            let leaf = tree.leaf(index).expect("a leaf");
            assert!(verify_inclusion(index, size, &leaf, &proof, &hex(ROOTS[size as usize])));
        }
        let consistency: [(u64, u64, &[&str]); 3] = [
            (
                2,
                8,
                &[
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                6,
                8,
                &[
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                5,
                &[
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
        ];
        for (first, second, expected) in consistency {
            let proof = tree.consistency_proof(first, second).expect("a proof");
            assert_eq!(proof, expected.iter().map(|h| hex(h)).collect::<Vec<_>>(), "{first} to {second}");
            let (a, b) = (hex(ROOTS[first as usize]), hex(ROOTS[second as usize]));
            assert!(verify_consistency(first, second, &a, &b, &proof));
        }
    }

    /// Every leaf of every tree up to 70 leaves, and every pair of sizes: the stored levels
    /// give the reference root, every proof verifies, and every altered one does not.
    #[test]
    fn every_proof_verifies_and_no_altered_one_does() {
        let hashes: Vec<Hash> = (0u32..70).map(|i| Hash(Sha256::digest(i.to_be_bytes()).into())).collect();
        let tree = MerkleTree::of_events(&hashes);
        let leaves: Vec<Hash> = hashes.iter().map(|h| leaf_hash(&h.0)).collect();
        let flip = |h: &Hash| {
            let mut h = *h;
            h.0[7] ^= 1;
            h
        };
        for size in 1..=tree.size() {
            let root = tree.root(size).expect("a root");
            assert_eq!(root, reference_root(&leaves[..size as usize]), "size {size}");
            for index in 0..size {
                let leaf = leaves[index as usize];
                let proof = tree.inclusion_proof(index, size).expect("a proof");
                assert!(proof.len() <= 64 - (size - 1).leading_zeros() as usize, "O(log n) long");
                assert!(verify_inclusion(index, size, &leaf, &proof, &root), "leaf {index} of {size}");
                assert!(!verify_inclusion(index, size, &flip(&leaf), &proof, &root));
                assert!(!verify_inclusion(index, size, &leaf, &proof, &flip(&root)));
                if size > 1 {
                    assert!(!verify_inclusion((index + 1) % size, size, &leaf, &proof, &root));
                    for i in 0..proof.len() {
                        let mut altered = proof.clone();
                        altered[i] = flip(&altered[i]);
                        assert!(!verify_inclusion(index, size, &leaf, &altered, &root));
                    }
                    assert!(!verify_inclusion(index, size, &leaf, &proof[1..], &root));
                }
                let mut longer = proof.clone();
                longer.push(root);
                assert!(!verify_inclusion(index, size, &leaf, &longer, &root));
            }
            for first in 0..=size {
                let first_root = tree.root(first).expect("a root");
                let proof = tree.consistency_proof(first, size).expect("a proof");
                assert!(verify_consistency(first, size, &first_root, &root, &proof), "{first} to {size}");
                if first > 0 && first < size {
                    assert!(!verify_consistency(first, size, &flip(&first_root), &root, &proof));
                    assert!(!verify_consistency(first, size, &first_root, &flip(&root), &proof));
                    for i in 0..proof.len() {
                        let mut altered = proof.clone();
                        altered[i] = flip(&altered[i]);
                        assert!(!verify_consistency(first, size, &first_root, &root, &altered));
                    }
                    assert!(!verify_consistency(first, size, &first_root, &root, &[]));
                }
            }
        }
        assert_eq!(tree.inclusion_proof(5, 5), Err(ProofError::LeafOutOfRange { index: 5, size: 5 }));
        assert_eq!(tree.consistency_proof(6, 5), Err(ProofError::Backwards { first: 6, second: 5 }));
    }

    /// A log rewritten under an earlier head (one event changed, the rest appended after it)
    /// has no consistency proof with that head: the one its tree gives does not verify.
    #[test]
    fn a_rewritten_history_is_not_consistent() {
        let hashes: Vec<Hash> = (0u32..40).map(|i| Hash(Sha256::digest(i.to_le_bytes()).into())).collect();
        let honest = MerkleTree::of_events(&hashes);
        for changed in [0usize, 7, 12, 19] {
            let mut rewritten = hashes.clone();
            rewritten[changed].0[0] ^= 0x80;
            let forged = MerkleTree::of_events(&rewritten);
            let first = 20;
            let seen = honest.root(first).expect("the head an auditor saw");
            let proof = forged.consistency_proof(first, 40).expect("a proof");
            let later = forged.root(40).expect("the forged head");
            assert!(!verify_consistency(first, 40, &seen, &later, &proof), "event {changed} rewritten");
        }
    }
}
