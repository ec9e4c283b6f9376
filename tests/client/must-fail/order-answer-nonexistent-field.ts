// expect: TS2339
// expect-text: Property 'nonexistent' does not exist
// The answer to POST /v1/orders has no order.nonexistent.
import createClient from "openapi-fetch";
import type { paths } from "../api";

const client = createClient<paths>({ baseUrl: "http://127.0.0.1:8080" });
const accountId = "00000000-0000-4000-8000-000000000001";

export async function f(): Promise<void> {
  const { data } = await client.POST("/v1/orders", {
    body: { accountId, symbol: "BTCUSDT", side: "BUY", type: "MARKET", quantity: "0.01", leverage: 10 },
  });
  if (data) {
    console.log(data.order.nonexistent);
  }
}
