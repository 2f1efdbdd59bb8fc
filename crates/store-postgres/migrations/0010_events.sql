-- What shoppers do, for the recommender: append-only. `visitor` is the first-party id of the
-- browser (signed in or not); `user_id` is set when the visitor was signed in. `value` is watch
-- seconds for `watch`, the quantity for `cart` and `purchase`, 1 otherwise.
CREATE TABLE events (
    id          BIGSERIAL        PRIMARY KEY,
    visitor     TEXT             NOT NULL,
    user_id     BIGINT           REFERENCES users (id),
    kind        TEXT             NOT NULL CHECK (kind IN ('watch', 'view', 'click', 'cart', 'purchase', 'heart')),
    target_kind TEXT             NOT NULL CHECK (target_kind IN ('product', 'channel', 'replay')),
    target_id   BIGINT           NOT NULL,
    value       DOUBLE PRECISION NOT NULL CHECK (value >= 0),
    at          TIMESTAMPTZ      NOT NULL
);
CREATE INDEX events_user ON events (user_id, id) WHERE user_id IS NOT NULL;
CREATE INDEX events_visitor ON events (visitor, id);
CREATE INDEX events_at ON events (at);
