//! Record batch codecs, for a topic whose `compression.type` names one: the leader rewrites a
//! batch sent with another codec into that one, as Kafka does. Formats are Kafka's: gzip,
//! snappy with xerial framing (what the Java client writes; raw snappy is read too, as
//! librdkafka may send it), the LZ4 frame format with independent blocks, and zstd.
//!
//! Decompression reads client bytes, so it is bounded: it stops past `limit_bytes` of output
//! (a small batch must not expand into gigabytes) and never trusts a length it has not checked.

use std::io::{Read, Write};

/// Kafka's codecs (the low three bits of a batch's attributes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    None = 0,
    Gzip = 1,
    Snappy = 2,
    Lz4 = 3,
    Zstd = 4,
}

/// Why records could not be decompressed.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("the records decompress to more than {0} bytes")]
    TooLarge(usize),
    #[error("corrupt {0:?} data: {1}")]
    Corrupt(Codec, String),
}

/// The xerial snappy stream header: magic, version 1, compatible version 1.
const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
const XERIAL_HEADER_BYTES: usize = 16;
/// Uncompressed bytes per xerial block (the Java client's default).
const XERIAL_BLOCK_BYTES: usize = 32 * 1024;

impl Codec {
    /// The codec with Kafka id `id`.
    pub fn from_id(id: i16) -> Option<Codec> {
        Some(match id {
            0 => Codec::None,
            1 => Codec::Gzip,
            2 => Codec::Snappy,
            3 => Codec::Lz4,
            4 => Codec::Zstd,
            _ => return None,
        })
    }

    /// A `compression.type` value: `Some(None)` for `producer` (keep what was sent),
    /// `Some(Some(codec))` for a codec, `None` for anything else.
    pub fn from_config(value: &str) -> Option<Option<Codec>> {
        Some(Some(match value {
            "producer" => return Some(None),
            "uncompressed" => Codec::None,
            "gzip" => Codec::Gzip,
            "snappy" => Codec::Snappy,
            "lz4" => Codec::Lz4,
            "zstd" => Codec::Zstd,
            _ => return None,
        }))
    }
}

/// `data` compressed with `codec`, decompressed; at most `limit_bytes` long.
pub fn decompress(codec: Codec, data: &[u8], limit_bytes: usize) -> Result<Vec<u8>, CodecError> {
    let corrupt = |e: std::io::Error| CodecError::Corrupt(codec, e.to_string());
    match codec {
        Codec::None => bounded(data, limit_bytes).map_err(corrupt)?,
        Codec::Gzip => bounded(flate2::read::MultiGzDecoder::new(data), limit_bytes).map_err(corrupt)?,
        Codec::Lz4 => bounded(lz4::Decoder::new(data).map_err(corrupt)?, limit_bytes).map_err(corrupt)?,
        Codec::Zstd => {
            bounded(zstd::stream::read::Decoder::new(data).map_err(corrupt)?, limit_bytes).map_err(corrupt)?
        }
        Codec::Snappy => return snappy_decompress(data, limit_bytes),
    }
    .ok_or(CodecError::TooLarge(limit_bytes))
}

/// `data` compressed with `codec`.
pub fn compress(codec: Codec, data: &[u8]) -> Vec<u8> {
    // Writing into memory cannot fail but for allocation, which aborts anyway.
    let io = "in-memory compression does not fail";
    match codec {
        Codec::None => data.to_vec(),
        Codec::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(data).expect(io);
            e.finish().expect(io)
        }
        Codec::Lz4 => {
            let mut e = lz4::EncoderBuilder::new()
                .block_mode(lz4::BlockMode::Independent)
                .build(Vec::new())
                .expect(io);
            e.write_all(data).expect(io);
            let (out, result) = e.finish();
            result.expect(io);
            out
        }
        Codec::Zstd => zstd::stream::encode_all(data, 3).expect(io),
        Codec::Snappy => snappy_compress(data),
    }
}

/// All of `r`, or `None` if it holds more than `limit_bytes`.
fn bounded(r: impl Read, limit_bytes: usize) -> std::io::Result<Option<Vec<u8>>> {
    let mut out = Vec::new();
    r.take(limit_bytes as u64 + 1).read_to_end(&mut out)?;
    Ok((out.len() <= limit_bytes).then_some(out))
}

fn snappy_decompress(data: &[u8], limit_bytes: usize) -> Result<Vec<u8>, CodecError> {
    let corrupt = |why: String| CodecError::Corrupt(Codec::Snappy, why);
    let mut decoder = snap::raw::Decoder::new();
    let mut block = |block: &[u8], out: &mut Vec<u8>| -> Result<(), CodecError> {
        let len = snap::raw::decompress_len(block).map_err(|e| corrupt(e.to_string()))?;
        if out.len() + len > limit_bytes {
            return Err(CodecError::TooLarge(limit_bytes));
        }
        let start = out.len();
        out.resize(start + len, 0);
        decoder
            .decompress(block, &mut out[start..])
            .map_err(|e| corrupt(e.to_string()))?;
        Ok(())
    };
    let mut out = Vec::new();
    if !data.starts_with(&XERIAL_MAGIC) {
        block(data, &mut out)?;
        return Ok(out);
    }
    let mut rest = data
        .get(XERIAL_HEADER_BYTES..)
        .ok_or_else(|| corrupt("short xerial header".into()))?;
    while !rest.is_empty() {
        let len = rest
            .get(..4)
            .map(|b| u32::from_be_bytes(b.try_into().expect("4 bytes")) as usize)
            .ok_or_else(|| corrupt("short xerial block length".into()))?;
        let chunk = rest
            .get(4..4 + len)
            .ok_or_else(|| corrupt("xerial block past the end".into()))?;
        block(chunk, &mut out)?;
        rest = &rest[4 + len..];
    }
    Ok(out)
}

fn snappy_compress(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(XERIAL_HEADER_BYTES + data.len() / 2);
    out.extend_from_slice(&XERIAL_MAGIC);
    out.extend_from_slice(&1u32.to_be_bytes());
    out.extend_from_slice(&1u32.to_be_bytes());
    let mut encoder = snap::raw::Encoder::new();
    for chunk in data.chunks(XERIAL_BLOCK_BYTES) {
        let block = encoder
            .compress_vec(chunk)
            .expect("a chunk under the snappy size bound compresses");
        out.extend_from_slice(&(block.len() as u32).to_be_bytes());
        out.extend_from_slice(&block);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Codec; 5] = [Codec::None, Codec::Gzip, Codec::Snappy, Codec::Lz4, Codec::Zstd];

    #[test]
    fn every_codec_round_trips() {
        let data: Vec<u8> = (0..200_000u32).flat_map(|i| (i % 251).to_be_bytes()).collect();
        for codec in ALL {
            let packed = compress(codec, &data);
            assert_eq!(decompress(codec, &packed, data.len()).unwrap(), data, "{codec:?}");
            if codec != Codec::None {
                assert!(packed.len() < data.len(), "{codec:?} compresses");
            }
        }
    }

    #[test]
    fn output_past_the_limit_is_refused() {
        let data = vec![0u8; 1 << 20];
        for codec in ALL {
            let packed = compress(codec, &data);
            assert!(
                matches!(decompress(codec, &packed, 1000), Err(CodecError::TooLarge(1000))),
                "{codec:?}"
            );
        }
    }

    #[test]
    fn raw_snappy_is_read_and_garbage_is_corrupt() {
        let raw = snap::raw::Encoder::new().compress_vec(b"hello hello hello").unwrap();
        assert_eq!(decompress(Codec::Snappy, &raw, 100).unwrap(), b"hello hello hello");
        for codec in [Codec::Gzip, Codec::Snappy, Codec::Lz4, Codec::Zstd] {
            assert!(
                matches!(decompress(codec, b"\x01\x02garbage", 100), Err(CodecError::Corrupt(..))),
                "{codec:?}"
            );
        }
        let mut torn = compress(Codec::Snappy, &[7u8; 70_000]);
        torn.truncate(torn.len() - 3);
        assert!(decompress(Codec::Snappy, &torn, 1 << 20).is_err());
    }

    #[test]
    fn config_values() {
        assert_eq!(Codec::from_config("producer"), Some(None));
        assert_eq!(Codec::from_config("uncompressed"), Some(Some(Codec::None)));
        assert_eq!(Codec::from_config("zstd"), Some(Some(Codec::Zstd)));
        assert_eq!(Codec::from_config("none"), None);
    }
}
