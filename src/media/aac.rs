//! AAC framing: ADTS headers in front of frames as MPEG-TS carries them.

/// The header length of an ADTS-framed AAC frame (7, or 9 with a CRC);
/// `None` when `frame` is not ADTS (raw AAC).
pub fn adts_header_len(frame: &[u8]) -> Option<usize> {
    let adts = frame.len() >= 7 && frame[0] == 0xff && frame[1] & 0xf6 == 0xf0;
    adts.then_some(if frame[1] & 1 == 0 { 9 } else { 7 })
}

/// An ADTS frame's payload (the raw AAC frame); raw frames as they are.
pub fn raw_aac(frame: &[u8]) -> &[u8] {
    match adts_header_len(frame) {
        Some(header) => &frame[header.min(frame.len())..],
        None => frame,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adts_headers() {
        // Protection absent: 7 bytes; present: 9.
        assert_eq!(
            adts_header_len(&[0xff, 0xf1, 0x50, 0x80, 0, 0x1f, 0xfc]),
            Some(7)
        );
        assert_eq!(
            adts_header_len(&[0xff, 0xf0, 0x50, 0x80, 0, 0x1f, 0xfc, 0, 0]),
            Some(9)
        );
        assert_eq!(adts_header_len(&[0x21, 0x10, 0, 0, 0, 0, 0]), None);
        assert_eq!(
            raw_aac(&[0xff, 0xf1, 0x50, 0x80, 0, 0x1f, 0xfc, 0xaa]),
            &[0xaa]
        );
        assert_eq!(raw_aac(&[0x21, 0x10]), &[0x21, 0x10]);
    }
}
