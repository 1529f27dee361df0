//! Server-rendered HTML pages and their embedded assets. Every text comes from the string
//! catalogue in the user's language (their saved choice, else the `sb_lang` cookie, else the
//! browser's `Accept-Language`). No external asset is ever referenced.

use crate::AppState;
use crate::locale::{cookie, request_locale};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use maud::{DOCTYPE, Markup, html};
use switchboard_domain::i18n::t;
use switchboard_domain::{AccountStatus, Locale};
use switchboard_services::{SessionContext, WorkerKind, WorkerState, WorkerStatus};

/// The Content-Security-Policy of every response: our own scripts, styles and connections
/// only, no plugins, and no framing by any site (clickjacking).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const CSS: &str = include_str!("../assets/app.css");
const JS: &str = include_str!("../assets/app.js");
const BOTS_JS: &str = include_str!("../assets/bots.js");
const INBOX_JS: &str = include_str!("../assets/inbox.js");
const LEADS_JS: &str = include_str!("../assets/leads.js");
const SCHEDULE_JS: &str = include_str!("../assets/schedule.js");
const TEAM_JS: &str = include_str!("../assets/team.js");
const SIGNIN_JS: &str = include_str!("../assets/signin.js");

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/inbox") }))
        .route("/login", get(login_page))
        .route("/inbox", get(|s, h| section(s, h, Section::Inbox)))
        .route("/accounts", get(|s, h| section(s, h, Section::Accounts)))
        .route("/bots", get(|s, h| section(s, h, Section::Bots)))
        .route("/leads", get(|s, h| section(s, h, Section::Leads)))
        .route("/schedule", get(|s, h| section(s, h, Section::Schedule)))
        .route("/team", get(|s, h| section(s, h, Section::Team)))
        .route("/settings", get(|s, h| section(s, h, Section::Settings)))
        .route(
            "/assets/app.css",
            get(|| async {
                (
                    [
                        (header::CONTENT_TYPE, "text/css; charset=utf-8"),
                        (header::CACHE_CONTROL, "no-cache"),
                    ],
                    CSS,
                )
            }),
        )
        .route("/assets/app.js", get(|| async { script(JS) }))
        .route("/assets/inbox.js", get(|| async { script(INBOX_JS) }))
        .route("/assets/leads.js", get(|| async { script(LEADS_JS) }))
        .route("/assets/bots.js", get(|| async { script(BOTS_JS) }))
        .route("/assets/schedule.js", get(|| async { script(SCHEDULE_JS) }))
        .route("/assets/team.js", get(|| async { script(TEAM_JS) }))
        .route("/assets/signin.js", get(|| async { script(SIGNIN_JS) }))
}

fn script(body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    Inbox,
    Accounts,
    Bots,
    Leads,
    Schedule,
    Team,
    Settings,
}

impl Section {
    const ALL: [Section; 7] = [
        Section::Inbox,
        Section::Accounts,
        Section::Bots,
        Section::Leads,
        Section::Schedule,
        Section::Team,
        Section::Settings,
    ];

    fn path(self) -> &'static str {
        match self {
            Section::Inbox => "/inbox",
            Section::Accounts => "/accounts",
            Section::Bots => "/bots",
            Section::Leads => "/leads",
            Section::Schedule => "/schedule",
            Section::Team => "/team",
            Section::Settings => "/settings",
        }
    }

    fn label_key(self) -> &'static str {
        match self {
            Section::Inbox => "nav_inbox",
            Section::Accounts => "nav_accounts",
            Section::Bots => "nav_bots",
            Section::Leads => "nav_leads",
            Section::Schedule => "nav_schedule",
            Section::Team => "nav_team",
            Section::Settings => "nav_settings",
        }
    }
}

fn layout(locale: Locale, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(locale.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (t(locale, "app_name")) }
                link rel="stylesheet" href="/assets/app.css";
                script src="/assets/app.js" defer {}
                script src="/assets/bots.js" defer {}
                script src="/assets/team.js" defer {}
                script src="/assets/signin.js" defer {}
            }
            body { (body) }
        }
    }
}

fn lang_switch(current: Option<Locale>, locale: Locale, with_browser: bool) -> Markup {
    html! {
        label.lang {
            (t(locale, "language")) " "
            select #lang-select data-save=(if with_browser { "user" } else { "cookie" }) {
                @if with_browser {
                    option value="" selected[current.is_none()] { (t(locale, "settings_language_browser")) }
                }
                option value="en" selected[current == Some(Locale::En) || (!with_browser && locale == Locale::En)] { "English" }
                option value="ru" selected[current == Some(Locale::Ru) || (!with_browser && locale == Locale::Ru)] { "Русский" }
            }
        }
    }
}

async fn login_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if current_session(&state, &headers).await.is_some() {
        return Redirect::to("/inbox").into_response();
    }
    let locale = request_locale(&headers);
    let body = html! {
        main.signin {
            h1 { (t(locale, "app_name")) }
            (crate::signin_page::signin_card(locale))
            form #login-form.card {
                h2 { (t(locale, "signin_password_title")) }
                label { (t(locale, "signin_username")) input name="username" autocomplete="username" required; }
                label { (t(locale, "signin_password")) input name="password" type="password" autocomplete="current-password" required; }
                p #login-error.error role="alert" hidden {}
                button type="submit" { (t(locale, "signin_submit")) }
            }
            (lang_switch(None, locale, false))
        }
    };
    Html(layout(locale, t(locale, "signin_title"), body).into_string()).into_response()
}

async fn current_session(state: &AppState, headers: &HeaderMap) -> Option<SessionContext> {
    let token = cookie(headers, state.cookie_name())?;
    state.auth().authenticate(token).await.ok().flatten()
}

async fn section(State(state): State<AppState>, headers: HeaderMap, which: Section) -> Response {
    let Some(ctx) = current_session(&state, &headers).await else {
        return Redirect::to("/login").into_response();
    };
    let locale = ctx.user.locale.unwrap_or_else(|| request_locale(&headers));
    let content = match which {
        Section::Inbox => crate::inbox_page::inbox(&state, &ctx, locale).await,
        Section::Accounts => accounts(&state, &ctx, locale).await,
        Section::Bots => bots(&state, &ctx, locale).await,
        Section::Leads => crate::leads_page::leads(&state, &ctx, locale).await,
        Section::Schedule => crate::schedule_page::schedule(&state, &ctx, locale).await,
        Section::Team => crate::team_page::team(&state, &ctx, locale).await,
        Section::Settings => html! {
            p { (t(locale, "settings_language_hint")) }
            (lang_switch(ctx.user.locale, locale, true))
            p #settings-status.ok role="status" hidden { (t(locale, "settings_saved")) }
            (crate::signin_page::settings_sections(locale, ctx.membership.role.is_admin()))
            @if ctx.membership.role.is_admin() {
                (system(&state, &ctx, locale).await)
            }
        },
    };
    let title = t(locale, which.label_key());
    let body = html! {
        header.top {
            strong.brand { (t(locale, "app_name")) }
            nav {
                @for s in Section::ALL {
                    a href=(s.path()) class=@if s == which { "active" } { (t(locale, s.label_key())) }
                }
            }
            span.who { (ctx.user.display_name) " · " (ctx.membership.role.as_str()) }
            button #logout type="button" { (t(locale, "signout")) }
        }
        main.page.wide[matches!(which, Section::Inbox | Section::Leads | Section::Schedule)] {
            h1 { (title) }
            (content)
        }
    };
    Html(layout(locale, title, body).into_string()).into_response()
}

async fn bots(state: &AppState, ctx: &SessionContext, locale: Locale) -> Markup {
    let admin = ctx.membership.role.is_admin();
    let list = if admin {
        state
            .bots()
            .list(ctx.membership.workspace_id)
            .await
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    html! {
        section #bots-page {
            p.hint { (t(locale, "empty_bots")) }
            @if admin {
                form #bot-add-form.card autocomplete="off" {
                    h2 { (t(locale, "bots_add_title")) }
                    label { (t(locale, "bots_token_label"))
                        input name="token" type="password" autocomplete="off" spellcheck="false" required; }
                    p.error role="alert" hidden {}
                    button type="submit" { (t(locale, "bots_add_submit")) }
                }
            }
            @if !list.is_empty() {
                table.members #bots {
                    tbody {
                        @for b in &list {
                            tr data-bot=(b.id.0) {
                                td { (b.first_name) " @" (b.username) }
                                td { (t(locale, &format!("bots_mode_{}", b.mode.as_str()))) }
                                td { span.badge data-status=(b.status.as_str()) { (t(locale, &format!("status_{}", b.status.as_str()))) }
                                     " " small.detail { (b.status_detail.clone().unwrap_or_default()) } }
                                td.actions {
                                    @if b.active { button.secondary data-bot-action="stop" { (t(locale, "bots_stop")) } }
                                    @else { button.secondary data-bot-action="start" { (t(locale, "bots_start")) } }
                                    button.danger data-bot-action="delete" data-confirm=(t(locale, "bots_delete_confirm")) { (t(locale, "bots_delete")) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

async fn accounts(state: &AppState, ctx: &SessionContext, locale: Locale) -> Markup {
    let list = state
        .account_store()
        .list_accounts(ctx.membership.workspace_id)
        .await
        .unwrap_or_default();
    let admin = ctx.membership.role.is_admin();
    let labels: serde_json::Map<String, serde_json::Value> = AccountStatus::ALL
        .iter()
        .map(|s| {
            let key = format!("status_{}", s.as_str());
            (s.as_str().to_string(), t(locale, &key).into())
        })
        .collect();
    html! {
        p.hint { (t(locale, "empty_accounts")) }
        p #list-error.error role="alert" hidden {}
        div #accounts-list data-status-labels=(serde_json::Value::Object(labels).to_string()) {
        @if list.is_empty() {
            p.empty #accounts-empty { (t(locale, "acc_none")) }
        } @else {
            table.members #accounts {
                thead { tr {
                    th { (t(locale, "acc_name")) } th { (t(locale, "acc_phone")) }
                    th { (t(locale, "acc_status")) } @if admin { th { (t(locale, "acc_actions")) } }
                } }
                tbody {
                    @for a in &list {
                        tr data-account=(a.id.0) {
                            td { (a.first_name) " " (a.last_name.clone().unwrap_or_default())
                                 @if let Some(u) = &a.username { " @" (u) } }
                            td { (a.phone.clone().map(|p| format!("+{p}")).unwrap_or_default()) }
                            td { span.badge data-status=(a.status.as_str()) { (t(locale, &format!("status_{}", a.status.as_str()))) }
                                 @if let Some(d) = &a.status_detail { " " small.detail { (d) } } }
                            @if admin { td.actions {
                                label.toggle { input type="checkbox" data-setting="ingest_groups" checked[a.ingest_groups]; " " (t(locale, "acc_ingest_groups")) }
                                " "
                                @if a.active { button.secondary data-action="stop" { (t(locale, "acc_stop")) } }
                                @else { button.secondary data-action="start" { (t(locale, "acc_start")) } }
                                button.secondary data-action="logout" { (t(locale, "acc_logout")) }
                                button.danger data-action="delete" data-confirm=(t(locale, "acc_confirm_delete")) { (t(locale, "acc_delete")) }
                            } }
                        }
                    }
                }
            }
        }
        }
        @if admin {
            div.wizard {
                section.card #connect-phone {
                    h2 { (t(locale, "acc_connect_phone")) }
                    form #phone-form { label { (t(locale, "acc_phone")) input name="phone" type="tel" placeholder="+7 900 000 00 00" required; }
                        button type="submit" { (t(locale, "acc_send_code")) } }
                    form #code-form hidden {
                        p #code-info data-label=(t(locale, "acc_code_sent_to")) {}
                        label { (t(locale, "acc_code")) input name="code" inputmode="numeric" autocomplete="one-time-code" required; }
                        button type="submit" { (t(locale, "acc_submit_code")) }
                        button.secondary #resend type="button" { (t(locale, "acc_resend")) }
                    }
                    form.password-form hidden {
                        label { (t(locale, "acc_password")) span.hint-text {} input name="password" type="password" autocomplete="off" required; }
                        button type="submit" { (t(locale, "acc_submit_password")) }
                    }
                    p.error role="alert" hidden {}
                }
                section.card #connect-qr {
                    h2 { (t(locale, "acc_connect_qr")) }
                    p.hint { (t(locale, "acc_qr_hint")) }
                    div #qr-image {}
                    button #qr-start type="button" { (t(locale, "acc_show_qr")) }
                    form.password-form hidden {
                        label { (t(locale, "acc_password")) span.hint-text {} input name="password" type="password" autocomplete="off" required; }
                        button type="submit" { (t(locale, "acc_submit_password")) }
                    }
                    p.error role="alert" hidden {}
                }
                section.card #import {
                    h2 { (t(locale, "acc_import")) }
                    p.hint { (t(locale, "acc_import_hint")) }
                    form #import-form { textarea name="session" rows="3" required {} button type="submit" { (t(locale, "acc_import_submit")) } }
                    p.hint { (t(locale, "acc_upload_hint")) }
                    label { (t(locale, "acc_upload_files")) input #import-files type="file" multiple accept=".session,.json"; }
                    label { (t(locale, "acc_upload_folder")) input #import-folder type="file" webkitdirectory multiple; }
                    p.error role="alert" hidden {}
                    ul #upload-results data-imported=(t(locale, "acc_upload_imported")) {}
                }
            }
        } @else {
            p.hint { (t(locale, "acc_admin_only")) }
        }
    }
}

/// The state label of a worker (`worker_state_*`), or "not started".
fn worker_state(locale: Locale, state: Option<WorkerState>) -> Markup {
    let name = state.map_or("none", WorkerState::as_str);
    html! { span.badge data-state=(name) { (t(locale, &format!("worker_state_{name}"))) } }
}

/// Settings' System section (admins): the server-wide workers, the workspace's accounts and bots
/// with their health and their workers, and the restart-clients action. `app.js` refreshes it
/// from `GET /api/v1/system/status`.
async fn system(state: &AppState, ctx: &SessionContext, locale: Locale) -> Markup {
    let ws = ctx.membership.workspace_id;
    let workers: Vec<WorkerStatus> = state
        .workers()
        .statuses()
        .into_iter()
        .filter(|w| w.kind == WorkerKind::System)
        .collect();
    let ready = state.workers().healthy();
    let accounts = state
        .account_store()
        .list_accounts(ws)
        .await
        .unwrap_or_default();
    let bots = state.bots().list(ws).await.unwrap_or_default();
    let supervisor = state.accounts().supervisor();
    let labels: serde_json::Map<String, serde_json::Value> = [
        "starting",
        "running",
        "backing_off",
        "stopped",
        "failed",
        "none",
    ]
    .iter()
    .map(|s| {
        (
            s.to_string(),
            t(locale, &format!("worker_state_{s}")).into(),
        )
    })
    .chain(AccountStatus::ALL.iter().map(|s| {
        (
            format!("status_{}", s.as_str()),
            t(locale, &format!("status_{}", s.as_str())).into(),
        )
    }))
    .collect();
    html! {
        section #system data-labels=(serde_json::Value::Object(labels).to_string()) {
            h2 { (t(locale, "system_title")) }
            p.hint { (t(locale, "system_hint")) }
            p #system-ready data-ready=(ready) { (t(locale, if ready { "system_ready" } else { "system_not_ready" })) }
            h3 { (t(locale, "system_workers")) }
            table.members #system-workers {
                thead { tr {
                    th { (t(locale, "system_worker")) } th { (t(locale, "system_state")) }
                    th { (t(locale, "system_restarts")) } th { (t(locale, "system_last_error")) }
                } }
                tbody {
                    @for w in &workers {
                        tr data-worker=(w.name) {
                            td { code { (w.name) } }
                            td.state { (worker_state(locale, Some(w.state))) }
                            td.restarts { (w.restarts) }
                            td.error { (w.last_error.clone().unwrap_or_default()) }
                        }
                    }
                }
            }
            h3 { (t(locale, "system_accounts")) }
            @if accounts.is_empty() { p.empty { (t(locale, "system_none")) } }
            @else {
                table.members #system-accounts {
                    thead { tr {
                        th { (t(locale, "acc_name")) } th { (t(locale, "system_health")) }
                        th { (t(locale, "system_worker")) } th { (t(locale, "system_restarts")) }
                        th { (t(locale, "system_last_error")) }
                    } }
                    tbody {
                        @for a in &accounts {
                            @let w = supervisor.worker(a.id);
                            tr data-account=(a.id.0) {
                                td { (a.first_name) " " (a.last_name.clone().unwrap_or_default())
                                     @if let Some(p) = &a.phone { " " small { "+" (p) } } }
                                td.health { span.badge data-status=(a.status.as_str()) { (t(locale, &format!("status_{}", a.status.as_str()))) }
                                     small.detail { (a.status_detail.clone().unwrap_or_default()) } }
                                td.state { (worker_state(locale, w.as_ref().map(|w| w.worker.state))) }
                                td.restarts { (w.as_ref().map_or(0, |w| w.worker.restarts)) }
                                td.error { (w.and_then(|w| w.worker.last_error).unwrap_or_default()) }
                            }
                        }
                    }
                }
            }
            h3 { (t(locale, "system_bots")) }
            @if bots.is_empty() { p.empty { (t(locale, "system_none")) } }
            @else {
                table.members #system-bots {
                    thead { tr {
                        th { (t(locale, "system_bot")) } th { (t(locale, "system_health")) }
                        th { (t(locale, "system_worker")) } th { (t(locale, "system_restarts")) }
                        th { (t(locale, "system_last_error")) }
                    } }
                    tbody {
                        @for b in &bots {
                            @let w = state.bots().worker(b.id);
                            tr data-bot=(b.id.0) {
                                td { (b.first_name) " @" (b.username) }
                                td.health { span.badge data-status=(b.status.as_str()) { (t(locale, &format!("status_{}", b.status.as_str()))) }
                                     small.detail { (b.status_detail.clone().unwrap_or_default()) } }
                                td.state { (worker_state(locale, w.as_ref().map(|w| w.state))) }
                                td.restarts { (w.as_ref().map_or(0, |w| w.restarts)) }
                                td.error { (w.and_then(|w| w.last_error).unwrap_or_default()) }
                            }
                        }
                    }
                }
            }
            div.card {
                p.hint { (t(locale, "system_restart_hint")) }
                button #restart-clients type="button" data-done=(t(locale, "system_restarted")) { (t(locale, "system_restart_clients")) }
                p #restart-result role="status" hidden {}
            }
        }
    }
}

/// The HTML 404 page.
pub fn not_found_page(headers: &HeaderMap) -> Response {
    let locale = request_locale(headers);
    let body = html! { main.page { h1 { "404" } p { (t(locale, "not_found_page")) } p { a href="/inbox" { (t(locale, "nav_inbox")) } } } };
    (
        StatusCode::NOT_FOUND,
        Html(layout(locale, "404", body).into_string()),
    )
        .into_response()
}
