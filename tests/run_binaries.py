#!/usr/bin/env python3
"""Build every test binary of the workspace once, then run them two at a time.

Why not plain `cargo test --workspace`: it runs the test binaries one after
another, and most of their time is spent waiting (on servers starting, on a
killed nats-server's restart, on a browser), not computing. Two binaries side
by side finish the suite in about the time of the longest pair instead of the
sum of all.

Each binary runs as cargo runs it (working directory = its package's
directory, the same CARGO_* variables); its output is kept and printed whole
when it ends, so that two binaries' lines never interleave. Doc tests run
last, through cargo. The exit status is 1 when any test failed.
"""

import json
import os
import subprocess
import sys
import tempfile
import threading
import time

LANES = int(os.environ.get("MNO_TEST_LANES", "2"))

# The slowest binaries start first, so that the two lanes end close together
# (seconds on a 2-core machine, 2026-12; only the order depends on them).
EXPECTED_SECONDS = {
    ("mno-gateway", "it"): 190,
    ("mno-e2e", "it"): 120,
    ("mno-events", "it"): 36,
    ("mno-hub", "it"): 12,
    ("mno-connectors", "it"): 12,
}

print_lock = threading.Lock()


def build():
    """`cargo test --no-run`; returns the test executables cargo built."""
    command = [
        "cargo", "test", "--workspace", "--no-run",
        "--message-format=json-render-diagnostics",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    binaries = []
    for line in process.stdout:
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            continue
        if message.get("reason") != "compiler-artifact":
            continue
        if not message["profile"]["test"] or not message.get("executable"):
            continue
        package = message["package_id"]
        manifest = message["manifest_path"]
        binaries.append({
            "package": package_name(package, manifest),
            "target": message["target"]["name"],
            "kind": message["target"]["kind"][0],
            "path": message["executable"],
            "dir": os.path.dirname(manifest),
        })
    if process.wait() != 0:
        sys.exit("error: the tests did not build (cargo's messages are above)")
    return binaries


def package_name(package_id, manifest):
    """The package's name: cargo's ids read `path+file:///...#name@version`."""
    if "#" in package_id:
        tail = package_id.rsplit("#", 1)[1]
        return tail.split("@", 1)[0] if "@" in tail else os.path.basename(os.path.dirname(manifest))
    return package_id.split(" ", 1)[0]


def run(binary, results):
    """Runs one binary, output to a temp file, then prints it whole."""
    env = dict(os.environ)
    env["CARGO_MANIFEST_DIR"] = binary["dir"]
    env["CARGO_PKG_NAME"] = binary["package"]
    label = f'{binary["package"]} {binary["kind"]} {binary["target"]}'
    started = time.monotonic()
    with tempfile.TemporaryFile(mode="w+") as log:
        status = subprocess.call(
            [binary["path"]], cwd=binary["dir"], env=env,
            stdout=log, stderr=subprocess.STDOUT,
        )
        seconds = time.monotonic() - started
        log.seek(0)
        output = log.read()
    with print_lock:
        print(f"\n===== {label} ({os.path.basename(binary['path'])}): "
              f"{'ok' if status == 0 else 'FAILED'} in {seconds:.0f} s", flush=True)
        sys.stdout.write(output)
        sys.stdout.flush()
    results.append((label, status, seconds))


def main():
    binaries = build()
    binaries.sort(key=lambda b: -EXPECTED_SECONDS.get((b["package"], b["target"]), 1))
    queue = list(binaries)
    queue_lock = threading.Lock()
    results = []

    def lane():
        while True:
            with queue_lock:
                if not queue:
                    return
                binary = queue.pop(0)
            run(binary, results)

    started = time.monotonic()
    lanes = [threading.Thread(target=lane) for _ in range(max(1, LANES))]
    for thread in lanes:
        thread.start()
    for thread in lanes:
        thread.join()
    print(f"\n===== {len(results)} test binaries in {time.monotonic() - started:.0f} s, "
          f"{LANES} at a time", flush=True)

    doc = subprocess.call(["cargo", "test", "--workspace", "--doc"])
    failed = [label for label, status, _ in results if status != 0]
    if doc != 0:
        failed.append("doc tests")
    for label, status, seconds in sorted(results, key=lambda r: -r[2]):
        print(f"  {seconds:6.0f} s  {'ok    ' if status == 0 else 'FAILED'}  {label}")
    if failed:
        print("\nfailed: " + ", ".join(failed) + " (their whole output is printed above)")
        sys.exit(1)


if __name__ == "__main__":
    main()
