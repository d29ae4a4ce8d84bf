#!/usr/bin/env bash
# Measures encode/checksum throughput of the log record codec next to a plain memory copy in the
# same run (cargo bench -p mars-core --bench codec) and prints the markdown table.
source "$(dirname "$0")/common.sh"
cargo bench --quiet --manifest-path "$MARS_ROOT/Cargo.toml" -p mars-core --bench codec 2>/dev/null | grep '^|'
