"""Fixtures of the interoperability test: Python stubs generated from `proto/` at test time,
and a `yrd serve` of the built binary on a throw-away data dir with the dev PKI it creates.

Run it with `tests/interop/run.sh` (README, "Contract checks"), which makes the virtual
environment and points `YRD_BIN` at the binary.
"""

import importlib
import importlib.resources
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import grpc
import pytest
from grpc_tools import protoc

REPO = Path(__file__).resolve().parents[2]
PROTO_ROOT = REPO / "proto"
# How long the server may take to create its data dir, PKI and database and start serving.
START_TIMEOUT_S = 60


@pytest.fixture(scope="session")
def stubs(tmp_path_factory):
    """Generates `*_pb2.py` and `*_pb2_grpc.py` for every file of the v1 contract with
    grpcio-tools' protoc, and answers them as attributes (`stubs.feed_pb2_grpc`)."""
    out = tmp_path_factory.mktemp("stubs")
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.glob("yrd/exchange/v1/*.proto"))
    assert protos, f"no .proto file under {PROTO_ROOT}/yrd/exchange/v1"
    well_known = importlib.resources.files("grpc_tools") / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        *protos,
    ]
    status = protoc.main(args)
    assert status == 0, f"protoc failed ({status}): {' '.join(args)}"
    sys.path.insert(0, str(out))
    modules = {}
    for generated in sorted((out / "yrd" / "exchange" / "v1").glob("*.py")):
        modules[generated.stem] = importlib.import_module(f"yrd.exchange.v1.{generated.stem}")
    return SimpleNamespace(**modules)


@dataclass
class Exchange:
    """A running `yrd serve`: its address and where its dev PKI lies."""

    address: str
    pki: Path

    def credentials(self, agency: str, profile: str = "system") -> grpc.ChannelCredentials:
        """mTLS credentials of `agency`'s certificate of `profile` from the dev PKI."""
        base = self.pki / "agencies" / agency
        return grpc.ssl_channel_credentials(
            root_certificates=(self.pki / "ca.pem").read_bytes(),
            private_key=(base / f"{profile}.key").read_bytes(),
            certificate_chain=(base / f"{profile}.pem").read_bytes(),
        )

    def channel(self, agency: str, profile: str = "system") -> grpc.Channel:
        """A channel to the exchange over `agency`'s certificate of `profile`."""
        return grpc.secure_channel(self.address, self.credentials(agency, profile))


def _binary() -> Path:
    binary = Path(os.environ.get("YRD_BIN", REPO / "target" / "debug" / "yrd"))
    if not binary.is_file():
        pytest.fail(f"no yrd binary at {binary}: build it (cargo build -p yrd-gateway --bin yrd) or set YRD_BIN")
    return binary


@pytest.fixture(scope="session")
def exchange(tmp_path_factory):
    """`yrd serve` on 127.0.0.1 (a port the system picks) with the default SQLite store in a
    temporary data dir. The address and the dev PKI are read from what it prints at start."""
    data_dir = tmp_path_factory.mktemp("yrd-data")
    log_path = data_dir.parent / "yrd-serve.log"
    # The server reads YRD_* variables as configuration; the caller's (e.g. CI's test settings)
    # are not for it.
    env = {key: value for key, value in os.environ.items() if not key.startswith("YRD_")}
    env["YRD_LOG"] = os.environ.get("YRD_LOG", "warn")
    process = subprocess.Popen(
        [str(_binary()), "serve", "--data-dir", str(data_dir), "--listen", "127.0.0.1:0"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    lines: "queue.Queue[str | None]" = queue.Queue()

    def pump():
        # Keeps reading stderr (so the server never blocks on a full pipe) into the log file,
        # and hands each line to the start-up wait below.
        with open(log_path, "w", encoding="utf-8") as log:
            for line in process.stderr:
                log.write(line)
                log.flush()
                lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    address = pki = None
    try:
        while address is None or pki is None:
            try:
                line = lines.get(timeout=START_TIMEOUT_S)
            except queue.Empty:
                pytest.fail(f"yrd serve printed no address and PKI within {START_TIMEOUT_S} s (log: {log_path})")
            if line is None:
                pytest.fail(f"yrd serve exited ({process.wait()}) before serving; log: {log_path}")
            if match := re.search(r"serving on (\S+)", line):
                address = match.group(1)
            if match := re.search(r"dev PKI: CA (\S+)/ca\.pem", line):
                pki = Path(match.group(1))
        exchange = Exchange(address=address, pki=pki)
        with exchange.channel("310000-SAMR") as channel:
            grpc.channel_ready_future(channel).result(timeout=START_TIMEOUT_S)
        yield exchange
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
