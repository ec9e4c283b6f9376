// Generated from the Rust types of perpetua-wasm's answers by ts-rs (`cargo run -p perpetua-wasm
// --features ts --example typescript`, run by scripts/api-docs.sh); do not edit. The test
// command fails when it is stale.

/**
 * A trading account; derived from the engine's account counter.
 */
export type AccountId = string;

/**
 * Kind of account: a trader's, or one of the two system accounts.
 */
export type AccountKind = "TRADER" | "FEE" | "INSURANCE";

/**
 * `AuditLog.accountReadModel`: an account as the read models saw it right after
 * `last_position`.
 */
export type AccountReadModel = { 
/**
 * The last position folded in.
 */
lastPosition: number, 
/**
 * The account's summary; `None` before it was opened.
 */
account: AccountSummary | null, 
/**
 * Its open positions, valued at the marks of that moment.
 */
positions: Array<PositionView>, };

/**
 * An account's wallet and order reservations. Position margins are reserved out of the
 * balance too; they live on the positions (see `Exchange::available`).
 */
export type AccountState = { 
/**
 * The account's id.
 */
accountId: AccountId, 
/**
 * The user who owns it (the system user for system accounts).
 */
userId: UserId, 
/**
 * Trader, fee or insurance account.
 */
kind: AccountKind, 
/**
 * Wallet balance in USDT: deposits − withdrawals − fees paid + fees received ± realized
 * PnL ± funding ± liquidation settlements − funding shortfalls covered.
 */
balance: string, 
/**
 * Sum of the `remaining` of `locks`.
 */
locked: string, 
/**
 * The reservation of each open order that locked anything.
 */
locks: { [key in OrderId]: OrderLock }, 
/**
 * Σ deposits, in USDT.
 */
totalDeposited: string, 
/**
 * Σ withdrawals, in USDT.
 */
totalWithdrawn: string, 
/**
 * Timestamp of `AccountCreated`.
 */
createdAt: Timestamp, 
/**
 * Timestamp of the stream's last event.
 */
updatedAt: Timestamp, 
/**
 * Version of the account stream after its last event.
 */
version: number, };

/**
 * An account's money at one point of the log. Always
 * `available = balance − locked − positionMargin + min(0, unrealizedPnl)`, the formula of
 * `Exchange::available`, so it equals what the engine allowed at that point.
 */
export type AccountSummary = { 
/**
 * The account's id.
 */
accountId: AccountId, 
/**
 * The user who owns it (the system user for system accounts).
 */
userId: UserId, 
/**
 * Trader, fee or insurance account.
 */
kind: AccountKind, 
/**
 * Wallet balance: deposits − withdrawals − fees ± realized PnL ± funding.
 */
balance: string, 
/**
 * Reserved by open orders.
 */
locked: string, 
/**
 * What can be withdrawn or used for new orders now (negative after a cross loss).
 */
available: string, 
/**
 * Σ margins of the account's positions.
 */
positionMargin: string, 
/**
 * Σ unrealized PnL of the account's open CROSS positions at each market's last mark
 * (a market without a mark yet contributes 0). Isolated positions are not included:
 * their losses are bounded by their own margin and do not reduce `available`.
 */
unrealizedPnl: string, };

/**
 * The state of any aggregate, tagged with its type (for hosts that serve any stream).
 */
export type AggregateState = { "aggregateType": "Order", "state": OrderState } | { "aggregateType": "Account", "state": AccountState } | { "aggregateType": "Position", "state": PositionState } | { "aggregateType": "Market", "state": MarketState };

/**
 * The kind of stream an event belongs to.
 */
export type AggregateType = "Order" | "Account" | "Position" | "Market";

/**
 * Why an order was cancelled.
 */
export type CancelReason = "USER_REQUESTED" | "INSUFFICIENT_BALANCE" | "SELF_TRADE" | "LIQUIDATION";

/**
 * What is wrong at the first position that does not verify.
 */
export type ChainFault = { "kind": "POSITION_GAP", 
/**
 * The position that should have come next.
 */
expected: number, } | { "kind": "PREV_HASH_MISMATCH" } | { "kind": "HASH_MISMATCH" } | { "kind": "HEAD_MISMATCH" };

/**
 * One field that differs between two states: its JSON path and both values (`null` where
 * the field is absent).
 */
export type Change = { 
/**
 * `/`-separated path into the state (`/state/balance`).
 */
path: string, 
/**
 * The value at the older version.
 */
old: JsonValue, 
/**
 * The value at the newer version.
 */
new: JsonValue, };

/**
 * A head with its signature, the key id that names the key, and the public key itself (a
 * verifier must not take the public key from the checkpoint on trust: see [`verify`]).
 */
export type Checkpoint = { 
/**
 * The signing key's id ([`key_id`]).
 */
keyId: string, 
/**
 * The signing key's public key, 64 hex digits.
 */
publicKey: string, 
/**
 * The Ed25519 signature of [`Head::message`], 128 hex digits.
 */
signature: string, 
/**
 * The log's size: its events are at positions 1 to `treeSize`.
 */
treeSize: number, 
/**
 * The chain hash of the event at `treeSize` (zero for the empty log).
 */
chainHash: Hash, 
/**
 * The Merkle root over the events' hashes at positions 1 to `treeSize`.
 */
rootHash: Hash, 
/**
 * When it was signed.
 */
timestamp: Timestamp, };

/**
 * The last checkpoint a loaded export carries, checked (`AuditLog.checkpoint`): its
 * signature under the key it names, and whether the file holds the log it states.
 */
export type CheckpointReport = { 
/**
 * The checkpoint; `null` when the file carries none (its completeness is then unproven).
 */
checkpoint: Checkpoint | null, 
/**
 * Why its signature does not verify; `null` when it does (under the key it names: an
 * auditor compares `keyId` with the operator's published one).
 */
signatureError: string | null, 
/**
 * How the file's events stand against it; `null` without a checkpoint.
 */
coverage: Coverage | null, };

/**
 * How the events of an export stand against a checkpoint it carries.
 */
export type Coverage = { "kind": "COVERED", 
/**
 * The checkpoint's size.
 */
treeSize: number, 
/**
 * Events of the file after it.
 */
after: number, } | { "kind": "TRUNCATED", 
/**
 * The checkpoint's size.
 */
treeSize: number, 
/**
 * The file's last position (0 when it has no event).
 */
lastPosition: number, } | { "kind": "CHAIN_HASH_MISMATCH", 
/**
 * The checkpoint's size.
 */
treeSize: number, 
/**
 * The checkpoint's chain hash.
 */
expected: Hash, 
/**
 * The file's.
 */
actual: Hash, } | { "kind": "ROOT_MISMATCH", 
/**
 * The checkpoint's size.
 */
treeSize: number, 
/**
 * The checkpoint's root.
 */
expected: Hash, 
/**
 * The file's.
 */
actual: Hash, } | { "kind": "NOT_WHOLE_LOG" };

/**
 * A SHA-256 digest, written as 64 lower-case hex digits.
 */
export type Hash = string;

/**
 * A position an account held, as the account view lists it.
 */
export type HeldPosition = { 
/**
 * The position stream's id.
 */
positionId: string, 
/**
 * Its market.
 */
symbol: string, };

export type JsonValue = number | string | boolean | Array<JsonValue> | { [key in string]: JsonValue } | null;

/**
 * Margin mode of a position.
 */
export type MarginMode = "CROSS" | "ISOLATED";

/**
 * An event marked on a chart.
 */
export type Marker = { 
/**
 * Global position of the event.
 */
position: number, 
/**
 * Its time (milliseconds since the epoch).
 */
timestamp: number, 
/**
 * `LIQUIDATION` or `FUNDING`.
 */
kind: string, 
/**
 * What happened, in a few words (`funding paid 1.2 on BTCUSDT`).
 */
label: string, };

/**
 * Everything the rules need to know about one market.
 */
export type MarketSpec = { 
/**
 * The market's symbol, e.g. `BTCUSDT`.
 */
symbol: Symbol, 
/**
 * Prices are multiples of this.
 */
tickSize: string, 
/**
 * Quantities are multiples of this.
 */
stepSize: string, 
/**
 * Smallest order quantity.
 */
minQty: string, 
/**
 * Smallest `price × quantity` of an order.
 */
minNotional: string, 
/**
 * Highest leverage of the market (the first tier's).
 */
maxLeverage: number, 
/**
 * Fee rate paid by the resting order of a fill.
 */
makerFeeRate: string, 
/**
 * Fee rate paid by the incoming order of a fill.
 */
takerFeeRate: string, 
/**
 * Maintenance-margin tiers, ascending and contiguous.
 */
tiers: Array<Tier>, };

/**
 * A market: its specification, last mark price and funding.
 */
export type MarketState = { 
/**
 * The market's specification, as listed.
 */
spec: MarketSpec, 
/**
 * Last mark price in USDT; `None` before the first `MarkPriceSet`.
 */
markPrice: string | null, 
/**
 * Rate of the last funding settlement; `None` before the first.
 */
lastFundingRate: string | null, 
/**
 * Number of funding settlements so far.
 */
fundingsSettled: number, 
/**
 * Timestamp of `MarketListed`.
 */
createdAt: Timestamp, 
/**
 * Timestamp of the stream's last event.
 */
updatedAt: Timestamp, 
/**
 * Version of the market stream after its last event.
 */
version: number, };

/**
 * What the first bad event holds against what it should: a `hash` that is not its bytes'
 * (expected: the hash of its bytes), or a `prevHash` that is not the hash of the event
 * before it (expected: that event's hash).
 */
export type Mismatch = { 
/**
 * `hash` or `prevHash`.
 */
field: string, 
/**
 * The value the chain requires.
 */
expected: Hash, 
/**
 * The value the event carries.
 */
actual: Hash, };

/**
 * An order; derived from the engine's order counter.
 */
export type OrderId = string;

/**
 * What one order locked, and what of it is still locked.
 */
export type OrderLock = { 
/**
 * Σ locked for the order, in USDT.
 */
amount: string, 
/**
 * Part of `amount` not released yet, in USDT.
 */
remaining: string, };

/**
 * Everything known about one order.
 */
export type OrderState = { 
/**
 * The order's id.
 */
orderId: OrderId, 
/**
 * The user who placed it.
 */
userId: UserId, 
/**
 * The account it trades for.
 */
accountId: AccountId, 
/**
 * The market.
 */
symbol: Symbol, 
/**
 * BUY or SELL.
 */
side: Side, 
/**
 * LIMIT or MARKET.
 */
type: OrderType, 
/**
 * Limit price in USDT; `None` for MARKET orders.
 */
price: string | null, 
/**
 * Quantity ordered (base asset).
 */
quantity: string, 
/**
 * Quantity still open (base asset); 0 once filled or rejected.
 */
remaining: string, 
/**
 * Σ fill quantities (base asset).
 */
executedQty: string, 
/**
 * `Σ fill quantity × fill price`, for the average price.
 */
executedValue: string, 
/**
 * Leverage requested (0 for a rejected order, which records none).
 */
leverage: number, 
/**
 * Margin mode (CROSS for a rejected order, which records none).
 */
marginMode: MarginMode, 
/**
 * Time in force (GTC for a rejected order, which records none).
 */
timeInForce: TimeInForce, 
/**
 * Reduce-only flag (false for a rejected order).
 */
isReduceOnly: boolean, 
/**
 * Post-only flag (false for a rejected order).
 */
isPostOnly: boolean, 
/**
 * Self-trade prevention mode (EXPIRE_TAKER for a rejected order).
 */
stpMode: StpMode, 
/**
 * The client's own id, as placed or as last corrected.
 */
clientOrderId: string | null, 
/**
 * An admin's note, set only by `OrderCorrected`.
 */
note: string | null, 
/**
 * Life-cycle status.
 */
status: OrderStatus, 
/**
 * Why it was rejected; set only when REJECTED.
 */
rejectReason: RejectCode | null, 
/**
 * Why it was cancelled; set only when CANCELLED.
 */
cancelReason: CancelReason | null, 
/**
 * Σ fees paid on its fills, in USDT.
 */
feesPaid: string, 
/**
 * Σ PnL realized by its fills, in USDT (signed).
 */
realizedPnl: string, 
/**
 * Number of `OrderCorrected` events applied.
 */
corrections: number, 
/**
 * Timestamp of the order's first event.
 */
createdAt: Timestamp, 
/**
 * Timestamp of the order's last event.
 */
updatedAt: Timestamp, 
/**
 * Version of the order stream after its last event.
 */
version: number, };

/**
 * Life-cycle status of an order.
 */
export type OrderStatus = "ACTIVE" | "PARTIALLY_FILLED" | "FILLED" | "CANCELLED" | "EXPIRED" | "REJECTED";

/**
 * Order type.
 */
export type OrderType = "LIMIT" | "MARKET";

/**
 * `AuditLog.pnlSeries`: an account's equity and realized PnL over time, and the events to
 * mark on its charts.
 */
export type PnlSeries = { 
/**
 * Wallet balance plus the unrealized PnL of every open position at its market's last
 * mark, after each event that moves either (the account's, its positions', a mark of a
 * market it holds).
 */
equity: Array<Point>, 
/**
 * The PnL realized by the account's positions' fills so far (each decrease and close),
 * after each that realizes some. A liquidation is a marker: the insurance account takes
 * the position over at the mark.
 */
realized: Array<Point>, 
/**
 * The account's liquidations and funding payments, in log order.
 */
markers: Array<Marker>, };

/**
 * A point of a chart series.
 */
export type Point = { 
/**
 * Global position of the event after which the value holds.
 */
position: number, 
/**
 * Its time (milliseconds since the epoch).
 */
timestamp: number, 
/**
 * The value, as a decimal string.
 */
value: string, };

/**
 * A position (one per account and symbol, for the account's whole life).
 */
export type PositionId = string;

/**
 * A position. Flat when `size` is zero; the stream lives on and may open again.
 */
export type PositionState = { 
/**
 * The position stream's id.
 */
positionId: PositionId, 
/**
 * The account holding the position.
 */
accountId: AccountId, 
/**
 * The market.
 */
symbol: Symbol, 
/**
 * BUY for a long, SELL for a short (the last side while flat).
 */
side: Side, 
/**
 * Open size (base asset); 0 when flat.
 */
size: string, 
/**
 * `Σ quantity × price` of what is open; entry price = entry value / size.
 */
entryValue: string, 
/**
 * Margin reserved for the position, in USDT; 0 when flat and for the insurance account.
 */
margin: string, 
/**
 * Leverage of the position.
 */
leverage: number, 
/**
 * CROSS or ISOLATED.
 */
marginMode: MarginMode, 
/**
 * Realized PnL over the stream's life (trades and liquidation).
 */
realizedPnl: string, 
/**
 * Timestamp of the stream's first `PositionOpened`.
 */
createdAt: Timestamp, 
/**
 * Timestamp of the stream's last event.
 */
updatedAt: Timestamp, 
/**
 * Version of the position stream after its last event.
 */
version: number, };

/**
 * One open position at one point of the log, valued at its market's last mark.
 */
export type PositionView = { 
/**
 * The position stream's id.
 */
positionId: PositionId, 
/**
 * The account holding the position.
 */
accountId: AccountId, 
/**
 * The market.
 */
symbol: Symbol, 
/**
 * BUY for a long, SELL for a short.
 */
side: Side, 
/**
 * Open size (base asset).
 */
size: string, 
/**
 * Size-weighted average entry price (8 dp, normalized); `None` only when flat.
 */
entryPrice: string | null, 
/**
 * Margin reserved for the position, in USDT.
 */
margin: string, 
/**
 * Leverage of the position.
 */
leverage: number, 
/**
 * CROSS or ISOLATED.
 */
marginMode: MarginMode, 
/**
 * The market's last mark price; `None` before the first.
 */
markPrice: string | null, 
/**
 * `side × (size × mark − entry value)`, exact; 0 without a mark.
 */
unrealizedPnl: string, 
/**
 * `PositionState::liquidation_price` (2 dp); `None` when no positive price liquidates.
 */
liquidationPrice: string | null, 
/**
 * PnL realized over the position stream's life.
 */
realizedPnl: string, 
/**
 * Timestamp of the position stream's last event.
 */
updatedAt: Timestamp, };

/**
 * Business rejection of an order, in precedence order (the first that applies wins).
 */
export type RejectCode = "INVALID_PRICE_TICK" | "INVALID_QUANTITY_STEP" | "BELOW_MIN_NOTIONAL" | "LEVERAGE_TOO_HIGH" | "MARGIN_MODE_MISMATCH" | "REDUCE_ONLY_REJECTED" | "POST_ONLY_WOULD_TAKE" | "FOK_NOT_FILLABLE" | "INSUFFICIENT_BALANCE";

/**
 * `replaySummary`: how much a replay of a whole log folded.
 */
export type ReplaySummary = { 
/**
 * The last position replayed.
 */
lastPosition: number, 
/**
 * Accounts, orders and positions in the replayed exchange.
 */
accounts: number, 
/**
 * Orders.
 */
orders: number, 
/**
 * Positions.
 */
positions: number, };

/**
 * What a loaded log is, as the server exports it: a range of the global log (contiguous
 * positions, so the chain itself is checked, a missing position included), or the events of
 * one stream or of one correlation id (positions with gaps: each event's hash is checked
 * against its bytes and its `prevHash`, and the link to the event before wherever the two
 * are adjacent; what lies in the gaps cannot be checked offline).
 */
export type Scope = "range" | "stream" | "correlation";

/**
 * The verification as the viewer reads it (`AuditLog.verify`): the core's report, what was
 * verified, and how many events could only be linked.
 */
export type ScopedReport = { 
/**
 * A range of the log (its chain), or a stream or correlation export (event by event).
 */
scope: Scope, 
/**
 * Events of a stream export whose metadata the server withheld from this reader
 * (another user's identity): linked to their neighbours, but their hashes cannot be
 * recomputed.
 */
withheld: number, 
/**
 * The first bad event's hash against what it should be; `null` when every event
 * verifies or the fault is a missing position.
 */
mismatch: Mismatch | null, 
/**
 * Events loaded but not checked yet (`verifySome` checks a slice at a time).
 */
pending: number, 
/**
 * Events checked and found good before the first fault (or all of them).
 */
verified: number, 
/**
 * Position of the first event that does not verify; `None` when all do.
 */
firstBadPosition: number | null, 
/**
 * What is wrong at `first_bad_position`; `None` when every event verifies.
 */
fault: ChainFault | null, 
/**
 * Hash of the last good event.
 */
lastHash: Hash, };

/**
 * Order side; a BUY opens or increases a long, a SELL a short.
 */
export type Side = "BUY" | "SELL";

/**
 * Self-trade prevention: which side is cancelled when an order would match its own account.
 */
export type StpMode = "EXPIRE_TAKER" | "EXPIRE_MAKER" | "EXPIRE_BOTH";

/**
 * A stream, as the viewer names it: `{aggregateType, aggregateId}`.
 */
export type StreamKey = { 
/**
 * The kind of stream.
 */
aggregateType: AggregateType, 
/**
 * Its id (a UUID, or a market's symbol).
 */
aggregateId: string, };

/**
 * A market symbol: 1 to 15 characters from `A-Z` and `0-9`.
 */
export type Symbol = string;

/**
 * One maintenance-margin tier: notional in `[notional_from, notional_to)`.
 */
export type Tier = { 
/**
 * Lower bound of the tier's notional (inclusive), in USDT.
 */
notionalFrom: string, 
/**
 * Upper bound of the tier's notional (exclusive), in USDT.
 */
notionalTo: string, 
/**
 * Highest leverage allowed for a notional in this tier.
 */
maxLeverage: number, 
/**
 * Maintenance-margin rate.
 */
mmr: string, 
/**
 * Maintenance amount: `cum_n = from_n × (MMR_n − MMR_{n−1}) + cum_{n−1}`.
 */
cum: string, };

/**
 * How long an order stays in the book.
 */
export type TimeInForce = "GTC" | "IOC" | "FOK";

/**
 * A point in time, in whole milliseconds since 1970-01-01T00:00:00Z (UTC).
 */
export type Timestamp = string;

/**
 * A user; created by the host (authentication is not the core's business).
 */
export type UserId = string;

/**
 * The result of verifying a range of the chain.
 */
export type VerifyReport = { 
/**
 * Events checked and found good before the first fault (or all of them).
 */
verified: number, 
/**
 * Position of the first event that does not verify; `None` when all do.
 */
firstBadPosition: number | null, 
/**
 * What is wrong at `first_bad_position`; `None` when every event verifies.
 */
fault: ChainFault | null, 
/**
 * Hash of the last good event.
 */
lastHash: Hash, };

/**
 * `AuditLog.versionView`: what the stream view shows for one version.
 */
export type VersionView = { 
/**
 * The state after the event of that version (`None` when the stream has no such event
 * and none before it).
 */
state: AggregateState | null, 
/**
 * What changed from the version before.
 */
changes: Array<Change>, };
