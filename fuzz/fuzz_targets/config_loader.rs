//! Arbitrary text into the server config parser (`config::parse`).
//!
//! Invariants checked: no panic; a config is returned exactly when no error was reported;
//! every diagnostic names the file and has a position (line and column within the text) or
//! a key path.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use meridian::diag::Diagnostics;

const FILE: &str = "/etc/meridian/meridian.toml";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new(FILE);
    let mut diags = Diagnostics::new();
    let config = meridian::config::parse(path, text, &mut diags);
    assert_eq!(
        config.is_some(),
        !diags.has_errors(),
        "a config is returned exactly when there is no error:\n{}",
        diags.render()
    );
    let lines = text.split('\n').count();
    for d in diags.sorted() {
        assert_eq!(
            d.file.as_deref(),
            Some(path),
            "diagnostic without its file: {d}"
        );
        assert!(
            d.position.is_some() || !d.key.is_empty(),
            "diagnostic with neither position nor key: {d}"
        );
        if let Some((line, col)) = d.position {
            assert!(
                line >= 1 && line <= lines && col >= 1,
                "position out of the text: {d}"
            );
        }
    }
});
