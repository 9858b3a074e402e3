"""S3 naming rules, shared by the client's S3 storage block and the server's
writes into one: which bucket names S3 accepts, and where a flow script's
content key lives in a bucket."""
from __future__ import annotations

import ipaddress
import re

_BUCKET_CHARS = re.compile(r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$")
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def bucket_name_problem(name: str) -> str | None:
    """What is wrong with an S3 bucket name (AWS's rules for general purpose
    buckets, which S3-compatible stores follow too), or None."""
    if not 3 <= len(name) <= 63:
        return "must be 3 to 63 characters long"
    if not _BUCKET_CHARS.match(name):
        return ("must be lowercase letters, digits, dots and hyphens, beginning and ending with a letter or digit")
    if ".." in name:
        return "must not contain two dots in a row"
    try:
        ipaddress.IPv4Address(name)
        return "must not look like an IP address"
    except ValueError:
        pass
    for prefix in _RESERVED_PREFIXES:
        if name.startswith(prefix):
            return f"must not begin with {prefix!r} (reserved by S3)"
    for suffix in _RESERVED_SUFFIXES:
        if name.endswith(suffix):
            return f"must not end with {suffix!r} (reserved by S3)"
    return None


def clean_prefix(prefix: str | None) -> str:
    """A key prefix without leading or trailing "/" ("" for none)."""
    return (prefix or "").strip("/")


def object_key(prefix: str | None, key: str) -> str:
    """Where content key `key` lives in a bucket under `prefix`."""
    prefix = clean_prefix(prefix)
    return f"{prefix}/{key}" if prefix else key


NOT_FOUND_CODES = ("404", "NoSuchKey", "NotFound")


def error_code(error: BaseException) -> str:
    """The S3 error code of a botocore ClientError ("" for other errors)."""
    response = getattr(error, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


def put_content(s3, bucket: str, key: str, data: bytes) -> bool:
    """Store content-addressed `data` at `key` with a boto3 S3 client, unless
    it is there already. True when written. Errors are botocore's."""
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return False
    except Exception as e:  # noqa: BLE001 - botocore's ClientError (core does not import botocore)
        if error_code(e) not in NOT_FOUND_CODES:
            raise
    s3.put_object(Bucket=bucket, Key=key, Body=data)
    return True
