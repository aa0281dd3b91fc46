//! AMF0, the encoding of RTMP's commands (`connect`, `publish`, ...) and
//! of our answers: the types publishers send (numbers, booleans, strings,
//! objects, ECMA and strict arrays, null, undefined, dates), decoded with
//! a bound on nesting and on the number of values, so a crafted command
//! costs no more than its own bytes.

use std::fmt;

/// Objects and arrays nested deeper than this are refused.
const MAX_DEPTH: usize = 16;
/// Values in one message at most (each costs at least one byte, so the
/// message size bounds this too; the limit keeps allocation small).
const MAX_VALUES: usize = 4096;

/// One AMF0 value.
#[derive(Debug, Clone, PartialEq)]
pub enum Amf {
    Number(f64),
    Boolean(bool),
    String(String),
    /// An object or ECMA array: its properties, in order.
    Object(Vec<(String, Amf)>),
    Array(Vec<Amf>),
    Null,
    Undefined,
}

/// Why a command does not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmfError(pub &'static str);

impl fmt::Display for AmfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed AMF0: {}", self.0)
    }
}

impl Amf {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Amf::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_number(&self) -> Option<f64> {
        match self {
            Amf::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// A property of an object.
    pub fn get(&self, name: &str) -> Option<&Amf> {
        match self {
            Amf::Object(props) => props.iter().find(|(k, _)| k == name).map(|(_, v)| v),
            _ => None,
        }
    }

    /// An object from `(name, value)` pairs.
    pub fn object<const N: usize>(props: [(&str, Amf); N]) -> Amf {
        Amf::Object(props.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }

    pub fn string(s: &str) -> Amf {
        Amf::String(s.to_string())
    }
}

/// Decodes every value of `data` (a command message's body).
pub fn decode_all(mut data: &[u8]) -> Result<Vec<Amf>, AmfError> {
    let mut values = Vec::new();
    let mut budget = MAX_VALUES;
    while !data.is_empty() {
        values.push(decode(&mut data, 0, &mut budget)?);
    }
    Ok(values)
}

fn take<'a>(data: &mut &'a [u8], n: usize) -> Result<&'a [u8], AmfError> {
    if data.len() < n {
        return Err(AmfError("truncated"));
    }
    let (head, rest) = data.split_at(n);
    *data = rest;
    Ok(head)
}

fn u16_at(data: &mut &[u8]) -> Result<usize, AmfError> {
    let b = take(data, 2)?;
    Ok(usize::from(u16::from_be_bytes([b[0], b[1]])))
}

fn u32_at(data: &mut &[u8]) -> Result<usize, AmfError> {
    let b = take(data, 4)?;
    Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
}

fn utf8(data: &mut &[u8], len: usize) -> Result<String, AmfError> {
    let bytes = take(data, len)?;
    Ok(String::from_utf8_lossy(bytes).into_owned())
}

/// Properties up to the object-end marker (an empty name, then 0x09).
fn properties(
    data: &mut &[u8],
    depth: usize,
    budget: &mut usize,
) -> Result<Vec<(String, Amf)>, AmfError> {
    let mut props = Vec::new();
    loop {
        let len = u16_at(data)?;
        if len == 0 {
            if take(data, 1)? != [0x09] {
                return Err(AmfError("an object without its end marker"));
            }
            return Ok(props);
        }
        let name = utf8(data, len)?;
        props.push((name, decode(data, depth + 1, budget)?));
    }
}

fn decode(data: &mut &[u8], depth: usize, budget: &mut usize) -> Result<Amf, AmfError> {
    if depth > MAX_DEPTH {
        return Err(AmfError("nested too deep"));
    }
    if *budget == 0 {
        return Err(AmfError("too many values"));
    }
    *budget -= 1;
    let marker = take(data, 1)?[0];
    Ok(match marker {
        0x00 => {
            let b = take(data, 8)?;
            Amf::Number(f64::from_be_bytes(b.try_into().expect("8 bytes")))
        }
        0x01 => Amf::Boolean(take(data, 1)?[0] != 0),
        0x02 => {
            let len = u16_at(data)?;
            Amf::String(utf8(data, len)?)
        }
        0x03 => Amf::Object(properties(data, depth, budget)?),
        0x05 => Amf::Null,
        0x06 => Amf::Undefined,
        0x08 => {
            // ECMA array: a count (not to be trusted), then properties.
            take(data, 4)?;
            Amf::Object(properties(data, depth, budget)?)
        }
        0x0a => {
            let count = u32_at(data)?;
            if count > data.len() {
                return Err(AmfError("an array longer than its message"));
            }
            let mut items = Vec::with_capacity(count);
            for _ in 0..count {
                items.push(decode(data, depth + 1, budget)?);
            }
            Amf::Array(items)
        }
        0x0b => {
            // Date: milliseconds, then a time zone that is ignored.
            let b = take(data, 10)?;
            Amf::Number(f64::from_be_bytes(b[..8].try_into().expect("8 bytes")))
        }
        0x0c => {
            let len = u32_at(data)?;
            Amf::String(utf8(data, len)?)
        }
        _ => return Err(AmfError("an unsupported type marker")),
    })
}

/// Appends `value` to `out`.
pub fn encode(value: &Amf, out: &mut Vec<u8>) {
    match value {
        Amf::Number(n) => {
            out.push(0x00);
            out.extend_from_slice(&n.to_be_bytes());
        }
        Amf::Boolean(b) => out.extend_from_slice(&[0x01, u8::from(*b)]),
        Amf::String(s) => {
            // Strings we send are short; a long one is cut at 64 KB.
            let bytes = &s.as_bytes()[..s.len().min(usize::from(u16::MAX))];
            out.push(0x02);
            out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
            out.extend_from_slice(bytes);
        }
        Amf::Object(props) => {
            out.push(0x03);
            for (name, value) in props {
                out.extend_from_slice(&(name.len() as u16).to_be_bytes());
                out.extend_from_slice(name.as_bytes());
                encode(value, out);
            }
            out.extend_from_slice(&[0, 0, 0x09]);
        }
        Amf::Array(items) => {
            out.push(0x0a);
            out.extend_from_slice(&(items.len() as u32).to_be_bytes());
            for item in items {
                encode(item, out);
            }
        }
        Amf::Null => out.push(0x05),
        Amf::Undefined => out.push(0x06),
    }
}

/// The encoding of `values`, one after the other.
pub fn encode_all(values: &[Amf]) -> Vec<u8> {
    let mut out = Vec::new();
    for value in values {
        encode(value, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connect_command_round_trips() {
        let values = vec![
            Amf::string("connect"),
            Amf::Number(1.0),
            Amf::object([
                ("app", Amf::string("live")),
                ("fpad", Amf::Boolean(false)),
                ("fourCcList", Amf::Array(vec![Amf::string("hvc1")])),
                ("nothing", Amf::Null),
            ]),
            Amf::Undefined,
        ];
        let bytes = encode_all(&values);
        assert_eq!(decode_all(&bytes).unwrap(), values);
        assert_eq!(values[2].get("app").and_then(Amf::as_str), Some("live"));
    }

    #[test]
    fn ecma_arrays_dates_and_long_strings_decode() {
        let mut bytes = vec![0x08, 0, 0, 0, 9]; // a count that lies
        bytes.extend_from_slice(&[0, 1, b'w', 0x00]);
        bytes.extend_from_slice(&640f64.to_be_bytes());
        bytes.extend_from_slice(&[0, 0, 0x09]);
        bytes.push(0x0b);
        bytes.extend_from_slice(&5f64.to_be_bytes());
        bytes.extend_from_slice(&[0, 0]);
        bytes.extend_from_slice(&[0x0c, 0, 0, 0, 2, b'h', b'i']);
        let values = decode_all(&bytes).unwrap();
        assert_eq!(values[0].get("w"), Some(&Amf::Number(640.0)));
        assert_eq!(values[1], Amf::Number(5.0));
        assert_eq!(values[2], Amf::string("hi"));
    }

    #[test]
    fn crafted_input_is_refused_cheaply() {
        // Truncated in a string, in a number, and an object never closed.
        assert!(decode_all(&[0x02, 0, 10, b'a']).is_err());
        assert!(decode_all(&[0x00, 1, 2]).is_err());
        assert!(decode_all(&[0x03, 0, 1, b'a', 0x05]).is_err());
        // A strict array that claims 4 billion items allocates nothing.
        assert!(decode_all(&[0x0a, 0xff, 0xff, 0xff, 0xff, 0x05]).is_err());
        // Nesting past the limit.
        let mut deep = Vec::new();
        for _ in 0..100 {
            deep.extend_from_slice(&[0x0a, 0, 0, 0, 1]);
        }
        deep.push(0x05);
        assert_eq!(decode_all(&deep), Err(AmfError("nested too deep")));
        // AMF3-only and unknown markers.
        assert!(decode_all(&[0x11]).is_err());
        assert!(decode_all(&[0x0d]).is_err());
    }
}
