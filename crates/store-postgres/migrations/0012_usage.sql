-- What the platform used, per UTC day, channel and meter, for the cost report and the budget.
-- channel_id 0 is the platform itself (pages, the API, work no channel caused), so it carries no
-- foreign key; a deleted channel's usage stays, as its bill does. Meters: egress_bytes,
-- ingest_bytes, stored_bytes (negative when deleted), cpu_ms.
CREATE TABLE usage_daily (
    day        DATE    NOT NULL,
    channel_id BIGINT  NOT NULL,
    meter      TEXT    NOT NULL,
    amount     BIGINT  NOT NULL,
    PRIMARY KEY (day, channel_id, meter)
);
