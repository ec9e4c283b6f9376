//! Merkle proofs as the API serves them (`/v1/audit/proofs/inclusion` and
//! `/v1/audit/proofs/consistency`), checked with the core's RFC 9162 verifiers: the browser
//! needs neither the log nor the server's word, only the proof and a root it trusts.

use perpetua_core::audit::Hash;
use perpetua_core::merkle::{leaf_hash, verify_consistency, verify_inclusion};
use serde::Deserialize;

/// An inclusion proof's JSON.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Inclusion {
    position: u64,
    leaf_index: u64,
    tree_size: u64,
    event_hash: Hash,
    leaf_hash: Hash,
    root_hash: Hash,
    proof: Vec<Hash>,
}

/// A consistency proof's JSON.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Consistency {
    first: u64,
    second: u64,
    first_root: Hash,
    second_root: Hash,
    proof: Vec<Hash>,
}

/// Whether an inclusion proof holds: its leaf is its event hash's (`SHA-256(0x00 ‖ hash)`), at
/// `position − 1`, and the audit path leads from it to `rootHash` in a tree of `treeSize`.
/// An error for JSON that is not such a proof.
pub fn inclusion_holds(json: &str) -> Result<bool, String> {
    let p: Inclusion = serde_json::from_str(json).map_err(|e| format!("not an inclusion proof: {e}"))?;
    Ok(p.position >= 1
        && p.leaf_index == p.position - 1
        && p.leaf_hash == leaf_hash(&p.event_hash.0)
        && verify_inclusion(p.leaf_index, p.tree_size, &p.leaf_hash, &p.proof, &p.root_hash))
}

/// Whether a consistency proof holds: the tree of `second` leaves with root `secondRoot`
/// extends the tree of `first` leaves with root `firstRoot`.
pub fn consistency_holds(json: &str) -> Result<bool, String> {
    let p: Consistency = serde_json::from_str(json).map_err(|e| format!("not a consistency proof: {e}"))?;
    Ok(verify_consistency(p.first, p.second, &p.first_root, &p.second_root, &p.proof))
}

/// [`crate::verify_receipt`]: `{ok, eventsBytesChecked, error}` for a receipt's JSON.
pub fn receipt_report(receipt: &str, trusted_keys: &[String]) -> Result<String, String> {
    use perpetua_core::checkpoint::{self, Receipt};
    let receipt: Receipt = serde_json::from_str(receipt).map_err(|e| format!("not a receipt: {e}"))?;
    let trusted = trusted_keys
        .iter()
        .map(|key| {
            checkpoint::parse_public_key(key).ok_or_else(|| format!("{key:?} is not a public key (64 hex digits)"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let result = checkpoint::verify_receipt(&receipt, (!trusted.is_empty()).then_some(trusted.as_slice()));
    let report = match result {
        Ok(checked) => serde_json::json!({ "ok": true, "eventsBytesChecked": checked, "error": null }),
        Err(e) => serde_json::json!({ "ok": false, "eventsBytesChecked": null, "error": e.to_string() }),
    };
    Ok(report.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use perpetua_core::merkle::MerkleTree;
    use serde_json::json;

    /// The proofs of the demo's log, in the API's JSON: each holds, and each altered does not.
    #[test]
    fn proofs_in_the_apis_json_hold_and_altered_ones_do_not() {
        let (_, log) = perpetua_core::demo::sealed_log();
        let tree = MerkleTree::of_events(log.iter().map(|e| &e.hash));
        let size = tree.size();
        for position in [1, 2, size / 2, size] {
            let proof = inclusion_json(&tree, &log[position as usize - 1].hash, position, size);
            assert_eq!(inclusion_holds(&proof.to_string()), Ok(true), "position {position}");
            let mut moved = proof.clone();
            moved["position"] = json!(position % size + 1);
            assert_eq!(inclusion_holds(&moved.to_string()), Ok(false), "another position");
            let mut other = proof.clone();
            other["eventHash"] = json!(log[(position % size) as usize].hash);
            assert_eq!(inclusion_holds(&other.to_string()), Ok(false), "another event");
        }
        let consistency = |first: u64, second: u64| {
            json!({
                "first": first, "second": second,
                "firstRoot": tree.root(first).unwrap(), "secondRoot": tree.root(second).unwrap(),
                "proof": tree.consistency_proof(first, second).unwrap(),
            })
        };
        let proof = consistency(1000, size);
        assert_eq!(consistency_holds(&proof.to_string()), Ok(true));
        let mut rewritten = proof.clone();
        rewritten["firstRoot"] = json!(tree.root(999).unwrap());
        assert_eq!(consistency_holds(&rewritten.to_string()), Ok(false), "a head the log does not extend");
        assert!(inclusion_holds("{}").is_err());
        assert!(consistency_holds(r#"{"first":1}"#).is_err());
    }

    fn inclusion_json(tree: &MerkleTree, event_hash: &Hash, position: u64, size: u64) -> serde_json::Value {
        json!({
            "position": position, "leafIndex": position - 1, "treeSize": size,
            "eventHash": event_hash, "leafHash": leaf_hash(&event_hash.0),
            "rootHash": tree.root(size).unwrap(), "proof": tree.inclusion_proof(position - 1, size).unwrap(),
        })
    }

    /// A receipt in the API's JSON holds under its signer's key, and not under another.
    #[test]
    fn a_receipt_holds_under_its_key_only() {
        use perpetua_core::checkpoint::{self, Head};
        let (_, log) = perpetua_core::demo::sealed_log();
        let tree = MerkleTree::of_events(log.iter().map(|e| &e.hash));
        let size = tree.size();
        let head = Head {
            tree_size: size,
            chain_hash: log.last().unwrap().hash,
            root_hash: tree.root(size).unwrap(),
            timestamp: perpetua_core::time::Timestamp(1),
        };
        let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
        let signed = checkpoint::sign(head, &key);
        // Written as the server writes it (serde_json::Value would reorder the payloads' keys).
        let events = [0u64, 9]
            .iter()
            .map(|&i| checkpoint::ReceiptEvent {
                event: log[i as usize].clone(),
                proof: tree.inclusion_proof(i, size).unwrap(),
            })
            .collect();
        let receipt = serde_json::to_string(&checkpoint::Receipt { checkpoint: signed.clone(), events }).unwrap();
        let ours = vec![signed.public_key.clone()];
        let report: serde_json::Value = serde_json::from_str(&receipt_report(&receipt, &ours).unwrap()).unwrap();
        assert_eq!(report["ok"], true, "{report}");
        assert_eq!(report["eventsBytesChecked"], 2);
        let theirs = vec![checkpoint::sign(head, &ed25519_dalek::SigningKey::from_bytes(&[4; 32])).public_key];
        let report: serde_json::Value = serde_json::from_str(&receipt_report(&receipt, &theirs).unwrap()).unwrap();
        assert_eq!(report["ok"], false, "{report}");
        assert!(receipt_report("{}", &[]).is_err());
    }
}
