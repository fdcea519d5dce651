//! Precision and recall of the evidence model end to end: every form in which CI output prints
//! a credential is found at the default confidence, the classes of look-alikes that real logs
//! are full of are not, and what is only shaped like a credential is shown with
//! `--min-confidence low` alone.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use tempfile::TempDir;

use crate::util::*;

/// A random-looking value of `n` base62 characters (a generated fake, not a credential).
fn fake(seed: u64, n: usize) -> String {
    const B62: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            B62[(x % 62) as usize] as char
        })
        .collect()
}

/// Scan `text` as one file; the findings' (rule, secret, confidence).
fn scan_text(text: &str, extra: &[&str]) -> (i32, Vec<(String, String, String)>, String) {
    let dir = TempDir::new().unwrap();
    let p = write(&dir, "build.log", text.as_bytes());
    let o = scan_jsonl(&[&p], extra);
    let found = jsonl(&o)
        .iter()
        .map(|f| {
            (
                f["rule_id"].as_str().unwrap().to_string(),
                f["secret"].as_str().unwrap().to_string(),
                f["confidence"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (code(&o), found, stderr(&o))
}

#[test]
fn every_form_ci_prints_a_credential_in_is_found_by_default() {
    let s = fake(1, 24);
    let gh = gh_token("ghp", 11);
    let basic = STANDARD.encode(format!("x-access-token:{s}"));
    let docker_auth = STANDARD.encode(format!("ci-bot:{s}"));
    let pem_body: String = (0..4).map(|i| fake(20 + i, 64) + "\n").collect();
    let pem = format!(
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA{pem_body}-----END RSA PRIVATE KEY-----"
    );
    // (form, text, rule, secret)
    let table: Vec<(&str, String, &str, String)> = vec![
        (
            "export",
            format!("export DEPLOY_TOKEN={s}"),
            "generic-secret-assignment",
            s.clone(),
        ),
        (
            "set -x trace",
            format!("+ export DEPLOY_PASSWORD={s}"),
            "generic-secret-assignment",
            s.clone(),
        ),
        (
            "set -x trace of a flag",
            format!("+ ./release.sh --api-key {s} --env prod"),
            "generic-secret-assignment",
            s.clone(),
        ),
        (
            "env dump (declare -x)",
            format!("declare -x SERVICE_SECRET=\"{s}\""),
            "generic-secret-assignment",
            s.clone(),
        ),
        (
            "env dump (printenv)",
            format!("HOME=/root\nNPM_CONFIG_TOKEN={s}\nPATH=/usr/bin"),
            "generic-secret-assignment",
            s.clone(),
        ),
        (
            "GitHub Actions env block",
            format!("2022-06-16T22:22:54.2999347Z   SLACK_BOT_TOKEN: {s}"),
            "generic-secret-assignment",
            s.clone(),
        ),
        (
            "YAML",
            format!("deploy:\n  api_key: \"{s}\"\n"),
            "generic-secret-assignment",
            s.clone(),
        ),
        (
            "JSON log",
            format!("{{\"level\":\"debug\",\"msg\":\"login\",\"client_secret\":\"{s}\"}}"),
            "generic-secret-assignment",
            s.clone(),
        ),
        (
            "HTTP header",
            format!("> X-Api-Key: {s}"),
            "generic-secret-assignment",
            s.clone(),
        ),
        (
            "URL query",
            format!("GET https://api.acme.io/v1/items?access_token={s}&page=2"),
            "generic-secret-assignment",
            s.clone(),
        ),
        (
            ".npmrc",
            format!("//registry.npmjs.org/:_authToken={s}"),
            "npmrc-auth-token",
            s.clone(),
        ),
        (
            ".netrc",
            format!("+ echo 'machine github.com login ci-bot password {s}' > ~/.netrc"),
            "netrc-password",
            s.clone(),
        ),
        (
            "docker config.json",
            format!("{{\"auths\": {{\"registry.acme.io\": {{\"auth\": \"{docker_auth}\"}}}}}}"),
            "docker-config-auth",
            docker_auth.clone(),
        ),
        (
            "git -c http.extraheader",
            format!("+ git -c http.extraheader=\"AUTHORIZATION: basic {basic}\" fetch origin"),
            "http-basic-auth",
            basic.clone(),
        ),
        (
            "bearer header",
            format!("+ curl -H 'Authorization: Bearer {s}' https://api.acme.io"),
            "http-bearer-token",
            s.clone(),
        ),
        (
            "URL password",
            format!("+ git remote add origin https://ci-bot:{s}@git.acme.io/a/b.git"),
            "url-password",
            s.clone(),
        ),
        (
            "provider token",
            format!("token {gh}"),
            "github-pat",
            gh.clone(),
        ),
        (
            "PEM block",
            format!("$ cat deploy_key\n{pem}\n"),
            "private-key",
            pem.clone(),
        ),
        (
            "ANSI colours",
            format!("\x1b[32mexport DEPLOY_TOKEN=\x1b[1m{s}\x1b[0m"),
            "generic-secret-assignment",
            s.clone(),
        ),
        (
            "\\r redraws",
            format!("Progress 10%\rProgress 90%\rexport DEPLOY_TOKEN={s}"),
            "generic-secret-assignment",
            s.clone(),
        ),
        (
            "base64",
            format!(
                "+ echo {} | base64 -d",
                STANDARD.encode(format!("DEPLOY_TOKEN={s}"))
            ),
            "generic-secret-assignment",
            s.clone(),
        ),
        (
            "URL-encoded",
            format!("payload=%7B%22client_secret%22%3A%22{s}%22%7D"),
            "generic-secret-assignment",
            s.clone(),
        ),
        (
            "JSON-escaped",
            format!("\"{{\\\"api_key\\\": \\\"{s}\\\"}}\""),
            "generic-secret-assignment",
            s.clone(),
        ),
    ];
    for (form, text, rule, secret) in table {
        let (code, found, err) = scan_text(&format!("{text}\n"), &[]);
        assert!(
            found
                .iter()
                .any(|(r, sec, c)| r == rule && *sec == secret && c != "low"),
            "{form}: {text:?} gave {found:?} (exit {code}) {err}"
        );
        assert_eq!(code, 1, "{form}");
    }
}

#[test]
fn look_alikes_from_real_logs_are_not_findings() {
    // Classes of false findings seen on real CI logs: test names, file:line references,
    // package coordinates and file names, versions, identifiers, sentences, masked values,
    // presigned URLs, short ids a runner prints, values that say they are test values.
    let lines = [
        "auth::api_keys::error_list_api_keys_no_header ... ok",
        "tests/test_client.py::test_password_kwarg_works_for_password_auth PASSED",
        ":test_password_kwarg_not_used_for_passphrase_when_no_passphrase_given",
        "DEBUG    botocore.credentials:credentials.py:1975 Looking for credentials via: env",
        "[INFO] Including io.jsonwebtoken:jjwt-api:jar:0.11.2 in the shaded jar.",
        "            Android-Password-Store:app:unspecified",
        "Preparing to unpack .../passwd_1%3a4.2-3+deb8u4_amd64.deb ...",
        "Unpacking passwd (1:4.8.1-1ubuntu5.20.04) over (1:4.8.1-1ubuntu5.20.04) ...",
        "java.lang.String token = frames.nextToken();",
        "token = config.auth.githubToken",
        "PASSWORD_FILE=/run/secrets/db_password",
        "GOOGLE_APPLICATION_CREDENTIALS=/tmp/gcloud/service-account.json",
        "SECRET_KEY_BASE=****************",
        "export GITHUB_TOKEN=[secure]",
        "Downloading artifacts from coordinator... ok   id=1280281190 status=200 token=zaM3ywFV",
        "Location: https://bucket.s3.amazonaws.com/a?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAQ3EGUMJEXAMPLEQQ%2F20200617%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20200617T083206Z",
        "  {\"email\": \"a@b.c\", \"password\": \"Password123!\", \"role\": \"user\"}",
        "ROOT_PASSWORD=123456",
        "DATABASE_PASSWORD: postgres",
        "The token expired at 2022-06-16T22:22:54Z, requesting a new one",
        "Authorization: Bearer undefined",
        "      existingSecret: grafana-admin-creds-v2",
        "+ gcloud secrets versions access latest --secret=stripe-api-key-v2",
        "GOOGLE_APPLICATION_CREDENTIALS=keys/sa-ci-deployer-2024.json",
        "+ ansible-playbook deploy.yml --private-key keys/ci_deploy_ed25519 -u deploy",
        "{\"items\": [], \"nextPageToken\": \"CiAKGjBpNDd2Nmp2Zml2cXRwYjBpOXA0dHFsOWVqdGQSB2Zvby9iYXI\"}",
        "  \"hashed_secret\": \"9df29e1bbd41c62b43dd5cdded8cc2fa789a7dc2\",",
        "SECRETS_CHECKSUM=sha256:34d47a0951b8d3325c88e1abde47d42e0e5572754d80ec8caae73ef065b2ff4e",
        "tests/test_config.py::test_parse_env[API_TOKEN=abc123XYZ789def456-expected0] PASSED",
        "--- PASS: TestCacheS3Config_ShouldUseIAMCredentials (0.00s)",
        "  {:username=>\"system\", :password=>\"f70aa50d4e86663de15075a40e20f65b\", :active=>true}",
    ];
    for line in lines {
        let (code, found, err) = scan_text(&format!("{line}\n"), &[]);
        assert!(found.is_empty(), "{line:?} gave {found:?}");
        assert_eq!(code, 0, "{line:?}: {err}");
    }
}

#[test]
fn what_is_only_shaped_like_a_credential_shows_at_low_confidence_only() {
    let key_id = "AKIAQ3EGUMJ4ZXNPR7WB";
    let cases = [
        // A hex value under a generic name: a digest, a commit, or a hex token.
        (
            "$ export READ_ONLY_TOKEN=9ffd28faf1c5d120b63be99b2d585156816e3789".to_string(),
            "generic-secret-assignment",
        ),
        // A UUID under a generic name.
        (
            "SESSION_TOKEN=6c2f9d02-c377-4445-8d54-0c4d292cf631".to_string(),
            "generic-secret-assignment",
        ),
        // An AWS key id alone names a key; without its secret it is not a credential.
        (
            format!("+ export AWS_ACCESS_KEY_ID={key_id}"),
            "aws-access-key-id",
        ),
        // A UUID that came out of base64.
        (
            format!(
                "+ echo {}",
                STANDARD.encode("SESSION_TOKEN=6c2f9d02-c377-4445-8d54-0c4d292cf631")
            ),
            "generic-secret-assignment",
        ),
    ];
    for (text, rule) in cases {
        let (code, found, err) = scan_text(&format!("{text}\n"), &[]);
        assert!(found.is_empty(), "{text:?} gave {found:?}");
        assert_eq!(code, 0, "{text:?}");
        assert!(
            err.contains("1 more below the confidence shown"),
            "{text:?}: {err}"
        );
        let (code, found, _) = scan_text(&format!("{text}\n"), &["--min-confidence", "low"]);
        assert_eq!(code, 1, "{text:?}");
        assert_eq!(found.len(), 1, "{text:?}: {found:?}");
        assert_eq!((found[0].0.as_str(), found[0].2.as_str()), (rule, "low"));
    }
}

#[test]
fn an_aws_key_id_with_its_secret_is_one_high_finding_and_never_in_a_presigned_url() {
    let key_id = "AKIAQ3EGUMJ4ZXNPR7WB";
    let secret = format!("{}+{}", fake(7, 20), fake(8, 19));
    let dir = TempDir::new().unwrap();
    let p = write(
        &dir,
        "env.log",
        format!(
            "+ export AWS_ACCESS_KEY_ID={key_id}\n+ export AWS_SECRET_ACCESS_KEY={secret}\n\
             wget https://b.s3.amazonaws.com/x?X-Amz-Credential={key_id}%2F20200617%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=ab12\n"
        )
        .as_bytes(),
    );
    let o = scan_jsonl(&[&p], &["--min-confidence", "low"]);
    let found = jsonl(&o);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["rule_id"], "aws-access-key-id");
    assert_eq!(found[0]["confidence"], "high");
    assert_eq!(found[0]["pair"]["secret"], secret.as_str());
    let evidence: Vec<&str> = found[0]["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(evidence.contains(&"paired"), "{evidence:?}");
}

#[test]
fn findings_say_which_evidence_decided_their_confidence() {
    let s = fake(3, 24);
    let dir = TempDir::new().unwrap();
    let p = write(
        &dir,
        "a.log",
        format!("+ export DEPLOY_PASSWORD={s}\n").as_bytes(),
    );
    let found = jsonl(&scan_jsonl(&[&p], &[]));
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["confidence"], "high");
    assert_eq!(
        found[0]["evidence"],
        serde_json::json!(["key:strong", "at:assignment", "value:random"])
    );
    // A checked provider token says so.
    let p = write(
        &dir,
        "b.log",
        format!("token {}\n", gh_token("ghp", 5)).as_bytes(),
    );
    let found = jsonl(&scan_jsonl(&[&p], &[]));
    assert_eq!(
        found[0]["evidence"],
        serde_json::json!(["checksum:valid", "format"])
    );
    assert_eq!(found[0]["confidence"], "high");
}

#[test]
fn min_confidence_high_keeps_only_the_surest() {
    let s = fake(4, 24);
    let text = format!("+ echo \"token={s}\"\n+ export DEPLOY_PASSWORD={s}x\n");
    let (code, found, _) = scan_text(&text, &["--min-confidence", "high"]);
    assert_eq!(code, 1);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].1, format!("{s}x"));
    let (_, found, _) = scan_text(&text, &[]);
    assert_eq!(found.len(), 2, "{found:?}");
}
