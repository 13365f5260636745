"""Turning a posted article into a registry record with a content-addressed id."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime

from service.core.pipeline import split_article
from service.core.voices import Voice
from service.errors import InputError, PayloadTooLargeError
from service.store.registry import ArticleRecord, Status
from service.text.extract import Article, Paragraph, extract

_ID_VERSION = "langdu-article-1"


def article_id(sentences: tuple[tuple[int, str], ...], voice: Voice, rate: str, pitch: str) -> str:
    """Same content + voice + rate + pitch = same id."""
    payload = json.dumps([_ID_VERSION, voice.id, rate, pitch, sentences], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]


def plain_article(text: str) -> Article:
    """Text to be read exactly as given (no page-chrome filtering): one paragraph a line."""
    paragraphs = tuple(Paragraph(line.strip()) for line in text.splitlines() if line.strip())
    return Article(None, paragraphs)


@dataclass(frozen=True, slots=True)
class Limits:
    """How much work one article may ask for."""

    max_chars: int = 40_000
    max_digits: int = 64


# One number: digits with thousands separators (three-digit groups) and a decimal part.
# "2019,2020,2021" is three numbers, not one of twelve digits.
_DIGIT_RUN = re.compile(r"[0-9０-９]+(?:[,，][0-9０-９]{3}(?![0-9０-９]))*(?:\.[0-9０-９]+)?")


def check_limits(sentences: tuple[tuple[int, str], ...], limits: Limits) -> None:
    """Raises PayloadTooLargeError (too much text) or InputError (a number too long to read).

    Called before anything is stored or synthesized."""
    total = sum(len(text) for _, text in sentences)
    if total > limits.max_chars:
        raise PayloadTooLargeError(
            f"the article has {total} characters to read; the limit is {limits.max_chars}"
        )
    for _, text in sentences:
        for run in _DIGIT_RUN.findall(text):
            digits = sum(c.isdigit() for c in run)
            if digits > limits.max_digits:
                raise InputError(
                    f"a number of {digits} digits is too long to read aloud"
                    f" (the limit is {limits.max_digits} digits)"
                )


def build_record(
    *,
    voice: Voice,
    limits: Limits | None = None,
    text: str | None = None,
    html: str | None = None,
    article: Article | None = None,
    title: str | None = None,
    url: str | None = None,
    rate: str | None = None,
    pitch: str | None = None,
    published_at: datetime | None = None,
) -> ArticleRecord:
    """Extract, split and identify an article (the voice's engine checks rate and pitch).

    Raises:
        EmptyArticleError / NothingToSpeakError: nothing to read.
        PayloadTooLargeError / InputError: over the limits (see check_limits).
    """
    if article is None:
        source = html if html is not None else text or ""
        article = extract(source, html=html is not None)
    if title:
        article = Article(title.strip(), article.paragraphs)
    rate = rate or voice.rate
    pitch = pitch or voice.pitch
    sentences = tuple((s.paragraph, s.text) for s in split_article(article))
    check_limits(sentences, limits or Limits())
    return ArticleRecord(
        id=article_id(sentences, voice, rate, pitch),
        title=article.title,
        url=url,
        voice=voice.id,
        rate=rate,
        pitch=pitch,
        status=Status.QUEUED,
        sentences=sentences,
        published_at=published_at,
    )
