-- Accounts, sessions, catalogue, channels and orders. Timestamps are RFC 3339 text in UTC.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    email         TEXT    NOT NULL UNIQUE,
    display_name  TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('viewer', 'host', 'admin')),
    created_at    TEXT    NOT NULL
);

CREATE TABLE sessions (
    hash       BLOB    PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind       TEXT    NOT NULL CHECK (kind IN ('cookie', 'bearer')),
    created_at TEXT    NOT NULL,
    expires_at TEXT    NOT NULL
);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE products (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL,
    brand       TEXT    NOT NULL,
    category    TEXT    NOT NULL,
    description TEXT    NOT NULL,
    price_minor INTEGER NOT NULL CHECK (price_minor >= 0),
    currency    TEXT    NOT NULL,
    stock       INTEGER NOT NULL CHECK (stock >= 0),
    status      TEXT    NOT NULL CHECK (status IN ('active', 'draft', 'archived')),
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL
);
CREATE INDEX products_category ON products (category, id);

CREATE TABLE product_images (
    id           INTEGER PRIMARY KEY,
    product_id   INTEGER NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    object_key   TEXT    NOT NULL,
    content_type TEXT    NOT NULL
);
CREATE INDEX product_images_product ON product_images (product_id, id);

CREATE TABLE channels (
    id              INTEGER PRIMARY KEY,
    host_id         INTEGER NOT NULL REFERENCES users (id),
    title           TEXT    NOT NULL,
    description     TEXT    NOT NULL,
    scheduled_at    TEXT,
    status          TEXT    NOT NULL DEFAULT 'offline' CHECK (status IN ('offline', 'live')),
    stream_key_hash BLOB    NOT NULL UNIQUE,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL
);
CREATE INDEX channels_host ON channels (host_id);

CREATE TABLE lineups (
    channel_id INTEGER NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    position   INTEGER NOT NULL,
    product_id INTEGER NOT NULL REFERENCES products (id),
    PRIMARY KEY (channel_id, position)
);

CREATE TABLE orders (
    id              INTEGER PRIMARY KEY,
    user_id         INTEGER NOT NULL REFERENCES users (id),
    idempotency_key TEXT    NOT NULL,
    request_hash    TEXT    NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('placed', 'shipped', 'cancelled')),
    total_minor     INTEGER NOT NULL,
    currency        TEXT    NOT NULL,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL,
    UNIQUE (user_id, idempotency_key)
);
CREATE INDEX orders_user ON orders (user_id, id);

CREATE TABLE order_items (
    order_id         INTEGER NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    product_id       INTEGER NOT NULL REFERENCES products (id),
    name             TEXT    NOT NULL,
    quantity         INTEGER NOT NULL CHECK (quantity > 0),
    unit_price_minor INTEGER NOT NULL,
    PRIMARY KEY (order_id, product_id)
);
