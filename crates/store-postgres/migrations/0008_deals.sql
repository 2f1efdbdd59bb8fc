-- Live deals. A deal's units are taken out of the product's stock when it starts and the unsold
-- ones put back when it ends. `sold` is the durable count of its confirmed orders; the CHECK is
-- the last line against overselling, whatever the deal's owner believes.
CREATE TABLE deals (
    id           BIGSERIAL   PRIMARY KEY,
    channel_id   BIGINT      NOT NULL REFERENCES channels (id),
    product_id   BIGINT      NOT NULL REFERENCES products (id),
    price_minor  BIGINT      NOT NULL CHECK (price_minor >= 0),
    currency     TEXT        NOT NULL,
    listed       BIGINT      NOT NULL CHECK (listed > 0),
    sold         BIGINT      NOT NULL DEFAULT 0 CHECK (sold >= 0 AND sold <= listed),
    per_customer BIGINT      NOT NULL CHECK (per_customer > 0),
    starts_at    TIMESTAMPTZ NOT NULL,
    ends_at      TIMESTAMPTZ NOT NULL,
    status       TEXT        NOT NULL CHECK (status IN ('running', 'ended')),
    -- The node whose memory owns the running deal's count (`--node-id`).
    node         TEXT        NOT NULL,
    ended_at     TIMESTAMPTZ
);
CREATE UNIQUE INDEX deals_running_channel ON deals (channel_id) WHERE status = 'running';
CREATE UNIQUE INDEX deals_running_product ON deals (product_id) WHERE status = 'running';

-- The deal an order line was sold under (its price is the deal's).
ALTER TABLE order_items ADD COLUMN deal_id BIGINT REFERENCES deals (id);
CREATE INDEX order_items_deal ON order_items (deal_id) WHERE deal_id IS NOT NULL;
