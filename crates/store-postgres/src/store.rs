//! The SQL of every store operation on PostgreSQL, and the mapping between rows and domain models.

use crate::PgStore;
use crate::error::ResultExt;
use crate::rows::{CHAT_COLUMNS, Cols};
use crate::sql::begin;
use async_trait::async_trait;
use sqlx::Row;
use sqlx::{Postgres, Transaction};
use switchboard_domain::ErrorCode;
use switchboard_domain::rows::{
    one_row, read_audit, read_chat, read_credentials, read_membership, read_user, read_web_session,
    read_workspace,
};
use switchboard_domain::team::{MemberChange, TeamView};
use switchboard_domain::{
    AuditEvent, AuditEventId, Chat, Locale, LoginAttempt, Membership, NewAuditEvent, NewUser,
    NewWebSession, Role, SealedColumn, SealedReplacement, SealedValue, Store, StoreError,
    StoreResult, Timestamp, User, UserCredentials, UserId, Username, WebSession, Workspace,
    WorkspaceId,
};

const USER_COLUMNS: &str = "id, username, display_name, locale, disabled, created_at";
const MEMBERSHIP_COLUMNS: &str = "workspace_id, user_id, role, max_chats, created_at";
const SESSION_COLUMNS: &str = "id, token_hash, csrf_hash, user_id, workspace_id, created_at, \
                               last_seen_at, expires_at, ip, user_agent";
// JSONB travels as text, so the `json` feature of sqlx is not needed.
const AUDIT_COLUMNS: &str =
    "id, workspace_id, actor_user_id, action, target, ip, details::text AS details, created_at";

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .store_err("ping")?;
        Ok(())
    }

    async fn schema_columns(&self) -> StoreResult<Vec<(String, String)>> {
        const OP: &str = "schema_columns";
        let rows = sqlx::query(
            "SELECT table_name::text AS table_name, column_name::text AS column_name \
             FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name <> '_sqlx_migrations'",
        )
        .fetch_all(&self.pool)
        .await
        .store_err(OP)?;
        let mut columns = rows
            .iter()
            .map(|r| Ok((r.try_get("table_name")?, r.try_get("column_name")?)))
            .collect::<Result<Vec<(String, String)>, sqlx::Error>>()
            .store_err(OP)?;
        columns.sort();
        Ok(columns)
    }

    // --- workspaces ---

    async fn create_workspace(&self, name: &str, now: Timestamp) -> StoreResult<Workspace> {
        const OP: &str = "create_workspace";
        let row = sqlx::query(
            "INSERT INTO workspaces (name, created_at) VALUES ($1, $2) \
             RETURNING id, name, created_at",
        )
        .bind(name)
        .bind(now.0)
        .fetch_one(&self.pool)
        .await
        .store_err(OP)?;
        read_workspace(OP, &Cols(&row))
    }

    async fn get_workspace(&self, id: WorkspaceId) -> StoreResult<Workspace> {
        const OP: &str = "get_workspace";
        let row = sqlx::query("SELECT id, name, created_at FROM workspaces WHERE id = $1")
            .bind(id.0)
            .fetch_one(&self.pool)
            .await
            .store_err(OP)?;
        read_workspace(OP, &Cols(&row))
    }

    // --- users ---

    async fn create_user(&self, user: &NewUser, now: Timestamp) -> StoreResult<User> {
        const OP: &str = "create_user";
        let row = sqlx::query(&format!(
            "INSERT INTO users (username, password_hash, display_name, locale, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING {USER_COLUMNS}"
        ))
        .bind(user.username.as_ref().map(Username::as_str))
        .bind(user.password_hash.as_deref())
        .bind(&user.display_name)
        .bind(user.locale.map(Locale::code))
        .bind(now.0)
        .fetch_one(&self.pool)
        .await
        .conflict_as(OP, ErrorCode::UsernameTaken)?;
        read_user(OP, &Cols(&row), "created_at")
    }

    async fn get_user(&self, id: UserId) -> StoreResult<User> {
        const OP: &str = "get_user";
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
            .bind(id.0)
            .fetch_one(&self.pool)
            .await
            .store_err(OP)?;
        read_user(OP, &Cols(&row), "created_at")
    }

    async fn find_credentials(&self, username: &Username) -> StoreResult<Option<UserCredentials>> {
        const OP: &str = "find_credentials";
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS}, password_hash, failed_logins, locked_until \
             FROM users WHERE username = $1"
        ))
        .bind(username.as_str())
        .fetch_optional(&self.pool)
        .await
        .store_err(OP)?;
        let Some(row) = row else {
            return Ok(None);
        };
        read_credentials(OP, &Cols(&row)).map(Some)
    }

    async fn set_password_hash(&self, id: UserId, password_hash: &str) -> StoreResult<()> {
        let done = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(password_hash)
            .bind(id.0)
            .execute(&self.pool)
            .await
            .store_err("set_password_hash")?;
        one_row(done.rows_affected())
    }

    async fn set_user_locale(&self, id: UserId, locale: Option<Locale>) -> StoreResult<()> {
        let done = sqlx::query("UPDATE users SET locale = $1 WHERE id = $2")
            .bind(locale.map(Locale::code))
            .bind(id.0)
            .execute(&self.pool)
            .await
            .store_err("set_user_locale")?;
        one_row(done.rows_affected())
    }

    async fn begin_login_attempt(
        &self,
        id: UserId,
        lock_after: i32,
        now: Timestamp,
        lock_until: Timestamp,
    ) -> StoreResult<LoginAttempt> {
        const OP: &str = "begin_login_attempt";
        // One statement, so parallel attempts are counted one by one. Right-hand sides see
        // the old row; a lock that has run out (`locked_until <= now`) starts the count anew.
        let counted = sqlx::query(
            "UPDATE users SET \
                 failed_logins = CASE WHEN locked_until IS NULL THEN failed_logins + 1 ELSE 1 END, \
                 locked_until = CASE \
                     WHEN (CASE WHEN locked_until IS NULL THEN failed_logins + 1 ELSE 1 END) >= $1 \
                     THEN $2 ELSE NULL END \
             WHERE id = $3 AND (locked_until IS NULL OR locked_until <= $4) \
             RETURNING failed_logins",
        )
        .bind(lock_after)
        .bind(lock_until.0)
        .bind(id.0)
        .bind(now.0)
        .fetch_optional(&self.pool)
        .await
        .store_err(OP)?;
        if let Some(row) = counted {
            return Ok(LoginAttempt::Counted {
                failures: row.try_get("failed_logins").store_err(OP)?,
            });
        }
        let until: Option<Option<i64>> =
            sqlx::query_scalar("SELECT locked_until FROM users WHERE id = $1")
                .bind(id.0)
                .fetch_optional(&self.pool)
                .await
                .store_err(OP)?;
        match until {
            None => Err(StoreError::NotFound),
            // Unlocked in between by a success: the attempt is refused like a locked one for
            // the moment it took; the next one is counted.
            Some(until) => Ok(LoginAttempt::Locked {
                until: Timestamp(until.unwrap_or(now.0)),
            }),
        }
    }

    async fn reset_login_failures(&self, id: UserId) -> StoreResult<()> {
        let done =
            sqlx::query("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = $1")
                .bind(id.0)
                .execute(&self.pool)
                .await
                .store_err("reset_login_failures")?;
        one_row(done.rows_affected())
    }

    // --- memberships ---

    async fn add_membership(
        &self,
        workspace: WorkspaceId,
        user: UserId,
        role: Role,
        max_chats: i32,
        now: Timestamp,
    ) -> StoreResult<Membership> {
        const OP: &str = "add_membership";
        let row = sqlx::query(&format!(
            "INSERT INTO memberships (workspace_id, user_id, role, max_chats, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING {MEMBERSHIP_COLUMNS}"
        ))
        .bind(workspace.0)
        .bind(user.0)
        .bind(role.as_str())
        .bind(max_chats)
        .bind(now.0)
        .fetch_one(&self.pool)
        .await
        .conflict_as(OP, ErrorCode::AlreadyMember)?;
        read_membership(OP, &Cols(&row))
    }

    async fn get_membership(
        &self,
        workspace: WorkspaceId,
        user: UserId,
    ) -> StoreResult<Membership> {
        const OP: &str = "get_membership";
        let row = sqlx::query(&format!(
            "SELECT {MEMBERSHIP_COLUMNS} FROM memberships WHERE workspace_id = $1 AND user_id = $2"
        ))
        .bind(workspace.0)
        .bind(user.0)
        .fetch_one(&self.pool)
        .await
        .store_err(OP)?;
        read_membership(OP, &Cols(&row))
    }

    async fn list_user_memberships(&self, user: UserId) -> StoreResult<Vec<Membership>> {
        const OP: &str = "list_user_memberships";
        let rows = sqlx::query(&format!(
            "SELECT {MEMBERSHIP_COLUMNS} FROM memberships WHERE user_id = $1 \
             ORDER BY created_at, workspace_id"
        ))
        .bind(user.0)
        .fetch_all(&self.pool)
        .await
        .store_err(OP)?;
        rows.iter().map(|r| read_membership(OP, &Cols(r))).collect()
    }

    async fn list_members(&self, workspace: WorkspaceId) -> StoreResult<Vec<(Membership, User)>> {
        const OP: &str = "list_members";
        let rows = sqlx::query(
            "SELECT m.workspace_id, m.user_id, m.role, m.max_chats, m.created_at, \
                    u.id, u.username, u.display_name, u.locale, u.disabled, \
                    u.created_at AS user_created_at \
             FROM memberships AS m JOIN users AS u ON u.id = m.user_id \
             WHERE m.workspace_id = $1 ORDER BY m.user_id",
        )
        .bind(workspace.0)
        .fetch_all(&self.pool)
        .await
        .store_err(OP)?;
        rows.iter()
            .map(|r| {
                Ok((
                    read_membership(OP, &Cols(r))?,
                    read_user(OP, &Cols(r), "user_created_at")?,
                ))
            })
            .collect()
    }

    async fn update_membership(
        &self,
        workspace: WorkspaceId,
        actor: UserId,
        user: UserId,
        change: MemberChange,
    ) -> StoreResult<Membership> {
        const OP: &str = "update_membership";
        let mut tx = begin(&self.pool, OP).await?;
        let (role, max_chats) = team_view(&mut tx, OP, workspace, actor, user)
            .await?
            .check_update(&change)?;
        let row = sqlx::query(&format!(
            "UPDATE memberships SET role = $1, max_chats = $2 \
             WHERE workspace_id = $3 AND user_id = $4 RETURNING {MEMBERSHIP_COLUMNS}"
        ))
        .bind(role.as_str())
        .bind(max_chats)
        .bind(workspace.0)
        .bind(user.0)
        .fetch_one(&mut *tx)
        .await
        .store_err(OP)?;
        let membership = read_membership(OP, &Cols(&row))?;
        tx.commit().await.store_err(OP)?;
        Ok(membership)
    }

    async fn remove_membership(
        &self,
        workspace: WorkspaceId,
        actor: UserId,
        user: UserId,
        now: Timestamp,
    ) -> StoreResult<Vec<Chat>> {
        const OP: &str = "remove_membership";
        let mut tx = begin(&self.pool, OP).await?;
        team_view(&mut tx, OP, workspace, actor, user)
            .await?
            .check_removal()?;
        let done = sqlx::query("DELETE FROM memberships WHERE workspace_id = $1 AND user_id = $2")
            .bind(workspace.0)
            .bind(user.0)
            .execute(&mut *tx)
            .await
            .store_err(OP)?;
        one_row(done.rows_affected())?;
        let chats = release_chats(&mut tx, OP, workspace, user, now).await?;
        tx.commit().await.store_err(OP)?;
        Ok(chats)
    }

    // --- web sessions ---

    async fn create_web_session(&self, session: &NewWebSession) -> StoreResult<WebSession> {
        insert_web_session(&self.pool, session, "create_web_session").await
    }

    async fn find_web_session(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> StoreResult<Option<WebSession>> {
        const OP: &str = "find_web_session";
        let row = sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS} FROM web_sessions WHERE token_hash = $1 AND expires_at > $2"
        ))
        .bind(token_hash)
        .bind(now.0)
        .fetch_optional(&self.pool)
        .await
        .store_err(OP)?;
        row.map(|r| read_web_session(OP, &Cols(&r))).transpose()
    }

    async fn touch_web_session(
        &self,
        token_hash: &str,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> StoreResult<()> {
        // An expired session stays expired: touching it is `NotFound`, like finding it.
        let done = sqlx::query(
            "UPDATE web_sessions SET last_seen_at = $1, expires_at = $2 \
             WHERE token_hash = $3 AND expires_at > $1",
        )
        .bind(now.0)
        .bind(expires_at.0)
        .bind(token_hash)
        .execute(&self.pool)
        .await
        .store_err("touch_web_session")?;
        one_row(done.rows_affected())
    }

    async fn delete_web_session(&self, token_hash: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM web_sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await
            .store_err("delete_web_session")?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_user_web_sessions(&self, user: UserId) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM web_sessions WHERE user_id = $1")
            .bind(user.0)
            .execute(&self.pool)
            .await
            .store_err("delete_user_web_sessions")?;
        Ok(done.rows_affected())
    }

    async fn purge_expired_web_sessions(&self, now: Timestamp) -> StoreResult<u64> {
        // `<=` mirrors `find_web_session`: a session is valid while `expires_at > now`.
        let done = sqlx::query("DELETE FROM web_sessions WHERE expires_at <= $1")
            .bind(now.0)
            .execute(&self.pool)
            .await
            .store_err("purge_expired_web_sessions")?;
        Ok(done.rows_affected())
    }

    // --- audit ---

    async fn append_audit(&self, event: &NewAuditEvent) -> StoreResult<AuditEvent> {
        insert_audit(&self.pool, event, "append_audit").await
    }

    async fn list_audit(
        &self,
        workspace: WorkspaceId,
        before: Option<AuditEventId>,
        limit: u32,
    ) -> StoreResult<Vec<AuditEvent>> {
        const OP: &str = "list_audit";
        let rows = sqlx::query(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_events \
             WHERE workspace_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3"
        ))
        .bind(workspace.0)
        .bind(before.map_or(i64::MAX, |b| b.0))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .store_err(OP)?;
        rows.iter().map(|r| read_audit(OP, &Cols(r))).collect()
    }

    async fn list_audit_for_target(
        &self,
        target: &str,
        limit: u32,
    ) -> StoreResult<Vec<AuditEvent>> {
        const OP: &str = "list_audit_for_target";
        let rows = sqlx::query(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_events WHERE target = $1 ORDER BY id DESC LIMIT $2"
        ))
        .bind(target)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .store_err(OP)?;
        rows.iter().map(|r| read_audit(OP, &Cols(r))).collect()
    }
    async fn purge_audit_before(&self, before: Timestamp) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM audit_events WHERE created_at < $1")
            .bind(before.0)
            .execute(&self.pool)
            .await
            .store_err("purge_audit_before")?;
        Ok(done.rows_affected())
    }

    // --- secrets at rest (key rotation) ---

    async fn sealed_values(&self, column: &SealedColumn) -> StoreResult<Vec<SealedValue>> {
        const OP: &str = "sealed_values";
        let (table, sealed) = column.checked(OP)?;
        let keys = column.key.join(", ");
        let selected: Vec<String> = column
            .key
            .iter()
            .map(|k| format!("CAST({k} AS BIGINT) AS {k}"))
            .collect();
        let sql = format!(
            "SELECT {}, {sealed} FROM {table} WHERE {sealed} IS NOT NULL ORDER BY {keys}",
            selected.join(", ")
        );
        let rows = sqlx::query(&sql)
            .fetch_all(&self.pool)
            .await
            .store_err(OP)?;
        rows.iter()
            .map(|r| {
                Ok(SealedValue {
                    row: column
                        .key
                        .iter()
                        .map(|k| r.try_get::<i64, _>(*k))
                        .collect::<Result<_, _>>()?,
                    bytes: r.try_get(sealed)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .store_err(OP)
    }

    async fn replace_sealed_values(
        &self,
        column: &SealedColumn,
        values: &[SealedReplacement],
    ) -> StoreResult<u64> {
        const OP: &str = "replace_sealed_values";
        let (table, sealed) = column.checked(OP)?;
        let row_matches: Vec<String> = column
            .key
            .iter()
            .enumerate()
            .map(|(i, k)| format!("{k} = ${}", i + 3))
            .collect();
        let sql = format!(
            "UPDATE {table} SET {sealed} = $1 WHERE {sealed} = $2 AND {}",
            row_matches.join(" AND ")
        );
        let mut tx = begin(&self.pool, OP).await?;
        let mut replaced = 0;
        for value in values {
            let mut query = sqlx::query(&sql).bind(&value.new).bind(&value.old);
            for k in column.row_key(OP, value)? {
                query = query.bind(*k);
            }
            replaced += query.execute(&mut *tx).await.store_err(OP)?.rows_affected();
        }
        tx.commit().await.store_err(OP)?;
        Ok(replaced)
    }
}

/// The memberships a team change is checked against, read in its transaction after locking
/// the workspace's row: team changes of one workspace happen one at a time, so two changes
/// cannot each count the other's owner (`FOR NO KEY UPDATE` does not block rows that only
/// refer to the workspace).
pub(crate) async fn team_view(
    tx: &mut Transaction<'static, Postgres>,
    op: &'static str,
    workspace: WorkspaceId,
    actor: UserId,
    member: UserId,
) -> StoreResult<TeamView> {
    sqlx::query("SELECT id FROM workspaces WHERE id = $1 FOR NO KEY UPDATE")
        .bind(workspace.0)
        .execute(&mut **tx)
        .await
        .store_err(op)?;
    let rows = sqlx::query(&format!(
        "SELECT {MEMBERSHIP_COLUMNS} FROM memberships \
         WHERE workspace_id = $1 AND (user_id IN ($2, $3) OR role = 'owner')"
    ))
    .bind(workspace.0)
    .bind(actor.0)
    .bind(member.0)
    .fetch_all(&mut **tx)
    .await
    .store_err(op)?;
    let rows = rows
        .iter()
        .map(|r| read_membership(op, &Cols(r)))
        .collect::<StoreResult<Vec<_>>>()?;
    TeamView::of(&rows, actor, member)
}

/// Returns the chats of `workspace` assigned to `user` to the queue (a member leaving), in
/// `tx`; gives them back by id.
pub(crate) async fn release_chats(
    tx: &mut Transaction<'static, Postgres>,
    op: &'static str,
    workspace: WorkspaceId,
    user: UserId,
    now: Timestamp,
) -> StoreResult<Vec<Chat>> {
    let rows = sqlx::query(&format!(
        "UPDATE chats SET assignee_id = NULL, updated_at = $3 \
         WHERE workspace_id = $1 AND assignee_id = $2 RETURNING {CHAT_COLUMNS}"
    ))
    .bind(workspace.0)
    .bind(user.0)
    .bind(now.0)
    .fetch_all(&mut **tx)
    .await
    .store_err(op)?;
    let mut chats = rows
        .iter()
        .map(|r| read_chat(op, &Cols(r)))
        .collect::<StoreResult<Vec<Chat>>>()?;
    chats.sort_by_key(|c| c.id);
    Ok(chats)
}

/// Inserts a web session (on the pool or in a transaction).
pub(crate) async fn insert_web_session<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    session: &NewWebSession,
    op: &'static str,
) -> StoreResult<WebSession> {
    let row = sqlx::query(&format!(
        "INSERT INTO web_sessions (token_hash, csrf_hash, user_id, workspace_id, created_at, \
             last_seen_at, expires_at, ip, user_agent) \
         VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8) RETURNING {SESSION_COLUMNS}"
    ))
    .bind(&session.token_hash)
    .bind(&session.csrf_hash)
    .bind(session.user_id.0)
    .bind(session.workspace_id.0)
    .bind(session.created_at.0)
    .bind(session.expires_at.0)
    .bind(session.ip.as_deref())
    .bind(session.user_agent.as_deref())
    .fetch_one(ex)
    .await
    .conflict_as(op, ErrorCode::SessionExists)?;
    read_web_session(op, &Cols(&row))
}

/// Appends an audit event (on the pool or in a transaction).
pub(crate) async fn insert_audit<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    event: &NewAuditEvent,
    op: &'static str,
) -> StoreResult<AuditEvent> {
    let details = serde_json::to_string(&event.details)
        .map_err(|_| StoreError::Backend(format!("{op}: details are not serialisable")))?;
    let row = sqlx::query(&format!(
        "INSERT INTO audit_events (workspace_id, actor_user_id, action, target, ip, details, \
             created_at) \
         VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7) RETURNING {AUDIT_COLUMNS}"
    ))
    .bind(event.workspace_id.map(|w| w.0))
    .bind(event.actor_user_id.map(|u| u.0))
    .bind(&event.action)
    .bind(event.target.as_deref())
    .bind(event.ip.as_deref())
    .bind(details)
    .bind(event.created_at.0)
    .fetch_one(ex)
    .await
    .store_err(op)?;
    read_audit(op, &Cols(&row))
}
