//! Checks marsadm makes before it writes anything: resource names, the backing block device and
//! the resource size (docs/resource-control.md, "marsadm checks before writing").

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Seek, SeekFrom};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use mars_core::tree::validate_resource_name;

/// Longest resource name marsadm accepts, in bytes. The kernel names the device `mars/NAME` in a
/// disk-name buffer of 32 bytes (`DISK_NAME_LEN`) with its terminating NUL: 32 - 5 - 1 = 26.
pub const MAX_RESOURCE_NAME_LEN: usize = 26;

/// Smallest resource, in bytes (1 MiB).
pub const MIN_SIZE: u64 = 1 << 20;

/// A resource size is a multiple of this many bytes (the kernel's block size).
pub const SIZE_ALIGN: u64 = 4096;

/// `O_EXCL` of Linux's generic ABI (x86, x86_64, arm, aarch64, riscv; alpha, mips, parisc and
/// sparc use other values). Without `O_CREAT`, on a block device it asks for an exclusive open,
/// which fails with `EBUSY` while the device is mounted or held by another user (device mapper,
/// md, another exclusive opener such as mars.ko itself).
const O_EXCL: i32 = 0o200;

/// Which resources a command acts on: one by name, or `all`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One resource, its name checked by [`resource_name`].
    One(String),
    /// Every resource the command applies to.
    All,
}

impl Target {
    /// `all`, or a valid resource name.
    pub fn parse(arg: &str) -> Result<Target> {
        if arg == "all" {
            Ok(Target::All)
        } else {
            Ok(Target::One(resource_name(arg)?.to_string()))
        }
    }
}

/// The error for a resource that is not in the tree.
pub fn unknown_resource(name: &str) -> anyhow::Error {
    anyhow!("unknown resource {name}: `marsadm view all` lists the resources, `marsadm create-resource` makes one")
}

/// Checks `name` as a resource name: the tree's grammar plus [`MAX_RESOURCE_NAME_LEN`].
pub fn resource_name(name: &str) -> Result<&str> {
    if name == "all" {
        bail!("\"all\" is not a resource name here: this command takes the name of one resource");
    }
    validate_resource_name(name.as_bytes()).map_err(|e| anyhow!("{name:?} cannot be used as a resource name: {e}"))?;
    if name.len() > MAX_RESOURCE_NAME_LEN {
        bail!(
            "resource name {name:?} is {} bytes long, the limit is {MAX_RESOURCE_NAME_LEN} (so that /dev/mars/NAME fits \
             the kernel's disk-name limit): choose a shorter name",
            name.len()
        );
    }
    Ok(name)
}

/// The size of the block device at `path`, after checking that it exists, is a block device and
/// is not in use by anyone else.
pub fn block_device_size(path: &Path) -> Result<u64> {
    require_block_device(path)?;
    let mut file = open_exclusive(path)?;
    file.seek(SeekFrom::End(0)).with_context(|| format!("cannot find the size of {}", path.display()))
}

/// Fails unless `path` exists and is a block device.
fn require_block_device(path: &Path) -> Result<()> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => bail!(
            "{} does not exist: give the block device that will hold the resource's data (e.g. /dev/vg0/r0)",
            path.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("cannot look at {}", path.display())),
    };
    if !meta.file_type().is_block_device() {
        bail!(
            "{} is not a block device: MARS keeps a resource's data on a disk, partition or logical volume",
            path.display()
        );
    }
    Ok(())
}

/// Opens the block device at `path` exclusively (for reading; nothing is written).
fn open_exclusive(path: &Path) -> Result<File> {
    OpenOptions::new().read(true).custom_flags(O_EXCL).open(path).map_err(|e| {
        if e.kind() == ErrorKind::ResourceBusy {
            anyhow!(
                "{} is in use (mounted, part of LVM, RAID or device mapper, or open exclusively by another \
                 program or resource): unmount or release it, or choose another device",
                path.display()
            )
        } else {
            anyhow!(e).context(format!("cannot open {}", path.display()))
        }
    })
}

/// The size of a new resource: `requested` if given and valid, else the whole device rounded
/// down to [`SIZE_ALIGN`]. `device_size` is the size of the block device at `device`.
pub fn resource_size(requested: Option<u64>, device_size: u64, device: &Path) -> Result<u64> {
    if device_size < MIN_SIZE {
        bail!(
            "{} holds only {device_size} bytes; a resource needs at least {MIN_SIZE} bytes (1 MiB): choose a larger device",
            device.display()
        );
    }
    let Some(size) = requested else {
        return Ok(device_size - device_size % SIZE_ALIGN);
    };
    if size % SIZE_ALIGN != 0 {
        bail!("--size {size} is not a multiple of {SIZE_ALIGN}: use e.g. {}", (size / SIZE_ALIGN).max(1) * SIZE_ALIGN);
    }
    if size < MIN_SIZE {
        bail!("--size {size} is below the minimum of {MIN_SIZE} bytes (1 MiB)");
    }
    if size > device_size {
        bail!(
            "--size {size} is larger than {} ({device_size} bytes): give a smaller size or a larger device",
            device.display()
        );
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_names_follow_the_tree_grammar_and_the_disk_name_limit() {
        assert_eq!(resource_name("r0").unwrap(), "r0");
        let longest = "a".repeat(MAX_RESOURCE_NAME_LEN);
        assert!(resource_name(&longest).is_ok());
        let e = resource_name(&format!("{longest}b")).unwrap_err();
        assert!(e.to_string().contains("is 27 bytes long, the limit is 26"), "{e}");
        let e = resource_name("R0").unwrap_err();
        assert!(e.to_string().contains("cannot be used as a resource name"), "{e}");
        let e = resource_name("all").unwrap_err();
        assert!(e.to_string().contains("one resource"), "{e}");
        assert!(resource_name("").is_err());
        assert!(resource_name("a/b").is_err());
        assert_eq!(Target::parse("all").unwrap(), Target::All);
        assert_eq!(Target::parse("r0").unwrap(), Target::One("r0".into()));
        assert!(Target::parse("r 0").is_err());
    }

    #[test]
    fn missing_paths_and_other_file_types_are_not_block_devices() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = block_device_size(&dir.path().join("nope")).unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
        let file = dir.path().join("file");
        fs::write(&file, vec![0u8; 4096]).unwrap();
        let e = block_device_size(&file).unwrap_err();
        assert!(e.to_string().contains("is not a block device"), "{e}");
        let e = block_device_size(dir.path()).unwrap_err();
        assert!(e.to_string().contains("is not a block device"), "{e}");
        let e = block_device_size(Path::new("/dev/null")).unwrap_err();
        assert!(e.to_string().contains("is not a block device"), "{e}");
    }

    #[test]
    fn sizes_default_to_the_device_and_are_checked() {
        let dev = Path::new("/dev/vda");
        let gib = 1u64 << 30;
        assert_eq!(resource_size(None, gib + 100, dev).unwrap(), gib);
        assert_eq!(resource_size(Some(MIN_SIZE), gib, dev).unwrap(), MIN_SIZE);
        assert_eq!(resource_size(Some(gib), gib, dev).unwrap(), gib);
        let e = resource_size(None, MIN_SIZE - 1, dev).unwrap_err();
        assert!(e.to_string().contains("at least 1048576 bytes"), "{e}");
        let e = resource_size(Some(MIN_SIZE + 1), gib, dev).unwrap_err();
        assert!(e.to_string().contains("not a multiple of 4096"), "{e}");
        let e = resource_size(Some(SIZE_ALIGN), gib, dev).unwrap_err();
        assert!(e.to_string().contains("below the minimum"), "{e}");
        let e = resource_size(Some(2 * gib), gib, dev).unwrap_err();
        assert!(e.to_string().contains("larger than /dev/vda"), "{e}");
    }
}
