//! Writing a set of files into an output directory safely: everything is
//! written first into a fresh directory of our own inside it, every clash
//! is checked before anything lands, and each file is then renamed into
//! place. A rename replaces a symlink at the destination rather than
//! writing through it, so an existing `wallet.tapbak` linked elsewhere can
//! never redirect what is written; and a refusal leaves the directory as
//! it was.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// A name part no other run picks at the same time (with the process id).
fn nonce() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
}

pub struct Staging {
    out: PathBuf,
    tmp: PathBuf,
    files: Mutex<Vec<PathBuf>>,
    committed: bool,
}

impl Staging {
    /// Stages files for `out` (created if missing), with the given
    /// subdirectories.
    pub fn new(out: &Path, subdirs: &[&str]) -> Result<Self> {
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        let tmp = out.join(format!(
            ".tapvault-staging.{}.{:08x}",
            std::process::id(),
            nonce()
        ));
        std::fs::create_dir(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        for d in subdirs {
            std::fs::create_dir(tmp.join(d))
                .with_context(|| format!("creating {}", tmp.join(d).display()))?;
        }
        Ok(Staging {
            out: out.to_path_buf(),
            tmp,
            files: Mutex::new(Vec::new()),
            committed: false,
        })
    }

    /// Writes `path` (a path under the output directory) into the staging
    /// directory; it lands on [`Self::commit`].
    pub fn write(&self, path: &Path, data: &[u8]) -> Result<()> {
        let rel = path
            .strip_prefix(&self.out)
            .with_context(|| format!("{} is outside {}", path.display(), self.out.display()))?;
        let staged = self.tmp.join(rel);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&staged)
            .with_context(|| format!("writing {}", path.display()))?;
        std::io::Write::write_all(&mut f, data)
            .and_then(|_| f.sync_all())
            .with_context(|| format!("writing {}", path.display()))?;
        self.files
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(rel.to_path_buf());
        Ok(())
    }

    /// Moves every staged file into place. Without `force`, any file that
    /// already exists (a symlink included, dangling or not) refuses the
    /// whole set before one is moved.
    pub fn commit(mut self, force: bool) -> Result<()> {
        let files = std::mem::take(&mut *self.files.lock().unwrap_or_else(|p| p.into_inner()));
        let mut clashes = Vec::new();
        for rel in &files {
            let dest = self.out.join(rel);
            // The parent must be a real directory: a linked `proofs/` would
            // carry the files out of the output directory.
            if let Some(parent) = rel.parent().filter(|p| !p.as_os_str().is_empty()) {
                let d = self.out.join(parent);
                match std::fs::symlink_metadata(&d) {
                    Ok(m) if m.file_type().is_symlink() || !m.is_dir() => bail!(
                        "{} is not a directory of its own (a symlink or a file): refusing to write into it",
                        d.display()
                    ),
                    _ => {}
                }
            }
            match std::fs::symlink_metadata(&dest) {
                Ok(m) if m.is_dir() => bail!("{} exists and is a directory", dest.display()),
                Ok(_) => clashes.push(dest),
                Err(_) => {}
            }
        }
        if !force && !clashes.is_empty() {
            let shown: Vec<String> = clashes
                .iter()
                .take(5)
                .map(|p| p.display().to_string())
                .collect();
            bail!(
                "{} of the files to write exist ({}{}); nothing was written (use --force to replace them)",
                clashes.len(),
                shown.join(", "),
                if clashes.len() > 5 { ", …" } else { "" }
            );
        }
        for rel in &files {
            if let Some(parent) = rel.parent().filter(|p| !p.as_os_str().is_empty()) {
                let d = self.out.join(parent);
                if std::fs::symlink_metadata(&d).is_err() {
                    std::fs::create_dir(&d).with_context(|| format!("creating {}", d.display()))?;
                }
            }
            let dest = self.out.join(rel);
            std::fs::rename(self.tmp.join(rel), &dest)
                .with_context(|| format!("moving {} into place", dest.display()))?;
        }
        self.committed = true;
        let _ = std::fs::remove_dir_all(&self.tmp);
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "tapvault-outdir-{name}-{}-{:x}",
            std::process::id(),
            nonce()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_clash_refuses_everything_before_anything_lands() {
        let out = dir("clash");
        std::fs::write(out.join("b.json"), b"old").unwrap();
        let s = Staging::new(&out, &["proofs"]).unwrap();
        s.write(&out.join("a.json"), b"new a").unwrap();
        s.write(&out.join("proofs").join("x.proof"), b"x").unwrap();
        s.write(&out.join("b.json"), b"new b").unwrap();
        let e = s.commit(false).unwrap_err().to_string();
        assert!(
            e.contains("b.json") && e.contains("nothing was written"),
            "{e}"
        );
        assert!(!out.join("a.json").exists());
        assert!(!out.join("proofs").exists());
        assert_eq!(std::fs::read(out.join("b.json")).unwrap(), b"old");
        let left: Vec<_> = std::fs::read_dir(&out).unwrap().collect();
        assert_eq!(left.len(), 1, "the staging directory is gone");
        let _ = std::fs::remove_dir_all(&out);
    }

    #[test]
    fn force_replaces_a_symlink_and_never_writes_through_it() {
        let out = dir("link");
        let target = dir("target").join("victim");
        std::fs::write(&target, b"precious").unwrap();
        std::os::unix::fs::symlink(&target, out.join("wallet.tapbak")).unwrap();
        let s = Staging::new(&out, &[]).unwrap();
        s.write(&out.join("wallet.tapbak"), b"backup").unwrap();
        s.commit(true).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"precious");
        let m = std::fs::symlink_metadata(out.join("wallet.tapbak")).unwrap();
        assert!(!m.file_type().is_symlink());
        assert_eq!(std::fs::read(out.join("wallet.tapbak")).unwrap(), b"backup");
        // A linked subdirectory is refused, even with force.
        let elsewhere = dir("elsewhere");
        std::os::unix::fs::symlink(&elsewhere, out.join("proofs")).unwrap();
        let s = Staging::new(&out, &["proofs"]).unwrap();
        s.write(&out.join("proofs").join("p"), b"p").unwrap();
        let e = s.commit(true).unwrap_err().to_string();
        assert!(e.contains("not a directory of its own"), "{e}");
        assert!(std::fs::read_dir(&elsewhere).unwrap().next().is_none());
        let _ = std::fs::remove_dir_all(&out);
    }
}
