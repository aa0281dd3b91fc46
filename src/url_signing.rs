//! Signed URLs: a token that lets a browser's `<img src>` or `<video src>`
//! fetch one path of one organization until a set time, with no API key
//! in a header. The token is `<expiry>.<organization id>.<signature>`:
//! the expiry in Unix seconds and the hex HMAC-SHA256, under the
//! organization's URL-signing key, of the organization, the path and the
//! expiry. Any change to one of them, or to the path it is used on,
//! breaks it.
//!
//! Each organization has a key of its own: HMAC-SHA256 under the server's
//! key of the organization's id and its signing generation. Raising the
//! generation (a rotation of the organization's API key, or a revocation
//! of its signed URLs) changes its key, which refuses every token it
//! signed before, and no other organization's.
//!
//! The server's key (32 random bytes) is made on first start and kept in
//! the data dir (mode 0600), or in the shared registry; deleting it
//! revokes every token of every organization at the next start.

use std::path::Path;

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

const KEY_BYTES: usize = 32;

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not a liveproc URL token")]
    Malformed,
    #[error("the token has expired")]
    Expired,
    #[error("the token does not match this URL")]
    BadSignature,
}

/// Who signs: an organization, with its key of this generation.
#[derive(Debug, Clone, Copy)]
pub struct Signer<'a> {
    pub organization: &'a str,
    pub generation: u32,
}

/// Signs and checks URL tokens with the server's key.
pub struct UrlSigner {
    key: [u8; KEY_BYTES],
}

impl std::fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UrlSigner(..)")
    }
}

impl UrlSigner {
    /// Reads the key from `path`, or makes one and saves it there.
    pub fn load_or_create(path: &Path) -> anyhow::Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                Self::from_hex(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::new_key_hex();
                crate::store::write_secret(path, &key)
                    .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
                Self::from_hex(&key)
            }
            Err(e) => Err(anyhow::anyhow!("reading {}: {e}", path.display())),
        }
    }

    /// A new random key, in hex.
    pub fn new_key_hex() -> String {
        let mut key = [0u8; KEY_BYTES];
        rand::rng().fill_bytes(&mut key);
        hex::encode(key)
    }

    /// The signer of a key given in hex.
    pub fn from_hex(text: &str) -> anyhow::Result<Self> {
        let bytes = hex::decode(text.trim()).map_err(|e| anyhow::anyhow!("not a hex key: {e}"))?;
        let key: [u8; KEY_BYTES] = bytes
            .try_into()
            .map_err(|_| anyhow::anyhow!("the key must be {KEY_BYTES} bytes"))?;
        Ok(Self { key })
    }

    #[cfg(test)]
    pub fn with_key(key: [u8; KEY_BYTES]) -> Self {
        Self { key }
    }

    /// The key of `organization` at `generation`.
    fn organization_key(&self, organization: &str, generation: u32) -> [u8; KEY_BYTES] {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key size");
        for part in [
            "organization url key",
            organization,
            &generation.to_string(),
        ] {
            mac.update(part.as_bytes());
            mac.update(b"\n");
        }
        mac.finalize().into_bytes().into()
    }

    fn mac(&self, signer: &Signer<'_>, path: &str, expires: i64) -> HmacSha256 {
        let key = self.organization_key(signer.organization, signer.generation);
        let mut mac = HmacSha256::new_from_slice(&key).expect("HMAC takes any key size");
        for part in [signer.organization, path, &expires.to_string()] {
            mac.update(part.as_bytes());
            mac.update(b"\n");
        }
        mac
    }

    /// A token for `path` of the organization, valid until `expires` (Unix s).
    pub fn sign(&self, signer: &Signer<'_>, path: &str, expires: i64) -> String {
        let signature = self.mac(signer, path, expires).finalize().into_bytes();
        format!(
            "{expires}.{}.{}",
            signer.organization,
            hex::encode(signature)
        )
    }

    /// The organization a token names (to look up its signing generation
    /// before [`UrlSigner::verify`]); nothing is checked yet.
    pub fn organization_of(token: &str) -> Result<&str, TokenError> {
        match token.split('.').nth(1) {
            Some(organization) if !organization.is_empty() => Ok(organization),
            _ => Err(TokenError::Malformed),
        }
    }

    /// The organization a token for `path` was signed for and its expiry
    /// (Unix s), if it is genuine under the organization's key at
    /// `generation` and not expired at `now`.
    pub fn verify(
        &self,
        token: &str,
        path: &str,
        now: i64,
        generation: u32,
    ) -> Result<(String, i64), TokenError> {
        let mut parts = token.splitn(3, '.');
        let (Some(expires), Some(organization), Some(signature)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let expires: i64 = expires.parse().map_err(|_| TokenError::Malformed)?;
        let signature = hex::decode(signature).map_err(|_| TokenError::Malformed)?;
        if organization.is_empty() {
            return Err(TokenError::Malformed);
        }
        let signer = Signer {
            organization,
            generation,
        };
        self.mac(&signer, path, expires)
            .verify_slice(&signature)
            .map_err(|_| TokenError::BadSignature)?;
        if now >= expires {
            return Err(TokenError::Expired);
        }
        Ok((organization.to_string(), expires))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATH: &str = "/v1/streams/cam/thumbnail.jpg";
    const ORG_A: Signer<'static> = Signer {
        organization: "org_a",
        generation: 0,
    };

    #[test]
    fn a_new_generation_refuses_the_tokens_of_the_old_one_only() {
        let signer = UrlSigner::with_key([7; KEY_BYTES]);
        let old = signer.sign(&ORG_A, PATH, 1_000);
        let next = Signer {
            generation: 1,
            ..ORG_A
        };
        let new = signer.sign(&next, PATH, 1_000);
        assert_ne!(old, new);
        assert_eq!(UrlSigner::organization_of(&old), Ok("org_a"));
        assert_eq!(
            signer.verify(&old, PATH, 0, 1),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            signer.verify(&new, PATH, 0, 1),
            Ok(("org_a".to_string(), 1_000))
        );
        // Another organization's key differs at every generation.
        let org_b = Signer {
            organization: "org_b",
            generation: 0,
        };
        assert_ne!(
            signer.organization_key("org_a", 0),
            signer.organization_key(org_b.organization, 0)
        );
    }

    #[test]
    fn a_token_opens_its_path_until_it_expires() {
        let signer = UrlSigner::with_key([7; KEY_BYTES]);
        let token = signer.sign(&ORG_A, PATH, 1_000);
        assert_eq!(
            signer.verify(&token, PATH, 999, 0),
            Ok(("org_a".to_string(), 1_000))
        );
        assert_eq!(
            signer.verify(&token, PATH, 1_000, 0),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn any_change_breaks_it() {
        let signer = UrlSigner::with_key([7; KEY_BYTES]);
        let token = signer.sign(&ORG_A, PATH, 1_000);
        let other_path = "/v1/streams/cam2/thumbnail.jpg";
        assert_eq!(
            signer.verify(&token, other_path, 0, 0),
            Err(TokenError::BadSignature)
        );
        let other_org = token.replacen("org_a", "org_b", 1);
        assert_eq!(
            signer.verify(&other_org, PATH, 0, 0),
            Err(TokenError::BadSignature)
        );
        let later = token.replacen("1000", "9000", 1);
        assert_eq!(
            signer.verify(&later, PATH, 0, 0),
            Err(TokenError::BadSignature)
        );
        let mut flipped = token.clone();
        let last = flipped.pop().unwrap();
        flipped.push(if last == '0' { '1' } else { '0' });
        assert_eq!(
            signer.verify(&flipped, PATH, 0, 0),
            Err(TokenError::BadSignature)
        );
        let other_key = UrlSigner::with_key([8; KEY_BYTES]);
        assert_eq!(
            other_key.verify(&token, PATH, 0, 0),
            Err(TokenError::BadSignature)
        );
        for garbage in ["", "abc", "1.org", "x.org.00", "1..00", "1.org.zz"] {
            assert_eq!(
                signer.verify(garbage, PATH, 0, 0),
                Err(TokenError::Malformed),
                "{garbage:?}"
            );
        }
    }

    #[test]
    fn the_key_is_kept_in_the_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("url-signing.key");
        let first = UrlSigner::load_or_create(&path).unwrap();
        let token = first.sign(&ORG_A, PATH, 1_000);
        let again = UrlSigner::load_or_create(&path).unwrap();
        assert_eq!(
            again.verify(&token, PATH, 0, 0),
            Ok(("org_a".to_string(), 1_000))
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "readable by others: {mode:o}");
        }
    }
}
