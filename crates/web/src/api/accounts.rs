//! Personal accounts (`/api/v1/accounts/*`, `/api/v1/sessions/get-code`): list with live
//! health, the sign-in flows (phone code, QR, 2FA), import, start/stop, logout, delete and
//! export, and an account's chats and messages. Everything is scoped to the session's workspace.

use crate::AppState;
use crate::error::{ApiError, ApiJson, ErrorBody, json};
use crate::session::{Admin, Member};
use axum::extract::multipart::{MultipartError, MultipartRejection};
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json as j};
use switchboard_domain::i18n::t;
use switchboard_domain::{Account, AccountId};
use switchboard_services::connect::{
    ConnectError, ConnectStep, GetCode, UploadImport, UploadedFile, export_format,
};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Largest file the session upload accepts.
pub const UPLOAD_MAX_FILE_BYTES: usize = 10 * 1024 * 1024;
/// Largest sum of file sizes in one session upload.
pub const UPLOAD_MAX_TOTAL_BYTES: usize = 50 * 1024 * 1024;
/// Most files in one session upload.
pub const UPLOAD_MAX_FILES: usize = 500;
/// The upload's body is read (and the excess discarded) up to this size, so that a client
/// still sending gets the 413 answer; beyond it the connection is cut.
const UPLOAD_BODY_LIMIT: usize = 2 * UPLOAD_MAX_TOTAL_BYTES;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    let upload = OpenApiRouter::new()
        .routes(routes!(upload_sessions))
        .layer(DefaultBodyLimit::max(UPLOAD_BODY_LIMIT));
    OpenApiRouter::new()
        .merge(upload)
        .routes(routes!(list_accounts))
        .routes(routes!(login_phone))
        .routes(routes!(login_qr))
        .routes(routes!(login_status, login_cancel))
        .routes(routes!(login_resend))
        .routes(routes!(login_code))
        .routes(routes!(login_password))
        .routes(routes!(import_session))
        .routes(routes!(get_code))
        .routes(routes!(account_action))
        .routes(routes!(update_account, delete_account))
        .routes(routes!(export_session))
        .routes(routes!(account_chats))
}

impl From<ConnectError> for ApiError {
    fn from(e: ConnectError) -> Self {
        let code = e.code();
        match &e {
            ConnectError::Telegram(t) => {
                if let Some(secs) = t.flood_wait_seconds() {
                    return ApiError::new(StatusCode::TOO_MANY_REQUESTS, code)
                        .retry_after(u64::from(secs));
                }
                let status = match code {
                    "telegram_unreachable"
                    | "telegram_client_crashed"
                    | "telegram_unexpected_answer"
                    | "auth_key_provisioning_failed" => StatusCode::BAD_GATEWAY,
                    "store_error" | "telegram_config_invalid" => StatusCode::INTERNAL_SERVER_ERROR,
                    _ => StatusCode::BAD_REQUEST,
                };
                ApiError::new(status, code)
            }
            ConnectError::FlowNotFound => ApiError::new(StatusCode::NOT_FOUND, code),
            ConnectError::WrongFlow => ApiError::new(StatusCode::CONFLICT, code),
            ConnectError::AccountExists => ApiError::new(StatusCode::CONFLICT, code),
            ConnectError::Store(_) => match code {
                "not_found" => ApiError::not_found(),
                "account_exists" => ApiError::new(StatusCode::CONFLICT, code),
                _ => ApiError::internal(),
            },
            ConnectError::Session(_) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code),
        }
    }
}

fn account_json(state: &AppState, a: &Account) -> Value {
    let worker = state
        .accounts()
        .supervisor()
        .workers()
        .into_iter()
        .find(|w| w.account_id == a.id);
    j!({
        "id": a.id.0,
        "phone": a.phone,
        "telegram_user_id": a.telegram_user_id,
        "first_name": a.first_name,
        "last_name": a.last_name,
        "username": a.username,
        "status": a.status.as_str(),
        "status_detail": a.status_detail,
        "flood_wait_until": a.flood_wait_until.map(|t| t.0),
        "active": a.active,
        "ingest_groups": a.ingest_groups,
        "running": state.accounts().supervisor().is_running(a.id),
        "ingested": worker.map(|w| w.ingested).unwrap_or(0),
        "created_at": a.created_at.0,
    })
}

fn step_json(state: &AppState, flow_id: &str, step: ConnectStep) -> Value {
    match step {
        ConnectStep::CodeSent(sent) => {
            j!({"status": "code_sent", "flow_id": flow_id, "code": sent})
        }
        ConnectStep::PasswordNeeded { hint } => {
            j!({"status": "password_needed", "flow_id": flow_id, "hint": hint})
        }
        ConnectStep::QrPending(token) => {
            j!({"status": "qr_pending", "flow_id": flow_id, "qr": token, "svg": crate::qr::svg(&token.url)})
        }
        ConnectStep::Done(account) => {
            j!({"status": "done", "account": account_json(state, &account)})
        }
    }
}

/// Accounts of the workspace with live health.
#[utoipa::path(get, path = "/api/v1/accounts", tag = "accounts", responses(
    (status = 200, description = "`{accounts: [...]}`", body = Object),
    (status = 401, description = "unauthenticated", body = ErrorBody)))]
async fn list_accounts(
    State(state): State<AppState>,
    Member(ctx): Member,
) -> Result<Response, ApiError> {
    let accounts = state
        .account_store()
        .list_accounts(ctx.membership.workspace_id)
        .await?;
    Ok(json(
        j!({"accounts": accounts.iter().map(|a| account_json(&state, a)).collect::<Vec<_>>()}),
    ))
}

/// A phone number.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PhoneRequest {
    /// International format; non-digits are ignored.
    pub phone: String,
}

/// Starts a phone-code sign-in: Telegram sends a code to the account's apps.
#[utoipa::path(post, path = "/api/v1/accounts/login/phone", tag = "accounts", request_body = PhoneRequest, responses(
    (status = 200, description = "`{status: code_sent, flow_id, code: {delivery, next, length, timeout_secs}}`", body = Object),
    (status = 400, description = "phone_number_invalid, phone_number_banned", body = ErrorBody),
    (status = 429, description = "flood_wait (Retry-After)", body = ErrorBody)))]
async fn login_phone(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    ApiJson(req): ApiJson<PhoneRequest>,
) -> Result<Response, ApiError> {
    let (flow, sent) = state
        .accounts()
        .start_phone(ctx.membership.workspace_id, ctx.user.id, &req.phone)
        .await?;
    Ok(json(step_json(&state, &flow, ConnectStep::CodeSent(sent))))
}

/// Starts a QR sign-in.
#[utoipa::path(post, path = "/api/v1/accounts/login/qr", tag = "accounts", responses(
    (status = 200, description = "`{status: qr_pending, flow_id, qr: {url, expires_at}, svg}`", body = Object)))]
async fn login_qr(State(state): State<AppState>, Admin(ctx): Admin) -> Result<Response, ApiError> {
    let (flow, token) = state
        .accounts()
        .start_qr(ctx.membership.workspace_id, ctx.user.id)
        .await?;
    Ok(json(step_json(
        &state,
        &flow,
        ConnectStep::QrPending(token),
    )))
}

/// Polls a QR sign-in (the token is regenerated before it expires).
#[utoipa::path(get, path = "/api/v1/accounts/login/{flow_id}", tag = "accounts", params(("flow_id" = String, Path)), responses(
    (status = 200, description = "qr_pending, password_needed or done", body = Object),
    (status = 404, description = "login_flow_not_found", body = ErrorBody)))]
async fn login_status(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Path(flow): Path<String>,
) -> Result<Response, ApiError> {
    let step = state
        .accounts()
        .poll_qr(ctx.membership.workspace_id, ctx.user.id, &flow)
        .await?;
    Ok(json(step_json(&state, &flow, step)))
}

/// Cancels a sign-in.
#[utoipa::path(delete, path = "/api/v1/accounts/login/{flow_id}", tag = "accounts", params(("flow_id" = String, Path)), responses(
    (status = 204, description = "Cancelled"), (status = 404, description = "login_flow_not_found", body = ErrorBody)))]
async fn login_cancel(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Path(flow): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .accounts()
        .cancel(ctx.membership.workspace_id, ctx.user.id, &flow)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sends the code again by the next method (app → SMS → call).
#[utoipa::path(post, path = "/api/v1/accounts/login/{flow_id}/resend", tag = "accounts", params(("flow_id" = String, Path)), responses(
    (status = 200, description = "code_sent", body = Object), (status = 400, description = "send_code_unavailable, phone_code_expired", body = ErrorBody)))]
async fn login_resend(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Path(flow): Path<String>,
) -> Result<Response, ApiError> {
    let sent = state
        .accounts()
        .resend(ctx.membership.workspace_id, ctx.user.id, &flow)
        .await?;
    Ok(json(step_json(&state, &flow, ConnectStep::CodeSent(sent))))
}

/// A login code.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    /// The code Telegram sent.
    pub code: String,
}

/// Submits the login code.
#[utoipa::path(post, path = "/api/v1/accounts/login/{flow_id}/code", tag = "accounts", params(("flow_id" = String, Path)), request_body = CodeRequest, responses(
    (status = 200, description = "password_needed or done", body = Object),
    (status = 400, description = "phone_code_invalid, phone_code_expired", body = ErrorBody)))]
async fn login_code(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Path(flow): Path<String>,
    ApiJson(req): ApiJson<CodeRequest>,
) -> Result<Response, ApiError> {
    let step = state
        .accounts()
        .submit_code(ctx.membership.workspace_id, ctx.user.id, &flow, &req.code)
        .await?;
    Ok(json(step_json(&state, &flow, step)))
}

/// A 2FA password.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordRequest {
    /// The account's cloud password.
    pub password: String,
}

/// Submits the 2FA password.
#[utoipa::path(post, path = "/api/v1/accounts/login/{flow_id}/password", tag = "accounts", params(("flow_id" = String, Path)), request_body = PasswordRequest, responses(
    (status = 200, description = "done", body = Object), (status = 400, description = "password_invalid", body = ErrorBody)))]
async fn login_password(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Path(flow): Path<String>,
    ApiJson(req): ApiJson<PasswordRequest>,
) -> Result<Response, ApiError> {
    let step = state
        .accounts()
        .submit_password(
            ctx.membership.workspace_id,
            ctx.user.id,
            &flow,
            &req.password,
        )
        .await?;
    Ok(json(step_json(&state, &flow, step)))
}

/// A session to import.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportRequest {
    /// A Telethon, Pyrogram/Hydrogram/Kurigram or gramjs string session.
    pub session_string: String,
}

/// Imports a string session; it is validated with one connection before the account goes live.
#[utoipa::path(post, path = "/api/v1/accounts/import", tag = "accounts", request_body = ImportRequest, responses(
    (status = 201, description = "`{account}` (status connected/connecting, or unauthorized for a revoked key)", body = Object),
    (status = 409, description = "account_exists", body = ErrorBody),
    (status = 422, description = "session_* codes naming the problem", body = ErrorBody)))]
async fn import_session(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    ApiJson(req): ApiJson<ImportRequest>,
) -> Result<Response, ApiError> {
    let imported = state
        .accounts()
        .import_string(
            ctx.membership.workspace_id,
            ctx.user.id,
            &req.session_string,
        )
        .await?;
    let mut res = json(j!({"account": account_json(&state, &imported.account)}));
    *res.status_mut() = StatusCode::CREATED;
    Ok(res)
}

/// Imports uploaded `.session` files (Telethon, Pyrogram/Hydrogram/Kurigram), JSON +
/// `.session` pairs (same folder and stem) and folders laid out as `{phone}/{phone}.json` +
/// `{phone}/{phone}.session`. Each account is validated with one connection before it goes
/// live; an entry that fails stores nothing and does not stop the others. A request over a
/// size limit imports nothing.
#[utoipa::path(post, path = "/api/v1/accounts/import/upload", tag = "accounts",
    request_body(content = Vec<u8>, content_type = "multipart/form-data",
        description = "Any number of file parts. A part's file name may be a relative path (`+1555/+1555.json`), as a browser's folder upload sends it."), responses(
    (status = 200, description = "`{entries: [{name, files, status: imported, account, warnings} | {name, files, status: error, error: {code, message}}], imported, failed}`", body = Object),
    (status = 400, description = "upload_empty, upload_invalid", body = ErrorBody),
    (status = 413, description = "upload_file_too_large (10 MiB per file), upload_too_large (50 MiB in all), upload_too_many_files (500): nothing imported", body = ErrorBody)))]
async fn upload_sessions(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let multipart =
        multipart.map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "upload_invalid"))?;
    let files = read_upload(multipart).await?;
    let entries = state
        .accounts()
        .import_uploads(ctx.membership.workspace_id, ctx.user.id, files)
        .await?;
    let locale = crate::locale::request_locale(&headers);
    let (mut imported, mut failed) = (0, 0);
    let mut out = Vec::with_capacity(entries.len());
    for UploadImport {
        name,
        files,
        outcome,
    } in entries
    {
        out.push(match outcome {
            Ok((account, warnings)) => {
                imported += 1;
                j!({"name": name, "files": files, "status": "imported",
                    "account": account_json(&state, &account), "warnings": warnings})
            }
            Err(code) => {
                failed += 1;
                j!({"name": name, "files": files, "status": "error",
                    "error": {"code": code, "message": t(locale, code)}})
            }
        });
    }
    Ok(json(
        j!({"entries": out, "imported": imported, "failed": failed}),
    ))
}

/// Reads every file part, enforcing the limits. After a limit is hit the rest of the body is
/// still read (and dropped) up to the route's body limit, so the client sees the answer.
async fn read_upload(mut multipart: Multipart) -> Result<Vec<UploadedFile>, ApiError> {
    let too_large = |code| ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, code);
    let mut files = Vec::new();
    let mut total = 0usize;
    let mut refused: Option<ApiError> = None;
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        let name = field.file_name().map(str::to_owned);
        if refused.is_none() && name.is_some() && files.len() == UPLOAD_MAX_FILES {
            refused = Some(too_large("upload_too_many_files"));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
            if refused.is_some() || name.is_none() {
                continue;
            }
            total += chunk.len();
            if bytes.len() + chunk.len() > UPLOAD_MAX_FILE_BYTES {
                refused = Some(too_large("upload_file_too_large"));
            } else if total > UPLOAD_MAX_TOTAL_BYTES {
                refused = Some(too_large("upload_too_large"));
            } else {
                bytes.extend_from_slice(&chunk);
            }
        }
        if let (None, Some(name)) = (&refused, name) {
            files.push(UploadedFile { name, bytes });
        }
    }
    match refused {
        Some(e) => Err(e),
        None if files.is_empty() => Err(ApiError::bad_request("upload_empty")),
        None => Ok(files),
    }
}

fn multipart_error(e: MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "upload_too_large")
    } else {
        ApiError::bad_request("upload_invalid")
    }
}

/// Seed 004's request.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GetCodeRequest {
    /// Phone number.
    pub phone_number: String,
}

/// `session_exists` when a usable session for this phone is stored (no code is requested),
/// otherwise starts a phone sign-in and answers `code_sent`.
#[utoipa::path(post, path = "/api/v1/sessions/get-code", tag = "accounts", request_body = GetCodeRequest, responses(
    (status = 200, description = "`{status: session_exists, account}` or `{status: code_sent, flow_id, code}`", body = Object)))]
async fn get_code(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    ApiJson(req): ApiJson<GetCodeRequest>,
) -> Result<Response, ApiError> {
    match state
        .accounts()
        .get_code(ctx.membership.workspace_id, ctx.user.id, &req.phone_number)
        .await?
    {
        GetCode::SessionExists(a) => Ok(json(
            j!({"status": "session_exists", "account": account_json(&state, &a)}),
        )),
        GetCode::CodeSent { flow_id, sent } => Ok(json(step_json(
            &state,
            &flow_id,
            ConnectStep::CodeSent(sent),
        ))),
    }
}

/// Starts, stops or logs out an account (`action` is `start`, `stop` or `logout`).
#[utoipa::path(post, path = "/api/v1/accounts/{id}/{action}", tag = "accounts",
    params(("id" = i64, Path), ("action" = String, Path, description = "start, stop or logout")), responses(
    (status = 200, description = "`{account}`", body = Object), (status = 404, description = "not_found", body = ErrorBody)))]
async fn account_action(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Path((id, action)): Path<(i64, String)>,
) -> Result<Response, ApiError> {
    let (ws, user, id) = (ctx.membership.workspace_id, ctx.user.id, AccountId(id));
    let a = match action.as_str() {
        "start" => state.accounts().start(ws, user, id).await?,
        "stop" => state.accounts().stop(ws, user, id).await?,
        "logout" => state.accounts().logout(ws, user, id).await?,
        _ => return Err(ApiError::not_found()),
    };
    Ok(json(j!({"account": account_json(&state, &a)})))
}

/// Settings of an account that can be changed.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountUpdate {
    /// Store messages of group chats too (private chats are always stored).
    pub ingest_groups: bool,
}

/// Changes an account's settings (admins; audited).
#[utoipa::path(patch, path = "/api/v1/accounts/{id}", tag = "accounts", params(("id" = i64, Path)), request_body = AccountUpdate, responses(
    (status = 200, description = "`{account}`", body = Object),
    (status = 404, description = "not_found", body = ErrorBody),
    (status = 422, description = "invalid_json", body = ErrorBody)))]
async fn update_account(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<AccountUpdate>,
) -> Result<Response, ApiError> {
    let a = state
        .accounts()
        .set_ingest_groups(
            ctx.membership.workspace_id,
            ctx.user.id,
            AccountId(id),
            req.ingest_groups,
        )
        .await?;
    Ok(json(j!({"account": account_json(&state, &a)})))
}

/// Deletes an account with its session, chats and messages.
#[utoipa::path(delete, path = "/api/v1/accounts/{id}", tag = "accounts", params(("id" = i64, Path)), responses(
    (status = 204, description = "Deleted"), (status = 404, description = "not_found", body = ErrorBody)))]
async fn delete_account(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    state
        .accounts()
        .delete(ctx.membership.workspace_id, ctx.user.id, AccountId(id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Export format.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportRequest {
    /// `telethon` or `pyrogram`.
    pub format: String,
}

/// Exports the session as a string (admins only; audited). The string is a credential.
#[utoipa::path(post, path = "/api/v1/accounts/{id}/export", tag = "accounts", params(("id" = i64, Path)), request_body = ExportRequest, responses(
    (status = 200, description = "`{format, session_string}`", body = Object), (status = 422, description = "validation_failed", body = ErrorBody)))]
async fn export_session(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<ExportRequest>,
) -> Result<Response, ApiError> {
    let format = export_format(&req.format)
        .ok_or_else(|| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"))?;
    let s = state
        .accounts()
        .export(
            ctx.membership.workspace_id,
            ctx.user.id,
            AccountId(id),
            format,
        )
        .await?;
    Ok(json(
        j!({"format": req.format, "session_string": s.expose()}),
    ))
}

/// An account's chats, newest activity first.
#[utoipa::path(get, path = "/api/v1/accounts/{id}/chats", tag = "accounts", params(("id" = i64, Path)), responses(
    (status = 200, description = "`{chats}`", body = Object)))]
async fn account_chats(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let chats = state
        .account_store()
        .list_account_chats(ctx.membership.workspace_id, AccountId(id))
        .await?;
    Ok(json(j!({"chats": chats})))
}
