//! Arbitrary text into the server config parser (`config::parse`).
//!
//! Invariants checked: no panic; a config is returned exactly when no error was reported;
//! every diagnostic names the file and has a position (line and column within the text) or
//! a key path.

#![no_main]

#[path = "shared.rs"]
mod shared;

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
    shared::check_diagnostics(path, text, &diags, config.is_some());
});
