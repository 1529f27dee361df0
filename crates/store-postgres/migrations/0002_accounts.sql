-- Personal Telegram accounts, their grammers session data (DC keys, peer cache, update state),
-- and the chats and messages that ingestion writes.
-- Same tables and columns as the SQLite twin; conventions as in 0001.
-- Secrets arrive sealed by the vault (BYTEA) and are stored verbatim.
-- Forward-only: never edit this file once landed; add a new migration instead.

CREATE TABLE accounts (
    id               BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_id     BIGINT  NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    -- Digits only.
    phone            TEXT,
    telegram_user_id BIGINT,
    first_name       TEXT    NOT NULL DEFAULT '',
    last_name        TEXT,
    username         TEXT,
    status           TEXT    NOT NULL CHECK (status IN ('connecting', 'connected',
                         'reconnecting', 'flood_wait', 'unauthorized', 'banned', 'stopped')),
    status_detail    TEXT,
    flood_wait_until BIGINT,
    active           BOOLEAN NOT NULL DEFAULT TRUE,
    ingest_groups    BOOLEAN NOT NULL DEFAULT FALSE,
    api_id           INTEGER,
    api_hash_sealed  BYTEA,
    home_dc          INTEGER,
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL,
    -- NULLs are distinct: accounts not signed in yet do not collide.
    UNIQUE (workspace_id, telegram_user_id)
);

CREATE INDEX accounts_workspace_id_phone_idx ON accounts (workspace_id, phone);

CREATE TABLE account_dc_keys (
    account_id      BIGINT  NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    dc_id           INTEGER NOT NULL,
    ipv4            TEXT    NOT NULL,
    ipv6            TEXT    NOT NULL,
    auth_key_sealed BYTEA,
    PRIMARY KEY (account_id, dc_id)
);

CREATE TABLE account_peers (
    account_id  BIGINT  NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    -- Bot-API style dialog id.
    peer_id     BIGINT  NOT NULL,
    access_hash BIGINT,
    -- grammers' subtype bits (1 self, 2 bot, 4 megagroup, 8 broadcast, 16 gigagroup).
    subtype     INTEGER NOT NULL,
    PRIMARY KEY (account_id, peer_id)
);

CREATE TABLE account_update_states (
    account_id BIGINT  NOT NULL PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    pts        INTEGER NOT NULL,
    qts        INTEGER NOT NULL,
    date       INTEGER NOT NULL,
    seq        INTEGER NOT NULL
);

CREATE TABLE account_channel_states (
    account_id BIGINT  NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    channel_id BIGINT  NOT NULL,
    pts        INTEGER NOT NULL,
    PRIMARY KEY (account_id, channel_id)
);

-- One conversation of an account with a peer. `account_id` is nullable so that bot chats can
-- share this table later (they will carry a bot id instead); ingestion always sets it.
CREATE TABLE chats (
    id              BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_id    BIGINT  NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    account_id      BIGINT  REFERENCES accounts (id) ON DELETE CASCADE,
    peer_id         BIGINT  NOT NULL,
    peer_kind       TEXT    NOT NULL CHECK (peer_kind IN ('user', 'bot', 'group', 'supergroup',
                        'channel')),
    title           TEXT    NOT NULL,
    username        TEXT,
    status          TEXT    NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'pending',
                        'resolved')),
    unread_count    INTEGER NOT NULL DEFAULT 0,
    last_message_at BIGINT,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL,
    UNIQUE (account_id, peer_id)
);

CREATE INDEX chats_workspace_id_last_message_at_idx ON chats (workspace_id, last_message_at);

-- Unique per (chat, Telegram message id). `tg_message_id` is nullable so that an outbound
-- message can be written with its outbox item before Telegram assigns its id; ingested
-- messages always have one (NULLs never collide in the unique rule).
CREATE TABLE messages (
    id             BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    chat_id        BIGINT  NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    tg_message_id  BIGINT,
    direction      TEXT    NOT NULL CHECK (direction IN ('in', 'out')),
    sender_id      BIGINT,
    sender_name    TEXT,
    text           TEXT    NOT NULL,
    entities       JSONB   NOT NULL DEFAULT '[]'::jsonb,
    media          JSONB,
    reply_to_tg_id BIGINT,
    sent_at        BIGINT  NOT NULL,
    edited_at      BIGINT,
    deleted        BOOLEAN NOT NULL DEFAULT FALSE,
    created_at     BIGINT  NOT NULL,
    UNIQUE (chat_id, tg_message_id)
);

-- Private and basic-group deletions name only Telegram ids (unique per account), not the chat.
CREATE INDEX messages_tg_message_id_idx ON messages (tg_message_id);

CREATE TABLE message_edits (
    id         BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id BIGINT  NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    old_text   TEXT    NOT NULL,
    edited_at  BIGINT  NOT NULL
);

CREATE INDEX message_edits_message_id_idx ON message_edits (message_id, id);
