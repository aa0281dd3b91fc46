//! RTMP's chunk stream: reassembles the messages a publisher interleaves
//! in chunks ([`ChunkReader`]), and chunks the few messages we send
//! ([`write_message`]).
//!
//! Memory is bounded by what the connection is allowed, not by what its
//! headers claim: messages longer than [`ChunkReader::set_max_message`]
//! are refused before any of their bytes are kept, a connection uses at
//! most [`MAX_CHUNK_STREAMS`] chunk streams, and the bytes kept for
//! unfinished messages are counted against [`ChunkReader`]'s budget. Each
//! message gets an allocation of its own size (one copy out of the read
//! buffer, as a PES is assembled from TS packets), so a frame kept by
//! replay keeps nothing else alive; the frame's bytes are shared from
//! there on.

use std::collections::HashMap;

use bytes::{Buf, BytesMut};

/// Chunk streams one connection may use (publishers use a handful).
pub const MAX_CHUNK_STREAMS: usize = 64;
/// The chunk size before the peer sets one.
pub const DEFAULT_CHUNK_SIZE: usize = 128;
/// Chunk sizes above this are taken as this (no message is longer).
const MAX_CHUNK_SIZE: usize = 1 << 24;
/// A 3-byte timestamp field of this value means a 4-byte one follows.
const EXTENDED: u32 = 0xff_ffff;

/// One reassembled message.
#[derive(Debug)]
pub struct Message {
    pub kind: u8,
    pub stream_id: u32,
    /// Milliseconds, as the publisher's clock says.
    pub timestamp: u32,
    pub payload: BytesMut,
}

/// What breaks the chunk stream (the connection is then closed).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChunkError {
    #[error("a message of {size} bytes (at most {max} here)")]
    MessageTooLarge { size: usize, max: usize },
    #[error("more than {MAX_CHUNK_STREAMS} chunk streams")]
    TooManyChunkStreams,
    #[error("chunk stream {0} starts without a message header")]
    NoHeader(u32),
    #[error("unfinished messages hold more than {0} bytes")]
    OverBudget(usize),
    #[error("a chunk size of 0")]
    ZeroChunkSize,
}

#[derive(Default)]
struct ChunkStream {
    timestamp: u32,
    /// The last timestamp field (a delta, or the absolute time of a
    /// type-0 header), reused by type-3 headers that start a message.
    field: u32,
    length: usize,
    kind: u8,
    stream_id: u32,
    extended: bool,
    /// The unfinished message, if any.
    partial: Option<BytesMut>,
}

/// Reassembles one connection's messages.
pub struct ChunkReader {
    chunk_size: usize,
    streams: HashMap<u32, ChunkStream>,
    max_message: usize,
    /// Bytes reserved for unfinished messages, and the most allowed.
    held: usize,
    budget: usize,
}

impl ChunkReader {
    /// A reader taking messages of at most `max_message` bytes and
    /// holding at most `budget` bytes of unfinished ones.
    pub fn new(max_message: usize, budget: usize) -> Self {
        Self {
            chunk_size: DEFAULT_CHUNK_SIZE,
            streams: HashMap::new(),
            max_message,
            held: 0,
            budget,
        }
    }

    /// The peer's Set Chunk Size.
    pub fn set_chunk_size(&mut self, size: u32) -> Result<(), ChunkError> {
        let size = (size & 0x7fff_ffff) as usize;
        if size == 0 {
            return Err(ChunkError::ZeroChunkSize);
        }
        self.chunk_size = size.min(MAX_CHUNK_SIZE);
        Ok(())
    }

    /// Raises (or lowers) the limits, once the publisher is authorized.
    pub fn set_limits(&mut self, max_message: usize, budget: usize) {
        self.max_message = max_message;
        self.budget = budget;
    }

    /// The peer's Abort Message: the unfinished message of `csid` is
    /// dropped.
    pub fn abort(&mut self, csid: u32) {
        if let Some(stream) = self.streams.get_mut(&csid) {
            if let Some(partial) = stream.partial.take() {
                self.held -= partial.capacity().min(self.held);
            }
        }
    }

    /// The next complete message at the front of `buf`, consuming what it
    /// read; `None` when `buf` needs more bytes (nothing is consumed of
    /// a chunk that is not whole yet).
    pub fn read(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, ChunkError> {
        loop {
            match self.read_chunk(buf)? {
                Step::NeedMore => return Ok(None),
                Step::Message(message) => return Ok(Some(message)),
                Step::Chunk => {}
            }
        }
    }

    fn read_chunk(&mut self, buf: &mut BytesMut) -> Result<Step, ChunkError> {
        let Some((fmt, csid, basic)) = basic_header(buf) else {
            return Ok(Step::NeedMore);
        };
        if !self.streams.contains_key(&csid) {
            if self.streams.len() >= MAX_CHUNK_STREAMS {
                return Err(ChunkError::TooManyChunkStreams);
            }
            if fmt > 1 {
                return Err(ChunkError::NoHeader(csid));
            }
        }
        let header_len = [11, 7, 3, 0][usize::from(fmt)];
        if buf.len() < basic + header_len {
            return Ok(Step::NeedMore);
        }
        let h = &buf[basic..basic + header_len];
        let stream = self.streams.entry(csid).or_default();
        let field = if fmt < 3 { u24(&h[0..3]) } else { stream.field };
        // Inside a message its own length and type hold, whatever a
        // (non-conforming) header in the middle of it says.
        let (length, kind) = if fmt < 2 && stream.partial.is_none() {
            (u24(&h[3..6]) as usize, h[6])
        } else {
            (stream.length, stream.kind)
        };
        let extended = if fmt < 3 {
            field == EXTENDED
        } else {
            stream.extended
        };
        let ext_len = if extended { 4 } else { 0 };
        let header_end = basic + header_len + ext_len;
        if buf.len() < header_end {
            return Ok(Step::NeedMore);
        }
        let field = if extended {
            u32::from_be_bytes(buf[header_end - 4..header_end].try_into().expect("4 bytes"))
        } else {
            field
        };
        let starts = stream.partial.is_none();
        if starts && length > self.max_message {
            return Err(ChunkError::MessageTooLarge {
                size: length,
                max: self.max_message,
            });
        }
        let have = stream.partial.as_ref().map_or(0, BytesMut::len);
        let data_len = (length - have.min(length)).min(self.chunk_size);
        if buf.len() < header_end + data_len {
            return Ok(Step::NeedMore);
        }
        // The whole chunk is here: take its header into the state.
        if starts {
            stream.timestamp = match fmt {
                0 => field,
                _ => stream.timestamp.wrapping_add(field),
            };
        }
        if fmt == 0 {
            stream.stream_id = u32::from_le_bytes(h[7..11].try_into().expect("4 bytes"));
        }
        stream.field = field;
        stream.length = length;
        stream.kind = kind;
        stream.extended = extended;
        buf.advance(header_end);
        if starts && data_len == length {
            // A whole message in one chunk: copied out of the read buffer
            // all the same. A slice of it would keep the whole buffer
            // alive for as long as the frame is kept (replay holds frames
            // for minutes), with the bytes of every other message read
            // into it: measured, 50 % more memory than the copy.
            let payload = BytesMut::from(&buf[..length]);
            buf.advance(length);
            return Ok(Step::Message(message_of(stream, payload)));
        }
        let partial = match stream.partial.as_mut() {
            Some(partial) => partial,
            None => {
                if self.held + length > self.budget {
                    return Err(ChunkError::OverBudget(self.budget));
                }
                self.held += length;
                stream.partial.insert(BytesMut::with_capacity(length))
            }
        };
        partial.extend_from_slice(&buf[..data_len]);
        buf.advance(data_len);
        if partial.len() < length {
            return Ok(Step::Chunk);
        }
        let payload = stream.partial.take().expect("a partial message");
        self.held -= length.min(self.held);
        Ok(Step::Message(message_of(stream, payload)))
    }
}

enum Step {
    NeedMore,
    Chunk,
    Message(Message),
}

fn message_of(stream: &ChunkStream, payload: BytesMut) -> Message {
    Message {
        kind: stream.kind,
        stream_id: stream.stream_id,
        timestamp: stream.timestamp,
        payload,
    }
}

fn u24(b: &[u8]) -> u32 {
    (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2])
}

/// (fmt, chunk stream id, basic header length), if `buf` holds it.
fn basic_header(buf: &[u8]) -> Option<(u8, u32, usize)> {
    let first = *buf.first()?;
    let fmt = first >> 6;
    match first & 0x3f {
        0 => Some((fmt, 64 + u32::from(*buf.get(1)?), 2)),
        1 => {
            let (lo, hi) = (*buf.get(1)?, *buf.get(2)?);
            Some((fmt, 64 + u32::from(lo) + 256 * u32::from(hi), 3))
        }
        csid => Some((fmt, u32::from(csid), 1)),
    }
}

/// Appends `payload` as message `kind` on chunk stream `csid` (2 to 63)
/// and message stream `stream_id`, in chunks of `chunk_size`, at time 0.
pub fn write_message(
    out: &mut Vec<u8>,
    chunk_size: usize,
    csid: u8,
    kind: u8,
    stream_id: u32,
    payload: &[u8],
) {
    debug_assert!((2..64).contains(&csid));
    out.push(csid);
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.push(kind);
    out.extend_from_slice(&stream_id.to_le_bytes());
    for (i, chunk) in payload.chunks(chunk_size.max(1)).enumerate() {
        if i > 0 {
            out.push(0xc0 | csid);
        }
        out.extend_from_slice(chunk);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `payload` as `kind` on `csid` in chunks of `size` (each chunk
    /// with its header), the first with a type-0 header at `timestamp`
    /// (extended when it needs to be).
    fn chunks(csid: u8, kind: u8, timestamp: u32, size: usize, payload: &[u8]) -> Vec<Vec<u8>> {
        let extended = timestamp >= EXTENDED;
        payload
            .chunks(size)
            .enumerate()
            .map(|(i, data)| {
                let mut out = Vec::new();
                if i == 0 {
                    out.push(csid);
                    out.extend_from_slice(&timestamp.min(EXTENDED).to_be_bytes()[1..]);
                    out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
                    out.push(kind);
                    out.extend_from_slice(&1u32.to_le_bytes());
                } else {
                    out.push(0xc0 | csid);
                }
                if extended {
                    out.extend_from_slice(&timestamp.to_be_bytes());
                }
                out.extend_from_slice(data);
                out
            })
            .collect()
    }

    fn chunked(csid: u8, kind: u8, timestamp: u32, size: usize, payload: &[u8]) -> Vec<u8> {
        chunks(csid, kind, timestamp, size, payload).concat()
    }

    fn read_all(reader: &mut ChunkReader, bytes: &[u8]) -> Vec<Message> {
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        // One byte at a time: every split point is a boundary.
        for &b in bytes {
            buf.extend_from_slice(&[b]);
            while let Some(message) = reader.read(&mut buf).unwrap() {
                out.push(message);
            }
        }
        assert!(buf.is_empty());
        out
    }

    #[test]
    fn interleaved_messages_reassemble_whatever_the_reads() {
        let video: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        let audio = vec![0xaf; 300];
        let a = chunks(6, 9, 40, 128, &video);
        let b = chunks(4, 8, 0x0100_0000, 128, &audio);
        // Chunks of the two streams interleaved: a0 b0 a1 b1 ...
        let mut bytes = Vec::new();
        for i in 0..a.len().max(b.len()) {
            for side in [&a, &b] {
                if let Some(chunk) = side.get(i) {
                    bytes.extend_from_slice(chunk);
                }
            }
        }
        let mut reader = ChunkReader::new(1 << 20, 1 << 20);
        let messages = read_all(&mut reader, &bytes);
        assert_eq!(messages.len(), 2);
        let audio_message = messages.iter().find(|m| m.kind == 8).unwrap();
        let video_message = messages.iter().find(|m| m.kind == 9).unwrap();
        assert_eq!(&video_message.payload[..], &video[..]);
        assert_eq!(video_message.timestamp, 40);
        assert_eq!(&audio_message.payload[..], &audio[..]);
        assert_eq!(audio_message.timestamp, 0x0100_0000, "extended timestamp");
        assert_eq!(reader.held, 0);
    }

    #[test]
    fn deltas_and_type_3_headers_advance_time() {
        let mut bytes = chunked(4, 8, 1000, 128, &[1, 2]);
        // Type 2: delta 23 ms; type 3 starting a message: the same delta.
        bytes.extend_from_slice(&[0x80 | 4, 0, 0, 23, 3, 4]);
        bytes.extend_from_slice(&[0xc0 | 4, 5, 6]);
        let mut reader = ChunkReader::new(1 << 20, 1 << 20);
        let times: Vec<u32> = read_all(&mut reader, &bytes)
            .iter()
            .map(|m| m.timestamp)
            .collect();
        assert_eq!(times, vec![1000, 1023, 1046]);
    }

    #[test]
    fn what_headers_claim_is_not_allocated() {
        // A message of 16 MB claimed on a reader that allows 64 KB.
        let mut reader = ChunkReader::new(65536, 1 << 20);
        let mut buf = BytesMut::from(&[4, 0, 0, 0, 0xff, 0xff, 0xff, 20, 0, 0, 0, 0][..]);
        assert_eq!(
            reader.read(&mut buf).unwrap_err(),
            ChunkError::MessageTooLarge {
                size: 0xff_ffff,
                max: 65536
            }
        );
        // Unfinished messages past the budget.
        let mut reader = ChunkReader::new(60_000, 100_000);
        let mut bytes = Vec::new();
        for csid in 3..5 {
            bytes.extend(&chunked(csid, 9, 0, 128, &[0; 60_000])[..12 + 128]);
        }
        let mut buf = BytesMut::from(&bytes[..]);
        assert_eq!(
            reader.read(&mut buf).unwrap_err(),
            ChunkError::OverBudget(100_000)
        );
        assert_eq!(reader.held, 60_000, "only the first is held");
        // Too many chunk streams.
        let mut reader = ChunkReader::new(65536, 1 << 20);
        let mut bytes = Vec::new();
        for i in 0..=MAX_CHUNK_STREAMS as u32 {
            bytes.extend(&[0x01, (i & 0xff) as u8, (i >> 8) as u8]);
            bytes.extend(&[0, 0, 0, 0, 0, 1, 20, 0, 0, 0, 0, 7]);
        }
        let mut buf = BytesMut::from(&bytes[..]);
        let mut result = Ok(None);
        for _ in 0..=MAX_CHUNK_STREAMS {
            result = reader.read(&mut buf);
        }
        assert_eq!(result.unwrap_err(), ChunkError::TooManyChunkStreams);
        // A chunk stream that starts with a type-3 header.
        let mut reader = ChunkReader::new(65536, 1 << 20);
        let mut buf = BytesMut::from(&[0xc0 | 9, 1, 2][..]);
        assert_eq!(reader.read(&mut buf).unwrap_err(), ChunkError::NoHeader(9));
        assert_eq!(reader.set_chunk_size(0), Err(ChunkError::ZeroChunkSize));
    }

    #[test]
    fn a_header_inside_a_message_does_not_change_it() {
        let payload: Vec<u8> = (0..200).map(|i| i as u8).collect();
        let mut bytes = chunks(4, 9, 0, 128, &payload)[0].clone();
        // The second chunk with a type-1 header that claims 10 bytes.
        bytes.extend_from_slice(&[0x40 | 4, 0, 0, 0, 0, 0, 10, 9]);
        bytes.extend_from_slice(&payload[128..]);
        let mut reader = ChunkReader::new(1 << 20, 1 << 20);
        let messages = read_all(&mut reader, &bytes);
        assert_eq!(&messages[0].payload[..], &payload[..]);
        assert_eq!(reader.held, 0);
    }

    #[test]
    fn one_byte_chunks_and_aborts() {
        let payload: Vec<u8> = (0..50).collect();
        let mut reader = ChunkReader::new(1 << 20, 1 << 20);
        reader.set_chunk_size(1).unwrap();
        let messages = read_all(&mut reader, &chunked(5, 9, 7, 1, &payload));
        assert_eq!(&messages[0].payload[..], &payload[..]);
        // An aborted message frees its bytes and the next one is whole.
        let mut buf = BytesMut::from(&chunked(5, 9, 8, 1, &payload)[..20]);
        assert!(reader.read(&mut buf).unwrap().is_none());
        assert_eq!(reader.held, 50);
        reader.abort(5);
        assert_eq!(reader.held, 0);
    }

    #[test]
    fn written_messages_read_back() {
        let payload: Vec<u8> = (0..300).map(|i| i as u8).collect();
        let mut out = Vec::new();
        write_message(&mut out, 128, 3, 20, 0, &payload);
        let mut reader = ChunkReader::new(1 << 20, 1 << 20);
        let messages = read_all(&mut reader, &out);
        assert_eq!(messages.len(), 1);
        assert_eq!((messages[0].kind, messages[0].stream_id), (20, 0));
        assert_eq!(&messages[0].payload[..], &payload[..]);
    }
}
