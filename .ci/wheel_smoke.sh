#!/usr/bin/env bash
# Build the wheel from a clean copy of the tracked tree, install it into a fresh venv and run
# what a new user runs, from an empty directory (nothing of the source tree on sys.path).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

if git -C "$repo" rev-parse --git-dir >/dev/null 2>&1; then
  git clone -q "$repo" "$work/src"              # a clean clone: only what is committed
else
  cp -r "$repo" "$work/src"                     # an unpacked sdist
fi
python3 -m venv "$work/venv"
"$work/venv/bin/pip" -q wheel --no-deps -w "$work/dist" "$work/src"
"$work/venv/bin/pip" -q install "$work"/dist/policydesk-*.whl
mkdir "$work/empty" && cd "$work/empty"
pd="$work/venv/bin/policydesk"

"$pd" --version
"$pd" validate
due="$("$pd" simulate --plan plus --channel email --at 2026-11-27T21:00:00+01:00 --json \
        | "$work/venv/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["first_response_due"])')"
[ "$due" = "2026-11-28T08:00:00+01:00" ] || { echo "simulate: due $due, expected 2026-11-28T08:00:00+01:00"; exit 1; }
echo "simulate: first response due $due (as the contract says)"
"$pd" explain --plan enterprise --channel phone --at 2026-11-28T03:00 --emergency --category infrastructure \
    --language fr >"$work/explain.txt"
head -n 3 "$work/explain.txt"
"$pd" demo >"$work/demo.log" 2>&1 || { cat "$work/demo.log"; exit 1; }
tail -n 3 "$work/demo.log"

# serve next to the Zammad stand-in, answer /healthz, stop on SIGTERM
port() { "$work/venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
zport="$(port)"; sport="$(port)"
"$pd" zammad-sandbox --port "$zport" >"$work/sandbox.log" 2>&1 &
sandbox=$!
for _ in $(seq 1 50); do grep -q "policydesk's token" "$work/sandbox.log" && break; sleep 0.2; done
token="$(sed -n "s/.*policydesk's token (the bot user [^)]*): //p" "$work/sandbox.log")"
ZAMMAD_URL="http://127.0.0.1:$zport" ZAMMAD_TOKEN="$token" POLICYDESK_ZAMMAD_WEBHOOK_TOKEN=smoke \
POLICYDESK_BILLING_SECRET=smoke POLICYDESK_HOME="$work/state" \
  "$pd" serve --listen "127.0.0.1:$sport" >"$work/serve.log" 2>&1 &
serve=$!
health=""
for _ in $(seq 1 100); do
  health="$(curl -fsS "http://127.0.0.1:$sport/healthz" 2>/dev/null)" && break; sleep 0.2
done
kill -TERM "$serve"; wait "$serve" || true
kill -TERM "$sandbox"; wait "$sandbox" || true
echo "serve /healthz: $health"
case "$health" in *'"status": "ok"'*) ;; *) cat "$work/serve.log"; exit 1;; esac
grep -c "serving on" "$work/serve.log" | grep -qx 1 || { echo "'serving on' not logged exactly once"; exit 1; }
echo "wheel smoke test: ok"
