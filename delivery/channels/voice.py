"""Voice channel policy: what every voice vendor must do, applied before any vendor sees the call.

A call speaks plain text. The text is never markup: each vendor escapes it into its own format
(Twilio's TwiML ``<Say>``, an SSML document) so neither a template author nor a template variable
can inject ``<Play>``, ``<Dial>`` or SSML. This layer decides what is said and how:

* the **language and voice** from the message's locale (a text-to-speech voice that cannot speak
  the language mispronounces every word; ``VOICES`` names an Amazon Polly neural voice per language,
  as Twilio's <Say> offers them, twilio.com/docs/voice/twiml/say/text-speech#available-voices-and-languages);
* the optional **confirmation** ("press 1"): ``metadata.voice.gather`` (a prompt, and how many
  digits; the pressed digits come back as a ``gathered`` message event);
* the **voicemail drop**: answering-machine detection waits for the greeting's end, so the same text
  is left after the beep (``metadata.voice.voicemail = false`` hangs up on machines instead).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from delivery.providers.base import Content

# locale -> (TwiML language, Polly neural voice). A locale not listed falls back to its language's
# first entry, then to en-US: a call is never refused for its language.
VOICES: dict[str, tuple[str, str]] = {
    "en-US": ("en-US", "Polly.Joanna-Neural"), "en-GB": ("en-GB", "Polly.Amy-Neural"),
    "en-AU": ("en-AU", "Polly.Olivia-Neural"), "en-IN": ("en-IN", "Polly.Kajal-Neural"),
    "es-ES": ("es-ES", "Polly.Lucia-Neural"), "es-US": ("es-US", "Polly.Lupe-Neural"),
    "es-MX": ("es-MX", "Polly.Mia-Neural"), "fr-FR": ("fr-FR", "Polly.Lea-Neural"),
    "fr-CA": ("fr-CA", "Polly.Gabrielle-Neural"), "de-DE": ("de-DE", "Polly.Vicki-Neural"),
    "it-IT": ("it-IT", "Polly.Bianca-Neural"), "pt-BR": ("pt-BR", "Polly.Camila-Neural"),
    "pt-PT": ("pt-PT", "Polly.Ines-Neural"), "nl-NL": ("nl-NL", "Polly.Laura-Neural"),
    "ja-JP": ("ja-JP", "Polly.Kazuha-Neural"),
}
_BY_LANGUAGE: dict[str, tuple[str, str]] = {}
for _locale, _voice in VOICES.items():
    _BY_LANGUAGE.setdefault(_locale.split("-")[0], _voice)
DEFAULT_VOICE = VOICES["en-US"]

# Said after a confirmation key press, in the call's language.
THANKS = {"en": "Thank you. Goodbye.", "es": "Gracias. Adiós.", "fr": "Merci. Au revoir.",
          "de": "Danke. Auf Wiederhören.", "it": "Grazie. Arrivederci.", "pt": "Obrigado. Até logo.",
          "nl": "Dank u. Tot ziens.", "ja": "ありがとうございました。"}
MAX_DIGITS = 10


def voice_for(locale: str) -> tuple[str, str]:
    """(language, voice) for `locale` ('fr', 'fr_CA', 'FR-ca' all work)."""
    tag = (locale or "").replace("_", "-").strip()
    parts = tag.split("-")
    if len(parts) >= 2:
        exact = VOICES.get(f"{parts[0].lower()}-{parts[1].upper()}")
        if exact:
            return exact
    return _BY_LANGUAGE.get(parts[0].lower(), DEFAULT_VOICE) if tag else DEFAULT_VOICE


def thanks(language: str) -> str:
    return THANKS.get((language or "en").split("-")[0].lower(), THANKS["en"])


def call_options(metadata: dict | None) -> dict[str, Any]:
    """The caller's call options from ``metadata.voice``, with anything malformed dropped (the text
    still goes out): {"gather": prompt, "digits": n, "voicemail": bool}."""
    voice = (metadata or {}).get("voice")
    voice = voice if isinstance(voice, dict) else {}
    gather = voice.get("gather")
    prompt, digits = "", 1
    if isinstance(gather, str):
        prompt = gather
    elif isinstance(gather, dict):
        prompt = str(gather.get("prompt") or "")
        raw = gather.get("digits", gather.get("num_digits", 1))
        digits = raw if isinstance(raw, int) and not isinstance(raw, bool) and 1 <= raw <= MAX_DIGITS else 1
    return {"gather": " ".join(prompt.split())[:500], "digits": digits,
            "voicemail": voice.get("voicemail", True) is not False}


def prepare_content(message: Any, content: Content) -> Content:
    """The call as every voice vendor must place it. Pure: reads the message's locale and metadata."""
    language, voice = voice_for(message.locale)
    options = call_options(message.metadata)
    data = {**content.data, "language": language, "voice": voice, **options}
    return replace(content, body=" ".join(content.body.split()), data=data)
