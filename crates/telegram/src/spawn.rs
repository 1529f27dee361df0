//! Who runs a client's background tasks (its connection pool's runner and its update relay).
//! This crate does not spawn tasks itself: the caller passes a [`Spawn`] in
//! [`TelegramSettings`](crate::TelegramSettings), and the server's is the services' supervisor,
//! so every task of every client has an owner that shutdown waits for.

use std::future::Future;
use std::pin::Pin;
use tokio::task::JoinHandle;

/// A task handed to a [`Spawn`].
pub type Task = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Starts the background tasks of clients.
pub trait Spawn: Send + Sync + 'static {
    /// Runs `task` (named `name` for the logs) and returns its handle.
    fn spawn(&self, name: &'static str, task: Task) -> JoinHandle<()>;
}
