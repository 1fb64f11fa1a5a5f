//! Length-prefixed Kafka frames: a 4-byte big-endian size, then that many bytes.

use bytes::{Buf, Bytes, BytesMut};

/// Why a frame could not be taken from the buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum FrameError {
    /// Negative, zero-length or larger than allowed: the connection must be closed.
    BadLength(i32),
}

/// Takes one whole frame body from `buf` if it is there; `Ok(None)` means "read more".
pub fn take_frame(buf: &mut BytesMut, max_frame_bytes: i32) -> Result<Option<Bytes>, FrameError> {
    // A request header alone is at least 8 bytes (api key, version, correlation id).
    take_sized(buf, 8, max_frame_bytes)
}

/// Takes one whole length-prefixed body of `min_bytes..=max_bytes` (a raw SASL token after
/// SaslHandshake v0 may be empty); `Ok(None)` means "read more".
pub fn take_sized(buf: &mut BytesMut, min_bytes: i32, max_bytes: i32) -> Result<Option<Bytes>, FrameError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if !(min_bytes..=max_bytes).contains(&len) {
        return Err(FrameError::BadLength(len));
    }
    if buf.len() < 4 + len as usize {
        buf.reserve(4 + len as usize - buf.len());
        return Ok(None);
    }
    buf.advance(4);
    Ok(Some(buf.split_to(len as usize).freeze()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_and_bounds() {
        let mut b = BytesMut::from(&[0u8, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8, 0][..]);
        assert_eq!(take_frame(&mut b, 100).unwrap().unwrap().len(), 8);
        assert_eq!(take_frame(&mut b, 100).unwrap(), None);
        let mut neg = BytesMut::from(&(-1i32).to_be_bytes()[..]);
        assert_eq!(take_frame(&mut neg, 100), Err(FrameError::BadLength(-1)));
        let mut huge = BytesMut::from(&1000i32.to_be_bytes()[..]);
        assert_eq!(take_frame(&mut huge, 100), Err(FrameError::BadLength(1000)));
        let mut tiny = BytesMut::from(&3i32.to_be_bytes()[..]);
        assert_eq!(take_frame(&mut tiny, 100), Err(FrameError::BadLength(3)));
    }
}
