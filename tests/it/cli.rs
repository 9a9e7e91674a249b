//! The command line: `--version`, `--help`, `check`, and exit statuses (0 ok, 1 runtime
//! failure, 2 invalid config or zones).
//!
//! Golden files: `tests/fixtures/bad/check.stderr` is the exact output expected from
//! `meridian check --config tests/fixtures/check-bad.toml` run in the crate root. Run with
//! `UPDATE_GOLDEN=1` to rewrite it from the current output (then review the diff).

use std::path::Path;
use std::process::Output;

use crate::harness::*;

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("utf-8 stdout")
}

fn stderr(o: &Output) -> String {
    strip_ansi(&String::from_utf8(o.stderr.clone()).expect("utf-8 stderr"))
}

fn assert_exit(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "exit status\nstdout:\n{}\nstderr:\n{}",
        stdout(o),
        stderr(o)
    );
}

/// Runs `meridian ARGS` in the crate root.
fn run(args: &[&str]) -> Output {
    run_meridian(&repo_dir(), args)
}

/// Compares `actual` with the golden file at `path` (relative to the crate root), or
/// rewrites the file when `UPDATE_GOLDEN` is set.
fn assert_golden(path: &str, actual: &str) {
    let file = repo_dir().join(path);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&file, actual).expect("write golden file");
        return;
    }
    let expected = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("{path}: {e} (run with UPDATE_GOLDEN=1 to create it)"));
    assert_text_eq(path, &expected, actual);
}

#[test]
fn version_prints_the_package_version() {
    let o = run(&["--version"]);
    assert_exit(&o, 0);
    assert_eq!(
        stdout(&o),
        format!("meridian {}\n", env!("CARGO_PKG_VERSION"))
    );
    let o = run(&["-V"]);
    assert_exit(&o, 0);
    assert_eq!(
        stdout(&o),
        format!("meridian {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn help_lists_the_check_command() {
    let o = run(&["--help"]);
    assert_exit(&o, 0);
    let out = stdout(&o);
    assert!(out.contains("Usage: meridian"), "{out}");
    let check = out
        .lines()
        .find(|l| l.trim_start().starts_with("check "))
        .unwrap_or_else(|| panic!("no `check` command in --help:\n{out}"));
    assert!(check.contains("Validate"), "{check}");
    assert!(out.contains("--config"), "{out}");

    let o = run(&["check", "--help"]);
    assert_exit(&o, 0);
    assert!(stdout(&o).contains("--config"), "{}", stdout(&o));
}

#[test]
fn unknown_command_or_option_exits_2() {
    for args in [
        &["frobnicate"][..],
        &["--no-such-flag"],
        &["check", "extra"],
    ] {
        let o = run(args);
        assert_exit(&o, 2);
        assert!(stderr(&o).contains("error:"), "{}", stderr(&o));
    }
}

#[test]
fn check_accepts_good_zones() {
    let o = run(&["check", "--config", "tests/fixtures/check-good.toml"]);
    assert_exit(&o, 0);
    assert_eq!(stderr(&o), "");
    // 24 names with data, plus the empty non-terminals b.c, c, apps, w and _tcp.
    assert_eq!(
        stdout(&o),
        "ok: 1 zone(s), 29 name(s) in tests/fixtures/good\n"
    );
}

#[test]
fn check_passes_on_the_shipped_zones() {
    // No --config: the defaults serve ./zones, here the crate's own directory.
    let o = run(&["check"]);
    assert_exit(&o, 0);
    assert_eq!(stderr(&o), "");
    let out = stdout(&o);
    assert!(
        out.starts_with("ok: ") && out.ends_with(" in zones\n"),
        "{out}"
    );
}

#[test]
fn the_peer_benchmark_zone_stays_valid() {
    // benches/peers/ is the candidate config for ../shared/bench/peers; that harness's
    // database may be absent here, so check the zone against the repository's own.
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("meridian.toml");
    let text = format!(
        "zones_dir = {:?}\n[geoip]\ndatabases = [{:?}]\n",
        repo_dir().join("benches/peers/zones").display().to_string(),
        repo_dir()
            .join("geoip/test-city.mmdb")
            .display()
            .to_string(),
    );
    std::fs::write(&config, text).expect("write config");
    let o = run(&["check", "--config", config.to_str().expect("utf-8 path")]);
    assert_exit(&o, 0);
    assert!(stdout(&o).starts_with("ok: 1 zone(s), "), "{}", stdout(&o));
}

#[test]
fn check_reports_every_problem_of_broken_zones() {
    let o = run(&["check", "--config", "tests/fixtures/check-bad.toml"]);
    assert_exit(&o, 2);
    assert_eq!(stdout(&o), "", "nothing on stdout when check fails");
    assert_golden("tests/fixtures/bad/check.stderr", &stderr(&o));
}

#[test]
fn check_rejects_an_unknown_config_key_with_its_position() {
    let dir = tempfile::tempdir().expect("temp dir");
    let zones = repo_dir().join("zones");
    let cases = [
        (
            format!("listen = [\"127.0.0.1:0\"]\nzones_dir = {zones:?}\nzone_dir = \"z\"\n"),
            "3:1",
            "zone_dir",
        ),
        (
            format!("zones_dir = {zones:?}\n[tcp]\nidle_timeout = \"5s\"\n  max_conns = 4\n"),
            "4:3",
            "max_conns",
        ),
    ];
    for (text, pos, key) in cases {
        let config = dir.path().join("meridian.toml");
        std::fs::write(&config, &text).expect("write config");
        let o = run(&["check", "--config", config.to_str().expect("utf-8 path")]);
        assert_exit(&o, 2);
        let err = stderr(&o);
        let want = format!("error: {}:{pos}: ", config.display());
        assert!(err.starts_with(&want), "expected {want:?}...\n{err}");
        assert!(
            err.lines()
                .next()
                .unwrap_or_default()
                .contains(&format!("`{key}`")),
            "{err}"
        );
        assert!(
            err.ends_with("check failed: 1 error, 0 warnings\n"),
            "{err}"
        );
    }
}

#[test]
fn check_with_a_missing_config_file_exits_2() {
    let o = run(&["check", "--config", "tests/fixtures/no-such-config.toml"]);
    assert_exit(&o, 2);
    let err = stderr(&o);
    assert!(
        err.starts_with("error: tests/fixtures/no-such-config.toml: cannot read config file: "),
        "{err}"
    );
}

#[test]
fn check_reports_toml_syntax_errors_with_a_position() {
    let dir = tempfile::tempdir().expect("temp dir");
    let zones = dir.path().join("zones");
    std::fs::create_dir(&zones).expect("mkdir");
    std::fs::write(
        zones.join("syntax.example.toml"),
        "origin = \"syntax.example\"\n[soa]\nprimary = \"ns1\ncontact = \"x\"\n",
    )
    .expect("write zone");
    let config = dir.path().join("meridian.toml");
    std::fs::write(&config, "zones_dir = \"zones\"\n").expect("write config");
    let o = run(&["check", "--config", config.to_str().expect("utf-8 path")]);
    assert_exit(&o, 2);
    let err = stderr(&o);
    let want = format!("error: {}:3:", zones.join("syntax.example.toml").display());
    assert!(err.starts_with(&want), "expected {want:?}...\n{err}");
    assert!(err.contains("invalid TOML"), "{err}");
}

#[test]
fn serve_with_invalid_zones_exits_2_without_listening() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("meridian.toml");
    let bad = repo_dir().join("tests/fixtures/bad");
    std::fs::write(
        &config,
        format!("listen = [\"127.0.0.1:0\"]\nzones_dir = {bad:?}\n"),
    )
    .expect("write config");
    let o = run(&["--config", config.to_str().expect("utf-8 path")]);
    assert_exit(&o, 2);
    let err = stderr(&o);
    assert!(err.contains("not starting:"), "{err}");
    assert!(!err.contains("listening on"), "{err}");
}

#[test]
fn serve_on_a_port_in_use_exits_1() {
    let s = Server::example();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("meridian.toml");
    let zones = repo_dir().join("zones");
    std::fs::write(
        &config,
        format!("listen = [\"{}\"]\nzones_dir = {zones:?}\n", s.addr),
    )
    .expect("write config");
    let o = run(&["--config", config.to_str().expect("utf-8 path")]);
    assert_exit(&o, 1);
    let err = stderr(&o);
    assert!(
        err.contains(&format!("cannot listen on udp {}", s.addr)),
        "{err}"
    );
    // The first server is unharmed.
    s.assert_alive("example.com.");
}

// ---------------------------------------------------------------------------------------
// Mutation test: every table of every shipped zone rejects an unknown key.

/// The keys of a table header line (`[a."b.c"]` → `["a", "b.c"]`), and whether it is an
/// array of tables (`[[...]]`); `None` for other lines.
fn table_header(line: &str) -> Option<(Vec<String>, bool)> {
    let t = line.trim();
    let (inner, array) = if let Some(rest) = t.strip_prefix("[[") {
        (rest, true)
    } else {
        (t.strip_prefix('[')?, false)
    };
    let mut keys = Vec::new();
    let mut chars = inner.chars().peekable();
    loop {
        while chars.peek() == Some(&' ') {
            chars.next();
        }
        let mut key = String::new();
        match chars.peek() {
            Some('"') | Some('\'') => {
                let quote = chars.next()?;
                loop {
                    match chars.next()? {
                        '\\' if quote == '"' => key.push(chars.next()?),
                        c if c == quote => break,
                        c => key.push(c),
                    }
                }
            }
            _ => {
                while let Some(&c) = chars.peek() {
                    if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                        key.push(c);
                        chars.next();
                    } else {
                        break;
                    }
                }
                if key.is_empty() {
                    return None;
                }
            }
        }
        keys.push(key);
        while chars.peek() == Some(&' ') {
            chars.next();
        }
        match chars.next()? {
            '.' => continue,
            ']' => break,
            _ => return None,
        }
    }
    if array && chars.next() != Some(']') {
        return None;
    }
    Some((keys, array))
}

/// Looks `path` up in a parsed TOML document (the last element of an array of tables).
fn table_at<'t>(root: &'t toml::Table, path: &[String]) -> Option<&'t toml::Table> {
    let mut cur = root;
    for k in path {
        cur = match cur.get(k)? {
            toml::Value::Table(t) => t,
            toml::Value::Array(a) => a.last()?.as_table()?,
            _ => return None,
        };
    }
    Some(cur)
}

/// One mutant: `bogus_key = 1` inserted into a table of a shipped zone file.
struct Mutant {
    /// The zone file it came from.
    file: std::path::PathBuf,
    /// 0-based index of the inserted line.
    line: usize,
    /// The table's key path as diagnostics print it (`names."@"`); empty for the top level.
    path: String,
    /// The mutated text.
    text: String,
}

/// Every mutant of every `zones/*.toml`: one at the top of the file, one after each table
/// header. Each is checked to be valid TOML with `bogus_key` in the intended table.
fn mutants() -> Vec<Mutant> {
    let zones_dir = repo_dir().join("zones");
    let mut files: Vec<_> = std::fs::read_dir(&zones_dir)
        .expect("zones/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no zone files in zones/");

    let mut out = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read zone");
        let lines: Vec<&str> = text.lines().collect();
        // (index of the line to insert before, keys of the table, key path)
        let mut sites: Vec<(usize, Vec<String>, String)> = vec![(0, Vec::new(), String::new())];
        let mut seen_arrays: Vec<(Vec<String>, usize)> = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let Some((keys, array)) = table_header(line) else {
                continue;
            };
            let mut path = keys
                .iter()
                .map(|k| meridian::diag::key_segment(k))
                .collect::<Vec<_>>()
                .join(".");
            if array {
                let n = match seen_arrays.iter_mut().find(|(k, _)| *k == keys) {
                    Some((_, n)) => {
                        *n += 1;
                        *n
                    }
                    None => {
                        seen_arrays.push((keys.clone(), 0));
                        0
                    }
                };
                path = format!("{path}[{n}]");
            }
            sites.push((i + 1, keys, path));
        }
        assert!(sites.len() > 1, "{}: no tables found", file.display());

        for (at, keys, path) in sites {
            let mut mutant: Vec<&str> = lines.clone();
            mutant.insert(at, "bogus_key = 1");
            let mutant = mutant.join("\n") + "\n";
            // The mutation itself must be sound: valid TOML, the key in the intended table.
            let doc: toml::Table = toml::from_str(&mutant).unwrap_or_else(|e| {
                panic!(
                    "{}: mutant at line {} is not TOML: {e}",
                    file.display(),
                    at + 1
                )
            });
            assert!(
                table_at(&doc, &keys).is_some_and(|t| t.contains_key("bogus_key")),
                "{}: bogus_key did not land in [{path}]",
                file.display()
            );
            out.push(Mutant {
                file: file.clone(),
                line: at,
                path,
                text: mutant,
            });
        }
    }
    out
}

/// Runs `meridian check` on `m` alone; returns the exit code, the path the mutant was
/// written to, and stderr.
fn check_mutant(m: &Mutant) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let zdir = dir.path().join("zones");
    std::fs::create_dir(&zdir).expect("mkdir");
    let zfile = zdir.join(m.file.file_name().expect("file name"));
    std::fs::write(&zfile, &m.text).expect("write mutant");
    let config = dir.path().join("meridian.toml");
    std::fs::write(&config, "zones_dir = \"zones\"\n").expect("write config");
    let o = run_meridian(
        Path::new(dir.path()),
        &["check", "--config", config.to_str().expect("utf-8 path")],
    );
    (o.status.code(), zfile.display().to_string(), stderr(&o))
}

/// Checks every mutant; `exact_path` demands the diagnostic name the table itself, else
/// the table or one of its ancestors is accepted. Returns the failures, one paragraph each.
fn mutant_failures(exact_path: bool) -> (usize, Vec<String>) {
    let all = mutants();
    let mut failures = Vec::new();
    for m in &all {
        let (code, zfile, err) = check_mutant(m);
        let shown = if m.path.is_empty() {
            "top level"
        } else {
            &m.path
        };
        if code != Some(2) {
            failures.push(format!(
                "{}: bogus_key in [{shown}]: exit {code:?}, not 2\n{err}",
                m.file.display()
            ));
            continue;
        }
        let prefix = format!("error: {zfile}:{}:1: ", m.line + 1);
        let suffix = ": unknown key `bogus_key`";
        let named: Vec<&str> = err
            .lines()
            .filter_map(|l| l.strip_prefix(&prefix)?.strip_suffix(suffix))
            .collect();
        let want = if m.path.is_empty() {
            "bogus_key"
        } else {
            m.path.as_str()
        };
        let ok = named.iter().any(|k| {
            *k == want
                || (!exact_path
                    && !m.path.is_empty()
                    && want.starts_with(k)
                    && want[k.len()..].starts_with('.'))
        });
        if !ok {
            failures.push(format!(
                "{}: bogus_key in [{shown}] (line {}): expected\n  {prefix}{want}{suffix}\ngot:\n{err}",
                m.file.display(),
                m.line + 1
            ));
        }
    }
    (all.len(), failures)
}

#[test]
fn every_table_of_every_shipped_zone_rejects_an_unknown_key() {
    let (n, failures) = mutant_failures(false);
    assert!(n >= 2, "only {n} mutants");
    assert!(
        failures.is_empty(),
        "{} of {n} mutants not rejected as expected:\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn unknown_keys_in_nested_tables_name_the_nested_table() {
    let (n, failures) = mutant_failures(true);
    assert!(
        failures.is_empty(),
        "{} of {n} mutants not reported under their own table:\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}
