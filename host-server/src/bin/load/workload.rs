//! What the clients send: the accounts made at start, the next request of a sequence, and
//! its execution over HTTP. Choices are functions of the request's sequence number (no
//! random generator), so two runs of the same settings send the same mix.

use reqwest::{Client, RequestBuilder, StatusCode};
use serde_json::{json, Value};
use std::sync::Mutex;

/// The routes a run uses.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// Traders place limit orders around a mid price and cancel resting ones.
    Orders,
    /// The admin credits accounts (`POST /v1/accounts/{accountId}/deposits`, 1 each), and
    /// nothing else after `POST /v1/users` at start.
    Deposits,
}

/// The orders workload's mix of requests.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mix {
    /// Single place-order and cancel requests, no idempotency keys.
    Simple,
    /// A third of the requests with a fresh `Idempotency-Key`, a share of batch requests,
    /// the rest single place-order and cancel requests.
    Realistic,
}

impl Kind {
    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Orders => "orders",
            Kind::Deposits => "deposits",
        }
    }
}

impl Mix {
    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Mix::Simple => "simple",
            Mix::Realistic => "realistic",
        }
    }
}

/// The settings a workload is made from.
pub struct Settings {
    pub url: String,
    pub admin_token: String,
    pub symbol: String,
    pub traders: usize,
    pub kind: Kind,
    pub mix: Mix,
    /// Share of the requests sent to the batch endpoint (realistic mix).
    pub batch_share: f64,
    /// Orders in one batch request.
    pub batch_size: usize,
    /// A server to read each answered command back from (`--read-url`).
    pub read_url: Option<String>,
}

/// Reads of answered commands on another server, with the command's position as
/// `minPosition`: how long read-your-writes takes across processes.
pub struct Reads {
    /// Waits in microseconds.
    waits: Mutex<hdrhistogram::Histogram<u64>>,
    /// Reads not answered 200.
    failed: std::sync::atomic::AtomicU64,
}

impl Default for Reads {
    fn default() -> Self {
        let waits = hdrhistogram::Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
        Reads { waits: Mutex::new(waits), failed: Default::default() }
    }
}

impl Reads {
    fn record(&self, wait: std::time::Duration, ok: bool) {
        if ok {
            let micros = u64::try_from(wait.as_micros()).unwrap_or(u64::MAX).max(1);
            self.waits.lock().expect("reads lock").saturating_record(micros);
        } else {
            self.failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Prints the waits: a line for people, a `READS {json}` line for scripts.
    pub fn print(&self, url: &str) {
        let waits = self.waits.lock().expect("reads lock");
        let ms = |q: f64| waits.value_at_quantile(q) as f64 / 1000.0;
        let failed = self.failed.load(std::sync::atomic::Ordering::Relaxed);
        println!(
            "read-your-writes on {url}: {} reads, minPosition wait ms p50 {:.2} p99 {:.2} p99.9 {:.2} max {:.2}; {failed} not answered 200",
            waits.len(), ms(0.5), ms(0.99), ms(0.999), waits.max() as f64 / 1000.0
        );
        println!(
            "READS {}",
            json!({
                "url": url, "reads": waits.len(), "failed": failed, "waitMsP50": ms(0.5), "waitMsP99": ms(0.99),
                "waitMsP999": ms(0.999), "waitMsMax": waits.max() as f64 / 1000.0,
            })
        );
    }
}

/// Share of the requests that carry an `Idempotency-Key` in the realistic mix.
const IDEMPOTENT_SHARE: f64 = 1.0 / 3.0;

/// One account the load acts on, with the orders it has resting (to cancel).
struct Trader {
    token: String,
    account: String,
    resting: Mutex<Vec<String>>,
}

/// The accounts and the mix; shared by every client or in-flight request of a run.
pub struct Workload {
    client: Client,
    url: String,
    admin_token: String,
    symbol: String,
    kind: Kind,
    traders: Vec<Trader>,
    /// Share of batch requests: 0 in the simple mix, and when the server has no batch endpoint.
    batch_share: f64,
    batch_size: usize,
    idempotent_share: f64,
    /// When each command was answered, by its log position (for the stream fan-out).
    pub answers: crate::fanout::Answers,
    read_url: Option<String>,
    /// The read-backs on `read_url`.
    pub reads: Reads,
}

/// What one request does.
enum Call {
    Place(Value),
    Batch(Vec<Value>),
    Cancel(String),
    Deposit,
}

/// One request, ready to send.
pub struct Request {
    trader: usize,
    call: Call,
    idempotency_key: Option<uuid::Uuid>,
}

impl Request {
    /// The commands this request carries (a batch request carries one per order).
    pub fn commands(&self) -> u64 {
        match &self.call {
            Call::Batch(orders) => orders.len() as u64,
            Call::Place(_) | Call::Cancel(_) | Call::Deposit => 1,
        }
    }
}

/// How a request ended.
pub struct Answer {
    /// The commands it carried.
    pub commands: u64,
    /// Answered as the load expects (a refused order or an already-gone cancel included).
    pub ok: bool,
}

impl Workload {
    /// Creates the accounts (funded, for orders) and checks for the batch endpoint when the
    /// mix uses it: a server without one gets a warning and single orders only.
    pub async fn setup(client: Client, settings: Settings) -> Result<Workload, String> {
        let mut traders = Vec::new();
        for i in 0..settings.traders {
            traders.push(create_trader(&client, &settings, i).await?);
        }
        let realistic = settings.kind == Kind::Orders && settings.mix == Mix::Realistic;
        let mut workload = Workload {
            client,
            url: settings.url,
            admin_token: settings.admin_token,
            symbol: settings.symbol,
            kind: settings.kind,
            traders,
            batch_share: if realistic { settings.batch_share } else { 0.0 },
            batch_size: settings.batch_size,
            idempotent_share: if realistic { IDEMPOTENT_SHARE } else { 0.0 },
            answers: Default::default(),
            read_url: settings.read_url,
            reads: Reads::default(),
        };
        if workload.batch_share > 0.0 && !workload.has_batch_endpoint().await? {
            workload.batch_share = 0.0;
        }
        Ok(workload)
    }

    /// The `n`th request of a sequence, for trader `trader` (modulo their count). In the
    /// orders workload a third are cancels of the trader's resting orders (while it has
    /// some); the others alternate buys and sells within ±0.5% of 50,000, so about half trade.
    pub fn next(&self, trader: usize, n: u64) -> Request {
        let trader = trader % self.traders.len();
        let call = match self.kind {
            Kind::Deposits => Call::Deposit,
            Kind::Orders if unit(n, SALT_BATCH) < self.batch_share => {
                Call::Batch((0..self.batch_size as u64).map(|k| self.order_body(trader, n + k)).collect())
            }
            Kind::Orders => match self.resting_to_cancel(trader, n) {
                Some(order) => Call::Cancel(order),
                None => Call::Place(self.order_body(trader, n)),
            },
        };
        let idempotency_key = (unit(n, SALT_IDEMPOTENCY) < self.idempotent_share).then(uuid::Uuid::new_v4);
        Request { trader, call, idempotency_key }
    }

    /// Sends a request and waits for its answer; resting orders it placed join its trader's.
    pub async fn execute(&self, request: Request) -> Answer {
        let commands = request.commands();
        let trader = &self.traders[request.trader];
        let builder = match &request.call {
            Call::Place(body) => {
                self.client.post(format!("{}/v1/orders", self.url)).bearer_auth(&trader.token).json(body)
            }
            Call::Batch(orders) => self
                .client
                .post(format!("{}/v1/orders/batch", self.url))
                .bearer_auth(&trader.token)
                .json(&json!({ "orders": orders })),
            Call::Cancel(order) => {
                self.client.delete(format!("{}/v1/orders/{order}", self.url)).bearer_auth(&trader.token)
            }
            Call::Deposit => self
                .client
                .post(format!("{}/v1/accounts/{}/deposits", self.url, trader.account))
                .bearer_auth(&self.admin_token)
                .json(&json!({"amount": "1"})),
        };
        let builder = match request.idempotency_key {
            Some(key) => builder.header("Idempotency-Key", key.to_string()),
            None => builder,
        };
        let (ok, position) = send(builder, &request.call, trader).await.unwrap_or((false, None));
        if let Some(position) = position {
            self.answers.note(position);
            if let Some(read_url) = self.read_url.as_deref().filter(|_| ok && self.answers.measuring()) {
                let read = self
                    .client
                    .get(format!("{read_url}/v1/accounts/{}?minPosition={position}", trader.account))
                    .bearer_auth(&trader.token);
                let asked = std::time::Instant::now();
                let answered = match read.send().await {
                    Ok(response) => response.status() == StatusCode::OK && response.bytes().await.is_ok(),
                    Err(_) => false,
                };
                self.reads.record(asked.elapsed(), answered);
            }
        }
        Answer { commands, ok }
    }

    /// The body of `POST /v1/orders` for one order of trader `trader`.
    fn order_body(&self, trader: usize, n: u64) -> Value {
        let side = if n.is_multiple_of(2) { "BUY" } else { "SELL" };
        // Prices within ±0.5% of 50,000: buys and sells overlap, so about half trade.
        let offset = (n * 7919 % 100) as i64 - 50;
        json!({
            "accountId": self.traders[trader].account, "symbol": self.symbol, "side": side, "type": "LIMIT",
            "price": format!("{}", 50_000 + offset * 5), "quantity": "0.001", "leverage": 10, "marginMode": "CROSS",
            "timeInForce": "GTC", "reduceOnly": false, "postOnly": false,
        })
    }

    /// Every third request cancels one of the trader's resting orders, if it has one.
    fn resting_to_cancel(&self, trader: usize, n: u64) -> Option<String> {
        if !n.is_multiple_of(3) {
            return None;
        }
        let mut resting = self.traders[trader].resting.lock().expect("no panics while held");
        (!resting.is_empty()).then(|| resting.swap_remove(0))
    }

    /// Asks the batch endpoint with an empty batch: a server that has it refuses the body
    /// (400), an older one has no such route (404, or 405 from `/v1/orders/{orderId}`).
    async fn has_batch_endpoint(&self) -> Result<bool, String> {
        let response = self
            .client
            .post(format!("{}/v1/orders/batch", self.url))
            .bearer_auth(&self.traders[0].token)
            .json(&json!({"orders": []}))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let missing = status == StatusCode::NOT_FOUND || status == StatusCode::METHOD_NOT_ALLOWED;
        if missing {
            eprintln!("perpetua-load: warning: POST /v1/orders/batch answered {status}; sending single orders only");
        }
        Ok(!missing)
    }
}

impl Trader {
    /// Keeps the ids of the orders left resting, from the answers of placed orders (the body
    /// of `POST /v1/orders`, or one result of a batch).
    fn keep_resting(&self, answers: &[Value]) {
        let ids =
            answers.iter().filter(|a| a["order"]["status"] == "ACTIVE").filter_map(|a| a["order"]["orderId"].as_str());
        self.resting.lock().expect("no panics while held").extend(ids.map(str::to_owned));
    }
}

/// Sends, reads the answer, keeps what rests; `Ok(true)` if the answer is an expected one.
/// Sends a request; whether it was answered as expected, and the log position it answered.
async fn send(builder: RequestBuilder, call: &Call, trader: &Trader) -> Result<(bool, Option<u64>), reqwest::Error> {
    let response = builder.send().await?;
    let status = response.status();
    // A refused order (422) and a cancel of an order gone meanwhile (404) are answers too.
    let expected = status.is_success() || status == StatusCode::UNPROCESSABLE_ENTITY || status == StatusCode::NOT_FOUND;
    // Read to the end, so that the connection goes back to the pool.
    let answer: Value = serde_json::from_slice(&response.bytes().await?).unwrap_or(Value::Null);
    let position = answer["position"].as_u64();
    Ok(match call {
        Call::Place(_) => {
            trader.keep_resting(std::slice::from_ref(&answer));
            (expected, position)
        }
        Call::Batch(_) => {
            trader.keep_resting(answer["results"].as_array().map_or(&[], Vec::as_slice));
            (status == StatusCode::OK, position)
        }
        Call::Cancel(_) => (expected, position),
        Call::Deposit => (status.is_success(), position),
    })
}

/// Creates one trader (for orders, funded with 1,000,000,000 USDT).
async fn create_trader(client: &Client, settings: &Settings, i: usize) -> Result<Trader, String> {
    let user = post(
        client,
        &format!("{}/v1/users", settings.url),
        &settings.admin_token,
        &json!({"name": format!("load-{i}"), "role": "trader"}),
    )
    .await?;
    let token = user["apiToken"].as_str().ok_or(format!("cannot create a trader: {user}"))?.to_owned();
    let account = user["accountId"].as_str().ok_or(format!("no account: {user}"))?.to_owned();
    if settings.kind == Kind::Orders {
        let deposit = format!("{}/v1/accounts/{account}/deposits", settings.url);
        post(client, &deposit, &settings.admin_token, &json!({"amount": "1000000000"})).await?;
    }
    Ok(Trader { token, account, resting: Mutex::new(Vec::new()) })
}

/// Posts a setup request and returns its JSON answer.
async fn post(client: &Client, url: &str, token: &str, body: &Value) -> Result<Value, String> {
    let response = client.post(url).bearer_auth(token).json(body).send().await.map_err(|e| e.to_string())?;
    response.json().await.map_err(|e| e.to_string())
}

/// Salts of the two independent choices of the realistic mix.
const SALT_BATCH: u64 = 0x6261_7463_6865_7321;
const SALT_IDEMPOTENCY: u64 = 0x6964_656d_706f_7465;

/// A number in [0, 1) spread evenly over `n` (splitmix64 of `n` and a salt).
fn unit(n: u64, salt: u64) -> f64 {
    let mut z = (n ^ salt).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
}
