//! RFC 8785 JSON Canonicalization Scheme (JCS).
//!
//! The challenge `request` and `opaque` parameters are base64url of JCS
//! output, and the challenge id HMAC covers those bytes, so every
//! implementation must produce identical output: object members sorted by
//! their UTF-16 code units, no insignificant whitespace, strings escaped the
//! way ECMAScript's `JSON.stringify` escapes them (no HTML escaping, no
//! escaping of non-ASCII), and numbers in ECMAScript's shortest form.

use serde_json::{Map, Number, Value};

use super::base64url;

/// Serializes a JSON value canonically.
///
/// ```
/// use serde_json::json;
/// let value = json!({"b": 1, "a": "<x> & é", "Z": [1.5, 1e21, 0.000001]});
/// assert_eq!(
///     mpp_runtime::wire::jcs::to_string(&value),
///     r#"{"Z":[1.5,1e+21,0.000001],"a":"<x> & é","b":1}"#,
/// );
/// ```
pub fn to_string(value: &Value) -> String {
    let mut out = String::with_capacity(128);
    write_value(value, &mut out);
    out
}

/// Canonical JSON of an object's members.
pub fn object_to_string(map: &Map<String, Value>) -> String {
    let mut out = String::with_capacity(128);
    write_object(map, &mut out);
    out
}

/// base64url (no padding) of the canonical JSON: the form of `request` and
/// `opaque` on the wire.
pub fn to_base64url(value: &Value) -> String {
    base64url::encode(to_string(value))
}

/// base64url (no padding) of the canonical JSON of an object's members.
pub fn object_to_base64url(map: &Map<String, Value>) -> String {
    base64url::encode(object_to_string(map))
}

fn write_value(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => write_number(n, out),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => write_object(map, out),
    }
}

fn write_object(map: &Map<String, Value>, out: &mut String) {
    let mut members: Vec<(&String, &Value)> = map.iter().collect();
    members.sort_by(|(a, _), (b, _)| a.encode_utf16().cmp(b.encode_utf16()));
    out.push('{');
    for (i, (key, value)) in members.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(key, out);
        out.push(':');
        write_value(value, out);
    }
    out.push('}');
}

/// Writes a JSON string literal exactly as ECMAScript `JSON.stringify` does.
pub(crate) fn write_string(s: &str, out: &mut String) {
    out.push('"');
    let mut start = 0;
    for (i, byte) in s.bytes().enumerate() {
        let escape: Option<&str> = match byte {
            b'"' => Some("\\\""),
            b'\\' => Some("\\\\"),
            b'\x08' => Some("\\b"),
            b'\x0c' => Some("\\f"),
            b'\n' => Some("\\n"),
            b'\r' => Some("\\r"),
            b'\t' => Some("\\t"),
            0x00..=0x1f => None,
            _ => continue,
        };
        out.push_str(&s[start..i]);
        match escape {
            Some(e) => out.push_str(e),
            None => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\u00");
                out.push(HEX[usize::from(byte >> 4)] as char);
                out.push(HEX[usize::from(byte & 0xf)] as char);
            }
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Integers up to 2^53 are exact doubles; beyond that, RFC 8785 (like
/// ECMAScript) writes the nearest double.
const MAX_SAFE_INTEGER: u64 = 1 << 53;

fn write_number(n: &Number, out: &mut String) {
    if let Some(u) = n.as_u64().filter(|u| *u <= MAX_SAFE_INTEGER) {
        out.push_str(&u.to_string());
    } else if let Some(i) = n.as_i64().filter(|i| i.unsigned_abs() <= MAX_SAFE_INTEGER) {
        out.push_str(&i.to_string());
    } else if let Some(f) = n.as_f64() {
        write_f64(f, out);
    } else {
        // Arbitrary-precision numbers are not enabled; serde_json cannot
        // produce anything else, but stay total.
        out.push_str(&n.to_string());
    }
}

/// ECMAScript `Number.prototype.toString` for finite doubles.
fn write_f64(f: f64, out: &mut String) {
    if f == 0.0 {
        out.push('0');
        return;
    }
    if !f.is_finite() {
        // JSON cannot carry these; JSON.stringify writes null.
        out.push_str("null");
        return;
    }
    if f < 0.0 {
        out.push('-');
    }
    // `{:e}` gives the shortest round-tripping digits: "d[.ddd]e[-]x".
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let k = digits.len() as i32;
    let n = exp.parse::<i32>().unwrap_or(0) + 1;
    if k <= n && n <= 21 {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', (n - k) as usize));
    } else if 0 < n && n <= 21 {
        out.push_str(&digits[..n as usize]);
        out.push('.');
        out.push_str(&digits[n as usize..]);
    } else if -6 < n && n <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-n) as usize));
        out.push_str(&digits);
    } else {
        out.push_str(&digits[..1]);
        if k > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if n > 0 { '+' } else { '-' });
        out.push_str(&(n - 1).abs().to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn num(f: f64) -> String {
        let mut s = String::new();
        write_f64(f, &mut s);
        s
    }

    #[test]
    fn numbers_follow_ecmascript() {
        // Expected strings are what `String(x)` prints in a JavaScript engine.
        let cases = [
            (1.0, "1"),
            (1.5, "1.5"),
            (-0.5, "-0.5"),
            (123_456_789.0, "123456789"),
            (1e20, "100000000000000000000"),
            (1e21, "1e+21"),
            (1.234e22, "1.234e+22"),
            (0.000001, "0.000001"),
            (0.0000001, "1e-7"),
            (1.5e-7, "1.5e-7"),
            (0.1 + 0.2, "0.30000000000000004"),
            (f64::MAX, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (-0.0, "0"),
        ];
        for (value, expected) in cases {
            assert_eq!(num(value), expected, "{value:e}");
        }
    }

    #[test]
    fn large_integers_become_the_nearest_double() {
        assert_eq!(
            to_string(&json!(9_007_199_254_740_992u64)),
            "9007199254740992"
        );
        assert_eq!(
            to_string(&json!(9_007_199_254_740_993u64)),
            "9007199254740992"
        );
        assert_eq!(
            to_string(&json!(-9_007_199_254_740_993i64)),
            "-9007199254740992"
        );
        assert_eq!(to_string(&json!(u64::MAX)), "18446744073709552000");
        assert_eq!(to_string(&json!(42)), "42");
    }

    #[test]
    fn sorts_keys_by_utf16_code_units() {
        // U+1F600 is the surrogate pair D83D DE00 in UTF-16, which sorts
        // before U+FB01; by code point it would sort after. JCS uses UTF-16.
        let value = json!({"\u{FB01}": 2, "\u{1F600}": 1, "B": 3, "a": 4});
        assert_eq!(
            to_string(&value),
            "{\"B\":3,\"a\":4,\"\u{1F600}\":1,\"\u{FB01}\":2}"
        );
    }

    #[test]
    fn escapes_like_json_stringify() {
        let value = json!("q\"b\\ \u{1} \u{7f} \n\t <>&/ é");
        assert_eq!(
            to_string(&value),
            "\"q\\\"b\\\\ \\u0001 \u{7f} \\n\\t <>&/ é\""
        );
    }
}
