//! API errors: every failure leaves as `{"error":{"code","message"}}` with a stable snake_case
//! code. Messages come from the string catalogue; [`crate::locale::localize_errors`] rewrites
//! them into the caller's language on the way out.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use switchboard_domain::i18n;
use switchboard_domain::{Locale, StoreError};
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
}

/// Marks a response as an API error so its message can be localised.
#[derive(Clone, Copy, Debug)]
pub struct ErrorCode(pub &'static str);

/// An API error: status, stable code, optional `Retry-After`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    retry_after: Option<u64>,
}

impl ApiError {
    /// An error with a status and a catalogue code.
    pub fn new(status: StatusCode, code: &'static str) -> Self {
        Self {
            status,
            code,
            retry_after: None,
        }
    }

    /// Adds a `Retry-After` header.
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// 400 with a code.
    pub fn bad_request(code: &'static str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code)
    }

    /// 401 `unauthenticated`.
    pub fn unauthenticated() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated")
    }

    /// 403 `forbidden`.
    pub fn forbidden() -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden")
    }

    /// 404 `not_found`.
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found")
    }

    /// 500 `internal`.
    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal")
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        self.code
    }
}

/// Builds the JSON error body in a language.
pub fn error_json(code: &str, locale: Locale) -> String {
    let body = ErrorBody {
        error: ErrorDetail {
            code: code.to_string(),
            message: i18n::t(locale, code).to_string(),
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
            error_json(self.code, Locale::En),
        )
            .into_response();
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        res.extensions_mut().insert(ErrorCode(self.code));
        res
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::not_found(),
            StoreError::Conflict("username_taken") => {
                ApiError::new(StatusCode::CONFLICT, "username_taken")
            }
            StoreError::Conflict("assign_forbidden") => {
                ApiError::new(StatusCode::FORBIDDEN, "assign_forbidden")
            }
            StoreError::Conflict(code @ ("not_a_member" | "file_not_found")) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code)
            }
            StoreError::Conflict(
                code @ ("not_failed" | "not_uncertain" | "bot_exists" | "account_exists"),
            ) => ApiError::new(StatusCode::CONFLICT, code),
            StoreError::Conflict(_) => ApiError::new(StatusCode::CONFLICT, "conflict"),
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
            AuthError::InvalidCredentials => {
                ApiError::new(StatusCode::UNAUTHORIZED, "invalid_credentials")
            }
            AuthError::Locked { retry_after_secs } => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "account_locked")
                    .retry_after(retry_after_secs)
            }
            AuthError::RateLimited { retry_after_secs } => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited")
                    .retry_after(retry_after_secs)
            }
            AuthError::NoWorkspace => ApiError::new(StatusCode::FORBIDDEN, "no_workspace"),
            AuthError::InvalidUsername => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_username")
            }
            AuthError::WeakPassword => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "weak_password")
            }
            AuthError::UsernameTaken => ApiError::new(StatusCode::CONFLICT, "username_taken"),
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
            TeamError::LastOwner => ApiError::new(StatusCode::CONFLICT, code),
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
                JsonRejection::MissingJsonContentType(_) => {
                    ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
                }
                JsonRejection::JsonSyntaxError(_) => ApiError::bad_request("invalid_json"),
                JsonRejection::JsonDataError(_) => {
                    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_json")
                }
                JsonRejection::BytesRejection(b) if b.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
                }
                _ => ApiError::bad_request("bad_request"),
            }),
        }
    }
}

/// A JSON success response.
pub fn json<T: Serialize>(value: T) -> Response {
    axum::Json(value).into_response()
}
