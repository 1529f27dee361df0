//! API errors: every failure leaves as `{"error":{"code","message"}}` with a stable snake_case
//! code. Messages come from the string catalogue; [`crate::locale::localize_errors`] rewrites
//! them into the caller's language on the way out.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use switchboard_domain::i18n;
use switchboard_domain::{ErrorCode, Locale, StoreError};
use switchboard_services::replies::ReplyError;
use switchboard_services::{AuthError, TeamError};
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// Code and message of an error.
#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `invalid_credentials`.
    pub code: String,
    /// Human-readable message in the caller's language.
    pub message: String,
    /// `query_invalid` and `schedule_invalid` only: the 0-based character position in the query
    /// (or the schedule's part) where it went wrong.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
    /// `query_invalid` only: what would have been accepted there (`)`, `]`, `"`, `/`, `word`,
    /// `term`, `end_of_query`, `shorter_query`, `fewer_terms`, `less_nesting`,
    /// `fewer_regexes`, `valid_regex`, `smaller_regex`); `schedule_invalid`: the reason
    /// (`time_zone`, `local_time`, `time_of_day`, `weekday`, `five_fields`, `minute`, `hour`,
    /// `day_of_month`, `month`, `day_of_week`, `cron`, `never`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
}

/// Marks a response as an API error so its message can be localised.
#[derive(Clone, Copy, Debug)]
pub struct ErrorMark(pub &'static str);

/// Where a query went wrong, carried by a `query_invalid` answer (and kept when its message is
/// localised).
#[derive(Clone, Debug)]
pub struct QueryAt {
    /// 0-based character position.
    pub position: usize,
    /// What was expected there.
    pub expected: &'static str,
    /// The English message, e.g. `expected ")" at 22`.
    pub message: String,
}

/// An API error: status, stable code, optional `Retry-After`. The API's own codes come from
/// [`ErrorCode`] (`ApiError::from(ErrorCode::NotFound)`), which fixes each code's status; codes
/// of the library crates' errors (sessions, Telegram) are given with their status by the
/// `From` impls that map those errors.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    retry_after: Option<u64>,
    query: Option<QueryAt>,
}

impl ApiError {
    /// An error with a status and a catalogue code, for the codes of library errors; the API's
    /// own codes are [`ErrorCode`]s.
    pub fn new(status: StatusCode, code: &'static str) -> Self {
        Self {
            status,
            code,
            retry_after: None,
            query: None,
        }
    }

    /// `query_invalid` with where the query went wrong.
    pub fn query_invalid(at: QueryAt) -> Self {
        let mut e = ApiError::from(ErrorCode::QueryInvalid);
        e.query = Some(at);
        e
    }

    /// `schedule_invalid` with where the schedule went wrong (`position` in the part that is
    /// wrong, `expected` the reason).
    pub fn schedule_invalid(at: QueryAt) -> Self {
        let mut e = ApiError::from(ErrorCode::ScheduleInvalid);
        e.query = Some(at);
        e
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// Adds a `Retry-After` header.
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// 401 `unauthenticated`.
    pub fn unauthenticated() -> Self {
        ErrorCode::Unauthenticated.into()
    }

    /// 403 `forbidden`.
    pub fn forbidden() -> Self {
        ErrorCode::Forbidden.into()
    }

    /// 404 `not_found`.
    pub fn not_found() -> Self {
        ErrorCode::NotFound.into()
    }

    /// 500 `internal`.
    pub fn internal() -> Self {
        ErrorCode::Internal.into()
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        self.code
    }
}

/// Builds the JSON error body in a language (with the place of a query error).
pub fn error_json(code: &str, locale: Locale, query: Option<&QueryAt>) -> String {
    let message = match (query, locale) {
        (Some(q), Locale::En) => q.message.clone(),
        _ => i18n::t(locale, code).to_string(),
    };
    let body = ErrorBody {
        error: ErrorDetail {
            code: code.to_string(),
            message,
            position: query.map(|q| q.position as u64),
            expected: query.map(|q| q.expected.to_string()),
        },
    };
    serde_json::to_string(&body)
        .unwrap_or_else(|_| "{\"error\":{\"code\":\"internal\",\"message\":\"\"}}".into())
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (
            self.status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            error_json(self.code, Locale::En, self.query.as_ref()),
        )
            .into_response();
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        res.extensions_mut().insert(ErrorMark(self.code));
        if let Some(q) = self.query {
            res.extensions_mut().insert(q);
        }
        res
    }
}

impl From<ErrorCode> for ApiError {
    fn from(code: ErrorCode) -> Self {
        let status =
            StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Self::new(status, code.code())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::not_found(),
            StoreError::Conflict(code) => code.into(),
            StoreError::Backend(msg) => {
                tracing::error!(error = %msg, "store failure");
                ApiError::internal()
            }
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::InvalidCredentials => ErrorCode::InvalidCredentials.into(),
            AuthError::Locked { retry_after_secs } => {
                ApiError::from(ErrorCode::AccountLocked).retry_after(retry_after_secs)
            }
            AuthError::RateLimited { retry_after_secs } => {
                ApiError::from(ErrorCode::RateLimited).retry_after(retry_after_secs)
            }
            AuthError::NoWorkspace => ErrorCode::NoWorkspace.into(),
            AuthError::InvalidUsername => ErrorCode::InvalidUsername.into(),
            AuthError::WeakPassword => ErrorCode::WeakPassword.into(),
            AuthError::UsernameTaken => ErrorCode::UsernameTaken.into(),
            AuthError::Store(e) => e.into(),
            AuthError::Hash => ApiError::internal(),
        }
    }
}

impl From<TeamError> for ApiError {
    fn from(e: TeamError) -> Self {
        let code = e.code();
        match e {
            TeamError::Forbidden => ApiError::forbidden(),
            TeamError::LastOwner => ApiError::from(ErrorCode::LastOwner),
            TeamError::Invalid => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code),
            TeamError::NotFound => ApiError::not_found(),
            TeamError::Auth(e) => e.into(),
            TeamError::Store(e) => e.into(),
        }
    }
}

impl From<ReplyError> for ApiError {
    fn from(e: ReplyError) -> Self {
        let status = match e {
            ReplyError::Invalid | ReplyError::FileNotFound => StatusCode::UNPROCESSABLE_ENTITY,
            ReplyError::TypeNotAllowed => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        };
        ApiError::new(status, e.code())
    }
}

/// `Json<T>` whose rejections are API errors with stable codes.
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(match rejection {
                JsonRejection::MissingJsonContentType(_) => ErrorCode::UnsupportedMediaType,
                JsonRejection::JsonSyntaxError(_) => ErrorCode::InvalidJson,
                JsonRejection::JsonDataError(_) => ErrorCode::JsonDoesNotFit,
                JsonRejection::BytesRejection(b) if b.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                    ErrorCode::PayloadTooLarge
                }
                _ => ErrorCode::BadRequest,
            }
            .into()),
        }
    }
}

/// `Path<T>` whose rejection is `404 not_found`: a path whose parameters do not parse names
/// nothing that exists.
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| ApiPath(v))
            .map_err(|_| ApiError::not_found())
    }
}

/// `Query<T>` whose rejection is `422 validation_failed`, like a query value the handler
/// refuses.
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| ApiQuery(v))
            .map_err(|_| ErrorCode::ValidationFailed.into())
    }
}

/// A JSON success response.
pub fn json<T: Serialize>(value: T) -> Response {
    axum::Json(value).into_response()
}
