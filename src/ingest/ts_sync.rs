//! A cheap guard against bytes that are not MPEG-TS: follows the 0x47 sync
//! byte of 188-byte packets across arbitrarily split chunks, and reports a
//! stream whose bytes stay out of sync for too long. Looks at one byte per
//! packet, so it costs nothing next to demuxing.

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

impl TsSync {
    /// Checks the next chunk; an error describes why it is not MPEG-TS.
    pub fn check(&mut self, data: &[u8]) -> Result<(), String> {
        let mut i = self.next;
        while i < data.len() {
            if self.synced {
                if data[i] == SYNC {
                    self.packets += 1;
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
                check.check(chunk).unwrap();
            }
            assert_eq!(check.packets(), 500, "split {split}");
        }
    }

    #[test]
    fn tolerates_a_damaged_packet() {
        let mut data = ts(100);
        data.splice(1000..1000, [1u8, 2, 3, 4, 5]);
        let mut check = TsSync::default();
        check.check(&data).unwrap();
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
        let failed = garbage.chunks(1000).any(|c| check.check(c).is_err());
        assert!(failed);
    }
}
