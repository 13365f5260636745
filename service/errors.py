"""Every error langdu raises on purpose; no HTTP or CLI knowledge lives here."""

from __future__ import annotations


class LangduError(Exception):
    """Base class: a problem a caller can be told about in one line."""


class InputError(LangduError):
    """The article given to us cannot be read aloud (empty, undecodable, nothing speakable)."""


class EmptyArticleError(InputError):
    """The input holds no text at all, or only whitespace."""


class NothingToSpeakError(InputError):
    """The input has text, but no character an engine could pronounce."""


class DecodeError(InputError):
    """The input bytes are not valid text in the expected encoding."""


class UnknownVoiceError(LangduError):
    """The requested voice is not in the catalog."""


class VoiceCatalogError(LangduError):
    """A voice preset file in voices/ is malformed."""


class EngineUnavailableError(VoiceCatalogError):
    """An optional engine is not installed here (its model or its packages); its voices
    are left out of the catalog."""


class ConfigError(LangduError):
    """A setting or a file it names is unusable (found at start-up)."""


class OptionError(LangduError):
    """An option value (rate, pitch, ...) is malformed or out of range."""


class EngineError(LangduError):
    """A speech engine failed to produce audio for a chunk."""


class AudioError(LangduError):
    """Stitching or encoding audio failed."""


class NotFoundError(LangduError):
    """No article (or file) with that id."""


class QueueFullError(LangduError):
    """Too many articles are waiting for synthesis; the caller should retry later."""


class ClientBusyError(LangduError):
    """This client has its share of the synthesis queue in hand; it should retry later."""


class OverBudgetError(LangduError):
    """This client has spent its budget of audio for now; it may retry in `retry_after`
    seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class WorkerLostError(LangduError):
    """A worker process died while doing this request's work (it has been replaced); the
    caller should retry."""


class StorageFullError(LangduError):
    """The audio storage has no room left, even after evicting cached audio."""


class BackendUnavailableError(LangduError):
    """A shared backend (the database, the object store, the job queue) cannot be reached
    now; the caller should retry."""


class PayloadTooLargeError(InputError):
    """The request body or article is larger than the configured limit."""


class UnauthorizedError(LangduError):
    """A write endpoint was called without a valid API key; `challenge` is the
    WWW-Authenticate value to answer with."""

    def __init__(self, message: str, challenge: str = 'Bearer realm="langdu"') -> None:
        super().__init__(message)
        self.challenge = challenge


class FetchRefusedError(InputError):
    """A URL langdu will not fetch, or what it answered is not a page to read: a refused
    address (loopback, private, link-local ...), too many redirects, too large, not HTML."""


class FetchFailedError(LangduError):
    """The site named by a URL failed: no answer in time, refused connection, an error
    status."""
