-- Recorded live sessions. A row is created when a live begins and gains a segment row each time a
-- segment is stored; finalisation marks it ready. Product ids are a JSON array (the line-up when
-- the replay was registered).
CREATE TABLE replays (
    id            INTEGER PRIMARY KEY,
    channel_id    INTEGER NOT NULL REFERENCES channels (id),
    title         TEXT    NOT NULL,
    status        TEXT    NOT NULL DEFAULT 'recording',
    hidden        INTEGER NOT NULL DEFAULT 0,
    started_at    TEXT    NOT NULL,
    ended_at      TEXT,
    duration_ms   INTEGER NOT NULL DEFAULT 0,
    bytes         INTEGER NOT NULL DEFAULT 0,
    segments      INTEGER NOT NULL DEFAULT 0,
    thumbnail_key TEXT,
    products      TEXT    NOT NULL DEFAULT '[]',
    node          TEXT    NOT NULL,
    heartbeat_at  TEXT    NOT NULL
);
CREATE INDEX replays_listing ON replays (status, hidden, started_at);
CREATE INDEX replays_channel ON replays (channel_id, started_at);

CREATE TABLE replay_segments (
    replay_id     INTEGER NOT NULL REFERENCES replays (id) ON DELETE CASCADE,
    msn           INTEGER NOT NULL,
    init_version  INTEGER NOT NULL,
    discontinuity INTEGER NOT NULL,
    duration_ms   INTEGER NOT NULL,
    bytes         INTEGER NOT NULL,
    PRIMARY KEY (replay_id, msn)
);

-- How often a live channel's thumbnail is taken.
ALTER TABLE channels ADD COLUMN thumbnail_interval_s INTEGER NOT NULL DEFAULT 5;
