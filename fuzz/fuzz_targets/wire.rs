//! The sync wire format: arbitrary bytes through the frame reader of the
//! libp2p codec and the message decoder. Nothing may panic, allocate
//! without bound or decode into a message that does not encode back to
//! itself; the per-message caps must hold after a successful `check`.

#![no_main]

use convene_node::net::{Inbound, SyncCodec};
use convene_node::sync::wire::{self, MAX_MESSAGE_BYTES, Request, Response};
use futures::executor::block_on;
use libfuzzer_sys::fuzz_target;
use libp2p::StreamProtocol;
use libp2p::request_response::Codec;

fn roundtrip<T>(bytes: &[u8])
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    if let Ok(msg) = wire::decode::<T>(bytes) {
        let again = wire::encode(&msg);
        let back: T = wire::decode(&again).expect("an encoded message decodes");
        assert_eq!(back, msg);
    }
}

fuzz_target!(|data: &[u8]| {
    // The message decoder on its own.
    roundtrip::<Request>(data);
    roundtrip::<Response>(data);
    if let Ok(r) = wire::decode::<Request>(data)
        && r.check().is_ok()
    {
        let _ = r.kind();
        if let Request::PutChanges { changes, erased } = r {
            let _ = wire::into_signed(changes, erased);
        }
    }
    if let Ok(r) = wire::decode::<Response>(data) {
        let _ = r.check();
    }

    // The codec: the same bytes as a stream (length prefix included).
    let protocol = StreamProtocol::new(wire::PROTOCOL);
    let mut codec = SyncCodec::default();
    let mut io = futures::io::Cursor::new(data);
    match block_on(codec.read_request(&protocol, &mut io)) {
        Ok(Inbound::Request(r)) => {
            // The frame's body is exactly one message: with a byte more it
            // is refused.
            let len = u32::from_be_bytes(data[..4].try_into().unwrap()) as usize;
            assert!(len <= MAX_MESSAGE_BYTES);
            let mut longer = data[4..4 + len].to_vec();
            assert_eq!(wire::decode::<Request>(&longer), Ok(r));
            longer.push(0);
            assert!(wire::decode::<Request>(&longer).is_err(), "trailing bytes");
        }
        Ok(Inbound::Invalid(_)) | Err(_) => {}
    }
    let mut io = futures::io::Cursor::new(data);
    let _ = block_on(codec.read_response(&protocol, &mut io));
    assert!(codec.counters.received() <= 2 * (data.len() as u64));
});
