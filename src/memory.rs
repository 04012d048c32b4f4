//! Process memory: measuring it for the benchmark, and keeping glibc's allocator from
//! holding on to what a large run has freed.
//!
//! A run allocates a tenant's inventory across many threads (pages are parsed on the
//! blocking pool), frees it during classification, then writes reports and mail.
//! glibc keeps freed memory in per-thread arenas, so each stage grew the process
//! instead of reusing what the last one freed; a trim between stages keeps the peak
//! near what is actually live. (Fewer arenas, `M_ARENA_MAX=2`, saved another ~90 MiB
//! at L but slowed collection by up to a third: not taken.)

/// Resident and peak resident memory in MiB (`VmRSS`, `VmHWM`), where the platform
/// tells (Linux).
pub fn resident_mib() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kib: u64 = line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kib / 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// The allocator's bytes in use and bytes free but held, in MiB (glibc's `mallinfo2`,
/// every arena). Resident memory minus in use is what fragmentation costs: freed
/// memory between live allocations that cannot be returned to the system.
pub fn heap_mib() -> Option<(u64, u64)> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 has no preconditions.
        #[allow(unsafe_code)] // the workspace denies unsafe code; see `trim`
        let m = unsafe { libc::mallinfo2() };
        Some((
            ((m.uordblks + m.hblkhd) >> 20) as u64,
            (m.fordblks >> 20) as u64,
        ))
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    None
}

/// Logs resident memory after `stage` at debug level, with the allocator's view
/// ([`heap_mib`]) where the platform tells. Nothing is measured at other levels:
/// `mallinfo2` walks every free chunk (up to a second at the largest benchmark).
pub fn log(stage: &str) {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    if let Some((rss_mib, peak_mib)) = resident_mib() {
        let (heap_in_use_mib, heap_free_mib) = heap_mib().unzip();
        tracing::debug!(
            stage,
            rss_mib,
            peak_mib,
            heap_in_use_mib,
            heap_free_mib,
            "memory"
        );
    }
}

/// Returns freed memory to the operating system.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let started = std::time::Instant::now();
        // SAFETY: malloc_trim has no preconditions.
        #[allow(unsafe_code)] // the workspace denies unsafe code; this and `heap_mib` are its uses
        unsafe {
            libc::malloc_trim(0);
        }
        tracing::trace!(
            elapsed_us = started.elapsed().as_micros() as u64,
            "malloc_trim"
        );
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn resident_memory_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            let (rss, peak) = super::resident_mib().expect("VmRSS and VmHWM");
            assert!(peak >= rss, "peak {peak} < resident {rss}");
            let big = vec![1u8; 64 << 20];
            std::hint::black_box(&big);
            let (_, after) = super::resident_mib().unwrap();
            // Other tests run alongside and may free memory meanwhile: a loose bound.
            assert!(
                after >= rss + 32,
                "64 MiB touched, resident {rss} -> peak {after}"
            );
        }
    }

    #[test]
    fn heap_in_use_is_read_with_glibc() {
        if cfg!(all(target_os = "linux", target_env = "gnu")) {
            let (before, _) = super::heap_mib().expect("mallinfo2");
            let big = vec![1u8; 64 << 20];
            std::hint::black_box(&big);
            let (during, _) = super::heap_mib().unwrap();
            // Other tests allocate and free alongside: a loose bound.
            assert!(
                during >= before + 32,
                "64 MiB allocated, in use {before} -> {during} MiB"
            );
        } else {
            assert_eq!(super::heap_mib(), None);
        }
    }
}
