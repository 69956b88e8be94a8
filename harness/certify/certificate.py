"""certificate.json: its schema, checking a certificate against it, and reading one back.

Everything that writes or reads a certificate goes through `check_certificate`, so a
certificate on disk always has the shape of certificate.schema.json, and a bad one is
one line naming where it is wrong.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

SCHEMA_VERSION = 1
KIND = "lvs-certificate"
FILE_NAME = "certificate.json"
HTML_NAME = "certificate.html"
BADGE_NAME = "badge.svg"
MAX_PROBLEM = 300  # characters of a validator's message kept in the one-line error


class CertificateError(ValueError):
    """A certificate that is missing, unreadable or not of the schema's shape (one line)."""


def _schema() -> dict[str, Any]:
    text = resources.files("harness.certify").joinpath("certificate.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


SCHEMA = _schema()
_VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def _one_line(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= MAX_PROBLEM else flat[: MAX_PROBLEM - 1] + "…"


def check_certificate(cert: object, *, where: str = "certificate") -> dict[str, Any]:
    """`cert` if it has the schema's shape, else a CertificateError saying where it does not."""
    if not isinstance(cert, dict):
        raise CertificateError(f"{where}: a certificate is a JSON object")
    version = cert.get("schema_version")
    if cert.get("kind") == KIND and version != SCHEMA_VERSION:
        raise CertificateError(
            f"{where}: schema_version {version!r}; this harness reads certificates of "
            f"schema_version {SCHEMA_VERSION}"
        )
    errors = list(_VALIDATOR.iter_errors(cert))
    if errors:
        # The shallowest problem first: it is the one a reader fixes first.
        first = min(errors, key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
        at = "/".join(str(p) for p in first.absolute_path) or "(top level)"
        raise CertificateError(
            f"{where}: {at}: {_one_line(first.message)} "
            "(see harness/certify/certificate.schema.json)"
        )
    return cert


def certificate_path(given: Path) -> Path:
    """certificate.json inside a folder, or the file itself."""
    return given / FILE_NAME if given.is_dir() else given


def load_certificate(given: Path) -> tuple[Path, dict[str, Any]]:
    """(the certificate file, its checked content) for a folder or a file."""
    path = certificate_path(given)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if given.is_dir():
            raise CertificateError(f"{given}: no {FILE_NAME} in this folder") from None
        raise CertificateError(f"{path}: no such file") from None
    except OSError as exc:
        raise CertificateError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise CertificateError(f"{path}: not UTF-8 text") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CertificateError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    return path, check_certificate(data, where=str(path))


def write_certificate_json(cert: dict[str, Any], directory: Path) -> Path:
    """Check `cert` and write it as directory/certificate.json."""
    check_certificate(cert)
    path = directory / FILE_NAME
    path.write_text(json.dumps(cert, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
