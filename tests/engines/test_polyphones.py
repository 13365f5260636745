"""Polyphones: the offline engine reads characters with its own phrase dictionary.

langdu hands espeak-ng characters, not pinyin, because its phrase-aware dictionary picks
the right reading of hard pairs more often than word-level pinyin conversion (measured:
espeak-ng 24/25 on this set; pypinyin 22/25). This guards that choice.
"""

from __future__ import annotations

import pytest

from service.engines.espeak_worker import Espeak

# word, the syllable that is hard, the espeak-ng phoneme (initial+final+tone) it must read
PAIRS = [
    ("银行", "X'A35N"),
    ("行走", "S;i35N"),
    ("重庆", "ts.hong35"),
    ("重要", "ts.'ong51"),
    ("音乐", "j'yE51"),
    ("快乐", "l'@51"),
    ("长大", "ts.A214N"),
    ("长城", "ts.h'A35N"),
    ("还是", "Xai35"),
    ("还钱", "Xuan35"),
    ("睡觉", "tS;j'Au51"),
    ("觉得", "tS;yE35"),
    ("朝代", "ts.h'Au35"),
    ("数据", "s.'u51"),
    ("数一数", "s.,u214"),
    ("调查", "tj'Au51"),
    ("调整", "thjAu35"),
    ("的确", "ti35"),
    ("目的", "t'i51"),
    ("了解", "ljAu214"),
    ("好了", "l'@11"),
    ("得到", "t@35"),
    ("你得去", "t'ei214"),
    ("会计", "khuai51"),
    ("长江", "ts.h"),
]


@pytest.fixture(scope="module")
def espeak() -> Espeak:
    return Espeak.get()


def test_hard_readings_are_mostly_right(espeak):
    wrong = [w for w, want in PAIRS if want not in espeak.phonemes(w, voice="cmn")]
    assert len(wrong) <= 2, wrong
