"""The severity of an OSV advisory, or of one of its ``affected`` entries: the base scores
of its CVSS vectors (v2, v3, v4, or a plain number), of which the highest counts."""

from __future__ import annotations

import math

from cvss import CVSS2, CVSS3, CVSS4
from cvss.exceptions import CVSSError

from sitegen.config.yaml_nodes import shown_reason, shown_value
from sitegen.filters.json_nodes import JsonFileError, JsonNode


def severity_scores(
    node: JsonNode | None, unscored_ok: bool
) -> tuple[tuple[str, ...], float | None, list[str]]:
    """The vectors and the highest base score of a ``severity`` list (none without one), and
    (``unscored_ok``) why entries could not be scored: then the score is None, since the
    entry that cannot be read may be the highest. An entry without a readable ``type`` or
    ``score`` is one of those: what it would score is as unknown as for a vector that does
    not parse."""
    vectors, scores, unscored = [], [], []
    for item in node.items() if node else ():
        try:
            kind = item.require("type").string()
            score_node = item.require("score")
            text = score_node.string()
        except JsonFileError as exc:
            if not unscored_ok:
                raise
            unscored.append(f"{exc.where}: {exc.message}")
            continue
        score = cvss_score(kind, text)
        if score is None:
            continue  # a qualitative scale such as Ubuntu's: no number to compare
        if isinstance(score, str):
            if not unscored_ok:
                raise score_node.error(score)
            unscored.append(f"{score_node.path}: {score}")
            continue
        vectors.append(text)
        scores.append(score)
    return tuple(vectors), None if unscored else max(scores, default=None), unscored


def cvss_score(kind: str, text: str) -> float | str | None:
    """The base score of a CVSS vector (or a plain number); an error message when the text is
    not valid; None for severity types that carry no CVSS score."""
    parser = {"CVSS_V2": CVSS2, "CVSS_V3": CVSS3, "CVSS_V4": CVSS4}.get(kind)
    if parser is None:
        return None
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(number) or not 0.0 <= number <= 10.0:
            return f"score {shown_value(text)} is not between 0 and 10"
        return number
    try:
        parsed = parser(text)
    except (CVSSError, ValueError, KeyError, IndexError) as exc:
        return f"invalid {kind} vector {shown_value(text)}: {shown_reason(str(exc))}"
    return float(parsed.base_score if isinstance(parsed, CVSS4) else parsed.scores()[0])
