//! Server-side MTProto 2.0 crypto (the mirror image of grammers' client KDF) and the SRP
//! verifier for 2FA passwords.

use grammers_crypto::aes::{ige_decrypt, ige_encrypt};
use hmac::Hmac;
use num_bigint::BigUint;
use rand::RngCore;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

/// Length of an MTProto auth key.
pub const AUTH_KEY_LEN: usize = 256;

/// `auth_key_id` = the lower 64 bits of SHA1(auth_key).
pub fn auth_key_id(key: &[u8; AUTH_KEY_LEN]) -> u64 {
    let h = Sha1::digest(key);
    let mut id = [0u8; 8];
    id.copy_from_slice(&h[12..20]);
    u64::from_le_bytes(id)
}

/// A fresh random 256-byte key.
pub fn random_auth_key() -> [u8; AUTH_KEY_LEN] {
    let mut key = [0u8; AUTH_KEY_LEN];
    rand::thread_rng().fill_bytes(&mut key);
    key
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

fn calc_key(key: &[u8; AUTH_KEY_LEN], msg_key: &[u8], x: usize) -> ([u8; 32], [u8; 32]) {
    let a = sha256(&[msg_key, &key[x..x + 36]]);
    let b = sha256(&[&key[40 + x..40 + x + 36], msg_key]);
    let mut aes_key = [0u8; 32];
    aes_key[..8].copy_from_slice(&a[..8]);
    aes_key[8..24].copy_from_slice(&b[8..24]);
    aes_key[24..].copy_from_slice(&a[24..]);
    let mut iv = [0u8; 32];
    iv[..8].copy_from_slice(&b[..8]);
    iv[8..24].copy_from_slice(&a[8..24]);
    iv[24..].copy_from_slice(&b[24..]);
    (aes_key, iv)
}

/// Why an encrypted packet could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The packet is too short or not a multiple of 16 bytes.
    #[error("malformed encrypted packet")]
    Malformed,
    /// `msg_key` does not match the decrypted content.
    #[error("msg_key mismatch")]
    BadMsgKey,
}

/// Decrypts a client packet (`auth_key_id | msg_key | data`), x = 0.
pub fn decrypt_from_client(
    key: &[u8; AUTH_KEY_LEN],
    packet: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    if packet.len() < 24 + 32 || !(packet.len() - 24).is_multiple_of(16) {
        return Err(CryptoError::Malformed);
    }
    let msg_key = &packet[8..24];
    let (aes_key, iv) = calc_key(key, msg_key, 0);
    let mut data = packet[24..].to_vec();
    ige_decrypt(&mut data, &aes_key, &iv);
    let check = sha256(&[&key[88..88 + 32], &data]);
    if &check[8..24] != msg_key {
        return Err(CryptoError::BadMsgKey);
    }
    Ok(data)
}

/// Encrypts a plaintext (salt, session id, msg id, seq, len, body) for the client, x = 8.
pub fn encrypt_to_client(key: &[u8; AUTH_KEY_LEN], key_id: u64, plaintext: &[u8]) -> Vec<u8> {
    let mut rng = rand::thread_rng();
    let mut data = plaintext.to_vec();
    // 12..1024 bytes of padding, total a multiple of 16.
    let mut pad = 16 - (data.len() % 16);
    if pad < 12 {
        pad += 16;
    }
    pad += 16 * (rng.next_u32() as usize % 4);
    let mut padding = vec![0u8; pad];
    rng.fill_bytes(&mut padding);
    data.extend_from_slice(&padding);
    let h = sha256(&[&key[88 + 8..88 + 8 + 32], &data]);
    let msg_key = &h[8..24];
    let (aes_key, iv) = calc_key(key, msg_key, 8);
    ige_encrypt(&mut data, &aes_key, &iv);
    let mut out = Vec::with_capacity(24 + data.len());
    out.extend_from_slice(&key_id.to_le_bytes());
    out.extend_from_slice(msg_key);
    out.extend_from_slice(&data);
    out
}

/// Telegram's 2048-bit safe prime used for SRP (g = 3).
pub const SRP_P_HEX: &str = "c71caeb9c6b1c9048e6c522f70f13f73980d40238e3e21c14934d037563d930f48198a0aa7c14058229493d22530f4dbfa336f6e0ac925139543aed44cce7c3720fd51f69458705ac68cd4fe6b6b13abdc9746512969328454f18faf8c595f642477fe96bb2a941d5bcd1d4ac8cc49880708fa9b378e3c4f3a9060bee67cf9a4a4a695811051907e162753b56b0f6b410dba74d8a84b2a14b3144e0ef1284754fd17ed950d5965b4b9dd46582db1178d169c6bc465b0d6ff9ca3928fef5b9ae4e418fc15e83ebea0f87fa9ff5eed70050ded2849f47bf959d956850ce929851f0d8115f635b105ee2e4e15d04b2454bf6f4fadf034b10403119cd8e3b92fcc5b";
/// SRP generator.
pub const SRP_G: i32 = 3;

/// The SRP prime as big-endian bytes.
pub fn srp_p() -> Vec<u8> {
    (0..SRP_P_HEX.len())
        .step_by(2)
        .filter_map(|i| u8::from_str_radix(&SRP_P_HEX[i..i + 2], 16).ok())
        .collect()
}

fn pad256(b: &[u8]) -> [u8; 256] {
    let mut out = [0u8; 256];
    let n = b.len().min(256);
    out[256 - n..].copy_from_slice(&b[b.len() - n..]);
    out
}

fn sh(data: &[u8], salt: &[u8]) -> [u8; 32] {
    sha256(&[salt, data, salt])
}

/// PH2(password, salt1, salt2) from <https://core.telegram.org/api/srp>.
pub fn ph2(password: &[u8], salt1: &[u8], salt2: &[u8]) -> [u8; 32] {
    let ph1 = sh(&sh(password, salt1), salt2);
    let mut dk = [0u8; 64];
    // PBKDF2 only fails for invalid output lengths; 64 bytes is valid for SHA-512.
    let _ = pbkdf2::pbkdf2::<Hmac<Sha512>>(&ph1, salt1, 100_000, &mut dk);
    sh(&dk, salt2)
}

/// What the server keeps for a 2FA password: salts and the verifier `v = g^x mod p`.
#[derive(Clone, Debug)]
pub struct SrpVerifier {
    /// Client salt (`salt1`).
    pub salt1: Vec<u8>,
    /// Server salt (`salt2`).
    pub salt2: Vec<u8>,
    /// `g^x mod p`, big-endian.
    pub v: Vec<u8>,
}

impl SrpVerifier {
    /// Derives the verifier for a password (slow: PBKDF2 with 100 000 iterations).
    pub fn new(password: &str) -> Self {
        let mut rng = rand::thread_rng();
        let mut salt1 = vec![0u8; 40];
        let mut salt2 = vec![0u8; 16];
        rng.fill_bytes(&mut salt1);
        rng.fill_bytes(&mut salt2);
        let x = ph2(password.as_bytes(), &salt1, &salt2);
        let p = BigUint::from_bytes_be(&srp_p());
        let v = BigUint::from(SRP_G as u32).modpow(&BigUint::from_bytes_be(&x), &p);
        Self {
            salt1,
            salt2,
            v: v.to_bytes_be(),
        }
    }
}

/// One `account.getPassword` challenge: the secret `b` and the public `B`.
#[derive(Clone, Debug)]
pub struct SrpChallenge {
    /// Secret exponent.
    pub b: Vec<u8>,
    /// `B = (k·v + g^b) mod p`, padded to 256 bytes.
    pub big_b: Vec<u8>,
}

/// Creates a fresh challenge for a verifier.
pub fn srp_challenge(verifier: &SrpVerifier) -> SrpChallenge {
    let mut b = vec![0u8; 256];
    rand::thread_rng().fill_bytes(&mut b);
    let p_bytes = srp_p();
    let p = BigUint::from_bytes_be(&p_bytes);
    let g = BigUint::from(SRP_G as u32);
    let k = BigUint::from_bytes_be(&sha256(&[&p_bytes, &pad256(&[SRP_G as u8])]));
    let v = BigUint::from_bytes_be(&verifier.v);
    let big_b = (k * v + g.modpow(&BigUint::from_bytes_be(&b), &p)) % &p;
    SrpChallenge {
        b,
        big_b: pad256(&big_b.to_bytes_be()).to_vec(),
    }
}

/// Checks the client's `A` and `M1` against a challenge.
pub fn srp_check(verifier: &SrpVerifier, ch: &SrpChallenge, a: &[u8], m1: &[u8]) -> bool {
    let p_bytes = srp_p();
    let p = BigUint::from_bytes_be(&p_bytes);
    let big_a = BigUint::from_bytes_be(a);
    let one = BigUint::from(1u8);
    if big_a <= one || big_a >= &p - &one {
        return false;
    }
    let a_pad = pad256(a);
    let b_pad = pad256(&ch.big_b);
    let u = BigUint::from_bytes_be(&sha256(&[&a_pad, &b_pad]));
    let v = BigUint::from_bytes_be(&verifier.v);
    let s = (big_a * v.modpow(&u, &p)).modpow(&BigUint::from_bytes_be(&ch.b), &p);
    let k = sha256(&[&pad256(&s.to_bytes_be())]);
    let hp = sha256(&[&p_bytes]);
    let hg = sha256(&[&pad256(&[SRP_G as u8])]);
    let mut xor = [0u8; 32];
    for i in 0..32 {
        xor[i] = hp[i] ^ hg[i];
    }
    let expected = sha256(&[
        &xor,
        &sha256(&[&verifier.salt1]),
        &sha256(&[&verifier.salt2]),
        &a_pad,
        &b_pad,
        &k,
    ]);
    expected.as_slice() == m1
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn srp_round_trip_with_grammers_client_math() {
        let verifier = SrpVerifier::new("hunter2");
        let ch = srp_challenge(&verifier);
        let mut a = vec![0u8; 256];
        rand::thread_rng().fill_bytes(&mut a);
        let p = srp_p();
        let (m1, g_a) = grammers_crypto::two_factor_auth::calculate_2fa(
            &verifier.salt1,
            &verifier.salt2,
            &p,
            &SRP_G,
            ch.big_b.clone(),
            a.clone(),
            "hunter2",
        );
        assert!(srp_check(&verifier, &ch, &g_a, &m1));
        let (m1_bad, g_a_bad) = grammers_crypto::two_factor_auth::calculate_2fa(
            &verifier.salt1,
            &verifier.salt2,
            &p,
            &SRP_G,
            ch.big_b.clone(),
            a,
            "wrong",
        );
        assert!(!srp_check(&verifier, &ch, &g_a_bad, &m1_bad));
    }

    #[test]
    fn encrypt_decrypt_directions_differ() {
        let key = random_auth_key();
        let id = auth_key_id(&key);
        let plain = vec![7u8; 64];
        let packet = encrypt_to_client(&key, id, &plain);
        // The server's own output is x=8, so decrypting it as x=0 must fail the msg_key check.
        assert!(decrypt_from_client(&key, &packet).is_err());
    }
}
