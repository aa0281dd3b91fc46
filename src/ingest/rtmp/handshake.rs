//! RTMP's handshake, server side: C0+C1 in, S0+S1+S2 out, C2 in.
//!
//! The plain handshake: S1 carries zeros where a Flash Media Server puts
//! its version, which tells every client (ffmpeg, librtmp in OBS,
//! GStreamer's rtmp2) not to expect the digest of the Flash "complex"
//! handshake, needed only by Flash players. S2 echoes C1; C2 is read and
//! not checked (clients differ in what they put there). Bytes after C2
//! stay in the buffer: they are the first chunks.

use bytes::{Buf, BytesMut};
use rand::RngCore;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// C1, S1, S2 and C2 are this long.
const PACKET: usize = 1536;
/// The RTMP version byte.
const RTMP: u8 = 3;
/// The version byte of encrypted RTMP (RTMPE).
const RTMPE: u8 = 6;

/// Why a handshake failed.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("not an RTMP client (first byte {0:#04x}; an HTTP request or a TLS client?)")]
    NotRtmp(u8),
    #[error("encrypted RTMP (RTMPE) is not supported: publish with rtmp://")]
    Encrypted,
    #[error("the client left during the handshake")]
    Closed,
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Reads until `buf` holds `n` bytes.
async fn fill<S: AsyncRead + Unpin>(
    io: &mut S,
    buf: &mut BytesMut,
    n: usize,
) -> Result<(), HandshakeError> {
    while buf.len() < n {
        buf.reserve(n - buf.len());
        if io.read_buf(buf).await? == 0 {
            return Err(HandshakeError::Closed);
        }
    }
    Ok(())
}

/// Runs the server side of the handshake on `io`; what the client sent
/// after C2 is left in `buf`.
pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    buf: &mut BytesMut,
) -> Result<(), HandshakeError> {
    fill(io, buf, 1).await?;
    match buf[0] {
        RTMP => {}
        RTMPE => return Err(HandshakeError::Encrypted),
        other => return Err(HandshakeError::NotRtmp(other)),
    }
    fill(io, buf, 1 + PACKET).await?;
    let mut reply = Vec::with_capacity(1 + 2 * PACKET);
    reply.push(RTMP);
    // S1: time, four zero bytes (no server version), random bytes.
    reply.extend_from_slice(&[0; 8]);
    let mut random = [0u8; PACKET - 8];
    rand::rng().fill_bytes(&mut random);
    reply.extend_from_slice(&random);
    // S2: C1 echoed.
    reply.extend_from_slice(&buf[1..1 + PACKET]);
    buf.advance(1 + PACKET);
    io.write_all(&reply).await?;
    io.flush().await?;
    fill(io, buf, PACKET).await?;
    buf.advance(PACKET);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn echoes_c1_and_keeps_what_follows_c2() {
        let (mut client, mut server) = tokio::io::duplex(8192);
        let serve = tokio::spawn(async move {
            let mut buf = BytesMut::new();
            accept(&mut server, &mut buf).await.unwrap();
            (buf, server)
        });
        let c1: Vec<u8> = (0..PACKET).map(|i| (i * 7) as u8).collect();
        client.write_all(&[RTMP]).await.unwrap();
        client.write_all(&c1).await.unwrap();
        let mut reply = vec![0; 1 + 2 * PACKET];
        client.read_exact(&mut reply).await.unwrap();
        assert_eq!(reply[0], RTMP);
        assert_eq!(&reply[5..9], &[0, 0, 0, 0], "no server version");
        assert_eq!(&reply[1 + PACKET..], &c1[..], "S2 echoes C1");
        let mut c2 = reply[1..1 + PACKET].to_vec();
        c2.extend_from_slice(b"chunks");
        client.write_all(&c2).await.unwrap();
        // What the server read past C2 is kept; the rest is still unread.
        let (mut buf, mut server) = serve.await.unwrap();
        let mut rest = vec![0; 6 - buf.len()];
        server.read_exact(&mut rest).await.unwrap();
        buf.extend_from_slice(&rest);
        assert_eq!(&buf[..], b"chunks");
    }

    #[tokio::test]
    async fn other_protocols_are_named() {
        for (first, want) in [(b'G', "0x47"), (RTMPE, "RTMPE"), (0x16, "TLS")] {
            let (mut client, mut server) = tokio::io::duplex(8192);
            client.write_all(&[first, 0, 0]).await.unwrap();
            let error = accept(&mut server, &mut BytesMut::new()).await.unwrap_err();
            assert!(error.to_string().contains(want), "{error}");
        }
    }
}
