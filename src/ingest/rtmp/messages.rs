//! The RTMP messages a publisher sends and the ones we answer with: their
//! type numbers, and the bytes of our protocol control messages and
//! commands (`_result`, `_error`, `onStatus`).

use super::amf0::{self, Amf};
use super::chunk::write_message;

pub const SET_CHUNK_SIZE: u8 = 1;
pub const ABORT: u8 = 2;
pub const ACKNOWLEDGEMENT: u8 = 3;
pub const USER_CONTROL: u8 = 4;
pub const WINDOW_ACK_SIZE: u8 = 5;
pub const SET_PEER_BANDWIDTH: u8 = 6;
pub const AUDIO: u8 = 8;
pub const VIDEO: u8 = 9;
pub const DATA_AMF3: u8 = 15;
pub const COMMAND_AMF3: u8 = 17;
pub const DATA_AMF0: u8 = 18;
pub const COMMAND_AMF0: u8 = 20;

/// User control events.
const STREAM_BEGIN: u16 = 0;
const PING_REQUEST: u16 = 6;
const PING_RESPONSE: u16 = 7;

/// The chunk size we send with (told to the peer first).
pub const OUR_CHUNK_SIZE: usize = 4096;
/// Our acknowledgement window, and the peer bandwidth we ask for.
pub const WINDOW: u32 = 2_500_000;

/// Chunk streams of what we send: control, commands, a stream's status.
const CONTROL_CSID: u8 = 2;
const COMMAND_CSID: u8 = 3;
const STATUS_CSID: u8 = 5;

/// Our outgoing messages, chunked into `out` as they are made.
#[derive(Default)]
pub struct Outbox {
    pub out: Vec<u8>,
    /// Set Chunk Size has gone out: later messages use ours.
    chunk_size_sent: bool,
}

impl Outbox {
    fn chunk_size(&self) -> usize {
        if self.chunk_size_sent {
            OUR_CHUNK_SIZE
        } else {
            super::chunk::DEFAULT_CHUNK_SIZE
        }
    }

    fn control(&mut self, kind: u8, payload: &[u8]) {
        let size = self.chunk_size();
        write_message(&mut self.out, size, CONTROL_CSID, kind, 0, payload);
    }

    /// What a server says after `connect`: its window, the peer's
    /// bandwidth, and its chunk size.
    pub fn connection_setup(&mut self) {
        self.control(WINDOW_ACK_SIZE, &WINDOW.to_be_bytes());
        let mut bandwidth = WINDOW.to_be_bytes().to_vec();
        bandwidth.push(2); // dynamic
        self.control(SET_PEER_BANDWIDTH, &bandwidth);
        self.control(SET_CHUNK_SIZE, &(OUR_CHUNK_SIZE as u32).to_be_bytes());
        self.chunk_size_sent = true;
    }

    /// An acknowledgement of `received` bytes (modulo 2^32).
    pub fn acknowledge(&mut self, received: u64) {
        self.control(ACKNOWLEDGEMENT, &(received as u32).to_be_bytes());
    }

    /// The answer to a ping request's payload, if it is one.
    pub fn answer_user_control(&mut self, payload: &[u8]) {
        if payload.len() >= 6 && u16::from_be_bytes([payload[0], payload[1]]) == PING_REQUEST {
            let mut answer = PING_RESPONSE.to_be_bytes().to_vec();
            answer.extend_from_slice(&payload[2..6]);
            self.control(USER_CONTROL, &answer);
        }
    }

    /// Stream Begin for message stream `stream_id`.
    pub fn stream_begin(&mut self, stream_id: u32) {
        let mut payload = STREAM_BEGIN.to_be_bytes().to_vec();
        payload.extend_from_slice(&stream_id.to_be_bytes());
        self.control(USER_CONTROL, &payload);
    }

    /// A command message (AMF0) on message stream `stream_id`.
    pub fn command(&mut self, stream_id: u32, values: &[Amf]) {
        let size = self.chunk_size();
        let csid = if stream_id == 0 {
            COMMAND_CSID
        } else {
            STATUS_CSID
        };
        let payload = amf0::encode_all(values);
        write_message(&mut self.out, size, csid, COMMAND_AMF0, stream_id, &payload);
    }

    /// `_result` of transaction `txn`.
    pub fn result(&mut self, txn: f64, properties: Amf, information: Amf) {
        self.command(
            0,
            &[
                Amf::string("_result"),
                Amf::Number(txn),
                properties,
                information,
            ],
        );
    }

    /// `_error` of transaction `txn`, with a status object.
    pub fn error(&mut self, txn: f64, code: &str, description: &str) {
        self.command(
            0,
            &[
                Amf::string("_error"),
                Amf::Number(txn),
                Amf::Null,
                status("error", code, description),
            ],
        );
    }

    /// `onStatus` on message stream `stream_id`.
    pub fn on_status(&mut self, stream_id: u32, level: &str, code: &str, description: &str) {
        self.command(
            stream_id,
            &[
                Amf::string("onStatus"),
                Amf::Number(0.0),
                Amf::Null,
                status(level, code, description),
            ],
        );
    }
}

/// A NetConnection/NetStream status object.
pub fn status(level: &str, code: &str, description: &str) -> Amf {
    Amf::object([
        ("level", Amf::string(level)),
        ("code", Amf::string(code)),
        ("description", Amf::string(description)),
    ])
}

/// The answer to a successful `connect`: a server's properties, and
/// the codecs of Enhanced RTMP it takes.
pub fn connect_result() -> (Amf, Amf) {
    let properties = Amf::object([
        ("fmsVer", Amf::string("FMS/3,5,7,7009")),
        ("capabilities", Amf::Number(31.0)),
        ("mode", Amf::Number(1.0)),
    ]);
    let mut information = status(
        "status",
        "NetConnection.Connect.Success",
        "Connection succeeded.",
    );
    if let Amf::Object(props) = &mut information {
        props.push(("objectEncoding".into(), Amf::Number(0.0)));
        props.push((
            "fourCcList".into(),
            Amf::Array(vec![Amf::string("avc1"), Amf::string("hvc1")]),
        ));
    }
    (properties, information)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::rtmp::chunk::ChunkReader;
    use bytes::BytesMut;

    #[test]
    fn a_connect_answer_reads_back_in_our_chunk_size() {
        let mut outbox = Outbox::default();
        outbox.connection_setup();
        let (properties, information) = connect_result();
        outbox.result(1.0, properties, information);
        outbox.answer_user_control(&[0, 6, 0, 0, 1, 2]);
        let mut reader = ChunkReader::new(1 << 20, 1 << 20);
        let mut buf = BytesMut::from(&outbox.out[..]);
        let mut kinds = Vec::new();
        while let Some(message) = reader.read(&mut buf).unwrap() {
            if message.kind == SET_CHUNK_SIZE {
                let size = u32::from_be_bytes(message.payload[..4].try_into().unwrap());
                reader.set_chunk_size(size).unwrap();
            }
            if message.kind == COMMAND_AMF0 {
                let values = amf0::decode_all(&message.payload).unwrap();
                assert_eq!(values[0], Amf::string("_result"));
                assert_eq!(
                    values[3].get("code").and_then(Amf::as_str),
                    Some("NetConnection.Connect.Success")
                );
            }
            if message.kind == USER_CONTROL {
                assert_eq!(&message.payload[..], &[0, 7, 0, 0, 1, 2]);
            }
            kinds.push(message.kind);
        }
        assert_eq!(
            kinds,
            vec![
                WINDOW_ACK_SIZE,
                SET_PEER_BANDWIDTH,
                SET_CHUNK_SIZE,
                COMMAND_AMF0,
                USER_CONTROL
            ]
        );
    }
}
