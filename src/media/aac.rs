//! AAC framing: ADTS headers in front of frames as MPEG-TS carries them.

/// The header length of an ADTS-framed AAC frame (7, or 9 with a CRC);
/// `None` when `frame` is not ADTS (raw AAC).
pub fn adts_header_len(frame: &[u8]) -> Option<usize> {
    let adts = frame.len() >= 7 && frame[0] == 0xff && frame[1] & 0xf6 == 0xf0;
    adts.then_some(if frame[1] & 1 == 0 { 9 } else { 7 })
}

/// AAC sample rates by their 4-bit index (ADTS, AudioSpecificConfig).
pub const RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// What an ADTS header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdtsHeader {
    /// The audio object type (2: AAC LC).
    pub object: u8,
    pub rate_index: u8,
    pub channels: u8,
    /// The frame's length, header included.
    pub frame_len: usize,
}

impl AdtsHeader {
    /// The header at the start of `frame`, if it is ADTS.
    pub fn parse(frame: &[u8]) -> Option<AdtsHeader> {
        adts_header_len(frame)?;
        let h = frame;
        Some(AdtsHeader {
            object: (h[2] >> 6) + 1,
            rate_index: (h[2] >> 2) & 0xf,
            channels: ((h[2] & 1) << 2) | (h[3] >> 6),
            frame_len: (usize::from(h[3] & 3) << 11)
                | (usize::from(h[4]) << 3)
                | usize::from(h[5] >> 5),
        })
    }

    /// The sample rate, if the index is a known one.
    pub fn rate(&self) -> Option<u32> {
        RATES.get(usize::from(self.rate_index)).copied()
    }
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
        // LC, 48 kHz, stereo, 17 bytes.
        let h = AdtsHeader::parse(&[0xff, 0xf1, 0x4c, 0x80, 0x02, 0x3f, 0xfc]).unwrap();
        assert_eq!(
            (h.object, h.rate(), h.channels, h.frame_len),
            (2, Some(48_000), 2, 17)
        );
    }
}
