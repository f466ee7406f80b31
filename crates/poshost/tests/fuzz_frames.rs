//! Fuzzing on the stable toolchain: a seed corpus of real frames (sign-on, sale, void,
//! refund, reversal, settlement, pre-auth and its void, completion and its void, batch
//! upload), mutated at random (bit flips, byte sets, inserts,
//! deletes, truncation, splices of two seeds, length-prefix lies), fed to the frame decoder
//! and to the host's handler over a real engine on SQLite. Half of the mutants that still
//! decode are signed again with the session's MAK, so they get past the MAC check into the
//! transaction handlers with arbitrary field values.
//!
//! Bounded by time: `YUANLU_POS_FUZZ_SECONDS` (default 8 for the decoder and 16 for the
//! handler). Executions per second go to stderr and to
//! `$CARGO_TARGET_TMPDIR/fault_figures_pos_fuzz.txt`, which `.ci/run` prints.
//! `YUANLU_POS_FUZZ_SEED` replays a run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use yuanlu_iso8583::crypto::open_sign_on_keys;
use yuanlu_iso8583::frame::split_frame;
use yuanlu_iso8583::{Frame, Message, mac};
use yuanlu_poshost::Host;
use yuanlu_poshost::client::{Original, TerminalClient};
use yuanlu_poshost::upload::UploadLine;

/// xorshift64*: reproducible from its seed, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn budget(default_secs: u64) -> Duration {
    let secs = std::env::var("YUANLU_POS_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default_secs);
    Duration::from_secs(secs)
}

fn seed() -> u64 {
    std::env::var("YUANLU_POS_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x005E_ED0F_8583)
        | 1
}

fn mutate(rng: &mut Rng, corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut bytes = corpus[rng.below(corpus.len())].clone();
    for _ in 0..=rng.below(4) {
        let len = bytes.len();
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len);
                bytes[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                bytes[i] = rng.next() as u8;
            }
            2 => {
                let i = rng.below(len + 1);
                bytes.insert(i, rng.next() as u8);
            }
            3 if len > 0 => {
                bytes.remove(rng.below(len));
            }
            4 => bytes.truncate(rng.below(len + 1)),
            5 => {
                let other = &corpus[rng.below(corpus.len())];
                let cut = rng.below(len + 1);
                let from = rng.below(other.len() + 1);
                bytes.truncate(cut);
                bytes.extend_from_slice(&other[from..]);
            }
            6 if len > 2 => {
                // Make the length prefix agree with the body (so the decoder reads on).
                let body = u16::try_from(len - 2).unwrap_or(u16::MAX);
                bytes[..2].copy_from_slice(&body.to_be_bytes());
            }
            _ if len > 13 => {
                // An interesting value in the bitmap or a length byte.
                let i = 13 + rng.below(len - 13);
                bytes[i] = [0x00, 0xFF, 0x99, 0x80, 0x01, 0x19, 0x37][rng.below(7)];
            }
            _ => {}
        }
    }
    bytes
}

/// Real frames of a terminal's session, signed with `mak` where they carry a MAC.
fn corpus(mak: Option<[u8; 16]>, t: &mut TerminalClient) -> Vec<Vec<u8>> {
    let pan = common::PAN;
    let sale = t.sale(pan, 1234).unwrap();
    let mut answer = Message::new("0210").unwrap();
    answer.set(37, "123456789012").unwrap();
    answer.set(11, "000002").unwrap();
    answer.set(13, "1120").unwrap();
    let original = Original::of(&answer, &t.batch_no);
    let mut messages = vec![
        t.sign_on_request().unwrap(),
        sale.clone(),
        t.void(pan, 1234, &original).unwrap(),
        t.refund(pan, 200, &original).unwrap(),
        t.reversal(&sale).unwrap(),
        t.settlement((1234, 1), (200, 1)).unwrap(),
        t.preauth(pan, 5000).unwrap(),
        t.preauth_void(pan, 5000, &original).unwrap(),
        t.completion(pan, 4800, &original).unwrap(),
        t.completion_void(pan, 4800, &original).unwrap(),
        t.batch_upload(&[UploadLine {
            trace_no: "000002".into(),
            pan: pan.into(),
            amount_fen: 1234,
        }])
        .unwrap(),
    ];
    if let Some(mak) = mak {
        for m in messages.iter_mut().skip(1) {
            mac::sign(m, &mak).unwrap();
        }
    }
    let frames: Vec<Vec<u8>> = messages
        .into_iter()
        .map(|m| Frame::new(m).encode().unwrap())
        .collect();
    if let Ok(dir) = std::env::var("YUANLU_POS_FUZZ_SEED_DIR") {
        write_seeds(std::path::Path::new(&dir), &frames);
    }
    frames
}

/// The seeds of the coverage-guided targets (`fuzz/seeds/{frame,host}`): a frame's body;
/// for the host a flag byte first (1: sign again with the session's MAK).
fn write_seeds(dir: &std::path::Path, frames: &[Vec<u8>]) {
    for target in ["frame", "host"] {
        std::fs::create_dir_all(dir.join(target)).unwrap();
    }
    for (i, frame) in frames.iter().enumerate() {
        let body = &frame[2..];
        std::fs::write(dir.join("frame").join(format!("seed-{i:02}")), body).unwrap();
        let mut host = vec![1u8];
        host.extend_from_slice(body);
        std::fs::write(dir.join("host").join(format!("seed-{i:02}")), host).unwrap();
    }
}

fn record(line: &str) {
    eprintln!("{line}");
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("fault_figures_pos_fuzz.txt");
    let mut text = std::fs::read_to_string(&path).unwrap_or_default();
    text.push_str(line);
    text.push('\n');
    let _ = std::fs::write(path, text);
}

#[tokio::test]
async fn mutated_frames_never_panic_the_decoder() {
    let setup = common::sqlite().await;
    let mut t = setup.terminal(1).await;
    let corpus = corpus(Some([0x11; 16]), &mut t);
    for frame in &corpus {
        let (body, _) = split_frame(frame).unwrap().unwrap();
        Frame::decode_body(body).unwrap();
    }
    let mut rng = Rng(seed());
    let (limit, started) = (budget(8), Instant::now());
    let (mut execs, mut decoded) = (0u64, 0u64);
    while started.elapsed() < limit {
        for _ in 0..256 {
            let bytes = mutate(&mut rng, &corpus);
            if let Ok(Some((body, _))) = split_frame(&bytes)
                && let Ok(frame) = Frame::decode_body(body)
            {
                decoded += 1;
                // What decodes encodes again and decodes to the same frame.
                let again = frame.encode().unwrap();
                let (body, _) = split_frame(&again).unwrap().unwrap();
                assert_eq!(Frame::decode_body(body).unwrap(), frame);
            }
            execs += 1;
        }
    }
    let rate = execs as f64 / started.elapsed().as_secs_f64();
    record(&format!(
        "pos fuzz, decoder: {execs} executions, {decoded} decoded, {rate:.0} exec/s"
    ));
    assert!(execs > 1000 && decoded > 0);
    setup.finish().await;
}

#[tokio::test]
async fn mutated_frames_never_panic_the_host() {
    let setup = common::sqlite().await;
    let host = Host::new(setup.engine.clone());
    let mut t = setup.terminal(1).await;
    let sign_on = Frame::new(t.sign_on_request().unwrap()).encode().unwrap();
    let answer = host.handle(&sign_on[2..]).await.unwrap();
    let answer = Frame::decode_body(&answer[2..]).unwrap().message;
    let tmk: [u8; 16] = hex::decode(&setup.tmk).unwrap().try_into().unwrap();
    let (_, mak) = open_sign_on_keys(&tmk, answer.get(62).unwrap()).unwrap();
    let corpus = corpus(Some(mak), &mut t);
    let mut rng = Rng(seed());
    let (limit, started) = (budget(16), Instant::now());
    let (mut execs, mut answered, mut past_mac) = (0u64, 0u64, 0u64);
    while started.elapsed() < limit {
        let mut bytes = mutate(&mut rng, &corpus);
        if rng.below(2) == 0
            && let Ok(Some((body, _))) = split_frame(&bytes)
            && let Ok(mut frame) = Frame::decode_body(body)
            && frame.message.mti() != "0800"
            && mac::sign(&mut frame.message, &mak).is_ok()
            && let Ok(signed) = frame.encode()
        {
            bytes = signed;
            past_mac += 1;
        }
        let body = match split_frame(&bytes) {
            Ok(Some((body, _))) => body.to_vec(),
            _ => bytes.get(2..).unwrap_or_default().to_vec(),
        };
        if let Some(reply) = host.handle(&body).await {
            answered += 1;
            let (reply_body, _) = split_frame(&reply).unwrap().unwrap();
            let reply = Frame::decode_body(reply_body).unwrap_or_else(|e| {
                panic!(
                    "the host's answer does not decode ({e}): {} to {}",
                    hex::encode(&body),
                    hex::encode(reply_body)
                )
            });
            assert!(
                reply.message.get_str(39).is_some(),
                "every answer has a response code"
            );
        }
        execs += 1;
    }
    let rate = execs as f64 / started.elapsed().as_secs_f64();
    record(&format!(
        "pos fuzz, host handler (SQLite): {execs} executions ({past_mac} re-signed past the MAC), {answered} answered, {rate:.0} exec/s"
    ));
    assert!(execs > 100 && answered > 0 && past_mac > 0);
    setup.finish().await;
}
