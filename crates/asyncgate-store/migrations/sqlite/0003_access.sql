-- Organizations, projects, users and their tokens; applications, plans, subscriptions and
-- application keys; the OAuth2 signing keys. Plain SQL that SQLite and PostgreSQL both
-- accept: times are RFC 3339 text, or Unix seconds where they are compared.

CREATE TABLE organizations (
    id         TEXT PRIMARY KEY NOT NULL,
    handle     TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);

-- A project's handle is unique on the platform: it is the first segment of the default
-- base path of its APIs, and the listeners are shared by every organization.
CREATE TABLE projects (
    id         TEXT PRIMARY KEY NOT NULL,
    org_id     TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    handle     TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    created_at TEXT NOT NULL
);

-- The operator's organization: everything made before organizations existed is its.
INSERT INTO organizations (id, handle, name, created_at)
    VALUES ('org_default', 'default', 'Default', '1970-01-01T00:00:00Z');
INSERT INTO projects (id, org_id, handle, name, created_at)
    VALUES ('prj_default', 'org_default', 'default', 'Default Project', '1970-01-01T00:00:00Z');
INSERT INTO projects (id, org_id, handle, name, created_at)
    SELECT 'prj_' || project, 'org_default', project, project, MIN(created_at)
    FROM apis WHERE project <> 'default' GROUP BY project;

ALTER TABLE apis ADD COLUMN org_id TEXT NOT NULL DEFAULT 'org_default';

ALTER TABLE audit_log ADD COLUMN org_id TEXT NOT NULL DEFAULT 'org_default';
ALTER TABLE audit_log ADD COLUMN origin TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_log ADD COLUMN api_id TEXT;
CREATE INDEX audit_log_by_org ON audit_log (org_id, id);

CREATE TABLE users (
    id            TEXT PRIMARY KEY NOT NULL,
    email         TEXT NOT NULL UNIQUE,   -- lower case
    password_hash TEXT NOT NULL,          -- argon2id, PHC string
    created_at    TEXT NOT NULL,
    blocked_at    TEXT
);

CREATE TABLE memberships (
    org_id     TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (org_id, user_id)
);

-- Sessions (from signing in) and personal access tokens; only hashes are kept.
CREATE TABLE user_tokens (
    id         TEXT PRIMARY KEY NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind       TEXT NOT NULL,             -- session | personal
    name       TEXT NOT NULL,
    hash       TEXT NOT NULL UNIQUE,
    hint       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at BIGINT,                    -- Unix seconds; NULL: never
    revoked_at TEXT
);

CREATE TABLE plans (
    id                  TEXT PRIMARY KEY NOT NULL,
    org_id              TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name                TEXT NOT NULL,
    max_connections     BIGINT NOT NULL,
    messages_per_minute BIGINT NOT NULL,
    bytes_per_minute    BIGINT NOT NULL,
    on_excess           TEXT NOT NULL,
    created_at          TEXT NOT NULL,
    UNIQUE (org_id, name)
);

CREATE TABLE applications (
    id          TEXT PRIMARY KEY NOT NULL,
    org_id      TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    owner_id    TEXT REFERENCES users(id) ON DELETE SET NULL,  -- NULL: the operator's
    name        TEXT NOT NULL,
    client_id   TEXT NOT NULL UNIQUE,
    secret_hash TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    blocked_at  TEXT,
    UNIQUE (org_id, name)
);

CREATE TABLE subscriptions (
    id         TEXT PRIMARY KEY NOT NULL,
    app_id     TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    api_id     TEXT NOT NULL REFERENCES apis(id) ON DELETE CASCADE,
    plan_id    TEXT NOT NULL REFERENCES plans(id),
    created_at TEXT NOT NULL,
    UNIQUE (app_id, api_id)
);

CREATE TABLE app_keys (
    id          TEXT PRIMARY KEY NOT NULL,
    app_id      TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    environment TEXT NOT NULL,
    hash        TEXT NOT NULL UNIQUE,
    hint        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);

-- Keys the platform signs access tokens with. The newest unretired one signs; the JWKS
-- serves every key not retired longer ago than the longest token lifetime.
CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY NOT NULL,
    algorithm   TEXT NOT NULL,
    private_key TEXT NOT NULL,            -- PKCS#8 DER, base64
    public_key  TEXT NOT NULL,            -- raw public key, base64url
    created_at  BIGINT NOT NULL,
    retired_at  BIGINT
);
