-- The live channel an order was placed from (its watch page, or a deal of its show), so the
-- host's studio can show the show's orders and revenue.
ALTER TABLE orders ADD COLUMN channel_id BIGINT REFERENCES channels (id);
CREATE INDEX orders_channel ON orders (channel_id, created_at) WHERE channel_id IS NOT NULL;
