//! Decoded pictures in the colours a JPEG holds. JPEG (JFIF) stores
//! full-range BT.601 YCbCr; decoders give YCbCr in the source's range
//! (limited, almost always) and matrix (BT.709 for HD). Fed RGB, GStreamer's
//! JPEG encoder writes an RGB JPEG: after a conversion to RGB (4.6 ms for
//! 1080p here), three full-size components to encode (10.3 ms) and 1.8×
//! the bytes of the usual YCbCr 4:2:0 JPEG, which takes it 3.3 ms from
//! the decoder's planes. So the encoder is fed 4:2:0 planes, and
//! [`convert_before`] maps their values on the way in: each luma sample
//! from itself and its 2×2 block's chroma (a matrix change moves luma by
//! chroma), each chroma sample from the two chroma values, in integer
//! arithmetic: 0.7 ms for 1080p with AVX2 (chosen at run time), 2.1 ms
//! without. The chroma stays the source's, as 4:2:0 as it was.

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_video as gst_video;
use gstreamer_video::prelude::*;

use crate::media::{MediaError, MediaResult};

/// Fixed-point fraction bits of [`Conversion`]'s factors.
const SHIFT: u32 = 16;
const HALF: i32 = 1 << (SHIFT - 1);

/// Zeros after a picture: the encoder reads its last row in whole blocks
/// (8 chroma samples), past the picture's end when its width is not a
/// multiple of 16; what it reads there must not change the image.
const TAIL: usize = 64;

/// JFIF's matrix: BT.601 (Kr, Kb).
const JFIF_KR_KB: (f64, f64) = (0.299, 0.114);

/// Makes the I420 pictures reaching `encoder`'s sink pad JFIF's colours:
/// each buffer is replaced by a converted copy (the decoder may still
/// reference the one it gave).
pub(super) fn convert_before(encoder: &gst::Element) -> MediaResult<()> {
    let pad = encoder
        .static_pad("sink")
        .ok_or_else(|| MediaError::pipeline("image encoder without sink pad"))?;
    pad.add_probe(gst::PadProbeType::BUFFER, |pad, info| {
        let Some(gst::PadProbeData::Buffer(buffer)) = &info.data else {
            return gst::PadProbeReturn::Ok;
        };
        let converted = pad
            .current_caps()
            .and_then(|caps| gst_video::VideoInfo::from_caps(&caps).ok())
            .and_then(|video| to_jfif(buffer, &video));
        match converted {
            Some(converted) => {
                info.data = Some(gst::PadProbeData::Buffer(converted));
                gst::PadProbeReturn::Ok
            }
            // Wrong colours are worse than none: the image fails.
            None => {
                tracing::warn!("an image's colours could not be converted for JPEG");
                gst::PadProbeReturn::Drop
            }
        }
    });
    Ok(())
}

/// `input`, I420 as `video` describes it, in JFIF's colours: a new buffer
/// laid out as `video` says, with `input`'s timestamps. `None` when the
/// picture is not I420 or cannot be mapped.
fn to_jfif(input: &gst::Buffer, video: &gst_video::VideoInfo) -> Option<gst::Buffer> {
    if video.format() != gst_video::VideoFormat::I420 {
        return None;
    }
    let conversion = Conversion::of(video.colorimetry());
    let from = gst_video::VideoFrameRef::from_buffer_ref_readable(input.as_ref(), video).ok()?;
    let source = Planes {
        y: from.plane_data(0).ok()?,
        cb: from.plane_data(1).ok()?,
        cr: from.plane_data(2).ok()?,
        strides: strides(from.plane_stride())?,
    };
    let mut output = gst::Buffer::with_size(video.size() + TAIL).ok()?;
    {
        let output = output.get_mut()?;
        input
            .copy_into(
                output,
                gst::BufferCopyFlags::TIMESTAMPS | gst::BufferCopyFlags::FLAGS,
                ..,
            )
            .ok()?;
        // The new buffer has no video meta: its planes are where `video`
        // puts them, then the tail.
        let mut map = output.map_writable().ok()?;
        map[video.size()..].fill(0);
        let offsets = video.offset();
        let (rest, cr) = map.split_at_mut(*offsets.get(2)?);
        let (y, cb) = rest.split_at_mut(*offsets.get(1)?);
        let mut target = Target {
            y,
            cb,
            cr,
            strides: strides(video.stride())?,
        };
        conversion.convert(
            &source,
            (video.width() as usize, video.height() as usize),
            &mut target,
        );
    }
    Some(output)
}

/// The first three strides, as sizes.
fn strides(strides: &[i32]) -> Option<[usize; 3]> {
    let at = |i: usize| usize::try_from(*strides.get(i)?).ok();
    Some([at(0)?, at(1)?, at(2)?])
}

/// Chroma planes' size for a 4:2:0 picture of `size`.
fn chroma_size((width, height): (usize, usize)) -> (usize, usize) {
    (width.div_ceil(2), height.div_ceil(2))
}

/// A 4:2:0 picture's three planes and their strides (bytes per row).
struct Planes<'a> {
    y: &'a [u8],
    cb: &'a [u8],
    cr: &'a [u8],
    strides: [usize; 3],
}

/// The planes a picture is written to.
struct Target<'a> {
    y: &'a mut [u8],
    cb: &'a mut [u8],
    cr: &'a mut [u8],
    strides: [usize; 3],
}

/// One colour space's YCbCr to JFIF's, as fixed-point factors (`SHIFT`
/// fraction bits) on the samples less their black and grey:
/// `Y' = luma·(Y−black) + y_cb·(Cb−128) + y_cr·(Cr−128)`,
/// `Cb' = 128 + cb_cb·(Cb−128) + cb_cr·(Cr−128)`, `Cr'` likewise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Conversion {
    black: i32,
    luma: i32,
    y_cb: i32,
    y_cr: i32,
    cb_cb: i32,
    cb_cr: i32,
    cr_cb: i32,
    cr_cr: i32,
}

impl Conversion {
    /// From `colorimetry`'s range and matrix (unknown: limited range, and
    /// the matrix GStreamer assumed when it filled in the caps).
    fn of(colorimetry: gst_video::VideoColorimetry) -> Self {
        let full = colorimetry.range() == gst_video::VideoColorRange::Range0_255;
        let kr_kb = colorimetry.matrix().kr_kb().unwrap_or(JFIF_KR_KB);
        Self::new(kr_kb, full)
    }

    fn new((kr, kb): (f64, f64), full_range: bool) -> Self {
        // Normalised: y in 0..1, c in -0.5..0.5.
        let (black, luma_span, chroma_span) = if full_range {
            (0.0, 255.0, 255.0)
        } else {
            (16.0, 219.0, 224.0)
        };
        let (jr, jb) = JFIF_KR_KB;
        // JFIF's normalised (y, cb, cr) of the source's (y, cb, cr),
        // through RGB; linear, so its columns are the images of (0,1,0)
        // and (0,0,1) (luma alone maps to itself).
        let jfif_of = |y: f64, cb: f64, cr: f64| {
            let r = y + 2.0 * (1.0 - kr) * cr;
            let b = y + 2.0 * (1.0 - kb) * cb;
            let g = (y - kr * r - kb * b) / (1.0 - kr - kb);
            let jy = jr * r + (1.0 - jr - jb) * g + jb * b;
            (
                jy,
                (b - jy) / (2.0 * (1.0 - jb)),
                (r - jy) / (2.0 * (1.0 - jr)),
            )
        };
        let (y_cb, cb_cb, cr_cb) = jfif_of(0.0, 1.0, 0.0);
        let (y_cr, cb_cr, cr_cr) = jfif_of(0.0, 0.0, 1.0);
        let fixed = |factor: f64| (factor * f64::from(1u32 << SHIFT)).round() as i32;
        // Samples to normalised values, factor, back to full-range samples.
        let to_chroma = 255.0 / chroma_span;
        Self {
            black: black as i32,
            luma: fixed(255.0 / luma_span),
            y_cb: fixed(y_cb * to_chroma),
            y_cr: fixed(y_cr * to_chroma),
            cb_cb: fixed(cb_cb * to_chroma),
            cb_cr: fixed(cb_cr * to_chroma),
            cr_cb: fixed(cr_cb * to_chroma),
            cr_cr: fixed(cr_cr * to_chroma),
        }
    }

    /// Writes `source` (a picture of `width`×`height`) into `target`.
    fn convert(&self, source: &Planes, size: (usize, usize), target: &mut Target) {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the processor has AVX2, checked just above.
            unsafe { self.convert_avx2(source, size, target) };
            return;
        }
        self.convert_rows(source, size, target);
    }

    /// [`Self::convert_rows`] compiled for AVX2 (its loops in 8 lanes of
    /// 32 bits; the baseline has 4 and no 32-bit multiply).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn convert_avx2(&self, source: &Planes, size: (usize, usize), target: &mut Target) {
        self.convert_rows(source, size, target);
    }

    #[inline(always)]
    fn convert_rows(&self, source: &Planes, (width, height): (usize, usize), target: &mut Target) {
        let (cw, ch) = chroma_size((width, height));
        // What each chroma sample adds to the luma of its block, per
        // chroma column and then per luma column.
        let mut added = vec![0i32; cw];
        let mut per_column = vec![0i32; 2 * cw];
        for row in 0..ch {
            self.chroma_row(
                &source.cb[row * source.strides[1]..][..cw],
                &source.cr[row * source.strides[2]..][..cw],
                &mut target.cb[row * target.strides[1]..][..cw],
                &mut target.cr[row * target.strides[2]..][..cw],
                &mut added,
            );
            for (pair, &added) in per_column.chunks_exact_mut(2).zip(&added) {
                pair[0] = added;
                pair[1] = added;
            }
            for luma_row in (2 * row)..(2 * row + 2).min(height) {
                let from = &source.y[luma_row * source.strides[0]..][..width];
                let to = &mut target.y[luma_row * target.strides[0]..][..width];
                self.luma_row(from, &per_column[..width], to);
            }
        }
    }

    /// One row of chroma, and what each sample adds to luma.
    #[inline(always)]
    fn chroma_row(
        &self,
        cb: &[u8],
        cr: &[u8],
        to_cb: &mut [u8],
        to_cr: &mut [u8],
        added: &mut [i32],
    ) {
        let grey = 128 << SHIFT;
        let samples = cb
            .iter()
            .zip(cr)
            .zip(to_cb.iter_mut().zip(to_cr.iter_mut()));
        for (((&cb, &cr), (to_cb, to_cr)), added) in samples.zip(added.iter_mut()) {
            let (cb, cr) = (i32::from(cb) - 128, i32::from(cr) - 128);
            *added = self.y_cb * cb + self.y_cr * cr;
            *to_cb = sample(self.cb_cb * cb + self.cb_cr * cr + grey);
            *to_cr = sample(self.cr_cb * cb + self.cr_cr * cr + grey);
        }
    }

    /// One row of luma.
    #[inline(always)]
    fn luma_row(&self, from: &[u8], from_chroma: &[i32], to: &mut [u8]) {
        let offset = -self.luma * self.black;
        for ((to, &y), &added) in to.iter_mut().zip(from).zip(from_chroma) {
            *to = sample(self.luma * i32::from(y) + offset + added);
        }
    }
}

/// A fixed-point value rounded to a sample, clamped to 0..=255.
#[inline(always)]
fn sample(fixed: i32) -> u8 {
    ((fixed + HALF) >> SHIFT).clamp(0, 255) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(Y, Cb, Cr)` of one pixel through `conversion`.
    fn one(conversion: &Conversion, (y, cb, cr): (u8, u8, u8)) -> (u8, u8, u8) {
        let source = Planes {
            y: &[y],
            cb: &[cb],
            cr: &[cr],
            strides: [1, 1, 1],
        };
        let (mut y, mut cb, mut cr) = ([0u8; 1], [0u8; 1], [0u8; 1]);
        let mut target = Target {
            y: &mut y,
            cb: &mut cb,
            cr: &mut cr,
            strides: [1, 1, 1],
        };
        conversion.convert(&source, (1, 1), &mut target);
        (y[0], cb[0], cr[0])
    }

    #[test]
    fn limited_bt709_becomes_jfif() {
        let bt709 = Conversion::new((0.2126, 0.0722), false);
        // Black, white and grey: range only.
        assert_eq!(one(&bt709, (16, 128, 128)), (0, 128, 128));
        assert_eq!(one(&bt709, (235, 128, 128)), (255, 128, 128));
        assert_eq!(one(&bt709, (126, 128, 128)), (128, 128, 128));
        // Red and green in BT.709 limited range, and in JFIF (Y, Cb, Cr
        // = 76, 85, 255 and 150, 44, 21): luma moves with chroma.
        let close = |a: (u8, u8, u8), b: (u8, u8, u8)| {
            let d = |x: u8, y: u8| (i32::from(x) - i32::from(y)).abs();
            d(a.0, b.0) <= 1 && d(a.1, b.1) <= 1 && d(a.2, b.2) <= 1
        };
        let red = one(&bt709, (63, 102, 240));
        assert!(close(red, (76, 85, 255)), "{red:?}");
        let green = one(&bt709, (173, 42, 26));
        assert!(close(green, (150, 44, 21)), "{green:?}");
    }

    /// Time per 1080p picture (`cargo test --release -- --ignored
    /// --nocapture cost_of_converting`).
    #[test]
    #[ignore]
    fn cost_of_converting_a_1080p_picture() {
        let (width, height) = (1920, 1080);
        let y: Vec<u8> = (0..width * height)
            .map(|i| (i * 7 % 220 + 16) as u8)
            .collect();
        let cb: Vec<u8> = (0..width * height / 4)
            .map(|i| (i * 3 % 224 + 16) as u8)
            .collect();
        let cr: Vec<u8> = (0..width * height / 4)
            .map(|i| (i * 5 % 224 + 16) as u8)
            .collect();
        let source = Planes {
            y: &y,
            cb: &cb,
            cr: &cr,
            strides: [width, width / 2, width / 2],
        };
        let (mut to_y, mut to_cb, mut to_cr) = (y.clone(), cb.clone(), cr.clone());
        let mut target = Target {
            y: &mut to_y,
            cb: &mut to_cb,
            cr: &mut to_cr,
            strides: [width, width / 2, width / 2],
        };
        let bt709 = Conversion::new((0.2126, 0.0722), false);
        const N: u32 = 200;
        let started = std::time::Instant::now();
        for _ in 0..N {
            bt709.convert(&source, (width, height), &mut target);
        }
        println!(
            "{:.3} ms per 1080p picture",
            started.elapsed().as_secs_f64() * 1000.0 / f64::from(N)
        );
    }

    #[test]
    fn jfif_is_left_as_it_is() {
        let jfif = Conversion::new(JFIF_KR_KB, true);
        for pixel in [(0, 128, 128), (76, 85, 255), (150, 44, 21), (29, 255, 107)] {
            assert_eq!(one(&jfif, pixel), pixel);
        }
    }

    #[test]
    fn chroma_is_shared_by_its_two_by_two_block_and_odd_edges_are_kept() {
        // 3×3 luma, 2×2 chroma: the last column and row have a block of
        // their own.
        let bt601 = Conversion::new(JFIF_KR_KB, false);
        let y = [16u8, 126, 235, 16, 126, 235, 235, 235, 16];
        let (cb, cr) = ([128u8, 128, 128, 128], [128u8, 128, 128, 128]);
        let source = Planes {
            y: &y,
            cb: &cb,
            cr: &cr,
            strides: [3, 2, 2],
        };
        let (mut luma, mut to_cb, mut to_cr) = ([9u8; 9], [9u8; 4], [9u8; 4]);
        let mut target = Target {
            y: &mut luma,
            cb: &mut to_cb,
            cr: &mut to_cr,
            strides: [3, 2, 2],
        };
        bt601.convert(&source, (3, 3), &mut target);
        assert_eq!(luma, [0, 128, 255, 0, 128, 255, 255, 255, 0]);
        assert_eq!((to_cb, to_cr), ([128; 4], [128; 4]));
    }
}
