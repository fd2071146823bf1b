"""memgym.models.resolve_model_path: named models (one not prepared names the command that
prepares it), local folders, the Hugging Face cache, and the hub (asked once, with a short
timeout, never when HF_HUB_OFFLINE is set); every failure is immediate and says what was tried."""

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from memgym.assets import TINY_MEMAGENT
from memgym.errors import ConfigError
from memgym.models import MODELS, resolve_model_path


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture
def online(monkeypatch):
    """Network allowed (huggingface_hub reads HF_HUB_OFFLINE once, at import)."""
    import huggingface_hub.constants as hf_constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)


def _closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_embedded_names_the_packaged_model_folder():
    assert resolve_model_path("embedded") == str(TINY_MEMAGENT)
    assert resolve_model_path("tiny") == "tiny"  # built in code by the trainer


def test_an_existing_folder_is_returned_and_a_missing_path_fails_at_once(tmp_path):
    assert resolve_model_path(str(tmp_path)) == str(tmp_path)
    with pytest.raises(ConfigError, match="no such folder.*local folder"):
        resolve_model_path(str(tmp_path / "nope"))
    with pytest.raises(ConfigError, match="no such folder"):
        resolve_model_path("./models/mine/")


def test_a_misspelt_name_offline_fails_at_once_saying_what_was_tried(offline):
    with pytest.raises(ConfigError) as err:
        resolve_model_path("embeded")
    message = str(err.value)
    assert "Did you mean 'embedded'?" in message
    for tried in ("named model (known: embedded", "local folder", "Hugging Face cache",
                  "HF_HUB_OFFLINE"):
        assert tried in message


def test_an_unreachable_hub_fails_within_the_timeout(monkeypatch, online):
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    with pytest.raises(ConfigError, match="the hub: .* is unreachable .*(Connect|refused)"):
        resolve_model_path("someone/some-model", hub_timeout_s=2.0)


def test_a_hub_that_knows_the_id_gets_it_and_an_unknown_id_fails(monkeypatch, online):
    class Hub(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            known = self.path.startswith("/api/models/org/known")
            data = json.dumps({"id": "org/known", "sha": "0" * 40} if known
                              else {"error": "Repository not found"}).encode()
            self.send_response(200 if known else 404)
            self.send_header("Content-Type", "application/json")
            if not known:
                self.send_header("X-Error-Code", "RepoNotFound")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{httpd.server_address[1]}")
    try:
        assert resolve_model_path("org/known") == "org/known"
        with pytest.raises(ConfigError, match="has no model 'org/unknown'"):
            resolve_model_path("org/unknown")
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_cached_hub_id_resolves_to_its_snapshot_without_the_hub(tmp_path, monkeypatch, offline):
    import huggingface_hub.constants as hf_constants

    commit = "a" * 40
    snapshot = tmp_path / "models--org--cached" / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (tmp_path / "models--org--cached" / "refs").mkdir()
    (tmp_path / "models--org--cached" / "refs" / "main").write_text(commit)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path))
    assert resolve_model_path("org/cached") == str(snapshot)


@pytest.mark.parametrize("name", ["smollm2-135m-instruct", "all-minilm-l6-v2"])
def test_an_unprepared_named_model_fails_at_once_with_the_prepare_command(name, tmp_path,
                                                                          monkeypatch, online):
    monkeypatch.setenv("MEMGYM_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")  # never asked
    with pytest.raises(ConfigError, match=f"not prepared .*run `memgym models prepare {name}`"):
        resolve_model_path(name)


def test_a_folder_without_a_matching_marker_is_not_a_prepared_model(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMGYM_CACHE", str(tmp_path))
    half = tmp_path / "models" / "smollm2-135m-instruct"
    half.mkdir(parents=True)
    (half / "config.json").write_text("{}")  # e.g. copied by hand, half-way
    with pytest.raises(ConfigError, match="not prepared"):
        resolve_model_path("smollm2-135m-instruct")
    (half / "memgym_model.json").write_text('{"sha256": "0000"}')  # another package version
    with pytest.raises(ConfigError, match="not prepared"):
        resolve_model_path("smollm2-135m-instruct")
    sha256 = MODELS["smollm2-135m-instruct"].sha256
    (half / "memgym_model.json").write_text(json.dumps({"sha256": sha256}))
    assert resolve_model_path("smollm2-135m-instruct") == str(half)
