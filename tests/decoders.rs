//! Encoded secrets (base64, hex, URL, escapes, gzip, UTF-16), binaries and compressed files,
//! through the binary: what is found, where it is reported, and what is not a finding.

use std::io::Write;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use tempfile::TempDir;

use crate::util::*;

fn url_encode(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn gzip(s: &str) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(s.as_bytes()).unwrap();
    gz.finish().unwrap()
}

/// (secret, line, column, decoded) of each finding, sorted.
fn decoded(found: &[serde_json::Value]) -> Vec<(String, u64, u64, Vec<String>)> {
    let mut v: Vec<_> = found
        .iter()
        .map(|f| {
            (
                f["secret"].as_str().unwrap().to_string(),
                f["location"]["line"].as_u64().unwrap(),
                f["location"]["column"].as_u64().unwrap(),
                f["decoded"]
                    .as_array()
                    .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
                    .unwrap_or_default(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn encoded_secrets_are_reported_at_the_encoded_run_with_their_layers() {
    let dir = TempDir::new().unwrap();
    let t: Vec<String> = (0..8).map(|i| gh_token("ghp", 500 + i)).collect();
    let lines = [
        format!("+ echo {} | base64 -d", STANDARD.encode(&t[0])),
        format!("GET /cb?state=x&token={} HTTP/1.1", url_encode(&t[1])),
        format!("  dump: {}", hex(&t[2])),
        format!(r#"{{"auth":"{}"}}"#, t[3].replace('_', r"\u005f")),
        // Nested: base64 of a URL-encoded token.
        format!("payload={}", URL_SAFE_NO_PAD.encode(url_encode(&t[4]))),
        format!(
            "blob {}",
            STANDARD.encode(gzip(&format!("export T={}\n", t[5])))
        ),
        // Behind a URL path, without a break.
        format!(
            "curl https://api.example.com/v1/secrets/{}",
            URL_SAFE_NO_PAD.encode(format!("token:{}", t[6]))
        ),
        // Wrapped by `base64` at 76 columns.
        STANDARD
            .encode(format!("{0} {0} {0}", t[7]))
            .as_bytes()
            .chunks(76)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join("\n"),
    ];
    let p = write(
        &dir,
        "build.log",
        format!("{}\n", lines.join("\n")).as_bytes(),
    );
    let o = scan_jsonl(&[&p], &[]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let mut want = vec![
        (t[0].clone(), 1, 8, v(&["base64"])),
        (t[1].clone(), 2, 5, v(&["url"])),
        (t[2].clone(), 3, 9, v(&["hex"])),
        (t[3].clone(), 4, 10, v(&["escape"])),
        (t[4].clone(), 5, 9, v(&["base64", "url"])),
        (t[5].clone(), 6, 6, v(&["base64", "gzip"])),
        (t[6].clone(), 7, 41, v(&["base64"])),
        (t[7].clone(), 8, 1, v(&["base64"])),
    ];
    want.sort();
    assert_eq!(decoded(&jsonl(&o)), want, "{}", stdout(&o));
    let schema = crate::output::schema();
    for f in jsonl(&o) {
        crate::output::assert_valid(&schema, &f);
    }
    // The JSON step-output decoding and the decoders stack: a base64 token inside CircleCI
    // step JSON is found, with the line inside the joined messages.
    let body = serde_json::json!([{"message": format!("a\r\nkey: {}\r\n", STANDARD.encode(&t[0])), "time": "2023-01-04T10:00:00Z", "type": "out"}]);
    let p = write(&dir, "step.json", body.to_string().as_bytes());
    let found = jsonl(&scan_jsonl(&[&p], &[]));
    assert_eq!(decoded(&found), vec![(t[0].clone(), 2, 6, v(&["base64"]))]);
}

#[test]
fn decode_depth_limits_what_is_undone() {
    let dir = TempDir::new().unwrap();
    let single = gh_token("ghp", 600);
    let nested = gh_token("ghp", 601);
    let text = format!(
        "a {}\nb {}\n",
        STANDARD.encode(&single),
        STANDARD.encode(STANDARD.encode(&nested))
    );
    let p = write(&dir, "d.log", text.as_bytes());
    let secrets = |depth: &str| -> Vec<String> {
        let o = scan_jsonl(&[&p], &["--max-decode-depth", depth]);
        decoded(&jsonl(&o)).into_iter().map(|f| f.0).collect()
    };
    assert!(secrets("0").is_empty());
    assert_eq!(secrets("1"), vec![single.clone()]);
    let mut both = vec![single, nested];
    both.sort();
    assert_eq!(secrets("2"), both);
    assert_eq!(secrets("3"), both);
}

#[test]
fn digests_ids_and_binary_base64_are_not_findings() {
    let dir = TempDir::new().unwrap();
    let noise: String = (0..64u32)
        .map(|i| ((i * 37 + 11) % 251) as u8 as char)
        .collect();
    let text = format!(
        "sha256:5db839930a5284992a05aaf71b5c05c48d393e4f8bffe9bc56183d0ddd2ecc19: Pull complete\n\
         HEAD is now at 39b7f9d80bb927bfde3e65838cd5e419fa3be839 Merge\n\
         \"integrity\": \"sha512-HaPv1G5kn3wVpVCDcWE0uCn9x1K0Q7Cj5ozI919THWMsXd4ToNjNupycjIqSyr8skda+I/1Hmt6UTSnixwCidE==\",\n\
         request id=fbeba4cd-dd0f-021e-3f13-1e2869bd9dde status=200\n\
         etag=83461fe4f58d4c7f045c63acd4f8c145 layer 51655ab70c57\n\
         cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e\n\
         data: {}\n\
         path /home/circleci/project/node_modules/@babel/core/lib/index.js 100%\n",
        STANDARD.encode(noise.as_bytes())
    );
    let p = write(&dir, "noise.log", text.as_bytes());
    let o = scan_jsonl(&[&p], &[]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
}

#[test]
fn utf16_files_are_read_as_text_with_true_lines() {
    let dir = TempDir::new().unwrap();
    let tok = gh_token("ghp", 610);
    let text = format!("PS C:\\build> ./deploy.ps1\r\nusing token {tok}\r\ndone\r\n");
    let le: Vec<u8> = [0xff, 0xfe]
        .into_iter()
        .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    let be: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
    let a = write(&dir, "le.log", &le);
    let b = write(&dir, "be.log", &be);
    for p in [a, b] {
        let found = jsonl(&scan_jsonl(&[&p], &[]));
        assert_eq!(
            decoded(&found),
            vec![(tok.clone(), 2, 13, vec!["utf16".to_string()])],
            "{}",
            p.display()
        );
    }
}

#[test]
fn executables_and_images_are_skipped_and_other_binaries_give_their_strings() {
    let dir = TempDir::new().unwrap();
    let tok = gh_token("ghp", 620);
    let mut elf = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0".to_vec();
    elf.extend(format!("\0\0{tok}\0").as_bytes());
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    png.extend(format!("\0{tok}\0").as_bytes());
    write(&dir, "app", &elf);
    write(&dir, "logo.png", &png);
    let o = scan_jsonl(&[dir.path()], &[]);
    assert_eq!(code(&o), 0, "skipped by design: not an incomplete scan");
    assert!(stdout(&o).is_empty());
    let err = stderr(&o);
    assert!(err.contains("app: not scanned: ELF executable"), "{err}");
    assert!(err.contains("logo.png: not scanned: PNG image"), "{err}");
    assert!(
        err.contains("2 executable or image file(s) not scanned"),
        "{err}"
    );
    // A bundle of unknown type: the token is among its printable strings, at its offset.
    let mut blob = vec![0u8, 1, 2, 3, 0xff, 0xfe, 0x80];
    blob.extend(b"ab\0cd\x01");
    let offset = blob.len();
    blob.extend(format!("apiToken={tok}").as_bytes());
    blob.extend([0u8, 0x9c, 0x13]);
    let p = write(&dir, "cache.bin", &blob);
    let found = jsonl(&scan_jsonl(&[&p], &[]));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["secret"], tok);
    assert_eq!(found[0]["decoded"], serde_json::json!(["strings"]));
    let start = found[0]["span"]["start"].as_u64().unwrap() as usize;
    assert_eq!(start, offset + "apiToken=".len());
}

#[test]
fn bzip2_and_xz_files_are_opened() {
    let dir = TempDir::new().unwrap();
    let a = gh_token("ghp", 630);
    let b = gh_token("ghp", 631);
    let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
    bz.write_all(format!("x\ntoken {a}\n").as_bytes()).unwrap();
    write(&dir, "old.log.bz2", bz.finish().unwrap());
    let mut tar = tar::Builder::new(Vec::new());
    let data = format!("export GH={b}\n");
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    tar.append_data(&mut h, "logs/deploy.log", data.as_bytes())
        .unwrap();
    let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 1);
    xz.write_all(&tar.into_inner().unwrap()).unwrap();
    write(&dir, "logs.tar.xz", xz.finish().unwrap());
    let found = jsonl(&scan_jsonl(&[dir.path()], &[]));
    let mut got: Vec<(String, bool, u64)> = found
        .iter()
        .map(|f| {
            let path = f["location"]["path"].as_str().unwrap();
            let chain = path.ends_with("old.log.bz2!/old.log")
                || path.ends_with("logs.tar.xz!/logs/deploy.log");
            (
                f["secret"].as_str().unwrap().to_string(),
                chain,
                f["location"]["line"].as_u64().unwrap(),
            )
        })
        .collect();
    got.sort();
    let mut want = vec![(a, true, 2), (b, true, 1)];
    want.sort();
    assert_eq!(got, want, "{found:?}");
}

#[test]
fn archive_depth_is_a_flag() {
    let dir = TempDir::new().unwrap();
    let tok = gh_token("ghp", 640);
    let zip_of = |name: &str, data: &[u8]| {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        w.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        w.write_all(data).unwrap();
        w.finish().unwrap().into_inner()
    };
    let inner = zip_of("app.log", format!("token {tok}\n").as_bytes());
    let p = write(&dir, "reports.zip", zip_of("inner.zip", &inner));
    let o = scan_jsonl(&[&p], &[]);
    assert_eq!(code(&o), 1);
    assert!(jsonl(&o)[0]["location"]["path"]
        .as_str()
        .unwrap()
        .ends_with("reports.zip!/inner.zip!/app.log"));
    // One level only: the inner zip is not opened, and the scan says so (exit 2, not 0).
    let o = scan_jsonl(&[&p], &["--max-archive-depth", "1"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("not opened"), "{}", stderr(&o));
}
