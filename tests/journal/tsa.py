"""A real RFC 3161 Time-Stamp Authority for tests: OpenSSL's ``openssl ts -reply`` behind a tiny HTTP
server on 127.0.0.1, with a throwaway CA and TSA certificate made by ``openssl`` in a temporary folder."""

import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

CONFIG = """
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = csm test
[ ca_ext ]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
[ tsa_ext ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature, nonRepudiation
extendedKeyUsage = critical, timeStamping
[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
dir = {dir}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.crt
certs = $dir/ca.crt
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.3.6.1.4.1.99999.1
digests = {digests}
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


class LocalTSA:
    """``url`` answers TimeStampReqs; ``requests`` counts them; ``mode`` makes it misbehave:
    ``"ok"``, ``"http500"``, ``"other-imprint"`` (a valid token over another message), ``"reject"`` (a
    TimeStampResp with status rejection) or ``"garbage"`` (200 with bytes that are no DER)."""

    def __init__(self, folder: Path):
        self.dir = folder
        self.config = folder / "openssl.cnf"
        self.config.write_text(CONFIG.format(dir=folder, digests="sha256, sha384, sha512"))
        self.sha512_only = folder / "sha512-only.cnf"  # refuses csm's SHA-256 requests: status rejection
        self.sha512_only.write_text(CONFIG.format(dir=folder, digests="sha512"))
        (folder / "serial").write_text("01\n")
        run = lambda *args: _openssl(*args, cwd=folder)  # noqa: E731
        run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key",
            "-out", "ca.crt", "-days", "2", "-subj", "/CN=csm test CA", "-config", str(self.config),
            "-extensions", "ca_ext")
        run("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "tsa.key",
            "-out", "tsa.csr", "-subj", "/CN=csm test TSA", "-config", str(self.config))
        run("x509", "-req", "-in", "tsa.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
            "-out", "tsa.crt", "-extfile", str(self.config), "-extensions", "tsa_ext")
        self.requests = 0
        self.mode = "ok"
        self._lock = threading.Lock()
        tsa = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with tsa._lock:
                    tsa.requests += 1
                    status, answer = tsa.answer(body, self.headers.get("Content-Type", ""))
                self.send_response(status)
                self.send_header("Content-Type", "application/timestamp-reply")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/tsa"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def answer(self, query: bytes, content_type: str) -> tuple[int, bytes]:
        if self.mode == "http500" or content_type != "application/timestamp-query":
            return 500, b""
        if self.mode == "garbage":
            return 200, b"<html>not a timestamp</html>"
        path = self.dir / "query.tsq"
        if self.mode == "other-imprint":
            other = self.dir / "other.txt"
            other.write_bytes(b"another message")
            _openssl("ts", "-query", "-data", str(other), "-sha256", "-cert", "-out", str(path), cwd=self.dir)
        else:
            path.write_bytes(query)
        config = self.sha512_only if self.mode == "reject" else self.config
        _openssl("ts", "-reply", "-config", str(config), "-queryfile", str(path), "-out", "reply.tsr", cwd=self.dir)
        return 200, (self.dir / "reply.tsr").read_bytes()

    def verify(self, reply: bytes, data: bytes) -> subprocess.CompletedProcess:
        """``openssl ts -verify`` of a stored TimeStampResp over ``data`` against the test CA."""
        (self.dir / "check.tsr").write_bytes(reply)
        (self.dir / "check.data").write_bytes(data)
        return subprocess.run(["openssl", "ts", "-verify", "-in", "check.tsr", "-data", "check.data",
                               "-CAfile", "ca.crt"], cwd=self.dir, capture_output=True, text=True)

    def close(self):
        self.server.shutdown()
        self.server.server_close()
