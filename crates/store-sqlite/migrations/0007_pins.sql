-- Products pinned during a live, at `pts`: the moment on the stream's media timeline (the clock of
-- EXT-X-PROGRAM-DATE-TIME). A replay's product timeline is the pins of its time span.
CREATE TABLE pins (
    id         INTEGER PRIMARY KEY,
    channel_id INTEGER NOT NULL REFERENCES channels (id),
    product_id INTEGER NOT NULL REFERENCES products (id),
    pts        TEXT    NOT NULL,
    created_at TEXT    NOT NULL
);
CREATE INDEX pins_channel ON pins (channel_id, pts);
