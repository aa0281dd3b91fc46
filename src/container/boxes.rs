//! ISO-BMFF (MP4) box writing shared by the MP4 and fragmented MP4
//! writers: a byte buffer that appends boxes with their sizes filled in,
//! and the boxes both file kinds hold in the same form (`ftyp`, `tkhd`,
//! `mdhd` + `hdlr`, `dinf`, MPEG-4 descriptors).

/// Box writer: `bx(kind, |b| ...)` appends a box with its size filled in.
#[derive(Default)]
pub(crate) struct Boxes(pub Vec<u8>);

impl Boxes {
    pub fn bx(&mut self, kind: &[u8; 4], body: impl FnOnce(&mut Boxes)) {
        let at = self.0.len();
        self.0.extend_from_slice(&[0; 4]);
        self.0.extend_from_slice(kind);
        body(self);
        let size = (self.0.len() - at) as u32;
        self.0[at..at + 4].copy_from_slice(&size.to_be_bytes());
    }
    /// A full box: version and flags first.
    pub fn full(&mut self, kind: &[u8; 4], version: u8, flags: u32, body: impl FnOnce(&mut Boxes)) {
        self.bx(kind, |b| {
            b.u32((u32::from(version) << 24) | flags);
            body(b);
        });
    }
    pub fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    pub fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    pub fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    pub fn bytes(&mut self, v: &[u8]) {
        self.0.extend_from_slice(v);
    }
    pub fn zeros(&mut self, n: usize) {
        self.0.resize(self.0.len() + n, 0);
    }
    /// Where the next byte goes.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// Overwrites the 4 bytes at `at` (a field whose value is known late).
    pub fn patch_u32(&mut self, at: usize, v: u32) {
        self.0[at..at + 4].copy_from_slice(&v.to_be_bytes());
    }
    /// The unity matrix of mvhd and tkhd.
    pub fn matrix(&mut self) {
        for v in [0x0001_0000u32, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] {
            self.u32(v);
        }
    }
}

/// `ftyp` with `major` as the major brand and `brands` as compatible ones.
pub(crate) fn ftyp(b: &mut Boxes, major: &[u8; 4], brands: &[&[u8; 4]]) {
    b.bx(b"ftyp", |b| {
        b.bytes(major);
        b.u32(0x200);
        for brand in brands {
            b.bytes(*brand);
        }
    });
}

/// `mvhd` (version 1) in a 1 ms movie time scale.
pub(crate) fn mvhd(b: &mut Boxes, timescale: u32, duration: u64, next_track_id: u32) {
    b.full(b"mvhd", 1, 0, |b| {
        b.u64(0);
        b.u64(0);
        b.u32(timescale);
        b.u64(duration);
        b.u32(0x0001_0000);
        b.u16(0x0100);
        b.zeros(10);
        b.matrix();
        b.zeros(24);
        b.u32(next_track_id);
    });
}

/// `tkhd` (version 1, enabled and in the movie).
pub(crate) fn tkhd(b: &mut Boxes, id: u32, duration: u64, audio: bool, size: (u32, u32)) {
    b.full(b"tkhd", 1, 3, |b| {
        b.u64(0);
        b.u64(0);
        b.u32(id);
        b.u32(0);
        b.u64(duration);
        b.zeros(8);
        b.u16(0);
        b.u16(if audio { 1 } else { 0 });
        b.u16(if audio { 0x0100 } else { 0 });
        b.u16(0);
        b.matrix();
        b.u32(size.0 << 16);
        b.u32(size.1 << 16);
    });
}

/// `mdhd` (version 1, language "und") and `hdlr` of a track.
pub(crate) fn mdhd_hdlr(b: &mut Boxes, scale: u32, duration: u64, handler: &[u8; 4], name: &str) {
    b.full(b"mdhd", 1, 0, |b| {
        b.u64(0);
        b.u64(0);
        b.u32(scale);
        b.u64(duration);
        b.u16(0x55c4); // "und"
        b.u16(0);
    });
    b.full(b"hdlr", 0, 0, |b| {
        b.u32(0);
        b.bytes(handler);
        b.zeros(12);
        b.bytes(name.as_bytes());
        b.u8(0);
    });
}

/// `dinf` with one self-contained data reference.
pub(crate) fn dinf(b: &mut Boxes) {
    b.bx(b"dinf", |b| {
        b.full(b"dref", 0, 0, |b| {
            b.u32(1);
            b.full(b"url ", 0, 1, |_| {});
        });
    });
}

/// An MPEG-4 descriptor: tag, one-byte length, body.
pub(crate) fn descriptor(b: &mut Boxes, tag: u8, body: impl FnOnce(&mut Boxes)) {
    let mut inner = Boxes::default();
    body(&mut inner);
    b.u8(tag);
    b.u8(inner.0.len() as u8);
    b.bytes(&inner.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxes_carry_their_size() {
        let mut b = Boxes::default();
        b.bx(b"moov", |b| b.full(b"mvhd", 0, 0, |b| b.u32(7)));
        assert_eq!(&b.0[..8], &[0, 0, 0, 24, b'm', b'o', b'o', b'v']);
        assert_eq!(&b.0[8..16], &[0, 0, 0, 16, b'm', b'v', b'h', b'd']);
    }
}

/// One box found by [`children`]: where it starts, its type, and where its
/// body (after the header) starts and ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BoxRef {
    pub start: usize,
    pub kind: [u8; 4],
    pub body: usize,
    pub end: usize,
}

/// The boxes in `data[from..to]`, in order, up to the first one that is
/// malformed or does not fit (32-bit and 64-bit sizes).
pub(crate) fn children(data: &[u8], from: usize, to: usize) -> Vec<BoxRef> {
    let mut out = Vec::new();
    let mut at = from;
    let to = to.min(data.len());
    while at + 8 <= to {
        let size32 = u32::from_be_bytes(data[at..at + 4].try_into().expect("4 bytes")) as u64;
        let kind: [u8; 4] = data[at + 4..at + 8].try_into().expect("4 bytes");
        let (size, header) = match size32 {
            1 if at + 16 <= to => (
                u64::from_be_bytes(data[at + 8..at + 16].try_into().expect("8 bytes")),
                16,
            ),
            0 => ((to - at) as u64, 8),
            s => (s, 8),
        };
        if size < header as u64 || at as u64 + size > to as u64 {
            break;
        }
        let end = at + size as usize;
        out.push(BoxRef {
            start: at,
            kind,
            body: at + header,
            end,
        });
        at = end;
    }
    out
}

/// The first child of `parent` of type `kind`; `skip` bytes of the
/// parent's body come before its children (a full box's version and
/// flags, a sample entry's fields).
pub(crate) fn child(data: &[u8], parent: &BoxRef, kind: &[u8; 4], skip: usize) -> Option<BoxRef> {
    children(data, parent.body + skip, parent.end)
        .into_iter()
        .find(|b| &b.kind == kind)
}

/// A big-endian u32 at `at`, if `data` holds it.
pub(crate) fn read_u32(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(data.get(at..at + 4)?.try_into().ok()?))
}

/// A big-endian u64 at `at`, if `data` holds it.
pub(crate) fn read_u64(data: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(data.get(at..at + 8)?.try_into().ok()?))
}
