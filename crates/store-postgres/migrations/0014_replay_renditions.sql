-- A replay keeps the ladder: each rung's segments are recorded beside the source's, told apart by
-- `rendition` ('' for the source, else the rung's name, such as '480p').
ALTER TABLE replay_segments ADD COLUMN rendition TEXT NOT NULL DEFAULT '';
ALTER TABLE replay_segments DROP CONSTRAINT replay_segments_pkey;
ALTER TABLE replay_segments ADD PRIMARY KEY (replay_id, rendition, msn);
