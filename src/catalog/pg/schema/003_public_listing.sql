-- The anonymous public listing (newest first, over everything, a folder or a kind) walks
-- public rows only, however many private ones there are. Other orders need a key.
CREATE INDEX media_public             ON media (created_us, id) WHERE NOT private;
CREATE INDEX media_public_folder      ON media (folder, created_us, id) WHERE NOT private;
CREATE INDEX media_public_kind        ON media (kind, created_us, id) WHERE NOT private;
CREATE INDEX media_public_folder_kind ON media (folder, kind, created_us, id) WHERE NOT private;
-- Schema 3 also marks the API keys that may be limited to a folder: a build that reads
-- schema 2 does not know that limit, so it must not open this database.
