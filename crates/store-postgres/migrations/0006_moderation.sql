-- Chat moderation. Slow mode and banned words are the host's settings for the channel; a
-- restriction is a mute (until a time) or a ban (no end) of one user in one channel's chat.
ALTER TABLE channels ADD COLUMN chat_slow_mode_s INTEGER NOT NULL DEFAULT 0;
ALTER TABLE channels ADD COLUMN chat_banned_words TEXT NOT NULL DEFAULT '[]';

CREATE TABLE chat_restrictions (
    channel_id BIGINT  NOT NULL REFERENCES channels (id),
    user_id    BIGINT  NOT NULL REFERENCES users (id),
    until      TIMESTAMPTZ,
    created_at TIMESTAMPTZ   NOT NULL,
    PRIMARY KEY (channel_id, user_id)
);
