"""LPIPS when it can be had: the AlexNet weights are fetched at set-up, at most once per process, an
offline machine gets 'missing' at once instead of a hang, a run never fetches, and only a file
with the published sha256 is used. The network is never used here."""

import hashlib
import os
import socket
import time

import pytest

from bench_base import lpips


@pytest.fixture
def fresh_fetch(tmp_path, monkeypatch):
    """A TORCH_HOME without weights, a process that has not tried to fetch yet, downloads allowed."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.delenv(lpips.NO_DOWNLOAD_ENV, raising=False)
    monkeypatch.setattr(lpips, "_fetch_attempted", False)
    monkeypatch.setattr(lpips, "_verified", {})
    monkeypatch.setattr(lpips, "ALEXNET_SHA256", hashlib.sha256(b"weights").hexdigest())  # what the fake download writes
    return tmp_path / "torch-home"


def test_offline_lpips_is_missing_quickly_and_tried_once(fresh_fetch, monkeypatch):
    lookups = []

    def no_network(*args, **kwargs):
        lookups.append(args[0])
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    started = time.perf_counter()
    assert not lpips.fetch_alexnet_weights()
    assert isinstance(lpips.build_lpips_or_missing(), lpips.MissingLPIPS)
    assert not lpips.fetch_alexnet_weights() and not lpips.lpips_available()
    assert time.perf_counter() - started < 2.0
    assert len(lookups) == 1  # one attempt in this process, not one per call


def test_a_silent_network_costs_at_most_the_probe_timeout(fresh_fetch, monkeypatch):
    monkeypatch.setattr(lpips, "PROBE_TIMEOUT_SECONDS", 0.2)
    monkeypatch.setattr(lpips, "_probe", lambda url: time.sleep(30))  # a resolver that never answers
    started = time.perf_counter()
    assert not lpips.fetch_alexnet_weights()
    assert time.perf_counter() - started < 3.0


def test_weights_are_fetched_once_when_the_network_answers(fresh_fetch, monkeypatch):
    downloads = []

    def download(url, target):
        downloads.append(url)
        target.write_bytes(b"weights")

    monkeypatch.setattr(lpips, "_probe", lambda url: None)
    monkeypatch.setattr(lpips, "_download", download)
    assert not lpips.lpips_available()  # a run never fetches
    assert downloads == []
    assert lpips.fetch_alexnet_weights() and lpips.fetch_alexnet_weights() and lpips.lpips_available()
    assert downloads == [lpips.ALEXNET_URL]
    assert lpips.alexnet_weights_path() == fresh_fetch / "hub" / "checkpoints" / lpips.ALEXNET_WEIGHTS
    assert lpips.alexnet_weights_path().read_bytes() == b"weights"


def test_a_failed_download_leaves_lpips_missing(fresh_fetch, monkeypatch):
    monkeypatch.setattr(lpips, "_probe", lambda url: None)
    monkeypatch.setattr(lpips, "_download", lambda url, target: (_ for _ in ()).throw(RuntimeError("invalid hash value")))
    assert not lpips.fetch_alexnet_weights() and not lpips.lpips_available()
    assert not lpips.alexnet_weights_path().exists()


def test_a_download_with_another_sha256_is_removed(fresh_fetch, monkeypatch):
    monkeypatch.setattr(lpips, "_probe", lambda url: None)
    monkeypatch.setattr(lpips, "_download", lambda url, target: target.write_bytes(b"7be5be79 but not the file"))
    with pytest.warns(UserWarning, match="not the published AlexNet checkpoint"):
        assert not lpips.fetch_alexnet_weights()
    assert not lpips.alexnet_weights_path().exists()


def test_a_cached_file_is_used_only_with_the_published_sha256(fresh_fetch, monkeypatch):
    path = lpips.alexnet_weights_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"weights")
    assert lpips.lpips_available()  # verified by its whole sha256
    path.write_bytes(b"weighty")  # the same name and size, other bytes
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))  # a later write, on a coarse clock too
    with pytest.warns(UserWarning, match="not the published AlexNet checkpoint"):
        assert not lpips.lpips_available()
    assert isinstance(lpips.build_lpips_or_missing(), lpips.MissingLPIPS)
    assert lpips.ALEXNET_WEIGHTS.split("-")[-1].split(".")[0] == lpips.ALEXNET_HASH_PREFIX


def test_no_download_when_switched_off(fresh_fetch, monkeypatch):
    monkeypatch.setenv(lpips.NO_DOWNLOAD_ENV, "1")
    monkeypatch.setattr(lpips, "_probe", lambda url: pytest.fail("the network was tried"))
    assert not lpips.fetch_alexnet_weights()
