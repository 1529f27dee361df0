-- Telegram sign-in for the web app (docs/web-login.md): one-time codes sent by the service bot,
-- trusted devices, the service bot's links to users and their binding nonces, invites, and
-- installation-wide settings. Codes, nonces and tokens are stored only as hashes.
-- Forward-only: never edit this file once landed; add a new migration instead.

-- A one-time code: a keyed hash of the code, at most `max attempts` checks (counted before the
-- comparison, atomically), single use. A newer code of the user supersedes older ones.
CREATE TABLE signin_codes (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  TEXT    NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL,
    used_at    BIGINT,
    ip         TEXT
);

CREATE INDEX signin_codes_user_id_id_idx ON signin_codes (user_id, id);
CREATE INDEX signin_codes_expires_at_idx ON signin_codes (expires_at);

-- A browser a user chose to remember: only the SHA-256 of its cookie token is kept; valid
-- until `expires_at` (absolute, never extended by use).
CREATE TABLE trusted_devices (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash   TEXT    NOT NULL UNIQUE,
    created_at   BIGINT  NOT NULL,
    last_used_at BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL,
    user_agent   TEXT,
    ip           TEXT
);

CREATE INDEX trusted_devices_user_id_idx ON trusted_devices (user_id);
CREATE INDEX trusted_devices_expires_at_idx ON trusted_devices (expires_at);

-- A deep-link nonce (`t.me/<bot>?start=<nonce>`) that binds a user's Telegram chat with the
-- service bot: single use, short-lived, stored as a hash.
CREATE TABLE signin_bot_nonces (
    nonce_hash TEXT    NOT NULL PRIMARY KEY,
    user_id    BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    bot_id     BIGINT  NOT NULL REFERENCES bots (id) ON DELETE CASCADE,
    created_at BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL,
    used_at    BIGINT
);

CREATE INDEX signin_bot_nonces_user_id_idx ON signin_bot_nonces (user_id);
CREATE INDEX signin_bot_nonces_expires_at_idx ON signin_bot_nonces (expires_at);

-- The chat in which the service bot reaches a user (one per user; a new binding replaces it).
CREATE TABLE signin_bot_links (
    user_id          BIGINT  NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    bot_id           BIGINT  NOT NULL REFERENCES bots (id) ON DELETE CASCADE,
    chat_id          BIGINT  NOT NULL,
    telegram_user_id BIGINT  NOT NULL,
    locale           TEXT    CHECK (locale IN ('en', 'ru')),
    bound_at         BIGINT  NOT NULL
);

CREATE INDEX signin_bot_links_bot_id_idx ON signin_bot_links (bot_id);

-- An invitation to sign up when `auth.self_service = "invite"`: single use, stored as a hash.
CREATE TABLE signin_invites (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash  TEXT    NOT NULL UNIQUE,
    created_by  BIGINT  REFERENCES users (id) ON DELETE SET NULL,
    created_at  BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL,
    used_at     BIGINT,
    used_by     BIGINT  REFERENCES users (id) ON DELETE SET NULL
);

CREATE INDEX signin_invites_created_by_idx ON signin_invites (created_by);
CREATE INDEX signin_invites_used_by_idx ON signin_invites (used_by);

-- Installation-wide settings changed in Settings (e.g. `service_bot_id`).
CREATE TABLE installation_settings (
    name       TEXT    NOT NULL PRIMARY KEY,
    value      TEXT    NOT NULL,
    updated_at BIGINT  NOT NULL,
    updated_by BIGINT  REFERENCES users (id) ON DELETE SET NULL
);

CREATE INDEX installation_settings_updated_by_idx ON installation_settings (updated_by);
