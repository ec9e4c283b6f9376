// expect: TS2820
// expect-text: '"BUYY"' is not assignable
// An order's side is the enum BUY | SELL: "BUYY" must not compile.
import createClient from "openapi-fetch";
import type { paths } from "../api";

const client = createClient<paths>({ baseUrl: "http://127.0.0.1:8080" });
const accountId = "00000000-0000-4000-8000-000000000001";

export async function f(): Promise<void> {
  await client.POST("/v1/orders", {
    body: { accountId, symbol: "BTCUSDT", side: "BUYY", type: "LIMIT", price: "50000", quantity: "0.01", leverage: 10 },
  });
}
