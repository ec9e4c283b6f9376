// expect: TS2322
// expect-text: Property 'quantity' is missing
// quantity is required on a new order.
import createClient from "openapi-fetch";
import type { paths } from "../api";

const client = createClient<paths>({ baseUrl: "http://127.0.0.1:8080" });
const accountId = "00000000-0000-4000-8000-000000000001";

export async function f(): Promise<void> {
  await client.POST("/v1/orders", {
    body: { accountId, symbol: "BTCUSDT", side: "BUY", type: "LIMIT", price: "50000", leverage: 10 },
  });
}
