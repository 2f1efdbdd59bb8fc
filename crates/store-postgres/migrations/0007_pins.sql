-- Products pinned during a live, at `pts`: the moment on the stream's media timeline (the clock of
-- EXT-X-PROGRAM-DATE-TIME). A replay's product timeline is the pins of its time span.
CREATE TABLE pins (
    id         BIGSERIAL PRIMARY KEY,
    channel_id BIGINT  NOT NULL REFERENCES channels (id),
    product_id BIGINT  NOT NULL REFERENCES products (id),
    pts        TIMESTAMPTZ   NOT NULL,
    created_at TIMESTAMPTZ   NOT NULL
);
CREATE INDEX pins_channel ON pins (channel_id, pts);
