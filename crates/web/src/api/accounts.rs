//! Personal accounts (`/api/v1/accounts/*`, `/api/v1/sessions/get-code`): list with live
//! health, the sign-in flows (phone code, QR, 2FA), import, start/stop, logout, delete and
//! export, and an account's chats and messages. Everything is scoped to the session's workspace.

use crate::AppState;
use crate::error::{ApiError, ApiJson, ApiPath, ErrorBody, json};
use crate::openapi::ConnectErrors;
use crate::session::{Admin, Member};
use axum::extract::multipart::{MultipartError, MultipartRejection};
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use switchboard_domain::ErrorCode;
use switchboard_domain::i18n::t;
use switchboard_domain::{Account, AccountId, AccountStatus, Chat, Timestamp};
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
        let error = ApiError::from_connect(code, &e);
        if error.status().is_server_error() {
            // What went wrong on our side is in the log (never a secret: the errors carry
            // none), the answer only says that it did.
            tracing::error!(code, error = %e, "connecting an account failed");
        }
        error
    }
}

impl ApiError {
    fn from_connect(code: &'static str, e: &ConnectError) -> Self {
        match e {
            ConnectError::Telegram(t) => {
                if let Some(secs) = t.flood_wait_seconds() {
                    return ApiError::new(StatusCode::TOO_MANY_REQUESTS, code)
                        .retry_after(u64::from(secs));
                }
                let status = match code {
                    "telegram_unreachable"
                    | "telegram_client_crashed"
                    | "telegram_unexpected_answer"
                    | "auth_key_provisioning_failed"
                    | "telegram_proxy_unreachable"
                    | "telegram_proxy_auth_failed"
                    | "telegram_proxy_failed" => StatusCode::BAD_GATEWAY,
                    "store_error" | "telegram_config_invalid" => StatusCode::INTERNAL_SERVER_ERROR,
                    _ => StatusCode::BAD_REQUEST,
                };
                ApiError::new(status, code)
            }
            ConnectError::FlowNotFound => ApiError::new(StatusCode::NOT_FOUND, code),
            ConnectError::WrongFlow => ApiError::new(StatusCode::CONFLICT, code),
            ConnectError::AccountExists => ErrorCode::AccountExists.into(),
            ConnectError::Store(_) => match code {
                "not_found" => ApiError::not_found(),
                "account_exists" => ApiError::new(StatusCode::CONFLICT, code),
                _ => ApiError::internal(),
            },
            ConnectError::Session(_) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code),
        }
    }
}

/// A personal account as the API shows it: stored facts and live health.
#[derive(Serialize, ToSchema)]
pub struct AccountView {
    /// Identifier.
    pub id: AccountId,
    /// Phone number, digits only.
    pub phone: Option<String>,
    /// Telegram user id, once signed in.
    pub telegram_user_id: Option<i64>,
    /// First name on Telegram.
    pub first_name: String,
    /// Last name on Telegram.
    pub last_name: Option<String>,
    /// Public username.
    pub username: Option<String>,
    /// Connection health.
    pub status: AccountStatus,
    /// Why it is in that state.
    pub status_detail: Option<String>,
    /// End of a FloodWait.
    pub flood_wait_until: Option<Timestamp>,
    /// Supervised (false after stop or logout).
    pub active: bool,
    /// Group chats are ingested too.
    pub ingest_groups: bool,
    /// Its client is running now.
    pub running: bool,
    /// Messages its current worker ingested.
    pub ingested: u64,
    /// Created.
    pub created_at: Timestamp,
}

impl AccountView {
    fn new(state: &AppState, a: Account) -> Self {
        let ingested = state
            .accounts()
            .supervisor()
            .worker(a.id)
            .map_or(0, |w| w.ingested);
        Self {
            running: state.accounts().supervisor().is_running(a.id),
            ingested,
            id: a.id,
            phone: a.phone,
            telegram_user_id: a.telegram_user_id,
            first_name: a.first_name,
            last_name: a.last_name,
            username: a.username,
            status: a.status,
            status_detail: a.status_detail,
            flood_wait_until: a.flood_wait_until,
            active: a.active,
            ingest_groups: a.ingest_groups,
            created_at: a.created_at,
        }
    }
}

/// The accounts of the workspace.
#[derive(Serialize, ToSchema)]
pub struct AccountsResponse {
    /// By id.
    pub accounts: Vec<AccountView>,
}

/// One account.
#[derive(Serialize, ToSchema)]
pub struct AccountResponse {
    /// The account.
    pub account: AccountView,
}

/// How a login code was sent.
#[derive(Serialize, ToSchema)]
pub struct CodeView {
    /// How this code was delivered: `app`, `sms`, `call`, `flash_call`, `missed_call`,
    /// `email` or `other`.
    pub delivery: &'static str,
    /// How a resend would deliver the next one, if it can.
    pub next: Option<&'static str>,
    /// Digits in the code, when Telegram says.
    pub length: Option<i32>,
    /// Seconds before a resend is allowed, when Telegram says.
    pub timeout_secs: Option<i32>,
}

/// A QR login token.
#[derive(Serialize, ToSchema)]
pub struct QrView {
    /// `tg://login?token=…`, to show as a QR code.
    pub url: String,
    /// When it expires (unix seconds).
    pub expires_at: i64,
}

/// Where a sign-in stands (`status` says which).
#[derive(Serialize, ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum LoginStep {
    /// A code was sent; submit it to `…/code`.
    CodeSent {
        /// The flow.
        flow_id: String,
        /// How it was sent.
        code: CodeView,
    },
    /// The account has a 2FA password; submit it to `…/password`.
    PasswordNeeded {
        /// The flow.
        flow_id: String,
        /// The hint the owner set.
        hint: Option<String>,
    },
    /// Waiting for the QR code to be scanned.
    QrPending {
        /// The flow.
        flow_id: String,
        /// The token.
        qr: QrView,
        /// The token as an SVG QR code.
        svg: String,
    },
    /// Connected.
    Done {
        /// The account.
        account: AccountView,
    },
    /// `POST /api/v1/sessions/get-code` only: a usable session is stored; no code was asked.
    SessionExists {
        /// The account.
        account: AccountView,
    },
}

impl LoginStep {
    fn new(state: &AppState, flow_id: &str, step: ConnectStep) -> Self {
        let flow_id = flow_id.to_string();
        match step {
            ConnectStep::CodeSent(sent) => LoginStep::CodeSent {
                flow_id,
                code: CodeView {
                    delivery: sent.delivery.as_str(),
                    next: sent.next.map(|n| n.as_str()),
                    length: sent.length,
                    timeout_secs: sent.timeout_secs,
                },
            },
            ConnectStep::PasswordNeeded { hint } => LoginStep::PasswordNeeded { flow_id, hint },
            ConnectStep::QrPending(token) => LoginStep::QrPending {
                flow_id,
                svg: crate::qr::svg(&token.url),
                qr: QrView {
                    url: token.url,
                    expires_at: token.expires_at,
                },
            },
            ConnectStep::Done(account) => LoginStep::Done {
                account: AccountView::new(state, account),
            },
        }
    }
}

/// The outcome of one entry of a session upload (`status` says which).
#[derive(Serialize, ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum UploadOutcome {
    /// The account was imported.
    Imported {
        /// The entry (a folder or file stem).
        name: String,
        /// Its files.
        files: Vec<String>,
        /// The account.
        account: AccountView,
        /// Codes of what was odd but not fatal.
        warnings: Vec<&'static str>,
    },
    /// Nothing was stored for this entry.
    Error {
        /// The entry.
        name: String,
        /// Its files.
        files: Vec<String>,
        /// Why.
        error: crate::error::ErrorDetail,
    },
}

/// The outcome of a session upload.
#[derive(Serialize, ToSchema)]
pub struct UploadResult {
    /// One per entry.
    pub entries: Vec<UploadOutcome>,
    /// Entries imported.
    pub imported: u32,
    /// Entries refused.
    pub failed: u32,
}

/// An exported session.
#[derive(Serialize, ToSchema)]
pub struct ExportResponse {
    /// `telethon` or `pyrogram`.
    pub format: String,
    /// The session string (a credential).
    pub session_string: String,
}

/// An account's chats.
#[derive(Serialize, ToSchema)]
pub struct AccountChatsResponse {
    /// Newest activity first.
    pub chats: Vec<Chat>,
}

/// Accounts of the workspace with live health.
#[utoipa::path(get, path = "/api/v1/accounts", tag = "accounts", responses(
    (status = 200, description = "The accounts", body = AccountsResponse),
    (status = 401, description = "unauthenticated", body = ErrorBody)))]
async fn list_accounts(
    State(state): State<AppState>,
    Member(ctx): Member,
) -> Result<Response, ApiError> {
    let accounts = state
        .account_store()
        .list_accounts(ctx.membership.workspace_id)
        .await?;
    Ok(json(AccountsResponse {
        accounts: accounts
            .into_iter()
            .map(|a| AccountView::new(&state, a))
            .collect(),
    }))
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
    (status = 200, description = "`code_sent`", body = LoginStep), ConnectErrors))]
async fn login_phone(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    ApiJson(req): ApiJson<PhoneRequest>,
) -> Result<Response, ApiError> {
    let (flow, sent) = state
        .accounts()
        .start_phone(ctx.membership.workspace_id, ctx.user.id, &req.phone)
        .await?;
    Ok(json(LoginStep::new(
        &state,
        &flow,
        ConnectStep::CodeSent(sent),
    )))
}

/// Starts a QR sign-in.
#[utoipa::path(post, path = "/api/v1/accounts/login/qr", tag = "accounts", responses(
    (status = 200, description = "`qr_pending`", body = LoginStep), ConnectErrors))]
async fn login_qr(State(state): State<AppState>, Admin(ctx): Admin) -> Result<Response, ApiError> {
    let (flow, token) = state
        .accounts()
        .start_qr(ctx.membership.workspace_id, ctx.user.id)
        .await?;
    Ok(json(LoginStep::new(
        &state,
        &flow,
        ConnectStep::QrPending(token),
    )))
}

/// Polls a QR sign-in (the token is regenerated before it expires).
#[utoipa::path(get, path = "/api/v1/accounts/login/{flow_id}", tag = "accounts", params(("flow_id" = String, Path)), responses(
    (status = 200, description = "`qr_pending`, `password_needed` or `done`", body = LoginStep),
    ConnectErrors))]
async fn login_status(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    ApiPath(flow): ApiPath<String>,
) -> Result<Response, ApiError> {
    let step = state
        .accounts()
        .poll_qr(ctx.membership.workspace_id, ctx.user.id, &flow)
        .await?;
    Ok(json(LoginStep::new(&state, &flow, step)))
}

/// Cancels a sign-in.
#[utoipa::path(delete, path = "/api/v1/accounts/login/{flow_id}", tag = "accounts", params(("flow_id" = String, Path)), responses(
    (status = 204, description = "Cancelled"), ConnectErrors))]
async fn login_cancel(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    ApiPath(flow): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state
        .accounts()
        .cancel(ctx.membership.workspace_id, ctx.user.id, &flow)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sends the code again by the next method (app → SMS → call).
#[utoipa::path(post, path = "/api/v1/accounts/login/{flow_id}/resend", tag = "accounts", params(("flow_id" = String, Path)), responses(
    (status = 200, description = "`code_sent`", body = LoginStep), ConnectErrors))]
async fn login_resend(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    ApiPath(flow): ApiPath<String>,
) -> Result<Response, ApiError> {
    let sent = state
        .accounts()
        .resend(ctx.membership.workspace_id, ctx.user.id, &flow)
        .await?;
    Ok(json(LoginStep::new(
        &state,
        &flow,
        ConnectStep::CodeSent(sent),
    )))
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
    (status = 200, description = "`password_needed` or `done`", body = LoginStep), ConnectErrors))]
async fn login_code(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    ApiPath(flow): ApiPath<String>,
    ApiJson(req): ApiJson<CodeRequest>,
) -> Result<Response, ApiError> {
    let step = state
        .accounts()
        .submit_code(ctx.membership.workspace_id, ctx.user.id, &flow, &req.code)
        .await?;
    Ok(json(LoginStep::new(&state, &flow, step)))
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
    (status = 200, description = "`done`", body = LoginStep), ConnectErrors))]
async fn login_password(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    ApiPath(flow): ApiPath<String>,
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
    Ok(json(LoginStep::new(&state, &flow, step)))
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
    (status = 201, description = "The account (status connected/connecting, or unauthorized for a revoked key)", body = AccountResponse),
    ConnectErrors))]
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
    let mut res = json(AccountResponse {
        account: AccountView::new(&state, imported.account),
    });
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
    (status = 200, description = "One outcome per entry", body = UploadResult),
    (status = 400, description = "upload_empty, upload_invalid", body = ErrorBody),
    (status = 413, description = "upload_file_too_large (10 MiB per file), upload_too_large (50 MiB in all), upload_too_many_files (500): nothing imported", body = ErrorBody)))]
async fn upload_sessions(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let multipart = multipart.map_err(|_| ApiError::from(ErrorCode::UploadInvalid))?;
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
                UploadOutcome::Imported {
                    name,
                    files,
                    account: AccountView::new(&state, account),
                    warnings,
                }
            }
            Err(code) => {
                failed += 1;
                UploadOutcome::Error {
                    name,
                    files,
                    error: crate::error::ErrorDetail {
                        code: code.to_string(),
                        message: t(locale, code).to_string(),
                        position: None,
                        expected: None,
                    },
                }
            }
        });
    }
    Ok(json(UploadResult {
        entries: out,
        imported,
        failed,
    }))
}

/// Reads every file part, enforcing the limits. After a limit is hit the rest of the body is
/// still read (and dropped) up to the route's body limit, so the client sees the answer.
async fn read_upload(mut multipart: Multipart) -> Result<Vec<UploadedFile>, ApiError> {
    let too_large = ApiError::from;
    let mut files = Vec::new();
    let mut total = 0usize;
    let mut refused: Option<ApiError> = None;
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        let name = field.file_name().map(str::to_owned);
        if refused.is_none() && name.is_some() && files.len() == UPLOAD_MAX_FILES {
            refused = Some(too_large(ErrorCode::UploadTooManyFiles));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
            if refused.is_some() || name.is_none() {
                continue;
            }
            total += chunk.len();
            if bytes.len() + chunk.len() > UPLOAD_MAX_FILE_BYTES {
                refused = Some(too_large(ErrorCode::UploadFileTooLarge));
            } else if total > UPLOAD_MAX_TOTAL_BYTES {
                refused = Some(too_large(ErrorCode::UploadTooLarge));
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
        None if files.is_empty() => Err(ApiError::from(ErrorCode::UploadEmpty)),
        None => Ok(files),
    }
}

fn multipart_error(e: MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::from(ErrorCode::UploadTooLarge)
    } else {
        ApiError::from(ErrorCode::UploadInvalid)
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
    (status = 200, description = "`session_exists` or `code_sent`", body = LoginStep), ConnectErrors))]
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
        GetCode::SessionExists(a) => Ok(json(LoginStep::SessionExists {
            account: AccountView::new(&state, a),
        })),
        GetCode::CodeSent { flow_id, sent } => Ok(json(LoginStep::new(
            &state,
            &flow_id,
            ConnectStep::CodeSent(sent),
        ))),
    }
}

/// Starts, stops or logs out an account (`action` is `start`, `stop` or `logout`).
#[utoipa::path(post, path = "/api/v1/accounts/{id}/{action}", tag = "accounts",
    params(("id" = i64, Path), ("action" = String, Path, description = "start, stop or logout")), responses(
    (status = 200, description = "The account", body = AccountResponse), ConnectErrors))]
async fn account_action(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    ApiPath((id, action)): ApiPath<(i64, String)>,
) -> Result<Response, ApiError> {
    let (ws, user, id) = (ctx.membership.workspace_id, ctx.user.id, AccountId(id));
    let a = match action.as_str() {
        "start" => state.accounts().start(ws, user, id).await?,
        "stop" => state.accounts().stop(ws, user, id).await?,
        "logout" => state.accounts().logout(ws, user, id).await?,
        _ => return Err(ApiError::not_found()),
    };
    Ok(json(AccountResponse {
        account: AccountView::new(&state, a),
    }))
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
    (status = 200, description = "The account", body = AccountResponse), ConnectErrors))]
async fn update_account(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    ApiPath(id): ApiPath<i64>,
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
    Ok(json(AccountResponse {
        account: AccountView::new(&state, a),
    }))
}

/// Deletes an account with its session, chats and messages.
#[utoipa::path(delete, path = "/api/v1/accounts/{id}", tag = "accounts", params(("id" = i64, Path)), responses(
    (status = 204, description = "Deleted"), ConnectErrors))]
async fn delete_account(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    ApiPath(id): ApiPath<i64>,
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
    (status = 200, description = "The session string", body = ExportResponse), ConnectErrors))]
async fn export_session(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<ExportRequest>,
) -> Result<Response, ApiError> {
    let format =
        export_format(&req.format).ok_or_else(|| ApiError::from(ErrorCode::ValidationFailed))?;
    let s = state
        .accounts()
        .export(
            ctx.membership.workspace_id,
            ctx.user.id,
            AccountId(id),
            format,
        )
        .await?;
    Ok(json(ExportResponse {
        format: req.format,
        session_string: s.expose().to_string(),
    }))
}

/// An account's chats, newest activity first.
#[utoipa::path(get, path = "/api/v1/accounts/{id}/chats", tag = "accounts", params(("id" = i64, Path)), responses(
    (status = 200, description = "The chats", body = AccountChatsResponse)))]
async fn account_chats(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    ApiPath(id): ApiPath<i64>,
) -> Result<Response, ApiError> {
    let chats = state
        .account_store()
        .list_account_chats(ctx.membership.workspace_id, AccountId(id))
        .await?;
    Ok(json(AccountChatsResponse { chats }))
}
