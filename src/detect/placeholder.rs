//! Values that look like a credential's slot but hold none: masks, templates, documentation
//! examples. CI logs are full of them (CircleCI prints masked values as `****`, GitHub Actions
//! as `***`; config templates carry `${VAR}` and `<your-token>`), and reporting them would
//! teach users to ignore the tool.

/// AWS's documentation example credentials (docs.aws.amazon.com, "example key pair").
const DOC_EXAMPLES: &[&[u8]] = &[
    b"AKIAIOSFODNN7EXAMPLE",
    b"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    b"je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",
    b"ASIAIOSFODNN7EXAMPLE",
];

/// Whether `secret` is a masked, templated or example value rather than a credential.
pub fn is_placeholder(secret: &[u8]) -> bool {
    let Some(&first) = secret.first() else {
        return true;
    };
    if secret.iter().all(|&b| b == first) {
        return true;
    }
    if DOC_EXAMPLES.contains(&secret) || contains(secret, b"EXAMPLEKEY") {
        return true;
    }
    // Masks: `****`, `xxxx`/`XXXX`, `####`, `••••` runs anywhere in the value.
    if contains(secret, b"****")
        || contains(secret, b"xxxx")
        || contains(secret, b"XXXX")
        || contains(secret, b"####")
        || contains(secret, "••".as_bytes())
    {
        return true;
    }
    // Templates: `${VAR}`, `${{ secrets.X }}`, `{{ .Token }}`, `$(cmd)`, `%(name)s`, `$VAR`.
    if contains(secret, b"${")
        || contains(secret, b"{{")
        || contains(secret, b"$(")
        || contains(secret, b"%(")
        || (first == b'$'
            && secret[1..]
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b == b'_'))
    {
        return true;
    }
    // `<your-token>`, `<TOKEN>`, `[REDACTED]`.
    let last = *secret.last().expect("non-empty");
    if (first == b'<' && last == b'>') || (first == b'[' && last == b']') {
        return true;
    }
    if contains(secret, b"<your") || contains(secret, b"your_") || contains(secret, b"YOUR_") {
        return true;
    }
    false
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(hay, needle).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders() {
        for p in [
            "****************",
            "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            "AKIAXXXXXXXXXXXXXXXX",
            "${GITHUB_TOKEN}",
            "${{ secrets.NPM_TOKEN }}",
            "{{ .Values.token }}",
            "<your-token>",
            "<TOKEN>",
            "[REDACTED]",
            "$NPM_TOKEN",
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "aaaaaaaaaaaaaaaaaaaa",
            "0000000000000000000000000000000000000000",
            "",
        ] {
            assert!(is_placeholder(p.as_bytes()), "{p}");
        }
    }

    #[test]
    fn real_looking_values_are_not_placeholders() {
        for s in [
            "ghp_Zq3kYb8TfW2mN5rXc7vH1jL9pD4sGa1Qw2Er",
            "AKIAZ7Q3K2M4N5P6R7S8",
            "xoxb-123456789012-123456789012-abcDEF123ghiJKL456mnoPQR",
            "p4$$w0rd-with-dollar",
        ] {
            assert!(!is_placeholder(s.as_bytes()), "{s}");
        }
    }
}
