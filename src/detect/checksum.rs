//! Offline checksums of token formats that carry one.
//!
//! A token whose checksum does not hold is still reported (a typo'd or truncated copy of a
//! real token is still worth rotating, and fakes planted in tests look like this), but the
//! finding says `checksum_valid: false` so triage can rank it below a verified one.

use crate::rules::Checksum;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Whether `secret` passes `kind`'s checksum.
pub fn verify(kind: Checksum, secret: &[u8]) -> bool {
    match kind {
        Checksum::Crc32Base62 => crc32_base62(secret),
    }
}

/// `prefix_` + 30 base62 characters + base62(crc32(those 30)), zero-padded to 6 digits.
fn crc32_base62(secret: &[u8]) -> bool {
    let Some(us) = secret.iter().position(|&b| b == b'_') else {
        return false;
    };
    let body = &secret[us + 1..];
    if body.len() != 36 || !body.iter().all(u8::is_ascii_alphanumeric) {
        return false;
    }
    let (random, check) = body.split_at(30);
    encode_base62(crc32fast::hash(random)).as_bytes() == check
}

/// `n` in base 62, zero-padded to 6 digits (a u32 needs at most 6).
pub fn encode_base62(mut n: u32) -> String {
    let mut digits = [b'0'; 6];
    for d in digits.iter_mut().rev() {
        *d = BASE62[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(digits.to_vec()).expect("ascii")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(prefix: &str, random: &str) -> String {
        format!(
            "{prefix}_{random}{}",
            encode_base62(crc32fast::hash(random.as_bytes()))
        )
    }

    #[test]
    fn base62_is_zero_padded() {
        assert_eq!(encode_base62(0), "000000");
        assert_eq!(encode_base62(61), "00000z");
        assert_eq!(encode_base62(62), "000010");
        assert_eq!(encode_base62(u32::MAX), "4gfFC3");
    }

    #[test]
    fn valid_and_invalid_tokens() {
        let good = token("ghp", "Zq3kYb8TfW2mN5rXc7vH1jL9pD4sGa");
        assert!(verify(Checksum::Crc32Base62, good.as_bytes()));
        assert!(verify(
            Checksum::Crc32Base62,
            token("npm", "Zq3kYb8TfW2mN5rXc7vH1jL9pD4sGa").as_bytes()
        ));
        let mut bad = good.clone().into_bytes();
        bad[10] = if bad[10] == b'a' { b'b' } else { b'a' };
        assert!(!verify(Checksum::Crc32Base62, &bad));
        assert!(!verify(Checksum::Crc32Base62, b"ghp_short"));
        assert!(!verify(Checksum::Crc32Base62, b"noprefix"));
    }
}
