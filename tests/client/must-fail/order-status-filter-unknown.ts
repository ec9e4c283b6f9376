// expect: TS2322
// expect-text: '"OPEN"' is not assignable
// The status filter of GET /v1/orders is the OrderStatus enum.
import createClient from "openapi-fetch";
import type { paths } from "../api";

const client = createClient<paths>({ baseUrl: "http://127.0.0.1:8080" });
const accountId = "00000000-0000-4000-8000-000000000001";

export async function f(): Promise<void> {
  await client.GET("/v1/orders", { params: { query: { status: "OPEN" } } });
}
