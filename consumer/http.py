"""The consumer's HTTP port: /metrics, /healthz, /readyz and POST /predict."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

from consumer.classify import CachedClassifier
from consumer.metrics import Metrics
from schemas.messages import MAX_TEXT_CHARS
from textclean import CleaningConfig, clean_text

logger = logging.getLogger(__name__)

MAX_PREDICT_TEXTS = 64
MAX_BODY_BYTES = 1024 * 1024
# A client that sends less than its Content-Length would otherwise hold a thread for ever.
SOCKET_TIMEOUT_SECONDS = 10

ReadinessCheck = Callable[[], dict[str, bool]]


class PredictError(ValueError):
    pass


def parse_predict_body(body: bytes) -> list[str]:
    """`{"text": "..."}` or `{"texts": ["...", ...]}` → texts, or PredictError saying why not."""
    try:
        document = json.loads(body)
    # ValueError: also bad UTF-8 and integers of over 4,300 digits; RecursionError: deep nesting.
    except (ValueError, RecursionError) as error:
        raise PredictError(f"body is not JSON: {error}") from error
    if not isinstance(document, dict):
        raise PredictError('expected {"text": ...} or {"texts": [...]}')
    texts = document.get("texts", [document["text"]] if "text" in document else None)
    if not isinstance(texts, list) or not texts:
        raise PredictError('expected {"text": ...} or a non-empty {"texts": [...]}')
    if len(texts) > MAX_PREDICT_TEXTS:
        raise PredictError(f"at most {MAX_PREDICT_TEXTS} texts per request")
    for index, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            raise PredictError(f"texts[{index}]: must be a non-empty string")
        if len(text) > MAX_TEXT_CHARS:
            raise PredictError(f"texts[{index}]: longer than {MAX_TEXT_CHARS} characters")
        try:
            text.encode()
        except UnicodeEncodeError as error:  # "\ud800": JSON allows a lone surrogate
            raise PredictError(f"texts[{index}]: not valid Unicode ({error.reason})") from error
    return texts


def body_length(header: str | None) -> int:
    """The Content-Length of a /predict request, or PredictError if it is unusable."""
    if header is None:
        raise PredictError("Content-Length required")
    # ASCII digits only ("²" is a digit that int() refuses), and few (int() refuses 4,300).
    if not (header.isascii() and header.isdigit()) or len(header) > 18:
        raise PredictError(f"invalid Content-Length: {header[:32]!r}")
    return int(header)


class OpsServer:
    def __init__(
        self,
        host: str,
        port: int,
        classifier: CachedClassifier,
        cleaning: CleaningConfig,
        readiness: ReadinessCheck,
        metrics: Metrics,
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        handler = _make_handler(classifier, cleaning, readiness, metrics, registry)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self) -> None:
        self._thread.start()
        logger.info("HTTP on port %d: /metrics /healthz /readyz POST /predict", self.port)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _make_handler(
    classifier: CachedClassifier,
    cleaning: CleaningConfig,
    readiness: ReadinessCheck,
    metrics: Metrics,
    registry: CollectorRegistry,
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = SOCKET_TIMEOUT_SECONDS

        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._send(HTTPStatus.OK, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif self.path == "/healthz":
                self._json(HTTPStatus.OK, {"status": "alive"})
            elif self.path == "/readyz":
                checks = readiness()
                ready = all(checks.values())
                status = HTTPStatus.OK if ready else HTTPStatus.SERVICE_UNAVAILABLE
                self._json(status, {"ready": ready, "checks": checks})
            else:
                self._json(HTTPStatus.NOT_FOUND, {"error": "not found"})

        def do_POST(self) -> None:
            if self.path != "/predict":
                self._json(HTTPStatus.NOT_FOUND, {"error": "not found"})
                return
            try:
                length = body_length(self.headers.get("Content-Length"))
                if length > MAX_BODY_BYTES:
                    metrics.predict_requests.labels("refused").inc()
                    self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": "body too large"})
                    return
                texts = parse_predict_body(self.rfile.read(length))
            except PredictError as error:
                metrics.predict_requests.labels("refused").inc()
                self._json(HTTPStatus.BAD_REQUEST, {"error": str(error)})
                return
            cleaned = [clean_text(text, cleaning) for text in texts]
            verdicts = classifier.classify(list(dict.fromkeys(cleaned)))
            metrics.predict_requests.labels("ok").inc()
            self._json(
                HTTPStatus.OK,
                {
                    "model_version": classifier.version,
                    "predictions": [
                        {
                            "text": text,
                            "cleaned_text": clean,
                            "label": verdicts[clean].prediction.label,
                            "confidence": round(verdicts[clean].prediction.confidence, 6),
                            "positive_probability": round(
                                verdicts[clean].prediction.positive_probability, 6
                            ),
                            "cached": verdicts[clean].cached,
                        }
                        for text, clean in zip(texts, cleaned, strict=True)
                    ],
                },
            )

        def _json(self, status: HTTPStatus, document: object) -> None:
            self._send(status, json.dumps(document).encode(), "application/json")

        def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            logger.debug("http: " + format, *args)

    return Handler
