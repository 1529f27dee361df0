//! The demo world and the lifecycle of the simulator's background tasks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_world_posts_job_ads_until_shutdown() {
    let sim = tgsim::start(tgsim::Config {
        demo_world: true,
        demo_post_interval_secs: 1,
        ..Default::default()
    })
    .await
    .unwrap();
    let alexey = sim.user_by_phone("+79001234567").expect("demo user");
    assert_eq!(alexey.first_name, "Алексей");
    let john = sim.user_by_phone("+15551234567").expect("demo user");
    assert_eq!(john.first_name, "John");
    assert!(sim.user_by_phone("+79007654321").unwrap().has_password);
    assert!(sim.users().iter().any(|u| u.bot));
    assert!(matches!(
        sim.resolve_username("jobs_it_ru"),
        Some(tgsim::Peer::Channel(_))
    ));
    assert!(matches!(
        sim.resolve_username("remote_jobs_en"),
        Some(tgsim::Peer::Channel(_))
    ));
    // The Rust and Go channel is public, posts, and nobody in the demo has joined it.
    let Some(tgsim::Peer::Channel(rust_go)) = sim.resolve_username("rust_go_jobs") else {
        panic!("no @rust_go_jobs")
    };
    assert!(sim.channel(rust_go).unwrap().members.is_empty());
    assert!(
        sim.channel_posts(rust_go)
            .unwrap()
            .iter()
            .any(|m| m.text.contains("Rust") || m.text.contains("Go"))
    );

    let posts = |u: tgsim::UserId| {
        sim.received_messages(u)
            .unwrap()
            .iter()
            .filter(|m| matches!(m.peer, tgsim::Peer::Channel(_)))
            .count()
    };
    let before = posts(john.id);
    let mut during = before;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        during = posts(john.id);
        if during >= before + 2 {
            break;
        }
    }
    assert!(during >= before + 2, "{before} -> {during}");
    assert!(
        sim.received_messages(alexey.id)
            .unwrap()
            .iter()
            .any(|m| m.text.contains("Вакансия")
                || m.text.contains("вакансия")
                || m.text.contains("Ищем"))
    );

    tokio::time::timeout(Duration::from_secs(6), sim.shutdown())
        .await
        .expect("shutdown finishes");
    let after = posts(john.id);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        posts(john.id),
        after,
        "the poster stopped with the simulator"
    );
    assert!(
        tokio::net::TcpStream::connect(sim.mtproto_addr())
            .await
            .is_err()
    );
}
