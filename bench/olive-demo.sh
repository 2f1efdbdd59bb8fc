# Sourced by the bench scripts that run their own `olive serve --demo`: `need` checks the tools and
# the release binary, `$work` is a directory removed at exit together with the server, and
# `start_olive_demo HTTP RTMP` starts the server there and waits until it is ready. A script with
# more to stop at exit defines `before_cleanup`.
OLIVE="${OLIVE:-${CARGO_TARGET_DIR:-target}/release/olive}"
. bench/server-env.sh

need() {
    for tool in "$@"; do
        command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
    done
    [ -x "$OLIVE" ] || { echo "missing $OLIVE (cargo build --release)" >&2; exit 1; }
}

before_cleanup() { :; }
work="$(mktemp -d)"
cleanup() {
    before_cleanup
    [ -n "${olive_pid:-}" ] && kill "$olive_pid" 2>/dev/null || true
    sleep 0.5
    rm -rf "$work"
}
trap cleanup EXIT

start_olive_demo() { # HTTP_ADDR RTMP_ADDR
    "$OLIVE" serve --demo --data-dir "$work/data" --http "$1" --rtmp "$2" >"$work/olive.log" 2>&1 &
    olive_pid=$!
    for _ in $(seq 100); do curl -sf "http://$1/readyz" >/dev/null && break; sleep 0.1; done
}
