"""Every benchmark ``evals.run`` knows, one record each: where its task lives, what its dataset must hold, how it is
scored, and the paper's numbers for it.

Adding a benchmark is one :class:`Benchmark` registered in :data:`BENCHMARKS` (a :class:`~mmpr.registry.Registry`:
an unknown name is an :class:`~mmpr.registry.UnknownName`) plus its folder under ``evals/tasks/`` holding a
``utils.py`` with ``doc_to_visual(doc)``, ``doc_to_text(doc, lmms_eval_specific_kwargs)``, the ``process_results_*``
functions of :func:`evals.task_utils.processors` and, when the benchmark has scores beyond per-sample accuracy, a
``summarize(records) -> dict[str, float]``. ``evals.run`` writes the lmms-eval task YAML from the record.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from pydantic import BaseModel, ConfigDict, Field

from evals.prompting import PROMPT_STYLES as PROMPTS
from mmpr.registry import Registry, UnknownName

# the paper's two models; every number of ``Benchmark.paper`` is one of PAPER_RESULTS (a test holds them equal)
BASE, MPO = "InternVL2-8B", "InternVL2-8B-MPO"
PAPER_RESULTS = (
    "Wang et al. 2024, Enhancing the Reasoning Ability of Multimodal Large Language Models via Mixed Preference "
    "Optimization (arXiv 2411.10442), InternVL2-8B -> InternVL2-8B-MPO: MathVista 58.3 -> 67.0, MathVision 20.4 -> "
    "25.7, M3CoT 59.3 -> 79.2, POPE 86.9 -> 88.1, MMMU 51.2 -> 54.0; MathVista direct / CoT: InternVL2-8B 58.3 / "
    "56.8, InternVL2-8B-MPO 64.5 / 67.0")


class Benchmark(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Short name used by --tasks and --data, and as the key in results.json.")
    folder: str = Field(description="Task folder holding utils.py, in `package`.")
    package: str = Field(default="evals.tasks", description="Package holding the task folder (an experiment's "
                         "benchmark keeps its task with the experiment).")
    task: str = Field(description="lmms-eval task name stem; the task for a prompt is '<task>_<prompt>'.")
    dataset: str = Field(description="Hub dataset id the task reads unless --data points at a local copy; empty for "
                         "a benchmark that exists only as local files (always given with --data).")
    dataset_name: str | None = Field(default=None, description="Hub dataset config, if any.")
    split: str = Field(description="The split evaluated.")
    fields: tuple[str, ...] = Field(description="Columns a row must have (as published); checked before generating.")
    scorer: str = Field(description="The answer rules, in words; the code is the task folder's utils.py.")
    prompts: tuple[str, ...] = Field(default=PROMPTS, description="Prompt styles the benchmark supports.")
    headline: str = Field(default="accuracy", description="The score compared with the paper: 'accuracy' or a key "
                          "of the benchmark's summarize() metrics.")
    resample_by: str | None = Field(default=None, description="For an aggregate headline: the reference field "
                                    "grouping samples into the units it averages over (summarize() of one unit's "
                                    "samples is that unit's value); its interval resamples these units.")
    unit: str = Field(default="item", description="What the headline's interval resamples, in words.")
    max_new_tokens: dict[str, int] = Field(default={"cot": 2048, "direct": 64, "reasoning": 4096})
    paper: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="model -> {prompt style or 'reported' (style not stated): score}.")

    def task_name(self, prompt: str) -> str:
        return f"{self.task}_{prompt}"

    def utils(self) -> ModuleType:
        return importlib.import_module(f"{self.package}.{self.folder}.utils")

    def task_dir(self) -> Path:
        """The task folder, copied next to the task YAML that ``evals.run`` writes."""
        return Path(self.utils().__file__).parent

    def paper_number(self, model: str, prompt: str) -> tuple[float, str] | None:
        """The paper's score for ``model`` under ``prompt``, or the one it reports without naming the prompt."""
        numbers = self.paper.get(model, {})
        if prompt in numbers:
            return numbers[prompt], prompt
        if "reported" in numbers:
            return numbers["reported"], "reported"
        return None


_MC = "multiple choice by letter or option text (mmpr.answers)"

BENCHMARKS: Registry[Benchmark] = Registry("benchmark")
for _bench in [
    Benchmark(name="mathvista", folder="mathvista", task="mmpr_mathvista_testmini", dataset="AI4Math/MathVista",
              split="testmini", fields=("pid", "question", "decoded_image", "question_type", "answer_type", "choices",
                                        "precision", "unit", "answer", "metadata"),
              scorer=f"{_MC}; free-form integer / float at the item's precision / text / list",
              paper={BASE: {"cot": 56.8, "direct": 58.3}, MPO: {"cot": 67.0, "direct": 64.5}}),
    Benchmark(name="mathvision", folder="mathvision", task="mmpr_mathvision_testmini", dataset="MathLLMs/MathVision",
              split="testmini", fields=("id", "question", "options", "decoded_image", "answer", "subject", "level"),
              scorer=f"{_MC}, the gold a letter, named by letter or option value; else the expression equal as text "
                     "or as values at 2 decimals (MATH-V evaluation/evaluate.py, utils.is_equal), math-verify beyond; "
                     "no final answer stated: evaluate.py's reading of the whole response",
              paper={BASE: {"reported": 20.4}, MPO: {"reported": 25.7}}),
    Benchmark(name="pope", folder="pope", task="mmpr_pope", dataset="lmms-lab/POPE", split="test",
              fields=("question_id", "question", "answer", "image", "category"), scorer="yes / no",
              paper={BASE: {"reported": 86.9}, MPO: {"reported": 88.1}}),
    Benchmark(name="m3cot", folder="m3cot", task="mmpr_m3cot", dataset="LightChen2333/M3CoT", split="test",
              fields=("id", "category", "question", "choices", "context", "answer", "image", "domain", "topic"),
              scorer=f"{_MC}, the gold a letter; an option's full text names it (M3CoT utils/metric.py, judge_answer); "
                     "no final answer stated: judge_answer's reading of the whole response",
              paper={BASE: {"reported": 59.3}, MPO: {"reported": 79.2}}),
    Benchmark(name="mmmu", folder="mmmu", task="mmpr_mmmu_val", dataset="lmms-lab/MMMU", split="validation",
              fields=("id", "question", "options", "answer", "question_type", "image_1", "subfield",
                      "topic_difficulty"),
              scorer=f"{_MC}, any of several listed answers counts; open answers: a number equal to the gold at 2 "
                     "decimals, else the gold text contained, case aside (MMMU mmmu/utils/eval_utils.py, eval_open); "
                     "no final answer stated: parse_multi_choice_response / parse_open_response on the whole response "
                     "(no random pick)",
              paper={BASE: {"reported": 51.2}, MPO: {"reported": 54.0}}),
    Benchmark(name="mathverse", folder="mathverse", task="mmpr_mathverse_testmini_vision_only",
              dataset="CaraJ/MathVerse-lmmseval", dataset_name="testmini_version_split", split="vision_only",
              fields=("sample_index", "problem_index", "problem_version", "question", "image", "answer",
                      "question_type", "metadata"),
              scorer="option letter, or the option's text from question_for_eval (the options are drawn in the "
                     "image); free-form by math-verify (MathVerse evaluation/score_answer_s2.py quick_match, widened); "
                     "no final answer stated: the rule of its extraction demonstrations (evaluation/prompts.py)"),
    Benchmark(name="dynamath", folder="dynamath", task="mmpr_dynamath", dataset="lscpku/DynaMath_Sample",
              split="sample_all", headline="worst_case", resample_by="seed", unit="seed",
              fields=("id", "question", "decoded_image", "ground_truth", "answer_type", "subject", "knowledge_level"),
              scorer=f"{_MC} (options from the question's 'Choices:') / float within an absolute 0.001 / text "
                     "containing the gold (DynaMath evaluation/opensource_json_eval.py; "
                     "no final answer stated: its JSON 'short answer', else its last line); worst case: a seed "
                     "question counts only if every variant of it (rows sharing id) is right"),
    Benchmark(name="wemath", folder="wemath", task="mmpr_wemath_testmini", dataset="We-Math/We-Math",
              split="testmini", headline="strict", resample_by="ID", unit="problem",
              fields=("ID", "split", "knowledge concept", "question", "option", "answer", "image_path", "key",
                      "question number"),
              scorer=f"{_MC}, the gold a letter (We-Math evaluation/accuracy.py: the letter after the last "
                     "'Answer'); multi-step problems grouped by ID into the loose and strict scores "
                     "(four_dimensional_metrics.py)"),
    Benchmark(name="logicvista", folder="logicvista", task="mmpr_logicvista", dataset="lscpku/LogicVista",
              split="test", fields=("question", "image", "answer"),
              scorer="the set of option letters (some items have two), each given as letter or option text, or "
                     "the number for numbered options (LogicVista eval/extract_accuracy.py: the extracted letter set "
                     "equals the gold set; no final answer stated: the rule its stored extractions imply, "
                     "official.logicvista_choices)"),
]:
    BENCHMARKS.register(_bench.name, _bench, description=_bench.scorer)
# an experiment's benchmark lives with the experiment (experiments/), outside the product: named here, imported on use
BENCHMARKS.register("synthetic_grid", "experiments.tiny_grid.benchmark:BENCHMARK",
                    description="the synthetic grid-counting task of experiments/tiny_grid (local only)")


PRESETS: dict[str, tuple[str, ...]] = {
    # the paper's judge-free benchmarks (MM-Vet, LLaVA-Bench, MMHal-Bench and CRPE need a judge or other scoring)
    "paper": ("mathvista", "mathvision", "m3cot", "mmmu", "pope"),
    # the reasoning suite of current reports
    "reasoning": ("mmmu", "mathvista", "mathvision", "mathverse", "dynamath", "wemath", "logicvista"),
}


def get(name: str) -> Benchmark:
    """The benchmark ``name``; an unknown name is an :class:`UnknownName` listing the benchmarks and presets."""
    try:
        return BENCHMARKS.get(name)
    except UnknownName as e:
        raise UnknownName(f"{e}; presets: {', '.join(PRESETS)}") from None


def benchmarks() -> list[Benchmark]:
    """Every registered benchmark, by name."""
    return [BENCHMARKS.get(name) for name in BENCHMARKS.names()]


def resolve(spec: str | list[str]) -> list[Benchmark]:
    """Benchmarks named by a comma-separated list of names and presets, in order, each once."""
    names = [n.strip() for n in spec.split(",")] if isinstance(spec, str) else list(spec)
    out: list[Benchmark] = []
    for n in filter(None, names):
        for bench in map(get, PRESETS.get(n, (n,))):
            if bench not in out:
                out.append(bench)
    return out
