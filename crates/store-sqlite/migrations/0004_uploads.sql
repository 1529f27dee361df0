-- Attachments operators uploaded (`POST /api/v1/files`), owned by the workspace they were
-- uploaded in: a reply may attach only a file of its own workspace. Files are stored by
-- content (`file_id` is the SHA-256), so the same bytes uploaded in two workspaces are two rows.
-- Same tables and columns as the PostgreSQL twin; conventions as in 0001.
-- Forward-only: never edit this file once landed; add a new migration instead.

CREATE TABLE uploads (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id BIGINT  NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    file_id      TEXT    NOT NULL,
    size         BIGINT  NOT NULL,
    mime_type    TEXT    NOT NULL,
    uploaded_by  BIGINT  REFERENCES users (id) ON DELETE SET NULL,
    created_at   BIGINT  NOT NULL,
    UNIQUE (workspace_id, file_id)
);
