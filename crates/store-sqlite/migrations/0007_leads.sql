-- Lead monitoring: tasks, their sources, the leads found, the leads' delivery queue, the terms
-- each matched post already matched (for edits), and a full-text index of lead texts.
-- Same tables and columns as the PostgreSQL twin (the FTS5 index is SQLite's machinery and is
-- not an application table); conventions as in 0001. docs/leads-data.md describes the model.
-- Forward-only: never edit this file once landed; add a new migration instead.

-- (id, workspace_id) and (id, account_id) are keys so that rows referring to a task or an
-- account can say, with a composite foreign key, that they belong to the same workspace or
-- account.
CREATE UNIQUE INDEX accounts_id_workspace_id_key ON accounts (id, workspace_id);

CREATE TABLE lead_tasks (
    id                     INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id           BIGINT  NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name                   TEXT    NOT NULL,
    query                  TEXT    NOT NULL,
    account_id             BIGINT  NOT NULL,
    -- saved_messages | chat (target_chat_id) | bot (target_bot_id + target_peer_id). A deleted
    -- chat or bot leaves its column NULL: the task then has no usable target.
    target                 TEXT    NOT NULL CHECK (target IN ('saved_messages', 'chat', 'bot')),
    target_chat_id         BIGINT  REFERENCES chats (id) ON DELETE SET NULL,
    target_bot_id          BIGINT  REFERENCES bots (id) ON DELETE SET NULL,
    target_peer_id         BIGINT,
    mode                   TEXT    NOT NULL CHECK (mode IN ('instant', 'digest')),
    digest_minutes         INTEGER CHECK (digest_minutes BETWEEN 1 AND 1440),
    instant_cap_per_minute INTEGER NOT NULL DEFAULT 10
                               CHECK (instant_cap_per_minute BETWEEN 1 AND 600),
    ignore_forwards        INTEGER NOT NULL DEFAULT 0 CHECK (ignore_forwards IN (0, 1)),
    join_allowed           INTEGER NOT NULL DEFAULT 0 CHECK (join_allowed IN (0, 1)),
    leave_unused           INTEGER NOT NULL DEFAULT 0 CHECK (leave_unused IN (0, 1)),
    active                 INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    last_digest_at         BIGINT,
    created_by             BIGINT  REFERENCES users (id) ON DELETE SET NULL,
    created_at             BIGINT  NOT NULL,
    updated_at             BIGINT  NOT NULL,
    UNIQUE (workspace_id, name),
    UNIQUE (id, workspace_id),
    UNIQUE (id, account_id),
    -- The reading account belongs to the task's workspace.
    FOREIGN KEY (account_id, workspace_id) REFERENCES accounts (id, workspace_id)
        ON DELETE CASCADE,
    CHECK ((mode = 'digest') = (digest_minutes IS NOT NULL)),
    CHECK (target = 'chat' OR target_chat_id IS NULL),
    CHECK (target = 'bot' OR (target_bot_id IS NULL AND target_peer_id IS NULL))
);

CREATE INDEX lead_tasks_account_id_idx ON lead_tasks (account_id);

CREATE TABLE lead_sources (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id      BIGINT  NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    kind            TEXT    NOT NULL CHECK (kind IN ('username', 'invite', 'channel_id',
                        'dialog')),
    -- The normalised reference: lowercased username, invite hash, channel or peer id.
    ref_key         TEXT    NOT NULL,
    -- As the user typed it.
    input           TEXT    NOT NULL,
    channel_id      BIGINT,
    access_hash     BIGINT,
    title           TEXT,
    state           TEXT    NOT NULL CHECK (state IN ('resolving', 'joined', 'polled',
                        'flood_wait', 'failed', 'left')),
    wait_until      BIGINT,
    failure         TEXT,
    read_via        TEXT    CHECK (read_via IN ('updates', 'history')),
    joined_by_us    INTEGER NOT NULL DEFAULT 0 CHECK (joined_by_us IN (0, 1)),
    leave_allowed   INTEGER NOT NULL DEFAULT 0 CHECK (leave_allowed IN (0, 1)),
    -- The high-water mark: the newest message id seen.
    last_message_id BIGINT  NOT NULL DEFAULT 0,
    pts             BIGINT,
    checked_at      BIGINT,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL,
    UNIQUE (account_id, kind, ref_key),
    UNIQUE (id, account_id),
    CHECK ((state = 'flood_wait') = (wait_until IS NOT NULL)),
    CHECK ((state = 'failed') = (failure IS NOT NULL))
);

-- One channel is one source per account, whichever way it was named.
CREATE UNIQUE INDEX lead_sources_account_id_channel_id_key ON lead_sources (account_id, channel_id)
    WHERE channel_id IS NOT NULL;

-- A task reads only sources of its own reading account.
CREATE TABLE lead_task_sources (
    task_id    BIGINT NOT NULL,
    source_id  BIGINT NOT NULL,
    account_id BIGINT NOT NULL,
    PRIMARY KEY (task_id, source_id),
    FOREIGN KEY (task_id, account_id) REFERENCES lead_tasks (id, account_id)
        ON DELETE CASCADE,
    FOREIGN KEY (source_id, account_id) REFERENCES lead_sources (id, account_id)
        ON DELETE CASCADE
);

CREATE INDEX lead_task_sources_source_id_idx ON lead_task_sources (source_id);

-- One Telegram message each: one lead (instant) or several (digest). Mirrors the reply outbox.
CREATE TABLE lead_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id         BIGINT  NOT NULL REFERENCES lead_tasks (id) ON DELETE CASCADE,
    kind            TEXT    NOT NULL CHECK (kind IN ('instant', 'digest')),
    state           TEXT    NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT  NOT NULL,
    -- MTProto random_id: a resend after a crash cannot post the message twice.
    random_id       BIGINT  NOT NULL,
    last_error      TEXT,
    tg_message_id   BIGINT,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL
);

CREATE INDEX lead_deliveries_due_idx ON lead_deliveries (state, next_attempt_at);
CREATE INDEX lead_deliveries_task_id_idx ON lead_deliveries (task_id, kind, created_at);

CREATE TABLE leads (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id    BIGINT  NOT NULL,
    task_id         BIGINT  NOT NULL,
    source_id       BIGINT  NOT NULL REFERENCES lead_sources (id),
    tg_message_id   BIGINT  NOT NULL,
    -- 0 for the post as first seen; the edit_date of an edit that matched new terms.
    revision        BIGINT  NOT NULL DEFAULT 0,
    -- The source's Telegram channel id when the lead was found.
    channel_id      BIGINT,
    link            TEXT,
    author_id       BIGINT,
    author_name     TEXT,
    author_username TEXT,
    text            TEXT    NOT NULL,
    snippet         TEXT    NOT NULL,
    terms           TEXT    NOT NULL CHECK (json_valid(terms)),
    posted_at       BIGINT  NOT NULL,
    fwd_channel_id  BIGINT,
    fwd_post_id     BIGINT,
    grouped_id      BIGINT,
    simhash         BIGINT,
    read            INTEGER NOT NULL DEFAULT 0 CHECK (read IN (0, 1)),
    delivery_id     BIGINT  REFERENCES lead_deliveries (id) ON DELETE SET NULL,
    created_at      BIGINT  NOT NULL,
    FOREIGN KEY (task_id, workspace_id) REFERENCES lead_tasks (id, workspace_id)
        ON DELETE CASCADE,
    CHECK ((fwd_channel_id IS NULL) = (fwd_post_id IS NULL)),
    -- The same message of a source once per task (and edit).
    UNIQUE (task_id, source_id, tg_message_id, revision),
    -- The same album of a source once per task.
    UNIQUE (task_id, source_id, grouped_id, revision)
);

-- The same original post once per task: a forward counts as its origin, a channel post as
-- itself. Rows with neither (a basic group's post, not forwarded) have a NULL key and never
-- collide.
CREATE UNIQUE INDEX leads_origin_key ON leads (task_id, (coalesce(fwd_channel_id, channel_id)),
    (CASE WHEN fwd_channel_id IS NOT NULL THEN fwd_post_id
          WHEN channel_id IS NOT NULL THEN tg_message_id END), revision);
CREATE INDEX leads_workspace_id_idx ON leads (workspace_id, id);
CREATE INDEX leads_task_id_idx ON leads (task_id, id);
CREATE INDEX leads_task_id_posted_at_idx ON leads (task_id, posted_at);
CREATE INDEX leads_pending_idx ON leads (task_id, id) WHERE delivery_id IS NULL;
CREATE INDEX leads_delivery_id_idx ON leads (delivery_id);
CREATE INDEX leads_source_id_idx ON leads (source_id);

-- The terms each (task, source, message) matched so far, including matches dropped as
-- duplicates: an edit yields a lead only for terms not in here.
CREATE TABLE lead_matched_terms (
    task_id       BIGINT NOT NULL REFERENCES lead_tasks (id) ON DELETE CASCADE,
    source_id     BIGINT NOT NULL REFERENCES lead_sources (id) ON DELETE CASCADE,
    tg_message_id BIGINT NOT NULL,
    terms         TEXT   NOT NULL CHECK (json_valid(terms)),
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (task_id, source_id, tg_message_id)
);

CREATE INDEX lead_matched_terms_updated_at_idx ON lead_matched_terms (updated_at);

-- Full-text search over lead texts: words (unicode61: case-folded, diacritics removed; ё is
-- folded to е here, as the search terms are), matched by prefix. Contentless: the text stays
-- in `leads`.
CREATE VIRTUAL TABLE leads_search USING fts5 (text, content = '', contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 2');

CREATE TRIGGER leads_search_insert AFTER INSERT ON leads BEGIN
    INSERT INTO leads_search (rowid, text)
    VALUES (new.id, replace(replace(new.text, 'ё', 'е'), 'Ё', 'Е'));
END;

CREATE TRIGGER leads_search_delete AFTER DELETE ON leads BEGIN
    DELETE FROM leads_search WHERE rowid = old.id;
END;
