//! Process memory: measuring it for the benchmark, and keeping glibc's allocator from
//! holding on to what a large run has freed.
//!
//! A run builds a tenant's inventory during collection, frees it cluster by cluster
//! during classification while the findings and the next history take its place, then
//! writes reports and mail. Three measures keep the peak near what is live (L, numbers
//! in the README's Benchmarks):
//! - [`tune`]: large blocks get pages of their own, returned when freed;
//! - [`on_inventory_thread`]: glibc gives each thread an arena, and what one arena frees
//!   only its threads reuse. The clusters were parsed on the blocking pool and audited
//!   on the runtime's thread, so what each audited cluster freed stayed behind in the
//!   pool's arenas while classification grew another. Now the clusters' pages are
//!   parsed, the history loaded, a folder read and the audit run on one thread, so what
//!   classification frees is what it reuses. (The role assignments, which live on
//!   through classification, are parsed on the pool: they do not pin the clusters'
//!   pages.)
//! - [`Trimming`] during classification and [`trim`] between stages return what is left.
//!
//! (Fewer arenas, `M_ARENA_MAX=2`, saved ~90 MiB at L but slowed collection by up to a
//! third: not taken.)

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

/// Sets the allocator up for a run, before any thread starts: blocks of 128 KiB and
/// more get pages of their own (`M_MMAP_THRESHOLD`), returned to the system when freed.
///
/// glibc's default threshold grows with the largest block freed (up to 32 MiB): after
/// the first Resource Graph page (~2.5 MB) was freed, every page, page buffer and table
/// came from the arenas and left them fragmented when freed between longer-lived rows.
/// A fixed threshold (which also turns off the growing trim threshold) measured at L:
/// peak 910 -> 850 MiB on the first night, 1,100 -> 1,024 MiB on the second, no change
/// in time (README, Benchmarks). Changes nothing off glibc.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt has no preconditions; called before other threads allocate.
        #[allow(unsafe_code)] // the workspace denies unsafe code; see `trim`
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        }
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

/// Trims ([`trim`]) every `every` on a thread of its own until dropped.
///
/// For classification: each audited cluster frees its inventory and its previous
/// history, scattered among what lives on (the previous history was read in the state
/// file's order, the clusters come in Resource Graph's); pages freed that way are
/// returned as they empty rather than at the end (L, second night: peak 1,022 -> 985 MiB).
pub struct Trimming {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Trimming {
    pub fn every(every: std::time::Duration) -> Trimming {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("malloc-trim".into())
            .spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(every)
                {
                    trim();
                }
            })
            .ok();
        Trimming {
            stop: Some(stop),
            thread,
        }
    }
}

impl Drop for Trimming {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

type Job = Box<dyn FnOnce() + Send>;

thread_local! {
    static ON_INVENTORY_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The inventory thread's queue; the thread starts with the first job and lives as long
/// as the process (a scheduled job's runs share it, and its arena).
fn inventory_thread() -> &'static std::sync::mpsc::Sender<Job> {
    static QUEUE: std::sync::OnceLock<std::sync::mpsc::Sender<Job>> = std::sync::OnceLock::new();
    QUEUE.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("inventory".into())
            .spawn(move || {
                ON_INVENTORY_THREAD.with(|on| on.set(true));
                for job in rx {
                    job();
                }
            })
            .expect("cannot start the inventory thread");
        tx
    })
}

/// Queues `f` on the inventory thread; its result (or its panic) goes to `done`.
fn queue<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
    done: impl FnOnce(std::thread::Result<T>) + Send + 'static,
) {
    let job: Job = Box::new(move || {
        done(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
    });
    inventory_thread()
        .send(job)
        .expect("the inventory thread has stopped");
}

/// A job's result, or its panic resumed on the caller's thread.
fn resume<T>(r: std::thread::Result<T>) -> T {
    r.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Runs `f` on the inventory thread (see the module's notes) and returns its result;
/// a panic in `f` is resumed here, as if `f` had run on the caller's thread. Jobs run
/// one at a time, in the order queued; called from the inventory thread, `f` runs at
/// once.
pub async fn on_inventory_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    if ON_INVENTORY_THREAD.with(|on| on.get()) {
        return f();
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    queue(f, move |r| {
        let _ = tx.send(r);
    });
    resume(rx.await.expect("the inventory thread dropped a job"))
}

/// [`on_inventory_thread`] for synchronous callers: blocks this thread until `f` is done.
pub fn on_inventory_thread_blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    if ON_INVENTORY_THREAD.with(|on| on.get()) {
        return f();
    }
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    queue(f, move |r| {
        let _ = tx.send(r);
    });
    resume(rx.recv().expect("the inventory thread dropped a job"))
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
    fn jobs_run_on_one_thread_and_a_panic_reaches_the_caller() {
        let name = || std::thread::current().name().map(str::to_string);
        let first = super::on_inventory_thread_blocking(name);
        assert_eq!(first.as_deref(), Some("inventory"));
        let id = super::on_inventory_thread_blocking(|| std::thread::current().id());
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let (again, nested) = rt.block_on(super::on_inventory_thread(|| {
            // Queued from the inventory thread itself: runs at once, no deadlock.
            let nested = super::on_inventory_thread_blocking(|| std::thread::current().id());
            (std::thread::current().id(), nested)
        }));
        assert_eq!((again, nested), (id, id));
        assert_ne!(id, std::thread::current().id());

        let panicked = std::panic::catch_unwind(|| {
            super::on_inventory_thread_blocking(|| -> u32 { panic!("boom in a job") })
        });
        let msg = panicked.expect_err("the job's panic is resumed in the caller");
        assert_eq!(msg.downcast_ref::<&str>(), Some(&"boom in a job"));
        // The thread survives a job's panic.
        assert_eq!(super::on_inventory_thread_blocking(|| 7), 7);
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
