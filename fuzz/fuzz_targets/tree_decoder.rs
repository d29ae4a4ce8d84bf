//! Feeds arbitrary bytes to the tree chunk decoder and the /mars link-target parser: they must
//! never panic, and every entry they accept must be valid and re-encode to an equal entry.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mars_core::tree_codec::{decode_chunk, format_link_target, parse_link_target, ChunkWriter};

fuzz_target!(|data: &[u8]| {
    if let Ok(entries) = decode_chunk(data) {
        let mut out = vec![0u8; data.len().max(64)];
        let mut writer = ChunkWriter::new(&mut out).expect("buffer holds a chunk header");
        for entry in entries.flatten() {
            entry.validate().expect("decoded entries are valid");
            assert!(writer.push(&entry).expect("valid entries encode"), "re-encoding fits");
        }
    }
    // The same bytes as a symlink target of a fixed, valid key.
    if let Ok(entry) = parse_link_target("resource-r0/primary", data) {
        let mut out = vec![0u8; data.len() + 64];
        let n = format_link_target(&entry, &mut out).expect("parsed entries format");
        assert_eq!(&out[..n], data, "link targets have one canonical form");
    }
});
