"""An OpenAI-compatible chat-completions client for the content assistants, failing only with typed errors.

Configured by COMMS_LLM_BASE_URL / COMMS_LLM_MODEL / COMMS_LLM_API_KEY / COMMS_LLM_TIMEOUT (OpenAI, or a
server self-hosters run locally: llama.cpp's server, Ollama, vLLM, LocalAI all speak
``POST /v1/chat/completions``). Not configured: AssistantOff. Timeout, connection error, non-2xx, or an
answer that is not the JSON we asked for: AssistantFailed (502) — the caller's suggestion fails, nothing
else does, and nothing is written.

Network policy (comms/netsafe.py): the endpoint is operator configuration, not tenant input, so it cannot be
used for SSRF by a customer; we still refuse the link-local range (169.254/16, fe80::/10: the cloud metadata
service) and multicast/unspecified always, and private networks (10/8, 172.16/12, 192.168/16, fc00::/7)
unless COMMS_LLM_ALLOW_PRIVATE or COMMS_OUTBOUND_ALLOWED_NETWORKS permits them. Loopback is allowed: an
operator who writes ``http://127.0.0.1:8080`` has explicitly chosen the model server on the same machine.
Plain-http requests connect to the address that was checked (no DNS rebinding between check and use);
https connects by name, where the certificate pins the host. Redirects are not followed. The API key is
sent only in the Authorization header and never logged or put in an error.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import socket
import time
from dataclasses import dataclass
from typing import Any

import httpx
from django.conf import settings

from comms import errors
from comms.netsafe import address_is_public, split_http_url

log = logging.getLogger(__name__)

AssistantOff = errors.error_class(
    "COMMS_ASSISTANT_OFF", 503,
    "The writing assistant is off: no language-model endpoint is configured (COMMS_LLM_BASE_URL, COMMS_LLM_MODEL).")
AssistantFailed = errors.error_class(
    "COMMS_ASSISTANT_FAILED", 502, "The language-model endpoint did not give a usable answer; nothing was changed.")


@dataclass(frozen=True)
class LlmConfig:
    base_url: str
    model: str
    api_key: str
    timeout: float

    def __repr__(self) -> str:  # the key never reaches a log line or a traceback's locals dump
        return f"LlmConfig(base_url={self.base_url!r}, model={self.model!r}, api_key={'***' if self.api_key else ''})"


def llm_config() -> LlmConfig | None:
    """The configured endpoint, or None (the assistant is off)."""
    base = (getattr(settings, "COMMS_LLM_BASE_URL", "") or "").strip()
    model = (getattr(settings, "COMMS_LLM_MODEL", "") or "").strip()
    if not base or not model:
        return None
    return LlmConfig(base.rstrip("/"), model, getattr(settings, "COMMS_LLM_API_KEY", "") or "",
                     float(getattr(settings, "COMMS_LLM_TIMEOUT", 20.0)))


def assistant_status() -> dict:
    """What the admin and the API say about the assistant (never the key)."""
    config = llm_config()
    if config is None:
        return {"enabled": False, "message": AssistantOff.default_message}
    return {"enabled": True, "model": config.model, "endpoint": split_http_url(config.base_url).hostname}


def completions_url(base_url: str) -> str:
    """OpenAI's SDKs take a base ending in /v1; a bare origin gets /v1 added."""
    return base_url + ("/chat/completions" if base_url.endswith("/v1") else "/v1/chat/completions")


def _permitted(ip: ipaddress._BaseAddress) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if address_is_public(ip):  # public, or listed in COMMS_OUTBOUND_ALLOWED_NETWORKS
        return True
    if ip.is_link_local or ip.is_multicast or ip.is_unspecified:
        return False
    if ip.is_loopback:
        return True
    return ip.is_private and bool(getattr(settings, "COMMS_LLM_ALLOW_PRIVATE", False))


def _target(url: str) -> tuple[str, dict[str, str]]:
    """(URL to connect to, extra headers), after the network policy above; AssistantFailed when refused."""
    try:
        parts = split_http_url(url)
    except errors.CommsError:
        raise AssistantFailed("COMMS_LLM_BASE_URL is not an absolute http(s) URL.") from None
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise AssistantFailed(f"The language-model host '{parts.hostname}' does not resolve.") from None
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    refused = [str(ip) for ip in addresses if not _permitted(ip)]
    if refused or not addresses:
        raise AssistantFailed(f"The language-model host resolves to a refused address ({', '.join(refused)}); "
                              "private networks need COMMS_LLM_ALLOW_PRIVATE.", details={"host": parts.hostname})
    if parts.scheme == "https":
        return url, {}
    ip = addresses[0]
    literal = f"[{ip}]" if ip.version == 6 else str(ip)
    return parts._replace(netloc=f"{literal}:{port}").geturl(), {"Host": parts.netloc.rsplit("@", 1)[-1]}


_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.S)


def chat_json(*, system: str, user: str, temperature: float = 0.3) -> tuple[dict, dict]:
    """Ask for a JSON object; (the object, call facts: model, elapsed ms, tokens). Typed errors only."""
    config = llm_config()
    if config is None:
        raise AssistantOff()
    url, headers = _target(completions_url(config.base_url))
    if config.api_key:
        headers["Authorization"] = f"Bearer {config.api_key}"
    body = {"model": config.model, "temperature": temperature,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}]}
    started = time.monotonic()
    try:
        with httpx.Client(timeout=config.timeout, follow_redirects=False, trust_env=False) as client:
            response = client.post(url, json=body, headers=headers)
    except httpx.TimeoutException:
        raise AssistantFailed(f"The language model did not answer within {config.timeout:g} s.",
                              details={"reason": "timeout"}) from None
    except httpx.HTTPError as exc:
        raise AssistantFailed(f"The language-model endpoint could not be reached ({type(exc).__name__}).",
                              details={"reason": "connection"}) from None
    elapsed = round((time.monotonic() - started) * 1000)
    log.info("llm call model=%s status=%s elapsed_ms=%s", config.model, response.status_code, elapsed)
    if not response.is_success:
        raise AssistantFailed(f"The language-model endpoint answered HTTP {response.status_code}.",
                              details={"reason": "http_status", "status": response.status_code})
    content = _content(response)
    facts = {"model": config.model, "elapsed_ms": elapsed}
    try:
        usage = response.json().get("usage") or {}
        facts["total_tokens"] = int(usage.get("total_tokens", 0))
    except (ValueError, TypeError, AttributeError):
        pass
    return content, facts


def _content(response: httpx.Response) -> dict:
    """The assistant message's content, parsed as the JSON object the prompt asked for."""
    try:
        text = response.json()["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise AssistantFailed("The language-model answer is not in the chat-completions format.",
                              details={"reason": "format"}) from None
    if not isinstance(text, str):
        raise AssistantFailed("The language-model answer has no text content.", details={"reason": "format"})
    fenced = _FENCE.match(text)
    try:
        data: Any = json.loads(fenced.group(1) if fenced else text)
    except ValueError:
        raise AssistantFailed("The language model did not answer with the JSON it was asked for.",
                              details={"reason": "not_json", "excerpt": text[:200]}) from None
    if not isinstance(data, dict):
        raise AssistantFailed("The language model's JSON is not an object.", details={"reason": "not_object"})
    return data
