-- Webhooks and their outboxes (issue 27). An outbox row is written in the transaction of
-- the change it describes; the sender deletes it once delivered (or given up).
CREATE TABLE webhooks (
    id      text PRIMARY KEY,
    record  text NOT NULL,     -- model::WebhookRecord as JSON
    events  text[] NOT NULL,   -- the types it wants ('*': every one)
    enabled boolean NOT NULL   -- false once its receiver answered 410
);
-- seq orders one webhook's events: a later commit touching the same item gets a larger
-- one (it waited for the earlier one's row locks before taking its numbers).
CREATE TABLE webhook_outbox (
    webhook text NOT NULL,
    seq     bigint GENERATED ALWAYS AS IDENTITY,
    queued  text NOT NULL,     -- model::Queued as JSON
    PRIMARY KEY (webhook, seq)
);
CREATE TABLE webhook_attempts (
    webhook text NOT NULL,
    seq     bigint GENERATED ALWAYS AS IDENTITY,
    attempt text NOT NULL,     -- model::Attempt as JSON
    PRIMARY KEY (webhook, seq)
);
-- Schema 4: a build that reads schema 3 would commit changes without their events.
