# Sourced by every bench script that starts `olive serve`: the limits a load generator needs
# lifted. Every bench account signs up and logs in from this machine's address, which the
# per-address limits (30 sign-ups an hour, 20 logins a minute by default) would stop after a few;
# and servers started side by side each need their own metrics listener.
export OLIVE_SIGNUP_LIMIT="${OLIVE_SIGNUP_LIMIT:-1000000}"
export OLIVE_LOGIN_LIMIT="${OLIVE_LOGIN_LIMIT:-1000000}"
export OLIVE_METRICS_ADDR="${OLIVE_METRICS_ADDR:-127.0.0.1:0}"
