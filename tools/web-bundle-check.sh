#!/usr/bin/env bash
# Checks the web app bundle committed in web/bundle (what a machine without Node.js embeds):
#   1. it is exactly what `node build.mjs` makes from web/src (else: remake it and commit it);
#   2. with Node.js (and cmake, which no crate may need) off the PATH, `cargo build` embeds it
#      and `olive serve --demo` serves the app and its assets.
# Needs Node.js (for 1) and a built workspace (2 reuses CARGO_TARGET_DIR). Run from anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
work="$(mktemp -d)"
server=""
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

(cd web && node build.mjs "$work/bundle" >/dev/null)
if ! diff -r "$work/bundle" web/bundle >/dev/null; then
    echo "web/bundle is not what web/src makes: run (cd web && rm -rf bundle && node build.mjs bundle) and commit it" >&2
    diff -r "$work/bundle" web/bundle | head -5 >&2 || true
    exit 1
fi

# A PATH with every program of /usr/bin and /bin except Node.js, npm and cmake.
mkdir "$work/bin"
for program in /usr/bin/* /bin/*; do
    case "$(basename "$program")" in
        node | nodejs | npm | npx | cmake) ;;
        *) ln -sf "$program" "$work/bin/$(basename "$program")" ;;
    esac
done
no_node="$(dirname "$(command -v cargo)"):$work/bin"
PATH="$no_node" cargo build --quiet --workspace --all-targets
PATH="$no_node" "$target/debug/olive" serve --demo --data-dir "$work/data" --http 127.0.0.1:0 --rtmp 127.0.0.1:0 \
    --metrics 127.0.0.1:0 --transcode-slots 0 >"$work/log" 2>&1 &
server=$!
for _ in $(seq 1 120); do
    addr="$(grep -o 'http listener ready on http://[0-9.:]*' "$work/log" | head -1 | sed 's|.*http://||')" || true
    [ -n "$addr" ] && break
    sleep 0.5
done
[ -n "${addr:-}" ] || { echo "olive serve never listened" >&2; cat "$work/log" >&2; exit 1; }
page="$(curl -fsS "http://$addr/")"
script="$(grep -o '/assets/app-[A-Z0-9]*\.js' <<<"$page" | head -1)"
[ -n "$script" ] || { echo "the page names no script: $page" >&2; exit 1; }
cmp <(curl -fsS "http://$addr$script") "web/bundle/$(basename "$script")"
echo "web app bundle: committed = built from web/src; served by a build without Node.js ($script)"
