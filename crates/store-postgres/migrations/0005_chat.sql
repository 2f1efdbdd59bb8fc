-- Chat, kept for the replay. The author's display name is copied in: a replay shows the name as it
-- was when the message was sent. Deleted messages keep their row (moderation history) and are left
-- out of what viewers see.
CREATE TABLE chat_messages (
    id         BIGSERIAL PRIMARY KEY,
    channel_id BIGINT  NOT NULL REFERENCES channels (id),
    user_id    BIGINT  NOT NULL REFERENCES users (id),
    author     TEXT    NOT NULL,
    text       TEXT    NOT NULL,
    created_at TIMESTAMPTZ   NOT NULL,
    deleted_at TIMESTAMPTZ
);
CREATE INDEX chat_messages_channel ON chat_messages (channel_id, id);
