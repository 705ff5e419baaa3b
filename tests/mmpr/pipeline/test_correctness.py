import pytest

from mmpr.pipeline.correctness import correctness_pairs, judge
from mmpr.schemas import Response, SourceItem

ITEM = SourceItem(id="s/1", source="s", category="mathematics", question="How many?", images=["/x.png"],
                  answer="4", answer_type="integer")


def _responses(*texts):
    return [Response(item_id="s/1", sample_index=i, text=t, prompt_tokens=10, completion_tokens=5)
            for i, t in enumerate(texts)]


def r(answer):
    return f"I count the objects one by one carefully. Final answer: {answer}"


def test_judge():
    (j,) = [judge(ITEM, x) for x in _responses(r("4"))]
    assert j.correct and j.parsable and j.extracted == "4"
    (j,) = [judge(ITEM, x) for x in _responses("4")]
    assert not j.parsable and not j.correct
    with pytest.raises(ValueError, match="no ground truth"):
        judge(ITEM.model_copy(update={"answer": None, "answer_type": None}), _responses("x")[0])


def test_a_response_with_several_different_final_answers_is_a_format_failure():
    changed_mind = r("5") + "\nOn second thought, Final answer: 4"
    (j,) = [judge(ITEM, x) for x in _responses(changed_mind)]
    assert not j.parsable and not j.correct
    res = correctness_pairs(ITEM, "q", _responses(r("4"), changed_mind))
    assert [p.kind for p in res.pairs] == ["format"] and res.pairs[0].rejected == changed_mind
    (j,) = [judge(ITEM, x) for x in _responses(r("4") + "\nSo, Final answer: 4")]
    assert j.correct, "the same answer stated twice is one answer"


def test_every_correct_with_every_wrong_and_unparsable():
    res = correctness_pairs(ITEM, "prompt", _responses(r("4"), r("four"), r("5"), r("6"), "no idea"))
    kinds = [p.kind for p in res.pairs]
    assert kinds.count("correctness") == 4 and kinds.count("format") == 2
    assert res.outcome == "paired"
    p = res.pairs[0]
    assert p.question == "prompt" and p.images == ["/x.png"] and p.answer_gt == "4"
    assert p.subset == "s_pairs_vqa_correctness_rules" and p.metadata["rejected_answer"] == "5"
    assert {q.subset for q in res.pairs if q.kind == "format"} == {"s_pairs_vqa_format_rules"}


def test_wrong_answer_containing_the_right_one_is_dropped_and_duplicates_count_once():
    res = correctness_pairs(ITEM, "q", _responses(r("4"), r("4"), r("4 or 5"), r("14"), r("7")))
    assert [(p.metadata["chosen_answer"], p.metadata["rejected_answer"]) for p in res.pairs] == [("4", "7")]


@pytest.mark.parametrize("texts, outcome", [
    ([r("4"), r("4.0")], "all_correct"), ([r("5"), r("6")], "all_wrong"), (["4", "?"], "all_unparsable"),
    ([r("4"), r("14")], "no_pairs"),
])
def test_questions_without_pairs_say_why(texts, outcome):
    res = correctness_pairs(ITEM, "q", _responses(*texts))
    assert res.pairs == [] and res.outcome == outcome


def test_cap_is_seeded_and_per_kind():
    texts = [f"Attempt {i}. " + r("4") for i in range(5)] + [r(str(5 + i)) for i in range(5)]
    a = correctness_pairs(ITEM, "q", _responses(*texts), max_pairs=7, seed=0)
    b = correctness_pairs(ITEM, "q", _responses(*texts), max_pairs=7, seed=0)
    c = correctness_pairs(ITEM, "q", _responses(*texts), max_pairs=7, seed=1)
    assert len(a.pairs) == 7
    assert [p.id for p in a.pairs] == [p.id for p in b.pairs] != [p.id for p in c.pairs]
    assert len({p.id for p in a.pairs}) == 7
