//! Generation and hashing of secrets: organization API keys, the admin
//! key, stream keys and SRT passphrases (ids are in [`crate::ids`]). API
//! keys are stored only as SHA-256 hashes; they carry 256 bits of
//! randomness, so a fast hash is enough to make a stolen store
//! useless for authentication.

use rand::RngCore;
use sha2::{Digest, Sha256};

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// A new organization API key (`lp_` + 64 hex digits).
pub fn new_api_key() -> String {
    format!("lp_{}", random_hex(32))
}

/// A new admin key (`lpadmin_` + 64 hex digits).
pub fn new_admin_key() -> String {
    format!("lpadmin_{}", random_hex(32))
}

/// A new stream (publish) key.
pub fn new_stream_key() -> String {
    format!("sk_{}", random_hex(16))
}

/// A new SRT passphrase: 32 hex digits (128 bits), within SRT's 10–79
/// characters and safe in a URL.
pub fn new_srt_passphrase() -> String {
    random_hex(16)
}

/// The stored form of a key.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_and_hash_stably() {
        let (a, b) = (new_api_key(), new_api_key());
        assert_ne!(a, b);
        assert_eq!(a.len(), 3 + 64);
        assert_eq!(hash_key(&a), hash_key(&a));
        assert_ne!(hash_key(&a), hash_key(&b));
    }
}
