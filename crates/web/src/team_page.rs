//! The Team page: the members of the workspace, and for owners and admins the user controls —
//! each member's (and in the main workspace each self-service user's) Telegram identity and
//! accounts, last sign-in, and the actions "log out of Telegram" and "delete user", each
//! behind a confirmation step (`assets/team.js`).

use crate::AppState;
use maud::{Markup, html};
use switchboard_domain::i18n::t;
use switchboard_domain::user_admin::phone_digits;
use switchboard_domain::{Locale, Role};
use switchboard_services::user_admin::UserEntry;
use switchboard_services::{SessionContext, TeamActor};

/// The Team section of `ctx`'s workspace.
pub(crate) async fn team(state: &AppState, ctx: &SessionContext, locale: Locale) -> Markup {
    if ctx.membership.role.is_admin() {
        let actor = TeamActor {
            workspace: ctx.membership.workspace_id,
            user: ctx.user.id,
            role: ctx.membership.role,
            ip: None,
        };
        let users = state.users().list(&actor).await.unwrap_or_default();
        return users_table(ctx, locale, &users);
    }
    let members = state
        .store()
        .list_members(ctx.membership.workspace_id)
        .await
        .unwrap_or_default();
    html! {
        table.members {
            thead { tr {
                th { (t(locale, "team_username")) } th { (t(locale, "team_name")) }
                th { (t(locale, "team_role")) } th { (t(locale, "team_max_chats")) }
            } }
            tbody {
                @for (m, u) in &members {
                    tr {
                        td { (u.username.as_ref().map(|n| n.to_string()).unwrap_or_default()) }
                        td { (u.display_name) }
                        td { (m.role.as_str()) }
                        td { (m.max_chats) }
                    }
                }
            }
        }
    }
}

/// The admin's table: one row per member with their Telegram, last sign-in and actions.
fn users_table(ctx: &SessionContext, locale: Locale, users: &[UserEntry]) -> Markup {
    let me = ctx.user.id;
    let owner = ctx.membership.role == Role::Owner;
    html! {
        section #users {
            p #users-status.ok role="status" hidden {}
            p #users-error.error role="alert" hidden {}
            table.members #users-table {
                thead { tr {
                    th { (t(locale, "team_username")) } th { (t(locale, "team_name")) }
                    th { (t(locale, "team_role")) } th { (t(locale, "users_telegram")) }
                    th { (t(locale, "users_last_sign_in")) }
                    th { (t(locale, "users_devices")) }
                    th { (t(locale, "users_actions")) }
                } }
                tbody {
                    @for entry in users {
                        @let u = &entry.user;
                        @let name = u.user.display_name.as_str();
                        @let role = u.membership.as_ref().map(|m| m.role);
                        @let may = owner || role != Some(Role::Owner);
                        tr data-user=(u.user.id.0) {
                            td.username { (u.user.username.as_ref().map(|n| n.to_string()).unwrap_or_default()) }
                            td.name { (name) }
                            td.role { @match role {
                                Some(r) => { (r.as_str()) }
                                None => { small { (t(locale, "users_self_service")) } }
                            } }
                            td.telegram {
                                @if let Some(p) = &u.phone { span.phone { "+" (phone_digits(p)) } " " }
                                @if u.accounts.is_empty() {
                                    small.none { (t(locale, "users_not_connected")) }
                                }
                                @for a in &u.accounts {
                                    span.account data-account=(a.id.0) {
                                        (a.first_name) " " (a.last_name.clone().unwrap_or_default())
                                        @if let Some(p) = &a.phone { " " small { "+" (p) } }
                                        " " span.badge data-status=(a.status.as_str()) { (t(locale, &format!("status_{}", a.status.as_str()))) }
                                        @if u.personal_workspaces.contains(&a.workspace_id) { " " small { "(" (t(locale, "users_personal")) ")" } }
                                    }
                                }
                            }
                            td.last {
                                @if let Some(ts) = u.last_sign_in_at {
                                    time data-ts=(ts.0) { (ts.0) }
                                } @else {
                                    small { (t(locale, "users_never")) }
                                }
                            }
                            td.devices data-devices=(entry.devices.len()) {
                                @for d in &entry.devices {
                                    div.device { (d.user_agent.clone().unwrap_or_default().chars().take(40).collect::<String>())
                                        " " small { time data-ts=(d.last_used_at.0) { (d.last_used_at.0) } } }
                                }
                            }
                            td.actions {
                                @if may && !u.accounts.is_empty() {
                                    button.secondary type="button" data-user-action="logout"
                                        data-confirm=(t(locale, "users_logout_confirm").replace("{name}", name))
                                        data-yes=(t(locale, "users_logout_yes"))
                                        data-done=(t(locale, "users_logged_out")) { (t(locale, "users_logout_telegram")) }
                                }
                                @if may && u.user.id != me {
                                    button.danger type="button" data-user-action="delete"
                                        data-confirm=(t(locale, "users_delete_confirm").replace("{name}", name))
                                        data-yes=(t(locale, "users_delete_yes")) { (t(locale, "users_delete")) }
                                }
                                div.confirm hidden {
                                    p.confirm-text {}
                                    button.danger.confirm-yes type="button" {}
                                    " "
                                    button.secondary.confirm-no type="button" { (t(locale, "users_cancel")) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
