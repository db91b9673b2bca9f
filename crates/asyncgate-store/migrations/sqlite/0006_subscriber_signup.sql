-- Whether consumers may sign themselves up as subscribers of an organization in the
-- developer portal (off until an admin opens it).
ALTER TABLE organizations ADD COLUMN subscriber_signup INTEGER NOT NULL DEFAULT 0;
