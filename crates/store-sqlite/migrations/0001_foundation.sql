-- Foundation: workspaces, users, memberships, web sessions, audit events.
-- Conventions shared with the PostgreSQL backend (same tables and columns there):
-- plural snake_case tables, `<entity>_id` foreign keys, 64-bit ids, timestamps in BIGINT
-- milliseconds since the Unix epoch, booleans as INTEGER 0/1, JSON as TEXT.
-- Forward-only: never edit this file once landed; add a new migration instead.

CREATE TABLE workspaces (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL,
    created_at BIGINT  NOT NULL
);

CREATE TABLE users (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    -- Operators sign in with a username; self-service users may have none.
    username         TEXT    UNIQUE CHECK (username = lower(username)),
    password_hash    TEXT,
    display_name     TEXT    NOT NULL,
    locale           TEXT    CHECK (locale IN ('en', 'ru')),
    disabled         INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    failed_logins    INTEGER NOT NULL DEFAULT 0,
    locked_until     BIGINT,
    -- For the self-service (Telegram) login of a later issue.
    phone            TEXT    UNIQUE,
    telegram_user_id BIGINT,
    created_at       BIGINT  NOT NULL
);

CREATE TABLE memberships (
    workspace_id BIGINT  NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id      BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role         TEXT    NOT NULL CHECK (role IN ('owner', 'admin', 'operator')),
    max_chats    INTEGER NOT NULL,
    created_at   BIGINT  NOT NULL,
    PRIMARY KEY (workspace_id, user_id)
);

CREATE INDEX memberships_user_id_idx ON memberships (user_id);

-- Only hashes of the session and CSRF tokens are stored. A session belongs to a membership, so
-- removing a member from a workspace ends their sessions there.
CREATE TABLE web_sessions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash   TEXT    NOT NULL UNIQUE,
    csrf_hash    TEXT    NOT NULL,
    user_id      BIGINT  NOT NULL,
    workspace_id BIGINT  NOT NULL,
    created_at   BIGINT  NOT NULL,
    last_seen_at BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL,
    ip           TEXT,
    user_agent   TEXT,
    FOREIGN KEY (workspace_id, user_id)
        REFERENCES memberships (workspace_id, user_id) ON DELETE CASCADE
);

CREATE INDEX web_sessions_expires_at_idx ON web_sessions (expires_at);
CREATE INDEX web_sessions_user_id_idx ON web_sessions (user_id);
CREATE INDEX web_sessions_workspace_id_user_id_idx ON web_sessions (workspace_id, user_id);

-- Append-only. Events outlive their actor (SET NULL) but not their workspace.
CREATE TABLE audit_events (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id  BIGINT  REFERENCES workspaces (id) ON DELETE CASCADE,
    actor_user_id BIGINT  REFERENCES users (id) ON DELETE SET NULL,
    action        TEXT    NOT NULL,
    target        TEXT,
    ip            TEXT,
    details       TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(details)),
    created_at    BIGINT  NOT NULL
);

CREATE INDEX audit_events_workspace_id_id_idx ON audit_events (workspace_id, id);
CREATE INDEX audit_events_target_id_idx ON audit_events (target, id);
CREATE INDEX audit_events_actor_user_id_idx ON audit_events (actor_user_id);
