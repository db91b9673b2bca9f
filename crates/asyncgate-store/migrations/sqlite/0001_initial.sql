-- asyncgate control-plane store, version 1.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

CREATE TABLE apis (
    id              TEXT PRIMARY KEY NOT NULL,
    project         TEXT NOT NULL,
    identifier      TEXT NOT NULL,
    base_path       TEXT NOT NULL UNIQUE,
    lifecycle       TEXT NOT NULL,
    display_name    TEXT,
    design          TEXT NOT NULL,  -- JSON ApiDesign: what a revision freezes
    contract_source TEXT NOT NULL,  -- the imported document, as uploaded
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    UNIQUE (project, identifier)
);

CREATE TABLE revisions (
    api_id     TEXT NOT NULL REFERENCES apis(id) ON DELETE CASCADE,
    number     INTEGER NOT NULL,
    design     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (api_id, number)
);

CREATE TABLE deployments (
    api_id      TEXT NOT NULL REFERENCES apis(id) ON DELETE CASCADE,
    environment TEXT NOT NULL,
    revision    INTEGER NOT NULL,
    access_mode TEXT NOT NULL,
    deployed_at TEXT NOT NULL,
    PRIMARY KEY (api_id, environment),
    FOREIGN KEY (api_id, revision) REFERENCES revisions(api_id, number)
);

CREATE TABLE api_keys (
    id         TEXT PRIMARY KEY NOT NULL,
    api_id     TEXT NOT NULL REFERENCES apis(id) ON DELETE CASCADE,
    hash       TEXT NOT NULL UNIQUE,
    hint       TEXT NOT NULL,   -- first characters, to recognise a key in listings
    created_at TEXT NOT NULL,
    revoked_at TEXT
);

CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      TEXT NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail  TEXT NOT NULL
);
