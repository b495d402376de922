-- The catalog on PostgreSQL, schema 1: the same vocabulary as the redb tables
-- (src/catalog/tables.rs), one row per record, with the folded text Darkroom computes
-- itself (model::fold) stored beside it so both catalogs sort and search alike.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- One row per item: the record as JSON text (stored and read back as it is, with no
-- conversion on either way), and the fields listings filter and sort on.
-- Keys and ids compare byte by byte (COLLATE "C"), as in redb: the same order on both
-- catalogs, and no index that a new libc's collation could corrupt.
CREATE TABLE media (
    id           text PRIMARY KEY COLLATE "C",
    record       text NOT NULL,
    folder       text NOT NULL COLLATE "C",
    kind         smallint NOT NULL,          -- model::Kind's tag byte
    created_us   bigint NOT NULL,
    size         bigint NOT NULL,
    name_key     text NOT NULL COLLATE "C",  -- the folded filename (sort by filename)
    alt_key      text NOT NULL COLLATE "C",  -- the folded alt text ('' when none)
    -- Both folded texts in one, for the trigram index (search checks each on its own).
    search       text NOT NULL COLLATE "C"
);
-- Listings: every sort, over everything and within a folder or a kind, id the tiebreak.
CREATE INDEX media_created     ON media (created_us, id);
CREATE INDEX media_name        ON media (name_key, id);
CREATE INDEX media_size        ON media (size, id);
CREATE INDEX media_folder      ON media (folder, created_us, id);
CREATE INDEX media_folder_name ON media (folder, name_key, id);
CREATE INDEX media_folder_size ON media (folder, size, id);
CREATE INDEX media_kind        ON media (kind, created_us, id);
CREATE INDEX media_kind_name   ON media (kind, name_key, id);
CREATE INDEX media_kind_size   ON media (kind, size, id);
CREATE INDEX media_folder_kind      ON media (folder, kind, created_us, id);
CREATE INDEX media_folder_kind_name ON media (folder, kind, name_key, id);
CREATE INDEX media_folder_kind_size ON media (folder, kind, size, id);
-- Search: substrings of the folded text.
CREATE INDEX media_search ON media USING gin (search gin_trgm_ops);

-- Exact counts per listing scope, kept in the same transaction as every change
-- ('a', 'f:<folder>', 'k:<kind>', 'x:<kind>:<folder>', as in redb's COUNTS). Writers
-- update their scopes in sorted order, so two moves never wait on each other in a cycle.
CREATE TABLE counts (
    scope text PRIMARY KEY COLLATE "C",
    n     bigint NOT NULL CHECK (n >= 0)
);

-- Folders created explicitly.
CREATE TABLE folders (
    path text PRIMARY KEY COLLATE "C"
);

-- Every stored file the catalog knows, and its item (FILES and ITEM_FILES in one). No
-- foreign keys here: the write path keeps the rows in step within each transaction, in
-- the same order as on redb (a replaced item's row is rewritten while its files move).
CREATE TABLE files (
    key     text PRIMARY KEY COLLATE "C",
    item_id text NOT NULL COLLATE "C"
);
CREATE INDEX files_item ON files (item_id);

-- The durable delete queue.
CREATE TABLE pending_deletes (
    key       text PRIMARY KEY COLLATE "C",
    queued_us bigint NOT NULL
);

-- API keys (only the SHA-256 of each secret).
CREATE TABLE api_keys (
    id     text PRIMARY KEY COLLATE "C",
    record text NOT NULL
);

-- Processing jobs, claimed with a lease by whichever node runs them: a free job, or one
-- whose lease ran out (its node died), once `run_after_us` has passed (retry backoff).
-- The lease token fences a node that lost its lease: only the holder may finish the job.
CREATE TABLE jobs (
    item_id      text PRIMARY KEY COLLATE "C",
    attempts     integer NOT NULL DEFAULT 0,
    queued_us    bigint NOT NULL,
    run_after_us bigint NOT NULL DEFAULT 0,
    lease_token  text,
    lease_until  timestamptz
);
CREATE INDEX jobs_free   ON jobs (queued_us) WHERE lease_token IS NULL;
CREATE INDEX jobs_leased ON jobs (lease_until) WHERE lease_token IS NOT NULL;

-- Presigned uploads until they expire.
CREATE TABLE presigns (
    key    text PRIMARY KEY COLLATE "C",
    record text NOT NULL,
    expires_us bigint NOT NULL
);
CREATE INDEX presigns_expiry ON presigns (expires_us);

-- On-demand crops written, by item and by last use (the cache's eviction order). A crop
-- is recorded only while its item's row is locked and current (see the write path), so
-- one made for an item another node has just deleted is refused, and its file removed.
CREATE TABLE crop_cache (
    item_id      text NOT NULL COLLATE "C",
    key          text NOT NULL COLLATE "C",
    size         bigint NOT NULL,
    last_used_us bigint NOT NULL,
    PRIMARY KEY (item_id, key)
);
CREATE INDEX crop_cache_lru ON crop_cache (last_used_us);

-- Work one node at a time does for the whole cluster (the delete drain, presign expiry,
-- the orphan sweep): a node holds a task while `until` is ahead and renews it as it runs.
CREATE TABLE cluster_tasks (
    task   text PRIMARY KEY COLLATE "C",
    holder text NOT NULL,
    until  timestamptz NOT NULL
);

-- Catalog facts, as redb's META: `presets`, the fingerprint of the crop presets the
-- images were last queued for; `search_generation`, bumped by every commit that adds,
-- changes or removes an item (a node's remembered search answers of an older one are
-- stale).
CREATE TABLE meta (
    key   text PRIMARY KEY COLLATE "C",
    value bigint NOT NULL
);
