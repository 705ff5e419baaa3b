"""WeMath (testmini): multiple choice; multi-step problems are also asked one step at a time, and the loose and
strict scores credit a model by how its step answers and its whole-problem answer agree.

Schema (We-Math/We-Math): ID (shared by a problem's steps), split, knowledge concept, question, option
("A. ...; B. ...; ..."), answer (a letter), image_path (the image), key ("2steps_1", "2steps_2", "2steps_multi",
"3steps_1" .. "3steps_multi"; other keys for one-step problems), question number, knowledge concept description.

Scores (WeMath's four-way diagnosis, as lmms-eval computes it), over the n multi-step problems: IK (a step wrong and
the whole wrong), IG (every step right, the whole wrong), RM (the whole right but steps wrong: strict: any step
wrong; loose: every step wrong); score = (n - 0.5 IG - RM - IK) / n.

The official rule (We-Math ``evaluation/accuracy.py`` and ``four_dimensional_metrics.py``): the answer is the
letter after the response's last "Answer" ("<Answer>: <<C>>"), compared with the gold letter. The gold is always
read as a letter, also where the options are themselves letters ("A. F; B. D; C. B; D. I"); the option string is
split at its marks A., B., ... whatever the separators ("A. 45° B. 60° ;C. 120°"), and an answer given as the
option's text counts as that option.
"""

import re
from collections import defaultdict

from evals import task_utils as common
from evals.registry import get
from evals.scoring import Target, require
from mmpr.answers import Rules, options_in_text

FIELDS = get("wemath").fields
_KEY = re.compile(r"^([23])steps_(\d|multi)$")
RULES = Rules(letter_gold=True)


def choices(doc) -> list[str]:
    """The option texts of "A. 3 cm; B. 4 cm; ...", empty when the string holds no options A, B, ... in order."""
    return options_in_text(str(doc["option"])) or []


def _options(doc) -> tuple[list[str], bool]:
    """The options judged, and whether they are the option string's own (else letters A-E: a string that holds no
    options A, B, ... in order, or fewer than the gold letter needs)."""
    options = choices(doc)
    answer = str(doc["answer"]).strip()
    gold = ord(answer[0].upper()) - ord("A") + 1 if len(answer) == 1 and answer.isalpha() else 0
    if len(options) < max(gold, 2) or not all(options):
        return common.letters(max(5, gold)), False
    return options, True


def target(doc) -> Target:
    require(doc, FIELDS, "WeMath")
    return Target(str(doc["answer"]).strip(), "multiple_choice", _options(doc)[0], rules=RULES)


def doc_to_visual(doc):
    return [doc["image_path"].convert("RGB")]


def doc_to_text(doc, lmms_eval_specific_kwargs=None):
    options, split = _options(doc)
    # the options keep WeMath's own "A. ...; B. ..." text when they cannot be split
    question = doc["question"] if split else f"{doc['question']}\n{doc['option']}"
    return common.prompt(question, common.style_of(lmms_eval_specific_kwargs), options if split else None)


def categories(doc) -> dict[str, list[str]]:
    out = {"knowledge_concept": [str(doc["knowledge concept"])]}
    m = _KEY.match(str(doc["key"]))
    out["steps"] = [f"{m[1]}steps" if m else "1step"]
    return out


def reference(doc) -> dict:
    return {"ID": str(doc["ID"]), "key": str(doc["key"])}


def summarize(records: list[dict]) -> dict[str, float]:
    """Loose and strict scores over the multi-step problems whose step and whole answers were all evaluated."""
    problems: dict[tuple[str, str], dict[str, bool]] = defaultdict(dict)
    for r in records:
        m = _KEY.match(r["reference"]["key"])
        if m:
            problems[(r["reference"]["ID"], m[1])][m[2]] = bool(r["correct"])
    counts = {"IK": 0, "IG": 0, "RM_loose": 0, "RM_strict": 0, "CM_loose": 0, "CM_strict": 0}
    n = 0
    for (_, steps), parts in problems.items():
        step_keys = [str(i) for i in range(1, int(steps) + 1)]
        if "multi" not in parts or any(k not in parts for k in step_keys):
            continue  # a problem cut short by --limit is left out of the scores
        n += 1
        sub, whole = [parts[k] for k in step_keys], parts["multi"]
        if not whole:
            counts["IG" if all(sub) else "IK"] += 1
        else:
            counts["CM_strict" if all(sub) else "RM_strict"] += 1
            counts["CM_loose" if any(sub) else "RM_loose"] += 1
    if not n:
        return {"problems": 0}

    def score(rm: int) -> float:
        return round(100 * (n - 0.5 * counts["IG"] - rm - counts["IK"]) / n, 2)

    return {"loose": score(counts["RM_loose"]), "strict": score(counts["RM_strict"]), "problems": n,
            **{k: v for k, v in counts.items()}}


globals().update(common.processors(target, categories, lambda doc: doc.get("ID"), reference))
accuracy = common.accuracy
unparsable = common.unparsable
