-- An order's outbox job is now `order.placed` (webhooks and the stock it took), not only its
-- webhook notice: notices queued before the upgrade run under the new name.
UPDATE jobs SET kind = 'order.placed' WHERE kind = 'webhook.order_placed';
