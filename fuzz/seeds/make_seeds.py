#!/usr/bin/env python3
"""Write the seed inputs of every fuzz target into fuzz/seeds/<target>/ (python3, standard
library only; run from anywhere). The seeds come from the project's own tests, examples and
rule files; they are small so that the directories stay small in git. Fuzz runs copy them
into a scratch corpus (see fuzz/regressions/README.md)."""

import bz2
import gzip
import io
import lzma
import os
import struct
import tarfile
import zipfile

FUZZ = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(FUZZ)
SEEDS = os.path.join(FUZZ, "seeds")


def put(target, name, data):
    d = os.path.join(SEEDS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def read(*path):
    with open(os.path.join(ROOT, *path), "rb") as f:
        return f.read()


# --- archive: first byte picks the name (0 x.zip, 1 x.tar, 2 x.tar.gz, 3 x.gz, 4 x.bz2,
# 5 x.tar.bz2, 6 x.xz, 7 x.tar.xz); the rest is the archive.
SECRET = b"token ghp_Zq3kYb8TfW2mN5rXc7vH1jL9pD4sGa0t7Hkq\n"


def tar_of(files, fmt=tarfile.GNU_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def zip_of(files, method=zipfile.ZIP_DEFLATED):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=method) as z:
        for name, data in files:
            z.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), data)
    return buf.getvalue()


def gz(data):
    return gzip.compress(data, compresslevel=6, mtime=0)


small_tar = tar_of([("logs/a.log", b"alpha\n"), ("logs/b.log", SECRET)])
put("archive", "zip-two-members", b"\x00" + zip_of([("a.txt", b"plain"), ("b.log", SECRET)]))
put("archive", "zip-stored", b"\x00" + zip_of([("s.txt", SECRET)], zipfile.ZIP_STORED))
put(
    "archive",
    "zip-nested-tgz",
    b"\x00" + zip_of([("reports/inner.tar.gz", gz(small_tar)), ("a.txt", b"plain")]),
)
put(
    "archive",
    "zip-in-zip-in-zip",
    b"\x00" + zip_of([("in.zip", zip_of([("in2.zip", zip_of([("x.txt", SECRET)]))]))]),
)
put("archive", "tar-two-members", b"\x01" + small_tar)
put(
    "archive",
    "tar-gnu-long-name",
    b"\x01" + tar_of([("deep/" + "d" * 120 + "/build.log", SECRET)]),
)
put(
    "archive",
    "tar-pax-path",
    b"\x01" + tar_of([("pax/" + "p" * 120 + "/x.log", SECRET)], tarfile.PAX_FORMAT),
)
put("archive", "tar-gz", b"\x02" + gz(small_tar))
put("archive", "gz-text", b"\x03" + gz(b"line one\n" + SECRET))
put("archive", "gz-junit-example", b"\x03" + read("examples", "test-results.xml.gz"))
put("archive", "gz-bomb-zeros", b"\x03" + gz(b"\x00" * (8 << 20)))
put("archive", "bz2-text", b"\x04" + bz2.compress(b"line\n" + SECRET, 1))
put("archive", "tar-bz2", b"\x05" + bz2.compress(small_tar, 1))
put("archive", "xz-text", b"\x06" + lzma.compress(b"line\n" + SECRET, preset=0))
put("archive", "tar-xz", b"\x07" + lzma.compress(small_tar, preset=0))
put("archive", "gz-of-tar-unnamed", b"\x03" + gz(small_tar))

# --- step_json: real-shape CircleCI step output (examples/, tests/support/fake_circleci.rs,
# src/normalise.rs tests).
put("step_json", "example-step-output.json", read("examples", "step-output.json"))
put(
    "step_json",
    "fake-circleci-messages.json",
    '[{"message": "echo $TOKEN\\r\\n", "time": "2022-12-28T10:00:00.000Z", "type": "out"}, '
    '{"message": "' + SECRET.decode().strip() + '\\r\\n", "time": "2022-12-28T10:00:00.000Z", "type": "err"}]',
)
put(
    "step_json",
    "escapes-and-truncated.json",
    '[{"message":"line one\\r\\n\\u001B[32mgreen\\u001B[0m\\r\\n","time":"2022-08-17T20:18:30.944Z","type":"out"},\n'
    ' {"message":"\\nExited with code exit status 1\\n","time":"2022-08-17T20:18:31.007Z","type":"err","truncated":false}]',
)
put("step_json", "empty-array.json", "  []")
put(
    "step_json",
    "bom-untyped-null.json",
    b'\xef\xbb\xbf[{"message": null}, {"time": "t"}, {"message": "\\ud83d\\ude00 \\u00e9", "type": "other"}]',
)
put(
    "step_json",
    "split-osc-across-messages.json",
    '[{"message": "a\\u001b]0;title", "type": "out"}, {"message": "\\u0007b AKIAZ7Q3K2M4N5P6WXYZ", "type": "out"}]',
)
put("step_json", "cut.json", '[{"message": "cut')

# --- rules: single rules from patterns/*.toml that between them use every feature, and the
# smallest complete rule from src/rules.rs tests.
def rules_of(path):
    text = read("patterns", path).decode()
    parts = text.split("[[rules]]")
    return {p.split('id = "', 1)[1].split('"', 1)[0]: "[[rules]]" + p for p in parts[1:]}


picks = {
    "aws.toml": ["aws-access-key-id", "aws-secret-access-key"],
    "github.toml": ["github-pat"],
    "generic.toml": ["generic-secret-assignment", "url-password", "jwt"],
    "private-key.toml": ["private-key"],
    "slack.toml": None,
}
for f, ids in picks.items():
    rules = rules_of(f)
    if ids is None:
        ids = [next(iter(rules))]
    for i in ids:
        put("rules", i + ".toml", rules[i])
put("rules", "aws-pair.toml", "".join(rules_of("aws.toml")[i] for i in picks["aws.toml"]))
put(
    "rules",
    "demo.toml",
    """[[rules]]
id = "demo-token"
name = "Demo"
description = "d"
keywords = ["DEMO_"]
regex = '(?P<secret>demo_[a-z0-9]{8})'
severity = "high"
confidence = "high"
remediation = "rotate it"
examples = [{ text = "x demo_abcd1234", secret = "demo_abcd1234" }]
negative_examples = ["demo_short"]
""",
)

# --- config: the documented example (src/config.rs), its test and the refused ones.
put(
    "config",
    "documented.toml",
    """[rules]
disable = ["generic-secret-assignment"]
dirs = ["ci/secret-rules"]
entropy = { "generic-secret-assignment" = 4.0 }

[paths]
ignore = ["**/node_modules/**", "vendor/**"]

[[allow]]
description = "test fixtures use this fake key"
secret = '^AKIAZZZZ'
line = 'fixtures/'
rules = ["aws-access-key-id"]
""",
)
put(
    "config",
    "test.toml",
    """
[rules]
disable = ["generic-secret-assignment"]
entropy = { "github-pat" = 5.5 }
dirs = ["more-rules"]

[paths]
ignore = ["**/node_modules/**"]

[[allow]]
secret = '^AKIAZZ'
rules = ["aws-access-key-id"]

[[allow]]
line = 'fixtures/'
""",
)
put("config", "unknown-rule.toml", '[rules]\ndisable = ["no-such-rule"]')
put("config", "bad-glob.toml", "[paths]\nignore = ['a/{']")
put("config", "bad-regex.toml", "[[allow]]\nsecret = '('")
put("config", "empty.toml", "")

# --- circleci_api: the shapes tests/support/fake_circleci.rs serves.
SLUG = "gh/acme/api"
put(
    "circleci_api",
    "pipelines.json",
    '{"items": [{"id": "5034460f-c7c4-4c43-9457-de07e2029e7b", "errors": [], "project_slug": "gh/acme/api", '
    '"updated_at": "2023-01-02T10:00:00Z", "number": 42, "state": "created", "created_at": "2023-01-02T10:00:00Z", '
    '"trigger": {"received_at": "2023-01-02T10:00:00Z", "type": "webhook", "actor": {"login": "dev", "avatar_url": null}}, '
    '"vcs": {"provider_name": "GitHub", "branch": "main", "revision": "ca67134f650e362133e51a9ffdb8e5ddc7fa53a5"}}], '
    '"next_page_token": "AARLwwV"}',
)
put(
    "circleci_api",
    "workflows.json",
    '{"items": [{"pipeline_id": "5034460f", "id": "fda08377-fe7e-46b1-8992-3a7aaecac9c3", "name": "build", '
    '"project_slug": "gh/acme/api", "status": "success", "started_by": "98209bd9", "pipeline_number": 42, '
    '"created_at": "2023-01-02T10:00:00Z", "stopped_at": null}], "next_page_token": null}',
)
put(
    "circleci_api",
    "jobs.json",
    '{"items": [{"id": "job-7", "name": "test", "type": "build", "status": "success", "job_number": 7, '
    '"project_slug": "gh/acme/api", "dependencies": [], "started_at": "2023-01-02T10:00:00Z", "stopped_at": null}, '
    '{"name": "approve", "job-number": null, "type": "approval", "status": "on_hold"}], "next-page-token": "t"}',
)
put(
    "circleci_api",
    "v1-projects.json",
    '[{"vcs_type": "github", "username": "acme", "reponame": "api", "vcs_url": "https://github.com/acme/api", '
    '"followed": true, "branches": {}}, {"vcs_type": "circleci", "vcs_url": '
    '"//circleci.com/68129642-b377-4bd1-a534-a94d01d2db25/d5e87839-c1ac-45d0-a6c1-986f8faeabd5"}, '
    '{"vcs-type": "bitbucket", "username": "a b", "reponame": "c%d"}]',
)
put(
    "circleci_api",
    "build.json",
    '{"build_num": 7, "build_url": "https://circleci.com/gh/acme/api/7", "lifecycle": "finished", '
    '"status": "success", "vcs_type": "github", "username": "acme", "reponame": "api", "steps": [{"name": "Run tests", '
    '"actions": [{"truncated": false, "index": 0, "parallel": true, "failed": null, "name": "Run tests", '
    '"bash_command": "make test", "status": "success", "type": "test", "output_url": '
    '"https://storage.example/output/x?X-Amz-Signature=01c9f00d", "step": 101, "has_output": true, '
    '"background": false, "exit_code": 0, "messages": []}]}], "has_artifacts": true, '
    '"circle_yml": {"string": "version: 2.1\\n"}, "workflows": {"job_name": "test", '
    '"workflow_name": "build", "workflow_id": "fda08377"}}',
)
put(
    "circleci_api",
    "artifacts.json",
    '{"items": [{"path": "reports/a.zip", "node_index": 0, "url": "https://artifacts.example/a.zip"}, '
    '{"path": "a.txt", "node-index": 1, "url": "https://x/a"}], "next_page_token": null}',
)
put(
    "circleci_api",
    "slugs.txt",
    "gh/acme/api\ngithub/acme/api\nbb/a/b\nbitbucket/a b/c\n"
    "circleci/DrNsW5SW6K42zooKCzkVek/TR2eS1FtBshdqkgqtiiaDa\ngitlab/g/p\n/gh/x/y/\ngh/acme\nsvn/a/b\n",
)

# --- retry_after: 8 bytes `now` (seconds, little-endian), 4 bytes cap (seconds), then lines
# of a header selector byte (0 Retry-After, 1 RateLimit-Reset, 2 X-RateLimit-Reset) + value.
NOW = struct.pack("<Q", 1_700_000_000) + struct.pack("<I", 300)
for name, lines in {
    "seconds": [b"\x003"],
    "fraction": [b"\x00 2.5 "],
    "huge": [b"\x001e20"],
    "http-date": [b"\x00Tue, 14 Nov 2023 22:13:27 GMT"],
    "far-date": [b"\x00Fri, 31 Dec 9999 23:59:59 GMT"],
    "past-date": [b"\x00Mon, 01 Jan 2001 00:00:00 GMT"],
    "ratelimit": [b"\x00soon", b"\x017", b"\x0299999999999"],
    "x-ratelimit": [b"\x02-5", b"\x0242"],
}.items():
    put("retry_after", name, NOW + b"\n".join(lines))
put("retry_after", "epoch-zero-cap", b"\x00" * 12 + b"\x00NaN\n\x011e400")

# --- normalise_decode: the examples and the kept regression inputs.
put("normalise_decode", "build-log.txt", read("examples", "build-log.txt"))
put("normalise_decode", "step-output.json", read("examples", "step-output.json"))
put("normalise_decode", "test-results.xml.gz", read("examples", "test-results.xml.gz"))
