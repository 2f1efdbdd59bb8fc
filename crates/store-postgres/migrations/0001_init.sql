-- Accounts, sessions, catalogue, channels and orders.

CREATE TABLE users (
    id            BIGSERIAL   PRIMARY KEY,
    email         TEXT        NOT NULL UNIQUE,
    display_name  TEXT        NOT NULL,
    password_hash TEXT        NOT NULL,
    role          TEXT        NOT NULL CHECK (role IN ('viewer', 'host', 'admin')),
    created_at    TIMESTAMPTZ NOT NULL
);

CREATE TABLE sessions (
    hash       BYTEA       PRIMARY KEY,
    user_id    BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind       TEXT        NOT NULL CHECK (kind IN ('cookie', 'bearer')),
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE products (
    id          BIGSERIAL   PRIMARY KEY,
    name        TEXT        NOT NULL,
    brand       TEXT        NOT NULL,
    category    TEXT        NOT NULL,
    description TEXT        NOT NULL,
    price_minor BIGINT      NOT NULL CHECK (price_minor >= 0),
    currency    TEXT        NOT NULL,
    stock       BIGINT      NOT NULL CHECK (stock >= 0),
    status      TEXT        NOT NULL CHECK (status IN ('active', 'draft', 'archived')),
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX products_category ON products (category, id);

CREATE TABLE product_images (
    id           BIGSERIAL PRIMARY KEY,
    product_id   BIGINT    NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    object_key   TEXT      NOT NULL,
    content_type TEXT      NOT NULL
);
CREATE INDEX product_images_product ON product_images (product_id, id);

CREATE TABLE channels (
    id              BIGSERIAL   PRIMARY KEY,
    host_id         BIGINT      NOT NULL REFERENCES users (id),
    title           TEXT        NOT NULL,
    description     TEXT        NOT NULL,
    scheduled_at    TIMESTAMPTZ,
    status          TEXT        NOT NULL DEFAULT 'offline' CHECK (status IN ('offline', 'live')),
    stream_key_hash BYTEA       NOT NULL UNIQUE,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX channels_host ON channels (host_id);

CREATE TABLE lineups (
    channel_id BIGINT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    position   BIGINT NOT NULL,
    product_id BIGINT NOT NULL REFERENCES products (id),
    PRIMARY KEY (channel_id, position)
);

CREATE TABLE orders (
    id              BIGSERIAL   PRIMARY KEY,
    user_id         BIGINT      NOT NULL REFERENCES users (id),
    idempotency_key TEXT        NOT NULL,
    request_hash    TEXT        NOT NULL,
    status          TEXT        NOT NULL CHECK (status IN ('placed', 'shipped', 'cancelled')),
    total_minor     BIGINT      NOT NULL,
    currency        TEXT        NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    UNIQUE (user_id, idempotency_key)
);
CREATE INDEX orders_user ON orders (user_id, id);

CREATE TABLE order_items (
    order_id         BIGINT NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    product_id       BIGINT NOT NULL REFERENCES products (id),
    name             TEXT   NOT NULL,
    quantity         BIGINT NOT NULL CHECK (quantity > 0),
    unit_price_minor BIGINT NOT NULL,
    PRIMARY KEY (order_id, product_id)
);
