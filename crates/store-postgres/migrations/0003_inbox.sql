-- Bots (Bot API), the inbox (assignment, delivery state of replies) and the durable outbox.
-- Same tables and columns as the SQLite twin; conventions as in 0001.
-- Forward-only: never edit this file once landed; add a new migration instead.

CREATE TABLE bots (
    id                 BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_id       BIGINT  NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    telegram_bot_id    BIGINT  NOT NULL,
    username           TEXT    NOT NULL,
    first_name         TEXT    NOT NULL,
    mode               TEXT    NOT NULL CHECK (mode IN ('webhook', 'polling')),
    status             TEXT    NOT NULL CHECK (status IN ('connecting', 'connected',
                           'reconnecting', 'unauthorized', 'stopped')),
    status_detail      TEXT,
    active             BOOLEAN NOT NULL DEFAULT TRUE,
    -- Random path segment of the webhook URL; the token never appears in a URL.
    hook_id            TEXT    NOT NULL UNIQUE,
    token_sealed       BYTEA   NOT NULL,
    hook_secret_sealed BYTEA   NOT NULL,
    last_update_id     BIGINT,
    created_at         BIGINT  NOT NULL,
    updated_at         BIGINT  NOT NULL,
    UNIQUE (workspace_id, telegram_bot_id)
);

-- Raw updates are stored before the webhook answers 200 (or before the next getUpdates
-- offset confirms them), so a crash never loses one; repeats of an update_id are dropped.
CREATE TABLE bot_updates (
    bot_id       BIGINT NOT NULL REFERENCES bots (id) ON DELETE CASCADE,
    update_id    BIGINT NOT NULL,
    payload      JSONB  NOT NULL,
    received_at  BIGINT NOT NULL,
    processed_at BIGINT,
    PRIMARY KEY (bot_id, update_id)
);

CREATE INDEX bot_updates_pending_idx ON bot_updates (bot_id, update_id)
    WHERE processed_at IS NULL;

-- A chat belongs to one account or one bot.
ALTER TABLE chats ADD COLUMN bot_id BIGINT REFERENCES bots (id) ON DELETE CASCADE;
ALTER TABLE chats ADD CONSTRAINT chats_owner_check CHECK ((account_id IS NULL) <> (bot_id IS NULL));
ALTER TABLE chats ADD COLUMN assignee_id BIGINT REFERENCES users (id) ON DELETE SET NULL;

CREATE UNIQUE INDEX chats_bot_id_peer_id_key ON chats (bot_id, peer_id);
CREATE INDEX chats_assignee_id_idx ON chats (assignee_id, status);

ALTER TABLE messages ADD COLUMN status TEXT NOT NULL DEFAULT 'received'
    CHECK (status IN ('received', 'queued', 'sending', 'sent', 'failed'));
ALTER TABLE messages ADD COLUMN error TEXT;
ALTER TABLE messages ADD COLUMN author_id BIGINT REFERENCES users (id) ON DELETE SET NULL;

-- One row per reply to send. Written in the same transaction as its message.
CREATE TABLE outbox (
    id              BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id      BIGINT  NOT NULL UNIQUE REFERENCES messages (id) ON DELETE CASCADE,
    chat_id         BIGINT  NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    state           TEXT    NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT  NOT NULL,
    -- MTProto random_id: a resend after a crash cannot post the message twice.
    random_id       BIGINT  NOT NULL,
    last_error      TEXT,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL
);

CREATE INDEX outbox_due_idx ON outbox (state, next_attempt_at);
