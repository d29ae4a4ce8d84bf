//! Feeds arbitrary bytes to the transaction log reader: it must never panic, never report a
//! valid end beyond its input, and every record it accepts must re-encode to the same bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mars_core::logrec::{encode_record, LogReader};

fuzz_target!(|data: &[u8]| {
    let mut reader = LogReader::new(data);
    let mut buf = vec![0u8; 0];
    for rec in reader.by_ref() {
        buf.resize(rec.disk_len(), 0);
        let n = encode_record(&rec.header, rec.data, &mut buf).expect("accepted records re-encode");
        assert_eq!(&buf[..n], &data[rec.offset..rec.end()]);
    }
    assert!(reader.valid_end() <= data.len());
    assert!(reader.stop().is_some());
});
