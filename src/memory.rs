//! Process memory: measuring it for the benchmark, and keeping glibc's allocator from
//! holding on to what a large run has freed.
//!
//! A run allocates a tenant's inventory across many threads (pages are parsed on the
//! blocking pool), frees it after classification, then writes reports. glibc gives
//! each thread its own arena and keeps freed memory in it, so the report stage grew
//! the process instead of reusing the inventory's memory. Two arenas and a trim after
//! the inventory is freed keep the peak at what is actually live.

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

/// Logs resident memory after `stage` at debug level.
pub fn log(stage: &str) {
    if let Some((rss_mib, peak_mib)) = resident_mib() {
        tracing::debug!(stage, rss_mib, peak_mib, "memory");
    }
}

/// At most two malloc arenas (glibc's default is eight per core). Call first thing.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called before other threads start.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Returns freed memory to the operating system.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim has no preconditions.
    unsafe {
        libc::malloc_trim(0);
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
}
