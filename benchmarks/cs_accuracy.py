"""Customer-service accuracy on the held-out split of listener/nlp/datasets/cs_mentions.

    .venv/bin/python benchmarks/cs_accuracy.py [--model e5-heads] [--model baseline] [--precision P]

The split is fixed by a hash of each example's id (`listener.nlp.training`), and the heads are
never trained on it. Prints, per classifier: sentiment, intent and urgency accuracy, urgency recall
and precision per level (R/P), and how many critical/high items came out low; then the same for
each probe set in listener/nlp/datasets/cs_probes (hard cases such as sarcasm, never trained
on).
"""

from __future__ import annotations

import argparse
from collections import Counter

from config.schema import ModelConfig
from listener.nlp import Classifier, TextInput, load_classifier
from listener.nlp.training import URGENCY_LABELS, load_cs_mentions, load_cs_probes


def evaluate(classifier: Classifier, records: list[dict]) -> dict:
    inputs = [TextInput.from_record(r, r["lang"]) for r in records]
    predictions = classifier.classify(inputs)
    gold_urgency = [r["urgency"] for r in records]
    got_urgency = [p.urgency.label for p in predictions]
    recall, precision = {}, {}
    for level in URGENCY_LABELS:
        hits = sum(1 for g, p in zip(gold_urgency, got_urgency, strict=True) if g == level == p)
        recall[level] = hits / max(gold_urgency.count(level), 1)
        precision[level] = hits / max(got_urgency.count(level), 1)  # 1 - the false alarms' share
    serious_as_low = sum(
        1
        for g, p in zip(gold_urgency, got_urgency, strict=True)
        if g in ("critical", "high") and p == "low"
    )
    return {
        "model": f"{classifier.name} {classifier.version}",
        "n": len(records),
        "sentiment_accuracy": sum(
            p.sentiment.value == r["sentiment"] for p, r in zip(predictions, records, strict=True)
        )
        / len(records),
        "intent_accuracy": sum(
            p.intent.value == r["intent"] for p, r in zip(predictions, records, strict=True)
        )
        / len(records),
        "urgency_accuracy": sum(g == p for g, p in zip(gold_urgency, got_urgency, strict=True))
        / len(records),
        "urgency_recall": recall,
        "urgency_precision": precision,
        "critical_high_labelled_low": serious_as_low,
        "confusion": Counter(zip(gold_urgency, got_urgency, strict=True)),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", action="append", default=[])
    parser.add_argument("--precision", default="auto", help="e5-heads: auto, bf16, int8, fp32")
    args = parser.parse_args()
    sets = {"held-out split": load_cs_mentions()["test"]} | {
        f"probe: {name}": records for name, records in load_cs_probes().items()
    }
    classifiers = [
        load_classifier(ModelConfig(name=m, precision=args.precision))
        for m in args.model or ["e5-heads", "baseline"]
    ]
    for title, records in sets.items():
        languages = Counter(r["lang"] for r in records)
        print(f"{title}: {len(records)} mentions, {dict(sorted(languages.items()))}")
        header = (
            f"{'model':66} {'sent.acc':>8} {'intent':>7} {'urg.acc':>7} "
            + " ".join(f"{'R/P(' + level + ')':>15}" for level in URGENCY_LABELS)
            + f" {'crit/high→low':>13}"
        )
        print(header)
        for classifier in classifiers:
            r = evaluate(classifier, records)
            recalls = " ".join(
                f"{r['urgency_recall'][level]:9.3f}/{r['urgency_precision'][level]:.3f}"
                for level in URGENCY_LABELS
            )
            print(
                f"{r['model']:66} {r['sentiment_accuracy']:8.3f} {r['intent_accuracy']:7.3f} "
                f"{r['urgency_accuracy']:7.3f} {recalls} {r['critical_high_labelled_low']:13d}"
            )
        print()


if __name__ == "__main__":
    main()
