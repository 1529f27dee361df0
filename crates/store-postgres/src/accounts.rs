//! The SQL of the [`AccountStore`] port on PostgreSQL: accounts, their grammers session data,
//! and the chats and messages ingestion writes. Batches travel as arrays and are expanded with
//! `UNNEST`, so a batch of any size is one statement per step; JSONB travels as text.

use crate::PgStore;
use crate::error::{ResultExt, corrupt};
use crate::store::one_row;
use async_trait::async_trait;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Postgres, Row, Transaction};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use switchboard_domain::content::stored_json;
use switchboard_domain::nul::{clean, clean_batch, clean_opt};
use switchboard_domain::{
    Account, AccountId, AccountProfile, AccountStatus, AccountStore, BotId, CachedPeer, Chat,
    ChatId, ChatOwner, ChatStatus, DcKey, DeliveryStatus, Direction, Entity, IncomingMessage,
    IngestOutcome, Media, Message, MessageEdit, MessageId, NewAccount, PeerKind, StoreError,
    StoreResult, Timestamp, UpdateState, UserId, WorkspaceId,
};

const ACCOUNT_COLUMNS: &str = "id, workspace_id, phone, telegram_user_id, first_name, last_name, \
     username, status, status_detail, flood_wait_until, active, ingest_groups, api_id, \
     api_hash_sealed, created_at, updated_at";
pub(crate) const CHAT_COLUMNS: &str = "id, workspace_id, account_id, bot_id, assignee_id, \
     peer_id, peer_kind, title, username, status, unread_count, last_message_at, created_at";
/// `CHAT_COLUMNS` qualified with the alias `c`.
pub(crate) const C_CHAT_COLUMNS: &str = "c.id, c.workspace_id, c.account_id, c.bot_id, \
     c.assignee_id, c.peer_id, c.peer_kind, c.title, c.username, c.status, c.unread_count, \
     c.last_message_at, c.created_at";
pub(crate) const MESSAGE_COLUMNS: &str = "id, chat_id, tg_message_id, direction, sender_id, \
     sender_name, text, entities::text AS entities, media::text AS media, reply_to_tg_id, \
     sent_at, edited_at, deleted, status, error, author_id";
/// `MESSAGE_COLUMNS` qualified with the alias `m`.
pub(crate) const M_MESSAGE_COLUMNS: &str = "m.id, m.chat_id, m.tg_message_id, m.direction, \
     m.sender_id, m.sender_name, m.text, m.entities::text AS entities, m.media::text AS media, \
     m.reply_to_tg_id, m.sent_at, m.edited_at, m.deleted, m.status, m.error, m.author_id";
/// Peer kinds whose deletions Telegram reports without naming the chat.
const COMMON_BOX_KINDS: &str = "('user', 'bot', 'group')";

#[async_trait]
impl AccountStore for PgStore {
    // --- accounts ---

    async fn create_account(&self, account: &NewAccount, now: Timestamp) -> StoreResult<Account> {
        const OP: &str = "create_account";
        let row = sqlx::query(&format!(
            "INSERT INTO accounts (workspace_id, phone, telegram_user_id, first_name, last_name, \
                 username, status, active, ingest_groups, api_id, api_hash_sealed, created_at, \
                 updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12) \
             RETURNING {ACCOUNT_COLUMNS}"
        ))
        .bind(account.workspace_id.0)
        .bind(account.phone.as_deref())
        .bind(account.telegram_user_id)
        .bind(clean(&account.first_name))
        .bind(clean_opt(account.last_name.as_deref()))
        .bind(clean_opt(account.username.as_deref()))
        .bind(account.status.as_str())
        .bind(account.active)
        .bind(account.ingest_groups)
        .bind(account.api_id)
        .bind(account.api_hash_sealed.as_deref())
        .bind(now.0)
        .fetch_one(&self.pool)
        .await
        .conflict_as(OP, "account_exists")?;
        read_account(OP, &row)
    }

    async fn get_account(&self, workspace: WorkspaceId, id: AccountId) -> StoreResult<Account> {
        const OP: &str = "get_account";
        let row = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1 AND workspace_id = $2"
        ))
        .bind(id.0)
        .bind(workspace.0)
        .fetch_one(&self.pool)
        .await
        .store_err(OP)?;
        read_account(OP, &row)
    }

    async fn load_account(&self, id: AccountId) -> StoreResult<Account> {
        const OP: &str = "load_account";
        let row = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1"
        ))
        .bind(id.0)
        .fetch_one(&self.pool)
        .await
        .store_err(OP)?;
        read_account(OP, &row)
    }

    async fn list_accounts(&self, workspace: WorkspaceId) -> StoreResult<Vec<Account>> {
        const OP: &str = "list_accounts";
        let rows = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE workspace_id = $1 ORDER BY id"
        ))
        .bind(workspace.0)
        .fetch_all(&self.pool)
        .await
        .store_err(OP)?;
        rows.iter().map(|r| read_account(OP, r)).collect()
    }

    async fn list_active_accounts(&self) -> StoreResult<Vec<Account>> {
        const OP: &str = "list_active_accounts";
        let rows = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE active ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await
        .store_err(OP)?;
        rows.iter().map(|r| read_account(OP, r)).collect()
    }

    async fn find_account_by_phone(
        &self,
        workspace: WorkspaceId,
        phone: &str,
    ) -> StoreResult<Option<Account>> {
        const OP: &str = "find_account_by_phone";
        let row = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE workspace_id = $1 AND phone = $2 \
             ORDER BY id LIMIT 1"
        ))
        .bind(workspace.0)
        .bind(phone)
        .fetch_optional(&self.pool)
        .await
        .store_err(OP)?;
        row.map(|r| read_account(OP, &r)).transpose()
    }

    async fn set_account_status(
        &self,
        id: AccountId,
        status: AccountStatus,
        detail: Option<&str>,
        flood_wait_until: Option<Timestamp>,
        now: Timestamp,
    ) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE accounts SET status = $1, status_detail = $2, flood_wait_until = $3, \
                 updated_at = $4 \
             WHERE id = $5",
        )
        .bind(status.as_str())
        .bind(detail)
        .bind(flood_wait_until.map(|t| t.0))
        .bind(now.0)
        .bind(id.0)
        .execute(&self.pool)
        .await
        .store_err("set_account_status")?;
        one_row(done.rows_affected())
    }

    async fn set_account_profile(
        &self,
        id: AccountId,
        profile: &AccountProfile,
        now: Timestamp,
    ) -> StoreResult<()> {
        // A profile without a phone (Telegram hides it in some sign-ins) keeps the known one.
        let done = sqlx::query(
            "UPDATE accounts SET telegram_user_id = $1, phone = coalesce($2, phone), \
                 first_name = $3, last_name = $4, username = $5, updated_at = $6 \
             WHERE id = $7",
        )
        .bind(profile.telegram_user_id)
        .bind(profile.phone.as_deref())
        .bind(clean(&profile.first_name))
        .bind(clean_opt(profile.last_name.as_deref()))
        .bind(clean_opt(profile.username.as_deref()))
        .bind(now.0)
        .bind(id.0)
        .execute(&self.pool)
        .await
        .conflict_as("set_account_profile", "account_exists")?;
        one_row(done.rows_affected())
    }

    async fn set_account_active(
        &self,
        id: AccountId,
        active: bool,
        now: Timestamp,
    ) -> StoreResult<()> {
        let done = sqlx::query("UPDATE accounts SET active = $1, updated_at = $2 WHERE id = $3")
            .bind(active)
            .bind(now.0)
            .bind(id.0)
            .execute(&self.pool)
            .await
            .store_err("set_account_active")?;
        one_row(done.rows_affected())
    }

    async fn set_account_ingest_groups(
        &self,
        id: AccountId,
        ingest_groups: bool,
        now: Timestamp,
    ) -> StoreResult<()> {
        let done =
            sqlx::query("UPDATE accounts SET ingest_groups = $1, updated_at = $2 WHERE id = $3")
                .bind(ingest_groups)
                .bind(now.0)
                .bind(id.0)
                .execute(&self.pool)
                .await
                .store_err("set_account_ingest_groups")?;
        one_row(done.rows_affected())
    }

    async fn set_account_api_hash_sealed(
        &self,
        id: AccountId,
        sealed: Option<&[u8]>,
        now: Timestamp,
    ) -> StoreResult<()> {
        let done =
            sqlx::query("UPDATE accounts SET api_hash_sealed = $1, updated_at = $2 WHERE id = $3")
                .bind(sealed)
                .bind(now.0)
                .bind(id.0)
                .execute(&self.pool)
                .await
                .store_err("set_account_api_hash_sealed")?;
        one_row(done.rows_affected())
    }

    async fn delete_account(&self, workspace: WorkspaceId, id: AccountId) -> StoreResult<()> {
        // Session data, chats, messages and edits go with it (ON DELETE CASCADE).
        let done = sqlx::query("DELETE FROM accounts WHERE id = $1 AND workspace_id = $2")
            .bind(id.0)
            .bind(workspace.0)
            .execute(&self.pool)
            .await
            .store_err("delete_account")?;
        one_row(done.rows_affected())
    }

    // --- Telegram session data ---

    async fn account_home_dc(&self, id: AccountId) -> StoreResult<Option<i32>> {
        sqlx::query_scalar("SELECT home_dc FROM accounts WHERE id = $1")
            .bind(id.0)
            .fetch_one(&self.pool)
            .await
            .store_err("account_home_dc")
    }

    async fn set_account_home_dc(&self, id: AccountId, dc_id: i32) -> StoreResult<()> {
        let done = sqlx::query("UPDATE accounts SET home_dc = $1 WHERE id = $2")
            .bind(dc_id)
            .bind(id.0)
            .execute(&self.pool)
            .await
            .store_err("set_account_home_dc")?;
        one_row(done.rows_affected())
    }

    async fn list_dc_keys(&self, id: AccountId) -> StoreResult<Vec<DcKey>> {
        const OP: &str = "list_dc_keys";
        let rows = sqlx::query(
            "SELECT dc_id, ipv4, ipv6, auth_key_sealed FROM account_dc_keys \
             WHERE account_id = $1 ORDER BY dc_id",
        )
        .bind(id.0)
        .fetch_all(&self.pool)
        .await
        .store_err(OP)?;
        rows.iter()
            .map(|r| {
                Ok(DcKey {
                    dc_id: r.try_get("dc_id")?,
                    ipv4: r.try_get("ipv4")?,
                    ipv6: r.try_get("ipv6")?,
                    auth_key_sealed: r.try_get("auth_key_sealed")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .store_err(OP)
    }

    async fn upsert_dc_key(&self, id: AccountId, key: &DcKey) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO account_dc_keys (account_id, dc_id, ipv4, ipv6, auth_key_sealed) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (account_id, dc_id) DO UPDATE SET ipv4 = excluded.ipv4, \
                 ipv6 = excluded.ipv6, auth_key_sealed = excluded.auth_key_sealed",
        )
        .bind(id.0)
        .bind(key.dc_id)
        .bind(&key.ipv4)
        .bind(&key.ipv6)
        .bind(key.auth_key_sealed.as_deref())
        .execute(&self.pool)
        .await
        .store_err("upsert_dc_key")?;
        Ok(())
    }

    async fn get_cached_peer(
        &self,
        id: AccountId,
        peer_id: i64,
    ) -> StoreResult<Option<CachedPeer>> {
        const OP: &str = "get_cached_peer";
        let row = sqlx::query(
            "SELECT peer_id, access_hash, subtype FROM account_peers \
             WHERE account_id = $1 AND peer_id = $2",
        )
        .bind(id.0)
        .bind(peer_id)
        .fetch_optional(&self.pool)
        .await
        .store_err(OP)?;
        row.map(|r| read_peer(&r)).transpose().store_err(OP)
    }

    async fn get_self_peer(&self, id: AccountId) -> StoreResult<Option<CachedPeer>> {
        const OP: &str = "get_self_peer";
        let row = sqlx::query(
            "SELECT peer_id, access_hash, subtype FROM account_peers \
             WHERE account_id = $1 AND (subtype & 1) <> 0 ORDER BY peer_id LIMIT 1",
        )
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await
        .store_err(OP)?;
        row.map(|r| read_peer(&r)).transpose().store_err(OP)
    }

    async fn upsert_cached_peers(&self, id: AccountId, peers: &[CachedPeer]) -> StoreResult<()> {
        const OP: &str = "upsert_cached_peers";
        if peers.is_empty() {
            return Ok(());
        }
        // The last occurrence of a peer wins, as if the rows were written one by one (and
        // PostgreSQL refuses to update one row twice in a statement).
        let mut latest: HashMap<i64, &CachedPeer> = HashMap::with_capacity(peers.len());
        for peer in peers {
            latest.insert(peer.peer_id, peer);
        }
        let mut unique: Vec<&CachedPeer> = latest.into_values().collect();
        unique.sort_by_key(|p| p.peer_id);
        // One statement: atomic on its own.
        sqlx::query(
            "INSERT INTO account_peers (account_id, peer_id, access_hash, subtype) \
             SELECT $1, * FROM UNNEST($2::bigint[], $3::bigint[], $4::integer[]) \
             ON CONFLICT (account_id, peer_id) DO UPDATE SET \
                 access_hash = excluded.access_hash, subtype = excluded.subtype",
        )
        .bind(id.0)
        .bind(unique.iter().map(|p| p.peer_id).collect::<Vec<_>>())
        .bind(unique.iter().map(|p| p.access_hash).collect::<Vec<_>>())
        .bind(unique.iter().map(|p| p.subtype).collect::<Vec<_>>())
        .execute(&self.pool)
        .await
        .store_err(OP)?;
        Ok(())
    }

    async fn get_update_state(
        &self,
        id: AccountId,
    ) -> StoreResult<Option<(UpdateState, Vec<(i64, i32)>)>> {
        const OP: &str = "get_update_state";
        // One snapshot for the common state and the channels.
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
            .store_err(OP)?;
        let common = sqlx::query(
            "SELECT pts, qts, date, seq FROM account_update_states WHERE account_id = $1",
        )
        .bind(id.0)
        .fetch_optional(&mut *tx)
        .await
        .store_err(OP)?;
        let channels: Vec<(i64, i32)> = sqlx::query_as(
            "SELECT channel_id, pts FROM account_channel_states WHERE account_id = $1 \
             ORDER BY channel_id",
        )
        .bind(id.0)
        .fetch_all(&mut *tx)
        .await
        .store_err(OP)?;
        tx.commit().await.store_err(OP)?;
        let state = match common {
            Some(r) => UpdateState {
                pts: r.try_get("pts").store_err(OP)?,
                qts: r.try_get("qts").store_err(OP)?,
                date: r.try_get("date").store_err(OP)?,
                seq: r.try_get("seq").store_err(OP)?,
            },
            // Only channels saved so far: the common state is still at its start.
            None if !channels.is_empty() => UpdateState::default(),
            None => return Ok(None),
        };
        Ok(Some((state, channels)))
    }

    async fn set_update_state(
        &self,
        id: AccountId,
        state: &UpdateState,
        channels: &[(i64, i32)],
    ) -> StoreResult<()> {
        const OP: &str = "set_update_state";
        let mut latest: HashMap<i64, i32> = HashMap::with_capacity(channels.len());
        latest.extend(channels.iter().copied());
        let mut unique: Vec<(i64, i32)> = latest.into_iter().collect();
        unique.sort_unstable();

        let mut tx = self.pool.begin().await.store_err(OP)?;
        sqlx::query(
            "INSERT INTO account_update_states (account_id, pts, qts, date, seq) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (account_id) DO UPDATE SET pts = excluded.pts, qts = excluded.qts, \
                 date = excluded.date, seq = excluded.seq",
        )
        .bind(id.0)
        .bind(state.pts)
        .bind(state.qts)
        .bind(state.date)
        .bind(state.seq)
        .execute(&mut *tx)
        .await
        .store_err(OP)?;
        sqlx::query("DELETE FROM account_channel_states WHERE account_id = $1")
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .store_err(OP)?;
        if !unique.is_empty() {
            sqlx::query(
                "INSERT INTO account_channel_states (account_id, channel_id, pts) \
                 SELECT $1, * FROM UNNEST($2::bigint[], $3::integer[])",
            )
            .bind(id.0)
            .bind(unique.iter().map(|c| c.0).collect::<Vec<_>>())
            .bind(unique.iter().map(|c| c.1).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await
            .store_err(OP)?;
        }
        tx.commit().await.store_err(OP)
    }

    async fn set_update_primary(
        &self,
        id: AccountId,
        pts: i32,
        date: i32,
        seq: i32,
    ) -> StoreResult<()> {
        let mut tx = begin_relaxed(&self.pool, "set_update_primary").await?;
        sqlx::query(
            "INSERT INTO account_update_states (account_id, pts, qts, date, seq) \
             VALUES ($1, $2, 0, $3, $4) \
             ON CONFLICT (account_id) DO UPDATE SET pts = excluded.pts, date = excluded.date, \
                 seq = excluded.seq",
        )
        .bind(id.0)
        .bind(pts)
        .bind(date)
        .bind(seq)
        .execute(&mut *tx)
        .await
        .store_err("set_update_primary")?;
        tx.commit().await.store_err("set_update_primary")
    }

    async fn set_update_qts(&self, id: AccountId, qts: i32) -> StoreResult<()> {
        let mut tx = begin_relaxed(&self.pool, "set_update_qts").await?;
        sqlx::query(
            "INSERT INTO account_update_states (account_id, pts, qts, date, seq) \
             VALUES ($1, 0, $2, 0, 0) \
             ON CONFLICT (account_id) DO UPDATE SET qts = excluded.qts",
        )
        .bind(id.0)
        .bind(qts)
        .execute(&mut *tx)
        .await
        .store_err("set_update_qts")?;
        tx.commit().await.store_err("set_update_qts")
    }

    async fn set_channel_pts(&self, id: AccountId, channel_id: i64, pts: i32) -> StoreResult<()> {
        let mut tx = begin_relaxed(&self.pool, "set_channel_pts").await?;
        sqlx::query(
            "INSERT INTO account_channel_states (account_id, channel_id, pts) VALUES ($1, $2, $3) \
             ON CONFLICT (account_id, channel_id) DO UPDATE SET pts = excluded.pts",
        )
        .bind(id.0)
        .bind(channel_id)
        .bind(pts)
        .execute(&mut *tx)
        .await
        .store_err("set_channel_pts")?;
        tx.commit().await.store_err("set_channel_pts")
    }

    async fn wipe_account_session(&self, id: AccountId) -> StoreResult<()> {
        const OP: &str = "wipe_account_session";
        let mut tx = self.pool.begin().await.store_err(OP)?;
        let done = sqlx::query("UPDATE accounts SET home_dc = NULL WHERE id = $1")
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .store_err(OP)?;
        one_row(done.rows_affected())?;
        for table in [
            "account_dc_keys",
            "account_peers",
            "account_update_states",
            "account_channel_states",
        ] {
            sqlx::query(&format!("DELETE FROM {table} WHERE account_id = $1"))
                .bind(id.0)
                .execute(&mut *tx)
                .await
                .store_err(OP)?;
        }
        tx.commit().await.store_err(OP)
    }

    // --- ingestion ---

    async fn ingest_messages(
        &self,
        account: AccountId,
        batch: &[IncomingMessage],
        now: Timestamp,
    ) -> StoreResult<IngestOutcome> {
        const OP: &str = "ingest_messages";
        if batch.is_empty() {
            return Ok(IngestOutcome::default());
        }
        let mut tx = begin_relaxed(&self.pool, OP).await?;
        let outcome = ingest_in(&mut tx, ChatOwner::Account(account), batch, now).await?;
        tx.commit().await.store_err(OP)?;
        Ok(outcome)
    }

    async fn apply_message_edit(
        &self,
        account: AccountId,
        peer_id: i64,
        tg_message_id: i64,
        new_text: &str,
        entities: &[Entity],
        edited_at: Timestamp,
    ) -> StoreResult<Option<Message>> {
        apply_edit(
            &self.pool,
            "apply_message_edit",
            ChatOwner::Account(account),
            (peer_id, tg_message_id),
            new_text,
            entities,
            edited_at,
        )
        .await
    }

    async fn mark_messages_deleted(
        &self,
        account: AccountId,
        peer_id: Option<i64>,
        tg_message_ids: &[i64],
    ) -> StoreResult<Vec<Message>> {
        const OP: &str = "mark_messages_deleted";
        if tg_message_ids.is_empty() {
            return Ok(Vec::new());
        }
        let chats = match peer_id {
            Some(_) => "SELECT id FROM chats WHERE account_id = $1 AND peer_id = $3".to_string(),
            None => format!(
                "SELECT id FROM chats WHERE account_id = $1 AND peer_kind IN {COMMON_BOX_KINDS}"
            ),
        };
        let sql = format!(
            "UPDATE messages SET deleted = TRUE \
             WHERE NOT deleted AND tg_message_id = ANY($2) AND chat_id IN ({chats}) \
             RETURNING {MESSAGE_COLUMNS}"
        );
        let mut query = sqlx::query(&sql).bind(account.0).bind(tg_message_ids);
        if let Some(peer_id) = peer_id {
            query = query.bind(peer_id);
        }
        let rows = query.fetch_all(&self.pool).await.store_err(OP)?;
        let mut marked = rows
            .iter()
            .map(|r| read_message(OP, r))
            .collect::<StoreResult<Vec<_>>>()?;
        marked.sort_by_key(|m| m.id);
        Ok(marked)
    }

    async fn set_message_media(
        &self,
        account: AccountId,
        message: MessageId,
        media: &Media,
    ) -> StoreResult<Option<Message>> {
        const OP: &str = "set_message_media";
        let media = json_text(OP, media)?;
        let row = sqlx::query(&format!(
            "UPDATE messages SET media = $1::jsonb WHERE id = $2 \
               AND chat_id IN (SELECT id FROM chats WHERE account_id = $3) \
             RETURNING {MESSAGE_COLUMNS}"
        ))
        .bind(media)
        .bind(message.0)
        .bind(account.0)
        .fetch_optional(&self.pool)
        .await
        .store_err(OP)?;
        row.map(|r| read_message(OP, &r)).transpose()
    }

    async fn list_account_chats(
        &self,
        workspace: WorkspaceId,
        account: AccountId,
    ) -> StoreResult<Vec<Chat>> {
        const OP: &str = "list_account_chats";
        let rows = sqlx::query(&format!(
            "SELECT {CHAT_COLUMNS} FROM chats WHERE workspace_id = $1 AND account_id = $2 \
             ORDER BY last_message_at DESC NULLS LAST, id DESC"
        ))
        .bind(workspace.0)
        .bind(account.0)
        .fetch_all(&self.pool)
        .await
        .store_err(OP)?;
        rows.iter().map(|r| read_chat(OP, r)).collect()
    }

    async fn list_chat_messages(
        &self,
        workspace: WorkspaceId,
        chat: ChatId,
        before: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<Message>> {
        const OP: &str = "list_chat_messages";
        let rows = sqlx::query(&format!(
            "SELECT {M_MESSAGE_COLUMNS} FROM messages AS m JOIN chats AS c ON c.id = m.chat_id \
             WHERE c.id = $1 AND c.workspace_id = $2 AND m.tg_message_id < $3 \
             ORDER BY m.tg_message_id DESC LIMIT $4"
        ))
        .bind(chat.0)
        .bind(workspace.0)
        .bind(before.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .store_err(OP)?;
        rows.iter().map(|r| read_message(OP, r)).collect()
    }

    async fn list_message_edits(
        &self,
        workspace: WorkspaceId,
        message: MessageId,
    ) -> StoreResult<Vec<MessageEdit>> {
        const OP: &str = "list_message_edits";
        let rows = sqlx::query(
            "SELECT e.message_id, e.old_text, e.edited_at FROM message_edits AS e \
             JOIN messages AS m ON m.id = e.message_id JOIN chats AS c ON c.id = m.chat_id \
             WHERE e.message_id = $1 AND c.workspace_id = $2 ORDER BY e.id",
        )
        .bind(message.0)
        .bind(workspace.0)
        .fetch_all(&self.pool)
        .await
        .store_err(OP)?;
        rows.iter()
            .map(|r| {
                Ok(MessageEdit {
                    message_id: MessageId(r.try_get("message_id")?),
                    old_text: r.try_get("old_text")?,
                    edited_at: Timestamp(r.try_get("edited_at")?),
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .store_err(OP)
    }
}

/// Begins a transaction whose commit does not wait for its WAL record to reach the disk
/// (`synchronous_commit = off`; a crash of the application loses nothing, a crash of the
/// PostgreSQL server may lose the last ≈ 0.6 s of such commits). Only for what Telegram gives
/// again: ingested updates and the update state reached. The WAL is written in order, so a
/// state that survives implies the messages committed before it survived; when both are lost,
/// the older state fetches those messages again (and the store drops duplicates).
pub(crate) async fn begin_relaxed(
    pool: &PgPool,
    op: &'static str,
) -> StoreResult<Transaction<'static, Postgres>> {
    let mut tx = pool.begin().await.store_err(op)?;
    sqlx::query("SET LOCAL synchronous_commit = off")
        .execute(&mut *tx)
        .await
        .store_err(op)?;
    Ok(tx)
}

/// First keys of the advisory locks that serialize the ingestion of one account or bot.
const INGEST_LOCK_ACCOUNT: i32 = 0x5342_0001;
const INGEST_LOCK_BOT: i32 = 0x5342_0002;

/// Ingests a batch into the chats of `owner` inside `tx` (see
/// [`AccountStore::ingest_messages`]); shared by personal accounts and bots.
pub(crate) async fn ingest_in(
    tx: &mut Transaction<'static, Postgres>,
    owner: ChatOwner,
    batch: &[IncomingMessage],
    now: Timestamp,
) -> StoreResult<IngestOutcome> {
    const OP: &str = "ingest_messages";
    if batch.is_empty() {
        return Ok(IngestOutcome::default());
    }
    let batch = clean_batch(batch);
    let plan = IngestPlan::new(&batch);
    let (table, column, owner_id) = match owner {
        ChatOwner::Account(id) => ("accounts", "account_id", id.0),
        ChatOwner::Bot(id) => ("bots", "bot_id", id.0),
    };
    // One ingestion per owner at a time: two batches upserting the same new chats in
    // different orders would deadlock. (An account or bot has one writer anyway; this makes
    // an overlap, e.g. while a worker is replaced, wait instead of failing.)
    sqlx::query("SELECT pg_advisory_xact_lock($1, ($2 % 2147483647)::integer)")
        .bind(match owner {
            ChatOwner::Account(_) => INGEST_LOCK_ACCOUNT,
            ChatOwner::Bot(_) => INGEST_LOCK_BOT,
        })
        .bind(owner_id)
        .execute(&mut **tx)
        .await
        .store_err(OP)?;
    let workspace: i64 =
        sqlx::query_scalar(&format!("SELECT workspace_id FROM {table} WHERE id = $1"))
            .bind(owner_id)
            .fetch_one(&mut **tx)
            .await
            .store_err(OP)?;

    // Chats: refresh names that changed, create the missing ones.
    let rows = sqlx::query(&format!(
        "SELECT {CHAT_COLUMNS} FROM chats WHERE {column} = $1 AND peer_id = ANY($2)"
    ))
    .bind(owner_id)
    .bind(plan.peers.iter().map(|p| p.peer_id).collect::<Vec<_>>())
    .fetch_all(&mut **tx)
    .await
    .store_err(OP)?;
    let mut existing: HashMap<i64, Chat> = HashMap::with_capacity(rows.len());
    for row in &rows {
        let chat = read_chat(OP, row)?;
        existing.insert(chat.peer_id, chat);
    }
    let mut chat_ids: HashMap<i64, ChatId> = HashMap::with_capacity(plan.peers.len());
    let mut changed: BTreeSet<ChatId> = BTreeSet::new();
    let mut missing: Vec<&PeerInBatch<'_>> = Vec::new();
    for peer in &plan.peers {
        let Some(chat) = existing.get(&peer.peer_id) else {
            missing.push(peer);
            continue;
        };
        chat_ids.insert(peer.peer_id, chat.id);
        let title = peer.title.unwrap_or(&chat.title);
        if title != chat.title || peer.username != chat.username.as_deref() {
            sqlx::query(
                "UPDATE chats SET title = $1, username = $2, updated_at = $3 WHERE id = $4",
            )
            .bind(title)
            .bind(peer.username)
            .bind(now.0)
            .bind(chat.id.0)
            .execute(&mut **tx)
            .await
            .store_err(OP)?;
            changed.insert(chat.id);
        }
    }
    // New chats start with the batch's counts: none of their messages can be stored yet.
    // A concurrent batch may have created one meanwhile (`xmax <> 0`: updated, not
    // inserted); it is then renamed only, and counted like a known chat below.
    let mut fresh: HashSet<ChatId> = HashSet::with_capacity(missing.len());
    if !missing.is_empty() {
        let rows = sqlx::query(&format!(
            "INSERT INTO chats (workspace_id, {column}, peer_id, peer_kind, title, \
                 username, unread_count, last_message_at, created_at, updated_at) \
             SELECT $1, $2, p.peer_id, p.peer_kind, p.title, p.username, p.inbound, \
                 p.last_at, $3, $3 \
             FROM UNNEST($4::bigint[], $5::text[], $6::text[], $7::text[], $8::integer[], \
                         $9::bigint[]) \
                 AS p(peer_id, peer_kind, title, username, inbound, last_at) \
             ON CONFLICT ({column}, peer_id) DO UPDATE SET \
                 title = CASE WHEN excluded.title <> '' THEN excluded.title \
                              ELSE chats.title END, \
                 username = excluded.username, updated_at = excluded.updated_at \
             RETURNING id, peer_id, xmax = 0 AS created"
        ))
        .bind(workspace)
        .bind(owner_id)
        .bind(now.0)
        .bind(missing.iter().map(|p| p.peer_id).collect::<Vec<_>>())
        .bind(missing.iter().map(|p| p.kind.as_str()).collect::<Vec<_>>())
        .bind(
            missing
                .iter()
                .map(|p| p.title.unwrap_or(""))
                .collect::<Vec<_>>(),
        )
        .bind(missing.iter().map(|p| p.username).collect::<Vec<_>>())
        .bind(missing.iter().map(|p| p.inbound).collect::<Vec<_>>())
        .bind(missing.iter().map(|p| p.last_at).collect::<Vec<_>>())
        .fetch_all(&mut **tx)
        .await
        .store_err(OP)?;
        for row in &rows {
            let id = ChatId(row.try_get("id").store_err(OP)?);
            chat_ids.insert(row.try_get("peer_id").store_err(OP)?, id);
            if row.try_get("created").store_err(OP)? {
                fresh.insert(id);
            }
            changed.insert(id);
        }
    }

    // Messages: only the ones not stored yet come back from RETURNING.
    let n = plan.messages.len();
    let mut columns = MessageColumns::with_capacity(n);
    for m in &plan.messages {
        let chat = chat_ids
            .get(&m.peer_id)
            .copied()
            .ok_or_else(|| StoreError::Backend(format!("{OP}: a chat went missing")))?;
        columns.push(OP, chat, m)?;
    }
    let rows = sqlx::query(&format!(
        "INSERT INTO messages (chat_id, tg_message_id, direction, sender_id, sender_name, \
             text, entities, media, reply_to_tg_id, sent_at, created_at) \
         SELECT m.chat_id, m.tg_message_id, m.direction, m.sender_id, m.sender_name, m.text, \
             m.entities::jsonb, m.media::jsonb, m.reply_to_tg_id, m.sent_at, $1 \
         FROM UNNEST($2::bigint[], $3::bigint[], $4::text[], $5::bigint[], $6::text[], \
                     $7::text[], $8::text[], $9::text[], $10::bigint[], $11::bigint[]) \
             AS m(chat_id, tg_message_id, direction, sender_id, sender_name, text, entities, \
                  media, reply_to_tg_id, sent_at) \
         ON CONFLICT (chat_id, tg_message_id) DO NOTHING \
         RETURNING {MESSAGE_COLUMNS}"
    ))
    .bind(now.0)
    .bind(columns.chat_id)
    .bind(columns.tg_message_id)
    .bind(columns.direction)
    .bind(columns.sender_id)
    .bind(columns.sender_name)
    .bind(columns.text)
    .bind(columns.entities)
    .bind(columns.media)
    .bind(columns.reply_to_tg_id)
    .bind(columns.sent_at)
    .fetch_all(&mut **tx)
    .await
    .store_err(OP)?;
    let mut inserted = rows
        .iter()
        .map(|r| read_message(OP, r))
        .collect::<StoreResult<Vec<_>>>()?;
    inserted.sort_by_key(|m| m.id);

    // Known chats with new messages: unread counts, reopening, last activity.
    let bumps = ChatBump::of(&inserted, &fresh);
    if !bumps.is_empty() {
        sqlx::query(
            "UPDATE chats AS c SET unread_count = c.unread_count + d.inbound, \
                 status = CASE WHEN d.inbound > 0 AND c.status = 'resolved' THEN 'open' \
                               ELSE c.status END, \
                 last_message_at = GREATEST(c.last_message_at, d.last_at), \
                 updated_at = $1 \
             FROM UNNEST($2::bigint[], $3::integer[], $4::bigint[]) AS d(id, inbound, last_at) \
             WHERE c.id = d.id",
        )
        .bind(now.0)
        .bind(bumps.keys().map(|c| c.0).collect::<Vec<_>>())
        .bind(bumps.values().map(|b| b.inbound).collect::<Vec<_>>())
        .bind(bumps.values().map(|b| b.last_at).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await
        .store_err(OP)?;
        changed.extend(bumps.keys().copied());
    }

    let rows = sqlx::query(&format!(
        "SELECT {CHAT_COLUMNS} FROM chats WHERE id = ANY($1) ORDER BY id"
    ))
    .bind(changed.iter().map(|c| c.0).collect::<Vec<_>>())
    .fetch_all(&mut **tx)
    .await
    .store_err(OP)?;
    let chats = rows
        .iter()
        .map(|r| read_chat(OP, r))
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(IngestOutcome { inserted, chats })
}

/// What a batch says about one peer: its kind, and the names of its newest message.
struct PeerInBatch<'a> {
    peer_id: i64,
    kind: PeerKind,
    /// The newest non-empty title; an empty one never overwrites a known title.
    title: Option<&'a str>,
    username: Option<&'a str>,
    /// Inbound messages of the batch (without repeats): a new chat starts with them unread.
    inbound: i32,
    /// The newest `sent_at` of the batch.
    last_at: i64,
}

/// A batch grouped by peer (by peer id), without repeated messages.
struct IngestPlan<'a> {
    peers: Vec<PeerInBatch<'a>>,
    messages: Vec<&'a IncomingMessage>,
}

impl<'a> IngestPlan<'a> {
    fn new(batch: &'a [IncomingMessage]) -> Self {
        let mut peers: Vec<PeerInBatch<'a>> = Vec::new();
        let mut index: HashMap<i64, usize> = HashMap::new();
        let mut seen: HashSet<(i64, i64)> = HashSet::with_capacity(batch.len());
        let mut messages = Vec::with_capacity(batch.len());
        for m in batch {
            let title = Some(m.chat_title.as_str()).filter(|t| !t.is_empty());
            let i = *index.entry(m.peer_id).or_insert_with(|| {
                peers.push(PeerInBatch {
                    peer_id: m.peer_id,
                    kind: m.peer_kind,
                    title: None,
                    username: None,
                    inbound: 0,
                    last_at: i64::MIN,
                });
                peers.len() - 1
            });
            let peer = &mut peers[i];
            peer.title = title.or(peer.title);
            peer.username = m.chat_username.as_deref();
            if seen.insert((m.peer_id, m.tg_message_id)) {
                if m.direction == Direction::In {
                    peer.inbound = peer.inbound.saturating_add(1);
                }
                peer.last_at = peer.last_at.max(m.sent_at.0);
                messages.push(m);
            }
        }
        // Chats are created and renamed in one order, so concurrent batches never deadlock.
        peers.sort_by_key(|p| p.peer_id);
        Self { peers, messages }
    }
}

/// A batch of messages as one array per column, for `UNNEST`.
struct MessageColumns<'a> {
    chat_id: Vec<i64>,
    tg_message_id: Vec<i64>,
    direction: Vec<&'static str>,
    sender_id: Vec<Option<i64>>,
    sender_name: Vec<Option<&'a str>>,
    text: Vec<&'a str>,
    entities: Vec<String>,
    media: Vec<Option<String>>,
    reply_to_tg_id: Vec<Option<i64>>,
    sent_at: Vec<i64>,
}

impl<'a> MessageColumns<'a> {
    fn with_capacity(n: usize) -> Self {
        Self {
            chat_id: Vec::with_capacity(n),
            tg_message_id: Vec::with_capacity(n),
            direction: Vec::with_capacity(n),
            sender_id: Vec::with_capacity(n),
            sender_name: Vec::with_capacity(n),
            text: Vec::with_capacity(n),
            entities: Vec::with_capacity(n),
            media: Vec::with_capacity(n),
            reply_to_tg_id: Vec::with_capacity(n),
            sent_at: Vec::with_capacity(n),
        }
    }

    fn push(&mut self, op: &'static str, chat: ChatId, m: &'a IncomingMessage) -> StoreResult<()> {
        self.chat_id.push(chat.0);
        self.tg_message_id.push(m.tg_message_id);
        self.direction.push(m.direction.as_str());
        self.sender_id.push(m.sender_id);
        self.sender_name.push(m.sender_name.as_deref());
        self.text.push(&m.text);
        self.entities.push(json_text(op, &m.entities)?);
        self.media.push(json_nullable(op, m.media.as_ref())?);
        self.reply_to_tg_id.push(m.reply_to_tg_id);
        self.sent_at.push(m.sent_at.0);
        Ok(())
    }
}

/// How one chat changes with the messages a batch really inserted.
struct ChatBump {
    inbound: i32,
    last_at: i64,
}

impl ChatBump {
    /// The changes to the chats of `inserted`, leaving out the chats in `fresh` (created by
    /// the batch with their counts already set).
    fn of(inserted: &[Message], fresh: &HashSet<ChatId>) -> BTreeMap<ChatId, ChatBump> {
        let mut bumps: BTreeMap<ChatId, ChatBump> = BTreeMap::new();
        for m in inserted.iter().filter(|m| !fresh.contains(&m.chat_id)) {
            let bump = bumps.entry(m.chat_id).or_insert(ChatBump {
                inbound: 0,
                last_at: i64::MIN,
            });
            if m.direction == Direction::In {
                bump.inbound = bump.inbound.saturating_add(1);
            }
            bump.last_at = bump.last_at.max(m.sent_at.0);
        }
        bumps
    }
}

/// The JSON text of a value for a JSON column, U+0000 replaced ([`stored_json`]).
pub(crate) fn json_text<T: serde::Serialize + ?Sized>(
    op: &'static str,
    value: &T,
) -> StoreResult<String> {
    stored_json(value)
        .map_err(|_| StoreError::Backend(format!("{op}: a JSON value is not serialisable")))
}

/// None is stored as SQL `NULL`.
pub(crate) fn json_nullable<T: serde::Serialize>(
    op: &'static str,
    value: Option<&T>,
) -> StoreResult<Option<String>> {
    value.map(|v| json_text(op, v)).transpose()
}

fn read_account(op: &'static str, row: &PgRow) -> StoreResult<Account> {
    let status: String = row.try_get("status").store_err(op)?;
    let flood_wait_until: Option<i64> = row.try_get("flood_wait_until").store_err(op)?;
    Ok(Account {
        id: AccountId(row.try_get("id").store_err(op)?),
        workspace_id: WorkspaceId(row.try_get("workspace_id").store_err(op)?),
        phone: row.try_get("phone").store_err(op)?,
        telegram_user_id: row.try_get("telegram_user_id").store_err(op)?,
        first_name: row.try_get("first_name").store_err(op)?,
        last_name: row.try_get("last_name").store_err(op)?,
        username: row.try_get("username").store_err(op)?,
        status: status
            .parse::<AccountStatus>()
            .map_err(|()| corrupt(op, "accounts.status"))?,
        status_detail: row.try_get("status_detail").store_err(op)?,
        flood_wait_until: flood_wait_until.map(Timestamp),
        active: row.try_get("active").store_err(op)?,
        ingest_groups: row.try_get("ingest_groups").store_err(op)?,
        api_id: row.try_get("api_id").store_err(op)?,
        api_hash_sealed: row.try_get("api_hash_sealed").store_err(op)?,
        created_at: Timestamp(row.try_get("created_at").store_err(op)?),
        updated_at: Timestamp(row.try_get("updated_at").store_err(op)?),
    })
}

fn read_peer(row: &PgRow) -> Result<CachedPeer, sqlx::Error> {
    Ok(CachedPeer {
        peer_id: row.try_get("peer_id")?,
        access_hash: row.try_get("access_hash")?,
        subtype: row.try_get("subtype")?,
    })
}

pub(crate) fn read_chat(op: &'static str, row: &PgRow) -> StoreResult<Chat> {
    let account_id: Option<i64> = row.try_get("account_id").store_err(op)?;
    let bot_id: Option<i64> = row.try_get("bot_id").store_err(op)?;
    let assignee_id: Option<i64> = row.try_get("assignee_id").store_err(op)?;
    let peer_kind: String = row.try_get("peer_kind").store_err(op)?;
    let status: String = row.try_get("status").store_err(op)?;
    let last_message_at: Option<i64> = row.try_get("last_message_at").store_err(op)?;
    Ok(Chat {
        id: ChatId(row.try_get("id").store_err(op)?),
        workspace_id: WorkspaceId(row.try_get("workspace_id").store_err(op)?),
        account_id: account_id.map(AccountId),
        bot_id: bot_id.map(BotId),
        assignee_id: assignee_id.map(UserId),
        peer_id: row.try_get("peer_id").store_err(op)?,
        peer_kind: peer_kind
            .parse::<PeerKind>()
            .map_err(|()| corrupt(op, "chats.peer_kind"))?,
        title: row.try_get("title").store_err(op)?,
        username: row.try_get("username").store_err(op)?,
        status: status
            .parse::<ChatStatus>()
            .map_err(|()| corrupt(op, "chats.status"))?,
        unread_count: row.try_get("unread_count").store_err(op)?,
        last_message_at: last_message_at.map(Timestamp),
        created_at: Timestamp(row.try_get("created_at").store_err(op)?),
    })
}

pub(crate) fn read_message(op: &'static str, row: &PgRow) -> StoreResult<Message> {
    let tg_message_id: Option<i64> = row.try_get("tg_message_id").store_err(op)?;
    let direction: String = row.try_get("direction").store_err(op)?;
    let entities: String = row.try_get("entities").store_err(op)?;
    let media: Option<String> = row.try_get("media").store_err(op)?;
    let edited_at: Option<i64> = row.try_get("edited_at").store_err(op)?;
    let status: String = row.try_get("status").store_err(op)?;
    let author_id: Option<i64> = row.try_get("author_id").store_err(op)?;
    Ok(Message {
        id: MessageId(row.try_get("id").store_err(op)?),
        chat_id: ChatId(row.try_get("chat_id").store_err(op)?),
        tg_message_id,
        direction: direction
            .parse::<Direction>()
            .map_err(|()| corrupt(op, "messages.direction"))?,
        sender_id: row.try_get("sender_id").store_err(op)?,
        sender_name: row.try_get("sender_name").store_err(op)?,
        text: row.try_get("text").store_err(op)?,
        entities: Entity::list_from_stored(&entities),
        media: media.as_deref().and_then(Media::from_stored),
        reply_to_tg_id: row.try_get("reply_to_tg_id").store_err(op)?,
        sent_at: Timestamp(row.try_get("sent_at").store_err(op)?),
        edited_at: edited_at.map(Timestamp),
        deleted: row.try_get("deleted").store_err(op)?,
        status: status
            .parse::<DeliveryStatus>()
            .map_err(|()| corrupt(op, "messages.status"))?,
        error: row.try_get("error").store_err(op)?,
        author_id: author_id.map(UserId),
    })
}

/// Applies an edit to the message `(peer_id, tg_message_id)` of a chat of `owner`: keeps the
/// previous text in the history; an older edit never undoes a newer one.
pub(crate) async fn apply_edit(
    pool: &sqlx::PgPool,
    op: &'static str,
    owner: ChatOwner,
    (peer_id, tg_message_id): (i64, i64),
    new_text: &str,
    entities: &[Entity],
    edited_at: Timestamp,
) -> StoreResult<Option<Message>> {
    let new_text = clean(new_text);
    let entities = json_text(op, entities)?;
    let mut tx = pool.begin().await.store_err(op)?;
    let (owner_col, owner_id) = match owner {
        ChatOwner::Account(a) => ("c.account_id", a.0),
        ChatOwner::Bot(b) => ("c.bot_id", b.0),
    };
    // Locked, so concurrent edits of one message each keep the text they replace.
    let row = sqlx::query(&format!(
        "SELECT {M_MESSAGE_COLUMNS} FROM messages AS m JOIN chats AS c ON c.id = m.chat_id \
         WHERE {owner_col} = $1 AND c.peer_id = $2 AND m.tg_message_id = $3 \
         FOR UPDATE OF m"
    ))
    .bind(owner_id)
    .bind(peer_id)
    .bind(tg_message_id)
    .fetch_optional(&mut *tx)
    .await
    .store_err(op)?;
    let Some(row) = row else {
        return Ok(None);
    };
    let current = read_message(op, &row)?;
    if current.edited_at.is_some_and(|at| at > edited_at) {
        // A replayed, older edit must not undo a newer one.
        return Ok(Some(current));
    }
    if current.text != new_text {
        sqlx::query(
            "INSERT INTO message_edits (message_id, old_text, edited_at) VALUES ($1, $2, $3)",
        )
        .bind(current.id.0)
        .bind(&current.text)
        .bind(edited_at.0)
        .execute(&mut *tx)
        .await
        .store_err(op)?;
    }
    let row = sqlx::query(&format!(
        "UPDATE messages SET text = $1, entities = $2::jsonb, edited_at = $3 WHERE id = $4 \
         RETURNING {MESSAGE_COLUMNS}"
    ))
    .bind(new_text.as_ref())
    .bind(entities)
    .bind(edited_at.0)
    .bind(current.id.0)
    .fetch_one(&mut *tx)
    .await
    .store_err(op)?;
    let message = read_message(op, &row)?;
    tx.commit().await.store_err(op)?;
    Ok(Some(message))
}
