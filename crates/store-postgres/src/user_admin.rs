//! The SQL of the [`UserAdminStore`] port on PostgreSQL: the members of a workspace with their
//! Telegram identity, last sign-in, personal workspaces and accounts, and deleting a user. The
//! rules are `switchboard_domain::user_admin`'s, checked against the rows read here (a deletion
//! inside its transaction, under the lock `team_view` takes).

use crate::PgStore;
use crate::accounts::ACCOUNT_COLUMNS;
use crate::error::ResultExt;
use crate::rows::Cols;
use crate::sql::begin;
use crate::store::{release_chats, team_view};
use async_trait::async_trait;
use sqlx::{PgConnection, Postgres, Transaction};
use switchboard_domain::rows::read_account;
use switchboard_domain::user_admin::{
    self, ActorView, DeletedUser, ManagedUser, MemberRow, OtherWorkspace, SIGN_IN_ACTIONS,
    UserAction, UserTarget, read_member_row, read_other_workspace,
};
use switchboard_domain::{
    Account, ErrorCode, Role, Store, StoreError, StoreResult, Timestamp, UserAdminStore, UserId,
    WorkspaceId,
};

/// The users the admins of `$1` manage (only `$2` when it is not NULL) as [`MemberRow`]s: its
/// members and, when `$1` is the main workspace (the first one), the self-service users (a
/// phone, and only workspaces of their own).
fn members_sql() -> String {
    let actions = SIGN_IN_ACTIONS
        .iter()
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let last = format!(
        "(SELECT max(e.created_at) FROM audit_events AS e \
          WHERE e.actor_user_id = u.id AND e.action IN ({actions})) AS last_sign_in_at"
    );
    format!(
        "SELECT m.workspace_id, m.user_id, m.role, m.max_chats, m.created_at, \
                u.id, u.username, u.display_name, u.locale, u.disabled, \
                u.created_at AS user_created_at, u.phone, u.telegram_user_id, {last} \
         FROM memberships AS m JOIN users AS u ON u.id = m.user_id \
         WHERE m.workspace_id = $1 AND ($2::BIGINT IS NULL OR m.user_id = $2) \
         UNION ALL \
         SELECT NULL::BIGINT, u.id, NULL::TEXT, NULL::INTEGER, NULL::BIGINT, \
                u.id, u.username, u.display_name, u.locale, u.disabled, \
                u.created_at, u.phone, u.telegram_user_id, {last} \
         FROM users AS u \
         WHERE $1 = (SELECT min(id) FROM workspaces) AND ($2::BIGINT IS NULL OR u.id = $2) \
           AND u.phone IS NOT NULL \
           AND EXISTS (SELECT 1 FROM memberships AS m WHERE m.user_id = u.id) \
           AND NOT EXISTS (SELECT 1 FROM memberships AS m \
               JOIN memberships AS o ON o.workspace_id = m.workspace_id AND o.user_id <> m.user_id \
               WHERE m.user_id = u.id) \
         ORDER BY id"
    )
}

/// The other workspaces (not `$1`) of the users in the array `$2`, with member counts.
const OTHERS_SQL: &str = "SELECT m.user_id, m.workspace_id, \
         (SELECT count(*) FROM memberships AS o WHERE o.workspace_id = m.workspace_id) AS members \
     FROM memberships AS m \
     WHERE m.workspace_id <> $1 AND m.user_id = ANY($2) \
     ORDER BY m.user_id, m.workspace_id";

async fn read_members(
    conn: &mut PgConnection,
    op: &'static str,
    workspace: WorkspaceId,
    user: Option<UserId>,
) -> StoreResult<(Vec<MemberRow>, Vec<OtherWorkspace>, Vec<Account>)> {
    let rows = sqlx::query(&members_sql())
        .bind(workspace.0)
        .bind(user.map(|u| u.0))
        .fetch_all(&mut *conn)
        .await
        .store_err(op)?;
    let members = rows
        .iter()
        .map(|r| read_member_row(op, &Cols(r)))
        .collect::<StoreResult<Vec<_>>>()?;
    let rows = sqlx::query(OTHERS_SQL)
        .bind(workspace.0)
        .bind(members.iter().map(|m| m.user.id.0).collect::<Vec<i64>>())
        .fetch_all(&mut *conn)
        .await
        .store_err(op)?;
    let others = rows
        .iter()
        .map(|r| read_other_workspace(op, &Cols(r)))
        .collect::<StoreResult<Vec<_>>>()?;
    let personal = others
        .iter()
        .filter(|o| o.members == 1)
        .map(|o| o.workspace.0);
    let rows = sqlx::query(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts \
         WHERE workspace_id = $1 OR workspace_id = ANY($2) ORDER BY id"
    ))
    .bind(workspace.0)
    .bind(personal.collect::<Vec<i64>>())
    .fetch_all(&mut *conn)
    .await
    .store_err(op)?;
    let accounts = rows
        .iter()
        .map(|r| read_account(op, &Cols(r)))
        .collect::<StoreResult<Vec<_>>>()?;
    Ok((members, others, accounts))
}

/// Who acts on `user`: their team view when they are a member of `workspace`, else the actor's
/// role there (`Forbidden` when the actor is no member).
async fn actor_view(
    tx: &mut Transaction<'static, Postgres>,
    op: &'static str,
    workspace: WorkspaceId,
    actor: UserId,
    user: UserId,
) -> StoreResult<ActorView> {
    match team_view(tx, op, workspace, actor, user).await {
        Ok(view) => Ok(ActorView::Member(view)),
        Err(StoreError::NotFound) => {
            let role: Option<String> = sqlx::query_scalar(
                "SELECT role FROM memberships WHERE workspace_id = $1 AND user_id = $2",
            )
            .bind(workspace.0)
            .bind(actor.0)
            .fetch_optional(&mut **tx)
            .await
            .store_err(op)?;
            let role = role
                .and_then(|r| r.parse::<Role>().ok())
                .ok_or(StoreError::Conflict(ErrorCode::Forbidden))?;
            Ok(ActorView::SelfService(role))
        }
        Err(e) => Err(e),
    }
}

/// Checks `action` and reads what it reaches, in `tx`.
async fn target(
    tx: &mut Transaction<'static, Postgres>,
    op: &'static str,
    workspace: WorkspaceId,
    actor: UserId,
    user: UserId,
    action: UserAction,
) -> StoreResult<UserTarget> {
    let view = actor_view(tx, op, workspace, actor, user).await?;
    let (members, others, accounts) = read_members(tx, op, workspace, Some(user)).await?;
    let row = members.into_iter().next().ok_or(StoreError::NotFound)?;
    user_admin::action_target(workspace, &view, action, row, &others, &accounts)
}

#[async_trait]
impl UserAdminStore for PgStore {
    async fn list_managed_users(
        &self,
        workspace: WorkspaceId,
        actor: UserId,
    ) -> StoreResult<Vec<ManagedUser>> {
        const OP: &str = "list_managed_users";
        match self.get_membership(workspace, actor).await {
            Ok(m) if m.role.is_admin() => {}
            Ok(_) | Err(StoreError::NotFound) => {
                return Err(StoreError::Conflict(ErrorCode::Forbidden));
            }
            Err(e) => return Err(e),
        }
        let mut tx = begin(&self.pool, OP).await?;
        let (members, others, accounts) = read_members(&mut tx, OP, workspace, None).await?;
        tx.commit().await.store_err(OP)?;
        Ok(user_admin::managed_users(
            workspace, members, &others, &accounts,
        ))
    }

    async fn user_action_target(
        &self,
        workspace: WorkspaceId,
        actor: UserId,
        user: UserId,
        action: UserAction,
    ) -> StoreResult<UserTarget> {
        const OP: &str = "user_action_target";
        let mut tx = begin(&self.pool, OP).await?;
        let found = target(&mut tx, OP, workspace, actor, user, action).await?;
        tx.commit().await.store_err(OP)?;
        Ok(found)
    }

    async fn delete_user(
        &self,
        workspace: WorkspaceId,
        actor: UserId,
        user: UserId,
        now: Timestamp,
    ) -> StoreResult<DeletedUser> {
        const OP: &str = "delete_user";
        let mut tx = begin(&self.pool, OP).await?;
        let target = target(&mut tx, OP, workspace, actor, user, UserAction::Delete).await?;
        let released = release_chats(&mut tx, OP, workspace, user, now).await?;
        // Accounts, chats, bots, tasks, sources and leads go with their workspace (ON DELETE
        // CASCADE); memberships and web sessions with the user.
        sqlx::query("DELETE FROM workspaces WHERE id = ANY($1)")
            .bind(
                target
                    .personal_workspaces
                    .iter()
                    .map(|w| w.0)
                    .collect::<Vec<i64>>(),
            )
            .execute(&mut *tx)
            .await
            .store_err(OP)?;
        let done = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(user.0)
            .execute(&mut *tx)
            .await
            .store_err(OP)?;
        switchboard_domain::rows::one_row(done.rows_affected())?;
        tx.commit().await.store_err(OP)?;
        Ok(DeletedUser {
            released,
            workspaces: target.personal_workspaces,
        })
    }
}
