"""A loopback stand-in for the Hugging Face hub (the real one cannot be reached from tests): the
routes huggingface_hub's hf_hub_download calls, HEAD and GET `/{repo}/resolve/{revision}/{file}`,
with the hub's headers (X-Repo-Commit, ETag: the sha256 of a large file, a git hash of a small one,
X-Error-Code for gated, missing repositories and files) and byte ranges for resumed transfers.

Faults on request: a gated repository (401 without a token, 403 with one it does not accept), a
connection cut after half a file (`cuts[file] = n`: the next n GETs of it are cut), a file whose
published sha256 is not its content's (`corrupt`), a file announced larger than any disk (`huge`).
Point huggingface_hub at it with HF_ENDPOINT=server.url (read when huggingface_hub is imported:
the engine's own process, started by `cutscore weights`, reads it).
"""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COMMIT = "0123456789abcdef0123456789abcdef01234567"
LFS_MIN = 1024  # files from this size are "large" (LFS): their ETag is their sha256


class Hub:
    def __init__(self):
        self.files: dict[tuple[str, str], bytes] = {}  # (repo, filename) -> content
        self.gated: dict[str, str] = {}  # repo -> the token that may read it
        self.cuts: dict[str, int] = {}
        self.corrupt: set[str] = set()
        self.huge: set[str] = set()
        self.log: list[tuple[str, str, str | None]] = []  # (method, path, Range)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()

    def add(self, repo: str, filename: str, content: bytes) -> None:
        self.files[(repo, filename)] = content

    def etag(self, filename: str, content: bytes) -> str:
        if filename in self.corrupt:
            content = content + b"the published file"
        if len(content) >= LFS_MIN:
            return hashlib.sha256(content).hexdigest()
        return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()

    def _handler(hub):
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _error(self, code: int, error_code: str, message: str) -> None:
                self.send_response(code)
                self.send_header("X-Error-Code", error_code)
                self.send_header("X-Error-Message", message)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _route(self):
                parts = self.path.split("?")[0].strip("/").split("/")
                if len(parts) < 5 or parts[2] != "resolve":
                    self._error(404, "RepoNotFound", "Repository not found")
                    return None
                repo, filename = "/".join(parts[:2]), "/".join(parts[4:])
                if repo in hub.gated:
                    auth = self.headers.get("Authorization", "")
                    if not auth:
                        self._error(401, "GatedRepo", "Access to this model is restricted. You must be authenticated.")
                        return None
                    if auth != f"Bearer {hub.gated[repo]}":
                        self._error(403, "GatedRepo", "Access to this model is restricted and you are not in the "
                                                      "authorized list. Visit the model page to ask for access.")
                        return None
                if not any(r == repo for r, _ in hub.files):
                    self._error(404, "RepoNotFound", "Repository not found")
                    return None
                if (repo, filename) not in hub.files:
                    self._error(404, "EntryNotFound", f"{filename} does not exist on main")
                    return None
                return repo, filename, hub.files[(repo, filename)]

            def _headers(self, filename: str, content: bytes, status: int = 200, start: int = 0) -> None:
                self.send_response(status)
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("ETag", f'"{hub.etag(filename, content)}"')
                self.send_header("Accept-Ranges", "bytes")
                size = 10**15 if filename in hub.huge else len(content)
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(content) - 1}/{len(content)}")
                self.send_header("Content-Length", str(size - start))
                self.end_headers()

            def do_HEAD(self):
                hub.log.append(("HEAD", self.path, self.headers.get("Range")))
                found = self._route()
                if found:
                    self._headers(found[1], found[2])

            def do_GET(self):
                rng = self.headers.get("Range")
                hub.log.append(("GET", self.path, rng))
                found = self._route()
                if not found:
                    return
                _, filename, content = found
                start = int(rng.split("=")[1].split("-")[0]) if rng else 0
                self._headers(filename, content, 206 if start else 200, start)
                body = content[start:]
                if hub.cuts.get(filename, 0) > 0:
                    hub.cuts[filename] -= 1
                    self.wfile.write(body[: max(1, len(body) // 2)])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.wfile.write(body)

        return Handler
