//! Issue 12, items 1 and 4 (in part): query servers beside the writer. Two `serve --role query`
//! processes on the writer's PostgreSQL database answer a read of a command made on the writer
//! process with `minPosition` (read-your-writes across processes: they wait for the writer's
//! projector to reach the position), refuse the routes they do not serve with 421 `WRONG_ROLE`
//! naming the writer, hold no lease, and answer what the writer answers.

use super::support::{database, Backend, Launch, Server, ADMIN_TOKEN};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_servers_read_the_writers_commands() {
    let Some(db) = database(Backend::Postgres, "roles").await else { return };
    let writer = Server::start(&db, true);
    let query = |_: usize| Server::launch(&db, false, Launch { args: &["--role", "query"], ..Launch::default() });
    let readers = [query(0), query(1)];
    let trader = writer.trader("reader", "1000").await;
    for round in 0..20 {
        // A command on the writer, then at once a read of it on a query server.
        let deposit = writer
            .post(ADMIN_TOKEN, &format!("/v1/accounts/{}/deposits", trader.account), json!({ "amount": "5" }))
            .await;
        let position = deposit["position"].as_u64().expect("the command's position");
        let reader = &readers[round % 2];
        let account =
            reader.get(&trader.token, &format!("/v1/accounts/{}?minPosition={position}", trader.account)).await;
        let expected = 1000 + 5 * (round + 1);
        assert_eq!(
            account["balance"].as_str().map(|b| b.parse::<f64>().expect("decimal")),
            Some(expected as f64),
            "round {round}: the query server reflects the deposit at {position}: {account}"
        );
    }
    writer.settle().await;
    for reader in &readers {
        // What it does not serve, it says who does.
        let (status, body) = reader
            .call(
                Some(&trader.token),
                Method::POST,
                &format!("/v1/accounts/{}/withdrawals", trader.account),
                Some(json!({ "amount": "1" })),
            )
            .await;
        assert_eq!(status, StatusCode::MISDIRECTED_REQUEST, "{body}");
        assert_eq!(body["error"]["code"], "WRONG_ROLE", "{body}");
        assert!(body["error"]["message"].as_str().unwrap_or_default().contains("writer"), "{body}");
        let (status, _) = reader.call(None, Method::GET, "/v1/markets/BTCUSDT/live", None).await;
        assert_eq!(status, StatusCode::MISDIRECTED_REQUEST, "live streams follow the writer's commits");
        // The same answers as the writer's, and the same log.
        let path = format!("/v1/accounts/{}", trader.account);
        assert_eq!(reader.get(&trader.token, &path).await, writer.get(&trader.token, &path).await);
        let head = writer.head().await;
        for _ in 0..500 {
            if reader.head().await == head {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(reader.head().await, head, "the query server follows the writer's head");
        // Its metrics show the head and the read models' position it follows (each polled).
        let mut gauges = (None, None);
        for _ in 0..500 {
            let (_, metrics) = reader.call(Some(ADMIN_TOKEN), Method::GET, "/metrics", None).await;
            let gauge = |name: &str| {
                metrics.as_str().and_then(|m| m.lines().find_map(|l| l.strip_prefix(name)?.trim().parse::<u64>().ok()))
            };
            gauges = (gauge("perpetua_log_head_position "), gauge("perpetua_projection_position "));
            if gauges == (Some(head), Some(head)) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(gauges, (Some(head), Some(head)), "a query server's metrics show the positions it follows");
        assert_eq!(reader.get(ADMIN_TOKEN, "/v1/audit/verify").await["verified"], true);
        let (status, ready) = reader.call(None, Method::GET, "/readyz", None).await;
        assert_eq!(status, StatusCode::OK, "{ready}");
    }
    // The writer still holds its lease and commits: the query servers took nothing from it.
    writer.post(ADMIN_TOKEN, &format!("/v1/accounts/{}/deposits", trader.account), json!({ "amount": "1" })).await;
}
