//! The error codes of the API's own rules — the stores' refusals and the web layer's checks —
//! each with its HTTP status (a number: this crate has no HTTP types) and its key in the string
//! catalogue ([`crate::i18n`]), which is the code itself. Stores return them in
//! [`crate::StoreError::Conflict`]; the web layer answers `{"error":{"code","message"}}` with
//! the status given here, so a code's status is decided in one place.
//!
//! Codes of the library crates' own errors (sessions, Telegram, the vault) are theirs: they are
//! mapped to statuses where the web layer handles those errors.

macro_rules! error_codes {
    ($($(#[$doc:meta])* $variant:ident = ($code:literal, $status:literal)),+ $(,)?) => {
        /// A stable error code of the API with its HTTP status.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[$doc])* $variant),+
        }

        impl ErrorCode {
            /// Every code.
            pub const ALL: &[ErrorCode] = &[$(ErrorCode::$variant),+];

            /// The stable snake_case code the API answers with.
            pub fn code(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code),+
                }
            }

            /// The HTTP status of an answer with this code.
            pub fn status(self) -> u16 {
                match self {
                    $(ErrorCode::$variant => $status),+
                }
            }
        }
    };
}

error_codes! {
    // --- the request itself ---
    /// The request is malformed in a way no other code names.
    BadRequest = ("bad_request", 400),
    /// The body is not JSON.
    InvalidJson = ("invalid_json", 400),
    /// The body is JSON, but not of the shape the endpoint takes.
    JsonDoesNotFit = ("invalid_json", 422),
    /// A value is out of range or not one of the allowed ones.
    ValidationFailed = ("validation_failed", 422),
    /// The body is not `application/json`.
    UnsupportedMediaType = ("unsupported_media_type", 415),
    /// The body is over the limit.
    PayloadTooLarge = ("payload_too_large", 413),
    /// No such route or resource (or one the caller may not see).
    NotFound = ("not_found", 404),
    /// The route has no such method.
    MethodNotAllowed = ("method_not_allowed", 405),
    /// `/ws` was asked without a WebSocket handshake.
    UpgradeRequired = ("upgrade_required", 426),
    // --- who is asking ---
    /// No valid session.
    Unauthenticated = ("unauthenticated", 401),
    /// A write without the session's CSRF token, or from another origin.
    CsrfFailed = ("csrf_failed", 403),
    /// The role does not allow it.
    Forbidden = ("forbidden", 403),
    /// Wrong username or password.
    InvalidCredentials = ("invalid_credentials", 401),
    /// Too many failed sign-ins.
    AccountLocked = ("account_locked", 429),
    /// Too many requests.
    RateLimited = ("rate_limited", 429),
    /// The user belongs to no workspace.
    NoWorkspace = ("no_workspace", 403),
    // --- rules of the data (what stores refuse) ---
    /// A uniqueness rule without a code of its own.
    Conflict = ("conflict", 409),
    /// The username is taken.
    UsernameTaken = ("username_taken", 409),
    /// Not a valid username.
    InvalidUsername = ("invalid_username", 422),
    /// The password is too weak.
    WeakPassword = ("weak_password", 422),
    /// Not a supported language.
    InvalidLocale = ("invalid_locale", 422),
    /// The user is already a member of the workspace.
    AlreadyMember = ("already_member", 409),
    /// The change would leave the workspace without an owner.
    LastOwner = ("last_owner", 409),
    /// The user is not a member of the workspace.
    NotAMember = ("not_a_member", 422),
    /// The workspace already has this account.
    AccountExists = ("account_exists", 409),
    /// A usable session for the phone is stored.
    SessionExists = ("session_exists", 409),
    /// The workspace already has this bot.
    BotExists = ("bot_exists", 409),
    /// The assignment rule refuses it (an operator may take, hand back, or leave unchanged).
    AssignForbidden = ("assign_forbidden", 403),
    /// Only a failed reply may be sent again.
    NotFailed = ("not_failed", 409),
    /// Only a reply whose sending was uncertain may be marked sent.
    NotUncertain = ("not_uncertain", 409),
    // --- lead monitoring ---
    /// `task_name_taken`.
    TaskNameTaken = ("task_name_taken", 409),
    /// `task_name_invalid`.
    TaskNameInvalid = ("task_name_invalid", 422),
    /// `task_query_invalid`.
    TaskQueryInvalid = ("task_query_invalid", 422),
    /// `digest_interval_invalid`.
    DigestIntervalInvalid = ("digest_interval_invalid", 422),
    /// `rate_cap_invalid`.
    RateCapInvalid = ("rate_cap_invalid", 422),
    /// `delivery_target_invalid`.
    DeliveryTargetInvalid = ("delivery_target_invalid", 422),
    /// `delivery_target_not_found`.
    DeliveryTargetNotFound = ("delivery_target_not_found", 422),
    /// `account_not_found`.
    AccountNotFound = ("account_not_found", 422),
    /// `source_invalid`.
    SourceInvalid = ("source_invalid", 422),
    /// `too_many_sources`.
    TooManySources = ("too_many_sources", 422),
    /// `task_forbidden`.
    TaskForbidden = ("task_forbidden", 403),
    /// `source_state_invalid`.
    SourceStateInvalid = ("source_state_invalid", 409),
    /// A task's query does not parse or breaks a limit (the answer carries `position` and
    /// `expected`).
    QueryInvalid = ("query_invalid", 422),
    /// The reading account has no live connection to Telegram now.
    AccountOffline = ("account_offline", 409),
    /// The lead has no author the reading account can write to (unknown to its peer cache).
    LeadAuthorUnknown = ("lead_author_unknown", 409),
    // --- files ---
    /// No such uploaded file in the workspace.
    FileNotFound = ("file_not_found", 422),
    /// The file is over the upload limit.
    FileTooLarge = ("file_too_large", 413),
    /// The file's type is not one Telegram accepts, or its bytes do not match it.
    FileTypeNotAllowed = ("file_type_not_allowed", 415),
    /// The session upload holds no file.
    UploadEmpty = ("upload_empty", 400),
    /// The session upload is not a readable multipart body.
    UploadInvalid = ("upload_invalid", 400),
    /// The session upload is over its total size.
    UploadTooLarge = ("upload_too_large", 413),
    /// A file of the session upload is over its size.
    UploadFileTooLarge = ("upload_file_too_large", 413),
    /// The session upload has too many files.
    UploadTooManyFiles = ("upload_too_many_files", 413),
    // --- Telegram ---
    /// A webhook update that is not a Bot API update.
    MalformedUpdate = ("malformed_update", 400),
    /// Telegram asked to wait.
    FloodWait = ("flood_wait", 429),
    /// The Bot API failed.
    BotApiFailed = ("bot_api_failed", 502),
    // --- autoposting ---
    /// Only owners and admins change scheduled posts.
    PostForbidden = ("post_forbidden", 403),
    /// A post with neither text nor media.
    PostEmpty = ("post_empty", 422),
    /// Over 4,096 characters of text, or 1,024 of caption.
    PostTextTooLong = ("post_text_too_long", 422),
    /// Over 10 media in one post.
    TooManyMedia = ("too_many_media", 422),
    /// Media Telegram does not group into one album.
    AlbumInvalid = ("album_invalid", 422),
    /// A grace period outside 0–1440 minutes.
    GraceInvalid = ("grace_invalid", 422),
    /// A pin or delete-after period outside 1–744 hours, or a delete before the unpin.
    FollowUpInvalid = ("follow_up_invalid", 422),
    /// The schedule does not parse (the answer carries `position` and `expected`).
    ScheduleInvalid = ("schedule_invalid", 422),
    /// A once post's time has passed, or is over 366 days ahead.
    ScheduleInPast = ("schedule_in_past", 422),
    /// The sending account or bot is not the workspace's.
    SenderNotFound = ("sender_not_found", 422),
    /// The sender cannot post to that chat (not a member, or no right to post).
    TargetNotAllowed = ("target_not_allowed", 422),
    /// A run of the post is being published now.
    PostPublishing = ("post_publishing", 409),
    /// The post is finished or cancelled.
    PostFinished = ("post_finished", 409),
    /// The run was not published (nothing to edit, pin or delete).
    RunNotPublished = ("run_not_published", 409),
    /// The publisher's claim on a run or action is no longer current.
    RunLeaseLost = ("run_lease_lost", 409),
    // --- the server ---
    /// Something failed inside; the log has the cause.
    Internal = ("internal", 500),
    // --- Telegram sign-in (docs/web-login.md) ---
    /// Self-service sign-in is off (`auth.self_service = "off"`).
    SelfServiceOff = ("self_service_off", 403),
    /// Signing up needs a valid invite (`auth.self_service = "invite"`).
    InviteRequired = ("invite_required", 403),
    /// Not a phone number.
    PhoneInvalid = ("phone_invalid", 422),
    /// The phone (or its Telegram user) already has a user.
    PhoneTaken = ("phone_taken", 409),
    /// Wrong sign-in code.
    CodeInvalid = ("code_invalid", 401),
    /// No code to check: it expired, was used, or its attempts ran out; request a new one.
    CodeExpired = ("code_expired", 401),
    /// The service bot could not deliver the code.
    CodeNotSent = ("code_not_sent", 502),
    /// No service bot is designated (or it is stopped).
    ServiceBotMissing = ("service_bot_missing", 409),
    /// The bot may not be the service bot (not a bot of the main workspace).
    ServiceBotInvalid = ("service_bot_invalid", 422),
    // --- the admin's user controls ---
    /// The user also belongs to a team the admin does not run: remove them there first.
    UserInOtherWorkspace = ("user_in_other_workspace", 409),
    /// The user has no Telegram account to log out.
    NoTelegramAccount = ("no_telegram_account", 409),
}

impl ErrorCode {
    /// The key of its message in the string catalogue: the code itself.
    pub fn key(self) -> &'static str {
        self.code()
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_catalogue_entry_and_an_error_status() {
        for c in ErrorCode::ALL {
            assert!(crate::i18n::has(c.key()), "{c:?} has no catalogue entry");
            assert!((400..600).contains(&c.status()), "{c:?}");
        }
    }

    #[test]
    fn a_code_means_one_status_but_for_invalid_json() {
        for a in ErrorCode::ALL {
            for b in ErrorCode::ALL {
                if a.code() == b.code() && a != b {
                    assert_eq!(a.code(), "invalid_json", "{a:?} and {b:?}");
                }
            }
        }
    }
}
