//! SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104), for peer authentication and block digests.
//!
//! Plain Rust on `core` only: no allocation, no unsafe, no tables beyond the 64 round constants,
//! so mars.ko and userspace compute the same digests with the same code. [`ct_eq`] compares MACs
//! in time that does not depend on where they differ.

use core::hint::black_box;

/// Bytes in a SHA-256 digest.
pub const DIGEST_LEN: usize = 32;
/// Bytes in a SHA-256 input block (also the HMAC key block).
pub const BLOCK_LEN: usize = 64;

/// Round constants: the first 32 bits of the fractional parts of the cube roots of the first 64
/// primes.
const K: [u32; 64] = [
    0x428a_2f98,
    0x7137_4491,
    0xb5c0_fbcf,
    0xe9b5_dba5,
    0x3956_c25b,
    0x59f1_11f1,
    0x923f_82a4,
    0xab1c_5ed5,
    0xd807_aa98,
    0x1283_5b01,
    0x2431_85be,
    0x550c_7dc3,
    0x72be_5d74,
    0x80de_b1fe,
    0x9bdc_06a7,
    0xc19b_f174,
    0xe49b_69c1,
    0xefbe_4786,
    0x0fc1_9dc6,
    0x240c_a1cc,
    0x2de9_2c6f,
    0x4a74_84aa,
    0x5cb0_a9dc,
    0x76f9_88da,
    0x983e_5152,
    0xa831_c66d,
    0xb003_27c8,
    0xbf59_7fc7,
    0xc6e0_0bf3,
    0xd5a7_9147,
    0x06ca_6351,
    0x1429_2967,
    0x27b7_0a85,
    0x2e1b_2138,
    0x4d2c_6dfc,
    0x5338_0d13,
    0x650a_7354,
    0x766a_0abb,
    0x81c2_c92e,
    0x9272_2c85,
    0xa2bf_e8a1,
    0xa81a_664b,
    0xc24b_8b70,
    0xc76c_51a3,
    0xd192_e819,
    0xd699_0624,
    0xf40e_3585,
    0x106a_a070,
    0x19a4_c116,
    0x1e37_6c08,
    0x2748_774c,
    0x34b0_bcb5,
    0x391c_0cb3,
    0x4ed8_aa4a,
    0x5b9c_ca4f,
    0x682e_6ff3,
    0x748f_82ee,
    0x78a5_636f,
    0x84c8_7814,
    0x8cc7_0208,
    0x90be_fffa,
    0xa450_6ceb,
    0xbef9_a3f7,
    0xc671_78f2,
];

/// Initial hash value: the first 32 bits of the fractional parts of the square roots of the
/// first 8 primes.
const H0: [u32; 8] =
    [0x6a09_e667, 0xbb67_ae85, 0x3c6e_f372, 0xa54f_f53a, 0x510e_527f, 0x9b05_688c, 0x1f83_d9ab, 0x5be0_cd19];

/// Message padding: a one bit, then zeros (at most a whole block of it is ever needed).
const PADDING: [u8; BLOCK_LEN] = {
    let mut p = [0u8; BLOCK_LEN];
    p[0] = 0x80;
    p
};

/// Processes one 64-byte block into `state`.
fn compress(state: &mut [u32; 8], block: &[u8; BLOCK_LEN]) {
    // Message schedule as a 16-word ring: w[i & 15] holds word i of the 64.
    let mut w = [0u32; 16];
    // `chunks_exact(4)` yields exactly 4-byte slices, so bytes[0..4] are in bounds.
    for (word, bytes) in w.iter_mut().zip(block.chunks_exact(4)) {
        *word = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    }
    let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = *state;
    for (i, &k) in K.iter().enumerate() {
        if i >= 16 {
            let w15 = w[(i + 1) & 15];
            let w2 = w[(i + 14) & 15];
            let s0 = w15.rotate_right(7) ^ w15.rotate_right(18) ^ (w15 >> 3);
            let s1 = w2.rotate_right(17) ^ w2.rotate_right(19) ^ (w2 >> 10);
            w[i & 15] = w[i & 15].wrapping_add(s0).wrapping_add(w[(i + 9) & 15]).wrapping_add(s1);
        }
        let big_s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
        let choose = (e & f) ^ (!e & g);
        let t1 = h.wrapping_add(big_s1).wrapping_add(choose).wrapping_add(k).wrapping_add(w[i & 15]);
        let big_s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
        let majority = (a & b) ^ (a & c) ^ (b & c);
        let t2 = big_s0.wrapping_add(majority);
        h = g;
        g = f;
        f = e;
        e = d.wrapping_add(t1);
        d = c;
        c = b;
        b = a;
        a = t1.wrapping_add(t2);
    }
    for (s, v) in state.iter_mut().zip([a, b, c, d, e, f, g, h]) {
        *s = s.wrapping_add(v);
    }
}

/// A SHA-256 computation over data that arrives in pieces.
#[derive(Clone)]
pub struct Sha256 {
    state: [u32; 8],
    /// Input not yet processed: the first `filled` bytes (always fewer than [`BLOCK_LEN`]).
    pending: [u8; BLOCK_LEN],
    filled: usize,
    /// Total input length in bytes, modulo 2^64 (the standard counts bits modulo 2^64).
    total: u64,
}

impl Default for Sha256 {
    fn default() -> Self {
        Self::new()
    }
}

impl Sha256 {
    /// Starts a new computation.
    pub const fn new() -> Sha256 {
        Sha256 { state: H0, pending: [0; BLOCK_LEN], filled: 0, total: 0 }
    }

    /// Adds `data` to the computation.
    pub fn update(&mut self, data: &[u8]) {
        self.total = self.total.wrapping_add(data.len() as u64);
        let mut data = data;
        if self.filled > 0 {
            let take = BLOCK_LEN.saturating_sub(self.filled).min(data.len());
            let (head, rest) = data.split_at(take);
            // filled + take <= BLOCK_LEN by the choice of `take`.
            if let Some(slot) = self.pending.get_mut(self.filled..self.filled + take) {
                slot.copy_from_slice(head);
            }
            self.filled += take;
            data = rest;
            if self.filled < BLOCK_LEN {
                return;
            }
            compress(&mut self.state, &self.pending);
            self.filled = 0;
        }
        let mut blocks = data.chunks_exact(BLOCK_LEN);
        for block in &mut blocks {
            if let Ok(block) = <&[u8; BLOCK_LEN]>::try_from(block) {
                compress(&mut self.state, block);
            }
        }
        let rest = blocks.remainder();
        // The remainder of `chunks_exact(BLOCK_LEN)` is shorter than BLOCK_LEN.
        if let Some(slot) = self.pending.get_mut(..rest.len()) {
            slot.copy_from_slice(rest);
        }
        self.filled = rest.len();
    }

    /// Completes the computation and returns the digest.
    pub fn finish(mut self) -> [u8; DIGEST_LEN] {
        let bit_len = self.total.wrapping_mul(8);
        // Pad with 0x80 and zeros so that 8 bytes of length complete a block.
        // `filled` < BLOCK_LEN, so the result is 1..=BLOCK_LEN.
        let pad_len = if self.filled < BLOCK_LEN - 8 {
            (BLOCK_LEN - 8).saturating_sub(self.filled)
        } else {
            (2 * BLOCK_LEN - 8).saturating_sub(self.filled)
        };
        self.update(PADDING.get(..pad_len).unwrap_or(&PADDING));
        self.update(&bit_len.to_be_bytes());
        let mut out = [0u8; DIGEST_LEN];
        for (bytes, word) in out.chunks_exact_mut(4).zip(self.state) {
            bytes.copy_from_slice(&word.to_be_bytes());
        }
        out
    }
}

/// The SHA-256 digest of `data`.
pub fn sha256(data: &[u8]) -> [u8; DIGEST_LEN] {
    let mut h = Sha256::new();
    h.update(data);
    h.finish()
}

/// Overwrites key material before its memory is reused (best effort: `black_box` keeps the
/// compiler from dropping the stores as dead).
fn wipe(bytes: &mut [u8]) {
    bytes.fill(0);
    black_box(bytes);
}

/// An HMAC-SHA256 computation (RFC 2104) over data that arrives in pieces.
pub struct HmacSha256 {
    /// Hash of the inner key block followed by the message so far.
    inner: Sha256,
    /// The key block XOR 0x5c, for the outer hash.
    outer_key: [u8; BLOCK_LEN],
}

impl HmacSha256 {
    /// Starts a MAC computation with `key`; keys longer than a block are hashed first, as the
    /// standard says.
    pub fn new(key: &[u8]) -> HmacSha256 {
        let mut block = [0u8; BLOCK_LEN];
        if key.len() > BLOCK_LEN {
            let mut digest = sha256(key);
            if let Some(slot) = block.get_mut(..DIGEST_LEN) {
                slot.copy_from_slice(&digest);
            }
            wipe(&mut digest);
        } else if let Some(slot) = block.get_mut(..key.len()) {
            slot.copy_from_slice(key);
        }
        let mut inner_key = block;
        let mut outer_key = block;
        for (i, o) in inner_key.iter_mut().zip(outer_key.iter_mut()) {
            *i ^= 0x36;
            *o ^= 0x5c;
        }
        let mut inner = Sha256::new();
        inner.update(&inner_key);
        wipe(&mut inner_key);
        wipe(&mut block);
        HmacSha256 { inner, outer_key }
    }

    /// Adds `data` to the message.
    pub fn update(&mut self, data: &[u8]) {
        self.inner.update(data);
    }

    /// Completes the computation and returns the MAC.
    pub fn finish(mut self) -> [u8; DIGEST_LEN] {
        let mut inner_digest = core::mem::take(&mut self.inner).finish();
        let mut outer = Sha256::new();
        outer.update(&self.outer_key);
        outer.update(&inner_digest);
        wipe(&mut inner_digest);
        wipe(&mut self.outer_key);
        outer.finish()
    }
}

impl Drop for HmacSha256 {
    fn drop(&mut self) {
        wipe(&mut self.outer_key);
    }
}

/// HMAC-SHA256 with `key` over the concatenation of `parts`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; DIGEST_LEN] {
    let mut mac = HmacSha256::new(key);
    for part in parts {
        mac.update(part);
    }
    mac.finish()
}

/// Whether `a` and `b` are equal, in time that depends only on their lengths (for comparing a
/// received MAC with the expected one without telling an attacker how many bytes matched).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff = black_box(diff | (x ^ y));
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn fips_180_2_vectors() {
        assert_eq!(sha256(b"abc").to_vec(), hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
        assert_eq!(
            sha256(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq").to_vec(),
            hex("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        );
        let mut h = Sha256::new();
        for _ in 0..1000 {
            h.update(&[b'a'; 1000]);
        }
        assert_eq!(h.finish().to_vec(), hex("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"));
        assert_eq!(sha256(b"").to_vec(), hex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    }

    #[test]
    fn padding_boundaries_match_one_shot_and_byte_wise() {
        // Lengths around the 55/56/64-byte padding edges, fed whole and byte by byte.
        for len in [0usize, 1, 55, 56, 57, 63, 64, 65, 119, 120, 128] {
            let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut h = Sha256::new();
            for b in &data {
                h.update(core::slice::from_ref(b));
            }
            assert_eq!(h.finish(), sha256(&data), "len {len}");
        }
        assert_eq!(
            sha256(&[0u8; 55]).to_vec(),
            hex("02779466cdec163811d078815c633f21901413081449002f24aa3e80f0b88ef7")
        );
        assert_eq!(
            sha256(&[0u8; 64]).to_vec(),
            hex("f5a5fd42d16a20302798ef6ed309979b43003d2320d9f0e8ea9831a92759fb4b")
        );
    }

    #[test]
    fn rfc_4231_vectors() {
        let cases: [(Vec<u8>, Vec<u8>, &str); 6] = [
            (vec![0x0b; 20], b"Hi There".to_vec(), "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
            (
                b"Jefe".to_vec(),
                b"what do ya want for nothing?".to_vec(),
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
            (vec![0xaa; 20], vec![0xdd; 50], "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
            ((1u8..=25).collect(), vec![0xcd; 50], "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
            (
                vec![0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First".to_vec(),
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            ),
            (
                vec![0xaa; 131],
                b"This is a test using a larger than block-size key and a larger than block-size data. \
                  The key needs to be hashed before being used by the HMAC algorithm."
                    .to_vec(),
                "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
            ),
        ];
        for (key, data, expected) in &cases {
            assert_eq!(hmac_sha256(key, &[data]).to_vec(), hex(expected));
            let (a, b) = data.split_at(data.len() / 3);
            assert_eq!(hmac_sha256(key, &[a, b]).to_vec(), hex(expected));
        }
    }

    #[test]
    fn ct_eq_compares_whole_slices() {
        assert!(ct_eq(b"", b""));
        assert!(ct_eq(&[1, 2, 3], &[1, 2, 3]));
        assert!(!ct_eq(&[1, 2, 3], &[1, 2, 4]));
        assert!(!ct_eq(&[0, 2, 3], &[1, 2, 3]));
        assert!(!ct_eq(&[1, 2], &[1, 2, 3]));
    }

    proptest! {
        #[test]
        fn streaming_equals_one_shot(data in proptest::collection::vec(any::<u8>(), 0..600),
                                     cuts in proptest::collection::vec(any::<proptest::sample::Index>(), 0..6)) {
            let mut points: Vec<usize> = cuts.iter().map(|c| c.index(data.len() + 1)).collect();
            points.sort_unstable();
            let mut h = Sha256::new();
            let mut mac = HmacSha256::new(b"key");
            let mut at = 0;
            for p in points.into_iter().chain([data.len()]) {
                h.update(&data[at..p]);
                mac.update(&data[at..p]);
                at = p;
            }
            prop_assert_eq!(h.finish(), sha256(&data));
            prop_assert_eq!(mac.finish(), hmac_sha256(b"key", &[&data]));
        }
    }
}
