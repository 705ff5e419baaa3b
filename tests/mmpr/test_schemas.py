import pytest
from pydantic import ValidationError

from mmpr.schemas import Judgement, Manifest, PreferencePair, SourceItem


def test_source_item_needs_answer_and_type_together_and_choices_for_mc():
    with pytest.raises(ValidationError, match="answer and answer_type must be given together"):
        SourceItem(id="1", source="s", category="other", question="q", answer="1", answer_type=None)
    with pytest.raises(ValidationError, match="needs its choices"):
        SourceItem(id="1", source="s", category="other", question="q", answer="A", answer_type="multiple_choice")
    with pytest.raises(ValidationError, match="Input should be 'multiple_choice'"):
        SourceItem(id="1", source="s", category="other", question="q", answer="1", answer_type="number")


def test_records_forbid_unknown_fields_and_identical_responses():
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        PreferencePair(id="1", subset="s", question="q", chosen="a", rejected="b", kind="format", source="s", x=1)
    with pytest.raises(ValidationError, match="rejected is identical to chosen"):
        PreferencePair(id="1", subset="s", question="q", chosen="a", rejected="a", kind="format", source="s")
    with pytest.raises(ValidationError, match="String should match pattern"):
        PreferencePair(id="1", subset="a b", question="q", chosen="a", rejected="b", kind="format", source="s")
    with pytest.raises(ValidationError, match="unparsable response cannot be correct"):
        Judgement(item_id="1", sample_index=0, extracted=None, parsable=False, correct=True)


def test_manifest_versions_and_hashes_are_checked():
    with pytest.raises(ValidationError, match="dataset_version"):
        Manifest(name="x", dataset_version="1.0", content_hash="a" * 64, num_pairs=0, subsets={})
    with pytest.raises(ValidationError, match="content_hash"):
        Manifest(name="x", dataset_version="1.0.0", content_hash="xyz", num_pairs=0, subsets={})
    m = Manifest(name="x", dataset_version="1.0.0", content_hash="a" * 64, num_pairs=0, subsets={})
    assert m.schema_version == "1.0" and Manifest.model_validate_json(m.model_dump_json()) == m
