-- Recorded live sessions. A row is created when a live begins and gains a segment row each time a
-- segment is stored; finalisation marks it ready. Product ids are a JSON array (the line-up when
-- the replay was registered).
CREATE TABLE replays (
    id            BIGSERIAL PRIMARY KEY,
    channel_id    BIGINT  NOT NULL REFERENCES channels (id),
    title         TEXT    NOT NULL,
    status        TEXT    NOT NULL DEFAULT 'recording',
    hidden        BOOLEAN NOT NULL DEFAULT FALSE,
    started_at    TIMESTAMPTZ   NOT NULL,
    ended_at      TIMESTAMPTZ,
    duration_ms   BIGINT  NOT NULL DEFAULT 0,
    bytes         BIGINT  NOT NULL DEFAULT 0,
    segments      BIGINT  NOT NULL DEFAULT 0,
    thumbnail_key TEXT,
    products      TEXT    NOT NULL DEFAULT '[]',
    node          TEXT    NOT NULL,
    heartbeat_at  TIMESTAMPTZ   NOT NULL
);
CREATE INDEX replays_listing ON replays (status, hidden, started_at);
CREATE INDEX replays_channel ON replays (channel_id, started_at);

CREATE TABLE replay_segments (
    replay_id     BIGINT  NOT NULL REFERENCES replays (id) ON DELETE CASCADE,
    msn           BIGINT  NOT NULL,
    init_version  INTEGER NOT NULL,
    discontinuity BOOLEAN NOT NULL,
    duration_ms   BIGINT  NOT NULL,
    bytes         BIGINT  NOT NULL,
    PRIMARY KEY (replay_id, msn)
);

-- How often a live channel's thumbnail is taken.
ALTER TABLE channels ADD COLUMN thumbnail_interval_s INTEGER NOT NULL DEFAULT 5;
