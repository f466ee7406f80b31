//! One terminal connection: whole frames in, under a length limit and timeouts.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use yuanlu_iso8583::frame::split_frame;

/// Why a connection stops reading.
#[derive(Debug)]
pub enum ReadEnd {
    /// The terminal closed the connection between frames.
    Closed,
    /// Nothing arrived within the idle timeout, or a frame stalled past the read timeout.
    TimedOut,
    /// The length prefix announced more than the limit, or the stream ended mid-frame.
    Malformed,
    Io(std::io::Error),
}

pub struct Connection {
    stream: TcpStream,
    buffer: Vec<u8>,
    idle_timeout: Duration,
    read_timeout: Duration,
}

impl Connection {
    pub fn new(stream: TcpStream, idle_timeout: Duration, read_timeout: Duration) -> Self {
        Self {
            stream,
            buffer: Vec::with_capacity(1024),
            idle_timeout,
            read_timeout,
        }
    }

    /// The next frame's body (after its length prefix).
    pub async fn read_frame(&mut self) -> Result<Vec<u8>, ReadEnd> {
        let mut chunk = [0u8; 2048];
        loop {
            match split_frame(&self.buffer) {
                Ok(Some((body, used))) => {
                    let body = body.to_vec();
                    self.buffer.drain(..used);
                    return Ok(body);
                }
                Ok(None) => {}
                Err(_) => return Err(ReadEnd::Malformed),
            }
            let limit = if self.buffer.is_empty() {
                self.idle_timeout
            } else {
                self.read_timeout
            };
            let read = tokio::time::timeout(limit, self.stream.read(&mut chunk)).await;
            match read {
                Err(_) => return Err(ReadEnd::TimedOut),
                Ok(Err(e)) => return Err(ReadEnd::Io(e)),
                Ok(Ok(0)) if self.buffer.is_empty() => return Err(ReadEnd::Closed),
                Ok(Ok(0)) => return Err(ReadEnd::Malformed),
                Ok(Ok(n)) => self.buffer.extend_from_slice(&chunk[..n]),
            }
        }
    }

    pub async fn write_frame(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await
    }
}
