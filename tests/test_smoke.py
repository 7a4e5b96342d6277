from storytree_build.data.transfer import export_story

from support.project import SAMPLE_ID


def test_sample_story_imports_and_exports(sample_store):
    text = export_story(sample_store, SAMPLE_ID)
    assert SAMPLE_ID in text
