"""A pytest fixture for tests that need a Nova with action history: a real nova-actions
service on a fresh temporary store, seeded, on a free port. Copy this file into your tests.

NOVA_ACTIONS_BIN names the binary (default: nova-actions on PATH); SEED an NDJSON history.
"""
import os
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture
def nova_actions():
    binary = os.environ.get("NOVA_ACTIONS_BIN", "nova-actions")
    seed = os.environ.get(
        "SEED", os.path.join(HERE, "..", "..", "tests", "fixtures", "golden", "fixture.ndjson"))
    proc = subprocess.Popen(
        [binary, "serve", "--ephemeral", "--seed", seed, "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE, text=True)
    # The one line on stdout: "nova-actions listening on http://127.0.0.1:PORT".
    url = proc.stdout.readline().split()[-1]
    yield url + "/v2.1"  # the compute endpoint; noauth tokens are "user:project[:roles]"
    proc.terminate()
    proc.wait()
