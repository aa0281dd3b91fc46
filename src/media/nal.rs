//! H.264 and H.265 Annex-B access units: their NAL units, found by start
//! code, and their types.

use super::Codec;

/// The NAL units of an Annex-B access unit (start codes removed). Start
/// codes are found with a vectorised search (a slice is most of a frame
/// and holds none), lazily and without allocating: every MP4 sample
/// walks its NAL units.
pub fn nals(data: &[u8]) -> Nals<'_> {
    let mut starts = nal_starts(data);
    let next_start = starts.next();
    Nals {
        data,
        starts,
        next_start,
    }
}

/// Where each NAL unit of an Annex-B access unit begins (just past its
/// start code), found as they are asked for: a caller that stops early
/// does not search the rest.
pub fn nal_starts(data: &[u8]) -> NalStarts<'_> {
    fn past_start_code(at: usize) -> usize {
        at + 3
    }
    memchr::memmem::find_iter(data, &[0, 0, 1]).map(past_start_code as fn(usize) -> usize)
}

/// The iterator of [`nal_starts`].
pub type NalStarts<'a> = std::iter::Map<memchr::memmem::FindIter<'a, 'static>, fn(usize) -> usize>;

/// The NAL unit that begins at `start` and ends where the start code of
/// the one beginning at `next` does (with its optional leading zero
/// byte; zeros before a start code belong to no NAL unit), or at the end.
pub fn nal_at(data: &[u8], start: usize, next: Option<usize>) -> &[u8] {
    let Some(next) = next else {
        return &data[start..];
    };
    let mut end = next - 3;
    while end > start && data[end - 1] == 0 {
        end -= 1;
    }
    &data[start..end]
}

/// The iterator of [`nals`].
pub struct Nals<'a> {
    data: &'a [u8],
    starts: NalStarts<'a>,
    /// Where the next NAL unit begins, after its start code.
    next_start: Option<usize>,
}

impl<'a> Iterator for Nals<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            let start = self.next_start?;
            self.next_start = self.starts.next();
            let nal = nal_at(self.data, start, self.next_start);
            if !nal.is_empty() {
                return Some(nal);
            }
        }
    }
}

/// The type of an H.264 NAL unit.
pub fn h264_nal_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |b| b & 0x1f)
}

/// The type of an H.265 NAL unit.
pub fn h265_nal_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |b| (b >> 1) & 0x3f)
}

/// H.265 NAL unit types of parameter sets and delimiters.
pub const H265_VPS: u8 = 32;
pub const H265_SPS: u8 = 33;
pub const H265_PPS: u8 = 34;
pub const H265_AUD: u8 = 35;

/// The NAL units of a `codec` access unit that go into an MP4 sample:
/// not parameter sets (they are in the sample entry) or delimiters.
pub fn sample_nals(codec: Codec, data: &[u8]) -> impl Iterator<Item = &[u8]> {
    nals(data).filter(move |n| match codec {
        Codec::H265 => !matches!(h265_nal_type(n), H265_VPS..=H265_AUD),
        _ => !matches!(h264_nal_type(n), 7..=9),
    })
}

/// The length of `data` without its trailing zero bytes: an encoder's
/// `trailing_zero_8bits` padding after the last NAL unit (a NAL unit never
/// ends with a zero byte).
pub fn len_without_trailing_zeros(data: &[u8]) -> usize {
    data.iter()
        .rposition(|&b| b != 0)
        .map_or(0, |last| last + 1)
}

/// The RBSP of a NAL unit's payload (after its `header` bytes), with the
/// emulation prevention bytes (`00 00 03`) removed; at most `limit` bytes.
pub fn rbsp(nal: &[u8], header: usize, limit: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(limit.min(nal.len()));
    let mut zeros = 0;
    for &b in nal.iter().skip(header) {
        if out.len() == limit {
            break;
        }
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_emulation_prevention() {
        assert_eq!(
            rbsp(&[0x42, 0x01, 0, 0, 3, 1, 0, 0, 3, 0], 2, 10),
            vec![0, 0, 1, 0, 0, 0]
        );
        assert_eq!(rbsp(&[0x42, 0x01, 9, 8, 7], 2, 2), vec![9, 8]);
    }

    #[test]
    fn keeps_only_slice_data_in_samples() {
        // H.265: AUD (35), VPS (32), then an IDR slice (19).
        let au = [
            0, 0, 0, 1, 0x46, 1, 0x10, 0, 0, 1, 0x40, 1, 9, 0, 0, 1, 0x26, 1, 0xaa,
        ];
        let kept: Vec<&[u8]> = sample_nals(Codec::H265, &au).collect();
        assert_eq!(kept, vec![&[0x26, 1, 0xaa][..]]);
        assert_eq!(h265_nal_type(&[0x26, 1]), 19);
    }
}
