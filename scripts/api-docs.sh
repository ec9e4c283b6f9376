#!/usr/bin/env bash
# Rewrites the generated parts of the API's docs from the route table and the wire types:
# the README's route table (`perpetua openapi --markdown`) and docs/API.md
# (`--markdown-detail`). A unit test (http::openapi) fails when they are out of date.
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
echo "api-docs: README.md's route table and docs/API.md rewritten"
