//! Little-endian cursors over byte slices: the one way every MARS format is read and written.
//!
//! All multi-byte integers on disk and on the wire are little-endian. A [`Writer`] never writes
//! past its buffer and a [`Reader`] never reads past its input: both report the shortfall
//! instead, so no length from a file or a peer is ever trusted.

use core::fmt;

/// The buffer or input ended before the value did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Short {
    /// Bytes that were needed at the point of failure.
    pub needed: usize,
    /// Bytes that were left.
    pub available: usize,
}

impl fmt::Display for Short {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "needed {} more bytes, only {} left", self.needed, self.available)
    }
}

/// Writes values one after another into a caller's buffer.
pub struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    /// Starts writing at the beginning of `buf`.
    pub fn new(buf: &'a mut [u8]) -> Writer<'a> {
        Writer { buf, pos: 0 }
    }

    /// Goes on writing after the first `pos` bytes of `buf`, which an earlier writer wrote and
    /// which count as written (at most `buf.len()`).
    pub fn resume(buf: &'a mut [u8], pos: usize) -> Writer<'a> {
        let pos = pos.min(buf.len());
        Writer { buf, pos }
    }

    /// Bytes written so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Appends raw bytes.
    pub fn bytes(&mut self, data: &[u8]) -> Result<(), Short> {
        let available = self.buf.len() - self.pos;
        if data.len() > available {
            return Err(Short { needed: data.len(), available });
        }
        self.buf[self.pos..self.pos + data.len()].copy_from_slice(data);
        self.pos += data.len();
        Ok(())
    }

    /// Appends `n` zero bytes.
    pub fn zeros(&mut self, n: usize) -> Result<(), Short> {
        let available = self.buf.len() - self.pos;
        if n > available {
            return Err(Short { needed: n, available });
        }
        self.buf[self.pos..self.pos + n].fill(0);
        self.pos += n;
        Ok(())
    }

    /// Appends a byte.
    pub fn u8(&mut self, v: u8) -> Result<(), Short> {
        self.bytes(&[v])
    }

    /// Appends a little-endian `u16`.
    pub fn u16(&mut self, v: u16) -> Result<(), Short> {
        self.bytes(&v.to_le_bytes())
    }

    /// Appends a little-endian `u32`.
    pub fn u32(&mut self, v: u32) -> Result<(), Short> {
        self.bytes(&v.to_le_bytes())
    }

    /// Appends a little-endian `u64`.
    pub fn u64(&mut self, v: u64) -> Result<(), Short> {
        self.bytes(&v.to_le_bytes())
    }

    /// The bytes written so far.
    pub fn written(&self) -> &[u8] {
        &self.buf[..self.pos]
    }

    /// Mutable access to the bytes written so far (to patch a checksum in afterwards).
    pub fn written_mut(&mut self) -> &mut [u8] {
        &mut self.buf[..self.pos]
    }
}

/// Reads values one after another from an input slice.
#[derive(Clone)]
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading at the beginning of `data`.
    pub fn new(data: &'a [u8]) -> Reader<'a> {
        Reader { data, pos: 0 }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    /// Takes the next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], Short> {
        let available = self.remaining();
        if n > available {
            return Err(Short { needed: n, available });
        }
        let out = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// Takes the next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], Short> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    /// Takes a byte.
    pub fn u8(&mut self) -> Result<u8, Short> {
        Ok(self.array::<1>()?[0])
    }

    /// Takes a little-endian `u16`.
    pub fn u16(&mut self) -> Result<u16, Short> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    /// Takes a little-endian `u32`.
    pub fn u32(&mut self) -> Result<u32, Short> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// Takes a little-endian `u64`.
    pub fn u64(&mut self) -> Result<u64, Short> {
        Ok(u64::from_le_bytes(self.array()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_little_endian() {
        let mut buf = [0u8; 15];
        let mut w = Writer::new(&mut buf);
        w.u8(0xab).unwrap();
        w.u16(0x1234).unwrap();
        w.u32(0xdead_beef).unwrap();
        w.u64(0x0102_0304_0506_0708).unwrap();
        assert_eq!(w.position(), 15);
        assert_eq!(&buf[1..3], &[0x34, 0x12]);
        let mut r = Reader::new(&buf);
        assert_eq!(r.u8(), Ok(0xab));
        assert_eq!(r.u16(), Ok(0x1234));
        assert_eq!(r.u32(), Ok(0xdead_beef));
        assert_eq!(r.u64(), Ok(0x0102_0304_0506_0708));
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn never_overruns() {
        let mut buf = [0u8; 3];
        let mut w = Writer::new(&mut buf);
        assert_eq!(w.u32(1), Err(Short { needed: 4, available: 3 }));
        assert_eq!(w.position(), 0);
        let mut r = Reader::new(&buf[..2]);
        assert_eq!(r.u32(), Err(Short { needed: 4, available: 2 }));
        assert_eq!(r.bytes(usize::MAX).unwrap_err().available, 2);
    }
}
