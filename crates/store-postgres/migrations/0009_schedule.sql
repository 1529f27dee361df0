-- Autoposting: scheduled posts (sender, target chat, content, schedule in an IANA zone,
-- grace period, follow-ups), their runs (one publication each) and the follow-up actions of
-- published runs. Same tables and columns as the SQLite twin; conventions as in 0001.
-- docs/autoposting.md describes the model.
-- Forward-only: never edit this file once landed; add a new migration instead.

-- (id, workspace_id) of bots is a key so that a post can say, with a composite foreign key,
-- that its bot belongs to its workspace (accounts got theirs in 0007).
CREATE UNIQUE INDEX bots_id_workspace_id_posts_key ON bots (id, workspace_id);

CREATE TABLE scheduled_posts (
    id                 BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_id       BIGINT  NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    -- account (account_id) | bot (bot_id)
    sender             TEXT    NOT NULL CHECK (sender IN ('account', 'bot')),
    account_id         BIGINT,
    bot_id             BIGINT,
    -- The chat, Bot-API style (-100… channels and supergroups, -id basic groups), with what
    -- Telegram said of it when the post was saved.
    target_peer_id     BIGINT  NOT NULL,
    target_access_hash BIGINT,
    target_title       TEXT    NOT NULL,
    target_username    TEXT,
    text               TEXT    NOT NULL,
    -- JSON arrays: formatting entities; media [{file_id, kind, file_name, mime_type}].
    entities           TEXT    NOT NULL DEFAULT '[]',
    media              TEXT    NOT NULL DEFAULT '[]',
    link_preview       BOOLEAN NOT NULL DEFAULT TRUE,
    silent             BOOLEAN NOT NULL DEFAULT FALSE,
    -- JSON: {"kind": "once" | "cron" | "daily" | "weekdays" | "weekly", …}, read in time_zone.
    schedule           TEXT    NOT NULL,
    time_zone          TEXT    NOT NULL,
    grace_minutes      INTEGER NOT NULL DEFAULT 15 CHECK (grace_minutes BETWEEN 0 AND 1440),
    pin_hours          INTEGER CHECK (pin_hours BETWEEN 1 AND 744),
    delete_after_hours INTEGER CHECK (delete_after_hours BETWEEN 1 AND 744),
    state              TEXT    NOT NULL CHECK (state IN ('active', 'draft', 'finished',
                           'cancelled')),
    version            BIGINT  NOT NULL DEFAULT 1,
    -- Seed of the runs' MTProto random_id (docs/autoposting.md).
    random_seed        BIGINT  NOT NULL,
    created_by         BIGINT  REFERENCES users (id) ON DELETE SET NULL,
    created_at         BIGINT  NOT NULL,
    updated_at         BIGINT  NOT NULL,
    UNIQUE (id, workspace_id),
    FOREIGN KEY (account_id, workspace_id) REFERENCES accounts (id, workspace_id)
        ON DELETE CASCADE,
    FOREIGN KEY (bot_id, workspace_id) REFERENCES bots (id, workspace_id) ON DELETE CASCADE,
    CHECK ((sender = 'account') = (account_id IS NOT NULL)),
    CHECK ((sender = 'bot') = (bot_id IS NOT NULL))
);

CREATE INDEX scheduled_posts_workspace_id_idx ON scheduled_posts (workspace_id);
CREATE INDEX scheduled_posts_account_id_idx ON scheduled_posts (account_id);
CREATE INDEX scheduled_posts_bot_id_idx ON scheduled_posts (bot_id);

-- One publication of a post. An active post has exactly one 'scheduled' run of trigger
-- 'schedule' (its next occurrence); "publish now" adds 'manual' runs.
CREATE TABLE post_runs (
    id            BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    post_id       BIGINT  NOT NULL,
    workspace_id  BIGINT  NOT NULL,
    due_at        BIGINT  NOT NULL,
    trigger_kind  TEXT    NOT NULL CHECK (trigger_kind IN ('schedule', 'manual')),
    status        TEXT    NOT NULL CHECK (status IN ('scheduled', 'publishing', 'published',
                      'failed', 'missed', 'send_uncertain', 'cancelled')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    -- When the next attempt may start; for 'publishing', when the claim's lease ends.
    attempt_at    BIGINT  NOT NULL,
    -- The claim's fencing token (the publisher's writes must carry it).
    lease_token   BIGINT  NOT NULL DEFAULT 0,
    post_version  BIGINT,
    published_at  BIGINT,
    -- JSON array of Telegram message ids (one per album item).
    message_ids   TEXT    NOT NULL DEFAULT '[]',
    link          TEXT,
    error         TEXT,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL,
    UNIQUE (id, workspace_id),
    FOREIGN KEY (post_id, workspace_id) REFERENCES scheduled_posts (id, workspace_id)
        ON DELETE CASCADE,
    CHECK ((status = 'published') = (published_at IS NOT NULL))
);

-- The publisher's queue: waiting and claimed runs by the time they may be taken.
CREATE INDEX post_runs_due_idx ON post_runs (attempt_at) WHERE status IN ('scheduled', 'publishing');
CREATE INDEX post_runs_post_id_idx ON post_runs (post_id, id);
CREATE INDEX post_runs_workspace_id_idx ON post_runs (workspace_id, id);
-- One waiting occurrence per post (not yet attempted): a recurring post's next run is never
-- doubled. A run waiting for a retry (attempts > 0) may wait beside it.
CREATE UNIQUE INDEX post_runs_one_waiting_key ON post_runs (post_id)
    WHERE status = 'scheduled' AND trigger_kind = 'schedule' AND attempts = 0;

-- What happens to a published run's messages later: pin, unpin, delete, edit.
CREATE TABLE post_actions (
    id            BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id        BIGINT  NOT NULL,
    post_id       BIGINT  NOT NULL REFERENCES scheduled_posts (id) ON DELETE CASCADE,
    workspace_id  BIGINT  NOT NULL,
    kind          TEXT    NOT NULL CHECK (kind IN ('pin', 'unpin', 'delete', 'edit')),
    due_at        BIGINT  NOT NULL,
    status        TEXT    NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed',
                      'cancelled')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    -- When the next attempt may start; for 'running', when the claim's lease ends.
    attempt_at    BIGINT  NOT NULL,
    lease_token   BIGINT  NOT NULL DEFAULT 0,
    -- JSON {text, entities} of an edit.
    edit          TEXT,
    error         TEXT,
    done_at       BIGINT,
    created_at    BIGINT  NOT NULL,
    FOREIGN KEY (run_id, workspace_id) REFERENCES post_runs (id, workspace_id)
        ON DELETE CASCADE,
    CHECK ((kind = 'edit') = (edit IS NOT NULL))
);

CREATE INDEX post_actions_due_idx ON post_actions (attempt_at) WHERE status IN ('pending', 'running');
CREATE INDEX post_actions_run_id_idx ON post_actions (run_id);
