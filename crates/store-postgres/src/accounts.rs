//! The [`AccountStore`] port on PostgreSQL: the accounts themselves and an account's reads of its
//! chats and messages. The port's grammers session data is in [`session_data`](crate::session_data)
//! and its ingestion in [`ingest`](crate::ingest); this impl calls them.

use crate::error::ResultExt;
use crate::rows::{CHAT_COLUMNS, Cols, M_MESSAGE_COLUMNS};
use crate::{PgStore, ingest, session_data};
use async_trait::async_trait;
use switchboard_domain::ErrorCode;
use switchboard_domain::nul::{clean, clean_opt};
use switchboard_domain::rows::{one_row, read_account, read_chat, read_message, read_message_edit};
use switchboard_domain::{
    Account, AccountId, AccountProfile, AccountStatus, AccountStore, CachedPeer, Chat, ChatId,
    DcKey, Entity, IncomingMessage, IngestOutcome, Media, Message, MessageEdit, MessageId,
    NewAccount, PrivatePeer, StoreResult, Timestamp, UpdateState, WorkspaceId,
};

pub(crate) const ACCOUNT_COLUMNS: &str = "id, workspace_id, phone, telegram_user_id, first_name, last_name, \
     username, status, status_detail, flood_wait_until, active, ingest_groups, api_id, \
     api_hash_sealed, created_at, updated_at";

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
        .conflict_as(OP, ErrorCode::AccountExists)?;
        read_account(OP, &Cols(&row))
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
        read_account(OP, &Cols(&row))
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
        read_account(OP, &Cols(&row))
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
        rows.iter().map(|r| read_account(OP, &Cols(r))).collect()
    }

    async fn list_active_accounts(&self) -> StoreResult<Vec<Account>> {
        const OP: &str = "list_active_accounts";
        let rows = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE active ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await
        .store_err(OP)?;
        rows.iter().map(|r| read_account(OP, &Cols(r))).collect()
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
        row.map(|r| read_account(OP, &Cols(&r))).transpose()
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
        .conflict_as("set_account_profile", ErrorCode::AccountExists)?;
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

    // --- Telegram session data (`session_data`) ---

    async fn account_home_dc(&self, id: AccountId) -> StoreResult<Option<i32>> {
        session_data::account_home_dc(self, id).await
    }

    async fn set_account_home_dc(&self, id: AccountId, dc_id: i32) -> StoreResult<()> {
        session_data::set_account_home_dc(self, id, dc_id).await
    }

    async fn list_dc_keys(&self, id: AccountId) -> StoreResult<Vec<DcKey>> {
        session_data::list_dc_keys(self, id).await
    }

    async fn upsert_dc_key(&self, id: AccountId, key: &DcKey) -> StoreResult<()> {
        session_data::upsert_dc_key(self, id, key).await
    }

    async fn get_cached_peer(
        &self,
        id: AccountId,
        peer_id: i64,
    ) -> StoreResult<Option<CachedPeer>> {
        session_data::get_cached_peer(self, id, peer_id).await
    }

    async fn get_self_peer(&self, id: AccountId) -> StoreResult<Option<CachedPeer>> {
        session_data::get_self_peer(self, id).await
    }

    async fn upsert_cached_peers(&self, id: AccountId, peers: &[CachedPeer]) -> StoreResult<()> {
        session_data::upsert_cached_peers(self, id, peers).await
    }

    async fn get_update_state(
        &self,
        id: AccountId,
    ) -> StoreResult<Option<(UpdateState, Vec<(i64, i32)>)>> {
        session_data::get_update_state(self, id).await
    }

    async fn set_update_state(
        &self,
        id: AccountId,
        state: &UpdateState,
        channels: &[(i64, i32)],
    ) -> StoreResult<()> {
        session_data::set_update_state(self, id, state, channels).await
    }

    async fn set_update_primary(
        &self,
        id: AccountId,
        pts: i32,
        date: i32,
        seq: i32,
    ) -> StoreResult<()> {
        session_data::set_update_primary(self, id, pts, date, seq).await
    }

    async fn set_update_qts(&self, id: AccountId, qts: i32) -> StoreResult<()> {
        session_data::set_update_qts(self, id, qts).await
    }

    async fn set_channel_pts(&self, id: AccountId, channel_id: i64, pts: i32) -> StoreResult<()> {
        session_data::set_channel_pts(self, id, channel_id, pts).await
    }

    async fn wipe_account_session(&self, id: AccountId) -> StoreResult<()> {
        session_data::wipe_account_session(self, id).await
    }

    // --- ingestion (`ingest`) ---

    async fn ingest_messages(
        &self,
        account: AccountId,
        batch: &[IncomingMessage],
        now: Timestamp,
    ) -> StoreResult<IngestOutcome> {
        ingest::ingest_messages(self, account, batch, now).await
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
        ingest::apply_message_edit(
            self,
            account,
            peer_id,
            tg_message_id,
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
        ingest::mark_messages_deleted(self, account, peer_id, tg_message_ids).await
    }

    async fn set_message_media(
        &self,
        account: AccountId,
        message: MessageId,
        media: &Media,
    ) -> StoreResult<Option<Message>> {
        ingest::set_message_media(self, account, message, media).await
    }

    // --- an account's chats and messages ---

    async fn open_private_chat(
        &self,
        workspace: WorkspaceId,
        account: AccountId,
        peer: &PrivatePeer,
        now: Timestamp,
    ) -> StoreResult<(Chat, bool)> {
        const OP: &str = "open_private_chat";
        if peer.peer_id <= 0 || !peer.kind.is_private() {
            return Err(switchboard_domain::StoreError::Conflict(
                ErrorCode::ValidationFailed,
            ));
        }
        let title = clean(&peer.title);
        let username = clean_opt(peer.username.as_deref());
        let created = sqlx::query(&format!(
            "INSERT INTO chats (workspace_id, account_id, peer_id, peer_kind, title, username, \
                 created_at, updated_at) \
             SELECT workspace_id, id, $1, $2, $3, $4, $5, $5 FROM accounts \
             WHERE id = $6 AND workspace_id = $7 \
             ON CONFLICT (account_id, peer_id) DO NOTHING RETURNING {CHAT_COLUMNS}"
        ))
        .bind(peer.peer_id)
        .bind(peer.kind.as_str())
        .bind(title.as_ref())
        .bind(username.as_deref())
        .bind(now.0)
        .bind(account.0)
        .bind(workspace.0)
        .fetch_optional(&self.pool)
        .await
        .store_err(OP)?;
        if let Some(row) = created {
            return Ok((read_chat(OP, &Cols(&row))?, true));
        }
        let row = sqlx::query(&format!(
            "SELECT {CHAT_COLUMNS} FROM chats \
             WHERE workspace_id = $1 AND account_id = $2 AND peer_id = $3"
        ))
        .bind(workspace.0)
        .bind(account.0)
        .bind(peer.peer_id)
        .fetch_optional(&self.pool)
        .await
        .store_err(OP)?
        .ok_or(switchboard_domain::StoreError::NotFound)?;
        Ok((read_chat(OP, &Cols(&row))?, false))
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
        rows.iter().map(|r| read_chat(OP, &Cols(r))).collect()
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
        rows.iter().map(|r| read_message(OP, &Cols(r))).collect()
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
            .map(|r| read_message_edit(OP, &Cols(r)))
            .collect()
    }
}
