//! The admin's controls over a workspace's users: the list (Telegram identity, accounts, last
//! sign-in), logging a user's Telegram out, and deleting a user with what is only theirs. Who
//! may act on whom is decided by the store ([`UserAdminStore`], the rules of
//! `switchboard_domain::user_admin`); this service does what the database cannot: `auth.logOut`
//! through each account's supervised client, stopping the bots and clients of the workspaces
//! that go, handing released chats back to the queue, and the audit trail.

use crate::audit::Audit;
use crate::bots::BotService;
use crate::connect::AccountService;
use crate::inbox::Inbox;
use crate::monitor::Monitor;
use crate::signin::SigninService;
use crate::team::TeamActor;
use std::sync::Arc;
use switchboard_domain::user_admin::{ManagedUser, UserAction};
use switchboard_domain::{Store, StoreError, Timestamp, UserAdminStore, UserId};

/// A user of the list with their remembered browsers.
#[derive(Clone, Debug)]
pub struct UserEntry {
    /// The user.
    pub user: ManagedUser,
    /// Their trusted devices, newest first.
    pub devices: Vec<switchboard_domain::TrustedDevice>,
}

/// The admin's user controls. Cheap to clone.
#[derive(Clone)]
pub struct UserAdmin {
    store: Arc<dyn Store>,
    users: Arc<dyn UserAdminStore>,
    accounts: Arc<AccountService>,
    bots: BotService,
    inbox: Inbox,
    monitor: Monitor,
    signin: SigninService,
}

impl UserAdmin {
    /// The controls over these services.
    pub fn new(
        store: Arc<dyn Store>,
        users: Arc<dyn UserAdminStore>,
        accounts: Arc<AccountService>,
        bots: BotService,
        inbox: Inbox,
        monitor: Monitor,
        signin: SigninService,
    ) -> Self {
        Self {
            store,
            users,
            accounts,
            bots,
            inbox,
            monitor,
            signin,
        }
    }

    /// The users the actor's workspace's admins manage, with their remembered browsers.
    pub async fn list(&self, actor: &TeamActor<'_>) -> Result<Vec<UserEntry>, StoreError> {
        let users = self
            .users
            .list_managed_users(actor.workspace, actor.user)
            .await?;
        let mut out = Vec::with_capacity(users.len());
        for user in users {
            let devices = self.signin.devices(user.user.id).await.unwrap_or_default();
            out.push(UserEntry { user, devices });
        }
        Ok(out)
    }

    /// Logs the user's Telegram accounts out (`auth.logOut` through each one's supervised
    /// client) and wipes their sessions, and ends their web sessions; the user must sign in and
    /// connect again. Returns how many accounts were logged out.
    pub async fn log_out_telegram(
        &self,
        actor: &TeamActor<'_>,
        user: UserId,
    ) -> Result<usize, StoreError> {
        let target = self
            .users
            .user_action_target(
                actor.workspace,
                actor.user,
                user,
                UserAction::LogOutTelegram,
            )
            .await?;
        let mut done = Vec::new();
        for a in &target.accounts {
            match self.accounts.logout(a.workspace_id, actor.user, a.id).await {
                Ok(_) => done.push(a.id.0),
                Err(e) => {
                    tracing::warn!(account_id = %a.id, error = %e, "logging a user's account out failed")
                }
            }
        }
        Audit::new("admin.user_telegram_logged_out")
            .workspace(actor.workspace)
            .actor(actor.user)
            .target(format!("user:{}", user.0))
            .ip(actor.ip)
            .details(serde_json::json!({"accounts": done}))
            .record(&*self.store)
            .await;
        // Signed out here too, and no browser of theirs is trusted any more: they sign in
        // again and connect their Telegram anew.
        self.store.delete_user_web_sessions(user).await?;
        if let Err(e) = self
            .signin
            .revoke_all_devices(user, Some((actor.workspace, actor.user)), actor.ip)
            .await
        {
            tracing::warn!(user_id = %user, error = %e, "could not forget the user's devices");
        }
        Ok(done.len())
    }

    /// Deletes the user: their personal workspaces' accounts are logged out and their bots and
    /// clients stopped, then one transaction deletes those workspaces with everything in them,
    /// returns the user's chats of the actor's workspace to the queue and deletes the user with
    /// their memberships and sessions.
    pub async fn delete(&self, actor: &TeamActor<'_>, user: UserId) -> Result<(), StoreError> {
        let target = self
            .users
            .user_action_target(actor.workspace, actor.user, user, UserAction::Delete)
            .await?;
        for a in &target.accounts {
            if let Err(e) = self.accounts.logout(a.workspace_id, actor.user, a.id).await {
                tracing::warn!(account_id = %a.id, error = %e, "logging out a deleted user's account failed");
            }
        }
        for ws in &target.personal_workspaces {
            for bot in self.bots.list(*ws).await.unwrap_or_default() {
                if let Err(e) = self.bots.stop(*ws, bot.id).await {
                    tracing::warn!(bot_id = %bot.id, error = %e, "stopping a deleted user's bot failed");
                }
            }
        }
        let deleted = self
            .users
            .delete_user(actor.workspace, actor.user, user, Timestamp::now())
            .await?;
        // Their tasks went with their workspaces: the matcher forgets them.
        self.monitor.engine().tasks_changed();
        Audit::new("admin.user_deleted")
            .workspace(actor.workspace)
            .actor(actor.user)
            .target(format!("user:{}", user.0))
            .ip(actor.ip)
            .details(serde_json::json!({
                "accounts_logged_out": target.accounts.len(),
                "workspaces_deleted": deleted.workspaces.iter().map(|w| w.0).collect::<Vec<_>>(),
                "chats_released": deleted.released.len(),
            }))
            .record(&*self.store)
            .await;
        self.inbox
            .member_removed(actor.workspace, user, &deleted.released)
            .await;
        Ok(())
    }
}
