"""Rich objects through the SDK and the storage layer: track, read back, query, on both
repository backends."""
from __future__ import annotations

import io
import json
import wave

import numpy as np
import pytest

from aim import Audio, Distribution, Figure, Image, Images, Repo, Text, Texts
from aim.errors import TrackInputError

pytestmark = pytest.mark.backends


def _pixels(img) -> np.ndarray:
    return np.asarray(img.to_pil_image().convert('RGB'))


def _wav(n=2000, rate=8000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, 'wb') as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.sin(np.arange(n) / 5) * 2000).astype('<i2').tobytes())
    return buf.getvalue()


def test_each_type_round_trips(make_run, repo):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (24, 16, 3), dtype=np.uint8)
    samples = rng.normal(size=5000)
    wav = _wav()
    figure = {'data': [{'type': 'scatter', 'x': [1, 2, 3], 'y': [3, 1, 2]}],
              'layout': {'title': {'text': 'f'}}}
    run = make_run()
    run.track(Image(pixels, caption='a cat'), name='samples', step=0,
              context={'subset': 'val'})
    run.track(Text('the generated text'), name='gen', step=3, epoch=1)
    run.track(Distribution(samples, bin_count=32), name='weights', step=0)
    run.track(Audio(wav, format='wav', caption='tone', rate=8000), name='audio', step=0)
    run.track(Figure(figure), name='fig', step=0)
    run.close()

    read = repo.get_run(run.hash)
    img = read.get_image_sequence('samples', {'subset': 'val'}).values.last_value()
    assert (img.caption, img.format, img.width, img.height) == ('a cat', 'png', 16, 24)
    assert np.array_equal(_pixels(img), pixels)

    texts = read.get_text_sequence('gen')
    assert texts.values.indices_list() == [3] and texts.epochs == [1]
    assert texts.values.last_value().data == 'the generated text'

    dist = read.get_distribution_sequence('weights').values.last_value()
    weights, edges = np.histogram(samples, bins=32)
    assert dist.bin_count == 32
    assert np.allclose(dist.weights, weights)
    assert np.allclose(dist.to_np_histogram()[1], edges)

    audio = read.get_audio_sequence('audio').values.last_value()
    assert audio.get().read() == wav and audio.caption == 'tone'

    fig = read.get_figure_sequence('fig').values.last_value()
    assert fig.data['data'][0]['y'] == [3, 1, 2]


def test_lists_step_continuation_and_replacement(make_run, repo):
    run = make_run()
    for i in range(3):
        run.track([Text(f'a{i}'), Text(f'b{i}')], name='gen')        # steps 0, 1, 2
    run.track(Text('alone'), name='gen', step=1)                      # replaces step 1
    run.track(Text('late'), name='gen')                               # step 3
    seq = run.get_text_sequence('gen')
    values = seq.values.values_list()
    assert seq.values.indices_list() == [0, 1, 2, 3]
    assert [t.data for t in values[0]] == ['a0', 'b0']
    assert values[1].data == 'alone' and values[3].data == 'late'
    assert [t.data for t in values[2]] == ['a2', 'b2']
    run.close()
    seq = repo.get_run(run.hash).get_text_sequence('gen')
    assert seq.count == 4 and seq.first_step() == 0 and seq.last_step() == 3
    steps, (vals, epochs, times) = seq.data.items_list()
    assert steps == [0, 1, 2, 3] and epochs == [None] * 4 and all(t > 0 for t in times)


def test_out_of_order_steps_across_chunks(make_run, repo):
    from aim.storage.objects import CHUNK_POINTS
    run = make_run()
    n = CHUNK_POINTS + 40
    for i in range(n):
        run.track(Text(str(i)), name='t', step=i)
    run.flush()
    run.track(Text('again'), name='t', step=5)
    run.close()
    seq = repo.get_run(run.hash).get_text_sequence('t')
    values = seq.values.values_list()
    assert len(values) == n and values[5].data == 'again' and values[-1].data == str(n - 1)
    steps, _ = seq.data.range(CHUNK_POINTS - 2, CHUNK_POINTS + 2)
    assert steps == list(range(CHUNK_POINTS - 2, CHUNK_POINTS + 2))


def test_resumed_run_continues_its_object_series(make_run, repo):
    run = make_run()
    run.track(Text('x'), name='t')
    run.track(Text('y'), name='t')
    run.close()
    again = make_run(run_hash=run.hash)
    again.track(Text('z'), name='t')
    with pytest.raises(TrackInputError, match='holds text objects'):
        again.track(0.5, name='t')
    again.close()
    seq = repo.get_run(run.hash).get_text_sequence('t')
    assert seq.values.indices_list() == [0, 1, 2]


def test_same_image_twice_is_stored_once(make_run, repo):
    from aim.storage.objects import list_series
    pixels = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    run = make_run()
    for step in range(5):
        run.track(Image(pixels), name='same', step=step)
    other = make_run()
    other.track(Image(pixels), name='copy', step=0)
    run.close()
    other.close()
    db = repo._store.db
    assert db.query('SELECT count(*) FROM blobs')[0][0] == 1
    size = db.query('SELECT size FROM blobs')[0][0]
    assert size > 10_000          # random pixels: a PNG about as big as the raw data
    assert [r['count'] for r in list_series(db, run.hash)] == [5]


def test_bad_input_fails_at_track_and_nothing_else_is_lost(make_run, repo):
    run = make_run()
    run.track(1.5, name='loss', step=0)
    run.track(Text('ok'), name='gen', step=0)
    with pytest.raises(TrackInputError):
        run.track(Image(np.zeros((2, 3, 4, 5))), name='bad')
    with pytest.raises(TrackInputError, match='empty'):
        run.track([], name='gen')
    with pytest.raises(TrackInputError, match='mixing'):
        run.track([Text('a'), Distribution([1.0, 2.0])], name='gen2')
    with pytest.raises(TrackInputError, match='is a metric'):
        run.track(Text('x'), name='loss')
    with pytest.raises(TrackInputError, match='holds text objects'):
        run.track(Distribution([1.0, 2.0]), name='gen')
    with pytest.raises(TrackInputError):
        run.track([1.0, 2.0], name='pair')
    run.track(Text('still fine'), name='gen', step=1)
    run.close()
    read = repo.get_run(run.hash)
    assert [t.data for t in read.get_text_sequence('gen').values] == ['ok', 'still fine']
    assert read.get_metric('loss').values.values_list() == [1.5]
    assert read.get_text_sequence('gen2') is None and read.get_image_sequence('bad') is None


def test_queries_over_object_sequences(make_run, repo):
    runs = []
    for lr in (0.1, 0.001):
        run = make_run(experiment='exp')
        run['hparams'] = {'lr': lr}
        run.track(Image(np.zeros((4, 4), dtype=np.uint8)), name='samples', step=0,
                  context={'subset': 'val'})
        run.track(Image(np.ones((4, 4), dtype=np.uint8)), name='samples', step=0,
                  context={'subset': 'train'})
        run.track(Text('t'), name='gen', step=0)
        run.track(0.1, name='loss')
        runs.append(run)
    for run in runs:
        run.close()
    found = list(repo.query_images("images.context.subset == 'val' and run.hparams.lr > 0.01"))
    assert [(s.run.hash, s.name, s.context.to_dict()) for s in found] == \
        [(runs[0].hash, 'samples', {'subset': 'val'})]
    assert isinstance(found[0], Images) and found[0].values.indices_list() == [0]
    assert len(list(repo.query_images())) == 4
    assert len(list(repo.query_images("images.name == 'gen'"))) == 0
    texts = list(repo.query_texts("texts.name == 'gen'"))
    assert len(texts) == 2 and all(isinstance(t, Texts) for t in texts)
    assert list(repo.query_distributions()) == [] and list(repo.query_audios()) == []
    assert list(repo.query_figure_objects()) == []
    assert [item.run.hash for item in repo.query_images('images.name == "samples"').iter_runs()
            ] == [runs[1].hash, runs[0].hash]
    from aim.errors import QueryError
    with pytest.raises(QueryError):
        list(repo.query_images("metric.name == 'loss'"))
    info = repo.collect_sequence_info(['images', 'texts'])
    assert info['images'] == {'samples': [{'subset': 'train'}, {'subset': 'val'}]} or \
        sorted(info['images']['samples'], key=json.dumps) == [{'subset': 'train'},
                                                               {'subset': 'val'}]
    assert info['texts'] == {'gen': [{}]}
    run = repo.get_run(runs[0].hash)
    assert sorted(n for n, _, _ in run.iter_sequence_info_by_type('aim.image')) == \
        ['samples', 'samples']
    assert [n for n, _, _ in run.iter_sequence_info_by_type(('float',))] == ['loss']
    overview = run.collect_sequence_info(['images', 'texts', 'metric'])
    assert {s['name'] for s in overview['images']} == {'samples'}
    assert overview['texts'][0]['values']['count'] == 1
    assert overview['metric'][0]['name'] == 'loss'


def test_delete_copy_and_vacuum_handle_blobs(make_run, repo, tmp_path):
    pixels = np.random.default_rng(2).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    shared = make_run()
    shared.track(Image(pixels), name='a', step=0)
    own = make_run()
    own.track(Image(pixels), name='a', step=0)
    own.track(Image(255 - pixels), name='b', step=0)
    shared.close()
    own.close()
    db = repo._store.db
    assert db.query('SELECT count(*) FROM blobs')[0][0] == 2
    dest = Repo(str(tmp_path / 'copy'), init=True)
    ok, _ = repo.copy_runs([own.hash], dest)
    assert ok
    copied = dest.get_run(own.hash).get_image_sequence('b').values.last_value()
    assert np.array_equal(_pixels(copied), 255 - pixels)
    assert repo.delete_run(own.hash)
    # the blob only the deleted run used is gone; the one another run shares stays
    assert db.query('SELECT count(*) FROM blobs')[0][0] == 1
    img = repo.get_run(shared.hash).get_image_sequence('a').values.last_value()
    assert np.array_equal(_pixels(img), pixels)
    assert dest.get_run(own.hash).get_image_sequence('a') is not None


def test_unknown_sequence_type_is_named(make_run, repo):
    run = make_run()
    with pytest.raises(ValueError, match='unknown sequence type'):
        run.collect_sequence_info(['pictures'])
    with pytest.raises(ValueError, match='unknown sequence type'):
        repo.collect_sequence_info('pictures')


def test_reindex_rebuilds_object_summaries(make_run, repo):
    run = make_run()
    for i in range(4):
        run.track(Text(str(i)), name='t', step=i * 3)
    run.close()
    with repo._store.db.write() as conn:
        conn.execute('UPDATE object_series SET count=0, first_step=NULL, last_step=NULL')
    assert repo.get_run(run.hash).get_text_sequence('t') is None
    damaged: list = []
    repo.reindex(damaged=damaged)
    assert damaged == []
    seq = repo.get_run(run.hash).get_text_sequence('t')
    assert (seq.count, seq.first_step(), seq.last_step()) == (4, 0, 9)


def test_an_object_that_cannot_be_stored_is_dropped_with_a_warning(make_run, repo,
                                                                    monkeypatch):
    import warnings

    import aim.sdk.objects as objects_module
    real = objects_module.encode

    def encode(kind, meta, payload):
        stored, blob = real(kind, meta, payload)
        if payload == b'poison':
            stored = dict(stored, bad=float('nan'))    # JSON cannot hold it
        return stored, blob
    monkeypatch.setattr(objects_module, 'encode', encode)
    run = make_run()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        run.track(Text('before'), name='t', step=0)
        run.track(Text('poison'), name='t', step=1)
        run.track(Text('after'), name='t', step=2)
        run.flush()
    assert any('could not be encoded' in str(w.message) for w in caught)
    run.track(Text('later'), name='t', step=3)
    run.close()
    seq = repo.get_run(run.hash).get_text_sequence('t')
    assert [t.data for t in seq.values] == ['before', 'after', 'later']
