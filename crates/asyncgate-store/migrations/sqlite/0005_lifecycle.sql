-- Versions, per-environment values, deployment and lifecycle history.
--
-- Versions of one API share its project and identifier, so the identifier is unique per
-- project and version (it was per project). SQLite cannot change a table's UNIQUE
-- constraint in place: the table is rebuilt the documented way, which needs foreign keys
-- off (`Store::open` runs migrations on a connection without them, then checks them).

CREATE TABLE apis_new (
    id              TEXT PRIMARY KEY NOT NULL,
    org_id          TEXT NOT NULL DEFAULT 'org_default',
    project         TEXT NOT NULL,
    identifier      TEXT NOT NULL,
    version         TEXT NOT NULL,
    base_path       TEXT NOT NULL UNIQUE,
    lifecycle       TEXT NOT NULL,
    display_name    TEXT,
    design          TEXT NOT NULL,  -- JSON ApiDesign: what a revision freezes
    contract_source TEXT NOT NULL,  -- the imported document, as uploaded
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    UNIQUE (project, identifier, version)
);
INSERT INTO apis_new (id, org_id, project, identifier, version, base_path, lifecycle, display_name, design, contract_source, created_at, updated_at)
    SELECT id, org_id, project, identifier, COALESCE(json_extract(design, '$.version'), ''), base_path, lifecycle, display_name, design, contract_source, created_at, updated_at
    FROM apis;
DROP TABLE apis;
ALTER TABLE apis_new RENAME TO apis;
CREATE INDEX apis_by_name ON apis (project, identifier);

-- What an environment serves differently from the revision: its own target, backend
-- headers and limits (JSON EnvironmentValues; '{}' = the revision's), and who deployed.
ALTER TABLE deployments ADD COLUMN environment_values TEXT NOT NULL DEFAULT '{}';
ALTER TABLE deployments ADD COLUMN deployed_by TEXT NOT NULL DEFAULT '';

ALTER TABLE revisions ADD COLUMN created_by TEXT NOT NULL DEFAULT '';

-- Every change of what an environment serves: deploy, promote, rollback, undeploy.
CREATE TABLE deployment_history (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    api_id             TEXT NOT NULL REFERENCES apis(id) ON DELETE CASCADE,
    environment        TEXT NOT NULL,
    action             TEXT NOT NULL,
    revision           INTEGER,          -- NULL when the environment was stopped
    previous_revision  INTEGER,
    access_mode        TEXT,
    environment_values TEXT NOT NULL DEFAULT '{}',
    actor              TEXT NOT NULL,
    at                 TEXT NOT NULL
);
CREATE INDEX deployment_history_by_api ON deployment_history (api_id, id);

CREATE TABLE lifecycle_history (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    api_id     TEXT NOT NULL REFERENCES apis(id) ON DELETE CASCADE,
    from_state TEXT NOT NULL,
    to_state   TEXT NOT NULL,
    actor      TEXT NOT NULL,
    at         TEXT NOT NULL,
    note       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX lifecycle_history_by_api ON lifecycle_history (api_id, id);
