//! The codec and the crypto against bytes built by hand and values computed independently
//! (OpenSSL's `des-ecb` and `des-ede` with the legacy provider, and a separate script for
//! the MAC's XOR and hex steps).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use yuanlu_iso8583::crypto::{
    Key16, cup_ecb_mac, des_encrypt, mak_check_value, open_sign_on_keys, pik_check_value,
    sign_on_keys_field, tdes_ecb_encrypt,
};
use yuanlu_iso8583::frame::{DEFAULT_HEADER, DEFAULT_TPDU, split_frame};
use yuanlu_iso8583::{CodecError, Frame, Message, mac};

fn unhex(text: &str) -> Vec<u8> {
    hex::decode(text.replace(' ', "")).unwrap()
}

fn key16(text: &str) -> Key16 {
    unhex(text).try_into().unwrap()
}

/// A sale of 1.23 yuan, built field by field by hand (see the comments), without field 64.
const SALE_BODY: &str = "0200 3020048020C08011 \
    000000 000000000123 000001 0210 00 \
    21 6222021234567890D25120 \
    3130303030303031 383938313030303132333430303031 313536 \
    0011 220000010000";

fn sale() -> Message {
    let mut m = Message::new("0200").unwrap();
    m.set(3, "000000").unwrap();
    m.set(4, "000000000123").unwrap();
    m.set(11, "000001").unwrap();
    m.set(22, "021").unwrap();
    m.set(25, "00").unwrap();
    m.set(35, "6222021234567890=2512").unwrap();
    m.set(41, "10000001").unwrap();
    m.set(42, "898100012340001").unwrap();
    m.set(49, "156").unwrap();
    m.set(60, "22000001000").unwrap();
    m
}

#[test]
fn des_known_answer_fips_vector() {
    let key = [0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF];
    assert_eq!(
        des_encrypt(&key, *b"Now is t").to_vec(),
        unhex("3FA40E8A984D4815")
    );
    assert_eq!(
        des_encrypt(&key, [0; 8]).to_vec(),
        unhex("D5D44FF720683D0D")
    );
}

#[test]
fn check_values_and_key_encryption_match_openssl() {
    let key = key16("0123456789ABCDEF FEDCBA9876543210");
    assert_eq!(pik_check_value(&key).to_vec(), unhex("08D7B4FB"));
    assert_eq!(mak_check_value(&key).to_vec(), unhex("D5D44FF7"));
    let tmk = key16("1111111111111111 2222222222222222");
    assert_eq!(
        tdes_ecb_encrypt(&tmk, &key),
        unhex("CB4AB541CD5AD4FC 256A882726936A5A")
    );
}

#[test]
fn sign_on_field_62_is_40_bytes_and_opens_with_the_tmk_only() {
    let tmk = key16("1111111111111111 2222222222222222");
    let pik = key16("0123456789ABCDEF FEDCBA9876543210");
    let mak = key16("89ABCDEF01234567 0123456789ABCDEF");
    let field = sign_on_keys_field(&tmk, &pik, &mak);
    assert_eq!(field.len(), 40);
    assert_eq!(field[..16], unhex("CB4AB541CD5AD4FC 256A882726936A5A")[..]);
    assert_eq!(field[16..20], unhex("08D7B4FB")[..]);
    assert_eq!(open_sign_on_keys(&tmk, &field), Some((pik, mak)));
    let other = key16("3333333333333333 4444444444444444");
    assert_eq!(open_sign_on_keys(&other, &field), None);
}

#[test]
fn sale_encodes_to_the_hand_built_bytes() {
    let mut expected = unhex(SALE_BODY);
    let mut m = sale();
    m.set(64, [0u8; 8].to_vec()).unwrap();
    expected.extend([0u8; 8]);
    assert_eq!(m.encode().unwrap(), expected);
    assert_eq!(Message::decode(&expected).unwrap(), m);
}

#[test]
fn mac_of_the_sale_matches_the_independent_computation() {
    let mak = key16("0123456789ABCDEF 0000000000000000");
    assert_eq!(&cup_ecb_mac(&mak, &unhex(SALE_BODY)), b"B6FE064F");
    let mut m = sale();
    mac::sign(&mut m, &mak).unwrap();
    assert_eq!(m.get(64), Some(&b"B6FE064F"[..]));
    assert!(mac::verify(&m, &mak));
    m.set(4, "000000000124").unwrap();
    assert!(
        !mac::verify(&m, &mak),
        "a changed amount must break the MAC"
    );
}

#[test]
fn frame_has_length_tpdu_and_header() {
    let frame = Frame::new(sale());
    let bytes = frame.encode().unwrap();
    let body_len = bytes.len() - 2;
    assert_eq!(u16::from_be_bytes([bytes[0], bytes[1]]) as usize, body_len);
    assert_eq!(bytes[2..7], DEFAULT_TPDU);
    assert_eq!(bytes[7..13], DEFAULT_HEADER);
    assert_eq!(&bytes[13..15], &[0x02, 0x00]);
    let (body, used) = split_frame(&bytes).unwrap().unwrap();
    assert_eq!(used, bytes.len());
    assert_eq!(Frame::decode_body(body).unwrap(), frame);
    assert_eq!(split_frame(&bytes[..bytes.len() - 1]).unwrap(), None);
    let answer = frame.answer(Message::new("0210").unwrap());
    assert_eq!(answer.tpdu, [0x60, 0x00, 0x00, 0x00, 0x03]);
}

#[test]
fn malformed_bodies_are_errors_not_panics() {
    let mut body = unhex(SALE_BODY);
    body.extend(*b"B6FE064F");
    assert!(Message::decode(&body).is_ok());
    assert!(matches!(
        Message::decode(&body[..body.len() - 1]),
        Err(CodecError::Truncated(_))
    ));
    let mut extra = body.clone();
    extra.push(0);
    assert_eq!(Message::decode(&extra), Err(CodecError::TrailingBytes(1)));
    let mut secondary = body.clone();
    secondary[2] |= 0x80;
    assert!(Message::decode(&secondary).is_err());
    let mut not_bcd = body.clone();
    not_bcd[10] = 0xAA; // inside field 3
    assert!(Message::decode(&not_bcd).is_err());
    assert!(
        split_frame(&[0xFF, 0xFF]).is_err(),
        "announced length over the limit"
    );
    assert!(Message::new("02a0").is_err());
}
