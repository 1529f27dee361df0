//! The Telegram parts of the pages (`assets/signin.js` drives them through the sign-in API,
//! docs/web-login.md): on the sign-in page, the phone → code (the service bot's, or Telegram's
//! own code, QR and 2FA password for a new user) card with "remember this device" and the
//! resend countdown; in Settings, the binding link of the service bot, the trusted devices
//! with revoke one / revoke all, and the designation of the service bot.

use maud::{Markup, html};
use switchboard_domain::Locale;
use switchboard_domain::i18n::t;

/// The "sign in with Telegram" card of the sign-in page. Hidden until the script has asked
/// `GET /api/v1/auth/options` whether self-service sign-in is on; the script passes on the
/// invite token of an invite link (`/login?invite=…`).
pub(crate) fn signin_card(locale: Locale) -> Markup {
    html! {
        section #tg-signin.card hidden
            data-resend-in=(t(locale, "signin_resend_in"))
            data-bot-code-sent=(t(locale, "signin_bot_code_sent"))
            data-tg-code-sent=(t(locale, "signin_tg_code_sent"))
            data-bind-hint=(t(locale, "signin_bind_hint"))
            data-welcome-bind=(t(locale, "signin_welcome_bind")) {
            h2 { (t(locale, "signin_tg_title")) }
            form #tg-phone-form {
                p.hint { (t(locale, "signin_tg_hint")) }
                label { (t(locale, "signin_phone")) input name="phone" type="tel" autocomplete="tel" placeholder="+7 900 000 00 00" required; }
                label.check { input #tg-remember name="remember" type="checkbox"; " " (t(locale, "signin_remember")) }
                button type="submit" { (t(locale, "signin_continue")) }
            }
            div #tg-bind hidden {
                p #tg-bind-text {}
                p { a #tg-bind-link target="_blank" rel="noopener" href="#" {} }
            }
            form #tg-verify-form hidden {
                p #tg-verify-info {}
                label { (t(locale, "signin_code")) input name="code" inputmode="numeric" autocomplete="one-time-code" maxlength="6" required; }
                button type="submit" { (t(locale, "signin_verify")) }
            }
            form #tg-code-form hidden {
                p #tg-code-info {}
                label { (t(locale, "signin_code")) input name="code" inputmode="numeric" autocomplete="one-time-code" required; }
                button type="submit" { (t(locale, "signin_verify")) }
            }
            form #tg-password-form hidden {
                label { (t(locale, "signin_tg_password")) span.hint-text {} input name="password" type="password" autocomplete="current-password" required; }
                button type="submit" { (t(locale, "signin_verify")) }
            }
            div #tg-qr hidden {
                p.hint { (t(locale, "signin_qr_hint")) }
                div #tg-qr-image {}
            }
            p.actions {
                button.secondary #tg-resend type="button" hidden { (t(locale, "signin_resend")) }
                " "
                button.secondary #tg-use-telegram type="button" hidden { (t(locale, "signin_use_telegram")) }
                " "
                button.secondary #tg-use-qr type="button" hidden { (t(locale, "signin_use_qr")) }
                " "
                button.secondary #tg-restart type="button" hidden { (t(locale, "signin_change_phone")) }
            }
            div #tg-welcome hidden {
                p #tg-welcome-text {}
                p { a #tg-welcome-link target="_blank" rel="noopener" href="#" {} }
                p { a.button #tg-go href="/inbox" { (t(locale, "signin_go_inbox")) } }
            }
            p #tg-error.error role="alert" hidden {}
        }
    }
}

/// Settings' sign-in sections: the service bot binding and the trusted devices of the signed-in
/// user, and (filled for those who may change it) the designation of the service bot.
pub(crate) fn settings_sections(locale: Locale, admin: bool) -> Markup {
    html! {
        section #signin-settings hidden
            data-bound=(t(locale, "settings_bot_bound"))
            data-unbound=(t(locale, "settings_bot_unbound"))
            data-current=(t(locale, "settings_device_current"))
            data-revoke=(t(locale, "settings_device_revoke")) {
            h2 { (t(locale, "settings_signin_title")) }
            p #bot-state {}
            p { button.secondary #bot-link-new type="button" { (t(locale, "settings_bot_link")) } }
            p { a #bot-link target="_blank" rel="noopener" hidden href="#" {} }
            h3 { (t(locale, "settings_devices_title")) }
            p.hint { (t(locale, "settings_devices_hint")) }
            p.empty #devices-none hidden { (t(locale, "settings_devices_none")) }
            table.members #devices hidden {
                thead { tr {
                    th { (t(locale, "settings_device_browser")) } th { (t(locale, "settings_device_first_seen")) }
                    th { (t(locale, "settings_device_last_used")) } th { (t(locale, "settings_device_expires")) }
                    th {}
                } }
                tbody {}
            }
            p { button.danger #devices-revoke-all type="button" hidden { (t(locale, "settings_devices_revoke_all")) } }
            p #signin-error.error role="alert" hidden {}
        }
        @if admin {
            section #service-bot-settings hidden {
                h2 { (t(locale, "settings_service_bot_title")) }
                p.hint { (t(locale, "settings_service_bot_hint")) }
                label { (t(locale, "settings_service_bot_title")) " "
                    select #service-bot-select { option value="" { (t(locale, "settings_service_bot_none")) } } }
                " "
                button #service-bot-save type="button" { (t(locale, "settings_service_bot_save")) }
                p #service-bot-status.ok role="status" hidden { (t(locale, "settings_saved")) }
                p #service-bot-error.error role="alert" hidden {}
            }
        }
    }
}
