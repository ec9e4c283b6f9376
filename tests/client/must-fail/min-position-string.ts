// expect: TS2322
// expect-text: Type 'string' is not assignable to type 'number'
// minPosition is an integer log position, not text.
import createClient from "openapi-fetch";
import type { paths } from "../api";

const client = createClient<paths>({ baseUrl: "http://127.0.0.1:8080" });
const accountId = "00000000-0000-4000-8000-000000000001";

export async function f(): Promise<void> {
  await client.GET("/v1/accounts/{accountId}", {
    params: { path: { accountId }, query: { minPosition: "abc" } },
  });
}
