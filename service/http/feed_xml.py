"""The podcast feed document: RSS 2.0 with the iTunes and Podcasting 2.0 namespaces."""

from __future__ import annotations

import hashlib
import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from zoneinfo import ZoneInfo

from service.config import itunes_categories
from service.text.clean import clean_text

ITUNES = "http://www.itunes.com/dtds/podcast-1.0.dtd"
PODCAST = "https://podcastindex.org/namespace/1.0"
ATOM = "http://www.w3.org/2005/Atom"


@dataclass(frozen=True, slots=True)
class Channel:
    """The podcast as a whole."""

    title: str
    link: str
    description: str
    author: str
    image_url: str
    categories: tuple[str, ...]  # as itunes_categories takes them
    language: str
    explicit: bool
    feed_url: str
    owner_name: str = ""
    owner_email: str = ""
    locked: bool = False


@dataclass(frozen=True, slots=True)
class Item:
    """One episode in the feed."""

    guid: str
    title: str
    description: str
    link: str
    published: datetime
    audio_url: str
    audio_bytes: int
    duration_ms: int
    transcript_url: str


def _duration(ms: int) -> str:
    s = round(ms / 1000)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def podcast_guid(feed_url: str) -> str:
    """Podcasting 2.0 channel GUID: UUIDv5 of the feed URL without scheme and trailing slash."""
    namespace = uuid.UUID("ead4c236-bf58-58c6-a2c6-a6b28d128cb6")
    bare = re.sub(r"^[a-z]+://", "", feed_url).rstrip("/")
    return str(uuid.uuid5(namespace, bare))


def render_feed(channel: Channel, items: Sequence[Item], *, timezone: str) -> bytes:
    """RSS 2.0 with the iTunes and Podcasting 2.0 namespaces; every string escaped."""
    ET.register_namespace("itunes", ITUNES)
    ET.register_namespace("podcast", PODCAST)
    ET.register_namespace("atom", ATOM)
    tz = ZoneInfo(timezone)
    rss = ET.Element("rss", {"version": "2.0"})
    ch = ET.SubElement(rss, "channel")

    def text(parent: ET.Element, tag: str, value: str, **attrs: str) -> ET.Element:
        # Escaping handles <, & and quotes; characters XML 1.0 cannot hold at all go.
        node = ET.SubElement(parent, tag, {k: clean_text(v) for k, v in attrs.items()})
        node.text = clean_text(value)
        return node

    text(ch, "title", channel.title)
    text(ch, "link", channel.link)
    text(ch, "description", channel.description)
    text(ch, "language", channel.language)
    ET.SubElement(
        ch,
        f"{{{ATOM}}}link",
        {"href": channel.feed_url, "rel": "self", "type": "application/rss+xml"},
    )
    text(ch, f"{{{ITUNES}}}author", channel.author)
    text(ch, f"{{{ITUNES}}}explicit", "true" if channel.explicit else "false")
    if channel.image_url:
        ET.SubElement(ch, f"{{{ITUNES}}}image", {"href": channel.image_url})
        image = ET.SubElement(ch, "image")
        text(image, "url", channel.image_url)
        text(image, "title", channel.title)
        text(image, "link", channel.link)
    for category, subcategories in itunes_categories(channel.categories):
        top = ET.SubElement(ch, f"{{{ITUNES}}}category", {"text": category})
        for sub in subcategories:
            ET.SubElement(top, f"{{{ITUNES}}}category", {"text": sub})
    text(ch, f"{{{ITUNES}}}type", "episodic")
    if channel.owner_email:
        owner = ET.SubElement(ch, f"{{{ITUNES}}}owner")
        text(owner, f"{{{ITUNES}}}name", channel.owner_name or channel.author)
        text(owner, f"{{{ITUNES}}}email", channel.owner_email)
        locked = "yes" if channel.locked else "no"
        text(ch, f"{{{PODCAST}}}locked", locked, owner=channel.owner_email)
    text(ch, f"{{{PODCAST}}}guid", podcast_guid(channel.feed_url))
    if items:
        text(ch, "lastBuildDate", format_datetime(max(i.published for i in items).astimezone(tz)))
    for item in items:
        node = ET.SubElement(ch, "item")
        text(node, "title", item.title)
        text(node, "description", item.description)
        text(node, "link", item.link)
        text(node, "guid", item.guid, isPermaLink="false")
        text(node, "pubDate", format_datetime(item.published.astimezone(tz)))
        ET.SubElement(
            node,
            "enclosure",
            {"url": item.audio_url, "length": str(item.audio_bytes), "type": "audio/mpeg"},
        )
        text(node, f"{{{ITUNES}}}duration", _duration(item.duration_ms))
        text(node, f"{{{ITUNES}}}explicit", "true" if channel.explicit else "false")
        ET.SubElement(
            node,
            f"{{{PODCAST}}}transcript",
            {"url": item.transcript_url, "type": "text/vtt", "language": "zh-cn"},
        )
    body: bytes = ET.tostring(rss, encoding="utf-8", xml_declaration=True)
    return body


def feed_etag(body: bytes) -> str:
    """A strong validator for a rendered feed."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
