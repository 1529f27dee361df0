//! The demo world: a few users with Russian and English names, a bot, a group and three public
//! channels that post realistic job ads at intervals (a background task owned by the handle).
//! Nobody in the demo is a member of `@rust_go_jobs`: a lead monitor resolves and joins it, or
//! reads it with `messages.getHistory`.

use std::time::Duration;

use crate::{Error, Handle, NewBot, NewChannel, NewGroup, NewUser, OutgoingMessage, Peer};

const ADS_RU: &[&str] = &[
    "🔥 Вакансия: Senior Rust-разработчик\nКомпания: ФинТех Лаб (Москва, удалённо)\nЗарплата: 350 000 – 450 000 ₽\nСтек: Rust, tokio, PostgreSQL, Kafka\nОпыт от 4 лет. Отклик: @fintech_hr",
    "Ищем Python-разработчика (middle)\nОфис в Санкт-Петербурге или гибрид, ДМС, обучение за счёт компании.\nДо 250 000 ₽ на руки.\nРезюме: jobs@example.ru",
    "Вакансия: DevOps-инженер\nKubernetes, Terraform, CI/CD, мониторинг (Prometheus, Grafana).\nПолная занятость, удалённо по РФ. 280 000 ₽.\nПишите @devops_team_lead",
    "Требуется менеджер по продажам B2B\nЕкатеринбург, оклад 80 000 ₽ + бонусы.\nОпыт продаж SaaS от 2 лет. Звоните: +7 900 000-00-00",
    "Frontend-разработчик (React, TypeScript)\nСтартап в сфере логистики, удалёнка, гибкий график.\nВилка 200 000 – 300 000 ₽. Тестовое задание — 4 часа.",
];

const ADS_EN: &[&str] = &[
    "💼 Hiring: Backend Engineer (Rust)\nRemote (EU time zones) · €70k–€95k\nStack: Rust, axum, PostgreSQL, Redis\nApply: careers@example.com",
    "Senior Product Designer — Berlin or remote\nFigma, design systems, user research.\n$90k–$120k + equity. DM @design_hiring",
    "Data Engineer (Spark, Airflow, dbt)\nFull-time, remote US · $130k–$160k\n3+ years experience, strong SQL. Apply via our site.",
    "Part-time Community Manager\nRemote, 20 h/week, $25/h. English C1+, experience with Telegram and Discord communities.",
    "QA Automation Engineer (Playwright, TypeScript)\nLondon hybrid · £55k–£70k\nVisa sponsorship available. Reply with your CV.",
];

/// The Rust and Go channel: vacancies for Rust and Go developers in Russian and English —
/// most for any level, some senior-only — and now and then one for another stack, so a lead
/// task such as `(rust | go | golang) -senior` has posts to take and posts to leave.
const ADS_RUST_GO: &[&str] = &[
    "Вакансия: Go-разработчик (middle+)\nМаркетплейс, удалённо по РФ. 250 000 – 320 000 ₽.\nGo, gRPC, PostgreSQL, Kafka. Отклик: @market_hr",
    "Hiring: Rust engineer (embedded/networking)\nRemote, EU · €80k–€100k\nno_std, tokio, Linux networking. Apply: jobs@example.org",
    "Senior Rust-разработчик в криптобиржу\nУдалённо, от 400 000 ₽. Опыт от 5 лет: Rust, tokio, Solana.\nПишите @crypto_hr",
    "Ищем Rust-разработчика в команду платёжного шлюза\nМосква или удалёнка, 300 000 ₽+, опыт с async Rust от 2 лет.\nПишите @payments_cto",
    "Senior Go developer — fintech, Amsterdam hybrid\n€90k–€110k, Go, Kubernetes, event sourcing. DM @fintech_recruiter",
    "Java developer (Spring Boot) — Warsaw hybrid\nPLN 20k–28k, Kafka, PostgreSQL. Apply: jobs@example.pl",
    "Ищем Golang-разработчика в финтех\nУдалёнка, 280 000 – 350 000 ₽. Go, PostgreSQL, Kubernetes.\nОтклик: @fintech_go",
    "Python-разработчик (Django)\nОфис в Казани, 180 000 ₽, ДМС. Резюме: hr@example.ru",
    "Стажёр Go/Rust (junior)\nОбучение, ментор, гибкий график. 80 000 ₽. Тестовое задание на GitHub. Резюме: intern@example.ru",
    "Remote Go engineer for a logistics startup\n$120k–$150k, Go, gRPC, ClickHouse. Apply: talent@example.com",
];

/// The title of Алексей's own channel in the demo world (he created it).
pub const ALEXEY_CHANNEL_TITLE: &str = "Алексей о Rust / Alexey on Rust";

/// The channels the poster publishes to and the ads each one cycles through.
const CHANNELS: [(&str, &[&str]); 3] = [
    ("jobs_it_ru", ADS_RU),
    ("remote_jobs_en", ADS_EN),
    ("rust_go_jobs", ADS_RUST_GO),
];

/// The ads the demo poster cycles through in the demo channel `@username` (empty for another
/// name): what a lead task on a demo channel will see.
pub fn channel_ads(username: &str) -> &'static [&'static str] {
    CHANNELS
        .iter()
        .find(|(name, _)| *name == username)
        .map_or(&[], |(_, ads)| *ads)
}

/// Creates the demo accounts and chats.
pub(crate) fn populate(h: &Handle) -> Result<(), Error> {
    let alexey = h.create_user(NewUser {
        phone: "+79001234567".into(),
        first_name: "Алексей".into(),
        last_name: Some("Смирнов".into()),
        username: Some("alexey_smirnov".into()),
        ..Default::default()
    })?;
    let maria = h.create_user(NewUser {
        phone: "+79007654321".into(),
        first_name: "Мария".into(),
        last_name: Some("Иванова".into()),
        username: Some("maria_ivanova".into()),
        password: Some("demo".into()),
        password_hint: Some("four letters, starts with d".into()),
    })?;
    let john = h.create_user(NewUser {
        phone: "+15551234567".into(),
        first_name: "John".into(),
        last_name: Some("Smith".into()),
        username: Some("johnsmith".into()),
        ..Default::default()
    })?;
    let emily = h.create_user(NewUser {
        phone: "+447700900123".into(),
        first_name: "Emily".into(),
        last_name: Some("Clark".into()),
        ..Default::default()
    })?;
    let bot = h.create_bot(NewBot {
        username: "switchboard_demo_bot".into(),
        first_name: "Switchboard Demo".into(),
        token: Some("5000000001:AAE-demo-switchboard-token".into()),
    })?;
    h.create_group(NewGroup {
        title: "Команда / Team".into(),
        creator: alexey.id,
        members: vec![maria.id, john.id, emily.id, bot.id],
        supergroup: false,
        username: None,
    })?;
    let ru = h.create_channel(NewChannel {
        title: "Вакансии IT".into(),
        username: Some("jobs_it_ru".into()),
        creator: None,
        members: vec![alexey.id, maria.id],
        about: "Свежие вакансии в IT каждый день".into(),
        ..Default::default()
    })?;
    let en = h.create_channel(NewChannel {
        title: "Remote Jobs".into(),
        username: Some("remote_jobs_en".into()),
        creator: None,
        members: vec![john.id, emily.id, alexey.id],
        about: "Remote-friendly job openings".into(),
        ..Default::default()
    })?;
    let rust_go = h.create_channel(NewChannel {
        title: "Rust & Go вакансии".into(),
        username: Some("rust_go_jobs".into()),
        about: "Вакансии для Rust- и Go-разработчиков / Rust and Go openings".into(),
        ..Default::default()
    })?;
    // Алексей's own channel: where the demo's scheduled posts go (he created it, so he may
    // post there).
    h.create_channel(NewChannel {
        title: ALEXEY_CHANNEL_TITLE.into(),
        username: Some("alexey_smirnov_news".into()),
        creator: Some(alexey.id),
        members: vec![maria.id, john.id],
        about: "Заметки Алексея о Rust и Go / Alexey's notes on Rust and Go".into(),
        ..Default::default()
    })?;
    for (info, ads) in [(ru, ADS_RU), (en, ADS_EN), (rust_go, ADS_RUST_GO)] {
        if let Peer::Channel(c) = info.peer {
            h.post_to_channel(c, OutgoingMessage::text(ads[0]))?;
        }
    }
    h.send_message(
        john.id,
        Peer::User(alexey.id),
        OutgoingMessage::text("Hi Alexey! Did you see the new Rust opening?"),
    )?;
    h.send_message(
        maria.id,
        Peer::User(alexey.id),
        OutgoingMessage::text("Привет! Созвонимся сегодня в 15:00?"),
    )?;
    Ok(())
}

/// Posts a job ad to each demo channel every `interval` until the simulator shuts down.
pub(crate) async fn post_job_ads(h: Handle, interval: Duration) {
    let cancel = h.shared.cancel.clone();
    let mut n = 1usize;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        for (name, ads) in CHANNELS {
            if let Some(Peer::Channel(c)) = h.resolve_username(name) {
                let text = ads[n % ads.len()];
                if let Err(e) = h.post_to_channel(c, OutgoingMessage::text(text)) {
                    tracing::warn!(error = %e, channel = name, "demo post failed");
                }
            }
        }
        n += 1;
    }
}
