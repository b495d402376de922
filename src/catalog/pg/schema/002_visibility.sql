-- Private items (issue 26): absent from the public API, their files read through signed
-- links. Every item before this version is public. The public listing filters on the
-- column; its exact total is the counter of everything less the private one ('p' + scope).
ALTER TABLE media ADD COLUMN private boolean NOT NULL DEFAULT false;
