//! ListOffsets v0, for old clients: old-style offset lists ("up to N offsets before a time", one
//! per segment; `PartitionLog::offsets_before`). kafka-protocol 0.18 carries Kafka 4.0's
//! schemas, which dropped v0 (KIP-896), so its two small structures are read and written here,
//! every length checked against the bytes left.

use super::context::Broker;
use super::leader_view::leader_view;
use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Most offsets one response lists in all, whatever the client asks: a 16-byte partition entry
/// must not buy kilobytes of answer many times over.
const MAX_OFFSETS: usize = 1024;
/// Bytes of one partition entry (index, timestamp, max offsets) and the least of one topic
/// (name length, partition count).
const PARTITION_BYTES: usize = 16;
const MIN_TOPIC_BYTES: usize = 6;

/// One partition asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionV0 {
    pub index: i32,
    pub timestamp: i64,
    pub max_num_offsets: i32,
}

/// A ListOffsets v0 request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListOffsetsV0 {
    pub replica_id: i32,
    pub topics: Vec<(String, Vec<PartitionV0>)>,
}

/// One partition's answer: (index, error code, offsets).
type PartitionAnswer = (i32, i16, Vec<i64>);

fn count(buf: &mut Bytes, each_bytes: usize) -> anyhow::Result<usize> {
    anyhow::ensure!(buf.remaining() >= 4, "short array length");
    let n = buf.get_i32();
    anyhow::ensure!(n >= 0, "null or negative array length {n}");
    // Every element takes at least `each_bytes`: a count the frame cannot hold is refused
    // before anything is allocated for it.
    anyhow::ensure!(
        (n as usize).saturating_mul(each_bytes) <= buf.remaining(),
        "array longer than the frame"
    );
    Ok(n as usize)
}

fn string(buf: &mut Bytes) -> anyhow::Result<String> {
    anyhow::ensure!(buf.remaining() >= 2, "short string length");
    let len = buf.get_i16();
    anyhow::ensure!(len >= 0 && len as usize <= buf.remaining(), "bad string length {len}");
    Ok(String::from_utf8(buf.split_to(len as usize).to_vec())?)
}

/// Decodes a v0 body (after the request header).
pub fn decode(buf: &mut Bytes) -> anyhow::Result<ListOffsetsV0> {
    anyhow::ensure!(buf.remaining() >= 4, "short replica id");
    let replica_id = buf.get_i32();
    let mut topics = Vec::new();
    for _ in 0..count(buf, MIN_TOPIC_BYTES)? {
        let name = string(buf)?;
        let partitions = (0..count(buf, PARTITION_BYTES)?)
            .map(|_| PartitionV0 {
                index: buf.get_i32(),
                timestamp: buf.get_i64(),
                max_num_offsets: buf.get_i32(),
            })
            .collect();
        topics.push((name, partitions));
    }
    Ok(ListOffsetsV0 { replica_id, topics })
}

/// Answers a v0 request: each partition's offsets from its leader, or an error code.
pub fn handle(broker: &dyn Broker, req: &ListOffsetsV0) -> Vec<(String, Vec<PartitionAnswer>)> {
    let now_ms = crate::storage::log::segment::now_ms();
    let mut budget = MAX_OFFSETS;
    req.topics
        .iter()
        .map(|(name, partitions)| {
            let answers = partitions
                .iter()
                .map(|p| match leader_view(broker, name, p.index, -1) {
                    Ok(view) => {
                        let hwm = *view.high_watermark.borrow();
                        let max = (p.max_num_offsets.max(0) as usize).min(budget);
                        let offsets = view.log.offsets_before(p.timestamp, max, hwm, now_ms);
                        budget -= offsets.len();
                        (p.index, 0, offsets)
                    }
                    Err(code) => {
                        crate::observability::note_error("ListOffsets", code);
                        (p.index, code.code(), Vec::new())
                    }
                })
                .collect();
            (name.clone(), answers)
        })
        .collect()
}

/// The whole response frame: length, header v0 (the correlation id), body.
pub fn encode(correlation_id: i32, topics: &[(String, Vec<PartitionAnswer>)]) -> Bytes {
    let mut body = BytesMut::new();
    body.put_i32(correlation_id);
    body.put_i32(topics.len() as i32);
    for (name, partitions) in topics {
        body.put_i16(name.len() as i16);
        body.put_slice(name.as_bytes());
        body.put_i32(partitions.len() as i32);
        for (index, code, offsets) in partitions {
            body.put_i32(*index);
            body.put_i16(*code);
            body.put_i32(offsets.len() as i32);
            offsets.iter().for_each(|o| body.put_i64(*o));
        }
    }
    let mut frame = BytesMut::with_capacity(4 + body.len());
    frame.put_i32(body.len() as i32);
    frame.extend_from_slice(&body);
    frame.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (partition, timestamp, max offsets) of one topic's partitions.
    type Asked<'a> = &'a [(i32, i64, i32)];

    fn body(topics: &[(&str, Asked)]) -> Bytes {
        let mut b = BytesMut::new();
        b.put_i32(-1);
        b.put_i32(topics.len() as i32);
        for (name, partitions) in topics {
            b.put_i16(name.len() as i16);
            b.put_slice(name.as_bytes());
            b.put_i32(partitions.len() as i32);
            for (i, t, m) in partitions.iter() {
                b.put_i32(*i);
                b.put_i64(*t);
                b.put_i32(*m);
            }
        }
        b.freeze()
    }

    #[test]
    fn decodes_what_old_clients_send() {
        let req = decode(&mut body(&[("t", &[(0, -1, 1), (3, -2, 5)])])).unwrap();
        assert_eq!(req.replica_id, -1);
        assert_eq!(req.topics[0].0, "t");
        assert_eq!(
            req.topics[0].1[1],
            PartitionV0 {
                index: 3,
                timestamp: -2,
                max_num_offsets: 5
            }
        );
    }

    #[test]
    fn refuses_counts_and_lengths_the_frame_cannot_hold() {
        let mut huge = BytesMut::new();
        huge.put_i32(-1);
        huge.put_i32(i32::MAX);
        assert!(decode(&mut huge.freeze()).is_err());
        let full = body(&[("topic", &[(0, -1, 1)])]);
        for cut in 0..full.len() {
            assert!(decode(&mut full.slice(..cut)).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn encodes_the_v0_response() {
        let frame = encode(7, &[("t".into(), vec![(0, 0, vec![42, 0])])]);
        let mut b = frame.clone();
        assert_eq!(b.get_i32() as usize, frame.len() - 4);
        assert_eq!((b.get_i32(), b.get_i32(), b.get_i16()), (7, 1, 1));
        b.advance(1);
        assert_eq!((b.get_i32(), b.get_i32(), b.get_i16(), b.get_i32()), (1, 0, 0, 2));
        assert_eq!((b.get_i64(), b.get_i64(), b.remaining()), (42, 0, 0));
    }
}
