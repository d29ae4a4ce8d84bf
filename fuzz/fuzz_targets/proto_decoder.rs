//! Feeds arbitrary bytes to the wire protocol decoder as if they came from a peer: it must never
//! panic, and every frame it accepts must re-encode to exactly the same bytes.
//!
//! Two paths: the input as a whole frame (header checks, checksums), and, because random bytes
//! rarely pass a CRC, the input as the payload of a message type chosen by its first byte, under
//! a header with a correct payload checksum, so the payload decoders get the fuzzer's attention.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mars_core::crc32c::crc32c;
use mars_core::proto::{decode_frame, decode_message, encode_frame, frame_len, FrameHeader, MessageType, MAX_VERSION};

fuzz_target!(|data: &[u8]| {
    if let Ok((header, message)) = decode_frame(data) {
        let mut out = vec![0u8; frame_len(&message)];
        let n = encode_frame(&message, header.request_id, &mut out).expect("accepted frames re-encode");
        assert_eq!(&out[..n], &data[..n], "one canonical encoding per frame");
    }
    let Some((&selector, payload)) = data.split_first() else { return };
    let kind = MessageType::ALL[usize::from(selector) % MessageType::ALL.len()];
    let Ok(payload_len) = u32::try_from(payload.len()) else { return };
    let header = FrameHeader { version: MAX_VERSION, kind, payload_len, request_id: 7, payload_crc: crc32c(payload) };
    if let Ok(message) = decode_message(&header, payload) {
        let mut out = vec![0u8; frame_len(&message)];
        let n = encode_frame(&message, 7, &mut out).expect("accepted payloads re-encode");
        assert_eq!(&out[out.len() - payload.len()..n], payload, "one canonical encoding per payload");
    }
});
