-- What the thumbnail labeller saw: one row per labelled picture of a live (its recording is the
-- replay), keyed by the thumbnail so a retried job records it once. `labels` is a JSON array of
-- {class, name, category, confidence}; `cpu_ms` is what labelling it cost.
CREATE TABLE picture_labels (
    replay_id     INTEGER     NOT NULL REFERENCES replays (id) ON DELETE CASCADE,
    thumbnail_key TEXT        NOT NULL,
    channel_id    INTEGER     NOT NULL REFERENCES channels (id),
    taken_at      TEXT        NOT NULL,
    labels        TEXT        NOT NULL,
    cpu_ms        INTEGER     NOT NULL CHECK (cpu_ms >= 0),
    PRIMARY KEY (replay_id, thumbnail_key)
);
CREATE INDEX picture_labels_channel ON picture_labels (channel_id, taken_at);

-- Thumbnails taken while the live ran, labelled or not: with the rows above, what labelling only
-- changed pictures saved.
ALTER TABLE replays ADD COLUMN thumbnails INTEGER NOT NULL DEFAULT 0;
