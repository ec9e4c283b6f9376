#!/usr/bin/env bash
# Rewrites what is generated from the route table and the wire types: the README's route
# table (`perpetua openapi --markdown`), docs/API.md (`--markdown-detail`), the viewer's
# API types (web/src/api/schema.gen.d.ts, by openapi-typescript) and its types of the wasm
# answers (web/src/wasm/answers.gen.ts, by ts-rs). A unit test (http::openapi)
# and the test command fail when they are out of date.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q -p perpetua-server --bin perpetua
python3 - <<'PY'
import subprocess
def generated(flag):
    return subprocess.run(["target/debug/perpetua", "openapi", flag], capture_output=True, text=True, check=True).stdout
readme = open("README.md").read()
begin, end = "<!-- routes: perpetua openapi --markdown -->\n", "<!-- /routes -->"
i = readme.index(begin) + len(begin)
j = readme.index(end, i)
open("README.md", "w").write(readme[:i] + generated("--markdown") + readme[j:])
api = open("docs/API.md").read()
header = "<!-- generated: perpetua openapi --markdown-detail -->\n\n"
i = api.index(header) + len(header)
open("docs/API.md", "w").write(api[:i] + generated("--markdown-detail"))
PY
# The viewer's TypeScript types of the API (checked by the test command, type-checked with
# the viewer).
scripts/setup.sh >/dev/null
openapi=$(mktemp)
target/debug/perpetua openapi >"$openapi"
tests/client/node_modules/.bin/openapi-typescript "$openapi" -o web/src/api/schema.gen.d.ts >/dev/null 2>&1
rm -f "$openapi"
# The viewer's TypeScript types of the wasm answers (ts-rs, from the Rust types).
cargo run -q -p perpetua-wasm --features ts --example typescript >web/src/wasm/answers.gen.ts
echo "api-docs: README.md's route table, docs/API.md, web/src/api/schema.gen.d.ts and web/src/wasm/answers.gen.ts rewritten"
