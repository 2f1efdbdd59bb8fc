-- A replay keeps the ladder: each rung's segments are recorded beside the source's, told apart by
-- `rendition` ('' for the source, else the rung's name, such as '480p'). SQLite cannot change a
-- primary key in place, so the table is made again and its rows copied.
CREATE TABLE replay_segments_new (
    replay_id     INTEGER NOT NULL REFERENCES replays (id) ON DELETE CASCADE,
    rendition     TEXT    NOT NULL DEFAULT '',
    msn           INTEGER NOT NULL,
    init_version  INTEGER NOT NULL,
    discontinuity INTEGER NOT NULL,
    duration_ms   INTEGER NOT NULL,
    bytes         INTEGER NOT NULL,
    PRIMARY KEY (replay_id, rendition, msn)
);
INSERT INTO replay_segments_new (replay_id, rendition, msn, init_version, discontinuity, duration_ms, bytes)
    SELECT replay_id, '', msn, init_version, discontinuity, duration_ms, bytes FROM replay_segments;
DROP TABLE replay_segments;
ALTER TABLE replay_segments_new RENAME TO replay_segments;
