-- What a channel's lives are made into: 'basic' (the source only) or 'standard' (the source and an
-- adaptive ladder). Existing channels get the ladder, as new ones do.
ALTER TABLE channels ADD COLUMN channel_type TEXT NOT NULL DEFAULT 'standard' CHECK (channel_type IN ('basic', 'standard'));
