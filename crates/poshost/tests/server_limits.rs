//! The server's edges: an announced frame over the limit closes the connection without
//! reading it, a frame that arrives in pieces is read whole, and shutdown ends the host.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use yuanlu_iso8583::Frame;
use yuanlu_iso8583::frame::FRAME_BYTES_MAX;

#[tokio::test]
async fn an_oversized_frame_closes_and_a_split_frame_is_read_whole() {
    let setup = common::sqlite().await;

    let mut stream = TcpStream::connect(&setup.address).await.unwrap();
    let too_long = u16::try_from(FRAME_BYTES_MAX + 1).unwrap().to_be_bytes();
    stream.write_all(&too_long).await.unwrap();
    let mut buf = [0u8; 16];
    let read = stream.read(&mut buf).await;
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "closed without an answer: {read:?}"
    );

    let mut t = setup.terminal(1).await;
    let bytes = Frame::new(t.sign_on_request().unwrap()).encode().unwrap();
    let mut stream = TcpStream::connect(&setup.address).await.unwrap();
    for piece in bytes.chunks(5) {
        stream.write_all(piece).await.unwrap();
        stream.flush().await.unwrap();
        tokio::task::yield_now().await;
    }
    let mut prefix = [0u8; 2];
    stream.read_exact(&mut prefix).await.unwrap();
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
    stream.read_exact(&mut body).await.unwrap();
    let answer = Frame::decode_body(&body).unwrap().message;
    assert_eq!((answer.mti(), answer.get_str(39)), ("0810", Some("00")));

    // Shutdown with a connection still open: the host ends (finish awaits it).
    setup.finish().await;
}
