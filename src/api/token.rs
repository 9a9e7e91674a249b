//! The API's bearer token: configured, or generated once and kept in the state directory,
//! so the `meridian` commands on the same machine find it without being told.

use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The token a client sends: the configured one, else the one the server wrote to `file`.
pub fn read(configured: Option<&str>, file: &Path) -> io::Result<String> {
    stored(configured, file)?.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            "no API token yet (is the server running?)",
        )
    })
}

/// The token the server expects: the configured one, else the one in `file`, else a new
/// random one written there, readable by the owner only (it guards the API).
pub fn read_or_create(configured: Option<&str>, file: &Path) -> io::Result<String> {
    match stored(configured, file) {
        Ok(Some(t)) => Ok(t),
        Ok(None) => create(file),
        Err(e) if e.kind() == io::ErrorKind::NotFound => create(file),
        Err(e) => Err(e),
    }
}

/// The configured token, else the one in `file`; `None` when the file is empty.
fn stored(configured: Option<&str>, file: &Path) -> io::Result<Option<String>> {
    if let Some(t) = configured {
        return Ok(Some(t.to_owned()));
    }
    let t = std::fs::read_to_string(file)?;
    let t = t.trim();
    Ok((!t.is_empty()).then(|| t.to_owned()))
}

fn create(file: &Path) -> io::Result<String> {
    let mut bytes = [0u8; 24];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    let t: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(file)?;
    f.write_all(t.as_bytes())?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn created_once_then_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("state").join("api-token");
        assert_eq!(
            read(None, &file).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        let made = read_or_create(None, &file).unwrap();
        assert_eq!(made.len(), 48);
        assert_eq!(read_or_create(None, &file).unwrap(), made);
        assert_eq!(read(None, &file).unwrap(), made);
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(read(Some("set"), &file).unwrap(), "set");
    }

    #[test]
    fn an_empty_file_is_no_token() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("api-token");
        std::fs::write(&file, " \n").unwrap();
        let e = read(None, &file).unwrap_err();
        assert_eq!(e.to_string(), "no API token yet (is the server running?)");
        assert_eq!(read_or_create(None, &file).unwrap().len(), 48);
    }
}
