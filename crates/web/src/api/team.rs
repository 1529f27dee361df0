//! Team members of the current workspace (`/api/v1/team/members`). Reading is open to every
//! member; changes are for owners and admins. Every query is scoped to the session's workspace.

use crate::AppState;
use crate::error::{ApiError, ApiJson, ApiPath, ErrorBody, json};
use crate::session::{Admin, Member, client_ip};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use switchboard_domain::ErrorCode;
use switchboard_domain::{Membership, Role, Timestamp, User, UserId};
use switchboard_services::NewMember;
use switchboard_services::audit::Audit;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_members, create_member))
        .routes(routes!(update_member, remove_member))
}

/// A member as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct MemberView {
    /// User id.
    pub user_id: i64,
    /// Username.
    pub username: Option<String>,
    /// Display name.
    pub display_name: String,
    /// owner, admin or operator.
    pub role: String,
    /// Chat capacity.
    pub max_chats: i32,
}

impl MemberView {
    fn new(m: &Membership, u: &User) -> Self {
        Self {
            user_id: u.id.0,
            username: u.username.as_ref().map(|n| n.to_string()),
            display_name: u.display_name.clone(),
            role: m.role.as_str().to_string(),
            max_chats: m.max_chats,
        }
    }
}

/// Members list.
#[derive(Serialize, ToSchema)]
pub struct MembersResponse {
    /// Members, by user id.
    pub members: Vec<MemberView>,
}

/// Lists the members of the current workspace.
#[utoipa::path(get, path = "/api/v1/team/members", tag = "team", responses(
    (status = 200, description = "Members", body = MembersResponse),
    (status = 401, description = "unauthenticated", body = ErrorBody)))]
async fn list_members(
    State(state): State<AppState>,
    Member(ctx): Member,
) -> Result<Response, ApiError> {
    let members = state
        .store()
        .list_members(ctx.membership.workspace_id)
        .await?;
    Ok(json(MembersResponse {
        members: members.iter().map(|(m, u)| MemberView::new(m, u)).collect(),
    }))
}

fn parse_role(s: &str) -> Result<Role, ApiError> {
    s.parse()
        .map_err(|_| ApiError::from(ErrorCode::ValidationFailed))
}

fn check_capacity(max_chats: i32) -> Result<i32, ApiError> {
    if (0..=10_000).contains(&max_chats) {
        Ok(max_chats)
    } else {
        Err(ApiError::from(ErrorCode::ValidationFailed))
    }
}

/// A new member.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMemberRequest {
    /// Username (3–64 of `a-z 0-9 . _ -`).
    pub username: String,
    /// Display name; defaults to the username.
    pub display_name: Option<String>,
    /// Password, at least 10 characters.
    pub password: String,
    /// admin or operator (only an owner may create owners).
    pub role: String,
    /// Chat capacity, default 10.
    pub max_chats: Option<i32>,
}

/// Creates a user and adds them to the workspace (admins only).
#[utoipa::path(post, path = "/api/v1/team/members", tag = "team", request_body = CreateMemberRequest, responses(
    (status = 201, description = "Created", body = MemberView),
    (status = 403, description = "forbidden or csrf_failed", body = ErrorBody),
    (status = 409, description = "username_taken", body = ErrorBody),
    (status = 422, description = "invalid_username, weak_password or validation_failed", body = ErrorBody)))]
async fn create_member(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    ApiJson(req): ApiJson<CreateMemberRequest>,
) -> Result<Response, ApiError> {
    let role = parse_role(&req.role)?;
    if role == Role::Owner && ctx.membership.role != Role::Owner {
        return Err(ApiError::forbidden());
    }
    let max_chats = check_capacity(req.max_chats.unwrap_or(10))?;
    let (user, m) = state
        .auth()
        .create_member(
            ctx.membership.workspace_id,
            NewMember {
                username: &req.username,
                display_name: req.display_name.as_deref(),
                password: &req.password,
                role,
                max_chats,
            },
            Some(ctx.user.id),
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(MemberView::new(&m, &user))).into_response())
}

/// Changes to a member.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMemberRequest {
    /// New role.
    pub role: Option<String>,
    /// New capacity.
    pub max_chats: Option<i32>,
}

async fn target_membership(
    state: &AppState,
    ctx_ws: switchboard_domain::WorkspaceId,
    id: i64,
) -> Result<Membership, ApiError> {
    Ok(state.store().get_membership(ctx_ws, UserId(id)).await?)
}

/// Changes a member's role or capacity (admins only; owners are changed only by owners).
#[utoipa::path(patch, path = "/api/v1/team/members/{user_id}", tag = "team", request_body = UpdateMemberRequest,
    params(("user_id" = i64, Path, description = "Member's user id")), responses(
    (status = 200, description = "Updated", body = MemberView),
    (status = 403, description = "forbidden", body = ErrorBody),
    (status = 404, description = "not_found", body = ErrorBody)))]
async fn update_member(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    Admin(ctx): Admin,
    ApiPath(user_id): ApiPath<i64>,
    ApiJson(req): ApiJson<UpdateMemberRequest>,
) -> Result<Response, ApiError> {
    let ws = ctx.membership.workspace_id;
    let current = target_membership(&state, ws, user_id).await?;
    let role = match req.role.as_deref() {
        Some(r) => parse_role(r)?,
        None => current.role,
    };
    let touches_owner = current.role == Role::Owner || role == Role::Owner;
    if touches_owner && ctx.membership.role != Role::Owner {
        return Err(ApiError::forbidden());
    }
    let max_chats = check_capacity(req.max_chats.unwrap_or(current.max_chats))?;
    let m = state
        .store()
        .update_membership(ws, UserId(user_id), role, max_chats)
        .await?;
    let user = state.store().get_user(UserId(user_id)).await?;
    Audit::new("admin.member_updated")
        .workspace(ws)
        .actor(ctx.user.id)
        .target(format!("user:{user_id}"))
        .ip(client_ip(&ext).as_deref())
        .details(serde_json::json!({"role": role.as_str(), "max_chats": max_chats}))
        .record(state.store())
        .await;
    Ok(json(MemberView::new(&m, &user)))
}

/// Removes a member from the workspace (admins only; not yourself; owners only by owners).
#[utoipa::path(delete, path = "/api/v1/team/members/{user_id}", tag = "team",
    params(("user_id" = i64, Path, description = "Member's user id")), responses(
    (status = 204, description = "Removed"),
    (status = 403, description = "forbidden", body = ErrorBody),
    (status = 404, description = "not_found", body = ErrorBody)))]
async fn remove_member(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    Admin(ctx): Admin,
    ApiPath(user_id): ApiPath<i64>,
) -> Result<Response, ApiError> {
    let ws = ctx.membership.workspace_id;
    let current = target_membership(&state, ws, user_id).await?;
    if user_id == ctx.user.id.0
        || (current.role == Role::Owner && ctx.membership.role != Role::Owner)
    {
        return Err(ApiError::forbidden());
    }
    let released = state
        .store()
        .remove_membership(ws, UserId(user_id), Timestamp::now())
        .await?;
    state
        .store()
        .delete_user_web_sessions(UserId(user_id))
        .await?;
    Audit::new("admin.member_removed")
        .workspace(ws)
        .actor(ctx.user.id)
        .target(format!("user:{user_id}"))
        .ip(client_ip(&ext).as_deref())
        .details(serde_json::json!({"chats_released": released.len()}))
        .record(state.store())
        .await;
    state
        .inbox()
        .member_removed(ws, UserId(user_id), &released)
        .await;
    Ok(StatusCode::NO_CONTENT.into_response())
}
