//! Compiled modules kept by code hash, so that no call ever compiles.
//!
//! A module is compiled once, at deploy, and its wasmer artifact (the machine code with the gas
//! and depth instrumentation built in) is sealed and saved in the node's [`ArtifactStore`]. A call
//! whose module is not in the engine's memory loads the artifact instead of compiling: work
//! proportional to the code's size, which every call's base cost pays for whether or not the
//! module was in memory, so gas never depends on what a node has cached.
//!
//! Loading an artifact means running machine code read from outside the process, so the engine
//! runs only artifacts that are provably its own node's ([`seal`] and [`unseal`]). A sealed
//! artifact carries a fingerprint of everything that shapes compiled code (the wasmer version, the
//! target and its CPU features, the gas schedule and instrumentation) and a keyed hash of all of it
//! under the store's secret key, which never leaves the node. An artifact written by another
//! node, by another build of this one, or damaged on disk fails the check and is never
//! deserialized; the engine then compiles the module from its code in the state again (the only
//! case a call compiles, and one that only a damaged or replaced artifact store causes).

use crate::depth::MAX_CALL_DEPTH;
use crate::gas;
use alloy_primitives::map::HashMap;
use alloy_primitives::{B256, keccak256};
use parking_lot::RwLock;
use std::io;
use std::path::{Path, PathBuf};

/// Where a node keeps its modules' sealed artifacts, by code hash. Artifacts are derived data,
/// never part of the state or its root: each node compiles and keeps its own.
pub trait ArtifactStore: Send + Sync {
    /// The secret that seals this store's artifacts. It must never leave the node: whoever knows
    /// it can make the node run machine code of their choosing.
    fn seal_key(&self) -> &B256;
    /// The sealed artifact of `code_hash`, if the store has one.
    fn load(&self, code_hash: &B256) -> io::Result<Option<Vec<u8>>>;
    /// At least the first `len` bytes of the sealed artifact of `code_hash` (all of it when it is
    /// shorter), if the store has one: a store that can read part of an artifact should.
    fn load_prefix(&self, code_hash: &B256, len: usize) -> io::Result<Option<Vec<u8>>> {
        self.load(code_hash).map(|sealed| {
            sealed.map(|mut sealed| {
                sealed.truncate(len);
                sealed
            })
        })
    }
    /// Keeps the sealed artifact of `code_hash`, replacing any earlier one.
    fn save(&self, code_hash: &B256, sealed: &[u8]) -> io::Result<()>;
}

/// Artifacts in memory, for in-memory nodes and tests: they live as long as the engine and never
/// leave the process, so nothing else can have written them and the seal only checks that the
/// artifact is the one saved for its code hash under this build's fingerprint (its key is zero).
pub struct MemoryArtifacts {
    key: B256,
    artifacts: RwLock<HashMap<B256, Vec<u8>>>,
}

impl MemoryArtifacts {
    /// An empty store.
    pub fn new() -> Self {
        Self { key: B256::ZERO, artifacts: RwLock::new(HashMap::default()) }
    }
}

impl Default for MemoryArtifacts {
    fn default() -> Self {
        Self::new()
    }
}

impl ArtifactStore for MemoryArtifacts {
    fn seal_key(&self) -> &B256 {
        &self.key
    }

    fn load(&self, code_hash: &B256) -> io::Result<Option<Vec<u8>>> {
        Ok(self.artifacts.read().get(code_hash).cloned())
    }

    fn save(&self, code_hash: &B256, sealed: &[u8]) -> io::Result<()> {
        self.artifacts.write().insert(*code_hash, sealed.to_vec());
        Ok(())
    }
}

/// Artifacts as files in a directory the node owns, one per code hash, beside a key file made
/// when the directory is first opened. Files are written to a temporary name and renamed, so a
/// crash leaves either the whole artifact or none; a damaged one fails its seal and is rebuilt.
pub struct DirectoryArtifacts {
    directory: PathBuf,
    key: B256,
}

/// The key file's name inside the directory.
const KEY_FILE: &str = "seal.key";

impl DirectoryArtifacts {
    /// Opens (creating if needed) the artifact directory `directory`. On Unix the directory and
    /// the key file are made readable by the node's user only.
    pub fn open(directory: impl AsRef<Path>) -> io::Result<Self> {
        let directory = directory.as_ref().to_path_buf();
        std::fs::create_dir_all(&directory)?;
        restrict(&directory, 0o700)?;
        let key_path = directory.join(KEY_FILE);
        let key = match std::fs::read(&key_path) {
            Ok(bytes) => B256::try_from(bytes.as_slice()).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} is not a 32-byte key; remove the directory to rebuild it", key_path.display()),
                )
            })?,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                let mut key = B256::ZERO;
                getrandom::fill(key.as_mut_slice()).map_err(io::Error::other)?;
                write_atomically(&key_path, key.as_slice())?;
                restrict(&key_path, 0o600)?;
                key
            }
            Err(error) => return Err(error),
        };
        Ok(Self { directory, key })
    }

    fn path(&self, code_hash: &B256) -> PathBuf {
        self.directory.join(format!("{code_hash:x}.artifact"))
    }
}

impl ArtifactStore for DirectoryArtifacts {
    fn seal_key(&self) -> &B256 {
        &self.key
    }

    fn load(&self, code_hash: &B256) -> io::Result<Option<Vec<u8>>> {
        match std::fs::read(self.path(code_hash)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }

    fn load_prefix(&self, code_hash: &B256, len: usize) -> io::Result<Option<Vec<u8>>> {
        use std::io::Read;
        let file = match std::fs::File::open(self.path(code_hash)) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error),
        };
        let mut prefix = Vec::with_capacity(len);
        file.take(len as u64).read_to_end(&mut prefix)?;
        Ok(Some(prefix))
    }

    fn save(&self, code_hash: &B256, sealed: &[u8]) -> io::Result<()> {
        write_atomically(&self.path(code_hash), sealed)
    }
}

/// Writes `bytes` to a temporary file beside `path` and renames it into place.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".partial");
    let temporary = PathBuf::from(temporary);
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, path)
}

#[cfg(unix)]
fn restrict(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn restrict(_: &Path, _: u32) -> io::Result<()> {
    Ok(())
}

/// What a sealed artifact starts with.
const MAGIC: &[u8; 8] = b"xstateA2";
/// Magic, fingerprint, code hash, artifact bound, header tag and body tag.
pub(crate) const HEADER_LEN: usize = 8 + 32 + 32 + 8 + 32 + 32;

/// Bumped whenever the instrumentation (`depth.rs`) or the metering's use of the schedule changes
/// in a way the constants below do not show: an artifact compiled under other rules must never be
/// run, since it would charge other gas.
const INSTRUMENTATION_VERSION: u32 = 1;

/// The fingerprint of everything that shapes compiled code on this node.
pub(crate) fn fingerprint() -> B256 {
    let target = wasmer::sys::Target::default();
    keccak256(format!(
        "wasmer {}; target {}; cpu {:?}; instrumentation {INSTRUMENTATION_VERSION}; instruction {}; call {}; \
         memory.grow {}; bulk shift {}; depth {MAX_CALL_DEPTH}",
        wasmer_types::VERSION,
        target.triple(),
        target.cpu_features(),
        gas::INSTRUCTION,
        gas::CALL,
        gas::MEMORY_GROW,
        gas::BULK_BYTES_SHIFT,
    ))
}

/// The header's tag: blake3 keyed by the store's seal key (a MAC) over what the header says.
fn header_tag(key: &B256, fingerprint: &B256, code_hash: &B256, bound: u64) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_keyed(&key.0);
    hasher.update(MAGIC).update(fingerprint.as_slice()).update(code_hash.as_slice()).update(&bound.to_le_bytes());
    *hasher.finalize().as_bytes()
}

/// The body's tag: blake3 keyed by the seal key over the header's tag and the artifact.
fn body_tag(key: &B256, header_tag: &[u8; 32], artifact: &[u8]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_keyed(&key.0);
    hasher.update(header_tag).update(artifact);
    *hasher.finalize().as_bytes()
}

/// Seals `artifact` of `code_hash`, whose artifact bound (`validate::artifact_bound`) is `bound`,
/// under `key`.
pub(crate) fn seal(key: &B256, fingerprint: &B256, code_hash: &B256, bound: u64, artifact: &[u8]) -> Vec<u8> {
    let header = header_tag(key, fingerprint, code_hash, bound);
    let mut sealed = Vec::with_capacity(HEADER_LEN + artifact.len());
    sealed.extend_from_slice(MAGIC);
    sealed.extend_from_slice(fingerprint.as_slice());
    sealed.extend_from_slice(code_hash.as_slice());
    sealed.extend_from_slice(&bound.to_le_bytes());
    sealed.extend_from_slice(&header);
    sealed.extend_from_slice(&body_tag(key, &header, artifact));
    sealed.extend_from_slice(artifact);
    sealed
}

/// Why a sealed artifact was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// Too short, or not an artifact of this engine.
    #[error("not a sealed artifact")]
    Malformed,
    /// Compiled by another wasmer, for another machine, or under another gas schedule.
    #[error("compiled under another fingerprint")]
    Fingerprint,
    /// The artifact of another module.
    #[error("the artifact of another module")]
    CodeHash,
    /// Not sealed by this store's key, or damaged since.
    #[error("not sealed by this node, or damaged")]
    Tag,
}

/// The artifact bound a sealed header states, if the header is this node's for `code_hash` and
/// `fingerprint`. Reading it needs only the first [`HEADER_LEN`] bytes, so a call can charge for
/// loading the artifact before loading it.
pub(crate) fn unseal_header(key: &B256, fingerprint: &B256, code_hash: &B256, sealed: &[u8]) -> Result<u64, SealError> {
    let header = sealed.get(..HEADER_LEN).ok_or(SealError::Malformed)?;
    let (magic, rest) = header.split_at(MAGIC.len());
    let (found_fingerprint, rest) = rest.split_at(32);
    let (found_code_hash, rest) = rest.split_at(32);
    let (bound, rest) = rest.split_at(8);
    let (found_header_tag, _) = rest.split_at(32);
    if magic != MAGIC {
        return Err(SealError::Malformed);
    }
    if found_fingerprint != fingerprint.as_slice() {
        return Err(SealError::Fingerprint);
    }
    if found_code_hash != code_hash.as_slice() {
        return Err(SealError::CodeHash);
    }
    let bound = u64::from_le_bytes(bound.try_into().map_err(|_| SealError::Malformed)?);
    if found_header_tag != header_tag(key, fingerprint, code_hash, bound) {
        return Err(SealError::Tag);
    }
    Ok(bound)
}

/// The artifact inside `sealed` and its bound, if all of it is this node's artifact of
/// `code_hash` for `fingerprint`.
pub(crate) fn unseal<'a>(
    key: &B256,
    fingerprint: &B256,
    code_hash: &B256,
    sealed: &'a [u8],
) -> Result<(&'a [u8], u64), SealError> {
    let bound = unseal_header(key, fingerprint, code_hash, sealed)?;
    let (header, artifact) = sealed.split_at(HEADER_LEN);
    let (tags, found_body_tag) = header.split_at(HEADER_LEN - 32);
    let found_header_tag: [u8; 32] = tags[tags.len() - 32..].try_into().map_err(|_| SealError::Malformed)?;
    if found_body_tag != body_tag(key, &found_header_tag, artifact) {
        return Err(SealError::Tag);
    }
    Ok((artifact, bound))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failed unwrap is a failed test.

    use super::*;

    #[test]
    fn a_sealed_artifact_opens_only_with_its_key_fingerprint_and_code_hash() {
        let (key, fingerprint, code_hash) = (B256::repeat_byte(1), B256::repeat_byte(2), B256::repeat_byte(3));
        let sealed = seal(&key, &fingerprint, &code_hash, 1_234, b"machine code");
        assert_eq!(unseal(&key, &fingerprint, &code_hash, &sealed), Ok((&b"machine code"[..], 1_234)));
        assert_eq!(unseal_header(&key, &fingerprint, &code_hash, &sealed[..HEADER_LEN]), Ok(1_234));
        let other = B256::repeat_byte(9);
        assert_eq!(unseal(&other, &fingerprint, &code_hash, &sealed), Err(SealError::Tag));
        assert_eq!(unseal(&key, &other, &code_hash, &sealed), Err(SealError::Fingerprint));
        assert_eq!(unseal(&key, &fingerprint, &other, &sealed), Err(SealError::CodeHash));
        assert_eq!(unseal(&key, &fingerprint, &code_hash, &sealed[..HEADER_LEN - 1]), Err(SealError::Malformed));
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(unseal(&key, &fingerprint, &code_hash, &flipped), Err(SealError::Tag));
        let mut renamed = sealed.clone();
        renamed[0] = b'X';
        assert_eq!(unseal(&key, &fingerprint, &code_hash, &renamed), Err(SealError::Malformed));
        // A header stating a smaller bound (a cheaper call) does not verify.
        let mut cheaper = sealed;
        cheaper[72] ^= 0xff;
        assert_eq!(unseal_header(&key, &fingerprint, &code_hash, &cheaper), Err(SealError::Tag));
    }

    #[test]
    fn a_directory_keeps_its_key_and_its_artifacts_across_openings() {
        let dir = tempfile::tempdir().unwrap();
        let code_hash = B256::repeat_byte(7);
        let first = DirectoryArtifacts::open(dir.path().join("artifacts")).unwrap();
        assert_eq!(first.load(&code_hash).unwrap(), None);
        first.save(&code_hash, b"sealed").unwrap();
        let again = DirectoryArtifacts::open(dir.path().join("artifacts")).unwrap();
        assert_eq!(again.seal_key(), first.seal_key());
        assert_eq!(again.load(&code_hash).unwrap().as_deref(), Some(&b"sealed"[..]));
        assert_eq!(again.load_prefix(&code_hash, 3).unwrap().as_deref(), Some(&b"sea"[..]));
        assert_eq!(again.load_prefix(&B256::ZERO, 3).unwrap(), None);
        // Another directory is another node: another key.
        let other = DirectoryArtifacts::open(dir.path().join("elsewhere")).unwrap();
        assert_ne!(other.seal_key(), first.seal_key());
        // A damaged key file is an error, never a new key that would disown every artifact silently.
        std::fs::write(dir.path().join("artifacts").join(KEY_FILE), b"short").unwrap();
        let error = DirectoryArtifacts::open(dir.path().join("artifacts")).err().unwrap();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }
}
