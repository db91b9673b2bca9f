-- Several control planes on one store, and gateway nodes that follow them.

-- Every write of an API counts here; a write names the count it read, so of two
-- concurrent edits the second is refused (409) instead of undoing the first.
ALTER TABLE apis ADD COLUMN row_version BIGINT NOT NULL DEFAULT 0;

-- The version of what gateways serve: one count for the whole platform, raised by every
-- change that is published, so that snapshots built by any control plane compare.
CREATE TABLE config_version (
    id      BIGINT PRIMARY KEY NOT NULL,
    version BIGINT NOT NULL
);
INSERT INTO config_version (id, version) VALUES (1, 0);

-- Tokens gateway nodes authenticate with (hash and hint only), each for one environment.
CREATE TABLE node_tokens (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    environment TEXT NOT NULL,
    hash        TEXT NOT NULL UNIQUE,
    hint        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);

-- Gateway nodes as last heard from: what they applied and when they last called.
CREATE TABLE nodes (
    id              TEXT PRIMARY KEY NOT NULL,  -- chosen by the node, kept in its data folder
    environment     TEXT NOT NULL,
    token_id        TEXT NOT NULL,
    hostname        TEXT NOT NULL,
    listeners       TEXT NOT NULL DEFAULT '{}', -- JSON: the node's listener URLs
    applied_version BIGINT NOT NULL,
    connections     BIGINT NOT NULL DEFAULT 0,
    state           TEXT NOT NULL,              -- serving | draining
    control_plane   TEXT NOT NULL,              -- the control plane it last called
    command_url     TEXT NOT NULL DEFAULT '',   -- where it takes connection commands
    command_secret  TEXT NOT NULL DEFAULT '',   -- what it asks of them (new at each start)
    first_seen      TEXT NOT NULL,
    last_contact    BIGINT NOT NULL             -- Unix seconds
);
