-- Webhook endpoints registered by admins. The secret signs deliveries, so it is kept as given.
CREATE TABLE webhooks (
    id         INTEGER PRIMARY KEY,
    url        TEXT    NOT NULL,
    secret     TEXT    NOT NULL,
    events     TEXT    NOT NULL,
    created_at TEXT    NOT NULL
);
