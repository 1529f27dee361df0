//! Team members of the current workspace (`/api/v1/team/members`). Reading is open to every
//! member; changes are for owners and admins, and their rules are the team service's
//! (`switchboard_services::team`). Every query is scoped to the session's workspace.

use crate::AppState;
use crate::error::{ApiError, ApiJson, ApiPath, ErrorBody, json};
use crate::session::{Admin, Member, client_ip};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use switchboard_domain::ErrorCode;
use switchboard_domain::team::MemberChange;
use switchboard_domain::{Membership, Role, User, UserId};
use switchboard_services::{NewMember, SessionContext, TeamActor};
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
    let members = state.team().members(ctx.membership.workspace_id).await?;
    Ok(json(MembersResponse {
        members: members.iter().map(|(m, u)| MemberView::new(m, u)).collect(),
    }))
}

fn parse_role(s: &str) -> Result<Role, ApiError> {
    s.parse()
        .map_err(|_| ApiError::from(ErrorCode::ValidationFailed))
}

/// The caller as the team service (and the user controls) see them.
pub(super) fn actor<'a>(ctx: &SessionContext, ip: Option<&'a str>) -> TeamActor<'a> {
    TeamActor {
        workspace: ctx.membership.workspace_id,
        user: ctx.user.id,
        role: ctx.membership.role,
        ip,
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
    ext: axum::http::Extensions,
    Admin(ctx): Admin,
    ApiJson(req): ApiJson<CreateMemberRequest>,
) -> Result<Response, ApiError> {
    let role = parse_role(&req.role)?;
    let ip = client_ip(&ext);
    let (user, m) = state
        .team()
        .add(
            &actor(&ctx, ip.as_deref()),
            NewMember {
                username: &req.username,
                display_name: req.display_name.as_deref(),
                password: &req.password,
                role,
                max_chats: req.max_chats.unwrap_or(10),
            },
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

/// Changes a member's role or capacity (admins only; owners are changed only by owners, and
/// the last owner stays one).
#[utoipa::path(patch, path = "/api/v1/team/members/{user_id}", tag = "team", request_body = UpdateMemberRequest,
    params(("user_id" = i64, Path, description = "Member's user id")), responses(
    (status = 200, description = "Updated", body = MemberView),
    (status = 403, description = "forbidden", body = ErrorBody),
    (status = 404, description = "not_found", body = ErrorBody),
    (status = 409, description = "last_owner", body = ErrorBody),
    (status = 422, description = "validation_failed", body = ErrorBody)))]
async fn update_member(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    Admin(ctx): Admin,
    ApiPath(user_id): ApiPath<i64>,
    ApiJson(req): ApiJson<UpdateMemberRequest>,
) -> Result<Response, ApiError> {
    let change = MemberChange {
        role: req.role.as_deref().map(parse_role).transpose()?,
        max_chats: req.max_chats,
    };
    let ip = client_ip(&ext);
    let (m, user) = state
        .team()
        .update(&actor(&ctx, ip.as_deref()), UserId(user_id), change)
        .await?;
    Ok(json(MemberView::new(&m, &user)))
}

/// Removes a member from the workspace (admins only; not yourself; owners only by owners,
/// never the last one). Their chats return to the queue and their sessions end.
#[utoipa::path(delete, path = "/api/v1/team/members/{user_id}", tag = "team",
    params(("user_id" = i64, Path, description = "Member's user id")), responses(
    (status = 204, description = "Removed"),
    (status = 403, description = "forbidden", body = ErrorBody),
    (status = 404, description = "not_found", body = ErrorBody),
    (status = 409, description = "last_owner", body = ErrorBody)))]
async fn remove_member(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    Admin(ctx): Admin,
    ApiPath(user_id): ApiPath<i64>,
) -> Result<Response, ApiError> {
    let ip = client_ip(&ext);
    state
        .team()
        .remove(&actor(&ctx, ip.as_deref()), UserId(user_id))
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
