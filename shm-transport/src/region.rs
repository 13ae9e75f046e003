//! The memory rings live in: zeroed heap memory (one process) or a sealed memfd mapped by two
//! processes.

use std::alloc::Layout;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;

use memmap2::MmapMut;

/// Alignment of a heap region's start and of its size: a pair of cache lines (a mapped region
/// starts on a page). The rings' parts need a line; the pair keeps the ring's first and last lines,
/// which its two sides write, from sharing a pair with another allocation (the line prefetcher
/// fetches lines in pairs, see [`crate::ring`]'s `Shared`). Small rings within one process (16
/// slots, 1.5 KiB) still take no more memory than they use.
const ALIGN: usize = 128;

/// A block of zeroed memory, in this process or shared with another one.
pub struct Region {
    ptr: NonNull<u8>,
    len: usize,
    backing: Backing,
}

enum Backing {
    Heap(Layout),
    Map(#[allow(dead_code, reason = "kept for its Drop: unmaps the region")] MmapMut),
}

// SAFETY: a region is a plain block of memory; every access to it goes through atomics or through
// the ring protocol, which gives each byte one writer at a time.
unsafe impl Send for Region {}
// SAFETY: as above.
unsafe impl Sync for Region {}

impl std::fmt::Debug for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.backing {
            Backing::Heap(_) => "heap",
            Backing::Map(_) => "shared",
        };
        f.debug_struct("Region")
            .field("len", &self.len)
            .field("kind", &kind)
            .finish()
    }
}

impl Region {
    /// `len` zeroed bytes of this process's heap.
    pub fn heap(len: usize) -> Region {
        let layout = Layout::from_size_align(len.max(1), ALIGN)
            .map(|l| l.pad_to_align())
            .unwrap_or(Layout::new::<u8>());
        // SAFETY: the layout has a non-zero size.
        let raw = unsafe { std::alloc::alloc_zeroed(layout) };
        let Some(ptr) = NonNull::new(raw) else {
            std::alloc::handle_alloc_error(layout)
        };
        Region {
            ptr,
            len,
            backing: Backing::Heap(layout),
        }
    }

    /// `len` zeroed bytes in a new memfd, mapped here, and the descriptor to hand to the other
    /// process. The file has no name in any file system (nothing to leak in /dev/shm) and is sealed
    /// against shrinking and growing, so the other side can neither take pages away from under us
    /// (a read past the end of a shrunk file is a SIGBUS) nor be surprised itself.
    pub fn shared(len: usize) -> io::Result<(Region, OwnedFd)> {
        // SAFETY: the name is a NUL-terminated literal; the result is checked.
        let raw = unsafe {
            libc::memfd_create(
                c"zring-shm".as_ptr(),
                libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let file = std::fs::File::from(fd);
        file.set_len(u64::try_from(len).map_err(io::Error::other)?)?;
        let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
        // SAFETY: F_ADD_SEALS takes an integer argument; the result is checked.
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
            return Err(io::Error::last_os_error());
        }
        let region = Region::map(&file, len)?;
        Ok((region, file.into()))
    }

    /// Maps a region another process made with [`Region::shared`]. The descriptor is untrusted: it
    /// must be a memfd sealed against shrinking, of at least `min_len` bytes; the region is its whole
    /// size.
    pub fn open(fd: OwnedFd, min_len: usize) -> io::Result<Region> {
        // SAFETY: F_GET_SEALS takes no argument; the result is checked.
        let seals = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
        if seals < 0 || seals & libc::F_SEAL_SHRINK == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "shared memory not sealed against shrinking",
            ));
        }
        let file = std::fs::File::from(fd);
        let len = usize::try_from(file.metadata()?.len()).map_err(io::Error::other)?;
        if len < min_len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("shared memory of {len} bytes, less than the {min_len} needed"),
            ));
        }
        Region::map(&file, len)
    }

    fn map(file: &std::fs::File, len: usize) -> io::Result<Region> {
        // SAFETY: the file is a sealed memfd that cannot shrink, so every mapped page stays backed;
        // its contents may change under us (the other process writes), which the ring treats as
        // untrusted input and only reads through atomics or bounds-checked copies.
        let mut map = unsafe { memmap2::MmapOptions::new().len(len).map_mut(file)? };
        let ptr = NonNull::new(map.as_mut_ptr()).ok_or_else(|| io::Error::other("null map"))?;
        Ok(Region {
            ptr,
            len,
            backing: Backing::Map(map),
        })
    }

    /// Its size in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether it is shared with another process.
    pub fn is_shared(&self) -> bool {
        matches!(self.backing, Backing::Map(_))
    }

    /// The address of byte `offset`, if `offset + len` is inside the region.
    pub(crate) fn at(&self, offset: usize, len: usize) -> Option<*mut u8> {
        let end = offset.checked_add(len)?;
        if end > self.len {
            return None;
        }
        // SAFETY: `offset <= self.len`, so the result is inside the allocation or one past its end.
        Some(unsafe { self.ptr.as_ptr().add(offset) })
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        if let Backing::Heap(layout) = self.backing {
            // SAFETY: allocated in `Region::heap` with this layout, freed once.
            unsafe { std::alloc::dealloc(self.ptr.as_ptr(), layout) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_heap_region_takes_whole_pairs_of_cache_lines() {
        for len in [1, 100, 128, 1536, 1537] {
            let r = Region::heap(len);
            assert_eq!(r.len(), len);
            let start = r.at(0, len).map(|p| p as usize);
            assert_eq!(start.map(|a| a % ALIGN), Some(0), "start of {len}");
            let Backing::Heap(layout) = r.backing else {
                panic!("a heap region backed by a map");
            };
            assert_eq!(layout.size() % ALIGN, 0, "size of {len}");
            assert!(layout.size() >= len);
        }
    }
}
