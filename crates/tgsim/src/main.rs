//! `tgsim` standalone: runs the simulator until Ctrl-C.
#![allow(
    clippy::disallowed_methods,
    reason = "tgsim is a separate simulator, not part of the server: it owns its tasks itself"
)]

use std::net::SocketAddr;

use tracing_subscriber::EnvFilter;

fn usage() -> ! {
    eprintln!(
        "usage: tgsim [--demo] [--mtproto ADDR] [--bot-api ADDR] [--control ADDR] [--post-interval SECS]\n\
         defaults: 127.0.0.1:8443 (MTProto), 127.0.0.1:8081 (Bot API), 127.0.0.1:8080 (control)"
    );
    std::process::exit(2)
}

fn addr(v: Option<String>) -> SocketAddr {
    match v.and_then(|s| s.parse().ok()) {
        Some(a) => a,
        None => usage(),
    }
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let mut config = tgsim::Config {
        mtproto_addr: SocketAddr::from(([127, 0, 0, 1], 8443)),
        bot_api_addr: SocketAddr::from(([127, 0, 0, 1], 8081)),
        control_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
        ..Default::default()
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--demo" => config.demo_world = true,
            "--mtproto" => config.mtproto_addr = addr(args.next()),
            "--bot-api" => config.bot_api_addr = addr(args.next()),
            "--control" => config.control_addr = addr(args.next()),
            "--post-interval" => {
                config.demo_post_interval_secs = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| usage())
            }
            _ => usage(),
        }
    }
    let handle = match tgsim::start(config).await {
        Ok(h) => h,
        Err(e) => {
            eprintln!("tgsim: {e}");
            std::process::exit(1);
        }
    };
    eprintln!(
        "tgsim running\n  MTProto:  {}\n  Bot API:  {}\n  control:  {}  (open it in a browser for the simulated phones)",
        handle.mtproto_addr(),
        handle.bot_api_url(),
        handle.control_url()
    );
    let _ = tokio::signal::ctrl_c().await;
    handle.shutdown().await;
}
