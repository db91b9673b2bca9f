-- External identity providers an organization trusts: tokens they sign (verified with
-- their JWKS, kept here as last fetched) are accepted like the platform's own.
CREATE TABLE identity_providers (
    id         TEXT PRIMARY KEY NOT NULL,
    org_id     TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    issuer     TEXT NOT NULL,
    jwks_url   TEXT NOT NULL,
    audience   TEXT NOT NULL,
    app_claim  TEXT NOT NULL,            -- the claim naming the application
    jwks       TEXT NOT NULL,            -- the JWKS document as last fetched
    fetched_at BIGINT NOT NULL,          -- Unix seconds
    created_at TEXT NOT NULL,
    UNIQUE (org_id, name),
    UNIQUE (org_id, issuer)
);
