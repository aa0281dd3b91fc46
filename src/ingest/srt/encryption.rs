//! SRT's AES encryption per stream: what a caller's handshake offers (its
//! key length and the stream keys it wrapped with its passphrase) checked
//! against what the caller's stream asks, before the connection is
//! answered. A wrong passphrase is found here by unwrapping the caller's
//! keying material, so it is refused before any session starts; and no
//! mismatch ever reaches srt-protocol, which panics on some of them.

use srt_protocol::options::{KeySize, Passphrase};
use srt_protocol::packet::{CoreRejectReason, KeyingMaterialMessage, RejectReason};
use srt_protocol::settings::{CipherSettings, KeyMaterialRefreshSettings, KeySettings};

use crate::registry::SrtEncryption;

/// SRT's key length when the caller sets none (AES-128).
const DEFAULT_KEY_LENGTH: u8 = 16;

/// The length of the stream keys a keying-material message wraps (one
/// or two of them, plus the 8 bytes of AES key wrap); `None` unless it
/// is one of AES's.
fn wrapped_key_length(material: &KeyingMaterialMessage) -> Option<u8> {
    let keys = material.key_flags.bits().count_ones() as usize;
    let wrapped = material.wrapped_keys.len().checked_sub(8)?;
    if keys == 0 || wrapped % keys != 0 {
        return None;
    }
    match wrapped / keys {
        length @ (16 | 24 | 32) => Some(length as u8),
        _ => None,
    }
}

/// What a caller's conclusion handshake says of its encryption.
#[derive(Clone, Default)]
pub(super) struct CallerKey {
    pub key_size: KeySize,
    /// The stream keys, wrapped with the caller's passphrase (KMREQ).
    pub material: Option<KeyingMaterialMessage>,
}

impl CallerKey {
    fn encrypts(&self) -> bool {
        self.key_size != KeySize::Unspecified || self.material.is_some()
    }
}

/// Why a caller's encryption is refused: the SRT reason it is told, and
/// a line for the log.
#[derive(Debug)]
pub(super) struct Refusal {
    pub reason: RejectReason,
    pub why: String,
}

impl Refusal {
    fn new(reason: CoreRejectReason, why: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            why: why.into(),
        }
    }
}

/// The key settings to answer `caller` with (`None`: no encryption), or
/// why it is refused.
pub(super) fn check(
    stream: Option<&SrtEncryption>,
    caller: &CallerKey,
) -> Result<Option<KeySettings>, Refusal> {
    let Some(stream) = stream else {
        return match caller.encrypts() {
            // SRT's "password required or unexpected".
            true => Err(Refusal::new(
                CoreRejectReason::Unsecure,
                "the caller encrypts (passphrase), the stream takes none",
            )),
            false => Ok(None),
        };
    };
    let Some(material) = &caller.material else {
        return Err(Refusal::new(
            CoreRejectReason::Unsecure,
            "the stream requires SRT encryption; the caller has no passphrase",
        ));
    };
    let Some(length) = wrapped_key_length(material) else {
        return Err(Refusal::new(
            CoreRejectReason::Unsecure,
            "the caller's keying material is malformed",
        ));
    };
    // A caller that sets no `pbkeylen` advertises none and uses SRT's
    // default, AES-128; srt-protocol needs the advertised size back.
    let advertised = match caller.key_size {
        KeySize::Unspecified => DEFAULT_KEY_LENGTH,
        size => size.as_raw(),
    };
    if advertised != length {
        return Err(Refusal::new(
            CoreRejectReason::Unsecure,
            "the caller's key length and keying material disagree",
        ));
    }
    if stream.key_length != 0 && length != stream.key_length {
        return Err(Refusal::new(
            CoreRejectReason::Unsecure,
            format!(
                "the caller encrypts with a {length}-byte key, the stream requires {} (pbkeylen)",
                stream.key_length
            ),
        ));
    }
    let passphrase = Passphrase::try_from(stream.passphrase.clone()).map_err(|_| {
        Refusal::new(
            CoreRejectReason::BadSecret,
            "the stream's stored passphrase is not a valid SRT passphrase",
        )
    })?;
    let settings = KeySettings {
        key_size: caller.key_size,
        passphrase,
    };
    // Unwrapping fails (its integrity check) unless both sides derived
    // the same key-encrypting key from the same passphrase.
    CipherSettings::new(&settings, &KeyMaterialRefreshSettings::default(), material)
        .map_err(|_| Refusal::new(CoreRejectReason::BadSecret, "wrong SRT passphrase"))?;
    Ok(Some(settings))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSPHRASE: &str = "correct horse battery";

    fn stream(key_length: u8) -> SrtEncryption {
        SrtEncryption {
            passphrase: PASSPHRASE.into(),
            key_length,
        }
    }

    /// A caller's offer as libsrt makes it: random stream keys wrapped
    /// with a key derived from `passphrase`.
    fn caller(passphrase: &str, key_size: KeySize) -> CallerKey {
        let settings = KeySettings {
            key_size,
            passphrase: Passphrase::try_from(passphrase.to_string()).unwrap(),
        };
        let cipher = CipherSettings::new_random(&settings, &KeyMaterialRefreshSettings::default());
        CallerKey {
            key_size,
            material: cipher.wrap_keying_material(),
        }
    }

    fn refused(result: Result<Option<KeySettings>, Refusal>) -> (RejectReason, String) {
        let refusal = result.expect_err("refused");
        (refusal.reason, refusal.why)
    }

    #[test]
    fn plain_stream_takes_only_plain_callers() {
        assert!(check(None, &CallerKey::default()).unwrap().is_none());
        let (reason, why) = refused(check(None, &caller(PASSPHRASE, KeySize::AES128)));
        assert_eq!(reason, CoreRejectReason::Unsecure.into());
        assert!(why.contains("takes none"), "{why}");
    }

    #[test]
    fn encrypted_stream_takes_the_right_passphrase_at_any_allowed_length() {
        for key_size in [KeySize::AES128, KeySize::AES192, KeySize::AES256] {
            let settings = check(Some(&stream(0)), &caller(PASSPHRASE, key_size))
                .unwrap()
                .expect("key settings");
            assert_eq!(settings.key_size, key_size);
        }
        // No `pbkeylen` on the caller: nothing advertised, AES-128 used.
        let unadvertised = CallerKey {
            key_size: KeySize::Unspecified,
            ..caller(PASSPHRASE, KeySize::AES128)
        };
        let settings = check(Some(&stream(16)), &unadvertised).unwrap().unwrap();
        assert_eq!(settings.key_size, KeySize::Unspecified);
        let (_, why) = refused(check(Some(&stream(32)), &unadvertised));
        assert!(why.contains("16-byte key"), "{why}");
        let fixed = check(Some(&stream(32)), &caller(PASSPHRASE, KeySize::AES256)).unwrap();
        assert_eq!(fixed.unwrap().key_size, KeySize::AES256);
    }

    #[test]
    fn encrypted_stream_refuses_plain_wrong_and_short_keys() {
        let (reason, _) = refused(check(Some(&stream(0)), &CallerKey::default()));
        assert_eq!(reason, CoreRejectReason::Unsecure.into());

        let (reason, why) = refused(check(
            Some(&stream(0)),
            &caller("not the passphrase", KeySize::AES128),
        ));
        assert_eq!(reason, CoreRejectReason::BadSecret.into());
        assert_eq!(why, "wrong SRT passphrase");

        let (reason, why) = refused(check(
            Some(&stream(32)),
            &caller(PASSPHRASE, KeySize::AES128),
        ));
        assert_eq!(reason, CoreRejectReason::Unsecure.into());
        assert!(why.contains("16-byte key"), "{why}");
    }
}
