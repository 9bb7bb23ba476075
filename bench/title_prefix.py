"""Is the "title. " prefix on every embedded sentence worth its word pieces? (issue #12)

Every sentence is embedded as ``f"{title}. {sentence}"`` (``index.vectorize.embedding_text``).
This script runs quotebot's own commands with the sentences embedded either way, so that
only the vectors differ; BM25's chunk text keeps the title in both (``index.builder`` binds
``embedding_text`` at import, before the switch below, and the switch replaces only the
name ``index.vectorize`` looks up when it embeds).

    python bench/title_prefix.py pieces ../shared/data/news/bbc.jsonl
        word pieces a build embeds, with and without the prefix (the ONNX encoder's tokenizer,
        truncation at 256 and the two special tokens included)
    python bench/title_prefix.py bare quotebot eval squad ... --cache-dir DIR --records BARE.jsonl
    python bench/title_prefix.py compare PREFIX.jsonl BARE.jsonl
        quotebot's figures of two `eval squad --per-article --records` runs side by side: open
        corpus, each article alone (per article), other articles' questions, questions won/lost
    python bench/title_prefix.py bare quotebot index build PATH --index-dir DIR
    python bench/title_prefix.py bare fit_ranker ARGS...
        the command as it is, but with sentences embedded WITHOUT the title ("prefix" in
        place of "bare" runs it unchanged, through the same script)

An eval cache keyed by the embedding recipe gets a different key for "bare", so a cache
directory never mixes the two; still, use a separate --cache-dir per variant.
A throwaway experiment: nothing in quotebot reads it, and it is not a setting.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BARE_RECIPE = "sentences embedded alone, as 'text' (no title); chunk = normalised mean of its sentences"


def use_bare_vectors() -> None:
    """Sentences embedded without their article's title; BM25 text unchanged."""
    # index.builder binds ``embedding_text`` by name at import (for BM25's chunk text): import
    # it first so it keeps the original. Modules imported later that bind EMBEDDING_RECIPE
    # (the eval and regress caches' keys) get the bare recipe, so their keys differ.
    import quotebot.index.builder  # noqa: F401
    import quotebot.index.vectorize as vectorize

    def bare_text(article, span) -> str:
        return span.slice(article.text)

    vectorize.embedding_text = bare_text  # what stream_article_vectors embeds
    vectorize.EMBEDDING_RECIPE = BARE_RECIPE
    for name in ("quotebot.retrieval.evaluation.cache", "quotebot.bot.regress.corpus"):
        assert name not in sys.modules, f"{name} imported before the switch"


def count_pieces(path: Path) -> int:
    """Word pieces of a build of ``path``'s articles, with and without the prefix."""
    from tokenizers import Tokenizer

    from quotebot.bot.settings import load_settings
    from quotebot.index.chunking import chunk_article
    from quotebot.index.embedding import resolve_model_path
    from quotebot.index.loaders import load_articles
    from quotebot.index.onnx_encoder import MAX_TOKENS, TOKENIZER_FILE
    from quotebot.index.vectorize import embedding_text

    settings = load_settings(ROOT / "config.yaml").index
    tokenizer = Tokenizer.from_file(str(resolve_model_path(settings.model) / TOKENIZER_FILE))
    tokenizer.enable_truncation(MAX_TOKENS)
    tokenizer.no_padding()  # tokenizer.json pads to 128: count each text's own pieces
    prefixed: list[str] = []
    bare: list[str] = []
    articles = load_articles([path]).articles
    for article in articles:
        spans, _ = chunk_article(
            article.id, article.text, chunk_tokens=settings.chunk_tokens, chunk_overlap=settings.chunk_overlap
        )
        prefixed.extend(embedding_text(article, span) for span in spans)
        bare.extend(span.slice(article.text) for span in spans)
    counts = {}
    for name, texts in (("prefixed", prefixed), ("bare", bare)):
        counts[name] = sum(len(e.ids) for e in tokenizer.encode_batch(texts))  # [CLS] and [SEP] included
    saved = counts["prefixed"] - counts["bare"]
    print(f"{path}: {len(articles)} articles, {len(prefixed)} sentences embedded")
    for name in ("prefixed", "bare"):
        per_sentence = counts[name] / len(prefixed)
        print(f"  {name:8s} {counts[name]:>10,d} word pieces ({per_sentence:.1f} per sentence, with [CLS]/[SEP])")
    print(f"  saved    {saved:>10,d} word pieces ({saved / counts['prefixed']:.1%} of the prefixed build)")
    return 0


def _article(paragraph: str | None) -> str | None:
    """SQuAD article of a paragraph id "Title/7"."""
    return paragraph.rsplit("/", 1)[0] if paragraph else None


def _figures(records: list[dict]) -> dict[str, float]:
    runs = [r["systems"]["quotebot"] for r in records]
    n = len(runs)
    answered = [r for r, q in zip(records, runs) if q["answered"]]
    return {
        "questions": n,
        "quote@1": sum(q["quote_rank"] == 1 for q in runs) / n,
        "quote@3": sum((q["quote_rank"] or 99) <= 3 for q in runs) / n,
        "passage@1": sum(q["passage_rank"] == 1 for q in runs) / n,
        "passage@5": sum((q["passage_rank"] or 99) <= 5 for q in runs) / n,
        "answered": len(answered) / n,
        # answered with a first quote from another SQuAD article than the question's
        "other-article 1st quote": sum(
            _article(r["systems"]["quotebot"]["first_quote_article"]) != _article(r["paragraph"]) for r in answered
        ) / n,
    }


def compare(prefixed_file: Path, bare_file: Path) -> int:
    """quotebot's figures of the two record files, side by side."""
    import json

    runs = {
        name: [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        for name, path in (("prefix", prefixed_file), ("bare", bare_file))
    }
    for mode in ("open", "per-article"):
        sets = {name: [r for r in records if r["mode"] == mode] for name, records in runs.items()}
        figures = {name: _figures(records) for name, records in sets.items()}
        print(f"\n{mode} ({figures['prefix']['questions']} questions): quotebot")
        print(f"{'figure':26s} {'prefix':>7s} {'bare':>7s} {'bare-prefix':>11s}")
        for key in list(figures["prefix"])[1:]:
            a, b = figures["prefix"][key], figures["bare"][key]
            print(f"{key:26s} {a:7.3f} {b:7.3f} {b - a:+11.3f}")
        first = {name: {r["id"]: r["systems"]["quotebot"]["quote_rank"] == 1 for r in records}
                 for name, records in sets.items()}
        won = sum(first["bare"][i] and not first["prefix"][i] for i in first["prefix"])
        lost = sum(first["prefix"][i] and not first["bare"][i] for i in first["prefix"])
        print(f"quote@1 per question: bare right where prefix wrong {won}, prefix right where bare wrong {lost}")
        if mode == "per-article":
            header = f"{'n':>4s} {'q@1 prefix':>10s} {'q@1 bare':>9s} {'ans prefix':>10s} {'ans bare':>9s}"
            print(f"\n{'article':34s} {header}")
            corpora = sorted({r["corpus"] for r in sets["prefix"]}, key=int)
            for corpus in corpora:
                part = {name: [r for r in records if r["corpus"] == corpus] for name, records in sets.items()}
                fp, fb = _figures(part["prefix"]), _figures(part["bare"])
                title = _article(part["prefix"][0]["paragraph"])
                print(
                    f"{corpus:>2s} {title[:31]:31s} {len(part['prefix']):4d} {fp['quote@1']:10.3f} {fb['quote@1']:9.3f}"
                    f" {fp['answered']:10.3f} {fb['answered']:9.3f}"
                )
    foreign = {name: [r for r in records if r["mode"] == "foreign"] for name, records in runs.items()}
    print("\nother articles' questions against each article alone: wrong answers (answered at all)")
    for name, records in foreign.items():
        wrong = sum(r["systems"]["quotebot"]["answered"] for r in records)
        print(f"  {name:7s} {wrong:4d} of {len(records)} ({wrong / len(records):.3f})")
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "compare":
        return compare(Path(argv[1]), Path(argv[2]))
    if len(argv) >= 2 and argv[0] == "pieces":
        return count_pieces(Path(argv[1]))
    if len(argv) < 2 or argv[0] not in ("bare", "prefix"):
        print(__doc__, file=sys.stderr)
        return 2
    if argv[0] == "bare":
        use_bare_vectors()
    command, rest = argv[1], argv[2:]
    if command == "quotebot":
        from quotebot.bot.cli import main as quotebot_main

        return quotebot_main(rest)
    if command == "fit_ranker":
        sys.argv = [str(ROOT / "bench" / "fit_ranker.py"), *rest]
        runpy.run_path(sys.argv[0], run_name="__main__")
        return 0
    print(f"unknown command {command!r}: expected quotebot or fit_ranker", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
