//! The host's handler over a real engine on SQLite (a temporary directory, one terminal,
//! signed on once). The first input byte chooses whether the rest, when it decodes, is
//! signed again with the session's MAK, so inputs reach the transaction handlers past the
//! MAC check. Every answer must decode and carry field 39.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use yuanlu_engine::account_key::AccountKey;
use yuanlu_engine::auth::Principal;
use yuanlu_engine::clock::{Clock, SimulatedClock};
use yuanlu_engine::merchants::CreateMerchant;
use yuanlu_engine::terminals::RegisterTerminal;
use yuanlu_engine::{Db, Engine};
use yuanlu_iso8583::crypto::open_sign_on_keys;
use yuanlu_iso8583::frame::split_frame;
use yuanlu_iso8583::{Frame, Message, mac};
use yuanlu_poshost::Host;

struct World {
    runtime: tokio::runtime::Runtime,
    host: Host,
    mak: [u8; 16],
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let (host, mak) = runtime.block_on(setup());
        World { runtime, host, mak }
    })
}

async fn setup() -> (Host, [u8; 16]) {
    let dir = std::env::temp_dir().join(format!("yuanlu-fuzz-host-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let db = Db::open_sqlite(&dir).await.expect("sqlite");
    db.migrate().await.expect("migrate");
    let start = chrono::DateTime::parse_from_rfc3339("2026-11-20T10:00:00+08:00")
        .expect("instant")
        .with_timezone(&chrono::Utc);
    let clock: Arc<dyn Clock> = Arc::new(SimulatedClock::starting_at(start));
    let engine =
        Engine::new(db, clock).with_account_key(AccountKey::from_bytes(&[7; 32]).expect("key"));
    let input: CreateMerchant =
        serde_json::from_value(serde_json::json!({ "name": "Fuzz shop", "settings": {} }))
            .expect("merchant input");
    let merchant = engine
        .create_merchant(&Principal::Admin, input)
        .await
        .expect("merchant");
    let terminal = engine
        .register_terminal(
            &Principal::Admin,
            RegisterTerminal {
                merchant_id: merchant.merchant.id,
                terminal_id: "10000001".into(),
                merchant_no: "898100012340001".into(),
            },
        )
        .await
        .expect("terminal");
    let host = Host::new(engine);
    let mut sign_on = Message::new("0800").expect("mti");
    sign_on.set(11, "000001").expect("11");
    sign_on.set(41, "10000001").expect("41");
    sign_on.set(42, "898100012340001").expect("42");
    sign_on.set(60, "00000001003").expect("60");
    let frame = Frame::new(sign_on).encode().expect("frame");
    let answer = host.handle(&frame[2..]).await.expect("sign-on answer");
    let answer = Frame::decode_body(&answer[2..]).expect("decodes").message;
    let tmk: [u8; 16] = hex::decode(&terminal.tmk)
        .ok()
        .and_then(|b| b.try_into().ok())
        .expect("tmk");
    let (_, mak) = open_sign_on_keys(&tmk, answer.get(62).expect("62")).expect("keys");
    (host, mak)
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let world = world();
    let mut body = rest.to_vec();
    if flags & 1 == 1
        && let Ok(mut frame) = Frame::decode_body(rest)
        && frame.message.mti() != "0800"
        && mac::sign(&mut frame.message, &world.mak).is_ok()
        && let Ok(signed) = frame.encode()
    {
        body = signed[2..].to_vec();
    }
    if let Some(reply) = world.runtime.block_on(world.host.handle(&body)) {
        let Ok(Some((reply_body, _))) = split_frame(&reply) else {
            panic!("the host's answer is no frame");
        };
        let Ok(answer) = Frame::decode_body(reply_body) else {
            panic!("the host's answer does not decode");
        };
        assert!(answer.message.get_str(39).is_some(), "no response code");
    }
});
