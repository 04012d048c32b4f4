//! Files and folders the tool writes: private to its user and never written through a
//! link someone else planted.
//!
//! * Temporaries are created with `O_CREAT | O_EXCL` under a random name (the `tempfile`
//!   crate), so a symlink planted at the temporary's name is never followed; they are named
//!   `.NAME.tmp` followed by random characters, so stale ones can be recognised.
//! * The final name is replaced by `rename(2)`, which replaces a symlink there rather than
//!   writing through it.
//! * Files get mode 0600 and the folders the tool creates 0700, whatever the umask.
use std::io::{self, Write};
use std::path::Path;

use anyhow::Context;

/// Mode of every file the tool writes.
pub const FILE_MODE: u32 = 0o600;
/// Mode of every folder the tool creates (existing folders are left as they are).
pub const DIR_MODE: u32 = 0o700;

/// The fixed start of the temporaries' names for a file named `name`: `.NAME.tmp`.
pub fn temp_prefix(name: &str) -> String {
    format!(".{name}.tmp")
}

/// `create_dir_all`, creating each missing folder with mode 0700.
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(DIR_MODE);
    }
    b.create(dir)
}

/// Creates `dir` (and its parents) readable by the owner only where it creates them.
pub fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

/// [`write_atomic_with`] for content already in memory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    write_atomic_with(path, |w| Ok(w.write_all(bytes)?))
}

/// Writes `path` so that a crash at any moment leaves either the old or the new content:
/// a fresh temporary in the same folder, fsync, rename over `path`, fsync the folder.
/// `render` writes the content into a buffered writer.
pub fn write_atomic_with(
    path: &Path,
    render: impl FnOnce(&mut dyn Write) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    stage_atomic_with(path, render)?.commit()
}

/// A file written and synced under a temporary name beside `path`, not yet in place:
/// [`Staged::commit`] renames it over `path`; dropped without a commit, the temporary
/// is removed (one a killed process leaves is recognised by its name, see
/// [`temp_prefix`]). Lets a caller write a large file early, free what it was rendered
/// from, and put it in place later.
#[must_use = "a staged file is removed unless committed"]
pub struct Staged {
    tmp: tempfile::NamedTempFile,
    path: std::path::PathBuf,
}

/// The first half of [`write_atomic_with`]: the temporary written and synced.
pub fn stage_atomic_with(
    path: &Path,
    render: impl FnOnce(&mut dyn Write) -> anyhow::Result<()>,
) -> anyhow::Result<Staged> {
    let dir = parent(path);
    create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let prefix = temp_prefix(&name);
    let result = (|| -> anyhow::Result<tempfile::NamedTempFile> {
        let mut b = tempfile::Builder::new();
        b.prefix(&prefix).rand_bytes(8);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            b.permissions(std::fs::Permissions::from_mode(FILE_MODE));
        }
        // Created with O_EXCL: never an existing file or link. Removed on drop (error).
        let tmp = b.tempfile_in(dir)?;
        let mut w = io::BufWriter::with_capacity(1 << 20, tmp);
        render(&mut w)?;
        let tmp = w.into_inner().map_err(|e| e.into_error())?;
        tmp.as_file().sync_all()?;
        Ok(tmp)
    })();
    let tmp = result.with_context(|| format!("writing {}", path.display()))?;
    Ok(Staged {
        tmp,
        path: path.to_path_buf(),
    })
}

impl Staged {
    /// Renames the temporary over the final name and syncs the folder.
    pub fn commit(self) -> anyhow::Result<()> {
        let Staged { tmp, path } = self;
        tmp.persist(&path)
            .map_err(|e| e.error)
            .with_context(|| format!("writing {}", path.display()))?;
        if let Ok(d) = std::fs::File::open(parent(&path)) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

fn parent(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Reads a JSON-lines ledger appended to by this tool (`what` names it in logs): every
/// entry, in order; a missing file is empty. A torn last line (a crash mid-append) is
/// cut off with a warning, so the next line appended does not join it and make the
/// ledger unreadable; any other bad line is an error naming the file and line.
pub fn read_jsonl<E: serde::de::DeserializeOwned>(
    path: &Path,
    what: &str,
) -> anyhow::Result<Vec<E>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let lines: Vec<&str> = text.split('\n').collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<E>(line) {
            Ok(e) => out.push(e),
            Err(e) if i + 1 == lines.len() => {
                tracing::warn!(file = %path.display(), line = i + 1, error = %e, "{what}: removing a torn last line (an interrupted write)");
                let keep = (text.len() - line.len()) as u64;
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .and_then(|f| f.set_len(keep).and_then(|_| f.sync_data()))
                    .with_context(|| format!("truncating {}", path.display()))?;
            }
            Err(e) => anyhow::bail!("{}: line {}: {e}", path.display(), i + 1),
        }
    }
    Ok(out)
}

/// Opens `path` for reading only if it is a regular file and not a symbolic link (nor a
/// link swapped in while it is opened): `lstat`, open (with `O_NOFOLLOW` where the
/// platform constant is at hand), then the opened file must be the one `lstat` saw.
/// Returns the file and its size.
pub fn open_regular(path: &Path) -> io::Result<(std::fs::File, u64)> {
    let not_regular = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} is not a regular file (a symbolic link or other); not read",
                path.display()
            ),
        )
    };
    let before = std::fs::symlink_metadata(path)?;
    if !before.file_type().is_file() {
        return Err(not_regular());
    }
    let mut open = std::fs::OpenOptions::new();
    open.read(true);
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::fs::OpenOptionsExt;
        open.custom_flags(libc::O_NOFOLLOW);
    }
    let f = match open.open(path) {
        Ok(f) => f,
        // ELOOP: a link was swapped in after the lstat.
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(not_regular()),
        Err(e) => return Err(e),
    };
    let after = f.metadata()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if after.dev() != before.dev() || after.ino() != before.ino() {
            return Err(not_regular());
        }
    }
    if !after.file_type().is_file() {
        return Err(not_regular());
    }
    Ok((f, after.len()))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn planted_links_are_not_written_through() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        std::fs::write(&outside, "precious").unwrap();
        let dir = tmp.path().join("state");
        create_dir_all(&dir).unwrap();
        // The temporary's name as it used to be (predictable: the pid) and a few guesses.
        for name in [
            format!(".state.json.tmp-{}", std::process::id()),
            ".state.json.tmp".to_string(),
            ".state.json.tmp-".to_string(),
        ] {
            symlink(&outside, dir.join(name)).unwrap();
        }
        write_atomic_with(&dir.join("state.json"), |w| Ok(w.write_all(b"new")?)).unwrap();
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "precious");
        assert_eq!(
            std::fs::read_to_string(dir.join("state.json")).unwrap(),
            "new"
        );

        // A link at the final name is replaced, not written through.
        let target = dir.join("report.csv");
        symlink(&outside, &target).unwrap();
        write_atomic_with(&target, |w| Ok(w.write_all(b"a,b\r\n")?)).unwrap();
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "precious");
        assert!(std::fs::symlink_metadata(&target)
            .unwrap()
            .file_type()
            .is_file());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "a,b\r\n");
        assert_eq!(mode(&target), 0o600);
    }

    #[test]
    fn temporaries_have_the_fixed_prefix_and_are_removed_on_error() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("clusters.csv");
        let seen = std::cell::RefCell::new(Vec::new());
        let e = write_atomic_with(&path, |w| {
            w.write_all(b"partial")?;
            w.flush()?;
            for e in std::fs::read_dir(tmp.path()).unwrap() {
                seen.borrow_mut()
                    .push(e.unwrap().file_name().to_string_lossy().to_string());
            }
            anyhow::bail!("render failed")
        })
        .unwrap_err();
        assert!(format!("{e:#}").contains("clusters.csv"), "{e:#}");
        let seen = seen.into_inner();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert!(seen[0].starts_with(".clusters.csv.tmp"), "{seen:?}");
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
        assert!(!path.exists());
    }

    #[test]
    fn open_regular_refuses_links() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        std::fs::write(&outside, "secret").unwrap();
        let link = tmp.path().join("clusters.csv");
        symlink(&outside, &link).unwrap();
        let e = open_regular(&link).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
        assert!(e.to_string().contains("clusters.csv"), "{e}");
        assert!(open_regular(tmp.path()).is_err());
        let (mut f, len) = open_regular(&outside).unwrap();
        let mut s = String::new();
        io::Read::read_to_string(&mut f, &mut s).unwrap();
        assert_eq!((s.as_str(), len), ("secret", 6));
    }

    #[test]
    fn files_are_0600_and_created_folders_0700() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b/c");
        let path = dir.join("state.json");
        write_atomic_with(&path, |w| Ok(w.write_all(b"{}")?)).unwrap();
        assert_eq!(mode(&path), 0o600);
        for d in ["a", "a/b", "a/b/c"] {
            assert_eq!(mode(&tmp.path().join(d)), 0o700, "{d}");
        }
        // An existing world-readable file is replaced by a private one.
        std::fs::write(dir.join("old.csv"), "x").unwrap();
        std::fs::set_permissions(dir.join("old.csv"), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        write_atomic_with(&dir.join("old.csv"), |w| Ok(w.write_all(b"y")?)).unwrap();
        assert_eq!(mode(&dir.join("old.csv")), 0o600);
        // An existing folder keeps its mode.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o750)).unwrap();
        create_dir_all(&dir).unwrap();
        assert_eq!(mode(&dir), 0o750);
    }

    #[test]
    fn a_staged_file_replaces_the_old_one_only_when_committed() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("state.json");
        std::fs::write(&path, "old").unwrap();
        let names = || {
            let mut n: Vec<String> = std::fs::read_dir(tmp.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
                .collect();
            n.sort();
            n
        };
        // Dropped uncommitted: the old content stays and the temporary is gone.
        let staged = stage_atomic_with(&path, |w| Ok(w.write_all(b"new")?)).unwrap();
        let during = names();
        assert_eq!(during.len(), 2, "{during:?}");
        assert!(
            during[0].starts_with(&temp_prefix("state.json")),
            "{during:?}"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
        drop(staged);
        assert_eq!(names(), ["state.json"]);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
        // Committed: in place, private, nothing else left.
        let staged = stage_atomic_with(&path, |w| Ok(w.write_all(b"new")?)).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
        staged.commit().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(mode(&path), FILE_MODE);
        assert_eq!(names(), ["state.json"]);
        // A render that fails leaves no temporary and names the file.
        let e = stage_atomic_with(&path, |_| anyhow::bail!("boom"))
            .err()
            .unwrap();
        assert!(format!("{e:#}").contains("state.json"), "{e:#}");
        assert_eq!(names(), ["state.json"]);
    }
}
