//! The storage port. Implemented once per database backend (`switchboard-store-sqlite`,
//! `switchboard-store-postgres`); every method is exercised by one conformance suite that runs
//! against both. Methods that touch tenant data take the workspace they act in, so a caller
//! cannot read across workspaces by passing a foreign id.

use crate::error_code::ErrorCode;
use crate::ids::{UserId, WorkspaceId};
use crate::model::*;
use crate::sealed::{SealedColumn, SealedReplacement, SealedValue};
use crate::team::MemberChange;
use crate::time::Timestamp;
use async_trait::async_trait;

/// Storage failures, coarse enough to map to API errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row does not exist (or is not visible to the caller).
    #[error("not found")]
    NotFound,
    /// A rule of the data refused the write (a uniqueness rule, e.g. `username_taken`, or a rule
    /// such as `assign_forbidden`); the code carries its HTTP status.
    #[error("conflict: {0}")]
    Conflict(ErrorCode),
    /// The database failed; the message never contains secrets.
    #[error("database error: {0}")]
    Backend(String),
}

/// Result of a store call.
pub type StoreResult<T> = Result<T, StoreError>;

/// Every persistent operation of Switchboard.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The backend's name: `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// Checks that the database answers.
    async fn ping(&self) -> StoreResult<()>;

    /// Lists `(table, column)` of the application schema, sorted; used to check that both
    /// backends have the same shape.
    async fn schema_columns(&self) -> StoreResult<Vec<(String, String)>>;

    // --- workspaces ---

    /// Creates a workspace.
    async fn create_workspace(&self, name: &str, now: Timestamp) -> StoreResult<Workspace>;
    /// Reads a workspace.
    async fn get_workspace(&self, id: WorkspaceId) -> StoreResult<Workspace>;

    // --- users ---

    /// Creates a user; `Conflict(ErrorCode::UsernameTaken)` if the username exists.
    async fn create_user(&self, user: &NewUser, now: Timestamp) -> StoreResult<User>;
    /// Reads a user.
    async fn get_user(&self, id: UserId) -> StoreResult<User>;
    /// Looks a user up by sign-in name, with what the sign-in check needs.
    async fn find_credentials(&self, username: &Username) -> StoreResult<Option<UserCredentials>>;
    /// Replaces a user's password hash.
    async fn set_password_hash(&self, id: UserId, password_hash: &str) -> StoreResult<()>;
    /// Sets or clears a user's preferred language.
    async fn set_user_locale(&self, id: UserId, locale: Option<Locale>) -> StoreResult<()>;
    /// Takes a sign-in attempt before its password is checked. A user locked at `now` gets
    /// [`LoginAttempt::Locked`] and nothing changes; otherwise the attempt counts as a failure
    /// (a lock that has run out starts the count anew) and the count reaching `lock_after`
    /// locks the user until `lock_until`. A success clears it with `reset_login_failures`.
    async fn begin_login_attempt(
        &self,
        id: UserId,
        lock_after: i32,
        now: Timestamp,
        lock_until: Timestamp,
    ) -> StoreResult<LoginAttempt>;
    /// Clears failures and any lock after a successful sign-in.
    async fn reset_login_failures(&self, id: UserId) -> StoreResult<()>;

    // --- memberships ---

    /// Adds a user to a workspace; `Conflict(ErrorCode::AlreadyMember)` if present.
    async fn add_membership(
        &self,
        workspace: WorkspaceId,
        user: UserId,
        role: Role,
        max_chats: i32,
        now: Timestamp,
    ) -> StoreResult<Membership>;
    /// A user's membership in a workspace.
    async fn get_membership(&self, workspace: WorkspaceId, user: UserId)
    -> StoreResult<Membership>;
    /// All workspaces a user belongs to, oldest first.
    async fn list_user_memberships(&self, user: UserId) -> StoreResult<Vec<Membership>>;
    /// Members of a workspace with their user records, by user id.
    async fn list_members(&self, workspace: WorkspaceId) -> StoreResult<Vec<(Membership, User)>>;
    /// Changes a member's role or capacity on behalf of `actor`, in one transaction that
    /// checks [`TeamView::check_update`](crate::team::TeamView::check_update) against the
    /// memberships as they are then (concurrent team changes of a workspace are serialised):
    /// `NotFound` without such a member, `Conflict(ErrorCode::Forbidden)` or `Conflict(ErrorCode::LastOwner)`
    /// when the rules refuse, and nothing changes.
    async fn update_membership(
        &self,
        workspace: WorkspaceId,
        actor: UserId,
        user: UserId,
        change: MemberChange,
    ) -> StoreResult<Membership>;
    /// Removes a member from a workspace on behalf of `actor` and, in the same transaction,
    /// unassigns the chats of that workspace assigned to them (they return to the queue);
    /// returns those chats. Checked like `update_membership`, with
    /// [`TeamView::check_removal`](crate::team::TeamView::check_removal).
    async fn remove_membership(
        &self,
        workspace: WorkspaceId,
        actor: UserId,
        user: UserId,
        now: Timestamp,
    ) -> StoreResult<Vec<crate::account::Chat>>;

    // --- web sessions ---

    /// Stores a new session (token hashes only).
    async fn create_web_session(&self, session: &NewWebSession) -> StoreResult<WebSession>;
    /// Finds a session by token hash if it has not expired at `now`.
    async fn find_web_session(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> StoreResult<Option<WebSession>>;
    /// Records use of a session and slides its expiry.
    async fn touch_web_session(
        &self,
        token_hash: &str,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> StoreResult<()>;
    /// Deletes one session; true if it existed.
    async fn delete_web_session(&self, token_hash: &str) -> StoreResult<bool>;
    /// Deletes all sessions of a user; returns how many.
    async fn delete_user_web_sessions(&self, user: UserId) -> StoreResult<u64>;
    /// Deletes sessions that expired before `now`; returns how many.
    async fn purge_expired_web_sessions(&self, now: Timestamp) -> StoreResult<u64>;

    // --- audit ---

    /// Appends an audit event.
    async fn append_audit(&self, event: &NewAuditEvent) -> StoreResult<AuditEvent>;
    /// Newest audit events of a workspace (newest first), at most `limit`, older than `before`
    /// when given.
    async fn list_audit(
        &self,
        workspace: WorkspaceId,
        before: Option<crate::ids::AuditEventId>,
        limit: u32,
    ) -> StoreResult<Vec<AuditEvent>>;
    /// Audit events concerning a target (e.g. failed sign-ins of an unknown username have no
    /// workspace), newest first.
    async fn list_audit_for_target(&self, target: &str, limit: u32)
    -> StoreResult<Vec<AuditEvent>>;
    /// Deletes audit events created before `before`; returns how many.
    async fn purge_audit_before(&self, before: Timestamp) -> StoreResult<u64>;

    // --- secrets at rest (key rotation) ---

    /// Every non-NULL value of a sealed column (one of [`crate::SEALED_COLUMNS`], else
    /// `Backend`), ordered by primary key.
    async fn sealed_values(&self, column: &SealedColumn) -> StoreResult<Vec<SealedValue>>;
    /// Replaces sealed values of a column in one transaction, each only where the column still
    /// holds the value read before; returns how many were replaced.
    async fn replace_sealed_values(
        &self,
        column: &SealedColumn,
        values: &[SealedReplacement],
    ) -> StoreResult<u64>;
}
