//! Base64url (RFC 4648 §5) as the Payment scheme uses it.
//!
//! Encoding always produces the URL-safe alphabet without padding. Decoding is
//! lenient in the ways the draft allows for interoperability: it accepts both
//! the URL-safe and the standard alphabet, with or without `=` padding. It is
//! strict about everything else (characters outside both alphabets, impossible
//! lengths, misplaced padding).

use thiserror::Error;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Marks bytes that are not part of either alphabet.
const INVALID: u8 = 0xFF;

/// Reverse table for both alphabets: `-`/`+` are 62 and `_`/`/` are 63.
const DECODE: [u8; 256] = {
    let mut table = [INVALID; 256];
    let mut i = 0;
    while i < 64 {
        table[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    table[b'+' as usize] = 62;
    table[b'/' as usize] = 63;
    table
};

/// Why a base64url value could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Base64Error {
    /// A byte outside both base64 alphabets.
    #[error("invalid base64url character {found:?} at offset {at}")]
    InvalidCharacter {
        /// Offset of the byte in the input.
        at: usize,
        /// The offending character.
        found: char,
    },
    /// The unpadded length leaves a single dangling character.
    #[error("invalid base64url length {0}")]
    InvalidLength(usize),
    /// `=` appears somewhere other than the end, or too many of them.
    #[error("invalid base64url padding")]
    InvalidPadding,
    /// The decoded bytes are not UTF-8 where text was required.
    #[error("decoded base64url is not valid UTF-8")]
    NotUtf8,
}

/// Encodes bytes as base64url without padding.
///
/// ```
/// assert_eq!(mpp_runtime::wire::base64url::encode(b"Hello, World!"), "SGVsbG8sIFdvcmxkIQ");
/// ```
pub fn encode(input: impl AsRef<[u8]>) -> String {
    let mut out = String::with_capacity(encoded_len(input.as_ref().len()));
    encode_into(input.as_ref(), &mut out);
    out
}

/// Number of characters [`encode`] produces for `len` input bytes.
pub const fn encoded_len(len: usize) -> usize {
    len / 3 * 4
        + match len % 3 {
            0 => 0,
            1 => 2,
            _ => 3,
        }
}

/// Appends the base64url (no padding) encoding of `input` to `out`.
pub fn encode_into(input: &[u8], out: &mut String) {
    out.reserve(encoded_len(input.len()));
    // Encoded a block at a time into a stack buffer (whose bytes are all
    // from the ASCII alphabet), then appended with one copy.
    let mut buf = [0u8; 256];
    for block in input.chunks(buf.len() / 4 * 3) {
        let mut groups = block.chunks_exact(3);
        let mut len = 0;
        for (group, quad) in (&mut groups).zip(buf.chunks_exact_mut(4)) {
            let n = (u32::from(group[0]) << 16) | (u32::from(group[1]) << 8) | u32::from(group[2]);
            quad[0] = ALPHABET[(n >> 18) as usize & 63];
            quad[1] = ALPHABET[(n >> 12) as usize & 63];
            quad[2] = ALPHABET[(n >> 6) as usize & 63];
            quad[3] = ALPHABET[n as usize & 63];
            len += 4;
        }
        match groups.remainder() {
            [a] => {
                let n = u32::from(*a) << 16;
                buf[len] = ALPHABET[(n >> 18) as usize & 63];
                buf[len + 1] = ALPHABET[(n >> 12) as usize & 63];
                len += 2;
            }
            [a, b] => {
                let n = (u32::from(*a) << 16) | (u32::from(*b) << 8);
                buf[len] = ALPHABET[(n >> 18) as usize & 63];
                buf[len + 1] = ALPHABET[(n >> 12) as usize & 63];
                buf[len + 2] = ALPHABET[(n >> 6) as usize & 63];
                len += 3;
            }
            _ => {}
        }
        if let Ok(text) = std::str::from_utf8(&buf[..len]) {
            out.push_str(text);
        }
    }
}

/// Decodes base64url or standard base64, padded or not.
///
/// ```
/// use mpp_runtime::wire::base64url::decode;
/// assert_eq!(decode("Pj4-Pz8_").unwrap(), b">>>???");
/// assert_eq!(decode("Pj4+Pz8/").unwrap(), b">>>???");
/// assert_eq!(decode("YQ==").unwrap(), b"a");
/// assert!(decode("not-valid!!!").is_err());
/// ```
pub fn decode(input: &str) -> Result<Vec<u8>, Base64Error> {
    let bytes = input.as_bytes();
    let unpadded = strip_padding(bytes)?;
    if unpadded.len() % 4 == 1 {
        return Err(Base64Error::InvalidLength(unpadded.len()));
    }
    let full = unpadded.len() / 4;
    let rest = &unpadded[full * 4..];
    let mut out = vec![0u8; full * 3 + rest.len().saturating_sub(1)];
    let (body, tail) = out.split_at_mut(full * 3);
    for (quad, triple) in unpadded.chunks_exact(4).zip(body.chunks_exact_mut(3)) {
        let (a, b, c, d) = (
            DECODE[quad[0] as usize],
            DECODE[quad[1] as usize],
            DECODE[quad[2] as usize],
            DECODE[quad[3] as usize],
        );
        let n = (u32::from(a) << 18) | (u32::from(b) << 12) | (u32::from(c) << 6) | u32::from(d);
        triple.copy_from_slice(&[(n >> 16) as u8, (n >> 8) as u8, n as u8]);
        // INVALID has its high bit set; valid sextets never do.
        if (a | b | c | d) & 0x80 != 0 {
            return Err(invalid_at(input, 0));
        }
    }
    if !rest.is_empty() {
        let offset = full * 4;
        let mut n = 0u32;
        for (i, &byte) in rest.iter().enumerate() {
            let value = DECODE[byte as usize];
            if value == INVALID {
                return Err(invalid_at(input, offset + i));
            }
            n |= u32::from(value) << (18 - 6 * i);
        }
        tail[0] = (n >> 16) as u8;
        if rest.len() == 3 {
            tail[1] = (n >> 8) as u8;
        }
    }
    Ok(out)
}

/// The error for the first invalid character at or after `from`.
#[cold]
fn invalid_at(input: &str, from: usize) -> Base64Error {
    let at = input.as_bytes()[from..]
        .iter()
        .position(|&b| DECODE[b as usize] == INVALID)
        .map_or(from, |i| from + i);
    Base64Error::InvalidCharacter {
        at,
        found: char_at(input, at),
    }
}

/// Decodes like [`decode`] and requires the result to be UTF-8 text.
pub fn decode_to_string(input: &str) -> Result<String, Base64Error> {
    String::from_utf8(decode(input)?).map_err(|_| Base64Error::NotUtf8)
}

/// Removes trailing `=` padding, checking that it is well formed.
fn strip_padding(bytes: &[u8]) -> Result<&[u8], Base64Error> {
    let pad = bytes.iter().rev().take_while(|&&b| b == b'=').count();
    if pad == 0 {
        return Ok(bytes);
    }
    if pad > 2 || !bytes.len().is_multiple_of(4) {
        return Err(Base64Error::InvalidPadding);
    }
    Ok(&bytes[..bytes.len() - pad])
}

fn char_at(input: &str, at: usize) -> char {
    input
        .get(at..)
        .and_then(|rest| rest.chars().next())
        .unwrap_or(char::REPLACEMENT_CHARACTER)
}

/// Whether `input` is a syntactically valid unpadded base64url string.
pub fn is_base64url_nopad(input: &str) -> bool {
    input.len() % 4 != 1
        && input
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_length() {
        let data: Vec<u8> = (0..=255u8).collect();
        for len in 0..data.len() {
            let encoded = encode(&data[..len]);
            assert_eq!(encoded.len(), encoded_len(len));
            assert!(is_base64url_nopad(&encoded));
            assert_eq!(decode(&encoded).unwrap(), &data[..len]);
        }
    }

    #[test]
    fn rejects_bad_padding_and_length() {
        assert_eq!(decode("Y"), Err(Base64Error::InvalidLength(1)));
        assert_eq!(decode("YQ="), Err(Base64Error::InvalidPadding));
        assert_eq!(decode("Y==="), Err(Base64Error::InvalidPadding));
        assert!(matches!(
            decode("Y=Q="),
            Err(Base64Error::InvalidCharacter { at: 1, .. })
        ));
    }

    #[test]
    fn reports_non_ascii_characters() {
        assert!(matches!(
            decode("é"),
            Err(Base64Error::InvalidCharacter { found: 'é', .. })
        ));
    }
}
