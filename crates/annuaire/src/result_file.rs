//! Where the CLI writes an import's result file, which holds the cleartext
//! passwords of the accounts it created.
//!
//! Three promises (docs/RELIABILITY.md): the file never replaces an existing
//! one nor follows a link (created with `O_EXCL`, mode 0600); a `--result`
//! path that cannot be written is refused before anything is planned; and an
//! import that committed never reports failure because its file could not be
//! written: the result is kept in the database too, and
//! `annuaire imports result N` writes it again.

use anyhow::{bail, Context, Result};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The default folder of result files, beside the default database.
pub const DEFAULT_RESULTS_DIR: &str = "data/resultats";

/// A result file's destination, chosen before the import runs.
pub struct ResultDestination {
    /// `--result`, already created (empty) so that the import cannot commit
    /// and then find the path taken or unwritable.
    reserved: Option<(PathBuf, File)>,
    /// Where a file named after the import goes when `--result` is absent.
    folder: PathBuf,
    delivered: bool,
}

impl ResultDestination {
    /// Checks and reserves `chosen`; a dry run writes nothing, so reserves nothing.
    pub fn prepare(chosen: Option<&Path>, folder: &Path, dry_run: bool) -> Result<ResultDestination> {
        let reserved = match chosen {
            Some(path) if !dry_run => Some((path.to_path_buf(), create_private(path)?)),
            _ => None,
        };
        Ok(ResultDestination {
            reserved,
            folder: folder.to_path_buf(),
            delivered: false,
        })
    }

    /// Writes the result after the commit and says where; a failure is a
    /// warning naming the command that writes it again, never an error.
    pub fn deliver(mut self, bytes: Option<&[u8]>, default_name: &str, import_id: Option<i64>) -> Option<PathBuf> {
        let bytes = bytes?;
        let written = match self.reserved.take() {
            Some((path, file)) => write_all(file, bytes).map(|()| path.clone()).map_err(|e| (path, e)),
            None => self.write_in_folder(default_name, bytes),
        };
        self.delivered = true;
        match written {
            Ok(path) => Some(path),
            Err((path, e)) => {
                let again = import_id
                    .map(|id| format!(" ; récupérez-le avec : annuaire imports result {id} --output FICHIER"))
                    .unwrap_or_default();
                eprintln!(
                    "attention : le fichier résultat {} n'a pas pu être écrit ({e:#}). L'import est bien enregistré et son résultat (mots de passe) est conservé en base{again}",
                    path.display()
                );
                None
            }
        }
    }

    fn write_in_folder(&self, name: &str, bytes: &[u8]) -> Result<PathBuf, (PathBuf, anyhow::Error)> {
        let path = self.folder.join(name);
        private_folder(&self.folder)
            .and_then(|()| create_private(&path))
            .and_then(|file| write_all(file, bytes))
            .map(|()| path.clone())
            .map_err(|e| (path, e))
    }
}

impl Drop for ResultDestination {
    /// A reserved file that got no result (refused or failed import) is
    /// removed: an empty file would look like an import without accounts.
    fn drop(&mut self) {
        if let Some((path, _)) = self.reserved.take() {
            if !self.delivered {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

/// A new file readable by its owner only; an existing path, even a link to
/// nowhere, is refused.
pub fn create_private(path: &Path) -> Result<File> {
    if std::fs::symlink_metadata(path).is_ok() {
        bail!(
            "{} existe déjà : annuaire ne remplace jamais un fichier (il peut contenir les mots de passe d'un autre import) ; choisissez un autre nom",
            path.display()
        );
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path).with_context(|| {
        format!(
            "création du fichier {} (le dossier existe-t-il, est-il accessible en écriture ?)",
            path.display()
        )
    })
}

/// The results folder, created readable by its owner only.
fn private_folder(folder: &Path) -> Result<()> {
    if folder.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(folder)
        .with_context(|| format!("création du dossier {}", folder.display()))
}

fn write_all(mut file: File, bytes: &[u8]) -> Result<()> {
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(())
}

/// Writes bytes to a new private file: `imports result` and the demo.
pub fn write_new_private(path: &Path, bytes: &[u8]) -> Result<()> {
    write_all(create_private(path)?, bytes).with_context(|| format!("écriture de {}", path.display()))
}
