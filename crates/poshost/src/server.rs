//! The listener: accepts terminals up to a connection limit, serves each on its own task,
//! and on shutdown stops accepting, lets every connection finish the frame it is on, and
//! waits for them (bounded).

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::connection::{Connection, ReadEnd};
use crate::handler::Host;

#[derive(Debug, Clone, Copy)]
pub struct HostConfig {
    /// Connections served at once; the next waits to be accepted.
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
        let permit = tokio::select! {
            permit = limit.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = shutdown.changed() => break,
        };
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
        let host = host.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let connection = Connection::new(stream, config.idle_timeout, config.read_timeout);
            serve_connection(connection, host, stop).await;
            tracing::debug!(%peer, "pos host: connection closed");
            drop(permit);
        });
    }
    let all = u32::try_from(config.connections_max).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(config.drain_timeout, limit.acquire_many(all)).await;
}

async fn serve_connection(mut connection: Connection, host: Host, mut stop: watch::Receiver<bool>) {
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
