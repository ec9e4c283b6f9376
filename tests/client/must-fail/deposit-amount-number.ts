// expect: TS2322
// expect-text: Type 'number' is not assignable to type 'string'
// Decimals travel as strings: a deposit of the number 100 must not compile.
import createClient from "openapi-fetch";
import type { paths } from "../api";

const client = createClient<paths>({ baseUrl: "http://127.0.0.1:8080" });
const accountId = "00000000-0000-4000-8000-000000000001";

export async function f(): Promise<void> {
  await client.POST("/v1/accounts/{accountId}/deposits", {
    params: { path: { accountId } },
    body: { amount: 100 },
  });
}
