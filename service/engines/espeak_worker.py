"""One espeak-ng worker process: reads requests on stdin, writes PCM on stdout.

Run as `python -m service.engines.espeak_worker [VOICE]` (VOICE is loaded at start). It
imports only ctypes and the `espeakng-loader` wheel, so it starts in a few tens of
milliseconds. Protocol, one request at a time: a JSON line {"text", "voice", "wpm",
"pitch"} in; a JSON line {"ok": true, "rate": int, "bytes": int} followed by that many
bytes of 16-bit mono PCM out, or {"ok": false, "error": str}.
"""

from __future__ import annotations

import ctypes
import sys
import threading
from typing import Any, BinaryIO

_AUDIO_OUTPUT_RETRIEVAL = 1
_CHARS_UTF8 = 1
_PARAM_RATE = 1
_PARAM_PITCH = 3

_EVENT_END_OF_LIST = 0
_EVENT_WORD = 1


class _Event(ctypes.Structure):
    """espeak_EVENT (speak_lib.h)."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),  # 1-based, in characters of the text
        ("length", ctypes.c_int),  # characters
        ("audio_position", ctypes.c_int),  # ms into the audio
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_char * 8),
    ]


_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


class Espeak:
    """libespeak-ng loaded in this process. It has global state: use `Espeak.get()`.

    A second initialization in one process leaves the first instance hung, so there is one
    instance per process, and one synthesis at a time (its lock).
    """

    _instance: Espeak | None = None
    _create_lock = threading.Lock()

    @classmethod
    def get(cls) -> Espeak:
        """The process's instance, created on first use."""
        with cls._create_lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def __init__(self) -> None:
        self._lock = threading.Lock()
        import espeakng_loader

        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        lib.espeak_TextToPhonemes.argtypes = [
            ctypes.POINTER(ctypes.c_char_p),
            ctypes.c_int,
            ctypes.c_int,
        ]
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_RETRIEVAL, 0, espeakng_loader.get_data_path().encode(), 0
        )
        if rate <= 0:
            raise RuntimeError(f"espeak_Initialize failed ({rate})")
        self._lib = lib
        self.sample_rate: int = rate
        self._buffer = bytearray()
        self._words: list[tuple[int, int, int]] = []  # (text position, length, ms)
        self._voice = ""

        def on_audio(
            wav: ctypes._Pointer[ctypes.c_short], n: int, events: ctypes._Pointer[_Event]
        ) -> int:
            if wav and n > 0:
                self._buffer.extend(ctypes.string_at(wav, n * 2))
            k = 0
            while events and events[k].type != _EVENT_END_OF_LIST:
                event = events[k]
                if event.type == _EVENT_WORD:
                    self._words.append(
                        (event.text_position - 1, event.length, event.audio_position)
                    )
                k += 1
            return 0

        self._callback = _SynthCallback(on_audio)  # kept referenced: the C side holds it
        lib.espeak_SetSynthCallback(self._callback)

    def synth(self, text: str, *, voice: str, wpm: int, pitch: int) -> bytes:
        """Speak `text`; 16-bit mono PCM at `sample_rate`.

        Raises:
            ValueError: espeak-ng has no such voice.
            RuntimeError: synthesis failed.
        """
        with self._lock:
            return self._synth(text, voice=voice, wpm=wpm, pitch=pitch)

    def _set_voice(self, voice: str) -> None:
        if voice != self._voice:
            if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise ValueError(f"espeak-ng has no voice {voice!r}")
            self._voice = voice

    def _synth(self, text: str, *, voice: str, wpm: int, pitch: int) -> bytes:
        self._set_voice(voice)
        self._lib.espeak_SetParameter(_PARAM_RATE, wpm, 0)
        self._lib.espeak_SetParameter(_PARAM_PITCH, pitch, 0)
        self._buffer.clear()
        self._words.clear()
        data = text.encode("utf-8") + b"\0"
        rc = self._lib.espeak_Synth(data, len(data), 0, 0, 0, _CHARS_UTF8, None, None)
        if rc != 0:
            raise RuntimeError(f"espeak_Synth failed ({rc})")
        self._lib.espeak_Synchronize()
        return bytes(self._buffer)

    def words(self, text: str) -> list[list[int]]:
        """[offset, length, start_ms, end_ms] of each word espeak-ng spoke in the last
        synthesis of `text` (a word ends where the next begins, the last with the audio)."""
        total = len(self._buffer) * 1000 // 2 // self.sample_rate
        marks = sorted(w for w in self._words if 0 <= w[0] < len(text) and w[1] > 0)
        out = []
        for n, (offset, length, start) in enumerate(marks):
            end = marks[n + 1][2] if n + 1 < len(marks) else total
            out.append([offset, min(length, len(text) - offset), start, max(start, end)])
        return out

    def phonemes(self, text: str, *, voice: str) -> str:
        """espeak-ng's phonemes for `text` (its own mnemonics): how it will read it."""
        with self._lock:
            self._set_voice(voice)
            return self._phonemes(text)

    def _phonemes(self, text: str) -> str:
        source = ctypes.c_char_p(text.encode("utf-8"))
        out: list[str] = []
        while source.value:
            chunk = self._lib.espeak_TextToPhonemes(ctypes.pointer(source), _CHARS_UTF8, 0)
            if chunk:
                out.append(chunk.decode("utf-8", "replace"))
        return " ".join(out)


def serve(stdin: BinaryIO, stdout: BinaryIO, *, preload: str = "") -> None:
    """Answer requests until stdin closes; `preload` loads that voice before the greeting."""
    from service.engines.worker_loop import answer

    engine = Espeak.get()
    if preload:
        engine.synth(" ", voice=preload, wpm=175, pitch=50)

    def handle(req: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
        text = str(req["text"])
        pcm = engine.synth(
            text, voice=str(req["voice"]), wpm=int(req["wpm"]), pitch=int(req["pitch"])
        )
        return pcm, {"words": engine.words(text)}

    answer(stdin, stdout, engine.sample_rate, handle)


if __name__ == "__main__":
    from service.runtime.lifeline import die_with_parent, name_process, yield_cpu

    if len(sys.argv) > 2:
        die_with_parent(int(sys.argv[2]))
        name_process("langdu-espeak")
        yield_cpu()
    serve(sys.stdin.buffer, sys.stdout.buffer, preload=sys.argv[1] if len(sys.argv) > 1 else "")
