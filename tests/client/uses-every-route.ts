// A client of every operation of Perpetua's OpenAPI document, typed by the
// openapi-typescript output (api.d.ts) through openapi-fetch. It only has to
// type-check (run.sh step c); run.sh step e checks that each (method, path)
// of the document is called here as `client.METHOD("/path"`.
import createClient from "openapi-fetch";
import type { components, paths } from "./api";

type Schemas = components["schemas"];

const client = createClient<paths>({
  baseUrl: "http://127.0.0.1:8080",
  headers: { Authorization: "Bearer token" },
});

const accountId = "00000000-0000-4000-8000-000000000001";
const orderId = "00000000-0000-4000-8000-000000000002";
const correlationId = "00000000-0000-4000-8000-000000000003";
const key = (name: string): { "Idempotency-Key": string; "X-Correlation-Id": string } => ({
  "Idempotency-Key": `client-test-${name}`,
  "X-Correlation-Id": correlationId,
});

// Each check reads typed response fields; an assignment to an annotated
// variable fails to compile if the generated type drifts.
export async function probes(): Promise<void> {
  // ---- operations ----
  {
    const { data } = await client.GET("/healthz");
    if (data) {
      const status: string = data.status;
      const head: number = data.headPosition;
      const failing: boolean = data.projectionFailing;
      void [status, head, failing];
    }
  }
  {
    const { data } = await client.GET("/readyz");
    if (data) {
      const lease: string = data.checks.writerLease;
      const code: string | undefined = data.error?.code;
      void [lease, code];
    }
  }
  {
    const { data } = await client.GET("/metrics", { parseAs: "text" });
    if (data !== undefined) {
      const text: string = data;
      void text;
    }
  }
  {
    const { data } = await client.GET("/openapi.json");
    void data;
  }
  {
    const { data } = await client.GET("/v1/time");
    if (data) {
      const millis: number = data.serverTime;
      void millis;
    }
  }

  // ---- markets (public) ----
  {
    const { data, error } = await client.GET("/v1/markets", { params: { query: { minPosition: 10 } } });
    if (data) {
      const symbol: string = data.data[0].symbol;
      const mark: string | null = data.data[0].markPrice;
      const mmr: Schemas["Decimal"] | undefined = data.data[0].tiers[0]?.mmr;
      void [symbol, mark, mmr];
    } else {
      const code: string = error.error.code;
      void code;
    }
  }
  {
    const { data } = await client.GET("/v1/markets/{symbol}/book", {
      params: { path: { symbol: "BTCUSDT" }, query: { depth: 10, minPosition: 1 } },
    });
    if (data) {
      const bestBid: string | undefined = data.bids[0]?.price;
      const orders: number | undefined = data.asks[0]?.orders;
      void [bestBid, orders];
    }
  }
  {
    const { data } = await client.GET("/v1/markets/{symbol}/trades", {
      params: { path: { symbol: "ETHUSDT" }, query: { limit: 50, minPosition: 1 } },
    });
    if (data) {
      const takerSide: Schemas["Side"] | undefined = data.data[0]?.takerSide;
      void takerSide;
    }
  }
  {
    const { data } = await client.POST("/v1/markets/{symbol}/mark-price", {
      params: { path: { symbol: "BTCUSDT" }, header: key("mark") },
      body: { price: "50000.5" },
    });
    if (data) {
      const liquidated: string[] = data.liquidatedPositions;
      const mark: string | null = data.market.markPrice;
      void [liquidated, mark];
    }
  }
  {
    const { data } = await client.POST("/v1/markets/{symbol}/funding", {
      params: { path: { symbol: "BTCUSDT" }, header: key("funding") },
      body: { rate: "0.0001" },
    });
    if (data) {
      const settled: number = data.market.fundingsSettled;
      const rate: string | null = data.market.lastFundingRate;
      void [settled, rate];
    }
  }

  // ---- users and accounts ----
  {
    const { data } = await client.POST("/v1/users", {
      params: { header: key("user") },
      body: { name: "alice", role: "trader" },
    });
    if (data) {
      const token: string | null | undefined = data.apiToken;
      const account: string | null = data.accountId;
      void [token, account];
    }
  }
  {
    const { data } = await client.GET("/v1/accounts/{accountId}", {
      params: { path: { accountId }, query: { minPosition: 3 } },
    });
    if (data) {
      const available: string = data.available;
      const kind: Schemas["AccountKind"] = data.kind;
      void [available, kind];
    }
  }
  {
    const { data } = await client.POST("/v1/accounts/{accountId}/deposits", {
      params: { path: { accountId }, header: key("deposit") },
      body: { amount: "100000" },
    });
    if (data) {
      const balance: string = data.account.balance;
      const position: number = data.position;
      void [balance, position];
    }
  }
  {
    const { data } = await client.POST("/v1/accounts/{accountId}/withdrawals", {
      params: { path: { accountId }, header: key("withdrawal") },
      body: { amount: "10.5" },
    });
    if (data) {
      const balance: string = data.account.balance;
      void balance;
    }
  }

  // ---- orders ----
  {
    const { data, error } = await client.POST("/v1/orders", {
      params: { header: key("order") },
      body: {
        accountId,
        symbol: "BTCUSDT",
        side: "BUY",
        type: "LIMIT",
        price: "50000",
        quantity: "0.01",
        leverage: 10,
        timeInForce: "GTC",
        marginMode: "CROSS",
        stpMode: "EXPIRE_TAKER",
        postOnly: false,
        reduceOnly: false,
        clientOrderId: "my-1",
      },
    });
    if (data) {
      const status: Schemas["OrderStatus"] = data.order.status;
      const fillPrice: string | undefined = data.fills[0]?.price;
      const entry: string | null | undefined = data.openPosition?.entryPrice;
      const liq: string | null | undefined = data.openPosition?.liquidationPrice;
      void [status, fillPrice, entry, liq];
    } else {
      const code: string = error.error.code;
      void code;
    }
  }
  {
    const { data } = await client.POST("/v1/orders", {
      body: { accountId, symbol: "ETHUSDT", side: "SELL", type: "MARKET", quantity: "1", leverage: 5 },
      params: { header: { "Idempotency-Key": "market-1" } },
    });
    if (data) {
      const avg: string | null = data.order.avgPrice;
      void avg;
    }
  }
  {
    const { data } = await client.POST("/v1/orders/batch", {
      params: { header: key("batch") },
      body: {
        orders: [
          { accountId, symbol: "BTCUSDT", side: "BUY", type: "LIMIT", price: "49000", quantity: "0.01", leverage: 10 },
          { accountId, symbol: "BTCUSDT", side: "SELL", type: "MARKET", quantity: "0.01", leverage: 10, reduceOnly: true },
        ],
      },
    });
    if (data) {
      const first = data.results[0];
      const status: number | undefined = first?.status;
      const orderStatus: Schemas["OrderStatus"] | undefined = first?.order?.status;
      const errorCode: string | undefined = first?.error?.code;
      void [status, orderStatus, errorCode];
    }
  }
  {
    const { data } = await client.GET("/v1/orders", {
      params: {
        query: {
          symbol: "BTCUSDT",
          status: "FILLED",
          startTime: "2026-01-01T00:00:00.000Z",
          endTime: "2026-12-31T00:00:00.000Z",
          page: 1,
          limit: 20,
          accountId,
          minPosition: 7,
        },
      },
    });
    if (data) {
      const total: number = data.total;
      const firstSide: Schemas["Side"] | undefined = data.data[0]?.side;
      void [total, firstSide];
    }
  }
  {
    const { data } = await client.GET("/v1/orders/active", { params: { query: { accountId, minPosition: 1 } } });
    if (data) {
      const remaining: string | undefined = data.data[0]?.remaining;
      void remaining;
    }
  }
  {
    const { data } = await client.GET("/v1/orders/{orderId}", {
      params: { path: { orderId }, query: { minPosition: 1 } },
    });
    if (data) {
      const status: Schemas["OrderStatus"] = data.status;
      const reject: Schemas["RejectCode"] | null = data.rejectReason;
      void [status, reject];
    }
  }
  {
    const { data } = await client.DELETE("/v1/orders/{orderId}", {
      params: { path: { orderId }, header: key("cancel") },
    });
    if (data) {
      const reason: Schemas["CancelReason"] | null = data.order.cancelReason;
      void reason;
    }
  }
  {
    const { data } = await client.DELETE("/v1/orders", {
      params: { query: { symbol: "BTCUSDT" }, header: key("cancel-all") },
    });
    if (data) {
      const cancelled: string[] = data.cancelled;
      const locked: string = data.account.locked;
      void [cancelled, locked];
    }
  }
  {
    const { data } = await client.POST("/v1/orders/{orderId}/corrections", {
      params: { path: { orderId }, header: key("correction") },
      body: {
        correctedVersion: 1,
        reason: "typo",
        corrections: [{ field: "clientOrderId", from: "my-1", to: "my-2" }, { field: "note", to: null }],
      },
    });
    if (data) {
      const note: string | null = data.order.note;
      void note;
    }
  }

  // ---- positions ----
  {
    const { data } = await client.GET("/v1/positions", { params: { query: { accountId, minPosition: 1 } } });
    if (data) {
      const size: string | undefined = data.data[0]?.size;
      const mode: Schemas["MarginMode"] | undefined = data.data[0]?.marginMode;
      void [size, mode];
    }
  }
  {
    const { data } = await client.POST("/v1/positions/{symbol}/leverage", {
      params: { path: { symbol: "BTCUSDT" }, header: key("leverage") },
      body: { leverage: 20 },
    });
    if (data) {
      const leverage: number | undefined = data.openPosition?.leverage;
      void leverage;
    }
  }
  {
    const { data } = await client.POST("/v1/positions/{symbol}/margin", {
      params: { path: { symbol: "BTCUSDT" }, header: key("margin") },
      body: { amount: "-5" },
    });
    if (data) {
      const margin: string | undefined = data.openPosition?.margin;
      void margin;
    }
  }

  // ---- events and audit ----
  {
    const { data } = await client.GET("/v1/events", {
      params: { query: { fromPosition: 1, limit: 100, eventType: "OrderPlaced", correlationId } },
    });
    if (data) {
      const next: number = data.nextPosition;
      const event = data.data[0];
      const type: string | undefined = event?.eventType;
      const aggregate: Schemas["AggregateType"] | undefined = event?.aggregateType;
      const user: string | null | undefined = event?.metadata.userId;
      void [next, type, aggregate, user];
    }
  }
  {
    const { data } = await client.GET("/v1/events/live", {
      params: { query: { fromPosition: 1 } },
      parseAs: "stream",
    });
    if (data) {
      const stream: ReadableStream<Uint8Array> = data;
      void stream;
    }
  }
  {
    const { data } = await client.GET("/v1/orders/by-client-id/{clientOrderId}", {
      params: { path: { clientOrderId: "grid-1" }, query: { minPosition: 10 } },
    });
    if (data) {
      const status: "ACTIVE" | "PARTIALLY_FILLED" | "FILLED" | "CANCELLED" | "EXPIRED" | "REJECTED" = data.status;
      const clientOrderId: string | null = data.clientOrderId;
      void status;
      void clientOrderId;
    }
  }
  {
    const { data } = await client.DELETE("/v1/orders/by-client-id/{clientOrderId}", {
      params: { path: { clientOrderId: "grid-1" }, query: { minPosition: 10 }, header: { "Idempotency-Key": "cancel-grid-1" } },
    });
    if (data) {
      const cancelled: string = data.order.orderId;
      const position: number = data.position;
      void cancelled;
      void position;
    }
  }
  {
    const { data } = await client.GET("/v1/markets/{symbol}/candles", {
      params: { path: { symbol: "BTCUSDT" }, query: { interval: "1m", startTime: "2026-01-01T00:00:00.000Z", limit: 100 } },
    });
    if (data) {
      const candle = data.data[0];
      if (candle) {
        const close: string = candle.close;
        const openTime: number = candle.openTime;
        const interval: "1m" | "5m" | "15m" | "1h" | "4h" | "1d" = candle.interval;
        void close;
        void openTime;
        void interval;
      }
    }
  }
  {
    const { data } = await client.GET("/v1/accounts/{accountId}/live", {
      params: { path: { accountId: "00000000-0000-0000-0000-000000000001" }, query: { fromPosition: 1 } },
      parseAs: "stream",
    });
    if (data) {
      const stream: ReadableStream<Uint8Array> = data;
      void stream;
    }
  }
  {
    const { data } = await client.GET("/v1/markets/{symbol}/live", {
      params: { path: { symbol: "BTCUSDT" }, query: { depth: 100 } },
      parseAs: "stream",
    });
    if (data) {
      const stream: ReadableStream<Uint8Array> = data;
      void stream;
    }
  }
  {
    const { data } = await client.GET("/v1/export", {
      params: {
        query: {
          fromPosition: 1,
          toPosition: 100,
          aggregateType: "Order",
          aggregateId: orderId,
          correlationId,
        },
      },
      parseAs: "text",
    });
    if (data !== undefined) {
      const ndjson: string = data;
      void ndjson;
    }
  }
  {
    const { data } = await client.GET("/v1/streams/{aggregateType}/{aggregateId}/events", {
      params: {
        path: { aggregateType: "Market", aggregateId: "BTCUSDT" },
        query: { fromVersion: 1, toVersion: 10, until: "2026-01-01T00:00:00.000Z", limit: 10 },
      },
    });
    if (data) {
      const nextVersion: number = data.nextVersion;
      const hash: string | undefined = data.data[0]?.hash;
      void [nextVersion, hash];
    }
  }
  {
    const { data } = await client.GET("/v1/streams/{aggregateType}/{aggregateId}/state", {
      params: { path: { aggregateType: "Account", aggregateId: accountId }, query: { version: 2, at: "2026-01-01T00:00:00.000Z" } },
    });
    if (data) {
      const version: number = data.version;
      const state: Schemas["StreamStateOf"] = data.state;
      void [version, state];
    }
  }
  {
    const { data } = await client.GET("/v1/audit/verify", { params: { query: { from: 1, to: 100 } } });
    if (data) {
      const verified: boolean = data.verified;
      const firstBad: number | null = data.firstBadPosition;
      const fault: string | undefined = data.fault?.kind;
      void [verified, firstBad, fault];
    }
  }
  {
    const { data } = await client.GET("/v1/audit/tree", { params: { query: { treeSize: 100 } } });
    if (data) {
      const size: number = data.treeSize;
      const root: string = data.rootHash;
      void [size, root];
    }
  }
  {
    const { data } = await client.GET("/v1/audit/proofs/inclusion", {
      params: { query: { position: 7, treeSize: 100 } },
    });
    if (data) {
      const leaf: number = data.leafIndex;
      const hashes: string[] = [data.eventHash, data.leafHash, data.rootHash, ...data.proof];
      void [leaf, hashes, data.position, data.treeSize];
    }
  }
  {
    const { data } = await client.GET("/v1/audit/proofs/consistency", {
      params: { query: { first: 50, second: 100 } },
    });
    if (data) {
      const roots: string[] = [data.firstRoot, data.secondRoot];
      const proof: string[] = data.proof;
      void [roots, proof, data.first, data.second];
    }
  }

  {
    const { data } = await client.GET("/v1/orders/{orderId}/receipt", { params: { path: { orderId } } });
    if (data) {
      const size: number = data.checkpoint.treeSize;
      const proofs: string[][] = data.events.map((e) => e.proof);
      const positions: number[] = data.events.map((e) => e.event.position);
      void [size, proofs, positions];
    }
  }
  {
    const { data } = await client.GET("/v1/audit/checkpoints", { params: { query: { fromTreeSize: 1, limit: 10 } } });
    if (data) {
      const sizes: number[] = data.checkpoints.map((c) => c.treeSize);
      const next: number | null = data.nextTreeSize;
      void [sizes, next];
    }
  }
  {
    const { data } = await client.GET("/v1/audit/checkpoints/latest", { params: { query: { atMostTreeSize: 100 } } });
    if (data) {
      const signed: string[] = [data.chainHash, data.rootHash, data.keyId, data.publicKey, data.signature];
      void [signed, data.timestamp];
    }
  }
  {
    const { data } = await client.POST("/v1/audit/checkpoints");
    if (data) {
      const size: number = data.treeSize;
      void size;
    }
  }

  // ---- admin ----
  {
    const { data } = await client.GET("/v1/admin/projections");
    if (data) {
      const lag: number = data.lagEvents;
      const name: string | undefined = data.readModels[0]?.name;
      const rebuilding: number | undefined = data.readModels[0]?.rebuilding?.generation;
      void [lag, name, rebuilding];
    }
  }
  {
    const { data } = await client.POST("/v1/admin/projections/{name}/rebuild", {
      params: { path: { name: "all" } },
    });
    if (data) {
      const rebuilding: string[] = data.rebuilding;
      void rebuilding;
    }
  }
}
