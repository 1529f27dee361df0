//! The SQL of the [`SigninStore`] port on PostgreSQL: self-service users by phone, one-time codes
//! (their attempts counted by one `UPDATE … RETURNING`, so parallel checks cannot pass the
//! limit), trusted devices, the service bot's nonces and links, invites and installation
//! settings. Under `READ COMMITTED` an `UPDATE` that waits for another
//! re-checks its `WHERE` on the row as committed, which is what keeps the attempt count exact.

use crate::PgStore;
use crate::error::ResultExt;
use crate::rows::Cols;
use crate::sql::begin;
use crate::store::{insert_audit, insert_web_session};
use async_trait::async_trait;
use switchboard_domain::rows::{read_membership, read_user, read_workspace};
use switchboard_domain::{
    BOT_LINK_COLUMNS, BotId, BotLink, CodeRedemption, ErrorCode, INVITE_COLUMNS, Invite, Locale,
    Membership, NewAuditEvent, NewBotNonce, NewInvite, NewSigninCode, NewSigninUser,
    NewTrustedDevice, PHONE_USER_COLUMNS, PhoneUser, Redemption, Role, SigninCodeId, SigninPurge,
    SigninStore, StoreError, StoreResult, TRUSTED_DEVICE_COLUMNS, Timestamp, TrustedDevice,
    TrustedDeviceId, User, UserId, Workspace, WorkspaceId, hashes_equal, read_bot_link,
    read_code_attempt, read_invite, read_phone_user, read_trusted_device,
};

/// Chats the owner of a new personal workspace may hold at once.
const OWNER_MAX_CHATS: i32 = 50;

#[async_trait]
impl SigninStore for PgStore {
    async fn main_workspace(&self) -> StoreResult<Option<WorkspaceId>> {
        const OP: &str = "main_workspace";
        let id: Option<i64> = sqlx::query_scalar("SELECT min(id) FROM workspaces")
            .fetch_one(&self.pool)
            .await
            .store_err(OP)?;
        Ok(id.map(WorkspaceId))
    }

    async fn find_user_by_phone(&self, phone: &str) -> StoreResult<Option<PhoneUser>> {
        const OP: &str = "find_user_by_phone";
        let row = sqlx::query(&format!(
            "SELECT {PHONE_USER_COLUMNS} FROM users WHERE phone = $1"
        ))
        .bind(phone)
        .fetch_optional(&self.pool)
        .await
        .store_err(OP)?;
        row.map(|r| read_phone_user(OP, &Cols(&r))).transpose()
    }

    async fn find_user_by_telegram_id(
        &self,
        telegram_user_id: i64,
    ) -> StoreResult<Option<PhoneUser>> {
        const OP: &str = "find_user_by_telegram_id";
        let row = sqlx::query(&format!(
            "SELECT {PHONE_USER_COLUMNS} FROM users WHERE telegram_user_id = $1 \
             ORDER BY id LIMIT 1"
        ))
        .bind(telegram_user_id)
        .fetch_optional(&self.pool)
        .await
        .store_err(OP)?;
        row.map(|r| read_phone_user(OP, &Cols(&r))).transpose()
    }

    async fn create_signin_user(
        &self,
        user: &NewSigninUser,
        now: Timestamp,
    ) -> StoreResult<(User, Workspace, Membership)> {
        const OP: &str = "create_signin_user";
        let mut tx = begin(&self.pool, OP).await?;
        let taken: Option<i64> =
            sqlx::query_scalar("SELECT id FROM users WHERE telegram_user_id = $1 OR phone = $2")
                .bind(user.telegram_user_id)
                .bind(&user.phone)
                .fetch_optional(&mut *tx)
                .await
                .store_err(OP)?;
        if taken.is_some() {
            return Err(StoreError::Conflict(ErrorCode::PhoneTaken));
        }
        let row = sqlx::query(
            "INSERT INTO users (display_name, locale, phone, telegram_user_id, created_at) \
             VALUES ($1, $2, $3, $4, $5) \
             RETURNING id, username, display_name, locale, disabled, created_at",
        )
        .bind(&user.display_name)
        .bind(user.locale.map(Locale::code))
        .bind(&user.phone)
        .bind(user.telegram_user_id)
        .bind(now.0)
        .fetch_one(&mut *tx)
        .await
        .conflict_as(OP, ErrorCode::PhoneTaken)?;
        let created = read_user(OP, &Cols(&row), "created_at")?;
        let row = sqlx::query(
            "INSERT INTO workspaces (name, created_at) VALUES ($1, $2) \
             RETURNING id, name, created_at",
        )
        .bind(&user.workspace_name)
        .bind(now.0)
        .fetch_one(&mut *tx)
        .await
        .store_err(OP)?;
        let workspace = read_workspace(OP, &Cols(&row))?;
        let row = sqlx::query(
            "INSERT INTO memberships (workspace_id, user_id, role, max_chats, created_at) \
             VALUES ($1, $2, $3, $4, $5) \
             RETURNING workspace_id, user_id, role, max_chats, created_at",
        )
        .bind(workspace.id.0)
        .bind(created.id.0)
        .bind(Role::Owner.as_str())
        .bind(OWNER_MAX_CHATS)
        .bind(now.0)
        .fetch_one(&mut *tx)
        .await
        .store_err(OP)?;
        let membership = read_membership(OP, &Cols(&row))?;
        if let Some(hash) = &user.invite_hash {
            let used = sqlx::query(
                "UPDATE signin_invites SET used_at = $3, used_by = $2 \
                 WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $3",
            )
            .bind(hash)
            .bind(created.id.0)
            .bind(now.0)
            .execute(&mut *tx)
            .await
            .store_err(OP)?;
            if used.rows_affected() != 1 {
                return Err(StoreError::Conflict(ErrorCode::InviteRequired));
            }
        }
        tx.commit().await.store_err(OP)?;
        Ok((created, workspace, membership))
    }

    async fn create_signin_code(
        &self,
        code: &NewSigninCode,
        audit: &NewAuditEvent,
    ) -> StoreResult<SigninCodeId> {
        const OP: &str = "create_signin_code";
        let mut tx = begin(&self.pool, OP).await?;
        sqlx::query("UPDATE signin_codes SET used_at = $2 WHERE user_id = $1 AND used_at IS NULL")
            .bind(code.user_id.0)
            .bind(code.created_at.0)
            .execute(&mut *tx)
            .await
            .store_err(OP)?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO signin_codes (user_id, code_hash, created_at, expires_at, ip) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(code.user_id.0)
        .bind(&code.code_hash)
        .bind(code.created_at.0)
        .bind(code.expires_at.0)
        .bind(code.ip.as_deref())
        .fetch_one(&mut *tx)
        .await
        .store_err(OP)?;
        insert_audit(&mut *tx, audit, OP).await?;
        tx.commit().await.store_err(OP)?;
        Ok(SigninCodeId(id))
    }

    async fn redeem_signin_code(&self, r: &CodeRedemption<'_>) -> StoreResult<Redemption> {
        const OP: &str = "redeem_signin_code";
        let mut tx = begin(&self.pool, OP).await?;
        // The row stays locked until the commit: a parallel check of the same code waits,
        // then finds it used (or counts its own attempt).
        let row = sqlx::query(
            "UPDATE signin_codes SET attempts = attempts + 1 \
             WHERE id = (SELECT id FROM signin_codes WHERE user_id = $1 ORDER BY id DESC LIMIT 1) \
               AND used_at IS NULL AND expires_at > $2 AND attempts < $3 \
             RETURNING id, code_hash, attempts",
        )
        .bind(r.user.0)
        .bind(r.now.0)
        .bind(r.max_attempts)
        .fetch_optional(&mut *tx)
        .await
        .store_err(OP)?;
        let Some(row) = row else {
            return Ok(Redemption::NoLiveCode);
        };
        let attempt = read_code_attempt(OP, &Cols(&row))?;
        if !hashes_equal(r.presented_hash, &attempt.code_hash) {
            tx.commit().await.store_err(OP)?;
            return Ok(Redemption::Mismatch {
                attempts: attempt.attempts,
            });
        }
        sqlx::query("UPDATE signin_codes SET used_at = $2 WHERE id = $1")
            .bind(attempt.id.0)
            .bind(r.now.0)
            .execute(&mut *tx)
            .await
            .store_err(OP)?;
        let session = match r.session {
            Some(session) => Some(insert_web_session(&mut *tx, session, OP).await?),
            None => None,
        };
        if let Some(device) = r.device {
            insert_trusted_device(&mut *tx, device, OP).await?;
        }
        insert_audit(&mut *tx, r.audit, OP).await?;
        tx.commit().await.store_err(OP)?;
        Ok(Redemption::Redeemed { session })
    }

    async fn create_trusted_device(&self, device: &NewTrustedDevice) -> StoreResult<TrustedDevice> {
        insert_trusted_device(&self.pool, device, "create_trusted_device").await
    }

    async fn use_trusted_device(
        &self,
        user: UserId,
        token_hash: &str,
        now: Timestamp,
    ) -> StoreResult<Option<TrustedDevice>> {
        const OP: &str = "use_trusted_device";
        let row = sqlx::query(&format!(
            "UPDATE trusted_devices SET last_used_at = $3 \
             WHERE user_id = $1 AND token_hash = $2 AND expires_at > $3 \
             RETURNING {TRUSTED_DEVICE_COLUMNS}"
        ))
        .bind(user.0)
        .bind(token_hash)
        .bind(now.0)
        .fetch_optional(&self.pool)
        .await
        .store_err(OP)?;
        row.map(|r| read_trusted_device(OP, &Cols(&r))).transpose()
    }

    async fn list_trusted_devices(
        &self,
        user: UserId,
        now: Timestamp,
    ) -> StoreResult<Vec<TrustedDevice>> {
        const OP: &str = "list_trusted_devices";
        let rows = sqlx::query(&format!(
            "SELECT {TRUSTED_DEVICE_COLUMNS} FROM trusted_devices \
             WHERE user_id = $1 AND expires_at > $2 ORDER BY id DESC"
        ))
        .bind(user.0)
        .bind(now.0)
        .fetch_all(&self.pool)
        .await
        .store_err(OP)?;
        rows.iter()
            .map(|r| read_trusted_device(OP, &Cols(r)))
            .collect()
    }

    async fn delete_trusted_device(&self, user: UserId, id: TrustedDeviceId) -> StoreResult<bool> {
        const OP: &str = "delete_trusted_device";
        let done = sqlx::query("DELETE FROM trusted_devices WHERE id = $1 AND user_id = $2")
            .bind(id.0)
            .bind(user.0)
            .execute(&self.pool)
            .await
            .store_err(OP)?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_user_trusted_devices(&self, user: UserId) -> StoreResult<u64> {
        const OP: &str = "delete_user_trusted_devices";
        let done = sqlx::query("DELETE FROM trusted_devices WHERE user_id = $1")
            .bind(user.0)
            .execute(&self.pool)
            .await
            .store_err(OP)?;
        Ok(done.rows_affected())
    }

    async fn create_bot_nonce(&self, nonce: &NewBotNonce) -> StoreResult<()> {
        const OP: &str = "create_bot_nonce";
        sqlx::query(
            "INSERT INTO signin_bot_nonces (nonce_hash, user_id, bot_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&nonce.nonce_hash)
        .bind(nonce.user_id.0)
        .bind(nonce.bot_id.0)
        .bind(nonce.created_at.0)
        .bind(nonce.expires_at.0)
        .execute(&self.pool)
        .await
        .store_err(OP)?;
        Ok(())
    }

    async fn claim_bot_nonce(
        &self,
        nonce_hash: &str,
        bot: BotId,
        now: Timestamp,
    ) -> StoreResult<Option<UserId>> {
        const OP: &str = "claim_bot_nonce";
        let user: Option<i64> = sqlx::query_scalar(
            "UPDATE signin_bot_nonces SET used_at = $3 \
             WHERE nonce_hash = $1 AND bot_id = $2 AND used_at IS NULL AND expires_at > $3 \
             RETURNING user_id",
        )
        .bind(nonce_hash)
        .bind(bot.0)
        .bind(now.0)
        .fetch_optional(&self.pool)
        .await
        .store_err(OP)?;
        Ok(user.map(UserId))
    }

    async fn set_bot_link(&self, link: &BotLink) -> StoreResult<()> {
        const OP: &str = "set_bot_link";
        sqlx::query(
            "INSERT INTO signin_bot_links (user_id, bot_id, chat_id, telegram_user_id, locale, \
                 bound_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (user_id) DO UPDATE SET bot_id = excluded.bot_id, \
                 chat_id = excluded.chat_id, telegram_user_id = excluded.telegram_user_id, \
                 locale = excluded.locale, bound_at = excluded.bound_at",
        )
        .bind(link.user_id.0)
        .bind(link.bot_id.0)
        .bind(link.chat_id)
        .bind(link.telegram_user_id)
        .bind(link.locale.map(Locale::code))
        .bind(link.bound_at.0)
        .execute(&self.pool)
        .await
        .store_err(OP)?;
        Ok(())
    }

    async fn get_bot_link(&self, user: UserId) -> StoreResult<Option<BotLink>> {
        const OP: &str = "get_bot_link";
        let row = sqlx::query(&format!(
            "SELECT {BOT_LINK_COLUMNS} FROM signin_bot_links WHERE user_id = $1"
        ))
        .bind(user.0)
        .fetch_optional(&self.pool)
        .await
        .store_err(OP)?;
        row.map(|r| read_bot_link(OP, &Cols(&r))).transpose()
    }

    async fn delete_bot_link(&self, user: UserId) -> StoreResult<bool> {
        const OP: &str = "delete_bot_link";
        let done = sqlx::query("DELETE FROM signin_bot_links WHERE user_id = $1")
            .bind(user.0)
            .execute(&self.pool)
            .await
            .store_err(OP)?;
        Ok(done.rows_affected() == 1)
    }

    async fn create_invite(&self, invite: &NewInvite) -> StoreResult<Invite> {
        const OP: &str = "create_invite";
        let row = sqlx::query(&format!(
            "INSERT INTO signin_invites (token_hash, created_by, created_at, expires_at) \
             VALUES ($1, $2, $3, $4) RETURNING {INVITE_COLUMNS}"
        ))
        .bind(&invite.token_hash)
        .bind(invite.created_by.0)
        .bind(invite.created_at.0)
        .bind(invite.expires_at.0)
        .fetch_one(&self.pool)
        .await
        .store_err(OP)?;
        read_invite(OP, &Cols(&row))
    }

    async fn invite_is_valid(&self, token_hash: &str, now: Timestamp) -> StoreResult<bool> {
        const OP: &str = "invite_is_valid";
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM signin_invites \
             WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
        )
        .bind(token_hash)
        .bind(now.0)
        .fetch_optional(&self.pool)
        .await
        .store_err(OP)?;
        Ok(found.is_some())
    }

    async fn get_setting(&self, name: &str) -> StoreResult<Option<String>> {
        const OP: &str = "get_setting";
        sqlx::query_scalar("SELECT value FROM installation_settings WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .store_err(OP)
    }

    async fn set_setting(
        &self,
        name: &str,
        value: Option<&str>,
        by: Option<UserId>,
        now: Timestamp,
    ) -> StoreResult<()> {
        const OP: &str = "set_setting";
        match value {
            Some(value) => sqlx::query(
                "INSERT INTO installation_settings (name, value, updated_at, updated_by) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO UPDATE SET \
                 value = excluded.value, updated_at = excluded.updated_at, \
                 updated_by = excluded.updated_by",
            )
            .bind(name)
            .bind(value)
            .bind(now.0)
            .bind(by.map(|u| u.0))
            .execute(&self.pool)
            .await
            .store_err(OP)?,
            None => sqlx::query("DELETE FROM installation_settings WHERE name = $1")
                .bind(name)
                .execute(&self.pool)
                .await
                .store_err(OP)?,
        };
        Ok(())
    }

    async fn purge_signin(&self, now: Timestamp) -> StoreResult<SigninPurge> {
        const OP: &str = "purge_signin";
        let mut out = SigninPurge::default();
        for (table, slot) in [
            ("signin_codes", &mut out.codes),
            ("trusted_devices", &mut out.devices),
            ("signin_bot_nonces", &mut out.nonces),
        ] {
            *slot = sqlx::query(&format!("DELETE FROM {table} WHERE expires_at <= $1"))
                .bind(now.0)
                .execute(&self.pool)
                .await
                .store_err(OP)?
                .rows_affected();
        }
        Ok(out)
    }
}

/// Remembers a browser (on the pool or in a transaction).
async fn insert_trusted_device<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    device: &NewTrustedDevice,
    op: &'static str,
) -> StoreResult<TrustedDevice> {
    let row = sqlx::query(&format!(
        "INSERT INTO trusted_devices (user_id, token_hash, created_at, last_used_at, \
             expires_at, user_agent, ip) VALUES ($1, $2, $3, $3, $4, $5, $6) \
         RETURNING {TRUSTED_DEVICE_COLUMNS}"
    ))
    .bind(device.user_id.0)
    .bind(&device.token_hash)
    .bind(device.created_at.0)
    .bind(device.expires_at.0)
    .bind(device.user_agent.as_deref())
    .bind(device.ip.as_deref())
    .fetch_one(ex)
    .await
    .store_err(op)?;
    read_trusted_device(op, &Cols(&row))
}
