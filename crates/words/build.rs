//! Embeds every `locales/<lang>/*.ftl` file, so a new message file needs no Rust edit.

// A build script fails the build by panicking; these are the files of this crate.
#![allow(clippy::expect_used)]

use std::{env, fs, path::Path};

fn main() {
    // Read at run time: `env!` would bake in the path this script was compiled at, and a
    // target dir shared by two checkouts would then embed the other checkout's files.
    let manifest_dir = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let root = Path::new(&manifest_dir).join("locales");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut out =
        String::from("/// (language folder, file name, contents) of every message file.\n");
    out.push_str("pub(crate) const FILES: &[(&str, &str, &str)] = &[\n");
    let mut langs: Vec<_> = fs::read_dir(&root)
        .expect("locales/ exists")
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .collect();
    langs.sort_by_key(|e| e.file_name());
    for lang in langs {
        println!("cargo:rerun-if-changed={}", lang.path().display());
        let mut files: Vec<_> = fs::read_dir(lang.path())
            .expect("a locale folder is readable")
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "ftl"))
            .collect();
        files.sort_by_key(|e| e.file_name());
        for file in files {
            println!("cargo:rerun-if-changed={}", file.path().display());
            out.push_str(&format!(
                "    ({:?}, {:?}, include_str!({:?})),\n",
                lang.file_name().to_string_lossy(),
                file.file_name().to_string_lossy(),
                file.path().display().to_string(),
            ));
        }
    }
    out.push_str("];\n");
    let dest = Path::new(&env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("files.rs");
    fs::write(dest, out).expect("OUT_DIR is writable");
}
