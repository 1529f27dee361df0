//! The team rules: who may add, change or remove which member of a workspace, and the
//! invariant that a workspace always keeps an owner. Both store backends check a change with
//! [`TeamView`] inside the transaction that writes it (the actor's and the member's current
//! memberships and the owners, read under a lock), so two concurrent changes cannot together
//! break a rule that each alone respects.

use crate::error_code::ErrorCode;
use crate::ids::UserId;
use crate::model::{Membership, Role};
use crate::store::StoreError;

/// The largest chat capacity a member may have.
pub const MAX_CHATS_LIMIT: i32 = 10_000;

/// The code of a change that would leave the workspace without an owner.
pub const LAST_OWNER: ErrorCode = ErrorCode::LastOwner;

/// The code of a change the actor may not make.
pub const FORBIDDEN: ErrorCode = ErrorCode::Forbidden;

/// True when `max_chats` is a capacity a member may have.
pub fn valid_capacity(max_chats: i32) -> bool {
    (0..=MAX_CHATS_LIMIT).contains(&max_chats)
}

/// May a member with role `actor` give someone the role `role`? Admins and owners add members;
/// only an owner makes owners.
pub fn check_grant(actor: Role, role: Role) -> Result<(), StoreError> {
    if !actor.is_admin() || (role == Role::Owner && actor != Role::Owner) {
        return Err(StoreError::Conflict(FORBIDDEN));
    }
    Ok(())
}

/// A change to a member: a new role, a new capacity, or both (`None` keeps the current one).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemberChange {
    /// The new role.
    pub role: Option<Role>,
    /// The new chat capacity.
    pub max_chats: Option<i32>,
}

/// What a team change is checked against, read in the change's transaction: the actor's and
/// the member's current memberships and how many owners the workspace has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TeamView {
    /// The actor's membership.
    pub actor: Membership,
    /// The membership changed.
    pub member: Membership,
    /// Owners of the workspace.
    pub owners: usize,
}

impl TeamView {
    /// From the memberships of a workspace that are the actor's, the member's or an owner's.
    /// `NotFound` without the member; `Conflict(ErrorCode::Forbidden)` when the actor is no member.
    pub fn of(rows: &[Membership], actor: UserId, member: UserId) -> Result<Self, StoreError> {
        let find = |user: UserId| rows.iter().find(|m| m.user_id == user).cloned();
        let member = find(member).ok_or(StoreError::NotFound)?;
        let actor = find(actor).ok_or(StoreError::Conflict(FORBIDDEN))?;
        let owners = rows.iter().filter(|m| m.role == Role::Owner).count();
        Ok(Self {
            actor,
            member,
            owners,
        })
    }

    /// Checks `change` and gives the member's role and capacity after it. Owners are changed,
    /// and made, only by owners; the last owner keeps the role.
    pub fn check_update(&self, change: &MemberChange) -> Result<(Role, i32), StoreError> {
        let role = change.role.unwrap_or(self.member.role);
        let touches_owner = self.member.role == Role::Owner || role == Role::Owner;
        if !self.actor.role.is_admin() || (touches_owner && self.actor.role != Role::Owner) {
            return Err(StoreError::Conflict(FORBIDDEN));
        }
        if self.member.role == Role::Owner && role != Role::Owner && self.owners <= 1 {
            return Err(StoreError::Conflict(LAST_OWNER));
        }
        Ok((role, change.max_chats.unwrap_or(self.member.max_chats)))
    }

    /// Checks removing the member. Nobody removes themselves; owners are removed only by
    /// owners, never the last one.
    pub fn check_removal(&self) -> Result<(), StoreError> {
        let owner = self.member.role == Role::Owner;
        if !self.actor.role.is_admin() || (owner && self.actor.role != Role::Owner) {
            return Err(StoreError::Conflict(FORBIDDEN));
        }
        if self.member.user_id == self.actor.user_id {
            return Err(StoreError::Conflict(FORBIDDEN));
        }
        if owner && self.owners <= 1 {
            return Err(StoreError::Conflict(LAST_OWNER));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::WorkspaceId;
    use crate::time::Timestamp;

    fn m(user: i64, role: Role) -> Membership {
        Membership {
            workspace_id: WorkspaceId(1),
            user_id: UserId(user),
            role,
            max_chats: 10,
            created_at: Timestamp(0),
        }
    }

    fn code(r: Result<(), StoreError>) -> Option<ErrorCode> {
        match r {
            Ok(()) => None,
            Err(StoreError::Conflict(c)) => Some(c),
            Err(e) => panic!("unexpected {e}"),
        }
    }

    fn view(actor: &Membership, member: &Membership, owners: usize) -> TeamView {
        TeamView {
            actor: actor.clone(),
            member: member.clone(),
            owners,
        }
    }

    fn to(role: Role) -> MemberChange {
        MemberChange {
            role: Some(role),
            max_chats: None,
        }
    }

    #[test]
    fn owners_are_changed_only_by_owners_and_one_always_remains() {
        let (owner, admin, op) = (m(1, Role::Owner), m(2, Role::Admin), m(3, Role::Operator));
        let update = |a: &Membership, b: &Membership, role: Role, owners: usize| {
            view(a, b, owners).check_update(&to(role)).map(|_| ())
        };
        assert_eq!(code(update(&admin, &op, Role::Admin, 1)), None);
        assert_eq!(code(update(&admin, &op, Role::Owner, 1)), Some(FORBIDDEN));
        assert_eq!(
            code(update(&admin, &owner, Role::Admin, 2)),
            Some(FORBIDDEN)
        );
        assert_eq!(
            code(update(&op, &admin, Role::Operator, 1)),
            Some(FORBIDDEN)
        );
        assert_eq!(
            code(update(&owner, &owner, Role::Admin, 1)),
            Some(LAST_OWNER)
        );
        assert_eq!(code(update(&owner, &owner, Role::Admin, 2)), None);
        assert_eq!(code(update(&owner, &owner, Role::Owner, 1)), None);
        assert_eq!(code(update(&owner, &op, Role::Owner, 1)), None);
        let keep = MemberChange {
            role: None,
            max_chats: Some(3),
        };
        assert!(matches!(
            view(&admin, &op, 1).check_update(&keep),
            Ok((Role::Operator, 3))
        ));
    }

    #[test]
    fn nobody_removes_themselves_or_the_last_owner() {
        let (owner, other_owner, admin) = (m(1, Role::Owner), m(4, Role::Owner), m(2, Role::Admin));
        let remove =
            |a: &Membership, b: &Membership, owners: usize| view(a, b, owners).check_removal();
        assert_eq!(code(remove(&owner, &owner, 1)), Some(FORBIDDEN));
        assert_eq!(code(remove(&other_owner, &owner, 1)), Some(LAST_OWNER));
        assert_eq!(code(remove(&owner, &owner, 2)), Some(FORBIDDEN));
        assert_eq!(code(remove(&owner, &other_owner, 2)), None);
        assert_eq!(code(remove(&admin, &owner, 2)), Some(FORBIDDEN));
        assert_eq!(code(remove(&admin, &admin, 1)), Some(FORBIDDEN));
        assert_eq!(code(remove(&owner, &admin, 1)), None);
    }

    #[test]
    fn the_view_needs_the_member_and_the_actor() {
        let rows = [m(1, Role::Owner), m(2, Role::Admin), m(4, Role::Owner)];
        let Ok(v) = TeamView::of(&rows, UserId(2), UserId(1)) else {
            panic!("the view of a member by an admin");
        };
        assert_eq!(
            (v.actor.user_id, v.member.user_id, v.owners),
            (UserId(2), UserId(1), 2)
        );
        assert!(matches!(
            TeamView::of(&rows, UserId(2), UserId(9)),
            Err(StoreError::NotFound)
        ));
        assert_eq!(
            code(TeamView::of(&rows, UserId(9), UserId(1)).map(|_| ())),
            Some(FORBIDDEN)
        );
    }

    #[test]
    fn only_owners_make_owners() {
        assert!(check_grant(Role::Owner, Role::Owner).is_ok());
        assert!(check_grant(Role::Admin, Role::Operator).is_ok());
        assert!(check_grant(Role::Admin, Role::Owner).is_err());
        assert!(check_grant(Role::Operator, Role::Operator).is_err());
        assert!(valid_capacity(0) && valid_capacity(MAX_CHATS_LIMIT) && !valid_capacity(-1));
    }
}
