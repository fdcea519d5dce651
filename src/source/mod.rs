//! The source stage: where input bytes come from and what they are called. The CircleCI API
//! source (enumeration, jobs, paging, resume state), archive walking under a budget, and
//! provenance ([`origin`]) live here; the file and stdin walker is small enough to live with
//! its driver in `cmd/scan/files.rs`. A source produces named inputs and imports no later
//! stage (`tests/layering.rs`).

pub mod archive;
pub mod circleci;
pub mod origin;

/// Create `path` with mode 0600, or make an existing file 0600: the datastore and the resume
/// state hold fingerprints (unsalted SHA-256 of secrets) and where each secret was seen.
#[cfg(unix)]
pub fn create_private(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if path.is_dir() {
        return Err(std::io::Error::other("it is a folder"));
    }
    if path.exists() {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
    } else {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map(drop)
    }
}

#[cfg(not(unix))]
pub fn create_private(_: &std::path::Path) -> std::io::Result<()> {
    Ok(())
}
