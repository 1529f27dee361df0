//! The one string catalogue: every page text, API error message and bot message, in English and
//! Russian. Keys are stable snake_case; error codes double as keys of their messages.

use crate::model::Locale;

/// `(key, English, Russian)`.
pub static CATALOGUE: &[(&str, &str, &str)] = &[
    // --- API errors (key = error code) ---
    (
        "bad_request",
        "The request is malformed.",
        "Некорректный запрос.",
    ),
    (
        "invalid_json",
        "The request body is not valid JSON for this endpoint.",
        "Тело запроса — некорректный JSON для этого метода.",
    ),
    (
        "unsupported_media_type",
        "Send the request body as application/json.",
        "Отправьте тело запроса как application/json.",
    ),
    (
        "payload_too_large",
        "The request body is too large.",
        "Тело запроса слишком большое.",
    ),
    (
        "invalid_credentials",
        "Wrong username or password.",
        "Неверное имя пользователя или пароль.",
    ),
    (
        "account_locked",
        "Too many failed sign-ins. Try again later.",
        "Слишком много неудачных попыток входа. Попробуйте позже.",
    ),
    (
        "rate_limited",
        "Too many requests. Try again later.",
        "Слишком много запросов. Попробуйте позже.",
    ),
    (
        "unauthenticated",
        "Sign in first.",
        "Сначала войдите в систему.",
    ),
    (
        "csrf_failed",
        "The request lacks a valid CSRF token. Reload the page.",
        "В запросе нет действительного CSRF-токена. Обновите страницу.",
    ),
    (
        "forbidden",
        "You do not have permission to do this.",
        "У вас нет прав на это действие.",
    ),
    ("not_found", "Not found.", "Не найдено."),
    (
        "method_not_allowed",
        "This method is not allowed here.",
        "Этот метод здесь не разрешён.",
    ),
    (
        "conflict",
        "This conflicts with existing data.",
        "Это противоречит существующим данным.",
    ),
    (
        "username_taken",
        "This username is taken.",
        "Это имя пользователя уже занято.",
    ),
    (
        "invalid_username",
        "A username has 3 to 64 characters: latin letters, digits, '.', '_' or '-'.",
        "Имя пользователя — от 3 до 64 символов: латинские буквы, цифры, «.», «_» или «-».",
    ),
    (
        "weak_password",
        "The password must have at least 10 characters.",
        "Пароль должен содержать не менее 10 символов.",
    ),
    (
        "invalid_locale",
        "Supported languages: en, ru.",
        "Поддерживаемые языки: en, ru.",
    ),
    (
        "validation_failed",
        "Some fields are invalid.",
        "Некоторые поля заполнены неверно.",
    ),
    (
        "internal",
        "Something went wrong on our side.",
        "Что-то пошло не так на нашей стороне.",
    ),
    (
        "unavailable",
        "The service is not ready.",
        "Сервис не готов.",
    ),
    (
        "no_workspace",
        "Your user belongs to no workspace. Ask an administrator.",
        "Ваш пользователь не состоит ни в одном рабочем пространстве. Обратитесь к администратору.",
    ),
    // --- pages ---
    ("app_name", "Switchboard", "Switchboard"),
    ("signin_title", "Sign in", "Вход"),
    ("signin_username", "Username", "Имя пользователя"),
    ("signin_password", "Password", "Пароль"),
    ("signin_submit", "Sign in", "Войти"),
    ("signin_failed", "Sign-in failed.", "Не удалось войти."),
    ("signout", "Sign out", "Выйти"),
    ("language", "Language", "Язык"),
    ("nav_inbox", "Inbox", "Входящие"),
    ("nav_accounts", "Accounts", "Аккаунты"),
    ("nav_bots", "Bots", "Боты"),
    ("nav_leads", "Leads", "Лиды"),
    ("nav_team", "Team", "Команда"),
    ("nav_settings", "Settings", "Настройки"),
    (
        "empty_inbox",
        "Conversations from every connected account and bot will appear here, assigned to you or waiting in the unassigned queue.",
        "Здесь появятся диалоги всех подключённых аккаунтов и ботов — назначенные вам и ожидающие в общей очереди.",
    ),
    (
        "empty_accounts",
        "Personal Telegram accounts you connect (by code, QR or an imported session) will be listed here with their live health.",
        "Здесь будут личные аккаунты Telegram, которые вы подключите (по коду, QR или импортом сессии), с их текущим состоянием.",
    ),
    (
        "empty_bots",
        "Telegram bots added by token will be listed here with their webhook or polling state.",
        "Здесь будут Telegram-боты, добавленные по токену, с состоянием вебхука или опроса.",
    ),
    (
        "empty_leads",
        "Monitoring tasks and the leads they find in channels will appear here.",
        "Здесь появятся задачи мониторинга и лиды, найденные в каналах.",
    ),
    ("team_title", "Team", "Команда"),
    ("team_username", "Username", "Имя пользователя"),
    ("team_name", "Name", "Имя"),
    ("team_role", "Role", "Роль"),
    ("team_max_chats", "Max chats", "Макс. чатов"),
    (
        "settings_language_hint",
        "Interface language for your user. \"Browser\" follows your browser's setting.",
        "Язык интерфейса для вашего пользователя. «Браузер» — как в настройках браузера.",
    ),
    ("settings_language_browser", "Browser", "Браузер"),
    ("settings_saved", "Saved.", "Сохранено."),
    ("save", "Save", "Сохранить"),
    (
        "not_found_page",
        "This page does not exist.",
        "Такой страницы нет.",
    ),
];

/// Looks up a string; falls back to English, then to the key itself.
pub fn t(locale: Locale, key: &str) -> &str {
    match CATALOGUE.iter().find(|(k, _, _)| *k == key) {
        Some((_, en, ru)) => match locale {
            Locale::En => en,
            Locale::Ru => ru,
        },
        None => key_fallback(key),
    }
}

fn key_fallback(key: &str) -> &str {
    key
}

/// True if the catalogue has this key.
pub fn has(key: &str) -> bool {
    CATALOGUE.iter().any(|(k, _, _)| *k == key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_key_is_unique_and_translated() {
        let mut seen = HashSet::new();
        for (k, en, ru) in CATALOGUE {
            assert!(seen.insert(*k), "duplicate key {k}");
            assert!(
                !en.trim().is_empty() && !ru.trim().is_empty(),
                "empty text for {k}"
            );
        }
    }

    #[test]
    fn lookup_uses_the_locale() {
        assert_eq!(t(Locale::En, "nav_inbox"), "Inbox");
        assert_eq!(t(Locale::Ru, "nav_inbox"), "Входящие");
        assert_eq!(t(Locale::Ru, "no_such_key"), "no_such_key");
    }
}
