"""Content assistants (issue 22 item 7, AI-COM-001…004): suggestions for a template's author.

Rule-based ones (``sms``: GSM-7 compression, ``variables``: schema warnings) always work; the language-model
ones (``llm``: subject lines, draft translations) need an OpenAI-compatible endpoint. Nothing here changes a
live version: suggestions are returned, and a translation is written only into a *draft* version.
"""
