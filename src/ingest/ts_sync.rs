//! A cheap guard against bytes that are not MPEG-TS: follows the 0x47 sync
//! byte of 188-byte packets across arbitrarily split chunks, and reports a
//! stream whose bytes stay out of sync for too long. On the way it notes
//! every programme clock reference (PCR), the media's own clock, with
//! where in the chunk it is, for pacing ([`super::pacing`]). Looks at a few bytes per packet, so it
//! costs nothing next to demuxing.

const PACKET: usize = 188;
const SYNC: u8 = 0x47;
/// Bytes out of sync in a row before the input is declared not MPEG-TS.
pub const MAX_UNSYNCED_BYTES: usize = 64 * 1024;
/// Packets in a row that re-establish sync.
const PACKETS_TO_CONFIRM: u32 = 3;

#[derive(Debug, Default)]
pub struct TsSync {
    /// Offset, in the bytes still to come, where the next sync byte is due.
    next: usize,
    synced: bool,
    confirmed: u32,
    unsynced_run: usize,
    packets: u64,
}

/// A PCR (90 kHz base) found in a chunk, and the offset in the chunk just
/// past its packet: the media before it is due by then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    pub end: usize,
    pub pcr: u64,
}

/// The PCR base (90 kHz) of a whole packet, if it carries one.
fn packet_pcr(packet: &[u8]) -> Option<u64> {
    let has_adaptation = packet.get(3)? & 0x20 != 0;
    let length = *packet.get(4)?;
    if !has_adaptation || length < 7 || packet.get(5)? & 0x10 == 0 {
        return None;
    }
    let b = packet.get(6..11)?;
    Some(
        (u64::from(b[0]) << 25)
            | (u64::from(b[1]) << 17)
            | (u64::from(b[2]) << 9)
            | (u64::from(b[3]) << 1)
            | (u64::from(b[4]) >> 7),
    )
}

impl TsSync {
    /// Checks the next chunk, adding its PCRs to `clocks` in order; an
    /// error describes why it is not MPEG-TS.
    pub fn check(&mut self, data: &[u8], clocks: &mut Vec<Clock>) -> Result<(), String> {
        let mut i = self.next;
        while i < data.len() {
            if self.synced {
                if data[i] == SYNC {
                    self.packets += 1;
                    // Packets split across chunks are skipped: a PCR comes
                    // every 100 ms or so.
                    if let Some(pcr) = data.get(i..i + PACKET).and_then(packet_pcr) {
                        clocks.push(Clock {
                            end: i + PACKET,
                            pcr,
                        });
                    }
                    self.confirmed = self.confirmed.saturating_add(1);
                    if self.confirmed >= PACKETS_TO_CONFIRM {
                        self.unsynced_run = 0;
                    }
                    i += PACKET;
                    continue;
                }
                self.synced = false;
                self.confirmed = 0;
            }
            match data[i..].iter().position(|&b| b == SYNC) {
                None => {
                    self.unsynced_run += data.len() - i;
                    i = data.len();
                }
                Some(skip) => {
                    self.unsynced_run += skip;
                    i += skip;
                    if i + PACKET < data.len() && data[i + PACKET] != SYNC {
                        // A stray 0x47, not a packet start.
                        self.unsynced_run += 1;
                        i += 1;
                    } else {
                        self.synced = true;
                    }
                }
            }
            if self.unsynced_run > MAX_UNSYNCED_BYTES {
                return Err(format!(
                    "input is not MPEG-TS: no 188-byte packet sync for {} bytes",
                    self.unsynced_run
                ));
            }
        }
        self.next = i - data.len();
        Ok(())
    }

    /// Whole packets seen so far.
    #[cfg(test)]
    pub fn packets(&self) -> u64 {
        self.packets
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(packets: usize) -> Vec<u8> {
        let mut v = vec![0u8; packets * PACKET];
        for p in 0..packets {
            v[p * PACKET] = SYNC;
        }
        v
    }

    #[test]
    fn accepts_ts_in_any_split() {
        let data = ts(500);
        for split in [1, 7, 188, 1316, 4096] {
            let mut check = TsSync::default();
            for chunk in data.chunks(split) {
                check.check(chunk, &mut vec![]).unwrap();
            }
            assert_eq!(check.packets(), 500, "split {split}");
        }
    }

    #[test]
    fn finds_the_pcr() {
        let mut data = ts(3);
        // Packet 1: adaptation field with a PCR of 90 000 * 2 (2 s).
        let p = &mut data[PACKET..2 * PACKET];
        p[3] = 0x30;
        p[4] = 7;
        p[5] = 0x10;
        let base: u64 = 180_000;
        p[6] = (base >> 25) as u8;
        p[7] = (base >> 17) as u8;
        p[8] = (base >> 9) as u8;
        p[9] = (base >> 1) as u8;
        p[10] = ((base & 1) << 7) as u8;
        let mut check = TsSync::default();
        let mut clocks = vec![];
        check.check(&data, &mut clocks).unwrap();
        assert_eq!(
            clocks,
            vec![Clock {
                end: 2 * PACKET,
                pcr: 180_000
            }]
        );
    }

    #[test]
    fn tolerates_a_damaged_packet() {
        let mut data = ts(100);
        data.splice(1000..1000, [1u8, 2, 3, 4, 5]);
        let mut check = TsSync::default();
        check.check(&data, &mut vec![]).unwrap();
        assert!(check.packets() >= 98);
    }

    #[test]
    fn rejects_garbage() {
        // Deterministic pseudo-random bytes without long 0x47 chains.
        let mut x: u32 = 12345;
        let garbage: Vec<u8> = (0..200_000)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (x >> 16) as u8
            })
            .collect();
        let mut check = TsSync::default();
        let failed = garbage
            .chunks(1000)
            .any(|c| check.check(c, &mut vec![]).is_err());
        assert!(failed);
    }
}
