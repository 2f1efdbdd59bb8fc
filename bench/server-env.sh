# Sourced by every bench script that starts `olive serve`: the limits a load generator needs
# lifted. Every bench account signs up and logs in from this machine's address, which the
# per-address limits (30 sign-ups an hour, 20 logins a minute by default) would stop after a few;
# and servers started side by side each need their own metrics listener.
export OLIVE_SIGNUP_LIMIT="${OLIVE_SIGNUP_LIMIT:-1000000}"
export OLIVE_LOGIN_LIMIT="${OLIVE_LOGIN_LIMIT:-1000000}"
export OLIVE_METRICS_ADDR="${OLIVE_METRICS_ADDR:-127.0.0.1:0}"

# The demo host's bearer token from a server started with `--demo --data-dir DATA` on HTTP.
demo_host_token() { # data-dir http
    local password
    password=$(awk '$2 == "host@olive.test" {print $3}' "$1/demo-accounts.txt")
    curl -s "http://$2/api/v1/auth/login" -H 'content-type: application/json' \
        -d "{\"email\":\"host@olive.test\",\"password\":\"$password\"}" |
        python3 -c 'import sys,json; print(json.load(sys.stdin)["token"])'
}

# Creates a channel titled TITLE; prints "id stream_key".
new_channel() { # http token title
    curl -s "http://$1/api/v1/channels" -H "authorization: Bearer $2" -H 'content-type: application/json' \
        -d "{\"title\":\"$3\"}" | python3 -c 'import sys,json; c=json.load(sys.stdin); print(c["id"], c["stream_key"])'
}
