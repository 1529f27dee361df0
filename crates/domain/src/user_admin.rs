//! The admin's controls over the users of a workspace: the users list with their Telegram
//! identity and last sign-in, logging a user's Telegram out, and deleting a user with what is
//! only theirs. The [`UserAdminStore`] port checks who may do what inside the query or the
//! transaction (an owner or admin of the workspace, acting on one of its members; owners only
//! by owners), with the rules here, so no caller can reach a user of another workspace.
//!
//! - A user's *personal workspace* is a workspace whose only member is that user (what a
//!   self-service sign-up creates).
//! - A *self-service user* has a phone and belongs to personal workspaces only. They are
//!   managed by the owners and admins of the installation's *main workspace* (the first one
//!   created), besides the members of that workspace.
//! - A user's *Telegram accounts* are the accounts, in the admin's workspace or in the user's
//!   personal workspaces, whose Telegram user id is the user's, or whose phone is the user's.

use crate::account::Account;
use crate::error_code::ErrorCode;
use crate::ids::{UserId, WorkspaceId};
use crate::model::{Membership, Role, User};
use crate::rows::{Columns, read_membership, read_user};
use crate::store::{StoreError, StoreResult};
use crate::team::TeamView;
use crate::time::Timestamp;
use async_trait::async_trait;

/// The code of a deletion refused because the user is also in a team the admin does not run.
pub const IN_OTHER_WORKSPACE: ErrorCode = ErrorCode::UserInOtherWorkspace;

/// The audit actions that are a successful sign-in to the web app (the users list's "last
/// sign-in" is the newest of them).
pub const SIGN_IN_ACTIONS: &[&str] = &["auth.login_succeeded"];

/// What an admin does to a user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserAction {
    /// Log their Telegram accounts out (`auth.logOut`) and wipe the sessions.
    LogOutTelegram,
    /// Delete the user with their personal workspaces.
    Delete,
}

/// A user as the workspace's admins see them.
#[derive(Clone, Debug, PartialEq)]
pub struct ManagedUser {
    /// The user.
    pub user: User,
    /// Their membership of the admin's workspace; `None` for a self-service user.
    pub membership: Option<Membership>,
    /// Their phone (self-service users), as stored.
    pub phone: Option<String>,
    /// Their Telegram user id, once known.
    pub telegram_user_id: Option<i64>,
    /// When they last signed in to the web app (from the audit trail).
    pub last_sign_in_at: Option<Timestamp>,
    /// Their Telegram accounts (see the module's definition).
    pub accounts: Vec<Account>,
    /// Their personal workspaces.
    pub personal_workspaces: Vec<WorkspaceId>,
}

/// What an admin action on a user reaches, checked and read by
/// [`UserAdminStore::user_action_target`].
#[derive(Clone, Debug, PartialEq)]
pub struct UserTarget {
    /// The user.
    pub user: User,
    /// The accounts to log out: for [`UserAction::LogOutTelegram`] the user's Telegram
    /// accounts; for [`UserAction::Delete`] every account of their personal workspaces.
    pub accounts: Vec<Account>,
    /// Their personal workspaces (deleted with them).
    pub personal_workspaces: Vec<WorkspaceId>,
}

/// What deleting a user removed.
#[derive(Clone, Debug, PartialEq)]
pub struct DeletedUser {
    /// Chats of the admin's workspace that were assigned to the user, now in the queue.
    pub released: Vec<crate::account::Chat>,
    /// The personal workspaces deleted with everything in them.
    pub workspaces: Vec<WorkspaceId>,
}

/// Digits of a phone number, the form accounts store.
pub fn phone_digits(phone: &str) -> String {
    phone.chars().filter(char::is_ascii_digit).collect()
}

/// True when `account` is the Telegram account of a user with this phone and Telegram id.
pub fn is_users_account(phone: Option<&str>, telegram_user_id: Option<i64>, a: &Account) -> bool {
    let by_id = telegram_user_id.is_some() && a.telegram_user_id == telegram_user_id;
    let by_phone = phone
        .map(phone_digits)
        .is_some_and(|p| !p.is_empty() && a.phone.as_deref() == Some(p.as_str()));
    by_id || by_phone
}

/// Who acts on whom, read in the action's transaction: the member's [`TeamView`] when the
/// user is a member of the workspace, else the actor's role (the user is a self-service user
/// of the main workspace).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActorView {
    /// The user is a member of the workspace.
    Member(TeamView),
    /// The user is a self-service user; the actor has this role in the main workspace.
    SelfService(Role),
}

/// Checks an admin action against the memberships as they are: the actor is an owner or admin
/// of the workspace; a member is acted on only by owners when they are an owner, and a deletion
/// is a removal (nobody deletes themselves or the last owner) of a user who is in no other team
/// (`shared_elsewhere`: the user's other workspaces that have other members).
pub fn check_action(
    view: &ActorView,
    action: UserAction,
    shared_elsewhere: usize,
) -> Result<(), StoreError> {
    let view = match view {
        ActorView::SelfService(role) if role.is_admin() && shared_elsewhere == 0 => return Ok(()),
        ActorView::SelfService(_) => return Err(StoreError::Conflict(ErrorCode::Forbidden)),
        ActorView::Member(view) => view,
    };
    let owner = view.member.role == Role::Owner;
    if !view.actor.role.is_admin() || (owner && view.actor.role != Role::Owner) {
        return Err(StoreError::Conflict(ErrorCode::Forbidden));
    }
    if action == UserAction::Delete {
        view.check_removal()?;
        if shared_elsewhere > 0 {
            return Err(StoreError::Conflict(IN_OTHER_WORKSPACE));
        }
    }
    Ok(())
}

/// A user as the stores read them, before their accounts are attached: the membership columns
/// (NULL for a self-service user), the user's (its `created_at` as `user_created_at`), `phone`,
/// `telegram_user_id` and `last_sign_in_at`.
#[derive(Clone, Debug, PartialEq)]
pub struct MemberRow {
    /// Their membership of the admin's workspace; `None` for a self-service user.
    pub membership: Option<Membership>,
    /// The user.
    pub user: User,
    /// Their phone.
    pub phone: Option<String>,
    /// Their Telegram user id.
    pub telegram_user_id: Option<i64>,
    /// Their newest sign-in.
    pub last_sign_in_at: Option<Timestamp>,
}

/// Reads a [`MemberRow`].
pub fn read_member_row(op: &'static str, row: &impl Columns) -> StoreResult<MemberRow> {
    let last: Option<i64> = row.get(op, "last_sign_in_at")?;
    let role: Option<String> = row.get(op, "role")?;
    Ok(MemberRow {
        membership: role.map(|_| read_membership(op, row)).transpose()?,
        user: read_user(op, row, "user_created_at")?,
        phone: row.get(op, "phone")?,
        telegram_user_id: row.get(op, "telegram_user_id")?,
        last_sign_in_at: last.map(Timestamp),
    })
}

/// Another workspace of a user (`user_id`, `workspace_id`) with its number of members
/// (`members`): one member makes it the user's personal workspace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OtherWorkspace {
    /// The user.
    pub user: UserId,
    /// The workspace.
    pub workspace: WorkspaceId,
    /// Its members.
    pub members: i64,
}

/// Reads an [`OtherWorkspace`].
pub fn read_other_workspace(op: &'static str, row: &impl Columns) -> StoreResult<OtherWorkspace> {
    Ok(OtherWorkspace {
        user: UserId(row.get(op, "user_id")?),
        workspace: WorkspaceId(row.get(op, "workspace_id")?),
        members: row.get(op, "members")?,
    })
}

fn personal_of(user: UserId, others: &[OtherWorkspace]) -> Vec<WorkspaceId> {
    others
        .iter()
        .filter(|o| o.user == user && o.members == 1)
        .map(|o| o.workspace)
        .collect()
}

/// The user's Telegram accounts among `accounts` (those of the admin's `workspace` and of
/// the users' personal workspaces).
fn accounts_of(
    row: &MemberRow,
    workspace: WorkspaceId,
    personal: &[WorkspaceId],
    accounts: &[Account],
) -> Vec<Account> {
    accounts
        .iter()
        .filter(|a| a.workspace_id == workspace || personal.contains(&a.workspace_id))
        .filter(|a| is_users_account(row.phone.as_deref(), row.telegram_user_id, a))
        .cloned()
        .collect()
}

/// Attaches to each member their personal workspaces and Telegram accounts.
pub fn managed_users(
    workspace: WorkspaceId,
    rows: Vec<MemberRow>,
    others: &[OtherWorkspace],
    accounts: &[Account],
) -> Vec<ManagedUser> {
    rows.into_iter()
        .map(|row| {
            let personal = personal_of(row.user.id, others);
            ManagedUser {
                accounts: accounts_of(&row, workspace, &personal, accounts),
                personal_workspaces: personal,
                user: row.user,
                membership: row.membership,
                phone: row.phone,
                telegram_user_id: row.telegram_user_id,
                last_sign_in_at: row.last_sign_in_at,
            }
        })
        .collect()
}

/// Checks `action` ([`check_action`]) and gives what it reaches: the user's Telegram accounts
/// to log out (`Conflict(NoTelegramAccount)` without one), or for a deletion every account of
/// their personal workspaces.
pub fn action_target(
    workspace: WorkspaceId,
    view: &ActorView,
    action: UserAction,
    row: MemberRow,
    others: &[OtherWorkspace],
    accounts: &[Account],
) -> Result<UserTarget, StoreError> {
    let user = row.user.id;
    let shared = others
        .iter()
        .filter(|o| o.user == user && o.members > 1)
        .count();
    check_action(view, action, shared)?;
    let personal = personal_of(user, others);
    let accounts = match action {
        UserAction::LogOutTelegram => {
            let mine = accounts_of(&row, workspace, &personal, accounts);
            if mine.is_empty() {
                return Err(StoreError::Conflict(ErrorCode::NoTelegramAccount));
            }
            mine
        }
        UserAction::Delete => accounts
            .iter()
            .filter(|a| personal.contains(&a.workspace_id))
            .cloned()
            .collect(),
    };
    Ok(UserTarget {
        user: row.user,
        accounts,
        personal_workspaces: personal,
    })
}

/// The storage of the admin's user controls; every method takes the workspace the admin acts
/// in and the admin, and checks them.
#[async_trait]
pub trait UserAdminStore: Send + Sync + 'static {
    /// The members of `workspace` (and, for the main workspace, the self-service users) with
    /// their Telegram identity, last sign-in and accounts, by user id; `Conflict(Forbidden)`
    /// unless `actor` is an owner or admin of it.
    async fn list_managed_users(
        &self,
        workspace: WorkspaceId,
        actor: UserId,
    ) -> StoreResult<Vec<ManagedUser>>;

    /// Checks that `actor` may do `action` to `user` (see [`check_action`]) and reads what it
    /// reaches. `NotFound` when `user` is neither a member of `workspace` nor, for the main
    /// workspace, a self-service user.
    async fn user_action_target(
        &self,
        workspace: WorkspaceId,
        actor: UserId,
        user: UserId,
        action: UserAction,
    ) -> StoreResult<UserTarget>;

    /// Deletes `user` on behalf of `actor` in one transaction that checks
    /// [`check_action`] again: their chats of `workspace` return to the queue, their personal
    /// workspaces go with everything in them (accounts, chats, bots, tasks, leads), then the
    /// user with their memberships and sessions.
    async fn delete_user(
        &self,
        workspace: WorkspaceId,
        actor: UserId,
        user: UserId,
        now: Timestamp,
    ) -> StoreResult<DeletedUser>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(user: i64, role: Role) -> Membership {
        Membership {
            workspace_id: WorkspaceId(1),
            user_id: UserId(user),
            role,
            max_chats: 10,
            created_at: Timestamp(0),
        }
    }

    fn view(actor: Membership, member: Membership, owners: usize) -> ActorView {
        ActorView::Member(TeamView {
            actor,
            member,
            owners,
        })
    }

    fn code(r: Result<(), StoreError>) -> Option<ErrorCode> {
        match r {
            Ok(()) => None,
            Err(StoreError::Conflict(c)) => Some(c),
            Err(e) => panic!("unexpected {e}"),
        }
    }

    #[test]
    fn admins_act_on_members_owners_only_on_owners() {
        let (owner, admin, op) = (m(1, Role::Owner), m(2, Role::Admin), m(3, Role::Operator));
        let logout = UserAction::LogOutTelegram;
        let delete = UserAction::Delete;
        assert_eq!(
            code(check_action(&view(admin.clone(), op.clone(), 1), logout, 0)),
            None
        );
        assert_eq!(
            code(check_action(&view(admin.clone(), op.clone(), 1), delete, 0)),
            None
        );
        assert_eq!(
            code(check_action(&view(op.clone(), admin.clone(), 1), logout, 0)),
            Some(ErrorCode::Forbidden)
        );
        assert_eq!(
            code(check_action(
                &view(admin.clone(), owner.clone(), 1),
                logout,
                0
            )),
            Some(ErrorCode::Forbidden)
        );
        assert_eq!(
            code(check_action(
                &view(owner.clone(), owner.clone(), 1),
                logout,
                0
            )),
            None
        );
        assert_eq!(
            code(check_action(
                &view(owner.clone(), owner.clone(), 2),
                delete,
                0
            )),
            Some(ErrorCode::Forbidden),
            "nobody deletes themselves"
        );
        assert_eq!(
            code(check_action(&view(owner, op, 1), delete, 1)),
            Some(IN_OTHER_WORKSPACE)
        );
        let by = |role| ActorView::SelfService(role);
        assert_eq!(code(check_action(&by(Role::Admin), delete, 0)), None);
        assert_eq!(
            code(check_action(&by(Role::Operator), logout, 0)),
            Some(ErrorCode::Forbidden)
        );
    }

    #[test]
    fn a_users_account_is_found_by_telegram_id_or_phone() {
        let a = Account {
            id: crate::ids::AccountId(1),
            workspace_id: WorkspaceId(1),
            phone: Some("79001234567".into()),
            telegram_user_id: Some(42),
            first_name: String::new(),
            last_name: None,
            username: None,
            status: crate::account::AccountStatus::Connected,
            status_detail: None,
            flood_wait_until: None,
            active: true,
            ingest_groups: false,
            api_id: None,
            api_hash_sealed: None,
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
        };
        assert!(is_users_account(None, Some(42), &a));
        assert!(is_users_account(Some("+7 900 123-45-67"), None, &a));
        assert!(!is_users_account(Some("+7 900 123-45-68"), Some(43), &a));
        assert!(!is_users_account(Some(""), None, &a));
        assert!(!is_users_account(None, None, &a));
    }
}
