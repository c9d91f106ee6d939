"""TensorBoard images, histograms, text and audio become aim objects: `aim convert
tensorboard` and the live tracker, on event files written by torch.utils.tensorboard
(and, for TensorFlow 2's plugin tensors, summaries built as TensorFlow writes them)."""
import io

import numpy as np
import pytest
from click.testing import CliRunner

from aim import Repo
from aim.cli.main import cli

pytest.importorskip('tensorboard')
torch = pytest.importorskip('torch')
pytest.importorskip('PIL')

T0 = 1_700_000_000.0     # the wall time of step 0 in the event files


def _pixels(step):
    """A 3×4×5 (C×H×W) uint8 picture that differs at each step."""
    return (np.arange(60, dtype=np.uint8).reshape(3, 4, 5) * 4 + step)


def _wave(step):
    return np.sin(np.linspace(0, 20 + step, 400)).astype(np.float32) * 0.5


def _samples(step):
    return np.random.default_rng(step).normal(step, 1.0, size=500)


def _write_torch_logs(logdir):
    from torch.utils.tensorboard import SummaryWriter
    writer = SummaryWriter(str(logdir))
    for step in range(3):
        t = T0 + step
        writer.add_image('digits', torch.from_numpy(_pixels(step)), step, walltime=t)
        writer.add_histogram('weights', _samples(step), step, bins=10, walltime=t)
        writer.add_histogram('activations', _samples(step), step, walltime=t)
        writer.add_text('notes', f'step **{step}**, héllo', step, walltime=t)
        writer.add_audio('tone', torch.from_numpy(_wave(step)), step, sample_rate=8000,
                         walltime=t)
    writer.add_histogram('zeros', torch.zeros(5), 0, walltime=T0)
    writer.close()
    val = SummaryWriter(str(logdir / 'validation'))
    val.add_image('digits', torch.from_numpy(_pixels(9)), 0, walltime=T0)
    val.close()


def test_convert_keeps_pixels_histograms_text_and_audio(tmp_path, new_repo):
    from torch.utils.tensorboard import summary
    _write_torch_logs(tmp_path / 'logs' / 'exp')
    res = CliRunner().invoke(cli, ['convert', 'tensorboard', '--logdir', str(tmp_path / 'logs'),
                                   '--repo', new_repo.root_path])
    assert res.exit_code == 0, res.output
    assert 'NOT CONVERTED' not in res.output
    run = next(iter(Repo(new_repo.root_path).iter_runs()))

    images = run.get_image_sequence('digits')
    assert images.steps == [0, 1, 2]
    for step, image in zip(images.steps, images.values.values_list()):
        assert image.format == 'png' and (image.width, image.height) == (5, 4)
        np.testing.assert_array_equal(np.asarray(image.to_pil_image()),
                                      _pixels(step).transpose(1, 2, 0))
        # the PNG of the event file, byte for byte (SummaryWriter encodes it so)
        written = summary.image('digits', _pixels(step), dataformats='CHW').value[0]
        assert image.get().getvalue() == written.image.encoded_image_string
    val = run.get_image_sequence('digits', {'subset': 'validation'})
    np.testing.assert_array_equal(np.asarray(val.values.last_value().to_pil_image()),
                                  _pixels(9).transpose(1, 2, 0))

    # even buckets (bins=10) are kept exactly
    weights = run.get_distribution_sequence('weights')
    assert weights.steps == [0, 1, 2]
    for step, dist in weights.values.items():
        counts, edges = np.histogram(_samples(step), bins=10)
        np.testing.assert_array_equal(dist.weights, counts)
        assert dist.range == pytest.approx([edges[0], edges[-1]])
    # TensorBoard's default exponential buckets are resampled onto 64 even bins: the
    # total and the span are kept, and the shape within a bucket's width
    for step, dist in run.get_distribution_sequence('activations').values.items():
        x = _samples(step)
        assert dist.bin_count == 64 and dist.weights.sum() == pytest.approx(x.size)
        assert dist.range == pytest.approx([x.min(), x.max()])
        centres = (dist.ranges[:-1] + dist.ranges[1:]) / 2
        assert np.average(centres, weights=dist.weights) == pytest.approx(x.mean(), abs=0.05)
        coarse = np.histogram(x, bins=8, range=dist.range)[0]
        np.testing.assert_allclose(dist.weights.reshape(8, 8).sum(axis=1), coarse, atol=8)
    zeros = run.get_distribution_sequence('zeros').values.last_value()
    assert zeros.range == [-0.5, 0.5] and zeros.weights[32] == 5 and zeros.weights.sum() == 5

    # add_text writes the tag `<tag>/text_summary`, which is what TensorBoard shows
    texts = run.get_text_sequence('notes/text_summary')
    assert [t.data for t in texts.values.values_list()] == [
        f'step **{s}**, héllo' for s in range(3)]

    clips = run.get_audio_sequence('tone')
    assert clips.steps == [0, 1, 2]
    for step, clip in clips.values.items():
        written = summary.audio('tone', _wave(step), 8000).value[0].audio.encoded_audio_string
        assert clip.format == 'wav' and clip.rate == 8000
        assert clip.get().getvalue() == written
        np.testing.assert_array_equal(clip.to_numpy(),
                                      (_wave(step) * 32767).astype(np.int16))


def test_objects_keep_the_event_wall_times(tmp_path, new_repo):
    from torch.utils.tensorboard import SummaryWriter

    from aim.converters.tensorboard import convert_tensorboard
    writer = SummaryWriter(str(tmp_path / 'logs'))
    for step in range(3):
        writer.add_text('notes', 'x', step, walltime=T0 + step)
    writer.close()
    convert_tensorboard(new_repo, str(tmp_path / 'logs'), workers=1)
    texts = next(iter(new_repo.iter_runs())).get_text_sequence('notes/text_summary')
    assert texts.timestamps == pytest.approx([T0, T0 + 1, T0 + 2], abs=1e-3)


def _tf2_summary(tag, plugin, strings, shape, description=''):
    """A summary value as TensorFlow 2's `tf.summary.image` / `audio` / `text` write it:
    a string tensor with the plugin named in the metadata."""
    from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
    from tensorboard.compat.proto.tensor_pb2 import TensorProto
    from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
    metadata = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name=plugin),
                               summary_description=description)
    tensor = TensorProto(dtype='DT_STRING', string_val=strings, tensor_shape=TensorShapeProto(
        dim=[TensorShapeProto.Dim(size=n) for n in shape]))
    return Summary(value=[Summary.Value(tag=tag, metadata=metadata, tensor=tensor)])


def _png(value):
    from PIL import Image as PILImage
    out = io.BytesIO()
    PILImage.fromarray(np.full((2, 3), value, dtype=np.uint8)).save(out, format='PNG')
    return out.getvalue()


def _wav(n):
    import wave
    out = io.BytesIO()
    with wave.open(out, 'wb') as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.arange(n, dtype='<i2').tobytes())
    return out.getvalue()


def test_tensorflow2_plugin_tensors_and_a_growing_log(tmp_path, new_repo):
    from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
    from tensorboard.plugins.histogram.summary_v2 import histogram_pb
    from torch.utils.tensorboard import SummaryWriter

    from aim.converters.tensorboard import convert_tensorboard
    logdir = tmp_path / 'logs'
    writer = SummaryWriter(str(logdir))
    add = writer._get_file_writer().add_summary
    # the plugin and the description come with a tag's first value only, as TF writes
    add(_tf2_summary('batch', 'images', [b'3', b'2', _png(10), _png(20)], [4],
                     description='inputs'), 0, T0)
    add(_tf2_summary('clips', 'audio', [_wav(50), b'first', _wav(60), b''], [2, 2]), 0, T0)
    add(_tf2_summary('table', 'text', [b'a', b'b'], [2]), 0, T0)
    x = np.random.default_rng(0).normal(size=300)
    add(histogram_pb('hist', x, buckets=20), 0, T0)
    add(histogram_pb('empty', np.array([]), buckets=5), 0, T0)
    add(Summary(value=[Summary.Value(tag='pr', metadata=SummaryMetadata(
        plugin_data=SummaryMetadata.PluginData(plugin_name='pr_curves')))]), 0, T0)
    writer.flush()

    report = convert_tensorboard(new_repo, str(logdir), workers=1)
    assert not report.failed
    assert report.not_converted == {'empty histograms': 1, 'other summaries': 1}
    run = next(iter(new_repo.iter_runs()))
    batch = run.get_image_sequence('batch').values.last_value()
    assert [(i.caption, np.asarray(i.to_pil_image())[0, 0]) for i in batch] == [
        ('inputs', 10), ('inputs', 20)]
    clips = run.get_audio_sequence('clips').values.last_value()
    assert [(c.caption, c.get().getvalue()) for c in clips] == [('first', _wav(50)),
                                                                ('', _wav(60))]
    assert [t.data for t in run.get_text_sequence('table').values.last_value()] == ['a', 'b']
    hist = run.get_distribution_sequence('hist').values.last_value()
    counts, edges = np.histogram(x, bins=20)
    assert hist.bin_count == 20 and hist.weights.sum() == 300
    assert hist.range == pytest.approx([edges[0], edges[-1]])

    # training goes on: the next conversion appends, knowing the tags' plugins
    add(_tf2_summary('batch', 'images', [b'3', b'2', _png(30)], [3]), 1, T0 + 1)
    writer.close()
    report = convert_tensorboard(new_repo, str(logdir), workers=1)
    assert report.converted and not report.failed
    batch = new_repo.get_run(run.hash).get_image_sequence('batch')
    assert batch.steps == [0, 1]
    last = batch.values.last_value()
    assert last.caption == 'inputs' and np.asarray(last.to_pil_image())[0, 0] == 30


def test_the_live_tracker_tracks_objects(tmp_path, new_repo):
    from torch.utils.tensorboard import SummaryWriter

    from aim import Run
    from aim.ext.tensorboard_tracker import TensorboardTracker
    logdir = tmp_path / 'tb'
    writer = SummaryWriter(str(logdir))
    run = Run(repo=new_repo, system_tracking_interval=None, capture_terminal_logs=False)
    tracker = TensorboardTracker(run, str(logdir))
    writer.add_image('digits', torch.from_numpy(_pixels(0)), 0)
    writer.add_histogram('weights', _samples(0), 0, bins=16)
    writer.add_text('notes', 'first', 0)
    writer.add_audio('tone', torch.from_numpy(_wave(0)), 0, sample_rate=8000)
    writer.flush()
    assert tracker.sync() == 4
    writer.add_text('notes', 'second', 1)
    writer.close()
    assert tracker.sync() == 1
    tracker.stop()
    run.close()
    stored = new_repo.get_run(run.hash)
    np.testing.assert_array_equal(
        np.asarray(stored.get_image_sequence('digits').values.last_value().to_pil_image()),
        _pixels(0).transpose(1, 2, 0))
    np.testing.assert_array_equal(
        stored.get_distribution_sequence('weights').values.last_value().weights,
        np.histogram(_samples(0), bins=16)[0])
    assert [t.data for t in stored.get_text_sequence('notes/text_summary').values.values_list()
            ] == ['first', 'second']
    assert stored.get_audio_sequence('tone').values.last_value().rate == 8000
    assert not tracker.skipped
