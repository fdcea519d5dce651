//! `scan path` opens archives: zip (jar, whl, nupkg), tar, tar.gz, nested, with limits.

use std::fs;
use std::io::{Cursor, Read, Write};

use tempfile::TempDir;

use crate::util::*;

pub(crate) fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, data) in files {
        w.start_file(*name, zip::write::SimpleFileOptions::default())
            .unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

pub(crate) fn tar_gz_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::default(),
    ));
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap()
}

#[test]
fn nested_archives_report_the_member_chain() {
    let dir = TempDir::new().unwrap();
    let a = gh_token("ghp", 800);
    let b = gh_token("ghp", 801);
    let inner = tar_gz_of(&[("logs/app.log", format!("boot\n{a}\n").as_bytes())]);
    let outer = zip_of(&[
        ("build/logs.tar.gz", &inner),
        ("notes.txt", format!("x {b}\n").as_bytes()),
    ]);
    fs::write(dir.path().join("reports.zip"), &outer).unwrap();
    fs::write(
        dir.path().join("app.jar"),
        zip_of(&[("META-INF/app.properties", format!("token={a}\n").as_bytes())]),
    )
    .unwrap();
    let o = scan_jsonl(&[dir.path()], &[]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let mut got: Vec<(String, u64)> = jsonl(&o)
        .iter()
        .map(|f| {
            let p = f["location"]["path"].as_str().unwrap();
            (
                p[p.rfind('/')
                    .map_or(0, |_| p.find("app.jar").or(p.find("reports.zip")).unwrap())..]
                    .to_string(),
                f["location"]["line"].as_u64().unwrap(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("app.jar!/META-INF/app.properties".to_string(), 1),
            (
                "reports.zip!/build/logs.tar.gz!/logs/app.log".to_string(),
                2
            ),
            ("reports.zip!/notes.txt".to_string(), 1),
        ]
    );
}

#[test]
fn a_zip_bomb_is_refused_not_expanded_and_the_scan_is_incomplete() {
    let dir = TempDir::new().unwrap();
    let zeros = vec![0u8; 256 << 20];
    let bomb = zip_of(&[("huge.bin", &zeros)]);
    assert!(bomb.len() < 2 << 20);
    fs::write(dir.path().join("bomb.zip"), &bomb).unwrap();
    let o = scan_jsonl(&[dir.path()], &[]);
    assert_eq!(code(&o), 2, "nothing found, but not clean: {}", stderr(&o));
    assert!(stderr(&o).contains("refused"), "{}", stderr(&o));
    let err = stderr(&o);
    let summary = err
        .lines()
        .find(|l| l.starts_with("cisleuth: scanned"))
        .unwrap();
    let scanned: f64 = summary
        .split('(')
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap();
    assert!(scanned < 256.0, "the bomb was expanded: {}", stderr(&o));
}

#[test]
fn truncated_tar_gz_scans_what_it_can_and_reports_the_rest() {
    let dir = TempDir::new().unwrap();
    let tok = gh_token("ghp", 802);
    let big: Vec<u8> = (0..300_000u32)
        .flat_map(|i| i.wrapping_mul(2654435761).to_le_bytes())
        .collect();
    let tgz = tar_gz_of(&[
        ("first.log", format!("{tok}\n").as_bytes()),
        ("blob.bin", &big),
    ]);
    fs::write(dir.path().join("cut.tar.gz"), &tgz[..tgz.len() / 2]).unwrap();
    let o = scan_jsonl(&[dir.path()], &[]);
    assert_eq!(code(&o), 1);
    assert_eq!(summary(&jsonl(&o)).len(), 1);
    assert!(stderr(&o).contains("cut.tar.gz"), "{}", stderr(&o));
    assert!(stderr(&o).contains("error:"), "{}", stderr(&o));
}

/// A tar directory entry that declares data (1 TiB in the full-size bomb, 64 MiB here) is
/// decompressed to be skipped: those bytes count against the budget. Before, they were
/// outside it (hours of CPU for 804 KB, no note).
#[test]
fn data_skipped_in_a_compressed_tar_counts_against_the_budget() {
    let dir = TempDir::new().unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_size(64 << 20);
    h.set_cksum();
    b.append_data(&mut h, "dir/", std::io::repeat(0).take(64 << 20))
        .unwrap();
    let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::best());
    bz.write_all(&b.into_inner().unwrap()).unwrap();
    let bomb = write(&dir, "d.tar.bz2", bz.finish().unwrap());
    for extra in [&[][..], &["--max-decompressed", "8M"][..]] {
        let out = scan_jsonl(&[&bomb], extra);
        assert_eq!(code(&out), 2, "{extra:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("refused"), "{}", stderr(&out));
    }
}
