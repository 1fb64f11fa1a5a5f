//! Test helpers: start the real binary on port 0 in a fresh temp dir, find its port in the
//! log, check the node we reach is the one we started, and speak raw Kafka frames.

#![allow(dead_code)]

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, MetadataRequest, MetadataResponse, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A running broker process.
pub struct TestBroker {
    pub child: Child,
    pub port: u16,
    pub cluster_id: String,
    pub node_id: i32,
    pub log: Arc<Mutex<Vec<String>>>,
    pub dir: tempfile::TempDir,
}

impl TestBroker {
    /// Starts `raftstream` with extra flags in a fresh temp dir; waits for its "listening" line.
    pub fn start(extra: &[&str]) -> TestBroker {
        TestBroker::launch(tempfile::tempdir().unwrap(), extra)
    }

    /// Kills the process (SIGKILL) and starts a new one on the same data dir.
    pub fn restart(mut self, extra: &[&str]) -> TestBroker {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        TestBroker::launch(dir, extra)
    }

    fn launch(dir: tempfile::TempDir, extra: &[&str]) -> TestBroker {
        let mut child = Command::new(env!("CARGO_BIN_EXE_raftstream"))
            .args([
                "--data-dir",
                dir.path().join("data").to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
                "--http-listen",
                "127.0.0.1:0",
                "--node-id",
                "7",
            ])
            .args(extra)
            .env(
                "RUST_LOG",
                std::env::var("RS_TEST_BROKER_LOG").unwrap_or_else(|_| "info,openraft=warn".into()),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start raftstream");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        let log_probe = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(found) = parse_listening(&line) {
                    let _ = tx.send(found);
                }
                sink.lock().unwrap().push(line);
            }
        });
        let (port, cluster_id) = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|e| {
            panic!(
                "broker did not report its port ({e}): {}",
                log_probe.lock().unwrap().join("\n")
            )
        });
        let b = TestBroker {
            child,
            port,
            cluster_id,
            node_id: 7,
            log,
            dir,
        };
        let md = b.metadata();
        assert_eq!(
            md.cluster_id.as_ref().map(|s| s.to_string()).as_deref(),
            Some(b.cluster_id.as_str()),
            "reached another cluster"
        );
        assert_eq!(
            md.brokers.iter().map(|br| br.node_id.0).collect::<Vec<_>>(),
            vec![7],
            "reached another node"
        );
        b.wait_ready();
        b
    }

    /// Waits until `/health/ready` says every partition recovered and has a leader (a produce
    /// before that gets a retriable NOT_LEADER_OR_FOLLOWER).
    fn wait_ready(&self) {
        let http_port: u16 = self
            .log_text()
            .split("http (health) listening on 127.0.0.1:")
            .nth(1)
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
            .expect("the http port is logged before the Kafka port");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let mut answer = String::new();
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", http_port)) {
                let _ = s.write_all(b"GET /health/ready HTTP/1.0\r\n\r\n");
                let _ = s.read_to_string(&mut answer);
            }
            if answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200") {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "broker never ready: {answer}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A new raw connection.
    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s
    }

    /// Metadata for all topics over a fresh connection.
    pub fn metadata(&self) -> MetadataResponse {
        let mut s = self.connect();
        let req = MetadataRequest::default().with_topics(None);
        send_request(&mut s, ApiKey::Metadata, 12, 1, &req);
        let body = read_response(&mut s, ApiKey::Metadata, 12).expect("metadata response");
        let mut body = body;
        MetadataResponse::decode(&mut body, 12).unwrap()
    }

    /// Everything the broker logged so far.
    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// (port, cluster id) from "raftstream listening on 127.0.0.1:PORT (node N of cluster ID)".
fn parse_listening(line: &str) -> Option<(u16, String)> {
    let rest = line.split("raftstream listening on 127.0.0.1:").nth(1)?;
    let port = rest.split(' ').next()?.parse().ok()?;
    let cluster = rest.split("of cluster ").nth(1)?.split(')').next()?.to_string();
    Some((port, cluster))
}

/// Writes one request frame.
pub fn send_request<T: Encodable>(s: &mut TcpStream, key: ApiKey, version: i16, correlation_id: i32, body: &T) {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("raw-test")));
    let mut buf = BytesMut::new();
    header.encode(&mut buf, key.request_header_version(version)).unwrap();
    body.encode(&mut buf, version).unwrap();
    let mut frame = BytesMut::new();
    frame.put_i32(buf.len() as i32);
    frame.extend_from_slice(&buf);
    s.write_all(&frame).unwrap();
}

/// Writes a request frame by hand (for versions the codec cannot encode): header v1 with no
/// client id, then `body`.
pub fn send_raw_request(s: &mut TcpStream, key: i16, version: i16, correlation_id: i32, body: &[u8]) {
    let mut frame = BytesMut::new();
    frame.put_i32(10 + body.len() as i32);
    frame.put_i16(key);
    frame.put_i16(version);
    frame.put_i32(correlation_id);
    frame.put_i16(-1);
    frame.extend_from_slice(body);
    s.write_all(&frame).unwrap();
}

/// Reads one response frame and strips its header; `None` if the connection closed.
pub fn read_response(s: &mut TcpStream, key: ApiKey, version: i16) -> Option<Bytes> {
    let mut frame = read_frame(s)?;
    let hv = if key == ApiKey::ApiVersions {
        0
    } else {
        key.response_header_version(version)
    };
    ResponseHeader::decode(&mut frame, hv).unwrap();
    Some(frame)
}

/// Reads one raw frame body; `None` on EOF.
pub fn read_frame(s: &mut TcpStream) -> Option<Bytes> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).ok()?;
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).ok()?;
    Some(Bytes::from(body))
}

/// True if the peer closed the connection (EOF or reset) within the read timeout.
pub fn closed(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 1];
    match s.read(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
    }
}

/// An uncompressed magic-2 batch of `values`, encoded by kafka-protocol.
pub fn batch(values: &[&[u8]]) -> Bytes {
    idempotent_batch(values, -1, -1, -1)
}

/// A batch from producer `(pid, epoch)` whose first record has sequence `first_seq`.
pub fn idempotent_batch(values: &[&[u8]], pid: i64, epoch: i16, first_seq: i32) -> Bytes {
    use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: pid,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // Constant offset-minus-sequence keeps all records in one batch.
            sequence: if pid < 0 { i as i32 - 1 } else { first_seq + i as i32 },
            timestamp: 1_700_000_000_000,
            key: None,
            value: Some(Bytes::copy_from_slice(v)),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    buf.freeze()
}

/// The correlation id at the start of a response frame.
pub fn correlation_id(frame: &Bytes) -> i32 {
    (&frame[..4]).get_i32()
}

/// An acks=all Produce request of `records` to partition 0 of `topic`.
pub fn produce_request(topic: &'static str, records: Bytes) -> kafka_protocol::messages::ProduceRequest {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    kafka_protocol::messages::ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(kafka_protocol::messages::TopicName(StrBytes::from_static_str(topic)))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(records))])])
}

/// Sends one request and decodes its response (panics on a closed connection or bad bytes).
pub fn call<Req: Encodable, Resp: Decodable>(s: &mut TcpStream, key: ApiKey, v: i16, req: &Req) -> Resp {
    send_request(s, key, v, 1000 + v as i32, req);
    let mut body = read_response(s, key, v).unwrap_or_else(|| panic!("{key:?} v{v}: connection closed"));
    Resp::decode(&mut body, v).unwrap_or_else(|e| panic!("{key:?} v{v}: undecodable response: {e}"))
}

/// JoinGroup, repeated while the group's offsets partition is still loading
/// (COORDINATOR_LOAD_IN_PROGRESS, which clients retry).
pub fn join_once_loaded(
    s: &mut TcpStream,
    v: i16,
    req: &kafka_protocol::messages::JoinGroupRequest,
) -> kafka_protocol::messages::JoinGroupResponse {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let resp: kafka_protocol::messages::JoinGroupResponse = call(s, ApiKey::JoinGroup, v, req);
        let loading = kafka_protocol::error::ResponseError::CoordinatorLoadInProgress.code();
        if resp.error_code != loading || std::time::Instant::now() > deadline {
            return resp;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
