"""The public API is declared in aim/__init__.py's __all__ and matches what is exported."""
import aim


def test_all_is_sorted_and_exported():
    assert aim.__all__ == sorted(aim.__all__)
    for name in aim.__all__:
        assert getattr(aim, name) is not None, name


def test_both_name_generations():
    from aim.sdk.repo import Repo
    from aim.sdk.run import Run
    assert aim.Run is Run and aim.Repo is Repo
    assert Repo.traces is Repo.query_metrics and Repo.iter_traces is Repo.query_metrics
    assert Run.get_trace is Run.get_metric and Run.traces is Run.metrics


def test_all_names_the_public_api_exactly():
    assert set(aim.__all__) == {'Repo', 'Run', *aim._SDK, *aim._LEGACY, *aim._OBJECTS,
                                *aim._SEQUENCES}


def test_object_types_and_their_sequences():
    from aim.sdk.objects import Image
    from aim.sdk.sequences import Images
    assert aim.Image is Image and aim.Images is Images
    assert aim.Images.allowed_dtypes() == ('aim.image', 'list(aim.image)')
    assert aim.Distributions.sequence_name() == 'distributions'
