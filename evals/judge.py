"""An optional judge for the answers the rules cannot read: only unparsable responses go to it.

The judge (any OpenAI-compatible chat server, e.g. a local ``vllm serve``) is asked to state the final answer the
response commits to, or NONE; that answer is then judged by the same rules as every other answer. The judge-free
score stays the headline; the with-judge score is reported beside it.
"""

from __future__ import annotations

from openai import OpenAI, OpenAIError

from evals.scoring import Target, judge

PROMPT = ("Below is a model's response to a question. Reply with the final answer the response commits to, exactly "
          "as short as possible (a number, a letter, a word), or NONE if it commits to none.\n\n"
          "Question's expected answer type: {answer_type}{choices}\n\nResponse:\n{response}")


def judge_unparsable(records: list[dict], url: str, *, model: str | None = None, api_key: str = "EMPTY",
                     timeout: float = 120.0, retries: int = 3) -> tuple[int, float]:
    """Ask the judge about each unparsable record; mark ``judge_extracted`` / ``judge_correct`` on them, or
    ``judge_failed`` where the call failed. Returns (how many were answered, accuracy in percent counting judged
    answers)."""
    client = OpenAI(base_url=url, api_key=api_key, timeout=timeout, max_retries=retries)
    model = model or client.models.list().data[0].id
    sent = 0
    for record in records:
        if record["parsable"] or record["target"] is None:  # parsed already, or nothing to judge against
            continue
        target = Target(**record["target"])
        choices = f"; options: {target.choices}" if target.choices else ""
        try:
            reply = client.chat.completions.create(model=model, temperature=0, max_tokens=32, messages=[
                {"role": "user", "content": PROMPT.format(answer_type=target.answer_type, choices=choices,
                                                          response=record["response"][-4000:])}])
        except OpenAIError:  # counted by the caller; the answer stays unjudged (wrong), never guessed
            record["judge_failed"] = True
            continue
        answer = (reply.choices[0].message.content or "").strip()
        sent += 1
        record["judge_extracted"] = None if answer.upper() == "NONE" or not answer else answer
        record["judge_correct"] = record["judge_extracted"] is not None and judge(record["judge_extracted"], target)
    correct = sum(r["correct"] or r.get("judge_correct", False) for r in records)
    return sent, round(100 * correct / max(len(records), 1), 2)
