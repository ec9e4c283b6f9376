//! End-to-end tests of the real `perpetua` binary over HTTP, each on SQLite, PostgreSQL and
//! MariaDB (a database of its own per test). An unreachable server fails the test, unless it
//! is named in `PERPETUA_SKIP_BACKENDS` (then the test says `SKIPPED:` and is counted apart).

mod failover;
mod operations;
mod relay;
mod replica;
mod roles;
mod split;
mod support;

use operations::{drain, operations};
use perpetua_core::event::parse_stored_events;
use perpetua_core::projection::ReadModels;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use support::{all_accounts, limit, Server, TestDb, ADMIN_TOKEN};

macro_rules! on_every_backend {
    ($($test:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    if let Some(db) = super::support::database(super::support::Backend::Sqlite, stringify!($test)).await {
                        super::$test(db).await;
                    }
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    if let Some(db) = super::support::database(super::support::Backend::Postgres, stringify!($test)).await {
                        super::$test(db).await;
                    }
                }
            )+
        }
        mod mysql {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    if let Some(db) = super::support::database(super::support::Backend::MySql, stringify!($test)).await {
                        super::$test(db).await;
                    }
                }
            )+
        }
    };
}

on_every_backend!(
    scenario,
    hostile_input,
    crash_under_load,
    a_failed_commit_is_recovered_from,
    money_by_hand,
    batch_orders,
    cancel_all,
    client_order_ids,
    a_user_lost_in_a_crash_is_stored_on_retry,
    live_streams,
    candles,
    operations,
    drain,
    merkle_proofs,
    signed_checkpoints
);

mod deployment {
    use super::support::{database, Backend};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rate_limit() {
        let db = database(Backend::Sqlite, "rate_limit").await.expect("SQLite");
        super::operations::rate_limit(db).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn embedded_viewer() {
        let db = database(Backend::Sqlite, "embedded_viewer").await.expect("SQLite");
        super::operations::embedded_viewer(db).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn systemd_unit_and_container_recipe() {
        let db = database(Backend::Sqlite, "deployment_files").await.expect("SQLite");
        super::operations::deployment_files(db).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn compose_file_on_postgres() {
        if let Some(db) = database(Backend::Postgres, "deployment_compose").await {
            super::operations::deployment_files(db).await;
        }
    }
}

/// `POST /v1/users` for a trader commits the account, then stores the user. A server that
/// stops between the two (reproduced by deleting the user's row while the server is down)
/// leaves an account without its user; the client's retry under its key then stores the user,
/// with a new token that works, instead of answering from the record with no token at all
/// (and of two retries at once, one does).
async fn a_user_lost_in_a_crash_is_stored_on_retry(db: TestDb) {
    let request = json!({ "name": "late", "role": "trader" });
    let send = |server: &Server| {
        server
            .client
            .post(format!("{}/v1/users", server.base))
            .bearer_auth(ADMIN_TOKEN)
            .header("Idempotency-Key", "create-late")
            .json(&request)
            .send()
    };
    let mut server = Server::start(&db, false);
    let first: Value = send(&server).await.expect("sent").json().await.expect("JSON");
    let user_id = first["userId"].as_str().expect("a user id").to_owned();
    server.kill();
    let users = perpetua_server::db::Db::open(&db.url, 1).await.expect("the users' database");
    let deleted = users.execute("DELETE FROM users WHERE user_id = ?", &[user_id.clone().into()]).await;
    assert_eq!(deleted.expect("delete"), 1, "the user's row is gone, as if never written");

    let server = Server::start(&db, false);
    let head = server.head().await;
    // Two retries at once: one stores the user and gets its token, the other is answered as a
    // retry (never a 5xx from the second insert).
    let (one, two) = tokio::join!(send(&server), send(&server));
    let (one, two) = (one.expect("sent"), two.expect("sent"));
    let mut statuses = [one.status(), two.status()];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::CREATED]);
    let retry = if one.status() == StatusCode::CREATED { one } else { two };
    let retry: Value = retry.json().await.expect("JSON");
    assert_eq!((&retry["userId"], &retry["accountId"]), (&first["userId"], &first["accountId"]), "{retry}");
    assert_eq!(server.head().await, head, "the account is not opened twice");
    let token = retry["apiToken"].as_str().expect("a new token");
    // The account was opened before the crash; the restarted server's projector may still be
    // folding it in (the first server was killed before its page was written, say).
    server.settle().await;
    let account = server.get(token, &format!("/v1/accounts/{}", first["accountId"].as_str().unwrap())).await;
    assert_eq!(account["accountId"], first["accountId"]);
    // Once stored, a retry is answered from the record again, without a token.
    let again = send(&server).await.expect("sent");
    assert_eq!(again.status(), StatusCode::OK);
    assert!(again.json::<Value>().await.expect("JSON")["apiToken"].is_null());
}

/// The log's Merkle tree (RFC 9162) over the demo's log: its head is the root of the events'
/// hashes the log serves; every inclusion proof asked verifies under it (with the core's
/// verifier, which knows nothing of the server); after more commands a consistency proof
/// shows the new head extends the old, whose root is unchanged; sizes and positions outside
/// the log are refused by code.
async fn merkle_proofs(db: TestDb) {
    use perpetua_core::audit::Hash;
    use perpetua_core::merkle::{leaf_hash, verify_consistency, verify_inclusion, MerkleTree};
    let server = Server::start(&db, true);
    let hash = |value: &Value| Hash::from_hex(value.as_str().expect("a hash")).expect("64 hex digits");
    let head = server.head().await;
    let events = server.get(ADMIN_TOKEN, "/v1/events?limit=10000&fromPosition=1").await;
    let hashes: Vec<Hash> = events["data"].as_array().expect("events").iter().map(|e| hash(&e["hash"])).collect();
    assert_eq!(hashes.len() as u64, head, "the demo's whole log in one page");
    let expected = MerkleTree::of_events(&hashes);

    let tree = server.get(ADMIN_TOKEN, "/v1/audit/tree").await;
    assert_eq!(tree["treeSize"], head, "{tree}");
    let root = hash(&tree["rootHash"]);
    assert_eq!(Ok(root), expected.root(head), "the root of the log's own hashes");
    for position in [1, 2, 3, head / 3, head / 2 + 1, head - 1, head] {
        let proof = server.get(ADMIN_TOKEN, &format!("/v1/audit/proofs/inclusion?position={position}")).await;
        assert_eq!(
            (&proof["position"], &proof["leafIndex"], &proof["treeSize"]),
            (&json!(position), &json!(position - 1), &json!(head))
        );
        let event_hash = hash(&proof["eventHash"]);
        assert_eq!(event_hash, hashes[position as usize - 1], "the event's own hash");
        assert_eq!(hash(&proof["leafHash"]), leaf_hash(&event_hash.0));
        assert_eq!(hash(&proof["rootHash"]), root);
        let path: Vec<Hash> = proof["proof"].as_array().expect("a path").iter().map(hash).collect();
        assert!(path.len() <= 12, "O(log n): {} nodes for {head} events", path.len());
        assert!(verify_inclusion(position - 1, head, &leaf_hash(&event_hash.0), &path, &root), "position {position}");
        assert!(
            !verify_inclusion(position % head, head, &leaf_hash(&event_hash.0), &path, &root),
            "not at another leaf"
        );
    }
    // Under an earlier head too.
    let at = head / 2;
    let proof = server.get(ADMIN_TOKEN, &format!("/v1/audit/proofs/inclusion?position=7&treeSize={at}")).await;
    let path: Vec<Hash> = proof["proof"].as_array().expect("a path").iter().map(hash).collect();
    let earlier = expected.root(at).expect("a root");
    assert_eq!(hash(&proof["rootHash"]), earlier);
    assert!(verify_inclusion(6, at, &leaf_hash(&hashes[6].0), &path, &earlier));

    // More commands: the new head extends the old one.
    let trader = server.trader("late", "1000").await;
    server.post(&trader.token, "/v1/orders", limit(&trader.account, "BTCUSDT", "BUY", "40000", "0.01")).await;
    let later = server.head().await;
    assert!(later > head);
    let proof = server.get(&trader.token, &format!("/v1/audit/proofs/consistency?first={head}")).await;
    assert_eq!((&proof["first"], &proof["second"]), (&json!(head), &json!(later)), "{proof}");
    assert_eq!(hash(&proof["firstRoot"]), root, "the old head's root is unchanged");
    let new_root = hash(&server.get(&trader.token, "/v1/audit/tree").await["rootHash"]);
    assert_eq!(hash(&proof["secondRoot"]), new_root);
    let path: Vec<Hash> = proof["proof"].as_array().expect("a proof").iter().map(hash).collect();
    assert!(verify_consistency(head, later, &root, &new_root, &path));
    let mut forged = root;
    forged.0[0] ^= 1;
    assert!(!verify_consistency(head, later, &forged, &new_root, &path), "a head the log does not extend");
    let again = server.get(ADMIN_TOKEN, &format!("/v1/audit/tree?treeSize={head}")).await;
    assert_eq!(hash(&again["rootHash"]), root);

    for (path, code) in [
        (format!("/v1/audit/tree?treeSize={}", later + 1), "TREE_SIZE_BEYOND_HEAD"),
        ("/v1/audit/proofs/inclusion?position=0".to_owned(), "POSITION_NOT_IN_TREE"),
        (format!("/v1/audit/proofs/inclusion?position={}&treeSize=10", 11), "POSITION_NOT_IN_TREE"),
        ("/v1/audit/proofs/inclusion".to_owned(), "INVALID_QUERY"),
        (format!("/v1/audit/proofs/consistency?first={}&second={head}", head + 1), "INVALID_RANGE"),
        (format!("/v1/audit/proofs/consistency?first=1&second={}", later + 1), "TREE_SIZE_BEYOND_HEAD"),
    ] {
        let (status, body) = server.call(Some(ADMIN_TOKEN), Method::GET, &path, None).await;
        assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some(code)), "{path}: {body}");
    }
}

/// Signed checkpoints: the writer signs its head within the interval, with the key in its
/// file; the checkpoint verifies under that key only and states the log's own chain hash and
/// Merkle root; asked for again with the head unmoved it is the same one, after a command a
/// new one that a consistency proof shows extends it. An export of the whole log carries
/// a checkpoint of its last event, and the same export cut short is caught against it. A
/// trader's receipt for its order verifies with the public key alone. After
/// a restart with another key (a rotation) the old checkpoints are still listed and verify
/// under the old key; the new ones under the new key only.
async fn signed_checkpoints(db: TestDb) {
    use ed25519_dalek::SigningKey;
    use perpetua_core::checkpoint::{self, Checkpoint, Coverage};
    use perpetua_core::merkle::verify_consistency;
    let keys = tempfile::tempdir().expect("a directory");
    let (first_key, second_key) = (keys.path().join("first.key"), keys.path().join("second.key"));
    let args = |key: &std::path::Path| {
        ["--signing-key".to_owned(), key.display().to_string(), "--checkpoint-every-ms".into(), "100".into()]
    };
    let first_args = args(&first_key);
    let server = Server::start_with(&db, true, &first_args.iter().map(String::as_str).collect::<Vec<_>>());
    let public_of = |path: &std::path::Path| {
        let seed =
            checkpoint::parse_public_key(&std::fs::read_to_string(path).expect("the key file made")).expect("hex");
        SigningKey::from_bytes(&seed).verifying_key().to_bytes()
    };
    let first_public = public_of(&first_key);
    let read = |value: Value| -> Checkpoint {
        serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("a checkpoint: {e}: {value}"))
    };
    let head = server.head().await;
    // Signed by the periodic task, without being asked.
    let mut latest = None;
    for _ in 0..100 {
        let (status, body) = server.call(Some(ADMIN_TOKEN), Method::GET, "/v1/audit/checkpoints/latest", None).await;
        if status == StatusCode::OK && body["treeSize"] == json!(head) {
            latest = Some(read(body));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let signed = latest.expect("a checkpoint of the head within 10 s");
    assert_eq!(checkpoint::verify(&signed, Some(&[first_public])), Ok(()));
    let tree = server.get(ADMIN_TOKEN, "/v1/audit/tree").await;
    assert_eq!(json!(signed.head.root_hash), tree["rootHash"], "the log's own Merkle root");
    let events = server.get(ADMIN_TOKEN, &format!("/v1/events?fromPosition={head}&limit=1")).await;
    assert_eq!(json!(signed.head.chain_hash), events["data"][0]["hash"], "the chain hash of the head's event");

    // On demand: the same one while the head has not moved; a trader may not ask.
    let (status, again) = server.call(Some(ADMIN_TOKEN), Method::POST, "/v1/audit/checkpoints", None).await;
    assert_eq!((status, read(again)), (StatusCode::OK, signed.clone()));
    let trader = server.trader("signed", "1000").await;
    let (status, body) = server.call(Some(&trader.token), Method::POST, "/v1/audit/checkpoints", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let placed =
        server.post(&trader.token, "/v1/orders", limit(&trader.account, "BTCUSDT", "BUY", "40000", "0.01")).await;
    let order = placed["order"]["orderId"].as_str().expect("an order id").to_owned();
    // The trader's receipt for it: its events under a signed checkpoint, checked with the
    // public key alone; another trader gets nothing of it.
    // Read as the text it was sent as: each payload's bytes are what its hash covers.
    let receipt = server.client.get(format!("{}/v1/orders/{order}/receipt", server.base)).bearer_auth(&trader.token);
    let receipt = receipt.send().await.expect("an answer").text().await.expect("a body");
    let receipt: checkpoint::Receipt = serde_json::from_str(&receipt).unwrap_or_else(|e| panic!("{e}: {receipt}"));
    assert!(receipt.checkpoint.head.tree_size >= placed["position"].as_u64().expect("a position"));
    assert_eq!(checkpoint::verify_receipt(&receipt, Some(&[first_public])), Ok(1), "the OrderPlaced event");
    let mut altered = receipt.clone();
    altered.events[0].proof.reverse();
    altered.events[0].proof[0].0[0] ^= 1;
    assert!(checkpoint::verify_receipt(&altered, Some(&[first_public])).is_err());
    let nosy = server.trader("nosy", "10").await;
    let (status, _) = server.call(Some(&nosy.token), Method::GET, &format!("/v1/orders/{order}/receipt"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let later = server.head().await;
    let (status, body) = server.call(Some(ADMIN_TOKEN), Method::POST, "/v1/audit/checkpoints", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let newer = read(body);
    assert_eq!(newer.head.tree_size, later);
    assert_eq!(checkpoint::verify(&newer, Some(&[first_public])), Ok(()));
    let proof = server.get(ADMIN_TOKEN, &format!("/v1/audit/proofs/consistency?first={head}&second={later}")).await;
    let path: Vec<perpetua_core::audit::Hash> = serde_json::from_value(proof["proof"].clone()).expect("hashes");
    assert!(verify_consistency(head, later, &signed.head.root_hash, &newer.head.root_hash, &path));

    // The whole log exported: under its checkpoint; cut short: caught.
    let (status, body) = server.call(Some(ADMIN_TOKEN), Method::GET, "/v1/export", None).await;
    assert_eq!(status, StatusCode::OK);
    let export = perpetua_core::event::parse_export(body.as_str().expect("JSON Lines")).expect("an export");
    let carried = export.checkpoints.last().expect("the export carries a checkpoint");
    assert_eq!(checkpoint::verify(carried, Some(&[first_public])), Ok(()));
    assert_eq!(checkpoint::coverage(&export.events, carried), Coverage::Covered { tree_size: later, after: 0 });
    let cut = &export.events[..export.events.len() - 2];
    assert_eq!(checkpoint::coverage(cut, carried), Coverage::Truncated { tree_size: later, last_position: later - 2 });

    // Rotation: another key after a restart.
    drop(server);
    let second_args = args(&second_key);
    let server = Server::start_with(&db, false, &second_args.iter().map(String::as_str).collect::<Vec<_>>());
    let trader = server.trader("rotated", "1000").await;
    let (status, body) = server.call(Some(ADMIN_TOKEN), Method::POST, "/v1/audit/checkpoints", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rotated = read(body);
    let second_public = public_of(&second_key);
    assert_ne!(rotated.key_id, signed.key_id);
    assert_eq!(checkpoint::verify(&rotated, Some(&[second_public])), Ok(()));
    assert!(checkpoint::verify(&rotated, Some(&[first_public])).is_err(), "not under the old key");
    let listed = server.get(&trader.token, "/v1/audit/checkpoints?limit=1000").await;
    let listed: Vec<Checkpoint> = serde_json::from_value(listed["checkpoints"].clone()).expect("checkpoints");
    assert!(listed.windows(2).all(|w| w[0].head.tree_size < w[1].head.tree_size), "smallest first, one per size");
    assert!(listed.contains(&signed) && listed.contains(&newer) && listed.contains(&rotated));
    for c in &listed {
        assert_eq!(checkpoint::verify(c, Some(&[first_public, second_public])), Ok(()), "{c:?}");
    }
    let page = server.get(&trader.token, "/v1/audit/checkpoints?limit=1").await;
    assert_eq!(page["checkpoints"].as_array().map(Vec::len), Some(1));
    assert_eq!(page["nextTreeSize"], json!(listed[1].head.tree_size), "{page}");
    let (status, body) =
        server.call(Some(&trader.token), Method::GET, "/v1/audit/checkpoints/latest?atMostTreeSize=0", None).await;
    assert_eq!((status, &body["error"]["code"]), (StatusCode::NOT_FOUND, &json!("NO_CHECKPOINT")), "{body}");
}

/// Orders found and cancelled by the client's own id: the newest with that id, history
/// filtered by it, a cancel of the open one; ids with the SQL pattern's wildcards match only
/// themselves; two open orders with one id are refused by name; another trader's ids are not
/// seen.
async fn client_order_ids(db: TestDb) {
    let server = Server::start(&db, false);
    let alice = server.trader("alice", "100000").await;
    let bob = server.trader("bob", "100000").await;
    let place = async |trader: &support::Trader, price: &str, id: &str| {
        let mut order = limit(&trader.account, "BTCUSDT", "BUY", price, "0.01");
        order["clientOrderId"] = json!(id);
        let placed = server.post(&trader.token, "/v1/orders", order).await;
        (placed["order"]["orderId"].as_str().expect("id").to_owned(), placed["position"].as_u64().expect("position"))
    };
    let (first, _) = place(&alice, "40000", "grid-1").await;
    let (wild, _) = place(&alice, "40100", "a%_!b").await;
    place(&alice, "40200", "aXYZb").await;
    place(&bob, "40300", "grid-1").await;
    place(&alice, "40400", "dup").await;
    let (_, at) = place(&alice, "40500", "dup").await;
    let by_id = |id: &str| format!("/v1/orders/by-client-id/{id}?minPosition={at}");
    let found = server.get(&alice.token, &by_id("grid-1")).await;
    assert_eq!(found["orderId"], json!(first), "{found}");
    let (status, body) = server.call(Some(&alice.token), Method::GET, &by_id("a%25_!b"), None).await;
    assert_eq!((status, &body["orderId"]), (StatusCode::OK, &json!(wild)), "wildcards match only themselves: {body}");
    let (status, body) = server.call(Some(&alice.token), Method::GET, &by_id("a%25b"), None).await;
    assert_eq!((status, &body["error"]["code"]), (StatusCode::NOT_FOUND, &json!("NOT_FOUND")), "{body}");
    let history = server.get(&alice.token, &format!("/v1/orders?clientOrderId=dup&minPosition={at}")).await;
    assert_eq!(history["total"], 2, "{history}");
    // Exactly the id: not another case of it (SQLite's and MariaDB's LIKE ignore case).
    let other_case = server.get(&alice.token, &format!("/v1/orders?clientOrderId=DUP&minPosition={at}")).await;
    assert_eq!(other_case["total"], 0, "{other_case}");
    let (status, _) = server.call(Some(&alice.token), Method::GET, &by_id("GRID-1"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Staff name the account; a trader asking for another's gets 403.
    let staff = server.get(ADMIN_TOKEN, &format!("/v1/orders/by-client-id/grid-1?accountId={}", bob.account)).await;
    assert_ne!(staff["orderId"], json!(first));
    let (status, _) = server
        .call(
            Some(&alice.token),
            Method::GET,
            &format!("/v1/orders/by-client-id/grid-1?accountId={}", bob.account),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = server.call(Some(&alice.token), Method::GET, &by_id(&"x".repeat(65)), None).await;
    assert_eq!((status, &body["error"]["code"]), (StatusCode::BAD_REQUEST, &json!("INVALID_CLIENT_ORDER_ID")));

    // Cancel by the client's id: the open order with it, once; a retry under the key, after the
    // order is no longer open, gets the first answer.
    let cancel = || {
        server
            .client
            .delete(format!("{}{}", server.base, by_id("grid-1")))
            .bearer_auth(&alice.token)
            .header("idempotency-key", "cancel-grid-1")
            .send()
    };
    let response = cancel().await.expect("sent");
    assert_eq!(response.status(), StatusCode::OK);
    let cancelled: Value = response.json().await.expect("JSON");
    server.settle().await;
    let again: Value = cancel().await.expect("sent").json().await.expect("JSON");
    assert_eq!(again, cancelled, "the retry is answered as the first time");
    assert_eq!((&cancelled["order"]["orderId"], &cancelled["order"]["status"]), (&json!(first), &json!("CANCELLED")));
    let at = cancelled["position"].as_u64().expect("position");
    let again = format!("/v1/orders/by-client-id/grid-1?minPosition={at}");
    let (status, body) = server.call(Some(&alice.token), Method::DELETE, &again, None).await;
    assert_eq!((status, &body["error"]["code"]), (StatusCode::NOT_FOUND, &json!("NOT_FOUND")), "{body}");
    let (status, body) = server.call(Some(&alice.token), Method::DELETE, &by_id("dup"), None).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::CONFLICT, &json!("CLIENT_ORDER_ID_AMBIGUOUS")),
        "two open orders with one id: {body}"
    );
    let bobs = server.get(&bob.token, "/v1/orders/by-client-id/grid-1").await;
    assert_eq!(bobs["status"], "ACTIVE", "bob's order of the same id is untouched: {bobs}");
}

/// `DELETE /v1/orders?symbol=`: every open order of the caller in that market, in one commit;
/// its other markets and other traders untouched; a retry under its key answered the same;
/// public market data and the clock without a token; an unknown API path is a JSON 404.
async fn cancel_all(db: TestDb) {
    let server = Server::start(&db, false);
    let alice = server.trader("alice", "100000").await;
    let bob = server.trader("bob", "100000").await;
    let mut mine = BTreeSet::new();
    for price in ["40000", "41000"] {
        let placed =
            server.post(&alice.token, "/v1/orders", limit(&alice.account, "BTCUSDT", "BUY", price, "0.01")).await;
        mine.insert(placed["order"]["orderId"].as_str().expect("id").to_owned());
    }
    let eth = server.post(&alice.token, "/v1/orders", limit(&alice.account, "ETHUSDT", "BUY", "1000", "0.1")).await;
    let theirs = server.post(&bob.token, "/v1/orders", limit(&bob.account, "BTCUSDT", "BUY", "39000", "0.01")).await;
    let cancel = || {
        server
            .client
            .delete(format!("{}/v1/orders?symbol=BTCUSDT", server.base))
            .bearer_auth(&alice.token)
            .header("idempotency-key", "cancel-all-1")
    };
    let response = cancel().send().await.expect("sent");
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("JSON");
    let cancelled: BTreeSet<String> =
        body["cancelled"].as_array().expect("cancelled").iter().map(|id| id.as_str().expect("id").to_owned()).collect();
    assert_eq!(cancelled, mine, "{body}");
    let locked: f64 = body["account"]["locked"].as_str().expect("locked").parse().expect("a decimal");
    assert!(locked > 0.0, "the ETH order keeps its lock: {body}");
    let head = server.head().await;
    let again: Value = cancel().send().await.expect("sent").json().await.expect("JSON");
    assert_eq!(again, body, "a retry under the key is answered the same");
    assert_eq!(server.head().await, head, "and writes nothing");
    let active = server.get(&alice.token, &format!("/v1/orders/active?minPosition={head}")).await;
    let open: Vec<&str> =
        active["data"].as_array().expect("data").iter().filter_map(|o| o["orderId"].as_str()).collect();
    assert_eq!(open, vec![eth["order"]["orderId"].as_str().expect("id")], "{active}");
    let theirs = theirs["order"]["orderId"].as_str().expect("id");
    let bobs = server.get(&bob.token, &format!("/v1/orders/{theirs}?minPosition={head}")).await;
    assert_eq!(bobs["status"], "ACTIVE", "another trader's order is untouched: {bobs}");
    // Nothing open: answered, nothing written.
    let (status, body) = server.call(Some(&alice.token), Method::DELETE, "/v1/orders?symbol=BTCUSDT", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["cancelled"].as_array().map_or(0, Vec::len), 0, "{body}");
    assert_eq!(server.head().await, head);
    for (path, code) in [("/v1/orders", "INVALID_QUERY"), ("/v1/orders?symbol=DOGEUSDT", "MARKET_NOT_FOUND")] {
        let (status, body) = server.call(Some(&alice.token), Method::DELETE, path, None).await;
        assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some(code)), "{path}: {body}");
    }
    // Public: market data and the clock, without a token.
    for path in ["/v1/markets", "/v1/markets/BTCUSDT/book", "/v1/markets/BTCUSDT/trades", "/v1/time"] {
        let (status, body) = server.call(None, Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    let (_, time) = server.call(None, Method::GET, "/v1/time", None).await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis();
    let served = u128::try_from(time["serverTime"].as_i64().expect("serverTime")).expect("after 1970");
    assert!(served.abs_diff(now) < 60_000, "{time}");
    // An unknown API path: JSON, not the viewer's page.
    let (status, body) = server.call(None, Method::GET, "/v1/no-such-thing", None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("NOT_FOUND")), "{body}");
}

/// Runs SQL statements on the test's database directly, around the server.
async fn execute_sql(db: &TestDb, statements: &[&str]) {
    use sqlx::{Connection, Executor};
    if db.url.starts_with("postgres") {
        let mut conn = sqlx::PgConnection::connect(&db.url).await.expect("connect");
        for statement in statements {
            conn.execute(*statement).await.expect(statement);
        }
    } else if db.url.starts_with("mysql") {
        let mut conn = sqlx::MySqlConnection::connect(&db.url).await.expect("connect");
        for statement in statements {
            conn.execute(*statement).await.expect(statement);
        }
    } else {
        let mut conn = sqlx::SqliteConnection::connect(&db.url).await.expect("connect");
        for statement in statements {
            conn.execute(*statement).await.expect(statement);
        }
    }
}

/// An error message must be in the API's words: no Rust type names.
fn assert_api_words(context: &str, message: &str) {
    for rust in [
        "struct ", "enum ", "u8", "u16", "u32", "u64", "i32", "i64", "usize", "Decimal", "::", "String", "Option",
        "Vec<",
    ] {
        assert!(!message.contains(rust), "{context}: the message names a Rust type ({rust}): {message}");
    }
}

/// The state of an account stream as the API's time travel returns it.
async fn account_state(server: &Server, account: &str, query: &str) -> Value {
    server.get(ADMIN_TOKEN, &format!("/v1/streams/Account/{account}/state{query}")).await
}

/// A story over HTTP; afterwards every read model equals a full rebuild and the core's own
/// fold of the exported log, and time travel returns every state the accounts went through.
async fn scenario(db: TestDb) {
    let server = Server::start(&db, true);
    let alice = server.trader("alice-2", "100000").await;
    let bob = server.trader("bob-2", "100000").await;
    let mut seen: Vec<(String, Value)> = Vec::new();
    let remember = async |server: &Server, seen: &mut Vec<(String, Value)>| {
        for account in [&alice.account, &bob.account] {
            seen.push((account.clone(), account_state(server, account, "").await));
        }
    };
    remember(&server, &mut seen).await;

    // Alice rests an ask above the demo book; Bob lifts it partly (and sweeps the demo asks).
    let ask = server.post(&alice.token, "/v1/orders", limit(&alice.account, "BTCUSDT", "SELL", "50100", "0.5")).await;
    let ask_id = ask["order"]["orderId"].as_str().expect("order id").to_owned();
    remember(&server, &mut seen).await;
    let bid = server.post(&bob.token, "/v1/orders", limit(&bob.account, "BTCUSDT", "BUY", "50100", "0.8")).await;
    assert!(!bid["fills"].as_array().expect("fills").is_empty(), "the bid trades: {bid}");
    assert!(bid["position"].as_u64().expect("position") > ask["position"].as_u64().expect("position"));
    // One shape for each thing: the position the order's answer shows is the one the
    // positions query shows at that log position, field for field and figure for figure.
    let at = bid["position"].as_u64().expect("position");
    let positions = server.get(&bob.token, &format!("/v1/positions?minPosition={at}")).await;
    let served = positions["data"].as_array().expect("positions").iter().find(|p| p["symbol"] == "BTCUSDT");
    assert_eq!(Some(&bid["openPosition"]), served, "{bid} / {positions}");
    remember(&server, &mut seen).await;
    // A resting bid, then cancelled.
    let rest = server.post(&bob.token, "/v1/orders", limit(&bob.account, "BTCUSDT", "BUY", "40000", "0.1")).await;
    let rest_id = rest["order"]["orderId"].as_str().expect("order id");
    let (status, cancelled) =
        server.call(Some(&bob.token), Method::DELETE, &format!("/v1/orders/{rest_id}"), None).await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["order"]["status"], "CANCELLED");
    remember(&server, &mut seen).await;
    let withdrawn = server
        .post(&alice.token, &format!("/v1/accounts/{}/withdrawals", alice.account), json!({ "amount": "100" }))
        .await;
    let at = withdrawn["position"].as_u64().expect("position");
    let account = server.get(&alice.token, &format!("/v1/accounts/{}?minPosition={at}", alice.account)).await;
    assert_eq!(withdrawn["account"], account, "the account answered is the account queried");
    server.post(ADMIN_TOKEN, "/v1/markets/BTCUSDT/mark-price", json!({ "price": "50050" })).await;
    server.post(ADMIN_TOKEN, "/v1/markets/BTCUSDT/funding", json!({ "rate": "0.0001" })).await;
    remember(&server, &mut seen).await;
    server.post(&bob.token, "/v1/positions/BTCUSDT/leverage", json!({ "leverage": 5 })).await;
    let correction = json!({
        "correctedVersion": 1,
        "corrections": [{ "field": "note", "from": null, "to": "checked by ops" }],
        "reason": "annotate",
    });
    let corrected = server.post(ADMIN_TOKEN, &format!("/v1/orders/{ask_id}/corrections"), correction).await;
    assert_eq!(corrected["order"]["note"], "checked by ops");
    remember(&server, &mut seen).await;

    // Issue 14, item 4: Alice's views of the fill she was the maker of show no other user's id
    // or address; staff see the taker's command as stored.
    // Alice rests an ask inside the spread, so that Bob's buy fills it first.
    let book = server.get(ADMIN_TOKEN, &format!("/v1/markets/BTCUSDT/book?minPosition={}", server.head().await)).await;
    let best = |side: &str| book[side][0]["price"].as_str().expect("a level").parse::<f64>().expect("a price");
    let inside = format!("{:.1}", ((best("bids") + best("asks")) / 2.0 * 10.0).round() / 10.0);
    assert!(inside.parse::<f64>().unwrap() < best("asks"), "a price inside the spread: {book}");
    let maker =
        server.post(&alice.token, "/v1/orders", limit(&alice.account, "BTCUSDT", "SELL", &inside, "0.01")).await;
    let maker_id = maker["order"]["orderId"].as_str().expect("order id").to_owned();
    let taker = server.post(&bob.token, "/v1/orders", limit(&bob.account, "BTCUSDT", "BUY", &inside, "0.01")).await;
    assert_eq!(taker["order"]["status"], "FILLED", "Bob's order filled Alice's: {taker}");
    let bid_id = taker["order"]["orderId"].as_str().expect("order id");
    let bob_stream = server.get(ADMIN_TOKEN, &format!("/v1/streams/Order/{bid_id}/events")).await;
    let bob_id = bob_stream["data"][0]["metadata"]["userId"].as_str().expect("Bob's user id").to_owned();
    let alice_stream = server.get(ADMIN_TOKEN, &format!("/v1/streams/Order/{maker_id}/events")).await;
    let alice_id = &alice_stream["data"][0]["metadata"]["userId"];
    for (path, query) in [
        (format!("/v1/streams/Order/{maker_id}/events"), String::new()),
        (format!("/v1/streams/Account/{}/events", alice.account), String::new()),
        ("/v1/export".to_owned(), format!("?aggregateType=Account&aggregateId={}", alice.account)),
    ] {
        let read = async |token: &str| -> Vec<Value> {
            let (status, body) = server.call(Some(token), Method::GET, &format!("{path}{query}"), None).await;
            assert_eq!(status, StatusCode::OK, "{path}: {body}");
            match body {
                // An export's lines, without the checkpoint line it ends with.
                Value::String(lines) => lines
                    .lines()
                    .filter(|l| perpetua_core::checkpoint::parse_export_line(l).is_none())
                    .map(|l| serde_json::from_str(l).expect("a JSON line"))
                    .collect(),
                body => body["data"].as_array().expect("events").clone(),
            }
        };
        let (staff, own) = (read(ADMIN_TOKEN).await, read(&alice.token).await);
        assert_eq!(staff.len(), own.len(), "{path}: the same events");
        let others: BTreeSet<String> = staff
            .iter()
            .filter_map(|e| e["metadata"]["userId"].as_str())
            .filter(|id| Some(*id) != alice_id.as_str())
            .map(str::to_owned)
            .collect();
        assert!(!others.is_empty(), "{path}: staff see other users' commands on Alice's stream");
        for (event, stored) in own.iter().zip(&staff) {
            let user = &event["metadata"]["userId"];
            if stored["metadata"]["userId"] == *alice_id {
                assert_eq!(event, stored, "{path}: Alice's own events are as stored");
            } else {
                assert!(user.is_null() && event["metadata"]["ipAddress"].is_null(), "{path}: {event}");
                assert_eq!(event["metadataRedacted"], true, "{path}: {event}");
                assert_eq!(event["hash"], stored["hash"], "{path}: the hashes are the stored ones");
            }
        }
        // Bob, the taker, appears nowhere in what Alice reads. (An admin's id stays in the
        // payload of a correction of her order: who corrected it is hers to know, and hashed.)
        let text = serde_json::to_string(&own).unwrap();
        assert!(others.contains(&bob_id), "{path}: the taker's command touched the stream: {others:?}");
        assert!(!text.contains(&bob_id), "{path}: the taker's id is not in Alice's view");
    }

    // Read-your-writes: a query with minPosition sees the command's effect.
    let last = corrected["position"].as_u64().expect("position");
    let order = server.get(&alice.token, &format!("/v1/orders/{ask_id}?minPosition={last}")).await;
    assert_eq!(order["note"], "checked by ops");

    server.settle().await;
    let accounts = all_accounts(&server).await;
    let live = server.read_models(&accounts).await;
    server.rebuild_all().await;
    let rebuilt = server.read_models(&accounts).await;
    assert_eq!(live, rebuilt, "the read models equal a full rebuild");

    // The core's own fold of the exported log agrees with the served account summaries.
    let export = server.client.get(format!("{}/v1/export", server.base)).bearer_auth(ADMIN_TOKEN).send().await;
    let text = export.expect("export").text().await.expect("export body");
    let mut models = ReadModels::new();
    for stored in parse_stored_events(&text).expect("the export parses") {
        models.apply(&stored.decode().expect("decodes"));
    }
    let folded: Vec<Value> =
        accounts.iter().map(|a| serde_json::to_value(models.accounts().summary(a.parse().unwrap())).unwrap()).collect();
    assert_eq!(live["accounts"], json!(folded));
    let verify = server.get(ADMIN_TOKEN, "/v1/audit/verify").await;
    assert_eq!(verify["verified"], true, "{verify}");

    // Time travel: each remembered state comes back at its version, and by its time.
    for (account, state) in &seen {
        let version = state["version"].as_u64().expect("version");
        assert_eq!(&account_state(&server, account, &format!("?version={version}")).await, state);
    }
    let (account, first) = &seen[0];
    let created = first["state"]["updatedAt"].as_str().expect("time");
    let then = account_state(&server, account, &format!("?at={created}")).await;
    assert_eq!(then["state"], first["state"], "the state as of its time");
}

/// Issue 14, item 5: hostile input of every kind — numbers out of range on every numeric
/// parameter, ranges beyond the head, an oversized body, bad UTF-8 in a path, a wrong method,
/// oversized headers — gets a 4xx with its code in `{"error": {"code", "message"}}`, at once,
/// and writes nothing; a lower-case `bearer` scheme is accepted.
async fn hostile_input(db: TestDb) {
    let server = Server::start(&db, false);
    let trader = server.trader("t", "1000").await;
    server.settle().await;
    let head = server.head().await;
    let a = &trader.account;
    let t = trader.token.as_str();
    let big = "9223372036854775808"; // 2^63: one past the largest position
    let huge = "18446744073709551616"; // 2^64
    let beyond = head + 10;
    let gets: Vec<(&str, String, u16, &str)> = vec![
        (ADMIN_TOKEN, format!("/v1/events?fromPosition={big}"), 400, "OUT_OF_RANGE"),
        (ADMIN_TOKEN, format!("/v1/events?fromPosition={huge}"), 400, "INVALID_QUERY"),
        (ADMIN_TOKEN, format!("/v1/events?limit={big}"), 400, "OUT_OF_RANGE"),
        (ADMIN_TOKEN, "/v1/events?limit=-1".into(), 400, "INVALID_QUERY"),
        (ADMIN_TOKEN, format!("/v1/events/live?fromPosition={big}"), 400, "OUT_OF_RANGE"),
        (t, format!("/v1/streams/Account/{a}/state?version={big}"), 400, "OUT_OF_RANGE"),
        (t, format!("/v1/streams/Account/{a}/events?fromVersion={big}"), 400, "OUT_OF_RANGE"),
        (t, format!("/v1/streams/Account/{a}/events?toVersion={big}"), 400, "OUT_OF_RANGE"),
        (ADMIN_TOKEN, format!("/v1/audit/verify?from={beyond}"), 400, "RANGE_BEYOND_HEAD"),
        (ADMIN_TOKEN, format!("/v1/audit/verify?to={beyond}"), 400, "RANGE_BEYOND_HEAD"),
        (ADMIN_TOKEN, format!("/v1/audit/verify?from={big}"), 400, "OUT_OF_RANGE"),
        (ADMIN_TOKEN, "/v1/audit/verify?from=3&to=2".into(), 400, "INVALID_RANGE"),
        (ADMIN_TOKEN, format!("/v1/export?fromPosition={big}"), 400, "OUT_OF_RANGE"),
        (t, format!("/v1/orders/active?minPosition={beyond}"), 400, "MIN_POSITION_BEYOND_HEAD"),
        (t, format!("/v1/accounts/{a}?minPosition={big}"), 400, "OUT_OF_RANGE"),
        (t, "/v1/orders?page=4294967296".into(), 400, "INVALID_QUERY"),
        (t, "/v1/orders?limit=-5".into(), 400, "INVALID_QUERY"),
        (t, "/v1/orders?startTime=soon".into(), 400, "INVALID_QUERY"),
        (t, "/v1/markets/BTCUSDT/book?depth=-1".into(), 400, "INVALID_QUERY"),
        (t, format!("/v1/markets/BTCUSDT/trades?limit={huge}"), 400, "INVALID_QUERY"),
        (t, "/v1/streams/Account/%FF%FE/events".into(), 400, "INVALID_REQUEST"),
        (t, "/v1/orders/%C3%28".into(), 400, "INVALID_REQUEST"),
    ];
    let check = |what: &str, status: StatusCode, body: &Value, want_status: u16, want_code: &str| {
        assert_eq!(status.as_u16(), want_status, "{what}: {body}");
        assert_eq!(body["error"]["code"], want_code, "{what}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "{what}: a message: {body}");
        assert_api_words(what, message);
    };
    for (token, path, want_status, want_code) in &gets {
        let started = std::time::Instant::now();
        let (status, body) = server.call(Some(token), Method::GET, path, None).await;
        check(&format!("GET {path}"), status, &body, *want_status, want_code);
        // (minPosition beyond the head is refused at once, not after the 5 s wait.)
        assert!(started.elapsed() < Duration::from_secs(4), "GET {path} answered at once");
    }

    let send = |request: reqwest::RequestBuilder| async move {
        let response = request.send().await.expect("response");
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        (status, serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text)))
    };
    let url = |path: &str| format!("{}{path}", server.base);
    // 100 MB announced, a little sent: the answer comes before the rest would (over a raw
    // socket, so that the client is not still writing when the server answers and closes).
    let (status, body) = raw_request(
        &server,
        &format!(
            "POST /v1/orders HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {t}\r\n\
         Content-Type: application/json\r\nContent-Length: 100000000\r\n\r\n{{\"accountId\": \""
        ),
    )
    .await;
    check("a 100 MB body", status, &body, 413, "PAYLOAD_TOO_LARGE");
    let (status, body) = send(server.client.put(url("/v1/orders")).bearer_auth(t)).await;
    check("PUT /v1/orders", status, &body, 405, "METHOD_NOT_ALLOWED");
    let (status, body) = send(server.client.delete(url("/healthz"))).await;
    check("DELETE /healthz", status, &body, 405, "METHOD_NOT_ALLOWED");
    let (status, body) =
        send(server.client.get(url("/v1/orders/active")).bearer_auth(t).header("x-padding", "p".repeat(20_000))).await;
    check("20 kB of headers", status, &body, 431, "HEADERS_TOO_LARGE");
    let (status, body) = send(server.client.get(url("/v1/orders/active")).header("authorization", "Token abc")).await;
    check("another scheme", status, &body, 401, "UNAUTHENTICATED");
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let (status, body) =
            send(server.client.get(url("/v1/orders/active")).header("authorization", format!("{scheme} {t}"))).await;
        assert_eq!(status, StatusCode::OK, "the {scheme} scheme: {body}");
    }
    assert_eq!(server.head().await, head, "no event was written");
}

/// Money figures computed by hand from DOMAIN.md's rules, beside the equality checks of the
/// other tests: two traders, one fill, a mark-price move and a funding settlement.
async fn money_by_hand(db: TestDb) {
    let server = Server::start(&db, false);
    let alice = server.trader("alice", "10000").await;
    let bob = server.trader("bob", "10000").await;
    let at20 = |account: &str, side: &str| {
        let mut body = limit(account, "BTCUSDT", side, "50000", "1");
        body["leverage"] = json!(20);
        body
    };
    let account = async |trader: &support::Trader, position: u64| {
        server.get(&trader.token, &format!("/v1/accounts/{}?minPosition={position}", trader.account)).await
    };
    let position_of = async |trader: &support::Trader, position: u64| {
        let body = server.get(&trader.token, &format!("/v1/positions?minPosition={position}")).await;
        body["data"][0].clone()
    };
    let money = |value: &Value| value.as_str().and_then(|v| v.parse::<f64>().ok()).expect("a decimal string");
    let cents = |value: &Value| (money(value) * 100.0).round() / 100.0;

    // Alice rests a sell of 1 BTC at 50,000, 20x: lock = 1 x 50,000 x (1/20 + 0.0005) = 2,525.
    let placed = server.post(&alice.token, "/v1/orders", at20(&alice.account, "SELL")).await;
    let a = account(&alice, placed["position"].as_u64().unwrap()).await;
    assert_eq!((money(&a["balance"]), money(&a["locked"]), money(&a["available"])), (10_000.0, 2_525.0, 7_475.0));

    // Bob buys it: one fill at 50,000. Taker fee 50,000 x 0.0005 = 25, maker fee x 0.0002 = 10;
    // each position's margin 50,000 / 20 = 2,500, out of the locks.
    let filled = server.post(&bob.token, "/v1/orders", at20(&bob.account, "BUY")).await;
    let at = filled["position"].as_u64().unwrap();
    let (a, b) = (account(&alice, at).await, account(&bob, at).await);
    assert_eq!((money(&a["balance"]), money(&a["locked"]), money(&a["available"])), (9_990.0, 0.0, 7_490.0));
    assert_eq!((money(&b["balance"]), money(&b["locked"]), money(&b["available"])), (9_975.0, 0.0, 7_475.0));
    let (pa, pb) = (position_of(&alice, at).await, position_of(&bob, at).await);
    assert_eq!((money(&pb["margin"]), money(&pa["margin"])), (2_500.0, 2_500.0));
    // Cross long 1 at 50,000 on a 9,975 balance: LP = (9,975 − 50,000) / (0.004 − 1) = 40,185.74.
    assert_eq!(cents(&pb["liquidationPrice"]), 40_185.74, "{pb}");
    // Cross short on 9,990: (9,990 + 50,000) / 1.004 = 59,751.00 is in tier 2 (MMR 0.005,
    // cum 50), so LP = (9,990 + 50 + 50,000) / 1.005 = 59,741.29.
    assert_eq!(cents(&pa["liquidationPrice"]), 59_741.29, "{pa}");

    // Mark 49,000: Bob's uPnL −1,000 counts against his available, Alice's +1,000 does not.
    let marked = server.post(ADMIN_TOKEN, "/v1/markets/BTCUSDT/mark-price", json!({ "price": "49000" })).await;
    let at = marked["position"].as_u64().unwrap();
    let (a, b) = (account(&alice, at).await, account(&bob, at).await);
    assert_eq!((money(&a["available"]), money(&b["available"])), (7_490.0, 6_475.0), "{a} {b}");
    // Funding at 0.0001 and mark 49,000: the long pays 1 x 49,000 x 0.0001 = 4.90 to the short.
    let funded = server.post(ADMIN_TOKEN, "/v1/markets/BTCUSDT/funding", json!({ "rate": "0.0001" })).await;
    let at = funded["position"].as_u64().unwrap();
    let (a, b) = (account(&alice, at).await, account(&bob, at).await);
    assert_eq!((money(&a["balance"]), money(&b["balance"])), (9_994.9, 9_970.1), "{a} {b}");
    assert_eq!(cents(&b["available"]), 6_470.1, "9,970.10 − 2,500 margin − 1,000 loss: {b}");
}

/// A commit that fails on purpose (a trigger refuses the events while a flag row exists): the
/// commands of that batch are answered 503 with nothing written, the engine is rebuilt from
/// the store (its memory of the refused withdrawal is gone), and the next commands commit on
/// the same chain.
async fn a_failed_commit_is_recovered_from(db: TestDb) {
    let server = Server::start(&db, false);
    let trader = server.trader("t", "1000").await;
    let trigger: &[&str] = if db.url.starts_with("postgres") {
        &[
            "CREATE TABLE fail_next_commit (x INTEGER)",
            "CREATE FUNCTION fail_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
             IF EXISTS (SELECT 1 FROM fail_next_commit) THEN RAISE EXCEPTION 'injected fault'; END IF; \
             RETURN NULL; END $$",
            "CREATE TRIGGER fail_commit BEFORE INSERT ON events FOR EACH STATEMENT EXECUTE FUNCTION fail_commit()",
        ]
    } else if db.url.starts_with("mysql") {
        &[
            "CREATE TABLE fail_next_commit (x INTEGER)",
            "CREATE TRIGGER fail_commit BEFORE INSERT ON events FOR EACH ROW BEGIN \
             IF EXISTS (SELECT 1 FROM fail_next_commit) THEN \
             SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'injected fault'; END IF; END",
        ]
    } else {
        &[
            "CREATE TABLE fail_next_commit (x INTEGER)",
            "CREATE TRIGGER fail_commit BEFORE INSERT ON events \
             WHEN EXISTS (SELECT 1 FROM fail_next_commit) BEGIN SELECT RAISE(ABORT, 'injected fault'); END",
        ]
    };
    execute_sql(&db, trigger).await;
    let head = server.head().await;
    let withdrawals = format!("/v1/accounts/{}/withdrawals", trader.account);
    execute_sql(&db, &["INSERT INTO fail_next_commit VALUES (1)"]).await;
    let (status, body) =
        server.call(Some(&trader.token), Method::POST, &withdrawals, Some(json!({"amount": "100"}))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "STORE_UNAVAILABLE");
    assert!(!body.to_string().contains("injected"), "the database's words stay in the log: {body}");
    assert_eq!(server.head().await, head, "nothing was written");

    execute_sql(&db, &["DELETE FROM fail_next_commit"]).await;
    // The engine was rebuilt from the store: 1,000 − 100 (this withdrawal), not − 200.
    let answer = server.post(&trader.token, &withdrawals, json!({"amount": "100"})).await;
    assert_eq!(answer["account"]["balance"], "900", "{answer}");
    assert_eq!(answer["account"]["available"], "900", "{answer}");
    let position = answer["position"].as_u64().expect("position");
    assert!(position > head);
    let account = server.get(&trader.token, &format!("/v1/accounts/{}?minPosition={position}", trader.account)).await;
    assert_eq!(account["balance"], "900", "{account}");
    assert_eq!(server.get(ADMIN_TOKEN, "/v1/audit/verify").await["verified"], true);
}

/// `POST /v1/orders/batch`: the orders are decided in order, each on its own (one trades, one
/// is rejected by a rule, one is refused, one rests), in one commit; the answer has one
/// result per order and the batch's `position`. A retry under the same key gets the same
/// answer and writes nothing; a malformed, oversized or foreign batch writes nothing.
async fn batch_orders(db: TestDb) {
    let server = Server::start(&db, false);
    let maker = server.trader("maker", "100000").await;
    let taker = server.trader("taker", "100000").await;
    server.post(&maker.token, "/v1/orders", limit(&maker.account, "BTCUSDT", "SELL", "40000", "0.01")).await;
    let mut zero = limit(&taker.account, "BTCUSDT", "BUY", "39000", "0.01");
    zero["quantity"] = json!("0");
    let batch = json!({ "orders": [
        limit(&taker.account, "BTCUSDT", "BUY", "40000", "0.01"),
        limit(&taker.account, "BTCUSDT", "BUY", "39000", "1000"),
        zero,
        limit(&taker.account, "BTCUSDT", "BUY", "39000", "0.01"),
    ]});
    let head = server.head().await;
    let send = |key: &'static str, body: Value| {
        server
            .client
            .post(format!("{}/v1/orders/batch", server.base))
            .bearer_auth(&taker.token)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
    };
    let response = send("batch-1", batch.clone()).await.expect("response");
    assert_eq!(response.status(), StatusCode::OK);
    let answer: Value = response.json().await.expect("json");
    let results = answer["results"].as_array().expect("results");
    let statuses: Vec<u64> = results.iter().map(|r| r["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, [201, 422, 400, 201], "{answer}");
    assert_eq!(results[0]["fills"].as_array().map(Vec::len), Some(1), "the first order traded: {answer}");
    assert_eq!(results[0]["order"]["status"], "FILLED", "{answer}");
    assert_eq!(results[1]["error"]["code"], "INSUFFICIENT_BALANCE", "{answer}");
    assert_eq!(results[2]["error"]["code"], "INVALID_ARGUMENT", "{answer}");
    assert_eq!(results[3]["order"]["status"], "ACTIVE", "{answer}");
    let positions: Vec<u64> = [0, 1, 3].iter().map(|&i| results[i]["position"].as_u64().unwrap()).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]) && positions[0] > head, "in order: {positions:?}");
    assert_eq!(answer["position"].as_u64(), Some(positions[2]));
    assert_eq!(server.head().await, positions[2], "nothing else was written");

    let retry: Value = send("batch-1", batch.clone()).await.expect("response").json().await.expect("json");
    assert_eq!(retry, answer, "a retry gets the same answer");
    assert_eq!(server.head().await, positions[2], "and writes nothing");
    let reused = send("batch-1", json!({ "orders": [limit(&taker.account, "BTCUSDT", "BUY", "38000", "0.01")] }));
    assert_eq!(reused.await.expect("response").status(), StatusCode::CONFLICT);

    let one = limit(&taker.account, "BTCUSDT", "BUY", "38000", "0.01");
    let refused = [
        (json!({ "orders": [] }), StatusCode::BAD_REQUEST, "INVALID_BATCH"),
        (json!({ "orders": vec![one.clone(); 51] }), StatusCode::BAD_REQUEST, "INVALID_BATCH"),
        (json!({ "orders": [one.clone(), {"side": "BUYY"}] }), StatusCode::BAD_REQUEST, "INVALID_REQUEST"),
        (
            json!({ "orders": [one, limit(&maker.account, "BTCUSDT", "BUY", "38000", "0.01")] }),
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
        ),
    ];
    for (body, status, code) in refused {
        let (got, answer) = server.call(Some(&taker.token), Method::POST, "/v1/orders/batch", Some(body)).await;
        assert_eq!((got, answer["error"]["code"].as_str()), (status, Some(code)), "{answer}");
    }
    assert_eq!(server.head().await, positions[2], "a refused batch writes nothing");
    let active = server.get(&taker.token, &format!("/v1/orders/active?minPosition={}", positions[2])).await;
    assert_eq!(active["data"].as_array().map(Vec::len), Some(1), "one order rests: {active}");
    assert_eq!(server.get(ADMIN_TOKEN, "/v1/audit/verify").await["verified"], true);
}

/// Sends `request` as it is over a TCP connection of its own and reads one answer.
async fn raw_request(server: &Server, request: &str) -> (StatusCode, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = server.base.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(address).await.expect("connect");
    socket.write_all(request.as_bytes()).await.expect("send");
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let n =
            tokio::time::timeout(Duration::from_secs(10), socket.read(&mut buffer)).await.expect("an answer in time");
        let n = n.unwrap_or(0);
        answer.extend_from_slice(&buffer[..n]);
        let text = String::from_utf8_lossy(&answer);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
                .and_then(|v| v.parse::<usize>().ok());
            if n == 0 || length.is_some_and(|length| body.len() >= length) {
                let status = head.split(' ').nth(1).and_then(|s| s.parse::<u16>().ok()).expect("a status line");
                let body = serde_json::from_str(body).unwrap_or(Value::String(body.to_owned()));
                return (StatusCode::from_u16(status).expect("status"), body);
            }
        }
        assert!(n > 0, "the connection closed before an answer: {text}");
    }
}

/// SIGKILL under load: every acknowledged command is in the log after a restart (which starts
/// from an engine snapshot taken under load, plus the tail), the chain verifies, and the read
/// models catch up to a state equal to a full rebuild. Time travel over the long account
/// streams (which start from the snapshots taken every 100 versions) equals the fold of the
/// stream's events.
async fn crash_under_load(db: TestDb) {
    let mut server = Server::start_with(&db, false, &["--snapshot-every", "200"]);
    let traders = [server.trader("a", "1000000").await, server.trader("b", "1000000").await];
    let base = server.base.clone();
    let client = server.client.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Orders acknowledged so far, over all clients: the load runs until a count, not a time.
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let (client, base, stop, count) = (client.clone(), base.clone(), stop.clone(), count.clone());
        let trader = &traders[worker % 2];
        let (token, account) = (trader.token.clone(), trader.account.clone());
        tasks.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                let side = if (n + worker as u64).is_multiple_of(2) { "BUY" } else { "SELL" };
                let price = format!("{}", 40_000 + (n % 20) * 10);
                let body = limit(&account, "BTCUSDT", side, &price, "0.001");
                let Ok(response) =
                    client.post(format!("{base}/v1/orders")).bearer_auth(&token).json(&body).send().await
                else {
                    break;
                };
                let status = response.status();
                let Ok(answer) = response.json::<Value>().await else { break };
                if status == StatusCode::CREATED || status == StatusCode::UNPROCESSABLE_ENTITY {
                    let id = answer["order"]["orderId"].as_str().or(answer["error"]["orderId"].as_str());
                    let position = answer["position"].as_u64().expect("position");
                    acknowledged.push((id.expect("order id").to_owned(), position, answer));
                    count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
            acknowledged
        }));
    }
    // 300 acknowledged orders (more than 100 events on each account), and an engine snapshot
    // taken under load, however long that takes on this machine.
    let mut snapshots = None;
    for _ in 0..1_200 {
        let (_, metrics) = server.call(Some(ADMIN_TOKEN), Method::GET, "/metrics", None).await;
        snapshots = metrics.as_str().and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("perpetua_engine_snapshots_total "))
                .and_then(|n| n.parse::<u64>().ok())
        });
        if snapshots.is_some_and(|n| n > 0) && count.load(std::sync::atomic::Ordering::Relaxed) >= 300 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(snapshots.is_some_and(|n| n > 0), "engine snapshots were taken under load: {snapshots:?}");
    server.kill();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut acknowledged = Vec::new();
    for task in tasks {
        acknowledged.extend(task.await.expect("client task"));
    }
    assert!(acknowledged.len() >= 300, "the load ran: {} acknowledged", acknowledged.len());

    let server = Server::start_with(&db, false, &["--snapshot-every", "200"]);
    server.settle().await;
    let head = server.head().await;
    let highest = acknowledged.iter().map(|(_, p, _)| *p).max().unwrap();
    assert!(head >= highest, "head {head} holds every acknowledged position (up to {highest})");
    // What was stored is what was acknowledged: each order as placed (the fields a later
    // fill cannot change), and its OrderPlaced (or OrderRejected) at or before the position
    // its answer named.
    for (order_id, position, answer) in &acknowledged {
        let (status, order) =
            server.call(Some(ADMIN_TOKEN), Method::GET, &format!("/v1/orders/{order_id}"), None).await;
        assert_eq!(status, StatusCode::OK, "acknowledged order {order_id} is there: {order}");
        let acked = if answer["order"].is_object() { &answer["order"] } else { &Value::Null };
        if acked.is_object() {
            for field in
                ["orderId", "accountId", "symbol", "side", "type", "price", "quantity", "leverage", "createdAt"]
            {
                assert_eq!(order[field], acked[field], "order {order_id}: {field} as acknowledged");
            }
        }
        let stream = server.get(ADMIN_TOKEN, &format!("/v1/streams/Order/{order_id}/events")).await;
        let first = &stream["data"][0];
        assert!(first["position"].as_u64().expect("position") <= *position, "order {order_id}: {first}");
        assert!(["OrderPlaced", "OrderRejected"].contains(&first["eventType"].as_str().unwrap_or_default()));
    }
    let verify = server.get(ADMIN_TOKEN, "/v1/audit/verify").await;
    assert_eq!(verify["verified"], true, "{verify}");
    let accounts = all_accounts(&server).await;
    let live = server.read_models(&accounts).await;
    server.rebuild_all().await;
    assert_eq!(live, server.read_models(&accounts).await, "caught-up read models equal a rebuild");

    // Still accepting commands after the restart, continuing the same chain.
    server.post(&traders[0].token, "/v1/orders", limit(&traders[0].account, "BTCUSDT", "BUY", "39000", "0.001")).await;
    assert_eq!(server.get(ADMIN_TOKEN, "/v1/audit/verify").await["verified"], true);

    for trader in &traders {
        let stream = server.get(ADMIN_TOKEN, &format!("/v1/streams/Account/{}/events", trader.account)).await;
        let events: Vec<perpetua_core::EventEnvelope> = stream["data"]
            .as_array()
            .expect("events")
            .iter()
            .map(|e| serde_json::from_value::<perpetua_core::StoredEvent>(e.clone()).unwrap().decode().unwrap())
            .collect();
        assert!(events.len() > 100, "a long stream: {} events", events.len());
        for version in [1, 99, 100, 101, events.len() as u64 / 2, events.len() as u64] {
            let folded = perpetua_core::timetravel::state_at_version(
                perpetua_core::event::AggregateType::Account,
                &events,
                version,
            );
            let served = account_state(&server, &trader.account, &format!("?version={version}")).await;
            // The fold's state is tagged ({"aggregateType", "state"}); the answer says the type once.
            let folded = serde_json::to_value(folded).unwrap();
            assert_eq!(served["aggregateType"], folded["aggregateType"]);
            assert_eq!(served["state"], folded["state"], "account state at version {version}");
        }
    }
}

/// Ends connections of the server's database from outside, as a failing network or a
/// database restart would: every one, or all but the leases' sessions (writer and projector).
async fn terminate_connections(db: &TestDb, backend: support::Backend, spare_lease: bool) -> u64 {
    use sqlx::Connection;
    let name = db.url.rsplit('/').next().expect("database name").to_owned();
    match backend {
        support::Backend::Postgres => {
            let admin = db.url.replace(&format!("/{name}"), "/postgres");
            let mut conn = sqlx::PgConnection::connect(&admin).await.expect("admin connection");
            let lease = "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted \
                 AND database = (SELECT oid FROM pg_database WHERE datname = $1)";
            let sql = format!(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1 \
                 AND pid <> pg_backend_pid() {}",
                if spare_lease { format!("AND pid NOT IN ({lease})") } else { String::new() }
            );
            let ended: i64 = sqlx::query_scalar(&sql).bind(&name).fetch_one(&mut conn).await.expect("terminate");
            ended as u64
        }
        support::Backend::MySql => {
            let mut conn = sqlx::MySqlConnection::connect(&db.url).await.expect("admin connection");
            let ids: Vec<u64> = sqlx::query_scalar(
                "SELECT CAST(id AS UNSIGNED) FROM information_schema.processlist WHERE db = ? AND id <> CONNECTION_ID() \
                 AND (? = 0 OR (id <> COALESCE(IS_USED_LOCK(CONCAT('perpetua.writer.', ?)), 0) \
                 AND id <> COALESCE(IS_USED_LOCK(CONCAT('perpetua.projector.', ?)), 0)))",
            )
            .bind(&name)
            .bind(i32::from(spare_lease))
            .bind(&name)
            .bind(&name)
            .fetch_all(&mut conn)
            .await
            .expect("connections");
            for id in &ids {
                // A connection may have gone by itself in the meantime.
                let _ = sqlx::query(&format!("KILL {id}")).execute(&mut conn).await;
            }
            ids.len() as u64
        }
        support::Backend::Sqlite => unreachable!("SQLite has no connections to end"),
    }
}

/// Places `count` crossing orders from each of `clients` clients; returns (order id, position)
/// of every acknowledged one. Refusals for a store outage (503) are expected and not counted.
async fn burst(server: &Server, traders: &[support::Trader], clients: usize, count: usize) -> Vec<(String, u64)> {
    let mut tasks = Vec::new();
    for worker in 0..clients {
        let (client, base) = (server.client.clone(), server.base.clone());
        let trader = &traders[worker % traders.len()];
        let (token, account) = (trader.token.clone(), trader.account.clone());
        tasks.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for n in 0..count {
                let side = if (n + worker).is_multiple_of(2) { "BUY" } else { "SELL" };
                let body = limit(&account, "BTCUSDT", side, &format!("{}", 40_000 + (n % 10) * 10), "0.001");
                let Ok(response) =
                    client.post(format!("{base}/v1/orders")).bearer_auth(&token).json(&body).send().await
                else {
                    continue;
                };
                if response.status() == StatusCode::CREATED {
                    let answer: Value = response.json().await.expect("json");
                    let id = answer["order"]["orderId"].as_str().expect("order id").to_owned();
                    acknowledged.push((id, answer["position"].as_u64().expect("position")));
                }
            }
            acknowledged
        }));
    }
    let mut acknowledged = Vec::new();
    for task in tasks {
        acknowledged.extend(task.await.expect("client task"));
    }
    acknowledged
}

/// Issue 14, items 1 and 2: the server's database connections are ended under load, five
/// times (sparing the lease's session): each time the read models, once caught up, equal a
/// rebuild. Then every connection is ended, the lease's too: the writer stops by itself,
/// non-zero, and a second server takes the lease and carries on with every acknowledged order.
async fn connections_lost_under_load(db: TestDb, backend: support::Backend) {
    let mut server = Server::start(&db, false);
    let traders = [server.trader("a", "1000000").await, server.trader("b", "1000000").await];
    let accounts = all_accounts(&server).await;
    let mut acknowledged = Vec::new();
    for round in 0..5 {
        let start = server.head().await;
        let load = burst(&server, &traders, 6, 40);
        let faults = async {
            // Once the load is going, end the connections mid-stream.
            while server.head().await < start + 30 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            terminate_connections(&db, backend, true).await
        };
        let (done, ended) = tokio::join!(load, faults);
        assert!(ended > 0, "round {round}: connections were ended");
        acknowledged.extend(done);
        server.settle().await;
        let live = server.read_models(&accounts).await;
        server.rebuild_all().await;
        assert_eq!(live, server.read_models(&accounts).await, "round {round}: the read models equal a rebuild");
    }
    assert!(acknowledged.len() > 100, "the load ran: {} acknowledged", acknowledged.len());

    terminate_connections(&db, backend, false).await;
    let exited = server.exited().await;
    let status = exited.expect("the writer stopped once its lease's session was gone");
    assert!(!status.success(), "and said so with a non-zero exit: {status}");
    server.kill();

    let server = Server::start(&db, false);
    server.settle().await;
    for (order_id, position) in &acknowledged {
        let order = server.get(ADMIN_TOKEN, &format!("/v1/orders/{order_id}")).await;
        assert!(order["orderId"] == order_id.as_str(), "acknowledged order {order_id} (position {position}): {order}");
    }
    assert_eq!(server.get(ADMIN_TOKEN, "/v1/audit/verify").await["verified"], true);
    let live = server.read_models(&accounts).await;
    server.rebuild_all().await;
    assert_eq!(live, server.read_models(&accounts).await, "after the takeover too");
    server.post(&traders[0].token, "/v1/orders", limit(&traders[0].account, "BTCUSDT", "BUY", "39000", "0.001")).await;
}

/// A writer whose lease session alone is ended, and a second server started at once on the
/// same store: the second starts (it takes the lease and fences the first), the first never
/// acknowledges a command after that and exits non-zero, and the log is one chain.
async fn a_second_writer_fences_the_first(db: TestDb, backend: support::Backend) {
    use sqlx::Connection;
    let mut first = Server::start(&db, false);
    let trader = first.trader("t", "100000").await;
    match backend {
        support::Backend::Postgres => support::end_postgres_lease_session(&db).await,
        _ => {
            let mut conn = sqlx::MySqlConnection::connect(&db.url).await.expect("connection");
            let id: Option<i64> =
                sqlx::query_scalar("SELECT CAST(IS_USED_LOCK(CONCAT('perpetua.writer.', DATABASE())) AS SIGNED)")
                    .fetch_one(&mut conn)
                    .await
                    .expect("the lease's holder");
            sqlx::query(&format!("KILL {}", id.expect("a holder"))).execute(&mut conn).await.expect("KILL");
        }
    }
    let second = Server::start(&db, false);
    let head = second.head().await;
    // Whatever the first answers now, it is not an acknowledgement.
    let body = limit(&trader.account, "BTCUSDT", "BUY", "40000", "0.01");
    let late =
        first.client.post(format!("{}/v1/orders", first.base)).bearer_auth(&trader.token).json(&body).send().await;
    if let Ok(response) = late {
        assert_ne!(response.status(), StatusCode::CREATED, "the fenced writer acknowledged a command");
    }
    let exited = first.exited().await;
    assert!(exited.is_some_and(|status| !status.success()), "the first writer exited non-zero: {exited:?}");
    first.kill();
    assert_eq!(second.head().await, head, "nothing of the first writer landed after the second started");
    let placed = second.post(&trader.token, "/v1/orders", body).await;
    assert_eq!(placed["position"].as_u64().unwrap(), second.head().await);
    assert_eq!(second.get(ADMIN_TOKEN, "/v1/audit/verify").await["verified"], true);
}

mod connection_faults {
    use super::support::{database, Backend};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        if let Some(db) = database(Backend::Postgres, "connections_lost").await {
            super::connections_lost_under_load(db, Backend::Postgres).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mysql() {
        if let Some(db) = database(Backend::MySql, "connections_lost").await {
            super::connections_lost_under_load(db, Backend::MySql).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_second_writer_fences_the_first() {
        if let Some(db) = database(Backend::Postgres, "second_writer").await {
            super::a_second_writer_fences_the_first(db, Backend::Postgres).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mysql_second_writer_fences_the_first() {
        if let Some(db) = database(Backend::MySql, "second_writer").await {
            super::a_second_writer_fences_the_first(db, Backend::MySql).await;
        }
    }
}

/// Server-sent events as they arrive: `(event name, data)` of each message, until `done`
/// says the messages so far are enough (or 10 s pass).
async fn read_messages(
    server: &Server,
    token: Option<&str>,
    path: &str,
    done: impl Fn(&[(String, Value)]) -> bool,
) -> Vec<(String, Value)> {
    let mut request = server.client.get(format!("{}{path}", server.base));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let mut response = request.send().await.expect("the stream opens");
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    let (mut text, mut messages) = (String::new(), Vec::new());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done(&messages) {
        let chunk = tokio::time::timeout_at(deadline, response.chunk()).await;
        let Ok(Ok(Some(chunk))) = chunk else { panic!("{path}: the stream ended or stalled after {messages:?}") };
        text.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = text.find("\n\n") {
            let message: String = text.drain(..end + 2).collect();
            let name = message.lines().find_map(|l| l.strip_prefix("event: ")).unwrap_or("").to_owned();
            if let Some(data) = message.lines().find_map(|l| l.strip_prefix("data: ")) {
                messages.push((name, serde_json::from_str(data).expect("JSON data")));
            }
        }
    }
    messages
}

/// The live streams a client expects: a trader's own events (its orders, fills, balance and
/// positions, with nothing of the other trader's), resumable from a position; a market's book
/// as a snapshot then chained depth diffs that, applied, give the book the query shows, with
/// the trades and the mark price as they happen.
async fn live_streams(db: TestDb) {
    let server = Server::start(&db, false);
    let alice = server.trader("alice", "100000").await;
    let bob = server.trader("bob", "100000").await;
    server.settle().await;
    let from = server.head().await + 1;
    let market = {
        let server = &server;
        async move {
            read_messages(server, None, "/v1/markets/BTCUSDT/live", |m| {
                m.iter().filter(|(name, _)| name == "trade").count() >= 2 && m.iter().any(|(name, _)| name == "market")
            })
            .await
        }
    };
    let story = async {
        // The market stream's snapshot is read before the story starts.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let ask =
            server.post(&alice.token, "/v1/orders", limit(&alice.account, "BTCUSDT", "SELL", "50000", "0.5")).await;
        server.post(&alice.token, "/v1/orders", limit(&alice.account, "BTCUSDT", "SELL", "50500", "0.1")).await;
        let bid = server.post(&bob.token, "/v1/orders", limit(&bob.account, "BTCUSDT", "BUY", "50500", "0.55")).await;
        assert_eq!(bid["fills"].as_array().map(Vec::len), Some(2), "{bid}");
        let rest = server.post(&bob.token, "/v1/orders", limit(&bob.account, "BTCUSDT", "BUY", "49000", "0.2")).await;
        let mark = server.post(ADMIN_TOKEN, "/v1/markets/BTCUSDT/mark-price", json!({ "price": "50100" })).await;
        (ask, rest, mark["position"].as_u64().expect("position"))
    };
    let (messages, (ask, rest, last)) = tokio::join!(market, story);

    // The market: a snapshot, then diffs chained without a gap, applied to the snapshot they
    // give the book the query shows at the end.
    let (name, snapshot) = &messages[0];
    assert_eq!(name, "book", "{messages:?}");
    let mut book: BTreeMap<(String, String), Value> = BTreeMap::new();
    let mut apply = |levels: &Value, side: &str| {
        for level in levels.as_array().expect("levels") {
            let key = (side.to_owned(), level["price"].as_str().expect("a price").to_owned());
            if level["orders"] == 0 {
                book.remove(&key);
            } else {
                book.insert(key, level.clone());
            }
        }
    };
    apply(&snapshot["bids"], "bid");
    apply(&snapshot["asks"], "ask");
    let mut sequence = snapshot["sequence"].as_u64().expect("a sequence");
    let mut trades = 0;
    for (name, data) in &messages[1..] {
        match name.as_str() {
            "depth" => {
                assert!(data["prevSequence"].as_u64().expect("prevSequence") <= sequence, "no gap: {data}");
                sequence = data["sequence"].as_u64().expect("a sequence");
                apply(&data["bids"], "bid");
                apply(&data["asks"], "ask");
            }
            "trade" => {
                trades += 1;
                assert_eq!(data["symbol"], "BTCUSDT");
                assert!(data.get("takerOrderId").is_none(), "the public tape names no orders: {data}");
            }
            "market" => assert_eq!(data["markPrice"], "50100", "{data}"),
            other => panic!("unexpected message {other}: {data}"),
        }
    }
    assert_eq!(trades, 2);
    let served = server.get(ADMIN_TOKEN, &format!("/v1/markets/BTCUSDT/book?depth=500&minPosition={last}")).await;
    let mut expected = BTreeMap::new();
    for (side, key) in [("bid", "bids"), ("ask", "asks")] {
        for level in served[key].as_array().expect("levels") {
            expected.insert((side.to_owned(), level["price"].as_str().unwrap().to_owned()), level.clone());
        }
    }
    assert_eq!(book, expected, "snapshot + diffs = the book");

    // Alice's own stream: her events only, from `from` to the mark price's position.
    let path = format!("/v1/accounts/{}/live?fromPosition={from}", alice.account);
    let reached = |m: &[(String, Value)]| m.last().is_some_and(|(_, e)| e["position"].as_u64() >= Some(last - 10));
    let mine = read_messages(&server, Some(&alice.token), &path, reached).await;
    let ask_id = ask["order"]["orderId"].as_str().expect("an id");
    let rest_id = rest["order"]["orderId"].as_str().expect("an id");
    let mut positions = Vec::new();
    for (name, event) in &mine {
        assert_eq!(name, "event");
        positions.push(event["position"].as_u64().expect("a position"));
        let payload = event["payload"].to_string();
        assert!(!payload.contains(&bob.account) && !payload.contains(rest_id), "nothing of bob's: {event}");
        if event["metadataRedacted"] == json!(true) {
            assert!(event["metadata"]["userId"].is_null(), "no other user's id: {event}");
        }
    }
    assert!(
        mine.iter().any(|(_, e)| e["metadataRedacted"] == json!(true)),
        "her maker fill, caused by bob's order, is shown without his id"
    );
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "in log order: {positions:?}");
    let types: Vec<&str> = mine.iter().map(|(_, e)| e["eventType"].as_str().unwrap()).collect();
    for expected in ["OrderPlaced", "BalanceLocked", "OrderMatched", "PositionOpened", "FeeCharged"] {
        assert!(types.contains(&expected), "{expected} in {types:?}");
    }
    assert!(mine.iter().any(|(_, e)| e["eventType"] == "OrderMatched" && e["aggregateId"] == ask_id), "her maker fill");
    // Resumed from the middle, the stream goes on with the same events.
    let middle = positions[positions.len() / 2];
    let path = format!("/v1/accounts/{}/live?fromPosition={middle}", alice.account);
    let again = read_messages(&server, Some(&alice.token), &path, reached).await;
    let tail: Vec<&Value> = mine.iter().map(|(_, e)| e).filter(|e| e["position"].as_u64() >= Some(middle)).collect();
    assert_eq!(again.iter().map(|(_, e)| e).collect::<Vec<_>>(), tail, "resumed where asked");
    // A browser's EventSource resumes with Last-Event-ID (the last position it got).
    let resumed = {
        let path = format!("{}/v1/accounts/{}/live", server.base, alice.account);
        let mut response = server
            .client
            .get(path)
            .bearer_auth(&alice.token)
            .header("last-event-id", (middle - 1).to_string())
            .send()
            .await
            .expect("the stream opens");
        let chunk = tokio::time::timeout(Duration::from_secs(10), response.chunk()).await;
        String::from_utf8_lossy(&chunk.expect("in time").expect("read").expect("a chunk")).into_owned()
    };
    let first_id = resumed.lines().find_map(|l| l.strip_prefix("id: ")).expect("an id");
    assert_eq!(first_id, tail[0]["position"].to_string(), "Last-Event-ID resumes after it");
    // Bob may not read Alice's stream.
    let (status, _) =
        server.call(Some(&bob.token), Method::GET, &format!("/v1/accounts/{}/live", alice.account), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

/// Candles (klines) as a read model: the latest minute's candle holds what the trade tape
/// says of that minute (first, highest, lowest, last price; Σ quantity; count), every interval
/// has one, and a rebuild of the read model gives the same candles.
async fn candles(db: TestDb) {
    let server = Server::start(&db, false);
    let alice = server.trader("alice", "100000").await;
    let bob = server.trader("bob", "100000").await;
    for (price, quantity) in [("50000", "0.2"), ("50100", "0.1"), ("49900", "0.3")] {
        server.post(&alice.token, "/v1/orders", limit(&alice.account, "BTCUSDT", "SELL", price, quantity)).await;
        let bid = server.post(&bob.token, "/v1/orders", limit(&bob.account, "BTCUSDT", "BUY", price, quantity)).await;
        assert!(!bid["fills"].as_array().expect("fills").is_empty(), "{bid}");
    }
    let at = server.head().await;
    let tape = server.get(ADMIN_TOKEN, &format!("/v1/markets/BTCUSDT/trades?limit=1000&minPosition={at}")).await;
    let candles = async |interval: &str| {
        server.get(ADMIN_TOKEN, &format!("/v1/markets/BTCUSDT/candles?interval={interval}&minPosition={at}")).await
    };
    let minute = candles("1m").await;
    let last = minute["data"].as_array().expect("candles").last().expect("a candle").clone();
    let open_time = last["openTime"].as_i64().expect("openTime");
    assert_eq!(last["closeTime"].as_i64(), Some(open_time + 60_000));
    // The tape's trades of that minute, oldest first.
    let millis = |t: &Value| {
        let time: perpetua_core::time::Timestamp = t["timestamp"].as_str().unwrap().parse().unwrap();
        time.millis()
    };
    let mut trades: Vec<&Value> = tape["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| (open_time..open_time + 60_000).contains(&millis(t)))
        .collect();
    trades.reverse();
    let price = |t: &Value| t["price"].as_str().unwrap().parse::<rust_decimal::Decimal>().unwrap();
    let dec = |v: &Value| v.as_str().unwrap().parse::<rust_decimal::Decimal>().unwrap();
    assert!(!trades.is_empty());
    assert_eq!(last["trades"].as_u64(), Some(trades.len() as u64), "{last}");
    assert_eq!(dec(&last["open"]), price(trades[0]));
    assert_eq!(dec(&last["close"]), price(trades[trades.len() - 1]));
    assert_eq!(dec(&last["high"]), trades.iter().map(|t| price(t)).max().unwrap());
    assert_eq!(dec(&last["low"]), trades.iter().map(|t| price(t)).min().unwrap());
    let volume: rust_decimal::Decimal = trades.iter().map(|t| dec(&t["quantity"])).sum();
    assert_eq!(dec(&last["volume"]), volume);
    for interval in ["5m", "15m", "1h", "4h", "1d"] {
        let candles = candles(interval).await;
        assert!(!candles["data"].as_array().expect("candles").is_empty(), "{interval}: {candles}");
    }
    let (status, body) = server.call(None, Method::GET, "/v1/markets/BTCUSDT/candles?interval=2m", None).await;
    assert_eq!((status, &body["error"]["code"]), (StatusCode::BAD_REQUEST, &json!("INVALID_QUERY")));
    // Rebuilt from the log, the same candles.
    let before = candles("1m").await;
    server.rebuild_all().await;
    assert_eq!(candles("1m").await, before, "a rebuild gives the same candles");
}
