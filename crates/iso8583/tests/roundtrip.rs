//! Any message the codec accepts encodes and decodes back to itself.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use yuanlu_iso8583::spec::{Kind, Length, field_spec};
use yuanlu_iso8583::{Frame, Message};

fn value_for(field: u8) -> BoxedStrategy<Vec<u8>> {
    let Some(spec) = field_spec(field) else {
        return Just(Vec::new()).boxed();
    };
    let (min, max) = match spec.length {
        Length::Fixed(n) => (n, n),
        Length::Ll(m) | Length::Lll(m) => (0, m),
    };
    let unit: BoxedStrategy<u8> = match spec.kind {
        Kind::Numeric(_) => (b'0'..=b'9').boxed(),
        Kind::Track => prop_oneof![b'0'..=b'9', Just(b'=')].boxed(),
        Kind::Ascii => (0x20u8..0x7F).boxed(),
        Kind::Binary => any::<u8>().boxed(),
    };
    proptest::collection::vec(unit, min..=max).boxed()
}

fn message() -> impl Strategy<Value = Message> {
    let fields: Vec<u8> = (2..=64).filter(|&f| field_spec(f).is_some()).collect();
    let mti = proptest::string::string_regex("[0-9]{4}").unwrap();
    let picks = proptest::sample::subsequence(fields, 0..=20);
    (mti, picks)
        .prop_flat_map(|(mti, picks)| {
            let values: Vec<_> = picks.iter().map(|&f| value_for(f)).collect();
            (Just(mti), Just(picks), values)
        })
        .prop_map(|(mti, picks, values)| {
            let mut m = Message::new(&mti).unwrap();
            for (f, v) in picks.into_iter().zip(values) {
                m.set(f, v).unwrap();
            }
            m
        })
}

proptest! {
    #[test]
    fn messages_round_trip(m in message()) {
        let bytes = m.encode().unwrap();
        prop_assert_eq!(Message::decode(&bytes).unwrap(), m);
    }

    #[test]
    fn frames_round_trip(m in message()) {
        let frame = Frame::new(m);
        if let Ok(bytes) = frame.encode() {
            let (body, used) = yuanlu_iso8583::frame::split_frame(&bytes).unwrap().unwrap();
            prop_assert_eq!(used, bytes.len());
            prop_assert_eq!(Frame::decode_body(body).unwrap(), frame);
        }
    }

    #[test]
    fn any_bytes_decode_or_fail_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = Message::decode(&bytes);
        let _ = Frame::decode_body(&bytes);
    }
}
