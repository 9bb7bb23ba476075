"""Static int8 quantisation of the document encoder against the float32 export.

    .venv/bin/python bench/int8_static.py ../shared/data/news/bbc.jsonl [--json OUT]

Dynamic int8 (what questions use) scales each batch's activations by that batch's own
range, so a document's vector would depend on its batch-mates. Static int8 fixes every
activation scale once, from a calibration set, so a text gets the same vector in any batch.
This measures, for each static variant:

- agreement with the float32 export (``model.onnx``, what `index build` uses) on 1,000 real
  "title. sentence" texts of the corpus (mean, 1st percentile and minimum cosine); the
  calibration texts are other articles' sentences, never the measured ones;
- batch independence: the same texts embedded alone and in length-sorted batches of 64;
- throughput on the same 1,000 texts, float32 and int8, both on every core.

The target for adopting it: cosine >= 0.99 on the 1,000 sentences (and `quotebot eval`
within 0.5 points). Data paths are arguments: nothing is copied into the project.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MEASURED = 1000
CALIBRATION = 256


def corpus_sentences(path: Path) -> tuple[list[str], list[str]]:
    """"title. sentence" texts: the measured set (one sentence in every few, from the first
    articles) and a disjoint calibration set (from the last articles)."""
    from quotebot.index.chunking import chunk_article
    from quotebot.index.loaders import load_articles
    from quotebot.index.vectorize import embedding_text

    articles = load_articles([path]).articles

    def texts_of(selection) -> list[str]:
        out = []
        for article in selection:
            spans, _ = chunk_article(article.id, article.text, chunk_tokens=120, chunk_overlap=1)
            out.extend(embedding_text(article, span) for span in spans[::4])
        return out

    measured = texts_of(articles[:400])[:MEASURED]
    calibration = texts_of(articles[-200:])
    rng = np.random.default_rng(0)
    calibration = [calibration[i] for i in rng.choice(len(calibration), CALIBRATION, replace=False)]
    return measured, calibration


def quantise(float_model: Path, tokenizer_file: Path, calibration: list[str], out: Path, variant: dict) -> None:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    tokenizer.enable_truncation(256)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter(calibration)

        def get_next(self):
            text = next(self.items, None)
            if text is None:
                return None
            e = tokenizer.encode(text)
            ids = np.array([e.ids], dtype=np.int64)
            return {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}

    prepared = out.with_suffix(".pre.onnx")
    quant_pre_process(str(float_model), str(prepared), skip_symbolic_shape=True)
    from onnxruntime.quantization import CalibrationMethod

    quantize_static(
        str(prepared),
        str(out),
        Reader(),
        quant_format=QuantFormat.QDQ if variant.get("qdq", True) else QuantFormat.QOperator,
        op_types_to_quantize=variant.get("ops", ["MatMul"]),
        per_channel=variant.get("per_channel", True),
        reduce_range=variant.get("reduce_range", False),
        activation_type=QuantType.QUInt8 if variant.get("uint8_act", True) else QuantType.QInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=getattr(CalibrationMethod, variant.get("method", "MinMax")),
        extra_options=variant.get("extra", {}),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("articles", type=Path)
    parser.add_argument("--export-dir", type=Path, default=None, help="an existing ONNX export folder (made if missing)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from quotebot.index.embedding import PACKAGED_MODEL
    from quotebot.index.onnx_encoder import DOCUMENT_ONNX_FILE, TOKENIZER_FILE, OnnxDocumentEncoder, export_onnx_encoders

    work = Path(tempfile.mkdtemp(prefix="quotebot-int8-"))
    export = export_onnx_encoders(PACKAGED_MODEL, args.export_dir or work / "export")
    measured, calibration = corpus_sentences(args.articles)
    reference = OnnxDocumentEncoder(export, PACKAGED_MODEL)
    reference.warm_up()
    reference.embed(measured[:64])
    started = time.perf_counter()
    truth = reference.embed(measured)
    float_rate = len(measured) / (time.perf_counter() - started)
    results = {"measured_texts": len(measured), "calibration_texts": len(calibration), "float32_texts_per_s": float_rate,
               "load_average": os.getloadavg()[0], "variants": []}
    print(f"float32: {float_rate:.1f} texts/s (load {os.getloadavg()[0]:.1f})", flush=True)
    variants = [
        {"name": "QDQ MatMul per-channel MinMax"},
        {"name": "QDQ MatMul per-channel Percentile 99.999", "method": "Percentile",
         "extra": {"CalibPercentile": 99.999}},
        {"name": "QDQ MatMul+Gemm per-channel MinMax, int8 activations symmetric", "ops": ["MatMul", "Gemm"], "uint8_act": False,
         "extra": {"ActivationSymmetric": True}},
    ]
    for variant in variants:
        name = f"int8-{len(results['variants'])}.onnx"
        started = time.perf_counter()
        quantise(export / DOCUMENT_ONNX_FILE, export / TOKENIZER_FILE, calibration, export / name, variant)
        calibrate_s = time.perf_counter() - started
        encoder = OnnxDocumentEncoder(export, PACKAGED_MODEL, onnx_file=name)
        encoder.warm_up()
        encoder.embed(measured[:64])
        started = time.perf_counter()
        vectors = encoder.embed(measured)
        rate = len(measured) / (time.perf_counter() - started)
        cosine = (vectors * truth).sum(axis=1)
        alone = np.concatenate([encoder.embed([text]) for text in measured[:100]])
        batch_cosine = (alone * vectors[:100]).sum(axis=1)
        row = {
            "variant": variant["name"],
            "cosine_mean": float(cosine.mean()),
            "cosine_p1": float(np.percentile(cosine, 1)),
            "cosine_min": float(cosine.min()),
            "alone_vs_batched_min": float(batch_cosine.min()),
            "texts_per_s": rate,
            "speed_vs_float32": rate / float_rate,
            "calibrate_s": calibrate_s,
            "size_mb": (export / name).stat().st_size / 1e6,
            "load_average": os.getloadavg()[0],
        }
        results["variants"].append(row)
        print(json.dumps(row), flush=True)
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
