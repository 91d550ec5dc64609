"""A loopback stand-in for an OpenAI-compatible chat-completions endpoint (``POST /v1/chat/completions``).

It answers in the wire format of https://platform.openai.com/docs/api-reference/chat/create (``id``,
``object: chat.completion``, ``choices[0].message.content``, ``usage``), deterministically, so tests and
`make run` exercise the content assistants without a model: subject-line requests get variations of the
current subject; translation requests get every field back with a ``[<locale>]`` marker on its text, every
Handlebars expression and tag untouched. ``mode`` scripts failures: ``"garbage"`` (content that is not
JSON), ``"malformed"`` (a body that is not a chat completion), ``"error"`` (HTTP 500), ``"placeholders"``
(a translation that drops a placeholder); ``delay`` (seconds) makes it slow. With ``api_key`` set, a
request without ``Authorization: Bearer <key>`` gets 401, as OpenAI answers.
"""

from __future__ import annotations

import json
import re
import sys
import time
from typing import Any

from comms.devserver.standins.httpserver import serve_json

_TEXT_NODE = re.compile(r">(\s*)([^<>{}\s][^<>{}]*?)(\s*)<")


def _mark(value: Any, marker: str, *, html: bool = False) -> Any:
    if isinstance(value, dict):
        return {k: _mark(v, marker) for k, v in value.items()}
    if isinstance(value, list):
        return [_mark(v, marker) for v in value]
    if not isinstance(value, str) or not value:
        return value
    if html and "<mj-text" in value:  # MJML: the text of every mj-text block
        return re.sub(r"(<mj-text\b[^>]*>)(\s*)", lambda m: f"{m.group(1)}{m.group(2)}{marker} ", value)
    if html and "<" in value:
        return _TEXT_NODE.sub(lambda m: f">{m.group(1)}{marker} {m.group(2)}{m.group(3)}<", value, count=1)
    return f"{marker} {value}"


class LlmStandIn:
    def __init__(self, *, api_key: str = "", port: int = 0, mode: str = "ok", delay: float = 0.0):
        self.api_key, self.mode, self.delay = api_key, mode, delay
        self.requests: list[dict] = []
        stand_in = self
        self.server = serve_json(lambda path, headers, body: stand_in._answer(path, headers, body), port=port,
                                 latency_ms=lambda: stand_in.delay * 1000)
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def _answer(self, path: str, headers: Any, body: bytes) -> tuple[int, Any]:
        if path.split("?")[0].rstrip("/") != "/v1/chat/completions":
            return 404, {"error": {"message": f"Unknown path {path}", "type": "invalid_request_error"}}
        if self.api_key and headers.get("Authorization") != f"Bearer {self.api_key}":
            return 401, {"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error",
                                   "code": "invalid_api_key"}}
        try:
            request = json.loads(body)
            messages = request["messages"]
            system, user = messages[0]["content"], messages[-1]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            return 400, {"error": {"message": "messages is required", "type": "invalid_request_error"}}
        self.requests.append(request)
        if self.mode == "error":
            return 500, {"error": {"message": "The server had an error", "type": "server_error"}}
        if self.mode == "malformed":
            return 200, {"result": "no choices here"}
        content = "Sure! Here are some ideas: first, second." if self.mode == "garbage" else self._content(system, user)
        return 200, {"id": f"chatcmpl-standin{len(self.requests)}", "object": "chat.completion",
                     "created": int(time.time()), "model": request.get("model", ""),
                     "choices": [{"index": 0, "finish_reason": "stop",
                                  "message": {"role": "assistant", "content": content}}],
                     "usage": {"prompt_tokens": len(system + user) // 4, "completion_tokens": len(content) // 4,
                               "total_tokens": (len(system + user) + len(content)) // 4}}

    def _content(self, system: str, user: str) -> str:
        try:
            data = json.loads(user)
        except ValueError:
            data = {}
        if "subject line" in system:
            current = data.get("current_subject") or "Your update"
            count = int(data.get("count") or 3)
            ideas = [current, f"Update: {current}", f"{current} - details inside", f"Quick note: {current}",
                     f"Re: {current}"]
            return "```json\n" + json.dumps({"subjects": ideas[:count]}) + "\n```"  # some models fence JSON
        if "translate" in system:
            marker = f"[{data.get('target_locale', '?')}]"
            fields = {k: _mark(v, marker, html=(k == "body_html")) for k, v in (data.get("fields") or {}).items()}
            if self.mode == "placeholders":
                fields = {k: re.sub(r"\{\{[^}]*\}\}", "", v) if isinstance(v, str) else v for k, v in fields.items()}
            return json.dumps(fields, ensure_ascii=False)
        return json.dumps({"answer": "ok"})

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def main(argv: list[str] | None = None) -> None:
    """`make run`: serve on a loopback port and print each request's first words."""
    import argparse

    parser = argparse.ArgumentParser(description="OpenAI-compatible chat-completions stand-in on loopback")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default="")
    parser.add_argument("--mode", default="ok", choices=["ok", "garbage", "malformed", "error", "placeholders"])
    parser.add_argument("--delay", type=float, default=0.0, help="answer each request this many seconds later")
    args = parser.parse_args(argv)
    stand_in = LlmStandIn(api_key=args.api_key, port=args.port, mode=args.mode, delay=args.delay)
    print(f"LLM stand-in on {stand_in.url} (POST /v1/chat/completions, mode {args.mode})", flush=True)
    try:
        seen = 0
        while True:
            time.sleep(1)
            for request in stand_in.requests[seen:]:
                print(f"chat {request.get('model')}: {request['messages'][0]['content'][:60]!r}", flush=True)
            seen = len(stand_in.requests)
            if seen > 1000:
                del stand_in.requests[:-100]
                seen = len(stand_in.requests)
    except KeyboardInterrupt:
        stand_in.close()
        sys.exit(0)


if __name__ == "__main__":
    main()
