//! The team of a workspace: adding members, changing their role and capacity, removing them.
//! The rules (`switchboard_domain::team`: owners are changed only by owners, the last owner
//! stays, nobody removes themselves) are checked by the store inside the transaction that
//! writes the change, against the roles as they are then; this service validates the input,
//! ends a removed member's sessions, hands their chats back to the queue (the inbox's events
//! and automatic assignment), and writes the audit trail.

use crate::audit::Audit;
use crate::auth::{AuthError, AuthService, NewMember};
use crate::inbox::Inbox;
use std::sync::Arc;
use switchboard_domain::team::{self, MemberChange};
use switchboard_domain::{Membership, Store, StoreError, Timestamp, User, UserId, WorkspaceId};

/// Who changes the team: a member of `workspace`, and their client address for the audit trail.
#[derive(Clone, Copy, Debug)]
pub struct TeamActor<'a> {
    /// The workspace they act in.
    pub workspace: WorkspaceId,
    /// Who they are.
    pub user: UserId,
    /// Their role, as their session knows it (the store checks the current one again).
    pub role: switchboard_domain::Role,
    /// Their client address.
    pub ip: Option<&'a str>,
}

/// Why a team change was refused.
#[derive(Debug, thiserror::Error)]
pub enum TeamError {
    /// The actor may not make this change.
    #[error("forbidden")]
    Forbidden,
    /// The change would leave the workspace without an owner.
    #[error("the workspace would have no owner")]
    LastOwner,
    /// A value is out of range (a capacity).
    #[error("invalid value")]
    Invalid,
    /// No such member in the workspace.
    #[error("not found")]
    NotFound,
    /// Creating the user failed (username, password, hashing).
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// Storage failed.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for TeamError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => TeamError::NotFound,
            StoreError::Conflict(team::FORBIDDEN) => TeamError::Forbidden,
            StoreError::Conflict(team::LAST_OWNER) => TeamError::LastOwner,
            other => TeamError::Store(other),
        }
    }
}

impl TeamError {
    /// The stable API error code.
    pub fn code(&self) -> &'static str {
        match self {
            TeamError::Forbidden => team::FORBIDDEN.code(),
            TeamError::LastOwner => team::LAST_OWNER.code(),
            TeamError::Invalid => "validation_failed",
            TeamError::NotFound => "not_found",
            TeamError::Auth(e) => e.code(),
            TeamError::Store(_) => "internal",
        }
    }
}

/// The team service. Cheap to build: it shares the store, sign-in and inbox services.
#[derive(Clone)]
pub struct Team {
    store: Arc<dyn Store>,
    auth: Arc<AuthService>,
    inbox: Inbox,
}

impl Team {
    /// The team service over these services.
    pub fn new(store: Arc<dyn Store>, auth: Arc<AuthService>, inbox: Inbox) -> Self {
        Self { store, auth, inbox }
    }

    /// The members of a workspace with their users, by user id.
    pub async fn members(
        &self,
        workspace: WorkspaceId,
    ) -> Result<Vec<(Membership, User)>, TeamError> {
        Ok(self.store.list_members(workspace).await?)
    }

    /// Creates a user and adds them to the actor's workspace (admins; owners only by owners).
    pub async fn add(
        &self,
        actor: &TeamActor<'_>,
        member: NewMember<'_>,
    ) -> Result<(User, Membership), TeamError> {
        team::check_grant(actor.role, member.role)?;
        if !team::valid_capacity(member.max_chats) {
            return Err(TeamError::Invalid);
        }
        Ok(self
            .auth
            .create_member(actor.workspace, member, Some(actor.user))
            .await?)
    }

    /// Changes a member's role or capacity; the store refuses what the rules forbid (nothing
    /// changes then).
    pub async fn update(
        &self,
        actor: &TeamActor<'_>,
        member: UserId,
        change: MemberChange,
    ) -> Result<(Membership, User), TeamError> {
        if change.max_chats.is_some_and(|n| !team::valid_capacity(n)) {
            return Err(TeamError::Invalid);
        }
        let m = self
            .store
            .update_membership(actor.workspace, actor.user, member, change)
            .await?;
        let user = self.store.get_user(member).await?;
        Audit::new("admin.member_updated")
            .workspace(actor.workspace)
            .actor(actor.user)
            .target(format!("user:{}", member.0))
            .ip(actor.ip)
            .details(serde_json::json!({"role": m.role.as_str(), "max_chats": m.max_chats}))
            .record(&*self.store)
            .await;
        Ok((m, user))
    }

    /// Removes a member: the membership goes and their chats of the workspace return to the
    /// queue in one transaction, then their sessions end and the chats are handed out again.
    pub async fn remove(&self, actor: &TeamActor<'_>, member: UserId) -> Result<(), TeamError> {
        let released = self
            .store
            .remove_membership(actor.workspace, actor.user, member, Timestamp::now())
            .await?;
        self.store.delete_user_web_sessions(member).await?;
        Audit::new("admin.member_removed")
            .workspace(actor.workspace)
            .actor(actor.user)
            .target(format!("user:{}", member.0))
            .ip(actor.ip)
            .details(serde_json::json!({"chats_released": released.len()}))
            .record(&*self.store)
            .await;
        self.inbox
            .member_removed(actor.workspace, member, &released)
            .await;
        Ok(())
    }
}
