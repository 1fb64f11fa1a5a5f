//! Record values: a header that makes every record self-describing (producer, sequence,
//! intended send time) and deterministic filler, so the consumer can verify each one.

/// Bytes of the header: magic u32, producer u32, sequence u64, intended send time u64 (ns), crc u32.
pub const HEADER_BYTES: usize = 28;
const MAGIC: u32 = 0x5253_4231; // "RSB1"
/// Producer id of the warm-up markers (one per partition, not part of the measured workload).
pub const MARKER_PRODUCER: u32 = u32::MAX;

/// Fills `buf` (of the record size) with the record `(producer, seq)` sent at `send_ns`.
pub fn encode(buf: &mut [u8], producer: u32, seq: u64, send_ns: u64) {
    buf[0..4].copy_from_slice(&MAGIC.to_be_bytes());
    buf[4..8].copy_from_slice(&producer.to_be_bytes());
    buf[8..16].copy_from_slice(&seq.to_be_bytes());
    buf[16..24].copy_from_slice(&send_ns.to_be_bytes());
    let mut x = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ producer as u64;
    for chunk in buf[HEADER_BYTES..].chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let bytes = x.to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
    let crc = crc32c::crc32c(&buf[HEADER_BYTES..]);
    buf[24..28].copy_from_slice(&crc.to_be_bytes());
}

/// A decoded, verified record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoded {
    pub producer: u32,
    pub seq: u64,
    pub send_ns: u64,
    /// CRC of the filler, used in the run's checksum.
    pub crc: u32,
}

/// Decodes and verifies a value; `None` if it is not an intact benchmark record.
pub fn decode(buf: &[u8]) -> Option<Decoded> {
    if buf.len() < HEADER_BYTES || buf[0..4] != MAGIC.to_be_bytes() {
        return None;
    }
    let crc = u32::from_be_bytes(buf[24..28].try_into().ok()?);
    if crc32c::crc32c(&buf[HEADER_BYTES..]) != crc {
        return None;
    }
    Some(Decoded {
        producer: u32::from_be_bytes(buf[4..8].try_into().ok()?),
        seq: u64::from_be_bytes(buf[8..16].try_into().ok()?),
        send_ns: u64::from_be_bytes(buf[16..24].try_into().ok()?),
        crc,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip_and_corruption() {
        let mut b = vec![0u8; 100];
        super::encode(&mut b, 3, 77, 12345);
        let d = super::decode(&b).unwrap();
        assert_eq!((d.producer, d.seq, d.send_ns), (3, 77, 12345));
        b[60] ^= 1;
        assert!(super::decode(&b).is_none());
    }
}
