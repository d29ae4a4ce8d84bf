//! Throughput of the log record codec and CRC-32C, next to a plain memory copy of the same size
//! measured in the same run. Prints a markdown table (scripts/bench-codec.sh puts it into
//! docs/performance.md). Run: `cargo bench -p mars-core --bench codec`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use mars_core::crc32c::crc32c;
use mars_core::lamport::{HostId, Stamp};
use mars_core::logrec::{encode_record, record_len, LogReader, Op, RecordHeader};

/// Runs `f` (which processes `bytes` bytes) repeatedly for about `budget`; returns GB/s.
fn gbps(bytes: usize, budget: Duration, mut f: impl FnMut()) -> f64 {
    for _ in 0..3 {
        f();
    }
    let start = Instant::now();
    let mut rounds = 0u64;
    while start.elapsed() < budget {
        f();
        rounds += 1;
    }
    (bytes as f64 * rounds as f64) / start.elapsed().as_secs_f64() / 1e9
}

fn main() {
    let budget = Duration::from_millis(std::env::var("BENCH_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(1000));
    println!("| size | memcpy GB/s | crc32c GB/s | encode record GB/s | read+verify GB/s | encode / memcpy |");
    println!("|---:|---:|---:|---:|---:|---:|");
    for &size in &[4096usize, 1 << 20] {
        let data: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
        let mut copy = vec![0u8; size];
        let mut rec = vec![0u8; record_len(size)];
        let header =
            RecordHeader { op: Op::Write, seq: 1, stamp: Stamp::new(1, HostId(7)), sector: 0, length: size as u32 };
        let memcpy = gbps(size, budget, || {
            copy.copy_from_slice(black_box(&data));
            black_box(&copy);
        });
        let crc = gbps(size, budget, || {
            black_box(crc32c(black_box(&data)));
        });
        let encode = gbps(size, budget, || {
            black_box(encode_record(&header, black_box(&data), &mut rec).ok());
        });
        let read = gbps(size, budget, || {
            black_box(LogReader::new(black_box(&rec)).count());
        });
        let label = if size >= 1 << 20 { format!("{} MiB", size >> 20) } else { format!("{} KiB", size >> 10) };
        println!("| {label} | {memcpy:.2} | {crc:.2} | {encode:.2} | {read:.2} | {:.2} |", encode / memcpy);
    }
}
