//! The sync wire format: arbitrary bytes through the frame reader of the
//! libp2p codec and the message decoder. Nothing may panic, allocate
//! without bound or decode into a message that does not encode back to
//! itself; a frame decodes whole. The checks are
//! [`convene_fuzz::wire`] (also run over the seed corpus by the normal
//! suite: `node/tests/fuzz_seeds.rs`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| convene_fuzz::wire(data));
