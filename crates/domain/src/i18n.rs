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
        "already_member",
        "This user is already a member of the workspace.",
        "Этот пользователь уже участник рабочего пространства.",
    ),
    (
        "not_a_member",
        "This user is not a member of the workspace.",
        "Этот пользователь не участник рабочего пространства.",
    ),
    (
        "session_exists",
        "This session already exists.",
        "Такая сессия уже существует.",
    ),
    (
        "assign_forbidden",
        "You may only take an unassigned chat or hand back your own.",
        "Можно только взять свободный чат или вернуть свой.",
    ),
    (
        "not_failed",
        "Only a reply that failed can be sent again.",
        "Повторно отправить можно только неотправленный ответ.",
    ),
    (
        "file_type_not_allowed",
        "This type of file cannot be sent.",
        "Такой тип файла нельзя отправить.",
    ),
    (
        "upgrade_required",
        "Open this address as a WebSocket.",
        "Откройте этот адрес как WebSocket.",
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
        "task_name_taken",
        "A task with this name exists.",
        "Задача с таким названием уже есть.",
    ),
    (
        "task_name_invalid",
        "A task needs a name of 1 to 100 characters.",
        "У задачи должно быть название от 1 до 100 символов.",
    ),
    (
        "task_query_invalid",
        "The task's query is empty or too long.",
        "Запрос задачи пуст или слишком длинный.",
    ),
    (
        "digest_interval_invalid",
        "The digest interval is out of range.",
        "Интервал дайджеста вне допустимых пределов.",
    ),
    (
        "rate_cap_invalid",
        "The rate cap is out of range.",
        "Ограничение частоты вне допустимых пределов.",
    ),
    (
        "delivery_target_invalid",
        "The delivery target is not valid.",
        "Получатель лидов указан неверно.",
    ),
    (
        "delivery_target_not_found",
        "The chat or bot to deliver to does not exist in this workspace.",
        "Чата или бота для доставки нет в этом рабочем пространстве.",
    ),
    (
        "account_not_found",
        "The reading account does not exist in this workspace.",
        "Читающего аккаунта нет в этом рабочем пространстве.",
    ),
    (
        "source_invalid",
        "Not a channel or chat reference: use @name, a t.me link or an invite link.",
        "Это не ссылка на канал или чат: укажите @имя, ссылку t.me или ссылку-приглашение.",
    ),
    (
        "too_many_sources",
        "A task reads at most 500 sources.",
        "Задача читает не больше 500 источников.",
    ),
    (
        "task_forbidden",
        "Only owners and admins manage monitoring tasks.",
        "Задачами мониторинга управляют только владельцы и администраторы.",
    ),
    (
        "source_state_invalid",
        "The source is not in a state that allows this.",
        "Источник в состоянии, которое этого не допускает.",
    ),
    (
        "query_invalid",
        "The query cannot be read: see the position and what was expected there.",
        "Запрос не удалось разобрать: см. позицию и что ожидалось на ней.",
    ),
    (
        "account_offline",
        "The reading account is not connected to Telegram right now.",
        "Читающий аккаунт сейчас не подключён к Telegram.",
    ),
    (
        "lead_author_unknown",
        "The reading account does not know this author, so it cannot write to them.",
        "Читающий аккаунт не знает этого автора и не может ему написать.",
    ),
    (
        "last_owner",
        "A workspace needs an owner: make someone else an owner first.",
        "У рабочего пространства должен быть владелец: сначала сделайте владельцем кого-то другого.",
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
    // --- Telegram accounts ---
    (
        "phone_number_invalid",
        "Telegram does not accept this phone number.",
        "Telegram не принимает этот номер телефона.",
    ),
    (
        "phone_number_banned",
        "This phone number is banned by Telegram.",
        "Этот номер телефона заблокирован в Telegram.",
    ),
    (
        "phone_number_unoccupied",
        "No Telegram account uses this number; sign up in an official Telegram app first.",
        "С этим номером нет аккаунта Telegram; сначала зарегистрируйтесь в официальном приложении.",
    ),
    (
        "phone_code_invalid",
        "The code is wrong. Check it and try again.",
        "Неверный код. Проверьте и попробуйте снова.",
    ),
    (
        "phone_code_attempts_exceeded",
        "Too many wrong codes. Request a new code.",
        "Слишком много неверных кодов. Запросите новый код.",
    ),
    (
        "phone_code_expired",
        "The code has expired. Request a new one.",
        "Срок действия кода истёк. Запросите новый.",
    ),
    (
        "send_code_unavailable",
        "Telegram cannot send the code another way.",
        "Telegram не может отправить код другим способом.",
    ),
    (
        "password_invalid",
        "The two-step verification password is wrong.",
        "Неверный пароль двухэтапной проверки.",
    ),
    (
        "session_password_needed",
        "Enter the account's two-step verification password.",
        "Введите пароль двухэтапной проверки аккаунта.",
    ),
    (
        "flood_wait",
        "Telegram asks to wait before trying again.",
        "Telegram просит подождать перед следующей попыткой.",
    ),
    (
        "login_token_expired",
        "The QR code has expired. A new one is being shown.",
        "Срок действия QR-кода истёк. Показан новый.",
    ),
    (
        "session_unauthorized",
        "The session is no longer authorized. Sign in again.",
        "Сессия больше не авторизована. Войдите заново.",
    ),
    (
        "account_banned",
        "The account is banned or deactivated by Telegram.",
        "Аккаунт заблокирован или удалён в Telegram.",
    ),
    (
        "telegram_unreachable",
        "Telegram could not be reached. Try again shortly.",
        "Не удалось связаться с Telegram. Попробуйте чуть позже.",
    ),
    (
        "telegram_error",
        "Telegram returned an error.",
        "Telegram вернул ошибку.",
    ),
    (
        "login_finished",
        "This sign-in has already finished.",
        "Этот вход уже завершён.",
    ),
    (
        "login_wrong_step",
        "This step does not fit the sign-in in progress.",
        "Этот шаг не подходит к текущему входу.",
    ),
    (
        "session_no_auth_key",
        "The session has no authorization key.",
        "В сессии нет ключа авторизации.",
    ),
    (
        "auth_key_provisioning_failed",
        "Could not obtain an authorization key for the new session.",
        "Не удалось получить ключ авторизации для новой сессии.",
    ),
    (
        "telegram_config_invalid",
        "Telegram access is not configured (api_id/api_hash).",
        "Доступ к Telegram не настроен (api_id/api_hash).",
    ),
    ("store_error", "The database failed.", "Ошибка базы данных."),
    (
        "telegram_client_crashed",
        "The Telegram client stopped unexpectedly.",
        "Клиент Telegram неожиданно остановился.",
    ),
    (
        "telegram_unexpected_answer",
        "Telegram answered unexpectedly.",
        "Telegram ответил неожиданным образом.",
    ),
    (
        "login_flow_not_found",
        "This sign-in does not exist or has expired. Start again.",
        "Такой вход не найден или истёк. Начните заново.",
    ),
    (
        "account_exists",
        "This Telegram account is already connected to the workspace.",
        "Этот аккаунт Telegram уже подключён к рабочему пространству.",
    ),
    (
        "bot_token_invalid",
        "This is not a bot token. Copy it from @BotFather: digits, a colon, then letters.",
        "Это не токен бота. Скопируйте его у @BotFather: цифры, двоеточие, затем буквы.",
    ),
    (
        "bot_token_rejected",
        "Telegram rejected this bot token. Check it in @BotFather or issue a new one.",
        "Telegram отклонил этот токен бота. Проверьте его в @BotFather или выпустите новый.",
    ),
    (
        "bot_exists",
        "This bot is already connected to the workspace.",
        "Этот бот уже подключён к рабочему пространству.",
    ),
    (
        "bot_api_failed",
        "The Telegram Bot API did not answer as expected. Try again later.",
        "Telegram Bot API ответил не так, как ожидалось. Попробуйте позже.",
    ),
    (
        "malformed_update",
        "The webhook body is not a Telegram update.",
        "Тело запроса вебхука — не обновление Telegram.",
    ),
    (
        "bot_blocked",
        "The user blocked the bot; the message cannot be delivered.",
        "Пользователь заблокировал бота; сообщение не может быть доставлено.",
    ),
    (
        "bot_forbidden",
        "The bot may not write to this chat.",
        "Бот не может писать в этот чат.",
    ),
    (
        "chat_not_found",
        "Telegram does not know this chat.",
        "Telegram не знает этот чат.",
    ),
    (
        "retry_after",
        "Telegram asked to wait before sending; the message will be retried.",
        "Telegram попросил подождать с отправкой; сообщение будет отправлено повторно.",
    ),
    (
        "bot_unauthorized",
        "Telegram rejected the bot token; add the bot again with a valid token.",
        "Telegram отклонил токен бота; добавьте бота заново с действующим токеном.",
    ),
    (
        "bot_deleted",
        "The bot of this chat was deleted.",
        "Бот этого чата удалён.",
    ),
    (
        "not_a_bot_chat",
        "This chat does not belong to a bot.",
        "Этот чат не принадлежит боту.",
    ),
    (
        "bot_api_unavailable",
        "The Telegram Bot API is temporarily unavailable.",
        "Telegram Bot API временно недоступен.",
    ),
    (
        "bot_api_rejected",
        "The Telegram Bot API rejected the request.",
        "Telegram Bot API отклонил запрос.",
    ),
    (
        "bot_api_unreachable",
        "The Telegram Bot API cannot be reached.",
        "Нет связи с Telegram Bot API.",
    ),
    (
        "send_uncertain",
        "The message may or may not have been sent: Telegram's answer was lost. Check the chat in Telegram, then send it again or mark it as sent.",
        "Сообщение могло быть отправлено или нет: ответ Telegram потерян. Проверьте чат в Telegram и отправьте снова или отметьте как отправленное.",
    ),
    (
        "not_uncertain",
        "Only a message whose sending is uncertain can be marked as sent.",
        "Отметить как отправленное можно только сообщение с неизвестным исходом отправки.",
    ),
    (
        "bot_api_unexpected",
        "The Telegram Bot API gave an unexpected answer.",
        "Telegram Bot API дал неожиданный ответ.",
    ),
    (
        "bot_api_conflict",
        "Another program receives this bot's updates (or a webhook is set).",
        "Обновления этого бота получает другая программа (или установлен вебхук).",
    ),
    (
        "vault_error",
        "A stored secret could not be read.",
        "Не удалось прочитать сохранённый секрет.",
    ),
    (
        "session_string_empty",
        "The session string is empty.",
        "Строка сессии пуста.",
    ),
    (
        "session_string_invalid_base64",
        "The session string is not valid base64.",
        "Строка сессии — не корректный base64.",
    ),
    (
        "session_string_wrong_length",
        "The session string has a length no known format uses.",
        "Длина строки сессии не подходит ни к одному известному формату.",
    ),
    (
        "session_string_unrecognized",
        "The session string is not a Telethon, Pyrogram or gramjs session.",
        "Строка сессии не похожа на сессию Telethon, Pyrogram или gramjs.",
    ),
    (
        "session_string_no_auth_key",
        "The session string holds no authorization key.",
        "В строке сессии нет ключа авторизации.",
    ),
    (
        "session_unsupported_version",
        "This session format version is not supported.",
        "Эта версия формата сессии не поддерживается.",
    ),
    (
        "session_invalid_dc_id",
        "The session names an invalid data center.",
        "В сессии указан неверный дата-центр.",
    ),
    (
        "session_invalid_address",
        "The session holds an invalid server address.",
        "В сессии неверный адрес сервера.",
    ),
    (
        "session_invalid_user_id",
        "The session holds an invalid user id.",
        "В сессии неверный идентификатор пользователя.",
    ),
    (
        "file_too_large",
        "The file is larger than this server accepts.",
        "Файл больше, чем принимает этот сервер.",
    ),
    (
        "file_id_invalid",
        "A file id is 64 hexadecimal digits.",
        "Идентификатор файла — 64 шестнадцатеричные цифры.",
    ),
    ("file_not_found", "No such file.", "Такого файла нет."),
    (
        "file_store_failed",
        "The file could not be stored or read. Try again later.",
        "Не удалось сохранить или прочитать файл. Попробуйте позже.",
    ),
    (
        "session_too_large",
        "The session file is too large.",
        "Файл сессии слишком большой.",
    ),
    (
        "session_file_not_sqlite",
        "The file is not an SQLite .session file.",
        "Файл — не SQLite-файл .session.",
    ),
    (
        "session_file_corrupt",
        "The .session file is damaged.",
        "Файл .session повреждён.",
    ),
    (
        "session_file_missing_table",
        "The .session file lacks a table its format needs.",
        "В файле .session нет нужной таблицы.",
    ),
    (
        "session_file_missing_column",
        "The .session file lacks a column its format needs.",
        "В файле .session нет нужного столбца.",
    ),
    (
        "session_file_no_session_row",
        "The .session file holds no session.",
        "В файле .session нет сессии.",
    ),
    (
        "session_file_no_auth_key",
        "The .session file holds no authorization key.",
        "В файле .session нет ключа авторизации.",
    ),
    (
        "session_file_bad_value",
        "The .session file holds an invalid value.",
        "В файле .session неверное значение.",
    ),
    (
        "session_file_unknown_schema",
        "The .session file has an unknown layout.",
        "Неизвестная структура файла .session.",
    ),
    (
        "session_json_invalid",
        "The JSON file is not valid JSON.",
        "JSON-файл содержит некорректный JSON.",
    ),
    (
        "session_json_not_object",
        "The JSON file must hold an object.",
        "JSON-файл должен содержать объект.",
    ),
    (
        "session_json_bad_field",
        "A field of the JSON file has the wrong type.",
        "Поле JSON-файла имеет неверный тип.",
    ),
    (
        "session_json_no_session",
        "The JSON file has no session string and no .session file came with it.",
        "В JSON-файле нет строки сессии, и файл .session не приложен.",
    ),
    (
        "session_bundle_mismatch",
        "The JSON file and the .session file describe different accounts.",
        "JSON-файл и файл .session описывают разные аккаунты.",
    ),
    (
        "session_folder_no_session",
        "This folder holds no usable session.",
        "В этой папке нет пригодной сессии.",
    ),
    (
        "session_file_type_unsupported",
        "Only .session and .json files can be imported.",
        "Импортировать можно только файлы .session и .json.",
    ),
    (
        "session_file_duplicate",
        "The same file was uploaded twice for this account.",
        "Для этого аккаунта один и тот же файл загружен дважды.",
    ),
    (
        "upload_file_too_large",
        "A file is larger than the upload limit per file. Nothing was imported.",
        "Файл больше допустимого размера. Ничего не импортировано.",
    ),
    (
        "upload_too_large",
        "The files together exceed the upload limit. Nothing was imported.",
        "Файлы вместе превышают допустимый размер загрузки. Ничего не импортировано.",
    ),
    (
        "upload_too_many_files",
        "Too many files in one upload. Nothing was imported.",
        "Слишком много файлов в одной загрузке. Ничего не импортировано.",
    ),
    (
        "upload_empty",
        "Choose at least one .session or .json file.",
        "Выберите хотя бы один файл .session или .json.",
    ),
    (
        "upload_invalid",
        "Send the files as multipart/form-data.",
        "Отправьте файлы как multipart/form-data.",
    ),
    (
        "session_io",
        "The session file could not be read.",
        "Не удалось прочитать файл сессии.",
    ),
    (
        "session_temp_file",
        "A temporary file could not be created.",
        "Не удалось создать временный файл.",
    ),
    (
        "session_export_missing_field",
        "The session lacks a field the export format needs.",
        "В сессии нет поля, нужного для экспорта.",
    ),
    (
        "session_export_out_of_range",
        "A session value does not fit the export format.",
        "Значение сессии не помещается в формат экспорта.",
    ),
    (
        "vault_key_file_io",
        "The master key file could not be read or written.",
        "Не удалось прочитать или записать файл мастер-ключа.",
    ),
    (
        "vault_key_file_exists",
        "A master key file already exists there.",
        "Файл мастер-ключа там уже есть.",
    ),
    (
        "vault_key_file_malformed",
        "The master key file is malformed.",
        "Файл мастер-ключа повреждён.",
    ),
    (
        "vault_invalid_key_id",
        "The key id is invalid.",
        "Неверный идентификатор ключа.",
    ),
    (
        "vault_duplicate_key_id",
        "Two keys have the same id.",
        "У двух ключей одинаковый идентификатор.",
    ),
    (
        "vault_cannot_remove_current_key",
        "The current master key cannot be removed.",
        "Текущий мастер-ключ нельзя удалить.",
    ),
    (
        "vault_sealed_truncated",
        "Stored secret data is truncated.",
        "Сохранённые секретные данные обрезаны.",
    ),
    (
        "vault_sealed_bad_magic",
        "Stored secret data is not in the vault's format.",
        "Сохранённые секретные данные не в формате хранилища.",
    ),
    (
        "vault_sealed_unsupported_version",
        "Stored secret data has an unsupported version.",
        "Неподдерживаемая версия сохранённых секретных данных.",
    ),
    (
        "vault_sealed_bad_key_id",
        "Stored secret data names an invalid key.",
        "Сохранённые секретные данные ссылаются на неверный ключ.",
    ),
    (
        "vault_unknown_key_id",
        "Stored secrets were sealed with a master key that is not loaded.",
        "Секреты зашифрованы мастер-ключом, который не загружен.",
    ),
    (
        "vault_unwrap_failed",
        "A data key could not be unwrapped with the master key.",
        "Не удалось расшифровать ключ данных мастер-ключом.",
    ),
    (
        "vault_aad_mismatch",
        "Stored secret data belongs to another record.",
        "Сохранённые секретные данные относятся к другой записи.",
    ),
    (
        "vault_decrypt_failed",
        "Stored secret data could not be decrypted.",
        "Не удалось расшифровать сохранённые секретные данные.",
    ),
    (
        "vault_encrypt_failed",
        "Secret data could not be encrypted.",
        "Не удалось зашифровать секретные данные.",
    ),
    (
        "vault_random_failed",
        "The system random generator failed.",
        "Сбой системного генератора случайных чисел.",
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
    ("bots_add_title", "Add a bot", "Добавить бота"),
    (
        "bots_token_label",
        "Bot token from @BotFather",
        "Токен бота от @BotFather",
    ),
    ("bots_add_submit", "Add bot", "Добавить бота"),
    ("bots_start", "Start", "Запустить"),
    ("bots_stop", "Stop", "Остановить"),
    ("bots_delete", "Delete", "Удалить"),
    (
        "bots_delete_confirm",
        "Delete this bot with all its chats?",
        "Удалить этого бота со всеми его чатами?",
    ),
    ("bots_mode_webhook", "webhook", "вебхук"),
    ("bots_mode_polling", "long polling", "long polling"),
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
    ("leads_tasks", "Tasks", "Задачи"),
    ("leads_new_task", "New task", "Новая задача"),
    (
        "leads_no_tasks",
        "No monitoring tasks yet.",
        "Задач мониторинга пока нет.",
    ),
    ("leads_task_active", "active", "работает"),
    ("leads_task_paused", "paused", "на паузе"),
    ("leads_task_form", "Task", "Задача"),
    ("leads_name", "Name", "Название"),
    ("leads_query", "Query", "Запрос"),
    (
        "leads_query_hint",
        "Words match in every form. !word fixes the form, -word excludes, \"a b\" is a phrase, [a b] keeps the order, (a | b) is a choice, /regex/ for the rest.",
        "Слова находятся во всех формах. !слово фиксирует форму, -слово исключает, \"а б\" — фраза, [а б] — порядок, (а | б) — выбор, /regex/ — для остального.",
    ),
    (
        "leads_query_error_at",
        "At character {position}: {message}",
        "В символе {position}: {message}",
    ),
    ("leads_try", "Try it", "Проверить"),
    (
        "leads_try_hint",
        "Runs the query on the last posts of the saved sources.",
        "Проверяет запрос на последних постах сохранённых источников.",
    ),
    (
        "leads_try_none",
        "None of the {checked} posts read match.",
        "Ни один из {checked} прочитанных постов не подходит.",
    ),
    (
        "leads_try_found",
        "{count} of {checked} posts read match:",
        "Подходят {count} из {checked} прочитанных постов:",
    ),
    (
        "leads_try_save_first",
        "Save the task with its sources first.",
        "Сначала сохраните задачу с источниками.",
    ),
    ("leads_sources", "Sources", "Источники"),
    (
        "leads_sources_hint",
        "One per line: @name, t.me/name, t.me/c/…, t.me/+invite or t.me/joinchat/….",
        "По одному в строке: @имя, t.me/имя, t.me/c/…, t.me/+приглашение или t.me/joinchat/….",
    ),
    (
        "leads_pick_chat",
        "Add one of the account's chats…",
        "Добавить чат аккаунта…",
    ),
    ("leads_source_resolving", "resolving", "определяется"),
    ("leads_source_joined", "joined", "вступили"),
    ("leads_source_polled", "polled", "читается опросом"),
    (
        "leads_source_flood_wait",
        "waiting (FLOOD_WAIT) until {time}",
        "ожидание (FLOOD_WAIT) до {time}",
    ),
    (
        "leads_source_failed",
        "failed: {reason}",
        "ошибка: {reason}",
    ),
    ("leads_source_left", "left", "покинут"),
    ("leads_account", "Reading account", "Читающий аккаунт"),
    ("leads_target", "Deliver to", "Куда отправлять"),
    (
        "leads_target_saved",
        "Saved Messages of the reading account",
        "«Избранное» читающего аккаунта",
    ),
    (
        "leads_target_chat",
        "A chat of the inbox",
        "Чат из входящих",
    ),
    ("leads_target_bot", "Through a bot", "Через бота"),
    ("leads_target_chat_id", "Chat", "Чат"),
    ("leads_target_bot_id", "Bot", "Бот"),
    (
        "leads_target_peer",
        "Telegram chat id the bot writes to",
        "Telegram id чата, куда пишет бот",
    ),
    ("leads_mode", "When", "Когда"),
    ("leads_mode_instant", "Instantly", "Сразу"),
    ("leads_mode_digest", "As a digest", "Дайджестом"),
    (
        "leads_digest_minutes",
        "Digest every (minutes)",
        "Дайджест каждые (минут)",
    ),
    (
        "leads_cap",
        "Instant leads per minute before a digest",
        "Мгновенных лидов в минуту до перехода на дайджест",
    ),
    (
        "leads_ignore_forwards",
        "Ignore forwards",
        "Пропускать пересылки",
    ),
    ("leads_join_allowed", "Join sources", "Вступать в источники"),
    (
        "leads_leave_unused",
        "Leave sources no task needs",
        "Покидать ненужные источники",
    ),
    ("leads_active", "Active", "Включена"),
    ("leads_save", "Save", "Сохранить"),
    ("leads_cancel", "Close", "Закрыть"),
    ("leads_delete", "Delete", "Удалить"),
    (
        "leads_delete_confirm",
        "Delete this task and its leads?",
        "Удалить задачу вместе с её лидами?",
    ),
    ("leads_pause", "Pause", "Пауза"),
    ("leads_resume", "Resume", "Возобновить"),
    ("leads_saved", "Saved.", "Сохранено."),
    (
        "leads_read_only",
        "Only owners and admins change tasks.",
        "Менять задачи могут только владельцы и администраторы.",
    ),
    ("leads_list", "Leads", "Лиды"),
    ("leads_filter_task", "Task", "Задача"),
    ("leads_filter_any_task", "All tasks", "Все задачи"),
    ("leads_filter_source", "Source", "Источник"),
    ("leads_filter_any_source", "All sources", "Все источники"),
    ("leads_filter_from", "From", "С"),
    ("leads_filter_to", "To", "По"),
    ("leads_filter_read", "Shown", "Показывать"),
    ("leads_filter_all", "All", "Все"),
    ("leads_filter_unread", "Unread", "Непрочитанные"),
    ("leads_filter_read_only", "Read", "Прочитанные"),
    ("leads_search", "Search", "Поиск"),
    (
        "leads_search_placeholder",
        "Words in the post",
        "Слова из поста",
    ),
    ("leads_mark_all_read", "Mark all read", "Прочитать все"),
    ("leads_export", "Export CSV", "Выгрузить CSV"),
    ("leads_none", "No leads match.", "Подходящих лидов нет."),
    ("leads_more", "Load more", "Показать ещё"),
    ("leads_mark_read", "Mark read", "Прочитано"),
    ("leads_mark_unread", "Mark unread", "Не прочитано"),
    ("leads_write", "Write to the author", "Написать автору"),
    ("leads_open_post", "Open the post", "Открыть пост"),
    ("leads_new_lead", "New lead", "Новый лид"),
    ("leads_unknown_author", "author unknown", "автор неизвестен"),
    ("leads_loading", "Loading…", "Загрузка…"),
    ("leads_source_retry", "Retry", "Повторить"),
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
    // --- Settings: System (admins) ---
    ("system_title", "System", "Система"),
    (
        "system_hint",
        "Background workers of the server, and the health of this workspace's accounts and bots.",
        "Фоновые процессы сервера и состояние аккаунтов и ботов этого рабочего пространства.",
    ),
    ("system_ready", "Ready", "Готов к работе"),
    (
        "system_not_ready",
        "Not ready: a required worker is not running",
        "Не готов: обязательный процесс не работает",
    ),
    ("system_workers", "Workers", "Фоновые процессы"),
    ("system_accounts", "Accounts", "Аккаунты"),
    ("system_bots", "Bots", "Боты"),
    ("system_bot", "Bot", "Бот"),
    ("system_worker", "Worker", "Процесс"),
    ("system_state", "State", "Состояние"),
    ("system_restarts", "Restarts", "Перезапуски"),
    ("system_last_error", "Last error", "Последняя ошибка"),
    ("system_next_attempt", "Next attempt", "Следующая попытка"),
    ("system_health", "Connection", "Подключение"),
    ("system_none", "None.", "Нет."),
    ("worker_state_starting", "starting", "запускается"),
    ("worker_state_running", "running", "работает"),
    (
        "worker_state_backing_off",
        "backing off",
        "ожидает перезапуска",
    ),
    ("worker_state_stopped", "stopped", "остановлен"),
    ("worker_state_failed", "failed", "сбой"),
    ("worker_state_none", "not started", "не запущен"),
    (
        "system_restart_clients",
        "Restart account clients",
        "Перезапустить клиенты аккаунтов",
    ),
    (
        "system_restart_hint",
        "Stops and starts the Telegram clients of this workspace's accounts, at most once per 30 seconds.",
        "Останавливает и снова запускает клиенты Telegram аккаунтов этого рабочего пространства, не чаще раза в 30 секунд.",
    ),
    (
        "system_restarted",
        "Clients restarted: {n}.",
        "Перезапущено клиентов: {n}.",
    ),
    ("save", "Save", "Сохранить"),
    (
        "acc_connect_phone",
        "Connect by phone number",
        "Подключить по номеру телефона",
    ),
    ("acc_phone", "Phone number", "Номер телефона"),
    ("acc_send_code", "Send code", "Отправить код"),
    ("acc_code", "Code from Telegram", "Код из Telegram"),
    ("acc_submit_code", "Sign in", "Войти"),
    (
        "acc_resend",
        "Send the code another way",
        "Отправить код другим способом",
    ),
    (
        "acc_password",
        "Two-step verification password",
        "Пароль двухэтапной проверки",
    ),
    ("acc_submit_password", "Confirm", "Подтвердить"),
    (
        "acc_connect_qr",
        "Connect by QR code",
        "Подключить по QR-коду",
    ),
    (
        "acc_qr_hint",
        "Open Telegram on your phone: Settings → Devices → Link Desktop Device, and scan this code.",
        "Откройте Telegram на телефоне: Настройки → Устройства → Подключить устройство, и отсканируйте код.",
    ),
    ("acc_show_qr", "Show QR code", "Показать QR-код"),
    ("acc_import", "Import a session", "Импорт сессии"),
    (
        "acc_import_hint",
        "Paste a Telethon, Pyrogram/Hydrogram/Kurigram or gramjs string session. It is checked with one connection before the account goes live.",
        "Вставьте строку сессии Telethon, Pyrogram/Hydrogram/Kurigram или gramjs. Перед запуском она проверяется одним подключением.",
    ),
    ("acc_import_submit", "Import", "Импортировать"),
    (
        "acc_upload_hint",
        "Or upload .session files (Telethon, Pyrogram), JSON + .session pairs, or a whole folder laid out as {phone}/{phone}.json and {phone}/{phone}.session.",
        "Или загрузите файлы .session (Telethon, Pyrogram), пары JSON + .session или целую папку вида {phone}/{phone}.json и {phone}/{phone}.session.",
    ),
    ("acc_upload_files", "Session files", "Файлы сессий"),
    (
        "acc_upload_folder",
        "A folder of accounts",
        "Папка с аккаунтами",
    ),
    ("acc_upload_imported", "imported", "импортирован"),
    ("acc_name", "Account", "Аккаунт"),
    ("acc_status", "Status", "Состояние"),
    ("acc_actions", "Actions", "Действия"),
    ("acc_start", "Start", "Запустить"),
    ("acc_stop", "Stop", "Остановить"),
    ("acc_ingest_groups", "Store group chats", "Сохранять группы"),
    ("acc_logout", "Log out", "Выйти из аккаунта"),
    ("acc_delete", "Delete", "Удалить"),
    (
        "acc_confirm_delete",
        "Delete this account with its chats and messages?",
        "Удалить аккаунт вместе с чатами и сообщениями?",
    ),
    ("acc_none", "No accounts yet.", "Аккаунтов пока нет."),
    ("acc_code_sent_to", "Code sent via", "Код отправлен через"),
    (
        "acc_admin_only",
        "Only owners and admins can connect accounts.",
        "Подключать аккаунты могут только владельцы и администраторы.",
    ),
    ("status_connecting", "connecting", "подключение"),
    ("status_connected", "connected", "подключён"),
    ("status_reconnecting", "reconnecting", "переподключение"),
    ("status_flood_wait", "flood wait", "ожидание (FloodWait)"),
    ("status_unauthorized", "needs sign-in", "нужен вход"),
    ("status_banned", "banned", "заблокирован"),
    ("status_stopped", "stopped", "остановлен"),
    // --- inbox UI (assets/inbox.js; keys listed in web/src/inbox_page.rs) ---
    ("inbox_chats", "Chats", "Чаты"),
    ("inbox_filter_assignee", "Show chats", "Показать чаты"),
    ("inbox_filter_all", "All", "Все"),
    ("inbox_filter_mine", "Mine", "Мои"),
    (
        "inbox_filter_unassigned",
        "Unassigned",
        "Без ответственного",
    ),
    ("inbox_filter_status", "Status", "Статус"),
    ("inbox_filter_any_status", "Any status", "Любой статус"),
    ("inbox_filter_source", "Account or bot", "Аккаунт или бот"),
    (
        "inbox_filter_any_source",
        "All accounts and bots",
        "Все аккаунты и боты",
    ),
    ("inbox_status_open", "Open", "Открыт"),
    ("inbox_status_pending", "Pending", "Ожидает"),
    ("inbox_status_resolved", "Resolved", "Решён"),
    (
        "inbox_no_chats",
        "No chats match these filters.",
        "Нет чатов с такими фильтрами.",
    ),
    (
        "inbox_pick_chat",
        "Choose a chat on the left.",
        "Выберите чат слева.",
    ),
    ("inbox_loading", "Loading…", "Загрузка…"),
    (
        "inbox_load_older",
        "Load older messages",
        "Загрузить более ранние сообщения",
    ),
    ("inbox_unread", "{n} unread", "Непрочитанных: {n}"),
    ("inbox_operators", "Operators", "Операторы"),
    ("inbox_open_chats", "open chats", "открытых чатов"),
    ("inbox_assignee_none", "Unassigned", "Не назначен"),
    ("inbox_take", "Take", "Взять себе"),
    ("inbox_hand_back", "Hand back", "Вернуть в очередь"),
    ("inbox_online", "online", "в сети"),
    ("inbox_offline", "offline", "не в сети"),
    ("inbox_edited", "edited", "изменено"),
    ("inbox_edit_history", "Earlier versions", "Прежние версии"),
    (
        "inbox_no_history",
        "No earlier versions are stored.",
        "Прежних версий нет.",
    ),
    ("inbox_deleted", "deleted", "удалено"),
    ("inbox_msg_queued", "queued", "в очереди"),
    ("inbox_msg_sending", "sending", "отправляется"),
    ("inbox_msg_sent", "sent", "отправлено"),
    ("inbox_msg_failed", "not sent", "не отправлено"),
    ("inbox_retry", "Retry", "Повторить"),
    (
        "inbox_msg_uncertain",
        "may have been sent",
        "возможно, отправлено",
    ),
    ("inbox_send_again", "Send again", "Отправить снова"),
    (
        "inbox_mark_sent",
        "Mark as sent",
        "Отметить как отправленное",
    ),
    ("inbox_reply", "Reply", "Ответить"),
    ("inbox_replying_to", "Reply to", "Ответ на"),
    (
        "inbox_reply_unknown",
        "an earlier message",
        "более раннее сообщение",
    ),
    ("inbox_close", "Close", "Закрыть"),
    ("inbox_messages", "Messages", "Сообщения"),
    ("inbox_message_label", "Reply text", "Текст ответа"),
    (
        "inbox_composer_placeholder",
        "Write a reply… Enter sends, Shift+Enter starts a new line",
        "Напишите ответ… Enter — отправить, Shift+Enter — новая строка",
    ),
    ("inbox_send", "Send", "Отправить"),
    ("inbox_attach", "Attach a file", "Прикрепить файл"),
    ("inbox_uploading", "Uploading…", "Загрузка…"),
    (
        "inbox_remove_attachment",
        "Remove the attachment",
        "Убрать вложение",
    ),
    (
        "inbox_media_missing",
        "The file is not available yet.",
        "Файл пока недоступен.",
    ),
    ("inbox_download", "Download", "Скачать"),
    (
        "inbox_reconnecting",
        "Connection lost. Reconnecting…",
        "Соединение потеряно. Переподключение…",
    ),
    ("inbox_source_account", "Account", "Аккаунт"),
    ("inbox_source_bot", "Bot", "Бот"),
    ("inbox_you", "you", "вы"),
    (
        "inbox_spoiler",
        "Spoiler: click to show",
        "Спойлер: нажмите, чтобы показать",
    ),
    (
        "inbox_chat_removed",
        "This chat is now handled by someone else.",
        "Этим чатом теперь занимается другой оператор.",
    ),
    ("inbox_media_photo", "Photo", "Фото"),
    ("inbox_media_video", "Video", "Видео"),
    ("inbox_media_video_note", "Video message", "Видеосообщение"),
    ("inbox_media_animation", "GIF", "GIF"),
    ("inbox_media_voice", "Voice message", "Голосовое сообщение"),
    ("inbox_media_audio", "Audio", "Аудио"),
    ("inbox_media_document", "File", "Файл"),
    ("inbox_media_sticker", "Sticker", "Стикер"),
    ("inbox_media_location", "Location", "Геопозиция"),
    (
        "inbox_media_live_location",
        "Live location",
        "Трансляция геопозиции",
    ),
    ("inbox_media_venue", "Place", "Место"),
    ("inbox_media_contact", "Contact", "Контакт"),
    ("inbox_media_poll", "Poll", "Опрос"),
    ("inbox_media_dice", "Dice", "Кубик"),
    (
        "inbox_media_other",
        "A message of a kind not shown here",
        "Сообщение, которое здесь не отображается",
    ),
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
