//! What a sequence parameter set says about the pictures: their size
//! (after cropping), chroma format and bit depth, read from H.264 and
//! H.265 SPS NAL units with an exp-Golomb bit reader. Only the fields up to
//! those are read.

use super::nal::rbsp;

/// The pictures an SPS describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PictureFormat {
    pub width: u32,
    pub height: u32,
    /// 0: monochrome, 1: 4:2:0, 2: 4:2:2, 3: 4:4:4.
    pub chroma_format: u32,
    pub bit_depth_luma: u32,
    pub bit_depth_chroma: u32,
}

impl PictureFormat {
    /// The chroma format as GStreamer caps spell it.
    pub fn chroma_name(&self) -> &'static str {
        match self.chroma_format {
            0 => "4:0:0",
            2 => "4:2:2",
            3 => "4:4:4",
            _ => "4:2:0",
        }
    }
}

/// Reads bits, most significant first, from an RBSP.
struct Bits<'a> {
    data: &'a [u8],
    at: usize,
}

impl Bits<'_> {
    fn bit(&mut self) -> Option<u32> {
        let byte = *self.data.get(self.at / 8)?;
        let bit = (byte >> (7 - self.at % 8)) & 1;
        self.at += 1;
        Some(u32::from(bit))
    }

    fn bits(&mut self, n: u32) -> Option<u32> {
        (0..n).try_fold(0u32, |v, _| Some((v << 1) | self.bit()?))
    }

    fn skip(&mut self, n: usize) -> Option<()> {
        self.at += n;
        (self.at <= self.data.len() * 8).then_some(())
    }

    /// Unsigned exp-Golomb.
    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        Some((1u32 << zeros) - 1 + self.bits(zeros)?)
    }

    /// Signed exp-Golomb.
    fn se(&mut self) -> Option<i32> {
        let v = self.ue()?;
        Some(if v % 2 == 1 {
            v.div_ceil(2) as i32
        } else {
            -((v / 2) as i32)
        })
    }
}

/// Profiles whose SPS carries chroma format and bit depth.
const HIGH_PROFILES: [u32; 12] = [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134];

/// The picture format of an H.264 SPS NAL unit (with its header byte).
pub fn h264(sps: &[u8]) -> Option<PictureFormat> {
    let data = rbsp(sps, 1, 256);
    let mut b = Bits { data: &data, at: 0 };
    let profile = b.bits(8)?;
    b.skip(16)?; // constraint flags, level
    b.ue()?; // seq_parameter_set_id
    let (mut chroma_format, mut depth_luma, mut depth_chroma) = (1, 8, 8);
    if HIGH_PROFILES.contains(&profile) || profile == 135 {
        chroma_format = b.ue()?;
        if chroma_format == 3 {
            b.skip(1)?; // separate_colour_plane_flag
        }
        depth_luma = b.ue()? + 8;
        depth_chroma = b.ue()? + 8;
        b.skip(1)?; // qpprime_y_zero_transform_bypass_flag
        if b.bit()? == 1 {
            let lists = if chroma_format == 3 { 12 } else { 8 };
            for i in 0..lists {
                if b.bit()? == 1 {
                    skip_scaling_list(&mut b, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    b.ue()?; // log2_max_frame_num_minus4
    match b.ue()? {
        0 => {
            b.ue()?; // log2_max_pic_order_cnt_lsb_minus4
        }
        1 => {
            b.skip(1)?;
            b.se()?;
            b.se()?;
            for _ in 0..b.ue()? {
                b.se()?;
            }
        }
        _ => {}
    }
    b.ue()?; // max_num_ref_frames
    b.skip(1)?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = b.ue()? + 1;
    let height_units = b.ue()? + 1;
    let frame_mbs_only = b.bit()?;
    if frame_mbs_only == 0 {
        b.skip(1)?; // mb_adaptive_frame_field_flag
    }
    b.skip(1)?; // direct_8x8_inference_flag
    let (mut left, mut right, mut top, mut bottom) = (0, 0, 0, 0);
    if b.bit()? == 1 {
        (left, right, top, bottom) = (b.ue()?, b.ue()?, b.ue()?, b.ue()?);
    }
    let field_factor = 2 - frame_mbs_only;
    let (crop_x, crop_y) = match chroma_format {
        0 | 3 => (1, field_factor),
        1 => (2, 2 * field_factor),
        _ => (2, field_factor),
    };
    let width = (width_mbs * 16).checked_sub(crop_x * (left + right))?;
    let height = (field_factor * height_units * 16).checked_sub(crop_y * (top + bottom))?;
    Some(PictureFormat {
        width,
        height,
        chroma_format,
        bit_depth_luma: depth_luma,
        bit_depth_chroma: depth_chroma,
    })
}

fn skip_scaling_list(b: &mut Bits, size: usize) -> Option<()> {
    let (mut last, mut next) = (8i32, 8i32);
    for _ in 0..size {
        if next != 0 {
            next = (last + b.se()? + 256) % 256;
        }
        if next != 0 {
            last = next;
        }
    }
    Some(())
}

/// The picture format of an H.265 SPS NAL unit (with its 2-byte header).
pub fn h265(sps: &[u8]) -> Option<PictureFormat> {
    let data = rbsp(sps, 2, 512);
    let mut b = Bits { data: &data, at: 0 };
    b.skip(4)?; // sps_video_parameter_set_id
    let sub_layers = b.bits(3)?;
    b.skip(1)?; // sps_temporal_id_nesting_flag
                // profile_tier_level: the general profile and level (96 bits) ...
    b.skip(96)?;
    // ... then which sub-layers carry their own, and those.
    let mut present = Vec::new();
    for _ in 0..sub_layers {
        present.push((b.bit()?, b.bit()?));
    }
    if sub_layers > 0 {
        b.skip(2 * (8 - sub_layers as usize))?;
    }
    for (profile, level) in present {
        b.skip(88 * profile as usize + 8 * level as usize)?;
    }
    b.ue()?; // sps_seq_parameter_set_id
    let chroma_format = b.ue()?;
    if chroma_format == 3 {
        b.skip(1)?; // separate_colour_plane_flag
    }
    let width = b.ue()?;
    let height = b.ue()?;
    let (sub_w, sub_h) = match chroma_format {
        1 => (2, 2),
        2 => (2, 1),
        _ => (1, 1),
    };
    let (mut left, mut right, mut top, mut bottom) = (0, 0, 0, 0);
    if b.bit()? == 1 {
        (left, right, top, bottom) = (b.ue()?, b.ue()?, b.ue()?, b.ue()?);
    }
    let depth_luma = b.ue()? + 8;
    let depth_chroma = b.ue()? + 8;
    Some(PictureFormat {
        width: width.checked_sub(sub_w * (left + right))?,
        height: height.checked_sub(sub_h * (top + bottom))?,
        chroma_format,
        bit_depth_luma: depth_luma,
        bit_depth_chroma: depth_chroma,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_h264_high_profile_sps_with_cropping() {
        // x264, 1920x1080 High: 1088 coded rows cropped to 1080.
        let sps = [
            0x67, 0x64, 0x00, 0x28, 0xac, 0xd9, 0x40, 0x78, 0x02, 0x27, 0xe5, 0xc0, 0x44, 0x00,
            0x00, 0x03, 0x00, 0x04, 0x00, 0x00, 0x03, 0x00, 0xf0, 0x3c, 0x60, 0xc6, 0x58,
        ];
        let f = h264(&sps).unwrap();
        assert_eq!((f.width, f.height), (1920, 1080));
        assert_eq!((f.chroma_format, f.bit_depth_luma), (1, 8));
    }

    #[test]
    fn reads_an_h264_baseline_sps() {
        // x264, 640x360 Constrained Baseline (368 coded rows).
        let sps = [
            0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03,
            0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x0f, 0x16, 0x2e, 0x48,
        ];
        let f = h264(&sps).unwrap();
        assert_eq!((f.width, f.height), (640, 360));
    }

    #[test]
    fn reads_an_h264_422_sps() {
        // x264, 1280x720 High 4:2:2.
        let sps = [
            0x67, 0x7a, 0x00, 0x1f, 0xbc, 0xd9, 0x40, 0x50, 0x05, 0xbb, 0x01, 0x10, 0x00, 0x00,
            0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x83, 0x19, 0x60,
        ];
        let f = h264(&sps).unwrap();
        assert_eq!((f.width, f.height, f.chroma_format), (1280, 720, 2));
        assert_eq!(f.chroma_name(), "4:2:2");
    }

    #[test]
    fn reads_an_h265_sps() {
        // x265, 640x360 Main (368 coded rows, a conformance window).
        let sps = [
            0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00,
            0x00, 0x03, 0x00, 0x3f, 0xa0, 0x05, 0x02, 0x01, 0x69, 0x65, 0x95, 0x9a, 0x49, 0x32,
            0xbc, 0x05, 0xa0, 0x20, 0x00, 0x00, 0x03, 0x00, 0x20, 0x00, 0x00, 0x03, 0x03, 0xc1,
        ];
        let f = h265(&sps).unwrap();
        assert_eq!((f.width, f.height), (640, 360));
        assert_eq!(
            (f.chroma_format, f.bit_depth_luma, f.bit_depth_chroma),
            (1, 8, 8)
        );
    }

    #[test]
    fn garbage_is_none_not_a_panic() {
        assert_eq!(h264(&[0x67]), None);
        assert_eq!(h265(&[0x42, 0x01, 0xff]), None);
        // Any bytes at all: an answer or none, never a panic.
        let mut seed = 12345u32;
        for len in 0..200 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (seed >> 16) as u8
                })
                .collect();
            let _ = h264(&bytes);
            let _ = h265(&bytes);
        }
    }
}
