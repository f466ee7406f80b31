//! The listener: serves terminals up to a connection limit (one more is closed at once),
//! each on its own task,
//! and on shutdown stops accepting, lets every connection finish the frame it is on, and
//! waits for them (bounded).

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use crate::connection::{Connection, ReadEnd};
use crate::handler::Host;

#[derive(Debug, Clone, Copy)]
pub struct HostConfig {
    /// Connections served at once; one more is accepted and closed at once.
    pub connections_max: usize,
    /// How long a connection may sit between frames.
    pub idle_timeout: Duration,
    /// How long a frame, once begun, may take to arrive whole.
    pub read_timeout: Duration,
    /// How long shutdown waits for connections to finish.
    pub drain_timeout: Duration,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            connections_max: 256,
            idle_timeout: Duration::from_secs(120),
            read_timeout: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(10),
        }
    }
}

/// Serves terminals on `listener` until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    host: Host,
    config: HostConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    let limit = Arc::new(Semaphore::new(config.connections_max));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => break,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                tracing::warn!(%error, "pos host: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Over the limit: closed at once, unread, so the terminal dials again (or another
        // host) instead of waiting in the backlog for a slot that may not come.
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            tracing::warn!(%peer, limit = config.connections_max, "pos host: connection limit reached; closing");
            drop(stream);
            continue;
        };
        let host = host.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let connection = Connection::new(stream, config.idle_timeout, config.read_timeout);
            serve_connection(connection, host, stop, permit).await;
            tracing::debug!(%peer, "pos host: connection closed");
        });
    }
    let all = u32::try_from(config.connections_max).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(config.drain_timeout, limit.acquire_many(all)).await;
}

/// Serves one connection; its slot is given back before the socket closes, so a terminal
/// that sees the close may connect again at once.
async fn serve_connection(
    connection: Connection,
    host: Host,
    stop: watch::Receiver<bool>,
    permit: OwnedSemaphorePermit,
) {
    let mut connection = connection;
    serve_frames(&mut connection, host, stop).await;
    drop(permit);
    drop(connection);
}

async fn serve_frames(connection: &mut Connection, host: Host, mut stop: watch::Receiver<bool>) {
    loop {
        let body = tokio::select! {
            body = connection.read_frame() => body,
            _ = stop.changed() => return,
        };
        let body = match body {
            Ok(body) => body,
            Err(ReadEnd::Closed | ReadEnd::TimedOut) => return,
            Err(end) => {
                tracing::info!(?end, "pos host: closing connection");
                return;
            }
        };
        let Some(answer) = host.handle(&body).await else {
            return;
        };
        if connection.write_frame(&answer).await.is_err() {
            return;
        }
    }
}
