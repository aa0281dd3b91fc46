-- Each organization signs URLs with a key of its own, derived from the
-- server's key and this generation; raising it (RotateApiKey,
-- RevokeSignedUrls) refuses every URL the organization signed before.
ALTER TABLE organizations ADD COLUMN url_signing_generation integer NOT NULL DEFAULT 0;
