//! Keys and the MAC, on RustCrypto's DES: the terminal master key (TMK, double-length 3DES)
//! encrypts the working keys (PIK, MAK) sent at sign-on; the MAC is "CUP ECB" under single
//! DES with the MAK's first 8 bytes.

use cipher::{BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use des::{Des, TdesEde2};

/// A double-length (16-byte) DES key: the TMK, the PIK and the MAK.
pub type Key16 = [u8; 16];

fn des(key: &[u8; 8]) -> Des {
    Des::new(key.into())
}

fn tdes(key: &Key16) -> TdesEde2 {
    TdesEde2::new(key.into())
}

/// Single DES, one block.
pub fn des_encrypt(key: &[u8; 8], block: [u8; 8]) -> [u8; 8] {
    let mut b = block.into();
    des(key).encrypt_block(&mut b);
    b.into()
}

/// 3DES (EDE, two keys) ECB over whole blocks; `data.len()` must be a multiple of 8.
pub fn tdes_ecb_encrypt(key: &Key16, data: &[u8]) -> Vec<u8> {
    let cipher = tdes(key);
    data.chunks(8)
        .flat_map(|chunk| {
            let mut block = [0u8; 8];
            block[..chunk.len()].copy_from_slice(chunk);
            let mut b = block.into();
            cipher.encrypt_block(&mut b);
            let out: [u8; 8] = b.into();
            out
        })
        .collect()
}

/// 3DES ECB decryption of whole blocks.
pub fn tdes_ecb_decrypt(key: &Key16, data: &[u8]) -> Vec<u8> {
    let cipher = tdes(key);
    data.chunks(8)
        .flat_map(|chunk| {
            let mut block = [0u8; 8];
            block[..chunk.len()].copy_from_slice(chunk);
            let mut b = block.into();
            cipher.decrypt_block(&mut b);
            let out: [u8; 8] = b.into();
            out
        })
        .collect()
}

fn first8(key: &Key16) -> [u8; 8] {
    let mut k = [0u8; 8];
    k.copy_from_slice(&key[..8]);
    k
}

/// The PIK's check value: 3DES of eight zero bytes, first 4 bytes.
pub fn pik_check_value(pik: &Key16) -> [u8; 4] {
    let e = tdes_ecb_encrypt(pik, &[0u8; 8]);
    [e[0], e[1], e[2], e[3]]
}

/// The MAK's check value: single DES (the MAK's first 8 bytes) of zero bytes, first 4.
pub fn mak_check_value(mak: &Key16) -> [u8; 4] {
    let e = des_encrypt(&first8(mak), [0u8; 8]);
    [e[0], e[1], e[2], e[3]]
}

/// Field 62 of a sign-on answer: PIK under TMK + check, MAK under TMK + check (40 bytes).
pub fn sign_on_keys_field(tmk: &Key16, pik: &Key16, mak: &Key16) -> Vec<u8> {
    let mut out = tdes_ecb_encrypt(tmk, pik);
    out.extend_from_slice(&pik_check_value(pik));
    out.extend(tdes_ecb_encrypt(tmk, mak));
    out.extend_from_slice(&mak_check_value(mak));
    out
}

/// What a terminal makes of field 62: the clear PIK and MAK, or `None` when the field is
/// not 40 bytes or a check value does not match (a wrong TMK).
pub fn open_sign_on_keys(tmk: &Key16, field62: &[u8]) -> Option<(Key16, Key16)> {
    if field62.len() != 40 {
        return None;
    }
    let pik: Key16 = tdes_ecb_decrypt(tmk, &field62[..16]).try_into().ok()?;
    let mak: Key16 = tdes_ecb_decrypt(tmk, &field62[20..36]).try_into().ok()?;
    (pik_check_value(&pik)[..] == field62[16..20] && mak_check_value(&mak)[..] == field62[36..40])
        .then_some((pik, mak))
}

/// The CUP ECB MAC of `data` (the message from MTI to the end of field 63): the 8 ASCII
/// characters that go in field 64.
pub fn cup_ecb_mac(mak: &Key16, data: &[u8]) -> [u8; 8] {
    let mut xor = [0u8; 8];
    for chunk in data.chunks(8) {
        for (i, b) in chunk.iter().enumerate() {
            xor[i] ^= b;
        }
    }
    let hex = hex::encode_upper(xor);
    let hex = hex.as_bytes();
    let key = first8(mak);
    let mut left = [0u8; 8];
    left.copy_from_slice(&hex[..8]);
    let mut block = des_encrypt(&key, left);
    for (i, b) in block.iter_mut().enumerate() {
        *b ^= hex[8 + i];
    }
    let result = hex::encode_upper(des_encrypt(&key, block));
    let mut mac = [0u8; 8];
    mac.copy_from_slice(&result.as_bytes()[..8]);
    mac
}

/// Whether two MACs are equal, in time independent of where they differ.
pub fn mac_equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
