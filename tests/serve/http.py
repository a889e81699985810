"""A tiny HTTP client for the server tests (urllib, 127.0.0.1 only)."""

import http.client
import json
import urllib.error
import urllib.parse
import urllib.request


def post(url: str, body, headers: dict | None = None, timeout: float = 30.0) -> tuple[int, dict]:
    """POST ``body`` (bytes, or an object sent as JSON); ``(status, JSON answer)``."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="POST",
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def post_large(url: str, body: bytes, timeout: float = 30.0) -> tuple[int, dict]:
    """Declare ``body``'s length and send only its first KB: the server must refuse from
    the Content-Length alone (sending it all races the server closing the connection)."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    conn.putrequest("POST", u.path)
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(len(body)))
    conn.endheaders()
    try:
        conn.send(body[:1024])
    except (BrokenPipeError, ConnectionResetError):
        pass
    r = conn.getresponse()
    status, data = r.status, r.read()
    conn.close()
    return status, json.loads(data)


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def metric(text: str, name: str, **labels) -> float | None:
    """The value of one sample of a Prometheus text exposition, or None."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        if key == (f"{name}{{{want}}}" if labels else name):
            return float(value)
        if labels and key.startswith(name + "{"):
            got = dict(p.split("=", 1) for p in key[len(name) + 1:-1].split(","))
            if all(got.get(k) == f'"{v}"' for k, v in labels.items()) and len(got) == len(labels):
                return float(value)
    return None
