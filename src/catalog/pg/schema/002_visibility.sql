-- Private items (issue 26): absent from the public API, their files read through signed
-- links. Every item before this version is public. The public listing filters on the
-- column; its exact total is the counter of everything less the private one ('p' + scope).
ALTER TABLE media ADD COLUMN private boolean NOT NULL DEFAULT false;
-- The anonymous public listing (newest first, over everything, a folder or a kind) walks
-- public rows only, however many private ones there are. Other orders need a key.
CREATE INDEX media_public             ON media (created_us, id) WHERE NOT private;
CREATE INDEX media_public_folder      ON media (folder, created_us, id) WHERE NOT private;
CREATE INDEX media_public_kind        ON media (kind, created_us, id) WHERE NOT private;
CREATE INDEX media_public_folder_kind ON media (folder, kind, created_us, id) WHERE NOT private;
