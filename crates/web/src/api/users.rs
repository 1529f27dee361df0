//! The admin's user controls (`/api/v1/team/users`): the members of the workspace with their
//! Telegram identity, accounts and last sign-in; logging a user's Telegram out; deleting a
//! user with their personal workspace. Owners and admins only; the store checks again who may
//! act on whom (`switchboard_domain::user_admin`), so no request reaches another workspace.

use super::team::actor;
use crate::AppState;
use crate::error::{ApiError, ApiPath, ErrorBody, json};
use crate::session::{Admin, client_ip};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use switchboard_domain::TrustedDevice;
use switchboard_domain::user_admin::phone_digits;
use switchboard_domain::{AccountStatus, UserId};
use switchboard_services::user_admin::UserEntry;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users))
        .routes(routes!(log_out_telegram))
        .routes(routes!(delete_user))
}

/// One Telegram account of a user.
#[derive(Serialize, ToSchema)]
pub struct UserAccountView {
    /// Account id.
    pub account_id: i64,
    /// Its workspace.
    pub workspace_id: i64,
    /// True when it lives in the user's personal workspace.
    pub personal: bool,
    /// Name on Telegram.
    pub name: String,
    /// Phone, `+` and digits.
    pub phone: Option<String>,
    /// Connection health.
    pub status: AccountStatus,
}

/// A user as the workspace's admins see them: a member, or (for the main workspace) a
/// self-service user.
#[derive(Serialize, ToSchema)]
pub struct ManagedUserView {
    /// User id.
    pub user_id: i64,
    /// Username (operators); self-service users may have none.
    pub username: Option<String>,
    /// Display name.
    pub display_name: String,
    /// owner, admin or operator; `null` for a self-service user (not a member: they signed up
    /// with their phone and have a personal workspace; listed for the main workspace's admins).
    pub role: Option<String>,
    /// Phone the user signs in with (self-service users), `+` and digits.
    pub phone: Option<String>,
    /// Their Telegram user id, once known.
    pub telegram_user_id: Option<i64>,
    /// When they last signed in, ms since the epoch.
    pub last_sign_in_at: Option<i64>,
    /// Their Telegram accounts.
    pub accounts: Vec<UserAccountView>,
    /// Their personal workspaces (deleted with them).
    pub personal_workspaces: Vec<i64>,
    /// Their trusted devices (remembered browsers), newest first.
    pub devices: Vec<TrustedDevice>,
}

impl ManagedUserView {
    fn new(entry: &UserEntry) -> Self {
        let u = &entry.user;
        Self {
            devices: entry.devices.clone(),
            user_id: u.user.id.0,
            username: u.user.username.as_ref().map(|n| n.to_string()),
            display_name: u.user.display_name.clone(),
            role: u.membership.as_ref().map(|m| m.role.as_str().to_string()),
            phone: u.phone.as_deref().map(|p| format!("+{}", phone_digits(p))),
            telegram_user_id: u.telegram_user_id,
            last_sign_in_at: u.last_sign_in_at.map(|t| t.0),
            accounts: u
                .accounts
                .iter()
                .map(|a| UserAccountView {
                    account_id: a.id.0,
                    workspace_id: a.workspace_id.0,
                    personal: u.personal_workspaces.contains(&a.workspace_id),
                    name: match &a.last_name {
                        Some(last) => format!("{} {last}", a.first_name),
                        None => a.first_name.clone(),
                    },
                    phone: a.phone.as_ref().map(|p| format!("+{p}")),
                    status: a.status,
                })
                .collect(),
            personal_workspaces: u.personal_workspaces.iter().map(|w| w.0).collect(),
        }
    }
}

/// The users list.
#[derive(Serialize, ToSchema)]
pub struct UsersResponse {
    /// Members of the workspace (and self-service users, for the main workspace), by user id.
    pub users: Vec<ManagedUserView>,
}

/// What logging a user's Telegram out did.
#[derive(Serialize, ToSchema)]
pub struct TelegramLoggedOut {
    /// How many of their accounts were logged out.
    pub accounts_logged_out: usize,
}

/// Lists the workspace's members (and, in the main workspace, the self-service users) with
/// their Telegram identity, accounts and last sign-in (owners and admins).
#[utoipa::path(get, path = "/api/v1/team/users", tag = "team", responses(
    (status = 200, description = "Users", body = UsersResponse),
    (status = 403, description = "forbidden", body = ErrorBody)))]
async fn list_users(
    State(state): State<AppState>,
    Admin(ctx): Admin,
) -> Result<Response, ApiError> {
    let users = state.users().list(&actor(&ctx, None)).await?;
    Ok(json(UsersResponse {
        users: users.iter().map(ManagedUserView::new).collect(),
    }))
}

/// Logs a user's Telegram accounts out (`auth.logOut` through each account's supervised
/// client) and wipes their sessions; their web sessions and trusted devices end too, and they
/// must sign in and connect again. Owners and admins; owners only by owners.
#[utoipa::path(post, path = "/api/v1/team/users/{user_id}/telegram/logout", tag = "team",
    params(("user_id" = i64, Path, description = "Member's user id")), responses(
    (status = 200, description = "Logged out", body = TelegramLoggedOut),
    (status = 403, description = "forbidden", body = ErrorBody),
    (status = 404, description = "not_found", body = ErrorBody),
    (status = 409, description = "no_telegram_account", body = ErrorBody)))]
async fn log_out_telegram(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    Admin(ctx): Admin,
    ApiPath(user_id): ApiPath<i64>,
) -> Result<Response, ApiError> {
    let ip = client_ip(&ext);
    let n = state
        .users()
        .log_out_telegram(&actor(&ctx, ip.as_deref()), UserId(user_id))
        .await?;
    Ok(json(TelegramLoggedOut {
        accounts_logged_out: n,
    }))
}

/// Deletes a user for good: their web sessions and devices, and their personal workspace
/// with its accounts (logged out first), chats, bots, tasks and leads; their chats of this
/// workspace return to the queue. Not yourself; owners only by owners, never the last one;
/// not a user who is also in another team (`user_in_other_workspace`).
#[utoipa::path(delete, path = "/api/v1/team/users/{user_id}", tag = "team",
    params(("user_id" = i64, Path, description = "Member's user id")), responses(
    (status = 204, description = "Deleted"),
    (status = 403, description = "forbidden", body = ErrorBody),
    (status = 404, description = "not_found", body = ErrorBody),
    (status = 409, description = "last_owner or user_in_other_workspace", body = ErrorBody)))]
async fn delete_user(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    Admin(ctx): Admin,
    ApiPath(user_id): ApiPath<i64>,
) -> Result<Response, ApiError> {
    let ip = client_ip(&ext);
    state
        .users()
        .delete(&actor(&ctx, ip.as_deref()), UserId(user_id))
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
